/**
 * Gateway settings, parsed once from the command line in main.c and then
 * read-only: every worker thread reads it without locks.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "dataplane/upstream/netguard.h"

typedef struct gw_config_s {
    char host[256];
    int port;
    int workers;
    /* HTTP server limits */
    size_t max_header_bytes; /* request line + all header lines */
    size_t max_headers;      /* header count */
    size_t max_body_bytes;   /* request body, after de-chunking */
    size_t max_upstream_body_bytes; /* buffered (non-streaming) upstream body */
    uint64_t header_timeout_ms; /* from the first byte of a request to its last header */
    uint64_t body_timeout_ms;   /* longest pause while a request body arrives */
    uint64_t idle_timeout_ms;   /* keep-alive wait for the next request */
    uint64_t send_timeout_ms;   /* longest time a response may make no progress to the client */
    uint64_t upstream_timeout_ms;      /* whole upstream transfer, default */
    uint64_t upstream_connect_timeout_ms;
    uint64_t shutdown_grace_ms; /* in-flight requests get this long on SIGTERM */
    gw_netguard_t netguard;     /* where custom hosts may point */
    int upstream_native_http1;  /* plain http:// upstreams through the native engine */
    char ca_file[1024];         /* extra CA bundle for upstream TLS; empty: system's */
} gw_config_t;

/** Fills the embedded defaults (standalone, header-driven mode). */
void gw_config_defaults(gw_config_t *cfg);

#endif
