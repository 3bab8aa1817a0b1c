/*
 * Fuzz target for the buffered translators: the input is a provider's
 * answer body, handed to every adapter's on_response as a 200 and as an
 * error status (chat and embeddings), for an OpenAI and an Anthropic
 * client; and, as a request body, to the /v1/messages converter and then to
 * every adapter's build_request. Whatever the input: no crash, no leak, a
 * translated answer is valid JSON, a refused request says why.
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "common/sse.h"
#include "dataplane/providers/adapter.h"
#include "dataplane/providers/anthropic_in.h"
#include "dataplane/providers/translate.h"
#include "tests/fuzz/fuzz.h"

typedef struct {
    gw_req_t req;
    gw_proxy_t px;
    gw_http_header_t hdrs[4];
    gw_http_header_t up_hdrs[2];
} fx_t;

static const char *const providers[] = {"openai", "anthropic", "google", "vertex-ai",
                                        "bedrock", "cohere", "azure-openai"};

static void fx_init(fx_t *f, const char *provider, gw_client_format_t client,
                    gw_endpoint_t ep, int status)
{
    memset(f, 0, sizeof(*f));
    sl_arena_init(&f->req.arena);
    sl_buf_init(&f->req.body, 1 << 20);
    f->req.path = SL_STRLIT("/v1/chat/completions");
    f->req.headers = f->hdrs;
    f->hdrs[0] = (gw_http_header_t){SL_STRLIT("x-sluice-aws-access-key-id"), SL_STRLIT("AKIDEXAMPLE")};
    f->hdrs[1] = (gw_http_header_t){SL_STRLIT("x-sluice-aws-secret-access-key"), SL_STRLIT("secret")};
    f->hdrs[2] = (gw_http_header_t){SL_STRLIT("x-sluice-aws-region"), SL_STRLIT("us-east-1")};
    f->hdrs[3] = (gw_http_header_t){SL_STRLIT("x-sluice-azure-resource-name"), SL_STRLIT("r")};
    f->req.nheaders = 4;
    gw_proxy_t *px = &f->px;
    px->req = &f->req;
    px->trace_id = SL_STRLIT("00000000-0000-4000-8000-000000000001");
    px->provider = sl_provider_find(sl_str_c(provider));
    CHECK(px->provider != NULL);
    px->provider_name = sl_str_c(px->provider->name);
    px->adapter = gw_adapter_for(px->provider->format);
    px->api_key = SL_STRLIT("k");
    px->client = client;
    px->endpoint = ep;
    px->endpoint_name = "chat.completions";
    px->model = SL_STRLIT("m-1");
    px->up.status = status;
    f->up_hdrs[0] = (gw_http_header_t){SL_STRLIT("content-type"), SL_STRLIT("application/json")};
    f->up_hdrs[1] = (gw_http_header_t){SL_STRLIT("x-amzn-ErrorType"),
                                       SL_STRLIT("ThrottlingException:http://x")};
    px->up.headers = f->up_hdrs;
    px->up.nheaders = 2;
    sl_buf_init(&px->resp, 1 << 24);
    sl_sse_decoder_init(&px->sse, 1 << 20);
}

static void fx_dispose(fx_t *f)
{
    sl_sse_decoder_dispose(&f->px.sse);
    sl_buf_dispose(&f->px.resp);
    sl_buf_dispose(&f->req.body);
    sl_arena_clear(&f->req.arena);
}

static void answer(const char *provider, gw_client_format_t client, gw_endpoint_t ep, int status,
                   const char *p, size_t n)
{
    fx_t f;
    fx_init(&f, provider, client, ep, status);
    CHECK(sl_buf_append(&f.px.resp, p, n) == 0);
    int r = f.px.adapter->on_response ? f.px.adapter->on_response(&f.px) : 0;
    CHECK(r == 0 || (r < 0 && sl_err_status(r) >= 400));
    if (r == 0 && f.px.tr.resp_ct != NULL) {
        /* Anything the adapter wrote itself is JSON. */
        json_t *j = json_loadb(f.px.resp.base, f.px.resp.len, 0, NULL);
        CHECK(json_is_object(j));
        json_decref(j);
    }
    fx_dispose(&f);
}

static void request(const char *provider, const char *p, size_t n)
{
    fx_t f;
    fx_init(&f, provider, GW_CLIENT_ANTHROPIC, GW_EP_MESSAGES, 200);
    json_t *body = json_loadb(p, n, 0, NULL);
    if (json_is_object(body)) {
        f.px.body = body;
        sl_arena_defer(&f.req.arena, sl_json_decref_cb, body);
        CHECK(sl_buf_append(&f.req.body, p, n) == 0);
        int r = gw_anthropic_in_request(&f.px);
        if (r != 0) {
            CHECK(r == SL_EINVAL && f.px.error_message != NULL);
        } else {
            CHECK(f.px.endpoint == GW_EP_CHAT && json_is_object(f.px.body));
            r = f.px.adapter->build_request(&f.px);
            if (r == 0) {
                CHECK(f.px.url != NULL);
                CHECK(f.px.up_body.len > 0);
            } else {
                CHECK(r < 0 && f.px.error_message != NULL);
            }
        }
    } else {
        json_decref(body);
    }
    fx_dispose(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    for (size_t i = 0; i < SL_ARRAY_SIZE(providers); i++) {
        for (int c = 0; c < 2; c++) {
            gw_client_format_t client = c ? GW_CLIENT_ANTHROPIC : GW_CLIENT_OPENAI;
            answer(providers[i], client, GW_EP_CHAT, 200, p, size);
            answer(providers[i], client, GW_EP_CHAT, 429, p, size);
        }
        answer(providers[i], GW_CLIENT_OPENAI, GW_EP_EMBEDDINGS, 200, p, size);
        request(providers[i], p, size);
    }
    return 0;
}
