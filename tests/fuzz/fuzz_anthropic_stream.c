/*
 * Fuzz target for the Anthropic stream translators: the input is an
 * upstream Anthropic SSE stream, translated (anthropic.c) for an OpenAI
 * client and, through anthropic_in.c, back into Anthropic events for a
 * /v1/messages client. Each is fed whole and cut in two at a position from
 * the first byte; both feeds must give the same output and the same result,
 * and every chunk emitted for the OpenAI client must be a JSON object or
 * [DONE].
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
    sl_buf_init(&f->req.body, 1 << 20);
    f->px.req = &f->req;
    f->px.trace_id = SL_STRLIT("00000000-0000-4000-8000-000000000001");
    f->px.provider = sl_provider_find(SL_STRLIT("anthropic"));
    f->px.adapter = &gw_adapter_anthropic;
    f->px.client = client;
    f->px.include_usage = 1;
    f->px.model = SL_STRLIT("m");
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

/* Feeds data in two pieces; returns the first error (0 when none). */
static int feed(gw_client_format_t client, const char *p, size_t n, size_t cut, sl_buf_t *all)
{
    fx_t f;
    fx_init(&f, client);
    int r = 0;
    size_t pieces[2] = {cut, n - cut};
    size_t off = 0;
    for (int i = 0; i < 2 && r == 0; i++) {
        sl_buf_t out;
        sl_buf_init(&out, 1 << 24);
        r = gw_adapter_anthropic.on_stream_data(&f.px, p + off, pieces[i], &out);
        CHECK(sl_buf_append(all, out.base, out.len) == 0);
        sl_buf_dispose(&out);
        off += pieces[i];
    }
    int complete = r == 0 && gw_adapter_anthropic.stream_complete(&f.px);
    fx_dispose(&f);
    return r != 0 ? r : complete;
}

static int check_chunk(void *ud, const sl_sse_event_t *ev)
{
    (void)ud;
    if (sl_str_eq(ev->data, SL_STRLIT("[DONE]")))
        return 0;
    json_t *j = json_loadb(ev->data.base, ev->data.len, 0, NULL);
    CHECK(json_is_object(j));
    json_decref(j);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t cut = size ? (size_t)data[0] % (size + 1) : 0;
    for (int c = 0; c < 2; c++) {
        gw_client_format_t client = c ? GW_CLIENT_ANTHROPIC : GW_CLIENT_OPENAI;
        sl_buf_t a, b;
        sl_buf_init(&a, 1 << 26);
        sl_buf_init(&b, 1 << 26);
        int ra = feed(client, p, size, 0, &a);
        int rb = feed(client, p, size, cut, &b);
        CHECK(ra == rb);
        CHECK(a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0));
        if (client == GW_CLIENT_OPENAI) {
            sl_sse_decoder_t d;
            sl_sse_decoder_init(&d, 1 << 26);
            CHECK(sl_sse_feed(&d, a.base, a.len, check_chunk, NULL) == 0);
            CHECK(!sl_sse_pending(&d));
            sl_sse_decoder_dispose(&d);
        }
        sl_buf_dispose(&a);
        sl_buf_dispose(&b);
    }
    return 0;
}
