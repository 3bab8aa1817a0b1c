/*
 * Tests for dataplane/router/router.c's pure parts: weighted selection (a
 * statistical test with a fixed seed) and the backoff schedule. Includes
 * router.c for its statics; the end-to-end routing is in
 * tests/integration/test_configs.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dataplane/router/router.c"

static void weighted_selection(void **state)
{
    (void)state;
    sl_arena_t a;
    sl_arena_init(&a);
    sl_rcfg_t cfg;
    const char *err = NULL;
    assert_int_equal(sl_rcfg_parse(&a, SL_STRLIT("{\"strategy\":{\"mode\":\"loadbalance\"},"
                                                 "\"targets\":[{\"provider\":\"a\",\"weight\":6},"
                                                 "{\"provider\":\"b\",\"weight\":3},"
                                                 "{\"provider\":\"c\",\"weight\":1},"
                                                 "{\"provider\":\"d\",\"weight\":0}]}"),
                                   &cfg, &err),
                     0);
    sl_rand_seed(42);
    inherit_t in = {NULL, NULL, 0, NULL, NULL, NULL};
    int counts[4] = {0};
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        const sl_rcfg_node_t *t = pick_weighted(NULL, &cfg.root, &in);
        assert_non_null(t);
        counts[t - cfg.root.targets]++;
    }
    /* Within 1 % of 60/30/10 (several standard deviations at this n); 0 never. */
    assert_in_range(counts[0], 59000, 61000);
    assert_in_range(counts[1], 29000, 31000);
    assert_in_range(counts[2], 9000, 11000);
    assert_int_equal(counts[3], 0);
    sl_arena_clear(&a);
}

static void backoff_schedule(void **state)
{
    (void)state;
    sl_rand_seed(7);
    for (int tries = 0; tries < 10; tries++) {
        uint64_t cap = 200ull << (tries < 6 ? tries : 6);
        if (cap > 8000)
            cap = 8000;
        uint64_t lo = cap, hi = 0, sum = 0;
        for (int i = 0; i < 20000; i++) {
            uint64_t d = backoff_ms(tries);
            assert_true(d < cap);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
            sum += d;
        }
        /* Full jitter: spread over [0, cap), mean near cap / 2. */
        assert_true(lo < cap / 50);
        assert_true(hi > cap - cap / 50);
        double mean = (double)sum / 20000;
        assert_true(mean > cap * 0.47 && mean < cap * 0.53);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(weighted_selection),
        cmocka_unit_test(backoff_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
