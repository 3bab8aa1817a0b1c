/*
 * Fuzz target for the JSON writers (common/json.c). For valid UTF-8 input,
 * sl_json_append_string must produce a JSON string that jansson parses back
 * to exactly the input bytes, and sl_json_error_body must produce a body
 * whose fields parse back to the strings given. Any other input must not
 * crash and must produce output without raw control characters.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/json.h"
#include "tests/fuzz/fuzz.h"


/* Strict UTF-8 as jansson checks it: no overlongs, surrogates or > U+10FFFF. */
static int valid_utf8(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static void no_raw_controls(const sl_buf_t *b)
{
    for (size_t i = 0; i < b->len; i++)
        CHECK((unsigned char)b->base[i] >= 0x20);
}

static const char *field(json_t *e, const char *key)
{
    json_t *v = json_object_get(e, key);
    CHECK(json_is_string(v));
    return json_string_value(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int utf8 = valid_utf8(data, size);
    sl_buf_t b;
    sl_buf_init(&b, 64 * size + 256);
    CHECK(sl_json_append_string(&b, sl_str((const char *)data, size)) == 0);
    no_raw_controls(&b);
    CHECK(b.len >= size + 2 && b.base[0] == '"' && b.base[b.len - 1] == '"');
    if (utf8) {
        json_error_t err;
        json_t *j = json_loadb(b.base, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (j == NULL)
            fprintf(stderr, "jansson: %s\n", err.text);
        CHECK(j != NULL);
        CHECK(json_is_string(j));
        CHECK(json_string_length(j) == size);
        CHECK(size == 0 || memcmp(json_string_value(j), data, size) == 0);
        json_decref(j);
    }

    /* The error body, with the input cut into message and param at a NUL. */
    char *msg = sl_xmalloc(size + 1);
    if (size > 0)
        memcpy(msg, data, size);
    msg[size] = '\0';
    size_t ml = strlen(msg);
    const char *param = ml < size ? msg + ml + 1 : NULL;
    sl_buf_reset(&b);
    CHECK(sl_json_error_body(&b, msg, "invalid_request_error", param, "fuzz") == 0);
    no_raw_controls(&b);
    if (utf8) {
        json_error_t err;
        json_t *root = json_loadb(b.base, b.len, 0, &err);
        CHECK(root != NULL);
        CHECK(json_object_size(root) == 1);
        json_t *e = json_object_get(root, "error");
        CHECK(json_is_object(e) && json_object_size(e) == 4);
        CHECK(strcmp(field(e, "message"), msg) == 0);
        CHECK(strcmp(field(e, "type"), "invalid_request_error") == 0);
        CHECK(strcmp(field(e, "code"), "fuzz") == 0);
        if (param != NULL)
            CHECK(strcmp(field(e, "param"), param) == 0);
        else
            CHECK(json_is_null(json_object_get(e, "param")));
        json_decref(root);
    }
    sl_free(msg);
    sl_buf_dispose(&b);
    return 0;
}
