/**
 * Prometheus metrics. Each worker owns a gw_metrics_t and updates it on its
 * loop thread; /metrics (any worker) merges all of them, taking each one's
 * mutex briefly. Series are keyed by (provider, model, status); past
 * GW_METRICS_MAX_SERIES distinct keys, new models count as "other" so that
 * a client cannot grow memory without bound.
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include <stdint.h>

#include "common/buf.h"
#include "common/str.h"

#define GW_METRICS_MAX_SERIES 1024

typedef struct gw_metrics_s gw_metrics_t;

gw_metrics_t *gw_metrics_new(void);
void gw_metrics_free(gw_metrics_t *m);

/** One finished request: latency and the gateway's own overhead, in ns. */
void gw_metrics_request(gw_metrics_t *m, sl_str_t provider, sl_str_t model, int status,
                        uint64_t latency_ns, uint64_t overhead_ns);
/** Tokens of one answer, as the provider counted them (normalised usage). */
void gw_metrics_tokens(gw_metrics_t *m, sl_str_t provider, sl_str_t model, int status,
                       uint64_t prompt, uint64_t completion, uint64_t cached);
/** An upstream failure by kind ("connect", "timeout", "stream", "forbidden", ...). */
void gw_metrics_upstream_error(gw_metrics_t *m, sl_str_t provider, const char *kind);

/** Renders the merged metrics of ms[0..n) in Prometheus text format. */
int gw_metrics_render(sl_buf_t *out, gw_metrics_t *const *ms, const unsigned *open_conns,
                      const unsigned *inflight, int n);

#endif
