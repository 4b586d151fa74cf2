/* rpc_client: a small blocking JSON-RPC client (vmctl, tests, the bench load client).
 *
 * Targets: "unix:PATH" or "tls://HOST:PORT" (mutual TLS: our certificate and key, the server
 * verified against the CA). One request at a time; notifications that arrive while waiting
 * for a response go to on_notification.
 */
#ifndef VMD_RPC_CLIENT_H
#define VMD_RPC_CLIENT_H

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>

struct rpc_client {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char *buf;
    size_t len, cap;
    long long next_id;
    void (*on_notification)(void *opaque, const char *method, json_t *params);
    void *opaque;
};

struct rpc_client_opts {
    const char *target; /* unix:PATH | tls://HOST:PORT */
    const char *cert, *key, *ca;
};

int rpc_client_connect(struct rpc_client *c, const struct rpc_client_opts *o, char *err, size_t errlen);
void rpc_client_close(struct rpc_client *c);

/* Call a method (steals params). Returns 0 with *result (caller decrefs), 1 with *error (a
 * JSON-RPC error object, caller decrefs), or -errno on transport failure (message in err). */
int rpc_client_call(struct rpc_client *c, const char *method, json_t *params, json_t **result, json_t **error,
                    char *err, size_t errlen);
int rpc_client_notify(struct rpc_client *c, const char *method, json_t *params);
/* Send raw bytes (tests of malformed input). */
int rpc_client_send_raw(struct rpc_client *c, const char *data, size_t len);
/* Read the next message, waiting at most timeout_ms (-1: forever). Returns 1 with *msg, 0 on
 * timeout, -errno on error or EOF (-EPIPE). */
int rpc_client_read(struct rpc_client *c, json_t **msg, int timeout_ms);

#endif
