#include "common/json.h"
#include "common/err.h"

#include <stdio.h>

/* Length of the valid UTF-8 sequence at p (RFC 3629), or 0. */
static size_t utf8_len(const char *p, size_t avail)
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

int sl_json_append_string(sl_buf_t *out, sl_str_t s)
{
    static const char hex[] = "0123456789abcdef";
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
                size_t n = utf8_len(s.base + i, s.len - i);
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
