#include "dataplane/telemetry/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"

/* Seconds; chosen around LLM latencies (first token to long generations). */
static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                 0.5,   1,     2.5,  5,     10,   30,  60, 120};
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))
/* Overhead is microseconds-scale. */
static const double obuckets[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025,
                                  0.0005,  0.001,    0.0025,  0.005,  0.01};
#define NOBUCKETS (sizeof(obuckets) / sizeof(obuckets[0]))
#define GW_METRICS_OTHER_SLOTS 16

typedef struct {
    char provider[48];
    char model[96];
    int status;
    uint64_t count;
    uint64_t tokens[3]; /* prompt, completion, cached prompt */
} series_t;

typedef struct {
    char provider[48];
    char kind[24];
    uint64_t count;
} err_series_t;

struct gw_metrics_s {
    pthread_mutex_t lock;
    series_t series[GW_METRICS_MAX_SERIES];
    size_t nseries;
    series_t other[GW_METRICS_OTHER_SLOTS]; /* overflow, by status */
    size_t nother;
    err_series_t errs[128];
    size_t nerrs;
    uint64_t lat_buckets[NBUCKETS + 1];
    double lat_sum;
    uint64_t lat_count;
    uint64_t ov_buckets[NOBUCKETS + 1];
    double ov_sum;
};

gw_metrics_t *gw_metrics_new(void)
{
    gw_metrics_t *m = sl_xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void gw_metrics_free(gw_metrics_t *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->lock);
    sl_free(m);
}

/* Label values stay valid in the text format: no control bytes, quotes or
 * backslashes (UTF-8 passes). Truncation keeps whole bytes; a cut UTF-8
 * sequence is harmless to Prometheus. */
static void copy_label(char *dst, size_t cap, sl_str_t s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.base[i];
        dst[i] = (c < 0x20 || c == '"' || c == '\\' || c == 0x7f) ? '_' : (char)c;
    }
    dst[n] = '\0';
}

/*
 * Finds or adds the series for already-sanitized labels. Past the regular
 * capacity a series goes to "other" for its status, so that neither a
 * client inventing model names nor a merge of many workers can grow the
 * table or lose counts.
 */
static series_t *series_slot(gw_metrics_t *m, const char *provider, const char *model,
                             int status)
{
    int is_other = strcmp(provider, "other") == 0 && strcmp(model, "other") == 0;
    for (size_t i = 0; !is_other && i < m->nseries; i++) {
        series_t *c = &m->series[i];
        if (c->status == status && strcmp(c->model, model) == 0 &&
            strcmp(c->provider, provider) == 0)
            return c;
    }
    if (!is_other && m->nseries < GW_METRICS_MAX_SERIES) {
        series_t *c = &m->series[m->nseries++];
        snprintf(c->provider, sizeof(c->provider), "%s", provider);
        snprintf(c->model, sizeof(c->model), "%s", model);
        c->status = status;
        c->count = 0;
        return c;
    }
    for (size_t i = 0; i < m->nother; i++)
        if (m->other[i].status == status)
            return &m->other[i];
    /* Statuses are few; past the table, the last slot takes all of them. */
    series_t *c = &m->other[m->nother < GW_METRICS_OTHER_SLOTS ? m->nother++ : m->nother - 1];
    if (c->count == 0 || c->status != status) {
        snprintf(c->provider, sizeof(c->provider), "other");
        snprintf(c->model, sizeof(c->model), "other");
        if (c->count == 0)
            c->status = status;
    }
    return c;
}

void gw_metrics_request(gw_metrics_t *m, sl_str_t provider, sl_str_t model, int status,
                        uint64_t latency_ns, uint64_t overhead_ns)
{
    double lat = (double)latency_ns / 1e9, ov = (double)overhead_ns / 1e9;
    char p[48], mo[96];
    copy_label(p, sizeof(p), provider);
    copy_label(mo, sizeof(mo), model);
    pthread_mutex_lock(&m->lock);
    series_slot(m, p, mo, status)->count++;
    size_t b = 0;
    while (b < NBUCKETS && lat > buckets[b])
        b++;
    m->lat_buckets[b]++;
    m->lat_sum += lat;
    m->lat_count++;
    b = 0;
    while (b < NOBUCKETS && ov > obuckets[b])
        b++;
    m->ov_buckets[b]++;
    m->ov_sum += ov;
    pthread_mutex_unlock(&m->lock);
}

void gw_metrics_tokens(gw_metrics_t *m, sl_str_t provider, sl_str_t model, int status,
                       uint64_t prompt, uint64_t completion, uint64_t cached)
{
    char p[48], mo[96];
    copy_label(p, sizeof(p), provider);
    copy_label(mo, sizeof(mo), model);
    pthread_mutex_lock(&m->lock);
    series_t *c = series_slot(m, p, mo, status);
    c->tokens[0] += prompt;
    c->tokens[1] += completion;
    c->tokens[2] += cached;
    pthread_mutex_unlock(&m->lock);
}

void gw_metrics_upstream_error(gw_metrics_t *m, sl_str_t provider, const char *kind)
{
    char p[48];
    copy_label(p, sizeof(p), provider);
    pthread_mutex_lock(&m->lock);
    err_series_t *e = NULL;
    for (size_t i = 0; i < m->nerrs; i++)
        if (strcmp(m->errs[i].kind, kind) == 0 && strcmp(m->errs[i].provider, p) == 0) {
            e = &m->errs[i];
            break;
        }
    if (e == NULL && m->nerrs < SL_ARRAY_SIZE(m->errs)) {
        e = &m->errs[m->nerrs++];
        snprintf(e->provider, sizeof(e->provider), "%s", p);
        copy_label(e->kind, sizeof(e->kind), sl_str_c(kind));
    }
    if (e != NULL)
        e->count++;
    pthread_mutex_unlock(&m->lock);
}

#define APPENDF(...)                                                                               \
    do {                                                                                           \
        char line_[512];                                                                           \
        int n_ = snprintf(line_, sizeof(line_), __VA_ARGS__);                                      \
        if (n_ > 0 && sl_buf_append(out, line_, (size_t)n_ < sizeof(line_) ? (size_t)n_ : sizeof(line_) - 1) != 0) \
        {                                                                                          \
            sl_free(sump);                                                                         \
            return SL_ETOOBIG;                                                                     \
        }                                                                                          \
    } while (0)

int gw_metrics_render(sl_buf_t *out, gw_metrics_t *const *ms, const unsigned *open_conns,
                      const unsigned *inflight, int n)
{
    /* Merge first, so each worker's lock is held only for a copy. */
    gw_metrics_t *sump = sl_xcalloc(1, sizeof(*sump));
#define sum (*sump)
    unsigned conns = 0, infl = 0;
    for (int w = 0; w < n; w++) {
        gw_metrics_t *m = ms[w];
        conns += open_conns[w];
        infl += inflight[w];
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->nseries + m->nother; i++) {
            const series_t *from = i < m->nseries ? &m->series[i] : &m->other[i - m->nseries];
            series_t *to = series_slot(&sum, from->provider, from->model, from->status);
            to->count += from->count;
            for (int k = 0; k < 3; k++)
                to->tokens[k] += from->tokens[k];
        }
        for (size_t i = 0; i < m->nerrs; i++) {
            size_t j;
            for (j = 0; j < sum.nerrs; j++)
                if (strcmp(sum.errs[j].kind, m->errs[i].kind) == 0 &&
                    strcmp(sum.errs[j].provider, m->errs[i].provider) == 0)
                    break;
            if (j == sum.nerrs) {
                if (sum.nerrs == SL_ARRAY_SIZE(sum.errs))
                    continue;
                sum.errs[sum.nerrs++] = m->errs[i];
            } else {
                sum.errs[j].count += m->errs[i].count;
            }
        }
        for (size_t b = 0; b <= NBUCKETS; b++)
            sum.lat_buckets[b] += m->lat_buckets[b];
        for (size_t b = 0; b <= NOBUCKETS; b++)
            sum.ov_buckets[b] += m->ov_buckets[b];
        sum.lat_sum += m->lat_sum;
        sum.lat_count += m->lat_count;
        sum.ov_sum += m->ov_sum;
        pthread_mutex_unlock(&m->lock);
    }
    APPENDF("# HELP sluice_requests_total Requests answered, by provider, model and status.\n");
    APPENDF("# TYPE sluice_requests_total counter\n");
    for (size_t i = 0; i < sum.nseries; i++)
        APPENDF("sluice_requests_total{provider=\"%s\",model=\"%s\",status=\"%d\"} %llu\n",
                sum.series[i].provider, sum.series[i].model, sum.series[i].status,
                (unsigned long long)sum.series[i].count);
    for (size_t i = 0; i < sum.nother; i++)
        APPENDF("sluice_requests_total{provider=\"other\",model=\"other\",status=\"%d\"} %llu\n",
                sum.other[i].status, (unsigned long long)sum.other[i].count);
    APPENDF("# HELP sluice_tokens_total Tokens the providers counted, by provider, model, "
            "status and type (cached: prompt tokens read from the provider's cache).\n");
    APPENDF("# TYPE sluice_tokens_total counter\n");
    static const char *const ttype[3] = {"prompt", "completion", "cached"};
    for (size_t i = 0; i < sum.nseries + sum.nother; i++) {
        const series_t *c = i < sum.nseries ? &sum.series[i] : &sum.other[i - sum.nseries];
        for (int k = 0; k < 3; k++)
            if (c->tokens[k] > 0)
                APPENDF("sluice_tokens_total{provider=\"%s\",model=\"%s\",status=\"%d\","
                        "type=\"%s\"} %llu\n",
                        c->provider, c->model, c->status, ttype[k],
                        (unsigned long long)c->tokens[k]);
    }
    APPENDF("# HELP sluice_request_duration_seconds Time from request to response end.\n");
    APPENDF("# TYPE sluice_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t b = 0; b < NBUCKETS; b++) {
        cum += sum.lat_buckets[b];
        APPENDF("sluice_request_duration_seconds_bucket{le=\"%g\"} %llu\n", buckets[b],
                (unsigned long long)cum);
    }
    cum += sum.lat_buckets[NBUCKETS];
    APPENDF("sluice_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    APPENDF("sluice_request_duration_seconds_sum %.6f\n", sum.lat_sum);
    APPENDF("sluice_request_duration_seconds_count %llu\n", (unsigned long long)sum.lat_count);
    APPENDF("# HELP sluice_overhead_seconds Time a request spent inside the gateway, "
            "excluding the wait for the upstream.\n");
    APPENDF("# TYPE sluice_overhead_seconds histogram\n");
    cum = 0;
    for (size_t b = 0; b < NOBUCKETS; b++) {
        cum += sum.ov_buckets[b];
        APPENDF("sluice_overhead_seconds_bucket{le=\"%g\"} %llu\n", obuckets[b],
                (unsigned long long)cum);
    }
    cum += sum.ov_buckets[NOBUCKETS];
    APPENDF("sluice_overhead_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    APPENDF("sluice_overhead_seconds_sum %.6f\n", sum.ov_sum);
    APPENDF("sluice_overhead_seconds_count %llu\n", (unsigned long long)sum.lat_count);
    APPENDF("# HELP sluice_upstream_errors_total Upstream failures by provider and kind.\n");
    APPENDF("# TYPE sluice_upstream_errors_total counter\n");
    for (size_t i = 0; i < sum.nerrs; i++)
        APPENDF("sluice_upstream_errors_total{provider=\"%s\",kind=\"%s\"} %llu\n",
                sum.errs[i].provider, sum.errs[i].kind, (unsigned long long)sum.errs[i].count);
    APPENDF("# HELP sluice_open_connections Client connections open now.\n");
    APPENDF("# TYPE sluice_open_connections gauge\n");
    APPENDF("sluice_open_connections %u\n", conns);
    APPENDF("# HELP sluice_requests_in_flight Requests being handled now.\n");
    APPENDF("# TYPE sluice_requests_in_flight gauge\n");
    APPENDF("sluice_requests_in_flight %u\n", infl);
#undef sum
    sl_free(sump);
    return 0;
}
