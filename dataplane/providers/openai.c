/*
 * OpenAI format adapter (OpenAI and every OpenAI-compatible service). The
 * request goes out as the client sent it, to the provider's base URL plus
 * the endpoint path; headers are forwarded except hop-by-hop ones, the
 * gateway's own and those libcurl manages. Responses come back byte for
 * byte; streams are relayed event by event, and those of chat and text
 * completions are checked (JSON events, ended by [DONE]).
 */
#include <string.h>

#include "dataplane/providers/adapter.h"
#include "dataplane/proxy/stage.h"

/* Request headers never forwarded upstream. */
static const sl_str_t dropped[] = {
    SL_STRLIT("host"),          SL_STRLIT("content-length"),      SL_STRLIT("connection"),
    SL_STRLIT("keep-alive"),    SL_STRLIT("proxy-authorization"), SL_STRLIT("proxy-connection"),
    SL_STRLIT("te"),            SL_STRLIT("trailer"),             SL_STRLIT("transfer-encoding"),
    SL_STRLIT("upgrade"),       SL_STRLIT("expect"),              SL_STRLIT("accept-encoding"),
    SL_STRLIT("cookie"),        SL_STRLIT("x-forwarded-for"),     SL_STRLIT("forwarded"),
};

static int forwarded(sl_str_t name)
{
    if (sl_str_istarts_with(name, "x-sluice-") || sl_str_istarts_with(name, "x-portkey-"))
        return 0;
    for (size_t i = 0; i < SL_ARRAY_SIZE(dropped); i++)
        if (sl_str_ieq(name, dropped[i]))
            return 0;
    return 1;
}

static int build_request(gw_proxy_t *px)
{
    gw_req_t *req = px->req;
    sl_str_t base = px->custom_host.len ? px->custom_host : sl_str_c(px->provider->base_url);
    while (base.len > 0 && base.base[base.len - 1] == '/')
        base.len--;
    /* Base URLs carry their version segment (".../v1"), so drop the client's. */
    sl_str_t path = req->path;
    if (sl_str_starts_with(path, SL_STRLIT("/v1/")))
        path = sl_str(path.base + 3, path.len - 3);
    if (req->query.len > 0)
        px->url = sl_arena_printf(&req->arena, "%.*s%.*s?%.*s", (int)base.len, base.base,
                                  (int)path.len, path.base, (int)req->query.len, req->query.base);
    else
        px->url = sl_arena_printf(&req->arena, "%.*s%.*s", (int)base.len, base.base,
                                  (int)path.len, path.base);

    px->up_headers = sl_arena_alloc(&req->arena, (req->nheaders + 1) * sizeof(gw_http_header_t),
                                    _Alignof(gw_http_header_t));
    size_t n = 0;
    for (size_t i = 0; i < req->nheaders; i++)
        if (forwarded(req->headers[i].name))
            px->up_headers[n++] = req->headers[i];
    px->n_up_headers = n;
    px->up_body = sl_buf_str(&req->body);
    return GW_STAGE_NEXT;
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

static int on_event(void *ud, const sl_sse_event_t *ev)
{
    feed_t *f = ud;
    if (sl_str_eq(ev->data, SL_STRLIT("[DONE]"))) {
        f->px->sse_done = 1;
    } else if (checked(f->px)) {
        json_error_t jerr;
        json_t *j = json_loadb(ev->data.base, ev->data.len, 0, &jerr);
        if (j == NULL) {
            f->err = SL_EUPPROTO;
            return 1;
        }
        json_decref(j);
    }
    if (sl_sse_encode(f->out, ev->event, ev->data) != 0) {
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
    .on_response = NULL,
};
