/*
 * Tests for dataplane/providers/gemini.c: OpenAI requests as Gemini
 * requests (URLs, auth, contents, tools, generation config, embeddings),
 * Gemini answers, errors and streams as OpenAI ones. A gw_proxy_t is built
 * by hand around a bare gw_req_t (arena and headers only). Includes
 * gemini.c for its statics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "common/json.h"
#include "dataplane/providers/gemini.c"

/* ---- fixture ---------------------------------------------------------------------------- */

typedef struct {
    gw_req_t req;
    gw_proxy_t px;
    gw_http_header_t hdrs[16];
    gw_http_header_t up_hdrs[2];
} fx_t;

static fx_t *fx_new(const char *provider, gw_endpoint_t ep, const char *body)
{
    fx_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    sl_arena_init(&f->req.arena);
    f->req.headers = f->hdrs;
    gw_proxy_t *px = &f->px;
    px->req = &f->req;
    px->trace_id = SL_STRLIT("trace1");
    px->provider = sl_provider_find(sl_str_c(provider));
    assert_non_null(px->provider);
    px->provider_name = sl_str_c(provider);
    px->endpoint = ep;
    px->endpoint_name = ep == GW_EP_EMBEDDINGS ? "embeddings" : "chat";
    px->api_key = SL_STRLIT("secret-key-1234");
    if (body != NULL) {
        json_error_t e;
        px->body = json_loads(body, 0, &e);
        if (px->body == NULL)
            fail_msg("bad test body: %s: %s", e.text, body);
        sl_arena_defer(&f->req.arena, sl_json_decref_cb, px->body);
        json_t *m = json_object_get(px->body, "model");
        if (json_is_string(m))
            px->model = sl_str(json_string_value(m), json_string_length(m));
        px->stream = json_is_true(json_object_get(px->body, "stream"));
    }
    sl_buf_init(&px->resp, 1u << 24);
    sl_buf_init(&px->out, 1u << 24);
    sl_sse_decoder_init(&px->sse, 1u << 20);
    /* Fixed ids so that outputs compare byte for byte. */
    px->tr.id = "chatcmpl-test";
    px->tr.created = 1700000000;
    px->tr.model = "gemini-test";
    return f;
}

static void fx_header(fx_t *f, const char *name, const char *value)
{
    assert_true(f->req.nheaders < SL_ARRAY_SIZE(f->hdrs));
    f->hdrs[f->req.nheaders].name = sl_str_c(name);
    f->hdrs[f->req.nheaders].value = sl_str_c(value);
    f->req.nheaders++;
}

static void fx_free(fx_t *f)
{
    sl_sse_decoder_dispose(&f->px.sse);
    sl_buf_dispose(&f->px.resp);
    sl_buf_dispose(&f->px.out);
    sl_arena_clear(&f->req.arena);
    free(f);
}

static void assert_json_eq(sl_str_t got, const char *expected)
{
    json_error_t e;
    json_t *g = json_loadb(got.base ? got.base : "", got.len, 0, &e);
    json_t *x = json_loads(expected, 0, &e);
    if (x == NULL)
        fail_msg("bad expected JSON: %s: %s", e.text, expected);
    if (g == NULL || !json_equal(g, x)) {
        char *xs = json_dumps(x, JSON_COMPACT | JSON_SORT_KEYS);
        char *gs = g ? json_dumps(g, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        print_error("expected: %s\n     got: %s\n", xs, gs ? gs : "(not JSON)");
        print_error("raw: %.*s\n", (int)got.len, got.base ? got.base : "");
        free(xs);
        free(gs);
        json_decref(g);
        json_decref(x);
        fail();
    }
    json_decref(g);
    json_decref(x);
}

static sl_str_t header_of(const gw_proxy_t *px, const char *name)
{
    return gw_http_header_find(px->up_headers, px->n_up_headers, name);
}

/* Builds the request and checks URL and body. */
static fx_t *build_ok(const char *provider, gw_endpoint_t ep, const char *in, const char *url,
                      const char *body)
{
    fx_t *f = fx_new(provider, ep, in);
    int r = build_request(&f->px);
    if (r != 0)
        fail_msg("build_request: %d (%s)", r, f->px.error_message ? f->px.error_message : "");
    assert_string_equal(f->px.url, url);
    if (body != NULL)
        assert_json_eq(f->px.up_body, body);
    return f;
}

static void build_fails(const char *in, const char *param, const char *msg_part)
{
    fx_t *f = fx_new("google", GW_EP_CHAT, in);
    assert_int_equal(build_request(&f->px), SL_EINVAL);
    assert_non_null(f->px.error_message);
    if (param != NULL) {
        assert_non_null(f->px.error_param);
        assert_string_equal(f->px.error_param, param);
    }
    if (msg_part != NULL && strstr(f->px.error_message, msg_part) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", f->px.error_message, msg_part);
    fx_free(f);
}

#define GOOGLE_BASE "https://generativelanguage.googleapis.com/v1beta"
#define CHAT_REQ_BODY                                                                              \
    "{\"model\":\"gemini-2.0-flash\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}"

/* ---- requests ------------------------------------------------------------------------------ */

static void test_request_system_and_turns(void **state)
{
    fx_t *f = build_ok(
        "google", GW_EP_CHAT,
        "{\"model\":\"gemini-2.0-flash\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Use French.\"}]},"
        "{\"role\":\"user\",\"content\":\"Hi\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"there\"},"
        "{\"type\":\"text\",\"text\":\"\"}]},"
        "{\"role\":\"assistant\",\"content\":\"Salut\"},"
        "{\"role\":\"assistant\",\"content\":null},"
        "{\"role\":\"user\",\"content\":\"Again\"}]}",
        GOOGLE_BASE "/models/gemini-2.0-flash:generateContent",
        "{\"contents\":["
        "{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"},{\"text\":\"there\"}]},"
        "{\"role\":\"model\",\"parts\":[{\"text\":\"Salut\"}]},"
        "{\"role\":\"user\",\"parts\":[{\"text\":\"Again\"}]}],"
        "\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"},{\"text\":\"Use French.\"}]}}");
    assert_true(sl_str_eq(header_of(&f->px, "x-goog-api-key"), SL_STRLIT("secret-key-1234")));
    assert_true(sl_str_eq(header_of(&f->px, "content-type"), SL_STRLIT("application/json")));
    assert_int_equal(header_of(&f->px, "authorization").len, 0);
    fx_free(f);
}

static void test_request_headers(void **state)
{
    fx_t *f = fx_new("google", GW_EP_CHAT, CHAT_REQ_BODY);
    static const char *const sent[][2] = {
        {"Authorization", "Bearer secret-key-1234"},
        {"x-goog-api-key", "client-key"},
        {"x-api-key", "other"},
        {"x-sluice-provider", "google"},
        {"Content-Type", "application/json"},
        {"Host", "gw"},
        {"openai-organization", "org"},
        {"x-stainless-os", "Linux"},
        {"x-goog-user-project", "billing-proj"},
        {"x-request-tag", "abc"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(sent); i++)
        fx_header(f, sent[i][0], sent[i][1]);
    assert_int_equal(build_request(&f->px), 0);
    /* The provider key once, in Google's header; custom headers pass; the rest do not. */
    static const char *const want[][2] = {
        {"x-goog-user-project", "billing-proj"},
        {"x-request-tag", "abc"},
        {"Content-Type", "application/json"},
        {"x-goog-api-key", "secret-key-1234"},
    };
    assert_int_equal(f->px.n_up_headers, SL_ARRAY_SIZE(want));
    for (size_t i = 0; i < SL_ARRAY_SIZE(want); i++) {
        assert_true(sl_str_eq(f->px.up_headers[i].name, sl_str_c(want[i][0])));
        assert_true(sl_str_eq(f->px.up_headers[i].value, sl_str_c(want[i][1])));
    }
    fx_free(f);
}

static void test_request_stream_url_and_model_prefix(void **state)
{
    fx_t *f = build_ok("google", GW_EP_CHAT,
                       "{\"model\":\"models/gemini-1.5-pro-002\",\"stream\":true,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
                       GOOGLE_BASE "/models/gemini-1.5-pro-002:streamGenerateContent?alt=sse",
                       "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}]}");
    fx_free(f);
}

static void test_request_images(void **state)
{
    fx_t *f = build_ok(
        "google", GW_EP_CHAT,
        "{\"model\":\"gemini-2.0-flash\",\"messages\":[{\"role\":\"user\",\"content\":["
        "{\"type\":\"text\",\"text\":\"What is this?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/a/cat.JPG?x=1\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"gs://bucket/object\"}},"
        "{\"type\":\"image_url\",\"image_url\":\"http://example.com/d.webp\"},"
        "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"UklGRg==\",\"format\":\"wav\"}},"
        "{\"type\":\"file\",\"file\":{\"file_data\":\"data:application/pdf;base64,JVBERi0=\"}}"
        "]}]}",
        GOOGLE_BASE "/models/gemini-2.0-flash:generateContent",
        "{\"contents\":[{\"role\":\"user\",\"parts\":["
        "{\"text\":\"What is this?\"},"
        "{\"inlineData\":{\"mimeType\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
        "{\"fileData\":{\"fileUri\":\"https://example.com/a/cat.JPG?x=1\","
        "\"mimeType\":\"image/jpeg\"}},"
        "{\"fileData\":{\"fileUri\":\"gs://bucket/object\"}},"
        "{\"fileData\":{\"fileUri\":\"http://example.com/d.webp\",\"mimeType\":\"image/webp\"}},"
        "{\"inlineData\":{\"mimeType\":\"audio/wav\",\"data\":\"UklGRg==\"}},"
        "{\"inlineData\":{\"mimeType\":\"application/pdf\",\"data\":\"JVBERi0=\"}}"
        "]}]}");
    fx_free(f);
    static const char *const bad_urls[] = {
        "ftp://example.com/a.png",
        "data:image/png,abc",
        "data:;base64,abc",
        "file:///etc/passwd",
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(bad_urls); i++) {
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"model\":\"gemini-2.0-flash\",\"messages\":[{\"role\":\"user\",\"content\":"
                 "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"%s\"}}]}]}",
                 bad_urls[i]);
        build_fails(body, "messages", "image_url");
    }
    build_fails("{\"model\":\"gemini-2.0-flash\",\"messages\":[{\"role\":\"system\",\"content\":"
                "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/a.png\"}}]},"
                "{\"role\":\"user\",\"content\":\"Hi\"}]}",
                "messages", "system");
}

static void test_request_tools_and_choice(void **state)
{
    static const char *const tools =
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"description\":\"Weather for a city\",\"strict\":true,\"parameters\":{"
        "\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"type\":\"object\","
        "\"additionalProperties\":false,\"properties\":{"
        "\"city\":{\"type\":\"string\",\"format\":\"uri\",\"description\":\"City\"},"
        "\"when\":{\"type\":\"string\",\"format\":\"date-time\"},"
        "\"unit\":{\"type\":[\"string\",\"null\"],\"enum\":[\"c\",\"f\"]},"
        "\"mode\":{\"const\":\"fast\"},"
        "\"days\":{\"type\":\"integer\",\"minimum\":1,\"exclusiveMaximum\":15},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"additionalProperties\":"
        "{\"type\":\"string\"},\"properties\":{\"k\":{\"type\":\"string\"}}}},"
        "\"alt\":{\"oneOf\":[{\"type\":\"string\"},{\"$ref\":\"#/$defs/x\"}]}},"
        "\"required\":[\"city\"],\"$defs\":{\"x\":{\"type\":\"number\"}}}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"now\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{}}}},"
        "{\"function\":{\"name\":\"ping\"}}]";
    static const char *const decls =
        "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\","
        "\"description\":\"Weather for a city\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{"
        "\"city\":{\"type\":\"string\",\"description\":\"City\"},"
        "\"when\":{\"type\":\"string\",\"format\":\"date-time\"},"
        "\"unit\":{\"type\":\"string\",\"nullable\":true,\"enum\":[\"c\",\"f\"]},"
        "\"mode\":{\"enum\":[\"fast\"]},"
        "\"days\":{\"type\":\"integer\",\"minimum\":1},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":"
        "{\"k\":{\"type\":\"string\"}}}},"
        "\"alt\":{\"anyOf\":[{\"type\":\"string\"}]}},"
        "\"required\":[\"city\"]}},"
        "{\"name\":\"now\"},{\"name\":\"ping\"}]}]";
    static const struct {
        const char *choice, *config;
    } cases[] = {
        {NULL, NULL},
        {"\"auto\"", "{\"functionCallingConfig\":{\"mode\":\"AUTO\"}}"},
        {"\"none\"", "{\"functionCallingConfig\":{\"mode\":\"NONE\"}}"},
        {"\"required\"", "{\"functionCallingConfig\":{\"mode\":\"ANY\"}}"},
        {"{\"type\":\"function\",\"function\":{\"name\":\"now\"}}",
         "{\"functionCallingConfig\":{\"mode\":\"ANY\",\"allowedFunctionNames\":[\"now\"]}}"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        char in[4096], out[4096];
        snprintf(in, sizeof(in),
                 "{\"model\":\"gemini-2.0-flash\",\"messages\":[{\"role\":\"user\","
                 "\"content\":\"Hi\"}],%s%s%s}",
                 tools, cases[i].choice ? ",\"tool_choice\":" : "",
                 cases[i].choice ? cases[i].choice : "");
        snprintf(out, sizeof(out),
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}],%s%s%s}", decls,
                 cases[i].config ? ",\"toolConfig\":" : "", cases[i].config ? cases[i].config : "");
        fx_free(build_ok("google", GW_EP_CHAT, in,
                         GOOGLE_BASE "/models/gemini-2.0-flash:generateContent", out));
    }
    /* tool_choice without tools: nothing to configure. */
    fx_free(build_ok("google", GW_EP_CHAT,
                     "{\"model\":\"gemini-2.0-flash\",\"tool_choice\":\"none\","
                     "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
                     GOOGLE_BASE "/models/gemini-2.0-flash:generateContent",
                     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}]}"));
    build_fails("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\"}}],"
                "\"tool_choice\":\"sometimes\"}",
                "tool_choice", NULL);
    build_fails("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                "\"tools\":[{\"type\":\"web_search\"}]}",
                "tools", NULL);
}

static void test_request_tool_results(void **state)
{
    fx_t *f = build_ok(
        "google", GW_EP_CHAT,
        "{\"model\":\"gemini-2.0-flash\",\"messages\":["
        "{\"role\":\"user\",\"content\":\"Weather in Paris and Rome?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}},"
        "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"now\","
        "\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_0\",\"content\":\"{\\\"temp\\\":21}\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":[{\"type\":\"text\","
        "\"text\":\"[1,2]\"}]},"
        "{\"role\":\"assistant\",\"content\":\"Paris 21, Rome sunny.\",\"tool_calls\":["
        "{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"now\","
        "\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_0\",\"content\":\"noon\"},"
        "{\"role\":\"user\",\"content\":\"Thanks\"}]}",
        GOOGLE_BASE "/models/gemini-2.0-flash:generateContent",
        "{\"contents\":["
        "{\"role\":\"user\",\"parts\":[{\"text\":\"Weather in Paris and Rome?\"}]},"
        "{\"role\":\"model\",\"parts\":["
        "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}}},"
        "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Rome\"}}},"
        "{\"functionCall\":{\"name\":\"now\",\"args\":{}}}]},"
        "{\"role\":\"user\",\"parts\":["
        "{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"temp\":21}}},"
        "{\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"content\":\"sunny\"}}},"
        "{\"functionResponse\":{\"name\":\"now\",\"response\":{\"content\":\"[1,2]\"}}}]},"
        "{\"role\":\"model\",\"parts\":[{\"text\":\"Paris 21, Rome sunny.\"},"
        "{\"functionCall\":{\"name\":\"now\",\"args\":{}}}]},"
        "{\"role\":\"user\",\"parts\":["
        "{\"functionResponse\":{\"name\":\"now\",\"response\":{\"content\":\"noon\"}}},"
        "{\"text\":\"Thanks\"}]}]}");
    fx_free(f);
    build_fails("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},"
                "{\"role\":\"tool\",\"tool_call_id\":\"call_9\",\"content\":\"x\"}]}",
                "messages", "tool_call_id");
    build_fails("{\"model\":\"g\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
                "\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
                "messages", "JSON object");
}

static void test_request_generation_config(void **state)
{
    fx_t *f = build_ok(
        "google", GW_EP_CHAT,
        "{\"model\":\"gemini-2.0-flash\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
        "\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,\"max_tokens\":100,"
        "\"max_completion_tokens\":200,\"stop\":[\"END\",\"STOP\"],\"n\":2,\"seed\":7,"
        "\"presence_penalty\":0.1,\"frequency_penalty\":-0.2,\"user\":\"u1\","
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\","
        "\"strict\":true,\"schema\":{\"type\":\"object\",\"additionalProperties\":false,"
        "\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}}}}",
        GOOGLE_BASE "/models/gemini-2.0-flash:generateContent",
        "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}],"
        "\"generationConfig\":{\"temperature\":0.5,\"topP\":0.9,\"topK\":40,"
        "\"candidateCount\":2,\"seed\":7,\"presencePenalty\":0.1,\"frequencyPenalty\":-0.2,"
        "\"maxOutputTokens\":200,\"stopSequences\":[\"END\",\"STOP\"],"
        "\"responseMimeType\":\"application/json\",\"responseSchema\":{\"type\":\"object\","
        "\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}}}");
    fx_free(f);
    fx_free(build_ok("google", GW_EP_CHAT,
                     "{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                     "\"stop\":\"END\",\"max_tokens\":5,\"response_format\":{\"type\":"
                     "\"json_object\"},\"temperature\":null}",
                     GOOGLE_BASE "/models/g:generateContent",
                     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}],"
                     "\"generationConfig\":{\"maxOutputTokens\":5,\"stopSequences\":[\"END\"],"
                     "\"responseMimeType\":\"application/json\"}}"));
    fx_free(build_ok("google", GW_EP_CHAT,
                     "{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                     "\"response_format\":{\"type\":\"text\"}}",
                     GOOGLE_BASE "/models/g:generateContent",
                     "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"}]}]}"));
    build_fails("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                "\"temperature\":\"hot\"}",
                "temperature", NULL);
    build_fails("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                "\"max_tokens\":1.5}",
                "max_tokens", NULL);
    build_fails("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                "\"stop\":[1]}",
                "stop", NULL);
    build_fails("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
                "\"response_format\":{\"type\":\"xml\"}}",
                "response_format", NULL);
}

static void test_request_bad_messages_and_model(void **state)
{
    build_fails("{\"model\":\"g\",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
                "messages", "at least one");
    build_fails("{\"model\":\"g\",\"messages\":[{\"content\":\"x\"}]}", "messages", "role");
    build_fails("{\"model\":\"g\",\"messages\":[{\"role\":\"critic\",\"content\":\"x\"}]}",
                "messages", NULL);
    build_fails("{\"model\":\"g\",\"messages\":\"hi\"}", "messages", NULL);
    build_fails("{\"model\":\"g\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                "\"video\"}]}]}",
                "messages", NULL);
    static const char *const models[] = {"", "../x", "a/b", "gemini 2", "models/", "g?alt=json"};
    for (size_t i = 0; i < SL_ARRAY_SIZE(models); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
                 models[i]);
        build_fails(body, "model", NULL);
    }
}

static void test_request_vertex(void **state)
{
    fx_t *f = fx_new("vertex-ai", GW_EP_CHAT,
                     "{\"model\":\"gemini-2.0-flash-001\",\"messages\":[{\"role\":\"user\","
                     "\"content\":\"Hi\"}]}");
    /* Without its headers the base URL cannot be built. */
    assert_int_equal(build_request(&f->px), SL_EINVAL);
    assert_string_equal(f->px.error_param, "x-sluice-vertex-region");
    fx_free(f);

    f = fx_new("vertex-ai", GW_EP_CHAT,
               "{\"model\":\"gemini-2.0-flash-001\",\"stream\":true,\"messages\":[{\"role\":"
               "\"user\",\"content\":\"Hi\"}]}");
    fx_header(f, "x-sluice-vertex-project-id", "my-proj");
    fx_header(f, "x-sluice-vertex-region", "europe-west4");
    assert_int_equal(build_request(&f->px), 0);
    assert_string_equal(f->px.url, "https://europe-west4-aiplatform.googleapis.com/v1/projects/"
                                   "my-proj/locations/europe-west4/publishers/google/models/"
                                   "gemini-2.0-flash-001:streamGenerateContent?alt=sse");
    assert_true(sl_str_eq(header_of(&f->px, "authorization"), SL_STRLIT("Bearer secret-key-1234")));
    assert_int_equal(header_of(&f->px, "x-goog-api-key").len, 0);
    fx_free(f);

    f = fx_new("vertex-ai", GW_EP_CHAT,
               "{\"model\":\"gemini-2.0-flash-001\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hi\"}]}");
    fx_header(f, "x-sluice-vertex-project-id", "my-proj");
    fx_header(f, "x-sluice-vertex-region", "us-central1/../x");
    assert_int_equal(build_request(&f->px), SL_EINVAL);
    fx_free(f);

    /* A custom host replaces the whole base. */
    f = fx_new("vertex-ai", GW_EP_CHAT,
               "{\"model\":\"gemini-2.0-flash-001\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hi\"}]}");
    f->px.custom_host =
        SL_STRLIT("http://127.0.0.1:9/v1/projects/p/locations/l/publishers/google/");
    assert_int_equal(build_request(&f->px), 0);
    assert_string_equal(f->px.url, "http://127.0.0.1:9/v1/projects/p/locations/l/publishers/"
                                   "google/models/gemini-2.0-flash-001:generateContent");
    fx_free(f);
}

static void test_request_embeddings(void **state)
{
    fx_free(build_ok("google", GW_EP_EMBEDDINGS,
                     "{\"model\":\"text-embedding-004\",\"input\":\"hello\",\"dimensions\":8}",
                     GOOGLE_BASE "/models/text-embedding-004:embedContent",
                     "{\"model\":\"models/text-embedding-004\",\"content\":{\"parts\":[{\"text\":"
                     "\"hello\"}]},\"outputDimensionality\":8}"));
    fx_free(build_ok("google", GW_EP_EMBEDDINGS,
                     "{\"model\":\"models/gemini-embedding-001\",\"input\":[\"a\",\"b\"]}",
                     GOOGLE_BASE "/models/gemini-embedding-001:batchEmbedContents",
                     "{\"requests\":["
                     "{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":"
                     "\"a\"}]}},"
                     "{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":"
                     "\"b\"}]}}]}"));
    fx_t *f = fx_new("vertex-ai", GW_EP_EMBEDDINGS,
                     "{\"model\":\"text-embedding-005\",\"input\":[\"a\",\"b\"],\"dimensions\":4}");
    fx_header(f, "x-sluice-vertex-project-id", "p1");
    fx_header(f, "x-sluice-vertex-region", "us-central1");
    assert_int_equal(build_request(&f->px), 0);
    assert_string_equal(f->px.url, "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/"
                                   "locations/us-central1/publishers/google/models/"
                                   "text-embedding-005:predict");
    assert_json_eq(f->px.up_body, "{\"instances\":[{\"content\":\"a\"},{\"content\":\"b\"}],"
                                  "\"parameters\":{\"outputDimensionality\":4}}");
    fx_free(f);
    static const char *const bad_inputs[] = {
        "{\"model\":\"e\",\"input\":[1,2,3]}",
        "{\"model\":\"e\",\"input\":[]}",
        "{\"model\":\"e\"}",
        "{\"model\":\"e\",\"input\":\"x\",\"dimensions\":0}",
        "{\"model\":\"e\",\"input\":\"x\",\"encoding_format\":\"int8\"}",
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(bad_inputs); i++) {
        f = fx_new("google", GW_EP_EMBEDDINGS, bad_inputs[i]);
        if (build_request(&f->px) != SL_EINVAL)
            fail_msg("accepted %s", bad_inputs[i]);
        fx_free(f);
    }
}

/* ---- buffered answers ------------------------------------------------------------------------ */

static fx_t *answer(gw_endpoint_t ep, const char *req, int status, const char *body, int *rc)
{
    fx_t *f = fx_new("google", ep, req);
    assert_int_equal(build_request(&f->px), 0);
    f->px.up.status = status;
    assert_int_equal(sl_buf_append(&f->px.resp, body, strlen(body)), 0);
    *rc = on_response(&f->px);
    return f;
}

#define CHAT_REQ                                                                                   \
    "{\"model\":\"gemini-2.0-flash\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}"

static void test_response_text_and_usage(void **state)
{
    int rc;
    fx_t *f = answer(
        GW_EP_CHAT, CHAT_REQ, 200,
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"thinking...\",\"thought\":true},"
        "{\"text\":\"Hello\"},{\"text\":\" world\"}],\"role\":\"model\"},\"finishReason\":\"STOP\","
        "\"index\":0,\"safetyRatings\":[]}],\"usageMetadata\":{\"promptTokenCount\":10,"
        "\"candidatesTokenCount\":5,\"cachedContentTokenCount\":4,\"thoughtsTokenCount\":3,"
        "\"totalTokenCount\":18},\"modelVersion\":\"gemini-2.0-flash-001\","
        "\"responseId\":\"abc\"}",
        &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(f->px.up.status, 200);
    assert_string_equal(f->px.tr.resp_ct, "application/json");
    assert_json_eq(
        sl_buf_str(&f->px.resp),
        "{\"id\":\"chatcmpl-test\",\"object\":\"chat.completion\",\"created\":1700000000,"
        "\"model\":\"gemini-2.0-flash-001\",\"choices\":[{\"index\":0,\"message\":{"
        "\"role\":\"assistant\",\"content\":\"Hello world\"},\"logprobs\":null,"
        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,"
        "\"completion_tokens\":8,\"total_tokens\":18,\"prompt_tokens_details\":{"
        "\"cached_tokens\":4},\"completion_tokens_details\":{\"reasoning_tokens\":3}}}");
    assert_int_equal(f->px.usage.prompt_tokens, 10);
    assert_int_equal(f->px.usage.completion_tokens, 8);
    assert_int_equal(f->px.usage.cached_tokens, 4);
    assert_int_equal(f->px.usage.reasoning_tokens, 3);
    fx_free(f);
}

static void test_response_function_calls(void **state)
{
    int rc;
    fx_t *f = answer(
        GW_EP_CHAT, CHAT_REQ, 200,
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"get_weather\","
        "\"args\":{\"city\":\"Paris\",\"days\":2}}},{\"functionCall\":{\"name\":\"now\"}}],"
        "\"role\":\"model\"},\"finishReason\":\"STOP\"}],\"usageMetadata\":{"
        "\"promptTokenCount\":3,\"candidatesTokenCount\":2}}",
        &rc);
    assert_int_equal(rc, 0);
    assert_json_eq(
        sl_buf_str(&f->px.resp),
        "{\"id\":\"chatcmpl-test\",\"object\":\"chat.completion\",\"created\":1700000000,"
        "\"model\":\"gemini-test\",\"choices\":[{\"index\":0,\"message\":{"
        "\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"days\\\":2}\"}},"
        "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"now\","
        "\"arguments\":\"{}\"}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5,"
        "\"prompt_tokens_details\":{\"cached_tokens\":0},"
        "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}");
    fx_free(f);
}

static void test_response_finish_reasons(void **state)
{
    static const struct {
        const char *gemini, *openai;
    } cases[] = {
        {"\"STOP\"", "stop"},
        {"\"MAX_TOKENS\"", "length"},
        {"\"SAFETY\"", "content_filter"},
        {"\"RECITATION\"", "content_filter"},
        {"\"BLOCKLIST\"", "content_filter"},
        {"\"PROHIBITED_CONTENT\"", "content_filter"},
        {"\"SPII\"", "content_filter"},
        {"\"IMAGE_SAFETY\"", "content_filter"},
        {"\"OTHER\"", "stop"},
        {"\"LANGUAGE\"", "stop"},
        {"\"MALFORMED_FUNCTION_CALL\"", "stop"},
        {"\"FINISH_REASON_UNSPECIFIED\"", "stop"},
        {"null", "stop"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
                 "\"finishReason\":%s}]}",
                 cases[i].gemini);
        int rc;
        fx_t *f = answer(GW_EP_CHAT, CHAT_REQ, 200, body, &rc);
        assert_int_equal(rc, 0);
        json_t *j = json_loadb(f->px.resp.base, f->px.resp.len, 0, NULL);
        const char *fin =
            gw_tr_str(json_array_get(json_object_get(j, "choices"), 0), "finish_reason");
        if (fin == NULL || strcmp(fin, cases[i].openai) != 0)
            fail_msg("%s gave %s, expected %s", cases[i].gemini, fin ? fin : "(none)",
                     cases[i].openai);
        json_decref(j);
        fx_free(f);
    }
    /* A candidate blocked before any text: empty content, filtered. */
    int rc;
    fx_t *f = answer(GW_EP_CHAT, CHAT_REQ, 200,
                     "{\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0,"
                     "\"safetyRatings\":[{\"category\":\"HARM_CATEGORY_HARASSMENT\","
                     "\"probability\":\"HIGH\",\"blocked\":true}]}]}",
                     &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(f->px.up.status, 200);
    json_t *j = json_loadb(f->px.resp.base, f->px.resp.len, 0, NULL);
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    assert_string_equal(gw_tr_str(c, "finish_reason"), "content_filter");
    assert_string_equal(gw_tr_str(json_object_get(c, "message"), "content"), "");
    json_decref(j);
    fx_free(f);
}

static void test_response_candidates(void **state)
{
    int rc;
    fx_t *f = answer(GW_EP_CHAT, CHAT_REQ, 200,
                     "{\"candidates\":["
                     "{\"content\":{\"parts\":[{\"text\":\"A\"}]},\"finishReason\":\"STOP\"},"
                     "{\"content\":{\"parts\":[{\"text\":\"B\"}]},\"finishReason\":\"MAX_TOKENS\","
                     "\"index\":1}]}",
                     &rc);
    assert_int_equal(rc, 0);
    json_t *j = json_loadb(f->px.resp.base, f->px.resp.len, 0, NULL);
    json_t *ch = json_object_get(j, "choices");
    assert_int_equal(json_array_size(ch), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ch, 0), "index")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ch, 1), "index")), 1);
    assert_string_equal(gw_tr_str(json_array_get(ch, 1), "finish_reason"), "length");
    json_decref(j);
    fx_free(f);
    /* Neither candidates nor a block reason: not an answer. */
    f = answer(GW_EP_CHAT, CHAT_REQ, 200, "{\"usageMetadata\":{}}", &rc);
    assert_int_equal(rc, SL_EUPPROTO);
    fx_free(f);
    f = answer(GW_EP_CHAT, CHAT_REQ, 200, "not json", &rc);
    assert_int_equal(rc, SL_EUPPROTO);
    fx_free(f);
}

static void test_response_prompt_blocked(void **state)
{
    int rc;
    fx_t *f = answer(GW_EP_CHAT, CHAT_REQ, 200,
                     "{\"promptFeedback\":{\"blockReason\":\"SAFETY\",\"safetyRatings\":[{"
                     "\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":\"HIGH\","
                     "\"blocked\":true}]},\"usageMetadata\":{\"promptTokenCount\":7,"
                     "\"totalTokenCount\":7}}",
                     &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(f->px.up.status, 400);
    assert_false(f->px.retryable);
    json_t *j = json_loadb(f->px.resp.base, f->px.resp.len, 0, NULL);
    json_t *e = json_object_get(j, "error");
    assert_non_null(strstr(gw_tr_str(e, "message"), "SAFETY"));
    assert_string_equal(gw_tr_str(e, "type"), "invalid_request_error");
    assert_string_equal(gw_tr_str(e, "code"), "content_filter");
    assert_int_equal(f->px.usage.prompt_tokens, 7);
    json_decref(j);
    assert_true(f->px.provider_error.len > 0);
    fx_free(f);
}

static void test_response_errors(void **state)
{
    static const struct {
        int status;
        const char *body, *message, *type, *code;
        int retryable;
    } cases[] = {
        {400,
         "{\"error\":{\"code\":400,\"message\":\"Request contains an invalid argument.\","
         "\"status\":\"INVALID_ARGUMENT\"}}",
         "Request contains an invalid argument.", "invalid_request_error", "INVALID_ARGUMENT", 0},
        {403,
         "{\"error\":{\"code\":403,\"message\":\"Method doesn't allow unregistered callers\","
         "\"status\":\"PERMISSION_DENIED\"}}",
         "Method doesn't allow unregistered callers", "permission_error", "PERMISSION_DENIED", 0},
        {401, "{\"error\":{\"code\":401,\"message\":\"bad token\",\"status\":\"UNAUTHENTICATED\"}}",
         "bad token", "authentication_error", "UNAUTHENTICATED", 0},
        {429,
         "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\","
         "\"status\":\"RESOURCE_EXHAUSTED\"}}",
         "Resource has been exhausted", "rate_limit_error", "RESOURCE_EXHAUSTED", 1},
        {503,
         "[{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\","
         "\"status\":\"UNAVAILABLE\"}}]",
         "The model is overloaded.", "api_error", "UNAVAILABLE", 1},
        {504, "{\"error\":{\"code\":504,\"message\":\"late\",\"status\":\"DEADLINE_EXCEEDED\"}}",
         "late", "timeout_error", "DEADLINE_EXCEEDED", 0},
        {404, "<html>Not Found</html>", "the provider returned an error", "invalid_request_error",
         NULL, 0},
        {500, "{\"error\":{\"code\":500,\"message\":\"boom\"}}", "boom", "api_error", NULL, 0},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        int rc;
        fx_t *f = answer(GW_EP_CHAT, CHAT_REQ, cases[i].status, cases[i].body, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(f->px.up.status, cases[i].status);
        json_t *j = json_loadb(f->px.resp.base, f->px.resp.len, 0, NULL);
        json_t *e = json_object_get(j, "error");
        assert_non_null(e);
        assert_string_equal(gw_tr_str(e, "message"), cases[i].message);
        assert_string_equal(gw_tr_str(e, "type"), cases[i].type);
        if (cases[i].code)
            assert_string_equal(gw_tr_str(e, "code"), cases[i].code);
        else
            assert_true(json_is_null(json_object_get(e, "code")));
        assert_int_equal(f->px.retryable, cases[i].retryable);
        assert_true(f->px.provider_error.len > 0);
        json_decref(j);
        fx_free(f);
    }
}

static void test_response_embeddings(void **state)
{
    int rc;
    fx_t *f = answer(GW_EP_EMBEDDINGS, "{\"model\":\"text-embedding-004\",\"input\":\"hi\"}", 200,
                     "{\"embedding\":{\"values\":[0.5,-0.25]}}", &rc);
    assert_int_equal(rc, 0);
    assert_json_eq(sl_buf_str(&f->px.resp),
                   "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                   "\"embedding\":[0.5,-0.25]}],\"model\":\"text-embedding-004\","
                   "\"usage\":{\"prompt_tokens\":0,\"total_tokens\":0}}");
    fx_free(f);
    f = answer(GW_EP_EMBEDDINGS, "{\"model\":\"e\",\"input\":[\"a\",\"b\"]}", 200,
               "{\"embeddings\":[{\"values\":[1]},{\"values\":[2]}]}", &rc);
    assert_int_equal(rc, 0);
    assert_json_eq(sl_buf_str(&f->px.resp),
                   "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                   "\"embedding\":[1]},{\"object\":\"embedding\",\"index\":1,\"embedding\":[2]}],"
                   "\"model\":\"e\",\"usage\":{\"prompt_tokens\":0,\"total_tokens\":0}}");
    fx_free(f);
    /* base64: little-endian float32, as OpenAI sends it. 1.0f = 00 00 80 3f. */
    f = answer(GW_EP_EMBEDDINGS, "{\"model\":\"e\",\"input\":\"x\",\"encoding_format\":\"base64\"}",
               200, "{\"embedding\":{\"values\":[1.0,-2]}}", &rc);
    assert_int_equal(rc, 0);
    assert_json_eq(sl_buf_str(&f->px.resp),
                   "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                   "\"embedding\":\"AACAPwAAAMA=\"}],\"model\":\"e\","
                   "\"usage\":{\"prompt_tokens\":0,\"total_tokens\":0}}");
    fx_free(f);
    f = answer(GW_EP_EMBEDDINGS, "{\"model\":\"e\",\"input\":\"x\"}", 200, "{\"embeddings\":[]}",
               &rc);
    assert_int_equal(rc, SL_EUPPROTO);
    fx_free(f);

    /* Vertex AI's predict answer. */
    f = fx_new("vertex-ai", GW_EP_EMBEDDINGS,
               "{\"model\":\"text-embedding-005\",\"input\":"
               "[\"a\",\"b\"]}");
    fx_header(f, "x-sluice-vertex-project-id", "p1");
    fx_header(f, "x-sluice-vertex-region", "us-central1");
    assert_int_equal(build_request(&f->px), 0);
    f->px.up.status = 200;
    static const char pred[] =
        "{\"predictions\":[{\"embeddings\":{\"statistics\":{\"truncated\":false,"
        "\"token_count\":3},\"values\":[0.1]}},{\"embeddings\":{\"statistics\":{"
        "\"truncated\":false,\"token_count\":4},\"values\":[0.2]}}]}";
    assert_int_equal(sl_buf_append(&f->px.resp, pred, strlen(pred)), 0);
    assert_int_equal(on_response(&f->px), 0);
    assert_json_eq(sl_buf_str(&f->px.resp),
                   "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                   "\"embedding\":[0.1]},{\"object\":\"embedding\",\"index\":1,"
                   "\"embedding\":[0.2]}],\"model\":\"text-embedding-005\","
                   "\"usage\":{\"prompt_tokens\":7,\"total_tokens\":7}}");
    assert_int_equal(f->px.usage.prompt_tokens, 7);
    fx_free(f);
}

static void test_response_mode(void **state)
{
    fx_t *f = fx_new("google", GW_EP_CHAT, CHAT_REQ);
    f->up_hdrs[0].name = SL_STRLIT("Content-Type");
    f->up_hdrs[0].value = SL_STRLIT("text/event-stream");
    f->px.up.headers = f->up_hdrs;
    f->px.up.nheaders = 1;
    f->px.up.status = 200;
    assert_int_equal(gw_tr_sse_response_mode(&f->px), GW_RESP_MODE_SSE);
    f->px.up.status = 429;
    assert_int_equal(gw_tr_sse_response_mode(&f->px), GW_RESP_MODE_BUFFER);
    f->px.up.status = 200;
    f->up_hdrs[0].value = SL_STRLIT("application/json; charset=UTF-8");
    assert_int_equal(gw_tr_sse_response_mode(&f->px), GW_RESP_MODE_BUFFER);
    fx_free(f);
}

/* ---- streams -----------------------------------------------------------------------------------
 */

typedef struct {
    sl_buf_t out; /* everything emitted */
    int rc;       /* first non-zero return */
    int complete; /* stream_complete at the end */
    gw_usage_t usage;
    const char *err_msg;
} run_t;

/* Feeds the stream in pieces of `step` bytes, or (step 0) as the first `cut` bytes and the rest. */
static void run_stream(const char *in, size_t n, size_t step, size_t cut, run_t *r)
{
    fx_t *f = fx_new("google", GW_EP_CHAT,
                     "{\"model\":\"gemini-2.0-flash\",\"stream\":true,"
                     "\"stream_options\":{\"include_usage\":true},"
                     "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}");
    f->px.include_usage = 1;
    assert_int_equal(build_request(&f->px), 0);
    f->px.up.status = 200;
    memset(r, 0, sizeof(*r));
    sl_buf_init(&r->out, 1u << 24);
    size_t pos = 0;
    int first = 1;
    while ((pos < n || first) && r->rc == 0) {
        size_t len = step ? step : (first ? cut : n - pos);
        if (len > n - pos)
            len = n - pos;
        first = 0;
        sl_buf_reset(&f->px.out);
        r->rc = on_stream_data(&f->px, in + pos, len, &f->px.out);
        assert_int_equal(sl_buf_append(&r->out, f->px.out.base, f->px.out.len), 0);
        pos += len;
    }
    if (r->rc == 0) { /* the body ended cleanly: what the proxy does */
        sl_buf_reset(&f->px.out);
        r->rc = stream_end(&f->px, &f->px.out);
        assert_int_equal(sl_buf_append(&r->out, f->px.out.base, f->px.out.len), 0);
    }
    r->complete = r->rc == 0 && stream_complete(&f->px);
    r->usage = f->px.usage;
    r->err_msg = f->px.stream_error_message ? strdup(f->px.stream_error_message) : NULL;
    fx_free(f);
}

static void run_free(run_t *r)
{
    sl_buf_dispose(&r->out);
    free((void *)r->err_msg);
}

/* Same output whole, byte by byte and cut at every point. Returns the whole run. */
static void run_all_ways(const char *in, run_t *whole)
{
    size_t n = strlen(in);
    run_stream(in, n, 0, n, whole);
    run_t other;
    /* way 0: one byte at a time; way k > 0: cut after k - 1 bytes. */
    for (size_t way = 0; way <= n + 1; way++) {
        if (way == 0)
            run_stream(in, n, 1, 0, &other);
        else
            run_stream(in, n, 0, way - 1, &other);
        if (other.rc != whole->rc || other.complete != whole->complete ||
            other.out.len != whole->out.len ||
            (other.out.len && memcmp(other.out.base, whole->out.base, other.out.len) != 0))
            fail_msg("feeding %s gave a different output:\n%.*s\nvs whole:\n%.*s",
                     way == 0 ? "byte by byte" : "in two pieces", (int)other.out.len,
                     other.out.base ? other.out.base : "", (int)whole->out.len,
                     whole->out.base ? whole->out.base : "");
        assert_int_equal(other.usage.prompt_tokens, whole->usage.prompt_tokens);
        assert_int_equal(other.usage.completion_tokens, whole->usage.completion_tokens);
        run_free(&other);
    }
}

/* The events of an OpenAI stream as a JSON array ("[DONE]" as a string). */
static json_t *events_of(const sl_buf_t *b)
{
    json_t *a = json_array();
    const char *p = b->base, *end = b->base + b->len;
    while (p != NULL && p < end) {
        assert_true(end - p > 6 && memcmp(p, "data: ", 6) == 0);
        p += 6;
        const char *e = memmem(p, (size_t)(end - p), "\n\n", 2);
        assert_non_null(e);
        if (e - p == 6 && memcmp(p, "[DONE]", 6) == 0) {
            json_array_append_new(a, json_string("[DONE]"));
        } else {
            json_t *j = json_loadb(p, (size_t)(e - p), 0, NULL);
            assert_non_null(j);
            json_array_append_new(a, j);
        }
        p = e + 2;
    }
    return a;
}

static json_t *delta_of(json_t *ev)
{
    return json_object_get(json_array_get(json_object_get(ev, "choices"), 0), "delta");
}

static const char *finish_of(json_t *ev)
{
    return gw_tr_str(json_array_get(json_object_get(ev, "choices"), 0), "finish_reason");
}

static const char TEXT_STREAM[] =
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello\"}],\"role\":\"model\"},"
    "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":1,"
    "\"totalTokenCount\":5},\"modelVersion\":\"gemini-2.0-flash-001\",\"responseId\":\"r1\"}\r\n"
    "\r\n"
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" w\\u00f6rld\"}],\"role\":"
    "\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":4,\"candidatesTokenCount\":2,"
    "\"totalTokenCount\":6},\"modelVersion\":\"gemini-2.0-flash-001\"}\r\n"
    "\r\n"
    ": a comment line\n"
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"!\"}],\"role\":\"model\"},"
    "\"finishReason\":\"STOP\",\"index\":0,\"safetyRatings\":[]}],\"usageMetadata\":{"
    "\"promptTokenCount\":4,\"candidatesTokenCount\":3,\"thoughtsTokenCount\":2,"
    "\"cachedContentTokenCount\":1,\"totalTokenCount\":9},\"modelVersion\":"
    "\"gemini-2.0-flash-001\"}\r\n"
    "\r\n";

static void test_stream_text(void **state)
{
    run_t r;
    run_all_ways(TEXT_STREAM, &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.complete);
    json_t *evs = events_of(&r.out);
    assert_int_equal(json_array_size(evs), 7);
    json_t *e0 = json_array_get(evs, 0);
    assert_string_equal(gw_tr_str(e0, "id"), "chatcmpl-test");
    assert_string_equal(gw_tr_str(e0, "object"), "chat.completion.chunk");
    assert_string_equal(gw_tr_str(e0, "model"), "gemini-2.0-flash-001");
    assert_string_equal(gw_tr_str(delta_of(e0), "role"), "assistant");
    assert_string_equal(gw_tr_str(delta_of(json_array_get(evs, 1)), "content"), "Hello");
    assert_string_equal(gw_tr_str(delta_of(json_array_get(evs, 2)), "content"), " w\xc3\xb6rld");
    assert_string_equal(gw_tr_str(delta_of(json_array_get(evs, 3)), "content"), "!");
    assert_null(finish_of(json_array_get(evs, 3)));
    assert_string_equal(finish_of(json_array_get(evs, 4)), "stop");
    json_t *u = json_object_get(json_array_get(evs, 5), "usage");
    assert_int_equal(json_array_size(json_object_get(json_array_get(evs, 5), "choices")), 0);
    assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 4);
    assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 5);
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 9);
    assert_string_equal(json_string_value(json_array_get(evs, 6)), "[DONE]");
    assert_int_equal(r.usage.prompt_tokens, 4);
    assert_int_equal(r.usage.completion_tokens, 5);
    assert_int_equal(r.usage.cached_tokens, 1);
    assert_int_equal(r.usage.reasoning_tokens, 2);
    json_decref(evs);
    run_free(&r);
}

static void test_stream_tool_calls(void **state)
{
    run_t r;
    run_all_ways(
        "data: "
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"get_weather\","
        "\"args\":{\"city\":\"Paris\"}}},{\"functionCall\":{\"name\":\"now\",\"args\":{}}}],"
        "\"role\":\"model\"},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{"
        "\"promptTokenCount\":8,\"candidatesTokenCount\":6,\"totalTokenCount\":14}}\r\n\r\n",
        &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.complete);
    json_t *evs = events_of(&r.out);
    assert_int_equal(json_array_size(evs), 6); /* role, 2 calls, finish, usage, [DONE] */
    for (int k = 0; k < 2; k++) {
        json_t *tc =
            json_array_get(json_object_get(delta_of(json_array_get(evs, 1 + k)), "tool_calls"), 0);
        assert_int_equal(json_integer_value(json_object_get(tc, "index")), k);
        assert_string_equal(gw_tr_str(tc, "id"), k == 0 ? "call_0" : "call_1");
        assert_string_equal(gw_tr_str(tc, "type"), "function");
        json_t *fn = json_object_get(tc, "function");
        assert_string_equal(gw_tr_str(fn, "name"), k == 0 ? "get_weather" : "now");
        assert_string_equal(gw_tr_str(fn, "arguments"), k == 0 ? "{\"city\":\"Paris\"}" : "{}");
    }
    assert_string_equal(finish_of(json_array_get(evs, 3)), "tool_calls");
    json_decref(evs);
    run_free(&r);
}

static void test_stream_safety(void **state)
{
    /* The answer is cut by a safety filter in the middle. */
    run_t r;
    run_all_ways("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Sure, \"}]},"
                 "\"index\":0}]}\n\n"
                 "data: {\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0,"
                 "\"safetyRatings\":[{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\","
                 "\"probability\":\"HIGH\",\"blocked\":true}]}],\"usageMetadata\":{"
                 "\"promptTokenCount\":5,\"totalTokenCount\":5}}\n\n",
                 &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.complete);
    json_t *evs = events_of(&r.out);
    assert_int_equal(json_array_size(evs), 5);
    assert_string_equal(finish_of(json_array_get(evs, 2)), "content_filter");
    json_decref(evs);
    run_free(&r);

    /* The prompt itself is blocked: no candidates at all. */
    run_all_ways("data: {\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},"
                 "\"usageMetadata\":{\"promptTokenCount\":5,\"totalTokenCount\":5}}\r\n\r\n",
                 &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.complete);
    evs = events_of(&r.out);
    assert_int_equal(json_array_size(evs), 4); /* role, finish, usage, [DONE] */
    assert_string_equal(gw_tr_str(delta_of(json_array_get(evs, 0)), "role"), "assistant");
    assert_string_equal(finish_of(json_array_get(evs, 1)), "content_filter");
    json_decref(evs);
    run_free(&r);
}

static void test_stream_candidates(void **state)
{
    run_t r;
    run_all_ways("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"A\"}]}},"
                 "{\"content\":{\"parts\":[{\"text\":\"B\"}]},\"index\":1}]}\n\n"
                 "data: {\"candidates\":[{\"finishReason\":\"STOP\"},"
                 "{\"content\":{\"parts\":[{\"text\":\"C\"}]},\"index\":1}]}\n\n"
                 "data: {\"candidates\":[{\"finishReason\":\"MAX_TOKENS\",\"index\":1}]}\n\n",
                 &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.complete);
    json_t *evs = events_of(&r.out);
    /* role 0, A, role 1, B, finish 0, C, finish 1, usage, [DONE] */
    assert_int_equal(json_array_size(evs), 9);
    json_t *c1 = json_array_get(json_object_get(json_array_get(evs, 5), "choices"), 0);
    assert_int_equal(json_integer_value(json_object_get(c1, "index")), 1);
    assert_string_equal(gw_tr_str(json_object_get(c1, "delta"), "content"), "C");
    assert_string_equal(finish_of(json_array_get(evs, 6)), "length");
    json_decref(evs);
    run_free(&r);
}

static void test_stream_incomplete(void **state)
{
    run_t r;
    /* No finishReason: the body ended too early. */
    run_all_ways("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}]}}]}\r\n\r\n",
                 &r);
    assert_int_equal(r.rc, 0);
    assert_false(r.complete);
    run_free(&r);
    /* The last event was cut. */
    run_all_ways("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]},"
                 "\"finishReason\":\"STOP\"}]}\r\n\r\ndata: {\"candi",
                 &r);
    assert_int_equal(r.rc, 0);
    assert_false(r.complete);
    run_free(&r);
    /* Events after the end: their usage counts, nothing else comes out. */
    run_all_ways("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]},"
                 "\"finishReason\":\"STOP\"}]}\n\n"
                 "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"late\"}]}}],"
                 "\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":1}}\n\n",
                 &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.complete);
    assert_null(memmem(r.out.base, r.out.len, "late", 4));
    assert_int_equal(r.usage.prompt_tokens, 3);
    run_free(&r);
    /* An error after the end does not undo a complete answer. */
    run_all_ways("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]},"
                 "\"finishReason\":\"STOP\"}]}\n\n"
                 "data: {\"error\":{\"code\":500,\"message\":\"late\"}}\n\n",
                 &r);
    assert_int_equal(r.rc, 0);
    assert_true(r.complete);
    run_free(&r);
}

static void test_stream_errors(void **state)
{
    run_t r;
    run_all_ways("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\r\n\r\n"
                 "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded.\","
                 "\"status\":\"UNAVAILABLE\"}}\r\n\r\n",
                 &r);
    assert_int_equal(r.rc, SL_EUPSTREAM);
    assert_false(r.complete);
    assert_non_null(r.err_msg);
    assert_string_equal(r.err_msg, "gemini: The model is overloaded.");
    json_t *evs = events_of(&r.out);
    assert_int_equal(json_array_size(evs), 2); /* role and "Hi" went out first */
    json_decref(evs);
    run_free(&r);

    run_all_ways("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\n\n"
                 "data: {\"candidates\":[{\"content\":\n\n",
                 &r);
    assert_int_equal(r.rc, SL_EUPPROTO);
    run_free(&r);
    run_all_ways("data: [1,2]\n\n", &r);
    assert_int_equal(r.rc, SL_EUPPROTO);
    run_free(&r);
    run_all_ways("data: {\"candidates\":[{\"index\":99}]}\n\n", &r);
    assert_int_equal(r.rc, SL_EUPPROTO);
    run_free(&r);
}

/* An Anthropic-format client gets the same stream as Messages events. */
static void test_stream_anthropic_client(void **state)
{
    fx_t *f = fx_new("google", GW_EP_CHAT,
                     "{\"model\":\"gemini-2.0-flash\",\"stream\":true,\"messages\":[{\"role\":"
                     "\"user\",\"content\":\"Hi\"}]}");
    f->px.client = GW_CLIENT_ANTHROPIC;
    assert_int_equal(build_request(&f->px), 0);
    assert_int_equal(on_stream_data(&f->px, TEXT_STREAM, strlen(TEXT_STREAM), &f->px.out), 0);
    assert_int_equal(stream_end(&f->px, &f->px.out), 0);
    assert_true(stream_complete(&f->px));
    sl_str_t o = sl_buf_str(&f->px.out);
    assert_non_null(memmem(o.base, o.len, "event: message_start", 20));
    assert_non_null(memmem(o.base, o.len, "event: message_stop", 19));
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_system_and_turns),
        cmocka_unit_test(test_request_headers),
        cmocka_unit_test(test_request_stream_url_and_model_prefix),
        cmocka_unit_test(test_request_images),
        cmocka_unit_test(test_request_tools_and_choice),
        cmocka_unit_test(test_request_tool_results),
        cmocka_unit_test(test_request_generation_config),
        cmocka_unit_test(test_request_bad_messages_and_model),
        cmocka_unit_test(test_request_vertex),
        cmocka_unit_test(test_request_embeddings),
        cmocka_unit_test(test_response_text_and_usage),
        cmocka_unit_test(test_response_function_calls),
        cmocka_unit_test(test_response_finish_reasons),
        cmocka_unit_test(test_response_candidates),
        cmocka_unit_test(test_response_prompt_blocked),
        cmocka_unit_test(test_response_errors),
        cmocka_unit_test(test_response_embeddings),
        cmocka_unit_test(test_response_mode),
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_tool_calls),
        cmocka_unit_test(test_stream_safety),
        cmocka_unit_test(test_stream_candidates),
        cmocka_unit_test(test_stream_incomplete),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_anthropic_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
