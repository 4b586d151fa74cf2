/* rpc_load: JSON-RPC load client for bench/rpc-bench.sh. N threads, each with its own
 * connection (TLS or Unix), make M calls of one method back to back; prints calls per second
 * and latency percentiles over all calls, as one JSON line.
 *
 *   rpc_load --connect tls://HOST:PORT --cert F --key F --ca F --clients N --calls M [--method vm.list]
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rpc/rpc_client.h"

static struct rpc_client_opts g_opts; /* set once in main, read by the threads */
static const char *g_method = "vm.list";
static int g_calls = 100;

struct worker {
    pthread_t t;
    double *lat_us;
    int done, failed;
    char err[256];
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct rpc_client c;
    if (rpc_client_connect(&c, &g_opts, w->err, sizeof(w->err)) < 0) {
        w->failed = g_calls;
        return NULL;
    }
    for (int i = 0; i < g_calls; i++) {
        json_t *res, *err;
        double t0 = now_us();
        int r = rpc_client_call(&c, g_method, NULL, &res, &err, w->err, sizeof(w->err));
        double t1 = now_us();
        if (r != 0) {
            w->failed++;
            json_decref(err);
            if (r < 0) break;
            continue;
        }
        json_decref(res);
        w->lat_us[w->done++] = t1 - t0;
    }
    rpc_client_close(&c);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"connect", required_argument, 0, 'c'}, {"cert", required_argument, 0, 'C'}, {"key", required_argument, 0, 'K'},
        {"ca", required_argument, 0, 'A'},      {"clients", required_argument, 0, 'n'}, {"calls", required_argument, 0, 'm'},
        {"method", required_argument, 0, 'M'},  {0, 0, 0, 0},
    };
    int clients = 8, c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'c': g_opts.target = optarg; break;
        case 'C': g_opts.cert = optarg; break;
        case 'K': g_opts.key = optarg; break;
        case 'A': g_opts.ca = optarg; break;
        case 'n': clients = atoi(optarg); break;
        case 'm': g_calls = atoi(optarg); break;
        case 'M': g_method = optarg; break;
        default: fprintf(stderr, "usage: rpc_load --connect TARGET [--cert F --key F --ca F] --clients N --calls M\n"); return 2;
        }
    }
    if (!g_opts.target || clients < 1 || g_calls < 1) return 2;
    struct worker *w = calloc((size_t)clients, sizeof(*w));
    for (int i = 0; i < clients; i++) w[i].lat_us = calloc((size_t)g_calls, sizeof(double));
    double t0 = now_us();
    for (int i = 0; i < clients; i++) pthread_create(&w[i].t, NULL, run, &w[i]);
    for (int i = 0; i < clients; i++) pthread_join(w[i].t, NULL);
    double secs = (now_us() - t0) / 1e6;
    size_t n = 0;
    int failed = 0;
    for (int i = 0; i < clients; i++) {
        n += (size_t)w[i].done;
        failed += w[i].failed;
        if (w[i].failed) fprintf(stderr, "rpc_load: client %d: %d failed (%s)\n", i, w[i].failed, w[i].err);
    }
    double *all = malloc((n ? n : 1) * sizeof(double));
    size_t k = 0;
    for (int i = 0; i < clients; i++) {
        memcpy(all + k, w[i].lat_us, (size_t)w[i].done * sizeof(double));
        k += (size_t)w[i].done;
    }
    qsort(all, n, sizeof(double), cmp);
    double p50 = n ? all[n / 2] : 0, p99 = n ? all[(size_t)((double)n * 0.99) < n ? (size_t)((double)n * 0.99) : n - 1] : 0;
    printf("{\"clients\": %d, \"calls\": %zu, \"failed\": %d, \"seconds\": %.3f, \"calls_per_s\": %.0f, \"p50_us\": %.0f, "
           "\"p99_us\": %.0f, \"max_us\": %.0f}\n",
           clients, n, failed, secs, n / secs, p50, p99, n ? all[n - 1] : 0);
    return failed ? 1 : 0;
}
