/* The audit log: every write, who made it, and the object before and after
 * (rendered the way the API shows it, so without secrets). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "controlplane/api/api.h"

int cp_audit(cp_req_t *r, const char *action, const char *type, const char *id,
             const char *workspace, const char *before, const char *after)
{
    PGresult *res = NULL;
    const char *vals[] = {workspace, r->actor.id, cp_role_name(r->actor.role), action, type, id,
                          before, after, r->request_id};
    /* One round trip: the record, and the notification the snapshot
     * publisher listens for (delivered only if the transaction commits). */
    int ret = cp_db(r, &res,
                    "WITH a AS (INSERT INTO audit_log (workspace_id, actor_id, actor_role, action,"
                    " resource_type, resource_id, before, after, request_id)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9) RETURNING 1)"
                    " SELECT pg_notify('sluice_changes', $5 || ':' || $6) FROM a",
                    9, vals);
    PQclear(res);
    return ret;
}

int cp_h_audit_list(cp_req_t *r)
{
    if (cp_need_role(r, CP_ROLE_ADMIN) != 0)
        return -1;
    const char *ws = cp_query(r, "workspace_id");
    if (cp_scope(r) != NULL && ws != NULL && strcmp(ws, cp_scope(r)) != 0)
        return cp_not_found(r, "workspace");
    const char *filters[] = {cp_scope(r), ws, cp_query(r, "resource_type"),
                             cp_query(r, "resource_id"), cp_query(r, "actor_id"),
                             cp_query(r, "action"), cp_query(r, "since"), cp_query(r, "until")};
    return cp_list(r,
                   "SELECT coalesce(json_agg(j ORDER BY id DESC), '[]')::text FROM ("
                   " SELECT id, json_build_object('object', 'audit_event', 'id', id::text, 'at', at,"
                   "  'workspace_id', workspace_id, 'actor_id', actor_id, 'actor_role', actor_role,"
                   "  'action', action, 'resource_type', resource_type, 'resource_id', resource_id,"
                   "  'before', before, 'after', after, 'request_id', request_id) AS j"
                   " FROM audit_log WHERE ($1::text IS NULL OR workspace_id = $1)"
                   " AND ($2::text IS NULL OR workspace_id = $2)"
                   " AND ($3::text IS NULL OR resource_type = $3)"
                   " AND ($4::text IS NULL OR resource_id = $4)"
                   " AND ($5::text IS NULL OR actor_id = $5)"
                   " AND ($6::text IS NULL OR action = $6)"
                   " AND ($7::timestamptz IS NULL OR at >= $7::timestamptz)"
                   " AND ($8::timestamptz IS NULL OR at < $8::timestamptz)"
                   " AND ($9::bigint IS NULL OR id < $9::bigint)"
                   " ORDER BY id DESC LIMIT $10::int) s",
                   8, filters, "id", 1);
}
