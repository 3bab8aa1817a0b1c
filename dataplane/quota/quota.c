/*
 * Rate limits and budgets (quota leases from the control plane). A caller
 * in standalone mode has no limits, so the check passes; the quota issue
 * fills it in.
 */
#include "dataplane/proxy/stage.h"

int gw_quota_check(gw_proxy_t *px)
{
    return GW_STAGE_NEXT;
}
