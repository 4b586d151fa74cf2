/* tty: putting the controlling terminal in raw mode for an interactive console, and putting it
 * back (also at exit, whatever path vmctl leaves by). */
#ifndef VMD_CLI_TTY_H
#define VMD_CLI_TTY_H

#include <stdbool.h>

/* Raw mode on stdin if it is a terminal. keep_output_processing keeps "\n" -> "\r\n" on output.
 * Returns true if the terminal is now raw. */
bool tty_raw_begin(bool keep_output_processing);
/* Restore the saved mode (idempotent). */
void tty_raw_end(void);
bool tty_is_raw(void);

#endif
