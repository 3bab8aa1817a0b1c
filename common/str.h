/**
 * Strings as (base, len) views. They never own their bytes: the owner is
 * whoever allocated base (usually an arena). Not NUL-terminated in general.
 */
#ifndef SL_STR_H
#define SL_STR_H

#include <stddef.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *base;
    size_t len;
} sl_str_t;

#define SL_STRLIT(s) ((sl_str_t){(s), sizeof(s) - 1})
#define SL_STR_NULL ((sl_str_t){NULL, 0})
#define SL_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define SL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static inline sl_str_t sl_str(const char *s, size_t len)
{
    return (sl_str_t){s, len};
}

static inline sl_str_t sl_str_c(const char *s)
{
    return (sl_str_t){s, s ? strlen(s) : 0};
}

static inline int sl_str_eq(sl_str_t a, sl_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

static inline unsigned char sl__ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/** ASCII case-insensitive equality of n bytes (NUL is an ordinary byte). */
static inline int sl__mem_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sl__ascii_lower((unsigned char)a[i]) != sl__ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/** ASCII case-insensitive equality (header names). */
static inline int sl_str_ieq(sl_str_t a, sl_str_t b)
{
    return a.len == b.len && sl__mem_ieq(a.base, b.base, a.len);
}

static inline int sl_str_ieq_c(sl_str_t a, const char *b)
{
    return sl_str_ieq(a, sl_str_c(b));
}

static inline int sl_str_starts_with(sl_str_t s, sl_str_t prefix)
{
    return s.len >= prefix.len && memcmp(s.base, prefix.base, prefix.len) == 0;
}

static inline int sl_str_istarts_with(sl_str_t s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && sl__mem_ieq(s.base, prefix, n);
}

/** Trims ASCII spaces and tabs at both ends. */
sl_str_t sl_str_trim(sl_str_t s);

/**
 * Parses a non-negative decimal integer that fills all of s. Returns 0 and
 * sets *out, or SL_EINVAL (empty, non-digit, overflow).
 */
int sl_str_to_u64(sl_str_t s, unsigned long long *out);

/** Constant-time comparison for secrets; 1 when equal. */
int sl_str_ct_eq(sl_str_t a, sl_str_t b);

#endif
