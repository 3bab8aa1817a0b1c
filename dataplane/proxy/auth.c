/*
 * Authentication stage. In standalone, header-driven mode the caller brings
 * its own provider key in Authorization; there is no Sluice key to check
 * yet. With a control plane (snapshots issue) this stage resolves the Sluice
 * API key to its workspace, limits and default config.
 */
#include "dataplane/proxy/stage.h"

int gw_auth_stage(gw_proxy_t *px)
{
    sl_str_t auth = sl_str_trim(gw_req_header(px->req, "authorization"));
    if (sl_str_istarts_with(auth, "bearer ")) {
        sl_str_t key = sl_str_trim(sl_str(auth.base + 7, auth.len - 7));
        px->api_key = key;
    } else {
        /* Anthropic's SDK sends its key as x-api-key (and so may others). */
        px->api_key = sl_str_trim(gw_req_header(px->req, "x-api-key"));
    }
    return GW_STAGE_NEXT;
}
