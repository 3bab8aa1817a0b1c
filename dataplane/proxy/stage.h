/**
 * The request pipeline's stages. A request goes through them in the order
 * of the table in proxy.c:
 *
 *   auth -> parse -> guardrails.input -> cache.lookup -> quota.check
 *        -> router -> provider (build the upstream request) -> upstream
 *   upstream response -> guardrails.output -> cache.store -> respond
 *        -> telemetry
 *
 * Each stage returns GW_STAGE_NEXT to go on, GW_STAGE_ANSWERED when it has
 * sent the response itself (a cache hit, a guardrail deny), or a negative
 * SL_E* code, which the pipeline turns into an OpenAI-style error (with
 * px->error_message and px->error_param when the stage set them).
 * Stages run on the worker's loop thread and must not block.
 */
#ifndef GW_STAGE_H
#define GW_STAGE_H

#include <jansson.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/sse.h"
#include "common/str.h"
#include "common/provider.h"
#include "dataplane/server/http.h"
#include "dataplane/upstream/upstream.h"

enum { GW_STAGE_NEXT = 0, GW_STAGE_ANSWERED = 1 };

typedef enum {
    GW_EP_OTHER = 0, /* any other /v1 path: passed through as-is */
    GW_EP_CHAT,
    GW_EP_COMPLETIONS,
    GW_EP_EMBEDDINGS,
    GW_EP_IMAGES,
    GW_EP_SPEECH,
    GW_EP_TRANSCRIPTIONS,
    GW_EP_TRANSLATIONS,
    GW_EP_MODELS,
    GW_EP_MESSAGES, /* Anthropic's /v1/messages; converted to GW_EP_CHAT on the way in */
} gw_endpoint_t;

/* The format the client speaks (and gets its answers in). */
typedef enum {
    GW_CLIENT_OPENAI = 0,
    GW_CLIENT_ANTHROPIC, /* POST /v1/messages */
} gw_client_format_t;

/* Token usage normalised across formats (for cost and analytics). */
typedef struct {
    long long prompt_tokens;     /* all input tokens, cached ones included */
    long long completion_tokens; /* reasoning tokens included */
    long long cached_tokens;     /* input read from the provider's prompt cache */
    long long cache_write_tokens;/* input written to it (Anthropic, Bedrock) */
    long long reasoning_tokens;
    int set;
} gw_usage_t;

/* One target to try, in order, from a routing config (router.c). */
typedef struct {
    const struct sl_rcfg_node_s *leaf;    /* borrowed from the config (request arena) */
    const struct sl_rcfg_node_s *next_by; /* the fallback node that moves on from it; NULL: none */
    const void *retry;                    /* effective sl_rcfg_retry_t, or NULL */
    uint64_t timeout_ms;                  /* effective request_timeout, 0: none */
    const char *custom_host;              /* effective, or NULL */
    json_t *override;                     /* merged override_params, or NULL (arena) */
    const void *breaker;                  /* effective sl_rcfg_breaker_t, or NULL */
    json_t *forward_headers;              /* effective forward_headers, or NULL (borrowed) */
} gw_attempt_t;

/* Routing state of a request with a config. */
typedef struct {
    gw_attempt_t *plan;       /* arena */
    size_t nplan;
    size_t cur;               /* the entry being tried */
    int tries;                /* retries done on the current entry */
    int retries;              /* retries done in all */
    uint64_t waited_ms;       /* backoff waited so far (the retry budget) */
    json_t *orig_body;        /* the body before any override_params */
    sl_str_t header_provider; /* x-sluice-provider, for targets without one */
    char fallback[512];       /* "config.targets[0]=429,..." */
    size_t fallback_len;
    int timeout_from_config;  /* an expired request_timeout answers 408 */
    sl_str_t breaker_key;     /* the current target's breaker, empty: none (arena) */
    int latency_tracked;      /* a least_latency node routed it: report latencies */
} gw_route_t;

/* Translation state (translate.c and the adapters). */
typedef struct {
    const char *id;         /* response id used for chunks (arena) */
    const char *model;      /* model echoed in translated answers (arena) */
    long long created;      /* unix seconds */
    const char *resp_ct;    /* content type of a translated buffered body */
    void *adapter;          /* the adapter's per-request state (arena) */
    void *client;           /* the client format's stream state (arena) */
    json_t *client_body;    /* the body as the client sent it, when converted */
} gw_tr_state_t;

typedef enum {
    GW_RESP_MODE_BUFFER, /* JSON or error: read whole, then answer */
    GW_RESP_MODE_SSE,    /* relayed event by event */
    GW_RESP_MODE_RAW,    /* other bytes (audio): relayed as they come */
} gw_resp_mode_t;

/** Per-request proxy state; lives in the request's arena. */
typedef struct gw_proxy_s {
    gw_req_t *req;               /* referenced while the upstream runs */
    gw_endpoint_t endpoint;
    const char *endpoint_name;   /* static */
    int json_body;               /* endpoint takes a JSON body */
    json_t *body;                /* parsed JSON body (arena defer), or NULL */
    sl_str_t model;              /* from the body; may be empty */
    sl_str_t trace_id;
    sl_str_t metadata;           /* raw JSON object from x-sluice-metadata */
    sl_str_t provider_name;
    const sl_provider_t *provider;
    const struct gw_adapter_s *adapter; /* speaks the provider's API format */
    sl_str_t custom_host;
    sl_str_t api_key;            /* provider key from Authorization or x-api-key (never logged) */
    gw_client_format_t client;
    int stream;                  /* the client asked for a stream */
    int include_usage;           /* ... with stream_options.include_usage */
    int body_dirty;              /* px->body differs from the client's bytes */
    int retryable;               /* the provider's answer may be retried elsewhere */
    gw_usage_t usage;
    sl_str_t provider_error;     /* the provider's raw error body (arena, capped), for logs */
    gw_tr_state_t tr;
    gw_route_t *route;           /* routing config state, NULL without a config */
    void *retry_timer;           /* a pending backoff (proxy.c), or NULL */
    uint64_t timeout_ms;
    char *url;                   /* upstream URL (arena) */
    gw_http_header_t *up_headers;/* to send upstream (arena) */
    size_t up_headers_cap;
    size_t n_up_headers;
    sl_str_t up_body;            /* body to send upstream */
    /* from the control plane's snapshot (auth stage; request arena) */
    const char *key_id;          /* the Sluice API key's id; NULL in standalone mode */
    const char *workspace;
    const char **key_models;     /* the key's model allow-list (none: any) */
    size_t nkey_models;
    const char **vk_models;      /* the virtual key's */
    size_t nvk_models;
    sl_str_t snap_config;        /* the routing config chosen by id or the key's default */
    sl_str_t vk_provider;        /* the virtual key's provider, or empty */
    json_t *vk_creds;            /* its credentials and settings (arena), or NULL */
    const char *error_message;   /* set by a failing stage; NULL for the default */
    const char *error_param;
    /* upstream */
    gw_upstream_t up;
    gw_resp_mode_t mode;
    sl_buf_t resp;               /* buffered upstream body (owned) */
    sl_sse_decoder_t sse;        /* SSE mode (owned) */
    sl_buf_t out;                /* SSE events re-encoded for one client write */
    int sse_done;                /* the provider signalled the end ([DONE] for OpenAI) */
    int stream_err;              /* SL_E* that broke the stream */
    const char *stream_error_message; /* the provider's words for it (arena), or NULL */
    int upstream_running;
    int finished;
    uint64_t overhead_ns;        /* time spent inside the gateway */
    uint64_t t_mark;             /* start of the current in-gateway span */
    uint64_t t_last;             /* end of the last span */
    gw_task_t task;
} gw_proxy_t;

typedef int (*gw_stage_fn)(gw_proxy_t *px);

/* Stages implemented in their own folders. */
int gw_auth_stage(gw_proxy_t *px);              /* proxy/auth.c */
/**
 * With a control plane: points px at a virtual key of the request's
 * workspace (provider, credentials, settings, model allow-list). where
 * names the header or config path, for errors. proxy/auth.c.
 */
int gw_auth_virtual_key(gw_proxy_t *px, sl_str_t id, const char *where);
int gw_guardrails_input(gw_proxy_t *px);        /* guardrails/guardrails.c */
int gw_guardrails_output(gw_proxy_t *px);
int gw_cache_lookup(gw_proxy_t *px);            /* cache/cache.c */
int gw_cache_store(gw_proxy_t *px);
int gw_quota_check(gw_proxy_t *px);             /* quota/quota.c */
int gw_router_resolve(gw_proxy_t *px);          /* router/router.c */
int gw_provider_build(gw_proxy_t *px);          /* providers/providers.c: the adapter's build */

/*
 * After a failed attempt (err, or the provider's status) of a request with
 * a config: 0 when it ends here, 1 to retry the same target after *delay_ms,
 * 2 to move on to the next target (already applied to px), or SL_E* when
 * the next target cannot be used. router/router.c.
 */
int gw_router_next(gw_proxy_t *px, int err, int status, uint64_t *delay_ms);
/**
 * Sets (or, with empty text, clears) the config of --config FILE, used by
 * requests without x-sluice-config. Validated first: on error nothing
 * changes and err says why. Any thread; requests in flight keep the config
 * they started with.
 */
int gw_router_set_file_config(sl_str_t text, char *err, size_t errlen);
/** The outcome of an attempt, for the target's circuit breaker. router/router.c. */
void gw_router_report(gw_proxy_t *px, int err, int status);
/** The request ends with a try unreported (the client left): frees its breaker probe. */
void gw_router_release(gw_proxy_t *px);
/** Frees a worker's cache of parsed configs (at worker exit; every request is over). */
void gw_router_cache_free(void *cache);

/**
 * A request header by its Sluice name without prefix ("provider" finds
 * x-sluice-provider, or x-portkey-provider as an alias); empty when absent.
 */
sl_str_t gw_proxy_header(const gw_proxy_t *px, const char *suffix);

/**
 * A provider option: from the routing config's target when it sets it
 * (Portkey's spelling, "aws_region" for "aws-region"), else the request
 * header x-sluice-<suffix>. For credentials and URL parts of providers.
 */
sl_str_t gw_proxy_option(const gw_proxy_t *px, const char *suffix);

#endif
