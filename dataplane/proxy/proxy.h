/**
 * The gateway's request handler: its own endpoints (/health, /metrics) and
 * the proxy pipeline for everything under /v1/. Loop thread only.
 */
#ifndef GW_PROXY_H
#define GW_PROXY_H

#include "dataplane/proxy/stage.h"

/** Handles one complete request (gw_http_handler_t). */
void gw_proxy_handle(gw_req_t *req);

#endif
