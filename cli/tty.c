/* tty: raw-mode handling for vmctl's interactive consoles. */
#include "cli/tty.h"

#include <stdlib.h>
#include <termios.h>
#include <unistd.h>

/* The terminal state to restore; global because atexit handlers take no argument. */
static struct termios g_saved_tty;
static bool g_tty_raw, g_atexit_set;

void tty_raw_end(void)
{
    if (g_tty_raw) tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_tty);
    g_tty_raw = false;
}

bool tty_raw_begin(bool keep_output_processing)
{
    if (g_tty_raw) return true;
    if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &g_saved_tty)) return false;
    struct termios t = g_saved_tty;
    cfmakeraw(&t);
    if (keep_output_processing) t.c_oflag |= OPOST;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t)) return false;
    g_tty_raw = true;
    if (!g_atexit_set) g_atexit_set = atexit(tty_raw_end) == 0;
    return true;
}

bool tty_is_raw(void) { return g_tty_raw; }
