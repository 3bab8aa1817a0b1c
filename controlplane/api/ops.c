/* Liveness, readiness, the OpenAPI document, gateway nodes. */
#include <string.h>

#include "common/err.h"
#include "controlplane/api/api.h"

extern const char cp_openapi_json[];

int cp_h_health(cp_req_t *r)
{
    return cp_reply_raw(r, 200, "{\"status\":\"ok\"}", 15);
}

int cp_h_ready(cp_req_t *r)
{
    PGresult *res = NULL;
    if (!r->app->started)
        return cp_fail(r, SL_EDBDOWN, "not ready: still applying migrations or waiting for the database");
    if (cp_q(r->db, &res, "SELECT 1", 0, NULL) != 0) {
        PQclear(res);
        return cp_fail(r, SL_EDBDOWN, "not ready: the database is unreachable");
    }
    PQclear(res);
    if (!cp_migrations_done(r->db))
        return cp_fail(r, SL_EDBDOWN, "not ready: migrations are not applied yet");
    return cp_reply_raw(r, 200, "{\"status\":\"ready\"}", 18);
}

int cp_h_openapi(cp_req_t *r)
{
    return cp_reply_raw(r, 200, cp_openapi_json, strlen(cp_openapi_json));
}

int cp_h_nodes_list(cp_req_t *r)
{
    return cp_list(r,
                   "SELECT coalesce(json_agg(j ORDER BY id), '[]')::text FROM ("
                   " SELECT id, json_build_object('object', 'node', 'id', id, 'address', address,"
                   "  'software_version', software_version, 'snapshot_version', snapshot_version,"
                   "  'first_seen_at', first_seen_at, 'last_seen_at', last_seen_at) AS j"
                   " FROM nodes WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2::int) s",
                   0, NULL, "id", 0);
}
