/*
 * Tests for dataplane/telemetry/metrics.c. The .c file is included so that
 * the tests can look at the series table (memory bound, no duplicates).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdlib.h>

#include "dataplane/telemetry/metrics.c"

#define MS(x) ((uint64_t)(x)*1000000u)

static gw_metrics_t *m1, *m2;
static sl_buf_t text;

static int setup(void **state)
{
    m1 = gw_metrics_new();
    m2 = gw_metrics_new();
    sl_buf_init(&text, 16 << 20);
    return 0;
}

static int teardown(void **state)
{
    gw_metrics_free(m1);
    gw_metrics_free(m2);
    sl_buf_dispose(&text);
    return 0;
}

static void req(gw_metrics_t *m, const char *provider, const char *model, int status,
                uint64_t lat_ns)
{
    gw_metrics_request(m, sl_str_c(provider), sl_str_c(model), status, lat_ns, 20000);
}

/* Validates one sample line: name{label="value",...} number */
static void check_sample_line(const char *p, const char *end)
{
    const char *s = p;
    if (!(isalpha((unsigned char)*p) || *p == '_' || *p == ':'))
        fail_msg("bad metric name: %.*s", (int)(end - s), s);
    while (p < end && (isalnum((unsigned char)*p) || *p == '_' || *p == ':'))
        p++;
    if (p < end && *p == '{') {
        p++;
        for (;;) {
            const char *ln = p;
            while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
                p++;
            if (p == ln || p + 2 > end || p[0] != '=' || p[1] != '"')
                fail_msg("bad label in: %.*s", (int)(end - s), s);
            p += 2;
            while (p < end && *p != '"') {
                if (*p == '\\') {
                    if (p + 1 >= end || (p[1] != '\\' && p[1] != '"' && p[1] != 'n'))
                        fail_msg("bad escape in: %.*s", (int)(end - s), s);
                    p++;
                }
                p++;
            }
            if (p >= end)
                fail_msg("unterminated label value in: %.*s", (int)(end - s), s);
            p++;
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            fail_msg("bad label list in: %.*s", (int)(end - s), s);
        }
    }
    if (p >= end || *p != ' ')
        fail_msg("no value in: %.*s", (int)(end - s), s);
    p++;
    char num[64];
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= sizeof(num))
        fail_msg("bad value in: %.*s", (int)(end - s), s);
    memcpy(num, p, n);
    num[n] = '\0';
    char *e;
    strtod(num, &e);
    if (*e != '\0')
        fail_msg("bad value \"%s\" in: %.*s", num, (int)(end - s), s);
}

/* Renders ms[0..n) and checks the whole text is valid exposition format. */
static const char *render(gw_metrics_t *const *ms, int n)
{
    static const unsigned conns[2] = {3, 4}, infl[2] = {1, 2};
    sl_buf_reset(&text);
    assert_int_equal(gw_metrics_render(&text, ms, conns, infl, n), 0);
    assert_true(text.len > 0);
    assert_int_equal(text.base[text.len - 1], '\n');
    assert_int_equal(sl_buf_append(&text, "", 1), 0); /* NUL for strstr */
    text.len--;
    const char *p = text.base, *end = text.base + text.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        assert_non_null(nl);
        if (nl == p)
            fail_msg("empty line in the output");
        if (*p == '#') {
            if (strncmp(p, "# HELP ", 7) != 0 && strncmp(p, "# TYPE ", 7) != 0)
                fail_msg("bad comment: %.*s", (int)(nl - p), p);
        } else {
            check_sample_line(p, nl);
        }
        p = nl + 1;
    }
    return text.base;
}

/* The value of the sample whose name and labels are exactly key; -1 if absent. */
static double value(const char *t, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = t; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return strtod(p + kl + 1, NULL);
    }
    return -1;
}

/* Sum and number of the samples whose line starts with prefix. */
static double sum_lines(const char *t, const char *prefix, int *nlines)
{
    size_t pl = strlen(prefix);
    double sum = 0;
    int n = 0;
    for (const char *p = t; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, prefix, pl) == 0) {
            /* The value follows the last space of the line. */
            const char *sp = strchr(p, '\n');
            while (*sp != ' ')
                sp--;
            sum += strtod(sp + 1, NULL);
            n++;
        }
    }
    if (nlines != NULL)
        *nlines = n;
    return sum;
}

/* No two samples have the same name and labels. */
static void assert_no_duplicate_series(const char *t)
{
    const char *lines[4096];
    size_t lens[4096], n = 0;
    for (const char *p = t; *p;) {
        const char *nl = strchr(p, '\n');
        if (*p != '#') {
            const char *sp = nl;
            while (sp > p && *sp != ' ')
                sp--;
            assert_true(n < SL_ARRAY_SIZE(lines));
            lines[n] = p;
            lens[n++] = (size_t)(sp - p);
        }
        p = nl + 1;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (lens[i] == lens[j] && memcmp(lines[i], lines[j], lens[i]) == 0)
                fail_msg("duplicate series: %.*s", (int)lens[i], lines[i]);
}

static void counts_by_provider_model_status(void **state)
{
    for (int i = 0; i < 3; i++)
        req(m1, "openai", "gpt-4o", 200, MS(100));
    req(m1, "openai", "gpt-4o", 500, MS(100));
    req(m1, "openai", "gpt-4o-mini", 200, MS(100));
    req(m1, "groq", "gpt-4o", 200, MS(100));
    req(m1, "groq", "gpt-4o", 200, MS(100));
    const char *t = render(&m1, 1);
    assert_true(value(t, "sluice_requests_total{provider=\"openai\",model=\"gpt-4o\","
                         "status=\"200\"}") == 3);
    assert_true(value(t, "sluice_requests_total{provider=\"openai\",model=\"gpt-4o\","
                         "status=\"500\"}") == 1);
    assert_true(value(t, "sluice_requests_total{provider=\"openai\",model=\"gpt-4o-mini\","
                         "status=\"200\"}") == 1);
    assert_true(value(t, "sluice_requests_total{provider=\"groq\",model=\"gpt-4o\","
                         "status=\"200\"}") == 2);
    int n;
    assert_true(sum_lines(t, "sluice_requests_total{", &n) == 7);
    assert_int_equal(n, 4);
    assert_true(value(t, "sluice_request_duration_seconds_count") == 7);
    assert_true(value(t, "sluice_open_connections") == 3);
    assert_true(value(t, "sluice_requests_in_flight") == 1);
    assert_non_null(strstr(t, "# TYPE sluice_requests_total counter\n"));
    assert_non_null(strstr(t, "# TYPE sluice_request_duration_seconds histogram\n"));
    assert_no_duplicate_series(t);
}

static void empty_providers_and_models(void **state)
{
    req(m1, "", "", 400, MS(1));
    req(m1, "", "", 400, MS(1));
    const char *t = render(&m1, 1);
    assert_true(value(t, "sluice_requests_total{provider=\"\",model=\"\",status=\"400\"}") == 2);
    assert_int_equal(m1->nseries, 1);
}

static void histogram_buckets(void **state)
{
    /* 0.5 ms, exactly 1 ms (le is inclusive), 7 ms, 200 ms, 3 s, 200 s. */
    const uint64_t lat[] = {500000, MS(1), MS(7), MS(200), MS(3000), MS(200000)};
    for (size_t i = 0; i < SL_ARRAY_SIZE(lat); i++)
        req(m1, "openai", "gpt-4o", 200, lat[i]);
    const char *t = render(&m1, 1);
    static const struct {
        const char *le;
        double want;
    } b[] = {{"0.001", 2}, {"0.005", 2}, {"0.01", 3}, {"0.025", 3}, {"0.1", 3}, {"0.25", 4},
             {"1", 4},     {"2.5", 4},   {"5", 5},    {"60", 5},    {"120", 5}, {"+Inf", 6}};
    for (size_t i = 0; i < SL_ARRAY_SIZE(b); i++) {
        char key[128];
        snprintf(key, sizeof(key), "sluice_request_duration_seconds_bucket{le=\"%s\"}", b[i].le);
        double v = value(t, key);
        if (v != b[i].want)
            fail_msg("%s = %g, want %g", key, v, b[i].want);
    }
    assert_true(value(t, "sluice_request_duration_seconds_count") == 6);
    double sum = value(t, "sluice_request_duration_seconds_sum");
    assert_true(sum > 203.2084 && sum < 203.2086);
}

static void check_cumulative(const char *t, const char *name)
{
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "%s_bucket{le=\"", name);
    double prev = 0, last = -1;
    int n = 0;
    for (const char *p = strstr(t, prefix); p != NULL; p = strstr(p + 1, prefix)) {
        double v = strtod(strchr(p, ' ') + 1, NULL);
        if (v < prev)
            fail_msg("%s buckets not cumulative at %.40s", name, p);
        prev = last = v;
        n++;
    }
    assert_true(n >= 2);
    char key[128];
    snprintf(key, sizeof(key), "%s_bucket{le=\"+Inf\"}", name);
    assert_true(value(t, key) == last);
    snprintf(key, sizeof(key), "%s_count", name);
    if (value(t, key) != last)
        fail_msg("%s: +Inf bucket %g != count %g", name, last, value(t, key));
}

static void histograms_cumulative_inf_equals_count(void **state)
{
    uint32_t seed = 1;
    for (int i = 0; i < 1000; i++) {
        seed = seed * 1103515245u + 12345u;
        uint64_t lat = (uint64_t)(seed >> 8) * 20000u; /* up to ~335 s */
        uint64_t ov = (seed >> 12) * 10u;              /* up to ~10 ms */
        gw_metrics_request(i % 2 ? m1 : m2, SL_STRLIT("openai"), SL_STRLIT("m"), 200, lat, ov);
    }
    gw_metrics_t *both[2] = {m1, m2};
    const char *t = render(both, 2);
    check_cumulative(t, "sluice_request_duration_seconds");
    check_cumulative(t, "sluice_overhead_seconds");
    assert_true(value(t, "sluice_request_duration_seconds_count") == 1000);
    assert_true(value(t, "sluice_overhead_seconds_count") == 1000);
}

static void overhead_histogram(void **state)
{
    gw_metrics_request(m1, SL_STRLIT("openai"), SL_STRLIT("m"), 200, MS(100), 5000);   /* 5 us */
    gw_metrics_request(m1, SL_STRLIT("openai"), SL_STRLIT("m"), 200, MS(100), 300000); /* .3 ms */
    gw_metrics_request(m1, SL_STRLIT("openai"), SL_STRLIT("m"), 200, MS(100), MS(50));
    const char *t = render(&m1, 1);
    assert_true(value(t, "sluice_overhead_seconds_bucket{le=\"1e-05\"}") == 1);
    assert_true(value(t, "sluice_overhead_seconds_bucket{le=\"0.0005\"}") == 2);
    assert_true(value(t, "sluice_overhead_seconds_bucket{le=\"0.01\"}") == 2);
    assert_true(value(t, "sluice_overhead_seconds_bucket{le=\"+Inf\"}") == 3);
    double sum = value(t, "sluice_overhead_seconds_sum");
    assert_true(sum > 0.050304 && sum < 0.050306);
}

static void label_sanitizing(void **state)
{
    req(m1, "open\\ai", "gpt\"4\"\n}{evil=\"1", 200, MS(1));
    req(m1, "openai", "line\r\nbreak\ttab\x7f", 200, MS(1));
    const char *t = render(&m1, 1);
    assert_true(value(t, "sluice_requests_total{provider=\"open_ai\","
                         "model=\"gpt_4__}{evil=_1\",status=\"200\"}") == 1);
    assert_true(value(t, "sluice_requests_total{provider=\"openai\","
                         "model=\"line__break_tab_\",status=\"200\"}") == 1);
    assert_null(strstr(t, "evil=\"1"));
    assert_no_duplicate_series(t);
}

static void long_labels_truncated(void **state)
{
    char model[300];
    memset(model, 'm', sizeof(model) - 1);
    model[sizeof(model) - 1] = '\0';
    req(m1, "openai", model, 200, MS(1));
    req(m1, "openai", model, 200, MS(1));
    const char *t = render(&m1, 1);
    assert_int_equal(m1->nseries, 1);
    int n;
    assert_true(sum_lines(t, "sluice_requests_total{", &n) == 2);
    assert_int_equal(n, 1);
}

static void sanitized_names_share_one_series(void **state)
{
    /* The same odd model name, asked for again and again, is one series. */
    for (int i = 0; i < 3; i++)
        req(m1, "openai", "a\"b", 200, MS(1));
    const char *t = render(&m1, 1);
    assert_true(value(t, "sluice_requests_total{provider=\"openai\",model=\"a_b\","
                         "status=\"200\"}") == 3);
    if (m1->nseries != 1)
        fail_msg("3 requests for model a\"b made %zu series", m1->nseries);
}

static void sanitized_names_cannot_exhaust_series(void **state)
{
    /* A client repeating one odd name must not push real models into "other". */
    for (int i = 0; i < GW_METRICS_MAX_SERIES + 10; i++)
        req(m1, "openai", "bad\nname", 200, MS(1));
    req(m1, "openai", "gpt-4o", 200, MS(1));
    const char *t = render(&m1, 1);
    if (value(t, "sluice_requests_total{provider=\"openai\",model=\"gpt-4o\","
                 "status=\"200\"}") != 1)
        fail_msg("gpt-4o has no series of its own after %d requests for \"bad\\nname\" "
                 "(%zu series in the table)",
                 GW_METRICS_MAX_SERIES + 10, m1->nseries);
}

static void utf8_model_names(void **state)
{
    /* UTF-8 is valid in label values; it is neither mangled nor duplicated. */
    for (int i = 0; i < 3; i++)
        req(m1, "openai", "mod\xc3\xa8le-\xe6\xa8\xa1\xe5\x9e\x8b", 200, MS(1));
    const char *t = render(&m1, 1);
    double v = value(t, "sluice_requests_total{provider=\"openai\",model=\"mod\xc3\xa8le-"
                        "\xe6\xa8\xa1\xe5\x9e\x8b\",status=\"200\"}");
    if (v != 3)
        fail_msg("UTF-8 model: value %g, %zu series; output:\n%.300s", v, m1->nseries,
                 strstr(t, "sluice_requests_total{"));
}

static void series_cap_goes_to_other(void **state)
{
    enum { N = GW_METRICS_MAX_SERIES + 76 };
    char model[32];
    for (int i = 0; i < N; i++) {
        snprintf(model, sizeof(model), "model-%d", i);
        req(m1, "openai", model, 200, MS(1));
    }
    assert_true(m1->nseries <= GW_METRICS_MAX_SERIES);
    const char *t = render(&m1, 1);
    int n;
    assert_true(sum_lines(t, "sluice_requests_total{", &n) == N);
    /* The full table plus one "other" series for the one status. */
    assert_int_equal(n, GW_METRICS_MAX_SERIES + 1);
    assert_true(value(t, "sluice_requests_total{provider=\"openai\",model=\"model-0\","
                         "status=\"200\"}") == 1);
    assert_true(value(t, "sluice_requests_total{provider=\"other\",model=\"other\","
                         "status=\"200\"}") == N - GW_METRICS_MAX_SERIES);
    /* Models that have a series keep counting there. */
    req(m1, "openai", "model-5", 200, MS(1));
    t = render(&m1, 1);
    assert_true(value(t, "sluice_requests_total{provider=\"openai\",model=\"model-5\","
                         "status=\"200\"}") == 2);
    assert_no_duplicate_series(t);
    /* Memory is bounded: many more names change nothing. */
    for (int i = 0; i < 100000; i++) {
        snprintf(model, sizeof(model), "x-%d", i);
        req(m1, "openai", model, 200, MS(1));
    }
    assert_true(m1->nseries <= GW_METRICS_MAX_SERIES);
}

static void other_series_keeps_status(void **state)
{
    char model[32];
    for (int i = 0; i < GW_METRICS_MAX_SERIES; i++) {
        snprintf(model, sizeof(model), "model-%d", i);
        req(m1, "openai", model, 200, MS(1));
    }
    /* Past the cap: 5 successes, then 3 failures, of new models. */
    for (int i = 0; i < 5; i++) {
        snprintf(model, sizeof(model), "late-ok-%d", i);
        req(m1, "openai", model, 200, MS(1));
    }
    for (int i = 0; i < 3; i++) {
        snprintf(model, sizeof(model), "late-err-%d", i);
        req(m1, "openai", model, 500, MS(1));
    }
    const char *t = render(&m1, 1);
    double ok = value(t, "sluice_requests_total{provider=\"other\",model=\"other\","
                         "status=\"200\"}");
    double err = value(t, "sluice_requests_total{provider=\"other\",model=\"other\","
                          "status=\"500\"}");
    if (ok != 5 || err != 3)
        fail_msg("other series: status 200 -> %g, status 500 -> %g; want 5 and 3", ok, err);
}

static void merge_two_sets(void **state)
{
    req(m1, "openai", "gpt-4o", 200, MS(10));
    req(m1, "openai", "gpt-4o", 200, MS(10));
    req(m2, "openai", "gpt-4o", 200, MS(10));
    req(m2, "openai", "gpt-4o", 200, MS(10));
    req(m2, "openai", "gpt-4o", 200, MS(10));
    req(m2, "groq", "llama-3.1-8b", 429, MS(2000));
    gw_metrics_upstream_error(m1, SL_STRLIT("openai"), "connect");
    gw_metrics_upstream_error(m2, SL_STRLIT("openai"), "connect");
    gw_metrics_upstream_error(m2, SL_STRLIT("groq"), "timeout");
    gw_metrics_t *both[2] = {m1, m2};
    const char *t = render(both, 2);
    assert_true(value(t, "sluice_requests_total{provider=\"openai\",model=\"gpt-4o\","
                         "status=\"200\"}") == 5);
    assert_true(value(t, "sluice_requests_total{provider=\"groq\",model=\"llama-3.1-8b\","
                         "status=\"429\"}") == 1);
    assert_true(value(t, "sluice_request_duration_seconds_count") == 6);
    assert_true(value(t, "sluice_request_duration_seconds_bucket{le=\"0.01\"}") == 5);
    assert_true(value(t, "sluice_request_duration_seconds_bucket{le=\"2.5\"}") == 6);
    assert_true(value(t, "sluice_upstream_errors_total{provider=\"openai\",kind=\"connect\"}") ==
                2);
    assert_true(value(t, "sluice_upstream_errors_total{provider=\"groq\",kind=\"timeout\"}") == 1);
    assert_true(value(t, "sluice_open_connections") == 7);
    assert_true(value(t, "sluice_requests_in_flight") == 3);
    assert_no_duplicate_series(t);
    /* Rendering doesn't change the sets. */
    t = render(both, 2);
    assert_true(value(t, "sluice_request_duration_seconds_count") == 6);
}

static void merge_overflow_keeps_totals(void **state)
{
    /* Two workers that each saw a full table of different models. */
    char model[32];
    for (int i = 0; i < GW_METRICS_MAX_SERIES - 1; i++) {
        snprintf(model, sizeof(model), "a-%d", i);
        req(m1, "openai", model, 200, MS(1));
        snprintf(model, sizeof(model), "b-%d", i);
        req(m2, "openai", model, 200, MS(1));
    }
    gw_metrics_t *both[2] = {m1, m2};
    const char *t = render(both, 2);
    double total = sum_lines(t, "sluice_requests_total{", NULL);
    double count = value(t, "sluice_request_duration_seconds_count");
    assert_true(count == 2 * (GW_METRICS_MAX_SERIES - 1));
    if (total != count)
        fail_msg("merged sluice_requests_total adds up to %g, but %g requests were counted", total,
                 count);
}

static void upstream_errors(void **state)
{
    gw_metrics_upstream_error(m1, SL_STRLIT("openai"), "connect");
    gw_metrics_upstream_error(m1, SL_STRLIT("openai"), "connect");
    gw_metrics_upstream_error(m1, SL_STRLIT("openai"), "forbidden");
    gw_metrics_upstream_error(m1, SL_STRLIT("gro\"q"), "stream");
    const char *t = render(&m1, 1);
    assert_true(value(t, "sluice_upstream_errors_total{provider=\"openai\",kind=\"connect\"}") ==
                2);
    assert_true(value(t, "sluice_upstream_errors_total{provider=\"openai\",kind=\"forbidden\"}") ==
                1);
    assert_true(value(t, "sluice_upstream_errors_total{provider=\"gro_q\",kind=\"stream\"}") == 1);
    /* Bounded too. */
    char prov[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(prov, sizeof(prov), "p%d", i);
        gw_metrics_upstream_error(m1, sl_str_c(prov), "connect");
    }
    assert_true(m1->nerrs <= SL_ARRAY_SIZE(m1->errs));
    render(&m1, 1);
}

static void render_empty(void **state)
{
    const char *t = render(NULL, 0);
    assert_true(value(t, "sluice_request_duration_seconds_bucket{le=\"+Inf\"}") == 0);
    assert_true(value(t, "sluice_request_duration_seconds_count") == 0);
    assert_true(value(t, "sluice_open_connections") == 0);
    int n;
    sum_lines(t, "sluice_requests_total{", &n);
    assert_int_equal(n, 0);
}

static void render_respects_cap(void **state)
{
    req(m1, "openai", "gpt-4o", 200, MS(1));
    sl_buf_t small;
    sl_buf_init(&small, 100);
    static const unsigned zero[1] = {0};
    assert_int_equal(gw_metrics_render(&small, &m1, zero, zero, 1), SL_ETOOBIG);
    assert_true(small.len <= 100);
    sl_buf_dispose(&small);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(counts_by_provider_model_status),
        T(empty_providers_and_models),
        T(histogram_buckets),
        T(histograms_cumulative_inf_equals_count),
        T(overhead_histogram),
        T(label_sanitizing),
        T(long_labels_truncated),
        T(series_cap_goes_to_other),
        T(merge_two_sets),
        T(upstream_errors),
        T(render_empty),
        T(render_respects_cap),
        T(sanitized_names_share_one_series),
        T(sanitized_names_cannot_exhaust_series),
        T(utf8_model_names),
        T(other_series_keeps_status),
        T(merge_overflow_keeps_totals),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
