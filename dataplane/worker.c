#include "dataplane/worker.h"
#include "dataplane/proxy/stage.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/err.h"
#include "common/log.h"
#include "dataplane/server/http.h"
#include "dataplane/telemetry/metrics.h"
#include "dataplane/upstream/upstream.h"
#include "dataplane/sync/sync.h"

#define GW_READ_BUF_SIZE (64u << 10)

gw_worker_t *gw_workers;
int gw_nworkers;

static void on_idle(uv_idle_t *h)
{
    /* Exists only so that the loop polls without blocking while tasks wait. */
}

void gw_worker_defer(gw_worker_t *w, gw_task_t *task)
{
    if (task->queued)
        return;
    task->queued = 1;
    task->next = NULL;
    *w->tasks_tail = task;
    w->tasks_tail = &task->next;
    uv_idle_start(&w->idle, on_idle);
}

static void on_check(uv_check_t *h)
{
    gw_worker_t *w = SL_CONTAINER_OF(h, gw_worker_t, check);
    while (w->tasks != NULL) {
        gw_task_t *t = w->tasks;
        w->tasks = t->next;
        if (w->tasks == NULL)
            w->tasks_tail = &w->tasks;
        t->queued = 0;
        t->fn(t);
    }
    uv_idle_stop(&w->idle);
}

static int open_listener(gw_worker_t *w, const gw_config_t *cfg)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%d", cfg->port);
    int r = getaddrinfo(cfg->host[0] ? cfg->host : NULL, port, &hints, &res);
    if (r != 0) {
        sl_log(SL_LOG_ERROR, NULL, 0, "cannot resolve listen address %s: %s", cfg->host,
               gai_strerror(r));
        return SL_EINVAL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int e = errno;
        freeaddrinfo(res);
        sl_log(SL_LOG_ERROR, NULL, e, "socket");
        return SL_EIO;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    /* Each worker has its own accept queue; the kernel spreads connections. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        int e = errno;
        freeaddrinfo(res);
        close(fd);
        sl_log(SL_LOG_ERROR, NULL, e, "cannot bind %s:%d", cfg->host, cfg->port);
        return SL_EIO;
    }
    freeaddrinfo(res);
    w->listen_fd = fd;
    return 0;
}

int gw_worker_init(gw_worker_t *w, int id, const gw_config_t *cfg)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->cfg = cfg;
    w->tasks_tail = &w->tasks;
    int r = open_listener(w, cfg);
    if (r != 0)
        return r;
    uv_loop_init(&w->loop);
    uv_tcp_init(&w->loop, &w->listener);
    if (uv_tcp_open(&w->listener, w->listen_fd) != 0) {
        close(w->listen_fd);
        return SL_EIO;
    }
    uv_check_init(&w->loop, &w->check);
    uv_idle_init(&w->loop, &w->idle);
    uv_timer_init(&w->loop, &w->drain_timer);
    uv_check_start(&w->check, on_check);
    sl_buf_init(&w->out, 1u << 20);
    w->read_buf_size = GW_READ_BUF_SIZE;
    w->read_buf = sl_xmalloc(w->read_buf_size);
    w->multi = gw_upstream_multi_new(&w->loop, &cfg->netguard, cfg->ca_file,
                                     cfg->upstream_native_http1);
    w->metrics = gw_metrics_new();
    return 0;
}

int gw_worker_port(const gw_worker_t *w)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(w->listen_fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

static void close_cb_noop(uv_handle_t *h)
{
}

static void shut_down(gw_worker_t *w)
{
    gw_upstream_multi_free(w->multi);
    w->multi = NULL;
    uv_close((uv_handle_t *)&w->wakeup, close_cb_noop);
    uv_close((uv_handle_t *)&w->check, close_cb_noop);
    uv_close((uv_handle_t *)&w->idle, close_cb_noop);
    uv_close((uv_handle_t *)&w->drain_timer, close_cb_noop);
}

static void on_drain_tick(uv_timer_t *t)
{
    gw_worker_t *w = SL_CONTAINER_OF(t, gw_worker_t, drain_timer);
    if (w->open_conns == 0 && gw_upstream_multi_running(w->multi) == 0) {
        uv_timer_stop(t);
        shut_down(w);
        return;
    }
    if ((uv_hrtime() - w->drain_started) / 1000000 >= w->cfg->shutdown_grace_ms) {
        sl_log(SL_LOG_WARN, NULL, 0, "worker %d: grace period over, closing %u connections",
               w->id, w->open_conns);
        gw_http_close_all(w);
    } else {
        gw_http_drain(w);
    }
}

static void on_wakeup(uv_async_t *a)
{
    gw_worker_t *w = SL_CONTAINER_OF(a, gw_worker_t, wakeup);
    if (!__atomic_load_n(&w->stop_requested, __ATOMIC_ACQUIRE) || w->draining)
        return;
    w->draining = 1;
    w->drain_started = uv_hrtime();
    uv_close((uv_handle_t *)&w->listener, close_cb_noop);
    gw_http_drain(w);
    uv_timer_start(&w->drain_timer, on_drain_tick, 0, 20);
}

static void *worker_main(void *arg)
{
    gw_worker_t *w = arg;
    /* Workers read the control plane's snapshot in RCU read sections. */
    gw_sync_register_thread();
    uv_run(&w->loop, UV_RUN_DEFAULT);
    gw_sync_unregister_thread();
    return NULL;
}

int gw_worker_start(gw_worker_t *w)
{
    uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    int r = gw_http_listen(w);
    if (r != 0)
        return r;
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return SL_EIO;
    return 0;
}

void gw_worker_stop(gw_worker_t *w)
{
    /* Atomic: libuv's own wake-up is invisible to ThreadSanitizer. */
    __atomic_store_n(&w->stop_requested, 1, __ATOMIC_RELEASE);
    uv_async_send(&w->wakeup);
}

void gw_worker_join(gw_worker_t *w)
{
    pthread_join(w->thread, NULL);
    /* Let the close callbacks run. */
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
}

void gw_worker_dispose(gw_worker_t *w)
{
    gw_http_free_cache(w);
    gw_router_cache_free(w->route_cache);
    w->route_cache = NULL;
    gw_metrics_free(w->metrics);
    sl_free(w->read_buf);
    sl_buf_dispose(&w->out);
}
