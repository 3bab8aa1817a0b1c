/*
 * OpenAI format adapter: OpenAI, every OpenAI-compatible service and Azure
 * OpenAI. The request goes out as the client sent it (re-serialised only
 * when the body was converted, e.g. from /v1/messages), to the provider's
 * base URL plus the endpoint path (Azure: deployment URL and api-version);
 * headers are forwarded except hop-by-hop ones, the gateway's own, the
 * client's credentials (the provider key is set in the provider's style)
 * and those the upstream client manages. Responses come back byte for byte;
 * streams are relayed event by event, and those of chat and text
 * completions are checked (JSON events, ended by [DONE]). Answers for an
 * Anthropic-format client are translated through translate.h.
 */
#include <string.h>

#include "common/err.h"
#include "dataplane/providers/adapter.h"
#include "dataplane/providers/translate.h"
#include "dataplane/proxy/stage.h"

#define AZURE_DEFAULT_API_VERSION "2024-10-21"

/* Marks (in px->tr.adapter) a stream whose usage chunk the gateway asked for. */
static const char usage_asked = 1;

/*
 * Usage is what costs are computed from, and OpenAI sends it at the end of
 * a stream only when asked: ask for it, and keep the extra chunk from a
 * client that did not. Only for OpenAI itself, whose API is known to take
 * stream_options; compatible services vary.
 */
static void ask_stream_usage(gw_proxy_t *px)
{
    if (!px->stream || px->include_usage || px->client != GW_CLIENT_OPENAI ||
        (px->endpoint != GW_EP_CHAT && px->endpoint != GW_EP_COMPLETIONS) ||
        strcmp(px->provider->name, "openai") != 0 || !json_is_object(px->body))
        return;
    json_t *so = json_object_get(px->body, "stream_options");
    if (so != NULL && !json_is_object(so))
        return; /* the provider will say what is wrong with it */
    if (so == NULL) {
        so = json_object();
        json_object_set_new(px->body, "stream_options", so);
    }
    json_object_set_new(so, "include_usage", json_true());
    px->body_dirty = 1;
    px->tr.adapter = (void *)&usage_asked;
}

static int build_request(gw_proxy_t *px)
{
    gw_req_t *req = px->req;
    sl_str_t base;
    int r = gw_tr_base_url(px, &base);
    if (r != 0)
        return r;
    ask_stream_usage(px);
    /* Base URLs carry their version segment (".../v1"), so drop the client's. */
    sl_str_t path = req->path;
    if (px->client == GW_CLIENT_ANTHROPIC)
        path = SL_STRLIT("/chat/completions");
    else if (sl_str_starts_with(path, SL_STRLIT("/v1/")))
        path = sl_str(path.base + 3, path.len - 3);
    sl_str_t q = px->client == GW_CLIENT_ANTHROPIC ? SL_STR_NULL : req->query;
    if (px->provider->format == SL_FORMAT_AZURE) {
        sl_str_t dep = sl_str_trim(gw_proxy_option(px, "azure-deployment-id"));
        if (dep.len == 0)
            dep = px->model;
        sl_str_t ver = sl_str_trim(gw_proxy_option(px, "azure-api-version"));
        if (ver.len == 0)
            ver = SL_STRLIT(AZURE_DEFAULT_API_VERSION);
        if (!gw_tr_token_ok(dep) || !gw_tr_token_ok(ver)) {
            px->error_message = "azure-openai needs x-sluice-azure-deployment-id (or a model) "
                                "and x-sluice-azure-api-version of letters, digits, '-', '_', '.'";
            px->error_param = "x-sluice-azure-deployment-id";
            return SL_EINVAL;
        }
        gw_tr_set_url(px, base, "/deployments/%.*s%.*s?api-version=%.*s%s%.*s", (int)dep.len,
                      dep.base, (int)path.len, path.base, (int)ver.len, ver.base, q.len ? "&" : "",
                      (int)q.len, q.base ? q.base : "");
    } else if (q.len > 0) {
        gw_tr_set_url(px, base, "%.*s?%.*s", (int)path.len, path.base, (int)q.len, q.base);
    } else {
        gw_tr_set_url(px, base, "%.*s", (int)path.len, path.base);
    }

    /* A /v1/messages body was translated; an OpenAI client's was at most
     * given stream_options, its headers (Content-Type included) still fit. */
    int translated = px->client != GW_CLIENT_OPENAI;
    gw_tr_headers_init(px, req->nheaders + 2);
    gw_tr_forward_headers(px, translated);
    gw_tr_auth_header(px);
    if (px->body_dirty) {
        if (translated)
            gw_tr_header_add(px, SL_STRLIT("Content-Type"), SL_STRLIT("application/json"));
        return gw_tr_set_body(px, px->body);
    }
    px->up_body = sl_buf_str(&req->body);
    return GW_STAGE_NEXT;
}

/*
 * Usage from an OpenAI answer without parsing it: jansson takes about 3 µs
 * for the usage object alone and 7 µs for a small answer, more than the
 * rest of the gateway spends on the request. The answer goes to the client
 * byte for byte anyway, so only the token counts are read: the last
 * "usage" object is delimited (strings and escapes respected) and its
 * integer fields looked up by name inside it.
 */
static const char *object_end(const char *p, const char *end)
{
    int depth = 0, in_str = 0;
    for (; p < end; p++) {
        char c = *p;
        if (in_str) {
            if (c == '\\')
                p++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{') {
            depth++;
        } else if (c == '}' && --depth == 0) {
            return p + 1;
        }
    }
    return NULL;
}

/* The integer value of "key" inside span, or -1. */
static long long int_field(sl_str_t span, const char *key)
{
    size_t kl = strlen(key);
    const char *end = span.base + span.len;
    for (const char *p = span.base; p < end;) {
        p = memmem(p, (size_t)(end - p), key, kl);
        if (p == NULL)
            return -1;
        /* Quoted on both sides, so "cached_tokens" does not match a longer name. */
        if (p > span.base && p[-1] == '"' && p + kl < end && p[kl] == '"') {
            const char *v = p + kl + 1;
            while (v < end && (*v == ' ' || *v == ':' || *v == '\n' || *v == '\t' || *v == '\r'))
                v++;
            long long n = 0;
            int digits = 0;
            for (; v < end && *v >= '0' && *v <= '9' && digits < 15; v++, digits++)
                n = n * 10 + (*v - '0');
            return digits > 0 ? n : -1;
        }
        p += kl;
    }
    return -1;
}

static void scan_usage(gw_proxy_t *px)
{
    sl_str_t b = sl_buf_str(&px->resp);
    static const char key[] = "\"usage\"";
    const char *hit = NULL;
    for (const char *p = b.base; p != NULL && p < b.base + b.len;) {
        p = memmem(p, (size_t)(b.base + b.len - p), key, sizeof(key) - 1);
        if (p != NULL) {
            hit = p;
            p += sizeof(key) - 1;
        }
    }
    if (hit == NULL)
        return;
    const char *v = hit + sizeof(key) - 1;
    const char *end = b.base + b.len;
    while (v < end && (*v == ' ' || *v == ':' || *v == '\n' || *v == '\t' || *v == '\r'))
        v++;
    const char *oe = v < end && *v == '{' ? object_end(v, end) : NULL;
    if (oe == NULL)
        return;
    sl_str_t u = sl_str(v, (size_t)(oe - v));
    gw_usage_t *g = &px->usage;
    long long pt = int_field(u, "prompt_tokens"), ct = int_field(u, "completion_tokens");
    long long tt = int_field(u, "total_tokens");
    if (pt < 0 && ct < 0 && tt < 0)
        return;
    g->prompt_tokens = pt >= 0 ? pt : ct < 0 && tt >= 0 ? tt : 0; /* embeddings: total only */
    g->completion_tokens = ct > 0 ? ct : 0;
    long long cached = int_field(u, "cached_tokens"), reasoning = int_field(u, "reasoning_tokens");
    g->cached_tokens = cached > 0 ? cached : 0;
    g->reasoning_tokens = reasoning > 0 ? reasoning : 0;
    g->set = 1;
}

static int on_response(gw_proxy_t *px)
{
    int ok = px->up.status >= 200 && px->up.status < 300;
    if (!ok) {
        if (px->client == GW_CLIENT_OPENAI) {
            gw_tr_note_error(px); /* already an OpenAI error: relayed as is */
            return 0;
        }
        json_t *j = gw_tr_parse_resp(px);
        json_t *e = json_object_get(j, "error");
        int r = gw_tr_respond_error(px, gw_tr_str(e, "message"), gw_tr_str(e, "type"),
                                    gw_tr_str(e, "code"));
        json_decref(j);
        return r;
    }
    if (px->client == GW_CLIENT_OPENAI) {
        if (px->endpoint == GW_EP_CHAT || px->endpoint == GW_EP_COMPLETIONS ||
            px->endpoint == GW_EP_EMBEDDINGS)
            scan_usage(px);
        return 0;
    }
    json_t *j = gw_tr_parse_resp(px);
    if (!json_is_object(j)) {
        json_decref(j);
        return SL_EUPPROTO;
    }
    return gw_tr_respond_json(px, j);
}

static int response_mode(gw_proxy_t *px)
{
    const gw_upstream_t *up = &px->up;
    sl_str_t ct = gw_upstream_header(up, "content-type");
    int ok = up->status >= 200 && up->status < 300;
    if (ok && sl_str_istarts_with(ct, "text/event-stream"))
        return GW_RESP_MODE_SSE;
    /* Audio and other binary bodies go through as they arrive. */
    if (ok && ct.len > 0 && !sl_str_istarts_with(ct, "application/json") &&
        !sl_str_istarts_with(ct, "text/"))
        return GW_RESP_MODE_RAW;
    return GW_RESP_MODE_BUFFER;
}

typedef struct {
    gw_proxy_t *px;
    sl_buf_t *out;
    int err;
} feed_t;

/* Chat and text completion streams are JSON events ended by [DONE]; other
 * streams passed through (the Responses API, ...) end differently. */
static int checked(const gw_proxy_t *px)
{
    return px->endpoint == GW_EP_CHAT || px->endpoint == GW_EP_COMPLETIONS;
}

/*
 * With include_usage on, OpenAI adds "usage":null to every chunk; a client
 * that did not ask gets its chunks as they would have been. Compact JSON
 * as OpenAI writes it; anything else is relayed unchanged.
 */
static sl_str_t drop_null_usage(sl_str_t d, char *buf, size_t cap)
{
    static const char pat[] = ",\"usage\":null";
    const char *hit = memmem(d.base, d.len, pat, sizeof(pat) - 1);
    if (hit == NULL || d.len > cap)
        return d;
    size_t pre = (size_t)(hit - d.base), n = sizeof(pat) - 1;
    memcpy(buf, d.base, pre);
    memcpy(buf + pre, hit + n, d.len - pre - n);
    return sl_str(buf, d.len - n);
}

static int on_event(void *ud, const sl_sse_event_t *ev)
{
    feed_t *f = ud;
    gw_proxy_t *px = f->px;
    if (sl_str_eq(ev->data, SL_STRLIT("[DONE]"))) {
        if (px->client != GW_CLIENT_OPENAI) {
            f->err = gw_tr_emit_done(px, f->out);
            return f->err != 0;
        }
        px->sse_done = 1;
    } else if (checked(px)) {
        json_t *j = json_loadb(ev->data.base, ev->data.len, 0, NULL);
        if (!json_is_object(j)) {
            json_decref(j);
            f->err = SL_EUPPROTO;
            return 1;
        }
        json_t *u = json_object_get(j, "usage");
        if (json_is_object(u)) {
            gw_tr_usage_from_openai(px, u);
            json_t *ch = json_object_get(j, "choices");
            if (px->tr.adapter == &usage_asked && json_is_array(ch) && json_array_size(ch) == 0) {
                json_decref(j); /* asked for by the gateway, not the client */
                return 0;
            }
        }
        if (px->client != GW_CLIENT_OPENAI) {
            f->err = gw_tr_emit_chunk(px, j, f->out); /* steals j */
            return f->err != 0;
        }
        json_decref(j);
    }
    sl_str_t data = ev->data;
    char small[4096];
    if (px->tr.adapter == &usage_asked)
        data = drop_null_usage(data, small, sizeof(small));
    if (sl_sse_encode(f->out, ev->event, data) != 0) {
        f->err = SL_EUPTOOBIG;
        return 1;
    }
    return 0;
}

static int on_stream_data(gw_proxy_t *px, const char *p, size_t n, sl_buf_t *out)
{
    feed_t f = {px, out, 0};
    int r = sl_sse_feed(&px->sse, p, n, on_event, &f);
    if (r == 0)
        return 0;
    if (f.err != 0)
        return f.err;
    return r == SL_ETOOBIG ? SL_EUPTOOBIG : SL_EUPSTREAM;
}

static int stream_complete(gw_proxy_t *px)
{
    return !sl_sse_pending(&px->sse) && (px->sse_done || !checked(px));
}

const gw_adapter_t gw_adapter_openai = {
    .name = "openai",
    .build_request = build_request,
    .response_mode = response_mode,
    .on_stream_data = on_stream_data,
    .stream_complete = stream_complete,
    .on_response = on_response,
};
