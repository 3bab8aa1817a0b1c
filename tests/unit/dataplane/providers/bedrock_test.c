/*
 * Tests for dataplane/providers/bedrock.c (OpenAI -> Bedrock Converse,
 * ConverseStream and InvokeModel embeddings, and back). Fixtures follow
 * the examples of AWS's Bedrock Runtime API reference (Converse,
 * ConverseStream, InvokeModel, the Titan and Cohere embedding parameter
 * pages); event streams are built with gw_es_encode, with the headers
 * Bedrock sets (:event-type, :content-type, :message-type) and the "p"
 * padding field its payloads carry. Signatures are compared with
 * gw_sigv4_sign called directly on what the adapter sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <time.h>

#include "dataplane/providers/eventstream.h"
#include "dataplane/providers/sigv4.h"
#include "px_fixture.h"

#define KEY_ID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define TOKEN "IQoJb3JpZ2luX2VjEXAMPLEsessionTOKEN/with+base64=="
#define MODEL "anthropic.claude-3-5-sonnet-20240620-v1:0"
#define MODEL_ENC "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
#define BASE "https://bedrock-runtime.us-east-1.amazonaws.com"

/* A bedrock request with credentials in the x-sluice-aws-* headers. */
static px_fixture_t *br_new(const char *body)
{
    px_fixture_t *f = px_new("bedrock", "/v1/chat/completions", body);
    px_header(f, "x-sluice-aws-access-key-id", KEY_ID);
    px_header(f, "x-sluice-aws-secret-access-key", SECRET);
    px_header(f, "x-sluice-aws-region", "us-east-1");
    return f;
}

static px_fixture_t *br_embed(const char *body)
{
    px_fixture_t *f = br_new(body);
    f->req.path = SL_STRLIT("/v1/embeddings");
    f->px.endpoint = GW_EP_EMBEDDINGS;
    f->px.endpoint_name = "embeddings";
    return f;
}

static sl_str_t up_header(px_fixture_t *f, const char *name)
{
    return gw_http_header_find(f->px.up_headers, f->px.n_up_headers, name);
}

/* The secret never leaves through the URL, a header or the body. */
static void assert_no_secret(px_fixture_t *f)
{
    if (f->px.url != NULL)
        assert_null(strstr(f->px.url, SECRET));
    for (size_t i = 0; i < f->px.n_up_headers; i++)
        assert_null(memmem(f->px.up_headers[i].value.base, f->px.up_headers[i].value.len,
                           SECRET, strlen(SECRET)));
    if (f->px.up_body.len > 0)
        assert_null(memmem(f->px.up_body.base, f->px.up_body.len, SECRET, strlen(SECRET)));
    if (f->px.error_message != NULL)
        assert_null(strstr(f->px.error_message, SECRET));
}

/* ---- OpenAI request -> Converse request ------------------------------------------------ */

static void request_translation(void **state)
{
    (void)state;
    px_fixture_t *f = br_new(
        "{\"model\":\"" MODEL "\",\"max_tokens\":300,\"temperature\":0.5,\"top_p\":0.9,"
        "\"stop\":[\"END\",\"STOP\"],\"user\":\"u1\",\"parallel_tool_calls\":false,"
        "\"messages\":["
        "{\"role\":\"system\",\"content\":\"You are terse.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Use metric.\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBOR\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,/9j/4A\"}}]},"
        "{\"role\":\"user\",\"content\":\"In Paris.\"},"
        "{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":[{\"id\":\"call_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":\"call_2\","
        "\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"18C\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_2\","
        "\"content\":[{\"type\":\"text\",\"text\":\"09:00\"}]},"
        "{\"role\":\"user\",\"content\":\"And tomorrow?\"},"
        "{\"role\":\"assistant\",\"content\":null},"
        "{\"role\":\"user\",\"content\":\"\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"description\":\"Weather\",\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    assert_string_equal(f->px.url, BASE "/model/" MODEL_ENC "/converse");
    assert_json_eq(
        f->px.up_body,
        "{\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"text\":\"Weather?\"},"
        "{\"image\":{\"format\":\"png\",\"source\":{\"bytes\":\"iVBOR\"}}},"
        "{\"image\":{\"format\":\"jpeg\",\"source\":{\"bytes\":\"/9j/4A\"}}},"
        "{\"text\":\"In Paris.\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"text\":\"Checking.\"},"
        "{\"toolUse\":{\"toolUseId\":\"call_1\",\"name\":\"get_weather\","
        "\"input\":{\"city\":\"Paris\"}}},"
        "{\"toolUse\":{\"toolUseId\":\"call_2\",\"name\":\"get_time\",\"input\":{}}}]},"
        "{\"role\":\"user\",\"content\":["
        "{\"toolResult\":{\"toolUseId\":\"call_1\",\"content\":[{\"text\":\"18C\"}]}},"
        "{\"toolResult\":{\"toolUseId\":\"call_2\",\"content\":[{\"text\":\"09:00\"}]}},"
        "{\"text\":\"And tomorrow?\"}]}],"
        "\"system\":[{\"text\":\"You are terse.\"},{\"text\":\"Use metric.\"}],"
        "\"inferenceConfig\":{\"maxTokens\":300,\"temperature\":0.5,\"topP\":0.9,"
        "\"stopSequences\":[\"END\",\"STOP\"]},"
        "\"toolConfig\":{\"tools\":["
        "{\"toolSpec\":{\"name\":\"get_weather\",\"description\":\"Weather\","
        "\"inputSchema\":{\"json\":{\"type\":\"object\",\"properties\":{\"city\":"
        "{\"type\":\"string\"}},\"required\":[\"city\"]}}}},"
        "{\"toolSpec\":{\"name\":\"get_time\",\"inputSchema\":{\"json\":{\"type\":\"object\","
        "\"properties\":{}}}}}],"
        "\"toolChoice\":{\"tool\":{\"name\":\"get_weather\"}}}}");
    assert_no_secret(f);
    px_free(f);
}

static void request_options(void **state)
{
    (void)state;
    static const struct {
        const char *extra, *want;
    } cases[] = {
        /* Nothing set: no inferenceConfig, no toolConfig. */
        {"", ""},
        {",\"max_completion_tokens\":7,\"max_tokens\":9,\"stop\":\"X\"",
         ",\"inferenceConfig\":{\"maxTokens\":7,\"stopSequences\":[\"X\"]}"},
        {",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"t\"}}]",
         ",\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"t\",\"inputSchema\":{\"json\":"
         "{\"type\":\"object\",\"properties\":{}}}}}]}"},
        {",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"t\"}}],\"tool_choice\":\"auto\"",
         ",\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"t\",\"inputSchema\":{\"json\":"
         "{\"type\":\"object\",\"properties\":{}}}}}],\"toolChoice\":{\"auto\":{}}}"},
        {",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"t\"}}],"
         "\"tool_choice\":\"required\"",
         ",\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"t\",\"inputSchema\":{\"json\":"
         "{\"type\":\"object\",\"properties\":{}}}}}],\"toolChoice\":{\"any\":{}}}"},
        /* Converse knows no "none": the tools are left out. */
        {",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"t\"}}],\"tool_choice\":\"none\"",
         ""},
        /* A choice without tools means nothing. */
        {",\"tool_choice\":\"required\"", ""},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        char body[1024], want[1024];
        snprintf(body, sizeof(body),
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]%s}",
                 cases[i].extra);
        snprintf(want, sizeof(want),
                 "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}]%s}",
                 cases[i].want);
        px_fixture_t *f = br_new(body);
        assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
        assert_json_eq(f->px.up_body, want);
        px_free(f);
    }

    /* Streams go to converse-stream with the same body. */
    px_fixture_t *f = br_new("{\"model\":\"" MODEL "\",\"stream\":true,"
                             "\"stream_options\":{\"include_usage\":true},"
                             "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    assert_string_equal(f->px.url, BASE "/model/" MODEL_ENC "/converse-stream");
    assert_json_eq(f->px.up_body,
                   "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}]}");
    px_free(f);

    /* Inference profile ARNs: every ':' and '/' encoded in the one path segment. */
    f = br_new("{\"model\":\"arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
               "us.anthropic.claude-3-haiku-20240307-v1:0\",\"messages\":[{\"role\":\"user\","
               "\"content\":\"hi\"}]}");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    assert_string_equal(f->px.url, BASE "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012"
                                        "%3Ainference-profile%2Fus.anthropic.claude-3-haiku-"
                                        "20240307-v1%3A0/converse");
    px_free(f);
}

static void request_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *body, *param, *words;
    } bad[] = {
        {"{\"model\":\"m\",\"messages\":[]}", "messages", "user message"},
        {"{\"model\":\"m\"}", "messages", "array"},
        {"{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model",
         "model is required"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model", "model is required"},
        {"{\"model\":\"m\",\"messages\":[{\"content\":\"no role\"}]}", "messages", "role"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"function\",\"content\":\"x\"}]}", "messages",
         "role"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"https://x.test/a.png\"}}]}]}",
         "messages", "base64 data URLs"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"data:image/png,notbase64\"}}]}]}",
         "messages", "base64"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"data:image/bmp;base64,Qk0=\"}}]}]}",
         "messages", "png, jpeg"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
         "messages", "not supported"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\","
         "\"function\":{\"name\":\"f\",\"arguments\":\"not json\"}}]}]}",
         "messages", "JSON object"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{"
         "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}]}",
         "messages", "an id"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", "messages",
         "tool_call_id"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"tool_choice\":\"maybe\"}",
         "tool_choice", "tool_choice"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
         "\"tools\":[{\"type\":\"code_interpreter\"}]}",
         "tools", "functions"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":2}", "n",
         "one choice"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[1]}",
         "stop", "strings"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++) {
        px_fixture_t *f = br_new(bad[i].body);
        if (gw_adapter_bedrock.build_request(&f->px) != SL_EINVAL)
            fail_msg("accepted: %s", bad[i].body);
        assert_non_null(f->px.error_message);
        if (strstr(f->px.error_message, bad[i].words) == NULL)
            fail_msg("%s: %s", bad[i].body, f->px.error_message);
        assert_string_equal(f->px.error_param, bad[i].param);
        assert_no_secret(f);
        px_free(f);
    }
}

/* ---- credentials and the signature ------------------------------------------------------- */

static time_t amz_time(sl_str_t d)
{
    char s[32];
    assert_int_equal(d.len, 16);
    memcpy(s, d.base, 16);
    s[16] = '\0';
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    assert_int_equal(sscanf(s, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec),
                     6);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

/* Signs what the adapter sends with gw_sigv4_sign directly and compares. */
static void check_signature(px_fixture_t *f, const char *token, const char *region)
{
    gw_proxy_t *px = &f->px;
    sl_str_t date = up_header(f, "x-amz-date");
    sl_str_t auth = up_header(f, "authorization");
    assert_true(sl_str_eq(up_header(f, "content-type"), SL_STRLIT("application/json")));
    /* What the caller's headers were: Content-Type, then what the signer added. */
    assert_true(sl_str_ieq_c(px->up_headers[0].name, "content-type"));
    gw_sigv4_creds_t c = {SL_STRLIT(KEY_ID), SL_STRLIT(SECRET),
                          token ? sl_str_c(token) : SL_STR_NULL, sl_str_c(region),
                          SL_STRLIT("bedrock")};
    gw_http_header_t *h;
    size_t n;
    gw_sigv4_trace_t tr;
    assert_int_equal(gw_sigv4_sign_trace(&f->req.arena, &c, "POST", px->url, px->up_headers, 1,
                                         px->up_body, amz_time(date), &h, &n, &tr),
                     0);
    assert_true(px->n_up_headers >= 1 + n);
    for (size_t i = 0; i < n; i++) {
        assert_true(sl_str_eq(px->up_headers[1 + i].name, h[i].name));
        assert_true(sl_str_eq(px->up_headers[1 + i].value, h[i].value));
    }
    char want[256];
    snprintf(want, sizeof(want), "AWS4-HMAC-SHA256 Credential=" KEY_ID "/%.8s/%s/bedrock/"
             "aws4_request, SignedHeaders=%s, Signature=",
             date.base, region,
             token ? "content-type;host;x-amz-date;x-amz-security-token"
                   : "content-type;host;x-amz-date");
    assert_true(auth.len == strlen(want) + 64 && memcmp(auth.base, want, strlen(want)) == 0);
    if (token != NULL)
        assert_true(sl_str_eq(up_header(f, "x-amz-security-token"), sl_str_c(token)));
    else
        assert_int_equal(up_header(f, "x-amz-security-token").len, 0);
    /* The canonical URI encodes the sent path once more (%3A -> %253A). */
    if (strstr(px->url, MODEL_ENC) != NULL)
        assert_non_null(memmem(tr.canonical_request.base, tr.canonical_request.len,
                               "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/",
                               strlen("/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/")));
    assert_no_secret(f);
}

static void signing(void **state)
{
    (void)state;
    const char *body =
        "{\"model\":\"" MODEL "\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}]}";
    px_fixture_t *f = br_new(body);
    time_t before = time(NULL);
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    time_t t = amz_time(up_header(f, "x-amz-date"));
    assert_true(t >= before && t <= time(NULL));
    check_signature(f, NULL, "us-east-1");
    /* No API key header of any other style. */
    assert_int_equal(up_header(f, "x-api-key").len, 0);
    px_free(f);

    /* The client's own headers go along unsigned, its credentials and Accept do not. */
    f = br_new("{\"model\":\"" MODEL "\",\"stream\":true,\"messages\":[{\"role\":\"user\","
               "\"content\":\"Hello\"}]}");
    px_header(f, "Authorization", "Bearer sk-client");
    px_header(f, "x-api-key", "sk-client");
    px_header(f, "Accept", "application/json");
    px_header(f, "User-Agent", "OpenAI/Python 1.50.0");
    px_header(f, "x-mock-stream-error", "1");
    px_header(f, "X-Amz-Date", "19700101T000000Z");
    px_header(f, "Content-Type", "application/json; charset=utf-8");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    check_signature(f, NULL, "us-east-1");
    size_t nh = f->px.n_up_headers;
    assert_int_equal(nh, 1 + 2 + 2); /* Content-Type, X-Amz-Date, Authorization, 2 forwarded */
    assert_true(sl_str_eq(f->px.up_headers[3].name, SL_STRLIT("User-Agent")));
    assert_true(sl_str_eq(f->px.up_headers[4].name, SL_STRLIT("x-mock-stream-error")));
    assert_int_equal(up_header(f, "accept").len, 0); /* the transport's own for streams */
    px_free(f);
    f = br_new(body);
    px_header(f, "Accept", "text/html");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    assert_true(sl_str_eq(up_header(f, "accept"), SL_STRLIT("application/json")));
    size_t accepts = 0;
    for (size_t i = 0; i < f->px.n_up_headers; i++)
        accepts += sl_str_ieq_c(f->px.up_headers[i].name, "accept");
    assert_int_equal(accepts, 1);
    px_free(f);

    /* Temporary credentials, Portkey's header names, another region. */
    f = px_new("bedrock", "/v1/chat/completions", body);
    px_header(f, "x-portkey-aws-access-key-id", KEY_ID);
    px_header(f, "x-portkey-aws-secret-access-key", SECRET);
    px_header(f, "x-portkey-aws-session-token", TOKEN);
    px_header(f, "x-portkey-aws-region", "eu-west-3");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    assert_string_equal(f->px.url,
                        "https://bedrock-runtime.eu-west-3.amazonaws.com/model/" MODEL_ENC
                        "/converse");
    check_signature(f, TOKEN, "eu-west-3");
    px_free(f);

    /* A custom host replaces the base; its default port is left out of the URL (and Host). */
    static const struct {
        const char *host, *url;
    } hosts[] = {
        {"http://127.0.0.1:8080", "http://127.0.0.1:8080/model/" MODEL_ENC "/converse"},
        {"http://127.0.0.1:8080/", "http://127.0.0.1:8080/model/" MODEL_ENC "/converse"},
        {"https://vpce.example.com:443", "https://vpce.example.com/model/" MODEL_ENC "/converse"},
        {"http://[::1]:80/proxy", "http://[::1]/proxy/model/" MODEL_ENC "/converse"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(hosts); i++) {
        f = br_new(body);
        f->px.custom_host = sl_str_c(hosts[i].host);
        assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
        assert_string_equal(f->px.url, hosts[i].url);
        check_signature(f, NULL, "us-east-1");
        px_free(f);
    }
}

static void missing_credentials(void **state)
{
    (void)state;
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    static const struct {
        const char *id, *secret, *region, *token;
        int err;
        const char *param, *words;
    } cases[] = {
        {NULL, NULL, "us-east-1", NULL, SL_ENOKEY, "x-sluice-aws-access-key-id",
         "x-sluice-aws-secret-access-key"},
        {KEY_ID, NULL, "us-east-1", NULL, SL_ENOKEY, "x-sluice-aws-secret-access-key",
         "x-sluice-aws-secret-access-key"},
        {NULL, SECRET, "us-east-1", NULL, SL_ENOKEY, "x-sluice-aws-access-key-id",
         "x-sluice-aws-access-key-id"},
        {KEY_ID, SECRET, NULL, NULL, SL_EINVAL, "x-sluice-aws-region", "x-sluice-aws-region"},
        {KEY_ID, SECRET, "us-east-1/../x", NULL, SL_EINVAL, "x-sluice-aws-region",
         "x-sluice-aws-region"},
        {"AKID/EXAMPLE", SECRET, "us-east-1", NULL, SL_EINVAL, "x-sluice-aws-access-key-id",
         "access key id"},
        {KEY_ID, SECRET, "us-east-1", "tok en", SL_EINVAL, "x-sluice-aws-session-token",
         "session token"},
        {KEY_ID, "   ", "us-east-1", NULL, SL_ENOKEY, "x-sluice-aws-secret-access-key",
         "x-sluice-aws-secret-access-key"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        px_fixture_t *f = px_new("bedrock", "/v1/chat/completions", body);
        if (cases[i].id)
            px_header(f, "x-sluice-aws-access-key-id", cases[i].id);
        if (cases[i].secret)
            px_header(f, "x-sluice-aws-secret-access-key", cases[i].secret);
        if (cases[i].region)
            px_header(f, "x-sluice-aws-region", cases[i].region);
        if (cases[i].token)
            px_header(f, "x-sluice-aws-session-token", cases[i].token);
        assert_int_equal(gw_adapter_bedrock.build_request(&f->px), cases[i].err);
        assert_non_null(f->px.error_message);
        if (strstr(f->px.error_message, cases[i].words) == NULL)
            fail_msg("case %zu: %s", i, f->px.error_message);
        assert_string_equal(f->px.error_param, cases[i].param);
        assert_null(strstr(f->px.error_message, SECRET));
        assert_int_equal(f->px.n_up_headers, 0); /* nothing signed, nothing to send */
        px_free(f);
    }
    /* Other endpoints never reach the signer. */
    px_fixture_t *f = br_new("{\"model\":\"m\",\"prompt\":\"x\"}");
    f->px.endpoint = GW_EP_COMPLETIONS;
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), SL_EUNSUPPORTED);
    px_free(f);
}

/* ---- Converse answers -> OpenAI answers ------------------------------------------------- */

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
    px_fixture_t *f = br_new("{\"model\":\"" MODEL "\",\"messages\":[]}");
    px_upstream(f, 200, "application/json");
    px_resp(f, "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":["
               "{\"text\":\"I'll check \"},{\"text\":\"that.\"},"
               "{\"reasoningContent\":{\"reasoningText\":{\"text\":\"hm\"}}},"
               "{\"toolUse\":{\"toolUseId\":\"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q\","
               "\"name\":\"top_song\",\"input\":{\"sign\":\"WZPZ\"}}}]}},"
               "\"stopReason\":\"tool_use\",\"usage\":{\"inputTokens\":375,\"outputTokens\":42,"
               "\"totalTokens\":1517,\"cacheReadInputTokens\":1000,\"cacheWriteInputTokens\":100},"
               "\"metrics\":{\"latencyMs\":2345}}");
    assert_int_equal(gw_adapter_bedrock.on_response(&f->px), 0);
    assert_string_equal(f->px.tr.resp_ct, "application/json");
    json_t *j = resp_json(f);
    char *s = json_dumps(j, JSON_COMPACT);
    assert_json_eq(sl_str_c(s),
                   "{\"id\":\"chatcmpl-00000000-0000-4000-8000-000000000001\","
                   "\"object\":\"chat.completion\",\"model\":\"" MODEL "\","
                   "\"choices\":[{\"index\":0,"
                   "\"message\":{\"role\":\"assistant\",\"content\":\"I'll check that.\","
                   "\"tool_calls\":[{\"id\":\"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q\",\"type\":\"function\","
                   "\"function\":{\"name\":\"top_song\",\"arguments\":\"{\\\"sign\\\":\\\"WZPZ\\\"}\"}}]},"
                   "\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],"
                   "\"usage\":{\"prompt_tokens\":1475,\"completion_tokens\":42,\"total_tokens\":1517,"
                   "\"prompt_tokens_details\":{\"cached_tokens\":1000},"
                   "\"completion_tokens_details\":{\"reasoning_tokens\":0},"
                   "\"cache_creation_input_tokens\":100}}");
    free(s);
    json_decref(j);
    assert_int_equal(f->px.usage.prompt_tokens, 1475);
    assert_int_equal(f->px.usage.completion_tokens, 42);
    assert_int_equal(f->px.usage.cached_tokens, 1000);
    assert_int_equal(f->px.usage.cache_write_tokens, 100);
    px_free(f);

    static const struct {
        const char *stop, *finish;
    } stops[] = {
        {"end_turn", "stop"},
        {"stop_sequence", "stop"},
        {"max_tokens", "length"},
        {"tool_use", "tool_calls"},
        {"guardrail_intervened", "content_filter"},
        {"content_filtered", "content_filter"},
        {"model_context_window_exceeded", "length"},
        {"malformed_model_output", "stop"},
        {"malformed_tool_use", "stop"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(stops); i++) {
        f = br_new("{\"model\":\"m\",\"messages\":[]}");
        px_upstream(f, 200, "application/json");
        char body[512];
        snprintf(body, sizeof(body),
                 "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"Hi\"}]}},"
                 "\"stopReason\":\"%s\",\"usage\":{\"inputTokens\":3,\"outputTokens\":1,"
                 "\"totalTokens\":4},\"metrics\":{\"latencyMs\":1}}",
                 stops[i].stop);
        px_resp(f, body);
        assert_int_equal(gw_adapter_bedrock.on_response(&f->px), 0);
        j = resp_json(f);
        json_t *c = json_array_get(json_object_get(j, "choices"), 0);
        assert_string_equal(gw_tr_str(c, "finish_reason"), stops[i].finish);
        assert_string_equal(gw_tr_str(json_object_get(c, "message"), "content"), "Hi");
        assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "usage"),
                                                            "prompt_tokens")),
                         3);
        json_decref(j);
        px_free(f);
    }

    /* Only a tool call: content null. Not a Converse answer: a protocol error. */
    f = br_new("{\"model\":\"m\",\"messages\":[]}");
    px_upstream(f, 200, "application/json");
    px_resp(f, "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"toolUse\":"
               "{\"toolUseId\":\"t1\",\"name\":\"f\",\"input\":{}}}]}},\"stopReason\":\"tool_use\","
               "\"usage\":{\"inputTokens\":1,\"outputTokens\":1,\"totalTokens\":2}}");
    assert_int_equal(gw_adapter_bedrock.on_response(&f->px), 0);
    j = resp_json(f);
    json_t *m = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_true(json_is_null(json_object_get(m, "content")));
    assert_string_equal(
        gw_tr_str(json_object_get(json_array_get(json_object_get(m, "tool_calls"), 0), "function"),
                  "arguments"),
        "{}");
    json_decref(j);
    px_free(f);
    static const char *const not_converse[] = {"{\"output\":{}}", "[1]", "not json", ""};
    for (size_t i = 0; i < SL_ARRAY_SIZE(not_converse); i++) {
        f = br_new("{\"model\":\"m\",\"messages\":[]}");
        px_upstream(f, 200, "application/json");
        px_resp(f, not_converse[i]);
        assert_int_equal(gw_adapter_bedrock.on_response(&f->px), SL_EUPPROTO);
        px_free(f);
    }
}

static void error_translation(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *error_type; /* x-amzn-ErrorType, NULL: none */
        const char *body;
        const char *message, *type, *code;
        int retryable;
    } cases[] = {
        {429, "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/",
         "{\"message\":\"Too many requests, please wait before trying again.\"}",
         "Too many requests, please wait before trying again.", "rate_limit_error",
         "ThrottlingException", 1},
        {400, "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
         "{\"message\":\"The provided model identifier is invalid.\"}",
         "The provided model identifier is invalid.", "invalid_request_error",
         "ValidationException", 0},
        {403, "AccessDeniedException", "{\"Message\":\"You don't have access to the model.\"}",
         "You don't have access to the model.", "permission_error", "AccessDeniedException", 0},
        {403, "UnrecognizedClientException:http://internal.amazon.com/coral/com.amazon.coral.service/",
         "{\"message\":\"The security token included in the request is invalid.\"}",
         "The security token included in the request is invalid.", "authentication_error",
         "UnrecognizedClientException", 0},
        {503, "ServiceUnavailableException:http://internal.amazon.com/coral/com.amazon.bedrock/",
         "{\"message\":\"Bedrock is unable to process your request.\"}",
         "Bedrock is unable to process your request.", "api_error",
         "ServiceUnavailableException", 1},
        {408, "ModelTimeoutException", "{\"message\":\"Model has timed out.\"}",
         "Model has timed out.", "timeout_error", "ModelTimeoutException", 0},
        {404, "UnknownOperationException:http://internal.amazon.com/coral/com.amazon.coral.service/",
         "{\"message\":\"\"}", "bedrock: UnknownOperationException", "invalid_request_error",
         "UnknownOperationException", 0},
        /* The name in the body when the header is missing. */
        {400, NULL, "{\"__type\":\"com.amazon.coral.validate#ValidationException\","
                    "\"message\":\"Bad.\"}",
         "Bad.", "invalid_request_error", "ValidationException", 0},
        /* No name at all: the status decides the type. */
        {500, NULL, "{\"message\":\"Boom.\"}", "Boom.", "api_error", NULL, 0},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        px_fixture_t *f = br_new("{\"model\":\"m\"}");
        px_upstream(f, cases[i].status, "application/json");
        if (cases[i].error_type != NULL) {
            f->up_hdrs[1].name = SL_STRLIT("x-amzn-ErrorType");
            f->up_hdrs[1].value = sl_str_c(cases[i].error_type);
            f->px.up.nheaders = 2;
        }
        px_resp(f, cases[i].body);
        assert_int_equal(gw_adapter_bedrock.on_response(&f->px), 0);
        json_t *j = json_loadb(f->px.resp.base, f->px.resp.len, 0, NULL);
        json_t *e = json_object_get(j, "error");
        assert_string_equal(gw_tr_str(e, "message"), cases[i].message);
        assert_string_equal(gw_tr_str(e, "type"), cases[i].type);
        if (cases[i].code != NULL)
            assert_string_equal(gw_tr_str(e, "code"), cases[i].code);
        else
            assert_true(json_is_null(json_object_get(e, "code")));
        json_decref(j);
        assert_int_equal(f->px.retryable, cases[i].retryable);
        assert_true(sl_str_eq(f->px.provider_error, sl_str_c(cases[i].body)));
        px_free(f);
    }

    /* Not JSON at all (a proxy's HTML page): still an OpenAI error. */
    px_fixture_t *f = br_new("{\"model\":\"m\"}");
    px_upstream(f, 502, "text/html");
    px_resp(f, "<html>bad gateway</html>");
    assert_int_equal(gw_adapter_bedrock.on_response(&f->px), 0);
    json_t *j = resp_json(f);
    assert_string_equal(gw_tr_str(json_object_get(j, "error"), "type"), "api_error");
    json_decref(j);
    px_free(f);

    /* AWS quotes the canonical request on a signature mismatch: the session token is masked
     * in what the client gets and what is kept for the log. */
    f = br_new("{\"model\":\"m\"}");
    px_header(f, "x-sluice-aws-session-token", TOKEN);
    px_upstream(f, 403, "application/json");
    f->up_hdrs[1].name = SL_STRLIT("x-amzn-ErrorType");
    f->up_hdrs[1].value = SL_STRLIT("InvalidSignatureException");
    f->px.up.nheaders = 2;
    px_resp(f, "{\"message\":\"The request signature we calculated does not match. The "
               "Canonical String for this request should have been\\n'POST\\n/model/m/converse"
               "\\n\\nx-amz-security-token:" TOKEN "\\n' and " SECRET "\"}");
    assert_int_equal(gw_adapter_bedrock.on_response(&f->px), 0);
    assert_null(memmem(f->px.resp.base, f->px.resp.len, TOKEN, strlen(TOKEN)));
    assert_null(memmem(f->px.resp.base, f->px.resp.len, SECRET, strlen(SECRET)));
    assert_null(memmem(f->px.provider_error.base, f->px.provider_error.len, TOKEN, strlen(TOKEN)));
    assert_non_null(memmem(f->px.resp.base, f->px.resp.len, "x-amz-security-token:****", 25));
    j = resp_json(f);
    assert_string_equal(gw_tr_str(json_object_get(j, "error"), "type"), "authentication_error");
    json_decref(j);
    px_free(f);
}

/* ---- embeddings ------------------------------------------------------------------------------ */

static void embeddings(void **state)
{
    (void)state;
    /* Titan: one inputText per call, /invoke. */
    px_fixture_t *f = br_embed("{\"model\":\"amazon.titan-embed-text-v2:0\",\"input\":[\"Hello\"],"
                               "\"dimensions\":256}");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    assert_string_equal(f->px.url, BASE "/model/amazon.titan-embed-text-v2%3A0/invoke");
    assert_json_eq(f->px.up_body, "{\"inputText\":\"Hello\",\"dimensions\":256}");
    check_signature(f, NULL, "us-east-1");
    px_upstream(f, 200, "application/json");
    px_resp(f, "{\"embedding\":[0.5,-0.25,1],\"inputTextTokenCount\":2,"
               "\"embeddingsByType\":{\"float\":[0.5,-0.25,1]}}");
    assert_int_equal(gw_adapter_bedrock.on_response(&f->px), 0);
    assert_json_eq(sl_buf_str(&f->px.resp),
                   "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                   "\"embedding\":[0.5,-0.25,1]}],\"model\":\"amazon.titan-embed-text-v2:0\","
                   "\"usage\":{\"prompt_tokens\":2,\"total_tokens\":2}}");
    assert_int_equal(f->px.usage.prompt_tokens, 2);
    px_free(f);

    /* base64: little-endian float32 (1.0f = 00 00 80 3f, -2.0f = 00 00 00 c0). */
    f = br_embed("{\"model\":\"amazon.titan-embed-text-v1\",\"input\":\"Hi\","
                 "\"encoding_format\":\"base64\"}");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    assert_json_eq(f->px.up_body, "{\"inputText\":\"Hi\"}");
    px_upstream(f, 200, "application/json");
    px_resp(f, "{\"embedding\":[1.0,-2.0],\"inputTextTokenCount\":1}");
    assert_int_equal(gw_adapter_bedrock.on_response(&f->px), 0);
    json_t *j = resp_json(f);
    assert_string_equal(gw_tr_str(json_array_get(json_object_get(j, "data"), 0), "embedding"),
                        "AACAPwAAAMA=");
    json_decref(j);
    px_free(f);

    /* Cohere: texts and input_type; the token count comes in a header. */
    f = br_embed("{\"model\":\"cohere.embed-english-v3\",\"input\":[\"a\",\"b\"]}");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    assert_string_equal(f->px.url, BASE "/model/cohere.embed-english-v3/invoke");
    assert_json_eq(f->px.up_body, "{\"texts\":[\"a\",\"b\"],\"input_type\":\"search_document\"}");
    px_upstream(f, 200, "application/json");
    f->up_hdrs[1].name = SL_STRLIT("X-Amzn-Bedrock-Input-Token-Count");
    f->up_hdrs[1].value = SL_STRLIT("4");
    f->px.up.nheaders = 2;
    px_resp(f, "{\"embeddings\":[[0.1,0.2],[0.3,0.4]],\"id\":\"e1\","
               "\"response_type\":\"embeddings_floats\",\"texts\":[\"a\",\"b\"]}");
    assert_int_equal(gw_adapter_bedrock.on_response(&f->px), 0);
    assert_json_eq(sl_buf_str(&f->px.resp),
                   "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                   "\"embedding\":[0.1,0.2]},{\"object\":\"embedding\",\"index\":1,"
                   "\"embedding\":[0.3,0.4]}],\"model\":\"cohere.embed-english-v3\","
                   "\"usage\":{\"prompt_tokens\":4,\"total_tokens\":4}}");
    px_free(f);

    /* Cohere's by-type answer, an input type from the header, a v4 dimension. */
    f = br_embed("{\"model\":\"cohere.embed-v4:0\",\"input\":\"q\",\"dimensions\":256}");
    px_header(f, "x-sluice-cohere-input-type", "search_query");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    assert_json_eq(f->px.up_body, "{\"texts\":[\"q\"],\"input_type\":\"search_query\","
                                  "\"output_dimension\":256}");
    px_upstream(f, 200, "application/json");
    px_resp(f, "{\"embeddings\":{\"float\":[[1,2]]},\"response_type\":\"embeddings_by_type\"}");
    assert_int_equal(gw_adapter_bedrock.on_response(&f->px), 0);
    j = resp_json(f);
    assert_int_equal(json_array_size(json_object_get(j, "data")), 1);
    json_decref(j);
    px_free(f);

    static const struct {
        const char *body, *param;
    } bad[] = {
        {"{\"model\":\"amazon.titan-embed-text-v2:0\",\"input\":[\"a\",\"b\"]}", "input"},
        {"{\"model\":\"amazon.titan-embed-text-v2:0\",\"input\":[[1,2]]}", "input"},
        {"{\"model\":\"amazon.titan-embed-text-v2:0\",\"input\":[]}", "input"},
        {"{\"model\":\"amazon.titan-embed-text-v1\",\"input\":\"a\",\"dimensions\":256}",
         "dimensions"},
        {"{\"model\":\"amazon.titan-embed-text-v2:0\",\"input\":\"a\",\"dimensions\":\"x\"}",
         "dimensions"},
        {"{\"model\":\"amazon.titan-embed-text-v2:0\",\"input\":\"a\",\"encoding_format\":\"int8\"}",
         "encoding_format"},
        {"{\"model\":\"anthropic.claude-3-haiku-20240307-v1:0\",\"input\":\"a\"}", "model"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++) {
        f = br_embed(bad[i].body);
        if (gw_adapter_bedrock.build_request(&f->px) != SL_EINVAL)
            fail_msg("accepted: %s", bad[i].body);
        assert_string_equal(f->px.error_param, bad[i].param);
        px_free(f);
    }
    f = br_embed("{\"model\":\"amazon.titan-embed-text-v2:0\",\"input\":[\"a\",\"b\"]}");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), SL_EINVAL);
    assert_non_null(strstr(f->px.error_message, "one text per request"));
    px_free(f);
}

/* ---- ConverseStream ------------------------------------------------------------------------ */

static void frame_with(sl_buf_t *b, const char *mtype, const char *tname, const char *type,
                       const char *payload)
{
    sl_str_t names[3] = {sl_str_c(tname), SL_STRLIT(":content-type"), SL_STRLIT(":message-type")};
    sl_str_t values[3] = {sl_str_c(type), SL_STRLIT("application/json"), sl_str_c(mtype)};
    assert_int_equal(gw_es_encode(b, names, values, 3, sl_str_c(payload)), 0);
}

static void event(sl_buf_t *b, const char *type, const char *payload)
{
    frame_with(b, "event", ":event-type", type, payload);
}

/* AWS's ConverseStream sequence for a text answer then a tool call. */
static void build_stream(sl_buf_t *b)
{
    sl_buf_init(b, 1u << 20);
    event(b, "messageStart", "{\"p\":\"abcdefghijk\",\"role\":\"assistant\"}");
    event(b, "contentBlockDelta",
          "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"The most\"},\"p\":\"abcd\"}");
    event(b, "contentBlockDelta",
          "{\"contentBlockIndex\":0,\"delta\":{\"text\":\" popular song\"},\"p\":\"ab\"}");
    event(b, "contentBlockStop", "{\"contentBlockIndex\":0,\"p\":\"abcdefghijklmnopqrs\"}");
    event(b, "contentBlockStart",
          "{\"contentBlockIndex\":1,\"p\":\"abcdef\",\"start\":{\"toolUse\":{\"name\":"
          "\"top_song\",\"toolUseId\":\"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q\"}}}");
    event(b, "contentBlockDelta",
          "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":{\"input\":\"{\\\"sign\\\": \"}},"
          "\"p\":\"abcdefg\"}");
    event(b, "contentBlockDelta",
          "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":{\"input\":\"\\\"WZPZ\\\"}\"}},"
          "\"p\":\"a\"}");
    event(b, "contentBlockStop", "{\"contentBlockIndex\":1,\"p\":\"abcdefghij\"}");
    event(b, "messageStop", "{\"p\":\"abcdefghijklmnop\",\"stopReason\":\"tool_use\"}");
    event(b, "metadata",
          "{\"metrics\":{\"latencyMs\":1218},\"p\":\"abc\",\"usage\":{\"inputTokens\":375,"
          "\"outputTokens\":42,\"totalTokens\":417}}");
}

typedef struct {
    char *out; /* what the client got (heap) */
    int err;   /* the first error of on_stream_data */
    int complete;
} run_t;

/* Feeds the bytes in pieces: cut > 0 gives [0,cut) and [cut,n); piece > 0 gives that size. */
static run_t run_stream(const char *body, const char *p, size_t n, size_t cut, size_t piece)
{
    px_fixture_t *f = br_new(body);
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    gw_tr_ids(&f->px);
    f->px.tr.created = 1700000000;
    px_upstream(f, 200, "application/vnd.amazon.eventstream");
    assert_int_equal(gw_adapter_bedrock.response_mode(&f->px), GW_RESP_MODE_SSE);
    sl_buf_t all;
    sl_buf_init(&all, 1u << 22);
    run_t r = {NULL, 0, 0};
    for (size_t off = 0; off < n && r.err == 0;) {
        size_t k = n - off;
        if (piece > 0 && piece < k)
            k = piece;
        else if (cut > 0 && off < cut)
            k = cut - off;
        sl_buf_reset(&f->px.out);
        r.err = gw_adapter_bedrock.on_stream_data(&f->px, p + off, k, &f->px.out);
        assert_int_equal(sl_buf_append(&all, f->px.out.base, f->px.out.len), 0);
        off += k;
    }
    r.complete = r.err == 0 && gw_adapter_bedrock.stream_complete(&f->px);
    if (r.err == SL_EUPSTREAM) {
        assert_non_null(f->px.stream_error_message);
        /* Kept in the caller's output for the checks below. */
        assert_int_equal(sl_buf_append_str(&all, SL_STRLIT("ERR ")), 0);
        assert_int_equal(sl_buf_append_str(&all, sl_str_c(f->px.stream_error_message)), 0);
    }
    r.out = sl_xmalloc(all.len + 1);
    if (all.len > 0)
        memcpy(r.out, all.base, all.len);
    r.out[all.len] = '\0';
    sl_buf_dispose(&all);
    px_free(f);
    return r;
}

#define STREAM_BODY                                                                                \
    "{\"model\":\"" MODEL "\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"       \
    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"

static void stream_translation(void **state)
{
    (void)state;
    sl_buf_t s;
    build_stream(&s);
    run_t whole = run_stream(STREAM_BODY, s.base, s.len, 0, 0);
    assert_int_equal(whole.err, 0);
    assert_true(whole.complete);
    /* The same output one byte at a time and cut at every point. */
    run_t bytes = run_stream(STREAM_BODY, s.base, s.len, 0, 1);
    assert_true(bytes.complete);
    assert_string_equal(bytes.out, whole.out);
    sl_free(bytes.out);
    for (size_t cut = 1; cut < s.len; cut++) {
        run_t r = run_stream(STREAM_BODY, s.base, s.len, cut, 0);
        assert_int_equal(r.err, 0);
        assert_true(r.complete);
        if (strcmp(r.out, whole.out) != 0)
            fail_msg("cut at %zu differs", cut);
        sl_free(r.out);
    }

    /* What the client reads: OpenAI chunks, in order. */
    static const char *const want[] = {
        "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
        "\"finish_reason\":null}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"The most\"},\"finish_reason\":null}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\" popular song\"},"
        "\"finish_reason\":null}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"id\":\"tooluse_kZJMlvQmRJ6eAyJE5GIl7Q\",\"type\":\"function\",\"function\":"
        "{\"name\":\"top_song\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
        "{\"arguments\":\"{\\\"sign\\\": \"}}]},\"finish_reason\":null}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
        "{\"arguments\":\"\\\"WZPZ\\\"}\"}}]},\"finish_reason\":null}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":375,\"completion_tokens\":42,"
        "\"total_tokens\":417,\"prompt_tokens_details\":{\"cached_tokens\":0},"
        "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}",
    };
    size_t k = 0;
    int done = 0;
    for (char *line = strtok(whole.out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        assert_true(strncmp(line, "data: ", 6) == 0);
        assert_false(done);
        if (strcmp(line + 6, "[DONE]") == 0) {
            done = 1;
            continue;
        }
        json_t *c = json_loads(line + 6, 0, NULL);
        assert_non_null(c);
        assert_string_equal(gw_tr_str(c, "id"), "chatcmpl-00000000-0000-4000-8000-000000000001");
        assert_string_equal(gw_tr_str(c, "object"), "chat.completion.chunk");
        assert_string_equal(gw_tr_str(c, "model"), MODEL);
        assert_int_equal(json_integer_value(json_object_get(c, "created")), 1700000000);
        json_object_del(c, "id");
        json_object_del(c, "object");
        json_object_del(c, "model");
        json_object_del(c, "created");
        assert_true(k < SL_ARRAY_SIZE(want));
        char *got = json_dumps(c, JSON_COMPACT);
        assert_json_eq(sl_str_c(got), want[k]);
        free(got);
        json_decref(c);
        k++;
    }
    assert_int_equal(k, SL_ARRAY_SIZE(want));
    assert_true(done);
    sl_free(whole.out);

    /* Without include_usage the usage-only chunk is not sent; usage is still recorded. */
    px_fixture_t *f = br_new("{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                             "\"content\":\"hi\"}]}");
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    px_upstream(f, 200, "application/vnd.amazon.eventstream");
    assert_int_equal(gw_adapter_bedrock.on_stream_data(&f->px, s.base, s.len, &f->px.out), 0);
    assert_null(memmem(f->px.out.base, f->px.out.len, "\"usage\"", 7));
    assert_non_null(memmem(f->px.out.base, f->px.out.len, "data: [DONE]\n\n", 14));
    assert_int_equal(f->px.usage.prompt_tokens, 375);
    assert_int_equal(f->px.usage.completion_tokens, 42);
    assert_true(f->px.sse_done);
    assert_true(gw_adapter_bedrock.stream_complete(&f->px));
    px_free(f);
    sl_buf_dispose(&s);
}

static void stream_failures(void **state)
{
    (void)state;
    sl_buf_t s;
    build_stream(&s);
    size_t cut_meta = 0; /* start of the metadata frame */
    {
        /* Walk the frames: the last one is metadata. */
        size_t off = 0;
        while (off < s.len) {
            uint32_t tl = (uint32_t)(uint8_t)s.base[off] << 24 |
                          (uint32_t)(uint8_t)s.base[off + 1] << 16 |
                          (uint32_t)(uint8_t)s.base[off + 2] << 8 | (uint8_t)s.base[off + 3];
            cut_meta = off;
            off += tl;
        }
    }

    /* messageStop then a clean end without metadata: not complete, no [DONE]. */
    run_t r = run_stream(STREAM_BODY, s.base, cut_meta, 0, 0);
    assert_int_equal(r.err, 0);
    assert_false(r.complete);
    assert_non_null(strstr(r.out, "\"finish_reason\":\"tool_calls\""));
    assert_null(strstr(r.out, "[DONE]"));
    sl_free(r.out);

    /* Cut inside the metadata frame: not complete either. */
    r = run_stream(STREAM_BODY, s.base, s.len - 3, 0, 0);
    assert_int_equal(r.err, 0);
    assert_false(r.complete);
    sl_free(r.out);

    /* An exception mid-stream ends it with the provider's words, after what came before. */
    sl_buf_t x;
    sl_buf_init(&x, 1u << 20);
    event(&x, "messageStart", "{\"role\":\"assistant\"}");
    event(&x, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hel\"}}");
    frame_with(&x, "exception", ":exception-type", "throttlingException",
               "{\"message\":\"Too many requests, please wait before trying again.\"}");
    event(&x, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"never\"}}");
    run_t whole = run_stream(STREAM_BODY, x.base, x.len, 0, 0);
    assert_int_equal(whole.err, SL_EUPSTREAM);
    assert_non_null(strstr(whole.out, "\"content\":\"Hel\""));
    assert_null(strstr(whole.out, "never"));
    assert_non_null(strstr(whole.out, "ERR bedrock: throttlingException: Too many requests, "
                                      "please wait before trying again."));
    for (size_t piece = 1; piece < 40; piece += 7) {
        r = run_stream(STREAM_BODY, x.base, x.len, 0, piece);
        assert_int_equal(r.err, SL_EUPSTREAM);
        assert_string_equal(r.out, whole.out);
        sl_free(r.out);
    }
    sl_free(whole.out);
    sl_buf_dispose(&x);

    /* An "error" message: its code and message headers. */
    sl_buf_init(&x, 1u << 20);
    {
        sl_str_t names[3] = {SL_STRLIT(":message-type"), SL_STRLIT(":error-code"),
                             SL_STRLIT(":error-message")};
        sl_str_t values[3] = {SL_STRLIT("error"), SL_STRLIT("InternalFailure"),
                              SL_STRLIT("An internal error occurred")};
        assert_int_equal(gw_es_encode(&x, names, values, 3, SL_STR_NULL), 0);
    }
    r = run_stream(STREAM_BODY, x.base, x.len, 0, 0);
    assert_int_equal(r.err, SL_EUPSTREAM);
    assert_non_null(strstr(r.out, "ERR bedrock: InternalFailure: An internal error occurred"));
    sl_free(r.out);
    sl_buf_dispose(&x);

    /* A corrupted CRC (the last byte of the first frame's message CRC), a bad prelude,
     * a payload that is not JSON, a tool delta without its start: protocol errors. */
    char *bad = sl_xmalloc(s.len);
    memcpy(bad, s.base, s.len);
    uint32_t first = (uint32_t)(uint8_t)bad[0] << 24 | (uint32_t)(uint8_t)bad[1] << 16 |
                     (uint32_t)(uint8_t)bad[2] << 8 | (uint8_t)bad[3];
    bad[first - 1] ^= 0x01;
    r = run_stream(STREAM_BODY, bad, s.len, 0, 0);
    assert_int_equal(r.err, SL_EUPPROTO);
    assert_string_equal(r.out, ""); /* nothing from a frame that failed its check */
    sl_free(r.out);
    r = run_stream(STREAM_BODY, bad, s.len, 0, 1);
    assert_int_equal(r.err, SL_EUPPROTO);
    sl_free(r.out);
    memcpy(bad, s.base, s.len);
    bad[5] ^= 0x40; /* headers length: the prelude CRC no longer matches */
    r = run_stream(STREAM_BODY, bad, s.len, 0, 0);
    assert_int_equal(r.err, SL_EUPPROTO);
    sl_free(r.out);
    sl_free(bad);

    static const char *const not_json[][2] = {
        {"messageStart", "{not json"},
        {"contentBlockDelta", "[1,2]"},
        {"contentBlockDelta", "{\"contentBlockIndex\":3,\"delta\":{\"toolUse\":{\"input\":\"{}\"}}}"},
        {"contentBlockStart", "{\"contentBlockIndex\":9999,\"start\":{\"toolUse\":{\"name\":\"f\","
                              "\"toolUseId\":\"t\"}}}"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(not_json); i++) {
        sl_buf_init(&x, 1u << 20);
        event(&x, not_json[i][0], not_json[i][1]);
        r = run_stream(STREAM_BODY, x.base, x.len, 0, 0);
        assert_int_equal(r.err, SL_EUPPROTO);
        sl_free(r.out);
        sl_buf_dispose(&x);
    }

    /* Unknown events and message types are skipped. */
    sl_buf_init(&x, 1u << 20);
    event(&x, "futureEvent", "{\"x\":1}");
    frame_with(&x, "something-else", ":event-type", "messageStart", "{}");
    assert_int_equal(sl_buf_append(&x, s.base, s.len), 0);
    whole = run_stream(STREAM_BODY, s.base, s.len, 0, 0);
    r = run_stream(STREAM_BODY, x.base, x.len, 0, 0);
    assert_true(r.complete);
    assert_string_equal(r.out, whole.out);
    sl_free(r.out);
    sl_free(whole.out);
    sl_buf_dispose(&x);
    sl_buf_dispose(&s);
}

static void response_modes(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *ct;
        int mode;
    } cases[] = {
        {200, "application/vnd.amazon.eventstream", GW_RESP_MODE_SSE},
        {200, "application/json", GW_RESP_MODE_BUFFER},
        {400, "application/vnd.amazon.eventstream", GW_RESP_MODE_BUFFER},
        {429, "application/json", GW_RESP_MODE_BUFFER},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        px_fixture_t *f = br_new(STREAM_BODY);
        px_upstream(f, cases[i].status, cases[i].ct);
        assert_int_equal(gw_adapter_bedrock.response_mode(&f->px), cases[i].mode);
        px_free(f);
    }
}

/* A /v1/messages client over Bedrock gets Anthropic's events. */
static void anthropic_client(void **state)
{
    (void)state;
    sl_buf_t s;
    build_stream(&s);
    px_fixture_t *f = br_new(STREAM_BODY);
    f->px.client = GW_CLIENT_ANTHROPIC;
    assert_int_equal(gw_adapter_bedrock.build_request(&f->px), 0);
    px_upstream(f, 200, "application/vnd.amazon.eventstream");
    assert_int_equal(gw_adapter_bedrock.on_stream_data(&f->px, s.base, s.len, &f->px.out), 0);
    assert_true(gw_adapter_bedrock.stream_complete(&f->px));
    sl_str_t out = sl_buf_str(&f->px.out);
    assert_non_null(memmem(out.base, out.len, "event: message_start", 20));
    assert_non_null(memmem(out.base, out.len, "\"stop_reason\":\"tool_use\"", 24));
    assert_non_null(memmem(out.base, out.len, "event: message_stop", 19));
    px_free(f);
    sl_buf_dispose(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_translation),  cmocka_unit_test(request_options),
        cmocka_unit_test(request_refusals),     cmocka_unit_test(signing),
        cmocka_unit_test(missing_credentials),  cmocka_unit_test(response_translation),
        cmocka_unit_test(error_translation),    cmocka_unit_test(embeddings),
        cmocka_unit_test(stream_translation),   cmocka_unit_test(stream_failures),
        cmocka_unit_test(response_modes),       cmocka_unit_test(anthropic_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
