/*
 * Fuzz target for the AWS event-stream decoder (dataplane/providers/
 * eventstream.c). The first input byte picks a cut position, the second a
 * cap; the rest is decoded whole, cut in two, and byte by byte, which must
 * all give the same messages, return code and pending state. Every decoded
 * message is then re-encoded with gw_es_encode_headers: the encoding is
 * canonical, so the result must be exactly the bytes the decoder consumed,
 * and decoding it again must give the same messages.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "dataplane/providers/eventstream.h"
#include "tests/fuzz/fuzz.h"

typedef struct {
    sl_buf_t log;     /* fields, payload and headers of each message */
    sl_buf_t encoded; /* the messages re-encoded */
    int n;
} rec_t;

static void rec_init(rec_t *r)
{
    memset(r, 0, sizeof(*r));
    sl_buf_init(&r->log, 1 << 26);
    sl_buf_init(&r->encoded, 1 << 26);
}

static void rec_dispose(rec_t *r)
{
    sl_buf_dispose(&r->log);
    sl_buf_dispose(&r->encoded);
}

static void put(sl_buf_t *b, char tag, sl_str_t s)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "%c%zu:", tag, s.len);
    CHECK(sl_buf_append(b, head, (size_t)n) == 0);
    CHECK(sl_buf_append_str(b, s) == 0);
}

static int on_msg(void *ud, const gw_es_message_t *m)
{
    rec_t *r = ud;
    gw_es_header_t hs[64];
    size_t nh = 0, off = 0;
    gw_es_header_t h;
    r->n++;
    put(&r->log, 'M', m->message_type);
    put(&r->log, 'E', m->event_type);
    put(&r->log, 'X', m->exception_type);
    put(&r->log, 'C', m->content_type);
    put(&r->log, 'c', m->error_code);
    put(&r->log, 'm', m->error_message);
    put(&r->log, 'P', m->payload);
    while (gw_es_header_next(m, &off, &h)) {
        char v[64];
        int n = snprintf(v, sizeof(v), "t%d i%lld ", h.type, (long long)h.i);
        CHECK(h.type >= GW_ES_BOOL_TRUE && h.type <= GW_ES_UUID);
        CHECK(h.name.len >= 1 && h.name.len <= 255);
        CHECK(h.type != GW_ES_UUID || h.bytes.len == 16);
        put(&r->log, 'H', h.name);
        CHECK(sl_buf_append(&r->log, v, (size_t)n) == 0);
        put(&r->log, 'B', h.bytes);
        if (nh < SL_ARRAY_SIZE(hs))
            hs[nh] = h;
        nh++;
    }
    /* The decoder validated the block: the walk ends exactly at its end. */
    CHECK(off == m->headers.len);
    /* Known fields come from string headers named like them. */
    if (m->message_type.len > 0)
        CHECK(m->message_type.base >= m->headers.base &&
              m->message_type.base + m->message_type.len <= m->headers.base + m->headers.len);
    CHECK(m->payload.base == m->headers.base + m->headers.len);
    if (nh <= SL_ARRAY_SIZE(hs)) {
        CHECK(gw_es_encode_headers(&r->encoded, hs, nh, m->payload) == 0);
    } else {
        /* Too many headers for the array: copy the message as it was framed. */
        const char *start = m->headers.base - GW_ES_PRELUDE_LEN;
        CHECK(sl_buf_append(&r->encoded, start,
                            GW_ES_MIN_MESSAGE + m->headers.len + m->payload.len) == 0);
    }
    return 0;
}

static int decode(const char *p, size_t n, size_t cut, size_t step, size_t max, rec_t *r,
                  int *pending)
{
    gw_es_decoder_t d;
    gw_es_decoder_init(&d, max);
    int rc = 0;
    if (p == NULL)
        p = "";
    if (step > 0) {
        for (size_t i = 0; i < n && rc == 0; i += step)
            rc = gw_es_feed(&d, p + i, n - i < step ? n - i : step, on_msg, r);
    } else {
        rc = gw_es_feed(&d, p, cut, on_msg, r);
        if (rc == 0)
            rc = gw_es_feed(&d, p + cut, n - cut, on_msg, r);
    }
    CHECK(rc == 0 || rc == SL_EUPPROTO || rc == SL_ETOOBIG);
    *pending = gw_es_pending(&d);
    CHECK(d._buf.len <= (max > GW_ES_MIN_MESSAGE ? max : GW_ES_MIN_MESSAGE));
    /* Errors are sticky. */
    if (rc != 0)
        CHECK(gw_es_feed(&d, "x", 1, on_msg, r) == rc);
    gw_es_decoder_dispose(&d);
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
    CHECK(whole.n == split.n);
    CHECK(same(&whole.log, &split.log));
    if (rw == 0)
        CHECK(pw == ps);
    if (n <= 8192) {
        int rb = decode(p, n, 0, 1, max, &bytes, &pb);
        CHECK(rw == rb);
        CHECK(same(&whole.log, &bytes.log));
        if (rw == 0)
            CHECK(pw == pb);
    }

    /* The re-encoded messages are the consumed prefix of the input, byte for byte. */
    CHECK(whole.encoded.len <= n);
    CHECK(whole.encoded.len == 0 || memcmp(whole.encoded.base, p, whole.encoded.len) == 0);
    if (rw == 0 && !pw)
        CHECK(whole.encoded.len == n);
    int ra = decode(whole.encoded.base, whole.encoded.len, whole.encoded.len, 0, max, &again, &pa);
    CHECK(ra == 0 && pa == 0);
    CHECK(again.n == whole.n);
    CHECK(same(&whole.log, &again.log));

    rec_dispose(&whole);
    rec_dispose(&split);
    rec_dispose(&bytes);
    rec_dispose(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *p = (const char *)data + 2;
    size_t n = size - 2;
    size_t cut = (size_t)data[0] * (n + 1) / 256;
    /* Mostly a roomy cap; sometimes a small one so that SL_ETOOBIG is reached. */
    size_t max = data[1] < 224 ? (size_t)1 << 20 : (size_t)(data[1] - 224) * 8;
    run(p, n, cut, max);
    return 0;
}
