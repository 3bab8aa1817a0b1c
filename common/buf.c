#include "common/buf.h"
#include "common/err.h"

#include <stdint.h>
#include <string.h>

void sl_buf_init(sl_buf_t *b, size_t max)
{
    b->base = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void sl_buf_dispose(sl_buf_t *b)
{
    sl_free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}

int sl_buf_try_reserve(sl_buf_t *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return SL_ETOOBIG;
    size_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > b->max)
        ncap = b->max;
    char *p = sl_try_realloc(b->base, ncap);
    if (p == NULL)
        return SL_ENOMEM;
    b->base = p;
    b->cap = ncap;
    return 0;
}

int sl_buf_append(sl_buf_t *b, const void *p, size_t n)
{
    int r = sl_buf_try_reserve(b, n);
    if (r != 0)
        return r;
    if (n)
        memcpy(b->base + b->len, p, n);
    b->len += n;
    return 0;
}

void sl_buf_consume(sl_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->base, b->base + n, b->len - n);
    b->len -= n;
}
