/* kvm_rig: a device-less machine with one KVM vCPU for running test guests. */
#include "kvm_rig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "guest_builder.h"

static void done_port(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct kvm_rig *r = opaque;
    if (is_write) machine_request_stop(&r->m, MACHINE_STOP_POWEROFF);
    else *data = 0;
}

static void exc_port(void *opaque, uint64_t offset, uint64_t *data, unsigned size, bool is_write)
{
    struct kvm_rig *r = opaque;
    if (!is_write) {
        *data = ~0ULL;
        return;
    }
    r->exc_vector = (int)(*data & 0xff);
    machine_request_stop(&r->m, MACHINE_STOP_POWEROFF);
}

struct kvm_rig *kvm_rig_new(uint64_t ram, char *why, size_t whylen)
{
    if (ram < GB_MIN_RAM) {
        snprintf(why, whylen, "rig RAM must be at least %llu bytes", GB_MIN_RAM);
        return NULL;
    }
    int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "/dev/kvm: %s", strerror(errno));
        return NULL;
    }
    close(fd);
    struct kvm_rig *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(why, whylen, "out of memory");
        return NULL;
    }
    struct machine *m = &r->m;
    r->timeout_ms = 5000;
    r->exc_vector = -1;
    m->backend = &kvm_backend_ops;
    m->ncpus = 1;
    atomic_init(&m->stop, MACHINE_RUNNING);
    m->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_mutex_init(&m->dev_lock, NULL);
    bus_init(&m->pio);
    bus_init(&m->mmio);
    int e = guest_mem_init(&m->mem, ram);
    if (e == 0) e = guest_build_long_mode(&m->mem);
    if (e == 0) e = bus_register(&m->pio, RIG_DONE_PORT, 1, done_port, r, "rig-done");
    if (e == 0) e = bus_register(&m->pio, GB_EXC_PORT, 1, exc_port, r, "rig-exception");
    if (e == 0) e = bus_register(&m->mmio, RIG_DONE_MMIO, 0x1000, done_port, r, "rig-done");
    if (e < 0) {
        snprintf(why, whylen, "rig set-up: %s", strerror(-e));
        goto fail;
    }
    e = kvm_backend_ops.init(m);
    if (e < 0) {
        snprintf(why, whylen, "kvm backend init: %s", strerror(-e));
        goto fail;
    }
    m->vcpus[0].m = m;
    m->vcpus[0].index = 0;
    e = kvm_backend_ops.vcpu_init(&m->vcpus[0]);
    if (e < 0) {
        snprintf(why, whylen, "kvm vCPU init: %s", strerror(-e));
        m->vcpus[0].m = NULL;
        kvm_backend_ops.destroy(m);
        goto fail;
    }
    return r;
fail:
    guest_mem_free(&m->mem);
    bus_free(&m->pio);
    bus_free(&m->mmio);
    pthread_mutex_destroy(&m->dev_lock);
    if (m->stop_fd >= 0) close(m->stop_fd);
    free(r);
    return NULL;
}

void kvm_rig_free(struct kvm_rig *r)
{
    if (!r) return;
    struct machine *m = &r->m;
    for (unsigned i = 0; i < MACHINE_MAX_CPUS; i++) {
        if (!m->vcpus[i].m) continue;
        kvm_backend_ops.vcpu_destroy(&m->vcpus[i]);
        m->vcpus[i].m = NULL;
    }
    kvm_backend_ops.destroy(m);
    guest_mem_free(&m->mem);
    bus_free(&m->pio);
    bus_free(&m->mmio);
    pthread_mutex_destroy(&m->dev_lock);
    close(m->stop_fd);
    free(r);
}

struct watchdog {
    struct kvm_rig *rig;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void *watchdog_thread(void *arg)
{
    struct watchdog *w = arg;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += w->rig->timeout_ms / 1000;
    dl.tv_nsec += (long)(w->rig->timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    int rc = 0;
    while (!w->done && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&w->cond, &w->lock, &dl);
    bool fire = !w->done;
    pthread_mutex_unlock(&w->lock);
    if (fire) machine_request_stop(&w->rig->m, MACHINE_STOP_KILL);
    return NULL;
}

enum vcpu_exit kvm_rig_run(struct kvm_rig *r, const struct cpu_state *s, enum machine_stop *stop)
{
    return kvm_rig_run_vcpu(r, 0, s, stop);
}

enum vcpu_exit kvm_rig_run_vcpu(struct kvm_rig *r, unsigned index, const struct cpu_state *s, enum machine_stop *stop)
{
    struct machine *m = &r->m;
    if (index >= m->ncpus) return VCPU_EXIT_ERROR;
    struct vcpu *v = &m->vcpus[index];
    r->exc_vector = -1;
    if (s && kvm_backend_ops.set_state(v, s) < 0) return VCPU_EXIT_ERROR;

    struct watchdog w = {.rig = r, .done = false};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    pthread_t wt;
    bool have_wd = r->timeout_ms > 0 && pthread_create(&wt, NULL, watchdog_thread, &w) == 0;

    enum vcpu_exit ex = kvm_backend_ops.vcpu_run(v);

    if (have_wd) {
        pthread_mutex_lock(&w.lock);
        w.done = true;
        pthread_cond_signal(&w.cond);
        pthread_mutex_unlock(&w.lock);
        pthread_join(wt, NULL);
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    if (stop) *stop = machine_stop_requested(m);
    atomic_store(&m->stop, MACHINE_RUNNING);
    uint64_t cnt;
    while (read(m->stop_fd, &cnt, sizeof(cnt)) > 0) {
    }
    return ex;
}

int kvm_rig_add_vcpu(struct kvm_rig *r)
{
    struct machine *m = &r->m;
    if (m->ncpus >= MACHINE_MAX_CPUS) return -ENOSPC;
    struct vcpu *v = &m->vcpus[m->ncpus];
    v->m = m;
    v->index = m->ncpus;
    int e = kvm_backend_ops.vcpu_init(v);
    if (e < 0) {
        v->m = NULL;
        return e;
    }
    m->ncpus++;
    return (int)v->index;
}
