/*
 * Shared only by the files in dataplane/upstream/: the native HTTP/1.1
 * engine (h1.c) that upstream.c hands plain http:// transfers to.
 */
#ifndef GW_UPSTREAM_INTERNAL_H
#define GW_UPSTREAM_INTERNAL_H

#include "dataplane/upstream/upstream.h"

typedef struct gw__h1_pool_s gw__h1_pool_t;

/** The worker's pool of HTTP/1.1 connections, on its loop. */
gw__h1_pool_t *gw__h1_pool_new(uv_loop_t *loop, const gw_netguard_t *guard);
/** Closes idle connections and frees the pool once the last handle closed. */
void gw__h1_pool_free(gw__h1_pool_t *p);
/** Transfers running on the pool now. */
unsigned gw__h1_running(const gw__h1_pool_t *p);
/**
 * Takes a transfer when its URL is one the engine serves (plain http://,
 * no credentials, a printable request target): 1 when it did, 0 when the
 * caller should use libcurl, or a negative SL_E* code (no callback runs).
 * Same callback contract as gw_upstream_start.
 */
int gw__h1_start(gw__h1_pool_t *p, gw_upstream_t *up, const gw_upstream_req_t *r);
void gw__h1_abort(gw_upstream_t *up);
void gw__h1_resume(gw_upstream_t *up);
/** uv_hrtime() when the engine began on the event calling back now. */
uint64_t gw__h1_event_time(const gw__h1_pool_t *p);

#endif
