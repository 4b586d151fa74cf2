/* vnc_test_client: a VNC viewer for tests, built on libvncclient: connects (with a password if
 * asked), receives framebuffer updates, reads the text back from the pixels by matching the
 * 8x16 glyphs of the console font, and sends key events. */
#ifndef VMD_TESTS_VNC_TEST_CLIENT_H
#define VMD_TESTS_VNC_TEST_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "vnc/font.h"

struct vnc_probe {
    void *client; /* rfbClient */
    unsigned updates;
};

/* Split "HOST:PORT" (host at most 127 bytes). Returns 0, or -1 if it isn't that. */
int vnc_probe_parse_addr(const char *addr, char host[128], int *port);
/* Returns 0, or -1 when the connection or authentication fails. */
int vnc_probe_connect(struct vnc_probe *p, const char *host, int port, const char *password);
/* Process server messages for up to timeout_ms; returns the number of updates seen. */
unsigned vnc_probe_pump(struct vnc_probe *p, int timeout_ms);
/* Read row `row` of the 80x25 text screen into out (81 bytes, trailing spaces kept). */
void vnc_probe_row(struct vnc_probe *p, const struct vga_font *font, unsigned row, char out[81]);
/* True if `text` appears anywhere on the screen. */
bool vnc_probe_screen_has(struct vnc_probe *p, const struct vga_font *font, const char *text);
void vnc_probe_key(struct vnc_probe *p, uint32_t keysym, bool down);
void vnc_probe_type(struct vnc_probe *p, const char *text); /* '\n' types Return */
void vnc_probe_close(struct vnc_probe *p);

#endif
