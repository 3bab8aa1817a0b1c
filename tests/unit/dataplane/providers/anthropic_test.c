/*
 * Tests for dataplane/providers/anthropic.c (OpenAI -> Anthropic Messages
 * and back) and anthropic_in.c (/v1/messages in, Anthropic answers out).
 * Fixtures follow the examples of Anthropic's Messages API reference and
 * its streaming guide.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "dataplane/providers/anthropic_in.h"
#include "px_fixture.h"

/* ---- OpenAI request -> Anthropic request ------------------------------------ */

static void request_translation(void **state)
{
    (void)state;
    px_fixture_t *f = px_new(
        "anthropic", "/v1/chat/completions",
        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":300,\"temperature\":0.5,"
        "\"stop\":\"END\",\"user\":\"u1\",\"parallel_tool_calls\":false,"
        "\"messages\":["
        "{\"role\":\"system\",\"content\":\"You are terse.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Use metric.\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBOR\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a.jpg\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"18C\"},"
        "{\"role\":\"user\",\"content\":\"And tomorrow?\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"description\":\"Weather\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}");
    assert_int_equal(gw_adapter_anthropic.build_request(&f->px), 0);
    assert_string_equal(f->px.url, "https://api.anthropic.com/v1/messages");
    gw_http_header_t *h = f->px.up_headers;
    size_t n = f->px.n_up_headers;
    assert_true(sl_str_eq(gw_http_header_find(h, n, "x-api-key"), SL_STRLIT("sk-test-key")));
    assert_true(sl_str_eq(gw_http_header_find(h, n, "anthropic-version"), SL_STRLIT("2023-06-01")));
    assert_int_equal(gw_http_header_find(h, n, "authorization").len, 0);
    assert_json_eq(
        f->px.up_body,
        "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":300,\"temperature\":0.5,"
        "\"stop_sequences\":[\"END\"],\"metadata\":{\"user_id\":\"u1\"},"
        "\"system\":[{\"type\":\"text\",\"text\":\"You are terse.\"},"
        "{\"type\":\"text\",\"text\":\"Use metric.\"}],"
        "\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"},"
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
        "\"data\":\"iVBOR\"}},"
        "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.jpg\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"call_1\","
        "\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"call_1\","
        "\"content\":[{\"type\":\"text\",\"text\":\"18C\"}]},"
        "{\"type\":\"text\",\"text\":\"And tomorrow?\"}]}],"
        "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather\","
        "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}],"
        "\"tool_choice\":{\"type\":\"tool\",\"name\":\"get_weather\","
        "\"disable_parallel_tool_use\":true}}");
    px_free(f);
}

static void request_defaults_and_refusals(void **state)
{
    (void)state;
    px_fixture_t *f = px_new("anthropic", "/v1/chat/completions",
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    px_header(f, "x-sluice-anthropic-version", "2024-01-01");
    px_header(f, "anthropic-beta", "prompt-caching-2024-07-31");
    assert_int_equal(gw_adapter_anthropic.build_request(&f->px), 0);
    assert_json_eq(f->px.up_body, "{\"model\":\"m\",\"max_tokens\":4096,\"messages\":"
                                  "[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                                  "\"text\":\"hi\"}]}]}");
    gw_http_header_t *h = f->px.up_headers;
    assert_true(sl_str_eq(gw_http_header_find(h, f->px.n_up_headers, "anthropic-version"),
                          SL_STRLIT("2024-01-01")));
    assert_true(sl_str_eq(gw_http_header_find(h, f->px.n_up_headers, "anthropic-beta"),
                          SL_STRLIT("prompt-caching-2024-07-31")));
    px_free(f);

    static const char *const bad[] = {
        "{\"model\":\"m\",\"messages\":[]}",
        "{\"model\":\"m\",\"messages\":[{\"content\":\"no role\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"not json\"}}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"maybe\"}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
        "\"image_url\":{\"url\":\"data:image/png,notbase64\"}}]}]}",
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++) {
        f = px_new("anthropic", "/v1/chat/completions", bad[i]);
        if (gw_adapter_anthropic.build_request(&f->px) != SL_EINVAL)
            fail_msg("accepted: %s", bad[i]);
        assert_non_null(f->px.error_message);
        px_free(f);
    }
}

/* ---- Anthropic answers -> OpenAI answers ------------------------------------ */

static json_t *resp_json(px_fixture_t *f)
{
    json_t *j = json_loadb(f->px.resp.base, f->px.resp.len, 0, NULL);
    assert_non_null(j);
    json_object_del(j, "created");
    return j;
}

static void response_translation(void **state)
{
    (void)state;
    px_fixture_t *f = px_new("anthropic", "/v1/chat/completions",
                             "{\"model\":\"claude-sonnet-4-5\",\"messages\":[]}");
    px_upstream(f, 200, "application/json");
    px_resp(f, "{\"id\":\"msg_01Aq9w938a90dw8q\",\"type\":\"message\",\"role\":\"assistant\","
               "\"model\":\"claude-sonnet-4-5-20250929\",\"content\":["
               "{\"type\":\"text\",\"text\":\"I'll check \"},{\"type\":\"text\",\"text\":\"that.\"},"
               "{\"type\":\"tool_use\",\"id\":\"toolu_01A09q90qw90lq917835lq9\","
               "\"name\":\"get_weather\",\"input\":{\"location\":\"San Francisco, CA\"}}],"
               "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,"
               "\"output_tokens\":91,\"cache_creation_input_tokens\":10,"
               "\"cache_read_input_tokens\":100}}");
    assert_int_equal(gw_adapter_anthropic.on_response(&f->px), 0);
    assert_string_equal(f->px.tr.resp_ct, "application/json");
    json_t *j = resp_json(f);
    char *s = json_dumps(j, JSON_COMPACT);
    assert_json_eq(sl_str_c(s),
                   "{\"id\":\"msg_01Aq9w938a90dw8q\",\"object\":\"chat.completion\","
                   "\"model\":\"claude-sonnet-4-5-20250929\",\"choices\":[{\"index\":0,"
                   "\"message\":{\"role\":\"assistant\",\"content\":\"I'll check that.\","
                   "\"tool_calls\":[{\"id\":\"toolu_01A09q90qw90lq917835lq9\",\"type\":\"function\","
                   "\"function\":{\"name\":\"get_weather\","
                   "\"arguments\":\"{\\\"location\\\":\\\"San Francisco, CA\\\"}\"}}]},"
                   "\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],"
                   "\"usage\":{\"prompt_tokens\":582,\"completion_tokens\":91,\"total_tokens\":673,"
                   "\"prompt_tokens_details\":{\"cached_tokens\":100},"
                   "\"completion_tokens_details\":{\"reasoning_tokens\":0},"
                   "\"cache_creation_input_tokens\":10}}");
    free(s);
    json_decref(j);
    assert_int_equal(f->px.usage.prompt_tokens, 582);
    assert_int_equal(f->px.usage.cached_tokens, 100);
    assert_int_equal(f->px.usage.cache_write_tokens, 10);
    px_free(f);

    static const struct {
        const char *stop, *finish;
    } stops[] = {{"end_turn", "stop"},         {"stop_sequence", "stop"},
                 {"max_tokens", "length"},     {"tool_use", "tool_calls"},
                 {"refusal", "content_filter"}, {"pause_turn", "stop"}};
    for (size_t i = 0; i < SL_ARRAY_SIZE(stops); i++) {
        f = px_new("anthropic", "/v1/chat/completions", "{\"model\":\"m\",\"messages\":[]}");
        px_upstream(f, 200, "application/json");
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\","
                 "\"content\":[],\"stop_reason\":\"%s\",\"usage\":{\"input_tokens\":1,"
                 "\"output_tokens\":0}}",
                 stops[i].stop);
        px_resp(f, body);
        assert_int_equal(gw_adapter_anthropic.on_response(&f->px), 0);
        j = resp_json(f);
        json_t *c = json_array_get(json_object_get(j, "choices"), 0);
        assert_string_equal(gw_tr_str(c, "finish_reason"), stops[i].finish);
        assert_string_equal(gw_tr_str(json_object_get(c, "message"), "content"), "");
        json_decref(j);
        px_free(f);
    }
}

static void error_translation(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *type;
        int retryable;
    } cases[] = {{529, "overloaded_error", 1}, {429, "rate_limit_error", 1},
                 {400, "invalid_request_error", 0}, {401, "authentication_error", 0}};
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        px_fixture_t *f = px_new("anthropic", "/v1/chat/completions", "{\"model\":\"m\"}");
        px_upstream(f, cases[i].status, "application/json");
        char body[256];
        snprintf(body, sizeof(body),
                 "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"Nope\"}}",
                 cases[i].type);
        px_resp(f, body);
        assert_int_equal(gw_adapter_anthropic.on_response(&f->px), 0);
        char want[256];
        snprintf(want, sizeof(want),
                 "{\"error\":{\"message\":\"Nope\",\"type\":\"%s\",\"param\":null,\"code\":null}}",
                 cases[i].type);
        assert_json_eq(sl_buf_str(&f->px.resp), want);
        assert_int_equal(f->px.retryable, cases[i].retryable);
        assert_true(sl_str_eq(f->px.provider_error, sl_str_c(body)));
        px_free(f);
    }
    /* Not JSON at all (a proxy's HTML page): still an OpenAI error. */
    px_fixture_t *f = px_new("anthropic", "/v1/chat/completions", "{\"model\":\"m\"}");
    px_upstream(f, 502, "text/html");
    px_resp(f, "<html>bad gateway</html>");
    assert_int_equal(gw_adapter_anthropic.on_response(&f->px), 0);
    json_t *j = resp_json(f);
    assert_string_equal(gw_tr_str(json_object_get(j, "error"), "type"), "api_error");
    json_decref(j);
    px_free(f);
}

/* ---- streams ------------------------------------------------------------------ */

static const char stream_fixture[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_014p7gG3wDgGV9EUtLvnow3U\","
    "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\","
    "\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,\"output_tokens\":2},"
    "\"content\":[],\"stop_reason\":null}}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Okay\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\", let\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_01T1x1fJ34qAmk2tNTrN7Up6\",\"name\":\"get_weather\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"location\\\":\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\" \\\"San Francisco, CA\\\"}\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
    "\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

/* Feeds the stream in pieces of the given sizes (0: the rest) and returns
 * what the client got; asserts the stream completed. */
static char *run_stream(const char *provider, const char *body, const char *stream,
                        size_t piece, int *complete)
{
    px_fixture_t *f = px_new(provider, "/v1/chat/completions", body);
    gw_tr_ids(&f->px);
    f->px.tr.created = 1700000000;
    px_upstream(f, 200, "text/event-stream");
    sl_buf_t all;
    sl_buf_init(&all, 1u << 20);
    size_t len = strlen(stream);
    int err = 0;
    for (size_t off = 0; off < len && err == 0;) {
        size_t n = piece == 0 || piece > len - off ? len - off : piece;
        sl_buf_reset(&f->px.out);
        err = f->px.adapter->on_stream_data(&f->px, stream + off, n, &f->px.out);
        assert_int_equal(sl_buf_append(&all, f->px.out.base, f->px.out.len), 0);
        off += n;
    }
    *complete = err == 0 && f->px.adapter->stream_complete(&f->px);
    char *s = sl_xmalloc(all.len + 1);
    memcpy(s, all.base, all.len);
    s[all.len] = '\0';
    sl_buf_dispose(&all);
    px_free(f);
    return s;
}

static void stream_translation(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"claude-sonnet-4-5\",\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true},\"messages\":[]}";
    int complete;
    char *whole = run_stream("anthropic", body, stream_fixture, 0, &complete);
    assert_true(complete);
    /* The same output whatever the network's splits. */
    for (size_t piece = 1; piece < 64; piece += (piece < 8 ? 1 : 13)) {
        char *s = run_stream("anthropic", body, stream_fixture, piece, &complete);
        assert_true(complete);
        assert_string_equal(s, whole);
        sl_free(s);
    }
    /* What the client reads: OpenAI chunks. */
    sl_buf_t text, args;
    sl_buf_init(&text, 1u << 20);
    sl_buf_init(&args, 1u << 20);
    int nchunks = 0, done = 0, role = 0, usage = 0;
    const char *finish = NULL;
    for (char *line = strtok(whole, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        assert_true(strncmp(line, "data: ", 6) == 0);
        if (strcmp(line + 6, "[DONE]") == 0) {
            done = 1;
            continue;
        }
        assert_false(done);
        json_t *c = json_loads(line + 6, 0, NULL);
        assert_non_null(c);
        nchunks++;
        assert_string_equal(gw_tr_str(c, "id"), "msg_014p7gG3wDgGV9EUtLvnow3U");
        assert_string_equal(gw_tr_str(c, "object"), "chat.completion.chunk");
        json_t *ch = json_array_get(json_object_get(c, "choices"), 0);
        json_t *d = json_object_get(ch, "delta");
        if (gw_tr_str(d, "role") != NULL)
            role++;
        if (gw_tr_str(d, "content") != NULL)
            assert_int_equal(sl_buf_append_str(&text, sl_str_c(gw_tr_str(d, "content"))), 0);
        json_t *tc = json_array_get(json_object_get(d, "tool_calls"), 0);
        if (tc != NULL) {
            assert_int_equal(json_integer_value(json_object_get(tc, "index")), 0);
            const char *a = gw_tr_str(json_object_get(tc, "function"), "arguments");
            if (a != NULL)
                assert_int_equal(sl_buf_append_str(&args, sl_str_c(a)), 0);
        }
        if (gw_tr_str(ch, "finish_reason") != NULL)
            finish = strcmp(gw_tr_str(ch, "finish_reason"), "tool_calls") == 0 ? "tool_calls"
                                                                               : "other";
        json_t *u = json_object_get(c, "usage");
        if (json_is_object(u)) {
            usage++;
            assert_int_equal(json_integer_value(json_object_get(u, "prompt_tokens")), 472);
            assert_int_equal(json_integer_value(json_object_get(u, "completion_tokens")), 89);
        }
        json_decref(c);
    }
    assert_true(done);
    assert_int_equal(role, 1);
    assert_int_equal(usage, 1);
    assert_string_equal(finish, "tool_calls");
    assert_true(sl_str_eq(sl_buf_str(&text), SL_STRLIT("Okay, let")));
    assert_true(sl_str_eq(sl_buf_str(&args), SL_STRLIT("{\"location\": \"San Francisco, CA\"}")));
    assert_true(nchunks >= 7);
    sl_buf_dispose(&text);
    sl_buf_dispose(&args);
    sl_free(whole);

    /* Without include_usage the usage-only chunk is not sent. */
    char *s = run_stream("anthropic", "{\"model\":\"m\",\"stream\":true,\"messages\":[]}",
                         stream_fixture, 0, &complete);
    assert_null(strstr(s, "\"usage\""));
    assert_non_null(strstr(s, "data: [DONE]\n\n"));
    sl_free(s);
}

static void stream_failures(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"m\",\"stream\":true,\"messages\":[]}";
    int complete;
    /* Cut before message_stop: not complete, and no [DONE]. */
    char cut[sizeof(stream_fixture)];
    memcpy(cut, stream_fixture, sizeof(stream_fixture));
    *strstr(cut, "event: message_stop") = '\0';
    char *s = run_stream("anthropic", body, cut, 0, &complete);
    assert_false(complete);
    assert_null(strstr(s, "[DONE]"));
    sl_free(s);

    /* An error event mid-stream ends it with the provider's words. */
    px_fixture_t *f = px_new("anthropic", "/v1/chat/completions", body);
    px_upstream(f, 200, "text/event-stream");
    const char *err = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":"
                      "\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    assert_int_equal(f->px.adapter->on_stream_data(&f->px, err, strlen(err), &f->px.out),
                     SL_EUPSTREAM);
    assert_non_null(strstr(f->px.stream_error_message, "Overloaded"));
    px_free(f);

    /* Not JSON, unknown block index: protocol errors. */
    static const char *const bad[] = {
        "event: message_start\ndata: {not json\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":5,"
        "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
        "data: {\"no\":\"type\"}\n\n",
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++) {
        f = px_new("anthropic", "/v1/chat/completions", body);
        px_upstream(f, 200, "text/event-stream");
        assert_int_equal(f->px.adapter->on_stream_data(&f->px, bad[i], strlen(bad[i]), &f->px.out),
                         SL_EUPPROTO);
        px_free(f);
    }
}

/* ---- /v1/messages: Anthropic in ------------------------------------------------- */

static void inbound_request(void **state)
{
    (void)state;
    px_fixture_t *f = px_new(
        "openai", "/v1/messages",
        "{\"model\":\"claude-x\",\"max_tokens\":64,\"stream\":true,"
        "\"system\":[{\"type\":\"text\",\"text\":\"Sys\"}],\"stop_sequences\":[\"X\"],"
        "\"tool_choice\":{\"type\":\"auto\",\"disable_parallel_tool_use\":true},"
        "\"tools\":[{\"name\":\"t\",\"input_schema\":{\"type\":\"object\"}}],"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
        "{\"type\":\"base64\",\"media_type\":\"image/jpeg\",\"data\":\"AAA\"}},"
        "{\"type\":\"text\",\"text\":\"hi\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\"},"
        "{\"type\":\"tool_use\",\"id\":\"tu1\",\"name\":\"t\",\"input\":{\"a\":1}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"tu1\","
        "\"is_error\":true,\"content\":\"boom\"}]}]}");
    f->px.client = GW_CLIENT_ANTHROPIC;
    f->px.endpoint = GW_EP_MESSAGES;
    assert_int_equal(gw_anthropic_in_request(&f->px), 0);
    assert_int_equal(f->px.endpoint, GW_EP_CHAT);
    assert_true(f->px.body_dirty);
    assert_true(f->px.stream);
    char *s = json_dumps(f->px.body, JSON_COMPACT);
    assert_json_eq(sl_str_c(s),
                   "{\"model\":\"claude-x\",\"max_tokens\":64,\"stream\":true,"
                   "\"stream_options\":{\"include_usage\":true},\"stop\":[\"X\"],"
                   "\"parallel_tool_calls\":false,\"tool_choice\":\"auto\","
                   "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"t\","
                   "\"parameters\":{\"type\":\"object\"}}}],"
                   "\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\","
                   "\"text\":\"Sys\"}]},"
                   "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":"
                   "{\"url\":\"data:image/jpeg;base64,AAA\"}},{\"type\":\"text\",\"text\":\"hi\"}]},"
                   "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"tu1\","
                   "\"type\":\"function\",\"function\":{\"name\":\"t\","
                   "\"arguments\":\"{\\\"a\\\":1}\"}}]},"
                   "{\"role\":\"tool\",\"tool_call_id\":\"tu1\",\"content\":\"Error: boom\"}]}");
    free(s);
    px_free(f);
}

static void inbound_answers(void **state)
{
    (void)state;
    px_fixture_t *f = px_new("openai", "/v1/messages", "{\"model\":\"m\"}");
    f->px.client = GW_CLIENT_ANTHROPIC;
    json_t *o = json_loads(
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"model\":\"gpt\",\"choices\":"
        "[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi\",\"tool_calls\":"
        "[{\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"f\","
        "\"arguments\":\"{\\\"x\\\":2}\"}}]},\"finish_reason\":\"tool_calls\"}],"
        "\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3,\"total_tokens\":13,"
        "\"prompt_tokens_details\":{\"cached_tokens\":4}}}",
        0, NULL);
    assert_int_equal(gw_tr_respond_json(&f->px, o), 0);
    assert_json_eq(sl_buf_str(&f->px.resp),
                   "{\"id\":\"chatcmpl-1\",\"type\":\"message\",\"role\":\"assistant\","
                   "\"model\":\"gpt\",\"content\":[{\"type\":\"text\",\"text\":\"Hi\"},"
                   "{\"type\":\"tool_use\",\"id\":\"call_9\",\"name\":\"f\",\"input\":{\"x\":2}}],"
                   "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":"
                   "{\"input_tokens\":6,\"output_tokens\":3,\"cache_read_input_tokens\":4,"
                   "\"cache_creation_input_tokens\":0}}");
    px_free(f);

    /* Stream: OpenAI chunks in, Anthropic events out, in order. */
    f = px_new("openai", "/v1/messages", "{\"model\":\"m\"}");
    f->px.client = GW_CLIENT_ANTHROPIC;
    static const char *const chunks[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\","
        "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
        "{\"arguments\":\"{\\\"x\\\":\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
        "{\"arguments\":\"2}\"}}]}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":3}}",
    };
    sl_buf_t out;
    sl_buf_init(&out, 1u << 20);
    for (size_t i = 0; i < SL_ARRAY_SIZE(chunks); i++)
        assert_int_equal(gw_tr_emit_chunk(&f->px, json_loads(chunks[i], 0, NULL), &out), 0);
    assert_int_equal(gw_tr_emit_done(&f->px, &out), 0);
    assert_true(f->px.sse_done);
    static const char *const want[] = {
        "message_start", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta",
        "content_block_delta", "content_block_stop", "message_delta", "message_stop",
    };
    char *text = sl_xmalloc(out.len + 1);
    memcpy(text, out.base, out.len);
    text[out.len] = '\0';
    size_t k = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, "event: ", 7) == 0) {
            assert_true(k < SL_ARRAY_SIZE(want));
            assert_string_equal(line + 7, want[k]);
            k++;
        } else {
            assert_true(strncmp(line, "data: {\"type\":\"", 15) == 0);
            assert_true(strncmp(line + 15, want[k - 1], strlen(want[k - 1])) == 0);
        }
    }
    assert_int_equal(k, SL_ARRAY_SIZE(want));
    assert_non_null(memmem(out.base, out.len, "\"stop_reason\":\"tool_use\"", 24));
    assert_non_null(memmem(out.base, out.len, "\"partial_json\":\"{\\\"x\\\":\"", 23));
    sl_free(text);
    sl_buf_dispose(&out);
    px_free(f);

    json_t *e = gw_anthropic_in_error(529, "busy");
    char *s = json_dumps(e, JSON_COMPACT);
    assert_json_eq(sl_str_c(s),
                   "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}");
    free(s);
    json_decref(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_translation),  cmocka_unit_test(request_defaults_and_refusals),
        cmocka_unit_test(response_translation), cmocka_unit_test(error_translation),
        cmocka_unit_test(stream_translation),   cmocka_unit_test(stream_failures),
        cmocka_unit_test(inbound_request),      cmocka_unit_test(inbound_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
