#include "common/json.h"
#include "common/err.h"

#include <stdio.h>

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
