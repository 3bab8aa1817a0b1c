/* Tests for dataplane/router/breaker.c: the circuit breaker state machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dataplane/router/breaker.h"

static const sl_str_t K = SL_STRLIT("openai|http://a|0001");
static const sl_str_t L = SL_STRLIT("openai http://a #0001");

static int setup(void **state)
{
    (void)state;
    gw_breaker_reset();
    return 0;
}

static void fail_n(const gw_breaker_cfg_t *c, int n, uint64_t now)
{
    for (int i = 0; i < n; i++) {
        assert_true(gw_breaker_allow(K, L, c, now, 1));
        gw_breaker_report(K, c, 0, now);
    }
}

static void opens_after_consecutive_failures(void **state)
{
    (void)state;
    gw_breaker_cfg_t c = {.failures = 3, .window_ms = 30000, .min_requests = 10, .cooldown_ms = 1000};
    fail_n(&c, 2, 100);
    assert_int_equal(gw_breaker_state(K), GW_BREAKER_CLOSED);
    /* A success in between starts the count again. */
    assert_true(gw_breaker_allow(K, L, &c, 100, 1));
    gw_breaker_report(K, &c, 1, 100);
    fail_n(&c, 2, 100);
    assert_int_equal(gw_breaker_state(K), GW_BREAKER_CLOSED);
    fail_n(&c, 1, 100);
    assert_int_equal(gw_breaker_state(K), GW_BREAKER_OPEN);
    assert_false(gw_breaker_allow(K, L, &c, 500, 1));
    assert_false(gw_breaker_allow(K, L, &c, 1099, 0));
}

static void half_open_probe(void **state)
{
    (void)state;
    gw_breaker_cfg_t c = {.failures = 1, .window_ms = 30000, .min_requests = 10, .cooldown_ms = 1000};
    fail_n(&c, 1, 0);
    assert_int_equal(gw_breaker_state(K), GW_BREAKER_OPEN);
    /* After the cool-down, one probe; a peek does not take it. */
    assert_true(gw_breaker_allow(K, L, &c, 1000, 0));
    assert_true(gw_breaker_allow(K, L, &c, 1000, 1));
    assert_int_equal(gw_breaker_state(K), GW_BREAKER_HALF_OPEN);
    assert_false(gw_breaker_allow(K, L, &c, 1001, 1));
    /* The probe fails: open again, for a new cool-down. */
    gw_breaker_report(K, &c, 0, 1002);
    assert_int_equal(gw_breaker_state(K), GW_BREAKER_OPEN);
    assert_false(gw_breaker_allow(K, L, &c, 1900, 1));
    /* The next probe succeeds: closed. */
    assert_true(gw_breaker_allow(K, L, &c, 2002, 1));
    gw_breaker_report(K, &c, 1, 2003);
    assert_int_equal(gw_breaker_state(K), GW_BREAKER_CLOSED);
    assert_true(gw_breaker_allow(K, L, &c, 2004, 1));
    /* A probe whose request went away is given back. */
    gw_breaker_report(K, &c, 0, 2005);
    assert_true(gw_breaker_allow(K, L, &c, 3005, 1));
    assert_false(gw_breaker_allow(K, L, &c, 3005, 1));
    gw_breaker_release(K);
    assert_true(gw_breaker_allow(K, L, &c, 3006, 1));
}

static void opens_on_error_rate_over_a_window(void **state)
{
    (void)state;
    gw_breaker_cfg_t c = {.failures = 0, .error_rate = 0.5, .window_ms = 1000, .min_requests = 4,
                          .cooldown_ms = 100};
    /* 3 requests, 2 failures: not enough requests yet. */
    gw_breaker_allow(K, L, &c, 0, 1);
    gw_breaker_report(K, &c, 0, 0);
    gw_breaker_report(K, &c, 1, 0);
    gw_breaker_report(K, &c, 0, 0);
    assert_int_equal(gw_breaker_state(K), GW_BREAKER_CLOSED);
    /* A new window forgets them. */
    gw_breaker_report(K, &c, 1, 1500);
    gw_breaker_report(K, &c, 1, 1500);
    gw_breaker_report(K, &c, 1, 1500);
    gw_breaker_report(K, &c, 0, 1500);
    assert_int_equal(gw_breaker_state(K), GW_BREAKER_CLOSED); /* 1 of 4 */
    gw_breaker_report(K, &c, 0, 1600);
    gw_breaker_report(K, &c, 0, 1600);
    assert_int_equal(gw_breaker_state(K), GW_BREAKER_OPEN); /* 3 of 6 */
}

static void metrics_and_unknown_targets(void **state)
{
    (void)state;
    gw_breaker_cfg_t c = {.failures = 1, .window_ms = 1000, .min_requests = 1, .cooldown_ms = 100};
    assert_int_equal(gw_breaker_state(SL_STRLIT("nobody")), GW_BREAKER_CLOSED);
    gw_breaker_report(SL_STRLIT("nobody"), &c, 0, 0); /* never allowed: ignored */
    assert_int_equal(gw_breaker_state(SL_STRLIT("nobody")), GW_BREAKER_CLOSED);
    fail_n(&c, 1, 0);
    sl_buf_t b;
    sl_buf_init(&b, 1 << 20);
    assert_int_equal(gw_breaker_render(&b), 0);
    assert_non_null(memmem(b.base, b.len,
                           "sluice_circuit_breaker_state{target=\"openai http://a #0001\"} 1", 60));
    assert_non_null(memmem(b.base, b.len,
                           "sluice_circuit_breaker_opens_total{target=\"openai http://a #0001\"} 1",
                           67));
    sl_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(opens_after_consecutive_failures, setup),
        cmocka_unit_test_setup(half_open_probe, setup),
        cmocka_unit_test_setup(opens_on_error_rate_over_a_window, setup),
        cmocka_unit_test_setup(metrics_and_unknown_targets, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
