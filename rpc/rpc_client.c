/* rpc_client: blocking JSON-RPC client over a Unix socket or mutual TLS. */
#include "rpc_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "rpc_conn.h"

static int connect_unix(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket path '%s' is too long", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot connect to %s: %s", path, strerror(e));
        if (fd >= 0) close(fd);
        return -e;
    }
    return fd;
}

static int connect_tcp(const char *hostport, char *host, size_t hostlen, char *err, size_t errlen)
{
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= hostlen) {
        snprintf(err, errlen, "'%s': expected tls://HOST:PORT", hostport);
        return -EINVAL;
    }
    const char *h = hostport;
    size_t hl = (size_t)(colon - hostport);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int r = getaddrinfo(host, colon + 1, &hints, &res);
    if (r) {
        snprintf(err, errlen, "%s: %s", hostport, gai_strerror(r));
        return -EHOSTUNREACH;
    }
    int fd = -1, e = ECONNREFUSED;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", hostport, strerror(e));
        return -e;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int rpc_client_connect(struct rpc_client *c, const struct rpc_client_opts *o, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->next_id = 1;
    if (!strncmp(o->target, "unix:", 5)) {
        int fd = connect_unix(o->target + 5, err, errlen);
        if (fd < 0) return fd;
        c->fd = fd;
        return 0;
    }
    if (strncmp(o->target, "tls://", 6)) {
        snprintf(err, errlen, "'%s': expected unix:PATH or tls://HOST:PORT", o->target);
        return -EINVAL;
    }
    char host[256];
    int fd = connect_tcp(o->target + 6, host, sizeof(host), err, errlen);
    if (fd < 0) return fd;
    c->fd = fd;
    c->ctx = rpc_tls_client_ctx(o->cert, o->key, o->ca, err, errlen);
    if (!c->ctx) {
        rpc_client_close(c);
        return -EINVAL;
    }
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, fd);
    SSL_set_tlsext_host_name(c->ssl, host);
    SSL_set1_host(c->ssl, host); /* the server certificate must name the host we asked for */
    if (SSL_connect(c->ssl) != 1) {
        unsigned long e = ERR_get_error();
        char ebuf[256] = "handshake failed";
        if (e) ERR_error_string_n(e, ebuf, sizeof(ebuf));
        snprintf(err, errlen, "TLS handshake with %s: %s", o->target + 6, ebuf);
        rpc_client_close(c);
        return -ECONNREFUSED;
    }
    return 0;
}

void rpc_client_close(struct rpc_client *c)
{
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    if (c->ctx) SSL_CTX_free(c->ctx);
    if (c->fd >= 0) close(c->fd);
    free(c->buf);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

int rpc_client_send_raw(struct rpc_client *c, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n;
        if (c->ssl) {
            int r = SSL_write(c->ssl, data, len > 65536 ? 65536 : (int)len);
            n = r > 0 ? r : -1;
            if (r <= 0) errno = EPIPE;
        } else {
            n = send(c->fd, data, len, MSG_NOSIGNAL);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_msg(struct rpc_client *c, json_t *msg)
{
    size_t len;
    char *text = rpc_encode(msg, &len);
    json_decref(msg);
    if (!text) return -ENOMEM;
    int r = rpc_client_send_raw(c, text, len);
    free(text);
    return r;
}

int rpc_client_notify(struct rpc_client *c, const char *method, json_t *params)
{
    return send_msg(c, rpc_make_request(method, params, NULL));
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rpc_client_read(struct rpc_client *c, json_t **msg, int timeout_ms)
{
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            json_t *j = json_loadb(c->buf, n, JSON_DECODE_ANY, NULL);
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            if (!j) continue; /* not JSON: skip the line */
            *msg = j;
            return 1;
        }
        if (c->len > RPC_MAX_MESSAGE_DEFAULT * 4) return -EMSGSIZE;
        if (!(c->ssl && SSL_pending(c->ssl) > 0)) {
            int wait = -1;
            if (deadline >= 0) {
                long long left = deadline - now_ms();
                if (left <= 0) return 0;
                wait = (int)left;
            }
            struct pollfd p = {.fd = c->fd, .events = POLLIN};
            int r = poll(&p, 1, wait);
            if (r < 0) {
                if (errno == EINTR) continue;
                return -errno;
            }
            if (r == 0) return 0;
        }
        if (c->cap - c->len < 65536) {
            size_t cap = c->cap ? c->cap * 2 : 131072;
            char *b = realloc(c->buf, cap);
            if (!b) return -ENOMEM;
            c->buf = b;
            c->cap = cap;
        }
        ssize_t n;
        if (c->ssl) {
            int r = SSL_read(c->ssl, c->buf + c->len, 65536);
            if (r <= 0) {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_READ) continue;
                return -EPIPE;
            }
            n = r;
        } else {
            n = recv(c->fd, c->buf + c->len, 65536, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return -errno;
            if (n == 0) return -EPIPE;
        }
        c->len += (size_t)n;
    }
}

int rpc_client_call(struct rpc_client *c, const char *method, json_t *params, json_t **result, json_t **error,
                    char *err, size_t errlen)
{
    long long id = c->next_id++;
    *result = *error = NULL;
    int r = send_msg(c, rpc_make_request(method, params, json_integer(id)));
    if (r < 0) {
        snprintf(err, errlen, "sending %s: %s", method, strerror(-r));
        return r;
    }
    for (;;) {
        json_t *m;
        r = rpc_client_read(c, &m, -1);
        if (r <= 0) {
            snprintf(err, errlen, "waiting for the answer to %s: %s", method,
                     r == -EPIPE ? "connection closed by the server" : strerror(-r));
            return r < 0 ? r : -ETIMEDOUT;
        }
        json_t *mm = json_object_get(m, "method");
        if (json_is_string(mm)) {
            if (c->on_notification) c->on_notification(c->opaque, json_string_value(mm), json_object_get(m, "params"));
            json_decref(m);
            continue;
        }
        json_t *mid = json_object_get(m, "id");
        if (json_is_integer(mid) && json_integer_value(mid) == id) {
            json_t *e = json_object_get(m, "error");
            if (e) {
                *error = json_incref(e);
                json_decref(m);
                return 1;
            }
            *result = json_incref(json_object_get(m, "result"));
            json_decref(m);
            return 0;
        }
        if (json_is_null(mid) && json_object_get(m, "error")) { /* the server could not read our request */
            *error = json_incref(json_object_get(m, "error"));
            json_decref(m);
            return 1;
        }
        json_decref(m);
    }
}
