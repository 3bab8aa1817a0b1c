#include "common/json.h"
#include "common/err.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (RFC 3629), or 0. */
size_t sl_utf8_len(const char *p, size_t avail)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t n;
    unsigned lo = 0x80, hi = 0xbf;
    if (u[0] >= 0xc2 && u[0] <= 0xdf)
        n = 2;
    else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        n = 3;
        if (u[0] == 0xe0)
            lo = 0xa0;
        else if (u[0] == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        n = 4;
        if (u[0] == 0xf0)
            lo = 0x90;
        else if (u[0] == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (avail < n || u[1] < lo || u[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (u[i] < 0x80 || u[i] > 0xbf)
            return 0;
    return n;
}

/* One byte, without a call when there is room (the dump's punctuation). */
static inline int put1(sl_buf_t *b, char c)
{
    if (b->len < b->cap) {
        b->base[b->len++] = c;
        return 0;
    }
    return sl_buf_append(b, &c, 1);
}

int sl_json_append_string(sl_buf_t *out, sl_str_t s)
{
    static const char hex[] = "0123456789abcdef";
    /* Most strings need no escape at all: one reservation, one copy. */
    size_t plain = 0;
    while (plain < s.len) {
        unsigned char c = (unsigned char)s.base[plain];
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80)
            break;
        plain++;
    }
    if (plain == s.len) {
        if (sl_buf_try_reserve(out, s.len + 2) != 0)
            return SL_ETOOBIG;
        out->base[out->len++] = '"';
        if (s.len > 0)
            memcpy(out->base + out->len, s.base, s.len);
        out->len += s.len;
        out->base[out->len++] = '"';
        return 0;
    }
    int r = sl_buf_append(out, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < s.len && r == 0; i++) {
        unsigned char c = (unsigned char)s.base[i];
        const char *esc = NULL;
        char u[6];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c >= 0x80) {
                /* Valid UTF-8 passes; an invalid byte becomes U+FFFD, so the
                 * output is always valid JSON whatever the input. */
                size_t n = sl_utf8_len(s.base + i, s.len - i);
                if (n > 0) {
                    i += n - 1;
                    continue;
                }
                r = sl_buf_append(out, s.base + run, i - run);
                if (r == 0)
                    r = sl_buf_append_str(out, SL_STRLIT("\\ufffd"));
                run = i + 1;
                continue;
            }
            if (c < 0x20) {
                u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
                u[4] = hex[c >> 4]; u[5] = hex[c & 15];
                r = sl_buf_append(out, s.base + run, i - run);
                if (r == 0)
                    r = sl_buf_append(out, u, 6);
                run = i + 1;
            }
            continue;
        }
        r = sl_buf_append(out, s.base + run, i - run);
        if (r == 0)
            r = sl_buf_append(out, esc, 2);
        run = i + 1;
    }
    if (r == 0)
        r = sl_buf_append(out, s.base + run, s.len - run);
    if (r == 0)
        r = sl_buf_append(out, "\"", 1);
    return r;
}

int sl_json_error_body(sl_buf_t *out, const char *message, const char *type, const char *param,
                       const char *code)
{
    int r = sl_buf_append_str(out, SL_STRLIT("{\"error\":{\"message\":"));
    if (r == 0)
        r = sl_json_append_string(out, sl_str_c(message));
    if (r == 0)
        r = sl_buf_append_str(out, SL_STRLIT(",\"type\":"));
    if (r == 0)
        r = sl_json_append_string(out, sl_str_c(type));
    if (r == 0)
        r = sl_buf_append_str(out, SL_STRLIT(",\"param\":"));
    if (r == 0)
        r = param ? sl_json_append_string(out, sl_str_c(param))
                  : sl_buf_append_str(out, SL_STRLIT("null"));
    if (r == 0)
        r = sl_buf_append_str(out, SL_STRLIT(",\"code\":"));
    if (r == 0)
        r = code ? sl_json_append_string(out, sl_str_c(code))
                 : sl_buf_append_str(out, SL_STRLIT("null"));
    if (r == 0)
        r = sl_buf_append_str(out, SL_STRLIT("}}"));
    return r;
}

void sl_json_decref_cb(void *json)
{
    json_decref((json_t *)json);
}

static int dump_int(sl_buf_t *out, json_int_t v)
{
    char b[24];
    size_t i = sizeof(b);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        b[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        b[--i] = '-';
    return sl_buf_append(out, b + i, sizeof(b) - i);
}

static int dump_real(sl_buf_t *out, double d)
{
    char b[40];
    int n = snprintf(b, sizeof(b), "%.17g", d);
    if (n <= 0 || (size_t)n >= sizeof(b) - 2)
        return SL_EINVAL;
    /* The exponent as jansson writes it: no '+', no leading zeros. */
    char *e = strchr(b, 'e');
    if (e != NULL) {
        char *r = e + 1, *w = e + 1;
        if (*r == '-')
            *w++ = *r++;
        else if (*r == '+')
            r++;
        while (*r == '0' && r[1] != '\0')
            r++;
        while (*r != '\0')
            *w++ = *r++;
        *w = '\0';
        n = (int)(w - b);
    }
    /* Still a real when read back, as jansson writes it. */
    if (strpbrk(b, ".eE") == NULL) {
        b[n++] = '.';
        b[n++] = '0';
    }
    return sl_buf_append(out, b, (size_t)n);
}

int sl_json_dump(sl_buf_t *out, const json_t *v)
{
    int r = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        int first = 1;
        r = put1(out, '{');
        json_object_foreach((json_t *)v, k, x) {
            if (r == 0 && !first)
                r = put1(out, ',');
            first = 0;
            if (r == 0)
                r = sl_json_append_string(out, sl_str_c(k));
            if (r == 0)
                r = put1(out, ':');
            if (r == 0)
                r = sl_json_dump(out, x);
        }
        return r ? r : put1(out, '}');
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        r = put1(out, '[');
        json_array_foreach(v, i, x) {
            if (r == 0 && i > 0)
                r = put1(out, ',');
            if (r == 0)
                r = sl_json_dump(out, x);
        }
        return r ? r : put1(out, ']');
    }
    case JSON_STRING:
        return sl_json_append_string(out, sl_str(json_string_value(v), json_string_length(v)));
    case JSON_INTEGER:
        return dump_int(out, json_integer_value(v));
    case JSON_REAL:
        return dump_real(out, json_real_value(v));
    case JSON_TRUE:
        return sl_buf_append_str(out, SL_STRLIT("true"));
    case JSON_FALSE:
        return sl_buf_append_str(out, SL_STRLIT("false"));
    case JSON_NULL:
        return sl_buf_append_str(out, SL_STRLIT("null"));
    }
    return SL_EINVAL;
}
