/* host_lifecycle: what vmd does to its VMs when vmd itself starts and stops (docs/operations.md
 * "Autostart and host shutdown").
 *
 * Start: every VM whose options.json says autostart and that has no worker (none was re-adopted)
 * is started as vm.start would start it, one transition each.
 *
 * Stop (SIGTERM, SIGINT): with keep_running_on_exit vmd exits at once and the workers run on, to
 * be re-adopted by the next vmd (an upgrade). Otherwise every VM with a worker is asked to shut
 * down through the worker's graceful stop (the ACPI power button and Ctrl-Alt-Del; the worker forces
 * the machine off after shutdown_timeout seconds), and vmd exits when no worker is left. Backstops:
 * SHUTDOWN_FORCE_AFTER_S past the timeout every worker left is told to stop at once, and
 * SHUTDOWN_KILL_AFTER_S past it killed; a second signal forces at once. Meanwhile calls that would
 * change a VM are refused (methods_dispatch), so nothing starts again.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/vmd.h"
#include "vmm/log.h"

#define SHUTDOWN_TICK_MS 100
#define SHUTDOWN_FORCE_AFTER_S 5
#define SHUTDOWN_KILL_AFTER_S 15

void host_autostart(struct vmd *d)
{
    for (struct vm_record *vm = d->vms; vm; vm = vm->next) {
        if (!vm_autostart(vm) || vm->state == VM_BROKEN || vm->op != VM_OP_NONE || supervisor_has_worker(vm)) continue;
        if (vm->state != VM_DEFINED && vm->state != VM_STOPPED && vm->state != VM_CRASHED) continue;
        unsigned long op = vm_op_begin(vm, VM_OP_START);
        vm->op_ends_on_state = true; /* the worker's first state report (or its end) ends the start */
        char err[512];
        if (supervisor_start(vm, err, sizeof(err))) {
            vm_op_end(vm, op);
            char reason[600];
            snprintf(reason, sizeof(reason), "autostart failed: %s", err);
            log_warn("%s: %s", vm->name, reason);
            vm_set_state(vm, vm->state, reason);
            continue;
        }
        log_info("%s: autostart", vm->name);
    }
}

/* A stop request in flight, by name (the record may go away meanwhile). */
struct stop_req {
    struct vmd *d;
    char name[64];
};

static void stop_answered(void *opaque, json_t *result, json_t *error)
{
    (void)result;
    struct stop_req *r = opaque;
    if (error)
        log_debug("%s: shutdown stop request: %s", r->name, json_string_value(json_object_get(error, "message")));
    free(r);
}

/* Ask every VM that has a worker to stop (force: at once). */
static unsigned stop_all(struct vmd *d, bool force)
{
    unsigned n = 0;
    for (struct vm_record *vm = d->vms; vm; vm = vm->next) {
        if (!supervisor_has_worker(vm)) continue;
        n++;
        if (!vm->worker || vm->worker->closing) {
            /* no connection to it (an adopted worker being reaped): its SIGTERM handler stops at once */
            if (vm->pid > 1) kill(vm->pid, SIGTERM);
            continue;
        }
        struct stop_req *r = calloc(1, sizeof(*r));
        if (!r) continue;
        r->d = d;
        snprintf(r->name, sizeof(r->name), "%s", vm->name);
        rpc_conn_call(vm->worker, "stop", json_pack("{s:b, s:i}", "force", force, "timeout", (int)d->shutdown_timeout_s),
                      stop_answered, r);
    }
    return n;
}

static void shutdown_tick(uv_timer_t *t)
{
    struct vmd *d = t->data;
    unsigned left = 0;
    for (struct vm_record *vm = d->vms; vm; vm = vm->next) left += supervisor_has_worker(vm);
    if (!left) {
        if (d->shutdown_had_vms) log_info("every VM is stopped: vmd exits");
        uv_timer_stop(t);
        uv_stop(d->loop);
        return;
    }
    uint64_t elapsed_ms = uv_now(d->loop) - d->shutdown_started_ms;
    if (!d->shutdown_forced && elapsed_ms > (uint64_t)(d->shutdown_timeout_s + SHUTDOWN_FORCE_AFTER_S) * 1000) {
        d->shutdown_forced = true;
        log_warn("%u VM(s) still running %u s after the shutdown request: stopping them now", left,
                 d->shutdown_timeout_s + SHUTDOWN_FORCE_AFTER_S);
        stop_all(d, true);
    }
    if (elapsed_ms > (uint64_t)(d->shutdown_timeout_s + SHUTDOWN_KILL_AFTER_S) * 1000) {
        for (struct vm_record *vm = d->vms; vm; vm = vm->next)
            if (supervisor_has_worker(vm) && vm->pid > 1) {
                log_error("%s: worker pid %d did not stop: killing it", vm->name, (int)vm->pid);
                kill(vm->pid, SIGKILL);
            }
        uv_timer_stop(t);
        uv_stop(d->loop);
    }
}

void host_shutdown(struct vmd *d, int sig)
{
    if (d->keep_running_on_exit) {
        log_info("%s: vmd exits; running VMs keep running (keep_running_on_exit): the next vmd re-adopts them",
                 strsignal(sig));
        sd_notify_send("STOPPING=1");
        uv_stop(d->loop);
        return;
    }
    if (d->shutting_down) {
        if (!d->shutdown_forced) {
            d->shutdown_forced = true;
            log_warn("%s again: stopping the VMs now", strsignal(sig));
            stop_all(d, true);
        }
        return;
    }
    d->shutting_down = true;
    sd_notify_send("STOPPING=1\nSTATUS=stopping the VMs");
    unsigned n = stop_all(d, false);
    if (!n) log_info("%s: no VM is running: vmd exits", strsignal(sig));
    else log_info("%s: vmd exits after its VMs: asking %u running VM(s) to shut down (ACPI power button, Ctrl-Alt-Del), "
             "forced off after %u s",
             strsignal(sig), n, d->shutdown_timeout_s);
    d->shutdown_had_vms = n > 0;
    d->shutdown_started_ms = uv_now(d->loop);
    uv_timer_init(d->loop, &d->shutdown_timer);
    d->shutdown_timer.data = d;
    uv_timer_start(&d->shutdown_timer, shutdown_tick, 0, SHUTDOWN_TICK_MS);
}
