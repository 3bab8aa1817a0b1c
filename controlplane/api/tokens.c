/* Admin tokens. A token's secret is shown once, at creation; only its
 * SHA-256 is kept. Nobody can mint a token with a role above their own or
 * a reach beyond their own. */
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "controlplane/api/api.h"

#define TOK_JSON                                                                                   \
    "json_build_object('object', 'admin_token', 'id', t.id, 'name', t.name, 'role', t.role,"      \
    " 'workspace_id', t.workspace_id, 'token_hint', t.token_hint, 'created_by', t.created_by,"   \
    " 'created_at', t.created_at, 'expires_at', t.expires_at, 'revoked_at', t.revoked_at)"

static const char *const roles[] = {"owner", "admin", "member", "viewer", NULL};

static const cp_field_t fields[] = {
    {.name = "name", .type = CP_F_STRING, .required = 1, .min = 1, .max = 128},
    {.name = "role", .type = CP_F_ENUM, .required = 1, .enums = roles},
    {.name = "workspace_id", .type = CP_F_STRING, .nullable = 1, .max = 64},
    {.name = "expires_at", .type = CP_F_TIME, .nullable = 1},
    {0},
};

int cp_h_tokens_list(cp_req_t *r)
{
    if (cp_need_role(r, CP_ROLE_ADMIN) != 0)
        return -1;
    const char *filters[] = {cp_scope(r), cp_query(r, "workspace_id")};
    return cp_list(r,
                   "SELECT coalesce(json_agg(j ORDER BY id DESC), '[]')::text FROM ("
                   " SELECT t.id, " TOK_JSON " AS j FROM admin_tokens t"
                   " WHERE ($1::text IS NULL OR t.workspace_id = $1)"
                   " AND ($2::text IS NULL OR t.workspace_id = $2)"
                   " AND ($3::text IS NULL OR t.id < $3) ORDER BY t.id DESC LIMIT $4::int) s",
                   2, filters, "id", 0);
}

int cp_h_tokens_me(cp_req_t *r)
{
    const char *vals[] = {r->actor.id};
    return cp_db_reply_one(r, 200, "token",
                           "SELECT " TOK_JSON " FROM admin_tokens t WHERE t.id = $1", 1, vals);
}

int cp_h_tokens_get(cp_req_t *r)
{
    if (strcmp(r->params[0], r->actor.id) != 0 && cp_need_role(r, CP_ROLE_ADMIN) != 0)
        return -1;
    const char *vals[] = {r->params[0], cp_scope(r)};
    return cp_db_reply_one(r, 200, "token",
                           "SELECT " TOK_JSON " FROM admin_tokens t WHERE t.id = $1"
                           " AND ($2::text IS NULL OR t.workspace_id = $2)",
                           2, vals);
}

int cp_h_tokens_create(cp_req_t *r)
{
    PGresult *res = NULL;
    char id[48], secret[96], hash[65], hint[48], hashp[70], ws[48] = "";
    if (cp_need_role(r, CP_ROLE_ADMIN) != 0 || cp_validate(r, r->json, fields, 0, "$") != 0)
        return -1;
    int role = cp_role_parse(json_string_value(json_object_get(r->json, "role")));
    if (role > r->actor.role)
        return cp_fail(r, SL_EFORBIDDEN, "a %s token cannot create a %s token",
                       cp_role_name(r->actor.role), cp_role_name(role));
    json_t *w = json_object_get(r->json, "workspace_id");
    if (w == NULL && cp_scope(r) != NULL) {
        snprintf(ws, sizeof(ws), "%s", cp_scope(r));
    } else if (w != NULL && !json_is_null(w)) {
        if (cp_target_workspace(r, r->json, ws) != 0)
            return -1;
    } else if (cp_scope(r) != NULL) {
        return cp_fail(r, SL_EFORBIDDEN,
                       "a token scoped to one workspace cannot create one that reaches every workspace");
    }
    cp_new_id("tok", id, sizeof(id));
    cp_new_secret("sk-sluice-admin-", secret, sizeof(secret), hash, hint, sizeof(hint));
    snprintf(hashp, sizeof(hashp), "\\x%s", hash);
    char *name = cp_param(json_object_get(r->json, "name"));
    char *exp = cp_param(json_object_get(r->json, "expires_at"));
    const char *vals[] = {id, ws[0] ? ws : NULL, name, cp_role_name(role), hashp, hint,
                          r->actor.id, exp};
    int ret = cp_db(r, &res,
                    "WITH t AS (INSERT INTO admin_tokens (id, workspace_id, name, role, token_hash,"
                    " token_hint, created_by, expires_at) VALUES ($1, $2, $3, $4, $5::bytea, $6,"
                    " $7, $8::timestamptz) RETURNING *) SELECT " TOK_JSON " FROM t",
                    8, vals);
    sl_free(name);
    sl_free(exp);
    if (ret != 0)
        return -1;
    ret = cp_audit(r, "create", "admin_token", id, ws[0] ? ws : NULL, NULL, PQgetvalue(res, 0, 0));
    json_t *out = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    PQclear(res);
    if (ret != 0 || out == NULL) {
        json_decref(out);
        return ret != 0 ? ret : cp_fail(r, SL_EINTERNAL, NULL);
    }
    json_object_set_new(out, "token", json_string(secret));
    cp_reply(r, 201, out);
    return 0;
}

int cp_h_tokens_delete(cp_req_t *r)
{
    PGresult *res = NULL;
    if (strcmp(r->params[0], r->actor.id) != 0 && cp_need_role(r, CP_ROLE_ADMIN) != 0)
        return -1;
    const char *vals[] = {r->params[0], cp_scope(r)};
    if (cp_db(r, &res,
              "SELECT " TOK_JSON ", t.role, t.workspace_id FROM admin_tokens t WHERE t.id = $1"
              " AND ($2::text IS NULL OR t.workspace_id = $2) FOR UPDATE",
              2, vals) != 0)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return cp_not_found(r, "token");
    }
    if (cp_role_parse(PQgetvalue(res, 0, 1)) > r->actor.role) {
        PQclear(res);
        return cp_fail(r, SL_EFORBIDDEN, "a %s token cannot revoke a more powerful token",
                       cp_role_name(r->actor.role));
    }
    char *before = sl_xstrdup(PQgetvalue(res, 0, 0));
    char *ws = PQgetisnull(res, 0, 2) ? NULL : sl_xstrdup(PQgetvalue(res, 0, 2));
    PQclear(res);
    int ret = cp_db(r, &res,
                    "WITH t AS (UPDATE admin_tokens SET revoked_at = coalesce(revoked_at, now()),"
                    " version = version + 1 WHERE id = $1 RETURNING *) SELECT " TOK_JSON " FROM t",
                    1, vals);
    if (ret == 0) {
        cp_reply(r, 200, json_loads(PQgetvalue(res, 0, 0), 0, NULL));
        ret = cp_audit(r, "revoke", "admin_token", r->params[0], ws, before, PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    sl_free(before);
    sl_free(ws);
    return ret;
}
