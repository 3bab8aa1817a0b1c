/* API keys: what applications send to the gateway. The secret
 * (sk-sluice-<64 hex>, 256 random bits) is answered once, at creation or
 * rotation; Postgres keeps its SHA-256. A rotation may keep the old secret
 * working for a grace period. */
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "controlplane/api/api.h"
#include "controlplane/api/limits.h"

#define KEY_JSON                                                                                   \
    "json_build_object('object', 'api_key', 'id', k.id, 'workspace_id', k.workspace_id,"          \
    " 'name', k.name, 'key_hint', k.key_hint, 'scopes', to_jsonb(k.scopes),"                      \
    " 'default_config_id', k.default_config_id, " CP_LIMITS_JSON("k") ","                         \
    " 'revoked_at', k.revoked_at, 'previous_key_expires_at', k.old_key_expires_at,"               \
    " 'created_at', k.created_at, 'updated_at', k.updated_at, 'version', k.version)"

#define KEY_SELECT "SELECT " KEY_JSON ", k.version FROM api_keys k"
#define KEY_LOCK KEY_SELECT " WHERE k.id = $1 AND ($2::text IS NULL OR k.workspace_id = $2) FOR UPDATE"

static const char *const scopes[] = {"chat", "completions", "embeddings", "images", "audio",
                                     "models", "messages", "virtual_keys", "configs", NULL};

static const cp_field_t fields[] = {
    {.name = "name", .type = CP_F_STRING, .required = 1, .min = 1, .max = 128},
    {.name = "workspace_id", .type = CP_F_STRING, .max = 64},
    {.name = "scopes", .type = CP_F_STRINGS, .max = 16, .enums = scopes},
    {.name = "default_config_id", .type = CP_F_STRING, .nullable = 1, .max = 64},
    CP_LIMITS_FIELDS,
    {0},
};

static const cp_field_t rotate_fields[] = {
    {.name = "grace_period_seconds", .type = CP_F_INT, .min = 0, .max = 30 * 86400},
    {0},
};

/* A default config must be one of the key's workspace. */
static int check_config(cp_req_t *r, const json_t *cfg, const char *ws)
{
    PGresult *res = NULL;
    if (cfg == NULL || json_is_null(cfg))
        return 0;
    const char *vals[] = {json_string_value(cfg), ws};
    if (cp_db(r, &res, "SELECT 1 FROM configs WHERE id = $1 AND workspace_id = $2", 2, vals) != 0)
        return -1;
    int ok = PQntuples(res) == 1;
    PQclear(res);
    return ok ? 0 : cp_fail_field(r, "$.default_config_id", "no such config in this workspace");
}

int cp_h_keys_list(cp_req_t *r)
{
    const char *filters[] = {cp_scope(r), cp_query(r, "workspace_id")};
    return cp_list(r,
                   "SELECT coalesce(json_agg(j ORDER BY id DESC), '[]')::text FROM ("
                   " SELECT k.id, " KEY_JSON " AS j FROM api_keys k"
                   " WHERE ($1::text IS NULL OR k.workspace_id = $1)"
                   " AND ($2::text IS NULL OR k.workspace_id = $2)"
                   " AND ($3::text IS NULL OR k.id < $3) ORDER BY k.id DESC LIMIT $4::int) s",
                   2, filters, "id", 0);
}

int cp_h_keys_get(cp_req_t *r)
{
    const char *vals[] = {r->params[0], cp_scope(r)};
    return cp_db_reply_one(r, 200, "API key",
                           KEY_SELECT " WHERE k.id = $1 AND ($2::text IS NULL OR k.workspace_id = $2)",
                           2, vals);
}

static int answer_with_secret(cp_req_t *r, int status, PGresult *res, const char *secret)
{
    json_t *out = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    if (out == NULL)
        return cp_fail(r, SL_EINTERNAL, NULL);
    json_object_set_new(out, "key", json_string(secret));
    cp_reply(r, status, out);
    cp_set_etag(r, PQgetvalue(res, 0, 1));
    return 0;
}

int cp_h_keys_create(cp_req_t *r)
{
    PGresult *res = NULL;
    char id[48], ws[48], secret[96], hash[65], hint[48], hashp[70];
    char *lp[CP_LIMITS_NPARAMS];
    if (cp_need_role(r, CP_ROLE_MEMBER) != 0 || cp_validate(r, r->json, fields, 0, "$") != 0 ||
        cp_target_workspace(r, r->json, ws) != 0 ||
        check_config(r, json_object_get(r->json, "default_config_id"), ws) != 0)
        return -1;
    cp_new_id("key", id, sizeof(id));
    cp_new_secret("sk-sluice-", secret, sizeof(secret), hash, hint, sizeof(hint));
    snprintf(hashp, sizeof(hashp), "\\x%s", hash);
    cp_limits_params(r->json, lp);
    char *name = cp_param(json_object_get(r->json, "name"));
    json_t *sc = json_object_get(r->json, "scopes");
    char *scopes_p = sc != NULL ? cp_param(sc) : sl_xstrdup("[]");
    char *cfg = cp_param(json_object_get(r->json, "default_config_id"));
    const char *vals[] = {id, ws, name, hashp, hint, scopes_p, cfg, lp[0], lp[1], lp[2], lp[3],
                          lp[4], lp[5], lp[6], lp[7]};
    int ret = cp_db(r, &res,
                    "WITH k AS (INSERT INTO api_keys (id, workspace_id, name, key_hash, key_hint,"
                    " scopes, default_config_id, " CP_LIMITS_COLS ") VALUES ($1, $2, $3, $4::bytea,"
                    " $5, ARRAY(SELECT jsonb_array_elements_text($6::jsonb)), $7, "
                    CP_LIMITS_VALS(8, 9, 10, 11, 12, 13, 14, 15) ") RETURNING *) "
                    "SELECT " KEY_JSON ", k.version FROM k",
                    15, vals);
    cp_limits_free(lp);
    sl_free(name);
    sl_free(scopes_p);
    sl_free(cfg);
    if (ret != 0)
        return -1;
    ret = cp_audit(r, "create", "api_key", id, ws, NULL, PQgetvalue(res, 0, 0));
    if (ret == 0)
        ret = answer_with_secret(r, 201, res, secret);
    PQclear(res);
    return ret;
}

static json_t *load(cp_req_t *r, char version[16])
{
    const char *vals[] = {r->params[0], cp_scope(r)};
    return cp_load_for_update(r, "API key", KEY_LOCK, 2, vals, version);
}

int cp_h_keys_update(cp_req_t *r)
{
    PGresult *res = NULL;
    char version[16];
    char *lp[CP_LIMITS_NPARAMS];
    if (cp_need_role(r, CP_ROLE_MEMBER) != 0 || cp_validate(r, r->json, fields, 1, "$") != 0)
        return -1;
    if (json_object_get(r->json, "workspace_id") != NULL)
        return cp_fail_field(r, "$.workspace_id", "cannot be changed; create a key in the other workspace");
    if (json_is_null(json_object_get(r->json, "name")))
        return cp_fail_field(r, "$.name", "may not be removed");
    json_t *cur = load(r, version);
    if (cur == NULL)
        return -1;
    const char *ws = json_string_value(json_object_get(cur, "workspace_id"));
    if (check_config(r, json_object_get(r->json, "default_config_id"), ws) != 0) {
        json_decref(cur);
        return -1;
    }
    char *before = cp_dump(cur);
    cp_merge_patch(cur, r->json);
    cp_limits_params(cur, lp);
    char *name = cp_param(json_object_get(cur, "name"));
    json_t *sc = json_object_get(cur, "scopes");
    char *scopes_p = sc != NULL ? cp_param(sc) : sl_xstrdup("[]");
    char *cfg = cp_param(json_object_get(cur, "default_config_id"));
    const char *vals[] = {r->params[0], name, scopes_p, cfg, lp[0], lp[1], lp[2], lp[3],
                          lp[4], lp[5], lp[6], lp[7]};
    int ret = cp_db(r, &res,
                    "WITH k AS (UPDATE api_keys SET name = $2,"
                    " scopes = ARRAY(SELECT jsonb_array_elements_text($3::jsonb)),"
                    " default_config_id = $4, (" CP_LIMITS_COLS ") = (SELECT "
                    CP_LIMITS_VALS(5, 6, 7, 8, 9, 10, 11, 12) "),"
                    " updated_at = now(), version = version + 1 WHERE id = $1 RETURNING *)"
                    " SELECT " KEY_JSON ", k.version FROM k",
                    12, vals);
    if (ret == 0) {
        cp_reply_written(r, 200, res);
        ret = cp_audit(r, "update", "api_key", r->params[0], ws, before, PQgetvalue(res, 0, 0));
    }
    cp_limits_free(lp);
    sl_free(name);
    sl_free(scopes_p);
    sl_free(cfg);
    sl_free(before);
    json_decref(cur);
    PQclear(res);
    return ret;
}

int cp_h_keys_rotate(cp_req_t *r)
{
    PGresult *res = NULL;
    char version[16], secret[96], hash[65], hint[48], hashp[70], grace[24] = "0";
    if (cp_need_role(r, CP_ROLE_MEMBER) != 0 || cp_validate(r, r->json, rotate_fields, 0, "$") != 0)
        return -1;
    json_t *g = json_object_get(r->json, "grace_period_seconds");
    if (g != NULL)
        snprintf(grace, sizeof(grace), "%lld", (long long)json_integer_value(g));
    json_t *cur = load(r, version);
    if (cur == NULL)
        return -1;
    if (!json_is_null(json_object_get(cur, "revoked_at"))) {
        json_decref(cur);
        return cp_fail(r, SL_ECONFLICT, "a revoked key cannot be rotated; create a new one");
    }
    const char *ws = json_string_value(json_object_get(cur, "workspace_id"));
    char *before = cp_dump(cur);
    cp_new_secret("sk-sluice-", secret, sizeof(secret), hash, hint, sizeof(hint));
    snprintf(hashp, sizeof(hashp), "\\x%s", hash);
    const char *vals[] = {r->params[0], hashp, hint, grace};
    int ret = cp_db(r, &res,
                    "WITH k AS (UPDATE api_keys SET"
                    " old_key_hash = CASE WHEN $4::int > 0 THEN key_hash END,"
                    " old_key_expires_at = CASE WHEN $4::int > 0 THEN now() + make_interval(secs => $4::int) END,"
                    " key_hash = $2::bytea, key_hint = $3, updated_at = now(), version = version + 1"
                    " WHERE id = $1 RETURNING *) SELECT " KEY_JSON ", k.version FROM k",
                    4, vals);
    if (ret == 0)
        ret = cp_audit(r, "rotate", "api_key", r->params[0], ws, before, PQgetvalue(res, 0, 0));
    if (ret == 0)
        ret = answer_with_secret(r, 200, res, secret);
    sl_free(before);
    json_decref(cur);
    PQclear(res);
    return ret;
}

int cp_h_keys_revoke(cp_req_t *r)
{
    PGresult *res = NULL;
    char version[16];
    if (cp_need_role(r, CP_ROLE_MEMBER) != 0)
        return -1;
    json_t *cur = load(r, version);
    if (cur == NULL)
        return -1;
    const char *ws = json_string_value(json_object_get(cur, "workspace_id"));
    char *before = cp_dump(cur);
    const char *vals[] = {r->params[0]};
    int ret = cp_db(r, &res,
                    "WITH k AS (UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()),"
                    " enabled = false, old_key_hash = NULL, old_key_expires_at = NULL,"
                    " updated_at = now(), version = version + 1 WHERE id = $1 RETURNING *)"
                    " SELECT " KEY_JSON ", k.version FROM k",
                    1, vals);
    if (ret == 0) {
        cp_reply_written(r, 200, res);
        ret = cp_audit(r, "revoke", "api_key", r->params[0], ws, before, PQgetvalue(res, 0, 0));
    }
    sl_free(before);
    json_decref(cur);
    PQclear(res);
    return ret;
}

int cp_h_keys_delete(cp_req_t *r)
{
    return cp_delete_object(r, "API key", "api_key", KEY_LOCK, "DELETE FROM api_keys WHERE id = $1");
}
