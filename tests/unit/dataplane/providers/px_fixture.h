/*
 * A request and its proxy state built by hand, for adapter unit tests: no
 * worker, no sockets, just what the adapters read (headers, body, provider,
 * the upstream status and headers, px->resp) and write (url, up_headers,
 * up_body, px->resp). Include after cmocka.h.
 */
#ifndef SL_TEST_PX_FIXTURE_H
#define SL_TEST_PX_FIXTURE_H

#include <jansson.h>
#include <string.h>

#include "common/json.h"
#include "common/sse.h"
#include "dataplane/providers/adapter.h"
#include "common/provider.h"
#include "dataplane/providers/translate.h"
#include "dataplane/proxy/stage.h"

typedef struct {
    gw_req_t req;
    gw_proxy_t px;
    gw_http_header_t hdrs[16];
    gw_http_header_t up_hdrs[4];
} px_fixture_t;

/* A request to `provider` with the given JSON body (parsed into px.body). */
static inline px_fixture_t *px_new(const char *provider, const char *path, const char *body_json)
{
    px_fixture_t *f = sl_xcalloc(1, sizeof(*f));
    sl_arena_init(&f->req.arena);
    sl_buf_init(&f->req.body, 64u << 20);
    f->req.path = sl_str_c(path);
    f->req.query = SL_STR_NULL;
    f->req.headers = f->hdrs;
    f->req.method = 3; /* HTTP_POST */
    gw_proxy_t *px = &f->px;
    px->req = &f->req;
    px->trace_id = SL_STRLIT("00000000-0000-4000-8000-000000000001");
    px->provider = sl_provider_find(sl_str_c(provider));
    assert_non_null(px->provider);
    px->provider_name = sl_str_c(px->provider->name);
    px->adapter = gw_adapter_for(px->provider->format);
    px->api_key = SL_STRLIT("sk-test-key");
    px->endpoint = GW_EP_CHAT;
    px->endpoint_name = "chat.completions";
    sl_buf_init(&px->resp, 64u << 20);
    sl_buf_init(&px->out, 1u << 20);
    sl_sse_decoder_init(&px->sse, 1u << 20);
    if (body_json != NULL) {
        assert_int_equal(sl_buf_append_str(&f->req.body, sl_str_c(body_json)), 0);
        json_error_t e;
        px->body = json_loads(body_json, 0, &e);
        if (px->body == NULL)
            fail_msg("bad test JSON: %s", e.text);
        sl_arena_defer(&f->req.arena, sl_json_decref_cb, px->body);
        json_t *m = json_object_get(px->body, "model");
        if (json_is_string(m))
            px->model = sl_str(json_string_value(m), json_string_length(m));
        px->stream = json_is_true(json_object_get(px->body, "stream"));
        px->include_usage = json_is_true(
            json_object_get(json_object_get(px->body, "stream_options"), "include_usage"));
    }
    return f;
}

static inline void px_header(px_fixture_t *f, const char *name, const char *value)
{
    assert_true(f->req.nheaders < 16);
    f->hdrs[f->req.nheaders].name = sl_str_c(name);
    f->hdrs[f->req.nheaders].value = sl_str_c(value);
    f->req.nheaders++;
}

/* The upstream's answer head: status and content type. */
static inline void px_upstream(px_fixture_t *f, int status, const char *content_type)
{
    f->px.up.status = status;
    f->up_hdrs[0].name = SL_STRLIT("content-type");
    f->up_hdrs[0].value = sl_str_c(content_type);
    f->px.up.headers = f->up_hdrs;
    f->px.up.nheaders = 1;
}

/* A buffered upstream body in px->resp. */
static inline void px_resp(px_fixture_t *f, const char *body)
{
    sl_buf_reset(&f->px.resp);
    assert_int_equal(sl_buf_append_str(&f->px.resp, sl_str_c(body)), 0);
}

static inline void px_free(px_fixture_t *f)
{
    sl_sse_decoder_dispose(&f->px.sse);
    sl_buf_dispose(&f->px.resp);
    sl_buf_dispose(&f->px.out);
    sl_buf_dispose(&f->req.body);
    sl_arena_clear(&f->req.arena);
    sl_free(f);
}

/* Asserts that two JSON texts are equal as JSON values. */
static inline void assert_json_eq(sl_str_t got, const char *want)
{
    json_t *g = json_loadb(got.base, got.len, 0, NULL);
    json_t *w = json_loads(want, 0, NULL);
    if (w == NULL)
        fail_msg("bad expected JSON: %s", want);
    if (g == NULL || !json_equal(g, w)) {
        char *ws = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);
        char *gs = g ? json_dumps(g, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        print_error("want %s\n got %s\n", ws, gs ? gs : "(not JSON)");
        fail();
    }
    json_decref(g);
    json_decref(w);
}

#endif
