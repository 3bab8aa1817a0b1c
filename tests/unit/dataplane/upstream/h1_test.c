/*
 * Tests for dataplane/upstream/h1.c: which URLs the native HTTP/1.1 engine
 * takes (the rest go to libcurl) and the request head it writes. The
 * transfers themselves are tested end to end in
 * tests/integration/test_http1_client.py. Includes h1.c for its statics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dataplane/upstream/h1.c"

static void expect_url(const char *url, const char *host, unsigned port, const char *authority,
                       const char *target)
{
    url_parts_t u;
    assert_int_equal(parse_url(url, &u), 0);
    assert_true(sl_str_eq(u.host, sl_str_c(host)));
    assert_int_equal(u.port, port);
    assert_true(sl_str_eq(u.authority, sl_str_c(authority)));
    assert_true(sl_str_eq(u.target, sl_str_c(target)));
}

static void test_urls_taken(void **state)
{
    (void)state;
    expect_url("http://10.0.0.5:8000/v1/chat/completions", "10.0.0.5", 8000, "10.0.0.5:8000",
               "/v1/chat/completions");
    expect_url("HTTP://Example.com/v1/models", "Example.com", 80, "Example.com", "/v1/models");
    expect_url("http://[::1]:9200/v1/x?a=1&b=%20", "::1", 9200, "[::1]:9200", "/v1/x?a=1&b=%20");
    expect_url("http://[fd00::1]/p", "fd00::1", 80, "[fd00::1]", "/p");
    expect_url("http://h:65535", "h", 65535, "h:65535", "");
    expect_url("http://h?q=1", "h", 80, "h", "?q=1");
    expect_url("http://h/p#fragment", "h", 80, "h", "/p");
}

static void test_urls_left_to_libcurl(void **state)
{
    (void)state;
    static const char *const urls[] = {
        "https://api.openai.com/v1/chat/completions", /* TLS */
        "http://user:pw@host/v1",                      /* credentials */
        "http://host:0/",      "http://host:65536/", "http://host:80a/", "http://host:/",
        "http:///v1",          "http://[::1/v1",     "http://[::1]x/",   "ftp://host/",
        "http://host/a b",     "http://host/\x7f",   "http://h\xc3\xa9.example/", /* IDN */
        "http://[fe80::1%25eth0]/",                   /* zone id */
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(urls); i++) {
        url_parts_t u;
        if (parse_url(urls[i], &u) == 0)
            fail_msg("taken: %s", urls[i]);
    }
}

static sl_str_t head_for(h1_conn_t *c, const char *url, const char *method,
                         const gw_http_header_t *h, size_t nh, const char *body, int *rc)
{
    url_parts_t u;
    assert_int_equal(parse_url(url, &u), 0);
    gw_upstream_req_t r = {.url = url, .method = method, .headers = h, .nheaders = nh,
                           .body = body ? sl_str_c(body) : SL_STR_NULL};
    *rc = build_head(c, &u, &r);
    return sl_buf_str(&c->head);
}

static void test_request_head(void **state)
{
    (void)state;
    h1_conn_t c;
    memset(&c, 0, sizeof(c));
    sl_buf_init(&c.head, 1u << 20);
    gw_http_header_t h[] = {
        {SL_STRLIT("Authorization"), SL_STRLIT("Bearer sk-x")},
        {SL_STRLIT("Host"), SL_STRLIT("evil.example")},          /* the engine writes its own */
        {SL_STRLIT("Content-Length"), SL_STRLIT("999")},
        {SL_STRLIT("Transfer-Encoding"), SL_STRLIT("chunked")},
        {SL_STRLIT("Content-Type"), SL_STRLIT("application/json")},
        {SL_STRLIT("X-Empty"), SL_STRLIT("")},
    };
    int rc;
    sl_str_t s = head_for(&c, "http://127.0.0.1:9/v1/chat/completions?x=1", "POST", h,
                          SL_ARRAY_SIZE(h), "{}", &rc);
    assert_int_equal(rc, 0);
    const char *want = "POST /v1/chat/completions?x=1 HTTP/1.1\r\n"
                       "Host: 127.0.0.1:9\r\n"
                       "Authorization: Bearer sk-x\r\n"
                       "Content-Type: application/json\r\n"
                       "X-Empty: \r\n"
                       "Accept: */*\r\n"
                       "Accept-Encoding: gzip, deflate\r\n"
                       "Content-Length: 2\r\n"
                       "\r\n";
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.base, want, s.len);

    /* GET without a body: no length; the caller's Accept is kept. */
    gw_http_header_t g[] = {{SL_STRLIT("accept"), SL_STRLIT("application/json")}};
    s = head_for(&c, "http://h/v1/models", "GET", g, 1, NULL, &rc);
    assert_int_equal(rc, 0);
    want = "GET /v1/models HTTP/1.1\r\nHost: h\r\naccept: application/json\r\n"
           "Accept-Encoding: gzip, deflate\r\n\r\n";
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.base, want, s.len);

    /* An empty POST still says its length; a bare query gets its slash. */
    s = head_for(&c, "http://h?q", "POST", NULL, 0, NULL, &rc);
    assert_int_equal(rc, 0);
    assert_true(sl_str_starts_with(s, SL_STRLIT("POST /?q HTTP/1.1\r\n")));
    assert_non_null(memmem(s.base, s.len, "Content-Length: 0\r\n", 19));
    sl_buf_dispose(&c.head);
}

static void test_header_injection_is_refused(void **state)
{
    (void)state;
    h1_conn_t c;
    memset(&c, 0, sizeof(c));
    sl_buf_init(&c.head, 1u << 20);
    static const gw_http_header_t bad[][1] = {
        {{SL_STRLIT("X-A"), SL_STRLIT("v\r\nX-Injected: 1")}},
        {{SL_STRLIT("X-A\nB"), SL_STRLIT("v")}},
        {{SL_STRLIT("X-A"), {"a\0b", 3}}},
        {{SL_STRLIT(""), SL_STRLIT("v")}},
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++) {
        int rc;
        head_for(&c, "http://h/", "POST", bad[i], 1, "x", &rc);
        assert_int_equal(rc, SL_EINTERNAL);
    }
    sl_buf_dispose(&c.head);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_urls_taken),
        cmocka_unit_test(test_urls_left_to_libcurl),
        cmocka_unit_test(test_request_head),
        cmocka_unit_test(test_header_injection_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
