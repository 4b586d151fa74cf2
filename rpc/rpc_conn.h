/* rpc_conn: one JSON-RPC connection on a libuv stream (Unix socket, socketpair or TCP),
 * optionally wrapped in TLS with OpenSSL memory BIOs driven by uv_read/uv_write.
 *
 * It frames incoming bytes into messages (rpc/jsonrpc.h), keeps the write queue bounded
 * (a peer that does not read is dropped instead of blocking the loop), and tracks the calls
 * this side made (rpc_conn_call) so their responses reach the right callback.
 *
 * Listening: rpc_listener accepts on a Unix socket path or a TCP address. Each listener has its
 * own connection limit (so no class of peer can use up another's slots) and, on TCP, a limit per
 * source address and a TLS handshake deadline; refusals are logged at a bounded rate. It reads
 * SO_PEERCRED on Unix sockets and requires TLS client certificates on TCP when given a TLS context.
 */
#ifndef VMD_RPC_CONN_H
#define VMD_RPC_CONN_H

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "jsonrpc.h"

#define RPC_CONN_MAX_QUEUE_DEFAULT (8u << 20) /* bytes waiting to be written before a peer is dropped */
#define RPC_TLS_HANDSHAKE_TIMEOUT_MS 10000     /* default: a TLS client must finish its handshake in this time */

#include "vmm/log.h"

struct rpc_conn;
struct rpc_conn_ops {
    /* A request, notification or batch from the peer (responses to rpc_conn_call are consumed). */
    void (*on_message)(struct rpc_conn *c, const char *msg, size_t len);
    /* The connection is closed (once); the conn is freed when the last reference goes. */
    void (*on_close)(struct rpc_conn *c);
    /* TLS: the handshake has finished (c->tls_subject is set). Return false to close the
     * connection (may be NULL). */
    bool (*on_tls_ready)(struct rpc_conn *c);
};

/* Response to rpc_conn_call: exactly one of result / error is non-NULL (borrowed). error is a
 * JSON-RPC error object; on connection loss it is {code: RPC_ERR_WORKER, message: "connection closed"}. */
typedef void (*rpc_response_fn)(void *opaque, json_t *result, json_t *error);

struct rpc_pending;
struct rpc_listener;

struct rpc_conn {
    struct rpc_sink sink; /* first member: responses are sent through the conn */
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } h;
    uv_loop_t *loop;
    const struct rpc_conn_ops *ops;
    void *data; /* owner's */

    SSL *ssl;
    BIO *rbio, *wbio;
    bool tls_ready;
    uv_timer_t *hs_timer; /* handshake deadline: a silent client must not hold a slot */
    unsigned hs_timeout_ms;
    char tls_subject[256]; /* the client certificate's subject (RFC 2253 form), once tls_ready */

    struct rpc_framer framer;
    size_t queued, max_queue;
    int refs;
    bool closing;
    bool draining;          /* closing after a flush: input is read and discarded meanwhile */
    size_t drained;
    uv_timer_t *drain_timer;

    struct rpc_pending *pending;
    long long next_id;

    struct rpc_listener *listener; /* the listener that accepted it (its counts), or NULL */
    char addr[46];                 /* TCP: the peer's address (key of the per-address count) */
    uint64_t last_active;          /* uv_now() of the last complete message received (or of the accept) */
    unsigned inflight;             /* messages received and not answered yet */

    char peer[128]; /* for log messages */
    bool has_cred;
    uid_t uid;
    gid_t gid;
    pid_t pid;
};

/* Make a connection around an initialised stream type; call one of the attach functions next. */
struct rpc_conn *rpc_conn_new(uv_loop_t *loop, const struct rpc_conn_ops *ops, void *data);
/* Use an existing connected file descriptor (socketpair end). */
int rpc_conn_open_fd(struct rpc_conn *c, int fd);
/* Connect to a Unix socket path; cb(c, status) is called when connected (status < 0: failed, and
 * the conn is closed after cb returns). */
int rpc_conn_connect_unix(struct rpc_conn *c, const char *path, void (*cb)(struct rpc_conn *c, int status));
/* Start reading (after open/accept). */
int rpc_conn_start(struct rpc_conn *c);

void rpc_conn_send(struct rpc_conn *c, const char *text, size_t len);
void rpc_conn_notify(struct rpc_conn *c, const char *method, json_t *params); /* steals params */
/* Send a request; cb gets the response (or a connection-closed error). Steals params. */
void rpc_conn_call(struct rpc_conn *c, const char *method, json_t *params, rpc_response_fn cb, void *opaque);
void rpc_conn_close(struct rpc_conn *c);
/* Close once everything queued so far has been written. */
void rpc_conn_close_after_flush(struct rpc_conn *c);
void rpc_conn_ref(struct rpc_conn *c);
void rpc_conn_unref(struct rpc_conn *c);

/* ---- TLS ---- */
/* Both contexts: TLS 1.3 preferred; TLS 1.2 only with ECDHE and AEAD suites (AES-GCM,
 * ChaCha20-Poly1305); nothing older. Server context: our certificate and key, client certificates
 * required and verified against ca. Client context: our certificate and key, the server verified
 * against ca. */
SSL_CTX *rpc_tls_server_ctx(const char *cert, const char *key, const char *ca, char *err, size_t errlen);
SSL_CTX *rpc_tls_client_ctx(const char *cert, const char *key, const char *ca, char *err, size_t errlen);

/* ---- listening ---- */
struct rpc_listener {
    uv_loop_t *loop;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } h;
    bool is_tcp;
    SSL_CTX *tls; /* TCP: required */
    const char *kind;          /* "unix socket", "TLS": for log messages */
    unsigned nclients;         /* this listener's connections */
    unsigned max_clients;      /* more are refused at accept (0: unlimited) */
    unsigned max_per_address;  /* TCP: connections from one source address (0: unlimited) */
    unsigned hs_timeout_ms;    /* TLS handshake deadline (0: RPC_TLS_HANDSHAKE_TIMEOUT_MS) */
    struct rpc_addr_count *addrs; /* TCP: live connections per source address */
    /* Logged at a bounded rate: refusals, failed handshakes, peers' protocol errors. */
    struct log_limit refused_full, refused_addr, accept_failed, hs_failed, peer_errors;
    const struct rpc_conn_ops *ops;
    void *data; /* the owner's */
    /* Called for each accepted connection before reading starts (conn->data is NULL until this
     * sets it; on_close is called for refused connections too). Return false to refuse it. */
    bool (*on_accept)(struct rpc_listener *l, struct rpc_conn *c);
};

/* Listen on a Unix socket (an existing socket file is replaced), with the given file mode. */
int rpc_listen_unix(struct rpc_listener *l, uv_loop_t *loop, const char *path, int mode, char *err, size_t errlen);
/* Listen on "ADDR:PORT" (IPv4, or [IPv6]:PORT). */
int rpc_listen_tcp(struct rpc_listener *l, uv_loop_t *loop, const char *addr, char *err, size_t errlen);
void rpc_listener_close(struct rpc_listener *l);
/* Report the refusals whose log lines were suppressed (call once a second or so). */
void rpc_listener_flush_logs(struct rpc_listener *l);

#endif
