#include "dataplane/server/http.h"

#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "common/json.h"

/* Pipelined bytes held while a request is handled; past this, reading stops. */
#define GW_MAX_PENDING_BYTES (1u << 20)
/* The handler's on_drain fires when the backlog falls below this. */
#define GW_DRAIN_LOW_WATER (256u << 10)

typedef enum {
    CS_IDLE,     /* waiting for the first byte of a request */
    CS_HEAD,     /* reading the request line and headers */
    CS_BODY,     /* reading the body */
    CS_HANDLING, /* request complete; the handler owns it until the response ends */
} conn_state_t;

static const char *const state_name[] = {"idle", "head", "body", "handling"};

struct gw_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;
    http_parser parser;
    gw_worker_t *worker;      /* borrowed */
    gw_conn_t *next, *prev;   /* worker->conns */
    gw_task_t task;           /* deferred close or resume */
    gw_req_t *req;            /* holds one reference while current */
    gw_http_handler_t handler;
    sl_buf_t pending;         /* received, not parsed yet (pipelining) */
    size_t pending_pos;
    size_t backlog;           /* bytes in uv_write requests not completed */
    size_t header_bytes;
    conn_state_t state;
    int err;                  /* SL_E* set by a parser callback */
    int last_header_cb;       /* 0 none, 1 field, 2 value */
    unsigned writes_inflight;
    unsigned closes;
    unsigned close_requested : 1;
    unsigned closed : 1;
    unsigned close_after_write : 1;
    unsigned reading : 1;
};

typedef struct {
    uv_write_t w;
    gw_conn_t *conn;
    size_t len;
    char data[];
} wreq_t;

static const http_parser_settings parser_settings;
static gw_http_handler_t http_handler; /* same for every worker; set before they start */
static void conn_process(gw_conn_t *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void conn_close(gw_conn_t *c);
static void conn_respond_error_and_close(gw_conn_t *c, int err, const char *msg);

static void set_state(gw_conn_t *c, conn_state_t st, int line)
{
    if (sl_log_level >= SL_LOG_TRACE)
        sl__log(SL_LOG_TRACE, NULL, 0, "conn %p: state %s -> %s (line %d)", (void *)c,
                state_name[c->state], state_name[st], line);
    c->state = st;
}
#define SET_STATE(c, s) set_state((c), (s), __LINE__)

/* ---- requests ---------------------------------------------------------- */

/* Requests are recycled per worker with their arena's first chunk and a
 * small body buffer, so that a typical request allocates nothing. */
#define GW_REQ_FREE_MAX 256
#define GW_REQ_KEEP_BODY (64u << 10)

static gw_req_t *req_new(gw_conn_t *c)
{
    gw_worker_t *w = c->worker;
    gw_req_t *req = w->req_free;
    if (req != NULL) {
        w->req_free = req->handler_data;
        w->nreq_free--;
        sl_arena_t arena = req->arena;
        sl_buf_t body = req->body;
        memset(req, 0, sizeof(*req));
        req->arena = arena;
        req->body = body;
        req->body.len = 0;
    } else {
        req = sl_xcalloc(1, sizeof(*req));
        sl_arena_init(&req->arena);
        sl_buf_init(&req->body, w->cfg->max_body_bytes);
    }
    req->conn = c;
    req->worker = c->worker;
    req->refcnt = 1;
    req->t_start = uv_hrtime();
    return req;
}

void gw_req_ref(gw_req_t *req)
{
    req->refcnt++;
}

int gw_req_unref(gw_req_t *req)
{
    SL_ASSERT(req->refcnt > 0);
    if (--req->refcnt > 0)
        return req->refcnt;
    gw_worker_t *w = req->worker;
    if (w->nreq_free < GW_REQ_FREE_MAX && !w->draining) {
        sl_arena_reset(&req->arena);
        if (req->body.cap > GW_REQ_KEEP_BODY)
            sl_buf_dispose(&req->body);
        req->handler_data = w->req_free;
        w->req_free = req;
        w->nreq_free++;
        return 0;
    }
    sl_buf_dispose(&req->body);
    sl_arena_clear(&req->arena);
    sl_free(req);
    return 0;
}

sl_str_t gw_http_header_find(const gw_http_header_t *h, size_t n, const char *name)
{
    sl_str_t want = sl_str_c(name);
    for (size_t i = 0; i < n; i++)
        if (sl_str_ieq(h[i].name, want))
            return h[i].value;
    return SL_STR_NULL;
}

gw_http_header_t *gw_http_header_push(sl_arena_t *a, gw_http_header_t **arr, size_t *n,
                                      size_t *cap)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        gw_http_header_t *nh = sl_arena_alloc(a, ncap * sizeof(*nh), _Alignof(gw_http_header_t));
        if (*n)
            memcpy(nh, *arr, *n * sizeof(*nh));
        *arr = nh;
        *cap = ncap;
    }
    gw_http_header_t *h = &(*arr)[(*n)++];
    h->name = SL_STR_NULL;
    h->value = SL_STR_NULL;
    return h;
}

/* ---- parser callbacks -------------------------------------------------- */

static gw_conn_t *conn_of(http_parser *p)
{
    return (gw_conn_t *)p->data;
}

static int count_header_bytes(gw_conn_t *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->worker->cfg->max_header_bytes) {
        c->err = SL_EHDRTOOBIG;
        return -1;
    }
    return 0;
}

/* Appends to a string that may arrive in several pieces. */
static void str_append(sl_arena_t *a, sl_str_t *s, const char *p, size_t n)
{
    if (s->len == 0) {
        *s = sl_str_dup(a, sl_str(p, n));
        return;
    }
    char *d = sl_arena_alloc(a, s->len + n + 1, 1);
    memcpy(d, s->base, s->len);
    memcpy(d + s->len, p, n);
    d[s->len + n] = '\0';
    *s = sl_str(d, s->len + n);
}

static void on_header_timer(uv_timer_t *t);

static int on_message_begin(http_parser *p)
{
    gw_conn_t *c = conn_of(p);
    if (c->req == NULL)
        c->req = req_new(c);
    c->header_bytes = 0;
    c->last_header_cb = 0;
    SET_STATE(c, CS_HEAD);
    /* Counted from the first byte, not reset by progress: slowloris-proof. */
    uv_timer_start(&c->timer, on_header_timer, c->worker->cfg->header_timeout_ms, 0);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    gw_conn_t *c = conn_of(p);
    if (count_header_bytes(c, n))
        return -1;
    str_append(&c->req->arena, &c->req->url, at, n);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    gw_conn_t *c = conn_of(p);
    gw_req_t *req = c->req;
    if (count_header_bytes(c, n))
        return -1;
    /* Trailers of a chunked body: counted against the limit, never merged
     * into the headers (they arrive after routing decisions are due). */
    if (c->state == CS_BODY)
        return 0;
    if (c->last_header_cb != 1) {
        if (req->nheaders == c->worker->cfg->max_headers) {
            c->err = SL_EHDRTOOBIG;
            return -1;
        }
        gw_http_header_t *h = gw_http_header_push(&req->arena, &req->headers, &req->nheaders,
                                                  &req->_headers_cap);
        h->value = SL_STRLIT("");
    }
    c->last_header_cb = 1;
    str_append(&req->arena, &req->headers[req->nheaders - 1].name, at, n);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    gw_conn_t *c = conn_of(p);
    gw_req_t *req = c->req;
    if (count_header_bytes(c, n))
        return -1;
    if (c->state == CS_BODY)
        return 0;
    if (req->nheaders == 0)
        return -1;
    c->last_header_cb = 2;
    str_append(&req->arena, &req->headers[req->nheaders - 1].value, at, n);
    return 0;
}

static void write_raw(gw_conn_t *c, const char *p, size_t n);

static int on_headers_complete(http_parser *p)
{
    gw_conn_t *c = conn_of(p);
    gw_req_t *req = c->req;
    const gw_config_t *cfg = c->worker->cfg;

    req->method = p->method;
    req->keepalive = http_should_keep_alive(p);
    const char *q = memchr(req->url.base, '?', req->url.len);
    if (q != NULL) {
        req->path = sl_str(req->url.base, (size_t)(q - req->url.base));
        req->query = sl_str(q + 1, req->url.len - req->path.len - 1);
    } else {
        req->path = req->url;
        req->query = SL_STR_NULL;
    }
    if (p->upgrade) {
        c->err = SL_EBADREQ;
        return -1;
    }
    /* Refuse an oversized body before reading it (and before 100-continue). */
    if (!(p->flags & F_CHUNKED) && p->content_length != ULLONG_MAX &&
        p->content_length > cfg->max_body_bytes) {
        c->err = SL_ETOOBIG;
        return -1;
    }
    sl_str_t expect = gw_req_header(req, "expect");
    if (expect.len > 0) {
        if (!sl_str_ieq_c(sl_str_trim(expect), "100-continue")) {
            c->err = SL_EBADREQ;
            return -1;
        }
        if (p->http_major == 1 && p->http_minor >= 1)
            write_raw(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    SET_STATE(c, CS_BODY);
    if ((p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX))
        uv_timer_start(&c->timer, on_header_timer, cfg->body_timeout_ms, 0);
    else
        uv_timer_stop(&c->timer); /* no body: the message is complete now */
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    gw_conn_t *c = conn_of(p);
    int r = sl_buf_append(&c->req->body, at, n);
    if (r != 0) {
        c->err = r;
        return -1;
    }
    /* The body timeout measures silence, so progress restarts it. */
    uv_timer_start(&c->timer, on_header_timer, c->worker->cfg->body_timeout_ms, 0);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    gw_conn_t *c = conn_of(p);
    uv_timer_stop(&c->timer);
    c->req->t_received = uv_hrtime();
    SET_STATE(c, CS_HANDLING);
    /* Hand the request over only after http_parser_execute returns. */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- writing ----------------------------------------------------------- */

static void on_send_timer(uv_timer_t *t);

static void on_write(uv_write_t *w, int status)
{
    wreq_t *wr = SL_CONTAINER_OF(w, wreq_t, w);
    gw_conn_t *c = wr->conn;
    c->writes_inflight--;
    c->backlog -= wr->len;
    sl_free(wr);
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* Progress: while a request is handled the timer is the send timeout. */
    if (c->state == CS_HANDLING) {
        if (c->writes_inflight > 0)
            uv_timer_start(&c->timer, on_send_timer, c->worker->cfg->send_timeout_ms, 0);
        else
            uv_timer_stop(&c->timer);
    }
    if (c->writes_inflight == 0 && c->close_after_write) {
        conn_close(c);
        return;
    }
    if (c->req != NULL && c->req->on_drain != NULL && c->backlog < GW_DRAIN_LOW_WATER)
        c->req->on_drain(c->req);
}

/* Writes now when the socket takes it; copies only what it does not take. */
static int conn_write(gw_conn_t *c, uv_buf_t *bufs, unsigned nbufs)
{
    size_t total = 0, off = 0;
    if (c->close_requested)
        return SL_EIO;
    for (unsigned i = 0; i < nbufs; i++)
        total += bufs[i].len;
    if (total == 0)
        return 0;
    if (c->writes_inflight == 0) {
        int r = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);
        if (r >= 0) {
            off = (size_t)r;
        } else if (r != UV_EAGAIN) {
            conn_close(c);
            return SL_EIO;
        }
        if (off == total)
            return 0;
    }
    wreq_t *wr = sl_xmalloc(sizeof(*wr) + total - off);
    wr->conn = c;
    wr->len = total - off;
    size_t skip = off, at = 0;
    for (unsigned i = 0; i < nbufs; i++) {
        size_t l = bufs[i].len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(wr->data + at, bufs[i].base + skip, l - skip);
        at += l - skip;
        skip = 0;
    }
    uv_buf_t b = uv_buf_init(wr->data, (unsigned)wr->len);
    int r = uv_write(&wr->w, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (r != 0) {
        sl_free(wr);
        conn_close(c);
        return SL_EIO;
    }
    c->writes_inflight++;
    c->backlog += wr->len;
    /* The client is not keeping up: it gets send_timeout_ms to take bytes. */
    if (c->writes_inflight == 1 && c->state == CS_HANDLING)
        uv_timer_start(&c->timer, on_send_timer, c->worker->cfg->send_timeout_ms, 0);
    return 0;
}

static void write_raw(gw_conn_t *c, const char *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    conn_write(c, &b, 1);
}

const char *gw_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

/* Builds the response head into the worker's scratch buffer. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* Builds the response head into the worker's scratch buffer: sized once,
 * then filled with plain copies (this runs for every response). */
static void build_head(gw_req_t *req, int status, const gw_http_header_t *extra, size_t nextra,
                       sl_str_t content_type, long long content_length)
{
    sl_buf_t *b = &req->worker->out;
    char line[64];
    size_t need = 128 + content_type.len;
    for (size_t i = 0; i < nextra; i++)
        need += extra[i].name.len + extra[i].value.len + 4;
    sl_buf_reset(b);
    /* The scratch buffer's cap (1 MiB) is far above any head we build. */
    int r = sl_buf_try_reserve(b, need);
    SL_ASSERT(r == 0);
    char *p = b->base;
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d ", status);
    p = put(p, line, (size_t)n);
    const char *reason = gw_http_reason(status);
    p = put(p, reason, strlen(reason));
    p = put(p, "\r\n", 2);
    for (size_t i = 0; i < nextra; i++) {
        p = put(p, extra[i].name.base, extra[i].name.len);
        p = put(p, ": ", 2);
        p = put(p, extra[i].value.base, extra[i].value.len);
        p = put(p, "\r\n", 2);
    }
    if (content_type.len > 0) {
        p = put(p, "Content-Type: ", 14);
        p = put(p, content_type.base, content_type.len);
        p = put(p, "\r\n", 2);
    }
    if (content_length >= 0) {
        n = snprintf(line, sizeof(line), "Content-Length: %lld\r\n", content_length);
        p = put(p, line, (size_t)n);
    } else if (content_length == -1) {
        p = put(p, "Transfer-Encoding: chunked\r\n", 28);
    }
    if (!req->keepalive)
        p = put(p, "Connection: close\r\n\r\n", 21);
    else
        p = put(p, "Connection: keep-alive\r\n\r\n", 26);
    b->len = (size_t)(p - b->base);
}

static void on_idle_timer(uv_timer_t *t);

/* The response is complete: release the request and go on with the next. */
static void req_end(gw_req_t *req)
{
    gw_conn_t *c = req->conn;
    req->resp_state = GW_RESP_DONE;
    if (c == NULL)
        return;
    SL_ASSERT(c->req == req);
    c->req = NULL;
    req->conn = NULL;
    req->on_drain = NULL;
    int keep = req->keepalive && !c->worker->draining && !c->close_requested;
    c->worker->inflight--;
    gw_req_unref(req);
    SET_STATE(c, CS_IDLE);
    if (!keep) {
        if (c->writes_inflight == 0)
            conn_close(c);
        else
            c->close_after_write = 1;
        return;
    }
    uv_timer_start(&c->timer, on_idle_timer, c->worker->cfg->idle_timeout_ms, 0);
    if (!c->reading) {
        c->reading = 1;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    if (c->pending.len > c->pending_pos)
        gw_worker_defer(c->worker, &c->task);
}

static int req_writable(gw_req_t *req)
{
    return req->conn != NULL && !req->conn->close_requested;
}

void gw_http_respond(gw_req_t *req, int status, const gw_http_header_t *extra, size_t nextra,
                     sl_str_t content_type, sl_str_t body)
{
    if (req->resp_state == GW_RESP_DONE)
        return;
    req->status = status;
    if (req_writable(req)) {
        gw_conn_t *c = req->conn;
        if (c->worker->draining)
            req->keepalive = 0;
        build_head(req, status, extra, nextra, content_type, (long long)body.len);
        uv_buf_t bufs[2] = {uv_buf_init(c->worker->out.base, (unsigned)c->worker->out.len),
                            uv_buf_init((char *)body.base, (unsigned)body.len)};
        conn_write(c, bufs, body.len ? 2 : 1);
        req->bytes_out += body.len;
    }
    req_end(req);
}

void gw_http_respond_error_h(gw_req_t *req, int err, const char *message, const char *param,
                             const gw_http_header_t *extra, size_t nextra)
{
    sl_buf_t body;
    sl_buf_init(&body, 1u << 20);
    if (message == NULL)
        message = sl_strerror(err);
    if (sl_json_error_body(&body, message, sl_err_type(err), param, sl_err_code(err)) != 0)
        sl_buf_reset(&body);
    gw_http_respond(req, sl_err_status(err), extra, nextra, SL_STRLIT("application/json"),
                    sl_buf_str(&body));
    sl_buf_dispose(&body);
}

void gw_http_respond_error(gw_req_t *req, int err, const char *message, const char *param)
{
    gw_http_respond_error_h(req, err, message, param, NULL, 0);
}

void gw_http_stream_start(gw_req_t *req, int status, const gw_http_header_t *extra,
                          size_t nextra)
{
    if (req->resp_state != GW_RESP_NONE)
        return;
    req->status = status;
    req->resp_state = GW_RESP_STREAMING;
    if (!req_writable(req))
        return;
    gw_conn_t *c = req->conn;
    if (c->worker->draining || c->parser.http_minor == 0)
        req->keepalive = 0;
    /* HTTP/1.0 has no chunked encoding: the body ends when the connection does. */
    build_head(req, status, extra, nextra, SL_STR_NULL, c->parser.http_minor == 0 ? -2 : -1);
    uv_buf_t b = uv_buf_init(c->worker->out.base, (unsigned)c->worker->out.len);
    conn_write(c, &b, 1);
}

int gw_http_stream_write(gw_req_t *req, const char *p, size_t n)
{
    if (req->resp_state != GW_RESP_STREAMING || !req_writable(req))
        return SL_EIO;
    if (n == 0)
        return 0;
    gw_conn_t *c = req->conn;
    req->bytes_out += n;
    if (c->parser.http_minor == 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        return conn_write(c, &b, 1);
    }
    char head[24];
    int hl = snprintf(head, sizeof(head), "%zx\r\n", n);
    uv_buf_t bufs[3] = {uv_buf_init(head, (unsigned)hl), uv_buf_init((char *)p, (unsigned)n),
                        uv_buf_init((char *)"\r\n", 2)};
    return conn_write(c, bufs, 3);
}

void gw_http_stream_end(gw_req_t *req)
{
    if (req->resp_state != GW_RESP_STREAMING)
        return;
    if (req_writable(req) && req->conn->parser.http_minor != 0)
        write_raw(req->conn, "0\r\n\r\n", 5);
    req_end(req);
}

void gw_http_stream_abort(gw_req_t *req)
{
    if (req->resp_state == GW_RESP_DONE)
        return;
    req->keepalive = 0;
    if (req->conn != NULL)
        conn_close(req->conn);
    req_end(req);
}

size_t gw_http_backlog(const gw_req_t *req)
{
    return req->conn ? req->conn->backlog : 0;
}

/* ---- connection life --------------------------------------------------- */

static void on_close(uv_handle_t *h)
{
    gw_conn_t *c = h->data;
    if (--c->closes > 0)
        return;
    sl_buf_dispose(&c->pending);
    c->worker->open_conns--;
    sl_free(c);
}

static void do_close(gw_conn_t *c)
{
    gw_worker_t *w = c->worker;
    if (c->closed)
        return;
    c->closed = 1;
    uv_timer_stop(&c->timer);
    if (c->req != NULL) {
        gw_req_t *req = c->req;
        c->req = NULL;
        req->conn = NULL;
        if (c->state == CS_HANDLING) {
            w->inflight--;
            if (req->resp_state != GW_RESP_DONE && req->on_client_gone != NULL)
                req->on_client_gone(req);
        }
        gw_req_unref(req);
    }
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->closes = 2;
    uv_close((uv_handle_t *)&c->tcp, on_close);
    uv_close((uv_handle_t *)&c->timer, on_close);
}

static void on_conn_task(gw_task_t *t)
{
    gw_conn_t *c = SL_CONTAINER_OF(t, gw_conn_t, task);
    if (c->close_requested)
        do_close(c);
    else
        conn_process(c);
}

/* Closing is always deferred: the caller may be inside a libcurl callback. */
static void conn_close(gw_conn_t *c)
{
    if (c->close_requested)
        return;
    c->close_requested = 1;
    gw_worker_defer(c->worker, &c->task);
}

void gw_http_overhead_header(gw_req_t *req, gw_http_header_t *h, uint64_t overhead_ns)
{
    h->name = SL_STRLIT("x-sluice-overhead-us");
    h->value = sl_str_c(sl_arena_printf(&req->arena, "%llu",
                                        (unsigned long long)(overhead_ns / 1000)));
}

static void conn_respond_error_and_close(gw_conn_t *c, int err, const char *msg)
{
    uint64_t t0 = uv_hrtime(); /* time spent waiting for the client is not ours */
    if (c->req == NULL)
        c->req = req_new(c);
    gw_req_t *req = c->req;
    gw_http_header_t ov;
    req->keepalive = 0;
    if (c->state != CS_HANDLING) {
        /* req_end expects a dispatched request. */
        SET_STATE(c, CS_HANDLING);
        c->worker->inflight++;
    }
    gw_http_overhead_header(req, &ov, uv_hrtime() - t0);
    gw_http_respond_error_h(req, err, msg, NULL, &ov, 1);
}

static void on_idle_timer(uv_timer_t *t)
{
    gw_conn_t *c = SL_CONTAINER_OF(t, gw_conn_t, timer);
    conn_close(c);
}

static void on_send_timer(uv_timer_t *t)
{
    gw_conn_t *c = SL_CONTAINER_OF(t, gw_conn_t, timer);
    sl_log(SL_LOG_INFO, c->req ? &c->req->log : NULL, 0,
           "client took no response bytes for %llu ms, closing",
           (unsigned long long)c->worker->cfg->send_timeout_ms);
    conn_close(c);
}

static void on_header_timer(uv_timer_t *t)
{
    gw_conn_t *c = SL_CONTAINER_OF(t, gw_conn_t, timer);
    sl_log(SL_LOG_INFO, NULL, 0, "client too slow sending the request (%s), closing",
           state_name[c->state]);
    conn_respond_error_and_close(c, SL_ETIMEOUT, NULL);
}

static void parse_error(gw_conn_t *c, enum http_errno e)
{
    int err = c->err ? c->err : SL_EBADREQ;
    char msg[160];
    if (c->err == 0) {
        snprintf(msg, sizeof(msg), "malformed HTTP request: %s", http_errno_description(e));
        conn_respond_error_and_close(c, err, msg);
    } else {
        conn_respond_error_and_close(c, err, NULL);
    }
}

static void dispatch(gw_conn_t *c)
{
    gw_req_t *req = c->req;
    c->worker->inflight++;
    req->keepalive = req->keepalive && !c->worker->draining;
    c->handler(req);
}

/* Parses buffered bytes until a request is in the handler's hands. */
static void conn_process(gw_conn_t *c)
{
    while (!c->close_requested && c->state != CS_HANDLING) {
        size_t avail = c->pending.len - c->pending_pos;
        if (avail == 0)
            break;
        size_t n = http_parser_execute(&c->parser, &parser_settings,
                                       c->pending.base + c->pending_pos, avail);
        c->pending_pos += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            dispatch(c);
            continue;
        }
        if (e != HPE_OK) {
            parse_error(c, e);
            return;
        }
    }
    if (c->pending_pos == c->pending.len) {
        sl_buf_reset(&c->pending);
        c->pending_pos = 0;
        /* Don't keep a large buffer around for an idle keep-alive connection. */
        if (c->pending.cap > 16384)
            sl_buf_dispose(&c->pending);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gw_conn_t *c = h->data;
    /* One buffer per worker: read callbacks consume it before returning. */
    *buf = uv_buf_init(c->worker->read_buf, (unsigned)c->worker->read_buf_size);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    gw_conn_t *c = s->data;
    if (c->close_requested)
        return;
    if (nread < 0) {
        if (c->state == CS_HEAD || c->state == CS_BODY) {
            /* Tell the parser about the EOF: a truncated request is an error. */
            http_parser_execute(&c->parser, &parser_settings, NULL, 0);
            enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
            if (nread == UV_EOF && e != HPE_OK && e != HPE_PAUSED) {
                parse_error(c, e);
                return;
            }
        }
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    if (c->pending.len - c->pending_pos + (size_t)nread > GW_MAX_PENDING_BYTES &&
        c->state == CS_HANDLING) {
        /* Stop reading until this request is answered; the data stays in the kernel. */
        uv_read_stop(s);
        c->reading = 0;
    }
    if (sl_buf_append(&c->pending, buf->base, (size_t)nread) != 0) {
        conn_respond_error_and_close(c, SL_ETOOBIG, NULL);
        return;
    }
    if (c->state == CS_IDLE)
        uv_timer_stop(&c->timer);
    if (c->state != CS_HANDLING)
        conn_process(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    gw_worker_t *w = server->data;
    if (status < 0)
        return;
    gw_conn_t *c = sl_xcalloc(1, sizeof(*c));
    c->worker = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->task.fn = on_conn_task;
    w->open_conns++;
    c->next = w->conns;
    if (c->next != NULL)
        c->next->prev = c;
    w->conns = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || w->draining) {
        conn_close(c);
        return;
    }
    c->handler = http_handler;
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    /* Pipelined bytes are bounded separately; the parser limits the rest. */
    sl_buf_init(&c->pending, GW_MAX_PENDING_BYTES + w->cfg->max_body_bytes +
                                 w->cfg->max_header_bytes + 65536);
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    uv_timer_start(&c->timer, on_idle_timer, w->cfg->header_timeout_ms, 0);
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

void gw_http_set_handler(gw_http_handler_t handler)
{
    http_handler = handler;
}

int gw_http_listen(gw_worker_t *w)
{
    w->listener.data = w;
    int r = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection);
    return r < 0 ? SL_EIO : 0;
}

void gw_http_drain(gw_worker_t *w)
{
    for (gw_conn_t *c = w->conns; c != NULL; c = c->next) {
        if (c->state == CS_IDLE && c->pending.len == c->pending_pos && c->writes_inflight == 0)
            conn_close(c);
    }
}

void gw_http_free_cache(gw_worker_t *w)
{
    while (w->req_free != NULL) {
        gw_req_t *req = w->req_free;
        w->req_free = req->handler_data;
        sl_buf_dispose(&req->body);
        sl_arena_clear(&req->arena);
        sl_free(req);
    }
    w->nreq_free = 0;
}

void gw_http_close_all(gw_worker_t *w)
{
    for (gw_conn_t *c = w->conns; c != NULL; c = c->next)
        conn_close(c);
}
