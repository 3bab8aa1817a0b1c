/*
 * Fuzz target for the Gemini stream translator (dataplane/providers/
 * gemini.c): the input is an upstream streamGenerateContent?alt=sse body,
 * translated for an OpenAI client and for an Anthropic (/v1/messages)
 * client. Each is fed whole, cut in two at a position from the first byte,
 * and (for small inputs) one byte at a time; every feed must give the same
 * bytes, the same result and the same completeness. For the OpenAI client
 * the output must be SSE events of JSON objects, with [DONE] last and only
 * in a stream that is complete.
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

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
    f->px.req = &f->req;
    f->px.trace_id = SL_STRLIT("00000000-0000-4000-8000-000000000001");
    f->px.provider = sl_provider_find(SL_STRLIT("google"));
    f->px.adapter = &gw_adapter_gemini;
    f->px.endpoint = GW_EP_CHAT;
    f->px.client = client;
    f->px.stream = 1;
    f->px.include_usage = 1;
    f->px.model = SL_STRLIT("gemini-2.0-flash");
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
    sl_arena_clear(&f->req.arena);
}

/* Feeds p in pieces (step bytes each, or the first `cut` bytes and the rest when step is 0).
 * Returns the first error, else 1 for a complete stream and 0 for an incomplete one. */
static int feed(gw_client_format_t client, const char *p, size_t n, size_t cut, size_t step,
                sl_buf_t *all)
{
    fx_t f;
    fx_init(&f, client);
    int r = 0;
    size_t off = 0;
    int first = 1;
    while ((off < n || first) && r == 0) {
        size_t len = step ? step : first ? cut : n - off;
        if (len > n - off)
            len = n - off;
        first = 0;
        sl_buf_t out;
        sl_buf_init(&out, 1 << 26);
        r = gw_adapter_gemini.on_stream_data(&f.px, p + off, len, &out);
        CHECK(r == 0 || r == SL_EUPPROTO || r == SL_EUPSTREAM || r == SL_EUPTOOBIG);
        CHECK(sl_buf_append(all, out.base, out.len) == 0);
        sl_buf_dispose(&out);
        off += len;
    }
    if (r == 0) { /* the body ended cleanly: what the proxy does */
        sl_buf_t out;
        sl_buf_init(&out, 1 << 26);
        r = gw_adapter_gemini.stream_end(&f.px, &out);
        CHECK(sl_buf_append(all, out.base, out.len) == 0);
        sl_buf_dispose(&out);
    }
    int complete = r == 0 && gw_adapter_gemini.stream_complete(&f.px);
    /* Complete means the end was emitted; an upstream error names the provider. */
    if (complete)
        CHECK(f.px.sse_done);
    if (r == SL_EUPSTREAM && f.px.stream_error_message != NULL)
        CHECK(strncmp(f.px.stream_error_message, "gemini: ", 8) == 0);
    fx_dispose(&f);
    return r != 0 ? r : complete;
}

typedef struct {
    int done; /* [DONE] seen */
} check_t;

static int check_chunk(void *ud, const sl_sse_event_t *ev)
{
    check_t *c = ud;
    CHECK(!c->done); /* nothing after [DONE] */
    if (sl_str_eq(ev->data, SL_STRLIT("[DONE]"))) {
        c->done = 1;
        return 0;
    }
    json_t *j = json_loadb(ev->data.base, ev->data.len, 0, NULL);
    CHECK(json_is_object(j));
    CHECK(json_is_array(json_object_get(j, "choices")));
    CHECK(json_is_string(json_object_get(j, "id")));
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
        sl_buf_t a, b, bytes;
        sl_buf_init(&a, 1 << 26);
        sl_buf_init(&b, 1 << 26);
        sl_buf_init(&bytes, 1 << 26);
        int ra = feed(client, p, size, size, 0, &a);
        int rb = feed(client, p, size, cut, 0, &b);
        CHECK(ra == rb);
        CHECK(same(&a, &b));
        if (size <= 4096) {
            int rc = feed(client, p, size, 0, 1, &bytes);
            CHECK(ra == rc);
            CHECK(same(&a, &bytes));
        }
        if (client == GW_CLIENT_OPENAI) {
            sl_sse_decoder_t d;
            check_t chk = {0};
            sl_sse_decoder_init(&d, 1 << 26);
            CHECK(sl_sse_feed(&d, a.base, a.len, check_chunk, &chk) == 0);
            CHECK(!sl_sse_pending(&d));
            sl_sse_decoder_dispose(&d);
            /* [DONE] is sent exactly when every started choice finished. */
            if (ra == 1)
                CHECK(chk.done);
        }
        sl_buf_dispose(&a);
        sl_buf_dispose(&b);
        sl_buf_dispose(&bytes);
    }
    return 0;
}
