/* Tests for common/buf.c: the hard cap, growth, consume and OOM behaviour. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/err.h"

static sl_buf_t b;

static int teardown(void **state)
{
    sl_alloc_fail_after(0);
    sl_buf_dispose(&b);
    return 0;
}

static void fill(char *p, size_t n, char seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)(seed + i % 61);
}

static void init_is_empty(void **state)
{
    sl_buf_init(&b, 100);
    assert_null(b.base);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.max, 100);
    sl_str_t s = sl_buf_str(&b);
    assert_int_equal(s.len, 0);
}

static void cap_enforced_exactly(void **state)
{
    char data[1000];
    fill(data, sizeof(data), 'a');
    sl_buf_init(&b, 1000);
    assert_int_equal(sl_buf_append(&b, data, 600), 0);
    assert_int_equal(sl_buf_append(&b, data + 600, 400), 0);
    assert_int_equal(b.len, 1000);
    assert_true(b.cap <= b.max);
    /* At the cap, empty appends still succeed and one more byte does not. */
    assert_int_equal(sl_buf_append(&b, "", 0), 0);
    char *base = b.base;
    size_t cap = b.cap;
    assert_int_equal(sl_buf_append(&b, "x", 1), SL_ETOOBIG);
    assert_int_equal(b.len, 1000);
    assert_ptr_equal(b.base, base);
    assert_int_equal(b.cap, cap);
    assert_memory_equal(b.base, data, 1000);
    assert_int_equal(sl_buf_try_reserve(&b, 1), SL_ETOOBIG);
    assert_int_equal(sl_buf_try_reserve(&b, 0), 0);
}

static void cap_one_over_in_one_append(void **state)
{
    char data[1001];
    fill(data, sizeof(data), 'A');
    sl_buf_init(&b, 1000);
    assert_int_equal(sl_buf_append(&b, data, 1001), SL_ETOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(sl_buf_append(&b, data, 999), 0);
    assert_int_equal(sl_buf_append(&b, data, 2), SL_ETOOBIG);
    assert_int_equal(b.len, 999);
    assert_memory_equal(b.base, data, 999);
    assert_int_equal(sl_buf_append(&b, data, 1), 0);
    assert_int_equal(b.len, 1000);
}

static void zero_max(void **state)
{
    sl_buf_init(&b, 0);
    assert_int_equal(sl_buf_append(&b, "x", 1), SL_ETOOBIG);
    assert_int_equal(sl_buf_append(&b, "", 0), 0);
    assert_int_equal(b.len, 0);
}

static void huge_reserve_does_not_wrap(void **state)
{
    sl_buf_init(&b, SIZE_MAX);
    assert_int_equal(sl_buf_append(&b, "abc", 3), 0);
    /* len + extra overflows size_t: must be refused, not wrapped. */
    assert_int_equal(sl_buf_try_reserve(&b, SIZE_MAX), SL_ETOOBIG);
    assert_int_equal(sl_buf_try_reserve(&b, SIZE_MAX - 2), SL_ETOOBIG);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.base, "abc", 3);
}

static void reserve_grows(void **state)
{
    char data[5000];
    fill(data, sizeof(data), '0');
    sl_buf_init(&b, 1 << 20);
    assert_int_equal(sl_buf_try_reserve(&b, 10), 0);
    assert_true(b.cap >= 10);
    assert_int_equal(b.len, 0);
    assert_int_equal(sl_buf_append(&b, data, 100), 0);
    assert_int_equal(sl_buf_try_reserve(&b, 5000), 0);
    assert_true(b.cap >= 5100);
    assert_int_equal(b.len, 100);
    assert_memory_equal(b.base, data, 100);
    /* Reserving what is already there doesn't move the buffer. */
    char *base = b.base;
    assert_int_equal(sl_buf_try_reserve(&b, 5000), 0);
    assert_ptr_equal(b.base, base);
    /* Many small appends keep everything. */
    for (int i = 0; i < 200; i++)
        assert_int_equal(sl_buf_append(&b, data, 5000), 0);
    assert_int_equal(b.len, 100 + 200 * 5000);
    assert_memory_equal(b.base + 100 + 199 * 5000, data, 5000);
    assert_true(b.cap <= b.max);
}

static void growth_clamped_to_max(void **state)
{
    char data[300];
    fill(data, sizeof(data), 'k');
    sl_buf_init(&b, 300);
    assert_int_equal(sl_buf_append(&b, data, 257), 0);
    assert_int_equal(b.cap, 300); /* doubling would give 512 */
    assert_int_equal(sl_buf_append(&b, data, 43), 0);
    assert_int_equal(b.len, 300);
    assert_memory_equal(b.base + 257, data, 43);
}

static void append_str_reset_and_view(void **state)
{
    sl_buf_init(&b, 64);
    assert_int_equal(sl_buf_append_str(&b, SL_STRLIT("hello ")), 0);
    assert_int_equal(sl_buf_append_str(&b, SL_STRLIT("world")), 0);
    assert_true(sl_str_eq(sl_buf_str(&b), SL_STRLIT("hello world")));
    size_t cap = b.cap;
    sl_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, cap); /* reset keeps the memory */
    assert_int_equal(sl_buf_append_str(&b, SL_STR_NULL), 0);
    assert_int_equal(b.len, 0);
}

static void consume(void **state)
{
    sl_buf_init(&b, 64);
    assert_int_equal(sl_buf_append_str(&b, SL_STRLIT("hello world")), 0);
    sl_buf_consume(&b, 0);
    assert_true(sl_str_eq(sl_buf_str(&b), SL_STRLIT("hello world")));
    sl_buf_consume(&b, 6);
    assert_true(sl_str_eq(sl_buf_str(&b), SL_STRLIT("world")));
    sl_buf_consume(&b, 4);
    assert_true(sl_str_eq(sl_buf_str(&b), SL_STRLIT("d")));
    sl_buf_consume(&b, 1);
    assert_int_equal(b.len, 0);
    assert_int_equal(sl_buf_append_str(&b, SL_STRLIT("abc")), 0);
    sl_buf_consume(&b, 1000);
    assert_int_equal(b.len, 0);
    sl_buf_consume(&b, 1); /* on an empty buffer */
    assert_int_equal(b.len, 0);
    /* Consumed bytes free room under the cap. */
    char data[64];
    fill(data, sizeof(data), 'z');
    assert_int_equal(sl_buf_append(&b, data, 64), 0);
    assert_int_equal(sl_buf_append(&b, "x", 1), SL_ETOOBIG);
    sl_buf_consume(&b, 10);
    assert_int_equal(sl_buf_append(&b, data, 10), 0);
    assert_memory_equal(b.base, data + 10, 54);
    assert_memory_equal(b.base + 54, data, 10);
}

static void enomem_first_allocation(void **state)
{
    sl_buf_init(&b, 1000);
    sl_alloc_fail_after(1);
    assert_int_equal(sl_buf_append(&b, "abc", 3), SL_ENOMEM);
    assert_null(b.base);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    assert_int_equal(sl_buf_append(&b, "abc", 3), 0);
    assert_true(sl_str_eq(sl_buf_str(&b), SL_STRLIT("abc")));
}

static void enomem_on_growth_leaves_buffer_unchanged(void **state)
{
    char data[4000];
    fill(data, sizeof(data), '!');
    sl_buf_init(&b, 1 << 20);
    assert_int_equal(sl_buf_append(&b, data, 200), 0);
    char *base = b.base;
    size_t cap = b.cap;
    sl_alloc_fail_after(1);
    assert_int_equal(sl_buf_append(&b, data, 4000), SL_ENOMEM);
    assert_ptr_equal(b.base, base);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.len, 200);
    assert_memory_equal(b.base, data, 200);
    assert_int_equal(sl_buf_try_reserve(&b, 4000), 0);
    assert_int_equal(sl_buf_append(&b, data, 4000), 0);
    assert_int_equal(b.len, 4200);
    assert_memory_equal(b.base + 200, data, 4000);
}

static void enomem_torture(void **state)
{
    /* Fail every allocation in turn: the buffer always stays consistent. */
    char data[3000];
    fill(data, sizeof(data), 'T');
    for (unsigned long n = 1; n < 10; n++) {
        sl_buf_init(&b, 1 << 16);
        sl_alloc_fail_after(n);
        size_t expect = 0;
        for (int i = 0; i < 8; i++) {
            size_t n_i = 300u * (size_t)(i + 1);
            int r = sl_buf_append(&b, data, n_i);
            if (r == 0)
                expect += n_i;
            else
                assert_int_equal(r, SL_ENOMEM);
            assert_int_equal(b.len, expect);
            assert_true(b.len <= b.cap);
        }
        sl_alloc_fail_after(0);
        sl_buf_dispose(&b);
    }
}

static void dispose_twice(void **state)
{
    sl_buf_init(&b, 10);
    assert_int_equal(sl_buf_append(&b, "x", 1), 0);
    sl_buf_dispose(&b);
    assert_null(b.base);
    assert_int_equal(b.len, 0);
    sl_buf_dispose(&b);
    /* Usable again after dispose. */
    assert_int_equal(sl_buf_append(&b, "y", 1), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_teardown(f, teardown)
    const struct CMUnitTest tests[] = {
        T(init_is_empty),
        T(cap_enforced_exactly),
        T(cap_one_over_in_one_append),
        T(zero_max),
        T(huge_reserve_does_not_wrap),
        T(reserve_grows),
        T(growth_clamped_to_max),
        T(append_str_reset_and_view),
        T(consume),
        T(enomem_first_allocation),
        T(enomem_on_growth_leaves_buffer_unchanged),
        T(enomem_torture),
        T(dispose_twice),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
