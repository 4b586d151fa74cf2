/* metrics: the Prometheus endpoint (`vmd --metrics ADDR:PORT`, docs/operations.md "Metrics") and
 * the daemon's own counters behind it: RPC calls by method and error code, their latency, the
 * connected clients.
 *
 * Threads: libmicrohttpd serves HTTP on its own thread; everything else runs on vmd's loop. Once
 * a second the loop asks every worker for its counters (stats.c) and renders the whole exposition
 * text from what it has; the HTTP thread only copies the last text out under `lock`. So a scrape
 * never touches the registry, and a figure is at most about a second old.
 *
 * Bounds: at most METRICS_MAX_CONNECTIONS connections (METRICS_MAX_PER_IP from one address), each
 * with METRICS_CONN_MEMORY bytes for its request and closed after METRICS_TIMEOUT_S idle seconds;
 * only GET/HEAD of /metrics are answered. A response is the current text (its size follows the
 * number of VMs, not anything a client sends).
 */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon/vmd.h"
#include "rpc/vmd_api.h"
#include "vmm/log.h"

#define METRICS_MAX_CONNECTIONS 16
#define METRICS_MAX_PER_IP 4
#define METRICS_CONN_MEMORY (16u << 10)
#define METRICS_TIMEOUT_S 10
#define METRICS_REFRESH_MS 1000

/* The error codes calls are counted by (0: a result); anything else counts as "other". */
static const int counted_codes[] = {0, RPC_PARSE_ERROR, RPC_INVALID_REQUEST, RPC_METHOD_NOT_FOUND, RPC_INVALID_PARAMS,
                                    RPC_INTERNAL_ERROR, RPC_ERR_NO_SUCH_VM, RPC_ERR_WRONG_STATE, RPC_ERR_EXISTS,
                                    RPC_ERR_WORKER, RPC_ERR_STORAGE, RPC_ERR_TIMEOUT, RPC_ERR_NO_SUCH_SNAPSHOT,
                                    RPC_ERR_SNAPSHOT_INVALID, RPC_ERR_FORBIDDEN, RPC_ERR_QUOTA,
                                    RPC_ERR_REQUEST_CONFLICT};
#define NCODES (sizeof(counted_codes) / sizeof(counted_codes[0]) + 1) /* + other */
/* Latency buckets, seconds (le). Most calls answer in microseconds; vm.start and vm.stop wait
 * for the guest. */
static const double buckets[] = {0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct method_counters {
    uint64_t calls[NCODES];
    uint64_t le[NBUCKETS]; /* calls that took at most buckets[i] (not cumulative here) */
    uint64_t count;
    double sum;
};

struct metrics {
    struct vmd *d;
    struct method_counters *methods; /* vmd_api_nmethods + 1 (unknown methods) */
    uv_timer_t timer;
    struct MHD_Daemon *httpd;
    pthread_mutex_t lock; /* guards text/len between the loop (writer) and the HTTP thread */
    char *text;
    size_t len;
};

static uint64_t now_ns(void) { return uv_hrtime(); }

/* ---- RPC call counters (loop thread) ---- */

static void on_answer(struct rpc_call *c, int code)
{
    struct metrics *mx = c->answer_opaque;
    struct method_counters *mc = &mx->methods[c->answer_index];
    size_t k = 0;
    while (k < NCODES - 1 && counted_codes[k] != code) k++;
    mc->calls[k]++;
    double s = (double)(now_ns() - c->started_ns) / 1e9;
    for (size_t b = 0; b < NBUCKETS; b++)
        if (s <= buckets[b]) {
            mc->le[b]++;
            break;
        }
    mc->count++;
    mc->sum += s;
}

void metrics_count_call(struct vmd *d, struct rpc_call *call, const char *method)
{
    struct metrics *mx = d->metrics;
    if (!mx) return;
    const struct vmd_api_method *spec = method ? vmd_api_find(method) : NULL;
    call->answer_index = spec ? (size_t)(spec - vmd_api_methods) : vmd_api_nmethods;
    call->answer_opaque = mx;
    call->started_ns = now_ns();
    call->on_answer = on_answer;
}

/* ---- the exposition text (loop thread) ---- */

struct out {
    char *buf;
    size_t len;
    FILE *f;
};

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Label values here are VM names, method names and numbers (vmd checks names to [A-Za-z0-9._-]),
 * but escape them as the format says anyway. */
static void label_value(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') fputc('\\', f), fputc(*s, f);
        else if (*s == '\n') fputs("\\n", f);
        else fputc(*s, f);
    }
}

/* One sample per VM (and per item of its array `arr`, labelled `item_label`) of field `key`. */
static void vm_samples(FILE *f, json_t *const *stats, size_t n, const char *name, const char *arr,
                       const char *item_label, const char *key, double scale)
{
    for (size_t i = 0; i < n; i++) {
        const char *vm = json_string_value(json_object_get(stats[i], "name"));
        if (!arr) {
            json_t *v = json_object_get(stats[i], key);
            if (!json_is_number(v)) continue;
            fprintf(f, "%s{vm=\"", name);
            label_value(f, vm);
            fprintf(f, "\"} %.17g\n", json_number_value(v) * scale);
            continue;
        }
        size_t k;
        json_t *item;
        json_array_foreach(json_object_get(stats[i], arr), k, item) {
            json_t *v = json_object_get(item, key);
            if (!json_is_number(v)) continue;
            fprintf(f, "%s{vm=\"", name);
            label_value(f, vm);
            fprintf(f, "\",%s=\"%zu\"} %.17g\n", item_label, k, json_number_value(v) * scale);
        }
    }
}

static void render(struct metrics *mx)
{
    struct vmd *d = mx->d;
    struct out o = {0};
    o.f = open_memstream(&o.buf, &o.len);
    if (!o.f) return;
    FILE *f = o.f;
    size_t n = 0, cap = 0;
    for (struct vm_record *vm = d->vms; vm; vm = vm->next) cap++;
    json_t **stats = calloc(cap ? cap : 1, sizeof(*stats));
    if (!stats) {
        fclose(f);
        free(o.buf);
        return;
    }
    for (struct vm_record *vm = d->vms; vm && n < cap; vm = vm->next) stats[n++] = vm_stats_json(vm);

    /* per VM */
    family(f, "vmd_vm_state", "gauge", "1 for the state the VM is in, 0 for the others");
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < VM_STATE_COUNT; s++) {
            const char *st = vm_state_name((enum vm_state)s);
            fputs("vmd_vm_state{vm=\"", f);
            label_value(f, json_string_value(json_object_get(stats[i], "name")));
            fprintf(f, "\",state=\"%s\"} %d\n", st, !strcmp(st, json_string_value(json_object_get(stats[i], "state"))));
        }
    family(f, "vmd_vm_uptime_seconds", "gauge", "seconds since the VM's worker started it (running or paused VMs)");
    vm_samples(f, stats, n, "vmd_vm_uptime_seconds", NULL, NULL, "uptime_s", 1);
    family(f, "vmd_vm_memory_bytes", "gauge", "guest memory, as defined");
    vm_samples(f, stats, n, "vmd_vm_memory_bytes", NULL, NULL, "memory_bytes", 1);
    family(f, "vmd_vm_worker_rss_bytes", "gauge", "resident memory of the VM's worker process (from /proc)");
    vm_samples(f, stats, n, "vmd_vm_worker_rss_bytes", NULL, NULL, "worker_rss_bytes", 1);
    family(f, "vmd_vm_vcpu_seconds_total", "counter", "CPU time of the vCPU's threads since the worker started");
    vm_samples(f, stats, n, "vmd_vm_vcpu_seconds_total", "vcpu_stats", "vcpu", "cpu_seconds", 1);
    family(f, "vmd_vm_instructions_total", "counter", "guest instructions executed by the emulator (accel emu)");
    for (size_t i = 0; i < n; i++)
        if (!strcmp(json_string_value(json_object_get(stats[i], "accel")), "emu"))
            vm_samples(f, &stats[i], 1, "vmd_vm_instructions_total", "vcpu_stats", "vcpu", "instructions", 1);
    family(f, "vmd_vm_exits_total", "counter", "KVM_RUN exits by reason (accel kvm)");
    for (size_t i = 0; i < n; i++) {
        if (strcmp(json_string_value(json_object_get(stats[i], "accel")), "kvm")) continue;
        size_t k;
        json_t *v;
        json_array_foreach(json_object_get(stats[i], "vcpu_stats"), k, v) {
            const char *reason;
            json_t *cnt;
            json_object_foreach(json_object_get(v, "exits"), reason, cnt) {
                fputs("vmd_vm_exits_total{vm=\"", f);
                label_value(f, json_string_value(json_object_get(stats[i], "name")));
                fprintf(f, "\",vcpu=\"%zu\",reason=\"%s\"} %lld\n", k, reason, (long long)json_integer_value(cnt));
            }
        }
    }
    static const struct {
        const char *metric, *arr, *label, *key, *help;
    } io[] = {
        {"vmd_vm_disk_read_bytes_total", "disks", "disk", "read_bytes", "bytes the guest read from the disk"},
        {"vmd_vm_disk_written_bytes_total", "disks", "disk", "write_bytes", "bytes the guest wrote to the disk"},
        {"vmd_vm_disk_read_ops_total", "disks", "disk", "read_ops", "read requests the disk completed"},
        {"vmd_vm_disk_write_ops_total", "disks", "disk", "write_ops", "write requests the disk completed"},
        {"vmd_vm_disk_flush_ops_total", "disks", "disk", "flush_ops", "flush requests the disk completed"},
        {"vmd_vm_net_receive_bytes_total", "nets", "nic", "rx_bytes", "bytes delivered to the guest"},
        {"vmd_vm_net_transmit_bytes_total", "nets", "nic", "tx_bytes", "bytes the guest sent"},
        {"vmd_vm_net_receive_packets_total", "nets", "nic", "rx_packets", "frames delivered to the guest"},
        {"vmd_vm_net_transmit_packets_total", "nets", "nic", "tx_packets", "frames the guest sent"},
        {"vmd_vm_net_receive_dropped_total", "nets", "nic", "rx_dropped", "frames dropped: the guest had no buffer"},
    };
    for (size_t k = 0; k < sizeof(io) / sizeof(io[0]); k++) {
        family(f, io[k].metric, "counter", io[k].help);
        vm_samples(f, stats, n, io[k].metric, io[k].arr, io[k].label, io[k].key, 1);
    }
    for (size_t i = 0; i < n; i++) json_decref(stats[i]);
    free(stats);

    /* the daemon */
    family(f, "vmd_rpc_calls_total", "counter", "JSON-RPC calls answered, by method and error code (ok: a result)");
    for (size_t m = 0; m <= vmd_api_nmethods; m++)
        for (size_t k = 0; k < NCODES; k++) {
            if (!mx->methods[m].calls[k]) continue;
            char code[16];
            if (k == NCODES - 1) snprintf(code, sizeof(code), "other");
            else if (!counted_codes[k]) snprintf(code, sizeof(code), "ok");
            else snprintf(code, sizeof(code), "%d", counted_codes[k]);
            fprintf(f, "vmd_rpc_calls_total{method=\"%s\",code=\"%s\"} %llu\n",
                    m < vmd_api_nmethods ? vmd_api_methods[m].name : "unknown", code,
                    (unsigned long long)mx->methods[m].calls[k]);
        }
    family(f, "vmd_rpc_duration_seconds", "histogram", "time from a JSON-RPC call's arrival to its answer");
    for (size_t m = 0; m <= vmd_api_nmethods; m++) {
        const struct method_counters *mc = &mx->methods[m];
        if (!mc->count) continue;
        const char *name = m < vmd_api_nmethods ? vmd_api_methods[m].name : "unknown";
        uint64_t cum = 0;
        for (size_t b = 0; b < NBUCKETS; b++) {
            cum += mc->le[b];
            fprintf(f, "vmd_rpc_duration_seconds_bucket{method=\"%s\",le=\"%g\"} %llu\n", name, buckets[b],
                    (unsigned long long)cum);
        }
        fprintf(f, "vmd_rpc_duration_seconds_bucket{method=\"%s\",le=\"+Inf\"} %llu\n", name, (unsigned long long)mc->count);
        fprintf(f, "vmd_rpc_duration_seconds_sum{method=\"%s\"} %.9f\n", name, mc->sum);
        fprintf(f, "vmd_rpc_duration_seconds_count{method=\"%s\"} %llu\n", name, (unsigned long long)mc->count);
    }
    unsigned unix_clients = 0, tls_clients = 0;
    for (struct client *cl = d->clients; cl; cl = cl->next) cl->tls ? tls_clients++ : unix_clients++;
    family(f, "vmd_clients", "gauge", "connected API clients by transport");
    fprintf(f, "vmd_clients{transport=\"unix\"} %u\nvmd_clients{transport=\"tls\"} %u\n", unix_clients, tls_clients);
    family(f, "vmd_start_time_seconds", "gauge", "when vmd started, Unix time");
    fprintf(f, "vmd_start_time_seconds %lld\n", (long long)d->started);
    if (fclose(f) != 0) {
        free(o.buf);
        return;
    }
    pthread_mutex_lock(&mx->lock);
    free(mx->text);
    mx->text = o.buf;
    mx->len = o.len;
    pthread_mutex_unlock(&mx->lock);
}

static void on_timer(uv_timer_t *t)
{
    struct metrics *mx = t->data;
    render(mx); /* with the counters the workers gave last time */
    stats_refresh_all(mx->d);
}

/* ---- HTTP (libmicrohttpd's thread) ---- */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned status, const char *text, bool copy_current,
                               struct metrics *mx)
{
    struct MHD_Response *r;
    if (copy_current) {
        pthread_mutex_lock(&mx->lock);
        char *body = malloc(mx->len ? mx->len : 1);
        size_t len = body ? mx->len : 0;
        if (body && len) memcpy(body, mx->text, len);
        pthread_mutex_unlock(&mx->lock);
        if (!body) return MHD_NO;
        r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (r) MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        else free(body);
    } else {
        r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
        if (r) MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
        if (r && status == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(r, "Allow", "GET, HEAD");
    }
    if (!r) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)con_cls;
    *upload_data_size = 0; /* a body is never read into memory: it is discarded */
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
        return respond(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics\n", false, cls);
    if (strcmp(url, "/metrics")) return respond(conn, MHD_HTTP_NOT_FOUND, "not found: the metrics are at /metrics\n", false, cls);
    return respond(conn, MHD_HTTP_OK, NULL, true, cls);
}

int metrics_init(struct vmd *d)
{
    struct metrics *mx = calloc(1, sizeof(*mx));
    if (!mx || !(mx->methods = calloc(vmd_api_nmethods + 1, sizeof(*mx->methods)))) {
        free(mx);
        return -ENOMEM;
    }
    mx->d = d;
    pthread_mutex_init(&mx->lock, NULL);
    d->metrics = mx;
    return 0;
}

int metrics_listen(struct vmd *d, const char *spec, char *err, size_t errlen)
{
    struct metrics *mx = d->metrics;
    /* ADDR:PORT, [V6ADDR]:PORT or PORT (then 127.0.0.1) */
    char host[256], port[16];
    const char *colon = strrchr(spec, ':');
    if (!colon) {
        snprintf(host, sizeof(host), "127.0.0.1");
        snprintf(port, sizeof(port), "%s", spec);
    } else {
        size_t hl = (size_t)(colon - spec);
        if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') spec++, hl -= 2;
        if (hl >= sizeof(host)) hl = sizeof(host) - 1;
        memcpy(host, spec, hl);
        host[hl] = 0;
        if (!host[0]) snprintf(host, sizeof(host), "127.0.0.1");
        snprintf(port, sizeof(port), "%s", colon + 1);
    }
    char *end;
    long pn = strtol(port, &end, 10);
    if (!port[0] || *end || pn < 1 || pn > 65535) {
        snprintf(err, errlen, "--metrics '%s': expected ADDR:PORT with a port between 1 and 65535", spec);
        return -EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int r = getaddrinfo(host, port, &hints, &ai);
    if (r) {
        snprintf(err, errlen, "--metrics '%s': %s", spec, gai_strerror(r));
        return -EINVAL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    mx->httpd = MHD_start_daemon(flags, (uint16_t)pn, NULL, NULL, on_request, mx, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                                 MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_MAX_CONNECTIONS,
                                 MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)METRICS_MAX_PER_IP,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_TIMEOUT_S,
                                 MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)METRICS_CONN_MEMORY, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!mx->httpd) {
        snprintf(err, errlen, "--metrics '%s': cannot listen there (address in use, or not this host's?)", spec);
        return -EADDRINUSE;
    }
    render(mx);
    uv_timer_init(d->loop, &mx->timer);
    mx->timer.data = mx;
    uv_timer_start(&mx->timer, on_timer, METRICS_REFRESH_MS, METRICS_REFRESH_MS);
    stats_refresh_all(d);
    return 0;
}

void metrics_stop(struct vmd *d)
{
    struct metrics *mx = d->metrics;
    if (mx && mx->httpd) {
        MHD_stop_daemon(mx->httpd);
        mx->httpd = NULL;
    }
}
