/**
 * A worker: one thread, one libuv loop, one listening socket (SO_REUSEPORT),
 * one curl multi handle. Workers share nothing but the read-only config and
 * their metrics (read by /metrics under a per-worker lock).
 *
 * Deferred work: code that must not run inside a libcurl callback or inside
 * the HTTP parser (closing a connection, removing a transfer, resuming a
 * pipelined connection) queues a gw_task_t; the worker runs the queue once
 * per loop iteration from a check handle, with an idle handle keeping the
 * loop from blocking while the queue is non-empty.
 */
#ifndef GW_WORKER_H
#define GW_WORKER_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "dataplane/config.h"

typedef struct gw_worker_s gw_worker_t;
typedef struct gw_task_s gw_task_t;
typedef struct gw_upstream_multi_s gw_upstream_multi_t;
typedef struct gw_metrics_s gw_metrics_t;

struct gw_task_s {
    gw_task_t *next;
    void (*fn)(gw_task_t *task);
    int queued;
};

struct gw_worker_s {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t wakeup;   /* shutdown request from the main thread */
    uv_check_t check;    /* runs deferred tasks */
    uv_idle_t idle;      /* keeps the loop spinning while tasks are queued */
    uv_timer_t drain_timer;
    gw_task_t *tasks;    /* FIFO via tasks_tail */
    gw_task_t **tasks_tail;
    const gw_config_t *cfg; /* borrowed */
    gw_upstream_multi_t *multi; /* owned */
    gw_metrics_t *metrics;      /* owned */
    void *route_cache;          /* owned: parsed routing configs (router/), or NULL */
    sl_buf_t out;               /* scratch for response heads; reused */
    char *read_buf;             /* owned; shared by all connections of the worker */
    size_t read_buf_size;
    void *conns;                /* intrusive list of connections (server/) */
    void *req_free;              /* recycled gw_req_t objects (server/) */
    unsigned nreq_free;
    _Atomic unsigned open_conns; /* read by /metrics on other threads */
    _Atomic unsigned inflight;   /* requests between head and response end */
    uint64_t drain_started;      /* uv_hrtime() when draining began */
    int id;
    int listen_fd;
    int draining;
    int stop_requested;          /* set by the main thread; __atomic access */
    pthread_t thread;
};

/** Sets up the worker (loop, listener socket bound with SO_REUSEPORT). */
int gw_worker_init(gw_worker_t *w, int id, const gw_config_t *cfg);
/** Starts the worker's thread. */
int gw_worker_start(gw_worker_t *w);
/** Asks the worker to drain and stop (thread-safe, async-signal unsafe). */
void gw_worker_stop(gw_worker_t *w);
/** Joins the thread and closes its loop. */
void gw_worker_join(gw_worker_t *w);
/**
 * Frees what the worker owns. Only after every worker is joined: /metrics
 * on one worker reads the others' metrics.
 */
void gw_worker_dispose(gw_worker_t *w);
/** Queues a task for this iteration (loop thread only; idempotent). */
void gw_worker_defer(gw_worker_t *w, gw_task_t *task);
/** The port the listener is bound to (for --listen host:0). */
int gw_worker_port(const gw_worker_t *w);
/** Every worker (for /metrics); set by main before the workers start. */
extern gw_worker_t *gw_workers;
extern int gw_nworkers;

#endif
