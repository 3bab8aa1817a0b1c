/* Tests for common/str.c and the inline helpers of common/str.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/err.h"
#include "common/str.h"

#define assert_str(s, lit) assert_true(sl_str_eq((s), SL_STRLIT(lit)))

static void trim(void **state)
{
    assert_str(sl_str_trim(SL_STRLIT("  a b \t")), "a b");
    assert_str(sl_str_trim(SL_STRLIT("\t\tx")), "x");
    assert_str(sl_str_trim(SL_STRLIT("x ")), "x");
    assert_str(sl_str_trim(SL_STRLIT("plain")), "plain");
    assert_int_equal(sl_str_trim(SL_STRLIT("   \t  ")).len, 0);
    assert_int_equal(sl_str_trim(SL_STRLIT("")).len, 0);
    assert_int_equal(sl_str_trim(SL_STR_NULL).len, 0);
    /* Only spaces and tabs: line ends and other bytes stay. */
    assert_str(sl_str_trim(SL_STRLIT("\na\r")), "\na\r");
    assert_str(sl_str_trim(SL_STRLIT(" \v ")), "\v");
    /* A view: only its own bytes are looked at. */
    const char *s = "  ab  cd";
    sl_str_t t = sl_str_trim(sl_str(s, 5));
    assert_ptr_equal(t.base, s + 2);
    assert_int_equal(t.len, 2);
}

static int to_u64(const char *s, unsigned long long *out)
{
    return sl_str_to_u64(sl_str_c(s), out);
}

static void to_u64_valid(void **state)
{
    unsigned long long v = 1;
    assert_int_equal(to_u64("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(to_u64("42", &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(to_u64("007", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(to_u64("4294967296", &v), 0);
    assert_true(v == 4294967296ULL);
    assert_int_equal(to_u64("18446744073709551615", &v), 0);
    assert_true(v == 18446744073709551615ULL);
    assert_int_equal(to_u64("18446744073709551609", &v), 0);
    assert_true(v == 18446744073709551609ULL);
    assert_int_equal(to_u64("00000000000000000001", &v), 0);
    assert_true(v == 1);
    /* Only the view's bytes count, not what follows. */
    assert_int_equal(sl_str_to_u64(sl_str("123456", 3), &v), 0);
    assert_true(v == 123);
}

static void to_u64_invalid(void **state)
{
    static const char *const bad[] = {
        "",
        "18446744073709551616",
        "18446744073709551620",
        "99999999999999999999",
        "184467440737095516150",
        "100000000000000000000000",
        "-1",
        "+1",
        " 1",
        "1 ",
        "12a",
        "0x10",
        "1.5",
        "1e3",
        "١٢",
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++) {
        unsigned long long v = 12345;
        if (to_u64(bad[i], &v) != SL_EINVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
        /* *out is untouched on failure. */
        assert_true(v == 12345);
    }
    unsigned long long v = 9;
    assert_int_equal(sl_str_to_u64(SL_STR_NULL, &v), SL_EINVAL);
    assert_int_equal(sl_str_to_u64(SL_STRLIT("1\0"), &v), SL_EINVAL);
}

static void ct_eq(void **state)
{
    assert_true(sl_str_ct_eq(SL_STRLIT("sk-abcdef"), SL_STRLIT("sk-abcdef")));
    assert_false(sl_str_ct_eq(SL_STRLIT("sk-abcdef"), SL_STRLIT("sk-abcdeg")));
    assert_false(sl_str_ct_eq(SL_STRLIT("sk-abcdef"), SL_STRLIT("tk-abcdef")));
    assert_false(sl_str_ct_eq(SL_STRLIT("sk-abc"), SL_STRLIT("sk-abcdef")));
    assert_false(sl_str_ct_eq(SL_STRLIT("sk-abcdef"), SL_STRLIT("sk-abc")));
    assert_false(sl_str_ct_eq(SL_STRLIT("a"), SL_STRLIT("")));
    assert_true(sl_str_ct_eq(SL_STRLIT(""), SL_STRLIT("")));
    assert_true(sl_str_ct_eq(SL_STR_NULL, SL_STRLIT("")));
    /* Binary contents: no NUL termination is assumed. */
    assert_true(sl_str_ct_eq(SL_STRLIT("a\0b"), SL_STRLIT("a\0b")));
    assert_false(sl_str_ct_eq(SL_STRLIT("a\0b"), SL_STRLIT("a\0c")));
    /* Case matters for secrets. */
    assert_false(sl_str_ct_eq(SL_STRLIT("KEY"), SL_STRLIT("key")));
}

static void eq_and_ieq(void **state)
{
    assert_true(sl_str_eq(SL_STRLIT("abc"), SL_STRLIT("abc")));
    assert_false(sl_str_eq(SL_STRLIT("abc"), SL_STRLIT("abd")));
    assert_false(sl_str_eq(SL_STRLIT("abc"), SL_STRLIT("ab")));
    assert_true(sl_str_eq(SL_STR_NULL, SL_STRLIT("")));

    assert_true(sl_str_ieq(SL_STRLIT("Content-Type"), SL_STRLIT("content-type")));
    assert_true(sl_str_ieq(SL_STRLIT("X-SLUICE-PROVIDER"), SL_STRLIT("x-sluice-provider")));
    assert_false(sl_str_ieq(SL_STRLIT("content-type"), SL_STRLIT("content-typ")));
    assert_false(sl_str_ieq(SL_STRLIT("content-type"), SL_STRLIT("content_type")));
    assert_true(sl_str_ieq(SL_STR_NULL, SL_STRLIT("")));
    assert_true(sl_str_ieq_c(SL_STRLIT("HOST"), "host"));
    assert_false(sl_str_ieq_c(SL_STRLIT("HOST"), "hosts"));
    /* Only the view is compared, not the NUL-terminated string behind it. */
    assert_true(sl_str_ieq_c(sl_str("Hostname", 4), "host"));
    /* '@' and '`' differ from letters by 0x20 but are not letters. */
    assert_false(sl_str_ieq(SL_STRLIT("@"), SL_STRLIT("`")));
}

static void ieq_embedded_nul(void **state)
{
    /* Views are byte strings: an embedded NUL must not end the comparison. */
    assert_false(sl_str_ieq(SL_STRLIT("a\0b"), SL_STRLIT("a\0c")));
    assert_false(sl_str_ieq(SL_STRLIT("\0A"), SL_STRLIT("\0B")));
}

static void starts_with(void **state)
{
    assert_true(sl_str_starts_with(SL_STRLIT("data: x"), SL_STRLIT("data:")));
    assert_false(sl_str_starts_with(SL_STRLIT("dat"), SL_STRLIT("data:")));
    assert_true(sl_str_starts_with(SL_STRLIT("x"), SL_STRLIT("")));
    assert_true(
        sl_str_istarts_with(SL_STRLIT("Text/Event-Stream; charset=utf-8"), "text/event-stream"));
    assert_false(sl_str_istarts_with(SL_STRLIT("text/event"), "text/event-stream"));
}

static void constructors(void **state)
{
    sl_str_t s = sl_str_c(NULL);
    assert_null(s.base);
    assert_int_equal(s.len, 0);
    s = sl_str_c("abc");
    assert_int_equal(s.len, 3);
    s = SL_STRLIT("a\0b");
    assert_int_equal(s.len, 3);
    typedef struct {
        int x;
        sl_str_t member;
    } outer_t;
    outer_t o;
    assert_ptr_equal(SL_CONTAINER_OF(&o.member, outer_t, member), &o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trim),           cmocka_unit_test(to_u64_valid),
        cmocka_unit_test(to_u64_invalid), cmocka_unit_test(ct_eq),
        cmocka_unit_test(eq_and_ieq),     cmocka_unit_test(starts_with),
        cmocka_unit_test(constructors),   cmocka_unit_test(ieq_embedded_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
