/*
 * Tests for dataplane/providers/sigv4.c.
 *
 * Published vectors:
 *  - AWS's Signature Version 4 test suite (credentials AKIDEXAMPLE, region
 *    us-east-1, service "service", 20150830T123600Z), as once published in
 *    the AWS General Reference and now kept in awslabs/aws-c-auth
 *    (tests/aws-signing-test-suite/v4). The expected string to sign (whose
 *    last line is the hash of the canonical request, so it checks the
 *    canonical request byte for byte) and Authorization header are copied
 *    from the suite; a few canonical requests are also compared literally.
 *    In post-x-www-form-urlencoded[-parameters] the request has no
 *    Content-Length and the -parameters content type is "charset=utf8", as
 *    in AWS's original files (some later copies mix versions; these are the
 *    ones whose canonical request, string to sign and signature agree).
 *  - The IAM ListUsers example of AWS's "create a signed request" docs.
 *  - Bedrock requests (model ids with ':' and an inference-profile ARN)
 *    signed by botocore, AWS's Python SDK, as an independent cross-check of
 *    the double encoding of the path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "dataplane/providers/sigv4.h"

#define SUITE_TIME ((time_t)1440938160) /* 2015-08-30T12:36:00Z */
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SUITE_STS_HEAD                                                                             \
    "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define STS_TOKEN                                                                                  \
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSP" \
    "fIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYw"  \
    "T7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKm"  \
    "lzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

typedef struct {
    const char *name;
    const char *method;
    const char *url;
    const char *hdrs[6][2]; /* ends at the first NULL name */
    const char *body;
    int token;
    const char *creq;     /* compared literally when not NULL */
    const char *sts_hash; /* last line of the suite's string to sign */
    const char *signed_headers;
    const char *signature;
} suite_case_t;

#define H_HOST                                                                                     \
    {                                                                                              \
        "Host", "example.amazonaws.com"                                                            \
    }
#define URL(pq) "https://example.amazonaws.com" pq
#define UNRESERVED "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

static const suite_case_t suite[] = {
    {"get-header-key-duplicate",
     "GET",
     URL("/"),
     {H_HOST, {"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
     "",
     0,
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\n"
     "x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n" EMPTY_SHA,
     "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
     "host;my-header1;x-amz-date",
     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
    {"get-header-value-order",
     "GET",
     URL("/"),
     {H_HOST,
      {"My-Header1", "value4"},
      {"My-Header1", "value1"},
      {"My-Header1", "value3"},
      {"My-Header1", "value2"}},
     "",
     0,
     NULL,
     "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
     "host;my-header1;x-amz-date",
     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
    {"get-header-value-trim",
     "GET",
     URL("/"),
     {H_HOST, {"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
     "",
     0,
     "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\n"
     "x-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n" EMPTY_SHA,
     "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
     "host;my-header1;my-header2;x-amz-date",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
    {"get-unreserved",
     "GET",
     URL("/" UNRESERVED),
     {H_HOST},
     "",
     0,
     NULL,
     "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
     "host;x-amz-date",
     "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
    {"get-vanilla",
     "GET",
     URL("/"),
     {H_HOST},
     "",
     0,
     "GET\n/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA,
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    /* The same without a Host header: the signer takes it from the URL. */
    {"get-vanilla (host from the URL)",
     "GET",
     URL("/"),
     {{NULL, NULL}},
     "",
     0,
     NULL,
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla (default port dropped)",
     "GET",
     "https://example.amazonaws.com:443",
     {{NULL, NULL}},
     "",
     0,
     NULL,
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-vanilla-empty-query-key",
     "GET",
     URL("/?Param1=value1"),
     {H_HOST},
     "",
     0,
     NULL,
     "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
     "host;x-amz-date",
     "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
    {"get-vanilla-query-order-key",
     "GET",
     URL("/?Param1=value2&Param1=Value1"),
     {H_HOST},
     "",
     0,
     "GET\n/\nParam1=Value1&Param1=value2\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA,
     "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
     "host;x-amz-date",
     "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
    {"get-vanilla-query-order-key-case",
     "GET",
     URL("/?Param2=value2&Param1=value1"),
     {H_HOST},
     "",
     0,
     NULL,
     "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
     "host;x-amz-date",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
    {"get-vanilla-query-order-value",
     "GET",
     URL("/?Param1=value2&Param1=value1"),
     {H_HOST},
     "",
     0,
     NULL,
     "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
     "host;x-amz-date",
     "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
    {"get-vanilla-query-unreserved",
     "GET",
     URL("/?" UNRESERVED "=" UNRESERVED),
     {H_HOST},
     "",
     0,
     NULL,
     "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
     "host;x-amz-date",
     "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
    {"get-vanilla-utf8-query",
     "GET",
     URL("/?\xe1\x88\xb4"
         "=bar"),
     {H_HOST},
     "",
     0,
     "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY_SHA,
     "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
     "host;x-amz-date",
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    /* The same query already encoded: decoded, then encoded again, it signs the same. */
    {"get-vanilla-utf8-query (encoded)",
     "GET",
     URL("/?%e1%88%b4=bar"),
     {H_HOST},
     "",
     0,
     NULL,
     "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
     "host;x-amz-date",
     "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
    /* aws-c-auth's later addition: encoded keys sort after encoding. */
    {"get-vanilla-query-order-encoded",
     "GET",
     URL("/?Param-3=Value3&Param=Value2&%E1%88%B4=Value1"),
     {H_HOST},
     "",
     0,
     "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA,
     NULL,
     "host;x-amz-date",
     "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"},
    {"post-header-key-case",
     "POST",
     URL("/"),
     {H_HOST},
     "",
     0,
     NULL,
     "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
     "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-header-key-sort",
     "POST",
     URL("/"),
     {H_HOST, {"My-Header1", "value1"}},
     "",
     0,
     NULL,
     "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
     "host;my-header1;x-amz-date",
     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
    {"post-header-value-case",
     "POST",
     URL("/"),
     {H_HOST, {"My-Header1", "VALUE1"}},
     "",
     0,
     NULL,
     "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
     "host;my-header1;x-amz-date",
     "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
    {"post-vanilla",
     "POST",
     URL("/"),
     {H_HOST},
     "",
     0,
     "POST\n/"
     "\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" EMPTY_SHA,
     "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
     "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
    {"post-vanilla-query",
     "POST",
     URL("/?Param1=value1"),
     {H_HOST},
     "",
     0,
     NULL,
     "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
     "host;x-amz-date",
     "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
    {"post-x-www-form-urlencoded",
     "POST",
     URL("/"),
     {{"Content-Type", "application/x-www-form-urlencoded"}, H_HOST},
     "Param1=value1",
     0,
     "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n"
     "x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n"
     "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
     "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
     "content-type;host;x-amz-date",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
    {"post-x-www-form-urlencoded-parameters",
     "POST",
     URL("/"),
     {{"Content-Type", "application/x-www-form-urlencoded; charset=utf8"}, H_HOST},
     "Param1=value1",
     0,
     NULL,
     "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
     "content-type;host;x-amz-date",
     "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
    {"get-relative",
     "GET",
     URL("/example/.."),
     {H_HOST},
     "",
     0,
     NULL,
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-relative-relative",
     "GET",
     URL("/example1/example2/../.."),
     {H_HOST},
     "",
     0,
     NULL,
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-slash",
     "GET",
     URL("//"),
     {H_HOST},
     "",
     0,
     NULL,
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-slash-dot-slash",
     "GET",
     URL("/./"),
     {H_HOST},
     "",
     0,
     NULL,
     "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"get-slash-pointless-dot",
     "GET",
     URL("/./example"),
     {H_HOST},
     "",
     0,
     NULL,
     "214d50c111a8edc4819da6a636336472c916b5240f51e9a51b5c3305180cf702",
     "host;x-amz-date",
     "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
    {"get-slashes",
     "GET",
     URL("//example//"),
     {H_HOST},
     "",
     0,
     "GET\n/example/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY_SHA,
     "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
     "host;x-amz-date",
     "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
    {"get-space",
     "GET",
     URL("/example space/"),
     {H_HOST},
     "",
     0,
     "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
     "host;x-amz-date\n" EMPTY_SHA,
     "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
     "host;x-amz-date",
     "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
    {"post-sts-header-before",
     "POST",
     URL("/"),
     {H_HOST},
     "",
     1,
     "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
     "x-amz-security-token:" STS_TOKEN "\n\nhost;x-amz-date;x-amz-security-token\n" EMPTY_SHA,
     "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
     "host;x-amz-date;x-amz-security-token",
     "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
};

static gw_sigv4_creds_t suite_creds(int token)
{
    gw_sigv4_creds_t c = {
        .access_key_id = SL_STRLIT("AKIDEXAMPLE"),
        .secret_access_key = SL_STRLIT(SECRET),
        .session_token = token ? SL_STRLIT(STS_TOKEN) : SL_STR_NULL,
        .region = SL_STRLIT("us-east-1"),
        .service = SL_STRLIT("service"),
    };
    return c;
}

static int teardown_arena(void **state)
{
    sl_arena_clear(*state);
    return 0;
}

static int setup_arena(void **state)
{
    static sl_arena_t a;
    sl_arena_init(&a);
    *state = &a;
    return 0;
}

static void assert_str(sl_str_t got, const char *want, const char *what, const char *name)
{
    if (!sl_str_eq(got, sl_str_c(want)))
        fail_msg("%s: %s\n--- got\n%.*s\n--- want\n%s", name, what, (int)got.len, got.base, want);
}

static sl_str_t find_header(const gw_http_header_t *h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (sl_str_ieq_c(h[i].name, name))
            return h[i].value;
    return SL_STR_NULL;
}

static void run_case(sl_arena_t *a, const suite_case_t *t)
{
    gw_http_header_t hdrs[6];
    size_t nh = 0;
    while (nh < 6 && t->hdrs[nh][0] != NULL) {
        hdrs[nh].name = sl_str_c(t->hdrs[nh][0]);
        hdrs[nh].value = sl_str_c(t->hdrs[nh][1]);
        nh++;
    }
    gw_sigv4_creds_t c = suite_creds(t->token);
    gw_http_header_t *out = NULL;
    size_t nout = 0;
    gw_sigv4_trace_t tr;
    int rc = gw_sigv4_sign_trace(a, &c, t->method, t->url, hdrs, nh, sl_str_c(t->body), SUITE_TIME,
                                 &out, &nout, &tr);
    if (rc != 0)
        fail_msg("%s: sign failed (%d)", t->name, rc);
    if (t->creq != NULL)
        assert_str(tr.canonical_request, t->creq, "canonical request", t->name);
    if (t->sts_hash != NULL) {
        char sts[256];
        snprintf(sts, sizeof(sts), "%s%s", SUITE_STS_HEAD, t->sts_hash);
        assert_str(tr.string_to_sign, sts, "string to sign", t->name);
    }
    char authz[512];
    snprintf(authz, sizeof(authz),
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
             "SignedHeaders=%s, Signature=%s",
             t->signed_headers, t->signature);
    assert_str(find_header(out, nout, "Authorization"), authz, "Authorization", t->name);
    assert_str(tr.signed_headers, t->signed_headers, "signed headers", t->name);
    assert_str(tr.signature, t->signature, "signature", t->name);
    assert_str(find_header(out, nout, "X-Amz-Date"), "20150830T123600Z", "X-Amz-Date", t->name);
    if (t->token) {
        assert_int_equal(nout, 3);
        assert_str(find_header(out, nout, "X-Amz-Security-Token"), STS_TOKEN, "token", t->name);
    } else {
        assert_int_equal(nout, 2);
    }
}

static void test_aws_suite(void **state)
{
    for (size_t i = 0; i < SL_ARRAY_SIZE(suite); i++)
        run_case(*state, &suite[i]);
}

/* AWS docs, "Create a signed AWS API request": IAM ListUsers. */
static void test_aws_docs_iam_example(void **state)
{
    gw_sigv4_creds_t c = suite_creds(0);
    c.service = SL_STRLIT("iam");
    gw_http_header_t h[] = {
        {SL_STRLIT("Content-Type"), SL_STRLIT("application/x-www-form-urlencoded; charset=utf-8")},
    };
    gw_http_header_t *out;
    size_t nout;
    gw_sigv4_trace_t tr;
    assert_int_equal(
        gw_sigv4_sign_trace(*state, &c, "GET",
                            "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", h, 1,
                            SL_STR_NULL, SUITE_TIME, &out, &nout, &tr),
        0);
    assert_str(tr.canonical_request,
               "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
               "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
               "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
               "content-type;host;x-amz-date\n" EMPTY_SHA,
               "canonical request", "iam");
    assert_str(tr.string_to_sign,
               "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n"
               "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59",
               "string to sign", "iam");
    assert_str(out[1].value,
               "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
               "SignedHeaders=content-type;host;x-amz-date, "
               "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
               "Authorization", "iam");
}

#define BEDROCK_HOST "https://bedrock-runtime.us-east-1.amazonaws.com"
#define BEDROCK_BODY "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"Hello\"}]}]}"
#define BEDROCK_TIME ((time_t)1718886896) /* 2024-06-20T12:34:56Z */

/*
 * Bedrock, cross-checked with botocore: the model id travels as
 * "...v1%3A0" and is signed as "...v1%253A0".
 */
static void test_bedrock_botocore(void **state)
{
    sl_arena_t *a = *state;
    static const char model[] = "anthropic.claude-3-5-sonnet-20240620-v1:0";
    sl_buf_t url;
    sl_buf_init(&url, 4096);
    assert_int_equal(sl_buf_append_str(&url, SL_STRLIT(BEDROCK_HOST "/model/")), 0);
    assert_int_equal(gw_sigv4_uri_encode(&url, SL_STRLIT(model), 1), 0);
    assert_int_equal(sl_buf_append_str(&url, SL_STRLIT("/converse")), 0);
    assert_int_equal(sl_buf_append(&url, "", 1), 0);
    assert_string_equal(url.base,
                        BEDROCK_HOST "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");

    gw_sigv4_creds_t c = suite_creds(0);
    c.service = SL_STRLIT("bedrock");
    gw_http_header_t h[] = {
        {SL_STRLIT("Content-Type"), SL_STRLIT("application/json")},
        {SL_STRLIT("Accept"), SL_STRLIT("application/vnd.amazon.eventstream")},
        {SL_STRLIT("User-Agent"), SL_STRLIT("sluice/1.0")}, /* never signed */
    };
    gw_http_header_t *out;
    size_t nout;
    gw_sigv4_trace_t tr;
    assert_int_equal(gw_sigv4_sign_trace(a, &c, "POST", url.base, h, 1, SL_STRLIT(BEDROCK_BODY),
                                         BEDROCK_TIME, &out, &nout, &tr),
                     0);
    assert_str(tr.canonical_request,
               "POST\n/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse\n\n"
               "content-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\n"
               "x-amz-date:20240620T123456Z\n\ncontent-type;host;x-amz-date\n"
               "7421da8d1a0949a481724fee62d5886aacde03836bf58248adb73e8b61ac0d54",
               "canonical request", "bedrock converse");
    assert_str(tr.string_to_sign,
               "AWS4-HMAC-SHA256\n20240620T123456Z\n20240620/us-east-1/bedrock/aws4_request\n"
               "6b75c1d77c41f8ed58bb5c376c89b18377c4622913177ce0b251614233d05fd3",
               "string to sign", "bedrock converse");
    assert_int_equal(nout, 2);
    assert_str(out[0].name, "X-Amz-Date", "name", "bedrock converse");
    assert_str(out[0].value, "20240620T123456Z", "X-Amz-Date", "bedrock converse");
    assert_str(out[1].name, "Authorization", "name", "bedrock converse");
    assert_str(out[1].value,
               "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240620/us-east-1/bedrock/aws4_request, "
               "SignedHeaders=content-type;host;x-amz-date, "
               "Signature=c5972371b77b7ee577e91edbd9e2d54f04660600e3bdadab05df67773aaeeb5c",
               "Authorization", "bedrock converse");

    /* ConverseStream with a session token and an Accept header. */
    c.session_token = SL_STRLIT("FwoGZXIvYXdzEXAMPLETOKEN//a+b=");
    assert_int_equal(
        gw_sigv4_sign_trace(a, &c, "POST",
                            BEDROCK_HOST "/model/anthropic.claude-3-5-sonnet-20240620-v1"
                                         "%3A0/converse-stream",
                            h, 3, SL_STRLIT(BEDROCK_BODY), BEDROCK_TIME, &out, &nout, &tr),
        0);
    assert_str(tr.signed_headers, "accept;content-type;host;x-amz-date;x-amz-security-token",
               "signed headers", "bedrock stream");
    assert_str(tr.string_to_sign,
               "AWS4-HMAC-SHA256\n20240620T123456Z\n20240620/us-east-1/bedrock/aws4_request\n"
               "73dc0f97fbbe01775cc6c108a086648c257609f870259447ec3f956332dca545",
               "string to sign", "bedrock stream");
    assert_int_equal(nout, 3);
    assert_str(out[0].name, "X-Amz-Date", "name", "bedrock stream");
    assert_str(out[1].name, "X-Amz-Security-Token", "name", "bedrock stream");
    assert_str(out[1].value, "FwoGZXIvYXdzEXAMPLETOKEN//a+b=", "token", "bedrock stream");
    assert_str(out[2].value,
               "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240620/us-east-1/bedrock/aws4_request, "
               "SignedHeaders=accept;content-type;host;x-amz-date;x-amz-security-token, "
               "Signature=a1d6fb05ced946f22af60d9113abe22b630265a877ce039951766f79609b68f1",
               "Authorization", "bedrock stream");

    /* An inference-profile ARN as the model id: '/' inside the segment is encoded too. */
    c.session_token = SL_STR_NULL;
    sl_buf_reset(&url);
    assert_int_equal(sl_buf_append_str(&url, SL_STRLIT(BEDROCK_HOST "/model/")), 0);
    assert_int_equal(gw_sigv4_uri_encode(&url,
                                         SL_STRLIT("arn:aws:bedrock:us-east-1:123456789012:"
                                                   "inference-profile/us.anthropic.claude-3-5-"
                                                   "sonnet-20240620-v1:0"),
                                         1),
                     0);
    assert_int_equal(sl_buf_append(&url, "/invoke", 8), 0);
    assert_int_equal(gw_sigv4_sign_trace(a, &c, "POST", url.base, h, 1, SL_STRLIT(BEDROCK_BODY),
                                         BEDROCK_TIME, &out, &nout, &tr),
                     0);
    assert_str(tr.canonical_request,
               "POST\n/model/arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253A"
               "inference-profile%252Fus.anthropic.claude-3-5-sonnet-20240620-v1%253A0/invoke\n\n"
               "content-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\n"
               "x-amz-date:20240620T123456Z\n\ncontent-type;host;x-amz-date\n"
               "7421da8d1a0949a481724fee62d5886aacde03836bf58248adb73e8b61ac0d54",
               "canonical request", "bedrock arn");
    assert_str(out[1].value,
               "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240620/us-east-1/bedrock/aws4_request, "
               "SignedHeaders=content-type;host;x-amz-date, "
               "Signature=26acdca851930e677fd13ab0160bc3b1ea02eb52d7970fb408fa892b30fe97c4",
               "Authorization", "bedrock arn");
    sl_buf_dispose(&url);
}

static void test_uri_encode(void **state)
{
    (void)state;
    sl_buf_t b;
    sl_buf_init(&b, 4096);
    assert_int_equal(
        gw_sigv4_uri_encode(&b, SL_STRLIT("anthropic.claude-3-5-sonnet-20240620-v1:0"), 1), 0);
    assert_str(sl_buf_str(&b), "anthropic.claude-3-5-sonnet-20240620-v1%3A0", "model", "encode");
    sl_buf_reset(&b);
    assert_int_equal(gw_sigv4_uri_encode(&b, SL_STRLIT("a b/c~d%+=&?#\xc3\xa9"), 1), 0);
    assert_str(sl_buf_str(&b), "a%20b%2Fc~d%25%2B%3D%26%3F%23%C3%A9", "slash encoded", "encode");
    sl_buf_reset(&b);
    assert_int_equal(gw_sigv4_uri_encode(&b, SL_STRLIT("a b/c"), 0), 0);
    assert_str(sl_buf_str(&b), "a%20b/c", "slash kept", "encode");

    /* Every byte: unreserved ones kept, the rest %XX with upper-case hex. */
    for (int c = 0; c < 256; c++) {
        char in = (char)c;
        sl_buf_reset(&b);
        assert_int_equal(gw_sigv4_uri_encode(&b, sl_str(&in, 1), 1), 0);
        int unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
        if (unreserved) {
            assert_int_equal(b.len, 1);
            assert_int_equal((unsigned char)b.base[0], c);
        } else {
            char want[4];
            snprintf(want, sizeof(want), "%%%02X", c);
            assert_str(sl_buf_str(&b), want, "byte", "encode");
        }
    }

    /* Past the cap: SL_ETOOBIG and the buffer unchanged. */
    sl_buf_t small;
    sl_buf_init(&small, 7);
    assert_int_equal(gw_sigv4_uri_encode(&small, SL_STRLIT("ab"), 1), 0);
    assert_int_equal(gw_sigv4_uri_encode(&small, SL_STRLIT("::"), 1), SL_ETOOBIG); /* 2 + 6 > 7 */
    assert_str(sl_buf_str(&small), "ab", "unchanged", "encode");
    sl_buf_dispose(&small);
    sl_buf_dispose(&b);
}

static int sign_simple(sl_arena_t *a, const gw_sigv4_creds_t *c, const char *url,
                       const gw_http_header_t *h, size_t nh, gw_sigv4_trace_t *tr)
{
    gw_http_header_t *out = NULL;
    size_t nout = 0;
    return gw_sigv4_sign_trace(a, c, "POST", url, h, nh, SL_STRLIT("{}"), SUITE_TIME, &out, &nout,
                               tr);
}

static void test_refused(void **state)
{
    sl_arena_t *a = *state;
    gw_sigv4_creds_t c = suite_creds(0);
    const char *url = "https://example.amazonaws.com/x";
    gw_http_header_t h;

    /* Headers the signer owns. */
    static const char *const owned[] = {"Authorization", "X-Amz-Date", "x-amz-security-token"};
    for (size_t i = 0; i < SL_ARRAY_SIZE(owned); i++) {
        h = (gw_http_header_t){sl_str_c(owned[i]), SL_STRLIT("x")};
        assert_int_equal(sign_simple(a, &c, url, &h, 1, NULL), SL_EINVAL);
    }
    /* Header injection and bad names. */
    h = (gw_http_header_t){SL_STRLIT("X-A"), SL_STRLIT("a\r\nX-B: b")};
    assert_int_equal(sign_simple(a, &c, url, &h, 1, NULL), SL_EINVAL);
    h = (gw_http_header_t){SL_STRLIT("X-A"), sl_str("a\0b", 3)};
    assert_int_equal(sign_simple(a, &c, url, &h, 1, NULL), SL_EINVAL);
    h = (gw_http_header_t){SL_STRLIT("X A"), SL_STRLIT("a")};
    assert_int_equal(sign_simple(a, &c, url, &h, 1, NULL), SL_EINVAL);
    h = (gw_http_header_t){SL_STRLIT(""), SL_STRLIT("a")};
    assert_int_equal(sign_simple(a, &c, url, &h, 1, NULL), SL_EINVAL);

    /* URLs. */
    static const char *const urls[] = {
        "ftp://example.amazonaws.com/",
        "example.amazonaws.com/",
        "https:///x",
        "https://user:pw@example.amazonaws.com/",
        "https://example.amazonaws.com/a\nb",
        "https://example.amazonaws.com/a\tb",
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(urls); i++)
        if (sign_simple(a, &c, urls[i], NULL, 0, NULL) != SL_EINVAL)
            fail_msg("accepted %s", urls[i]);

    /* Credentials. */
    gw_sigv4_creds_t bad = c;
    bad.access_key_id = SL_STR_NULL;
    assert_int_equal(sign_simple(a, &bad, url, NULL, 0, NULL), SL_EINVAL);
    bad = c;
    bad.secret_access_key = SL_STR_NULL;
    assert_int_equal(sign_simple(a, &bad, url, NULL, 0, NULL), SL_EINVAL);
    bad = c;
    bad.region = SL_STRLIT("us/east");
    assert_int_equal(sign_simple(a, &bad, url, NULL, 0, NULL), SL_EINVAL);
    bad = c;
    bad.service = SL_STR_NULL;
    assert_int_equal(sign_simple(a, &bad, url, NULL, 0, NULL), SL_EINVAL);
    bad = c;
    bad.session_token = SL_STRLIT("tok\r\nX: y");
    assert_int_equal(sign_simple(a, &bad, url, NULL, 0, NULL), SL_EINVAL);
    char longsecret[GW_SIGV4_MAX_SECRET + 2];
    memset(longsecret, 'k', sizeof(longsecret));
    bad = c;
    bad.secret_access_key = sl_str(longsecret, sizeof(longsecret));
    assert_int_equal(sign_simple(a, &bad, url, NULL, 0, NULL), SL_EINVAL);
    assert_int_equal(gw_sigv4_sign(a, NULL, "GET", url, NULL, 0, SL_STR_NULL, 0, NULL, NULL),
                     SL_EINVAL);
}

static void test_headers_and_hosts(void **state)
{
    sl_arena_t *a = *state;
    gw_sigv4_creds_t c = suite_creds(0);
    gw_sigv4_trace_t tr;

    /* Hop-by-hop and transport headers are not signed; the rest are, lower-cased and sorted. */
    gw_http_header_t h[] = {
        {SL_STRLIT("User-Agent"), SL_STRLIT("x")},
        {SL_STRLIT("Connection"), SL_STRLIT("close")},
        {SL_STRLIT("Transfer-Encoding"), SL_STRLIT("chunked")},
        {SL_STRLIT("Expect"), SL_STRLIT("100-continue")},
        {SL_STRLIT("X-Amzn-Trace-Id"), SL_STRLIT("t")},
        {SL_STRLIT("Content-Length"), SL_STRLIT("2")},
        {SL_STRLIT("ZZ"), SL_STRLIT("\tz  z\t")},
        {SL_STRLIT("Accept"), SL_STRLIT("*/*")},
    };
    assert_int_equal(sign_simple(a, &c, "https://example.amazonaws.com:8443/p?b=2&a=1", h,
                                 SL_ARRAY_SIZE(h), &tr),
                     0);
    assert_str(tr.signed_headers, "accept;content-length;host;x-amz-date;zz", "signed", "headers");
    assert_str(tr.canonical_request,
               "POST\n/p\na=1&b=2\naccept:*/*\ncontent-length:2\nhost:example.amazonaws.com:8443\n"
               "x-amz-date:20150830T123600Z\nzz:z z\n\naccept;content-length;host;x-amz-date;zz\n"
               "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
               "canonical request", "headers");

    /* http:// drops :80 but keeps other ports; the fragment is not signed. */
    assert_int_equal(sign_simple(a, &c, "http://example.amazonaws.com:80/p#frag", NULL, 0, &tr), 0);
    assert_true(strstr(tr.canonical_request.base, "\nhost:example.amazonaws.com\n") != NULL);
    assert_true(strstr(tr.canonical_request.base, "POST\n/p\n\n") == tr.canonical_request.base);
    assert_int_equal(sign_simple(a, &c, "https://example.amazonaws.com:80/p", NULL, 0, &tr), 0);
    assert_true(strstr(tr.canonical_request.base, "\nhost:example.amazonaws.com:80\n") != NULL);

    /* Query edge cases: empty pieces skipped, no '=' means an empty value, '+' is literal. */
    assert_int_equal(sign_simple(a, &c, "https://h/?&b&a=x+y&&c=%zz&=v", NULL, 0, &tr), 0);
    assert_true(strstr(tr.canonical_request.base, "POST\n/\n=v&a=x%2By&b=&c=%25zz\n") ==
                tr.canonical_request.base);

    /* A caller's X-Amz-Content-Sha256 is signed and used as the payload hash. */
    gw_http_header_t sha = {SL_STRLIT("X-Amz-Content-Sha256"), SL_STRLIT("UNSIGNED-PAYLOAD")};
    assert_int_equal(sign_simple(a, &c, "https://h/", &sha, 1, &tr), 0);
    assert_str(
        tr.canonical_request,
        "POST\n/\n\nhost:h\nx-amz-content-sha256:UNSIGNED-PAYLOAD\n"
        "x-amz-date:20150830T123600Z\n\nhost;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD",
        "canonical request", "content sha");

    /* S3: the path is signed as sent, neither normalized nor encoded again. */
    c.service = SL_STRLIT("s3");
    assert_int_equal(sign_simple(a, &c, "https://h/b//k%3A1/./x", NULL, 0, &tr), 0);
    assert_true(strstr(tr.canonical_request.base, "POST\n/b//k%3A1/./x\n") ==
                tr.canonical_request.base);
    c.service = SL_STRLIT("bedrock");
    assert_int_equal(sign_simple(a, &c, "https://h/b//k%3A1/./x/../y", NULL, 0, &tr), 0);
    assert_true(strstr(tr.canonical_request.base, "POST\n/b/k%253A1/y\n") ==
                tr.canonical_request.base);
}

/* The secret never shows up in anything the signer returns. */
static void test_secret_not_leaked(void **state)
{
    sl_arena_t *a = *state;
    gw_sigv4_creds_t c = suite_creds(1);
    gw_http_header_t *out;
    size_t nout;
    gw_sigv4_trace_t tr;
    assert_int_equal(gw_sigv4_sign_trace(a, &c, "GET", "https://h/", NULL, 0, SL_STR_NULL,
                                         SUITE_TIME, &out, &nout, &tr),
                     0);
    for (size_t i = 0; i < nout; i++)
        assert_null(memmem(out[i].value.base, out[i].value.len, SECRET, strlen(SECRET)));
    assert_null(
        memmem(tr.canonical_request.base, tr.canonical_request.len, SECRET, strlen(SECRET)));
    assert_null(memmem(tr.string_to_sign.base, tr.string_to_sign.len, SECRET, strlen(SECRET)));
    /* A different secret, time or body gives a different signature. */
    sl_str_t sig1 = tr.signature;
    c.secret_access_key = SL_STRLIT("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ");
    assert_int_equal(gw_sigv4_sign_trace(a, &c, "GET", "https://h/", NULL, 0, SL_STR_NULL,
                                         SUITE_TIME, &out, &nout, &tr),
                     0);
    assert_false(sl_str_eq(sig1, tr.signature));
    assert_int_equal(gw_sigv4_sign_trace(a, &c, "GET", "https://h/", NULL, 0, SL_STR_NULL,
                                         SUITE_TIME + 86400, &out, &nout, &tr),
                     0);
    assert_str(out[0].value, "20150831T123600Z", "date", "next day");
    assert_true(strstr(tr.string_to_sign.base, "\n20150831/us-east-1/service/aws4_request\n") !=
                NULL);
}

/* Every try-allocation failing in turn: SL_ENOMEM, nothing leaked (ASan), then success. */
static void test_oom(void **state)
{
    sl_arena_t *a = *state;
    gw_sigv4_creds_t c = suite_creds(1);
    gw_http_header_t h[] = {{SL_STRLIT("Content-Type"), SL_STRLIT("application/json")}};
    int ok = 0;
    for (unsigned long n = 1; n < 200 && !ok; n++) {
        gw_http_header_t *out = NULL;
        size_t nout = 0;
        gw_sigv4_trace_t tr;
        sl_alloc_fail_after(n);
        int rc = gw_sigv4_sign_trace(a, &c, "POST", "https://h/a/b?x=1&y=2", h, 1, SL_STRLIT("{}"),
                                     SUITE_TIME, &out, &nout, &tr);
        sl_alloc_fail_after(0);
        if (rc == 0)
            ok = 1;
        else
            assert_int_equal(rc, SL_ENOMEM);
        sl_arena_clear(a);
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_aws_suite, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_aws_docs_iam_example, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_bedrock_botocore, setup_arena, teardown_arena),
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test_setup_teardown(test_refused, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_headers_and_hosts, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_secret_not_leaked, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_oom, setup_arena, teardown_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
