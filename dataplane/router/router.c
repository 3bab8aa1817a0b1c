/*
 * Router stage. Header-driven: the caller names the provider
 * (x-sluice-provider) and may point it at any base URL
 * (x-sluice-custom-host). Config-driven (x-sluice-config, Portkey's schema,
 * common/rconfig.c): the config is flattened into the targets to try, in
 * order (a loadbalance picks one child by weight, a conditional the child
 * its query names, a fallback lists its children), each with the settings
 * inherited down to it; gw_router_next decides retries (jittered backoff,
 * Retry-After) and fallbacks after a failed attempt.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "common/rand.h"
#include "common/rconfig.h"
#include "dataplane/proxy/stage.h"
#include "dataplane/router/breaker.h"
#include "dataplane/worker.h"
#include "dataplane/sync/sync.h"

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

/*
 * Points the request at one target: a provider (or the x-sluice-provider
 * header), its key (or the caller's), a custom host (or the header's) and a
 * timeout. The same checks whether the target came from headers or from a
 * config.
 */
static int use_target(gw_proxy_t *px, sl_str_t provider, sl_str_t key, sl_str_t host,
                      uint64_t timeout_ms, const char *where)
{
    const gw_config_t *cfg = px->req->worker->cfg;
    px->provider_name = provider;
    if (px->provider_name.len == 0) {
        px->error_param = where ? where : "x-sluice-provider";
        if (where != NULL)
            px->error_message = sl_arena_printf(&px->req->arena,
                                                "%s: no provider, and no x-sluice-provider", where);
        return SL_ENOROUTE;
    }
    px->provider = sl_provider_find(px->provider_name);
    if (px->provider == NULL) {
        sl_str_t n = px->provider_name;
        if (n.len > 64)
            n.len = 64;
        px->error_message = sl_arena_printf(&px->req->arena, "%s%sunknown provider '%.*s'",
                                            where ? where : "", where ? ": " : "", (int)n.len,
                                            n.base);
        px->error_param = where ? where : "x-sluice-provider";
        /* Not a provider: neither a response header nor a metrics label. */
        px->provider_name = SL_STR_NULL;
        return SL_ENOPROV;
    }
    px->provider_name = sl_str_c(px->provider->name);
    px->api_key = key;
    px->custom_host = host;
    if (px->custom_host.len > 0) {
        int r = check_custom_host_cached(px, px->custom_host);
        if (r != 0) {
            px->error_param = where ? where : "x-sluice-custom-host";
            return r;
        }
    }
    switch (px->provider->auth) {
    case SL_AUTH_BEARER:
    case SL_AUTH_X_API_KEY:
    case SL_AUTH_API_KEY:
    case SL_AUTH_GOOG_API_KEY:
    case SL_AUTH_QUERY_KEY:
        if (px->api_key.len == 0) {
            px->error_message = "missing provider API key: send it as Authorization: Bearer <key>";
            return SL_ENOKEY;
        }
        break;
    case SL_AUTH_BEARER_OPTIONAL:
    case SL_AUTH_NONE:
    case SL_AUTH_SIGV4: /* the adapter checks the AWS credentials */
        break;
    }
    px->timeout_ms = timeout_ms ? timeout_ms : cfg->upstream_timeout_ms;
    return GW_STAGE_NEXT;
}

/* ---- configs ------------------------------------------------------------------ */

typedef struct {
    gw_proxy_t *px;
    gw_attempt_t *plan;
    size_t n, cap;
    const char *err;
} plan_t;

/* Effective settings while walking down: what a deeper node does not set. */
typedef struct {
    const sl_rcfg_retry_t *retry;
    const sl_rcfg_breaker_t *breaker;
    uint64_t timeout_ms;
    const char *custom_host;
    json_t *override; /* borrowed or arena-owned merge */
    json_t *forward_headers; /* borrowed */
} inherit_t;

static gw_breaker_cfg_t breaker_cfg(const sl_rcfg_breaker_t *b)
{
    gw_breaker_cfg_t c = {b->failures, b->error_rate, b->window_ms, b->min_requests,
                          b->cooldown_ms};
    return c;
}

/*
 * A target's breaker identity: its provider, base URL and key (hashed: the
 * key itself is never kept), and a label for /metrics without the key.
 */
static sl_str_t breaker_key(gw_proxy_t *px, const sl_rcfg_node_t *leaf, const char *custom_host,
                            sl_str_t *label)
{
    sl_str_t prov = leaf->provider ? sl_str_c(leaf->provider) : px->route->header_provider;
    sl_str_t key = leaf->api_key ? sl_str_c(leaf->api_key) : px->api_key;
    sl_str_t host = custom_host ? sl_str_c(custom_host) : sl_str_trim(gw_proxy_header(px, "custom-host"));
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < key.len; i++)
        h = (h ^ (unsigned char)key.base[i]) * 1099511628211ull;
    sl_arena_t *a = &px->req->arena;
    *label = sl_str_c(sl_arena_printf(a, "%.*s %.*s #%04x", (int)prov.len, prov.base,
                                      (int)(host.len > 100 ? 100 : host.len), host.base,
                                      (unsigned)(h & 0xffff)));
    return sl_str_c(sl_arena_printf(a, "%.*s|%.*s|%016llx", (int)prov.len, prov.base,
                                    (int)(host.len > 100 ? 100 : host.len), host.base,
                                    (unsigned long long)h));
}

static double rand01(void)
{
    return (double)(sl_rand_u64() >> 11) * (1.0 / 9007199254740992.0);
}

/* A target's weight for this request: 0 for a leaf whose breaker is open. */
static double live_weight(gw_proxy_t *px, const sl_rcfg_node_t *t, const sl_rcfg_breaker_t *inh,
                          const char *host)
{
    const sl_rcfg_breaker_t *b = t->breaker.set ? &t->breaker : inh;
    if (t->weight <= 0 || t->ntargets > 0 || b == NULL)
        return t->weight;
    sl_str_t label;
    sl_str_t key = breaker_key(px, t, t->custom_host ? t->custom_host : host, &label);
    gw_breaker_cfg_t c = breaker_cfg(b);
    return gw_breaker_allow(key, label, &c, uv_now(&px->req->worker->loop), 0) ? t->weight : 0;
}

/*
 * least_latency: among the leaves a request may use (weight above 0, breaker
 * not open), the one with the lowest latency average; one never measured
 * first. Children that are strategies themselves count as unmeasured.
 */
static const sl_rcfg_node_t *pick_fastest(gw_proxy_t *px, const sl_rcfg_node_t *n,
                                          const inherit_t *in)
{
    const sl_rcfg_node_t *best = NULL;
    double best_ms = 0;
    for (size_t i = 0; i < n->ntargets; i++) {
        const sl_rcfg_node_t *t = &n->targets[i];
        if (live_weight(px, t, in->breaker, in->custom_host) <= 0)
            continue;
        double ms = -1;
        if (t->ntargets == 0) {
            sl_str_t label;
            ms = gw_breaker_latency(
                breaker_key(px, t, t->custom_host ? t->custom_host : in->custom_host, &label));
        }
        if (ms < 0)
            return t; /* learn its latency */
        if (best == NULL || ms < best_ms) {
            best = t;
            best_ms = ms;
        }
    }
    return best;
}

static const sl_rcfg_node_t *pick_weighted(gw_proxy_t *px, const sl_rcfg_node_t *n,
                                           const inherit_t *in)
{
    if (n->policy == SL_RCFG_LEAST_LATENCY) {
        const sl_rcfg_node_t *t = pick_fastest(px, n, in);
        if (t != NULL)
            return t;
    }
    double w[SL_RCFG_MAX_TARGETS], total = 0;
    for (size_t i = 0; i < n->ntargets; i++) {
        w[i] = live_weight(px, &n->targets[i], in->breaker, in->custom_host);
        total += w[i];
    }
    if (total <= 0) /* every breaker open: the weights as configured, apply() says no */
        for (size_t i = 0; i < n->ntargets; i++)
            total += (w[i] = n->targets[i].weight);
    double x = rand01() * total;
    for (size_t i = 0; i < n->ntargets; i++) {
        if (w[i] <= 0)
            continue;
        if (x < w[i])
            return &n->targets[i];
        x -= w[i];
    }
    for (size_t i = n->ntargets; i-- > 0;) /* rounding: the last with a weight */
        if (w[i] > 0)
            return &n->targets[i];
    return NULL;
}

static const sl_rcfg_node_t *pick_conditional(plan_t *pl, const sl_rcfg_node_t *n)
{
    gw_proxy_t *px = pl->px;
    json_t *md = NULL;
    if (px->metadata.len > 0)
        md = json_loadb(px->metadata.base, px->metadata.len, 0, NULL);
    const char *name = n->default_target;
    for (size_t i = 0; i < n->nconds; i++)
        if (sl_rcfg_match(n->conds[i].query, md, px->body, px->req->path)) {
            name = n->conds[i].then;
            break;
        }
    json_decref(md);
    if (name == NULL) {
        pl->err = sl_arena_printf(&px->req->arena,
                                  "%s: no condition matched and there is no default", n->path);
        return NULL;
    }
    for (size_t i = 0; i < n->ntargets; i++)
        if (n->targets[i].name != NULL && strcmp(n->targets[i].name, name) == 0)
            return &n->targets[i];
    return NULL;
}

static void add(plan_t *pl, const sl_rcfg_node_t *leaf, const inherit_t *in)
{
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 8;
        gw_attempt_t *p = sl_arena_alloc(&pl->px->req->arena, cap * sizeof(*p), _Alignof(gw_attempt_t));
        if (pl->n)
            memcpy(p, pl->plan, pl->n * sizeof(*p));
        pl->plan = p;
        pl->cap = cap;
    }
    gw_attempt_t *a = &pl->plan[pl->n++];
    memset(a, 0, sizeof(*a));
    a->leaf = leaf;
    a->retry = in->retry;
    a->breaker = in->breaker;
    a->forward_headers = in->forward_headers;
    a->timeout_ms = in->timeout_ms;
    a->custom_host = in->custom_host;
    a->override = in->override;
}

static int flatten(plan_t *pl, const sl_rcfg_node_t *n, inherit_t in, int depth)
{
    if (n->retry.set)
        in.retry = &n->retry;
    if (n->breaker.set)
        in.breaker = &n->breaker;
    if (n->forward_headers != NULL)
        in.forward_headers = n->forward_headers;
    if (n->request_timeout_ms)
        in.timeout_ms = n->request_timeout_ms;
    if (n->custom_host)
        in.custom_host = n->custom_host;
    if (n->override_params != NULL) {
        json_t *m = in.override ? json_deep_copy(in.override) : json_object();
        json_object_update(m, n->override_params);
        sl_arena_defer(&pl->px->req->arena, sl_json_decref_cb, m);
        in.override = m;
    }
    if (n->ntargets == 0) {
        add(pl, n, &in);
        return 0;
    }
    switch (n->mode) {
    case SL_RCFG_SINGLE:
        return flatten(pl, &n->targets[0], in, depth + 1);
    case SL_RCFG_LOADBALANCE: {
        if (n->policy == SL_RCFG_LEAST_LATENCY)
            pl->px->route->latency_tracked = 1;
        const sl_rcfg_node_t *t = pick_weighted(pl->px, n, &in);
        return t ? flatten(pl, t, in, depth + 1) : SL_EINVAL;
    }
    case SL_RCFG_CONDITIONAL: {
        const sl_rcfg_node_t *t = pick_conditional(pl, n);
        return t ? flatten(pl, t, in, depth + 1) : SL_EINVAL;
    }
    case SL_RCFG_FALLBACK:
        for (size_t i = 0; i < n->ntargets; i++) {
            size_t first = pl->n;
            int r = flatten(pl, &n->targets[i], in, depth + 1);
            if (r != 0)
                return r;
            /* Leaving this child for the next one is this node's decision. */
            if (i + 1 < n->ntargets && pl->n > first)
                pl->plan[pl->n - 1].next_by = n;
        }
        return 0;
    }
    return 0;
}

static void note_fallback(gw_route_t *rt, const char *path, const char *what)
{
    if (rt->fallback_len + 80 < sizeof(rt->fallback)) {
        int n = snprintf(rt->fallback + rt->fallback_len, sizeof(rt->fallback) - rt->fallback_len,
                         "%s%s=%s", rt->fallback_len ? "," : "", path, what);
        if (n > 0)
            rt->fallback_len += (size_t)n;
    }
}

/* The current target of the plan, or the next whose breaker lets it through. */
static int apply(gw_proxy_t *px)
{
    gw_route_t *rt = px->route;
    rt->breaker_key = SL_STR_NULL;
    for (;;) {
        const gw_attempt_t *e = &rt->plan[rt->cur];
        if (e->breaker == NULL)
            break;
        sl_str_t label;
        sl_str_t key = breaker_key(px, e->leaf, e->custom_host, &label);
        gw_breaker_cfg_t c = breaker_cfg(e->breaker);
        if (gw_breaker_allow(key, label, &c, uv_now(&px->req->worker->loop), 1)) {
            rt->breaker_key = key;
            break;
        }
        note_fallback(rt, e->leaf->path, "open");
        if (rt->cur + 1 >= rt->nplan) {
            px->error_message = sl_arena_printf(&px->req->arena,
                                                "every target's circuit breaker is open (last: %s)",
                                                e->leaf->path);
            return SL_EUNAVAILABLE;
        }
        rt->cur++;
        rt->tries = 0;
    }
    const gw_attempt_t *a = &rt->plan[rt->cur];
    const sl_rcfg_node_t *leaf = a->leaf;
    sl_str_t prov = leaf->provider ? sl_str_c(leaf->provider) : rt->header_provider;
    sl_str_t key = leaf->api_key ? sl_str_c(leaf->api_key) : px->api_key;
    if (leaf->virtual_key != NULL) {
        if (!gw_sync_enabled()) {
            px->error_message = sl_arena_printf(&px->req->arena,
                                                "%s.virtual_key: virtual keys need the control plane",
                                                leaf->path);
            px->error_param = "x-sluice-config";
            return SL_EINVAL;
        }
        int vr = gw_auth_virtual_key(px, sl_str_c(leaf->virtual_key), leaf->path);
        if (vr != 0)
            return vr;
        prov = px->vk_provider;
        key = px->api_key;
    }
    sl_str_t host = a->custom_host ? sl_str_c(a->custom_host)
                                   : sl_str_trim(gw_proxy_header(px, "custom-host"));
    rt->timeout_from_config = a->timeout_ms != 0;
    int r = use_target(px, prov, key, host, a->timeout_ms, leaf->path);
    if (r != 0)
        return r;
    if (a->override != NULL && json_is_object(rt->orig_body)) {
        json_t *b = json_deep_copy(rt->orig_body);
        json_object_update(b, a->override);
        sl_arena_defer(&px->req->arena, sl_json_decref_cb, b);
        px->body = b;
        px->body_dirty = 1;
        json_t *m = json_object_get(b, "model");
        if (json_is_string(m))
            px->model = sl_str(json_string_value(m), json_string_length(m));
    } else if (rt->orig_body != NULL) {
        px->body = rt->orig_body;
    }
    return GW_STAGE_NEXT;
}

/*
 * Parsed configs, per worker, keyed by their text: an application sends the
 * same config with every request, and parsing and validating it again each
 * time cost more than the rest of the routing. An entry in use by a request
 * (refs) is never replaced; past the capacity a config is parsed for its
 * request alone.
 */
#define GW_ROUTE_CACHE 32
#define GW_ROUTE_CACHE_MAX_TEXT 16384

typedef struct {
    char *text;        /* owned */
    size_t len;
    uint64_t hash;
    sl_arena_t arena;  /* holds cfg */
    sl_rcfg_t cfg;
    unsigned refs;     /* requests routing with it now */
    uint64_t used;
    int live;
} route_entry_t;

typedef struct {
    route_entry_t e[GW_ROUTE_CACHE];
    uint64_t clock;
} route_cache_t;

static uint64_t fnv1a(sl_str_t s)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.base[i]) * 1099511628211ull;
    return h;
}

static void entry_release(void *p)
{
    route_entry_t *e = p;
    e->refs--;
}

static void entry_drop(route_entry_t *e)
{
    if (!e->live)
        return;
    sl_arena_clear(&e->arena);
    sl_free(e->text);
    e->live = 0;
}

void gw_router_cache_free(void *cache)
{
    route_cache_t *c = cache;
    if (c == NULL)
        return;
    for (size_t i = 0; i < GW_ROUTE_CACHE; i++)
        entry_drop(&c->e[i]);
    sl_free(c);
}

/* The parsed config for text: cached, or parsed into the request's arena. */
static const sl_rcfg_t *config_for(gw_proxy_t *px, sl_str_t text, const char **err)
{
    gw_worker_t *w = px->req->worker;
    route_cache_t *c = w->route_cache;
    if (c == NULL) {
        c = sl_xcalloc(1, sizeof(*c));
        w->route_cache = c;
    }
    uint64_t h = fnv1a(text);
    route_entry_t *victim = NULL;
    for (size_t i = 0; i < GW_ROUTE_CACHE; i++) {
        route_entry_t *e = &c->e[i];
        if (e->live && e->hash == h && e->len == text.len && memcmp(e->text, text.base, text.len) == 0) {
            e->refs++;
            e->used = ++c->clock;
            sl_arena_defer(&px->req->arena, entry_release, e);
            return &e->cfg;
        }
        if (e->refs == 0 && (victim == NULL || !e->live || (victim->live && e->used < victim->used)))
            victim = e;
    }
    if (victim == NULL || text.len > GW_ROUTE_CACHE_MAX_TEXT) {
        sl_rcfg_t *cfg = SL_ARENA_NEW(&px->req->arena, sl_rcfg_t);
        return sl_rcfg_parse(&px->req->arena, text, cfg, err) == 0 ? cfg : NULL;
    }
    entry_drop(victim);
    sl_arena_init(&victim->arena);
    if (sl_rcfg_parse(&victim->arena, text, &victim->cfg, err) != 0) {
        /* The message lives in the victim's arena: copy it out first. */
        *err = sl_arena_printf(&px->req->arena, "%s", *err);
        sl_arena_clear(&victim->arena);
        return NULL; /* invalid configs are not cached: each gets its error */
    }
    victim->text = sl_xmalloc(text.len);
    memcpy(victim->text, text.base, text.len);
    victim->len = text.len;
    victim->hash = h;
    victim->live = 1;
    victim->refs = 1;
    victim->used = ++c->clock;
    sl_arena_defer(&px->req->arena, entry_release, victim);
    return &victim->cfg;
}

static int from_config(gw_proxy_t *px, sl_str_t text)
{
    sl_arena_t *a = &px->req->arena;
    if (text.len == 0 || text.base[0] != '{') {
        px->error_message = "x-sluice-config: give the config as inline JSON (config ids need "
                            "the control plane)";
        px->error_param = "x-sluice-config";
        return SL_EINVAL;
    }
    const char *err = NULL;
    const sl_rcfg_t *cfg = config_for(px, text, &err);
    if (cfg == NULL) {
        px->error_message = err;
        px->error_param = "x-sluice-config";
        return SL_EINVAL;
    }
    gw_route_t *rt = SL_ARENA_NEW(a, gw_route_t);
    memset(rt, 0, sizeof(*rt));
    rt->header_provider = sl_str_trim(gw_proxy_header(px, "provider"));
    rt->orig_body = px->body;
    px->route = rt;
    plan_t pl = {px, NULL, 0, 0, NULL};
    inherit_t in = {NULL, NULL, 0, NULL, NULL, NULL};
    int r = flatten(&pl, &cfg->root, in, 0);
    if (r != 0 || pl.n == 0) {
        px->error_message = pl.err ? pl.err : "x-sluice-config: no target to route to";
        px->error_param = "x-sluice-config";
        return SL_EINVAL;
    }
    rt->plan = pl.plan;
    rt->nplan = pl.n;
    return apply(px);
}

/*
 * The config of --config FILE: its text, shared by every worker, replaced
 * whole on SIGHUP. A request takes a reference for the time it reads the
 * text (the per-worker cache parses it once); the lock is held only to take
 * or drop one.
 */
typedef struct {
    int refs;     /* under file_lock */
    size_t len;
    char text[];
} file_cfg_t;

static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static file_cfg_t *file_cfg; /* under file_lock; holds one reference */

static void file_cfg_unref(file_cfg_t *f)
{
    pthread_mutex_lock(&file_lock);
    int last = --f->refs == 0;
    pthread_mutex_unlock(&file_lock);
    if (last)
        sl_free(f);
}

int gw_router_set_file_config(sl_str_t text, char *err, size_t errlen)
{
    if (text.len > 0) {
        sl_arena_t a;
        sl_arena_init(&a);
        sl_rcfg_t cfg;
        const char *e = NULL;
        int r = sl_rcfg_parse(&a, text, &cfg, &e);
        if (r != 0)
            snprintf(err, errlen, "%s", e ? e : "invalid config");
        sl_arena_clear(&a);
        if (r != 0)
            return r;
    }
    file_cfg_t *f = NULL;
    if (text.len > 0) {
        f = sl_xmalloc(sizeof(*f) + text.len);
        f->refs = 1;
        f->len = text.len;
        memcpy(f->text, text.base, text.len);
    }
    pthread_mutex_lock(&file_lock);
    file_cfg_t *old = __atomic_load_n(&file_cfg, __ATOMIC_RELAXED);
    __atomic_store_n(&file_cfg, f, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&file_lock);
    if (old != NULL)
        file_cfg_unref(old);
    return 0;
}

/* The key's and the virtual key's model allow-lists (none: any model). */
static int model_allowed(gw_proxy_t *px)
{
    const char **lists[2] = {px->key_models, px->vk_models};
    size_t ns[2] = {px->nkey_models, px->nvk_models};
    for (int l = 0; l < 2; l++) {
        if (ns[l] == 0)
            continue;
        int ok = 0;
        for (size_t i = 0; i < ns[l] && !ok; i++)
            ok = strlen(lists[l][i]) == px->model.len &&
                 memcmp(lists[l][i], px->model.base, px->model.len) == 0;
        if (!ok)
            return 0;
    }
    return 1;
}

int gw_router_resolve(gw_proxy_t *px)
{
    if (px->key_id != NULL && !model_allowed(px)) {
        sl_str_t m = px->model;
        px->error_message = sl_arena_printf(&px->req->arena,
                                            "model '%.*s' is not allowed for this key",
                                            (int)(m.len > 100 ? 100 : m.len), m.base);
        px->error_param = "model";
        return SL_EFORBIDDEN;
    }
    if (px->snap_config.len > 0)
        return from_config(px, px->snap_config);
    sl_str_t config = sl_str_trim(gw_proxy_header(px, "config"));
    if (config.len > 0)
        return from_config(px, config);
    if (__atomic_load_n(&file_cfg, __ATOMIC_RELAXED) != NULL) {
        pthread_mutex_lock(&file_lock);
        file_cfg_t *f = __atomic_load_n(&file_cfg, __ATOMIC_ACQUIRE);
        if (f != NULL)
            f->refs++;
        pthread_mutex_unlock(&file_lock);
        if (f != NULL) {
            int r = from_config(px, sl_str(f->text, f->len));
            file_cfg_unref(f);
            return r;
        }
    }
    uint64_t timeout = 0;
    sl_str_t t = sl_str_trim(gw_proxy_header(px, "request-timeout"));
    if (t.len > 0) {
        unsigned long long ms;
        if (sl_str_to_u64(t, &ms) != 0 || ms == 0 || ms > 3600000) {
            px->error_message = "x-sluice-request-timeout must be milliseconds between 1 and 3600000";
            px->error_param = "x-sluice-request-timeout";
            return SL_EINVAL;
        }
        timeout = ms;
    }
    sl_str_t provider = px->vk_provider.len > 0 ? px->vk_provider
                                                : sl_str_trim(gw_proxy_header(px, "provider"));
    return use_target(px, provider, px->api_key,
                      sl_str_trim(gw_proxy_header(px, "custom-host")), timeout, NULL);
}

/* ---- after a failed attempt ------------------------------------------------------- */

static const int default_retry_codes[] = {429, 500, 502, 503, 504};

static int has_code(const int *codes, size_t n, int status)
{
    for (size_t i = 0; i < n; i++)
        if (codes[i] == status)
            return 1;
    return 0;
}

/* Retry-After (seconds or an HTTP date is not honoured: seconds only) or retry-after-ms. */
static int64_t retry_after_ms(gw_proxy_t *px)
{
    unsigned long long v;
    sl_str_t ms = sl_str_trim(gw_upstream_header(&px->up, "retry-after-ms"));
    if (ms.len > 0 && sl_str_to_u64(ms, &v) == 0)
        return (int64_t)v;
    sl_str_t s = sl_str_trim(gw_upstream_header(&px->up, "retry-after"));
    if (s.len > 0 && sl_str_to_u64(s, &v) == 0 && v < 86400)
        return (int64_t)v * 1000;
    return -1;
}

#define GW_RETRY_BASE_MS 200
#define GW_RETRY_CAP_MS 8000
#define GW_RETRY_BUDGET_MS 60000

/* Exponential backoff with full jitter: a random wait below 200 ms << tries, capped at 8 s. */
static uint64_t backoff_ms(int tries)
{
    uint64_t cap = (uint64_t)GW_RETRY_BASE_MS << (tries < 6 ? tries : 6);
    if (cap > GW_RETRY_CAP_MS)
        cap = GW_RETRY_CAP_MS;
    return (uint64_t)(rand01() * (double)cap);
}

int gw_router_next(gw_proxy_t *px, int err, int status, uint64_t *delay_ms)
{
    gw_route_t *rt = px->route;
    if (rt == NULL)
        return 0;
    const gw_attempt_t *a = &rt->plan[rt->cur];
    const sl_rcfg_retry_t *retry = a->retry;
    int failed_status = status; /* network errors and timeouts come with theirs */
    if (retry != NULL && rt->tries < retry->attempts &&
        (err ? (err == SL_EUPCONN || err == SL_EUPTIMEOUT || err == SL_EREQTIMEOUT ||
                err == SL_EUPSTREAM)
             : retry->ncodes ? has_code(retry->codes, retry->ncodes, failed_status)
                             : has_code(default_retry_codes, 5, failed_status))) {
        /* Exponential backoff with full jitter; Retry-After when asked, on 429 and 503. */
        uint64_t d = backoff_ms(rt->tries);
        int64_t ra = retry->use_retry_after && (status == 429 || status == 503)
                         ? retry_after_ms(px) : -1;
        if (ra >= 0)
            d = (uint64_t)ra;
        int allowed = 1;
        if (a->breaker != NULL) { /* this very failure may have opened it */
            sl_str_t label;
            sl_str_t key = breaker_key(px, a->leaf, a->custom_host, &label);
            gw_breaker_cfg_t c = breaker_cfg(a->breaker);
            allowed = gw_breaker_allow(key, label, &c, uv_now(&px->req->worker->loop), 1);
            if (allowed)
                rt->breaker_key = key;
        }
        if (allowed && rt->waited_ms + d <= GW_RETRY_BUDGET_MS) {
            rt->tries++;
            rt->retries++;
            rt->waited_ms += d;
            *delay_ms = d;
            return 1;
        }
    }
    /* Fall back when the fallback node that governs this step says so. */
    const sl_rcfg_node_t *fb = a->next_by;
    if (fb == NULL || rt->cur + 1 >= rt->nplan)
        return 0;
    int moves = err != 0 || (fb->ncodes ? has_code(fb->codes, fb->ncodes, failed_status)
                                        : failed_status < 200 || failed_status >= 300);
    if (!moves)
        return 0;
    char st[16];
    snprintf(st, sizeof(st), "%d", failed_status);
    note_fallback(rt, a->leaf->path, st);
    rt->cur++;
    rt->tries = 0;
    int r = apply(px);
    return r == 0 ? 2 : r;
}

void gw_router_report(gw_proxy_t *px, int err, int status)
{
    gw_route_t *rt = px->route;
    if (rt == NULL)
        return;
    if (err == 0 && px->up.t_head != 0 && rt->latency_tracked) {
        /* Every answered target's latency, for least_latency. */
        const gw_attempt_t *e = &rt->plan[rt->cur];
        sl_str_t label;
        sl_str_t key = breaker_key(px, e->leaf, e->custom_host, &label);
        gw_breaker_latency_report(key, label, (double)(px->up.t_head - px->up.t_start) / 1e6);
    }
    if (rt->breaker_key.len == 0)
        return;
    const gw_attempt_t *a = &rt->plan[rt->cur];
    gw_breaker_cfg_t c = breaker_cfg(a->breaker);
    int ok = err == 0 && status != 429 && status < 500;
    gw_breaker_report(rt->breaker_key, &c, ok, uv_now(&px->req->worker->loop));
    rt->breaker_key = SL_STR_NULL; /* reported once; a retry claims again */
}

void gw_router_release(gw_proxy_t *px)
{
    gw_route_t *rt = px->route;
    if (rt != NULL && rt->breaker_key.len > 0) {
        gw_breaker_release(rt->breaker_key);
        rt->breaker_key = SL_STR_NULL;
    }
}
