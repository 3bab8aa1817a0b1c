/* Workspaces: the unit of isolation. Tokens scoped to a workspace see only
 * it; creating and deleting workspaces takes an owner token that reaches
 * every workspace. */
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "controlplane/api/api.h"

#define WS_JSON                                                                                    \
    "json_build_object('object', 'workspace', 'id', w.id, 'name', w.name, 'description',"         \
    " w.description, 'metadata', w.metadata, 'created_at', w.created_at, 'updated_at',"          \
    " w.updated_at, 'version', w.version)"

static const cp_field_t fields[] = {
    {.name = "name", .type = CP_F_STRING, .required = 1, .min = 1, .max = 128},
    {.name = "description", .type = CP_F_TEXT, .max = 2000},
    {.name = "metadata", .type = CP_F_OBJECT, .max = 1},
    {0},
};

int cp_h_workspaces_list(cp_req_t *r)
{
    const char *filters[] = {cp_scope(r)};
    return cp_list(r,
                   "SELECT coalesce(json_agg(j ORDER BY id DESC), '[]')::text FROM ("
                   " SELECT w.id, " WS_JSON " AS j FROM workspaces w"
                   " WHERE ($1::text IS NULL OR w.id = $1) AND ($2::text IS NULL OR w.id < $2)"
                   " ORDER BY w.id DESC LIMIT $3::int) s",
                   1, filters, "id", 0);
}

int cp_h_workspaces_get(cp_req_t *r)
{
    const char *vals[] = {r->params[0], cp_scope(r)};
    return cp_db_reply_one(r, 200, "workspace",
                           "SELECT " WS_JSON ", w.version FROM workspaces w WHERE w.id = $1"
                           " AND ($2::text IS NULL OR w.id = $2)",
                           2, vals);
}

int cp_h_workspaces_create(cp_req_t *r)
{
    PGresult *res = NULL;
    char id[48];
    if (cp_need_role(r, CP_ROLE_OWNER) != 0)
        return -1;
    if (cp_scope(r) != NULL)
        return cp_fail(r, SL_EFORBIDDEN, "creating workspaces needs a token that reaches every workspace");
    if (cp_validate(r, r->json, fields, 0, "$") != 0)
        return -1;
    cp_new_id("ws", id, sizeof(id));
    char *name = cp_param(json_object_get(r->json, "name"));
    char *desc = cp_param(json_object_get(r->json, "description"));
    char *meta = cp_param(json_object_get(r->json, "metadata"));
    const char *vals[] = {id, name, desc, meta};
    int ret = cp_db(r, &res,
                    "WITH w AS (INSERT INTO workspaces (id, name, description, metadata)"
                    " VALUES ($1, $2, coalesce($3, ''), coalesce($4::jsonb, '{}')) RETURNING *)"
                    " SELECT " WS_JSON ", w.version FROM w",
                    4, vals);
    sl_free(name);
    sl_free(desc);
    sl_free(meta);
    if (ret != 0)
        return -1;
    cp_reply_written(r, 201, res);
    ret = cp_audit(r, "create", "workspace", id, id, NULL, PQgetvalue(res, 0, 0));
    PQclear(res);
    return ret;
}

int cp_h_workspaces_update(cp_req_t *r)
{
    PGresult *res = NULL;
    char version[16];
    if (cp_need_role(r, CP_ROLE_ADMIN) != 0 || cp_validate(r, r->json, fields, 1, "$") != 0)
        return -1;
    const char *lv[] = {r->params[0], cp_scope(r)};
    json_t *cur = cp_load_for_update(r, "workspace",
                                     "SELECT " WS_JSON ", w.version FROM workspaces w WHERE w.id = $1"
                                     " AND ($2::text IS NULL OR w.id = $2) FOR UPDATE",
                                     2, lv, version);
    if (cur == NULL)
        return -1;
    char *before = cp_dump(cur);
    cp_merge_patch(cur, r->json);
    char *name = cp_param(json_object_get(cur, "name"));
    char *desc = cp_param(json_object_get(cur, "description"));
    char *meta = cp_param(json_object_get(cur, "metadata"));
    const char *vals[] = {r->params[0], name, desc, meta};
    int ret = cp_db(r, &res,
                    "WITH w AS (UPDATE workspaces SET name = $2, description = coalesce($3, ''),"
                    " metadata = coalesce($4::jsonb, '{}'), updated_at = now(), version = version + 1"
                    " WHERE id = $1 RETURNING *) SELECT " WS_JSON ", w.version FROM w",
                    4, vals);
    sl_free(name);
    sl_free(desc);
    sl_free(meta);
    json_decref(cur);
    if (ret == 0 && name == NULL)
        ret = cp_fail_field(r, "$.name", "may not be removed");
    if (ret == 0) {
        cp_reply_written(r, 200, res);
        ret = cp_audit(r, "update", "workspace", r->params[0], r->params[0], before,
                       PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    sl_free(before);
    return ret;
}

int cp_h_workspaces_delete(cp_req_t *r)
{
    PGresult *res = NULL;
    if (cp_need_role(r, CP_ROLE_OWNER) != 0)
        return -1;
    if (cp_scope(r) != NULL && strcmp(cp_scope(r), r->params[0]) != 0)
        return cp_not_found(r, "workspace");
    if (cp_scope(r) != NULL)
        return cp_fail(r, SL_EFORBIDDEN, "deleting workspaces needs a token that reaches every workspace");
    const char *vals[] = {r->params[0]};
    if (cp_db(r, &res,
              "WITH w AS (DELETE FROM workspaces WHERE id = $1 RETURNING *)"
              " SELECT " WS_JSON " FROM w",
              1, vals) != 0)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return cp_not_found(r, "workspace");
    }
    int ret = cp_audit(r, "delete", "workspace", r->params[0], r->params[0],
                       PQgetvalue(res, 0, 0), NULL);
    PQclear(res);
    if (ret == 0)
        cp_reply(r, 200, json_pack("{s:s, s:s, s:b}", "object", "workspace", "id", r->params[0],
                                   "deleted", 1));
    return ret;
}
