/* iobench: guest-side workloads for bench/virtio.sh, compiled static on the host and run inside
 * the guest. Measures with CLOCK_MONOTONIC inside the guest.
 *
 *   iobench disk DEVICE MIB        sequential write+read (1 MiB blocks, O_DIRECT) and random 4 KiB
 *                                  reads and writes (O_DIRECT) over the first MIB MiB
 *   iobench tcp HOST PORT MIB      send MIB MiB over one TCP connection
 * Prints "BENCH: <name> <value> <unit>" lines. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ull;
static uint64_t xorshift(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int disk(const char *dev, long mib)
{
    int fd = open(dev, O_RDWR | O_DIRECT);
    if (fd < 0) {
        perror(dev);
        return 1;
    }
    void *buf;
    if (posix_memalign(&buf, 4096, 1 << 20)) return 1;
    memset(buf, 0x5a, 1 << 20);
    double t = now();
    for (long i = 0; i < mib; i++)
        if (pwrite(fd, buf, 1 << 20, (off_t)i << 20) != 1 << 20) return perror("write"), 1;
    fdatasync(fd);
    double w = now() - t;
    t = now();
    for (long i = 0; i < mib; i++)
        if (pread(fd, buf, 1 << 20, (off_t)i << 20) != 1 << 20) return perror("read"), 1;
    double r = now() - t;
    printf("BENCH: seq-write %.1f MiB/s\nBENCH: seq-read %.1f MiB/s\n", mib / w, mib / r);
    long blocks = mib * 256, n = 2000;
    t = now();
    for (long i = 0; i < n; i++)
        if (pread(fd, buf, 4096, (off_t)(xorshift() % blocks) * 4096) != 4096) return perror("rread"), 1;
    double rr = now() - t;
    t = now();
    for (long i = 0; i < n; i++)
        if (pwrite(fd, buf, 4096, (off_t)(xorshift() % blocks) * 4096) != 4096) return perror("rwrite"), 1;
    fdatasync(fd);
    double rw = now() - t;
    printf("BENCH: rand-read-4k %.0f IOPS\nBENCH: rand-write-4k %.0f IOPS\n", n / rr, n / rw);
    close(fd);
    return 0;
}

static int tcp(const char *host, int port, long mib)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(s, (struct sockaddr *)&sa, sizeof(sa))) return perror("connect"), 1;
    static char buf[1 << 16];
    memset(buf, 'x', sizeof(buf));
    long total = mib << 20, sent = 0;
    double t = now();
    while (sent < total) {
        ssize_t n = write(s, buf, sizeof(buf));
        if (n <= 0) return perror("send"), 1;
        sent += n;
    }
    shutdown(s, SHUT_WR);
    char c;
    while (read(s, &c, 1) > 0) { /* wait for the receiver to close: all data arrived */
    }
    double d = now() - t;
    printf("BENCH: tcp-guest-to-host %.1f MiB/s\n", mib / d);
    close(s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "disk")) return disk(argv[2], atol(argv[3]));
    if (argc == 5 && !strcmp(argv[1], "tcp")) return tcp(argv[2], atoi(argv[3]), atol(argv[4]));
    fprintf(stderr, "usage: iobench disk DEV MIB | iobench tcp HOST PORT MIB\n");
    return 2;
}
