/**
 * Growable byte buffer with a hard cap. An append that would pass the cap
 * fails with SL_ETOOBIG and leaves the buffer unchanged, so a buffer whose
 * size depends on input never grows without limit. Owns its memory (heap).
 */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>

#include "common/alloc.h"
#include "common/str.h"

typedef struct {
    char *base; /* owned */
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len */
} sl_buf_t;

void sl_buf_init(sl_buf_t *b, size_t max);
void sl_buf_dispose(sl_buf_t *b);
/** Ensures room for extra more bytes. SL_ETOOBIG past max, SL_ENOMEM. */
SL_WARN_UNUSED int sl_buf_try_reserve(sl_buf_t *b, size_t extra);
SL_WARN_UNUSED int sl_buf_append(sl_buf_t *b, const void *p, size_t n);
static inline int sl_buf_append_str(sl_buf_t *b, sl_str_t s)
{
    return sl_buf_append(b, s.base, s.len);
}
/** Drops the first n bytes. */
void sl_buf_consume(sl_buf_t *b, size_t n);
static inline void sl_buf_reset(sl_buf_t *b)
{
    b->len = 0;
}
static inline sl_str_t sl_buf_str(const sl_buf_t *b)
{
    return sl_str(b->base, b->len);
}

#endif
