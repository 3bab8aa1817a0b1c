/* Circuit breakers per target (breaker.h). */
#include "dataplane/router/breaker.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char key[160];   /* provider, base URL, key hash */
    char label[160]; /* provider and base URL, for /metrics */
    size_t keylen;
    int state;
    int consecutive;
    uint64_t window_start, window_requests, window_failures;
    uint64_t opened_at;
    int probing;     /* half-open: the probe is out */
    uint64_t opens;  /* times it opened */
    double ewma_ms;  /* latency; < 0: not measured */
} breaker_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static breaker_t table[GW_BREAKER_MAX];
static size_t nbreakers;

static breaker_t *find(sl_str_t key, int create, sl_str_t label)
{
    for (size_t i = 0; i < nbreakers; i++)
        if (table[i].keylen == key.len && memcmp(table[i].key, key.base, key.len) == 0)
            return &table[i];
    if (!create || nbreakers == GW_BREAKER_MAX || key.len >= sizeof(table[0].key))
        return NULL;
    breaker_t *b = &table[nbreakers++];
    memset(b, 0, sizeof(*b));
    memcpy(b->key, key.base, key.len);
    b->keylen = key.len;
    b->ewma_ms = -1;
    snprintf(b->label, sizeof(b->label), "%.*s", (int)label.len, label.base);
    for (char *p = b->label; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '_';
    return b;
}

static void open_it(breaker_t *b, uint64_t now)
{
    b->state = GW_BREAKER_OPEN;
    b->opened_at = now;
    b->probing = 0;
    b->opens++;
}

int gw_breaker_allow(sl_str_t key, sl_str_t label, const gw_breaker_cfg_t *c, uint64_t now,
                     int claim)
{
    (void)c;
    pthread_mutex_lock(&lock);
    breaker_t *b = find(key, claim, label);
    int ok = 1;
    if (b != NULL && b->state == GW_BREAKER_OPEN && now >= b->opened_at + c->cooldown_ms) {
        b->state = GW_BREAKER_HALF_OPEN;
        b->probing = 0;
    }
    if (b != NULL && b->state == GW_BREAKER_OPEN)
        ok = 0;
    else if (b != NULL && b->state == GW_BREAKER_HALF_OPEN) {
        ok = !b->probing;
        if (ok && claim)
            b->probing = 1;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

void gw_breaker_report(sl_str_t key, const gw_breaker_cfg_t *c, int ok, uint64_t now)
{
    pthread_mutex_lock(&lock);
    breaker_t *b = find(key, 0, SL_STR_NULL);
    if (b == NULL) {
        pthread_mutex_unlock(&lock);
        return;
    }
    if (b->state == GW_BREAKER_HALF_OPEN) {
        if (ok) {
            b->state = GW_BREAKER_CLOSED;
            b->consecutive = 0;
            b->window_start = now;
            b->window_requests = b->window_failures = 0;
        } else {
            open_it(b, now);
        }
        b->probing = 0;
        pthread_mutex_unlock(&lock);
        return;
    }
    if (b->state == GW_BREAKER_OPEN) { /* a try that started before it opened */
        pthread_mutex_unlock(&lock);
        return;
    }
    if (c->window_ms > 0 && now >= b->window_start + c->window_ms) {
        b->window_start = now;
        b->window_requests = b->window_failures = 0;
    }
    b->window_requests++;
    if (ok) {
        b->consecutive = 0;
    } else {
        b->consecutive++;
        b->window_failures++;
    }
    if (!ok && ((c->failures > 0 && b->consecutive >= c->failures) ||
                (c->error_rate > 0 && b->window_requests >= (uint64_t)c->min_requests &&
                 (double)b->window_failures >= c->error_rate * (double)b->window_requests)))
        open_it(b, now);
    pthread_mutex_unlock(&lock);
}

void gw_breaker_release(sl_str_t key)
{
    pthread_mutex_lock(&lock);
    breaker_t *b = find(key, 0, SL_STR_NULL);
    if (b != NULL)
        b->probing = 0;
    pthread_mutex_unlock(&lock);
}

void gw_breaker_latency_report(sl_str_t key, sl_str_t label, double ms)
{
    pthread_mutex_lock(&lock);
    breaker_t *b = find(key, 1, label);
    if (b != NULL)
        b->ewma_ms = b->ewma_ms < 0 ? ms : 0.8 * b->ewma_ms + 0.2 * ms;
    pthread_mutex_unlock(&lock);
}

double gw_breaker_latency(sl_str_t key)
{
    pthread_mutex_lock(&lock);
    breaker_t *b = find(key, 0, SL_STR_NULL);
    double v = b ? b->ewma_ms : -1;
    pthread_mutex_unlock(&lock);
    return v;
}

int gw_breaker_state(sl_str_t key)
{
    pthread_mutex_lock(&lock);
    breaker_t *b = find(key, 0, SL_STR_NULL);
    int s = b ? b->state : GW_BREAKER_CLOSED;
    pthread_mutex_unlock(&lock);
    return s;
}

int gw_breaker_render(sl_buf_t *out)
{
    int r = 0;
    char line[400];
    r |= sl_buf_append_str(out, SL_STRLIT(
        "# HELP sluice_circuit_breaker_state Circuit breaker of a target: 0 closed, 1 open, "
        "2 half-open.\n# TYPE sluice_circuit_breaker_state gauge\n"));
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nbreakers && r == 0; i++) {
        int n = snprintf(line, sizeof(line), "sluice_circuit_breaker_state{target=\"%s\"} %d\n",
                         table[i].label, table[i].state);
        r |= sl_buf_append(out, line, (size_t)n);
    }
    r |= sl_buf_append_str(out, SL_STRLIT(
        "# HELP sluice_circuit_breaker_opens_total Times a target's circuit breaker opened.\n"
        "# TYPE sluice_circuit_breaker_opens_total counter\n"));
    for (size_t i = 0; i < nbreakers && r == 0; i++) {
        int n = snprintf(line, sizeof(line),
                         "sluice_circuit_breaker_opens_total{target=\"%s\"} %llu\n",
                         table[i].label, (unsigned long long)table[i].opens);
        r |= sl_buf_append(out, line, (size_t)n);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

void gw_breaker_reset(void)
{
    pthread_mutex_lock(&lock);
    nbreakers = 0;
    pthread_mutex_unlock(&lock);
}
