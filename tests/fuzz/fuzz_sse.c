/*
 * Fuzz target for the SSE decoder (common/sse.c). The input is decoded whole,
 * cut in two at a position derived from its first byte, and byte by byte;
 * all three must give the same events, return code and pending state. The
 * events are then re-encoded with sl_sse_encode and decoded again, which
 * must give back the same event types and data.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/sse.h"
#include "tests/fuzz/fuzz.h"


typedef struct {
    sl_buf_t all;     /* event, data and id of each event */
    sl_buf_t typed;   /* event and data only (what the encoder carries) */
    sl_buf_t encoded; /* the events re-encoded */
    int n;
} rec_t;

static void rec_init(rec_t *r)
{
    memset(r, 0, sizeof(*r));
    sl_buf_init(&r->all, 1 << 26);
    sl_buf_init(&r->typed, 1 << 26);
    sl_buf_init(&r->encoded, 1 << 26);
}

static void rec_dispose(rec_t *r)
{
    sl_buf_dispose(&r->all);
    sl_buf_dispose(&r->typed);
    sl_buf_dispose(&r->encoded);
}

static void put(sl_buf_t *b, char tag, sl_str_t s)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "%c%zu:", tag, s.len);
    CHECK(sl_buf_append(b, head, (size_t)n) == 0);
    CHECK(sl_buf_append_str(b, s) == 0);
}

static int on_event(void *ud, const sl_sse_event_t *ev)
{
    rec_t *r = ud;
    r->n++;
    /* Views are valid only during the call: everything is copied. */
    put(&r->all, 'E', ev->event);
    put(&r->all, 'D', ev->data);
    if (ev->has_id)
        put(&r->all, 'I', ev->id);
    else
        put(&r->all, '-', SL_STR_NULL);
    put(&r->typed, 'E', ev->event);
    put(&r->typed, 'D', ev->data);
    /* Decoded values never hold line ends. */
    CHECK(memchr(ev->event.base ? ev->event.base : "", '\r', ev->event.len) == NULL);
    CHECK(memchr(ev->event.base ? ev->event.base : "", '\n', ev->event.len) == NULL);
    CHECK(memchr(ev->data.base ? ev->data.base : "", '\r', ev->data.len) == NULL);
    CHECK(sl_sse_encode(&r->encoded, ev->event, ev->data) == 0);
    return 0;
}

static int decode(const char *p, size_t n, size_t cut, size_t step, size_t max, rec_t *r,
                  int *pending)
{
    sl_sse_decoder_t d;
    sl_sse_decoder_init(&d, max);
    int rc = 0;
    if (p == NULL)
        p = ""; /* an empty buffer has no base */
    if (step > 0) {
        for (size_t i = 0; i < n && rc == 0; i += step)
            rc = sl_sse_feed(&d, p + i, n - i < step ? n - i : step, on_event, r);
    } else {
        rc = sl_sse_feed(&d, p, cut, on_event, r);
        if (rc == 0)
            rc = sl_sse_feed(&d, p + cut, n - cut, on_event, r);
    }
    CHECK(rc == 0 || rc == SL_ETOOBIG);
    *pending = sl_sse_pending(&d);
    CHECK(d.line.len <= max && d.data.len <= max);
    sl_sse_decoder_dispose(&d);
    return rc;
}

static int same(const sl_buf_t *a, const sl_buf_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->base, b->base, a->len) == 0);
}

static void run(const char *p, size_t n, size_t cut, size_t max)
{
    rec_t whole, split, bytes, again;
    int pw, ps, pb, pa;
    rec_init(&whole);
    rec_init(&split);
    rec_init(&bytes);
    rec_init(&again);

    int rw = decode(p, n, n, 0, max, &whole, &pw);
    int rs = decode(p, n, cut, 0, max, &split, &ps);
    CHECK(rw == rs);
    CHECK(same(&whole.all, &split.all));
    if (rw == 0)
        CHECK(pw == ps);
    if (n <= 8192) {
        int rb = decode(p, n, 0, 1, max, &bytes, &pb);
        CHECK(rw == rb);
        CHECK(same(&whole.all, &bytes.all));
        if (rw == 0)
            CHECK(pw == pb);
    }

    /* Re-encoded, the events decode to themselves (ids are not encoded). */
    size_t max2 = 4 * max + 64;
    int ra = decode(whole.encoded.base, whole.encoded.len, whole.encoded.len, 0, max2, &again, &pa);
    CHECK(ra == 0);
    CHECK(pa == 0);
    CHECK(again.n == whole.n);
    CHECK(same(&whole.typed, &again.typed));

    rec_dispose(&whole);
    rec_dispose(&split);
    rec_dispose(&bytes);
    rec_dispose(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    size_t cut = (size_t)data[0] * (n + 1) / 256;
    run(p, n, cut, 1 << 20);
    run(p, n, cut, 64);
    return 0;
}
