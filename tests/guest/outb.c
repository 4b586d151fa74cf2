/* outb PORT VALUE: write one byte to an I/O port from a test guest's userspace (ioperm, then
 * outb). Debian's cloud kernel has no /dev/port, so the guest scripts use this instead; the
 * integration tests build it statically on the host (cc -static) and add it to the initramfs. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/io.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: outb PORT VALUE\n");
        return 2;
    }
    unsigned long port = strtoul(argv[1], NULL, 0), value = strtoul(argv[2], NULL, 0);
    if (port > 0xFFFF || value > 0xFF || ioperm(port, 1, 1) < 0) {
        perror("outb: ioperm");
        return 1;
    }
    outb((unsigned char)value, (unsigned short)port);
    return 0;
}
