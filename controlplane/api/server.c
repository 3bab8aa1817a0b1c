/*
 * libmicrohttpd glue and the dispatcher: read the body (capped), route,
 * authenticate, run the handler (in a transaction for writes, with the
 * Idempotency-Key record in the same transaction), answer, count.
 */
#include <microhttpd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "common/rand.h"
#include "controlplane/api/api.h"

struct cp_server_s {
    struct MHD_Daemon *d;
    uint16_t port;
    cp_app_t *app;
};

static const sl_log_ctx_t log_ctx = {.action = "serving the admin API"};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Matches path against a template; captures {params}. A final
 * parameter named "{name...}" takes the rest of the path, slashes included. */
static int match_route(const char *tmpl, const char *path, char **params)
{
    int np = 0;
    while (*tmpl != '\0') {
        if (*tmpl == '{') {
            const char *close = strchr(tmpl, '}');
            int rest = close - tmpl > 4 && strncmp(close - 3, "...", 3) == 0;
            size_t n = rest ? strlen(path) : strcspn(path, "/");
            if (n == 0 || np >= CP_MAX_PARAMS)
                goto Fail;
            params[np++] = sl_xstrndup(path, n);
            path += n;
            tmpl = close + 1;
            continue;
        }
        if (*tmpl != *path)
            goto Fail;
        tmpl++;
        path++;
    }
    if (*path == '\0' || (path[0] == '/' && path[1] == '\0'))
        return np;
Fail:
    for (int i = 0; i < np; i++) {
        sl_free(params[i]);
        params[i] = NULL;
    }
    return -1;
}

static void req_free(cp_req_t *r)
{
    for (int i = 0; i < CP_MAX_PARAMS; i++)
        sl_free(r->params[i]);
    sl_buf_dispose(&r->body);
    json_decref(r->json);
    sl_free(r->out);
    sl_free(r);
}

/* ---- idempotency ------------------------------------------------------- */

/* Returns 1 when the request was answered from an earlier one (or refused),
 * 0 when the handler should run (the key is now reserved in this
 * transaction), -1 when answered with an error. */
static int idem_begin(cp_req_t *r, const char *key, const char *route, char hash_hex[65])
{
    PGresult *res = NULL;
    uint8_t md[SL_SHA256_LEN];
    sl_sha256(r->body.base != NULL ? r->body.base : "", r->body.len, md);
    sl_hex_encode(md, sizeof(md), hash_hex);
    char hash_param[70];
    snprintf(hash_param, sizeof(hash_param), "\\x%s", hash_hex);
    const char *vals[] = {r->actor.id, key, route, hash_param};
    /* A key is remembered for 24 hours; after that it starts afresh. */
    if (cp_db(r, &res,
              "DELETE FROM idempotency_keys WHERE actor_id = $1 AND idem_key = $2"
              " AND created_at < now() - interval '24 hours'",
              2, vals) != 0)
        return -1;
    PQclear(res);
    /* A concurrent request with the same key waits here on the unique
     * index until the first one commits (then ON CONFLICT skips) or rolls
     * back (then this one inserts and runs). */
    if (cp_db(r, &res,
              "INSERT INTO idempotency_keys (actor_id, idem_key, route, request_hash) "
              "VALUES ($1, $2, $3, $4::bytea) ON CONFLICT DO NOTHING RETURNING 1",
              4, vals) != 0)
        return -1;
    int inserted = PQntuples(res) == 1;
    PQclear(res);
    if (inserted)
        return 0;
    if (cp_db(r, &res,
              "SELECT route, encode(request_hash, 'hex'), status, encode(response, 'hex') "
              "FROM idempotency_keys WHERE actor_id = $1 AND idem_key = $2",
              2, vals) != 0)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return cp_fail(r, SL_ECONFLICT, "a request with this Idempotency-Key is in progress");
    }
    if (strcmp(PQgetvalue(res, 0, 0), route) != 0 || strcmp(PQgetvalue(res, 0, 1), hash_hex) != 0) {
        PQclear(res);
        return cp_fail(r, SL_EIDEMPOTENCY, NULL);
    }
    int status = (int)strtol(PQgetvalue(res, 0, 2), NULL, 10);
    size_t n = 0;
    const char *hex = PQgetvalue(res, 0, 3);
    uint8_t *sealed = sl_xmalloc(strlen(hex) / 2 + 1), *plain = NULL;
    size_t plen = 0;
    if (sl_hex_decode(hex, strlen(hex), sealed, strlen(hex) / 2) == 0)
        n = strlen(hex) / 2;
    char aad[160];
    snprintf(aad, sizeof(aad), "idem:%s:%s", r->actor.id, key);
    int ok = n > 0 && cp_open(r->app, sealed, n, aad, &plain, &plen) == 0;
    sl_free(sealed);
    PQclear(res);
    if (!ok)
        return cp_fail(r, SL_EINTERNAL, "the stored answer for this Idempotency-Key cannot be read");
    cp_reply_raw(r, status, (const char *)plain, plen);
    sl_free(plain);
    r->replayed = 1;
    return 1;
}

static int idem_finish(cp_req_t *r, const char *key)
{
    PGresult *res = NULL;
    uint8_t *sealed = NULL;
    size_t n = 0;
    char aad[160], status[8];
    snprintf(aad, sizeof(aad), "idem:%s:%s", r->actor.id, key);
    snprintf(status, sizeof(status), "%d", r->status);
    if (cp_seal(r->app, r->out, r->outlen, aad, &sealed, &n) != 0)
        return cp_fail(r, SL_EINTERNAL, NULL);
    char *hex = cp_bytea_hex(sealed, n);
    sl_free(sealed);
    const char *vals[] = {r->actor.id, key, status, hex};
    int ret = cp_db(r, &res,
                    "UPDATE idempotency_keys SET status = $3::int, response = $4::bytea "
                    "WHERE actor_id = $1 AND idem_key = $2",
                    4, vals);
    sl_free(hex);
    PQclear(res);
    return ret;
}

static int hexdigit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* ---- dispatch ---------------------------------------------------------- */

#define CP_MAX_JSON_DEPTH 64

static int json_depth(const json_t *v, int d)
{
    int max = d;
    if (d > CP_MAX_JSON_DEPTH)
        return d;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            int e = json_depth(x, d + 1);
            max = e > max ? e : max;
            if (max > CP_MAX_JSON_DEPTH)
                break;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            int e = json_depth(x, d + 1);
            max = e > max ? e : max;
            if (max > CP_MAX_JSON_DEPTH)
                break;
        }
    }
    return max;
}

int cp__authenticate(cp_req_t *r);

static void dispatch(cp_req_t *r)
{
    int n, allowed = 0, err = 0;
    const cp_route_t *routes = cp_routes(&n);
    const cp_route_t *rt = NULL;
    const char *url = r->url;

    for (int i = 0; i < n && rt == NULL; i++) {
        char *params[CP_MAX_PARAMS] = {0};
        if (match_route(routes[i].path, url, params) < 0)
            continue;
        if (strcmp(routes[i].method, r->method) != 0) {
            allowed = 1;
            if (strstr(r->allow, routes[i].method) == NULL &&
                strlen(r->allow) + strlen(routes[i].method) + 3 < sizeof(r->allow))
                snprintf(r->allow + strlen(r->allow), sizeof(r->allow) - strlen(r->allow), "%s%s",
                         r->allow[0] ? ", " : "", routes[i].method);
            for (int k = 0; k < CP_MAX_PARAMS; k++)
                sl_free(params[k]);
            continue;
        }
        rt = &routes[i];
        r->route = i;
        memcpy(r->params, params, sizeof(params));
    }
    if (rt == NULL) {
        if (allowed)
            cp_fail(r, SL_EMETHOD, "method %s is not allowed on this path", r->method);
        else
            cp_fail(r, SL_ENOTFOUND, "no such route");
        return;
    }
    if (r->body_too_big) {
        cp_fail(r, SL_ETOOBIG, "request body larger than %zu bytes", r->app->max_body);
        return;
    }
    if (r->body.len > 0) {
        json_error_t jerr;
        r->json = json_loadb(r->body.base, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
        if (r->json == NULL) {
            /* jansson quotes the token it stopped at ("near '...'"), which may
             * be a secret the caller mistyped around: keep only the reason. */
            char *near = strstr(jerr.text, " near ");
            if (near != NULL)
                *near = '\0';
            cp_fail(r, SL_EBADJSON, "malformed JSON body: %s (line %d, column %d)", jerr.text,
                    jerr.line, jerr.column);
            return;
        }
        if (json_depth(r->json, 0) > CP_MAX_JSON_DEPTH) {
            /* Stored documents are re-read by lists and the audit log, which
             * nest them a level or two deeper; bounded here, they always
             * read back. */
            cp_fail(r, SL_EBADJSON, "JSON body nested deeper than %d levels", CP_MAX_JSON_DEPTH);
            return;
        }
    }
    /* These answer without the database: liveness, the document, and the
     * metrics (wanted most when Postgres is away). */
    if (rt->fn == cp_h_health || rt->fn == cp_h_openapi || rt->fn == cp_h_metrics) {
        rt->fn(r);
        return;
    }
    r->db = cp_pool_acquire(r->app->pool, &err);
    if (r->db == NULL) {
        cp_fail(r, SL_EDBDOWN, NULL);
        return;
    }
    if (!rt->public_ && cp__authenticate(r) != 0)
        goto Release;
    if (!rt->write) {
        rt->fn(r);
        goto Release;
    }
    if (r->json == NULL && (strcmp(r->method, "POST") == 0 || strcmp(r->method, "PATCH") == 0 ||
                            strcmp(r->method, "PUT") == 0)) {
        r->json = json_object();
    }
    if (cp_tx(r->db, "BEGIN") != 0) {
        cp_fail(r, SL_EDBDOWN, NULL);
        goto Release;
    }
    const char *key = rt->idempotent ? cp_header(r, "Idempotency-Key") : NULL;
    char hash_hex[65];
    int idem = 0;
    if (key != NULL && (strlen(key) == 0 || strlen(key) > 255)) {
        cp_fail(r, SL_EINVAL, "Idempotency-Key must have 1 to 255 characters");
        idem = -1;
    } else if (key != NULL) {
        /* The record is for this method and path (not the route's
         * template): the same key on another object's rotate is a reuse. */
        char target[600];
        snprintf(target, sizeof(target), "%s %.580s", r->method, r->url);
        idem = idem_begin(r, key, target, hash_hex);
    }
    if (idem == 0) {
        rt->fn(r);
        if (r->status < 400 && key != NULL)
            idem_finish(r, key);
    }
    if (idem == 0 && r->status < 400) {
        int ret = cp_tx(r->db, "COMMIT");
        /* The connection broke during COMMIT: Postgres may have committed
         * or not, and nobody can tell from here. */
        if (ret != 0)
            cp_fail(r, ret == SL_EDBDOWN ? SL_EDBDOWN : SL_EDB,
                    "the database went away while committing: the change may or may not "
                    "have been made; retry with the same Idempotency-Key, or read it back");
    } else {
        cp_tx(r->db, "ROLLBACK");
    }
Release:
    cp_pool_release(r->app->pool, r->db);
    r->db = NULL;
}

static enum MHD_Result send_answer(cp_req_t *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    int is_text = r->route >= 0 && cp_routes(&(int){0})[r->route].fn == cp_h_metrics;

    /* Counted before the answer leaves, so that a client reading /metrics
     * right after its answer sees its request counted. */
    r->elapsed = now_mono() - r->started;
    cp_metrics_observe(r->app->metrics, r->route, r->status, r->elapsed);

    resp = MHD_create_response_from_buffer(r->outlen, r->out, MHD_RESPMEM_MUST_COPY);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type",
                            is_text ? "text/plain; version=0.0.4" : "application/json");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->etag[0] != '\0')
        MHD_add_response_header(resp, "ETag", r->etag);
    if (r->replayed)
        MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    if (r->status == 405 && r->allow[0] != '\0')
        MHD_add_response_header(resp, "Allow", r->allow);
    ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    cp_app_t *app = cls;
    cp_req_t *r = *con_cls;

    if (r == NULL) {
        r = sl_xcalloc(1, sizeof(*r));
        r->app = app;
        r->conn = conn;
        r->method = method;
        r->url = url;
        r->route = -1;
        r->started = now_mono();
        sl_buf_init(&r->body, app->max_body);
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (rid != NULL && strlen(rid) > 0 && strlen(rid) < sizeof(r->request_id) &&
            strspn(rid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
                strlen(rid))
            snprintf(r->request_id, sizeof(r->request_id), "%s", rid);
        else
            sl_rand_uuid(r->request_id);
        *con_cls = r;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl != NULL && strtoull(cl, NULL, 10) > app->max_body) {
            /* Refuse before reading: answering now makes MHD close the
             * connection instead of reading a body nobody wants. */
            r->body_too_big = 1;
            cp_fail(r, SL_ETOOBIG, "request body larger than %zu bytes", app->max_body);
            return send_answer(r);
        }
        return MHD_YES;
    }
    if (r->status != 0 && *upload_size > 0) {
        *upload_size = 0; /* already answered (413): drop the rest */
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!r->body_too_big && sl_buf_append(&r->body, upload_data, *upload_size) != 0)
            r->body_too_big = 1;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->status != 0)
        return MHD_YES; /* answered early */
    dispatch(r);
    return send_answer(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    cp_req_t *r = *con_cls;
    if (r == NULL)
        return;
    /* /ready answers 503 on purpose while starting or while Postgres is away. */
    int lvl = r->status >= 500 && r->status != 503 ? SL_LOG_WARN : SL_LOG_DEBUG;
    sl_log(lvl, &log_ctx, 0, "%s %s -> %d (request_id=%s, actor=%s, %.1f ms)", r->method,
           r->route >= 0 ? cp_routes(&(int){0})[r->route].path : "(no route)", r->status,
           r->request_id, r->actor.id[0] ? r->actor.id : "-", r->elapsed * 1000.0);
    req_free(r);
    *con_cls = NULL;
}

/* Percent-decoding of the path and query, except %00: a NUL would cut the
 * value short in C strings (/api-keys/%00x would read as /api-keys/), so
 * it stays as the three characters and matches nothing. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    char *w = s;
    for (const char *p = s; *p != '\0'; p++) {
        int hi, lo;
        if (p[0] == '%' && (hi = hexdigit(p[1])) >= 0 && (lo = hexdigit(p[2])) >= 0 &&
            (hi | lo) != 0) {
            *w++ = (char)(hi << 4 | lo);
            p += 2;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    sl_log(SL_LOG_DEBUG, &log_ctx, 0, "libmicrohttpd: %s", line);
}

cp_server_t *cp_server_start(cp_app_t *app, const char *listen)
{
    struct sockaddr_in sin;
    char host[64];
    const char *colon = strrchr(listen, ':');
    long port = colon != NULL ? strtol(colon + 1, NULL, 10) : 0;

    if (colon == NULL || (size_t)(colon - listen) >= sizeof(host) || port < 0 || port > 65535) {
        sl_log(SL_LOG_ERROR, NULL, 0, "bad listen address %s (want host:port)", listen);
        return NULL;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &sin.sin_addr) != 1) {
        sl_log(SL_LOG_ERROR, NULL, 0, "bad listen address %s (want an IPv4 address)", listen);
        return NULL;
    }
    cp_server_t *s = sl_xcalloc(1, sizeof(*s));
    s->app = app;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                                MHD_USE_ERROR_LOG | MHD_USE_TURBO,
                            (uint16_t)port, NULL, NULL, on_request, app,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)app->threads,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, app,
                            MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                            MHD_OPTION_CONNECTION_LIMIT, 1000u,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(512u << 10),
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                            MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                            MHD_OPTION_END);
    if (s->d == NULL) {
        sl_log(SL_LOG_ERROR, NULL, 0, "cannot listen on %s", listen);
        sl_free(s);
        return NULL;
    }
    /* Port 0 takes a free port; say which one (tests and scripts read it). */
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info != NULL ? info->port : (uint16_t)port;
    printf("listening on %s:%u\n", host, (unsigned)s->port);
    fflush(stdout);
    return s;
}

unsigned cp_server_port(const cp_server_t *s)
{
    return s->port;
}

void cp_server_stop(cp_server_t *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->d);
    sl_free(s);
}
