#include "dataplane/providers/sigv4.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/err.h"

#define SHA256_LEN 32
#define ALGORITHM "AWS4-HMAC-SHA256"

/* One header as it enters the canonical request. */
typedef struct {
    sl_str_t name;  /* as given; compared and written lower-cased */
    sl_str_t value; /* raw; trimmed and collapsed when written */
    size_t index;   /* original position, so that sorting is stable */
} entry_t;

/*
 * Headers that are never signed. Hop-by-hop headers and the ones a proxy or
 * the transport may add or rewrite would break the signature on the way;
 * the list is aws-c-auth's (x-amzn-trace-id, user-agent, connection,
 * expect, sec-websocket-*, transfer-encoding, upgrade) and botocore's, plus
 * the rest of RFC 9110's hop-by-hop set.
 */
static const char *const skipped_headers[] = {
    "connection",
    "expect",
    "keep-alive",
    "proxy-connection",
    "sec-websocket-key",
    "sec-websocket-protocol",
    "sec-websocket-version",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
};

/* Headers the signer writes itself; a caller passing one is a bug. */
static const char *const owned_headers[] = {
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
};

static int in_list(sl_str_t name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sl_str_ieq_c(name, list[i]))
            return 1;
    return 0;
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Whitespace that canonical header values trim and collapse (CR and LF are refused earlier). */
static int is_hspace(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\v' || c == '\f';
}

static int is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* RFC 9110 token characters, the only ones a header name may hold. */
static int is_tchar(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int valid_token(sl_str_t s)
{
    if (s.len == 0)
        return 0;
    for (size_t i = 0; i < s.len; i++)
        if (!is_tchar((unsigned char)s.base[i]))
            return 0;
    return 1;
}

/* Header values and credentials may hold tabs and visible bytes, never CR, LF or NUL. */
static int valid_field(sl_str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.base[i];
        if (is_ctl(c) && c != '\t')
            return 0;
    }
    return 1;
}

static const char hexdig_upper[] = "0123456789ABCDEF";
static const char hexdig_lower[] = "0123456789abcdef";

int gw_sigv4_uri_encode(sl_buf_t *out, sl_str_t s, int encode_slash)
{
    size_t need = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.base[i];
        need += (is_unreserved(c) || (c == '/' && !encode_slash)) ? 1 : 3;
    }
    int r = sl_buf_try_reserve(out, need);
    if (r != 0)
        return r;
    char *p = out->base + out->len;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.base[i];
        if (is_unreserved(c) || (c == '/' && !encode_slash)) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hexdig_upper[c >> 4];
            *p++ = hexdig_upper[c & 15];
        }
    }
    out->len += need;
    return 0;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Percent-decodes s into tmp (reset first). A '%' not followed by two hex
 * digits stays a literal '%', and '+' stays '+': query strings we sign are
 * RFC 3986, not HTML forms. Decoding first makes the canonical form the
 * same whether the caller encoded a character or not, as aws-c-auth does.
 */
static int decode(sl_buf_t *tmp, sl_str_t s)
{
    sl_buf_reset(tmp);
    int r = sl_buf_try_reserve(tmp, s.len);
    if (r != 0)
        return r;
    char *p = tmp->base;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.base[i];
        if (c == '%' && i + 2 < s.len && hexval((unsigned char)s.base[i + 1]) >= 0 &&
            hexval((unsigned char)s.base[i + 2]) >= 0) {
            *p++ = (char)(hexval((unsigned char)s.base[i + 1]) * 16 +
                          hexval((unsigned char)s.base[i + 2]));
            i += 2;
        } else {
            *p++ = (char)c;
        }
    }
    tmp->len = (size_t)(p - tmp->base);
    return 0;
}

static int append(sl_buf_t *b, const char *s)
{
    return sl_buf_append(b, s, strlen(s));
}

static void append_lower(char *dst, sl_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        dst[i] = (char)sl__ascii_lower((unsigned char)s.base[i]);
}

static int append_lower_buf(sl_buf_t *b, sl_str_t s)
{
    int r = sl_buf_try_reserve(b, s.len);
    if (r != 0)
        return r;
    append_lower(b->base + b->len, s);
    b->len += s.len;
    return 0;
}

static void to_hex(char *dst, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = hexdig_lower[p[i] >> 4];
        dst[2 * i + 1] = hexdig_lower[p[i] & 15];
    }
}

/* Hex SHA-256 of p[0..n) into dst[64]. */
static int sha256_hex(char *dst, const void *p, size_t n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(n ? p : "", n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != SHA256_LEN)
        return SL_EINTERNAL;
    to_hex(dst, md, SHA256_LEN);
    return 0;
}

static int hmac(unsigned char out[SHA256_LEN], const void *key, size_t keylen, const void *msg,
                size_t msglen)
{
    unsigned int len = 0;
    if (keylen > INT32_MAX)
        return SL_EINVAL;
    if (HMAC(EVP_sha256(), key, (int)keylen, msglen ? msg : (const void *)"", msglen, out, &len) ==
            NULL ||
        len != SHA256_LEN)
        return SL_EINTERNAL;
    return 0;
}

/* The pieces of "scheme://authority/path?query#fragment" that are signed. */
typedef struct {
    int https;
    sl_str_t host; /* authority without a default port */
    sl_str_t path; /* "/" when the URL has none */
    sl_str_t query;
} url_t;

static int parse_url(const char *url, url_t *u)
{
    sl_str_t s = sl_str_c(url);
    for (size_t i = 0; i < s.len; i++)
        if (is_ctl((unsigned char)s.base[i]))
            return SL_EINVAL;
    size_t at;
    if (sl_str_istarts_with(s, "https://")) {
        u->https = 1;
        at = 8;
    } else if (sl_str_istarts_with(s, "http://")) {
        u->https = 0;
        at = 7;
    } else {
        return SL_EINVAL;
    }
    size_t end = at;
    while (end < s.len && s.base[end] != '/' && s.base[end] != '?' && s.base[end] != '#')
        end++;
    sl_str_t auth = sl_str(s.base + at, end - at);
    if (auth.len == 0 || memchr(auth.base, '@', auth.len) != NULL ||
        memchr(auth.base, ' ', auth.len) != NULL)
        return SL_EINVAL;
    /* libcurl leaves the scheme's default port out of Host; so do we. */
    const char *dflt = u->https ? ":443" : ":80";
    size_t dl = strlen(dflt);
    if (auth.len > dl && memcmp(auth.base + auth.len - dl, dflt, dl) == 0)
        auth.len -= dl;
    u->host = auth;

    size_t pend = end;
    while (pend < s.len && s.base[pend] != '?' && s.base[pend] != '#')
        pend++;
    u->path = pend > end ? sl_str(s.base + end, pend - end) : SL_STRLIT("/");
    u->query = SL_STR_NULL;
    if (pend < s.len && s.base[pend] == '?') {
        size_t qend = pend + 1;
        while (qend < s.len && s.base[qend] != '#')
            qend++;
        u->query = sl_str(s.base + pend + 1, qend - pend - 1);
    }
    return 0;
}

/*
 * Appends the normalized path (RFC 3986 dot segments resolved, empty
 * segments dropped, a trailing slash kept), exactly as aws-c-auth's
 * s_append_normalized_path does for non-S3 services.
 */
static int append_normalized_path(sl_buf_t *b, sl_str_t path)
{
    /* Start offsets of the kept segments in b, to pop on "..". */
    size_t base = b->len;
    size_t nseg = 0, cap = 0;
    size_t *starts = NULL;
    int r = sl_buf_append(b, "/", 1);
    size_t i = 0;
    while (r == 0 && i < path.len) {
        size_t j = i;
        while (j < path.len && path.base[j] != '/')
            j++;
        sl_str_t seg = sl_str(path.base + i, j - i);
        i = j + 1;
        if (seg.len == 0 || sl_str_eq(seg, SL_STRLIT(".")))
            continue;
        if (sl_str_eq(seg, SL_STRLIT(".."))) {
            if (nseg > 0)
                b->len = starts[--nseg];
            else
                b->len = base + 1;
            continue;
        }
        if (nseg == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            size_t *ns = sl_try_realloc(starts, ncap * sizeof(*ns));
            if (ns == NULL) {
                r = SL_ENOMEM;
                break;
            }
            starts = ns;
            cap = ncap;
        }
        /* Each kept segment is written as "seg/"; the last slash is dropped below. */
        starts[nseg++] = b->len;
        r = sl_buf_append_str(b, seg);
        if (r == 0)
            r = sl_buf_append(b, "/", 1);
    }
    sl_free(starts);
    if (r != 0)
        return r;
    int ends_with_slash = path.len > 0 && path.base[path.len - 1] == '/';
    if (nseg > 0 && !ends_with_slash)
        b->len--;
    return 0;
}

static int append_canonical_uri(sl_buf_t *cr, sl_str_t path, int s3)
{
    if (s3)
        return sl_buf_append_str(cr, path);
    sl_buf_t norm;
    sl_buf_init(&norm, cr->max);
    int r = append_normalized_path(&norm, path);
    if (r == 0)
        r = gw_sigv4_uri_encode(cr, sl_buf_str(&norm), 0);
    sl_buf_dispose(&norm);
    return r;
}

typedef struct {
    sl_str_t key, value; /* encoded, views into the params buffer */
} param_t;

static int param_cmp(const void *pa, const void *pb)
{
    const param_t *a = pa, *b = pb;
    size_t n = a->key.len < b->key.len ? a->key.len : b->key.len;
    int c = n ? memcmp(a->key.base, b->key.base, n) : 0;
    if (c != 0)
        return c;
    if (a->key.len != b->key.len)
        return a->key.len < b->key.len ? -1 : 1;
    n = a->value.len < b->value.len ? a->value.len : b->value.len;
    c = n ? memcmp(a->value.base, b->value.base, n) : 0;
    if (c != 0)
        return c;
    return a->value.len < b->value.len ? -1 : a->value.len > b->value.len;
}

static int append_canonical_query(sl_buf_t *cr, sl_str_t query)
{
    size_t count = 0;
    for (size_t i = 0; i <= query.len; i++)
        if (i == query.len || query.base[i] == '&')
            count++;
    if (query.len == 0)
        return 0;

    sl_buf_t enc, tmp;
    sl_buf_init(&enc, cr->max);
    sl_buf_init(&tmp, cr->max);
    param_t *params = sl_try_malloc(count * sizeof(*params));
    /* Offsets first: enc may move while it grows. */
    size_t *offs = sl_try_malloc(count * 4 * sizeof(size_t));
    size_t n = 0;
    int r = (params == NULL || offs == NULL) ? SL_ENOMEM : 0;
    size_t i = 0;
    while (r == 0 && i < query.len) {
        size_t j = i;
        while (j < query.len && query.base[j] != '&')
            j++;
        sl_str_t piece = sl_str(query.base + i, j - i);
        i = j + 1;
        if (piece.len == 0)
            continue;
        const char *eq = memchr(piece.base, '=', piece.len);
        sl_str_t k = eq ? sl_str(piece.base, (size_t)(eq - piece.base)) : piece;
        sl_str_t v = eq ? sl_str(eq + 1, piece.len - k.len - 1) : SL_STR_NULL;
        offs[4 * n] = enc.len;
        r = decode(&tmp, k);
        if (r == 0)
            r = gw_sigv4_uri_encode(&enc, sl_buf_str(&tmp), 1);
        offs[4 * n + 1] = enc.len;
        if (r == 0)
            r = decode(&tmp, v);
        offs[4 * n + 2] = enc.len;
        if (r == 0)
            r = gw_sigv4_uri_encode(&enc, sl_buf_str(&tmp), 1);
        offs[4 * n + 3] = enc.len;
        n++;
    }
    if (r == 0) {
        for (size_t k = 0; k < n; k++) {
            params[k].key = sl_str(enc.base + offs[4 * k], offs[4 * k + 1] - offs[4 * k]);
            params[k].value = sl_str(enc.base + offs[4 * k + 2], offs[4 * k + 3] - offs[4 * k + 2]);
        }
        if (n > 1)
            qsort(params, n, sizeof(*params), param_cmp);
        for (size_t k = 0; k < n && r == 0; k++) {
            if (k > 0)
                r = sl_buf_append(cr, "&", 1);
            if (r == 0)
                r = sl_buf_append_str(cr, params[k].key);
            if (r == 0)
                r = sl_buf_append(cr, "=", 1);
            if (r == 0)
                r = sl_buf_append_str(cr, params[k].value);
        }
    }
    sl_free(params);
    sl_free(offs);
    sl_buf_dispose(&enc);
    sl_buf_dispose(&tmp);
    return r;
}

static int entry_cmp(const void *pa, const void *pb)
{
    const entry_t *a = pa, *b = pb;
    size_t n = a->name.len < b->name.len ? a->name.len : b->name.len;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = sl__ascii_lower((unsigned char)a->name.base[i]);
        unsigned char y = sl__ascii_lower((unsigned char)b->name.base[i]);
        if (x != y)
            return x < y ? -1 : 1;
    }
    if (a->name.len != b->name.len)
        return a->name.len < b->name.len ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Appends a header value trimmed, with each run of whitespace made one space. */
static int append_trimmed(sl_buf_t *b, sl_str_t v)
{
    size_t s = 0, e = v.len;
    while (s < e && is_hspace((unsigned char)v.base[s]))
        s++;
    while (e > s && is_hspace((unsigned char)v.base[e - 1]))
        e--;
    int r = sl_buf_try_reserve(b, e - s);
    if (r != 0)
        return r;
    char *p = b->base + b->len;
    int in_space = 0;
    for (size_t i = s; i < e; i++) {
        unsigned char c = (unsigned char)v.base[i];
        if (is_hspace(c)) {
            if (!in_space)
                *p++ = ' ';
            in_space = 1;
        } else {
            *p++ = (char)c;
            in_space = 0;
        }
    }
    b->len = (size_t)(p - b->base);
    return 0;
}

/*
 * Writes the canonical header block into cr and the signed header list into
 * sh; entries must be sorted.
 */
static int append_canonical_headers(sl_buf_t *cr, sl_buf_t *sh, const entry_t *e, size_t n)
{
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        int same = i > 0 && sl_str_ieq(e[i].name, e[i - 1].name);
        if (same) {
            r = sl_buf_append(cr, ",", 1);
        } else {
            if (i > 0) {
                r = sl_buf_append(cr, "\n", 1);
                if (r == 0)
                    r = sl_buf_append(sh, ";", 1);
            }
            if (r == 0)
                r = append_lower_buf(sh, e[i].name);
            if (r == 0)
                r = append_lower_buf(cr, e[i].name);
            if (r == 0)
                r = sl_buf_append(cr, ":", 1);
        }
        if (r == 0)
            r = append_trimmed(cr, e[i].value);
    }
    if (r == 0 && n > 0)
        r = sl_buf_append(cr, "\n", 1);
    return r;
}

static int valid_creds(const gw_sigv4_creds_t *c)
{
    if (c == NULL || c->access_key_id.len == 0 || c->secret_access_key.len == 0 ||
        c->region.len == 0 || c->service.len == 0)
        return 0;
    if (c->secret_access_key.len > GW_SIGV4_MAX_SECRET)
        return 0;
    /* The scope is "date/region/service/aws4_request": no '/' or blank inside. */
    if (!valid_token(c->region) || !valid_token(c->service) || !valid_token(c->access_key_id) ||
        memchr(c->region.base, '/', c->region.len) || memchr(c->service.base, '/', c->service.len))
        return 0;
    return valid_field(c->session_token);
}

static sl_str_t arena_copy(sl_arena_t *a, sl_str_t s, int *r)
{
    char *p = sl_arena_try_alloc(a, s.len + 1, 1);
    if (p == NULL) {
        *r = SL_ENOMEM;
        return SL_STR_NULL;
    }
    if (s.len)
        memcpy(p, s.base, s.len);
    p[s.len] = '\0';
    return sl_str(p, s.len);
}

/* Derives kSigning = HMAC chain over "AWS4"+secret, date, region, service, "aws4_request". */
static int signing_key(unsigned char key[SHA256_LEN], const gw_sigv4_creds_t *c, const char *date8)
{
    unsigned char ksecret[4 + GW_SIGV4_MAX_SECRET];
    unsigned char k1[SHA256_LEN], k2[SHA256_LEN], k3[SHA256_LEN];
    memcpy(ksecret, "AWS4", 4);
    memcpy(ksecret + 4, c->secret_access_key.base, c->secret_access_key.len);
    int r = hmac(k1, ksecret, 4 + c->secret_access_key.len, date8, 8);
    if (r == 0)
        r = hmac(k2, k1, SHA256_LEN, c->region.base, c->region.len);
    if (r == 0)
        r = hmac(k3, k2, SHA256_LEN, c->service.base, c->service.len);
    if (r == 0)
        r = hmac(key, k3, SHA256_LEN, "aws4_request", 12);
    OPENSSL_cleanse(ksecret, sizeof(ksecret));
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    OPENSSL_cleanse(k3, sizeof(k3));
    return r;
}

int gw_sigv4_sign(sl_arena_t *a, const gw_sigv4_creds_t *c, const char *method, const char *url,
                  const gw_http_header_t *headers, size_t nheaders, sl_str_t body, time_t now,
                  gw_http_header_t **out, size_t *nout)
{
    return gw_sigv4_sign_trace(a, c, method, url, headers, nheaders, body, now, out, nout, NULL);
}

int gw_sigv4_sign_trace(sl_arena_t *a, const gw_sigv4_creds_t *c, const char *method,
                        const char *url, const gw_http_header_t *headers, size_t nheaders,
                        sl_str_t body, time_t now, gw_http_header_t **out, size_t *nout,
                        gw_sigv4_trace_t *trace)
{
    sl_buf_t cr, sh, sts, auth;
    entry_t *e = NULL;
    unsigned char key[SHA256_LEN], sig[SHA256_LEN];
    char payload_hash_hex[2 * SHA256_LEN], cr_hash_hex[2 * SHA256_LEN], sig_hex[2 * SHA256_LEN];
    char amz_date[17], date8[9];
    url_t u;
    int r;

    sl_buf_init(&cr, GW_SIGV4_MAX_CANONICAL);
    sl_buf_init(&sh, GW_SIGV4_MAX_CANONICAL);
    sl_buf_init(&sts, GW_SIGV4_MAX_CANONICAL);
    sl_buf_init(&auth, GW_SIGV4_MAX_CANONICAL);

    r = SL_EINVAL;
    if (a == NULL || out == NULL || nout == NULL || method == NULL || url == NULL ||
        (nheaders > 0 && headers == NULL) || !valid_creds(c) || !valid_token(sl_str_c(method)))
        goto Exit;
    r = parse_url(url, &u);
    if (r != 0)
        goto Exit;

    struct tm tm;
    r = SL_EINVAL;
    if (gmtime_r(&now, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        goto Exit;
    if (strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm) != 16)
        goto Exit;
    memcpy(date8, amz_date, 8);
    date8[8] = '\0';

    /* The caller's headers, then host (unless given), x-amz-date and the token. */
    if (nheaders > SIZE_MAX / sizeof(*e) - 3) {
        r = SL_ENOMEM;
        goto Exit;
    }
    e = sl_try_malloc((nheaders + 3) * sizeof(*e));
    if (e == NULL) {
        r = SL_ENOMEM;
        goto Exit;
    }
    size_t n = 0;
    int has_host = 0;
    sl_str_t payload_hash = SL_STR_NULL;
    for (size_t i = 0; i < nheaders; i++) {
        const gw_http_header_t *h = &headers[i];
        r = SL_EINVAL;
        if (!valid_token(h->name) || !valid_field(h->value) ||
            in_list(h->name, owned_headers, SL_ARRAY_SIZE(owned_headers)))
            goto Exit;
        if (in_list(h->name, skipped_headers, SL_ARRAY_SIZE(skipped_headers)))
            continue;
        if (sl_str_ieq_c(h->name, "host"))
            has_host = 1;
        if (sl_str_ieq_c(h->name, "x-amz-content-sha256"))
            payload_hash = sl_str_trim(h->value);
        e[n] = (entry_t){h->name, h->value, n};
        n++;
    }
    if (!has_host) {
        e[n] = (entry_t){SL_STRLIT("host"), u.host, n};
        n++;
    }
    e[n] = (entry_t){SL_STRLIT("x-amz-date"), sl_str(amz_date, 16), n};
    n++;
    if (c->session_token.len > 0) {
        e[n] = (entry_t){SL_STRLIT("x-amz-security-token"), c->session_token, n};
        n++;
    }
    qsort(e, n, sizeof(*e), entry_cmp);

    if (payload_hash.len == 0) {
        r = sha256_hex(payload_hash_hex, body.base, body.len);
        if (r != 0)
            goto Exit;
        payload_hash = sl_str(payload_hash_hex, sizeof(payload_hash_hex));
    }

    /* Canonical request. */
    int s3 = sl_str_eq(c->service, SL_STRLIT("s3"));
    r = append(&cr, method);
    if (r == 0)
        r = sl_buf_append(&cr, "\n", 1);
    if (r == 0)
        r = append_canonical_uri(&cr, u.path, s3);
    if (r == 0)
        r = sl_buf_append(&cr, "\n", 1);
    if (r == 0)
        r = append_canonical_query(&cr, u.query);
    if (r == 0)
        r = sl_buf_append(&cr, "\n", 1);
    if (r == 0)
        r = append_canonical_headers(&cr, &sh, e, n);
    if (r == 0)
        r = sl_buf_append(&cr, "\n", 1);
    if (r == 0)
        r = sl_buf_append_str(&cr, sl_buf_str(&sh));
    if (r == 0)
        r = sl_buf_append(&cr, "\n", 1);
    if (r == 0)
        r = sl_buf_append_str(&cr, payload_hash);
    if (r != 0)
        goto Exit;

    /* String to sign. */
    r = sha256_hex(cr_hash_hex, cr.base, cr.len);
    if (r != 0)
        goto Exit;
    r = append(&sts, ALGORITHM "\n");
    if (r == 0)
        r = sl_buf_append(&sts, amz_date, 16);
    if (r == 0)
        r = sl_buf_append(&sts, "\n", 1);
    size_t scope_at = sts.len;
    if (r == 0)
        r = sl_buf_append(&sts, date8, 8);
    if (r == 0)
        r = sl_buf_append(&sts, "/", 1);
    if (r == 0)
        r = sl_buf_append_str(&sts, c->region);
    if (r == 0)
        r = sl_buf_append(&sts, "/", 1);
    if (r == 0)
        r = sl_buf_append_str(&sts, c->service);
    if (r == 0)
        r = append(&sts, "/aws4_request");
    size_t scope_end = sts.len;
    if (r == 0)
        r = sl_buf_append(&sts, "\n", 1);
    if (r == 0)
        r = sl_buf_append(&sts, cr_hash_hex, sizeof(cr_hash_hex));
    if (r != 0)
        goto Exit;

    /* Signature. */
    r = signing_key(key, c, date8);
    if (r == 0)
        r = hmac(sig, key, sizeof(key), sts.base, sts.len);
    OPENSSL_cleanse(key, sizeof(key));
    if (r != 0)
        goto Exit;
    to_hex(sig_hex, sig, sizeof(sig));

    /* Authorization: AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders=..., Signature=... */
    r = append(&auth, ALGORITHM " Credential=");
    if (r == 0)
        r = sl_buf_append_str(&auth, c->access_key_id);
    if (r == 0)
        r = sl_buf_append(&auth, "/", 1);
    if (r == 0)
        r = sl_buf_append(&auth, sts.base + scope_at, scope_end - scope_at);
    if (r == 0)
        r = append(&auth, ", SignedHeaders=");
    if (r == 0)
        r = sl_buf_append_str(&auth, sl_buf_str(&sh));
    if (r == 0)
        r = append(&auth, ", Signature=");
    if (r == 0)
        r = sl_buf_append(&auth, sig_hex, sizeof(sig_hex));
    if (r != 0)
        goto Exit;

    /* Results, all in the arena. */
    gw_http_header_t *o = sl_arena_try_alloc(a, 3 * sizeof(*o), _Alignof(gw_http_header_t));
    if (o == NULL) {
        r = SL_ENOMEM;
        goto Exit;
    }
    size_t no = 0;
    o[no].name = SL_STRLIT("X-Amz-Date");
    o[no++].value = arena_copy(a, sl_str(amz_date, 16), &r);
    if (c->session_token.len > 0) {
        o[no].name = SL_STRLIT("X-Amz-Security-Token");
        o[no++].value = arena_copy(a, c->session_token, &r);
    }
    o[no].name = SL_STRLIT("Authorization");
    o[no++].value = arena_copy(a, sl_buf_str(&auth), &r);
    if (trace != NULL && r == 0) {
        trace->canonical_request = arena_copy(a, sl_buf_str(&cr), &r);
        trace->string_to_sign = arena_copy(a, sl_buf_str(&sts), &r);
        trace->signed_headers = arena_copy(a, sl_buf_str(&sh), &r);
        trace->signature = arena_copy(a, sl_str(sig_hex, sizeof(sig_hex)), &r);
    }
    if (r != 0)
        goto Exit;
    *out = o;
    *nout = no;

Exit:
    OPENSSL_cleanse(sig, sizeof(sig));
    sl_free(e);
    sl_buf_dispose(&cr);
    sl_buf_dispose(&sh);
    sl_buf_dispose(&sts);
    sl_buf_dispose(&auth);
    return r;
}
