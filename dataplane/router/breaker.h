/**
 * Circuit breakers, one per target (provider, base URL and key), shared by
 * every worker of the gateway process: a target that keeps failing is left
 * alone for a cool-down instead of costing every request a failed attempt.
 *
 *   closed    -> open       after `failures` failures in a row, or an error
 *                           rate of `error_rate` or more over `window_ms`
 *                           once `min_requests` were seen in it
 *   open      -> half-open  `cooldown_ms` after opening: one probe passes
 *   half-open -> closed     the probe succeeded
 *   half-open -> open       the probe failed
 *
 * A failure is a network error, a timeout, a 429 or a 5xx. Times are
 * milliseconds on the caller's clock (uv_now), so tests drive them. At most
 * GW_BREAKER_MAX targets are tracked; past that, new targets are simply
 * not guarded. Any thread (a mutex guards the table; held for a lookup).
 */
#ifndef GW_BREAKER_H
#define GW_BREAKER_H

#include <stdint.h>

#include "common/buf.h"
#include "common/str.h"

#define GW_BREAKER_MAX 1024

typedef struct {
    int failures;        /* consecutive failures that open it; 0: not used */
    double error_rate;   /* 0..1; 0: not used */
    uint64_t window_ms;
    int min_requests;
    uint64_t cooldown_ms;
} gw_breaker_cfg_t;

enum { GW_BREAKER_CLOSED = 0, GW_BREAKER_OPEN = 1, GW_BREAKER_HALF_OPEN = 2 };

/**
 * May a request try the target now? With claim, a half-open breaker lets
 * this caller be its one probe (and no one else until it reports); without,
 * only looks. `label` names the target in /metrics (no secret in it).
 */
int gw_breaker_allow(sl_str_t key, sl_str_t label, const gw_breaker_cfg_t *c, uint64_t now,
                     int claim);
/** The outcome of a try that allow() let through. */
void gw_breaker_report(sl_str_t key, const gw_breaker_cfg_t *c, int ok, uint64_t now);
/** A try that allow() let through ended with no outcome (the client left): frees the probe. */
void gw_breaker_release(sl_str_t key);
/**
 * Latency of a target for the least_latency policy: an exponentially
 * weighted moving average (alpha 0.2) of the time to the answer's head,
 * in ms; -1 when never measured (such a target is tried first, to learn).
 */
void gw_breaker_latency_report(sl_str_t key, sl_str_t label, double ms);
double gw_breaker_latency(sl_str_t key);
/** The state of a target (GW_BREAKER_*; CLOSED when unknown). */
int gw_breaker_state(sl_str_t key);
/** Appends the breakers' state and transitions in Prometheus text format. */
int gw_breaker_render(sl_buf_t *out);
/** Forgets every breaker (tests). */
void gw_breaker_reset(void);

#endif
