#include "dataplane/upstream/upstream.h"
#include "dataplane/upstream/upstream_internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"

/* Idle easy handles kept for reuse. They keep their options: the constant
 * ones are set once (setup_easy) and every transfer sets all the others. */
#define GW_EASY_POOL_MAX 256

typedef struct sock_ctx_s sock_ctx_t;

/*
 * Parsed upstream URLs, reused across transfers: libcurl parses a URL
 * string on every transfer, while a gateway sends the same few URLs over
 * and over. An entry in use by a running transfer is never replaced.
 */
#define GW_URL_CACHE 32
typedef struct {
    char *url;      /* owned */
    CURLU *handle;  /* owned */
    unsigned refs;  /* running transfers using it */
    uint64_t used;  /* for LRU replacement */
} url_entry_t;

struct gw_upstream_multi_s {
    CURLM *multi;
    uv_loop_t *loop;          /* borrowed */
    uv_timer_t timer;
    const gw_netguard_t *guard; /* borrowed (config) */
    const char *ca_file;        /* borrowed (config); NULL: system bundle */
    int no_env_proxy;           /* no proxy variable set at start-up */
    CURL *pool[GW_EASY_POOL_MAX];
    unsigned npool;
    unsigned running;
    uint64_t t_event;         /* uv_hrtime() when the current curl event began */
    url_entry_t urls[GW_URL_CACHE];
    uint64_t url_clock;
    gw__h1_pool_t *h1;          /* owned; NULL: every transfer through libcurl */
    sock_ctx_t **by_fd;       /* owned array; entries owned until their close callback */
    size_t nfd;
    int closing;
};

/*
 * One per socket libcurl opened, from its open-socket callback to its
 * close-socket callback. Keeping the poll handle across transfers matters:
 * when a transfer ends, curl tells us to stop watching the connection
 * (CURL_POLL_REMOVE) and the next transfer on the same connection asks for
 * it again at once. Stopping and restarting the watcher every time cost
 * several epoll_ctl calls per request, so a removed socket stays watched
 * for readability (an idle keep-alive connection the server closes) until
 * it fires or curl closes the socket.
 */
struct sock_ctx_s {
    uv_poll_t poll;
    curl_socket_t fd;
    gw_upstream_multi_t *m;
    int events;   /* what the poll handle watches now */
    int wanted;   /* what curl asked for; 0 after CURL_POLL_REMOVE */
    int foreign;  /* not opened through on_open_socket (the resolver's socket pair) */
};

static void check_done(gw_upstream_multi_t *m);

/* ---- libcurl <-> libuv ------------------------------------------------- */

static void on_sock_close(uv_handle_t *h)
{
    sl_free(SL_CONTAINER_OF((uv_poll_t *)h, sock_ctx_t, poll));
}

static void set_events(sock_ctx_t *ctx, int events);

static void on_poll(uv_poll_t *h, int status, int events)
{
    sock_ctx_t *ctx = SL_CONTAINER_OF(h, sock_ctx_t, poll);
    gw_upstream_multi_t *m = ctx->m;
    int flags = 0;
    int running;
    if (ctx->wanted == 0) {
        /* Idle connection became readable (closed by the server): stop
         * watching; curl notices when it next tries to reuse it. */
        set_events(ctx, 0);
        return;
    }
    /* On an error (a reset) libuv reports no events; let curl read what
     * arrived before it, or the last bytes of a response are lost. */
    m->t_event = uv_hrtime();
    if (status < 0)
        flags = CURL_CSELECT_ERR | CURL_CSELECT_IN | CURL_CSELECT_OUT;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(m->multi, ctx->fd, flags, &running);
    check_done(m);
}

static void set_events(sock_ctx_t *ctx, int events)
{
    if (events == ctx->events)
        return;
    ctx->events = events;
    if (events == 0)
        uv_poll_stop(&ctx->poll);
    else
        uv_poll_start(&ctx->poll, events, on_poll);
}

static sock_ctx_t *track_socket(gw_upstream_multi_t *m, curl_socket_t fd);
static void sock_ctx_close(gw_upstream_multi_t *m, curl_socket_t fd);

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    gw_upstream_multi_t *m = userp;
    sock_ctx_t *ctx = (size_t)s < m->nfd ? m->by_fd[s] : NULL;
    if (ctx == NULL) {
        if (what == CURL_POLL_REMOVE)
            return 0;
        /* A socket curl made itself (the threaded resolver's socket pair):
         * watched from here to its REMOVE, since we never see it closed. */
        ctx = track_socket(m, s);
        if (ctx == NULL)
            return -1;
        ctx->foreign = 1;
    }
    if (what == CURL_POLL_REMOVE) {
        ctx->wanted = 0;
        if (ctx->foreign)
            sock_ctx_close(m, s);
        else
            set_events(ctx, ctx->events ? UV_READABLE : 0);
        return 0;
    }
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    ctx->wanted = events;
    set_events(ctx, events);
    return 0;
}

static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *addr)
{
    gw_upstream_t *up = ud;
    gw_upstream_multi_t *m = up->_multi;
    if (gw_netguard_check(m->guard, &addr->addr) != 0) {
        up->_forbidden = 1;
        return CURL_SOCKET_BAD;
    }
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    if (track_socket(m, fd) == NULL) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    return fd;
}

static sock_ctx_t *track_socket(gw_upstream_multi_t *m, curl_socket_t fd)
{
    if ((size_t)fd >= m->nfd) {
        size_t n = m->nfd ? m->nfd : 64;
        while (n <= (size_t)fd)
            n *= 2;
        m->by_fd = sl_xrealloc(m->by_fd, n * sizeof(*m->by_fd));
        memset(m->by_fd + m->nfd, 0, (n - m->nfd) * sizeof(*m->by_fd));
        m->nfd = n;
    }
    sock_ctx_t *ctx = sl_xcalloc(1, sizeof(*ctx));
    ctx->fd = fd;
    ctx->m = m;
    if (uv_poll_init_socket(m->loop, &ctx->poll, fd) != 0) {
        sl_free(ctx);
        return NULL;
    }
    m->by_fd[fd] = ctx;
    return ctx;
}

static void sock_ctx_close(gw_upstream_multi_t *m, curl_socket_t fd)
{
    sock_ctx_t *ctx = m->by_fd[fd];
    m->by_fd[fd] = NULL;
    /* uv_close takes the fd out of epoll before the socket is closed. */
    uv_close((uv_handle_t *)&ctx->poll, on_sock_close);
}

static int on_close_socket(void *ud, curl_socket_t fd)
{
    gw_upstream_multi_t *m = ud;
    if ((size_t)fd < m->nfd && m->by_fd[fd] != NULL)
        sock_ctx_close(m, fd);
    return close(fd);
}

static void on_timeout(uv_timer_t *t)
{
    gw_upstream_multi_t *m = SL_CONTAINER_OF(t, gw_upstream_multi_t, timer);
    int running;
    m->t_event = uv_hrtime();
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(m);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    gw_upstream_multi_t *m = userp;
    /* Never drive curl from inside its own callback: a 0 ms timer does it. */
    if (timeout_ms < 0)
        uv_timer_stop(&m->timer);
    else
        uv_timer_start(&m->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

gw_upstream_multi_t *gw_upstream_multi_new(uv_loop_t *loop, const gw_netguard_t *guard,
                                           const char *ca_file, int native_http1)
{
    gw_upstream_multi_t *m = sl_xcalloc(1, sizeof(*m));
    m->loop = loop;
    m->guard = guard;
    m->ca_file = ca_file && ca_file[0] ? ca_file : NULL;
    /* libcurl reads the proxy variables on every transfer; when none is set
     * (the usual case) say so once. When one is, curl honours it as usual. */
    static const char *const proxy_vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy",
                                             "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    m->no_env_proxy = 1;
    for (size_t i = 0; i < SL_ARRAY_SIZE(proxy_vars); i++)
        if (getenv(proxy_vars[i]) != NULL)
            m->no_env_proxy = 0;
    /* With a proxy configured, every transfer goes through libcurl, which
     * honours it; the native engine never talks to proxies. */
    if (native_http1 && m->no_env_proxy)
        m->h1 = gw__h1_pool_new(loop, guard);
    m->multi = curl_multi_init();
    SL_ASSERT(m->multi != NULL);
    uv_timer_init(loop, &m->timer);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, 1024L);
    curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    return m;
}

static void on_multi_timer_close(uv_handle_t *h)
{
    gw_upstream_multi_t *m = SL_CONTAINER_OF((uv_timer_t *)h, gw_upstream_multi_t, timer);
    sl_free(m);
}

void gw_upstream_multi_free(gw_upstream_multi_t *m)
{
    m->closing = 1;
    if (m->h1 != NULL)
        gw__h1_pool_free(m->h1);
    for (unsigned i = 0; i < m->npool; i++)
        curl_easy_cleanup(m->pool[i]);
    m->npool = 0;
    for (size_t i = 0; i < GW_URL_CACHE; i++) {
        curl_url_cleanup(m->urls[i].handle);
        sl_free(m->urls[i].url);
    }
    /* Closes cached connections; may call on_curl_socket with REMOVE. */
    curl_multi_cleanup(m->multi);
    for (size_t fd = 0; fd < m->nfd; fd++)
        if (m->by_fd[fd] != NULL)
            sock_ctx_close(m, (curl_socket_t)fd);
    sl_free(m->by_fd);
    uv_close((uv_handle_t *)&m->timer, on_multi_timer_close);
}

unsigned gw_upstream_multi_running(const gw_upstream_multi_t *m)
{
    return m->running + (m->h1 != NULL ? gw__h1_running(m->h1) : 0);
}

/* ---- transfers --------------------------------------------------------- */

static size_t on_header_line(char *p, size_t size, size_t n, void *ud)
{
    gw_upstream_t *up = ud;
    size_t len = size * n;
    if (up->t_head != 0)
        return len; /* trailers: ignored, as by the server side */
    sl_str_t line = sl_str(p, len);
    while (line.len > 0 && (line.base[line.len - 1] == '\n' || line.base[line.len - 1] == '\r'))
        line.len--;
    if (sl_str_starts_with(line, SL_STRLIT("HTTP/"))) {
        /* A new head (after 1xx): start over. */
        long code = 0;
        const char *sp = memchr(line.base, ' ', line.len);
        if (sp != NULL)
            for (const char *q = sp + 1; q < line.base + line.len && *q >= '0' && *q <= '9'; q++)
                code = code * 10 + (*q - '0');
        up->status = (int)code;
        up->nheaders = 0;
        return len;
    }
    if (line.len == 0) {
        if (up->status >= 200 && up->t_head == 0) {
            up->t_head = uv_hrtime();
            up->cbs->on_head(up);
        }
        return len;
    }
    if (up->status < 200)
        return len;
    const char *colon = memchr(line.base, ':', line.len);
    if (colon == NULL)
        return len;
    if (up->nheaders >= GW_UPSTREAM_MAX_HEADERS) {
        up->_body_err = SL_EUPPROTO;
        return 0; /* fails the transfer */
    }
    gw_http_header_t *h =
        gw_http_header_push(up->arena, &up->headers, &up->nheaders, &up->_headers_cap);
    h->name = sl_str_dup(up->arena, sl_str(line.base, (size_t)(colon - line.base)));
    h->value = sl_str_dup(up->arena,
                          sl_str_trim(sl_str(colon + 1, line.len - (size_t)(colon - line.base) - 1)));
    return len;
}

static size_t on_write_body(char *p, size_t size, size_t n, void *ud)
{
    gw_upstream_t *up = ud;
    size_t len = size * n;
    if (up->t_head == 0) {
        /* Some responses (HTTP/0.9-like or odd servers) have no blank line. */
        up->t_head = uv_hrtime();
        up->cbs->on_head(up);
    }
    int r = up->cbs->on_body(up, p, len);
    if (r == 1) {
        up->_paused = 1;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (r < 0) {
        up->_body_err = r;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    return len;
}

static int map_result(gw_upstream_t *up, CURLcode rc)
{
    switch (rc) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return SL_EUPTIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return up->_forbidden ? SL_EFORBIDDENHOST : SL_EUPCONN;
    case CURLE_WRITE_ERROR:
        return up->_body_err ? up->_body_err : SL_EUPSTREAM;
    default:
        /* Reset, truncated body, TLS failure...: before the head it is a
         * connection problem, after it the stream broke. */
        return up->t_head ? SL_EUPSTREAM : SL_EUPCONN;
    }
}

/* A parsed handle for url, or NULL (then the transfer uses the string). */
static url_entry_t *url_get(gw_upstream_multi_t *m, const char *url)
{
    url_entry_t *victim = NULL;
    for (size_t i = 0; i < GW_URL_CACHE; i++) {
        url_entry_t *u = &m->urls[i];
        if (u->url != NULL && strcmp(u->url, url) == 0) {
            u->refs++;
            u->used = ++m->url_clock;
            return u;
        }
        if (u->refs == 0 && (victim == NULL || u->used < victim->used))
            victim = u;
    }
    if (victim == NULL)
        return NULL;
    CURLU *h = curl_url();
    if (h == NULL || curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(h);
        return NULL;
    }
    curl_url_cleanup(victim->handle);
    sl_free(victim->url);
    victim->url = sl_xstrdup(url);
    victim->handle = h;
    victim->refs = 1;
    victim->used = ++m->url_clock;
    return victim;
}

static void release_easy(gw_upstream_multi_t *m, gw_upstream_t *up)
{
    CURL *e = up->_easy;
    if (up->_url != NULL) {
        ((url_entry_t *)up->_url)->refs--;
        up->_url = NULL;
    }
    up->_easy = NULL;
    up->_running = 0;
    m->running--;
    curl_multi_remove_handle(m->multi, e);
    curl_slist_free_all(up->_hdrs);
    up->_hdrs = NULL;
    if (m->npool < GW_EASY_POOL_MAX && !m->closing) {
        m->pool[m->npool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

static void check_done(gw_upstream_multi_t *m)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        gw_upstream_t *up = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&up);
        CURLcode rc = msg->data.result;
        int err = map_result(up, rc);
        if (err != 0 && sl_log_level >= SL_LOG_DEBUG)
            sl__log(SL_LOG_DEBUG, NULL, 0, "upstream transfer failed: %s",
                    curl_easy_strerror(rc));
        release_easy(m, up);
        up->cbs->on_done(up, err);
    }
}

/* A new easy handle with the options every transfer shares. */
static CURL *new_easy(gw_upstream_multi_t *m)
{
    CURL *e = curl_easy_init();
    if (e == NULL)
        return NULL;
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header_line);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write_body);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, m);
    if (m->ca_file != NULL)
        curl_easy_setopt(e, CURLOPT_CAINFO, m->ca_file);
    if (m->no_env_proxy)
        curl_easy_setopt(e, CURLOPT_PROXY, ""); /* spares a getenv() per transfer */
    return e;
}

int gw_upstream_start(gw_upstream_multi_t *m, gw_upstream_t *up, const gw_upstream_req_t *r)
{
    up->_multi = m;
    up->_h1 = NULL;
    up->_native = 0;
    up->status = 0;
    up->nheaders = 0;
    up->_headers_cap = 0;
    up->headers = NULL;
    up->t_head = 0;
    up->t_start = uv_hrtime();
    if (m->h1 != NULL) {
        int taken = gw__h1_start(m->h1, up, r);
        if (taken != 0) {
            up->_native = taken == 1;
            return taken == 1 ? 0 : taken;
        }
    }
    CURL *e = m->npool ? m->pool[--m->npool] : new_easy(m);
    if (e == NULL)
        return SL_ENOMEM;
    up->_easy = e;
    up->status = 0;
    up->nheaders = 0;
    up->_headers_cap = 0;
    up->headers = NULL;
    up->_forbidden = 0;
    up->_body_err = 0;
    up->_paused = 0;
    up->t_head = 0;
    up->t_start = uv_hrtime();

    struct curl_slist *hl = NULL;
    char small[1024];
    int has_type = 0;
    for (size_t i = 0; i < r->nheaders; i++) {
        const gw_http_header_t *h = &r->headers[i];
        size_t n = h->name.len + h->value.len + 3;
        char *line = n <= sizeof(small) ? small : sl_xmalloc(n);
        memcpy(line, h->name.base, h->name.len);
        if (h->value.len == 0) {
            /* "Name:" would tell curl to drop the header; "Name;" sends it empty. */
            line[h->name.len] = ';';
            line[h->name.len + 1] = '\0';
        } else {
            line[h->name.len] = ':';
            line[h->name.len + 1] = ' ';
            memcpy(line + h->name.len + 2, h->value.base, h->value.len);
            line[h->name.len + 2 + h->value.len] = '\0';
        }
        hl = curl_slist_append(hl, line);
        if (line != small)
            sl_free(line);
        if (sl_str_ieq_c(h->name, "content-type"))
            has_type = 1;
    }
    /* curl must not add an Expect: 100-continue round trip of its own, nor
     * a form Content-Type the client never sent. */
    hl = curl_slist_append(hl, "Expect:");
    if (!has_type)
        hl = curl_slist_append(hl, "Content-Type:");
    up->_hdrs = hl;

    url_entry_t *ue = url_get(m, r->url);
    up->_url = ue;
    if (ue != NULL) {
        curl_easy_setopt(e, CURLOPT_CURLU, ue->handle);
    } else {
        curl_easy_setopt(e, CURLOPT_CURLU, NULL);
        curl_easy_setopt(e, CURLOPT_URL, r->url);
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, up);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, up);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, up);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, up);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->connect_timeout_ms);
    int is_post = strcmp(r->method, "POST") == 0;
    if (!is_post && r->body.len == 0) {
        /* GET, and DELETE and the like without a body: no body, no length. */
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST,
                         strcmp(r->method, "GET") != 0 ? r->method : NULL);
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, is_post ? NULL : r->method);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.len ? r->body.base : "");
    }
    if (curl_multi_add_handle(m->multi, e) != CURLM_OK) {
        curl_slist_free_all(hl);
        up->_hdrs = NULL;
        curl_easy_cleanup(e);
        up->_easy = NULL;
        if (ue != NULL)
            ue->refs--;
        up->_url = NULL;
        return SL_EINTERNAL;
    }
    up->_running = 1;
    m->running++;
    /* Send now rather than on the next loop turn: one turn less of latency.
     * Completions are still reported from the timer, never from here. */
    int running;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if ((unsigned)running < m->running)
        uv_timer_start(&m->timer, on_timeout, 0, 0); /* something ended: report it */
    return 0;
}

void gw_upstream_abort(gw_upstream_t *up)
{
    if (!up->_running)
        return;
    if (up->_h1 != NULL) {
        gw__h1_abort(up);
        return;
    }
    release_easy(up->_multi, up);
}

void gw_upstream_resume(gw_upstream_t *up)
{
    if (up->_h1 != NULL) {
        gw__h1_resume(up);
        return;
    }
    if (!up->_running || !up->_paused)
        return;
    up->_paused = 0;
    curl_easy_pause(up->_easy, CURLPAUSE_CONT);
}

uint64_t gw_upstream_event_time(const gw_upstream_t *up)
{
    return up->_native ? gw__h1_event_time(up->_multi->h1) : up->_multi->t_event;
}

sl_str_t gw_upstream_header(const gw_upstream_t *up, const char *name)
{
    return gw_http_header_find(up->headers, up->nheaders, name);
}
