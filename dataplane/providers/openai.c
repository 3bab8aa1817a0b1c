/*
 * OpenAI format adapter (OpenAI and every OpenAI-compatible service). The
 * request goes out as the client sent it, to the provider's base URL plus
 * the endpoint path; headers are forwarded except hop-by-hop ones, the
 * gateway's own and those libcurl manages.
 */
#include <string.h>

#include "dataplane/proxy/stage.h"

/* Request headers never forwarded upstream. */
static const char *const dropped[] = {
    "host", "content-length", "connection", "keep-alive", "proxy-authorization",
    "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect",
    "accept-encoding", "cookie", "x-forwarded-for", "forwarded",
};

static int forwarded(sl_str_t name)
{
    if (sl_str_istarts_with(name, "x-sluice-") || sl_str_istarts_with(name, "x-portkey-"))
        return 0;
    for (size_t i = 0; i < SL_ARRAY_SIZE(dropped); i++)
        if (sl_str_ieq_c(name, dropped[i]))
            return 0;
    return 1;
}

int gw_provider_build(gw_proxy_t *px)
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
