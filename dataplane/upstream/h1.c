/*
 * Native HTTP/1.1 client for plain http:// upstreams (self-hosted models,
 * sidecars, internal gateways): keep-alive connections pooled per worker and
 * per host:port, the request written with one system call, the response
 * parsed with http-parser and handed to the same callbacks as libcurl's.
 *
 * Why it exists: libcurl's per-transfer machinery (its multi state machine,
 * header generation and parsing) cost more CPU per proxied request than the
 * whole rest of the gateway; see docs/benchmarks.md. libcurl keeps
 * everything this engine does not do: TLS, HTTP/2, proxies, credentials in
 * URLs. What a demanding user relies on is the same on both paths:
 *   - the SSRF guard judges every address before connecting to it;
 *   - every address a name resolves to is tried in turn;
 *   - connect timeout and whole-transfer timeout;
 *   - a reused connection that the server closed before answering is
 *     retried once on a fresh one, as libcurl does;
 *   - gzip and deflate bodies are decoded (and asked for, as libcurl does);
 *   - back-pressure: when the owner pauses, reading stops;
 *   - interim 1xx responses are skipped, trailers ignored, HEAD has no body.
 *
 * A connection carries one transfer at a time (no pipelining). Idle ones
 * watch their socket: a server that closes one, or sends anything
 * unasked, gets it closed; unused ones close after GW_H1_IDLE_MS; at most
 * GW_H1_MAX_IDLE stay open per worker. Loop thread only.
 */
#include <http_parser.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "common/err.h"
#include "common/log.h"
#include "dataplane/upstream/upstream_internal.h"

#define GW_H1_IDLE_MS 30000
#define GW_H1_MAX_IDLE 1024
#define GW_H1_MAX_KEY 300
#define GW_H1_HOST_BUCKETS 64
#define GW_H1_INFLATE_CHUNK 16384
/* Bytes a paused owner has not taken yet: one read, decoded. */
#define GW_H1_MAX_HELD (64u << 20)

typedef enum {
    ST_RESOLVING,  /* waiting for getaddrinfo */
    ST_CONNECTING, /* TCP connect in progress */
    ST_ACTIVE,     /* request sent or being sent, response being read */
    ST_IDLE,       /* in the pool */
    ST_CLOSING,    /* handles closing; freed when the last one is */
} conn_state_t;

typedef enum { ZNONE, ZGZIP, ZDEFLATE, ZRAW } zmode_t;

typedef struct h1_conn_s h1_conn_t;
typedef struct h1_host_s h1_host_t;

/* Idle connections to one host:port. Exists while it has some. */
struct h1_host_s {
    h1_host_t *next; /* hash chain */
    h1_conn_t *idle; /* most recently idled first */
    size_t keylen;
    char key[];
};

struct gw__h1_pool_s {
    uv_loop_t *loop;            /* borrowed */
    const gw_netguard_t *guard; /* borrowed (config) */
    h1_host_t *hosts[GW_H1_HOST_BUCKETS];
    h1_conn_t *lru_head, *lru_tail; /* idle connections, newest first */
    unsigned nidle;
    h1_conn_t *deferred;        /* work to do on the next loop turn */
    uv_timer_t kick;            /* runs the deferred work */
    unsigned running;
    unsigned nconns;            /* connections not freed yet */
    uint64_t t_event;
    int closing;
    int kick_closed;
    char rbuf[65536];           /* shared: a read is consumed before the next */
};

struct h1_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer;           /* connect, transfer or idle timeout */
    uv_connect_t connect;
    uv_write_t write;
    uv_getaddrinfo_t gai;
    http_parser parser;
    z_stream z;
    gw__h1_pool_t *pool;        /* borrowed */
    gw_upstream_t *up;          /* borrowed: the transfer; NULL when idle */
    h1_host_t *host;            /* borrowed: set while idle */
    h1_conn_t *hprev, *hnext;   /* the host's idle list */
    h1_conn_t *lru_prev, *lru_next;
    h1_conn_t *defer_next;
    struct addrinfo *ai;        /* owned: resolver result, until connected */
    struct addrinfo *ai_next;   /* borrowed: next address to try */
    struct sockaddr_storage peer;
    sl_buf_t head;              /* owned: the request head */
    sl_str_t body;              /* borrowed from the transfer's owner */
    uv_buf_t wbufs[2];
    sl_buf_t held;              /* owned: body bytes the paused owner has yet to take */
    uint64_t deadline;          /* uv_now() ms the transfer must end by; 0: none */
    uint64_t connect_timeout_ms;
    conn_state_t state;
    zmode_t zmode;
    int handles;                /* open libuv handles */
    int defer_err;              /* deferred failure, or 0 for a deferred resume */
    int body_err;               /* the owner's on_body asked to abort */
    unsigned deferred : 1;
    unsigned gai_pending : 1;
    unsigned tcp_used : 1;      /* a connect was attempted on tcp */
    unsigned reconnecting : 1;  /* tcp closing to be initialised again */
    unsigned reading : 1;
    unsigned writing : 1;       /* a uv_write of the request is queued */
    unsigned reused : 1;        /* the transfer runs on a pooled connection */
    unsigned retried : 1;
    unsigned forbidden : 1;     /* the guard refused an address */
    unsigned got_bytes : 1;     /* some response byte arrived */
    unsigned head_done : 1;
    unsigned interim : 1;       /* parsing a 1xx response */
    unsigned last_value : 1;    /* last header callback was a value */
    unsigned msg_done : 1;
    unsigned keep : 1;
    unsigned paused : 1;
    unsigned is_head : 1;
    unsigned zfed : 1;          /* the decoder has had its first piece */
    size_t keylen;
    char key[GW_H1_MAX_KEY];    /* "host:port", host lower-cased */
};

static void conn_close(h1_conn_t *c);
static void finish(h1_conn_t *c, int err);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void start_connect(h1_conn_t *c);
static void on_connected(uv_connect_t *req, int status);
static void on_timer(uv_timer_t *t);

/* ---- pool bookkeeping -------------------------------------------------- */

static size_t key_hash(const char *k, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
    return (size_t)(h % GW_H1_HOST_BUCKETS);
}

static h1_host_t **host_slot(gw__h1_pool_t *p, const char *key, size_t n)
{
    h1_host_t **hp = &p->hosts[key_hash(key, n)];
    while (*hp != NULL && ((*hp)->keylen != n || memcmp((*hp)->key, key, n) != 0))
        hp = &(*hp)->next;
    return hp;
}

static void idle_remove(h1_conn_t *c)
{
    gw__h1_pool_t *p = c->pool;
    h1_host_t *h = c->host;
    if (c->hprev != NULL)
        c->hprev->hnext = c->hnext;
    else
        h->idle = c->hnext;
    if (c->hnext != NULL)
        c->hnext->hprev = c->hprev;
    c->hprev = c->hnext = NULL;
    c->host = NULL;
    if (h->idle == NULL) {
        h1_host_t **hp = host_slot(p, h->key, h->keylen);
        *hp = h->next;
        sl_free(h);
    }
    if (c->lru_prev != NULL)
        c->lru_prev->lru_next = c->lru_next;
    else
        p->lru_head = c->lru_next;
    if (c->lru_next != NULL)
        c->lru_next->lru_prev = c->lru_prev;
    else
        p->lru_tail = c->lru_prev;
    c->lru_prev = c->lru_next = NULL;
    p->nidle--;
}

static void idle_push(h1_conn_t *c)
{
    gw__h1_pool_t *p = c->pool;
    h1_host_t **hp = host_slot(p, c->key, c->keylen);
    h1_host_t *h = *hp;
    if (h == NULL) {
        h = sl_xmalloc(sizeof(*h) + c->keylen);
        h->next = NULL;
        h->idle = NULL;
        h->keylen = c->keylen;
        memcpy(h->key, c->key, c->keylen);
        *hp = h;
    }
    c->host = h;
    c->hprev = NULL;
    c->hnext = h->idle;
    if (h->idle != NULL)
        h->idle->hprev = c;
    h->idle = c;
    c->lru_prev = NULL;
    c->lru_next = p->lru_head;
    if (p->lru_head != NULL)
        p->lru_head->lru_prev = c;
    else
        p->lru_tail = c;
    p->lru_head = c;
    p->nidle++;
}

static h1_conn_t *idle_take(gw__h1_pool_t *p, const char *key, size_t n)
{
    h1_host_t *h = *host_slot(p, key, n);
    if (h == NULL)
        return NULL;
    h1_conn_t *c = h->idle;
    idle_remove(c);
    return c;
}

static void on_kick(uv_timer_t *t);

static void defer(h1_conn_t *c, int err)
{
    if (err != 0 || !c->deferred)
        c->defer_err = err; /* a failure is never overwritten by a resume */
    if (c->deferred)
        return;
    c->deferred = 1;
    c->defer_next = c->pool->deferred;
    c->pool->deferred = c;
    uv_timer_start(&c->pool->kick, on_kick, 0, 0);
}

static void undefer(h1_conn_t *c)
{
    if (!c->deferred)
        return;
    for (h1_conn_t **pp = &c->pool->deferred; *pp != NULL; pp = &(*pp)->defer_next)
        if (*pp == c) {
            *pp = c->defer_next;
            break;
        }
    c->deferred = 0;
}

/* ---- connection lifetime ----------------------------------------------- */

static void pool_maybe_free(gw__h1_pool_t *p)
{
    if (p->closing && p->nconns == 0 && p->kick_closed)
        sl_free(p);
}

static void conn_maybe_free(h1_conn_t *c)
{
    if (c->handles > 0 || c->gai_pending)
        return;
    gw__h1_pool_t *p = c->pool;
    if (c->ai != NULL)
        uv_freeaddrinfo(c->ai);
    if (c->zmode != ZNONE)
        inflateEnd(&c->z);
    sl_buf_dispose(&c->head);
    sl_buf_dispose(&c->held);
    sl_free(c);
    p->nconns--;
    pool_maybe_free(p);
}

static void on_handle_closed(uv_handle_t *h)
{
    h1_conn_t *c = h->data;
    c->handles--;
    conn_maybe_free(c);
}

static void conn_close(h1_conn_t *c)
{
    if (c->state == ST_CLOSING)
        return;
    if (c->state == ST_IDLE)
        idle_remove(c);
    undefer(c);
    c->state = ST_CLOSING;
    if (c->gai_pending)
        uv_cancel((uv_req_t *)&c->gai); /* its callback still comes */
    /* A tcp handle already closing for a reconnect counts as closed when
     * that close completes (see on_tcp_reclosed). */
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_tcp_reclosed(uv_handle_t *h)
{
    h1_conn_t *c = h->data;
    c->reconnecting = 0;
    if (c->state == ST_CLOSING) {
        on_handle_closed(h);
        return;
    }
    uv_tcp_init(c->pool->loop, &c->tcp);
    c->tcp.data = c;
    c->tcp_used = 0;
    c->reading = 0;
    start_connect(c);
}

/* Connects to c->peer on a fresh socket (closing the used one first). */
static void start_connect(h1_conn_t *c)
{
    c->state = ST_CONNECTING;
    if (c->tcp_used) {
        c->reconnecting = 1;
        uv_close((uv_handle_t *)&c->tcp, on_tcp_reclosed);
        return;
    }
    c->tcp_used = 1;
    c->connect.data = c;
    int r = uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&c->peer, on_connected);
    if (r != 0)
        defer(c, SL_EUPCONN);
}

/* The next address the guard allows, or the end of the transfer. */
static void try_next_address(h1_conn_t *c)
{
    while (c->ai_next != NULL) {
        struct addrinfo *a = c->ai_next;
        c->ai_next = a->ai_next;
        if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
            continue;
        if (gw_netguard_check(c->pool->guard, a->ai_addr) != 0) {
            c->forbidden = 1;
            continue;
        }
        memcpy(&c->peer, a->ai_addr, a->ai_addrlen);
        start_connect(c);
        return;
    }
    finish(c, c->forbidden ? SL_EFORBIDDENHOST : SL_EUPCONN);
}

/*
 * The connection failed under a transfer before the response was complete.
 * A pooled connection the server closed before answering is retried once
 * on a fresh one (the request never reached it, or it never answered); a
 * fresh one tries the next address while connecting.
 */
static void conn_failed(h1_conn_t *c)
{
    if (c->up == NULL) {
        conn_close(c);
        return;
    }
    if (c->reused && !c->got_bytes && !c->retried) {
        c->retried = 1;
        c->reused = 0;
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
        }
        http_parser_init(&c->parser, HTTP_RESPONSE);
        c->parser.data = c;
        start_connect(c);
        return;
    }
    if (c->state == ST_CONNECTING && c->ai_next != NULL) {
        try_next_address(c);
        return;
    }
    finish(c, c->up->t_head ? SL_EUPSTREAM : SL_EUPCONN);
}

/* ---- sending ----------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    h1_conn_t *c = h->data;
    *b = uv_buf_init(c->pool->rbuf, sizeof(c->pool->rbuf));
}

static void on_written(uv_write_t *w, int status)
{
    h1_conn_t *c = w->data;
    c->writing = 0;
    if (status == UV_ECANCELED || c->state == ST_CLOSING)
        return;
    if (status < 0 && c->up != NULL && c->state == ST_ACTIVE)
        conn_failed(c);
}

static void send_request(h1_conn_t *c)
{
    c->state = ST_ACTIVE;
    if (!c->reading) {
        c->reading = 1;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    uv_buf_t *b = c->wbufs;
    b[0] = uv_buf_init(c->head.base, (unsigned)c->head.len);
    b[1] = uv_buf_init((char *)c->body.base, (unsigned)c->body.len);
    unsigned nb = c->body.len ? 2 : 1;
    int n = uv_try_write((uv_stream_t *)&c->tcp, b, nb);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        defer(c, SL_EUPCONN);
        return;
    }
    size_t left = (size_t)n;
    while (nb > 0 && left >= b->len) {
        left -= b->len;
        b++;
        nb--;
    }
    if (nb == 0)
        return;
    b->base += left;
    b->len -= left;
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, b, nb, on_written) != 0)
        defer(c, SL_EUPCONN);
    else
        c->writing = 1;
}

/* Restarts the connection's timer for what the transfer has left. */
static void arm_timer(h1_conn_t *c, int connecting)
{
    uint64_t now = uv_now(c->pool->loop);
    uint64_t ms = 0;
    if (c->deadline != 0)
        ms = c->deadline > now ? c->deadline - now : 1;
    if (connecting && c->connect_timeout_ms != 0 && (ms == 0 || c->connect_timeout_ms < ms))
        ms = c->connect_timeout_ms;
    if (ms == 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_connected(uv_connect_t *req, int status)
{
    h1_conn_t *c = req->data;
    if (status == UV_ECANCELED || c->state == ST_CLOSING || c->reconnecting)
        return;
    if (status < 0) {
        conn_failed(c);
        return;
    }
    if (c->ai != NULL) {
        uv_freeaddrinfo(c->ai);
        c->ai = c->ai_next = NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 60);
    arm_timer(c, 0);
    send_request(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    h1_conn_t *c = SL_CONTAINER_OF(req, h1_conn_t, gai);
    c->gai_pending = 0;
    if (c->state == ST_CLOSING) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        conn_maybe_free(c);
        return;
    }
    c->pool->t_event = uv_hrtime();
    if (status < 0) {
        finish(c, SL_EUPCONN);
        return;
    }
    c->ai = res;
    c->ai_next = res;
    try_next_address(c);
}

/* ---- receiving --------------------------------------------------------- */

/* Hands decoded body bytes to the owner, or holds them while it is paused. */
static void deliver(h1_conn_t *c, const char *p, size_t n)
{
    if (c->body_err != 0 || n == 0)
        return;
    if (c->paused) {
        if (c->held.len + n > GW_H1_MAX_HELD || sl_buf_append(&c->held, p, n) != 0)
            c->body_err = SL_EUPTOOBIG;
        return;
    }
    int r = c->up->cbs->on_body(c->up, p, n);
    if (r < 0) {
        c->body_err = r;
    } else if (r == 1) {
        c->paused = 1;
        if (sl_buf_append(&c->held, p, n) != 0)
            c->body_err = SL_EUPTOOBIG;
    }
}

static int inflate_body(h1_conn_t *c, const char *p, size_t n)
{
    char out[GW_H1_INFLATE_CHUNK];
    c->z.next_in = (Bytef *)p;
    c->z.avail_in = (uInt)n;
    while (c->z.avail_in > 0 && c->body_err == 0) {
        c->z.next_out = (Bytef *)out;
        c->z.avail_out = sizeof(out);
        int r = inflate(&c->z, Z_NO_FLUSH);
        if (r == Z_DATA_ERROR && c->zmode == ZDEFLATE && !c->zfed) {
            /* "deflate" sent raw, without the zlib wrapper: many servers do. */
            inflateEnd(&c->z);
            c->zmode = ZRAW;
            if (inflateInit2(&c->z, -MAX_WBITS) != Z_OK)
                return -1;
            c->z.next_in = (Bytef *)p;
            c->z.avail_in = (uInt)n;
            continue;
        }
        if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
            return -1;
        deliver(c, out, sizeof(out) - c->z.avail_out);
        if (r == Z_STREAM_END)
            break; /* anything after the stream is ignored, as by libcurl */
        if (r == Z_BUF_ERROR && c->z.avail_out != 0)
            break;
    }
    c->zfed = 1;
    return 0;
}

static gw_http_header_t *last_header(h1_conn_t *c)
{
    return &c->up->headers[c->up->nheaders - 1];
}

static sl_str_t str_concat(sl_arena_t *a, sl_str_t x, const char *p, size_t n)
{
    char *s = sl_arena_alloc(a, x.len + n + 1, 1);
    if (x.len > 0)
        memcpy(s, x.base, x.len);
    if (n > 0)
        memcpy(s + x.len, p, n);
    s[x.len + n] = '\0';
    return sl_str(s, x.len + n);
}

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    h1_conn_t *c = hp->data;
    gw_upstream_t *up = c->up;
    if (c->head_done)
        return 0; /* trailers: ignored, as by the server side */
    if (up->nheaders > 0 && !c->last_value) {
        gw_http_header_t *h = last_header(c);
        h->name = str_concat(up->arena, h->name, at, n);
        return 0;
    }
    if (up->nheaders >= GW_UPSTREAM_MAX_HEADERS)
        return -1;
    gw_http_header_t *h =
        gw_http_header_push(up->arena, &up->headers, &up->nheaders, &up->_headers_cap);
    h->name = str_concat(up->arena, SL_STR_NULL, at, n);
    h->value = SL_STRLIT("");
    c->last_value = 0;
    return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    h1_conn_t *c = hp->data;
    if (c->head_done || c->up->nheaders == 0)
        return 0;
    gw_http_header_t *h = last_header(c);
    h->value = str_concat(c->up->arena, c->last_value ? h->value : SL_STR_NULL, at, n);
    c->last_value = 1;
    return 0;
}

static int start_decoding(h1_conn_t *c)
{
    sl_str_t ce = gw_upstream_header(c->up, "content-encoding");
    if (ce.len == 0 || sl_str_ieq_c(ce, "identity"))
        return 0;
    memset(&c->z, 0, sizeof(c->z));
    c->zfed = 0;
    if (sl_str_ieq_c(ce, "gzip") || sl_str_ieq_c(ce, "x-gzip")) {
        c->zmode = ZGZIP;
        return inflateInit2(&c->z, MAX_WBITS + 16) == Z_OK ? 0 : -1;
    }
    if (sl_str_ieq_c(ce, "deflate")) {
        c->zmode = ZDEFLATE;
        return inflateInit2(&c->z, MAX_WBITS) == Z_OK ? 0 : -1;
    }
    return -1; /* a coding it was not offered: cannot be relayed decoded */
}

static int on_headers_complete(http_parser *hp)
{
    h1_conn_t *c = hp->data;
    gw_upstream_t *up = c->up;
    if (hp->status_code < 200) {
        if (hp->status_code == 101)
            return -1; /* no protocol switch was asked for */
        c->interim = 1;
        up->nheaders = 0;
        return 0;
    }
    c->head_done = 1;
    for (size_t i = 0; i < up->nheaders; i++)
        up->headers[i].value = sl_str_trim(up->headers[i].value);
    up->status = hp->status_code;
    up->t_head = uv_hrtime();
    if (start_decoding(c) != 0)
        return -1;
    up->cbs->on_head(up);
    return c->is_head ? 1 : 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    h1_conn_t *c = hp->data;
    if (c->zmode != ZNONE) {
        if (inflate_body(c, at, n) != 0)
            return -1;
    } else {
        deliver(c, at, n);
    }
    return c->body_err != 0 ? -1 : 0;
}

static int on_message_complete(http_parser *hp)
{
    h1_conn_t *c = hp->data;
    if (c->interim) {
        c->interim = 0;
        c->last_value = 0;
        return 0;
    }
    c->msg_done = 1;
    c->keep = http_should_keep_alive(hp) != 0;
    http_parser_pause(hp, 1); /* what follows is not this transfer's */
    return 0;
}

static const http_parser_settings settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* After parsing: end the transfer, or stop reading for a paused owner. */
static void after_parse(h1_conn_t *c, size_t used, size_t n)
{
    if (c->body_err != 0) {
        finish(c, c->body_err);
        return;
    }
    if (c->msg_done) {
        if (used < n)
            c->keep = 0; /* bytes nobody asked for: not a connection to reuse */
        http_parser_pause(&c->parser, 0);
        if (!c->paused)
            finish(c, 0);
        else if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
        }
        return;
    }
    if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
        finish(c, c->up->t_head ? SL_EUPSTREAM : SL_EUPPROTO);
        return;
    }
    if (c->paused && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    h1_conn_t *c = s->data;
    if (n == 0)
        return;
    if (c->up == NULL) {
        /* Idle: the server closed it, or sent something unasked. */
        conn_close(c);
        return;
    }
    c->pool->t_event = uv_hrtime();
    if (n < 0) {
        uv_read_stop(s);
        c->reading = 0;
        if (!c->got_bytes) {
            conn_failed(c);
            return;
        }
        /* The end of a body delimited by the connection's close. */
        http_parser_execute(&c->parser, &settings, NULL, 0);
        c->keep = 0;
        if (c->msg_done)
            after_parse(c, 0, 0);
        else
            finish(c, c->up->t_head ? SL_EUPSTREAM : SL_EUPPROTO);
        return;
    }
    c->got_bytes = 1;
    size_t used = http_parser_execute(&c->parser, &settings, b->base, (size_t)n);
    after_parse(c, used, (size_t)n);
}

/* ---- timers and deferred work ------------------------------------------ */

static void on_timer(uv_timer_t *t)
{
    h1_conn_t *c = t->data;
    c->pool->t_event = uv_hrtime();
    if (c->up == NULL)
        conn_close(c); /* idle too long */
    else
        finish(c, SL_EUPTIMEOUT);
}

/* Gives a resumed owner what it paused on, then goes on reading. */
static void resume_now(h1_conn_t *c)
{
    if (c->held.len > 0) {
        int r = c->up->cbs->on_body(c->up, c->held.base, c->held.len);
        if (r == 1) {
            c->paused = 1;
            return;
        }
        sl_buf_reset(&c->held);
        if (r < 0) {
            finish(c, r);
            return;
        }
    }
    if (c->msg_done) {
        finish(c, 0);
        return;
    }
    if (!c->reading && c->state == ST_ACTIVE) {
        c->reading = 1;
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
}

static void on_kick(uv_timer_t *t)
{
    gw__h1_pool_t *p = SL_CONTAINER_OF(t, gw__h1_pool_t, kick);
    p->t_event = uv_hrtime();
    while (p->deferred != NULL) {
        h1_conn_t *c = p->deferred;
        p->deferred = c->defer_next;
        c->deferred = 0;
        if (c->up == NULL)
            continue;
        if (c->defer_err == SL_EFORBIDDENHOST)
            finish(c, c->defer_err);
        else if (c->defer_err != 0)
            conn_failed(c);
        else
            resume_now(c);
    }
}

/* ---- the transfer ------------------------------------------------------ */

static void finish(h1_conn_t *c, int err)
{
    gw_upstream_t *up = c->up;
    gw__h1_pool_t *p = c->pool;
    c->up = NULL;
    up->_h1 = NULL;
    up->_running = 0;
    p->running--;
    undefer(c);
    if (c->zmode != ZNONE) {
        inflateEnd(&c->z);
        c->zmode = ZNONE;
    }
    sl_buf_reset(&c->held);
    /* Reused only when the request was sent whole (a server may answer
     * early) and nothing is left of the response. */
    if (err == 0 && c->keep && c->state == ST_ACTIVE && !p->closing && !c->writing) {
        if (!c->reading) {
            c->reading = 1;
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        }
        c->state = ST_IDLE;
        idle_push(c);
        uv_timer_start(&c->timer, on_timer, GW_H1_IDLE_MS, 0);
        if (p->nidle > GW_H1_MAX_IDLE)
            conn_close(p->lru_tail);
    } else {
        if (err != 0 && sl_log_level >= SL_LOG_DEBUG)
            sl__log(SL_LOG_DEBUG, NULL, 0, "upstream %.*s: transfer failed: %s",
                    (int)c->keylen, c->key, sl_strerror(err));
        conn_close(c);
    }
    up->cbs->on_done(up, err);
}

typedef struct {
    sl_str_t host;      /* without brackets */
    sl_str_t authority; /* for the Host header */
    sl_str_t target;    /* path and query */
    unsigned port;
    int ipv6;
} url_parts_t;

/* 0 for a URL this engine serves. */
static int parse_url(const char *url, url_parts_t *u)
{
    if (strncasecmp(url, "http://", 7) != 0)
        return -1;
    const char *a = url + 7;
    size_t alen = strcspn(a, "/?#");
    if (alen == 0 || memchr(a, '@', alen) != NULL)
        return -1;
    u->authority = sl_str(a, alen);
    const char *port = NULL;
    if (a[0] == '[') {
        const char *rb = memchr(a, ']', alen);
        if (rb == NULL)
            return -1;
        u->host = sl_str(a + 1, (size_t)(rb - a - 1));
        u->ipv6 = 1;
        if (rb + 1 < a + alen) {
            if (rb[1] != ':')
                return -1;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(a, ':', alen);
        u->host = sl_str(a, colon ? (size_t)(colon - a) : alen);
        u->ipv6 = 0;
        if (colon != NULL)
            port = colon + 1;
    }
    if (u->host.len == 0)
        return -1;
    u->port = 80;
    if (port != NULL) {
        unsigned v = 0;
        const char *e = a + alen;
        if (port == e)
            return -1;
        for (const char *q = port; q < e; q++) {
            if (*q < '0' || *q > '9' || (v = v * 10 + (unsigned)(*q - '0')) > 65535)
                return -1;
        }
        if (v == 0)
            return -1;
        u->port = v;
    }
    const char *t = a + alen;
    size_t tlen = strcspn(t, "#"); /* the fragment is not sent */
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return -1; /* libcurl knows what to do with those */
    for (size_t i = 0; i < u->host.len; i++) {
        unsigned char ch = (unsigned char)u->host.base[i];
        if (ch <= 0x20 || ch >= 0x7f || ch == '%')
            return -1; /* IDNs and zone ids: libcurl */
    }
    u->target = sl_str(t, tlen);
    return 0;
}

/* Headers the engine writes itself; a caller's copy would clash. */
static int own_header(sl_str_t n)
{
    return sl_str_ieq_c(n, "host") || sl_str_ieq_c(n, "content-length") ||
           sl_str_ieq_c(n, "transfer-encoding") || sl_str_ieq_c(n, "connection") ||
           sl_str_ieq_c(n, "expect") || sl_str_ieq_c(n, "accept-encoding");
}

static int has_crlf(sl_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if (s.base[i] == '\r' || s.base[i] == '\n' || s.base[i] == '\0')
            return 1;
    return 0;
}

static int build_head(h1_conn_t *c, const url_parts_t *u, const gw_upstream_req_t *r)
{
    sl_buf_t *b = &c->head;
    int e = 0;
    int has_accept = 0;
    sl_buf_reset(b);
    e |= sl_buf_append_str(b, sl_str_c(r->method));
    e |= sl_buf_append(b, " ", 1);
    if (u->target.len == 0 || u->target.base[0] == '?')
        e |= sl_buf_append(b, "/", 1);
    e |= sl_buf_append_str(b, u->target);
    e |= sl_buf_append_str(b, SL_STRLIT(" HTTP/1.1\r\nHost: "));
    e |= sl_buf_append_str(b, u->authority);
    e |= sl_buf_append(b, "\r\n", 2);
    for (size_t i = 0; i < r->nheaders; i++) {
        const gw_http_header_t *h = &r->headers[i];
        if (own_header(h->name))
            continue;
        if (h->name.len == 0 || has_crlf(h->name) || has_crlf(h->value))
            return SL_EINTERNAL; /* would split the request: never sent */
        if (sl_str_ieq_c(h->name, "accept"))
            has_accept = 1;
        e |= sl_buf_append_str(b, h->name);
        e |= sl_buf_append(b, ": ", 2);
        e |= sl_buf_append_str(b, h->value);
        e |= sl_buf_append(b, "\r\n", 2);
    }
    if (!has_accept)
        e |= sl_buf_append_str(b, SL_STRLIT("Accept: */*\r\n"));
    e |= sl_buf_append_str(b, SL_STRLIT("Accept-Encoding: gzip, deflate\r\n"));
    /* As libcurl: a length for POST and for any request with a body. */
    if (r->body.len > 0 || strcmp(r->method, "POST") == 0) {
        char cl[48];
        int n = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", r->body.len);
        e |= sl_buf_append(b, cl, (size_t)n);
    }
    e |= sl_buf_append(b, "\r\n", 2);
    return e ? SL_ENOMEM : 0;
}

static h1_conn_t *conn_new(gw__h1_pool_t *p, const char *key, size_t keylen)
{
    h1_conn_t *c = sl_xcalloc(1, sizeof(*c));
    c->pool = p;
    memcpy(c->key, key, keylen);
    c->keylen = keylen;
    uv_tcp_init(p->loop, &c->tcp);
    uv_timer_init(p->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles = 2;
    sl_buf_init(&c->head, 1u << 20);
    sl_buf_init(&c->held, GW_H1_MAX_HELD);
    p->nconns++;
    return c;
}

int gw__h1_start(gw__h1_pool_t *p, gw_upstream_t *up, const gw_upstream_req_t *r)
{
    url_parts_t u;
    if (p->closing || parse_url(r->url, &u) != 0)
        return 0;
    char key[GW_H1_MAX_KEY];
    int kl = snprintf(key, sizeof(key), "%s%.*s%s:%u", u.ipv6 ? "[" : "", (int)u.host.len,
                      u.host.base, u.ipv6 ? "]" : "", u.port);
    if (kl < 0 || (size_t)kl >= sizeof(key))
        return 0;
    for (int i = 0; i < kl; i++)
        if (key[i] >= 'A' && key[i] <= 'Z')
            key[i] = (char)(key[i] - 'A' + 'a');

    h1_conn_t *c = idle_take(p, key, (size_t)kl);
    int fresh = c == NULL;
    if (fresh)
        c = conn_new(p, key, (size_t)kl);
    int rc = build_head(c, &u, r);
    if (rc != 0) {
        if (fresh)
            conn_close(c);
        else
            idle_push(c);
        return rc;
    }
    http_parser_init(&c->parser, HTTP_RESPONSE);
    c->parser.data = c;
    c->up = up;
    c->body = r->body;
    c->reused = !fresh;
    c->retried = 0;
    c->forbidden = 0;
    c->got_bytes = 0;
    c->head_done = 0;
    c->interim = 0;
    c->last_value = 0;
    c->msg_done = 0;
    c->keep = 0;
    c->paused = 0;
    c->body_err = 0;
    c->is_head = strcmp(r->method, "HEAD") == 0;
    c->connect_timeout_ms = r->connect_timeout_ms;
    c->deadline = r->timeout_ms ? uv_now(p->loop) + r->timeout_ms : 0;
    up->_h1 = c;
    up->_running = 1;
    p->running++;

    if (!fresh) {
        arm_timer(c, 0);
        send_request(c);
        return 1;
    }
    arm_timer(c, 1);
    char host[GW_H1_MAX_KEY];
    memcpy(host, u.host.base, u.host.len);
    host[u.host.len] = '\0';
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->peer;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&c->peer;
    if (uv_ip4_addr(host, (int)u.port, s4) == 0 || uv_ip6_addr(host, (int)u.port, s6) == 0) {
        if (gw_netguard_check(p->guard, (const struct sockaddr *)&c->peer) != 0) {
            defer(c, SL_EFORBIDDENHOST);
            c->forbidden = 1;
            c->state = ST_RESOLVING; /* nothing to retry */
        } else {
            start_connect(c);
        }
        return 1;
    }
    c->state = ST_RESOLVING;
    char port[8];
    snprintf(port, sizeof(port), "%u", u.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_getaddrinfo(p->loop, &c->gai, on_resolved, host, port, &hints) != 0) {
        defer(c, SL_EUPCONN);
        return 1;
    }
    c->gai_pending = 1;
    return 1;
}

void gw__h1_abort(gw_upstream_t *up)
{
    h1_conn_t *c = up->_h1;
    c->up = NULL;
    up->_h1 = NULL;
    up->_running = 0;
    c->pool->running--;
    conn_close(c);
}

void gw__h1_resume(gw_upstream_t *up)
{
    h1_conn_t *c = up->_h1;
    if (!c->paused)
        return;
    c->paused = 0;
    /* Never call the owner back from inside its own call. */
    defer(c, 0);
}

uint64_t gw__h1_event_time(const gw__h1_pool_t *p)
{
    return p->t_event;
}

unsigned gw__h1_running(const gw__h1_pool_t *p)
{
    return p->running;
}

gw__h1_pool_t *gw__h1_pool_new(uv_loop_t *loop, const gw_netguard_t *guard)
{
    gw__h1_pool_t *p = sl_xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->guard = guard;
    uv_timer_init(loop, &p->kick);
    return p;
}

static void on_kick_closed(uv_handle_t *h)
{
    gw__h1_pool_t *p = SL_CONTAINER_OF((uv_timer_t *)h, gw__h1_pool_t, kick);
    p->kick_closed = 1;
    pool_maybe_free(p);
}

void gw__h1_pool_free(gw__h1_pool_t *p)
{
    p->closing = 1;
    while (p->lru_head != NULL)
        conn_close(p->lru_head);
    uv_close((uv_handle_t *)&p->kick, on_kick_closed);
}
