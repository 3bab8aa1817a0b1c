/*
 * Shared by the adapters: URLs and auth for the upstream request, and the
 * one place where OpenAI-format answers, chunks and errors turn into what
 * the client speaks (see translate.h).
 */
#include "dataplane/providers/translate.h"

#include <stdarg.h>
#include <stdint.h>
#include <limits.h>
#include <float.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "common/err.h"
#include "common/json.h"
#include "common/sse.h"
#include "dataplane/providers/anthropic_in.h"
#include "common/provider.h"

/* ---- upstream request ---------------------------------------------------- */

int gw_tr_token_ok(sl_str_t v)
{
    if (v.len == 0 || v.len > 200)
        return 0;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

int gw_tr_base_url(gw_proxy_t *px, sl_str_t *out)
{
    sl_arena_t *a = &px->req->arena;
    if (px->custom_host.len > 0) {
        sl_str_t b = px->custom_host;
        while (b.len > 0 && b.base[b.len - 1] == '/')
            b.len--;
        *out = b;
        return 0;
    }
    const char *t = px->provider->base_url;
    if (strchr(t, '{') == NULL) {
        *out = sl_str_c(t);
        return 0;
    }
    sl_buf_t b;
    sl_buf_init(&b, 4096);
    int ret = 0;
    while (*t != '\0' && ret == 0) {
        const char *open = strchr(t, '{');
        if (open == NULL) {
            ret = sl_buf_append_str(&b, sl_str_c(t));
            break;
        }
        const char *close = strchr(open, '}');
        SL_ASSERT(close != NULL);
        ret = sl_buf_append(&b, t, (size_t)(open - t));
        char name[64];
        size_t nl = (size_t)(close - open - 1);
        SL_ASSERT(nl < sizeof(name));
        memcpy(name, open + 1, nl);
        name[nl] = '\0';
        sl_str_t v = strcmp(name, "model") == 0 ? px->model : sl_str_trim(gw_proxy_option(px, name));
        if (!gw_tr_token_ok(v)) {
            if (strcmp(name, "model") == 0) {
                px->error_message = sl_arena_printf(
                    a, "provider %s needs a model name of letters, digits, '-', '_' and '.'",
                    px->provider->name);
                px->error_param = "model";
            } else {
                px->error_message = sl_arena_printf(
                    a, "provider %s needs the header x-sluice-%s (letters, digits, '-', '_', '.')",
                    px->provider->name, name);
                px->error_param = sl_arena_printf(a, "x-sluice-%s", name);
            }
            ret = SL_EINVAL;
            break;
        }
        ret = ret ? ret : sl_buf_append_str(&b, v);
        t = close + 1;
    }
    if (ret == 0)
        *out = sl_str_dup(a, sl_buf_str(&b));
    sl_buf_dispose(&b);
    return ret == SL_EINVAL ? ret : ret ? SL_ENOMEM : 0;
}

void gw_tr_set_url(gw_proxy_t *px, sl_str_t base, const char *path_fmt, ...)
{
    char path[2048];
    va_list ap;
    va_start(ap, path_fmt);
    int n = vsnprintf(path, sizeof(path), path_fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(path))
        n = sizeof(path) - 1;
    px->url = sl_arena_printf(&px->req->arena, "%.*s%.*s", (int)base.len, base.base, n, path);
}

void gw_tr_headers_init(gw_proxy_t *px, size_t extra)
{
    px->up_headers_cap = extra + 8;
    px->up_headers = sl_arena_alloc(&px->req->arena, px->up_headers_cap * sizeof(gw_http_header_t),
                                    _Alignof(gw_http_header_t));
    px->n_up_headers = 0;
}

void gw_tr_header_add(gw_proxy_t *px, sl_str_t name, sl_str_t value)
{
    gw_http_header_t *h = gw_http_header_push(&px->req->arena, &px->up_headers, &px->n_up_headers,
                                              &px->up_headers_cap);
    h->name = name;
    h->value = sl_str_dup(&px->req->arena, value);
}

/* Request headers never forwarded upstream. */
static const sl_str_t dropped[] = {
    SL_STRLIT("host"),          SL_STRLIT("content-length"),      SL_STRLIT("connection"),
    SL_STRLIT("keep-alive"),    SL_STRLIT("proxy-authorization"), SL_STRLIT("proxy-connection"),
    SL_STRLIT("te"),            SL_STRLIT("trailer"),             SL_STRLIT("transfer-encoding"),
    SL_STRLIT("upgrade"),       SL_STRLIT("expect"),              SL_STRLIT("accept-encoding"),
    SL_STRLIT("cookie"),        SL_STRLIT("x-forwarded-for"),     SL_STRLIT("forwarded"),
    SL_STRLIT("authorization"), SL_STRLIT("x-api-key"),           SL_STRLIT("api-key"),
    SL_STRLIT("x-goog-api-key"),
};

static int forwarded(const gw_proxy_t *px, sl_str_t name, int translated)
{
    /* Other vendors' API headers (organisation ids, SDK telemetry) mean
     * nothing to a provider of another format. */
    static const char *const foreign[] = {"openai-", "anthropic-", "x-stainless-"};
    if (sl_str_istarts_with(name, "x-sluice-") || sl_str_istarts_with(name, "x-portkey-") ||
        sl_str_istarts_with(name, "x-amz-"))
        return 0;
    if (translated) {
        if (sl_str_ieq_c(name, "content-type") || sl_str_ieq_c(name, "accept"))
            return 0; /* the body and its answer are the adapter's */
        for (size_t i = 0; i < SL_ARRAY_SIZE(foreign); i++)
            if (sl_str_istarts_with(name, foreign[i]))
                return 0;
    } else if (px->client == GW_CLIENT_ANTHROPIC && sl_str_istarts_with(name, "anthropic-")) {
        return 0;
    }
    for (size_t i = 0; i < SL_ARRAY_SIZE(dropped); i++)
        if (sl_str_ieq(name, dropped[i]))
            return 0;
    return 1;
}

/* A config's forward_headers lists the header (case-insensitive). */
static int asked_for(const json_t *list, sl_str_t name)
{
    size_t i;
    json_t *h;
    json_array_foreach(list, i, h) {
        if (sl_str_ieq(name, sl_str(json_string_value(h), json_string_length(h))))
            return 1;
    }
    return 0;
}

/* Never forwarded, even when a config asks: the transport's own, and the
 * credentials (the provider key goes in the provider's style). */
static int transport_header(sl_str_t n)
{
    static const char *const t[] = {"host", "content-length", "connection", "keep-alive",
                                    "transfer-encoding", "te", "trailer", "upgrade", "expect",
                                    "proxy-connection", "accept-encoding", "authorization",
                                    "x-api-key", "api-key", "x-goog-api-key",
                                    "proxy-authorization"};
    for (size_t i = 0; i < SL_ARRAY_SIZE(t); i++)
        if (sl_str_ieq_c(n, t[i]))
            return 1;
    return 0;
}

void gw_tr_forward_headers(gw_proxy_t *px, int translated)
{
    const gw_req_t *req = px->req;
    const json_t *asked = px->route != NULL && px->route->nplan > 0
                              ? px->route->plan[px->route->cur].forward_headers
                              : NULL;
    for (size_t i = 0; i < req->nheaders; i++)
        if (forwarded(px, req->headers[i].name, translated) ||
            (asked != NULL && asked_for(asked, req->headers[i].name) &&
             !transport_header(req->headers[i].name) &&
             !sl_str_istarts_with(req->headers[i].name, "x-sluice-") &&
             !sl_str_istarts_with(req->headers[i].name, "x-portkey-"))) {
            gw_http_header_t *h = gw_http_header_push(&px->req->arena, &px->up_headers,
                                                      &px->n_up_headers, &px->up_headers_cap);
            *h = req->headers[i];
        }
}

/* An Entra ID access token (a JWT) rather than an Azure API key. */
static int looks_like_jwt(sl_str_t k)
{
    if (!sl_str_starts_with(k, SL_STRLIT("eyJ")))
        return 0;
    int dots = 0;
    for (size_t i = 0; i < k.len; i++)
        dots += k.base[i] == '.';
    return dots == 2;
}

void gw_tr_auth_header(gw_proxy_t *px)
{
    sl_str_t k = px->api_key;
    if (k.len == 0)
        return;
    switch (px->provider->auth) {
    case SL_AUTH_BEARER:
    case SL_AUTH_BEARER_OPTIONAL:
        gw_tr_header_add(px, SL_STRLIT("Authorization"),
                         sl_str_c(sl_arena_printf(&px->req->arena, "Bearer %.*s", (int)k.len,
                                                  k.base)));
        break;
    case SL_AUTH_X_API_KEY:
        gw_tr_header_add(px, SL_STRLIT("x-api-key"), k);
        break;
    case SL_AUTH_API_KEY:
        if (looks_like_jwt(k))
            gw_tr_header_add(px, SL_STRLIT("Authorization"),
                             sl_str_c(sl_arena_printf(&px->req->arena, "Bearer %.*s", (int)k.len,
                                                      k.base)));
        else
            gw_tr_header_add(px, SL_STRLIT("api-key"), k);
        break;
    case SL_AUTH_GOOG_API_KEY:
        gw_tr_header_add(px, SL_STRLIT("x-goog-api-key"), k);
        break;
    case SL_AUTH_NONE:
    case SL_AUTH_QUERY_KEY:
    case SL_AUTH_SIGV4:
        break;
    }
}

static sl_str_t dump_arena(sl_arena_t *a, const json_t *v)
{
    sl_buf_t b;
    sl_buf_init(&b, 256u << 20);
    sl_str_t s = SL_STR_NULL;
    if (sl_json_dump(&b, v) == 0)
        s = sl_str_dup(a, sl_buf_str(&b));
    sl_buf_dispose(&b);
    return s;
}

sl_str_t gw_tr_dump(gw_proxy_t *px, const json_t *v)
{
    return dump_arena(&px->req->arena, v);
}

int gw_tr_set_body(gw_proxy_t *px, const json_t *v)
{
    px->up_body = dump_arena(&px->req->arena, v);
    return px->up_body.len > 0 ? 0 : SL_EINTERNAL;
}

/* ---- responses ------------------------------------------------------------ */

static int put_json(sl_buf_t *b, const json_t *v)
{
    sl_buf_reset(b);
    return sl_json_dump(b, v) == 0 ? 0 : SL_EUPTOOBIG;
}

int gw_tr_respond_json(gw_proxy_t *px, json_t *resp)
{
    json_t *u = json_object_get(resp, "usage");
    if (json_is_object(u))
        gw_tr_usage_from_openai(px, u);
    if (px->client == GW_CLIENT_ANTHROPIC) {
        json_t *a = gw_anthropic_in_response(px, resp);
        json_decref(resp);
        resp = a;
        if (resp == NULL)
            return SL_EUPPROTO;
    }
    int r = put_json(&px->resp, resp);
    json_decref(resp);
    px->tr.resp_ct = "application/json";
    return r;
}

int gw_tr_retryable_status(int status)
{
    return status == 429 || status == 503 || status == 529;
}

static const char *default_type(int status)
{
    switch (status) {
    case 400: case 404: case 409: case 413: case 422: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

void gw_tr_note_error(gw_proxy_t *px)
{
    sl_str_t raw = sl_buf_str(&px->resp);
    if (raw.len > 2048)
        raw.len = 2048;
    px->provider_error = sl_str_dup(&px->req->arena, raw);
    px->retryable = gw_tr_retryable_status(px->up.status);
}

int gw_tr_respond_error(gw_proxy_t *px, const char *message, const char *type, const char *code)
{
    int status = px->up.status;
    gw_tr_note_error(px);
    if (message == NULL || message[0] == '\0')
        message = "the provider returned an error";
    json_t *e;
    if (px->client == GW_CLIENT_ANTHROPIC) {
        e = gw_anthropic_in_error(status, message);
    } else {
        e = json_pack("{s:{s:s,s:s,s:n,s:o}}", "error", "message", message, "type",
                      type ? type : default_type(status), "param", "code",
                      code ? json_string(code) : json_null());
    }
    if (e == NULL)
        return SL_EINTERNAL;
    int r = put_json(&px->resp, e);
    json_decref(e);
    px->tr.resp_ct = "application/json";
    return r;
}

/* ---- streams ---------------------------------------------------------------- */

void gw_tr_ids(gw_proxy_t *px)
{
    if (px->tr.id != NULL)
        return;
    px->tr.id = sl_arena_printf(&px->req->arena, "chatcmpl-%.*s", (int)px->trace_id.len,
                                px->trace_id.base);
    px->tr.created = (long long)time(NULL);
    if (px->tr.model == NULL)
        px->tr.model = sl_arena_printf(&px->req->arena, "%.*s", (int)px->model.len,
                                       px->model.base ? px->model.base : "");
}

json_t *gw_tr_chunk_new(json_t **delta)
{
    json_t *d = json_object();
    json_t *c = json_pack("{s:[{s:i,s:o,s:n}]}", "choices", "index", 0, "delta", d,
                          "finish_reason");
    SL_ASSERT(c != NULL);
    *delta = d;
    return c;
}

int gw_tr_emit_chunk(gw_proxy_t *px, json_t *chunk, sl_buf_t *out)
{
    gw_tr_ids(px);
    if (json_object_get(chunk, "id") == NULL)
        json_object_set_new(chunk, "id", json_string(px->tr.id));
    if (json_object_get(chunk, "object") == NULL)
        json_object_set_new(chunk, "object", json_string("chat.completion.chunk"));
    if (json_object_get(chunk, "created") == NULL)
        json_object_set_new(chunk, "created", json_integer(px->tr.created));
    if (json_object_get(chunk, "model") == NULL)
        json_object_set_new(chunk, "model", json_string(px->tr.model));
    json_t *u = json_object_get(chunk, "usage");
    int usage_only = 0;
    if (json_is_object(u)) {
        gw_tr_usage_from_openai(px, u);
        json_t *ch = json_object_get(chunk, "choices");
        usage_only = !json_is_array(ch) || json_array_size(ch) == 0;
    }
    int r = 0;
    if (px->client == GW_CLIENT_ANTHROPIC)
        return gw_anthropic_in_chunk(px, chunk, out); /* steals */
    if (!usage_only || px->include_usage) {
        sl_str_t data = dump_arena(&px->req->arena, chunk);
        r = sl_sse_encode(out, SL_STR_NULL, data) == 0 ? 0 : SL_EUPTOOBIG;
    }
    json_decref(chunk);
    return r;
}

int gw_tr_emit_done(gw_proxy_t *px, sl_buf_t *out)
{
    px->sse_done = 1;
    if (px->client == GW_CLIENT_ANTHROPIC)
        return gw_anthropic_in_done(px, out);
    return sl_buf_append_str(out, SL_STRLIT("data: [DONE]\n\n")) == 0 ? 0 : SL_EUPTOOBIG;
}

/* ---- adapter plumbing ------------------------------------------------------------ */

void *gw_tr_state(gw_proxy_t *px, size_t size)
{
    if (px->tr.adapter == NULL) {
        px->tr.adapter = sl_arena_alloc(&px->req->arena, size, _Alignof(max_align_t));
        memset(px->tr.adapter, 0, size);
    }
    return px->tr.adapter;
}

int gw_tr_invalid(gw_proxy_t *px, const char *param, const char *msg)
{
    px->error_message = msg;
    px->error_param = param;
    return SL_EINVAL;
}

int gw_tr_sse_response_mode(gw_proxy_t *px)
{
    sl_str_t ct = gw_upstream_header(&px->up, "content-type");
    int ok = px->up.status >= 200 && px->up.status < 300;
    return ok && sl_str_istarts_with(ct, "text/event-stream") ? GW_RESP_MODE_SSE
                                                                : GW_RESP_MODE_BUFFER;
}

int gw_tr_sse_feed(gw_proxy_t *px, const char *p, size_t n, sl_buf_t *out,
                   int (*on_event)(void *ud, const sl_sse_event_t *ev))
{
    gw_tr_feed_t f = {px, out, 0};
    int r = sl_sse_feed(&px->sse, p, n, on_event, &f);
    if (r == 0)
        return 0;
    if (f.err != 0)
        return f.err;
    return r == SL_ETOOBIG ? SL_EUPTOOBIG : SL_EUPSTREAM;
}

int gw_tr_feed_emit(gw_tr_feed_t *f, json_t *chunk)
{
    int r = gw_tr_emit_chunk(f->px, chunk, f->out);
    if (r != 0)
        f->err = r;
    return r;
}

int gw_tr_feed_role(gw_tr_feed_t *f, int *sent)
{
    if (*sent)
        return 0;
    *sent = 1;
    json_t *delta;
    json_t *c = gw_tr_chunk_new(&delta);
    json_object_set_new(delta, "role", json_string("assistant"));
    json_object_set_new(delta, "content", json_string(""));
    return gw_tr_feed_emit(f, c);
}

/* ---- usage and helpers -------------------------------------------------------- */

void gw_tr_usage_from_openai(gw_proxy_t *px, const json_t *u)
{
    gw_usage_t *g = &px->usage;
    g->prompt_tokens = gw_tr_int(u, "prompt_tokens");
    g->completion_tokens = gw_tr_int(u, "completion_tokens");
    g->cached_tokens = gw_tr_int(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
    g->reasoning_tokens =
        gw_tr_int(json_object_get(u, "completion_tokens_details"), "reasoning_tokens");
    g->cache_write_tokens = gw_tr_int(u, "cache_creation_input_tokens");
    if (json_object_get(u, "prompt_tokens") == NULL &&
        json_object_get(u, "completion_tokens") == NULL)
        g->prompt_tokens = gw_tr_int(u, "total_tokens"); /* embeddings APIs (Voyage) */
    g->set = 1;
}

json_t *gw_tr_usage_to_openai(const gw_proxy_t *px)
{
    const gw_usage_t *g = &px->usage;
    json_t *u = json_pack("{s:I,s:I,s:I,s:{s:I},s:{s:I}}", "prompt_tokens",
                          (json_int_t)g->prompt_tokens, "completion_tokens",
                          (json_int_t)g->completion_tokens, "total_tokens",
                          (json_int_t)(g->prompt_tokens + g->completion_tokens),
                          "prompt_tokens_details", "cached_tokens", (json_int_t)g->cached_tokens,
                          "completion_tokens_details", "reasoning_tokens",
                          (json_int_t)g->reasoning_tokens);
    SL_ASSERT(u != NULL);
    if (g->cache_write_tokens > 0)
        json_object_set_new(u, "cache_creation_input_tokens",
                            json_integer((json_int_t)g->cache_write_tokens));
    return u;
}

json_t *gw_tr_embedding_base64(gw_proxy_t *px, const json_t *vec)
{
    size_t n = json_array_size(vec), bytes = n * 4;
    if (n > (SIZE_MAX / 8) || bytes > INT_MAX)
        return NULL;
    unsigned char *raw = sl_arena_try_alloc(&px->req->arena, bytes + 1, 1);
    unsigned char *out = sl_arena_try_alloc(&px->req->arena, (bytes + 2) / 3 * 4 + 1, 1);
    if (raw == NULL || out == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        double d = json_number_value(json_array_get(vec, i));
        float f = (float)(d > FLT_MAX ? FLT_MAX : d < -FLT_MAX ? -FLT_MAX : d);
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int k = 0; k < 4; k++)
            raw[i * 4 + (size_t)k] = (unsigned char)(u >> (8 * k)); /* little-endian */
    }
    int len = EVP_EncodeBlock(out, raw, (int)bytes);
    return len < 0 ? NULL : json_stringn((const char *)out, (size_t)len);
}

long long gw_tr_int(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

int gw_tr_write_usage(const gw_proxy_t *px, sl_buf_t *out)
{
    const gw_usage_t *g = &px->usage;
    char b[320];
    int n = snprintf(b, sizeof(b),
                     "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
                     "\"prompt_tokens_details\":{\"cached_tokens\":%lld},"
                     "\"completion_tokens_details\":{\"reasoning_tokens\":%lld}",
                     g->prompt_tokens, g->completion_tokens,
                     g->prompt_tokens + g->completion_tokens, g->cached_tokens,
                     g->reasoning_tokens);
    if (g->cache_write_tokens > 0 && n > 0 && (size_t)n < sizeof(b))
        n += snprintf(b + n, sizeof(b) - (size_t)n, ",\"cache_creation_input_tokens\":%lld",
                      g->cache_write_tokens);
    if (n <= 0 || (size_t)n >= sizeof(b) - 1)
        return SL_EINTERNAL;
    b[n++] = '}';
    return sl_buf_append(out, b, (size_t)n) == 0 ? 0 : SL_EUPTOOBIG;
}

const char *gw_tr_str(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

json_t *gw_tr_parse_resp(gw_proxy_t *px)
{
    if (px->resp.len == 0)
        return NULL;
    return json_loadb(px->resp.base, px->resp.len, 0, NULL);
}
