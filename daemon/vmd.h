/* vmd: the daemon's shared types. The daemon is one libuv loop holding
 *   - the registry of VM definitions (registry.c), persisted under the state dir,
 *   - the supervisor (supervisor.c): one vmd-worker process per running VM,
 *   - the JSON-RPC front end (methods.c) on a Unix socket and on TLS over TCP (main.c), with
 *     its clients, their limits and timeouts (clients.c).
 */
#ifndef VMD_DAEMON_VMD_H
#define VMD_DAEMON_VMD_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include "rpc/jsonrpc.h"
#include "rpc/rpc_conn.h"
#include "store/vm_store.h"
#include "vmm/vm_config.h"

#define VMD_VERSION "0.1.0"

struct vmd;

/* The transition a VM is going through. Each VM has at most one at a time: it is entered before
 * any side effect (spawning a worker, forwarding to it, touching the snapshot directory) and left
 * exactly when the outcome is known (the worker reported the state, the worker exited, the wait
 * timed out, the forward failed). Meanwhile every other transition request for that VM gets
 * -32002 "VM 'NAME' is busy: OP in progress"; read-only calls are unaffected. See
 * docs/architecture.md "Per-VM state machine". */
enum vm_op { VM_OP_NONE, VM_OP_START, VM_OP_STOP, VM_OP_PAUSE, VM_OP_RESUME, VM_OP_REBOOT, VM_OP_SNAPSHOT,
             VM_OP_RESTORE }; /* vm.delete is done within one loop turn: it only checks */

/* A call waiting for its VM to reach a state (vm.start waits for running, vm.stop for stopped...). */
struct vm_waiter {
    struct vm_waiter *next;
    struct vm_record *vm;
    struct rpc_call *call;
    unsigned done_mask; /* states (1u << enum vm_state) that end the wait */
    enum vm_state want; /* the state that means success */
    uv_timer_t *timer;
    unsigned long id;
    unsigned long op_id; /* the VM's operation that ends with this wait (0: none) */
};

struct vm_record;
struct vm_op_listener {
    void (*progress)(struct vm_record *vm, json_t *params); /* a worker's snapshot.progress */
    void (*ended)(struct vm_record *vm);                     /* the transition ended (op_listener is cleared first) */
};

struct vm_record {
    struct vm_record *next;
    struct vmd *d;
    char name[64];
    json_t *def;            /* the definition as stored in config.json */
    json_t *options;        /* vmd's options for it, as stored in options.json: {autostart, request_id, request} */
    json_t *stats;          /* the worker's last `stats` answer (stats.c); NULL without a worker */
    bool stats_pending;     /* the metrics poll waits for the worker's answer */
    struct vm_config cfg;
    enum vm_state state;
    char reason[512];
    time_t since;           /* when the state was entered */
    time_t started_at;      /* worker start (running/paused) */
    pid_t pid;              /* worker pid, 0 if none */
    char accel[8];          /* backend the worker chose */
    char vnc_address[80];   /* where the worker's VNC server listens ("" without one) */
    uv_process_t *proc;     /* set when the worker is our child */
    struct rpc_conn *worker;
    bool adopted;           /* worker found at start-up, not our child */
    bool final_seen;        /* the worker reported its last state */
    enum vm_state final_state;
    char final_reason[512];
    int final_exit_status;  /* the exit status in the worker's last state (isa-debug-exit), -1: none */
    int exit_status;        /* the guest's exit status of its last run (vm.info exit_status), -1: none */
    uv_timer_t *reap_timer; /* polls an adopted worker's pid after its connection closed */
    struct vm_waiter *waiters;
    enum vm_op op;          /* the transition in flight (VM_OP_NONE: none) */
    unsigned long op_id;    /* its id: a late completion of an older operation ends nothing */
    bool op_ends_on_state;  /* the worker accepted it (reboot): the next state it reports ends it */
    /* Who else follows the transition in flight (snapshots.c, for vm.snapshot and vm.restore):
     * told of the worker's progress notifications and of the transition's end. The supervisor and
     * the registry report through it, so they never call up into the method layer. */
    const struct vm_op_listener *op_listener;
    struct rpc_conn **viewers; /* clients attached to the console */
    size_t nviewers;
};

/* What a client may do: read-only may call the methods rpc/openrpc.json marks "x-role":
 * "read-only"; admin may call everything. Ordered: a higher role includes the lower ones. */
enum vmd_role { ROLE_NONE, ROLE_READ_ONLY, ROLE_ADMIN };

/* Bounds on what vm.create may define (quota.c); 0 = no limit. */
struct vmd_quotas {
    unsigned max_vcpus_per_vm, max_memory_mib_per_vm, max_disks_per_vm;
    unsigned max_vms, max_total_vcpus, max_total_memory_mib;
};

/* A connected API client. */
struct client {
    struct client *next;
    struct vmd *d;
    struct rpc_conn *conn;
    bool events;
    bool tls; /* came through the TLS listener (else the Unix socket) */
    enum vmd_role role; /* Unix socket: admin; TLS: from the access file, once the handshake is done */
    size_t log_budget;  /* vm.log bytes the current message may still return (VM_LOG_MESSAGE_BUDGET each) */
};

/* vm.log windows: default and maximum size of one call's answer, and the total of all vm.log
 * calls in one message (a batch of 128 vm.log calls returns at most this much). */
#define VM_LOG_DEFAULT_BYTES 65536
#define VM_LOG_MAX_BYTES (1u << 20)
#define VM_LOG_MESSAGE_BUDGET (4u << 20)

struct vmd {
    uv_loop_t *loop;
    char *state_dir, *socket_path, *listen, *tls_cert, *tls_key, *tls_ca, *worker_path;
    unsigned max_clients, nclients;
    struct rpc_listener unix_listener, tls_listener;
    bool tls_on;
    SSL_CTX *tls;
    gid_t socket_gid;
    struct vm_record *vms;
    struct client *clients;
    unsigned long next_waiter_id, next_op_id;
    char **image_dirs;      /* where definitions' files must resolve (resolved paths; image_paths.c) */
    size_t nimage_dirs;
    time_t started;

    /* Worker confinement (supervisor.c, docs/security.md): on unless --no-sandbox. As root, each
     * worker drops to worker_uid/worker_gid (the worker_user, default "vmd") in its own mount
     * namespace, whose root is mounted on jail_dir; its VM's directory is handed to that user. */
    bool sandbox;
    char *worker_user, *jail_dir;
    uid_t worker_uid;
    gid_t worker_gid;

    /* Connection limits (clients.c, main.c): each listener has its own client limit. */
    unsigned max_tls_clients, max_per_address, tls_handshake_timeout_s, tls_idle_timeout_s;
    uv_timer_t sweep_timer; /* once a second: idle TLS clients, suppressed log lines */
    struct log_limit idle_log;

    /* Roles (access.c): the access file maps certificate subjects to roles; NULL = no file,
     * every CA-signed client is admin. Replaced as a whole on SIGHUP. */
    char *access_path;
    struct access_policy *access;
    struct log_limit access_log; /* refusals of unknown subjects */

    struct vmd_quotas quotas;

    struct metrics *metrics; /* RPC counters and the Prometheus endpoint (metrics.c) */

    /* vmd's own stop (host_lifecycle.c): stop the VMs first, unless keep_running_on_exit. */
    unsigned shutdown_timeout_s;
    bool keep_running_on_exit, shutting_down, shutdown_forced, shutdown_had_vms;
    uv_timer_t shutdown_timer;
    uint64_t shutdown_started_ms;
    char *metrics_listen;    /* --metrics ADDR:PORT, NULL: no endpoint */
};

/* registry.c */
int registry_load(struct vmd *d);
struct vm_record *registry_find(struct vmd *d, const char *name);
/* Create and persist a definition (c is moved into the record) and vmd's options for it
 * (options.json, written first; options may be NULL: none). */
int registry_create(struct vmd *d, const json_t *def, const json_t *options, struct vm_config *c,
                    struct vm_record **out, char *err, size_t errlen);
/* (Re)write the cloud-init seed of VM name from c (nothing without c->cloud_init.user_data):
 * STATE_DIR/vms/NAME/cidata.iso, vmd's, 0600, stamped with config.json's time so that the same
 * definition gives the same bytes. registry_create writes it; supervisor_start rewrites it before
 * every start. 0, or -errno with err. */
int registry_write_seed(struct vmd *d, const char *name, const struct vm_config *c, char *err, size_t errlen);
/* Replace vm's options.json with options (stolen, even on failure). 0, or -errno with err. */
int registry_set_options(struct vmd *d, struct vm_record *vm, json_t *options, char *err, size_t errlen);
/* Whether vm's options say autostart. */
bool vm_autostart(const struct vm_record *vm);
/* The VM that vm.create's request_id created (NULL: none that still exists). */
struct vm_record *registry_find_request(struct vmd *d, const char *request_id);
int registry_delete(struct vmd *d, struct vm_record *vm, char *err, size_t errlen);
/* Enter a state: persist status.json, complete waiters, notify event subscribers. */
void vm_set_state(struct vm_record *vm, enum vm_state s, const char *reason);
json_t *vm_info_json(const struct vm_record *vm, bool full);
const char *vm_op_name(enum vm_op op);
/* If vm has a transition in flight, answer call with -32002 naming it and return true. */
bool vm_busy_refuse(struct vm_record *vm, struct rpc_call *call);
/* If vm is broken (its definition did not load), answer call with -32002 saying so and return true. */
bool vm_broken_refuse(struct vm_record *vm, struct rpc_call *call);
/* Enter a transition (the VM must not be busy); returns its id for vm_op_end. */
unsigned long vm_op_begin(struct vm_record *vm, enum vm_op op);
/* Leave transition id, if it is still the one in flight. */
void vm_op_end(struct vm_record *vm, unsigned long id);
/* The same for a VM known by name (it may have been deleted meanwhile). */
void vm_op_end_by_name(struct vmd *d, const char *name, unsigned long id);
/* Send a notification to every client that subscribed to events (steals params). */
void events_emit(struct vmd *d, const char *method, json_t *params);
/* Let call wait until vm's state is in done_mask (answered with vm.info when it is `want`, with an
 * error otherwise, or -32006 after timeout_s). Returns the waiter's id, or 0 if it could not be
 * added (the call is then answered). The waiter's end (answered, timed out, cancelled) ends the
 * VM's operation op_id (0: none). */
unsigned long waiter_add(struct vm_record *vm, struct rpc_call *call, unsigned done_mask, enum vm_state want,
                         unsigned timeout_s, unsigned long op_id);
/* Answer waiter id of vm (if it still waits) with an error. */
void waiter_fail(struct vm_record *vm, unsigned long id, int code, const char *message);
/* Answer every waiter of vm with an error (the VM is going away). */
void waiters_cancel(struct vm_record *vm, int code, const char *message);
/* Answer every waiter whose mask contains the VM's current state. */
void waiters_complete(struct vm_record *vm);

/* supervisor.c */
/* Spawn vm's worker. Refuses (-EBUSY) while vm still has one: never two workers for one VM; and
 * (-EPERM) when a file of its definition no longer passes the image path policy. */
int supervisor_start(struct vm_record *vm, char *err, size_t errlen);
/* Whether vm still has a worker process or connection (ours or adopted). */
bool supervisor_has_worker(const struct vm_record *vm);
/* Hand path (in a VM's directory; a directory with what it holds) to the sandboxed workers' user,
 * so that the VM's confined worker can write there (a new snapshot directory). 0 or -errno. */
int supervisor_give_to_worker(struct vmd *d, const char *path);
/* At start-up: re-adopt the workers registry_load found alive (vm->pid set, no worker yet). */
void supervisor_adopt_all(struct vmd *d);
void supervisor_console_viewer(struct vm_record *vm, struct rpc_conn *c, bool attach);

/* access.c: the access file (certificate subject patterns -> roles) */
struct access_policy;
int access_load(const char *path, struct access_policy **out, char *err, size_t errlen);
void access_free(struct access_policy *p);
enum vmd_role access_role(const struct access_policy *p, const char *subject); /* p NULL: admin */
size_t access_rule_count(const struct access_policy *p);
const char *vmd_role_name(enum vmd_role r);

/* quota.c: false if the definition is over a per-VM limit or a total (the call is answered). */
bool quota_admit_create(struct vmd *d, const struct vm_config *c, struct rpc_call *call);

/* clients.c: API clients (accept, messages, close) and the idle sweep */
extern const struct rpc_conn_ops client_ops;
bool clients_accept(struct rpc_listener *l, struct rpc_conn *c);
void clients_start_sweep(struct vmd *d);
/* SIGHUP: load the access file again and apply it to the connected TLS clients (a bad file
 * keeps the current one). */
void clients_reload_access(struct vmd *d);

/* methods.c */
void methods_dispatch(void *ctx, struct rpc_call *call); /* ctx: struct client */

/* snapshots.c: the snapshot methods (params checked against the spec) and the worker's
 * snapshot.progress notifications, forwarded to the requesting client. */
void snapshots_take(struct vmd *d, struct client *cl, struct rpc_call *call, json_t *p);
void snapshots_restore(struct vmd *d, struct client *cl, struct rpc_call *call, json_t *p);
void snapshots_list(struct vmd *d, struct client *cl, struct rpc_call *call, json_t *p);
void snapshots_delete(struct vmd *d, struct client *cl, struct rpc_call *call, json_t *p);

/* image_paths.c: the image path policy (docs/operations.md "Image directories"). */
/* Resolve d->image_dirs (default STATE_DIR/images, created if missing; the ones given must
 * exist). 0 or -errno with err. */
int image_dirs_init(struct vmd *d, char *err, size_t errlen);
/* Check a definition's file: absolute, resolving inside an image dir (not into STATE_DIR/vms), a
 * readable regular file. 0 with *resolved (malloc'd realpath), or -EINVAL with err naming what
 * ("kernel", "disk"...), the path and the reason. */
int image_path_resolve(const struct vmd *d, const char *what, const char *path, char **resolved, char *err,
                       size_t errlen);
/* Check every file c names (kernel, initrd, disks, and the backing files of qcow2 disks) with
 * image_path_resolve; with resolve (vm.create), replace each path by its resolved form and fix
 * the format of every disk defined without one from its first bytes. 0, or -EINVAL with *field
 * ("kernel", "initrd", "disks") and err. */
int image_paths_check(const struct vmd *d, struct vm_config *c, bool resolve, const char **field, char *err,
                      size_t errlen);

/* stats.c: a VM's figures (vm.stats and the metrics endpoint) */
uint64_t worker_rss_bytes(pid_t pid); /* VmRSS of /proc/PID/status; 0 if unknown */
/* vm.stats's result from what vmd knows and the worker's last counters (vm->stats). */
json_t *vm_stats_json(const struct vm_record *vm);
/* Answer call with vm's figures, asking its worker for fresh counters first if it has one. */
void stats_vm(struct vm_record *vm, struct rpc_call *call);
/* Ask every worker for its counters (no more than one request in flight per VM). */
void stats_refresh_all(struct vmd *d);

/* metrics.c: the daemon's counters and the Prometheus endpoint (docs/operations.md "Metrics") */
int metrics_init(struct vmd *d); /* the counters; 0 or -ENOMEM */
/* Serve GET /metrics on spec (ADDR:PORT, [V6]:PORT or PORT for 127.0.0.1). 0 or -errno with err. */
int metrics_listen(struct vmd *d, const char *spec, char *err, size_t errlen);
void metrics_stop(struct vmd *d);
/* Count call (method: its name, NULL if unknown) when it is answered. */
void metrics_count_call(struct vmd *d, struct rpc_call *call, const char *method);

/* host_lifecycle.c: autostart when vmd starts; on SIGTERM/SIGINT stop the VMs (or leave them
 * running with keep_running_on_exit), then leave the loop. */
void host_autostart(struct vmd *d);
void host_shutdown(struct vmd *d, int sig);

/* sd_notify.c: the systemd notify protocol (a datagram to $NOTIFY_SOCKET); no-op without it. */
void sd_notify_send(const char *state);

#endif
