/*
 * Byte buffers, JSON string escaping, base64 and small parsers shared by the
 * server and the API formats.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tests/mock_provider/mock.h"

void mock_buf_init(mock_buf_t *b)
{
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
}

void mock_buf_dispose(mock_buf_t *b)
{
    free(b->base);
    mock_buf_init(b);
}

int mock_buf_try_reserve(mock_buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -1;
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->base, cap);
    if (p == NULL)
        return -1;
    b->base = p;
    b->cap = cap;
    return 0;
}

void mock_buf_reserve(mock_buf_t *b, size_t extra)
{
    if (mock_buf_try_reserve(b, extra) != 0) {
        fprintf(stderr, "mock_provider: out of memory (%zu bytes)\n", b->len + extra);
        abort();
    }
}

void mock_buf_append(mock_buf_t *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    mock_buf_reserve(b, n);
    memcpy(b->base + b->len, p, n);
    b->len += n;
}

void mock_buf_append_u64(mock_buf_t *b, uint64_t v)
{
    char tmp[24];
    char *e = tmp + sizeof(tmp);
    char *p = e;

    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    mock_buf_append(b, p, (size_t)(e - p));
}

void mock_buf_append_i64(mock_buf_t *b, int64_t v)
{
    if (v < 0) {
        MOCK_BUF_LIT(b, "-");
        mock_buf_append_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        mock_buf_append_u64(b, (uint64_t)v);
    }
}

void mock_buf_appendf(mock_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        mock_buf_append(b, small, (size_t)n);
        return;
    }
    mock_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->base + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/*
 * Returns the length of the valid UTF-8 sequence at p (1..4), or 0 if the
 * bytes there are not one (overlong forms and surrogates included), following
 * the table in RFC 3629 section 4.
 */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        if (avail >= 2 && (p[1] & 0xc0) == 0x80)
            return 2;
        return 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (avail < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && p[1] < 0xa0)
            return 0;
        if (c == 0xed && p[1] >= 0xa0)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (avail < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && p[1] < 0x90)
            return 0;
        if (c == 0xf4 && p[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

bool mock_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < n) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq_len(p + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

void mock_buf_append_json_str(mock_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;

    /* The worst case is six output bytes per input byte, plus quotes; reserving
     * it up front keeps the loop free of capacity checks. */
    mock_buf_reserve(b, n * 6 + 2);
    char *o = b->base + b->len;
    *o++ = '"';
    while (i < n) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            i++;
            run++;
            continue;
        }
        if (run) {
            memcpy(o, p + i - run, run);
            o += run;
            run = 0;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq_len(p + i, n - i);
            if (k == 0) {
                memcpy(o, "\\ufffd", 6);
                o += 6;
                i++;
            } else {
                memcpy(o, p + i, k);
                o += k;
                i += k;
            }
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
            break;
        }
        i++;
    }
    if (run) {
        memcpy(o, p + i - run, run);
        o += run;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->base);
}

void mock_buf_append_base64(mock_buf_t *b, const void *data, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = data;

    mock_buf_reserve(b, (n + 2) / 3 * 4);
    char *o = b->base + b->len;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = '=';
    }
    b->len = (size_t)(o - b->base);
}

bool mock_parse_u64(mock_str_t s, uint64_t max, uint64_t *out)
{
    size_t i = 0, n = s.len;
    uint64_t v = 0;

    if (s.base == NULL)
        return false;
    while (i < n && (s.base[i] == ' ' || s.base[i] == '\t'))
        i++;
    while (n > i && (s.base[n - 1] == ' ' || s.base[n - 1] == '\t'))
        n--;
    if (i == n)
        return false;
    for (; i < n; i++) {
        char c = s.base[i];
        if (c < '0' || c > '9')
            return false;
        if (v > (max - (uint64_t)(c - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(c - '0');
    }
    *out = v;
    return true;
}

bool mock_str_eq_nocase(mock_str_t s, const char *lit)
{
    size_t n = strlen(lit);

    return s.base != NULL && s.len == n && strncasecmp(s.base, lit, n) == 0;
}

int64_t mock_now_unix(void)
{
    return (int64_t)time(NULL);
}

int64_t mock_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t mock_hash(const void *data, size_t n, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;

    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t mock_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void mock_emit_payload(const mock_req_t *req, mock_buf_t *out, const char *data, size_t len)
{
    if (req->faults.malformed && req->events_sent == 1) {
        /* Cutting the payload in half leaves an unterminated object; backing
         * off to a character boundary keeps the stream itself valid UTF-8, so
         * only the JSON layer is broken. */
        size_t cut = len / 2;
        while (cut > 0 && ((unsigned char)data[cut] & 0xc0) == 0x80)
            cut--;
        mock_buf_append(out, data, cut);
    } else if (req->faults.timestamps && len > 0 && data[len - 1] == '}') {
        mock_buf_append(out, data, len - 1);
        MOCK_BUF_LIT(out, ",\"x_mock_sent_us\":");
        mock_buf_append_i64(out, mock_now_us());
        MOCK_BUF_LIT(out, "}");
    } else {
        mock_buf_append(out, data, len);
    }
}

void mock_sse_emit_eol(const mock_req_t *req, mock_buf_t *out, const char *event, const char *data,
                       size_t len, const char *eol)
{
    size_t eol_len = strlen(eol);

    if (event != NULL) {
        MOCK_BUF_LIT(out, "event: ");
        mock_buf_append(out, event, strlen(event));
        mock_buf_append(out, eol, eol_len);
    }
    MOCK_BUF_LIT(out, "data: ");
    mock_emit_payload(req, out, data, len);
    mock_buf_append(out, eol, eol_len);
    mock_buf_append(out, eol, eol_len);
}

void mock_sse_emit(const mock_req_t *req, mock_buf_t *out, const char *event, const char *data,
                   size_t len)
{
    mock_sse_emit_eol(req, out, event, data, len, "\n");
}

void mock_buf_append_json_cstr(mock_buf_t *b, const char *s)
{
    mock_buf_append_json_str(b, s, strlen(s));
}

void mock_buf_append_json(mock_buf_t *b, const json_t *v)
{
    size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
    size_t n = json_dumpb(v, NULL, 0, flags);

    if (n == 0) {
        MOCK_BUF_LIT(b, "null");
        return;
    }
    mock_buf_reserve(b, n);
    json_dumpb(v, b->base + b->len, n, flags);
    b->len += n;
}

void mock_buf_append_uuid(mock_buf_t *b, uint64_t n)
{
    /* Decimal digits are hex digits too, and keep <n> readable. */
    mock_buf_appendf(b, "00000000-0000-4000-8000-%012llu",
                     (unsigned long long)(n % 1000000000000ULL));
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void mock_buf_append_pct_decoded(mock_buf_t *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = -1, lo = -1;
        if (s[i] == '%' && i + 2 < n) {
            hi = hex_digit(s[i + 1]);
            lo = hex_digit(s[i + 2]);
        }
        if (hi >= 0 && lo >= 0) {
            char c = (char)(hi * 16 + lo);
            mock_buf_append(b, &c, 1);
            i += 2;
        } else {
            mock_buf_append(b, &s[i], 1);
        }
    }
}

mock_str_t mock_query_param(const mock_req_t *req, const char *name)
{
    const char *p = req->query.base, *end = p + req->query.len;
    size_t n = strlen(name);

    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) >= n && memcmp(p, name, n) == 0) {
            if (p + n == stop)
                return (mock_str_t){p + n, 0};
            if (p[n] == '=')
                return (mock_str_t){p + n + 1, (size_t)(stop - p - n - 1)};
        }
        p = amp ? amp + 1 : end;
    }
    return (mock_str_t){NULL, 0};
}
