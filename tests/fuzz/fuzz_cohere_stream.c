/*
 * Fuzz target for the Cohere v2 stream translator (dataplane/providers/
 * cohere.c): the input is an upstream Cohere SSE stream, translated for an
 * OpenAI client and for a /v1/messages client (through anthropic_in.c).
 * Each is fed whole, cut in two at a position from the first byte, and
 * (for small inputs) one byte at a time; every feed must give the same
 * bytes, the same result and the same completeness. Every event emitted for
 * the OpenAI client must be a JSON object or [DONE], [DONE] comes last and
 * only in a complete stream, and a complete stream is never also an error.
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "common/sse.h"
#include "dataplane/providers/adapter.h"
#include "dataplane/providers/translate.h"
#include "tests/fuzz/fuzz.h"

#define BYTEWISE_MAX 4096

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
    f->px.trace_id = SL_STRLIT("00000000-0000-4000-8000-000000000002");
    f->px.provider = sl_provider_find(SL_STRLIT("cohere"));
    f->px.adapter = &gw_adapter_cohere;
    f->px.endpoint = GW_EP_CHAT;
    f->px.client = client;
    f->px.stream = 1;
    f->px.include_usage = 1;
    f->px.model = SL_STRLIT("command-a-03-2025");
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

/*
 * Feeds p in pieces: [0, cut) then [cut, n) when step is 0, else step bytes
 * at a time. Stops at the first error, as the pipeline does. Returns the
 * error, or 1 for a complete stream and 0 for an incomplete one.
 */
static int feed(gw_client_format_t client, const char *p, size_t n, size_t cut, size_t step,
                sl_buf_t *all)
{
    fx_t f;
    fx_init(&f, client);
    int r = 0;
    size_t off = 0;
    while (r == 0 && off < n) {
        size_t len = step ? (n - off < step ? n - off : step) : (off < cut ? cut : n - off);
        sl_buf_t out;
        sl_buf_init(&out, 1 << 24);
        r = gw_adapter_cohere.on_stream_data(&f.px, p + off, len, &out);
        CHECK(sl_buf_append(all, out.base, out.len) == 0);
        sl_buf_dispose(&out);
        off += len;
    }
    int complete = r == 0 && gw_adapter_cohere.stream_complete(&f.px);
    if (r != 0) {
        CHECK(r == SL_EUPPROTO || r == SL_EUPSTREAM || r == SL_EUPTIMEOUT || r == SL_EUPTOOBIG);
        CHECK(!f.px.sse_done);
    }
    fx_dispose(&f);
    return r != 0 ? r : complete;
}

typedef struct {
    int done; /* [DONE] seen */
    int after_done;
} check_t;

static int check_chunk(void *ud, const sl_sse_event_t *ev)
{
    check_t *c = ud;
    if (c->done)
        c->after_done = 1;
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
    const char *p = (const char *)data;
    size_t cut = size ? (size_t)data[0] % (size + 1) : 0;
    for (int c = 0; c < 2; c++) {
        gw_client_format_t client = c ? GW_CLIENT_ANTHROPIC : GW_CLIENT_OPENAI;
        sl_buf_t whole, split, bytes;
        sl_buf_init(&whole, 1 << 26);
        sl_buf_init(&split, 1 << 26);
        sl_buf_init(&bytes, 1 << 26);
        int rw = feed(client, p, size, size, 0, &whole);
        int rs = feed(client, p, size, cut, 0, &split);
        CHECK(rw == rs);
        CHECK(same(&whole, &split));
        if (size <= BYTEWISE_MAX) {
            int rb = feed(client, p, size, 0, 1, &bytes);
            CHECK(rw == rb);
            CHECK(same(&whole, &bytes));
        }
        if (client == GW_CLIENT_OPENAI) {
            check_t ck = {0, 0};
            sl_sse_decoder_t d;
            sl_sse_decoder_init(&d, 1 << 26);
            CHECK(sl_sse_feed(&d, whole.base, whole.len, check_chunk, &ck) == 0);
            CHECK(!sl_sse_pending(&d));
            sl_sse_decoder_dispose(&d);
            CHECK(!ck.after_done);
            /* [DONE] is sent exactly when message-end completed the answer. */
            if (ck.done)
                CHECK(rw >= 0);
            if (rw == 1)
                CHECK(ck.done);
        }
        sl_buf_dispose(&whole);
        sl_buf_dispose(&split);
        sl_buf_dispose(&bytes);
    }
    return 0;
}
