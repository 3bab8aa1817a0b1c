/*
 * The request pipeline: the HTTP server hands every complete request to
 * gw_proxy_handle, which serves the gateway's own endpoints or runs the
 * stages in order (see stage.h), starts the upstream transfer and relays
 * its response: buffered for JSON, event by event for SSE, as it comes for
 * other bytes.
 *
 * Streams never fail silently: when an SSE upstream breaks (reset, timeout,
 * malformed event, end without [DONE]) the client's stream ends with an
 * OpenAI-style error event, never with a [DONE] that would pass a truncated
 * answer off as complete.
 */
#include "dataplane/proxy/proxy.h"

#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/log.h"
#include "common/rand.h"
#include "common/rconfig.h"
#include "dataplane/providers/adapter.h"
#include "dataplane/providers/anthropic_in.h"
#include "dataplane/providers/translate.h"
#include "dataplane/router/breaker.h"
#include "dataplane/telemetry/metrics.h"

/* Past this backlog to the client, reading from the upstream pauses. */
#define GW_BACKLOG_HIGH_WATER (1u << 20)
/* One SSE event may not exceed this. */
#define GW_MAX_SSE_EVENT (8u << 20)

static const struct {
    const char *path;
    gw_endpoint_t ep;
    int method; /* -1: any */
    int json;
    const char *name;
} endpoints[] = {
    {"/v1/chat/completions", GW_EP_CHAT, HTTP_POST, 1, "chat.completions"},
    {"/v1/completions", GW_EP_COMPLETIONS, HTTP_POST, 1, "completions"},
    {"/v1/embeddings", GW_EP_EMBEDDINGS, HTTP_POST, 1, "embeddings"},
    {"/v1/images/generations", GW_EP_IMAGES, HTTP_POST, 1, "images.generations"},
    {"/v1/audio/speech", GW_EP_SPEECH, HTTP_POST, 1, "audio.speech"},
    {"/v1/audio/transcriptions", GW_EP_TRANSCRIPTIONS, HTTP_POST, 0, "audio.transcriptions"},
    {"/v1/audio/translations", GW_EP_TRANSLATIONS, HTTP_POST, 0, "audio.translations"},
    {"/v1/models", GW_EP_MODELS, HTTP_GET, 0, "models"},
    {"/v1/messages", GW_EP_MESSAGES, HTTP_POST, 1, "messages"},
};

static const gw_stage_fn request_stages[] = {
    gw_auth_stage,      gw_guardrails_input, gw_cache_lookup,
    gw_quota_check,     gw_router_resolve,   gw_provider_build,
};

/* Upstream response headers not relayed to the client. */
static const sl_str_t dropped_resp[] = {
    SL_STRLIT("connection"),       SL_STRLIT("keep-alive"),   SL_STRLIT("transfer-encoding"),
    SL_STRLIT("content-length"),   SL_STRLIT("content-encoding"), SL_STRLIT("content-type"),
    SL_STRLIT("set-cookie"),       SL_STRLIT("alt-svc"),      SL_STRLIT("proxy-connection"),
    SL_STRLIT("trailer"),          SL_STRLIT("upgrade"),
};

sl_str_t gw_proxy_header(const gw_proxy_t *px, const char *suffix)
{
    const gw_req_t *req = px->req;
    size_t sl = strlen(suffix);
    sl_str_t alias = SL_STR_NULL;
    for (size_t i = 0; i < req->nheaders; i++) {
        sl_str_t n = req->headers[i].name;
        if (n.len == 9 + sl && sl_str_istarts_with(n, "x-sluice-") &&
            strncasecmp(n.base + 9, suffix, sl) == 0)
            return req->headers[i].value;
        if (alias.base == NULL && n.len == 10 + sl && sl_str_istarts_with(n, "x-portkey-") &&
            strncasecmp(n.base + 10, suffix, sl) == 0)
            alias = req->headers[i].value;
    }
    return alias;
}

sl_str_t gw_proxy_option(const gw_proxy_t *px, const char *suffix)
{
    const gw_route_t *rt = px->route;
    if (rt != NULL && rt->nplan > 0 && rt->plan[rt->cur].leaf->options != NULL) {
        /* Portkey's spelling in a config: aws_region for x-sluice-aws-region. */
        char key[64];
        size_t n = strlen(suffix);
        if (n < sizeof(key)) {
            for (size_t i = 0; i <= n; i++)
                key[i] = suffix[i] == '-' ? '_' : suffix[i];
            json_t *opts = rt->plan[rt->cur].leaf->options;
            json_t *v = json_object_get(opts, key);
            /* Portkey's Azure fields have no prefix: resource_name, deployment_id... */
            if (v == NULL && strncmp(key, "azure_", 6) == 0)
                v = json_object_get(opts, key + 6);
            if (json_is_string(v))
                return sl_str(json_string_value(v), json_string_length(v));
        }
    }
    if (px->vk_creds != NULL) {
        /* A virtual key's credentials and settings (aws_region, resource_name...). */
        char key[64];
        size_t n = strlen(suffix);
        if (n < sizeof(key)) {
            for (size_t i = 0; i <= n; i++)
                key[i] = suffix[i] == '-' ? '_' : suffix[i];
            json_t *v = json_object_get(px->vk_creds, key);
            if (v == NULL && strncmp(key, "azure_", 6) == 0)
                v = json_object_get(px->vk_creds, key + 6);
            if (json_is_string(v))
                return sl_str(json_string_value(v), json_string_length(v));
        }
    }
    return gw_proxy_header(px, suffix);
}

/* ---- response helpers -------------------------------------------------- */

/* A span in an upstream callback starts when libcurl began on the event
 * (its parsing and state machine are gateway time too), but never before
 * the end of the previous span, so nothing is counted twice. */
static void span_begin_upstream(gw_proxy_t *px)
{
    if (px->t_mark != 0)
        return; /* called back inside gw_upstream_start: that span is open */
    uint64_t t = gw_upstream_event_time(&px->up);
    px->t_mark = t > px->t_last ? t : px->t_last;
}

static void span_end(gw_proxy_t *px)
{
    if (px->t_mark != 0) {
        px->t_last = uv_hrtime();
        px->overhead_ns += px->t_last - px->t_mark;
        px->t_mark = 0;
    }
}

/* Headers the gateway adds to every proxied response (at most this many). */
#define GW_OWN_HEADERS 10
static size_t own_headers(gw_proxy_t *px, gw_http_header_t *h)
{
    size_t n = 0;
    h[n].name = SL_STRLIT("x-sluice-trace-id");
    h[n++].value = px->trace_id;
    if (px->provider_name.len > 0) {
        h[n].name = SL_STRLIT("x-sluice-provider");
        h[n++].value = px->provider_name;
    }
    const gw_route_t *rt = px->route;
    if (rt != NULL && rt->nplan > 0) {
        /* What the config did, under Sluice's names and Portkey's. */
        sl_arena_t *a = &px->req->arena;
        sl_str_t target = sl_str_c(rt->plan[rt->cur].leaf->path);
        sl_str_t retries = sl_str_c(sl_arena_printf(a, "%d", rt->retries));
        h[n].name = SL_STRLIT("x-sluice-target");
        h[n++].value = target;
        h[n].name = SL_STRLIT("x-sluice-retries");
        h[n++].value = retries;
        if (rt->fallback_len > 0) {
            h[n].name = SL_STRLIT("x-sluice-fallback");
            h[n++].value = sl_str(rt->fallback, rt->fallback_len);
        }
        h[n].name = SL_STRLIT("x-portkey-last-used-option-index");
        h[n++].value = target;
        h[n].name = SL_STRLIT("x-portkey-retry-attempt-count");
        h[n++].value = retries;
        h[n].name = SL_STRLIT("x-portkey-trace-id");
        h[n++].value = px->trace_id;
        if (px->provider_name.len > 0) {
            h[n].name = SL_STRLIT("x-portkey-provider");
            h[n++].value = px->provider_name;
        }
    }
    /* Measured up to this point: the head is written right after. */
    uint64_t ov = px->overhead_ns + (px->t_mark ? uv_hrtime() - px->t_mark : 0);
    gw_http_overhead_header(px->req, &h[n++], ov);
    return n;
}

static void record(gw_proxy_t *px, int status)
{
    gw_req_t *req = px->req;
    span_end(px);
    gw_metrics_request(req->worker->metrics, px->provider_name, px->model, status,
                       uv_hrtime() - req->t_start, px->overhead_ns);
    if (px->provider_error.len > 0 && sl_log_level >= SL_LOG_INFO) {
        /* The provider's own words, one line, no control bytes. */
        char e[512];
        size_t n = px->provider_error.len < sizeof(e) ? px->provider_error.len : sizeof(e) - 1;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)px->provider_error.base[i];
            e[i] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
        }
        sl__log(SL_LOG_INFO, &req->log, 0, "provider answered %d%s: %.*s", px->up.status,
                px->retryable ? " (retryable)" : "", (int)n, e);
    }
    if (px->usage.set)
        gw_metrics_tokens(req->worker->metrics, px->provider_name, px->model, status,
                          (uint64_t)px->usage.prompt_tokens, (uint64_t)px->usage.completion_tokens,
                          (uint64_t)px->usage.cached_tokens);
    if (sl_log_level >= SL_LOG_DEBUG) {
        const gw_route_t *rt = px->route;
        sl__log(SL_LOG_DEBUG, &req->log, 0,
                "%s %.*s (%s) -> %d, %llu us overhead, target=%s retries=%d fallback=%.*s "
                "metadata=%.*s",
                http_method_str(req->method), (int)req->path.len, req->path.base,
                px->endpoint_name ? px->endpoint_name : "gateway", status,
                (unsigned long long)(px->overhead_ns / 1000),
                rt && rt->nplan ? rt->plan[rt->cur].leaf->path : "-", rt ? rt->retries : 0,
                rt && rt->fallback_len ? (int)rt->fallback_len : 1,
                rt && rt->fallback_len ? rt->fallback : "-",
                px->metadata.len ? (int)(px->metadata.len > 512 ? 512 : px->metadata.len) : 2,
                px->metadata.len ? px->metadata.base : "{}");
    }
}

static void respond_error(gw_proxy_t *px, int err)
{
    gw_http_header_t h[GW_OWN_HEADERS];
    size_t n = own_headers(px, h);
    /* Record first: answering may free the request when nothing else holds it. */
    record(px, sl_err_status(err));
    if (px->client == GW_CLIENT_ANTHROPIC) {
        /* Anthropic's error shape for Anthropic's SDK. */
        json_t *e = gw_anthropic_in_error(sl_err_status(err),
                                          px->error_message ? px->error_message
                                                            : sl_strerror(err));
        sl_str_t body = gw_tr_dump(px, e);
        json_decref(e);
        gw_http_respond(px->req, sl_err_status(err), h, n, SL_STRLIT("application/json"), body);
        return;
    }
    gw_http_respond_error_h(px->req, err, px->error_message, px->error_param, h, n);
}

static const char *error_kind(int err)
{
    switch (err) {
    case SL_EUPTIMEOUT: return "timeout";
    case SL_EUPCONN: return "connect";
    case SL_EFORBIDDENHOST: return "forbidden";
    case SL_EUPTOOBIG: return "too_large";
    case SL_EUPPROTO: return "protocol";
    default: return "stream";
    }
}

/* ---- attempts ---------------------------------------------------------- */

static void finish(gw_proxy_t *px);

/* Sends the upstream request px describes (provider build done). */
static int start_upstream(gw_proxy_t *px)
{
    gw_req_t *req = px->req;
    gw_upstream_req_t ur = {
        .url = px->url,
        .method = http_method_str(req->method),
        .headers = px->up_headers,
        .nheaders = px->n_up_headers,
        .body = px->up_body,
        .timeout_ms = px->timeout_ms,
        .connect_timeout_ms = req->worker->cfg->upstream_connect_timeout_ms,
    };
    px->upstream_running = 1;
    /* Building and sending the request inside the upstream client is gateway time too. */
    int r = gw_upstream_start(req->worker->multi, &px->up, &ur);
    if (r != 0)
        px->upstream_running = 0;
    return r;
}

/* Forgets what the failed attempt left; the next one starts afresh. */
static void reset_attempt(gw_proxy_t *px)
{
    json_t *client_body = px->tr.client_body;
    memset(&px->tr, 0, sizeof(px->tr));
    px->tr.client_body = client_body;
    sl_buf_reset(&px->resp);
    sl_buf_reset(&px->out);
    sl_sse_decoder_dispose(&px->sse);
    sl_sse_decoder_init(&px->sse, GW_MAX_SSE_EVENT);
    px->mode = GW_RESP_MODE_BUFFER;
    px->stream_err = 0;
    px->stream_error_message = NULL;
    px->sse_done = 0;
    px->error_message = NULL;
    px->error_param = NULL;
    px->retryable = 0;
    px->provider_error = SL_STR_NULL;
    memset(&px->usage, 0, sizeof(px->usage));
}

/* The next attempt: the adapter builds it for the target the router chose. */
static int next_attempt(gw_proxy_t *px)
{
    reset_attempt(px);
    px->req->log.provider = px->provider_name.base;
    int r = gw_provider_build(px);
    return r != 0 ? r : start_upstream(px);
}

typedef struct {
    uv_timer_t timer;
    gw_proxy_t *px; /* borrowed; NULL once the request gave up waiting */
} retry_timer_t;

static void on_retry_timer_closed(uv_handle_t *h)
{
    sl_free(SL_CONTAINER_OF((uv_timer_t *)h, retry_timer_t, timer));
}

static void cancel_retry_timer(gw_proxy_t *px)
{
    retry_timer_t *t = px->retry_timer;
    if (t == NULL)
        return;
    px->retry_timer = NULL;
    t->px = NULL;
    uv_close((uv_handle_t *)&t->timer, on_retry_timer_closed);
}

static void on_retry_timer(uv_timer_t *h)
{
    retry_timer_t *t = SL_CONTAINER_OF(h, retry_timer_t, timer);
    gw_proxy_t *px = t->px;
    cancel_retry_timer(px);
    px->t_mark = uv_hrtime();
    int r = next_attempt(px);
    if (r != 0) {
        respond_error(px, r);
        finish(px);
        return;
    }
    span_end(px);
}

/*
 * After a failed attempt of a request with a config (an error, or a status
 * of 400 and up): 1 when another attempt was started or scheduled (or the
 * request was answered because the next target could not be used), 0 to
 * answer with this attempt's result.
 */
static int try_again(gw_proxy_t *px, int err)
{
    int status = err ? sl_err_status(err) : px->up.status;
    if (err == SL_EUPTIMEOUT && px->route->timeout_from_config)
        status = 408;
    if (err == 0 && status < 400)
        return 0;
    uint64_t delay = 0;
    int r = gw_router_next(px, err, status, &delay);
    if (r == 0)
        return 0;
    if (r == 1 && delay > 0) {
        reset_attempt(px);
        retry_timer_t *t = sl_xmalloc(sizeof(*t));
        t->px = px;
        uv_timer_init(&px->req->worker->loop, &t->timer);
        uv_timer_start(&t->timer, on_retry_timer, delay, 0);
        px->retry_timer = t;
        return 1;
    }
    if (r > 0)
        r = next_attempt(px);
    if (r != 0) {
        respond_error(px, r);
        finish(px);
    }
    return 1;
}

/* ---- upstream callbacks ------------------------------------------------ */

static void finish(gw_proxy_t *px)
{
    if (px->finished)
        return;
    px->finished = 1;
    cancel_retry_timer(px);
    if (px->route != NULL)
        gw_router_release(px);
    px->req->on_client_gone = NULL;
    px->req->on_drain = NULL;
    sl_sse_decoder_dispose(&px->sse);
    sl_buf_dispose(&px->out);
    sl_buf_dispose(&px->resp);
    gw_req_unref(px->req); /* the reference taken when the upstream started */
}

static int relayed_header(sl_str_t name)
{
    for (size_t i = 0; i < SL_ARRAY_SIZE(dropped_resp); i++)
        if (sl_str_ieq(name, dropped_resp[i]))
            return 0;
    return 1;
}

/* Upstream headers worth relaying, then the gateway's own. */
static size_t response_headers(gw_proxy_t *px, gw_http_header_t **out, int with_type)
{
    gw_upstream_t *up = &px->up;
    gw_http_header_t *h = sl_arena_alloc(&px->req->arena,
                                         (up->nheaders + 1 + GW_OWN_HEADERS) * sizeof(*h),
                                         _Alignof(gw_http_header_t));
    size_t n = 0;
    for (size_t i = 0; i < up->nheaders; i++)
        if (relayed_header(up->headers[i].name))
            h[n++] = up->headers[i];
    if (with_type) {
        sl_str_t ct = gw_upstream_header(up, "content-type");
        /* Whatever the provider streams (SSE, AWS event-stream), the client gets SSE. */
        if (px->mode == GW_RESP_MODE_SSE && !sl_str_istarts_with(ct, "text/event-stream"))
            ct = SL_STRLIT("text/event-stream");
        if (ct.len > 0) {
            h[n].name = SL_STRLIT("Content-Type");
            h[n++].value = ct;
        }
    }
    n += own_headers(px, h + n);
    *out = h;
    return n;
}

static void on_up_head(gw_upstream_t *up)
{
    gw_proxy_t *px = up->data;
    span_begin_upstream(px);
    px->mode = px->adapter->response_mode(px);
    if (px->mode == GW_RESP_MODE_BUFFER) {
        /* One allocation for the body instead of a doubling series. */
        unsigned long long len;
        if (sl_str_to_u64(gw_upstream_header(up, "content-length"), &len) == 0 &&
            len <= px->resp.max && sl_buf_try_reserve(&px->resp, (size_t)len) != 0)
            sl_buf_reset(&px->resp); /* appends will report the failure */
    } else {
        gw_http_header_t *h;
        size_t n = response_headers(px, &h, 1);
        gw_http_stream_start(px->req, up->status, h, n);
    }
    span_end(px);
}

static int on_up_body(gw_upstream_t *up, const char *p, size_t n)
{
    gw_proxy_t *px = up->data;
    gw_req_t *req = px->req;
    int ret = 0;
    if (px->mode != GW_RESP_MODE_BUFFER && req->conn != NULL &&
        gw_http_backlog(req) > GW_BACKLOG_HIGH_WATER)
        return 1; /* curl hands these bytes again after gw_upstream_resume */
    span_begin_upstream(px);
    switch (px->mode) {
    case GW_RESP_MODE_BUFFER: {
        int r = sl_buf_append(&px->resp, p, n);
        if (r != 0)
            ret = r == SL_ETOOBIG ? SL_EUPTOOBIG : r;
        break;
    }
    case GW_RESP_MODE_SSE: {
        sl_buf_reset(&px->out);
        int r = px->adapter->on_stream_data(px, p, n, &px->out);
        /* Relay what was whole before any failure, in one client write. */
        if (px->out.len > 0)
            gw_http_stream_write(req, px->out.base, px->out.len);
        if (r != 0) {
            px->stream_err = r;
            ret = r;
        }
        break;
    }
    case GW_RESP_MODE_RAW:
        gw_http_stream_write(req, p, n);
        break;
    }
    span_end(px);
    return ret;
}

static void end_stream_with_error(gw_proxy_t *px, int err)
{
    char msg[400];
    sl_buf_t b;
    sl_buf_init(&b, 4096);
    if (px->stream_error_message != NULL)
        snprintf(msg, sizeof(msg), "%s: the response is incomplete", px->stream_error_message);
    else
        snprintf(msg, sizeof(msg), "%s: the response is incomplete", sl_strerror(err));
    if (px->client == GW_CLIENT_ANTHROPIC) {
        if (gw_anthropic_in_stream_error(px, msg, sl_err_status(err), &b) == 0)
            gw_http_stream_write(px->req, b.base, b.len);
    } else if (sl_buf_append_str(&b, SL_STRLIT("data: ")) == 0 &&
               sl_json_error_body(&b, msg, sl_err_type(err), NULL, sl_err_code(err)) == 0 &&
               sl_buf_append_str(&b, SL_STRLIT("\n\n")) == 0) {
        gw_http_stream_write(px->req, b.base, b.len);
    }
    sl_buf_dispose(&b);
    gw_http_stream_end(px->req);
}

static void on_up_done(gw_upstream_t *up, int err)
{
    gw_proxy_t *px = up->data;
    gw_req_t *req = px->req;
    px->upstream_running = 0;
    span_begin_upstream(px);
    if (err == 0 && px->up.t_head == 0)
        err = SL_EUPPROTO;
    if (err != 0)
        gw_metrics_upstream_error(req->worker->metrics, px->provider_name, error_kind(err));
    if (px->route != NULL)
        gw_router_report(px, err, err ? sl_err_status(err) : up->status);
    switch (px->mode) {
    case GW_RESP_MODE_SSE:
        if (err == 0 && px->stream_err == 0 && px->adapter->stream_end != NULL) {
            sl_buf_reset(&px->out);
            px->stream_err = px->adapter->stream_end(px, &px->out);
            if (px->out.len > 0)
                gw_http_stream_write(req, px->out.base, px->out.len);
        }
        if (err == 0 && px->stream_err == 0 && px->adapter->stream_complete(px)) {
            gw_http_stream_end(req);
            record(px, up->status);
        } else {
            int e = px->stream_err ? px->stream_err : err ? err : SL_EUPSTREAM;
            sl_log(SL_LOG_WARN, &req->log, 0, "upstream stream broke: %s", sl_strerror(e));
            end_stream_with_error(px, e);
            record(px, sl_err_status(e));
        }
        break;
    case GW_RESP_MODE_RAW:
        if (err == 0) {
            gw_http_stream_end(req);
            record(px, up->status);
        } else {
            /* No way to signal inside raw bytes: end without the final chunk. */
            sl_log(SL_LOG_WARN, &req->log, 0, "upstream body broke: %s", sl_strerror(err));
            gw_http_stream_abort(req);
            record(px, sl_err_status(err));
        }
        break;
    case GW_RESP_MODE_BUFFER:
        /* Nothing reached the client yet: a config may retry or fall back. */
        if (px->route != NULL && try_again(px, err)) {
            span_end(px);
            return;
        }
        if (err != 0) {
            if (err == SL_EFORBIDDENHOST)
                px->error_param = "x-sluice-custom-host";
            if (err == SL_EUPTIMEOUT && px->route != NULL && px->route->timeout_from_config)
                err = SL_EREQTIMEOUT; /* Portkey's 408, so configs falling back on 408 work */
            respond_error(px, err);
            break;
        }
        /* The body goes back as the provider sent it, byte for byte, unless
         * the adapter translated it. */
        if (px->adapter->on_response != NULL) {
            int r = px->adapter->on_response(px);
            if (r != 0) {
                respond_error(px, r);
                break;
            }
        }
        sl_str_t ct = px->tr.resp_ct ? sl_str_c(px->tr.resp_ct)
                                     : gw_upstream_header(up, "content-type");
        if (gw_guardrails_output(px) == GW_STAGE_NEXT)
            gw_cache_store(px);
        gw_http_header_t *h;
        size_t n = response_headers(px, &h, 0);
        gw_http_respond(req, up->status, h, n, ct, sl_buf_str(&px->resp));
        record(px, up->status);
        break;
    }
    finish(px);
}

static const gw_upstream_cbs_t upstream_cbs = {on_up_head, on_up_body, on_up_done};

static void on_client_gone(gw_req_t *req)
{
    gw_proxy_t *px = req->handler_data;
    cancel_retry_timer(px);
    if (px->upstream_running) {
        gw_upstream_abort(&px->up);
        px->upstream_running = 0;
    }
    record(px, 499);
    finish(px);
}

static void on_drain(gw_req_t *req)
{
    gw_proxy_t *px = req->handler_data;
    if (px->upstream_running)
        gw_upstream_resume(&px->up);
}

/* ---- request side ------------------------------------------------------ */

static void make_trace_id(gw_proxy_t *px)
{
    sl_str_t t = sl_str_trim(gw_proxy_header(px, "trace-id"));
    int ok = t.len > 0 && t.len <= 128;
    for (size_t i = 0; ok && i < t.len; i++) {
        char c = t.base[i];
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             c == '-' || c == '_' || c == '.' || c == ':';
    }
    if (ok) {
        px->trace_id = sl_str_dup(&px->req->arena, t); /* NUL-terminated for the logs */
        return;
    }
    char *id = sl_arena_alloc(&px->req->arena, 37, 1);
    sl_rand_uuid(id);
    px->trace_id = sl_str(id, 36);
}

/* Parses a JSON body once for every stage (px->body) and reads the model. */
static int parse_body(gw_proxy_t *px)
{
    gw_req_t *req = px->req;
    sl_str_t ct = sl_str_trim(gw_req_header(req, "content-type"));
    if (!sl_str_istarts_with(ct, "application/json")) {
        px->error_message = ct.len ? "request body must be application/json"
                                   : "missing Content-Type: application/json";
        return SL_EMEDIATYPE;
    }
    json_error_t jerr;
    json_t *root = json_loadb(req->body.base ? req->body.base : "", req->body.len, 0, &jerr);
    if (root == NULL) {
        px->error_message = sl_arena_printf(&req->arena,
                                            "malformed JSON body: %s (line %d, column %d)",
                                            jerr.text, jerr.line, jerr.column);
        return SL_EBADJSON;
    }
    sl_arena_defer(&req->arena, sl_json_decref_cb, root);
    if (!json_is_object(root)) {
        px->error_message = "request body must be a JSON object";
        return SL_EBADJSON;
    }
    px->body = root;
    json_t *m = json_object_get(root, "model");
    if (json_is_string(m))
        px->model = sl_str(json_string_value(m), json_string_length(m));
    px->stream = json_is_true(json_object_get(root, "stream"));
    px->include_usage =
        json_is_true(json_object_get(json_object_get(root, "stream_options"), "include_usage"));
    if (px->client == GW_CLIENT_ANTHROPIC)
        return gw_anthropic_in_request(px);
    return 0;
}

static int parse_metadata(gw_proxy_t *px)
{
    sl_str_t md = sl_str_trim(gw_proxy_header(px, "metadata"));
    if (md.len == 0)
        return 0;
    json_error_t jerr;
    json_t *j = json_loadb(md.base, md.len, 0, &jerr);
    int ok = json_is_object(j);
    json_decref(j);
    if (!ok) {
        px->error_message = "x-sluice-metadata must be a JSON object";
        px->error_param = "x-sluice-metadata";
        return SL_EINVAL;
    }
    px->metadata = md;
    return 0;
}

static void serve_metrics(gw_req_t *req)
{
    sl_buf_t out;
    gw_metrics_t *ms[256];
    unsigned conns[256], infl[256];
    int n = gw_nworkers < 256 ? gw_nworkers : 256;
    for (int i = 0; i < n; i++) {
        ms[i] = gw_workers[i].metrics;
        conns[i] = gw_workers[i].open_conns;
        infl[i] = gw_workers[i].inflight;
    }
    sl_buf_init(&out, 16u << 20);
    int r = gw_metrics_render(&out, ms, conns, infl, n);
    if (r == 0)
        r = gw_breaker_render(&out);
    gw_http_header_t ov;
    gw_http_overhead_header(req, &ov, uv_hrtime() - req->t_received);
    if (r != 0)
        gw_http_respond_error_h(req, SL_EINTERNAL, NULL, NULL, &ov, 1);
    else
        gw_http_respond(req, 200, &ov, 1, SL_STRLIT("text/plain; version=0.0.4; charset=utf-8"),
                        sl_buf_str(&out));
    sl_buf_dispose(&out);
}

void gw_proxy_handle(gw_req_t *req)
{
    sl_str_t path = req->path;
    if (sl_str_eq(path, SL_STRLIT("/health")) || sl_str_eq(path, SL_STRLIT("/v1/health"))) {
        gw_http_header_t ov;
        gw_http_overhead_header(req, &ov, uv_hrtime() - req->t_received);
        if (req->method != HTTP_GET)
            gw_http_respond_error_h(req, SL_EMETHOD, NULL, NULL, &ov, 1);
        else
            gw_http_respond(req, 200, &ov, 1, SL_STRLIT("application/json"),
                            req->worker->draining ? SL_STRLIT("{\"status\":\"draining\"}")
                                                  : SL_STRLIT("{\"status\":\"ok\"}"));
        return;
    }
    if (sl_str_eq(path, SL_STRLIT("/metrics"))) {
        if (req->method != HTTP_GET) {
            gw_http_header_t ov;
            gw_http_overhead_header(req, &ov, uv_hrtime() - req->t_received);
            gw_http_respond_error_h(req, SL_EMETHOD, NULL, NULL, &ov, 1);
        } else {
            serve_metrics(req);
        }
        return;
    }

    gw_proxy_t *px = SL_ARENA_NEW(&req->arena, gw_proxy_t);
    memset(px, 0, sizeof(*px));
    px->req = req;
    px->t_mark = req->t_received;
    req->handler_data = px;
    make_trace_id(px);
    req->log.trace_id = px->trace_id.base;

    if (!sl_str_starts_with(path, SL_STRLIT("/v1/"))) {
        px->error_message = sl_arena_printf(&req->arena, "unknown path %.*s",
                                            (int)(path.len > 200 ? 200 : path.len), path.base);
        respond_error(px, SL_ENOTFOUND);
        return;
    }
    px->endpoint = GW_EP_OTHER;
    px->endpoint_name = "passthrough";
    for (size_t i = 0; i < SL_ARRAY_SIZE(endpoints); i++) {
        if (sl_str_eq(path, sl_str_c(endpoints[i].path))) {
            if (endpoints[i].ep == GW_EP_MESSAGES)
                px->client = GW_CLIENT_ANTHROPIC; /* errors in Anthropic's shape too */
            if (endpoints[i].method != -1 && req->method != endpoints[i].method) {
                px->error_message = sl_arena_printf(&req->arena, "%s requires %s",
                                                    endpoints[i].path,
                                                    http_method_str(endpoints[i].method));
                respond_error(px, SL_EMETHOD);
                return;
            }
            px->endpoint = endpoints[i].ep;
            px->endpoint_name = endpoints[i].name;
            px->json_body = endpoints[i].json;
            break;
        }
    }
    int r = parse_metadata(px);
    if (r == 0 && px->json_body)
        r = parse_body(px);
    for (size_t i = 0; r == 0 && i < SL_ARRAY_SIZE(request_stages); i++) {
        r = request_stages[i](px);
        if (r == GW_STAGE_ANSWERED)
            return; /* the stage answered and recorded; req may be gone */
    }
    if (r < 0) {
        respond_error(px, r);
        return;
    }
    req->log.provider = px->provider_name.base;
    req->log.model = px->model.len ? px->model.base : NULL;
    req->log.action = "proxying to upstream";

    px->up.cbs = &upstream_cbs;
    px->up.data = px;
    px->up.arena = &req->arena;
    sl_buf_init(&px->resp, req->worker->cfg->max_upstream_body_bytes);
    /* Re-encoding can quadruple an event of one-character lines. */
    sl_buf_init(&px->out, GW_MAX_SSE_EVENT * 4 + 64);
    sl_sse_decoder_init(&px->sse, GW_MAX_SSE_EVENT);
    gw_req_ref(req);
    req->on_client_gone = on_client_gone;
    req->on_drain = on_drain;
    r = start_upstream(px);
    if (r != 0) {
        respond_error(px, r);
        finish(px);
        return;
    }
    span_end(px);
}
