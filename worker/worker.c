/* vmd-worker: runs one daemon-managed VM.
 *
 *   vmd-worker --state-dir DIR --name NAME [--control-fd FD] [--sandbox UID:GID [--jail DIR]]
 *              [--vnc-tls-cert F --vnc-tls-key F] [--verbose]
 *
 * Works in DIR/vms/NAME (its cwd; every file below is reached relative to it). Reads config.json,
 * creates and starts the machine (with the cloud-init seed vmd wrote there, cidata.iso, when the
 * definition has cloud_init), and serves JSON-RPC to
 * vmd on the inherited socketpair (--control-fd) and on DIR/vms/NAME/worker.sock, which a
 * restarted vmd reconnects to. Its pid is in worker.pid. Serial output goes to console.log
 * (rotated) and to live viewers. The worker runs in its own session, so it outlives vmd.
 *
 * Methods (vmd -> worker): status, stats, stop {force, timeout}, pause, resume, reboot,
 * console.subscribe {on}, console.input {data (base64)}, snapshot {dir}, restore {dir}.
 * Notifications (worker -> vmd): state_changed {state, reason, started_at, pid}, console.output {data},
 * snapshot.progress {op, percent}.
 * If DIR/vms/NAME/restore-from names a snapshot directory, the machine starts from that snapshot
 * (the file is consumed).
 * With --sandbox, before any guest code runs the worker opens what the VM needs and confines
 * itself (vmm/sandbox.h): uid:gid, no capabilities, no_new_privs and, with --jail (an empty
 * directory to mount its new root on), its own mount namespace in which only DIR/vms/NAME is
 * visible, as /vm. Snapshot directories must then lie inside DIR/vms/NAME.
 * Exit status: 0 after a clean stop, 1 after a failure (the last state_changed says why).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "devices/acpi_pm.h"
#include "devices/i8042.h"
#include "rpc/jsonrpc.h"
#include "rpc/rpc_conn.h"
#include "store/cloud_init_seed.h"
#include "store/vm_store.h"
#include "vmm/cpu_backend.h"
#include "vmm/log.h"
#include "vmm/machine.h"
#include "vmm/sandbox.h"
#include "vmm/snapshot.h"
#include "vmm/vm_config_json.h"
#include "worker/console_log.h"
#include "vnc/vnc.h"
#include "vmm/vm_run.h"

#define MAX_CONNS 8

/* The worker's one VM and its loop; a process runs exactly one, so it is a single static object. */
static struct worker {
    uv_loop_t *loop;
    const char *state_dir, *name;
    char vm_dir[4096]; /* absolute, as vmd names it; the worker's cwd */
    const char *sock_path, *pid_path; /* relative to vm_dir */
    bool sandboxed;
    struct sandbox_opts sandbox;
    struct vm_config cfg;
    struct vm_run run; /* the VM's machine (vmm/vm_run.h) */
    uv_poll_t *stop_poll;
    enum vm_state state;
    char reason[512];
    time_t started_at;
    struct console_log console;
    uv_async_t console_async;
    struct rpc_conn *conns[MAX_CONNS];
    struct rpc_conn *console_watchers[MAX_CONNS];
    struct rpc_listener listener;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t stop_timer, exit_timer;
    uv_timer_t dev_timer; /* runs device timers for backends that don't (kvm) */
    bool stopping, stop_forced, stop_timed_out, pause_requested, reboot_requested, exiting;
    int stop_timeout_s;
    int exit_code;
    int exit_status;        /* the guest's own exit status (isa-debug-exit), -1 without one */
    int progress_percent;   /* last snapshot.progress sent */
    struct machine_totals past; /* the counters of the machines torn down (a reboot builds a new one) */
} W;


static void broadcast(const char *method, json_t *params)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (W.conns[i]) rpc_conn_notify(W.conns[i], method, json_incref(params));
    json_decref(params);
}

static json_t *status_json(void);

/* status.json in the VM's directory (the cwd: reachable inside the sandbox too), as
 * vm_store_write_status writes it. */
static int write_status(enum vm_state s, const char *reason)
{
    json_t *j = json_pack("{s:s, s:s, s:i, s:I}", "state", vm_state_name(s), "reason", reason ? reason : "", "pid",
                          (int)getpid(), "since", (json_int_t)time(NULL));
    if (j && W.exit_status >= 0) json_object_set_new(j, "exit_status", json_integer(W.exit_status));
    int r = j ? vm_store_write_json("status.json", j) : -ENOMEM;
    json_decref(j);
    return r;
}

/* A snapshot path vmd sent (absolute, inside STATE_DIR/vms/NAME) as the worker reaches it:
 * relative to its directory. Elsewhere: unchanged unconfined, NULL (refused) in a sandbox. */
static const char *vm_relative(const char *path)
{
    size_t n = strlen(W.vm_dir);
    if (!strncmp(path, W.vm_dir, n) && path[n] == '/' && path[n + 1]) return path + n + 1;
    return W.sandboxed ? NULL : path;
}

static void set_state(enum vm_state s, const char *reason)
{
    W.state = s;
    snprintf(W.reason, sizeof(W.reason), "%s", reason);
    log_info("%s: %s (%s)", W.name, vm_state_name(s), reason);
    int r = write_status(s, reason);
    if (r) log_warn("%s: writing status.json: %s", W.name, strerror(-r));
    broadcast("state_changed", status_json());
}

static void exit_timer_cb(uv_timer_t *t) { uv_stop(t->loop); }

/* The VM is over: tell vmd, flush, and leave the loop shortly after. */
static void finish(enum vm_state final, const char *reason, int code)
{
    if (W.exiting) return;
    W.exiting = true;
    W.exit_code = code;
    set_state(final, reason);
    unlink(W.sock_path);
    unlink(W.pid_path);
    rpc_listener_close(&W.listener);
    for (int i = 0; i < MAX_CONNS; i++)
        if (W.conns[i]) rpc_conn_close_after_flush(W.conns[i]);
    uv_timer_start(&W.exit_timer, exit_timer_cb, 300, 0);
}

static void console_out(void *opaque, const uint8_t *buf, size_t len)
{
    (void)opaque;
    console_log_write(&W.console, buf, len);
}

static void console_wake(void *opaque)
{
    (void)opaque;
    uv_async_send(&W.console_async);
}

static void console_async_cb(uv_async_t *a)
{
    (void)a;
    size_t len;
    uint8_t *data = console_log_take_live(&W.console, &len);
    if (!data) return;
    char *b64 = rpc_base64_encode(data, len);
    free(data);
    if (!b64) return;
    for (int i = 0; i < MAX_CONNS; i++)
        if (W.console_watchers[i]) rpc_conn_notify(W.console_watchers[i], "console.output", json_pack("{s:s}", "data", b64));
    free(b64);
}

static void update_watching(void)
{
    int n = 0;
    for (int i = 0; i < MAX_CONNS; i++) n += W.console_watchers[i] != NULL;
    console_log_set_watching(&W.console, n);
}

/* ---- the machine ---- */

static void on_stop_fd(uv_poll_t *p, int status, int events);

static void poll_closed(uv_handle_t *h) { free(h); }

/* Device timers (RTC, PIT when modelled) for backends whose vCPU threads don't run them:
 * re-armed for the next deadline, at least once a second. */
static void on_dev_timer(uv_timer_t *t)
{
    if (!W.run.live) return;
    int ms = machine_timer_poll_ms(&W.run.m, 1000);
    uv_timer_start(t, on_dev_timer, (uint64_t)ms, 0);
}

static void machine_teardown(void)
{
    uv_timer_stop(&W.dev_timer);
    if (W.run.live) machine_totals_add(&W.run.m, &W.past); /* its vCPU threads are joined */
    if (W.stop_poll) {
        uv_poll_stop(W.stop_poll);
        uv_close((uv_handle_t *)W.stop_poll, poll_closed);
        W.stop_poll = NULL;
    }
    vm_run_teardown(&W.run);
}

static void snapshot_progress(void *opaque, uint64_t done, uint64_t total)
{
    const char *op = opaque;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct == W.progress_percent) return;
    W.progress_percent = pct;
    broadcast("snapshot.progress", json_pack("{s:s, s:i}", "op", op, "percent", pct));
}

static int machine_bringup(char *err, size_t errlen)
{
    W.progress_percent = -1;
    int r = vm_run_bringup(&W.run, err, errlen);
    if (r) return r;
    W.stop_poll = malloc(sizeof(*W.stop_poll));
    if (!W.stop_poll || uv_poll_init(W.loop, W.stop_poll, W.run.m.stop_fd) < 0) {
        free(W.stop_poll);
        W.stop_poll = NULL;
        machine_request_stop(&W.run.m, MACHINE_STOP_KILL);
        machine_join(&W.run.m);
        snprintf(err, errlen, "cannot watch the machine's stop eventfd");
        return -EIO;
    }
    uv_poll_start(W.stop_poll, UV_READABLE, on_stop_fd);
    if (!W.run.backend->runs_device_timers) uv_timer_start(&W.dev_timer, on_dev_timer, 0, 0);
    return 0;
}

static void on_stop_fd(uv_poll_t *p, int status, int events)
{
    (void)p;
    (void)status;
    (void)events;
    uint64_t v;
    ssize_t rd = read(W.run.m.stop_fd, &v, sizeof(v)); /* level-triggered poll: drain the eventfd */
    (void)rd;
    enum machine_stop why = machine_join(&W.run.m);
    uv_timer_stop(&W.stop_timer);
    if (why == MACHINE_STOP_PAUSE && W.pause_requested && !W.stopping) {
        W.pause_requested = false;
        set_state(VM_PAUSED, "paused by request");
        return;
    }
    bool pause_lost = W.pause_requested; /* a guest reset won the race with a pause request */
    W.pause_requested = false;
    char err[512];
    if (vm_run_reboots(why, W.stopping)) {
        bool asked = W.reboot_requested;
        W.reboot_requested = false;
        machine_teardown();
        if (machine_bringup(err, sizeof(err))) {
            machine_teardown();
            char reason[600];
            snprintf(reason, sizeof(reason), "reboot failed: %s", err);
            finish(VM_CRASHED, reason, 1);
            return;
        }
        W.started_at = time(NULL);
        set_state(VM_RUNNING, asked ? "rebooted by request" : "guest reset: rebooted");
        if (pause_lost) { /* vmd waits for "paused": pause the rebooted machine */
            W.pause_requested = true;
            machine_request_stop(&W.run.m, MACHINE_STOP_PAUSE);
        }
        return;
    }
    int guest_status = W.run.live ? W.run.m.guest_exit_status : 0;
    machine_teardown();
    switch (why) {
    case MACHINE_STOP_POWEROFF: finish(VM_STOPPED, "guest powered off", 0); break;
    case MACHINE_STOP_PANIC: finish(VM_CRASHED, "guest kernel panicked", 0); break;
    case MACHINE_STOP_GUEST_EXIT: {
        char reason[128];
        snprintf(reason, sizeof(reason), "guest exited with status %d (isa-debug-exit)", guest_status);
        W.exit_status = guest_status;
        finish(VM_STOPPED, reason, 0);
        break;
    }
    case MACHINE_STOP_RESET: finish(VM_STOPPED, "guest shut down (reset after the stop request)", 0); break;
    case MACHINE_STOP_KILL: {
        char reason[128];
        if (W.stop_timed_out)
            snprintf(reason, sizeof(reason), "stopped by request: the guest did not shut down within %d s, forced off",
                     W.stop_timeout_s);
        else
            snprintf(reason, sizeof(reason), "%s", W.stop_forced ? "stopped by request (forced)" : "stopped by request");
        finish(VM_STOPPED, reason, 0);
        break;
    }
    case MACHINE_STOP_ERROR: finish(VM_CRASHED, "the CPU backend or a device failed (see the worker log)", 1); break;
    default: finish(VM_STOPPED, "stopped", 0); break;
    }
}

static void stop_timeout_cb(uv_timer_t *t)
{
    (void)t;
    log_warn("%s: guest did not stop within %d s: forcing", W.name, W.stop_timeout_s);
    W.stop_forced = true;
    W.stop_timed_out = true;
    if (W.run.live) machine_request_stop(&W.run.m, MACHINE_STOP_KILL);
}

/* Ask the guest to shut down: Ctrl-Alt-Del on the keyboard controller and the ACPI power button. */
static bool inject_shutdown(void)
{
    bool sent = false;
    struct machine *m = &W.run.m;
    pthread_mutex_lock(&m->dev_lock);
    if (m->i8042) {
        i8042_ctrl_alt_del(m->i8042);
        sent = true;
    }
    if (m->acpi_pm) {
        acpi_pm_power_button(m->acpi_pm);
        sent = true;
    }
    pthread_mutex_unlock(&m->dev_lock);
    return sent;
}

static int do_stop(bool force, int timeout_s, char *err, size_t errlen)
{
    if (!W.run.live) {
        snprintf(err, errlen, "the VM is not running");
        return -EINVAL;
    }
    W.stopping = true;
    if (W.state == VM_PAUSED) { /* the machine's threads are gone: finish right here */
        W.stop_forced = force;
        machine_request_stop(&W.run.m, MACHINE_STOP_KILL);
        machine_teardown();
        finish(VM_STOPPED, force ? "stopped by request (forced, was paused)" : "stopped by request (was paused)", 0);
        return 0;
    }
    if (force) {
        W.stop_forced = true;
        machine_request_stop(&W.run.m, MACHINE_STOP_KILL);
        return 0;
    }
    W.stop_timeout_s = timeout_s;
    if (!inject_shutdown()) log_warn("%s: no keyboard controller or ACPI power button to ask the guest; waiting %d s before forcing", W.name, timeout_s);
    uv_timer_start(&W.stop_timer, stop_timeout_cb, (uint64_t)timeout_s * 1000, 0);
    return 0;
}

/* ---- JSON-RPC from vmd ---- */

static json_t *status_json(void)
{
    json_t *j = json_pack("{s:s, s:s, s:i, s:I, s:s, s:s?, s:I, s:i}", "state", vm_state_name(W.state), "reason", W.reason,
                     "pid", (int)getpid(), "started_at", (json_int_t)W.started_at, "accel",
                     W.run.backend ? W.run.backend->name : "none", "vnc",
                     W.run.live && W.run.m.vnc ? vnc_address(W.run.m.vnc) : W.cfg.vnc, "memory_mib", (json_int_t)W.cfg.memory_mib,
                     "vcpus", (int)W.cfg.cpus);
    if (j && W.exit_status >= 0) json_object_set_new(j, "exit_status", json_integer(W.exit_status));
    return j;
}

/* stats: the VM's counters since the worker started (docs/worker-protocol.md). */
static json_t *stats_json(void)
{
    struct machine_totals t = W.past;
    if (W.run.live) machine_totals_add(&W.run.m, &t);
    static const char *const exit_names[VCPU_EXITS_KINDS] = {"io", "mmio", "intr", "other"};
    json_t *vcpus = json_array(), *disks = json_array(), *nets = json_array();
    for (unsigned i = 0; i < W.cfg.cpus && i < MACHINE_MAX_CPUS; i++) {
        json_t *exits = json_object();
        for (unsigned k = 0; k < VCPU_EXITS_KINDS; k++) json_object_set_new(exits, exit_names[k], json_integer((json_int_t)t.exits[i][k]));
        json_array_append_new(vcpus, json_pack("{s:I, s:I, s:o}", "cpu_ns", (json_int_t)t.cpu_ns[i], "instructions",
                                               (json_int_t)t.instructions[i], "exits", exits));
    }
    for (unsigned i = 0; i < W.cfg.ndisks && i < VM_MAX_DISKS; i++)
        json_array_append_new(disks, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "path", W.cfg.disks[i].path, "read_bytes",
                                               (json_int_t)t.disk_read_bytes[i], "write_bytes", (json_int_t)t.disk_write_bytes[i],
                                               "read_ops", (json_int_t)t.disk_read_ops[i], "write_ops",
                                               (json_int_t)t.disk_write_ops[i], "flush_ops", (json_int_t)t.disk_flush_ops[i]));
    for (unsigned i = 0; i < W.cfg.nnets && i < VM_MAX_NETS; i++)
        json_array_append_new(nets, json_pack("{s:I, s:I, s:I, s:I, s:I}", "rx_bytes", (json_int_t)t.net_rx_bytes[i], "tx_bytes",
                                              (json_int_t)t.net_tx_bytes[i], "rx_packets", (json_int_t)t.net_rx_packets[i],
                                              "tx_packets", (json_int_t)t.net_tx_packets[i], "rx_dropped",
                                              (json_int_t)t.net_rx_dropped[i]));
    return json_pack("{s:s, s:I, s:o, s:o, s:o}", "accel", W.run.backend ? W.run.backend->name : "none", "started_at",
                     (json_int_t)W.started_at, "vcpus", vcpus, "disks", disks, "nets", nets);
}

/* Pause the vCPUs for a snapshot or restore. Returns false (call answered) if the machine stopped
 * for another reason meanwhile: that stop is then handled by on_stop_fd as usual. */
static bool pause_for_snapshot(struct rpc_call *c)
{
    enum machine_stop why = vm_run_pause(&W.run);
    if (why != MACHINE_STOP_PAUSE) {
        rpc_call_errorf(c, RPC_ERR_WRONG_STATE, "the VM stopped (%d) while pausing for the snapshot", (int)why);
        return false;
    }
    return true;
}

/* snapshot {dir} / restore {dir}: runs on the loop thread with the vCPUs paused; a running VM
 * resumes afterwards (the eventfd written by the pause is drained by machine_resume). */
static void snapshot_call(struct rpc_call *c, json_t *p)
{
    const char *dir = json_string_value(json_object_get(p, "dir"));
    bool save = !strcmp(c->method, "snapshot");
    char err[1024];
    if (!dir) {
        rpc_call_error(c, RPC_INVALID_PARAMS, "Invalid params: 'dir' is required", json_pack("{s:s}", "field", "dir"));
        return;
    }
    const char *sent = dir;
    if (!(dir = vm_relative(sent))) {
        rpc_call_error(c, RPC_INVALID_PARAMS, "Invalid params: a sandboxed worker reaches only its VM's directory",
                       json_pack("{s:s}", "dir", sent));
        return;
    }
    if (!W.run.live || (W.state != VM_RUNNING && W.state != VM_PAUSED) || W.stopping || W.pause_requested ||
        W.reboot_requested) {
        rpc_call_errorf(c, RPC_ERR_WRONG_STATE, "the VM is %s%s", vm_state_name(W.state), W.stopping ? " (stopping)" : "");
        return;
    }
    if (!save) { /* refuse a bad snapshot before touching anything */
        bool apic;
        int r = vm_run_check_snapshot(&W.run, dir, &apic, err, sizeof(err));
        if (r) {
            rpc_call_error(c, RPC_ERR_SNAPSHOT_INVALID, err, json_pack("{s:s}", "dir", sent));
            return;
        }
    }
    bool was_running = W.state == VM_RUNNING;
    if (was_running && !pause_for_snapshot(c)) return;
    W.progress_percent = -1;
    json_t *meta = NULL;
    int r;
    W.run.progress_opaque = save ? "snapshot" : "restore";
    if (save) r = vm_run_save(&W.run, dir, was_running ? "running" : "paused", &meta, err, sizeof(err));
    else r = vm_run_restore_now(&W.run, dir, err, sizeof(err));
    if (was_running) {
        int rr = machine_resume(&W.run.m);
        if (rr) log_error("%s: resume after %s: %s", W.name, c->method, strerror(-rr));
    }
    if (r) {
        log_warn("%s: %s: %s", W.name, c->method, err);
        rpc_call_error(c, save ? RPC_ERR_STORAGE : RPC_ERR_SNAPSHOT_INVALID, err, json_pack("{s:s}", "dir", sent));
        return;
    }
    log_info("%s: %s %s", W.name, save ? "snapshot saved to" : "restored from", sent);
    if (!save) meta = json_pack("{s:s}", "dir", sent);
    json_object_set_new(meta, "state", json_string(vm_state_name(W.state)));
    rpc_call_result(c, meta);
}

static void dispatch(void *ctx, struct rpc_call *c)
{
    struct rpc_conn *conn = ctx;
    json_t *p = json_is_object(c->params) ? c->params : NULL;
    char err[256];
    if (W.exiting && strcmp(c->method, "status")) {
        rpc_call_error(c, RPC_ERR_WRONG_STATE, "the VM is shutting down", NULL);
    } else if (!strcmp(c->method, "status")) {
        rpc_call_result(c, status_json());
    } else if (!strcmp(c->method, "stats")) {
        rpc_call_result(c, stats_json());
    } else if (!strcmp(c->method, "stop")) {
        bool force = json_is_true(json_object_get(p, "force"));
        json_t *t = json_object_get(p, "timeout");
        int timeout = json_is_integer(t) ? (int)json_integer_value(t) : 30;
        if (timeout < 1) timeout = 1;
        if (do_stop(force, timeout, err, sizeof(err))) rpc_call_error(c, RPC_ERR_WRONG_STATE, err, NULL);
        else rpc_call_result(c, json_pack("{s:b}", "accepted", 1));
    } else if (!strcmp(c->method, "pause")) {
        if (W.state != VM_RUNNING || W.stopping || W.reboot_requested) {
            rpc_call_errorf(c, RPC_ERR_WRONG_STATE, "the VM is %s",
                            W.reboot_requested ? "rebooting" : W.stopping ? "stopping" : vm_state_name(W.state));
            return;
        }
        W.pause_requested = true;
        machine_request_stop(&W.run.m, MACHINE_STOP_PAUSE);
        rpc_call_result(c, json_pack("{s:b}", "accepted", 1));
    } else if (!strcmp(c->method, "resume")) {
        if (W.state != VM_PAUSED) {
            rpc_call_errorf(c, RPC_ERR_WRONG_STATE, "the VM is %s, not paused", vm_state_name(W.state));
            return;
        }
        int r = machine_resume(&W.run.m);
        if (r) {
            rpc_call_errorf(c, RPC_ERR_WORKER, "resume: %s", strerror(-r));
            return;
        }
        set_state(VM_RUNNING, "resumed by request");
        rpc_call_result(c, json_pack("{s:b}", "accepted", 1));
    } else if (!strcmp(c->method, "reboot")) {
        if (W.state != VM_RUNNING || W.stopping) {
            rpc_call_errorf(c, RPC_ERR_WRONG_STATE, "the VM is %s, not running", vm_state_name(W.state));
            return;
        }
        W.reboot_requested = true;
        machine_request_stop(&W.run.m, MACHINE_STOP_RESET);
        rpc_call_result(c, json_pack("{s:b}", "accepted", 1));
    } else if (!strcmp(c->method, "snapshot") || !strcmp(c->method, "restore")) {
        snapshot_call(c, p);
    } else if (!strcmp(c->method, "console.subscribe")) {
        bool on = !json_is_false(json_object_get(p, "on"));
        for (int i = 0; i < MAX_CONNS; i++)
            if (W.console_watchers[i] == conn) W.console_watchers[i] = NULL;
        if (on)
            for (int i = 0; i < MAX_CONNS; i++)
                if (!W.console_watchers[i]) {
                    W.console_watchers[i] = conn;
                    break;
                }
        update_watching();
        rpc_call_result(c, json_pack("{s:b}", "on", on));
    } else if (!strcmp(c->method, "console.input")) {
        const char *b64 = json_string_value(json_object_get(p, "data"));
        size_t len;
        uint8_t *data = b64 ? rpc_base64_decode(b64, &len) : NULL;
        if (!data) {
            rpc_call_error(c, RPC_INVALID_PARAMS, "Invalid params: 'data' must be base64", json_pack("{s:s}", "field", "data"));
            return;
        }
        if (W.run.live && len) machine_console_input(&W.run.m, data, len);
        free(data);
        rpc_call_result(c, json_pack("{s:b}", "accepted", 1));
    } else {
        rpc_call_errorf(c, RPC_METHOD_NOT_FOUND, "Method not found: '%s'", c->method);
    }
}

static void conn_message(struct rpc_conn *c, const char *msg, size_t len)
{
    rpc_handle_message(msg, len, dispatch, c, &c->sink);
}

static void conn_close(struct rpc_conn *c)
{
    for (int i = 0; i < MAX_CONNS; i++) {
        if (W.conns[i] == c) W.conns[i] = NULL;
        if (W.console_watchers[i] == c) W.console_watchers[i] = NULL;
    }
    update_watching();
    log_debug("%s: vmd disconnected (%s)", W.name, c->peer);
}

static const struct rpc_conn_ops conn_ops = {.on_message = conn_message, .on_close = conn_close};

static bool add_conn(struct rpc_conn *c)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (!W.conns[i]) {
            W.conns[i] = c;
            return true;
        }
    log_warn("%s: refusing connection: already %d", W.name, MAX_CONNS);
    return false;
}

static bool on_accept(struct rpc_listener *l, struct rpc_conn *c)
{
    (void)l;
    /* Only the user running the worker (or root) may control it. */
    if (c->has_cred && c->uid != 0 && c->uid != geteuid()) {
        log_warn("%s: refusing %s: not uid %u", W.name, c->peer, (unsigned)geteuid());
        return false;
    }
    log_info("%s: vmd connected (%s)", W.name, c->peer);
    return add_conn(c);
}

static void on_signal(uv_signal_t *s, int sig)
{
    (void)s;
    if (sig == SIGHUP) return; /* a closed terminal must not end the VM */
    log_info("%s: %s: stopping the VM", W.name, strsignal(sig));
    char err[128];
    if (W.run.live) do_stop(true, 1, err, sizeof(err));
    else finish(VM_STOPPED, "worker terminated by signal", 0);
}

static int write_pid_file(void)
{
    char tmp[4200], text[32];
    snprintf(tmp, sizeof(tmp), "%s.tmp", W.pid_path);
    int n = snprintf(text, sizeof(text), "%d\n", (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return -errno;
    fwrite(text, 1, (size_t)n, f);
    fflush(f);
    fsync(fileno(f));
    fclose(f);
    return rename(tmp, W.pid_path) < 0 ? -errno : 0;
}

/* Open what the VM needs, then confine the worker (--sandbox), before any guest code runs. */
static int confine(char *err, size_t errlen)
{
    if (!W.sandboxed) return 0;
    int r = sandbox_preopen(&W.cfg, W.run.backend->name, err, errlen);
    if (!r) r = sandbox_enter(&W.sandbox, err, errlen);
    return r;
}

#ifdef VMD_TEST_HOOKS
/* Test builds only (BUILD=asan): VMD_TEST_SECCOMP_VIOLATION=NAME makes NAME's worker call
 * keyctl(2), which the seccomp filter forbids, a second after the VM started
 * (test_worker_seccomp.sh checks that it dies and vmd reports why). */
static uv_timer_t violation_timer;
static void violation_cb(uv_timer_t *t)
{
    (void)t;
    log_warn("%s: test hook: calling keyctl(2), which the sandbox forbids", W.name);
    syscall(SYS_keyctl, 0, 0, 0, 0, 0);
}
static void test_hooks_arm(void)
{
    const char *v = getenv("VMD_TEST_SECCOMP_VIOLATION");
    if (!v || strcmp(v, W.name)) return;
    uv_timer_init(W.loop, &violation_timer);
    uv_timer_start(&violation_timer, violation_cb, 1000, 0);
}
#else
static void test_hooks_arm(void) {}
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: vmd-worker --state-dir DIR --name NAME [--control-fd FD] [--sandbox UID:GID [--jail DIR]]\n"
               "                  [--vnc-tls-cert F --vnc-tls-key F] [--verbose]\n"
               "Runs one VM for vmd; not meant to be started by hand.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"state-dir", required_argument, 0, 's'}, {"name", required_argument, 0, 'n'},
        {"control-fd", required_argument, 0, 'c'}, {"verbose", no_argument, 0, 'v'},
        {"vnc-tls-cert", required_argument, 0, 'C'}, {"vnc-tls-key", required_argument, 0, 'K'},
        {"sandbox", required_argument, 0, 'S'}, {"jail", required_argument, 0, 'J'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    int control_fd = -1, c;
    W.exit_status = -1;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 's': W.state_dir = optarg; break;
        case 'n': W.name = optarg; break;
        case 'c': control_fd = atoi(optarg); break;
        /* vmd's certificate: the VNC console offers TLS with it (vnc/vnc_console.c reads these) */
        case 'C': setenv("VMD_VNC_TLS_CERT", optarg, 1); break;
        case 'K': setenv("VMD_VNC_TLS_KEY", optarg, 1); break;
        case 'S': {
            unsigned u, g;
            char end;
            if (sscanf(optarg, "%u:%u%c", &u, &g, &end) != 2) {
                fprintf(stderr, "vmd-worker: --sandbox '%s': expected UID:GID\n", optarg);
                return 2;
            }
            W.sandboxed = true;
            W.sandbox.seccomp = true;
            W.sandbox.uid = (uid_t)u;
            W.sandbox.gid = (gid_t)g;
            break;
        }
        case 'J': W.sandbox.jail_dir = optarg; break;
        case 'v': log_set_level(LOG_DEBUG); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!W.state_dir || !W.name) {
        usage(stderr);
        return 2;
    }
    char prefix[96], err[512];
    snprintf(prefix, sizeof(prefix), "vmd-worker %s", W.name);
    log_set_prefix(prefix);
    signal(SIGPIPE, SIG_IGN);
    if (vm_name_check(W.name, err, sizeof(err))) {
        log_error("%s", err);
        return 2;
    }
    vm_store_path(W.vm_dir, sizeof(W.vm_dir), W.state_dir, W.name, NULL);
    W.sock_path = "worker.sock";
    W.pid_path = "worker.pid";
    if (chdir(W.vm_dir) < 0) {
        log_error("%s: %s", W.vm_dir, strerror(errno));
        return 1;
    }

    W.loop = uv_default_loop();
    uv_timer_init(W.loop, &W.stop_timer);
    uv_timer_init(W.loop, &W.exit_timer);
    uv_timer_init(W.loop, &W.dev_timer);
    uv_signal_init(W.loop, &W.sigterm);
    uv_signal_init(W.loop, &W.sigint);
    uv_signal_init(W.loop, &W.sighup);
    uv_signal_start(&W.sigterm, on_signal, SIGTERM);
    uv_signal_start(&W.sigint, on_signal, SIGINT);
    uv_signal_start(&W.sighup, on_signal, SIGHUP);

    if (control_fd >= 0) {
        struct rpc_conn *ctl = rpc_conn_new(W.loop, &conn_ops, NULL);
        if (ctl && rpc_conn_open_fd(ctl, control_fd) == 0) {
            snprintf(ctl->peer, sizeof(ctl->peer), "vmd (control socketpair)");
            add_conn(ctl);
            rpc_conn_start(ctl);
        }
    }
    if (rpc_listen_unix(&W.listener, W.loop, W.sock_path, 0600, err, sizeof(err))) {
        log_error("%s", err);
        finish(VM_CRASHED, err, 1);
        uv_run(W.loop, UV_RUN_DEFAULT);
        return 1;
    }
    W.listener.ops = &conn_ops;
    W.listener.on_accept = on_accept;
    int r = write_pid_file();
    if (r) log_warn("%s: %s", W.pid_path, strerror(-r));

    char path[4200];
    snprintf(path, sizeof(path), "config.json");
    json_t *def = vm_store_read_json(path);
    vm_config_init(&W.cfg);
    const char *field;
    if (!def || vm_config_from_json(&W.cfg, def, err, sizeof(err), &field)) {
        char reason[5000];
        snprintf(reason, sizeof(reason), "definition %s: %s", path, def ? err : "missing or not JSON");
        json_decref(def);
        finish(VM_CRASHED, reason, 1);
        uv_run(W.loop, UV_RUN_DEFAULT);
        return 1;
    }
    json_decref(def);
    if (!W.cfg.cmdline) vm_config_set(&W.cfg, "cmdline", "console=ttyS0", err, sizeof(err));
    /* vmd wrote the VM's cloud-init seed into its directory (our cwd) before starting us */
    if (W.cfg.cloud_init.user_data && !(W.cfg.cloud_init_seed = strdup(CLOUD_INIT_SEED_FILE))) {
        finish(VM_CRASHED, "out of memory", 1);
        uv_run(W.loop, UV_RUN_DEFAULT);
        return 1;
    }

    snprintf(path, sizeof(path), "console.log");
    r = console_log_open(&W.console, path, CONSOLE_LOG_MAX_DEFAULT);
    if (r) log_warn("console log %s: %s", path, strerror(-r));
    W.console.wake = console_wake;
    uv_async_init(W.loop, &W.console_async, console_async_cb);

    vm_run_init(&W.run, &W.cfg);
    W.run.console_out = console_out;
    W.run.progress = snapshot_progress;
    W.run.progress_opaque = "restore";
    W.started_at = time(NULL);
    snprintf(path, sizeof(path), "restore-from");
    char restore_dir[4096] = "";
    FILE *rf = fopen(path, "r");
    if (rf) { /* vm.restore of a stopped VM: start from that snapshot, once */
        if (!fgets(restore_dir, sizeof(restore_dir), rf)) restore_dir[0] = 0;
        restore_dir[strcspn(restore_dir, "\n")] = 0;
        fclose(rf);
        unlink(path);
    }
    bool restoring = restore_dir[0] != 0;
    if (restoring) { /* vmd names it absolutely; the worker reaches it relative to its directory */
        const char *rel = vm_relative(restore_dir);
        if (!rel) {
            char reason[4300];
            snprintf(reason, sizeof(reason), "restore: '%s' is outside the VM's directory", restore_dir);
            finish(VM_CRASHED, reason, 1);
            uv_run(W.loop, UV_RUN_DEFAULT);
            return 1;
        }
        memmove(restore_dir, rel, strlen(rel) + 1);
    }
    log_info("%s: %llu MiB, %u vCPU(s), backend %s, kernel %s", W.name, (unsigned long long)W.cfg.memory_mib,
             W.cfg.cpus, W.run.backend->name, W.cfg.kernel);
    if ((restoring && vm_run_restore_next(&W.run, restore_dir, err, sizeof(err))) || confine(err, sizeof(err)) ||
        machine_bringup(err, sizeof(err))) {
        machine_teardown();
        char reason[600];
        snprintf(reason, sizeof(reason), "machine: %s", err);
        finish(VM_CRASHED, reason, 1);
    } else {
        set_state(VM_RUNNING, restoring ? "restored from a snapshot" : "started");
        test_hooks_arm();
    }
    uv_run(W.loop, UV_RUN_DEFAULT);
    machine_teardown();
    console_log_close(&W.console);
    vm_config_free(&W.cfg);
    log_info("%s: worker exits (%d)", W.name, W.exit_code);
    return W.exit_code;
}
