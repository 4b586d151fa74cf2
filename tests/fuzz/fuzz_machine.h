/* fuzz_machine: a small machine for the libFuzzer targets (tests/fuzz/fuzz_*.c): guest RAM,
 * buses, device lock, one vCPU whose state lives in memory, a fake backend without a kernel
 * irqchip (so the platform devices are the models in devices/), and optionally every
 * registered device initialised. Header-only and free of cmocka: fuzz targets link no test
 * framework. */
#ifndef VMD_TESTS_FUZZ_MACHINE_H
#define VMD_TESTS_FUZZ_MACHINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/cpu_state.h"
#include "vmm/device.h"
#include "vmm/machine.h"
#include "vmm/vm_config.h"

/* The single vCPU's state (the fake backend's register file). Global because the backend's
 * get_state/set_state callbacks receive only the vcpu; one fuzz machine per process. */
static struct cpu_state fuzz_cpu_state;

static inline int fuzz_get_state(struct vcpu *v, struct cpu_state *s) { (void)v; *s = fuzz_cpu_state; return 0; }
static inline int fuzz_set_state(struct vcpu *v, const struct cpu_state *s) { (void)v; fuzz_cpu_state = *s; return 0; }
static inline void fuzz_set_irq(struct machine *m, unsigned gsi, int level) { (void)m, (void)gsi, (void)level; }
static inline void fuzz_kick(struct vcpu *v) { (void)v; }
static inline void fuzz_console_out(void *opaque, const uint8_t *buf, size_t len) { (void)opaque, (void)buf, (void)len; }

static const struct cpu_backend_ops fuzz_backend = {.name = "fuzz",
                                                    .get_state = fuzz_get_state,
                                                    .set_state = fuzz_set_state,
                                                    .kick = fuzz_kick,
                                                    .set_irq = fuzz_set_irq,
                                                    .has_kernel_irqchip = false};

struct fuzz_machine {
    struct machine m;
    struct vm_config cfg;
    bool devices;
};

/* Build the machine with mem_bytes of RAM; with_devices runs devices_init_all. Returns 0 or
 * a negative errno (the fuzz target then skips its input). */
static inline int fuzz_machine_init(struct fuzz_machine *fm, uint64_t mem_bytes, bool with_devices)
{
    memset(fm, 0, sizeof(*fm));
    struct machine *m = &fm->m;
    vm_config_init(&fm->cfg);
    fm->cfg.memory_mib = mem_bytes >> 20;
    m->cfg = &fm->cfg;
    m->backend = &fuzz_backend;
    m->ncpus = 1;
    m->vcpus[0].m = m;
    m->vcpus[0].index = 0;
    atomic_init(&m->stop, MACHINE_RUNNING);
    m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m->stop_fd < 0) return -1;
    pthread_mutex_init(&m->dev_lock, NULL);
    bus_init(&m->pio);
    bus_init(&m->mmio);
    m->console_out = fuzz_console_out;
    int r = guest_mem_init(&m->mem, mem_bytes);
    if (r < 0) return r;
    if (with_devices) {
        char err[256];
        r = devices_init_all(m, err, sizeof(err));
        if (r < 0) return r;
        fm->devices = true;
    }
    return 0;
}

static inline void fuzz_machine_free(struct fuzz_machine *fm)
{
    struct machine *m = &fm->m;
    if (fm->devices) devices_destroy_all(m);
    guest_mem_free(&m->mem);
    bus_free(&m->pio);
    bus_free(&m->mmio);
    pthread_mutex_destroy(&m->dev_lock);
    close(m->stop_fd);
    vm_config_free(&fm->cfg);
}

/* A little reader over the fuzz input for targets that consume it piecewise. */
struct fuzz_input {
    const uint8_t *p;
    size_t len;
};

static inline uint64_t fuzz_take(struct fuzz_input *in, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes && in->len; i++, in->p++, in->len--) v |= (uint64_t)in->p[0] << (8 * i);
    return v;
}

/* Run an access script against the machine's devices: each 4-byte op picks a legacy port (or
 * a clock advance that runs due timers) and a value, the way a guest would poke them. */
static inline void fuzz_poke_devices(struct fuzz_machine *fm, struct fuzz_input *in, uint64_t *now_ns)
{
    static const uint16_t ports[] = {0x20,  0x21,  0xA0,  0xA1,  0x40,  0x41,  0x42,  0x43,  0x61,  0x60,
                                     0x64,  0x70,  0x71,  0x3F8, 0x3F9, 0x3FA, 0x3FB, 0x3FC, 0x3FD, 0x3FE,
                                     0x3FF, 0x3C0, 0x3C4, 0x3C5, 0x3CE, 0x3CF, 0x3D4, 0x3D5, 0x3DA, 0xCF8,
                                     0xCFC, 0x600, 0x604, 0x608, 0x80,  0x92,  0x3C8, 0x3C9, 0x4D0, 0x4D1,
                                     0x510, 0x511, 0x514, 0x518, 0x402};
    struct machine *m = &fm->m;
    for (unsigned n = 0; n < 256 && in->len >= 4; n++) {
        uint8_t op = (uint8_t)fuzz_take(in, 1);
        uint16_t port = (uint16_t)(ports[fuzz_take(in, 1) % (sizeof(ports) / sizeof(ports[0]))] + (op >> 5));
        uint64_t v = fuzz_take(in, 2);
        static const unsigned sizes[] = {1, 2, 4, 1};
        unsigned size = sizes[(op >> 1) & 3];
        switch (op & 0x19) {
        case 0x18: /* let time pass */
            *now_ns += v * 1000;
            pthread_mutex_lock(&m->dev_lock);
            timers_run(&m->timers, *now_ns);
            pthread_mutex_unlock(&m->dev_lock);
            break;
        case 0x01: case 0x09: case 0x11:
            machine_pio(m, port, &v, size, true);
            break;
        default:
            machine_pio(m, port, &v, size, false);
            break;
        }
    }
}

/* An in-memory file holding data, reachable by the returned path (/proc/self/fd/N), for code
 * that opens files by name. Returns the fd (close it when done) or -1. */
static inline int fuzz_memfile(const void *data, size_t len, char *path, size_t pathlen)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC);
    if (fd < 0) return -1;
    const uint8_t *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n <= 0) {
            close(fd);
            return -1;
        }
        p += n, len -= (size_t)n;
    }
    snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    return fd;
}

/* Write a seed input into dir (if dir is set and the file is absent), for targets that build
 * their valid seeds at runtime (scripts/run-fuzz.sh sets FUZZ_SEED_DIR to the corpus). */
static inline void fuzz_write_seed(const char *dir, const char *name, const void *data, size_t len)
{
    if (!dir || !*dir) return;
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (access(path, F_OK) == 0) return;
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, len, f);
    fclose(f);
}

#endif
