/* Tests for common/log.c: level names and the shape of a log line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"

static void level_parse(void **state)
{
    assert_int_equal(sl_log_level_parse("error"), SL_LOG_ERROR);
    assert_int_equal(sl_log_level_parse("warn"), SL_LOG_WARN);
    assert_int_equal(sl_log_level_parse("info"), SL_LOG_INFO);
    assert_int_equal(sl_log_level_parse("debug"), SL_LOG_DEBUG);
    assert_int_equal(sl_log_level_parse("trace"), SL_LOG_TRACE);
    assert_int_equal(sl_log_level_parse(""), -1);
    assert_int_equal(sl_log_level_parse("verbose"), -1);
    assert_int_equal(sl_log_level_parse("info "), -1);
    assert_int_equal(sl_log_level_parse("inf"), -1);
    assert_int_equal(sl_log_level_parse("warning"), -1);
}

/* Runs fn with stderr redirected to a temporary file; returns what it wrote. */
static size_t capture(void (*fn)(void), char *out, size_t cap)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
    fn();
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, cap - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return n;
}

static void log_with_context(void)
{
    sl_log_ctx_t ctx = {"0af7651916cd43dd", "connecting to upstream", "openai", "gpt-4o"};
    sl_log(SL_LOG_WARN, &ctx, ECONNREFUSED, "upstream %s: connect failed", "api.openai.com");
}

static void line_shape(void **state)
{
    char out[4096];
    int saved_level = sl_log_level;
    sl_log_level = SL_LOG_INFO;
    size_t n = capture(log_with_context, out, sizeof(out));
    sl_log_level = saved_level;
    assert_true(n > 0);
    assert_int_equal(out[n - 1], '\n');
    assert_non_null(strchr(out, '\n'));
    assert_ptr_equal(strchr(out, '\n'), out + n - 1); /* one line */
    assert_non_null(strstr(out, " WARN "));
    assert_non_null(strstr(out, "upstream api.openai.com: connect failed ("));
    assert_non_null(strstr(out, "while connecting to upstream"));
    assert_non_null(strstr(out, "trace_id=0af7651916cd43dd"));
    assert_non_null(strstr(out, "provider=openai"));
    assert_non_null(strstr(out, "model=gpt-4o"));
    /* ISO 8601 UTC timestamp first. */
    assert_int_equal(out[4], '-');
    assert_int_equal(out[10], 'T');
    assert_non_null(strchr(out, 'Z'));
}

static void log_filtered(void)
{
    sl_log(SL_LOG_DEBUG, NULL, 0, "should not appear %d", 1);
}

static void level_filters(void **state)
{
    char out[256];
    int saved_level = sl_log_level;
    sl_log_level = SL_LOG_INFO;
    size_t n = capture(log_filtered, out, sizeof(out));
    sl_log_level = saved_level;
    assert_int_equal(n, 0);
}

static void log_huge(void)
{
    char *big = sl_xmalloc(10000);
    memset(big, 'x', 9999);
    big[9999] = '\0';
    sl_log_ctx_t ctx = {"t", "a", "p", "m"};
    sl_log(SL_LOG_ERROR, &ctx, EIO, "%s", big);
    sl_free(big);
}

static void long_message_truncated_to_one_line(void **state)
{
    char out[16384];
    size_t n = capture(log_huge, out, sizeof(out));
    assert_true(n > 1000);
    assert_true(n <= 2048);
    assert_int_equal(out[n - 1], '\n');
    assert_ptr_equal(strchr(out, '\n'), out + n - 1);
}

static void log_json_special(void)
{
    sl_log_ctx_t ctx = {"t\"1", "connecting to upstream", NULL, NULL};
    sl_log(SL_LOG_WARN, &ctx, ECONNREFUSED, "quote \" backslash \\ newline \n tab \t end");
}

static void json_format(void **state)
{
    char out[4096];
    sl_log_json = 1;
    size_t n = capture(log_json_special, out, sizeof(out));
    sl_log_json = 0;
    assert_int_equal(out[n - 1], '\n');
    assert_ptr_equal(strchr(out, '\n'), out + n - 1); /* one line: the newline was escaped */
    assert_int_equal(out[0], '{');
    assert_int_equal(out[n - 2], '}');
    assert_non_null(strstr(out, "\"level\":\"warn\""));
    assert_non_null(strstr(out, "\"msg\":\"quote \\\" backslash \\\\ newline \\u000a tab \\u0009 end\""));
    assert_non_null(strstr(out, "\"errno\":111,\"error\":\""));
    assert_non_null(strstr(out, "\"action\":\"connecting to upstream\""));
    assert_non_null(strstr(out, "\"trace_id\":\"t\\\"1\""));
    assert_null(strstr(out, "provider"));
}

static void json_huge(void **state)
{
    char out[16384];
    sl_log_json = 1;
    size_t n = capture(log_huge, out, sizeof(out));
    sl_log_json = 0;
    assert_int_equal(out[n - 1], '\n');
    assert_int_equal(out[n - 2], '}');
    assert_ptr_equal(strchr(out, '\n'), out + n - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(level_parse),
        cmocka_unit_test(json_format),
        cmocka_unit_test(json_huge),
        cmocka_unit_test(line_shape),
        cmocka_unit_test(level_filters),
        cmocka_unit_test(long_message_truncated_to_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
