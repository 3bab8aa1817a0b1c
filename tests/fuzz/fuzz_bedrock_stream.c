/*
 * Fuzz target for the Bedrock ConverseStream translator (dataplane/
 * providers/bedrock.c): the input is a cut selector byte, then an upstream
 * AWS event stream, translated for an OpenAI client and, through
 * anthropic_in.c, for a /v1/messages client. Each is fed whole, cut in two
 * at the selected position, and (for small inputs) one byte at a time; all
 * feeds must give the same output, the same result and the same
 * completeness. What an OpenAI client gets must be whole SSE events whose
 * data is a JSON object or [DONE], [DONE] only last and only in a complete
 * stream; a stream ended by an exception carries the provider's words.
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "common/sse.h"
#include "dataplane/providers/adapter.h"
#include "dataplane/providers/translate.h"
#include "tests/fuzz/fuzz.h"

typedef struct {
    gw_req_t req;
    gw_proxy_t px;
} fx_t;

static void fx_init(fx_t *f, gw_client_format_t client)
{
    memset(f, 0, sizeof(*f));
    sl_arena_init(&f->req.arena);
    sl_buf_init(&f->req.body, 1 << 20);
    f->px.req = &f->req;
    f->px.trace_id = SL_STRLIT("00000000-0000-4000-8000-000000000001");
    f->px.provider = sl_provider_find(SL_STRLIT("bedrock"));
    CHECK(f->px.provider != NULL);
    f->px.adapter = &gw_adapter_bedrock;
    f->px.endpoint = GW_EP_CHAT;
    f->px.client = client;
    f->px.stream = 1;
    f->px.include_usage = 1;
    f->px.model = SL_STRLIT("anthropic.claude-3-haiku-20240307-v1:0");
    f->px.up.status = 200;
    sl_buf_init(&f->px.resp, 1 << 20);
    sl_sse_decoder_init(&f->px.sse, 1 << 20);
    gw_tr_ids(&f->px);
    f->px.tr.created = 1;
}

static void fx_dispose(fx_t *f)
{
    sl_sse_decoder_dispose(&f->px.sse);
    sl_buf_dispose(&f->px.resp);
    sl_buf_dispose(&f->req.body);
    sl_arena_clear(&f->req.arena);
}

typedef struct {
    int err;      /* first error of on_stream_data, 0 when none */
    int complete; /* stream_complete after a clean end */
    int done;     /* px->sse_done */
} result_t;

/* Feeds the stream in pieces (step > 0: that size; else [0,cut) and [cut,n)). */
static result_t feed(gw_client_format_t client, const char *p, size_t n, size_t cut, size_t step,
                     sl_buf_t *all)
{
    fx_t f;
    fx_init(&f, client);
    result_t res = {0, 0, 0};
    for (size_t off = 0; off < n && res.err == 0;) {
        size_t k = n - off;
        if (step > 0 && step < k)
            k = step;
        else if (step == 0 && off < cut)
            k = cut - off;
        sl_buf_t out;
        sl_buf_init(&out, 1 << 24);
        res.err = gw_adapter_bedrock.on_stream_data(&f.px, p + off, k, &out);
        CHECK(sl_buf_append(all, out.base, out.len) == 0);
        sl_buf_dispose(&out);
        off += k;
    }
    CHECK(res.err == 0 || res.err == SL_EUPPROTO || res.err == SL_EUPSTREAM ||
          res.err == SL_EUPTOOBIG);
    if (res.err == SL_EUPSTREAM) {
        const char *m = f.px.stream_error_message;
        CHECK(m != NULL && strncmp(m, "bedrock: ", 9) == 0);
        CHECK(sl_buf_append_str(all, sl_str_c(m)) == 0);
    }
    res.complete = res.err == 0 && gw_adapter_bedrock.stream_complete(&f.px);
    res.done = f.px.sse_done;
    /* Complete means the end was sent. */
    if (res.complete)
        CHECK(res.done);
    fx_dispose(&f);
    return res;
}

typedef struct {
    int done; /* [DONE] seen */
    int n;
} check_t;

static int check_chunk(void *ud, const sl_sse_event_t *ev)
{
    check_t *c = ud;
    CHECK(!c->done); /* nothing after [DONE] */
    c->n++;
    if (sl_str_eq(ev->data, SL_STRLIT("[DONE]"))) {
        c->done = 1;
        return 0;
    }
    json_t *j = json_loadb(ev->data.base, ev->data.len, 0, NULL);
    CHECK(json_is_object(j));
    CHECK(json_is_array(json_object_get(j, "choices")));
    json_decref(j);
    return 0;
}

static int same(const sl_buf_t *a, const sl_buf_t *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->base, b->base, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    size_t cut = (size_t)data[0] * (n + 1) / 256;
    for (int c = 0; c < 2; c++) {
        gw_client_format_t client = c ? GW_CLIENT_ANTHROPIC : GW_CLIENT_OPENAI;
        sl_buf_t a, b, d;
        sl_buf_init(&a, 1 << 26);
        sl_buf_init(&b, 1 << 26);
        sl_buf_init(&d, 1 << 26);
        result_t ra = feed(client, p, n, n, 0, &a);
        result_t rb = feed(client, p, n, cut, 0, &b);
        CHECK(ra.err == rb.err && ra.complete == rb.complete && ra.done == rb.done);
        CHECK(same(&a, &b));
        if (n <= 4096) {
            result_t rd = feed(client, p, n, 0, 1, &d);
            CHECK(ra.err == rd.err && ra.complete == rd.complete && ra.done == rd.done);
            CHECK(same(&a, &d));
        }
        if (client == GW_CLIENT_OPENAI && ra.err != SL_EUPSTREAM) {
            /* (With SL_EUPSTREAM the provider's words were appended after the events.) */
            sl_sse_decoder_t dec;
            check_t ck = {0, 0};
            sl_sse_decoder_init(&dec, 1 << 26);
            CHECK(sl_sse_feed(&dec, a.base, a.len, check_chunk, &ck) == 0);
            CHECK(!sl_sse_pending(&dec));
            CHECK(ck.done == ra.done);
            sl_sse_decoder_dispose(&dec);
        }
        sl_buf_dispose(&a);
        sl_buf_dispose(&b);
        sl_buf_dispose(&d);
    }
    return 0;
}
