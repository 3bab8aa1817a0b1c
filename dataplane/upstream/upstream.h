/**
 * Upstream transfers: libcurl easy handles driven by the worker's libuv loop
 * through one curl multi handle per worker (socket and timer callbacks, no
 * polling loop, no thread per request). The multi handle keeps a connection
 * cache, so connections to a host are reused; HTTP/2 is negotiated over TLS
 * where the upstream offers it; TLS peers are verified. Plain http://
 * transfers may instead go to the native HTTP/1.1 engine (h1.c), which keeps
 * the same contract at a fraction of libcurl's CPU per request.
 *
 * A gw_upstream_t is embedded in its owner (the proxy state of a request),
 * which must stay alive until on_done has been called or gw_upstream_abort
 * returned. Callbacks run inside libcurl: they must not abort the transfer
 * themselves (return an error from on_body instead) and must not free their
 * owner. If gw_upstream_start fails, no callback is ever called; if it
 * succeeds, on_head and on_body may already run inside it, on_done never.
 * Loop thread only.
 */
#ifndef GW_UPSTREAM_H
#define GW_UPSTREAM_H

#include <curl/curl.h>
#include <stdint.h>
#include <uv.h>

#include "common/arena.h"
#include "common/str.h"
#include "dataplane/server/http.h"
#include "dataplane/upstream/netguard.h"

typedef struct gw_upstream_s gw_upstream_t;

/* A response with more header lines than this is refused (502). */
#define GW_UPSTREAM_MAX_HEADERS 256

typedef struct {
    /** Final status and headers have arrived (up->status, up->headers). */
    void (*on_head)(gw_upstream_t *up);
    /** Body bytes: 0 to go on, 1 to pause (resume with gw_upstream_resume), <0 to abort. */
    int (*on_body)(gw_upstream_t *up, const char *p, size_t n);
    /** Transfer over: 0, or SL_EUPCONN, SL_EUPTIMEOUT, SL_EUPSTREAM, SL_EFORBIDDENHOST... */
    void (*on_done)(gw_upstream_t *up, int err);
} gw_upstream_cbs_t;

typedef struct {
    const char *url;          /* NUL-terminated, borrowed for the call */
    const char *method;       /* "GET", "POST", ... */
    const gw_http_header_t *headers; /* sent as given */
    size_t nheaders;
    sl_str_t body;            /* borrowed until on_done/abort */
    uint64_t timeout_ms;      /* whole transfer; 0 = none */
    uint64_t connect_timeout_ms;
} gw_upstream_req_t;

struct gw_upstream_s {
    const gw_upstream_cbs_t *cbs; /* borrowed */
    void *data;                   /* the owner, for the callbacks */
    sl_arena_t *arena;            /* borrowed: response headers are stored here */
    int status;
    gw_http_header_t *headers;    /* arena; final response only */
    size_t nheaders;
    uint64_t t_start;             /* uv_hrtime() at start */
    uint64_t t_head;              /* when the head arrived */
    /* private */
    gw_upstream_multi_t *_multi;
    CURL *_easy;
    struct curl_slist *_hdrs;
    void *_url;                   /* cached parsed URL in use, or NULL */
    void *_h1;                    /* the native engine's connection while running */
    int _native;                  /* this transfer went to the native engine */
    size_t _headers_cap;
    int _running;
    int _paused;
    int _forbidden;               /* the guard refused the resolved address */
    int _body_err;                /* on_body asked to abort */
};

/**
 * Creates the worker's upstream client on its loop. With native_http1, plain
 * http:// transfers use the native HTTP/1.1 engine (h1.c) unless a proxy
 * variable is set; everything else goes through libcurl.
 */
gw_upstream_multi_t *gw_upstream_multi_new(uv_loop_t *loop, const gw_netguard_t *guard,
                                           const char *ca_file, int native_http1);
/** Closes it; every transfer must be over. Handles close asynchronously. */
void gw_upstream_multi_free(gw_upstream_multi_t *m);
/** Transfers running now. */
unsigned gw_upstream_multi_running(const gw_upstream_multi_t *m);

/** Starts a transfer. 0, or a negative SL_E* code (then no callback runs). */
int gw_upstream_start(gw_upstream_multi_t *m, gw_upstream_t *up, const gw_upstream_req_t *r);
/** Stops a running transfer; on_done is not called. Never from a curl callback. */
void gw_upstream_abort(gw_upstream_t *up);
/** Resumes a transfer that on_body paused. Not from a curl callback. */
void gw_upstream_resume(gw_upstream_t *up);
/**
 * uv_hrtime() when libcurl started on the event that is calling back now:
 * the time from there to the callback was spent in libcurl, i.e. inside
 * the gateway, and belongs to the request's overhead.
 */
uint64_t gw_upstream_event_time(const gw_upstream_t *up);
/** First response header with this name, or an empty view. */
sl_str_t gw_upstream_header(const gw_upstream_t *up, const char *name);

#endif
