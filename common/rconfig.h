/**
 * Routing configs in Portkey's schema, parsed and validated in one place for
 * both planes (the control plane validates what it stores, the gateway what
 * a request brings in x-sluice-config or a --config file).
 *
 *   {"strategy": {"mode": "fallback", "on_status_codes": [429, 500]},
 *    "retry": {"attempts": 3, "on_status_codes": [429], "use_retry_after_header": true},
 *    "request_timeout": 10000,
 *    "targets": [{"provider": "openai", "api_key": "sk-...", "override_params": {...}},
 *                {"strategy": {"mode": "loadbalance"}, "targets": [...], "weight": 0.5}]}
 *
 * A node is the config itself or one of its targets, nested to any depth: a
 * node with "targets" routes among them by its strategy; a node without is a
 * leaf naming a provider. Settings given on a node (retry, request_timeout,
 * override_params, custom_host, forward_headers, cache, guardrails) apply to
 * the leaves below it unless a deeper node sets its own.
 *
 * Errors name the JSON path of what is wrong:
 * "targets[1].retry.attempts: must be an integer 0..10". A config is never
 * partly accepted. The parsed config lives in the arena given, with the
 * JSON values it keeps (override_params, conditions' queries, the fields of
 * later features) referenced until the arena is cleared. Pure functions;
 * any thread.
 */
#ifndef SL_RCONFIG_H
#define SL_RCONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/str.h"

#define SL_RCFG_MAX_ATTEMPTS 10
#define SL_RCFG_MAX_DEPTH 8
#define SL_RCFG_MAX_TARGETS 64
#define SL_RCFG_MAX_CODES 32
#define SL_RCFG_MAX_TIMEOUT_MS 3600000

typedef enum {
    SL_RCFG_SINGLE = 0,
    SL_RCFG_FALLBACK,
    SL_RCFG_LOADBALANCE,
    SL_RCFG_CONDITIONAL,
} sl_rcfg_mode_t;

typedef enum { SL_RCFG_WEIGHTED = 0, SL_RCFG_LEAST_LATENCY } sl_rcfg_policy_t;

typedef struct {
    int set;                 /* given on this node */
    int attempts;            /* retries after the first try, 0..10 */
    int codes[SL_RCFG_MAX_CODES];
    size_t ncodes;           /* 0: the defaults (429, 500, 502, 503, 504) */
    int use_retry_after;     /* honour Retry-After / retry-after-ms */
} sl_rcfg_retry_t;

typedef struct {
    int set;                 /* given on this node */
    int failures;            /* consecutive failures that open it (default 5) */
    double error_rate;       /* 0..1 over window_ms; 0: not used */
    uint64_t window_ms;      /* default 30000 */
    int min_requests;        /* in the window before the rate counts (default 10) */
    uint64_t cooldown_ms;    /* open -> half-open (default 30000) */
} sl_rcfg_breaker_t;

typedef struct {
    json_t *query;           /* borrowed from the config's JSON (kept by the arena) */
    const char *then;        /* a target name */
} sl_rcfg_cond_t;

typedef struct sl_rcfg_node_s sl_rcfg_node_t;
struct sl_rcfg_node_s {
    const char *path;        /* "config", "config.targets[1]" (arena) */
    const char *name;        /* "name", for conditions; may be NULL */
    /* routing, for a node with targets */
    sl_rcfg_mode_t mode;
    sl_rcfg_policy_t policy;
    int codes[SL_RCFG_MAX_CODES]; /* strategy.on_status_codes; none: any non-2xx */
    size_t ncodes;
    sl_rcfg_cond_t *conds;
    size_t nconds;
    const char *default_target;
    sl_rcfg_node_t *targets;
    size_t ntargets;
    /* a leaf */
    const char *provider;
    const char *api_key;     /* never logged */
    const char *virtual_key;
    const char *custom_host;
    double weight;           /* default 1; 0 excludes the target */
    /* settings inherited by the leaves below */
    sl_rcfg_retry_t retry;
    uint64_t request_timeout_ms; /* 0: not set here */
    sl_rcfg_breaker_t breaker;   /* circuit_breaker (beyond Portkey) */
    json_t *override_params; /* object or NULL (borrowed) */
    json_t *forward_headers; /* array of strings or NULL (borrowed) */
    json_t *cache;           /* validated shape; acted on by the cache issue */
    json_t *input_guardrails, *output_guardrails; /* before/after_request_hooks too */
    json_t *options;         /* the leaf's other keys (provider options, e.g. aws_region) */
};

typedef struct {
    sl_rcfg_node_t root;
    json_t *json;            /* the whole config (reference kept by the arena) */
} sl_rcfg_t;

/**
 * Parses and validates a config given as JSON text. 0, or SL_EINVAL with
 * *err set to a message naming the JSON path (arena).
 */
int sl_rcfg_parse(sl_arena_t *a, sl_str_t text, sl_rcfg_t *out, const char **err);
/** The same, from a JSON value (borrowed; a reference is taken). */
int sl_rcfg_parse_json(sl_arena_t *a, json_t *v, sl_rcfg_t *out, const char **err);

/**
 * Evaluates a condition query against the request: "metadata.<key>",
 * "params.<key>" (top-level request body fields), "url.pathname". Operators
 * $eq $ne $in $nin $gt $gte $lt $lte $regex $and $or; a bare value means
 * $eq. Missing fields never match except under $ne/$nin.
 */
int sl_rcfg_match(const json_t *query, const json_t *metadata, const json_t *params,
                  sl_str_t pathname);

#endif
