/*
 * jsmn-backed token view (see jtok.h). jsmn is header-only: this file holds
 * its one (static) instance, in strict mode with parent links.
 */
#define JSMN_STATIC
#define JSMN_STRICT
#define JSMN_PARENT_LINKS
#include <jsmn.h>

#include "dataplane/providers/jtok.h"

#include <string.h>

#include "common/err.h"
#include "common/json.h"

struct gw_jtok_s {
    jsmntok_t t;
};

int gw_jview_parse(gw_jview_t *v, sl_arena_t *a, sl_str_t text)
{
    jsmn_parser p;
    jsmn_init(&p);
    int n = jsmn_parse(&p, text.base, text.len, NULL, 0);
    if (n <= 0)
        return SL_EUPPROTO;
    gw_jtok_t *tok = sl_arena_try_alloc(a, (size_t)n * sizeof(*tok), _Alignof(gw_jtok_t));
    if (tok == NULL)
        return SL_ENOMEM;
    jsmn_init(&p);
    if (jsmn_parse(&p, text.base, text.len, &tok->t, (unsigned)n) != n)
        return SL_EUPPROTO;
    /* One value, and nothing but blanks after it. */
    for (size_t k = (size_t)tok[0].t.end; k < text.len; k++)
        if (text.base[k] != ' ' && text.base[k] != '\n' && text.base[k] != '\r' &&
            text.base[k] != '\t')
            return SL_EUPPROTO;
    v->text = text;
    v->tok = tok;
    v->ntok = n;
    return 0;
}

static const jsmntok_t *T(const gw_jview_t *v, int i)
{
    return i >= 0 && i < v->ntok ? &v->tok[i].t : NULL;
}

int gw_jview_type(const gw_jview_t *v, int i)
{
    const jsmntok_t *t = T(v, i);
    if (t == NULL)
        return GW_J_NONE;
    switch (t->type) {
    case JSMN_OBJECT: return GW_J_OBJECT;
    case JSMN_ARRAY: return GW_J_ARRAY;
    case JSMN_STRING: return GW_J_STRING;
    case JSMN_PRIMITIVE: return GW_J_PRIMITIVE;
    default: return GW_J_NONE;
    }
}

/* The token after the whole value at i. */
static int skip(const gw_jview_t *v, int i)
{
    int pending = 1;
    while (pending > 0 && i < v->ntok) {
        pending += v->tok[i].t.size;
        pending--;
        i++;
    }
    return i;
}

int gw_jview_size(const gw_jview_t *v, int i)
{
    const jsmntok_t *t = T(v, i);
    return t ? t->size : 0;
}

int gw_jview_first(const gw_jview_t *v, int i)
{
    const jsmntok_t *t = T(v, i);
    return t && (t->type == JSMN_ARRAY || t->type == JSMN_OBJECT) && t->size > 0 ? i + 1 : -1;
}

int gw_jview_next(const gw_jview_t *v, int e)
{
    const jsmntok_t *t = T(v, e);
    if (t == NULL || t->parent < 0)
        return -1;
    int n = skip(v, e);
    return n < v->ntok && v->tok[n].t.parent == t->parent ? n : -1;
}

sl_str_t gw_jview_raw(const gw_jview_t *v, int i)
{
    const jsmntok_t *t = T(v, i);
    if (t == NULL)
        return SL_STR_NULL;
    return sl_str(v->text.base + t->start, (size_t)(t->end - t->start));
}

int gw_jview_eq(const gw_jview_t *v, int i, const char *s)
{
    const jsmntok_t *t = T(v, i);
    return t != NULL && t->type == JSMN_STRING && sl_str_eq(gw_jview_raw(v, i), sl_str_c(s));
}

int gw_jview_get(const gw_jview_t *v, int i, const char *key)
{
    const jsmntok_t *t = T(v, i);
    if (t == NULL || t->type != JSMN_OBJECT)
        return -1;
    int k = i + 1;
    for (int m = 0; m < t->size && k < v->ntok; m++) {
        if (gw_jview_eq(v, k, key))
            return k + 1 < v->ntok ? k + 1 : -1;
        k = skip(v, k + 1);
    }
    return -1;
}

long long gw_jview_int(const gw_jview_t *v, int i)
{
    const jsmntok_t *t = T(v, i);
    if (t == NULL || t->type != JSMN_PRIMITIVE)
        return -1;
    sl_str_t r = gw_jview_raw(v, i);
    long long n = 0;
    if (r.len == 0 || r.len > 15)
        return -1;
    for (size_t k = 0; k < r.len; k++) {
        if (r.base[k] < '0' || r.base[k] > '9')
            return -1;
        n = n * 10 + (r.base[k] - '0');
    }
    return n;
}

static int hex4(const char *p)
{
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return 1;
}

int gw_jview_put_chars(const gw_jview_t *v, int i, sl_buf_t *out)
{
    const jsmntok_t *t = T(v, i);
    if (t == NULL || t->type != JSMN_STRING)
        return SL_EUPPROTO;
    sl_str_t s = gw_jview_raw(v, i);
    for (size_t k = 0; k < s.len; k++) {
        unsigned char c = (unsigned char)s.base[k];
        if (c < 0x20)
            return SL_EUPPROTO; /* raw control bytes are not JSON */
        if (c >= 0x80) {
            size_t n = sl_utf8_len(s.base + k, s.len - k);
            if (n == 0)
                return SL_EUPPROTO; /* not UTF-8: not JSON text either */
            k += n - 1;
            continue;
        }
        if (c == '\\') {
            if (k + 1 >= s.len)
                return SL_EUPPROTO;
            char e = s.base[k + 1];
            if (e == 'u') {
                if (k + 6 > s.len || !hex4(s.base + k + 2))
                    return SL_EUPPROTO;
                k += 5;
            } else if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
                k++;
            } else {
                return SL_EUPPROTO;
            }
        }
    }
    return sl_buf_append_str(out, s) == 0 ? 0 : SL_EUPTOOBIG;
}

int gw_jview_put_string(const gw_jview_t *v, int i, sl_buf_t *out)
{
    if (sl_buf_append(out, "\"", 1) != 0)
        return SL_EUPTOOBIG;
    int r = gw_jview_put_chars(v, i, out);
    if (r != 0)
        return r;
    return sl_buf_append(out, "\"", 1) == 0 ? 0 : SL_EUPTOOBIG;
}
