/* vnclatency: end-to-end VNC console latency, for bench/vnc-latency.sh.
 *
 *   vnclatency HOST:PORT SERIAL_FIFO COUNT
 *
 * Writes "LATnnnn" lines into the guest's serial console (SERIAL_FIFO feeds vmctl's stdin); the
 * guest copies each line to its VGA console; the time until a libvncclient viewer sees the text
 * in its framebuffer is one sample. Prints median, p90 and max in milliseconds. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/vnc_test_client.h"
#include "vnc/font.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: vnclatency HOST:PORT SERIAL_FIFO COUNT\n");
        return 2;
    }
    char host[128];
    int port;
    if (vnc_probe_parse_addr(argv[1], host, &port)) return 2;
    int n = atoi(argv[3]);
    if (n < 1 || n > 1000) return 2;
    int fifo = open(argv[2], O_WRONLY);
    if (fifo < 0) return perror(argv[2]), 2;
    struct vga_font font;
    char err[256];
    if (font_load(&font, VMD_DEFAULT_FONT, err, sizeof(err))) return fprintf(stderr, "%s\n", err), 2;
    struct vnc_probe p;
    if (vnc_probe_connect(&p, host, port, NULL)) return fprintf(stderr, "cannot connect\n"), 2;
    vnc_probe_pump(&p, 500);
    double *lat = calloc((size_t)n, sizeof(double));
    int got = 0;
    for (int i = 0; i < n; i++) {
        char line[32];
        snprintf(line, sizeof(line), "LAT%04d\n", i);
        double t0 = now_ms();
        if (write(fifo, line, strlen(line)) < 0) break;
        line[7] = 0;
        while (now_ms() - t0 < 10000) {
            vnc_probe_pump(&p, 2);
            if (vnc_probe_screen_has(&p, &font, line)) {
                lat[got++] = now_ms() - t0;
                break;
            }
        }
    }
    vnc_probe_close(&p);
    if (got == 0) {
        fprintf(stderr, "no sample arrived\n");
        return 1;
    }
    qsort(lat, (size_t)got, sizeof(double), cmp);
    printf("VNC latency (guest serial write -> viewer framebuffer), %d samples: median %.1f ms, p90 %.1f ms, max %.1f ms\n",
           got, lat[got / 2], lat[(got * 9) / 10 < got ? (got * 9) / 10 : got - 1], lat[got - 1]);
    free(lat);
    return got == n ? 0 : 1;
}
