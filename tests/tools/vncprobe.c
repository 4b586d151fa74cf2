/* vncprobe: a command-line VNC viewer for integration tests.
 *
 *   vncprobe HOST:PORT [--password PW] [--wait-text TEXT] [--type TEXT] [--timeout SEC] [--dump]
 *
 * Connects, waits until TEXT appears on the text screen (read back from the pixels with the
 * console font), types TEXT2 ('\n' = Return), dumps the screen as text. Exit 0 when every
 * requested condition held, 1 otherwise, 2 on connection/authentication failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/vnc_test_client.h"
#include "vnc/font.h"

static void dump(struct vnc_probe *p, const struct vga_font *f)
{
    char row[81];
    for (unsigned r = 0; r < 25; r++) {
        vnc_probe_row(p, f, r, row);
        size_t n = strlen(row);
        while (n && row[n - 1] == ' ') row[--n] = 0;
        printf("%s\n", row);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: vncprobe HOST:PORT [--password PW] [--wait-text T]... [--type T] [--timeout S] [--dump]\n");
        return 2;
    }
    char host[128];
    int port;
    if (vnc_probe_parse_addr(argv[1], host, &port)) return 2;
    const char *password = NULL;
    int timeout = 30;
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--password")) password = argv[++i];
        else if (!strcmp(argv[i], "--timeout")) timeout = atoi(argv[++i]);
    struct vga_font font;
    char err[256];
    if (font_load(&font, VMD_DEFAULT_FONT, err, sizeof(err))) {
        fprintf(stderr, "vncprobe: %s\n", err);
        return 2;
    }
    struct vnc_probe p;
    if (vnc_probe_connect(&p, host, port, password)) {
        fprintf(stderr, "vncprobe: cannot connect to %s\n", argv[1]);
        return 2;
    }
    vnc_probe_pump(&p, 300);
    int rc = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--wait-text") && i + 1 < argc) {
            const char *want = argv[++i];
            time_t end = time(NULL) + timeout;
            bool seen = false;
            while (!(seen = vnc_probe_screen_has(&p, &font, want)) && time(NULL) < end) vnc_probe_pump(&p, 200);
            if (!seen) {
                fprintf(stderr, "vncprobe: '%s' did not appear within %d s\n", want, timeout);
                rc = 1;
            }
        } else if (!strcmp(argv[i], "--type") && i + 1 < argc) {
            char buf[512];
            size_t n = 0;
            for (const char *s = argv[++i]; *s && n + 1 < sizeof(buf); s++) {
                if (s[0] == '\\' && s[1] == 'n') buf[n++] = '\n', s++;
                else buf[n++] = *s;
            }
            buf[n] = 0;
            vnc_probe_type(&p, buf);
            vnc_probe_pump(&p, 200);
        } else if (!strcmp(argv[i], "--dump")) {
            vnc_probe_pump(&p, 300);
            dump(&p, &font);
        } else if (!strcmp(argv[i], "--password") || !strcmp(argv[i], "--timeout")) {
            i++;
        }
    }
    vnc_probe_close(&p);
    return rc;
}
