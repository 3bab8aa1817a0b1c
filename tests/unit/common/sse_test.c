/*
 * Tests for common/sse.c: the WHATWG event-stream rules, resumability (the
 * same events whether a stream is fed whole, byte by byte, or cut anywhere),
 * the max_event cap, callback stops, and the encoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/sse.h"

#define MAX_EVENT (64 * 1024)

/* Records events as one string, so that two runs compare with memcmp. */
typedef struct {
    sl_buf_t log;
    int n;
    int stop_at; /* return stop_ret from the stop_at-th event (0: never) */
    int stop_ret;
} rec_t;

static void rec_init(rec_t *r)
{
    memset(r, 0, sizeof(*r));
    sl_buf_init(&r->log, 1 << 24);
}

static void rec_dispose(rec_t *r)
{
    sl_buf_dispose(&r->log);
}

static void put(sl_buf_t *b, char tag, sl_str_t s)
{
    char head[32];
    int n = snprintf(head, sizeof(head), "%c%zu:", tag, s.len);
    assert_int_equal(sl_buf_append(b, head, (size_t)n), 0);
    assert_int_equal(sl_buf_append_str(b, s), 0);
    assert_int_equal(sl_buf_append(b, ";", 1), 0);
}

static void put_event(sl_buf_t *b, sl_str_t event, sl_str_t data, const sl_str_t *id)
{
    put(b, 'E', event);
    put(b, 'D', data);
    if (id != NULL)
        put(b, 'I', *id);
    else
        assert_int_equal(sl_buf_append(b, "I-\n", 3), 0);
}

static int on_event(void *ud, const sl_sse_event_t *ev)
{
    rec_t *r = ud;
    r->n++;
    put_event(&r->log, ev->event, ev->data, ev->has_id ? &ev->id : NULL);
    if (r->stop_at != 0 && r->n == r->stop_at)
        return r->stop_ret;
    return 0;
}

/*
 * Feeds p[0..n) cut at the given positions (ascending). Stops at the first
 * non-zero return and gives it back. *pending gets sl_sse_pending at the end.
 */
static int feed_cuts(const char *p, size_t n, const size_t *cuts, size_t ncuts, size_t max,
                     rec_t *r, int *pending)
{
    sl_sse_decoder_t d;
    sl_sse_decoder_init(&d, max);
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : n;
        rc = sl_sse_feed(&d, p + at, end - at, on_event, r);
        at = end;
    }
    if (pending != NULL)
        *pending = sl_sse_pending(&d);
    sl_sse_decoder_dispose(&d);
    return rc;
}

static int feed_whole(const char *p, size_t n, size_t max, rec_t *r)
{
    return feed_cuts(p, n, NULL, 0, max, r, NULL);
}

static int feed_bytes(const char *p, size_t n, size_t max, rec_t *r)
{
    sl_sse_decoder_t d;
    sl_sse_decoder_init(&d, max);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = sl_sse_feed(&d, p + i, 1, on_event, r);
    sl_sse_decoder_dispose(&d);
    return rc;
}

static void assert_same_log(const rec_t *a, const rec_t *b, const char *what, size_t where)
{
    if (a->log.len != b->log.len ||
        (a->log.len > 0 && memcmp(a->log.base, b->log.base, a->log.len) != 0))
        fail_msg("%s (at %zu) gave different events:\n--- whole\n%.*s\n--- this way\n%.*s", what,
                 where, (int)a->log.len, a->log.base, (int)b->log.len, b->log.base);
}

/*
 * Decodes the stream whole, byte by byte, cut at every position and cut at
 * every pair of positions (short streams); all must give the same events and
 * return code. Leaves the whole-stream result in *whole; returns its rc.
 */
static int decode_all_ways(const char *p, size_t n, size_t max, rec_t *whole)
{
    int rc = feed_whole(p, n, max, whole);
    rec_t r;

    rec_init(&r);
    assert_int_equal(feed_bytes(p, n, max, &r), rc);
    assert_same_log(whole, &r, "byte by byte", 0);
    rec_dispose(&r);

    for (size_t k = 0; k <= n; k++) {
        rec_init(&r);
        int rk = feed_cuts(p, n, &k, 1, max, &r, NULL);
        if (rk != rc)
            fail_msg("cut at %zu: rc %d, whole %d", k, rk, rc);
        assert_same_log(whole, &r, "one cut", k);
        rec_dispose(&r);
    }
    if (n <= 120) {
        for (size_t k1 = 1; k1 < n; k1++)
            for (size_t k2 = k1; k2 < n; k2++) {
                size_t cuts[2] = {k1, k2};
                rec_init(&r);
                assert_int_equal(feed_cuts(p, n, cuts, 2, max, &r, NULL), rc);
                assert_same_log(whole, &r, "two cuts", k1 * 1000 + k2);
                rec_dispose(&r);
            }
    }
    /* Random pieces of 1..17 bytes, deterministic. */
    uint32_t seed = 12345;
    for (int it = 0; it < 200; it++) {
        size_t cuts[4096], nc = 0, at = 0;
        for (;;) {
            seed = seed * 1103515245u + 12345u;
            at += 1 + (seed >> 16) % 17;
            if (at >= n || nc == SL_ARRAY_SIZE(cuts))
                break;
            cuts[nc++] = at;
        }
        rec_init(&r);
        assert_int_equal(feed_cuts(p, n, cuts, nc, max, &r, NULL), rc);
        assert_same_log(whole, &r, "random pieces", (size_t)it);
        rec_dispose(&r);
    }
    return rc;
}

typedef struct {
    const char *event;
    const char *data;
    const char *id; /* NULL: no id */
} exp_t;

/* Checks that the stream gives exactly these events, decoded every way. */
static void check_stream_n(const char *p, size_t n, const exp_t *exp, size_t nexp)
{
    rec_t whole, want;
    rec_init(&whole);
    rec_init(&want);
    for (size_t i = 0; i < nexp; i++) {
        sl_str_t id = sl_str_c(exp[i].id);
        put_event(&want.log, sl_str_c(exp[i].event), sl_str_c(exp[i].data), exp[i].id ? &id : NULL);
    }
    assert_int_equal(decode_all_ways(p, n, MAX_EVENT, &whole), 0);
    if (whole.n != (int)nexp)
        fail_msg("%d events, expected %zu:\n%.*s", whole.n, nexp, (int)whole.log.len,
                 whole.log.base);
    assert_same_log(&want, &whole, "expected vs whole", 0);
    rec_dispose(&whole);
    rec_dispose(&want);
}

#define CHECK(lit, ...)                                                                            \
    do {                                                                                           \
        const exp_t e_[] = {__VA_ARGS__};                                                          \
        check_stream_n(lit, sizeof(lit) - 1, e_, SL_ARRAY_SIZE(e_));                               \
    } while (0)
#define CHECK_NONE(lit) check_stream_n(lit, sizeof(lit) - 1, NULL, 0)

/* ---- the WHATWG rules ---- */

static void lf_line_ends(void **state)
{
    CHECK("data: hello\n\n", {"", "hello", NULL});
    CHECK("data: a\n\ndata: b\n\n", {"", "a", NULL}, {"", "b", NULL});
}

static void crlf_line_ends(void **state)
{
    CHECK("data: a\r\ndata: b\r\n\r\n", {"", "a\nb", NULL});
    CHECK("data: x\r\n\r\ndata: y\r\n\r\n", {"", "x", NULL}, {"", "y", NULL});
}

static void cr_line_ends(void **state)
{
    CHECK("data: a\rdata: b\r\r", {"", "a\nb", NULL});
    CHECK("data: x\r\rdata: y\r\r", {"", "x", NULL}, {"", "y", NULL});
}

static void mixed_line_ends(void **state)
{
    /* "\n\r\n" is a line end then an empty line; "\r\r\n" likewise. */
    CHECK("data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r\n", {"", "a\nb\nc", NULL}, {"", "d", NULL});
    /* "\n\r" is two line ends: the empty line dispatches. */
    CHECK("data: 1\n\rdata: 2\n\n", {"", "1", NULL}, {"", "2", NULL});
}

static void comments(void **state)
{
    CHECK(": ping\n\ndata: x\n: mid comment\ndata: y\n\n", {"", "x\ny", NULL});
    CHECK_NONE(": only a comment\n\n:\n\n");
    CHECK(":\ndata: z\n:data: no\n\n", {"", "z", NULL});
}

static void multiline_data(void **state)
{
    CHECK("data: line1\ndata: line2\ndata: line3\n\n", {"", "line1\nline2\nline3", NULL});
    CHECK("data: a\ndata:\ndata: b\n\n", {"", "a\n\nb", NULL});
    CHECK("data: {\"a\":\ndata: 1}\n\n", {"", "{\"a\":\n1}", NULL});
}

static void data_without_colon(void **state)
{
    CHECK("data\n\n", {"", "", NULL});
    CHECK("data\ndata\n\n", {"", "\n", NULL});
    CHECK("data: x\ndata\n\n", {"", "x\n", NULL});
}

static void one_leading_space_stripped(void **state)
{
    CHECK("data:  two\n\n", {"", " two", NULL});
    CHECK("data:none\n\n", {"", "none", NULL});
    CHECK("data: \n\n", {"", "", NULL});
    CHECK("data:\t tab\n\n", {"", "\t tab", NULL});
    CHECK("data: trailing \n\n", {"", "trailing ", NULL});
    CHECK("data: a: b\n\n", {"", "a: b", NULL});
    CHECK("event:  spaced\ndata: x\n\n", {" spaced", "x", NULL});
}

static void event_and_id_fields(void **state)
{
    CHECK("event: message_start\nid: 42\ndata: {}\n\n", {"message_start", "{}", "42"});
    /* The event type is per event; the last event id persists. */
    CHECK("event: a\nid: 7\ndata: 1\n\ndata: 2\n\n", {"a", "1", "7"}, {"", "2", "7"});
    CHECK("id: 1\ndata: x\n\nid: 2\ndata: y\n\n", {"", "x", "1"}, {"", "y", "2"});
    /* The last of several fields wins. */
    CHECK("event: a\nevent: b\ndata: x\n\n", {"b", "x", NULL});
    /* "id" alone sets an empty id. */
    CHECK("id\ndata: x\n\n", {"", "x", ""});
    /* Order of fields within the event doesn't matter. */
    CHECK("data: x\nevent: late\n\n", {"late", "x", NULL});
}

static void id_with_nul_ignored(void **state)
{
    CHECK("id: 1\0 2\ndata: x\n\n", {"", "x", NULL});
    CHECK("id: 5\ndata: a\n\nid: 6\0\ndata: b\n\n", {"", "a", "5"}, {"", "b", "5"});
}

static void empty_data_not_dispatched(void **state)
{
    CHECK_NONE("event: ping\n\n");
    CHECK_NONE("id: 5\n\n");
    CHECK_NONE("retry: 1000\n\n");
    CHECK_NONE("\n\n\n\n");
    /* The event type of an undispatched event doesn't leak into the next one. */
    CHECK("event: ping\n\ndata: x\n\n", {"", "x", NULL});
    /* But the id was set. */
    CHECK("id: 9\n\ndata: x\n\n", {"", "x", "9"});
}

static void unknown_fields_ignored(void **state)
{
    CHECK("retry: 1000\nfoo: bar\ndata: x\nbaz\n\n", {"", "x", NULL});
    /* Field names are case-sensitive. */
    CHECK_NONE("Data: x\n\n");
    CHECK_NONE("DATA: x\n\n");
    CHECK("Event: e\ndata: x\n\n", {"", "x", NULL});
    CHECK_NONE(" data: x\n\n");
    CHECK_NONE("data : x\n\n");
}

static void unterminated_event_not_dispatched(void **state)
{
    CHECK_NONE("data: x");
    CHECK_NONE("data: x\n");
    CHECK("data: x\n\ndata: y\n", {"", "x", NULL});
}

static void bom_at_start_ignored(void **state)
{
    CHECK("\xEF\xBB\xBF"
          "data: x\n\n",
          {"", "x", NULL});
    CHECK("\xEF\xBB\xBF"
          "\n"
          "data: y\n\n",
          {"", "y", NULL});
    /* Only one BOM, only at the start. */
    CHECK_NONE("\xEF\xBB\xBF\xEF\xBB\xBF"
               "data: x\n\n");
    CHECK("data: x\n\n\xEF\xBB\xBF"
          "data: y\n\n",
          {"", "x", NULL});
    /* Not a BOM: a prefix of one stays part of the first line. */
    CHECK_NONE("\xEF\xBB"
               "data: x\n\n");
    CHECK_NONE("\xEF"
               "data: x\n\n");
    CHECK("\xEF\n"
          "data: x\n\n",
          {"", "x", NULL});
    CHECK_NONE("\xEF\xBB\xBF");
}

static int feed_strs(const char *const *pieces, size_t n, rec_t *r)
{
    sl_sse_decoder_t d;
    sl_sse_decoder_init(&d, MAX_EVENT);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = sl_sse_feed(&d, pieces[i], strlen(pieces[i]), on_event, r);
    sl_sse_decoder_dispose(&d);
    return rc;
}

static void bom_split_over_feeds(void **state)
{
    static const char *const a[] = {"\xEF", "\xBB", "\xBF", "data: x\n\n"};
    static const char *const b[] = {"\xEF\xBB", ("\xBF"
                                                 "data: x\n\n")};
    static const char *const c[] = {"\xEF",
                                    ("\xBB\xBF"
                                     "data: x\n"),
                                    "", "\n"};
    static const char *const d[] = {"", "\xEF", "", "\xBB", "", "\xBF", "data: x\n\n"};
    const char *const *all[] = {a, b, c, d};
    size_t lens[] = {SL_ARRAY_SIZE(a), SL_ARRAY_SIZE(b), SL_ARRAY_SIZE(c), SL_ARRAY_SIZE(d)};
    for (size_t i = 0; i < SL_ARRAY_SIZE(all); i++) {
        rec_t r;
        rec_init(&r);
        assert_int_equal(feed_strs(all[i], lens[i], &r), 0);
        if (r.n != 1)
            fail_msg("split %zu: %d events", i, r.n);
        assert_memory_equal(r.log.base, "E0:;D1:x;I-\n", r.log.len);
        rec_dispose(&r);
    }
    /* A split BOM prefix followed by something else is data of the first line. */
    static const char *const e[] = {"\xEF\xBB", "data: x\n\n", "data: y\n\n"};
    rec_t r;
    rec_init(&r);
    assert_int_equal(feed_strs(e, SL_ARRAY_SIZE(e), &r), 0);
    assert_int_equal(r.n, 1);
    assert_memory_equal(r.log.base, "E0:;D1:y;I-\n", r.log.len);
    rec_dispose(&r);
}

/* ---- realistic streams, cut everywhere ---- */

static const char openai_stream[] =
    "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1717000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":\"\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1717000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},"
    "\"finish_reason\":null}]}\n\n"
    ": keep-alive\n\n"
    "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1717000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" w\\u00f6rld "
    "\\n\\\"quoted\\\" \xc3\xa9\xe2\x9c\x93\"},\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1717000000,"
    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
    "\"stop\"}],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}}\n\n"
    "data: [DONE]\n\n";

static const char anthropic_stream[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\","
    "\"role\":\"assistant\",\"content\":[],\"model\":\"claude-3-5-sonnet-20241022\","
    "\"stop_reason\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hello\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"!\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
    "\"usage\":{\"output_tokens\":15}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

/* Same stream with CRLF, CR, comments, ids, a BOM and multi-line data. */
static const char mixed_stream[] = "\xEF\xBB\xBF"
                                   ": hello\r\n"
                                   "retry: 3000\r\n"
                                   "event: message_start\r\n"
                                   "id: 1\r\n"
                                   "data: {\"a\":\r\n"
                                   "data: 1}\r\n"
                                   "\r\n"
                                   "event: delta\r"
                                   "data:x\r"
                                   "\r"
                                   "event: ignored\n"
                                   "\n"
                                   "data\n"
                                   "\n"
                                   "id: 2\n"
                                   "data:  spaced\n"
                                   "\n"
                                   "data: tail";

static void openai_stream_every_split(void **state)
{
    rec_t r;
    rec_init(&r);
    assert_int_equal(decode_all_ways(openai_stream, sizeof(openai_stream) - 1, MAX_EVENT, &r), 0);
    assert_int_equal(r.n, 5);
    assert_non_null(memmem(r.log.base, r.log.len, "D6:[DONE];I-\n", 13));
    /* The last event is [DONE] and every other one is a whole JSON chunk. */
    const char *last = r.log.base + r.log.len - strlen("E0:;D6:[DONE];I-\n");
    assert_memory_equal(last, "E0:;D6:[DONE];I-\n", strlen("E0:;D6:[DONE];I-\n"));
    static const char utf[] = "\\\"quoted\\\" \xc3\xa9\xe2\x9c\x93";
    assert_non_null(memmem(r.log.base, r.log.len, utf, sizeof(utf) - 1));
    rec_dispose(&r);
}

static void anthropic_stream_every_split(void **state)
{
    rec_t r;
    rec_init(&r);
    assert_int_equal(decode_all_ways(anthropic_stream, sizeof(anthropic_stream) - 1, MAX_EVENT, &r),
                     0);
    assert_int_equal(r.n, 8);
    static const char *const names[] = {
        "message_start",       "content_block_start", "ping",          "content_block_delta",
        "content_block_delta", "content_block_stop",  "message_delta", "message_stop"};
    const char *p = r.log.base;
    for (size_t i = 0; i < SL_ARRAY_SIZE(names); i++) {
        char want[64];
        snprintf(want, sizeof(want), "E%zu:%s;D", strlen(names[i]), names[i]);
        assert_memory_equal(p, want, strlen(want));
        p = memchr(p, '\n', (size_t)(r.log.base + r.log.len - p));
        assert_non_null(p);
        p++;
    }
    rec_dispose(&r);
}

static void mixed_stream_every_split(void **state)
{
    static const exp_t exp[] = {
        {"message_start", "{\"a\":\n1}", "1"},
        {"delta", "x", "1"},
        {"", "", "1"},
        {"", " spaced", "2"},
    };
    check_stream_n(mixed_stream, sizeof(mixed_stream) - 1, exp, SL_ARRAY_SIZE(exp));
    int pending = 0;
    rec_t r;
    rec_init(&r);
    assert_int_equal(
        feed_cuts(mixed_stream, sizeof(mixed_stream) - 1, NULL, 0, MAX_EVENT, &r, &pending), 0);
    assert_true(pending); /* "data: tail" never ended */
    rec_dispose(&r);
}

/* ---- limits, stops, pending ---- */

static void max_event_cap(void **state)
{
    char line[300];
    memcpy(line, "data: ", 6);
    memset(line + 6, 'x', 200);
    memcpy(line + 206, "\n\n", 2);
    rec_t r;

    /* A 206-byte line with max_event 64: too big, whole or in pieces. */
    rec_init(&r);
    assert_int_equal(decode_all_ways(line, 208, 64, &r), SL_ETOOBIG);
    assert_int_equal(r.n, 0);
    rec_dispose(&r);

    /* The same with max_event 512 is fine. */
    rec_init(&r);
    assert_int_equal(decode_all_ways(line, 208, 512, &r), 0);
    assert_int_equal(r.n, 1);
    rec_dispose(&r);

    /* Many short data lines adding up past the cap. */
    char many[2000];
    size_t n = 0;
    for (int i = 0; i < 40; i++) {
        memcpy(many + n, "data: 0123456789\n", 17);
        n += 17;
    }
    many[n++] = '\n';
    rec_init(&r);
    assert_int_equal(decode_all_ways(many, n, 256, &r), SL_ETOOBIG);
    assert_int_equal(r.n, 0);
    rec_dispose(&r);
    rec_init(&r);
    assert_int_equal(decode_all_ways(many, n, 1024, &r), 0);
    assert_int_equal(r.n, 1);
    rec_dispose(&r);

    /* Events before the too-big one are delivered. */
    static const char s[] = "data: ok\n\ndata: 0123456789012345678901234567890123456789\n\n";
    rec_init(&r);
    assert_int_equal(decode_all_ways(s, sizeof(s) - 1, 32, &r), SL_ETOOBIG);
    assert_int_equal(r.n, 1);
    rec_dispose(&r);
}

static void max_event_line_without_end(void **state)
{
    /* An endless line must not grow the decoder past max_event. */
    sl_sse_decoder_t d;
    sl_sse_decoder_init(&d, 1000);
    char chunk[100];
    memset(chunk, 'a', sizeof(chunk));
    rec_t r;
    rec_init(&r);
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++)
        rc = sl_sse_feed(&d, chunk, sizeof(chunk), on_event, &r);
    assert_int_equal(rc, SL_ETOOBIG);
    assert_true(d.line.cap <= 1000);
    assert_true(d.data.cap <= 1000);
    sl_sse_decoder_dispose(&d);
    rec_dispose(&r);
}

static void callback_stop(void **state)
{
    static const char s[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    rec_t r;

    rec_init(&r);
    r.stop_at = 2;
    r.stop_ret = 7;
    assert_int_equal(feed_whole(s, sizeof(s) - 1, MAX_EVENT, &r), 7);
    assert_int_equal(r.n, 2);
    rec_dispose(&r);

    rec_init(&r);
    r.stop_at = 2;
    r.stop_ret = 7;
    assert_int_equal(feed_bytes(s, sizeof(s) - 1, MAX_EVENT, &r), 7);
    assert_int_equal(r.n, 2);
    rec_dispose(&r);

    /* Negative values (an SL_E* code) come back as they are. */
    rec_init(&r);
    r.stop_at = 1;
    r.stop_ret = SL_EUPPROTO;
    assert_int_equal(feed_whole(s, sizeof(s) - 1, MAX_EVENT, &r), SL_EUPPROTO);
    assert_int_equal(r.n, 1);
    rec_dispose(&r);
}

static int pending_after(const char *s)
{
    int pending = -1;
    rec_t r;
    rec_init(&r);
    assert_int_equal(feed_cuts(s, strlen(s), NULL, 0, MAX_EVENT, &r, &pending), 0);
    rec_dispose(&r);
    return pending;
}

static void pending(void **state)
{
    assert_false(pending_after(""));
    assert_true(pending_after("data: x"));
    assert_true(pending_after("data: x\n"));
    assert_true(pending_after("event: e\n"));
    assert_true(pending_after("data: x\n\ndata: y"));
    assert_false(pending_after("data: x\n\n"));
    assert_false(pending_after("data: x\r\r"));
    assert_false(pending_after(": ping\n"));
    assert_false(pending_after("event: e\n\n"));
    /* A CR at the very end ends the line. */
    assert_false(pending_after("data: x\r\n\r"));
}

/* ---- encoder ---- */

static void round_trip(const char *event, const char *data)
{
    sl_buf_t out;
    sl_buf_init(&out, 1 << 20);
    assert_int_equal(sl_sse_encode(&out, sl_str_c(event), sl_str_c(data)), 0);
    exp_t e = {event, data, NULL};
    check_stream_n(out.base, out.len, &e, 1);
    sl_buf_dispose(&out);
}

static void encode_exact_bytes(void **state)
{
    sl_buf_t out;
    sl_buf_init(&out, 1024);
    assert_int_equal(sl_sse_encode(&out, SL_STRLIT("e"), SL_STRLIT("a\nb")), 0);
    assert_true(sl_str_eq(sl_buf_str(&out), SL_STRLIT("event: e\ndata: a\ndata: b\n\n")));
    sl_buf_reset(&out);
    assert_int_equal(sl_sse_encode(&out, SL_STR_NULL, SL_STRLIT("[DONE]")), 0);
    assert_true(sl_str_eq(sl_buf_str(&out), SL_STRLIT("data: [DONE]\n\n")));
    sl_buf_reset(&out);
    assert_int_equal(sl_sse_encode(&out, SL_STR_NULL, SL_STR_NULL), 0);
    assert_true(sl_str_eq(sl_buf_str(&out), SL_STRLIT("data: \n\n")));
    sl_buf_dispose(&out);
}

static void encode_round_trip(void **state)
{
    round_trip("", "hello");
    round_trip("content_block_delta", "{\"type\":\"content_block_delta\"}");
    round_trip("", "line1\nline2");
    round_trip("multi", "a\n\nb\n\n\nc");
    round_trip("", "ends with newline\n");
    round_trip("", "\n");
    round_trip("", "\n\n");
    round_trip("", "");
    round_trip("", " leading space");
    round_trip("", "  two leading spaces");
    round_trip("", ": looks like a comment");
    round_trip("", "data: looks like a field");
    round_trip("x", "event: y");
    round_trip("", "utf-8 \xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80");
}

static void encode_respects_cap(void **state)
{
    sl_buf_t out;
    sl_buf_init(&out, 10);
    assert_int_equal(sl_sse_encode(&out, SL_STR_NULL, SL_STRLIT("0123456789")), SL_ETOOBIG);
    assert_true(out.len <= 10);
    sl_buf_dispose(&out);
}

static void encode_failure_leaves_out_unchanged(void **state)
{
    /*
     * The proxy relays whatever is in its output buffer when encoding fails;
     * a half-written event there reaches the client as a truncated event.
     */
    sl_buf_t out;
    sl_buf_init(&out, 40);
    assert_int_equal(sl_sse_encode(&out, SL_STR_NULL, SL_STRLIT("first")), 0);
    size_t len = out.len; /* "data: first\n\n" */
    assert_int_equal(sl_sse_encode(&out, SL_STRLIT("ev"), SL_STRLIT("a\nb\nc\nd\ne\nf")),
                     SL_ETOOBIG);
    size_t left = out.len - len;
    sl_buf_dispose(&out);
    if (left != 0)
        fail_msg("a failed encode left %zu bytes behind", left);
}

static void encode_cr_in_data_stays_one_event(void **state)
{
    /*
     * A CR is a line end to every SSE reader. Data containing one must come
     * back as one event with its line breaks, never as extra fields or events.
     */
    static const struct {
        const char *name, *in, *out;
    } cases[] = {
        {"a CR b", "a\rb", "a\nb"},
        {"a CRLF b", "a\r\nb", "a\nb"},
        {"x CR CR data: injected", "x\r\rdata: injected", "x\n\ndata: injected"},
        {"x CR event: evil", "x\revent: evil", "x\nevent: evil"},
    };
    char why[2048] = "";
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        sl_buf_t out;
        sl_buf_init(&out, 1024);
        assert_int_equal(sl_sse_encode(&out, SL_STR_NULL, sl_str_c(cases[i].in)), 0);
        rec_t r, want;
        rec_init(&r);
        rec_init(&want);
        assert_int_equal(feed_whole(out.base, out.len, MAX_EVENT, &r), 0);
        put_event(&want.log, SL_STR_NULL, sl_str_c(cases[i].out), NULL);
        size_t wl = strlen(why);
        if (r.n != 1 || r.log.len != want.log.len ||
            memcmp(r.log.base, want.log.base, r.log.len) != 0)
            snprintf(why + wl, sizeof(why) - wl, "\n  data \"%s\" decodes to %d event(s): %.*s",
                     cases[i].name, r.n, (int)r.log.len, r.log.base);
        rec_dispose(&r);
        rec_dispose(&want);
        sl_buf_dispose(&out);
    }
    if (why[0] != '\0')
        fail_msg("%s", why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lf_line_ends),
        cmocka_unit_test(crlf_line_ends),
        cmocka_unit_test(cr_line_ends),
        cmocka_unit_test(mixed_line_ends),
        cmocka_unit_test(comments),
        cmocka_unit_test(multiline_data),
        cmocka_unit_test(data_without_colon),
        cmocka_unit_test(one_leading_space_stripped),
        cmocka_unit_test(event_and_id_fields),
        cmocka_unit_test(id_with_nul_ignored),
        cmocka_unit_test(empty_data_not_dispatched),
        cmocka_unit_test(unknown_fields_ignored),
        cmocka_unit_test(unterminated_event_not_dispatched),
        cmocka_unit_test(bom_at_start_ignored),
        cmocka_unit_test(bom_split_over_feeds),
        cmocka_unit_test(openai_stream_every_split),
        cmocka_unit_test(anthropic_stream_every_split),
        cmocka_unit_test(mixed_stream_every_split),
        cmocka_unit_test(max_event_cap),
        cmocka_unit_test(max_event_line_without_end),
        cmocka_unit_test(callback_stop),
        cmocka_unit_test(pending),
        cmocka_unit_test(encode_exact_bytes),
        cmocka_unit_test(encode_round_trip),
        cmocka_unit_test(encode_respects_cap),
        cmocka_unit_test(encode_failure_leaves_out_unchanged),
        cmocka_unit_test(encode_cr_in_data_stays_one_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
