/* Answering, database errors, pagination, ETags and small helpers shared by
 * every handler. */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "controlplane/api/api.h"

static const sl_log_ctx_t log_ctx = {.action = "handling an admin request"};

int cp_reply_raw(cp_req_t *r, int status, const char *json, size_t len)
{
    sl_free(r->out);
    r->out = sl_xmalloc(len + 1);
    memcpy(r->out, json, len);
    r->out[len] = '\0';
    r->outlen = len;
    r->status = status;
    return 0;
}

/* Postgres writes json_build_object's text with " : " between keys and
 * values; answers are re-encoded compactly (key order kept). */
static int reply_pg(cp_req_t *r, int status, const char *text, size_t len)
{
    json_t *v = json_loadb(text, len, 0, NULL);
    if (v == NULL)
        return cp_reply_raw(r, status, text, len);
    return cp_reply(r, status, v);
}

int cp_reply(cp_req_t *r, int status, json_t *body)
{
    /* 15 significant digits: prices come from numeric columns and must read
     * back as written (0.8, not 0.80000000000000004). */
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(body);
    if (text == NULL)
        return cp_fail(r, SL_ENOMEM, NULL);
    cp_reply_raw(r, status, text, strlen(text));
    sl_free(text); /* jansson allocates with malloc */
    return 0;
}

static int fail_text(cp_req_t *r, int err, const char *param, const char *msg)
{
    sl_buf_t b;
    sl_buf_init(&b, 8192);
    /* The message may quote input: sl_json_error_body escapes it and turns
     * invalid UTF-8 into U+FFFD, so the answer is always JSON. */
    if (sl_json_error_body(&b, msg, sl_err_type(err), param, sl_err_code(err)) == 0)
        cp_reply_raw(r, sl_err_status(err), b.base, b.len);
    else
        cp_reply_raw(r, 500, "{\"error\":{\"message\":\"internal error\"}}", 38);
    r->status = sl_err_status(err);
    sl_buf_dispose(&b);
    r->etag[0] = '\0';
    return -1;
}

int cp_fail(cp_req_t *r, int err, const char *fmt, ...)
{
    char msg[512];
    if (fmt == NULL) {
        snprintf(msg, sizeof(msg), "%s", sl_strerror(err));
    } else {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    }
    return fail_text(r, err, NULL, msg);
}

int cp_fail_field(cp_req_t *r, const char *path, const char *fmt, ...)
{
    char msg[400], full[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "invalid field %s: %s", path, msg);
    sl_buf_t b;
    sl_buf_init(&b, 8192);
    if (sl_json_error_body(&b, full, "invalid_request_error", path, "invalid_field") == 0)
        cp_reply_raw(r, 400, b.base, b.len);
    sl_buf_dispose(&b);
    r->status = 400;
    r->etag[0] = '\0';
    return -1;
}

int cp_not_found(cp_req_t *r, const char *what)
{
    return cp_fail(r, SL_ENOTFOUND, "%s not found", what);
}

const char *cp_header(cp_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *cp_query(cp_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

int cp_db(cp_req_t *r, PGresult **res, const char *sql, int n, const char *const *vals)
{
    int ret = cp_q(r->db, res, sql, n, vals);
    if (ret == 0)
        return 0;
    if (ret == SL_EDBDOWN) {
        *res = NULL;
        return cp_fail(r, SL_EDBDOWN, NULL);
    }
    char state[8];
    snprintf(state, sizeof(state), "%s", cp_sqlstate(*res));
    char detail[160];
    const char *d = PQresultErrorField(*res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(detail, sizeof(detail), "%s", d != NULL ? d : "");
    /* Postgres quotes the value after ": "; the caller knows it already and
     * it may be anything: keep the reason only. */
    char *quote = strstr(detail, ": \"");
    if (quote != NULL)
        *quote = '\0';
    PQclear(*res);
    *res = NULL;
    if (strcmp(state, "23505") == 0)
        return cp_fail(r, SL_ECONFLICT, NULL);
    if (strcmp(state, "23503") == 0)
        return cp_fail(r, SL_EINVAL, "a referenced object does not exist");
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
        return cp_fail(r, SL_ECONFLICT, "a concurrent change conflicted with this one; retry");
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
        /* Data exceptions name the value's type, never the value. */
        return cp_fail(r, SL_EINVAL, "invalid value: %s", detail);
    sl_log(SL_LOG_ERROR, &log_ctx, 0, "query failed (SQLSTATE %s): %s; request_id=%s", state,
           detail, r->request_id);
    return cp_fail(r, SL_EDB, NULL);
}

int cp_db_reply_one(cp_req_t *r, int status, const char *what, const char *sql, int n,
                    const char *const *vals)
{
    PGresult *res = NULL;
    if (cp_db(r, &res, sql, n, vals) != 0)
        return -1;
    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        return cp_not_found(r, what);
    }
    reply_pg(r, status, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    if (PQnfields(res) > 1)
        cp_set_etag(r, PQgetvalue(res, 0, 1));
    PQclear(res);
    return 0;
}

int cp_page_args(cp_req_t *r, int *limit, const char **after)
{
    const char *l = cp_query(r, "limit");
    *limit = 20;
    *after = cp_query(r, "after");
    if (*after != NULL && (**after == '\0' || strlen(*after) > 300))
        return cp_fail_field(r, "after", "must be a cursor from next_cursor");
    if (l != NULL) {
        char *end;
        long v = strtol(l, &end, 10);
        if (*l == '\0' || *end != '\0' || v < 1 || v > 100)
            return cp_fail_field(r, "limit", "must be an integer from 1 to 100");
        *limit = (int)v;
    }
    return 0;
}

int cp_list(cp_req_t *r, const char *sql, int nfilters, const char *const *filters,
            const char *cursor_field, int numeric_cursor)
{
    PGresult *res = NULL;
    int limit;
    const char *after;
    const char *vals[16];
    char lim[16];

    SL_ASSERT(nfilters + 2 <= (int)(sizeof(vals) / sizeof(vals[0])));
    if (cp_page_args(r, &limit, &after) != 0)
        return -1;
    if (after != NULL && numeric_cursor &&
        (strspn(after, "0123456789") != strlen(after) || strlen(after) > 18))
        return cp_fail_field(r, "after", "must be a cursor from next_cursor");
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    for (int i = 0; i < nfilters; i++)
        vals[i] = filters[i];
    vals[nfilters] = after;
    vals[nfilters + 1] = lim;
    if (cp_db(r, &res, sql, nfilters + 2, vals) != 0)
        return -1;
    int ret = cp_reply_page(r, PQgetvalue(res, 0, 0), limit, cursor_field);
    PQclear(res);
    return ret;
}

int cp_reply_page(cp_req_t *r, const char *array_text, int limit, const char *cursor_field)
{
    json_t *arr = json_loads(array_text, 0, NULL);
    if (!json_is_array(arr)) {
        json_decref(arr);
        return cp_fail(r, SL_EINTERNAL, NULL);
    }
    int more = json_array_size(arr) > (size_t)limit;
    if (more)
        json_array_remove(arr, (size_t)limit);
    json_t *last = json_array_get(arr, json_array_size(arr) - 1);
    json_t *cur = more && last != NULL ? json_object_get(last, cursor_field) : NULL;
    json_t *page = json_pack("{s:s, s:o, s:b, s:O}", "object", "list", "data", arr, "has_more",
                             more, "next_cursor", cur != NULL ? cur : json_null());
    return cp_reply(r, 200, page);
}

int cp_if_match(cp_req_t *r)
{
    const char *h = cp_header(r, "If-Match");
    if (h == NULL || strcmp(h, "*") == 0)
        return 0;
    if (strncmp(h, "W/", 2) == 0)
        h += 2;
    size_t n = strlen(h);
    if (n < 3 || n > 12 || h[0] != '"' || h[n - 1] != '"' || strspn(h + 1, "0123456789") != n - 2) {
        cp_fail(r, SL_EINVAL, "If-Match must be an ETag this API gave (\"<version>\")");
        return -1;
    }
    long v = strtol(h + 1, NULL, 10);
    return v > 0 ? (int)v : (cp_fail(r, SL_EPRECOND, NULL), -1);
}

void cp_set_etag(cp_req_t *r, const char *version)
{
    snprintf(r->etag, sizeof(r->etag), "\"%s\"", version);
}

void cp_merge_patch(json_t *target, const json_t *patch)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)patch, k, v) {
        json_t *cur = json_object_get(target, k);
        if (json_is_null(v))
            json_object_del(target, k);
        else if (json_is_object(v) && json_is_object(cur))
            cp_merge_patch(cur, v);
        else
            json_object_set(target, k, v);
    }
}

char *cp_param(const json_t *v)
{
    char buf[64];
    if (v == NULL || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return sl_xstrndup(json_string_value(v), json_string_length(v));
    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return sl_xstrdup(buf);
    }
    if (json_is_real(v)) {
        snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        return sl_xstrdup(buf);
    }
    if (json_is_boolean(v))
        return sl_xstrdup(json_is_true(v) ? "true" : "false");
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    char *out = sl_xstrdup(t != NULL ? t : "null");
    sl_free(t); /* jansson allocates with malloc */
    return out;
}

json_t *cp_load_for_update(cp_req_t *r, const char *what, const char *sql, int n,
                           const char *const *vals, char version[16])
{
    PGresult *res = NULL;
    int want = cp_if_match(r);
    if (want < 0)
        return NULL;
    if (cp_db(r, &res, sql, n, vals) != 0)
        return NULL;
    if (PQntuples(res) != 1) {
        PQclear(res);
        cp_not_found(r, what);
        return NULL;
    }
    snprintf(version, 16, "%s", PQgetvalue(res, 0, 1));
    if (want > 0 && strtol(version, NULL, 10) != want) {
        PQclear(res);
        cp_fail(r, SL_EPRECOND, "%s changed since it was read: its ETag is now \"%s\"", what,
                version);
        return NULL;
    }
    json_t *obj = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    if (obj == NULL)
        cp_fail(r, SL_EINTERNAL, NULL);
    return obj;
}

int cp_delete_object(cp_req_t *r, const char *what, const char *type, const char *lock_sql,
                     const char *delete_sql)
{
    PGresult *res = NULL;
    char version[16];
    if (cp_need_role(r, CP_ROLE_MEMBER) != 0)
        return -1;
    const char *vals[] = {r->params[0], cp_scope(r)};
    json_t *cur = cp_load_for_update(r, what, lock_sql, 2, vals, version);
    if (cur == NULL)
        return -1;
    int ret = cp_db(r, &res, delete_sql, 1, vals);
    PQclear(res);
    if (ret == 0) {
        char *before = cp_dump(cur);
        ret = cp_audit(r, "delete", type, r->params[0],
                       json_string_value(json_object_get(cur, "workspace_id")), before, NULL);
        sl_free(before);
    }
    if (ret == 0)
        cp_reply(r, 200, json_pack("{s:s, s:s, s:b}", "object", type, "id", r->params[0],
                                   "deleted", 1));
    json_decref(cur);
    return ret;
}

char *cp_dump(const json_t *v)
{
    char *t = json_dumps(v, JSON_COMPACT);
    char *out = sl_xstrdup(t != NULL ? t : "null");
    sl_free(t); /* jansson allocates with malloc */
    return out;
}

int cp_reply_written(cp_req_t *r, int status, PGresult *res)
{
    /* res: one row (render, version) from an INSERT/UPDATE ... RETURNING */
    reply_pg(r, status, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
    cp_set_etag(r, PQgetvalue(res, 0, 1));
    return 0;
}
