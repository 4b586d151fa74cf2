/* clients: vmd's API clients. Accepting them (peer checks on the Unix socket), reading their
 * messages into methods_dispatch, forgetting them when they leave, and the once-a-second sweep
 * that closes idle TLS clients and reports suppressed refusal log lines.
 *
 * Idle TLS clients: a TLS client that has sent no complete message for tls_idle_timeout_s is
 * closed, unless it is waiting for an answer (a vm.stop may take minutes), is subscribed to
 * events, or is attached to a console: those are listening, not idle. Unix-socket clients are
 * local and never timed out (their own limit keeps them from starving TLS clients, and back).
 *
 * Roles: a Unix-socket client is admin. A TLS client gets its role from the access file when its
 * handshake is done; one whose subject matches no entry is told so and closed.
 */
#include <grp.h>
#include <stdio.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon/vmd.h"
#include "vmm/log.h"

static void client_message(struct rpc_conn *c, const char *msg, size_t len)
{
    struct client *cl = c->data;
    if (!cl) return;
    cl->log_budget = VM_LOG_MESSAGE_BUDGET; /* each message (a batch too) gets its own */
    rpc_handle_message(msg, len, methods_dispatch, cl, &c->sink);
}

static bool client_is_viewer(struct vmd *d, struct rpc_conn *c)
{
    for (struct vm_record *vm = d->vms; vm; vm = vm->next)
        for (size_t i = 0; i < vm->nviewers; i++)
            if (vm->viewers[i] == c) return true;
    return false;
}

static void detach_consoles(struct vmd *d, struct rpc_conn *c)
{
    for (struct vm_record *vm = d->vms; vm; vm = vm->next)
        for (size_t i = 0; i < vm->nviewers; i++)
            if (vm->viewers[i] == c) {
                supervisor_console_viewer(vm, c, false);
                break;
            }
}

static void client_closed(struct rpc_conn *c)
{
    struct client *cl = c->data;
    if (!cl) return; /* refused before it became a client */
    struct vmd *d = cl->d;
    detach_consoles(d, c);
    for (struct client **pp = &d->clients; *pp; pp = &(*pp)->next)
        if (*pp == cl) {
            *pp = cl->next;
            break;
        }
    d->nclients--;
    log_debug("%s: disconnected", c->peer);
    free(cl);
}

/* The TLS handshake is done: give the client its role, or refuse it. */
static bool client_tls_ready(struct rpc_conn *c)
{
    struct client *cl = c->data;
    if (!cl) return false;
    cl->role = access_role(cl->d->access, c->tls_subject);
    if (cl->role == ROLE_NONE) {
        log_limited(&cl->d->access_log, LOG_WARN, "%s: refused: certificate subject \"%s\" matches no entry of the access file %s",
                    c->peer, c->tls_subject, cl->d->access_path);
        char msg[400];
        snprintf(msg, sizeof(msg), "Forbidden: certificate subject \"%s\" matches no entry of vmd's access file", c->tls_subject);
        json_t *e = rpc_make_error(NULL, RPC_ERR_FORBIDDEN, msg, NULL);
        size_t len;
        char *text = rpc_encode(e, &len);
        json_decref(e);
        if (text) rpc_conn_send(c, text, len);
        free(text);
        return false;
    }
    log_info("%s: role %s", c->peer, vmd_role_name(cl->role));
    return true;
}

const struct rpc_conn_ops client_ops = {
    .on_message = client_message, .on_close = client_closed, .on_tls_ready = client_tls_ready};

void clients_reload_access(struct vmd *d)
{
    if (!d->access_path) {
        log_info("SIGHUP: no access file to reload (every CA-signed TLS client is admin)");
        return;
    }
    struct access_policy *p;
    char err[600];
    if (access_load(d->access_path, &p, err, sizeof(err))) {
        log_error("SIGHUP: %s: keeping the access rules loaded before", err);
        return;
    }
    access_free(d->access);
    d->access = p;
    unsigned changed = 0, closed = 0;
    for (struct client *cl = d->clients; cl; cl = cl->next) {
        struct rpc_conn *c = cl->conn;
        if (!cl->tls || !c->tls_ready || c->closing) continue;
        enum vmd_role r = access_role(p, c->tls_subject);
        if (r == cl->role) continue;
        log_info("%s: role %s -> %s (\"%s\")", c->peer, vmd_role_name(cl->role), vmd_role_name(r), c->tls_subject);
        cl->role = r;
        changed++;
        if (r < ROLE_ADMIN) detach_consoles(d, c); /* attached consoles are admin-only */
        if (r == ROLE_NONE) {
            cl->events = false;
            rpc_conn_close(c);
            closed++;
        }
    }
    log_info("SIGHUP: access file %s reloaded: %zu rules; %u connected clients changed role, %u of them closed "
             "(no longer matching)", d->access_path, access_rule_count(p), changed, closed);
}

static bool uid_in_group(uid_t uid, gid_t gid)
{
    struct passwd *pw = getpwuid(uid);
    if (!pw) return false;
    if (pw->pw_gid == gid) return true;
    gid_t groups[256];
    int n = 256;
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0) return false;
    for (int i = 0; i < n; i++)
        if (groups[i] == gid) return true;
    return false;
}

bool clients_accept(struct rpc_listener *l, struct rpc_conn *c)
{
    struct vmd *d = l->data;
    if (!l->is_tcp && c->has_cred) {
        /* The socket's mode (0660) already limits who can connect; check again from the peer's
         * credentials: root, vmd's own user, or a member of the socket's group. */
        bool ok = c->uid == 0 || c->uid == geteuid() || c->gid == d->socket_gid || uid_in_group(c->uid, d->socket_gid);
        if (!ok) {
            log_warn("%s: refused: not root, not uid %u, not in group %u", c->peer, (unsigned)geteuid(), (unsigned)d->socket_gid);
            return false;
        }
    }
    struct client *cl = calloc(1, sizeof(*cl));
    if (!cl) return false;
    cl->d = d;
    cl->conn = c;
    cl->tls = l->is_tcp;
    cl->role = l->is_tcp ? ROLE_NONE : ROLE_ADMIN; /* TLS: set when the handshake is done */
    c->data = cl;
    cl->next = d->clients;
    d->clients = cl;
    d->nclients++;
    log_debug("%s: connected", c->peer);
    return true;
}

/* Close TLS clients idle for longer than the idle timeout (see the top comment). */
static void close_idle_clients(struct vmd *d)
{
    if (!d->tls_idle_timeout_s) return;
    uint64_t now = uv_now(d->loop), limit = (uint64_t)d->tls_idle_timeout_s * 1000;
    for (struct client *cl = d->clients; cl; cl = cl->next) {
        struct rpc_conn *c = cl->conn;
        if (!cl->tls || c->closing || c->inflight || cl->events || now - c->last_active < limit) continue;
        if (client_is_viewer(d, c)) continue;
        log_limited(&d->idle_log, LOG_INFO, "%s: closed: idle for %u s (no request, no events, no console)", c->peer,
                    d->tls_idle_timeout_s);
        rpc_conn_close(c); /* the client is freed in client_closed, after this loop */
    }
}

static void sweep(uv_timer_t *t)
{
    struct vmd *d = t->data;
    close_idle_clients(d);
    rpc_listener_flush_logs(&d->unix_listener);
    if (d->listen) rpc_listener_flush_logs(&d->tls_listener);
    log_limit_flush(&d->idle_log, 0);
}

void clients_start_sweep(struct vmd *d)
{
    d->idle_log.what = "idle clients closed";
    uv_timer_init(d->loop, &d->sweep_timer);
    d->sweep_timer.data = d;
    uv_timer_start(&d->sweep_timer, sweep, 1000, 1000);
    uv_unref((uv_handle_t *)&d->sweep_timer); /* it alone does not keep the loop running */
}
