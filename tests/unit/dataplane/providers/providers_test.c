/* Tests for common/provider.c (the provider table and lookup) and dataplane/providers/providers.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/provider.h"

static void find_is_case_insensitive(void **state)
{
    const sl_provider_t *p = sl_provider_find(SL_STRLIT("openai"));
    assert_non_null(p);
    assert_string_equal(p->name, "openai");
    assert_string_equal(p->base_url, "https://api.openai.com/v1");
    assert_ptr_equal(sl_provider_find(SL_STRLIT("OpenAI")), p);
    assert_ptr_equal(sl_provider_find(SL_STRLIT("OPENAI")), p);
    assert_ptr_equal(sl_provider_find(SL_STRLIT("oPeNaI")), p);
    const sl_provider_t *g = sl_provider_find(SL_STRLIT("Together-AI"));
    assert_non_null(g);
    assert_string_equal(g->name, "together-ai");
}

static void unknown_is_null(void **state)
{
    static const char *const names[] = {"",         "foo",     "open",    "openai ",      " openai",
                                        "openai\n", "openai-", "open_ai", "openaiopenai", "groq\t"};
    for (size_t i = 0; i < SL_ARRAY_SIZE(names); i++)
        if (sl_provider_find(sl_str_c(names[i])) != NULL)
            fail_msg("\"%s\" found", names[i]);
    assert_null(sl_provider_find(SL_STR_NULL));
    /* Embedded NUL: not the same name. */
    assert_null(sl_provider_find(SL_STRLIT("groq\0")));
    assert_null(sl_provider_find(SL_STRLIT("gro\0")));
}

static void find_uses_only_the_view(void **state)
{
    const char *s = "openaiXYZ";
    const sl_provider_t *p = sl_provider_find(sl_str(s, 6));
    assert_non_null(p);
    assert_string_equal(p->name, "openai");
    assert_null(sl_provider_find(sl_str(s, 5)));
}

static void table_entries_are_well_formed(void **state)
{
    size_t n = 0;
    const sl_provider_t *t = sl_provider_table(&n);
    assert_non_null(t);
    assert_true(n >= 1);
    for (size_t i = 0; i < n; i++) {
        const sl_provider_t *p = &t[i];
        assert_non_null(p->name);
        assert_non_null(p->base_url);
        size_t nl = strlen(p->name), ul = strlen(p->base_url);
        assert_true(nl > 0);
        /* Names are lower case so that listings match what find() accepts. */
        for (size_t k = 0; k < nl; k++)
            if (!((p->name[k] >= 'a' && p->name[k] <= 'z') ||
                  (p->name[k] >= '0' && p->name[k] <= '9') || p->name[k] == '-'))
                fail_msg("provider name \"%s\" has '%c'", p->name, p->name[k]);
        int https = strncmp(p->base_url, "https://", 8) == 0;
        int http = strncmp(p->base_url, "http://", 7) == 0;
        if (!https && !http)
            fail_msg("%s: base_url \"%s\" doesn't start with http", p->name, p->base_url);
        if (p->base_url[ul - 1] == '/')
            fail_msg("%s: base_url \"%s\" ends with a slash", p->name, p->base_url);
        for (size_t k = 0; k < ul; k++)
            if ((unsigned char)p->base_url[k] <= ' ' || p->base_url[k] == '?' ||
                p->base_url[k] == '#')
                fail_msg("%s: base_url \"%s\" has a bad character", p->name, p->base_url);
        /* A host after the scheme. */
        assert_true(ul > (size_t)(https ? 8 : 7));
        /* Keys never travel in clear text; only local servers are plain http. */
        if (http && p->auth != SL_AUTH_BEARER_OPTIONAL && p->auth != SL_AUTH_NONE)
            fail_msg("%s sends a key over plain http", p->name);
        assert_true(p->format < SL_FORMAT_COUNT);
        assert_true(p->endpoints != 0);
        assert_non_null(p->label);
        /* Placeholders are {lower-case-name} and close. */
        for (const char *q = strchr(p->base_url, '{'); q != NULL; q = strchr(q + 1, '{')) {
            const char *e = strchr(q, '}');
            if (e == NULL)
                fail_msg("%s: unclosed placeholder", p->name);
            for (const char *k = q + 1; k < e; k++)
                if (!((*k >= 'a' && *k <= 'z') || *k == '-'))
                    fail_msg("%s: bad placeholder name in %s", p->name, p->base_url);
        }
        /* find() gives back this very entry, in any case. */
        assert_ptr_equal(sl_provider_find(sl_str_c(p->name)), p);
        char upper[64];
        assert_true(nl < sizeof(upper));
        for (size_t k = 0; k <= nl; k++)
            upper[k] =
                (char)(p->name[k] >= 'a' && p->name[k] <= 'z' ? p->name[k] - 32 : p->name[k]);
        assert_ptr_equal(sl_provider_find(sl_str_c(upper)), p);
    }
}

static void names_are_unique(void **state)
{
    size_t n = 0;
    const sl_provider_t *t = sl_provider_table(&n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (strcasecmp(t[i].name, t[j].name) == 0)
                fail_msg("provider \"%s\" listed twice", t[i].name);
}

static void well_known_providers(void **state)
{
    /* The providers the provider-adapters issue names, at least. */
    static const char *const names[] = {
        "openai", "azure-openai", "anthropic", "google", "vertex-ai", "bedrock", "cohere",
        "mistral-ai", "groq", "together-ai", "fireworks-ai", "deepseek", "x-ai", "perplexity-ai",
        "openrouter", "deepinfra", "anyscale", "cerebras", "sambanova", "nvidia-nim",
        "huggingface", "ollama", "vllm", "lm-studio", "lepton", "novita", "hyperbolic", "nebius",
        "moonshot", "zhipu", "dashscope", "ai21", "nscale", "github-models", "databricks",
        "cloudflare-workers-ai", "predibase", "siliconflow", "voyage", "jina"};
    for (size_t i = 0; i < SL_ARRAY_SIZE(names); i++)
        if (sl_provider_find(sl_str_c(names[i])) == NULL)
            fail_msg("%s missing", names[i]);
    size_t n;
    sl_provider_table(&n);
    assert_true(n >= 40);
    const sl_provider_t *o = sl_provider_find(SL_STRLIT("ollama"));
    assert_int_equal(o->auth, SL_AUTH_BEARER_OPTIONAL);
    assert_int_equal(sl_provider_find(SL_STRLIT("anthropic"))->format, SL_FORMAT_ANTHROPIC);
    assert_int_equal(sl_provider_find(SL_STRLIT("anthropic"))->auth, SL_AUTH_X_API_KEY);
    assert_int_equal(sl_provider_find(SL_STRLIT("azure-openai"))->auth, SL_AUTH_API_KEY);
    assert_int_equal(sl_provider_find(SL_STRLIT("bedrock"))->auth, SL_AUTH_SIGV4);
    assert_int_equal(sl_provider_find(SL_STRLIT("voyage"))->endpoints, SL_CAP_EMBEDDINGS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(find_is_case_insensitive), cmocka_unit_test(unknown_is_null),
        cmocka_unit_test(find_uses_only_the_view),  cmocka_unit_test(table_entries_are_well_formed),
        cmocka_unit_test(names_are_unique),         cmocka_unit_test(well_known_providers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
