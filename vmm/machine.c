/* machine: assembly of a VM (RAM, buses, devices, kernel, vCPUs) and its run loop. */
#include "machine.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "boot/boot.h"
#include "boot/firmware.h"
#include "device.h"
#include "log.h"

int machine_create(struct machine *m, const struct vm_config *cfg, const struct cpu_backend_ops *backend,
                   char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    m->cfg = cfg;
    m->backend = backend;
    m->ncpus = cfg->cpus;
    atomic_init(&m->stop, MACHINE_RUNNING);
    m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m->stop_fd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        return -errno;
    }
    pthread_mutex_init(&m->dev_lock, NULL);
    bus_init(&m->pio);
    bus_init(&m->mmio);

    int r = guest_mem_init(&m->mem, cfg->memory_mib << 20);
    if (r < 0) {
        snprintf(err, errlen, "guest memory (%llu MiB): %s", (unsigned long long)cfg->memory_mib, strerror(-r));
        goto fail_mem;
    }
    r = backend->init(m);
    if (r < 0) {
        snprintf(err, errlen, "%s backend: %s", backend->name, strerror(-r));
        goto fail_backend;
    }
    r = devices_init_all(m, err, errlen);
    if (r < 0) goto fail_devices;
    /* a ROM image (--firmware) instead of a kernel: the vCPU starts at the reset vector */
    r = cfg->firmware && !cfg->kernel ? boot_firmware_load(m, err, errlen) : boot_linux_load(m, err, errlen);
    if (r < 0) goto fail_boot;

    for (unsigned i = 0; i < m->ncpus; i++) {
        struct vcpu *v = &m->vcpus[i];
        v->m = m;
        v->index = i;
        r = backend->vcpu_init(v);
        if (r < 0) {
            snprintf(err, errlen, "vCPU %u: %s", i, strerror(-r));
            while (i-- > 0) backend->vcpu_destroy(&m->vcpus[i]);
            goto fail_boot;
        }
        struct cpu_state s;
        boot_cpu_state(m, i, &s);
        r = backend->set_state(v, &s);
        if (r < 0) {
            snprintf(err, errlen, "vCPU %u initial state: %s", i, strerror(-r));
            for (unsigned j = 0; j <= i; j++) backend->vcpu_destroy(&m->vcpus[j]);
            goto fail_boot;
        }
    }
    return 0;

fail_boot:
    boot_firmware_free(m);
    devices_destroy_all(m);
fail_devices:
    backend->destroy(m);
fail_backend:
    guest_mem_free(&m->mem);
fail_mem:
    bus_free(&m->pio);
    bus_free(&m->mmio);
    pthread_mutex_destroy(&m->dev_lock);
    close(m->stop_fd);
    return r;
}

void machine_destroy(struct machine *m)
{
    for (unsigned i = 0; i < m->ncpus; i++) m->backend->vcpu_destroy(&m->vcpus[i]);
    devices_destroy_all(m);
    boot_firmware_free(m);
    m->backend->destroy(m);
    guest_mem_free(&m->mem);
    bus_free(&m->pio);
    bus_free(&m->mmio);
    pthread_mutex_destroy(&m->dev_lock);
    close(m->stop_fd);
}

static void *vcpu_thread(void *arg)
{
    struct vcpu *v = arg;
    /* Signals are handled by the main thread; vCPU threads only see the backend's kick signal. */
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    v->exit = v->m->backend->vcpu_run(v);
    struct timespec ts;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
        atomic_store_explicit(&v->stats.cpu_ns_last, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec,
                              memory_order_relaxed);
    switch (v->exit) {
    case VCPU_EXIT_SHUTDOWN:
        machine_request_stop(v->m, MACHINE_STOP_RESET);
        break;
    case VCPU_EXIT_ERROR:
        machine_request_stop(v->m, MACHINE_STOP_ERROR);
        break;
    case VCPU_EXIT_STOP:
        break;
    }
    return NULL;
}

int machine_start(struct machine *m)
{
    for (m->started = 0; m->started < m->ncpus; m->started++) {
        int r = pthread_create(&m->vcpus[m->started].thread, NULL, vcpu_thread, &m->vcpus[m->started]);
        if (r != 0) {
            log_error("vCPU %u thread: %s", m->started, strerror(r));
            machine_request_stop(m, MACHINE_STOP_ERROR);
            return -r;
        }
    }
    return 0;
}

enum machine_stop machine_join(struct machine *m)
{
    for (unsigned i = 0; i < m->started; i++) {
        pthread_join(m->vcpus[i].thread, NULL);
        struct vcpu_stats *st = &m->vcpus[i].stats;
        st->cpu_ns_done += atomic_exchange_explicit(&st->cpu_ns_last, 0, memory_order_relaxed);
    }
    m->started = 0;
    return machine_stop_requested(m);
}

/* The CPU time of vCPU i's threads: the joined ones, plus the running one's so far (the clock of a
 * thread that has just ended may be gone: then the time it recorded on its way out). */
static uint64_t vcpu_cpu_ns(struct machine *m, unsigned i)
{
    struct vcpu_stats *st = &m->vcpus[i].stats;
    uint64_t ns = st->cpu_ns_done;
    if (i < m->started) {
        clockid_t clk;
        struct timespec ts;
        if (pthread_getcpuclockid(m->vcpus[i].thread, &clk) == 0 && clock_gettime(clk, &ts) == 0)
            ns += (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        else
            ns += atomic_load_explicit(&st->cpu_ns_last, memory_order_relaxed);
    }
    return ns;
}

void machine_totals_add(struct machine *m, struct machine_totals *t)
{
#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)
    for (unsigned i = 0; i < m->ncpus && i < MACHINE_MAX_CPUS; i++) {
        t->cpu_ns[i] += vcpu_cpu_ns(m, i);
        t->instructions[i] += LOAD(m->vcpus[i].stats.instructions);
        for (unsigned k = 0; k < VCPU_EXITS_KINDS; k++) t->exits[i][k] += LOAD(m->vcpus[i].stats.exits[k]);
    }
    const struct machine_io_stats *s = &m->io_stats;
    for (unsigned i = 0; i <= VM_SEED_DISK_INDEX; i++) {
        t->disk_read_bytes[i] += LOAD(s->disk_read_bytes[i]);
        t->disk_write_bytes[i] += LOAD(s->disk_write_bytes[i]);
        t->disk_read_ops[i] += LOAD(s->disk_read_ops[i]);
        t->disk_write_ops[i] += LOAD(s->disk_write_ops[i]);
        t->disk_flush_ops[i] += LOAD(s->disk_flush_ops[i]);
    }
    for (unsigned i = 0; i < VM_MAX_NETS; i++) {
        t->net_rx_bytes[i] += LOAD(s->net_rx_bytes[i]);
        t->net_tx_bytes[i] += LOAD(s->net_tx_bytes[i]);
        t->net_rx_packets[i] += LOAD(s->net_rx_packets[i]);
        t->net_tx_packets[i] += LOAD(s->net_tx_packets[i]);
        t->net_rx_dropped[i] += LOAD(s->net_rx_dropped[i]);
    }
#undef LOAD
}

int machine_resume(struct machine *m)
{
    uint64_t v;
    ssize_t r = read(m->stop_fd, &v, sizeof(v)); /* drain the eventfd (non-blocking) */
    (void)r;
    atomic_store(&m->stop, MACHINE_RUNNING);
    return machine_start(m);
}

void machine_request_stop(struct machine *m, enum machine_stop why)
{
    int cur = atomic_load(&m->stop);
    while ((int)why > cur && !atomic_compare_exchange_weak(&m->stop, &cur, (int)why)) {
    }
    for (unsigned i = 0; i < m->ncpus; i++)
        if (m->vcpus[i].m) m->backend->kick(&m->vcpus[i]);
    uint64_t one = 1;
    ssize_t w = write(m->stop_fd, &one, sizeof(one));
    (void)w;
}

void machine_set_a20(struct machine *m, unsigned source, bool enabled)
{
    bool was = machine_a20_enabled(m);
    if (enabled) atomic_fetch_and(&m->a20_off, ~source);
    else atomic_fetch_or(&m->a20_off, source);
    if (machine_a20_enabled(m) != was) atomic_fetch_add(&m->a20_gen, 1);
}

void machine_pio(struct machine *m, uint16_t port, uint64_t *data, unsigned size, bool is_write)
{
    pthread_mutex_lock(&m->dev_lock);
    bool claimed = bus_access(&m->pio, port, data, size, is_write);
    pthread_mutex_unlock(&m->dev_lock);
    if (!claimed && log_get_level() >= LOG_DEBUG)
        log_debug("unclaimed port %s 0x%x size %u", is_write ? "write" : "read", port, size);
}

bool machine_mmio(struct machine *m, uint64_t addr, uint64_t *data, unsigned size, bool is_write)
{
    pthread_mutex_lock(&m->dev_lock);
    bool claimed = bus_access(&m->mmio, addr, data, size, is_write);
    pthread_mutex_unlock(&m->dev_lock);
    return claimed;
}

void machine_set_irq(struct machine *m, unsigned gsi, int level)
{
    if (gsi >= MACHINE_NUM_GSI) return;
    m->backend->set_irq(m, gsi, level);
}

void machine_send_msi(struct machine *m, uint64_t addr, uint32_t data)
{
    if (!m->backend->send_msi) return;
    /* Only the LAPIC's window takes MSIs; anything else is a guest programming error. */
    if ((addr >> 20) != 0xFEE) {
        log_debug("MSI to 0x%llx (not the local APIC window) dropped", (unsigned long long)addr);
        return;
    }
    m->backend->send_msi(m, addr, data);
}

void machine_pulse_irq(struct machine *m, unsigned gsi)
{
    machine_set_irq(m, gsi, 1);
    machine_set_irq(m, gsi, 0);
}

uint64_t machine_run_timers(struct machine *m)
{
    pthread_mutex_lock(&m->dev_lock);
    timers_run(&m->timers, clock_now_ns());
    uint64_t next = timers_next_deadline(&m->timers);
    pthread_mutex_unlock(&m->dev_lock);
    return next;
}

int machine_timer_poll_ms(struct machine *m, int max_ms)
{
    if (m->backend->runs_device_timers) return max_ms;
    uint64_t next = machine_run_timers(m);
    if (next == TIMER_NEVER) return max_ms;
    uint64_t now = clock_now_ns();
    if (next <= now) return 0;
    uint64_t ms = (next - now + 999999) / 1000000;
    return ms < (uint64_t)max_ms ? (int)ms : max_ms;
}

void machine_console_input(struct machine *m, const uint8_t *buf, size_t len)
{
    pthread_mutex_lock(&m->dev_lock);
    if (m->console_in) m->console_in(m->console_in_dev, buf, len);
    pthread_mutex_unlock(&m->dev_lock);
}
