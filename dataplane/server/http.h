/**
 * HTTP/1.1 server on libuv with Debian's http-parser.
 *
 * A connection (gw_conn_t, private to http.c) parses requests one at a time:
 * when a request is complete the parser pauses, the worker's handler gets a
 * gw_req_t, and bytes of pipelined requests wait until that response has
 * ended, so responses go out in request order. Limits on header bytes,
 * header count and body bytes answer 431/413 with a JSON error; header,
 * body and keep-alive idle timeouts close slow clients.
 *
 * Ownership: a gw_req_t is refcounted. The connection holds one reference
 * until the response ends or the client goes away; a handler that answers
 * asynchronously takes its own with gw_req_ref(). When the client goes away
 * first, req->conn becomes NULL and req->on_client_gone is called (from a
 * deferred task, never inside a libcurl callback); later writes are no-ops.
 * Loop thread only.
 */
#ifndef GW_HTTP_H
#define GW_HTTP_H

#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/str.h"
#include "dataplane/worker.h"

typedef struct gw_conn_s gw_conn_t;
typedef struct gw_req_s gw_req_t;
typedef void (*gw_req_cb)(gw_req_t *req);

typedef struct {
    sl_str_t name;
    sl_str_t value;
} gw_http_header_t;

enum { GW_RESP_NONE = 0, GW_RESP_STREAMING, GW_RESP_DONE };

struct gw_req_s {
    gw_conn_t *conn;     /* borrowed; NULL once the client is gone */
    gw_worker_t *worker; /* borrowed */
    int refcnt;
    int method;          /* enum http_method */
    sl_str_t url;        /* as received */
    sl_str_t path;       /* url without the query */
    sl_str_t query;      /* after '?', empty when none */
    gw_http_header_t *headers; /* arena */
    size_t nheaders;
    size_t _headers_cap;
    sl_buf_t body;       /* owned (heap), capped at cfg->max_body_bytes */
    int keepalive;       /* the client allows another request after this one */
    int resp_state;
    int status;          /* response status once sent */
    uint64_t t_start;    /* uv_hrtime() at the first byte of the request */
    uint64_t t_received; /* uv_hrtime() when the request was complete */
    uint64_t bytes_out;  /* response body bytes written */
    gw_req_cb on_client_gone; /* set by the handler; may be NULL */
    gw_req_cb on_drain;       /* set by the handler: write backlog went low */
    void *handler_data;       /* borrowed by the handler */
    sl_log_ctx_t log;
    sl_arena_t arena;    /* per-request memory; cleared when the req is freed */
};

/** Called for every complete request; must eventually end the response. */
typedef void (*gw_http_handler_t)(gw_req_t *req);

/** Sets the handler of every worker; call once before any worker starts. */
void gw_http_set_handler(gw_http_handler_t handler);
/** Starts accepting on the worker's listener. */
int gw_http_listen(gw_worker_t *w);
/** Stops accepting, closes idle connections, lets busy ones finish. */
void gw_http_drain(gw_worker_t *w);
/** Frees the recycled requests (at worker exit). */
void gw_http_free_cache(gw_worker_t *w);
/** Closes every connection now (in-flight requests see on_client_gone). */
void gw_http_close_all(gw_worker_t *w);

void gw_req_ref(gw_req_t *req);
/** Drops a reference; returns the references left (0: req was freed). */
int gw_req_unref(gw_req_t *req);

/** First of n headers with this name (case-insensitive), or an empty view. */
sl_str_t gw_http_header_find(const gw_http_header_t *h, size_t n, const char *name);
/**
 * Appends an entry to an arena-grown header array (*arr, *n, *cap; doubled
 * when full) and returns it, zeroed. Used for request and response heads.
 */
gw_http_header_t *gw_http_header_push(sl_arena_t *a, gw_http_header_t **arr, size_t *n,
                                      size_t *cap);

/** First request header with this name (case-insensitive), or an empty view. */
static inline sl_str_t gw_req_header(const gw_req_t *req, const char *name)
{
    return gw_http_header_find(req->headers, req->nheaders, name);
}

/**
 * Sends a whole response with Content-Length and ends it. extra headers are
 * written as given; content_type may be empty.
 */
void gw_http_respond(gw_req_t *req, int status, const gw_http_header_t *extra, size_t nextra,
                     sl_str_t content_type, sl_str_t body);
/** Sends an OpenAI-style JSON error for an SL_E* code and ends the response. */
void gw_http_respond_error(gw_req_t *req, int err, const char *message, const char *param);
/** Same with extra headers (trace id, ...). */
void gw_http_respond_error_h(gw_req_t *req, int err, const char *message, const char *param,
                             const gw_http_header_t *extra, size_t nextra);
/** Starts a chunked response (SSE or raw stream). */
void gw_http_stream_start(gw_req_t *req, int status, const gw_http_header_t *extra,
                          size_t nextra);
/** Writes one chunk. Returns 0, or SL_EIO when the client is gone. */
int gw_http_stream_write(gw_req_t *req, const char *p, size_t n);
/** Ends a chunked response (terminating zero chunk). */
void gw_http_stream_end(gw_req_t *req);
/**
 * Ends a chunked response without its terminating chunk and closes the
 * connection, so that the client sees a truncated body, not a complete one.
 */
void gw_http_stream_abort(gw_req_t *req);
/** Bytes queued for the client that the kernel has not taken yet. */
size_t gw_http_backlog(const gw_req_t *req);

/**
 * Fills h with "x-sluice-overhead-us: <overhead_ns in µs>" (value in the
 * request's arena): every response carries the time it spent inside Sluice.
 */
void gw_http_overhead_header(gw_req_t *req, gw_http_header_t *h, uint64_t overhead_ns);

/** Reason phrase for a status code. */
const char *gw_http_reason(int status);

#endif
