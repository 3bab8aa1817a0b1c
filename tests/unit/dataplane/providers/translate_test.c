/*
 * Tests for dataplane/providers/translate.c: base URLs with {placeholders}
 * filled from x-sluice-* headers (and refused when missing or unsafe), auth
 * header styles, usage normalisation and retryable statuses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "px_fixture.h"

static sl_str_t base_of(px_fixture_t *f, int *rc)
{
    sl_str_t b = SL_STR_NULL;
    *rc = gw_tr_base_url(&f->px, &b);
    return b;
}

static void placeholders_filled(void **state)
{
    (void)state;
    static const struct {
        const char *provider, *h1, *v1, *h2, *v2, *model, *want;
    } cases[] = {
        {"azure-openai", "x-sluice-azure-resource-name", "contoso", NULL, NULL, "gpt-4o",
         "https://contoso.openai.azure.com/openai"},
        {"azure-openai", "x-portkey-azure-resource-name", "alias-ok", NULL, NULL, "gpt-4o",
         "https://alias-ok.openai.azure.com/openai"},
        {"vertex-ai", "x-sluice-vertex-region", "us-central1", "x-sluice-vertex-project-id",
         "my-proj", "gemini-2.0-flash",
         "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/"
         "us-central1/publishers/google"},
        {"bedrock", "x-sluice-aws-region", "eu-west-3", NULL, NULL, "m",
         "https://bedrock-runtime.eu-west-3.amazonaws.com"},
        {"cloudflare-workers-ai", "x-sluice-workers-ai-account-id", "abc123", NULL, NULL, "m",
         "https://api.cloudflare.com/client/v4/accounts/abc123/ai/v1"},
        {"lepton", NULL, NULL, NULL, NULL, "llama3-1-8b", "https://llama3-1-8b.lepton.run/api/v1"},
        {"openai", NULL, NULL, NULL, NULL, "gpt-4o", "https://api.openai.com/v1"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"model\":\"%s\"}", cases[i].model);
        px_fixture_t *f = px_new(cases[i].provider, "/v1/chat/completions", body);
        if (cases[i].h1)
            px_header(f, cases[i].h1, cases[i].v1);
        if (cases[i].h2)
            px_header(f, cases[i].h2, cases[i].v2);
        int rc;
        sl_str_t b = base_of(f, &rc);
        assert_int_equal(rc, 0);
        if (!sl_str_eq(b, sl_str_c(cases[i].want)))
            fail_msg("%s: got %.*s", cases[i].provider, (int)b.len, b.base);
        px_free(f);
    }
}

static void placeholders_refused(void **state)
{
    (void)state;
    static const struct {
        const char *provider, *header, *value, *model, *param;
    } cases[] = {
        {"azure-openai", NULL, NULL, "m", "x-sluice-azure-resource-name"},
        {"azure-openai", "x-sluice-azure-resource-name", "evil.com/x", "m",
         "x-sluice-azure-resource-name"},
        {"azure-openai", "x-sluice-azure-resource-name", "a@b", "m", "x-sluice-azure-resource-name"},
        {"bedrock", "x-sluice-aws-region", "us-east-1.evil.com#", "m", "x-sluice-aws-region"},
        {"lepton", NULL, NULL, "../../x", "model"},
        {"lepton", NULL, NULL, "", "model"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"model\":\"%s\"}", cases[i].model);
        px_fixture_t *f = px_new(cases[i].provider, "/v1/chat/completions", body);
        if (cases[i].header)
            px_header(f, cases[i].header, cases[i].value);
        int rc;
        base_of(f, &rc);
        assert_int_equal(rc, SL_EINVAL);
        assert_string_equal(f->px.error_param, cases[i].param);
        assert_non_null(strstr(f->px.error_message, cases[i].provider));
        px_free(f);
    }
    /* A custom host replaces the base URL, placeholders and all. */
    px_fixture_t *f = px_new("azure-openai", "/v1/chat/completions", "{\"model\":\"m\"}");
    f->px.custom_host = SL_STRLIT("http://10.1.2.3:8080/openai///");
    int rc;
    sl_str_t b = base_of(f, &rc);
    assert_int_equal(rc, 0);
    assert_true(sl_str_eq(b, SL_STRLIT("http://10.1.2.3:8080/openai")));
    px_free(f);
}

static void auth_styles(void **state)
{
    (void)state;
    static const struct {
        const char *provider, *key, *header, *value;
    } cases[] = {
        {"openai", "sk-1", "Authorization", "Bearer sk-1"},
        {"anthropic", "sk-ant", "x-api-key", "sk-ant"},
        {"azure-openai", "0123456789abcdef", "api-key", "0123456789abcdef"},
        {"azure-openai", "eyJhbGciOi.eyJzdWIiOi.c2ln", "Authorization", "Bearer eyJhbGciOi.eyJzdWIiOi.c2ln"},
        {"google", "AIza", "x-goog-api-key", "AIza"},
        {"ollama", "local", "Authorization", "Bearer local"},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(cases); i++) {
        px_fixture_t *f = px_new(cases[i].provider, "/v1/chat/completions", "{\"model\":\"m\"}");
        f->px.api_key = sl_str_c(cases[i].key);
        gw_tr_headers_init(&f->px, 0);
        gw_tr_auth_header(&f->px);
        assert_int_equal(f->px.n_up_headers, 1);
        assert_true(sl_str_eq(f->px.up_headers[0].name, sl_str_c(cases[i].header)));
        assert_true(sl_str_eq(f->px.up_headers[0].value, sl_str_c(cases[i].value)));
        px_free(f);
    }
    /* No key for a local server: nothing sent. */
    px_fixture_t *f = px_new("vllm", "/v1/chat/completions", "{\"model\":\"m\"}");
    f->px.api_key = SL_STR_NULL;
    gw_tr_headers_init(&f->px, 0);
    gw_tr_auth_header(&f->px);
    assert_int_equal(f->px.n_up_headers, 0);
    px_free(f);
}

static void usage_and_retryable(void **state)
{
    (void)state;
    px_fixture_t *f = px_new("openai", "/v1/chat/completions", "{\"model\":\"m\"}");
    json_t *u = json_loads("{\"prompt_tokens\":100,\"completion_tokens\":20,"
                           "\"prompt_tokens_details\":{\"cached_tokens\":60},"
                           "\"completion_tokens_details\":{\"reasoning_tokens\":5}}",
                           0, NULL);
    gw_tr_usage_from_openai(&f->px, u);
    json_decref(u);
    assert_int_equal(f->px.usage.prompt_tokens, 100);
    assert_int_equal(f->px.usage.completion_tokens, 20);
    assert_int_equal(f->px.usage.cached_tokens, 60);
    assert_int_equal(f->px.usage.reasoning_tokens, 5);
    u = gw_tr_usage_to_openai(&f->px);
    assert_int_equal(json_integer_value(json_object_get(u, "total_tokens")), 120);
    json_decref(u);
    px_free(f);
    assert_true(gw_tr_retryable_status(429));
    assert_true(gw_tr_retryable_status(503));
    assert_true(gw_tr_retryable_status(529));
    assert_false(gw_tr_retryable_status(500));
    assert_false(gw_tr_retryable_status(400));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(placeholders_filled),
        cmocka_unit_test(placeholders_refused),
        cmocka_unit_test(auth_styles),
        cmocka_unit_test(usage_and_retryable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
