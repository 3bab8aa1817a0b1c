/**
 * A read-only view of a JSON text as jsmn tokens (Debian's libjsmn-dev), for
 * answers that are translated on the request path: tokenizing allocates one
 * array and copies nothing, where jansson builds a tree of allocated values
 * (about 50,000 instructions for a 400-byte Anthropic answer, against a few
 * thousand here). Values are read as views into the text; strings stay
 * JSON-escaped, ready to be written into another JSON text. Loop thread
 * only; the view borrows the text and allocates its tokens in an arena.
 */
#ifndef GW_JTOK_H
#define GW_JTOK_H

#include <stddef.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/str.h"

typedef struct gw_jtok_s gw_jtok_t;

typedef struct {
    sl_str_t text;  /* borrowed */
    gw_jtok_t *tok; /* arena */
    int ntok;
} gw_jview_t;

/** Tokenizes text (strictly); 0, or SL_EUPPROTO when it is not one JSON value. */
int gw_jview_parse(gw_jview_t *v, sl_arena_t *a, sl_str_t text);

enum { GW_J_NONE = 0, GW_J_OBJECT, GW_J_ARRAY, GW_J_STRING, GW_J_PRIMITIVE };
/** The type of token i (GW_J_NONE for i < 0). */
int gw_jview_type(const gw_jview_t *v, int i);
/** The token of member `key` of object i, or -1. Keys are compared unescaped-free (ASCII). */
int gw_jview_get(const gw_jview_t *v, int i, const char *key);
/** Number of elements (array) or members (object) of token i. */
int gw_jview_size(const gw_jview_t *v, int i);
/** The first element of array i (or -1), and the element after element e. */
int gw_jview_first(const gw_jview_t *v, int i);
int gw_jview_next(const gw_jview_t *v, int e);
/** The text of token i: a string's escaped contents without quotes, or the raw value. */
sl_str_t gw_jview_raw(const gw_jview_t *v, int i);
/** 1 when string token i equals s (s without escapes). */
int gw_jview_eq(const gw_jview_t *v, int i, const char *s);
/** The integer value of primitive token i, or -1. */
long long gw_jview_int(const gw_jview_t *v, int i);
/**
 * Appends string token i as a JSON string (quotes included), copying its
 * escaped contents after checking them (escapes and control bytes), so the
 * output stays valid JSON. SL_EUPPROTO for a bad escape.
 */
int gw_jview_put_string(const gw_jview_t *v, int i, sl_buf_t *out);
/** Appends the escaped contents of string token i without quotes (to join texts). */
int gw_jview_put_chars(const gw_jview_t *v, int i, sl_buf_t *out);

#endif
