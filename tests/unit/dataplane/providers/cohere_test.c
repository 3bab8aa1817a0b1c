/*
 * Tests for dataplane/providers/cohere.c: the v2 chat and embed requests
 * built from OpenAI ones, buffered answers and errors translated back, and
 * the stream translator (text, tool plan and tool calls, usage, errors,
 * truncation), which must give the same bytes whether a stream is fed
 * whole, one byte at a time or cut at any point. The .c file is included
 * to reach its statics; the proxy state is built by hand around a request
 * whose arena is cleared by the teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"
#include "dataplane/providers/cohere.c"

#define MODEL "command-a-03-2025"

typedef struct {
    gw_req_t req;
    gw_proxy_t px;
    gw_http_header_t hdrs[8];
    gw_http_header_t up_hdrs[2];
} fx_t;

static int setup(void **state)
{
    fx_t *f = sl_xcalloc(1, sizeof(*f));
    sl_arena_init(&f->req.arena);
    f->req.headers = f->hdrs;
    f->req._headers_cap = SL_ARRAY_SIZE(f->hdrs);
    f->px.req = &f->req;
    f->px.provider = sl_provider_find(SL_STRLIT("cohere"));
    assert_non_null(f->px.provider);
    f->px.adapter = &gw_adapter_cohere;
    f->px.endpoint = GW_EP_CHAT;
    f->px.api_key = SL_STRLIT("co-test-key");
    f->px.trace_id = SL_STRLIT("trace-1");
    /* Fixed ids so that every run of a stream gives the same bytes. */
    f->px.tr.id = "chatcmpl-test";
    f->px.tr.created = 1700000000;
    f->px.tr.model = MODEL;
    f->px.up.status = 200;
    f->px.up.headers = f->up_hdrs;
    sl_buf_init(&f->px.resp, 1u << 20);
    sl_buf_init(&f->px.out, 1u << 22);
    sl_sse_decoder_init(&f->px.sse, 1u << 16);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    sl_buf_dispose(&f->px.resp);
    sl_buf_dispose(&f->px.out);
    sl_sse_decoder_dispose(&f->px.sse);
    sl_arena_clear(&f->req.arena);
    sl_free(f);
    return 0;
}

/* The client's body, parsed and tied to the request like proxy.c does. */
static void set_body(fx_t *f, const char *text)
{
    json_error_t e;
    json_t *b = json_loads(text, 0, &e);
    if (b == NULL)
        fail_msg("test body: %s at %d:%d", e.text, e.line, e.column);
    sl_arena_defer(&f->req.arena, sl_json_decref_cb, b);
    f->px.body = b;
    json_t *m = json_object_get(b, "model");
    if (json_is_string(m))
        f->px.model = sl_str(json_string_value(m), json_string_length(m));
    f->px.stream = json_is_true(json_object_get(b, "stream"));
    f->px.include_usage =
        json_is_true(json_object_get(json_object_get(b, "stream_options"), "include_usage"));
}

static void add_header(fx_t *f, const char *name, const char *value)
{
    assert_true(f->req.nheaders < SL_ARRAY_SIZE(f->hdrs));
    f->hdrs[f->req.nheaders].name = sl_str_c(name);
    f->hdrs[f->req.nheaders].value = sl_str_c(value);
    f->req.nheaders++;
}

static void set_upstream(fx_t *f, int status, const char *ct)
{
    f->px.up.status = status;
    f->up_hdrs[0].name = SL_STRLIT("content-type");
    f->up_hdrs[0].value = sl_str_c(ct);
    f->px.up.nheaders = 1;
}

static json_t *up_body(fx_t *f)
{
    json_t *j = json_loadb(f->px.up_body.base, f->px.up_body.len, 0, NULL);
    assert_non_null(j);
    return j;
}

static void assert_json_eq(json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("got:  %s\nwant: %s\n", g, w);
        free(g);
        free(w);
        fail();
    }
    json_decref(want);
}

static const char *header(fx_t *f, const char *name)
{
    for (size_t i = 0; i < f->px.n_up_headers; i++)
        if (sl_str_ieq_c(f->px.up_headers[i].name, name))
            return f->px.up_headers[i].value.base;
    return NULL;
}

/* ---- chat requests ---------------------------------------------------------- */

static void chat_request_full(void **state)
{
    fx_t *f = *state;
    set_body(f, "{\"model\":\"" MODEL "\",\"stream\":true,"
                "\"messages\":["
                "{\"role\":\"system\",\"content\":\"Be brief.\"},"
                "{\"role\":\"developer\",\"content\":[{\"type\":\"text\","
                "\"text\":\"No emojis.\"}]},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is this?\"},"
                "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBO\","
                "\"detail\":\"low\"}}]},"
                "{\"role\":\"assistant\",\"content\":\"Let me look it up.\",\"tool_calls\":[{"
                "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"lookup\","
                "\"arguments\":\"{\\\"q\\\":\\\"png\\\"}\"}}]},"
                "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"a logo\"},"
                "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"A logo.\"}]},"
                "{\"role\":\"tool\",\"tool_call_id\":\"call_2\","
                "\"content\":[{\"type\":\"text\",\"text\":\"x\"}]},"
                "{\"role\":\"user\",\"content\":\"Thanks\"}],"
                "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\","
                "\"description\":\"Looks up\",\"parameters\":{\"type\":\"object\","
                "\"properties\":{\"q\":{\"type\":\"string\"}}},\"strict\":true}},"
                "{\"type\":\"function\",\"function\":{\"name\":\"noargs\"}}],"
                "\"tool_choice\":\"required\",\"temperature\":0.2,\"max_tokens\":100,"
                "\"stop\":\"END\",\"seed\":7,\"frequency_penalty\":0.1,\"presence_penalty\":0.3,"
                "\"top_p\":0.9,\"top_k\":40,\"user\":\"u1\",\"parallel_tool_calls\":false,"
                "\"stream_options\":{\"include_usage\":true},"
                "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"s\","
                "\"schema\":{\"type\":\"object\"},\"strict\":true}}}");
    assert_int_equal(build_request(&f->px), 0);
    assert_string_equal(f->px.url, "https://api.cohere.com/v2/chat");
    assert_string_equal(header(f, "Authorization"), "Bearer co-test-key");
    assert_string_equal(header(f, "Content-Type"), "application/json");
    assert_int_equal(f->px.n_up_headers, 2);
    json_t *b = up_body(f);
    assert_json_eq(
        b, "{\"model\":\"" MODEL "\",\"stream\":true,"
           "\"messages\":["
           "{\"role\":\"system\",\"content\":\"Be brief.\"},"
           "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"No emojis.\"}]},"
           "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is this?\"},"
           "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBO\","
           "\"detail\":\"low\"}}]},"
           "{\"role\":\"assistant\",\"tool_plan\":\"Let me look it up.\",\"tool_calls\":[{"
           "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"lookup\","
           "\"arguments\":\"{\\\"q\\\":\\\"png\\\"}\"}}]},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"a logo\"},"
           "{\"role\":\"assistant\",\"content\":\"A logo.\"},"
           "{\"role\":\"tool\",\"tool_call_id\":\"call_2\","
           "\"content\":[{\"type\":\"text\",\"text\":\"x\"}]},"
           "{\"role\":\"user\",\"content\":\"Thanks\"}],"
           "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\","
           "\"description\":\"Looks up\",\"parameters\":{\"type\":\"object\","
           "\"properties\":{\"q\":{\"type\":\"string\"}}}}},"
           "{\"type\":\"function\",\"function\":{\"name\":\"noargs\",\"parameters\":{"
           "\"type\":\"object\",\"properties\":{}}}}],"
           "\"strict_tools\":true,\"tool_choice\":\"REQUIRED\",\"temperature\":0.2,"
           "\"max_tokens\":100,\"stop_sequences\":[\"END\"],\"seed\":7,"
           "\"frequency_penalty\":0.1,\"presence_penalty\":0.3,\"p\":0.9,\"k\":40,"
           "\"response_format\":{\"type\":\"json_object\",\"json_schema\":{\"type\":\"object\"}}}");
    json_decref(b);
}

static void chat_request_minimal_and_custom_host(void **state)
{
    fx_t *f = *state;
    f->px.custom_host = SL_STRLIT("http://127.0.0.1:9999/v2/");
    set_body(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                "\"max_completion_tokens\":5,\"max_tokens\":9,\"stop\":[\"a\",\"b\"],"
                "\"tool_choice\":\"none\",\"response_format\":{\"type\":\"json_object\"},"
                "\"temperature\":null}");
    assert_int_equal(build_request(&f->px), 0);
    assert_string_equal(f->px.url, "http://127.0.0.1:9999/v2/chat");
    json_t *b = up_body(f);
    /* no tools: no tool_choice (Cohere refuses one without tools) */
    assert_json_eq(b, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                      "\"max_tokens\":5,\"stop_sequences\":[\"a\",\"b\"],"
                      "\"response_format\":{\"type\":\"json_object\"}}");
    json_decref(b);
}

static void chat_request_named_tool_choice(void **state)
{
    fx_t *f = *state;
    set_body(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\","
                "\"parameters\":{}}},"
                "{\"type\":\"function\",\"function\":{\"name\":\"b\",\"parameters\":{}}}],"
                "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"b\"}}}");
    assert_int_equal(build_request(&f->px), 0);
    json_t *b = up_body(f);
    assert_json_eq(json_object_get(b, "tools"),
                   "[{\"type\":\"function\",\"function\":{\"name\":\"b\",\"parameters\":{}}}]");
    assert_string_equal(gw_tr_str(b, "tool_choice"), "REQUIRED");
    json_decref(b);
}

static void chat_request_errors(void **state)
{
    fx_t *f = *state;
    static const struct {
        const char *body;
        const char *param;
    } cases[] = {
        {"{\"model\":\"m\",\"messages\":[]}", "messages"},
        {"{\"model\":\"m\"}", "messages"},
        {"{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", "messages"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"function\",\"name\":\"f\","
         "\"content\":\"x\"}]}",
         "messages"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
         "\"input_audio\":{}}]}]}",
         "messages"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"http://x/y.png\"}}]}]}",
         "messages"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":42}]}", "messages"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\","
         "\"function\":{}}]}]}",
         "messages"},
        {"{\"model\":\"m\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "n"},
        {"{\"model\":\"m\",\"tool_choice\":\"any\",\"messages\":[{\"role\":\"user\","
         "\"content\":\"x\"}]}",
         "tool_choice"},
        {"{\"model\":\"m\",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"zz\"}},"
         "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\"}}],"
         "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "tool_choice"},
        {"{\"model\":\"m\",\"tools\":[{\"type\":\"code_interpreter\"}],"
         "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "tools"},
        {"{\"model\":\"m\",\"response_format\":{\"type\":\"xml\"},"
         "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "response_format"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        f->px.error_message = NULL;
        f->px.error_param = NULL;
        set_body(f, cases[i].body);
        int r = build_request(&f->px);
        if (r != SL_EINVAL)
            fail_msg("case %zu: %d", i, r);
        assert_non_null(f->px.error_message);
        assert_string_equal(f->px.error_param, cases[i].param);
        /* no secret in what the client is told */
        assert_null(strstr(f->px.error_message, "co-test-key"));
    }
}

static void client_headers(void **state)
{
    fx_t *f = *state;
    add_header(f, "Host", "gateway:8080");
    add_header(f, "Authorization", "Bearer client-secret");
    add_header(f, "Content-Type", "application/json; charset=utf-8");
    add_header(f, "Content-Length", "99");
    add_header(f, "X-Client-Name", "my-app");
    add_header(f, "x-sluice-provider", "cohere");
    add_header(f, "OpenAI-Organization", "org-1");
    add_header(f, "x-mock-status", "429");
    set_body(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    assert_int_equal(build_request(&f->px), 0);
    assert_int_equal(f->px.n_up_headers, 4);
    assert_string_equal(header(f, "X-Client-Name"), "my-app");
    assert_string_equal(header(f, "x-mock-status"), "429");
    assert_string_equal(header(f, "Content-Type"), "application/json");
    /* the provider key, never the client's credentials */
    assert_string_equal(header(f, "Authorization"), "Bearer co-test-key");
    assert_null(header(f, "Host"));
    assert_null(header(f, "Content-Length"));
    assert_null(header(f, "x-sluice-provider"));
    assert_null(header(f, "OpenAI-Organization"));
}

static void other_endpoints_refused(void **state)
{
    fx_t *f = *state;
    f->px.endpoint = GW_EP_IMAGES;
    set_body(f, "{\"prompt\":\"x\"}");
    assert_int_equal(build_request(&f->px), SL_EUNSUPPORTED);
}

/* ---- embed requests ---------------------------------------------------------- */

static void embed_request_shapes(void **state)
{
    fx_t *f = *state;
    f->px.endpoint = GW_EP_EMBEDDINGS;
    set_body(f, "{\"model\":\"embed-v4.0\",\"input\":\"hello\",\"dimensions\":256,"
                "\"encoding_format\":\"float\"}");
    assert_int_equal(build_request(&f->px), 0);
    assert_string_equal(f->px.url, "https://api.cohere.com/v2/embed");
    assert_string_equal(header(f, "Authorization"), "Bearer co-test-key");
    json_t *b = up_body(f);
    assert_json_eq(b, "{\"model\":\"embed-v4.0\",\"texts\":[\"hello\"],"
                      "\"input_type\":\"search_document\",\"embedding_types\":[\"float\"],"
                      "\"output_dimension\":256}");
    json_decref(b);

    add_header(f, "X-Sluice-Cohere-Input-Type", "search_query");
    set_body(f, "{\"model\":\"embed-v4.0\",\"input\":[\"a\",\"b\"]}");
    assert_int_equal(build_request(&f->px), 0);
    b = up_body(f);
    assert_json_eq(b, "{\"model\":\"embed-v4.0\",\"texts\":[\"a\",\"b\"],"
                      "\"input_type\":\"search_query\",\"embedding_types\":[\"float\"]}");
    json_decref(b);
}

static void embed_request_errors(void **state)
{
    fx_t *f = *state;
    f->px.endpoint = GW_EP_EMBEDDINGS;
    static const char *const bodies[] = {
        "{\"model\":\"e\",\"input\":[1,2,3]}",
        "{\"model\":\"e\",\"input\":[[1,2],[3]]}",
        "{\"model\":\"e\",\"input\":[]}",
        "{\"model\":\"e\"}",
        "{\"model\":\"e\",\"input\":\"x\",\"encoding_format\":\"int8\"}",
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(bodies); i++) {
        set_body(f, bodies[i]);
        if (build_request(&f->px) != SL_EINVAL)
            fail_msg("case %zu accepted", i);
    }
    add_header(f, "x-sluice-cohere-input-type", "search query/../x");
    set_body(f, "{\"model\":\"e\",\"input\":\"x\"}");
    assert_int_equal(build_request(&f->px), SL_EINVAL);
    assert_string_equal(f->px.error_param, "x-sluice-cohere-input-type");
}

/* ---- buffered answers -------------------------------------------------------- */

static void set_resp(fx_t *f, int status, const char *body)
{
    set_upstream(f, status, "application/json");
    sl_buf_reset(&f->px.resp);
    assert_int_equal(sl_buf_append(&f->px.resp, body, strlen(body)), 0);
}

static json_t *resp_json(fx_t *f)
{
    json_t *j = json_loadb(f->px.resp.base, f->px.resp.len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(f->px.tr.resp_ct, "application/json");
    return j;
}

static void chat_answer_text(void **state)
{
    fx_t *f = *state;
    set_body(f, "{\"model\":\"" MODEL "\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    set_resp(f, 200, "{\"id\":\"c0ffee\",\"finish_reason\":\"COMPLETE\",\"message\":{"
                     "\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\","
                     "\"thinking\":\"hm\"},"
                     "{\"type\":\"text\",\"text\":\"Hello\"},{\"type\":\"text\","
                     "\"text\":\" there\"}]},"
                     "\"usage\":{\"billed_units\":{\"input_tokens\":3,\"output_tokens\":2},"
                     "\"tokens\":{\"input_tokens\":67,\"output_tokens\":2}}}");
    assert_int_equal(on_response(&f->px), 0);
    json_t *j = resp_json(f);
    assert_json_eq(j, "{\"id\":\"c0ffee\",\"object\":\"chat.completion\",\"created\":1700000000,"
                      "\"model\":\"" MODEL "\",\"choices\":[{\"index\":0,\"message\":{"
                      "\"role\":\"assistant\",\"content\":\"Hello there\"},\"logprobs\":null,"
                      "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":67,"
                      "\"completion_tokens\":2,\"total_tokens\":69,"
                      "\"prompt_tokens_details\":{\"cached_tokens\":0},"
                      "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}");
    json_decref(j);
    assert_int_equal(f->px.usage.prompt_tokens, 67);
    assert_int_equal(f->px.usage.completion_tokens, 2);
}

static void chat_answer_tool_call(void **state)
{
    fx_t *f = *state;
    set_body(f, "{\"model\":\"" MODEL "\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    /* billed_units only, as floats */
    set_resp(f, 200, "{\"id\":\"i1\",\"finish_reason\":\"TOOL_CALL\",\"message\":{"
                     "\"role\":\"assistant\",\"tool_plan\":\"I will look it up.\",\"tool_calls\":["
                     "{\"id\":\"lookup_ab12\",\"type\":\"function\","
                     "\"function\":{\"name\":\"lookup\","
                     "\"arguments\":\"{\\\"q\\\":1}\"}},"
                     "{\"id\":\"x_2\",\"type\":\"function\",\"function\":{\"name\":\"x\","
                     "\"arguments\":{\"a\":true}}}]},"
                     "\"usage\":{\"billed_units\":{\"input_tokens\":12.0,\"output_tokens\":7.0}}}");
    assert_int_equal(on_response(&f->px), 0);
    json_t *j = resp_json(f);
    json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(gw_tr_str(c0, "finish_reason"), "tool_calls");
    assert_json_eq(json_object_get(c0, "message"),
                   "{\"role\":\"assistant\",\"content\":\"I will look it up.\",\"tool_calls\":["
                   "{\"id\":\"lookup_ab12\",\"type\":\"function\","
                   "\"function\":{\"name\":\"lookup\","
                   "\"arguments\":\"{\\\"q\\\":1}\"}},"
                   "{\"id\":\"x_2\",\"type\":\"function\",\"function\":{\"name\":\"x\","
                   "\"arguments\":\"{\\\"a\\\":true}\"}}]}");
    json_t *u = json_object_get(j, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 12);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 7);
    json_decref(j);
}

static void chat_answer_finish_reasons(void **state)
{
    fx_t *f = *state;
    static const struct {
        const char *cohere, *openai;
    } map[] = {{"COMPLETE", "stop"},
               {"STOP_SEQUENCE", "stop"},
               {"MAX_TOKENS", "length"},
               {"TOOL_CALL", "tool_calls"},
               {"SOMETHING_NEW", "stop"}};
    set_body(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    for (size_t i = 0; i < SL_ARRAY_SIZE(map); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"id\":\"x\",\"finish_reason\":\"%s\",\"message\":{\"role\":\"assistant\","
                 "\"content\":[{\"type\":\"text\",\"text\":\"t\"}]}}",
                 map[i].cohere);
        set_resp(f, 200, body);
        assert_int_equal(on_response(&f->px), 0);
        json_t *j = resp_json(f);
        json_t *c0 = json_array_get(json_object_get(j, "choices"), 0);
        assert_string_equal(gw_tr_str(c0, "finish_reason"), map[i].openai);
        json_decref(j);
    }
}

static void chat_answer_failed_generation(void **state)
{
    fx_t *f = *state;
    set_body(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    set_resp(f, 200, "{\"id\":\"x\",\"finish_reason\":\"ERROR\",\"message\":{\"role\":"
                     "\"assistant\",\"content\":[]}}");
    assert_int_equal(on_response(&f->px), SL_EUPSTREAM);
    assert_non_null(strstr(f->px.error_message, "cohere: "));
    set_resp(f, 200, "{\"id\":\"x\",\"finish_reason\":\"TIMEOUT\",\"message\":{\"role\":"
                     "\"assistant\",\"content\":[]}}");
    assert_int_equal(on_response(&f->px), SL_EUPTIMEOUT);
    assert_non_null(strstr(f->px.error_message, "timed out"));
    /* 2xx that is not a chat answer */
    set_resp(f, 200, "{\"id\":\"x\"}");
    assert_int_equal(on_response(&f->px), SL_EUPPROTO);
    set_resp(f, 200, "not json");
    assert_int_equal(on_response(&f->px), SL_EUPPROTO);
}

static void error_answers(void **state)
{
    fx_t *f = *state;
    set_body(f, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    set_resp(f, 429, "{\"id\":\"e1\",\"message\":\"You are past the per minute request limit\"}");
    assert_int_equal(on_response(&f->px), 0);
    json_t *j = resp_json(f);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(gw_tr_str(e, "message"), "You are past the per minute request limit");
    assert_string_equal(gw_tr_str(e, "type"), "rate_limit_error");
    assert_true(json_is_null(json_object_get(e, "param")));
    json_decref(j);
    assert_int_equal(f->px.retryable, 1);
    assert_int_equal(f->px.up.status, 429); /* kept for the client */
    assert_non_null(strstr(f->px.provider_error.base, "per minute"));

    set_resp(f, 400, "{\"message\":\"invalid request: model 'x' not found\"}");
    assert_int_equal(on_response(&f->px), 0);
    j = resp_json(f);
    e = json_object_get(j, "error");
    assert_string_equal(gw_tr_str(e, "message"), "invalid request: model 'x' not found");
    assert_string_equal(gw_tr_str(e, "type"), "invalid_request_error");
    json_decref(j);
    assert_int_equal(f->px.retryable, 0);

    set_resp(f, 502, "<html>bad gateway</html>");
    assert_int_equal(on_response(&f->px), 0);
    j = resp_json(f);
    assert_string_equal(gw_tr_str(json_object_get(j, "error"), "message"),
                        "the provider returned an error");
    json_decref(j);
}

static void embed_answers(void **state)
{
    fx_t *f = *state;
    f->px.endpoint = GW_EP_EMBEDDINGS;
    f->px.tr.model = NULL;
    f->px.tr.id = NULL;
    set_body(f, "{\"model\":\"embed-v4.0\",\"input\":[\"a\",\"b\"]}");
    static const char answer[] =
        "{\"id\":\"e\",\"embeddings\":{\"float\":[[1.0,-2.5],[0.5,0]]},\"texts\":[\"a\",\"b\"],"
        "\"meta\":{\"api_version\":{\"version\":\"2\"},\"billed_units\":{\"input_tokens\":5.0}},"
        "\"response_type\":\"embeddings_by_type\"}";
    set_resp(f, 200, answer);
    assert_int_equal(on_response(&f->px), 0);
    json_t *j = resp_json(f);
    assert_json_eq(j, "{\"object\":\"list\",\"data\":["
                      "{\"object\":\"embedding\",\"index\":0,\"embedding\":[1.0,-2.5]},"
                      "{\"object\":\"embedding\",\"index\":1,\"embedding\":[0.5,0]}],"
                      "\"model\":\"embed-v4.0\",\"usage\":{\"prompt_tokens\":5,"
                      "\"total_tokens\":5}}");
    json_decref(j);
    assert_int_equal(f->px.usage.prompt_tokens, 5);

    set_body(f, "{\"model\":\"embed-v4.0\",\"input\":[\"a\",\"b\"],"
                "\"encoding_format\":\"base64\"}");
    set_resp(f, 200, answer);
    assert_int_equal(on_response(&f->px), 0);
    j = resp_json(f);
    json_t *d = json_object_get(j, "data");
    /* little-endian float32: 1.0 = 00 00 80 3f, -2.5 = 00 00 20 c0 */
    assert_string_equal(gw_tr_str(json_array_get(d, 0), "embedding"), "AACAPwAAIMA=");
    assert_string_equal(gw_tr_str(json_array_get(d, 1), "embedding"), "AAAAPwAAAAA=");
    json_decref(j);

    /* the older embeddings_floats shape */
    set_body(f, "{\"model\":\"embed-v4.0\",\"input\":\"a\"}");
    set_resp(f, 200, "{\"id\":\"e\",\"embeddings\":[[0.25]],\"meta\":{}}");
    assert_int_equal(on_response(&f->px), 0);
    j = resp_json(f);
    assert_json_eq(json_object_get(j, "data"),
                   "[{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.25]}]");
    json_decref(j);

    set_resp(f, 200, "{\"id\":\"e\",\"embeddings\":{\"float\":[[\"x\"]]}}");
    assert_int_equal(on_response(&f->px), SL_EUPPROTO);
    set_resp(f, 200, "{\"id\":\"e\",\"embeddings\":{\"int8\":[[1]]}}");
    assert_int_equal(on_response(&f->px), SL_EUPPROTO);
}

static void response_modes(void **state)
{
    fx_t *f = *state;
    set_upstream(f, 200, "text/event-stream; charset=utf-8");
    assert_int_equal(gw_tr_sse_response_mode(&f->px), GW_RESP_MODE_SSE);
    set_upstream(f, 200, "application/json");
    assert_int_equal(gw_tr_sse_response_mode(&f->px), GW_RESP_MODE_BUFFER);
    set_upstream(f, 429, "text/event-stream");
    assert_int_equal(gw_tr_sse_response_mode(&f->px), GW_RESP_MODE_BUFFER);
}

/* ---- streams ------------------------------------------------------------------ */

#define EV(type, json) "event: " type "\ndata: " json "\n\n"

static const char text_stream[] =
    EV("message-start", "{\"id\":\"29f14a5a\",\"type\":\"message-start\",\"delta\":{\"message\":{"
                        "\"role\":\"assistant\",\"content\":[],\"tool_plan\":\"\","
                        "\"tool_calls\":[],\"citations\":[]}}}")
    EV("content-start", "{\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{"
                        "\"content\":{\"type\":\"text\",\"text\":\"\"}}}}")
    EV("content-delta", "{\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{"
                        "\"content\":{\"text\":\"Hello\"}}}}")
    EV("citation-start", "{\"type\":\"citation-start\",\"index\":0,\"delta\":{\"message\":{"
                         "\"citations\":{\"start\":0,\"end\":5,\"text\":\"Hello\"}}}}")
    EV("citation-end", "{\"type\":\"citation-end\",\"index\":0}")
    EV("content-delta", "{\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{"
                        "\"content\":{\"text\":\" w\\u00f6rld\"}}}}")
    EV("content-end", "{\"type\":\"content-end\",\"index\":0}")
    EV("message-end", "{\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\","
                      "\"usage\":{\"billed_units\":{\"input_tokens\":5,\"output_tokens\":2},"
                      "\"tokens\":{\"input_tokens\":69,\"output_tokens\":2}}}}")
    "data: [DONE]\n\n";

static const char tool_stream[] =
    EV("message-start", "{\"id\":\"t1\",\"type\":\"message-start\",\"delta\":{\"message\":{"
                        "\"role\":\"assistant\"}}}")
    EV("tool-plan-delta", "{\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{"
                          "\"tool_plan\":\"I will\"}}}")
    EV("tool-plan-delta", "{\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{"
                          "\"tool_plan\":\" check.\"}}}")
    EV("tool-call-start", "{\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{"
                          "\"tool_calls\":{\"id\":\"get_weather_a1\",\"type\":\"function\","
                          "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}}}}")
    EV("tool-call-delta", "{\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{"
                          "\"tool_calls\":{\"function\":{\"arguments\":\"{\\\"city\\\":\"}}}}}")
    EV("tool-call-delta", "{\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{"
                          "\"tool_calls\":{\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}}}}")
    EV("tool-call-end", "{\"type\":\"tool-call-end\",\"index\":0}")
    EV("tool-call-start", "{\"type\":\"tool-call-start\",\"index\":1,\"delta\":{\"message\":{"
                          "\"tool_calls\":{\"id\":\"get_time_b2\",\"type\":\"function\","
                          "\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}}}}")
    EV("tool-call-end", "{\"type\":\"tool-call-end\",\"index\":1}")
    EV("message-end", "{\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TOOL_CALL\","
                      "\"usage\":{\"billed_units\":{\"input_tokens\":20.0,"
                      "\"output_tokens\":9.0}}}}")
    "data: [DONE]\n\n";

typedef struct {
    sl_buf_t out; /* every byte emitted */
    int rc;       /* first non-zero on_stream_data result */
    int complete; /* stream_complete after the last byte */
} run_t;

/*
 * Feeds `in` to a fresh translator in pieces of `step` bytes (0: whole), or
 * cut once at `cut` when step is SIZE_MAX. Stops at the first error, as the
 * pipeline does.
 */
static void run(fx_t *f, const char *in, size_t n, size_t step, size_t cut, run_t *r)
{
    memset(r, 0, sizeof(*r));
    sl_buf_init(&r->out, 1u << 24);
    f->px.tr.adapter = NULL;
    f->px.tr.id = "chatcmpl-test";
    f->px.sse_done = 0;
    f->px.stream_error_message = NULL;
    memset(&f->px.usage, 0, sizeof(f->px.usage));
    sl_sse_decoder_dispose(&f->px.sse);
    sl_sse_decoder_init(&f->px.sse, 1u << 16);
    size_t bounds[3] = {0, n, n};
    size_t nb = 2;
    if (step == SIZE_MAX) {
        bounds[1] = cut;
        nb = 3;
    }
    for (size_t b = 0; b + 1 < nb && r->rc == 0; b++) {
        size_t from = bounds[b], to = bounds[b + 1];
        size_t s = step == 0 || step == SIZE_MAX ? (to - from ? to - from : 1) : step;
        for (size_t i = from; i < to && r->rc == 0; i += s) {
            size_t len = to - i < s ? to - i : s;
            sl_buf_reset(&f->px.out);
            r->rc = on_stream_data(&f->px, in + i, len, &f->px.out);
            assert_int_equal(sl_buf_append(&r->out, f->px.out.base, f->px.out.len), 0);
        }
    }
    r->complete = r->rc == 0 && stream_complete(&f->px);
}

/* The data payloads of the client's events, as a JSON array ("[DONE]" as a string). */
static json_t *events(const run_t *r)
{
    json_t *a = json_array();
    const char *p = r->out.base, *end = r->out.base + r->out.len;
    while (p != NULL && p < end) {
        const char *e = p;
        while (e + 1 < end && !(e[0] == '\n' && e[1] == '\n'))
            e++;
        assert_true(e + 1 < end);
        assert_true(strncmp(p, "data: ", 6) == 0);
        json_t *j = json_loadb(p + 6, (size_t)(e - p - 6), 0, NULL);
        if (j == NULL) {
            assert_true(e - p - 6 == 6 && strncmp(p + 6, "[DONE]", 6) == 0);
            j = json_string("[DONE]");
        }
        json_array_append_new(a, j);
        p = e + 2;
    }
    return a;
}

/* Whether the output holds s (it is not NUL-terminated). */
static int has(const run_t *r, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= r->out.len; i++)
        if (memcmp(r->out.base + i, s, n) == 0)
            return 1;
    return 0;
}

static void run_dispose(run_t *r)
{
    sl_buf_dispose(&r->out);
}

static void stream_text(void **state)
{
    fx_t *f = *state;
    set_body(f, "{\"model\":\"" MODEL "\",\"stream\":true,\"stream_options\":"
                "{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    run_t r;
    run(f, text_stream, sizeof(text_stream) - 1, 0, 0, &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.complete);
    json_t *ev = events(&r);
#define CHUNK(delta, fin)                                                                          \
    "{\"id\":\"29f14a5a\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"            \
    "\"model\":\"" MODEL "\",\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" fin \
    "}]}"
    assert_json_eq(ev, "[" CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null") ","
                       CHUNK("{\"content\":\"Hello\"}", "null") ","
                       CHUNK("{\"content\":\" w\\u00f6rld\"}", "null") ","
                       CHUNK("{}", "\"stop\"") ","
                       "{\"id\":\"29f14a5a\",\"object\":\"chat.completion.chunk\","
                       "\"created\":1700000000,\"model\":\"" MODEL "\",\"choices\":[],"
                       "\"usage\":{\"prompt_tokens\":69,\"completion_tokens\":2,"
                       "\"total_tokens\":71,\"prompt_tokens_details\":{\"cached_tokens\":0},"
                       "\"completion_tokens_details\":{\"reasoning_tokens\":0}}},"
                       "\"[DONE]\"]");
#undef CHUNK
    json_decref(ev);
    assert_int_equal(f->px.usage.prompt_tokens, 69);
    assert_int_equal(f->px.usage.completion_tokens, 2);
    run_dispose(&r);

    /* Without stream_options.include_usage the usage chunk is not sent, usage still noted. */
    f->px.include_usage = 0;
    run(f, text_stream, sizeof(text_stream) - 1, 0, 0, &r);
    ev = events(&r);
    assert_int_equal(json_array_size(ev), 5);
    assert_string_equal(json_string_value(json_array_get(ev, 4)), "[DONE]");
    json_decref(ev);
    assert_int_equal(f->px.usage.prompt_tokens, 69);
    run_dispose(&r);
}

static void stream_tools(void **state)
{
    fx_t *f = *state;
    set_body(f, "{\"model\":\"" MODEL "\",\"stream\":true,\"stream_options\":"
                "{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    run_t r;
    run(f, tool_stream, sizeof(tool_stream) - 1, 0, 0, &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.complete);
    json_t *ev = events(&r);
    json_t *deltas = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(ev, i, e) {
        json_t *c0 = json_array_get(json_object_get(e, "choices"), 0);
        if (c0 != NULL)
            json_array_append(deltas, json_object_get(c0, "delta"));
    }
    assert_json_eq(deltas,
                   "[{\"role\":\"assistant\",\"content\":\"\"},"
                   "{\"content\":\"I will\"},{\"content\":\" check.\"},"
                   "{\"tool_calls\":[{\"index\":0,\"id\":\"get_weather_a1\",\"type\":\"function\","
                   "\"function\":{\"name\":\"get_weather\",\"arguments\":\"\"}}]},"
                   "{\"tool_calls\":[{\"index\":0,"
                   "\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},"
                   "{\"tool_calls\":[{\"index\":0,"
                   "\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},"
                   "{\"tool_calls\":[{\"index\":1,\"id\":\"get_time_b2\",\"type\":\"function\","
                   "\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},"
                   "{}]");
    json_decref(deltas);
    size_t n = json_array_size(ev);
    json_t *fin = json_array_get(json_object_get(json_array_get(ev, n - 3), "choices"), 0);
    assert_string_equal(gw_tr_str(fin, "finish_reason"), "tool_calls");
    json_t *u = json_object_get(json_array_get(ev, n - 2), "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 20);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 9);
    json_decref(ev);
    run_dispose(&r);
}

/* The type may be only in the event name or only in the data: same output. */
static void stream_type_sources(void **state)
{
    fx_t *f = *state;
    set_body(f, "{\"model\":\"" MODEL "\",\"stream\":true,\"messages\":[]}");
    static const char only_data[] =
        "data: {\"id\":\"a\",\"type\":\"message-start\"}\n\n"
        "data: {\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{\"content\":"
        "{\"text\":\"Hi\"}}}}\n\n"
        "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"MAX_TOKENS\"}}\n\n";
    static const char only_event[] =
        "event: message-start\r\ndata: {\"id\":\"a\"}\r\n\r\n"
        ": keep-alive\r\n\r\n"
        "event: content-delta\r\ndata: {\"index\":0,\"delta\":{\"message\":{\"content\":"
        "{\"text\":\"Hi\"}}}}\r\n\r\n"
        "event: message-end\r\ndata: {\"delta\":{\"finish_reason\":\"MAX_TOKENS\"}}\r\n\r\n";
    run_t a, b;
    run(f, only_data, sizeof(only_data) - 1, 0, 0, &a);
    run(f, only_event, sizeof(only_event) - 1, 0, 0, &b);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, 0);
    assert_true(a.complete && b.complete);
    assert_int_equal(a.out.len, b.out.len);
    assert_memory_equal(a.out.base, b.out.base, a.out.len);
    assert_true(has(&a, "\"finish_reason\":\"length\""));
    run_dispose(&a);
    run_dispose(&b);
}

static void assert_same_run(const run_t *a, const run_t *b, const char *what, size_t at)
{
    if (a->rc != b->rc || a->complete != b->complete || a->out.len != b->out.len ||
        (a->out.len > 0 && memcmp(a->out.base, b->out.base, a->out.len) != 0))
        fail_msg("%s %zu: rc %d/%d complete %d/%d len %zu/%zu", what, at, a->rc, b->rc,
                 a->complete, b->complete, a->out.len, b->out.len);
}

/* Whole, one byte at a time and cut at every point: the same bytes out. */
static void check_splits(fx_t *f, const char *in, size_t n)
{
    run_t whole, r;
    run(f, in, n, 0, 0, &whole);
    run(f, in, n, 1, 0, &r);
    assert_same_run(&whole, &r, "byte by byte", 1);
    run_dispose(&r);
    for (size_t cut = 0; cut <= n; cut++) {
        run(f, in, n, SIZE_MAX, cut, &r);
        assert_same_run(&whole, &r, "cut at", cut);
        run_dispose(&r);
    }
    run_dispose(&whole);
}

static void stream_splits(void **state)
{
    fx_t *f = *state;
    set_body(f, "{\"model\":\"" MODEL "\",\"stream\":true,\"stream_options\":"
                "{\"include_usage\":true},\"messages\":[]}");
    check_splits(f, text_stream, sizeof(text_stream) - 1);
    check_splits(f, tool_stream, sizeof(tool_stream) - 1);
    static const char failing[] =
        EV("message-start", "{\"id\":\"a\",\"type\":\"message-start\"}")
        EV("content-delta", "{\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{"
                            "\"content\":{\"text\":\"Hi\"}}}}")
        EV("message-end", "{\"type\":\"message-end\",\"delta\":{\"error\":\"boom\","
                          "\"finish_reason\":\"ERROR\"}}");
    check_splits(f, failing, sizeof(failing) - 1);
}

static void stream_errors(void **state)
{
    fx_t *f = *state;
    set_body(f, "{\"model\":\"" MODEL "\",\"stream\":true,\"messages\":[]}");
    run_t r;

    /* Cohere's failed generation: an error for the client, with Cohere's words. */
    static const char failed[] =
        EV("message-start", "{\"id\":\"a\",\"type\":\"message-start\"}")
        EV("content-delta", "{\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{"
                            "\"content\":{\"text\":\"Hi\"}}}}")
        EV("message-end", "{\"type\":\"message-end\",\"delta\":{\"error\":\"internal server "
                          "error\",\"finish_reason\":\"ERROR\"}}")
        "data: [DONE]\n\n";
    run(f, failed, sizeof(failed) - 1, 0, 0, &r);
    assert_int_equal(r.rc, SL_EUPSTREAM);
    assert_false(r.complete);
    assert_string_equal(f->px.stream_error_message, "cohere: internal server error");
    assert_false(has(&r, "[DONE]"));
    assert_true(has(&r, "\"Hi\"")); /* what came before still goes out */
    run_dispose(&r);

    static const char timeout[] =
        EV("message-end", "{\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"TIMEOUT\"}}");
    run(f, timeout, sizeof(timeout) - 1, 0, 0, &r);
    assert_int_equal(r.rc, SL_EUPTIMEOUT);
    run_dispose(&r);

    /* No message-end: incomplete, even with a [DONE]. */
    static const char truncated[] =
        EV("message-start", "{\"id\":\"a\",\"type\":\"message-start\"}")
        EV("content-delta", "{\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{"
                            "\"content\":{\"text\":\"Hi\"}}}}")
        "data: [DONE]\n\n";
    run(f, truncated, sizeof(truncated) - 1, 0, 0, &r);
    assert_int_equal(r.rc, 0);
    assert_false(r.complete);
    assert_int_equal(f->px.sse_done, 0);
    run_dispose(&r);

    /* Cut inside the message-end event. */
    size_t cut = sizeof(text_stream) - 1 - 30;
    run(f, text_stream, cut, 0, 0, &r);
    assert_int_equal(r.rc, 0);
    assert_false(r.complete);
    run_dispose(&r);

    /* Malformed events. */
    static const char *const bad_streams[] = {
        "event: content-delta\ndata: {\"type\":\"content-delta\",\"delta\":{\"mess\n\n",
        "data: [1,2]\n\n",
        "data: {\"delta\":{}}\n\n",
        EV("tool-call-delta", "{\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{}}"),
        EV("tool-call-start", "{\"type\":\"tool-call-start\",\"index\":0,\"delta\":{}}"),
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(bad_streams); i++) {
        run(f, bad_streams[i], strlen(bad_streams[i]), 0, 0, &r);
        if (r.rc != SL_EUPPROTO)
            fail_msg("bad stream %zu: %d", i, r.rc);
        assert_non_null(f->px.stream_error_message);
        run_dispose(&r);
    }

    /* Events after message-end are ignored; the stream stays complete. */
    static const char after[] =
        EV("message-end", "{\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\"}}")
        "data: [DONE]\n\n"
        "data: not json\n\n";
    run(f, after, sizeof(after) - 1, 0, 0, &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.complete);
    json_t *ev = events(&r);
    /* role (sent even though message-start was missing), finish, [DONE] */
    assert_int_equal(json_array_size(ev), 3);
    json_decref(ev);
    run_dispose(&r);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(chat_request_full),
        T(chat_request_minimal_and_custom_host),
        T(chat_request_named_tool_choice),
        T(chat_request_errors),
        T(client_headers),
        T(other_endpoints_refused),
        T(embed_request_shapes),
        T(embed_request_errors),
        T(chat_answer_text),
        T(chat_answer_tool_call),
        T(chat_answer_finish_reasons),
        T(chat_answer_failed_generation),
        T(error_answers),
        T(embed_answers),
        T(response_modes),
        T(stream_text),
        T(stream_tools),
        T(stream_type_sources),
        T(stream_splits),
        T(stream_errors),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
