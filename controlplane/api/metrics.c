/* Prometheus metrics of the admin API: requests by route and status,
 * latency histograms by route, and the Postgres pool. */
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "controlplane/api/api.h"

static const double buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))
#define NSTATUS 600

typedef struct {
    _Atomic uint64_t status[NSTATUS];
    _Atomic uint64_t le[NBUCKETS + 1];
    _Atomic uint64_t sum_us;
    _Atomic uint64_t count;
} route_stats_t;

struct cp_metrics_s {
    int nroutes;
    route_stats_t *r; /* nroutes + 1: the last one is "no route" */
};

struct cp_metrics_s *cp_metrics_new(int nroutes)
{
    struct cp_metrics_s *m = sl_xcalloc(1, sizeof(*m));
    m->nroutes = nroutes;
    m->r = sl_xcalloc((size_t)nroutes + 1, sizeof(route_stats_t));
    return m;
}

void cp_metrics_free(struct cp_metrics_s *m)
{
    if (m == NULL)
        return;
    sl_free(m->r);
    sl_free(m);
}

void cp_metrics_observe(struct cp_metrics_s *m, int route, int status, double seconds)
{
    route_stats_t *s = &m->r[route >= 0 && route < m->nroutes ? route : m->nroutes];
    if (status > 0 && status < NSTATUS)
        atomic_fetch_add_explicit(&s->status[status], 1, memory_order_relaxed);
    size_t b = 0;
    while (b < NBUCKETS && seconds > buckets[b])
        b++;
    atomic_fetch_add_explicit(&s->le[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

static void appendf(sl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(sl_buf_t *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* Past the cap (4 MiB) the exposition is cut short rather than grown. */
    if (n > 0 && sl_buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1) != 0)
        return;
}

int cp_h_metrics(cp_req_t *r)
{
    struct cp_metrics_s *m = r->app->metrics;
    int n;
    const cp_route_t *routes = cp_routes(&n);
    sl_buf_t b;
    cp_pool_stats_t ps;

    sl_buf_init(&b, 4u << 20);
    appendf(&b, "# HELP sluice_control_requests_total Admin API requests by route and status.\n"
                "# TYPE sluice_control_requests_total counter\n");
    for (int i = 0; i <= m->nroutes; i++) {
        const char *method = i < n ? routes[i].method : "";
        const char *path = i < n ? routes[i].path : "(none)";
        for (int st = 0; st < NSTATUS; st++) {
            uint64_t c = atomic_load_explicit(&m->r[i].status[st], memory_order_relaxed);
            if (c > 0)
                appendf(&b,
                        "sluice_control_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} "
                        "%llu\n",
                        method, path, st, (unsigned long long)c);
        }
    }
    appendf(&b, "# HELP sluice_control_request_seconds Admin API latency by route.\n"
                "# TYPE sluice_control_request_seconds histogram\n");
    for (int i = 0; i <= m->nroutes; i++) {
        uint64_t count = atomic_load_explicit(&m->r[i].count, memory_order_relaxed), cum = 0;
        if (count == 0)
            continue;
        const char *method = i < n ? routes[i].method : "";
        const char *path = i < n ? routes[i].path : "(none)";
        for (size_t k = 0; k <= NBUCKETS; k++) {
            cum += atomic_load_explicit(&m->r[i].le[k], memory_order_relaxed);
            if (k < NBUCKETS)
                appendf(&b,
                        "sluice_control_request_seconds_bucket{method=\"%s\",route=\"%s\","
                        "le=\"%g\"} %llu\n",
                        method, path, buckets[k], (unsigned long long)cum);
            else
                appendf(&b,
                        "sluice_control_request_seconds_bucket{method=\"%s\",route=\"%s\","
                        "le=\"+Inf\"} %llu\n",
                        method, path, (unsigned long long)cum);
        }
        appendf(&b, "sluice_control_request_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n",
                method, path,
                (double)atomic_load_explicit(&m->r[i].sum_us, memory_order_relaxed) / 1e6);
        appendf(&b, "sluice_control_request_seconds_count{method=\"%s\",route=\"%s\"} %llu\n",
                method, path, (unsigned long long)count);
    }
    cp_pool_stats(r->app->pool, &ps);
    appendf(&b,
            "# HELP sluice_control_db_pool_size Postgres connections the pool may hold.\n"
            "# TYPE sluice_control_db_pool_size gauge\nsluice_control_db_pool_size %d\n"
            "# HELP sluice_control_db_pool_open Postgres connections open.\n"
            "# TYPE sluice_control_db_pool_open gauge\nsluice_control_db_pool_open %d\n"
            "# HELP sluice_control_db_pool_in_use Postgres connections lent to requests.\n"
            "# TYPE sluice_control_db_pool_in_use gauge\nsluice_control_db_pool_in_use %d\n",
            ps.size, ps.open, ps.in_use);
    appendf(&b,
            "# HELP sluice_control_db_pool_waits_total Requests that waited for a connection.\n"
            "# TYPE sluice_control_db_pool_waits_total counter\n"
            "sluice_control_db_pool_waits_total %llu\n"
            "# HELP sluice_control_db_connect_failures_total Failed connection attempts.\n"
            "# TYPE sluice_control_db_connect_failures_total counter\n"
            "sluice_control_db_connect_failures_total %llu\n",
            (unsigned long long)ps.waits, (unsigned long long)ps.connect_failures);
    cp_reply_raw(r, 200, b.base != NULL ? b.base : "", b.len);
    sl_buf_dispose(&b);
    return 0;
}
