/* Tests for common/json.c: the OpenAI-style error body and string escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "common/arena.h"
#include "common/err.h"
#include "common/json.h"

static sl_buf_t b;

static int setup(void **state)
{
    sl_buf_init(&b, 1 << 20);
    return 0;
}

static int teardown(void **state)
{
    sl_buf_dispose(&b);
    return 0;
}

static json_t *parse(const sl_buf_t *buf)
{
    json_error_t err;
    json_t *j = json_loadb(buf->base, buf->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (j == NULL)
        fail_msg("invalid JSON (%s at %d): %.*s", err.text, err.position, (int)buf->len, buf->base);
    return j;
}

static const char *str_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    assert_non_null(v);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static void error_body_exact(void **state)
{
    assert_int_equal(sl_json_error_body(&b, "m", "t", NULL, "c"), 0);
    assert_true(sl_str_eq(sl_buf_str(&b),
                          SL_STRLIT("{\"error\":{\"message\":\"m\",\"type\":\"t\",\"param\":null,"
                                    "\"code\":\"c\"}}")));
}

static void error_body_shape(void **state)
{
    assert_int_equal(sl_json_error_body(&b, "model \"gpt-5\" not found", "invalid_request_error",
                                        "model", "model_not_found"),
                     0);
    json_t *root = parse(&b);
    assert_true(json_is_object(root));
    assert_int_equal(json_object_size(root), 1);
    json_t *e = json_object_get(root, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_object_size(e), 4);
    assert_string_equal(str_field(e, "message"), "model \"gpt-5\" not found");
    assert_string_equal(str_field(e, "type"), "invalid_request_error");
    assert_string_equal(str_field(e, "param"), "model");
    assert_string_equal(str_field(e, "code"), "model_not_found");
    json_decref(root);
}

static void error_body_nulls(void **state)
{
    assert_int_equal(sl_json_error_body(&b, "boom", "api_error", NULL, NULL), 0);
    json_t *root = parse(&b);
    json_t *e = json_object_get(root, "error");
    assert_true(json_is_null(json_object_get(e, "param")));
    assert_true(json_is_null(json_object_get(e, "code")));
    assert_string_equal(str_field(e, "message"), "boom");
    json_decref(root);

    /* An empty param is a string, not null. */
    sl_buf_reset(&b);
    assert_int_equal(sl_json_error_body(&b, "x", "api_error", "", "c"), 0);
    root = parse(&b);
    e = json_object_get(root, "error");
    assert_string_equal(str_field(e, "param"), "");
    json_decref(root);
}

static void error_body_for_every_error_code(void **state)
{
    static const int codes[] = {
#define CODE(name, status, type, code, msg) SL_##name,
        SL_ERR_MAP(CODE)
#undef CODE
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(codes); i++) {
        sl_buf_reset(&b);
        int err = codes[i];
        assert_int_equal(
            sl_json_error_body(&b, sl_strerror(err), sl_err_type(err), NULL, sl_err_code(err)), 0);
        json_t *root = parse(&b);
        json_t *e = json_object_get(root, "error");
        assert_string_equal(str_field(e, "message"), sl_strerror(err));
        assert_string_equal(str_field(e, "type"), sl_err_type(err));
        assert_string_equal(str_field(e, "code"), sl_err_code(err));
        json_decref(root);
    }
}

static void error_body_hostile_message(void **state)
{
    const char *msg = "\"},\"injected\":{\"x\":\"\\\n\r\t\x01\x1f</script>";
    assert_int_equal(sl_json_error_body(&b, msg, "invalid_request_error", "a\"b", "c\\d"), 0);
    json_t *root = parse(&b);
    assert_int_equal(json_object_size(root), 1);
    json_t *e = json_object_get(root, "error");
    assert_int_equal(json_object_size(e), 4);
    assert_string_equal(str_field(e, "message"), msg);
    assert_string_equal(str_field(e, "param"), "a\"b");
    assert_string_equal(str_field(e, "code"), "c\\d");
    json_decref(root);
}

static void error_body_cap(void **state)
{
    sl_buf_t small;
    sl_buf_init(&small, 20);
    assert_int_equal(sl_json_error_body(&small, "a long message here", "api_error", NULL, NULL),
                     SL_ETOOBIG);
    assert_true(small.len <= 20);
    sl_buf_dispose(&small);
}

#define assert_appends(in, want)                                                                   \
    do {                                                                                           \
        sl_buf_reset(&b);                                                                          \
        assert_int_equal(sl_json_append_string(&b, SL_STRLIT(in)), 0);                             \
        if (!sl_str_eq(sl_buf_str(&b), SL_STRLIT(want)))                                           \
            fail_msg("got %.*s, want %s", (int)b.len, b.base, want);                               \
    } while (0)

static void escaping_exact(void **state)
{
    assert_appends("", "\"\"");
    assert_appends("plain", "\"plain\"");
    assert_appends("a\"b", "\"a\\\"b\"");
    assert_appends("back\\slash", "\"back\\\\slash\"");
    assert_appends("\n\r\t", "\"\\n\\r\\t\"");
    assert_appends("\x01", "\"\\u0001\"");
    assert_appends("\x1f", "\"\\u001f\"");
    assert_appends("\b\f", "\"\\u0008\\u000c\"");
    assert_appends("a\0b", "\"a\\u0000b\"");
    assert_appends("\x7f", "\"\x7f\"");
    assert_appends("/", "\"/\"");
    assert_appends("\"\"\\\\", "\"\\\"\\\"\\\\\\\\\"");
    /* UTF-8 passes through byte for byte. */
    assert_appends("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80",
                   "\"h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80\"");
    assert_appends("\xe2\x80\xa8", "\"\xe2\x80\xa8\"");
}

static void escaping_round_trips(void **state)
{
    /* Every ASCII byte, then UTF-8 of 2, 3 and 4 bytes. */
    char in[200];
    size_t n = 0;
    for (int c = 0; c < 0x80; c++)
        in[n++] = (char)c;
    static const char utf8[] = "\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbd\xf0\x90\x80\x80"
                               "\xf4\x8f\xbf\xbf";
    memcpy(in + n, utf8, sizeof(utf8) - 1);
    n += sizeof(utf8) - 1;
    for (size_t len = 0; len <= 0x80; len++) {
        size_t want = len < 0x80 ? len : n; /* every prefix of the ASCII part, then all */
        sl_buf_reset(&b);
        assert_int_equal(sl_json_append_string(&b, sl_str(in, want)), 0);
        json_t *j = parse(&b);
        assert_true(json_is_string(j));
        assert_int_equal(json_string_length(j), want);
        assert_memory_equal(json_string_value(j), in, want);
        /* The output has no raw control characters. */
        for (size_t i = 0; i < b.len; i++)
            assert_true((unsigned char)b.base[i] >= 0x20);
        json_decref(j);
    }
}

static void escaping_appends_after_existing(void **state)
{
    assert_int_equal(sl_buf_append_str(&b, SL_STRLIT("[")), 0);
    assert_int_equal(sl_json_append_string(&b, SL_STRLIT("a\n")), 0);
    assert_int_equal(sl_buf_append_str(&b, SL_STRLIT(",")), 0);
    assert_int_equal(sl_json_append_string(&b, SL_STRLIT("b")), 0);
    assert_int_equal(sl_buf_append_str(&b, SL_STRLIT("]")), 0);
    assert_true(sl_str_eq(sl_buf_str(&b), SL_STRLIT("[\"a\\n\",\"b\"]")));
}

static void escaping_cap(void **state)
{
    sl_buf_t small;
    sl_buf_init(&small, 8);
    assert_int_equal(sl_json_append_string(&small, SL_STRLIT("abcdef")), 0);
    sl_buf_reset(&small);
    assert_int_equal(sl_json_append_string(&small, SL_STRLIT("abcdefg")), SL_ETOOBIG);
    sl_buf_reset(&small);
    /* Escapes grow the output: 4 newlines need 10 bytes. */
    assert_int_equal(sl_json_append_string(&small, SL_STRLIT("\n\n\n\n")), SL_ETOOBIG);
    sl_buf_dispose(&small);
}

static void decref_as_arena_defer(void **state)
{
    sl_arena_t a;
    sl_arena_init(&a);
    json_t *j = json_pack("{s:s, s:[i,i]}", "k", "v", "l", 1, 2);
    assert_non_null(j);
    sl_arena_defer(&a, sl_json_decref_cb, j);
    sl_arena_clear(&a); /* frees j; ASan checks for the leak */
}

/* sl_json_dump writes what jansson's own compact dump writes, value for value. */
static void dump_matches_jansson(void **state)
{
    static const char *const docs[] = {
        "{}", "[]", "{\"a\":[]}", "[1,-2,0,9223372036854775807,-9223372036854775808]",
        "{\"s\":\"plain\",\"e\":\"q\\\"b\\\\n\\n\\t\\u0001\",\"u\":\"caf\\u00e9 \\u2603 \\ud83d\\ude00\"}",
        "[true,false,null,1.5,-0.25,1e+300,2.0,0.1]",
        "{\"nested\":{\"deep\":[{\"x\":[[[]]]},\"\"]},\"k\\\"ey\":1}",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_t *v = json_loads(docs[i], JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        sl_buf_reset(&b);
        assert_int_equal(sl_json_dump(&b, v), 0);
        char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (b.len != strlen(want) || memcmp(b.base, want, b.len) != 0)
            fail_msg("doc %zu: got %.*s, want %s", i, (int)b.len, b.base, want);
        /* And it reads back as the same value. */
        json_t *back = parse(&b);
        assert_true(json_equal(back, v));
        json_decref(back);
        free(want);
        json_decref(v);
    }
    /* The cap holds. */
    sl_buf_t small;
    sl_buf_init(&small, 8);
    json_t *v = json_pack("{s:s}", "key", "a value longer than eight bytes");
    assert_int_equal(sl_json_dump(&small, v), SL_ETOOBIG);
    json_decref(v);
    sl_buf_dispose(&small);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(error_body_exact),
        T(error_body_shape),
        T(error_body_nulls),
        T(error_body_for_every_error_code),
        T(error_body_hostile_message),
        T(error_body_cap),
        T(escaping_exact),
        T(escaping_round_trips),
        T(escaping_appends_after_existing),
        T(escaping_cap),
        T(decref_as_arena_defer),
        T(dump_matches_jansson),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
