/*
 * Tests for common/rconfig.c: routing configs in Portkey's schema (the
 * examples of Portkey's config docs are accepted), every validation error
 * naming its JSON path, and the condition evaluator.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/arena.h"
#include "common/err.h"
#include "common/rconfig.h"

static sl_arena_t a;

static int setup(void **state)
{
    (void)state;
    sl_arena_init(&a);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sl_arena_clear(&a);
    return 0;
}

static sl_rcfg_t parse_ok(const char *text)
{
    sl_rcfg_t c;
    const char *err = NULL;
    if (sl_rcfg_parse(&a, sl_str_c(text), &c, &err) != 0)
        fail_msg("refused: %s\n  %s", text, err ? err : "(no message)");
    assert_null(err);
    return c;
}

static void expect_error(const char *text, const char *want)
{
    sl_rcfg_t c;
    const char *err = NULL;
    assert_int_equal(sl_rcfg_parse(&a, sl_str_c(text), &c, &err), SL_EINVAL);
    assert_non_null(err);
    if (strcmp(err, want) != 0)
        fail_msg("config %s\n  got:  %s\n  want: %s", text, err, want);
}

static void portkey_examples(void **state)
{
    (void)state;
    /* Fallback, from Portkey's docs (virtual keys and a retry). */
    sl_rcfg_t c = parse_ok("{\"retry\":{\"attempts\":5,\"on_status_codes\":[429,529]},"
                           "\"cache\":{\"mode\":\"simple\",\"max_age\":3600},"
                           "\"strategy\":{\"mode\":\"fallback\"},"
                           "\"targets\":[{\"provider\":\"openai\",\"virtual_key\":\"main-258f4d\"},"
                           "{\"provider\":\"azure-openai\",\"virtual_key\":\"azure-test-4110dd\"}]}");
    assert_int_equal(c.root.mode, SL_RCFG_FALLBACK);
    assert_int_equal(c.root.ntargets, 2);
    assert_string_equal(c.root.targets[1].provider, "azure-openai");
    assert_string_equal(c.root.targets[1].path, "config.targets[1]");
    assert_int_equal(c.root.retry.attempts, 5);
    assert_int_equal(c.root.retry.ncodes, 2);
    assert_int_equal(c.root.retry.codes[1], 529);
    assert_non_null(c.root.cache);

    /* Load balance with weights and a nested fallback. */
    c = parse_ok("{\"strategy\":{\"mode\":\"loadbalance\"},\"targets\":["
                 "{\"provider\":\"openai\",\"api_key\":\"sk-1\",\"weight\":0.7},"
                 "{\"weight\":0.3,\"strategy\":{\"mode\":\"fallback\",\"on_status_codes\":[429]},"
                 "\"targets\":[{\"provider\":\"anthropic\",\"api_key\":\"a\","
                 "\"override_params\":{\"model\":\"claude-sonnet-4-5\"}},"
                 "{\"provider\":\"bedrock\",\"aws_region\":\"us-east-1\",\"request_timeout\":5000}]}]}");
    assert_int_equal(c.root.mode, SL_RCFG_LOADBALANCE);
    const sl_rcfg_node_t *fb = &c.root.targets[1];
    assert_int_equal(fb->mode, SL_RCFG_FALLBACK);
    assert_true(fb->weight > 0.29 && fb->weight < 0.31);
    assert_int_equal(fb->codes[0], 429);
    assert_non_null(fb->targets[0].override_params);
    assert_string_equal(json_string_value(json_object_get(fb->targets[1].options, "aws_region")),
                        "us-east-1");
    assert_int_equal(fb->targets[1].request_timeout_ms, 5000);
    assert_string_equal(fb->targets[1].path, "config.targets[1].targets[1]");

    /* Conditional routing, from Portkey's docs. */
    c = parse_ok("{\"strategy\":{\"mode\":\"conditional\",\"conditions\":["
                 "{\"query\":{\"metadata.user_plan\":{\"$eq\":\"paid\"}},\"then\":\"finetuned\"},"
                 "{\"query\":{\"metadata.user_plan\":{\"$eq\":\"free\"}},\"then\":\"base\"}],"
                 "\"default\":\"base\"},\"targets\":["
                 "{\"name\":\"finetuned\",\"virtual_key\":\"xx\"},"
                 "{\"name\":\"base\",\"virtual_key\":\"yy\"}]}");
    assert_int_equal(c.root.nconds, 2);
    assert_string_equal(c.root.conds[0].then, "finetuned");
    assert_string_equal(c.root.default_target, "base");

    /* A config with settings only: the provider comes from the headers. */
    c = parse_ok("{\"retry\":{\"attempts\":3,\"use_retry_after_headers\":true},"
                 "\"request_timeout\":10000}");
    assert_true(c.root.retry.use_retry_after);
    assert_null(c.root.provider);

    /* Least-latency balancing, beyond Portkey. */
    c = parse_ok("{\"strategy\":{\"mode\":\"loadbalance\",\"policy\":\"least_latency\"},"
                 "\"targets\":[{\"provider\":\"openai\"},{\"provider\":\"groq\",\"weight\":0}]}");
    assert_int_equal(c.root.policy, SL_RCFG_LEAST_LATENCY);
    assert_true(c.root.targets[1].weight == 0);

    /* A circuit breaker, beyond Portkey: defaults filled in. */
    c = parse_ok("{\"circuit_breaker\":{\"failures\":3,\"error_rate\":0.5},\"provider\":\"openai\"}");
    assert_true(c.root.breaker.set);
    assert_int_equal(c.root.breaker.failures, 3);
    assert_int_equal(c.root.breaker.cooldown_ms, 30000);
    assert_int_equal(c.root.breaker.min_requests, 10);
}

static void errors_name_their_path(void **state)
{
    (void)state;
    expect_error("[]", "config: must be a JSON object");
    expect_error("{\"retry\":", "config: not JSON: unexpected token near end of file (column 9)");
    expect_error("{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[{\"provider\":\"a\"},"
                 "{\"provider\":\"b\",\"retry\":{\"attempts\":11}}]}",
                 "config.targets[1].retry.attempts: must be an integer 0..10");
    expect_error("{\"retry\":{\"attempts\":\"3\"}}", "config.retry.attempts: must be an integer 0..10");
    expect_error("{\"retry\":{\"tries\":3}}", "config.retry.tries: unknown retry field");
    expect_error("{\"strategy\":{\"mode\":\"roundrobin\"},\"targets\":[{}]}",
                 "config.strategy.mode: must be single, fallback, loadbalance or conditional");
    expect_error("{\"strategy\":{},\"targets\":[{}]}",
                 "config.strategy.mode: is required: single, fallback, loadbalance or conditional");
    expect_error("{\"strategy\":{\"mode\":\"fallback\"}}",
                 "config.targets: are required by this strategy");
    expect_error("{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[]}",
                 "config.targets: must be an array of 1..64 targets");
    expect_error("{\"targets\":[{\"provider\":\"a\"}]}", "config: targets need a strategy");
    expect_error("{\"strategy\":{\"mode\":\"fallback\",\"on_status_codes\":[429,99]},"
                 "\"targets\":[{}]}",
                 "config.strategy.on_status_codes[1]: must be an HTTP status code (100..599)");
    expect_error("{\"strategy\":{\"mode\":\"loadbalance\"},\"targets\":[{\"weight\":-1}]}",
                 "config.targets[0].weight: must be a number 0..1000000");
    expect_error("{\"strategy\":{\"mode\":\"loadbalance\"},\"targets\":[{\"weight\":0}]}",
                 "config.targets: a loadbalance needs a target with a weight above 0");
    expect_error("{\"request_timeout\":0}",
                 "config.request_timeout: must be milliseconds, an integer 1..3600000");
    expect_error("{\"override_params\":[1]}", "config.override_params: must be an object");
    expect_error("{\"forward_headers\":[\"x-a\",2]}",
                 "config.forward_headers[1]: must be a header name");
    expect_error("{\"cache\":{\"mode\":\"exact\"}}", "config.cache.mode: must be simple or semantic");
    expect_error("{\"provider\":\"\"}", "config.provider: must be a non-empty string");
    expect_error("{\"provider\":{\"x\":1}}", "config.provider: must be a non-empty string");
    expect_error("{\"hooks\":{\"x\":1}}", "config.hooks: unknown field");
    expect_error("{\"strategy\":{\"mode\":\"conditional\"},\"targets\":[{\"name\":\"a\"}]}",
                 "config.strategy.conditions: are required by the conditional mode");
    expect_error("{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":"
                 "{\"metadata.x\":1},\"then\":\"b\"}]},\"targets\":[{\"name\":\"a\"}]}",
                 "config.strategy.conditions[0].then: names no target of this node");
    expect_error("{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":"
                 "{\"metadata.x\":{\"$near\":1}},\"then\":\"a\"}]},\"targets\":[{\"name\":\"a\"}]}",
                 "config.strategy.conditions[0].query.metadata.x.$near: unknown operator (use $eq "
                 "$ne $in $nin $gt $gte $lt $lte $regex)");
    expect_error("{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":"
                 "{\"headers.x\":1},\"then\":\"a\"}]},\"targets\":[{\"name\":\"a\"}]}",
                 "config.strategy.conditions[0].query.headers.x: fields are metadata.<key>, "
                 "params.<key> or url.pathname");
    expect_error("{\"strategy\":{\"mode\":\"conditional\",\"conditions\":[{\"query\":"
                 "{\"params.model\":{\"$regex\":\"(\"}},\"then\":\"a\"}]},\"targets\":[{\"name\":\"a\"}]}",
                 "config.strategy.conditions[0].query.params.model.$regex: is not a valid regular "
                 "expression");
    expect_error("{\"strategy\":{\"mode\":\"fallback\",\"default\":\"a\"},\"targets\":[{\"name\":\"a\"}]}",
                 "config.strategy: conditions and default apply to the conditional mode only");
    expect_error("{\"strategy\":{\"mode\":\"fallback\"},\"provider\":\"openai\","
                 "\"targets\":[{\"provider\":\"x\"}]}",
                 "config: a node has targets or a provider, not both");
    expect_error("{\"circuit_breaker\":{\"failures\":0}}",
                 "config.circuit_breaker: needs failures or error_rate");
    expect_error("{\"circuit_breaker\":{\"error_rate\":1.5}}",
                 "config.circuit_breaker.error_rate: must be a number above 0 and at most 1");
    expect_error("{\"circuit_breaker\":{\"cooldown\":5}}",
                 "config.circuit_breaker.cooldown: unknown circuit_breaker field");
    /* Deep nesting is bounded. */
    char deep[2048] = "";
    for (int i = 0; i < 10; i++)
        strcat(deep, "{\"strategy\":{\"mode\":\"fallback\"},\"targets\":[");
    strcat(deep, "{}");
    for (int i = 0; i < 10; i++)
        strcat(deep, "]}");
    sl_rcfg_t c;
    const char *err;
    assert_int_equal(sl_rcfg_parse(&a, sl_str_c(deep), &c, &err), SL_EINVAL);
    assert_non_null(strstr(err, "nest deeper than 8 levels"));
}

static int match(const char *query, const char *metadata, const char *params, const char *path)
{
    json_t *q = json_loads(query, 0, NULL), *m = json_loads(metadata, 0, NULL);
    json_t *p = json_loads(params, 0, NULL);
    assert_non_null(q);
    int r = sl_rcfg_match(q, m, p, sl_str_c(path));
    json_decref(q);
    json_decref(m);
    json_decref(p);
    return r;
}

static void conditions(void **state)
{
    (void)state;
    const char *md = "{\"user_plan\":\"paid\",\"tier\":3,\"geo\":{\"region\":\"eu\"}}";
    const char *pa = "{\"model\":\"gpt-4o\",\"temperature\":0.9}";
    assert_true(match("{\"metadata.user_plan\":\"paid\"}", md, pa, "/v1/chat/completions"));
    assert_true(match("{\"metadata.user_plan\":{\"$eq\":\"paid\"}}", md, pa, ""));
    assert_false(match("{\"metadata.user_plan\":{\"$eq\":\"free\"}}", md, pa, ""));
    assert_true(match("{\"metadata.user_plan\":{\"$ne\":\"free\"}}", md, pa, ""));
    assert_true(match("{\"metadata.missing\":{\"$ne\":\"x\"}}", md, pa, ""));
    assert_false(match("{\"metadata.missing\":{\"$eq\":\"x\"}}", md, pa, ""));
    assert_true(match("{\"metadata.tier\":{\"$in\":[1,3]}}", md, pa, ""));
    assert_true(match("{\"metadata.tier\":{\"$nin\":[1,2]}}", md, pa, ""));
    assert_true(match("{\"metadata.tier\":{\"$gt\":2,\"$lte\":3}}", md, pa, ""));
    assert_false(match("{\"metadata.tier\":{\"$gt\":3}}", md, pa, ""));
    assert_false(match("{\"metadata.user_plan\":{\"$gt\":3}}", md, pa, "")); /* not a number */
    assert_true(match("{\"params.temperature\":{\"$gte\":0.7}}", md, pa, ""));
    assert_true(match("{\"params.model\":{\"$regex\":\"^gpt-4\"}}", md, pa, ""));
    assert_false(match("{\"params.model\":{\"$regex\":\"^claude\"}}", md, pa, ""));
    assert_true(match("{\"metadata.geo.region\":\"eu\"}", md, pa, ""));
    assert_true(match("{\"url.pathname\":{\"$regex\":\"embeddings$\"}}", md, pa, "/v1/embeddings"));
    assert_true(match("{\"$or\":[{\"metadata.tier\":1},{\"params.model\":\"gpt-4o\"}]}", md, pa, ""));
    assert_false(match("{\"$and\":[{\"metadata.tier\":3},{\"params.model\":\"o1\"}]}", md, pa, ""));
    assert_true(match("{\"metadata.tier\":3,\"params.model\":\"gpt-4o\"}", md, pa, ""));
    assert_false(match("{\"metadata.tier\":3}", "null", pa, "")); /* no metadata */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(portkey_examples),
        T(errors_name_their_path),
        T(conditions),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
