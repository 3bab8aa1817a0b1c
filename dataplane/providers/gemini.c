/*
 * Placeholder until the gemini adapter lands: refuses requests with a clear
 * error instead of sending them in the wrong format.
 */
#include "common/err.h"
#include "dataplane/providers/adapter.h"
#include "dataplane/proxy/stage.h"

static int build_request(gw_proxy_t *px)
{
    px->error_message = "the gemini format is not available in this build yet";
    return SL_EUNSUPPORTED;
}

const gw_adapter_t gw_adapter_gemini = {
    .name = "gemini",
    .build_request = build_request,
};
