/* Admin tokens: who is calling, with which role, over which workspaces. */
#include <microhttpd.h>
#include <string.h>

#include "common/err.h"
#include "controlplane/api/api.h"

static const char *const role_names[] = {"none", "viewer", "member", "admin", "owner"};

const char *cp_role_name(int role)
{
    return role >= 0 && role <= CP_ROLE_OWNER ? role_names[role] : "none";
}

int cp_role_parse(const char *s)
{
    for (int i = CP_ROLE_VIEWER; i <= CP_ROLE_OWNER; i++)
        if (s != NULL && strcmp(s, role_names[i]) == 0)
            return i;
    return CP_ROLE_NONE;
}

/* The token is looked up by its SHA-256 (an index probe on the hash, so
 * nothing compares the secret itself byte by byte), then the stored hash is
 * compared again in constant time. */
int cp__authenticate(cp_req_t *r);
int cp__authenticate(cp_req_t *r)
{
    PGresult *res = NULL;
    const char *h = NULL;
    size_t hlen = 0;
    char hash[65], param[70];

    if (MHD_lookup_connection_value_n(r->conn, MHD_HEADER_KIND, "Authorization", 13, &h, &hlen) !=
        MHD_YES)
        h = NULL;
    /* A NUL inside the header would cut the token short in C strings. */
    if (h != NULL && strlen(h) != hlen)
        return cp_fail(r, SL_EAUTH, "invalid, revoked or expired admin token");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0 || h[7] == '\0')
        return cp_fail(r, SL_EAUTH, "missing admin token: send Authorization: Bearer <token>");
    cp_hash_secret(h + 7, hash);
    snprintf(param, sizeof(param), "\\x%s", hash);
    const char *vals[] = {param};
    if (cp_db(r, &res,
              "SELECT id, role, coalesce(workspace_id, ''), encode(token_hash, 'hex') "
              "FROM admin_tokens WHERE token_hash = $1::bytea AND revoked_at IS NULL "
              "AND (expires_at IS NULL OR expires_at > now())",
              1, vals) != 0)
        return -1;
    if (PQntuples(res) != 1 || !sl_ct_eq(PQgetvalue(res, 0, 3), hash, 64)) {
        PQclear(res);
        return cp_fail(r, SL_EAUTH, "invalid, revoked or expired admin token");
    }
    snprintf(r->actor.id, sizeof(r->actor.id), "%s", PQgetvalue(res, 0, 0));
    r->actor.role = cp_role_parse(PQgetvalue(res, 0, 1));
    snprintf(r->actor.workspace, sizeof(r->actor.workspace), "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    return 0;
}

int cp_need_role(cp_req_t *r, int role)
{
    if (r->actor.role >= role)
        return 0;
    return cp_fail(r, SL_EFORBIDDEN, "this needs the %s role; the token has %s", cp_role_name(role),
                   cp_role_name(r->actor.role));
}

const char *cp_scope(cp_req_t *r)
{
    return r->actor.workspace[0] != '\0' ? r->actor.workspace : NULL;
}

int cp_target_workspace(cp_req_t *r, json_t *body, char *out)
{
    PGresult *res = NULL;
    json_t *w = json_object_get(body, "workspace_id");
    const char *ws;

    if (w != NULL && !json_is_string(w))
        return cp_fail_field(r, "$.workspace_id", "must be a string");
    ws = w != NULL ? json_string_value(w) : cp_scope(r);
    if (ws == NULL)
        return cp_fail_field(r, "$.workspace_id",
                             "is required: this token reaches every workspace");
    if (cp_scope(r) != NULL && strcmp(ws, cp_scope(r)) != 0)
        return cp_not_found(r, "workspace");
    const char *vals[] = {ws};
    if (cp_db(r, &res, "SELECT id FROM workspaces WHERE id = $1", 1, vals) != 0)
        return -1;
    int found = PQntuples(res) == 1;
    PQclear(res);
    if (!found)
        return cp_not_found(r, "workspace");
    snprintf(out, 48, "%s", ws);
    return 0;
}
