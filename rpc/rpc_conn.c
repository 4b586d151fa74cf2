/* rpc_conn: JSON-RPC connections on libuv streams, TLS through memory BIOs, listeners. */
#include "rpc_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/log.h"

#define RPC_LISTEN_BACKLOG 511 /* pending connections the kernel queues before accept */

/* Warnings a peer can provoke at will are rate-limited per listener (see vmm/log.h). */
#define PEER_WARN(c, ...)                                                              \
    do {                                                                               \
        if ((c)->listener) log_limited(&(c)->listener->peer_errors, LOG_WARN, __VA_ARGS__); \
        else log_warn(__VA_ARGS__);                                                    \
    } while (0)

struct rpc_pending {
    struct rpc_pending *next;
    long long id;
    rpc_response_fn cb;
    void *opaque;
};

static void sink_send(struct rpc_sink *s, const char *text, size_t len) { rpc_conn_send((struct rpc_conn *)s, text, len); }
/* The codec holds the sink while a message's calls are unanswered: that is what `inflight`
 * counts (a client waiting for an answer is not idle). */
static void sink_ref(struct rpc_sink *s)
{
    struct rpc_conn *c = (struct rpc_conn *)s;
    c->inflight++;
    rpc_conn_ref(c);
}
static void sink_unref(struct rpc_sink *s)
{
    struct rpc_conn *c = (struct rpc_conn *)s;
    c->inflight--;
    rpc_conn_unref(c);
}

struct rpc_conn *rpc_conn_new(uv_loop_t *loop, const struct rpc_conn_ops *ops, void *data)
{
    struct rpc_conn *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->sink = (struct rpc_sink){.send = sink_send, .ref = sink_ref, .unref = sink_unref};
    c->loop = loop;
    c->ops = ops;
    c->data = data;
    c->refs = 1; /* the handle's reference, dropped in close_cb */
    c->max_queue = RPC_CONN_MAX_QUEUE_DEFAULT;
    c->next_id = 1;
    rpc_framer_init(&c->framer, RPC_MAX_MESSAGE_DEFAULT);
    snprintf(c->peer, sizeof(c->peer), "peer");
    return c;
}

void rpc_conn_ref(struct rpc_conn *c) { c->refs++; }

void rpc_conn_unref(struct rpc_conn *c)
{
    if (--c->refs > 0) return;
    rpc_framer_free(&c->framer);
    if (c->ssl) SSL_free(c->ssl); /* frees both BIOs */
    free(c);
}

static void fail_pending(struct rpc_conn *c)
{
    while (c->pending) {
        struct rpc_pending *p = c->pending;
        c->pending = p->next;
        json_t *err = json_pack("{s:i, s:s}", "code", RPC_ERR_WORKER, "message", "connection closed");
        p->cb(p->opaque, NULL, err);
        json_decref(err);
        free(p);
    }
}

static void hs_timer_closed(uv_handle_t *h)
{
    struct rpc_conn *c = h->data;
    free(h);
    rpc_conn_unref(c);
}

static void hs_timer_stop(struct rpc_conn *c)
{
    if (!c->hs_timer) return;
    uv_timer_stop(c->hs_timer);
    uv_close((uv_handle_t *)c->hs_timer, hs_timer_closed);
    c->hs_timer = NULL;
}

static void hs_timeout(uv_timer_t *t)
{
    struct rpc_conn *c = t->data;
    if (c->listener)
        log_limited(&c->listener->hs_failed, LOG_WARN, "%s: TLS handshake not finished within %.1f s: closing", c->peer,
                    c->hs_timeout_ms / 1000.0);
    else
        log_warn("%s: TLS handshake not finished within %.1f s: closing", c->peer, c->hs_timeout_ms / 1000.0);
    hs_timer_stop(c);
    rpc_conn_close(c);
}

static void listener_forget(struct rpc_conn *c);

static void close_cb(uv_handle_t *h)
{
    struct rpc_conn *c = h->data;
    hs_timer_stop(c);
    listener_forget(c);
    fail_pending(c);
    if (c->ops && c->ops->on_close) c->ops->on_close(c);
    rpc_conn_unref(c);
}

void rpc_conn_close(struct rpc_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    if (!uv_is_closing(&c->h.handle)) uv_close(&c->h.handle, close_cb);
}

/* Closing after a flush: our side is shut down (FIN sent after the queued writes) while the
 * peer's remaining input is read and thrown away, so that closing with unread data does not
 * reset the connection before the peer has read our last message. Ends at the peer's EOF,
 * after 16 MiB of discarded input, or after a 2 s grace period. */
static void drain_timer_closed(uv_handle_t *h)
{
    struct rpc_conn *c = h->data;
    free(h);
    rpc_conn_unref(c);
}

static void drain_end(struct rpc_conn *c)
{
    if (c->drain_timer) {
        uv_timer_stop(c->drain_timer);
        uv_close((uv_handle_t *)c->drain_timer, drain_timer_closed);
        c->drain_timer = NULL;
    }
    c->draining = false;
    c->closing = false; /* let rpc_conn_close run */
    rpc_conn_close(c);
}

static void drain_timeout(uv_timer_t *t) { drain_end(t->data); }

static void shutdown_cb(uv_shutdown_t *req, int status)
{
    struct rpc_conn *c = req->data;
    free(req);
    if (status < 0 && c->draining) drain_end(c);
    rpc_conn_unref(c);
}

void rpc_conn_close_after_flush(struct rpc_conn *c)
{
    if (c->closing) return;
    uv_shutdown_t *req = malloc(sizeof(*req));
    c->drain_timer = malloc(sizeof(*c->drain_timer));
    if (!req || !c->drain_timer) {
        free(req);
        free(c->drain_timer);
        c->drain_timer = NULL;
        rpc_conn_close(c);
        return;
    }
    req->data = c;
    c->closing = true; /* no more messages in or out */
    c->draining = true;
    uv_timer_init(c->loop, c->drain_timer);
    c->drain_timer->data = c;
    rpc_conn_ref(c); /* for the timer */
    uv_timer_start(c->drain_timer, drain_timeout, 2000, 0);
    rpc_conn_ref(c); /* for the shutdown request */
    if (uv_shutdown(req, &c->h.stream, shutdown_cb) < 0) {
        free(req);
        rpc_conn_unref(c);
        drain_end(c);
    }
}

/* ---- writing ---- */

struct write_req {
    uv_write_t req;
    struct rpc_conn *c;
    size_t len;
    char data[];
};

static void write_cb(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    w->c->queued -= w->len;
    if (status < 0 && status != UV_ECANCELED) {
        log_debug("%s: write failed: %s", w->c->peer, uv_strerror(status));
        rpc_conn_close(w->c);
    }
    free(w);
}

static void write_raw(struct rpc_conn *c, const char *data, size_t len)
{
    if (c->closing || len == 0) return;
    if (c->queued + len > c->max_queue) {
        PEER_WARN(c, "%s: dropped: more than %zu bytes waiting to be written (peer not reading)", c->peer, c->max_queue);
        rpc_conn_close(c);
        return;
    }
    struct write_req *w = malloc(sizeof(*w) + len);
    if (!w) {
        rpc_conn_close(c);
        return;
    }
    w->c = c;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t buf = uv_buf_init(w->data, (unsigned)len);
    c->queued += len;
    int r = uv_write(&w->req, &c->h.stream, &buf, 1, write_cb);
    if (r < 0) {
        c->queued -= len;
        free(w);
        log_debug("%s: write: %s", c->peer, uv_strerror(r));
        rpc_conn_close(c);
    }
}

/* Move whatever TLS produced (handshake records, encrypted data) to the socket. */
static void tls_flush(struct rpc_conn *c)
{
    char buf[16384];
    int n;
    while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0) write_raw(c, buf, (size_t)n);
}

void rpc_conn_send(struct rpc_conn *c, const char *text, size_t len)
{
    if (c->closing) return;
    if (!c->ssl) {
        write_raw(c, text, len);
        return;
    }
    if (!c->tls_ready) return; /* nothing is sent before the handshake has finished */
    if (c->queued + len > c->max_queue) {
        write_raw(c, text, len); /* drops the peer */
        return;
    }
    while (len > 0) {
        int n = SSL_write(c->ssl, text, len > 65536 ? 65536 : (int)len);
        if (n <= 0) {
            PEER_WARN(c, "%s: TLS write failed", c->peer);
            rpc_conn_close(c);
            return;
        }
        text += n;
        len -= (size_t)n;
        tls_flush(c);
    }
}

void rpc_conn_notify(struct rpc_conn *c, const char *method, json_t *params) { rpc_notify(&c->sink, method, params); }

void rpc_conn_call(struct rpc_conn *c, const char *method, json_t *params, rpc_response_fn cb, void *opaque)
{
    struct rpc_pending *p = calloc(1, sizeof(*p));
    if (!p || c->closing) {
        free(p);
        json_decref(params);
        json_t *err = json_pack("{s:i, s:s}", "code", RPC_ERR_WORKER, "message", "connection closed");
        cb(opaque, NULL, err);
        json_decref(err);
        return;
    }
    p->id = c->next_id++;
    p->cb = cb;
    p->opaque = opaque;
    p->next = c->pending;
    c->pending = p;
    json_t *req = rpc_make_request(method, params, json_integer(p->id));
    size_t len;
    char *text = rpc_encode(req, &len);
    json_decref(req);
    if (text) rpc_conn_send(c, text, len);
    free(text);
}

/* ---- reading ---- */

/* A response to one of our calls? Then hand it over and return true. */
static bool take_response(struct rpc_conn *c, const char *msg, size_t len)
{
    if (!c->pending) return false;
    json_t *j = json_loadb(msg, len, 0, NULL);
    if (!json_is_object(j) || json_object_get(j, "method") || !json_is_integer(json_object_get(j, "id"))) {
        json_decref(j);
        return false;
    }
    long long id = json_integer_value(json_object_get(j, "id"));
    for (struct rpc_pending **pp = &c->pending; *pp; pp = &(*pp)->next) {
        struct rpc_pending *p = *pp;
        if (p->id != id) continue;
        *pp = p->next;
        json_t *err = json_object_get(j, "error");
        p->cb(p->opaque, err ? NULL : json_object_get(j, "result"), err);
        free(p);
        break;
    }
    json_decref(j);
    return true;
}

static void on_framed(void *opaque, const char *msg, size_t len)
{
    struct rpc_conn *c = opaque;
    if (c->closing) return;
    c->last_active = uv_now(c->loop);
    if (take_response(c, msg, len)) return;
    if (c->ops && c->ops->on_message) c->ops->on_message(c, msg, len);
}

static void feed_plain(struct rpc_conn *c, const char *data, size_t len)
{
    int r = rpc_framer_feed(&c->framer, data, len, on_framed, c);
    if (r == -EMSGSIZE) {
        size_t n;
        char *text = rpc_oversize_response(c->framer.max, &n);
        PEER_WARN(c, "%s: message longer than %zu bytes: closing", c->peer, c->framer.max);
        if (text) rpc_conn_send(c, text, n);
        free(text);
        if (c->ssl) tls_flush(c);
        rpc_conn_close_after_flush(c);
    } else if (r < 0) {
        rpc_conn_close(c);
    }
}

static const char *tls_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (!e) return "connection closed during handshake";
    ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

/* A certificate subject in OpenSSL's RFC 2253 one-line form, most specific RDN first:
 * "CN=ops-1,O=lab" (what `openssl x509 -noout -subject -nameopt RFC2253` prints). */
static void tls_subject_rfc2253(X509_NAME *name, char *out, size_t outlen)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) return;
    if (X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(b, out, (int)outlen - 1);
        out[n > 0 ? n : 0] = 0;
    }
    BIO_free(b);
}

static void feed_tls(struct rpc_conn *c, const char *data, size_t len)
{
    BIO_write(c->rbio, data, (int)len);
    if (!c->tls_ready) {
        int r = SSL_do_handshake(c->ssl);
        tls_flush(c);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            char buf[256];
            const char *why = tls_error(buf, sizeof(buf));
            if (c->listener) log_limited(&c->listener->hs_failed, LOG_WARN, "%s: TLS handshake refused: %s", c->peer, why);
            else log_warn("%s: TLS handshake refused: %s", c->peer, why);
            rpc_conn_close_after_flush(c); /* let the alert reach the peer */
            return;
        }
        c->tls_ready = true;
        hs_timer_stop(c);
        c->last_active = uv_now(c->loop);
        X509 *cert = SSL_get_peer_certificate(c->ssl);
        snprintf(c->tls_subject, sizeof(c->tls_subject), "?");
        if (cert) tls_subject_rfc2253(X509_get_subject_name(cert), c->tls_subject, sizeof(c->tls_subject));
        X509_free(cert);
        log_info("%s: TLS %s %s, client certificate \"%s\"", c->peer, SSL_get_version(c->ssl),
                 SSL_get_cipher_name(c->ssl), c->tls_subject);
        if (c->ops && c->ops->on_tls_ready && !c->ops->on_tls_ready(c)) {
            tls_flush(c);
            rpc_conn_close_after_flush(c);
            return;
        }
    }
    char buf[16384];
    for (;;) {
        int n = SSL_read(c->ssl, buf, sizeof(buf));
        if (n > 0) {
            feed_plain(c, buf, (size_t)n);
            if (c->closing) return;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        tls_flush(c);
        if (e == SSL_ERROR_WANT_READ) return;
        if (e != SSL_ERROR_ZERO_RETURN) {
            char ebuf[256];
            const char *why = tls_error(ebuf, sizeof(ebuf));
            PEER_WARN(c, "%s: TLS error: %s", c->peer, why);
        }
        rpc_conn_close(c);
        return;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    buf->base = malloc(65536);
    buf->len = buf->base ? 65536 : 0;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct rpc_conn *c = s->data;
    rpc_conn_ref(c);
    if (c->draining) {
        c->drained += n > 0 ? (size_t)n : 0;
        if (n < 0 || c->drained > (16u << 20)) drain_end(c);
    } else if (n > 0 && !c->closing) {
        if (c->ssl) feed_tls(c, buf->base, (size_t)n);
        else feed_plain(c, buf->base, (size_t)n);
    } else if (n < 0) {
        if (n != UV_EOF) log_debug("%s: read: %s", c->peer, uv_strerror((int)n));
        rpc_conn_close(c);
    }
    free(buf->base);
    rpc_conn_unref(c);
}

int rpc_conn_start(struct rpc_conn *c)
{
    c->h.handle.data = c;
    int r = uv_read_start(&c->h.stream, alloc_cb, read_cb);
    if (r < 0) rpc_conn_close(c);
    return r;
}

int rpc_conn_open_fd(struct rpc_conn *c, int fd)
{
    uv_pipe_init(c->loop, &c->h.pipe, 0);
    c->h.handle.data = c;
    int r = uv_pipe_open(&c->h.pipe, fd);
    if (r < 0) {
        rpc_conn_close(c);
        return r;
    }
    return 0;
}

struct connect_req {
    uv_connect_t req;
    void (*cb)(struct rpc_conn *c, int status);
};

static void connect_cb(uv_connect_t *req, int status)
{
    struct connect_req *cr = (struct connect_req *)req;
    struct rpc_conn *c = req->handle->data;
    cr->cb(c, status);
    if (status < 0) rpc_conn_close(c);
    free(cr);
}

int rpc_conn_connect_unix(struct rpc_conn *c, const char *path, void (*cb)(struct rpc_conn *c, int status))
{
    uv_pipe_init(c->loop, &c->h.pipe, 0);
    c->h.handle.data = c;
    struct connect_req *cr = calloc(1, sizeof(*cr));
    if (!cr) {
        rpc_conn_close(c);
        return -ENOMEM;
    }
    cr->cb = cb;
    snprintf(c->peer, sizeof(c->peer), "%s", path);
    uv_pipe_connect(&cr->req, &c->h.pipe, path, connect_cb);
    return 0;
}

/* ---- TLS contexts ---- */

/* TLS policy, the same for vmd's server and vmctl's client: TLS 1.3 preferred (OpenSSL picks the
 * highest version both sides have; its 1.3 suites are all AEAD), TLS 1.2 only with ECDHE key
 * exchange and an AEAD cipher (AES-GCM or ChaCha20-Poly1305); nothing older. */
#define RPC_TLS12_CIPHERS                                                                      \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:" \
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"

static SSL_CTX *tls_ctx(const SSL_METHOD *method, const char *cert, const char *key, const char *ca, char *err,
                        size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    char ebuf[256];
    if (!ctx) {
        snprintf(err, errlen, "TLS: %s", tls_error(ebuf, sizeof(ebuf)));
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 || SSL_CTX_set_cipher_list(ctx, RPC_TLS12_CIPHERS) != 1) {
        snprintf(err, errlen, "TLS policy: %s", tls_error(ebuf, sizeof(ebuf)));
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    if (cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(err, errlen, "TLS certificate '%s': %s", cert, tls_error(ebuf, sizeof(ebuf)));
        goto fail;
    }
    if (key && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        snprintf(err, errlen, "TLS key '%s': %s", key, tls_error(ebuf, sizeof(ebuf)));
        goto fail;
    }
    if (cert && key && SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "TLS key '%s' does not match certificate '%s'", key, cert);
        goto fail;
    }
    if (ca && SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        snprintf(err, errlen, "TLS CA '%s': %s", ca, tls_error(ebuf, sizeof(ebuf)));
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *rpc_tls_server_ctx(const char *cert, const char *key, const char *ca, char *err, size_t errlen)
{
    if (!cert || !key || !ca) {
        snprintf(err, errlen, "TLS needs --tls-cert, --tls-key and --tls-ca");
        return NULL;
    }
    SSL_CTX *ctx = tls_ctx(TLS_server_method(), cert, key, ca, err, errlen);
    if (!ctx) return NULL;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
    if (names) SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    return ctx;
}

SSL_CTX *rpc_tls_client_ctx(const char *cert, const char *key, const char *ca, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls_ctx(TLS_client_method(), cert, key, ca, err, errlen);
    if (ctx && ca) SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* ---- listeners ---- */

/* Live connections per source address (TCP listeners): a short list, one entry per address
 * with connections; looked up at each accept and close. */
struct rpc_addr_count {
    struct rpc_addr_count *next;
    unsigned n;
    char addr[46];
};

static struct rpc_addr_count *addr_find(struct rpc_listener *l, const char *addr)
{
    for (struct rpc_addr_count *a = l->addrs; a; a = a->next)
        if (!strcmp(a->addr, addr)) return a;
    return NULL;
}

/* The conn leaves its listener's counts (at close). */
static void listener_forget(struct rpc_conn *c)
{
    struct rpc_listener *l = c->listener;
    if (!l) return;
    c->listener = NULL;
    l->nclients--;
    if (!c->addr[0]) return;
    for (struct rpc_addr_count **pp = &l->addrs; *pp; pp = &(*pp)->next) {
        struct rpc_addr_count *a = *pp;
        if (strcmp(a->addr, c->addr)) continue;
        if (--a->n == 0) {
            *pp = a->next;
            free(a);
        }
        return;
    }
}

/* Count the conn in its listener, or say why it is refused (the caller logs and closes). */
static bool listener_admit(struct rpc_listener *l, struct rpc_conn *c)
{
    if (l->max_clients && l->nclients >= l->max_clients) {
        log_limited(&l->refused_full, LOG_WARN, "%s: refused: already %u clients (the maximum for the %s)", c->peer,
                    l->max_clients, l->kind);
        return false;
    }
    struct rpc_addr_count *a = NULL;
    if (c->addr[0]) {
        a = addr_find(l, c->addr);
        if (a && l->max_per_address && a->n >= l->max_per_address) {
            log_limited(&l->refused_addr, LOG_WARN, "%s: refused: already %u connections from %s (the maximum per address)",
                        c->peer, l->max_per_address, c->addr);
            return false;
        }
        if (!a) {
            a = calloc(1, sizeof(*a));
            if (!a) return false;
            snprintf(a->addr, sizeof(a->addr), "%s", c->addr);
            a->next = l->addrs;
            l->addrs = a;
        }
        a->n++;
    }
    l->nclients++;
    c->listener = l;
    return true;
}

void rpc_listener_flush_logs(struct rpc_listener *l)
{
    log_limit_flush(&l->refused_full, 0);
    log_limit_flush(&l->refused_addr, 0);
    log_limit_flush(&l->accept_failed, 0);
    log_limit_flush(&l->hs_failed, 0);
    log_limit_flush(&l->peer_errors, 0);
}

static void name_tcp_peer(struct rpc_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else {
            uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        snprintf(c->addr, sizeof(c->addr), "%s", host);
    }
    snprintf(c->peer, sizeof(c->peer), "tls client %s:%d", host, port);
}

static void name_unix_peer(struct rpc_conn *c)
{
    uv_os_fd_t fd = -1;
    uv_fileno(&c->h.handle, &fd);
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
        c->has_cred = true;
        c->uid = cred.uid;
        c->gid = cred.gid;
        c->pid = cred.pid;
        snprintf(c->peer, sizeof(c->peer), "unix client pid %d uid %u", (int)cred.pid, (unsigned)cred.uid);
    } else {
        snprintf(c->peer, sizeof(c->peer), "unix client");
    }
}

/* The TLS server side on memory BIOs: SSL_do_handshake only ever consumes what read_cb fed it,
 * so a peer that stalls mid-handshake never blocks the loop; the deadline timer closes it. */
static bool tls_accept_setup(struct rpc_listener *l, struct rpc_conn *c)
{
    c->ssl = SSL_new(l->tls);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        c->rbio = c->wbio = NULL;
        return false;
    }
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_accept_state(c->ssl);
    c->hs_timeout_ms = l->hs_timeout_ms ? l->hs_timeout_ms : RPC_TLS_HANDSHAKE_TIMEOUT_MS;
    c->hs_timer = malloc(sizeof(*c->hs_timer));
    if (!c->hs_timer) return false;
    uv_timer_init(l->loop, c->hs_timer);
    c->hs_timer->data = c;
    rpc_conn_ref(c); /* dropped when the timer handle is closed */
    uv_timer_start(c->hs_timer, hs_timeout, c->hs_timeout_ms, 0);
    return true;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct rpc_listener *l = server->data;
    if (status < 0) {
        log_limited(&l->accept_failed, LOG_WARN, "%s: accept: %s", l->kind, uv_strerror(status));
        return;
    }
    struct rpc_conn *c = rpc_conn_new(l->loop, l->ops, NULL); /* data: set by on_accept */
    if (!c) return;
    if (l->is_tcp) uv_tcp_init(l->loop, &c->h.tcp);
    else uv_pipe_init(l->loop, &c->h.pipe, 0);
    c->h.handle.data = c;
    if (uv_accept(server, &c->h.stream) < 0) {
        rpc_conn_close(c);
        return;
    }
    c->last_active = uv_now(l->loop);
    if (l->is_tcp) {
        name_tcp_peer(c);
        uv_tcp_nodelay(&c->h.tcp, 1);
    } else {
        name_unix_peer(c);
    }
    /* Refusals come first and cost no TLS state: a flood is closed as cheaply as it arrives. */
    if (!listener_admit(l, c)) {
        rpc_conn_close(c);
        return;
    }
    if (l->tls && !tls_accept_setup(l, c)) {
        rpc_conn_close(c);
        return;
    }
    if (l->on_accept && !l->on_accept(l, c)) {
        rpc_conn_close(c);
        return;
    }
    rpc_conn_start(c);
}

int rpc_listen_unix(struct rpc_listener *l, uv_loop_t *loop, const char *path, int mode, char *err, size_t errlen)
{
    l->loop = loop;
    l->is_tcp = false;
    if (!l->kind) l->kind = "unix socket";
    l->refused_full.what = l->refused_addr.what = "connection refusals";
    l->accept_failed.what = "accept failures";
    l->hs_failed.what = "failed TLS handshakes";
    l->peer_errors.what = "peer errors";
    uv_pipe_init(loop, &l->h.pipe, 0);
    l->h.handle.data = l;
    unlink(path);
    int r = uv_pipe_bind(&l->h.pipe, path);
    if (r == 0 && chmod(path, (mode_t)mode) < 0) r = -errno;
    if (r == 0) r = uv_listen(&l->h.stream, RPC_LISTEN_BACKLOG, on_connection);
    if (r < 0) {
        snprintf(err, errlen, "socket '%s': %s", path, uv_strerror(r));
        uv_close(&l->h.handle, NULL);
        return r;
    }
    return 0;
}

int rpc_listen_tcp(struct rpc_listener *l, uv_loop_t *loop, const char *addr, char *err, size_t errlen)
{
    l->loop = loop;
    l->is_tcp = true;
    if (!l->kind) l->kind = "TLS listener";
    l->refused_full.what = l->refused_addr.what = "connection refusals";
    l->accept_failed.what = "accept failures";
    l->hs_failed.what = "failed TLS handshakes";
    l->peer_errors.what = "peer errors";
    char host[128];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof(host)) {
        snprintf(err, errlen, "--listen '%s': expected ADDR:PORT", addr);
        return -EINVAL;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    int port = atoi(colon + 1);
    struct sockaddr_storage ss;
    int r;
    if (host[0] == '[') {
        size_t hl = strlen(host);
        if (hl < 2 || host[hl - 1] != ']') r = UV_EINVAL;
        else {
            host[hl - 1] = 0;
            r = uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)&ss);
        }
    } else {
        r = uv_ip4_addr(host[0] ? host : "0.0.0.0", port, (struct sockaddr_in *)&ss);
    }
    if (r < 0 || port <= 0 || port > 65535) {
        snprintf(err, errlen, "--listen '%s': expected ADDR:PORT", addr);
        return -EINVAL;
    }
    uv_tcp_init(loop, &l->h.tcp);
    l->h.handle.data = l;
    r = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0);
    if (r == 0) r = uv_listen(&l->h.stream, RPC_LISTEN_BACKLOG, on_connection);
    if (r < 0) {
        snprintf(err, errlen, "--listen '%s': %s", addr, uv_strerror(r));
        uv_close(&l->h.handle, NULL);
        return r;
    }
    return 0;
}

void rpc_listener_close(struct rpc_listener *l)
{
    if (!uv_is_closing(&l->h.handle)) uv_close(&l->h.handle, NULL);
}
