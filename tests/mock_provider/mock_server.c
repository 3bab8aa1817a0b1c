/*
 * The server core: libuv TCP, http-parser, request queues, replies, timers and
 * the generic fault injection (delays, drops, resets, forced close).
 *
 * Each connection keeps a queue of parsed requests. Only the head of the queue
 * is active; it may finish at once (the common, fast case) or wait on the
 * connection's single timer (x-mock-delay-ms, x-mock-chunk-delay-ms) or on the
 * socket draining (large streams). Replies are appended to the connection's
 * output buffer, which is flushed once at the end of each loop callback, so
 * pipelined requests read together are also answered with one write.
 *
 * Memory: a connection and everything it owns (queued requests, stream
 * state) is freed only in the close callback of its last handle, so code that
 * closes a connection from deep inside a reply can still look at it on the way
 * out; everything checks conn->closing after a call that may close.
 */
#include <errno.h>
#include <http_parser.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#include "tests/mock_provider/mock.h"

/* Stream events are generated until this much output is waiting, then the
 * stream pauses until the socket drains, so a 100k-chunk stream to a slow
 * reader does not sit in memory. */
#define STREAM_HIGH_WATER (64u << 10)
/* Stop reading from a client that pipelines faster than we answer. */
#define QUEUE_PAUSE_AT 64
/* Request objects (with their buffers) are reused; bigger buffers are freed. */
#define REQ_POOL_MAX 256
#define REQ_KEEP_BUF_BYTES (64u << 10)
/* How long a connection we asked to close may linger waiting for the peer's FIN. */
#define LINGER_MS 2000
#define READ_BUF_BYTES (64u << 10)

typedef enum req_state_e {
    REQ_PARSING,
    REQ_QUEUED,
    REQ_DELAYING,   /* x-mock-delay-ms timer before the head */
    REQ_STREAMING,  /* in pump() */
    REQ_WAIT_TIMER, /* x-mock-chunk-delay-ms timer between events */
    REQ_WAIT_DRAIN, /* output above the high-water mark */
    REQ_DROPPING,   /* x-mock-drop-after: reset once the output is written */
} req_state_t;

typedef struct conn_s conn_t;

typedef struct raw_header_s {
    uint32_t name_off, name_len, value_off, value_len;
} raw_header_t;

typedef struct conn_req_s {
    mock_req_t pub;
    struct conn_req_s *next; /* queue or pool link */
    conn_t *conn;            /* borrowed */
    req_state_t state;
    const mock_format_t *format; /* borrowed; the format answering, NULL for /__mock/ */
    mock_buf_t head;             /* owned: URL then header names and values */
    mock_buf_t body;             /* owned */
    uint32_t url_len;
    uint32_t n_raw;
    int hstate; /* 0 none, 1 in a field, 2 in a value */
    bool in_trailers;
    bool keep_alive;
    bool chunked; /* the reply may use chunked encoding (HTTP/1.1) */
    bool tick;    /* the chunk-delay timer has fired */
    bool admin;   /* path under /__mock/ */
    uint64_t start_ns;
    mock_resp_t resp; /* stream and stream_state live here while streaming */
    raw_header_t raw[MOCK_MAX_HEADERS];
    mock_header_t headers[MOCK_MAX_HEADERS];
} conn_req_t;

typedef struct mock_server_s mock_server_t;

struct conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    http_parser parser;
    mock_server_t *srv;          /* borrowed */
    conn_t *prev, *next;         /* the server's list of connections */
    conn_req_t *parsing;         /* owned: the request being parsed */
    conn_req_t *q_head, *q_tail; /* owned: parsed requests, head is active */
    size_t q_len;
    mock_buf_t out; /* owned: not yet handed to the socket */
    unsigned pending_writes;
    int open_handles;
    int parse_error; /* status to answer once the queue drains, 0 if none */
    bool closing;
    bool running; /* inside conn_run() */
    bool reading;
    bool no_more_requests; /* Connection: close seen, or parse error */
    bool peer_eof;
    bool close_after_flush;
    bool reset_after_flush;
    bool shut; /* shutdown requested; only draining reads now */
    uint64_t id; /* connection sequence number, recorded with each request */
};

typedef struct write_req_s {
    uv_write_t req;
    uv_buf_t buf;
    char *data; /* owned */
} write_req_t;

struct mock_server_s {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_signal_t sigterm, sigint;
    mock_config_t cfg;
    conn_t *conns;
    conn_req_t *pool;
    size_t pool_len;
    uint64_t next_id;
    uint64_t next_conn_id;
    mock_buf_t body_scratch;   /* reply bodies are built here, then copied out */
    mock_buf_t header_scratch; /* a reply's extra header lines, written with its head */
    mock_buf_t event_scratch;  /* one stream event at a time */
    mock_records_t *records;   /* owned; NULL with --no-record */
    char date[64];
    size_t date_len;
    time_t date_at;
    bool stopping;
    char read_buf[READ_BUF_BYTES];
};

/* All formats; a request no route matches is answered by the first one. */
static const mock_format_t *const formats[] = {
    &mock_openai_format, &mock_azure_format,  &mock_anthropic_format,
    &mock_gemini_format, &mock_cohere_format, &mock_bedrock_format,
};

static void conn_run(conn_t *conn);
static void conn_flush(conn_t *conn);
static void conn_close(conn_t *conn);
static void pump(conn_req_t *req);

static void log_msg(const mock_server_t *srv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void log_msg(const mock_server_t *srv, const char *fmt, ...)
{
    va_list ap;

    if (srv->cfg.quiet)
        return;
    fputs("mock_provider: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- request objects ---------------------------------------------------- */

static conn_req_t *req_new(conn_t *conn)
{
    mock_server_t *srv = conn->srv;
    conn_req_t *req = srv->pool;

    if (req != NULL) {
        srv->pool = req->next;
        srv->pool_len--;
    } else {
        req = malloc(sizeof(*req));
        if (req == NULL) {
            fputs("mock_provider: out of memory\n", stderr);
            abort();
        }
        mock_buf_init(&req->head);
        mock_buf_init(&req->body);
    }
    /* The header arrays are large and fully rewritten by the parser, so only
     * the scalar part is reset here. */
    memset(&req->pub, 0, sizeof(req->pub));
    req->pub.faults.drop_after = -1;
    req->pub.faults.chunks = -1;
    req->next = NULL;
    req->conn = conn;
    req->state = REQ_PARSING;
    req->format = NULL;
    req->head.len = 0;
    req->body.len = 0;
    req->url_len = 0;
    req->n_raw = 0;
    req->hstate = 0;
    req->in_trailers = false;
    req->keep_alive = true;
    req->chunked = true;
    req->tick = false;
    req->admin = false;
    req->start_ns = 0;
    memset(&req->resp, 0, sizeof(req->resp));
    return req;
}

static void req_free(mock_server_t *srv, conn_req_t *req)
{
    if (req->resp.stream != NULL) {
        req->resp.stream->free(req->resp.stream_state);
        req->resp.stream = NULL;
        req->resp.stream_state = NULL;
    }
    if (req->head.cap > REQ_KEEP_BUF_BYTES)
        mock_buf_dispose(&req->head);
    if (req->body.cap > REQ_KEEP_BUF_BYTES)
        mock_buf_dispose(&req->body);
    if (srv->pool_len >= REQ_POOL_MAX || srv->stopping) {
        mock_buf_dispose(&req->head);
        mock_buf_dispose(&req->body);
        free(req);
        return;
    }
    req->next = srv->pool;
    srv->pool = req;
    srv->pool_len++;
}

mock_str_t mock_req_header(const mock_req_t *req, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < req->n_headers; i++) {
        const mock_header_t *h = &req->headers[i];
        if (h->name.len == n && strncasecmp(h->name.base, name, n) == 0)
            return h->value;
    }
    return (mock_str_t){NULL, 0};
}

/* Fills pub.faults from the x-mock-* headers in one pass. */
static void parse_faults(conn_req_t *req)
{
    mock_faults_t *f = &req->pub.faults;
    uint64_t v;

    for (size_t i = 0; i < req->pub.n_headers; i++) {
        mock_str_t name = req->headers[i].name;
        mock_str_t value = req->headers[i].value;
        if (name.len < 8 || strncasecmp(name.base, "x-mock-", 7) != 0)
            continue;
        mock_str_t s = {name.base + 7, name.len - 7};
        if (mock_str_eq_nocase(s, "status")) {
            if (mock_parse_u64(value, 599, &v) && v >= 200)
                f->status = (int)v;
        } else if (mock_str_eq_nocase(s, "retry-after")) {
            f->retry_after = value;
        } else if (mock_str_eq_nocase(s, "delay-ms")) {
            if (mock_parse_u64(value, 86400000, &v))
                f->delay_ms = v;
        } else if (mock_str_eq_nocase(s, "chunk-delay-ms")) {
            if (mock_parse_u64(value, 86400000, &v))
                f->chunk_delay_ms = v;
        } else if (mock_str_eq_nocase(s, "drop-after")) {
            if (mock_parse_u64(value, INT64_MAX, &v))
                f->drop_after = (int64_t)v;
        } else if (mock_str_eq_nocase(s, "malformed")) {
            f->malformed = mock_str_eq_nocase(value, "1") || mock_str_eq_nocase(value, "true");
            f->malformed_crc = mock_str_eq_nocase(value, "crc");
        } else if (mock_str_eq_nocase(s, "timestamps")) {
            f->timestamps = mock_str_eq_nocase(value, "1") || mock_str_eq_nocase(value, "true");
        } else if (mock_str_eq_nocase(s, "close")) {
            f->close = mock_str_eq_nocase(value, "1") || mock_str_eq_nocase(value, "true");
        } else if (mock_str_eq_nocase(s, "content")) {
            f->content = value;
        } else if (mock_str_eq_nocase(s, "chunks")) {
            if (mock_parse_u64(value, 100000000, &v))
                f->chunks = (int64_t)v;
        } else if (mock_str_eq_nocase(s, "tool-call")) {
            f->tool_call = value;
        } else if (mock_str_eq_nocase(s, "stream-error")) {
            if (value.len > 0 && !mock_str_eq_nocase(value, "0") &&
                !mock_str_eq_nocase(value, "false"))
                f->stream_error = value;
        }
    }
}

/* ---- output -------------------------------------------------------------- */

static void on_write(uv_write_t *w, int status);
static void on_shutdown(uv_shutdown_t *sr, int status);

static void conn_reset(conn_t *conn);

/* Runs what was waiting for all output to reach the socket. */
static void conn_after_flush(conn_t *conn)
{
    if (conn->closing || conn->out.len != 0 || conn->pending_writes != 0)
        return;
    if (conn->reset_after_flush) {
        conn_reset(conn);
    } else if (conn->close_after_flush && !conn->shut) {
        /* Half-close and wait for the peer's FIN: closing with unread
         * pipelined bytes in our receive buffer would send a RST, and the
         * client could lose the response we just wrote. */
        conn->shut = true;
        if (uv_shutdown(&conn->shutdown_req, (uv_stream_t *)&conn->tcp, on_shutdown) != 0)
            conn_close(conn);
    }
}

static void conn_flush(conn_t *conn)
{
    size_t off = 0;

    if (conn->closing)
        return;
    if (conn->out.len == 0) {
        conn_after_flush(conn);
        return;
    }
    if (conn->pending_writes == 0) {
        uv_buf_t b = uv_buf_init(conn->out.base, (unsigned)conn->out.len);
        int n = uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
        if (n >= 0 && (size_t)n == conn->out.len) {
            conn->out.len = 0;
            conn_after_flush(conn);
            return;
        }
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(conn);
            return;
        }
        if (n > 0)
            off = (size_t)n;
    }
    /* Hand the buffer itself to the write request instead of copying it; the
     * connection starts a fresh one. */
    write_req_t *w = malloc(sizeof(*w));
    if (w == NULL) {
        conn_close(conn);
        return;
    }
    w->data = conn->out.base;
    w->buf = uv_buf_init(conn->out.base + off, (unsigned)(conn->out.len - off));
    mock_buf_init(&conn->out);
    w->req.data = conn;
    if (uv_write(&w->req, (uv_stream_t *)&conn->tcp, &w->buf, 1, on_write) != 0) {
        free(w->data);
        free(w);
        conn_close(conn);
        return;
    }
    conn->pending_writes++;
}

static void on_write(uv_write_t *wr, int status)
{
    write_req_t *w = (write_req_t *)wr;
    conn_t *conn = wr->data;

    free(w->data);
    free(w);
    conn->pending_writes--;
    if (conn->closing)
        return;
    if (status < 0) {
        conn_close(conn);
        return;
    }
    if (conn->pending_writes == 0 && conn->q_head != NULL &&
        conn->q_head->state == REQ_WAIT_DRAIN) {
        conn->q_head->state = REQ_STREAMING;
        pump(conn->q_head);
    }
    conn_run(conn);
    conn_flush(conn);
}

static void update_date(mock_server_t *srv)
{
    time_t now = time(NULL);
    struct tm tm;

    if (now == srv->date_at)
        return;
    srv->date_at = now;
    gmtime_r(&now, &tm);
    srv->date_len = strftime(srv->date, sizeof(srv->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* content_length < 0 means a streamed body (chunked, or close-delimited for
 * HTTP/1.0 clients). */
static void write_head(conn_req_t *req, int status, const char *content_type,
                       int64_t content_length, bool keep_alive)
{
    conn_t *conn = req->conn;
    mock_server_t *srv = conn->srv;
    mock_buf_t *o = &conn->out;
    const char *reason = http_status_str((enum http_status)status);

    update_date(srv);
    MOCK_BUF_LIT(o, "HTTP/1.1 ");
    mock_buf_append_u64(o, (uint64_t)status);
    MOCK_BUF_LIT(o, " ");
    mock_buf_append(o, reason, strlen(reason));
    MOCK_BUF_LIT(o, "\r\ndate: ");
    mock_buf_append(o, srv->date, srv->date_len);
    MOCK_BUF_LIT(o, "\r\n");
    if (status != 204 && status != 304) {
        MOCK_BUF_LIT(o, "content-type: ");
        mock_buf_append(o, content_type, strlen(content_type));
        MOCK_BUF_LIT(o, "\r\n");
        if (content_length >= 0) {
            MOCK_BUF_LIT(o, "content-length: ");
            mock_buf_append_u64(o, (uint64_t)content_length);
            MOCK_BUF_LIT(o, "\r\n");
        } else if (req->chunked) {
            MOCK_BUF_LIT(o, "transfer-encoding: chunked\r\n");
        }
    }
    if (keep_alive)
        MOCK_BUF_LIT(o, "connection: keep-alive\r\n");
    else
        MOCK_BUF_LIT(o, "connection: close\r\n");
    req->pub.processing_ms = (uv_hrtime() - req->start_ns) / 1000000;
    const mock_format_t *fmt = req->format ? req->format : formats[0];
    fmt->headers(&req->pub, o);
    mock_buf_append(o, srv->header_scratch.base, srv->header_scratch.len);
    srv->header_scratch.len = 0;
    if (req->pub.faults.retry_after.base != NULL) {
        MOCK_BUF_LIT(o, "retry-after: ");
        mock_buf_append(o, req->pub.faults.retry_after.base, req->pub.faults.retry_after.len);
        MOCK_BUF_LIT(o, "\r\n");
    }
    MOCK_BUF_LIT(o, "\r\n");
}

/* ---- request lifecycle ---------------------------------------------------- */

static void on_timer(uv_timer_t *t);

/* Called when the active request's reply is complete; starts the next one. */
static void req_finish(conn_req_t *req)
{
    conn_t *conn = req->conn;

    conn->q_head = req->next;
    if (conn->q_head == NULL)
        conn->q_tail = NULL;
    conn->q_len--;
    if (!req->keep_alive || req->pub.faults.close) {
        conn->no_more_requests = true;
        conn->close_after_flush = true;
    }
    req_free(conn->srv, req);
    conn_run(conn);
}

/* Stops the reply and resets the connection once what was written so far
 * has reached the socket, so the client sees the data and then a RST. */
static void begin_drop(conn_req_t *req)
{
    conn_t *conn = req->conn;

    req->state = REQ_DROPPING;
    conn->no_more_requests = true;
    conn->reset_after_flush = true;
    conn_flush(conn);
}

static void append_chunk(conn_req_t *req, const mock_buf_t *ev)
{
    mock_buf_t *o = &req->conn->out;

    if (!req->chunked) {
        mock_buf_append(o, ev->base, ev->len);
        return;
    }
    char hex[20];
    size_t n = 0, v = ev->len;
    do {
        hex[sizeof(hex) - 1 - n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v != 0);
    mock_buf_append(o, hex + sizeof(hex) - n, n);
    MOCK_BUF_LIT(o, "\r\n");
    mock_buf_append(o, ev->base, ev->len);
    MOCK_BUF_LIT(o, "\r\n");
}

/* Writes due stream events until the stream ends or has to wait. */
static void pump(conn_req_t *req)
{
    conn_t *conn = req->conn;
    mock_server_t *srv = conn->srv;
    const mock_faults_t *f = &req->pub.faults;

    while (!conn->closing) {
        if (f->drop_after >= 0 && req->pub.events_sent >= f->drop_after) {
            begin_drop(req);
            return;
        }
        if (conn->out.len >= STREAM_HIGH_WATER) {
            conn_flush(conn);
            if (conn->closing)
                return;
            if (conn->pending_writes != 0) {
                req->state = REQ_WAIT_DRAIN;
                return;
            }
        }
        if (f->chunk_delay_ms > 0 && req->pub.events_sent > 0 && !req->tick) {
            req->state = REQ_WAIT_TIMER;
            uv_timer_start(&conn->timer, on_timer, f->chunk_delay_ms, 0);
            conn_flush(conn);
            return;
        }
        req->tick = false;
        srv->event_scratch.len = 0;
        if (!req->resp.stream->next(&req->pub, req->resp.stream_state, &srv->event_scratch)) {
            if (req->chunked)
                MOCK_BUF_LIT(&conn->out, "0\r\n\r\n");
            else
                req->keep_alive = false; /* the body ends with the connection */
            req_finish(req);
            return;
        }
        append_chunk(req, &srv->event_scratch);
        req->pub.events_sent++;
    }
}

/* Matches s against pat, where '*' stands for one or more characters other
 * than '/'. With prefix, pat only has to match the start of a longer s. The
 * recursion is as deep as pat has stars (three at most in our routes). */
static bool glob_match(const char *pat, const char *s, size_t n, bool prefix)
{
    while (*pat != '\0') {
        if (*pat == '*') {
            pat++;
            for (size_t k = 1; k <= n && s[k - 1] != '/'; k++) {
                if (glob_match(pat, s + k, n - k, prefix))
                    return true;
            }
            return false;
        }
        if (n == 0 || *pat != *s)
            return false;
        pat++;
        s++;
        n--;
    }
    return prefix ? n > 0 : n == 0;
}

static bool route_matches(const mock_route_t *r, const mock_req_t *req)
{
    if (r->method != (int)req->method)
        return false;
    return glob_match(r->path, req->path.base, req->path.len, (r->flags & MOCK_ROUTE_PREFIX) != 0);
}

/* Runs the format handler (or the admin API) for req into resp. */
static void dispatch(conn_req_t *req, mock_resp_t *resp)
{
    mock_server_t *srv = req->conn->srv;
    mock_req_t *pub = &req->pub;
    const mock_route_t *route = NULL;
    const mock_format_t *fmt = formats[0];

    if (req->admin) {
        mock_admin_handle(srv->records, pub, resp);
        return;
    }
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]) && route == NULL; i++) {
        for (const mock_route_t *r = formats[i]->routes; r->path != NULL; r++) {
            if (route_matches(r, pub)) {
                route = r;
                fmt = formats[i];
                break;
            }
        }
    }
    req->format = fmt;
    if (!fmt->authorized(pub)) {
        fmt->error(pub, resp, MOCK_ERR_AUTH, 401);
        return;
    }
    if (pub->faults.status >= 400) {
        fmt->error(pub, resp, MOCK_ERR_INJECTED, pub->faults.status);
        return;
    }
    if (route == NULL) {
        fmt->error(pub, resp, MOCK_ERR_NOT_FOUND, 404);
        return;
    }
    if (route->flags & MOCK_ROUTE_JSON) {
        pub->json = json_loadb(pub->body.base ? pub->body.base : "", pub->body.len, 0, NULL);
        if (pub->json == NULL || !json_is_object(pub->json)) {
            json_decref(pub->json);
            pub->json = NULL;
            fmt->error(pub, resp, MOCK_ERR_BAD_JSON, 400);
            return;
        }
    }
    route->handler(pub, resp);
    json_decref(pub->json);
    pub->json = NULL;
    if (pub->faults.status > 0 && pub->faults.status < 400)
        resp->status = pub->faults.status;
}

/* Produces the reply of the active request: head, then body or stream. */
static void req_respond(conn_req_t *req)
{
    conn_t *conn = req->conn;
    mock_server_t *srv = conn->srv;
    mock_resp_t *resp = &req->resp;
    const mock_faults_t *f = &req->pub.faults;

    srv->body_scratch.len = 0;
    srv->header_scratch.len = 0;
    resp->status = 200;
    resp->content_type = "application/json";
    resp->body = &srv->body_scratch;
    resp->headers = &srv->header_scratch;
    resp->stream = NULL;
    resp->stream_state = NULL;
    dispatch(req, resp);

    bool keep_alive = req->keep_alive && !f->close && f->drop_after < 0;
    if (resp->stream != NULL) {
        if (!req->chunked)
            keep_alive = false;
        write_head(req, resp->status, resp->content_type, -1, keep_alive);
        req->state = REQ_STREAMING;
        pump(req);
        return;
    }

    size_t len = resp->body->len;
    bool no_body = resp->status == 204 || resp->status == 304;
    if (no_body)
        len = 0;
    if (f->drop_after >= 0 && !no_body) {
        /* Promise the whole body, send half, then reset. */
        write_head(req, resp->status, resp->content_type, (int64_t)len, false);
        if (req->pub.method != HTTP_HEAD)
            mock_buf_append(&conn->out, resp->body->base, len / 2);
        begin_drop(req);
        return;
    }
    if (f->malformed && len > 0)
        len /= 2;
    write_head(req, resp->status, resp->content_type, no_body ? -1 : (int64_t)len, keep_alive);
    if (req->pub.method != HTTP_HEAD && len > 0)
        mock_buf_append(&conn->out, resp->body->base, len);
    req_finish(req);
}

static void req_start(conn_req_t *req)
{
    if (req->pub.faults.delay_ms > 0) {
        req->state = REQ_DELAYING;
        uv_timer_start(&req->conn->timer, on_timer, req->pub.faults.delay_ms, 0);
        return;
    }
    req->state = REQ_STREAMING;
    req_respond(req);
}

static void on_timer(uv_timer_t *t)
{
    conn_t *conn = t->data;
    conn_req_t *req = conn->q_head;

    if (conn->closing)
        return;
    if (conn->shut) {
        /* The peer never closed its side after our shutdown. */
        conn_close(conn);
        return;
    }
    if (req == NULL)
        return;
    if (req->state == REQ_DELAYING) {
        req->state = REQ_STREAMING;
        req_respond(req);
    } else if (req->state == REQ_WAIT_TIMER) {
        req->state = REQ_STREAMING;
        req->tick = true;
        pump(req);
    }
    conn_run(conn);
    conn_flush(conn);
}

static void write_parse_error(conn_t *conn)
{
    int status = conn->parse_error;
    const char *reason = http_status_str((enum http_status)status);

    mock_buf_appendf(&conn->out,
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\ncontent-length: %zu\r\n"
                     "connection: close\r\n\r\n%s\n",
                     status, reason, strlen(reason) + 1, reason);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static void conn_set_reading(conn_t *conn, bool on)
{
    if (conn->closing || conn->reading == on)
        return;
    if (on) {
        if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) != 0)
            return;
    } else {
        uv_read_stop((uv_stream_t *)&conn->tcp);
    }
    conn->reading = on;
}

/* Starts queued requests in order while each completes at once. */
static void conn_run(conn_t *conn)
{
    if (conn->running)
        return;
    conn->running = true;
    while (!conn->closing && !conn->close_after_flush) {
        conn_req_t *req = conn->q_head;
        if (req == NULL) {
            if (conn->parse_error) {
                write_parse_error(conn);
                conn->parse_error = 0;
                conn->close_after_flush = true;
            } else if (conn->peer_eof) {
                conn->close_after_flush = true;
            }
            break;
        }
        if (req->state != REQ_QUEUED)
            break;
        req_start(req);
    }
    conn->running = false;
    if (!conn->no_more_requests && !conn->peer_eof && conn->q_len < QUEUE_PAUSE_AT / 2)
        conn_set_reading(conn, true);
}

/* ---- HTTP parsing --------------------------------------------------------- */

static int parse_fail(conn_t *conn, int status)
{
    conn->parse_error = status;
    return -1;
}

static int on_message_begin(http_parser *p)
{
    conn_t *conn = p->data;

    conn->parsing = req_new(conn);
    return 0;
}

static int head_append(conn_t *conn, const char *at, size_t len)
{
    conn_req_t *req = conn->parsing;

    if (req->head.len + len > MOCK_MAX_HEAD_BYTES)
        return parse_fail(conn, 431);
    mock_buf_append(&req->head, at, len);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn_t *conn = p->data;

    conn->parsing->url_len += (uint32_t)len;
    return head_append(conn, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn_t *conn = p->data;
    conn_req_t *req = conn->parsing;

    /* Trailers of a chunked body are parsed but neither kept nor recorded. */
    if (req->in_trailers)
        return 0;
    if (req->hstate != 1) {
        if (req->n_raw == MOCK_MAX_HEADERS)
            return parse_fail(conn, 431);
        raw_header_t *h = &req->raw[req->n_raw++];
        h->name_off = (uint32_t)req->head.len;
        h->name_len = 0;
        h->value_off = 0;
        h->value_len = 0;
        req->hstate = 1;
    }
    req->raw[req->n_raw - 1].name_len += (uint32_t)len;
    return head_append(conn, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn_t *conn = p->data;
    conn_req_t *req = conn->parsing;

    if (req->in_trailers || req->n_raw == 0)
        return 0;
    raw_header_t *h = &req->raw[req->n_raw - 1];
    if (req->hstate != 2) {
        h->value_off = (uint32_t)req->head.len;
        h->value_len = 0;
        req->hstate = 2;
    }
    h->value_len += (uint32_t)len;
    return head_append(conn, at, len);
}

static int on_headers_complete(http_parser *p)
{
    conn_t *conn = p->data;
    conn_req_t *req = conn->parsing;
    mock_req_t *pub = &req->pub;
    const char *base = req->head.base;

    /* The head buffer no longer grows (trailers are ignored), so pointers
     * into it stay valid from here on. */
    req->in_trailers = true;
    pub->url = (mock_str_t){base, req->url_len};
    const char *q = memchr(base, '?', req->url_len);
    if (q != NULL) {
        pub->path = (mock_str_t){base, (size_t)(q - base)};
        pub->query = (mock_str_t){q + 1, req->url_len - (size_t)(q - base) - 1};
    } else {
        pub->path = pub->url;
        pub->query = (mock_str_t){base + req->url_len, 0};
    }
    for (uint32_t i = 0; i < req->n_raw; i++) {
        const raw_header_t *r = &req->raw[i];
        req->headers[i].name = (mock_str_t){base + r->name_off, r->name_len};
        req->headers[i].value = (mock_str_t){r->value_len ? base + r->value_off : "", r->value_len};
    }
    pub->headers = req->headers;
    pub->n_headers = req->n_raw;
    pub->method = p->method;
    req->admin = pub->path.len >= 8 && memcmp(pub->path.base, "/__mock/", 8) == 0;
    if (!req->admin)
        parse_faults(req);
    req->keep_alive = http_should_keep_alive(p) != 0;
    req->chunked = p->http_major > 1 || (p->http_major == 1 && p->http_minor >= 1);

    /* http-parser leaves content_length at ULLONG_MAX when there is no
     * Content-Length header. */
    bool has_length = p->content_length != ULLONG_MAX;
    bool has_body = (p->flags & F_CHUNKED) || (has_length && p->content_length > 0);
    if (!(p->flags & F_CHUNKED) && has_length) {
        if (p->content_length > MOCK_MAX_BODY_BYTES)
            return parse_fail(conn, 413);
        if (p->content_length > 0 &&
            mock_buf_try_reserve(&req->body, (size_t)p->content_length) != 0)
            return parse_fail(conn, 413);
    }
    /* Answer "Expect: 100-continue" only when nothing is in front of this
     * request; otherwise the interim reply would interleave with an earlier
     * one, and the client falls back to sending the body after its timeout. */
    if (has_body && conn->q_head == NULL &&
        mock_str_eq_nocase(mock_req_header(pub, "expect"), "100-continue")) {
        MOCK_BUF_LIT(&conn->out, "HTTP/1.1 100 Continue\r\n\r\n");
        conn_flush(conn);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn_t *conn = p->data;
    conn_req_t *req = conn->parsing;

    if (req->body.len + len > MOCK_MAX_BODY_BYTES)
        return parse_fail(conn, 413);
    if (mock_buf_try_reserve(&req->body, len) != 0)
        return parse_fail(conn, 413);
    memcpy(req->body.base + req->body.len, at, len);
    req->body.len += len;
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn_t *conn = p->data;
    mock_server_t *srv = conn->srv;
    conn_req_t *req = conn->parsing;

    conn->parsing = NULL;
    req->pub.id = ++srv->next_id;
    req->pub.conn_id = conn->id;
    req->pub.body = (mock_str_t){req->body.len ? req->body.base : "", req->body.len};
    req->start_ns = uv_hrtime();
    req->state = REQ_QUEUED;
    if (srv->records != NULL && !req->admin)
        mock_records_add(srv->records, &req->pub);
    if (conn->q_tail != NULL)
        conn->q_tail->next = req;
    else
        conn->q_head = req;
    conn->q_tail = req;
    conn->q_len++;
    if (!req->keep_alive) {
        /* Bytes after a request that ends the connection are not requests. */
        conn->no_more_requests = true;
        http_parser_pause(p, 1);
    }
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- connections ---------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *conn = h->data;

    /* One read buffer serves every connection: the parser copies what it
     * keeps before the read callback returns. */
    *buf = uv_buf_init(conn->srv->read_buf, READ_BUF_BYTES);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *conn = s->data;

    if (conn->closing)
        return;
    if (nread < 0) {
        if (nread != UV_EOF || conn->shut) {
            conn_close(conn);
            return;
        }
        /* A half-closed client still gets the replies it asked for. */
        conn->peer_eof = true;
        conn_set_reading(conn, false);
        conn_run(conn);
        conn_flush(conn);
        return;
    }
    if (nread == 0 || conn->shut || conn->no_more_requests)
        return;

    http_parser_execute(&conn->parser, &parser_settings, buf->base, (size_t)nread);
    enum http_errno err = HTTP_PARSER_ERRNO(&conn->parser);
    /* HPE_PAUSED only means a request asked to end the connection. */
    if (err != HPE_OK && err != HPE_PAUSED) {
        if (conn->parse_error == 0)
            conn->parse_error = 400;
        log_msg(conn->srv, "bad request: %s", http_errno_description(err));
        conn->no_more_requests = true;
    } else if (conn->parser.upgrade) {
        conn->parse_error = 501;
        conn->no_more_requests = true;
    }
    if (conn->no_more_requests || conn->q_len >= QUEUE_PAUSE_AT)
        conn_set_reading(conn, false);
    conn_run(conn);
    conn_flush(conn);
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *conn = h->data;
    mock_server_t *srv = conn->srv;

    if (--conn->open_handles > 0)
        return;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        srv->conns = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    if (conn->parsing != NULL)
        req_free(srv, conn->parsing);
    while (conn->q_head != NULL) {
        conn_req_t *req = conn->q_head;
        conn->q_head = req->next;
        req_free(srv, req);
    }
    mock_buf_dispose(&conn->out);
    free(conn);
}

static void conn_close(conn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    uv_close((uv_handle_t *)&conn->timer, on_conn_closed);
    uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
}

/* Closes with SO_LINGER {1, 0}, so the peer gets a RST instead of a FIN. */
static void conn_reset(conn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    uv_close((uv_handle_t *)&conn->timer, on_conn_closed);
    if (uv_tcp_close_reset(&conn->tcp, on_conn_closed) != 0)
        uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    conn_t *conn = sr->data;

    if (conn->closing)
        return;
    if (status < 0 || conn->peer_eof) {
        conn_close(conn);
        return;
    }
    /* Drain (and drop) whatever the peer still sends until its FIN, bounded
     * by a timer in case it never closes. */
    uv_timer_stop(&conn->timer);
    uv_timer_start(&conn->timer, on_timer, LINGER_MS, 0);
    conn_set_reading(conn, true);
}

static void on_connection(uv_stream_t *server, int status)
{
    mock_server_t *srv = server->data;

    if (status < 0) {
        log_msg(srv, "accept: %s", uv_strerror(status));
        return;
    }
    conn_t *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        fputs("mock_provider: out of memory\n", stderr);
        abort();
    }
    conn->srv = srv;
    conn->id = ++srv->next_conn_id;
    uv_tcp_init(srv->loop, &conn->tcp);
    uv_timer_init(srv->loop, &conn->timer);
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->shutdown_req.data = conn;
    conn->open_handles = 2;
    conn->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = conn;
    srv->conns = conn;
    http_parser_init(&conn->parser, HTTP_REQUEST);
    conn->parser.data = conn;
    if (uv_accept(server, (uv_stream_t *)&conn->tcp) != 0) {
        conn_close(conn);
        return;
    }
    /* Stream events must leave as soon as they are due, not when Nagle's
     * algorithm decides. */
    uv_tcp_nodelay(&conn->tcp, 1);
    conn_set_reading(conn, true);
}

/* ---- server --------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h)
{
}

static void on_signal(uv_signal_t *sig, int signum)
{
    mock_server_t *srv = sig->data;

    if (srv->stopping)
        return;
    srv->stopping = true;
    log_msg(srv, "signal %d, shutting down", signum);
    uv_close((uv_handle_t *)&srv->listener, on_handle_closed);
    uv_close((uv_handle_t *)&srv->sigterm, on_handle_closed);
    uv_close((uv_handle_t *)&srv->sigint, on_handle_closed);
    for (conn_t *c = srv->conns; c != NULL; c = c->next)
        conn_close(c);
}

static void close_any(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int listen_on(mock_server_t *srv, const mock_config_t *cfg, char *addr_text, size_t cap)
{
    struct sockaddr_storage ss;
    int r;

    r = uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&ss);
    if (r != 0)
        r = uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&ss);
    if (r != 0) {
        fprintf(stderr, "mock_provider: bad --host %s\n", cfg->host);
        return r;
    }
    r = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&srv->listener, 1024, on_connection);
    if (r != 0) {
        fprintf(stderr, "mock_provider: listen on %s:%d: %s\n", cfg->host, cfg->port,
                uv_strerror(r));
        return r;
    }
    int len = (int)sizeof(ss);
    r = uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    if (r != 0)
        return r;
    int port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        snprintf(addr_text, cap, "[%s]:%d", cfg->host, port);
    else
        snprintf(addr_text, cap, "%s:%d", cfg->host, port);
    return 0;
}

int mock_server_run(const mock_config_t *cfg)
{
    mock_server_t *srv = calloc(1, sizeof(*srv));
    char addr[128];
    int rc = 1;

    if (srv == NULL)
        return 1;
    srv->cfg = *cfg;
    srv->loop = uv_default_loop();
    mock_buf_init(&srv->body_scratch);
    mock_buf_init(&srv->header_scratch);
    mock_buf_init(&srv->event_scratch);
    if (cfg->record) {
        srv->records = malloc(sizeof(*srv->records));
        if (srv->records == NULL)
            goto Exit;
        mock_records_init(srv->records);
    }
    http_parser_set_max_header_size((uint32_t)MOCK_MAX_HEAD_BYTES);

    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    uv_signal_init(srv->loop, &srv->sigterm);
    uv_signal_init(srv->loop, &srv->sigint);
    srv->sigterm.data = srv;
    srv->sigint.data = srv;
    if (listen_on(srv, cfg, addr, sizeof(addr)) != 0) {
        uv_walk(srv->loop, close_any, NULL);
        uv_run(srv->loop, UV_RUN_DEFAULT);
        goto Exit;
    }
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv->sigint, on_signal, SIGINT);

    printf("listening on %s\n", addr);
    fflush(stdout);
    log_msg(srv, "recording %s", cfg->record ? "on" : "off");

    uv_run(srv->loop, UV_RUN_DEFAULT);
    rc = 0;
Exit:
    uv_walk(srv->loop, close_any, NULL);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(srv->loop) != 0)
        rc = 1;
    while (srv->pool != NULL) {
        conn_req_t *req = srv->pool;
        srv->pool = req->next;
        mock_buf_dispose(&req->head);
        mock_buf_dispose(&req->body);
        free(req);
    }
    if (srv->records != NULL) {
        mock_records_clear(srv->records);
        free(srv->records);
    }
    mock_buf_dispose(&srv->body_scratch);
    mock_buf_dispose(&srv->header_scratch);
    mock_buf_dispose(&srv->event_scratch);
    free(srv);
    uv_library_shutdown();
    return rc;
}
