/*
 * Router stage, header-driven form: the caller names the provider
 * (x-sluice-provider) and may point it at any OpenAI-compatible base URL
 * (x-sluice-custom-host). Config-driven strategies (fallback, loadbalance,
 * conditional) replace this resolution in the routing issue.
 */
#include <curl/curl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "dataplane/proxy/stage.h"

/* Validates a custom host: http(s) only, a host, no credentials; an IP
 * literal is checked against the guard at once (names are checked when
 * curl connects, on the resolved address). */
static int check_custom_host(gw_proxy_t *px, sl_str_t host)
{
    int ret = SL_EBADHOST;
    char *scheme = NULL, *h = NULL, *user = NULL, *pw = NULL;
    CURLU *u = curl_url();
    char *s = (char *)sl_str_dup(&px->req->arena, host).base;
    if (u == NULL)
        return SL_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK) {
        px->error_message = "invalid custom host: not an absolute http(s) URL";
        goto Exit;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        px->error_message = "invalid custom host: only http and https are allowed";
        goto Exit;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_PASSWORD, &pw, 0) == CURLUE_OK) {
        px->error_message = "invalid custom host: credentials in the URL are not allowed";
        goto Exit;
    }
    if (curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK || h[0] == '\0') {
        px->error_message = "invalid custom host: no host";
        goto Exit;
    }
    /* An IP literal can be judged now, with a clearer error than at connect. */
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    memset(&a6, 0, sizeof(a6));
    memset(&a4, 0, sizeof(a4));
    size_t hl = strlen(h);
    if (h[0] == '[' && hl > 2) {
        h[hl - 1] = '\0';
        if (inet_pton(AF_INET6, h + 1, &a6.sin6_addr) == 1) {
            a6.sin6_family = AF_INET6;
            if (gw_netguard_check(&px->req->worker->cfg->netguard, (struct sockaddr *)&a6) != 0) {
                ret = SL_EFORBIDDENHOST;
                goto Exit;
            }
        }
    } else if (inet_pton(AF_INET, h, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        if (gw_netguard_check(&px->req->worker->cfg->netguard, (struct sockaddr *)&a4) != 0) {
            ret = SL_EFORBIDDENHOST;
            goto Exit;
        }
    }
    ret = 0;
Exit:
    curl_free(scheme);
    curl_free(h);
    curl_free(user);
    curl_free(pw);
    curl_url_cleanup(u);
    return ret;
}

/*
 * Parsing a URL with libcurl costs several thousand instructions, and a
 * caller usually sends the same custom host on every request: each worker
 * thread remembers the last host it accepted. Only acceptance is cached, so
 * a refusal always gets its full message.
 */
static _Thread_local char last_ok_host[512];
static _Thread_local size_t last_ok_len;

static int check_custom_host_cached(gw_proxy_t *px, sl_str_t host)
{
    if (last_ok_len != 0 && host.len == last_ok_len &&
        memcmp(host.base, last_ok_host, host.len) == 0)
        return 0;
    int r = check_custom_host(px, host);
    if (r == 0 && host.len < sizeof(last_ok_host)) {
        memcpy(last_ok_host, host.base, host.len);
        last_ok_len = host.len;
    }
    return r;
}

int gw_router_resolve(gw_proxy_t *px)
{
    const gw_config_t *cfg = px->req->worker->cfg;
    px->provider_name = sl_str_trim(gw_proxy_header(px, "provider"));
    if (px->provider_name.len == 0) {
        px->error_param = "x-sluice-provider";
        return SL_ENOROUTE;
    }
    px->provider = gw_provider_find(px->provider_name);
    if (px->provider == NULL) {
        sl_str_t n = px->provider_name;
        if (n.len > 64)
            n.len = 64;
        px->error_message = sl_arena_printf(&px->req->arena, "unknown provider '%.*s'",
                                            (int)n.len, n.base);
        px->error_param = "x-sluice-provider";
        /* Not a provider: neither a response header nor a metrics label. */
        px->provider_name = SL_STR_NULL;
        return SL_ENOPROV;
    }
    px->provider_name = sl_str_c(px->provider->name);
    px->custom_host = sl_str_trim(gw_proxy_header(px, "custom-host"));
    if (px->custom_host.len > 0) {
        int r = check_custom_host_cached(px, px->custom_host);
        if (r != 0) {
            px->error_param = "x-sluice-custom-host";
            return r;
        }
    }
    switch (px->provider->auth) {
    case GW_AUTH_BEARER:
    case GW_AUTH_X_API_KEY:
    case GW_AUTH_API_KEY:
    case GW_AUTH_GOOG_API_KEY:
    case GW_AUTH_QUERY_KEY:
        if (px->api_key.len == 0) {
            px->error_message = "missing provider API key: send it as Authorization: Bearer <key>";
            return SL_ENOKEY;
        }
        break;
    case GW_AUTH_BEARER_OPTIONAL:
    case GW_AUTH_NONE:
    case GW_AUTH_SIGV4: /* the adapter checks the AWS credentials */
        break;
    }
    px->timeout_ms = cfg->upstream_timeout_ms;
    sl_str_t t = sl_str_trim(gw_proxy_header(px, "request-timeout"));
    if (t.len > 0) {
        unsigned long long ms;
        if (sl_str_to_u64(t, &ms) != 0 || ms == 0 || ms > 3600000) {
            px->error_message = "x-sluice-request-timeout must be milliseconds between 1 and 3600000";
            px->error_param = "x-sluice-request-timeout";
            return SL_EINVAL;
        }
        px->timeout_ms = ms;
    }
    return GW_STAGE_NEXT;
}
