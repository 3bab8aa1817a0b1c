/*
 * Input and output guardrails. Standalone header-driven mode has none
 * configured, so both stages pass; the guardrails issue fills them in
 * (checks, actions, webhooks) without touching the pipeline's order.
 */
#include "dataplane/proxy/stage.h"

int gw_guardrails_input(gw_proxy_t *px)
{
    return GW_STAGE_NEXT;
}

int gw_guardrails_output(gw_proxy_t *px)
{
    return GW_STAGE_NEXT;
}
