/* Tests for common/alloc.c: the x-allocators and the OOM hook of the try ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "common/alloc.h"

static int teardown(void **state)
{
    sl_alloc_fail_after(0);
    return 0;
}

static void x_allocators(void **state)
{
    char *p = sl_xmalloc(0);
    assert_non_null(p);
    sl_free(p);

    unsigned char *z = sl_xcalloc(64, 4);
    for (size_t i = 0; i < 256; i++)
        assert_int_equal(z[i], 0);
    z = sl_xrealloc(z, 4096);
    for (size_t i = 0; i < 256; i++)
        assert_int_equal(z[i], 0);
    sl_free(z);

    char *s = sl_xstrdup("hello");
    assert_string_equal(s, "hello");
    sl_free(s);
    s = sl_xstrndup("hello world", 5);
    assert_string_equal(s, "hello");
    sl_free(s);
    /* strndup copies exactly n bytes, even past an embedded NUL. */
    s = sl_xstrndup("a\0b", 3);
    assert_memory_equal(s, "a\0b", 4);
    sl_free(s);
    sl_free(NULL);
}

static void fail_next(void **state)
{
    sl_alloc_fail_after(1);
    void *p = sl_try_malloc(16);
    assert_null(p);
    /* Only one failure: the following allocations succeed. */
    p = sl_try_malloc(16);
    assert_non_null(p);
    sl_free(p);
    p = sl_try_malloc(0);
    assert_non_null(p);
    sl_free(p);
}

static void fail_nth(void **state)
{
    void *p[5];
    sl_alloc_fail_after(3);
    for (int i = 0; i < 5; i++)
        p[i] = sl_try_malloc(8);
    assert_non_null(p[0]);
    assert_non_null(p[1]);
    assert_null(p[2]);
    assert_non_null(p[3]);
    assert_non_null(p[4]);
    /* The return value counts the try calls since the previous call. */
    assert_int_equal(sl_alloc_fail_after(0), 5);
    assert_int_equal(sl_alloc_fail_after(0), 0);
    for (int i = 0; i < 5; i++)
        sl_free(p[i]);
}

static void disabled_never_fails(void **state)
{
    sl_alloc_fail_after(0);
    for (int i = 0; i < 1000; i++) {
        void *p = sl_try_malloc(32);
        assert_non_null(p);
        sl_free(p);
    }
    assert_int_equal(sl_alloc_fail_after(0), 1000);
}

static void realloc_failure_keeps_block(void **state)
{
    char *p = sl_try_malloc(8);
    assert_non_null(p);
    memcpy(p, "abcdefg", 8);
    sl_alloc_fail_after(1);
    char *q = sl_try_realloc(p, 1 << 20);
    assert_null(q);
    assert_string_equal(p, "abcdefg");
    q = sl_try_realloc(p, 1 << 20);
    assert_non_null(q);
    assert_string_equal(q, "abcdefg");
    sl_free(q);
}

static void x_allocators_ignore_hook(void **state)
{
    sl_alloc_fail_after(1);
    /* Fixed-size allocations abort on failure and are not part of the torture. */
    char *x = sl_xmalloc(16);
    assert_non_null(x);
    sl_free(x);
    x = sl_xstrdup("abc");
    sl_free(x);
    /* The armed failure is still pending for the next try call. */
    void *p = sl_try_malloc(16);
    assert_null(p);
    assert_int_equal(sl_alloc_fail_after(0), 1);
}

#define NTHREADS 4
#define PER_THREAD 2000

static void *alloc_loop(void *arg)
{
    int *nfail = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        void *p = sl_try_malloc(16);
        if (p == NULL)
            (*nfail)++;
        sl_free(p);
    }
    return NULL;
}

static void hook_is_thread_safe(void **state)
{
    pthread_t t[NTHREADS];
    int nfail[NTHREADS] = {0};
    sl_alloc_fail_after(0);
    sl_alloc_fail_after(NTHREADS * PER_THREAD / 2);
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, alloc_loop, &nfail[i]), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    int total = 0;
    for (int i = 0; i < NTHREADS; i++)
        total += nfail[i];
    /* Exactly one call among all threads saw the countdown reach 1. */
    assert_int_equal(total, 1);
    assert_int_equal(sl_alloc_fail_after(0), NTHREADS * PER_THREAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(x_allocators, teardown),
        cmocka_unit_test_teardown(fail_next, teardown),
        cmocka_unit_test_teardown(fail_nth, teardown),
        cmocka_unit_test_teardown(disabled_never_fails, teardown),
        cmocka_unit_test_teardown(realloc_failure_keeps_block, teardown),
        cmocka_unit_test_teardown(x_allocators_ignore_hook, teardown),
        cmocka_unit_test_teardown(hook_is_thread_safe, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
