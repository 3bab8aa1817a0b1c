/* Every route of sluice-control. The OpenAPI document must describe each
 * one (a test compares `sluice-control routes` with it). */
#include "controlplane/api/api.h"

#define A "/v1/admin"
#define R(m, p, f, w, i, pub) {m, p, f, w, i, pub}

static const cp_route_t routes[] = {
    R("GET", "/health", cp_h_health, 0, 0, 1),
    R("GET", "/ready", cp_h_ready, 0, 0, 1),
    R("GET", "/metrics", cp_h_metrics, 0, 0, 1),
    R("GET", A "/openapi.json", cp_h_openapi, 0, 0, 1),

    R("GET", A "/workspaces", cp_h_workspaces_list, 0, 0, 0),
    R("POST", A "/workspaces", cp_h_workspaces_create, 1, 1, 0),
    R("GET", A "/workspaces/{id}", cp_h_workspaces_get, 0, 0, 0),
    R("PATCH", A "/workspaces/{id}", cp_h_workspaces_update, 1, 0, 0),
    R("DELETE", A "/workspaces/{id}", cp_h_workspaces_delete, 1, 0, 0),

    R("GET", A "/tokens", cp_h_tokens_list, 0, 0, 0),
    R("POST", A "/tokens", cp_h_tokens_create, 1, 1, 0),
    R("GET", A "/tokens/me", cp_h_tokens_me, 0, 0, 0),
    R("GET", A "/tokens/{id}", cp_h_tokens_get, 0, 0, 0),
    R("DELETE", A "/tokens/{id}", cp_h_tokens_delete, 1, 0, 0),

    R("GET", A "/api-keys", cp_h_keys_list, 0, 0, 0),
    R("POST", A "/api-keys", cp_h_keys_create, 1, 1, 0),
    R("GET", A "/api-keys/{id}", cp_h_keys_get, 0, 0, 0),
    R("PATCH", A "/api-keys/{id}", cp_h_keys_update, 1, 0, 0),
    R("DELETE", A "/api-keys/{id}", cp_h_keys_delete, 1, 0, 0),
    R("POST", A "/api-keys/{id}/rotate", cp_h_keys_rotate, 1, 1, 0),
    R("POST", A "/api-keys/{id}/revoke", cp_h_keys_revoke, 1, 0, 0),

    R("GET", A "/virtual-keys", cp_h_vkeys_list, 0, 0, 0),
    R("POST", A "/virtual-keys", cp_h_vkeys_create, 1, 1, 0),
    R("GET", A "/virtual-keys/{id}", cp_h_vkeys_get, 0, 0, 0),
    R("PATCH", A "/virtual-keys/{id}", cp_h_vkeys_update, 1, 0, 0),
    R("DELETE", A "/virtual-keys/{id}", cp_h_vkeys_delete, 1, 0, 0),
    R("POST", A "/virtual-keys/{id}/rotate", cp_h_vkeys_rotate, 1, 1, 0),

#define DOC_ROUTES(base)                                                                           \
    R("GET", A base, cp_h_docs_list, 0, 0, 0), R("POST", A base, cp_h_docs_create, 1, 1, 0),      \
        R("GET", A base "/{id}", cp_h_docs_get, 0, 0, 0),                                         \
        R("PATCH", A base "/{id}", cp_h_docs_update, 1, 0, 0),                                    \
        R("DELETE", A base "/{id}", cp_h_docs_delete, 1, 0, 0),                                   \
        R("GET", A base "/{id}/versions", cp_h_docs_versions, 0, 0, 0),                           \
        R("GET", A base "/{id}/versions/{version}", cp_h_docs_version, 0, 0, 0),                 \
        R("POST", A base "/{id}/rollback", cp_h_docs_rollback, 1, 0, 0)
    DOC_ROUTES("/configs"),
    DOC_ROUTES("/guardrails"),
    DOC_ROUTES("/prompts"),

    R("GET", A "/pricing", cp_h_pricing_list, 0, 0, 0),
    R("GET", A "/pricing/{provider}/{model...}", cp_h_pricing_get, 0, 0, 0),
    R("PUT", A "/pricing/{provider}/{model...}", cp_h_pricing_put, 1, 0, 0),
    R("DELETE", A "/pricing/{provider}/{model...}", cp_h_pricing_delete, 1, 0, 0),

    R("GET", A "/audit", cp_h_audit_list, 0, 0, 0),
    R("GET", A "/nodes", cp_h_nodes_list, 0, 0, 0),
};

const cp_route_t *cp_routes(int *n)
{
    *n = (int)(sizeof(routes) / sizeof(routes[0]));
    return routes;
}
