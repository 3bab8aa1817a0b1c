#include <poll.h>
#include <pthread.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "controlplane/store/store.h"

struct cp_pool_s {
    char *url; /* owned; may hold a password: never logged */
    int size;
    PGconn **idle; /* stack of connected, free connections */
    int nidle;
    int lent;      /* acquired and not yet released */
    int open;
    uint64_t acquired, waits, connect_failures;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static const sl_log_ctx_t log_ctx = {.action = "talking to Postgres"};

cp_pool_t *cp_pool_new(const char *url, int size)
{
    cp_pool_t *p = sl_xcalloc(1, sizeof(*p));
    p->url = sl_xstrdup(url);
    p->size = size < 1 ? 1 : size;
    p->idle = sl_xcalloc((size_t)p->size, sizeof(PGconn *));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return p;
}

void cp_pool_free(cp_pool_t *p)
{
    if (p == NULL)
        return;
    for (int i = 0; i < p->nidle; i++)
        PQfinish(p->idle[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    sl_free(p->idle);
    sl_free(p->url);
    sl_free(p);
}

/* libpq prints notices (e.g. "relation already exists, skipping") to stderr
 * by default; they are routine here. */
static void quiet_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static PGconn *connect_one(cp_pool_t *p)
{
    PGconn *c = PQconnectdb(p->url);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        /* PQerrorMessage names host and port, never the password. */
        const char *why = c != NULL ? PQerrorMessage(c) : "out of memory";
        char line[256];
        size_t n = strcspn(why, "\n");
        snprintf(line, sizeof(line), "%.*s", (int)(n < 200 ? n : 200), why);
        sl_log(SL_LOG_WARN, &log_ctx, 0, "cannot connect to Postgres: %s", line);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    return c;
}

/* An idle connection should have nothing to read. When Postgres restarts
 * it sends a termination notice and closes, which shows as a readable
 * socket: reading it lets libpq see the connection is gone, so the request
 * gets a fresh one instead of a 503. */
static int went_away(PGconn *c)
{
    struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
    if (pfd.fd < 0)
        return 1;
    if (poll(&pfd, 1, 0) == 0)
        return 0;
    if (PQconsumeInput(c) != 1 || PQstatus(c) != CONNECTION_OK)
        return 1;
    /* Data that is not an ending (a notification): drain it; still good. */
    for (PGnotify *n = PQnotifies(c); n != NULL; n = PQnotifies(c))
        PQfreemem(n);
    return PQstatus(c) != CONNECTION_OK;
}

PGconn *cp_pool_acquire(cp_pool_t *p, int *err)
{
    PGconn *c = NULL;

    pthread_mutex_lock(&p->mu);
    p->acquired++;
    if (p->nidle == 0 && p->lent >= p->size) {
        p->waits++;
        while (p->nidle == 0 && p->lent >= p->size)
            pthread_cond_wait(&p->cv, &p->mu);
    }
    p->lent++;
    if (p->nidle > 0)
        c = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->mu);

    if (c != NULL && PQstatus(c) == CONNECTION_OK && !went_away(c))
        return c;
    if (c != NULL) {
        PQfinish(c);
        pthread_mutex_lock(&p->mu);
        p->open--;
        pthread_mutex_unlock(&p->mu);
    }
    /* Connect outside the lock: a database that is down takes its time to
     * say so, and other threads may have idle connections to use. */
    c = connect_one(p);
    pthread_mutex_lock(&p->mu);
    if (c == NULL) {
        p->connect_failures++;
        p->lent--;
        pthread_cond_signal(&p->cv);
    } else {
        p->open++;
    }
    pthread_mutex_unlock(&p->mu);
    if (c == NULL)
        *err = SL_EDBDOWN;
    return c;
}

void cp_pool_release(cp_pool_t *p, PGconn *c)
{
    int broken = c != NULL && (PQstatus(c) != CONNECTION_OK ||
                               PQtransactionStatus(c) != PQTRANS_IDLE);
    if (c != NULL && broken) {
        PQfinish(c);
        c = NULL;
    }
    pthread_mutex_lock(&p->mu);
    p->lent--;
    if (c != NULL)
        p->idle[p->nidle++] = c;
    else if (broken)
        p->open--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void cp_pool_stats(cp_pool_t *p, cp_pool_stats_t *out)
{
    pthread_mutex_lock(&p->mu);
    out->size = p->size;
    out->open = p->open;
    out->in_use = p->lent;
    out->acquired = p->acquired;
    out->waits = p->waits;
    out->connect_failures = p->connect_failures;
    pthread_mutex_unlock(&p->mu);
}

int cp_q(PGconn *c, PGresult **out, const char *sql, int n, const char *const *vals)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    *out = NULL;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        *out = res;
        return 0;
    }
    if (PQstatus(c) != CONNECTION_OK || res == NULL) {
        PQclear(res);
        return SL_EDBDOWN;
    }
    const char *state = cp_sqlstate(res);
    /* Class 08 (connection exception), 57P01-03 (shutdown / cannot connect
     * now): the server is going away; a retry later will do. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0) {
        PQclear(res);
        return SL_EDBDOWN;
    }
    *out = res;
    return SL_EDB;
}

const char *cp_sqlstate(const PGresult *res)
{
    const char *s = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s != NULL ? s : "";
}

int cp_tx(PGconn *c, const char *verb)
{
    PGresult *res = NULL;
    int ret = cp_q(c, &res, verb, 0, NULL);
    if (ret == SL_EDB)
        sl_log(SL_LOG_ERROR, &log_ctx, 0, "%s failed: %s", verb, PQresultErrorMessage(res));
    PQclear(res);
    return ret;
}
