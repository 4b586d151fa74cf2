/* keymap: X keysyms (what VNC clients send) to PC scan code set 1 (what the i8042 delivers),
 * for a US keyboard layout. */
#ifndef VMD_VNC_KEYMAP_H
#define VMD_VNC_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

/* Write the make (down) or break (up) scan code bytes for `keysym` into out (room for 4).
 * Returns the number of bytes, or 0 for a key vmd does not map. */
size_t keysym_to_scancodes(uint32_t keysym, int down, uint8_t out[4]);

#endif
