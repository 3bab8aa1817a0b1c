/* Tests for common/err.c: the X-macro error table and its lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <string.h>

#include "common/err.h"
#include "common/str.h" /* SL_ARRAY_SIZE */

typedef struct {
    int err;
    const char *name;
    int status;
    const char *type;
    const char *code;
    const char *msg;
} row_t;

static const row_t rows[] = {
#define ROW(name, status, type, code, msg) {SL_##name, #name, status, type, code, msg},
    SL_ERR_MAP(ROW)
#undef ROW
};

static int known_type(const char *t)
{
    static const char *const types[] = {"invalid_request_error", "authentication_error",
                                        "permission_error",      "not_found_error",
                                        "rate_limit_error",      "api_error",
                                        "timeout_error"};
    for (size_t i = 0; i < SL_ARRAY_SIZE(types); i++)
        if (strcmp(t, types[i]) == 0)
            return 1;
    return 0;
}

static void every_code_maps(void **state)
{
    assert_true(SL_ARRAY_SIZE(rows) > 10);
    for (size_t i = 0; i < SL_ARRAY_SIZE(rows); i++) {
        const row_t *r = &rows[i];
        assert_true(r->err < SL_AGAIN);
        assert_int_equal(sl_err_status(r->err), r->status);
        assert_true(r->status >= 400 && r->status <= 599);
        assert_string_equal(sl_err_type(r->err), r->type);
        assert_string_equal(sl_err_code(r->err), r->code);
        assert_string_equal(sl_strerror(r->err), r->msg);
        if (!known_type(r->type))
            fail_msg("SL_%s has an unknown type \"%s\"", r->name, r->type);
        assert_true(strlen(r->code) > 0);
        assert_true(strlen(r->msg) > 0);
        /* Codes are machine-readable: lower case, digits and underscores. */
        for (const char *c = r->code; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
                fail_msg("SL_%s: code \"%s\" has '%c'", r->name, r->code, *c);
        /* 5xx statuses come with server-side types. */
        if (r->status >= 500)
            assert_true(strcmp(r->type, "api_error") == 0 || strcmp(r->type, "timeout_error") == 0);
    }
}

static void codes_are_distinct(void **state)
{
    for (size_t i = 0; i < SL_ARRAY_SIZE(rows); i++)
        for (size_t j = i + 1; j < SL_ARRAY_SIZE(rows); j++) {
            assert_int_not_equal(rows[i].err, rows[j].err);
            if (strcmp(rows[i].code, rows[j].code) == 0)
                fail_msg("SL_%s and SL_%s share the code \"%s\"", rows[i].name, rows[j].name,
                         rows[i].code);
        }
}

static void spot_checks(void **state)
{
    assert_int_equal(sl_err_status(SL_ETOOBIG), 413);
    assert_string_equal(sl_err_code(SL_ETOOBIG), "request_too_large");
    assert_int_equal(sl_err_status(SL_ENOKEY), 401);
    assert_string_equal(sl_err_type(SL_ENOKEY), "authentication_error");
    assert_int_equal(sl_err_status(SL_EUPTIMEOUT), 504);
    assert_string_equal(sl_err_type(SL_EUPTIMEOUT), "timeout_error");
    assert_int_equal(sl_err_status(SL_EBADJSON), 400);
    assert_int_equal(sl_err_status(SL_EFORBIDDENHOST), 400);
    assert_int_equal(sl_err_status(SL_EHDRTOOBIG), 431);
    assert_int_equal(sl_err_status(SL_EUPCONN), 502);
    assert_int_equal(sl_err_status(SL_ENOMEM), 500);
}

static void ok_and_again(void **state)
{
    assert_string_equal(sl_strerror(SL_OK), "success");
    assert_string_equal(sl_strerror(SL_AGAIN), "need more input");
    assert_int_equal(SL_OK, 0);
    assert_int_equal(SL_AGAIN, -1);
    /* Neither is an error: lookups still give something safe. */
    assert_non_null(sl_err_type(SL_OK));
    assert_non_null(sl_err_code(SL_AGAIN));
}

static void check_unknown(int err)
{
    assert_non_null(sl_strerror(err));
    assert_true(strlen(sl_strerror(err)) > 0);
    assert_int_equal(sl_err_status(err), 500);
    assert_string_equal(sl_err_type(err), "api_error");
    assert_non_null(sl_err_code(err));
}

static void unknown_codes(void **state)
{
    int last = rows[SL_ARRAY_SIZE(rows) - 1].err;
    const int codes[] = {1,    -2,   -22,    -999 - 1, SL__ERR_FIRST, SL__ERR_FIRST - 1, last + 1,
                         -500, 1000, 100000, -100000,  INT_MIN,       INT_MIN + 1};
    for (size_t i = 0; i < SL_ARRAY_SIZE(codes); i++)
        check_unknown(codes[i]);
}

static void unknown_extreme_positive_codes(void **state)
{
    /* Any int must be safe to look up, including the largest ones. */
    check_unknown(INT_MAX);
    check_unknown(INT_MAX - 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_maps), cmocka_unit_test(codes_are_distinct),
        cmocka_unit_test(spot_checks),     cmocka_unit_test(ok_and_again),
        cmocka_unit_test(unknown_codes),   cmocka_unit_test(unknown_extreme_positive_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
