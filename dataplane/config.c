#include "dataplane/config.h"

#include <stdio.h>
#include <string.h>

void gw_config_defaults(gw_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->host, sizeof(cfg->host), "127.0.0.1");
    cfg->port = 8787;
    cfg->workers = 0; /* one per core */
    cfg->max_header_bytes = 32 << 10;
    cfg->max_headers = 100;
    cfg->max_body_bytes = 32u << 20; /* audio uploads are up to 25 MB at OpenAI */
    cfg->max_upstream_body_bytes = 64u << 20;
    cfg->header_timeout_ms = 10000;
    cfg->body_timeout_ms = 30000;
    cfg->idle_timeout_ms = 75000;
    cfg->send_timeout_ms = 60000;
    cfg->upstream_timeout_ms = 600000;
    cfg->upstream_connect_timeout_ms = 10000;
    cfg->shutdown_grace_ms = 30000;
    cfg->upstream_native_http1 = 1;
    gw_netguard_init(&cfg->netguard);
}
