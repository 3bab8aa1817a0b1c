/*
 * Exact and semantic response cache. No cache is configured in standalone
 * header-driven mode: lookups miss and stores do nothing until the cache
 * issue fills these stages in.
 */
#include "dataplane/proxy/stage.h"

int gw_cache_lookup(gw_proxy_t *px)
{
    return GW_STAGE_NEXT;
}

int gw_cache_store(gw_proxy_t *px)
{
    return GW_STAGE_NEXT;
}
