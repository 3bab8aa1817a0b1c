#include "common/arena.h"
#include "common/err.h"
#include "common/log.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct sl_arena_chunk_s {
    sl_arena_chunk_t *next;
    size_t size;
    size_t used;
    _Alignas(16) char data[];
};

struct sl_arena_large_s {
    sl_arena_large_t *next;
    _Alignas(16) char data[];
};

struct sl_arena_defer_s {
    sl_arena_defer_t *next;
    void (*fn)(void *);
    void *arg;
};

void sl_arena_init(sl_arena_t *a)
{
    a->_chunks = NULL;
    a->_large = NULL;
    a->_defers = NULL;
    a->_chunk_size = SL_ARENA_CHUNK_SIZE;
}

static void *alloc_large(sl_arena_t *a, size_t size, size_t align, int may_fail)
{
    sl_arena_large_t *l;
    size_t pad = align > 16 ? align : 0;
    if (size > SIZE_MAX - sizeof(*l) - pad) {
        /* Only input-sized (try) allocations may be this absurd. */
        SL_ASSERT(may_fail);
        return NULL;
    }
    size += pad;
    if (may_fail) {
        l = sl_try_malloc(sizeof(*l) + size);
        if (l == NULL)
            return NULL;
    } else {
        l = sl_xmalloc(sizeof(*l) + size);
    }
    l->next = a->_large;
    a->_large = l;
    uintptr_t p = (uintptr_t)l->data;
    p = (p + align - 1) & ~(uintptr_t)(align - 1);
    return (void *)p;
}

static void *alloc(sl_arena_t *a, size_t size, size_t align, int may_fail)
{
    sl_arena_chunk_t *c = a->_chunks;
    if (align == 0)
        align = 1;
    /* Big (or very aligned) allocations get their own block so that chunks
     * stay small and an aligned start always leaves room for the size. */
    if (size > a->_chunk_size / 4 || align > a->_chunk_size / 4)
        return alloc_large(a, size, align, may_fail);
    if (c != NULL) {
        uintptr_t base = (uintptr_t)c->data;
        uintptr_t p = (base + c->used + align - 1) & ~(uintptr_t)(align - 1);
        if (p + size <= base + c->size) {
            c->used = p + size - base;
            return (void *)p;
        }
    }
    if (may_fail) {
        c = sl_try_malloc(sizeof(*c) + a->_chunk_size);
        if (c == NULL)
            return NULL;
    } else {
        c = sl_xmalloc(sizeof(*c) + a->_chunk_size);
    }
    c->size = a->_chunk_size;
    c->used = 0;
    c->next = a->_chunks;
    a->_chunks = c;
    uintptr_t base = (uintptr_t)c->data;
    uintptr_t p = (base + align - 1) & ~(uintptr_t)(align - 1);
    c->used = p + size - base;
    return (void *)p;
}

void *sl_arena_alloc(sl_arena_t *a, size_t size, size_t align)
{
    return alloc(a, size, align, 0);
}

void *sl_arena_try_alloc(sl_arena_t *a, size_t size, size_t align)
{
    return alloc(a, size, align, 1);
}

void sl_arena_defer(sl_arena_t *a, void (*fn)(void *), void *arg)
{
    sl_arena_defer_t *d = SL_ARENA_NEW(a, sl_arena_defer_t);
    d->fn = fn;
    d->arg = arg;
    d->next = a->_defers;
    a->_defers = d;
}

void sl_arena_clear(sl_arena_t *a)
{
    /* Defers live in the chunks, so run them all before freeing anything. */
    while (a->_defers != NULL) {
        sl_arena_defer_t *d = a->_defers;
        a->_defers = d->next;
        d->fn(d->arg);
    }
    while (a->_large != NULL) {
        sl_arena_large_t *l = a->_large;
        a->_large = l->next;
        sl_free(l);
    }
    while (a->_chunks != NULL) {
        sl_arena_chunk_t *c = a->_chunks;
        a->_chunks = c->next;
        sl_free(c);
    }
}

void sl_arena_reset(sl_arena_t *a)
{
    sl_arena_chunk_t *keep = NULL;
    /* Keep the oldest chunk: it was allocated first, so it is the normal size. */
    if (a->_chunks != NULL) {
        sl_arena_chunk_t **pp = &a->_chunks;
        while ((*pp)->next != NULL)
            pp = &(*pp)->next;
        keep = *pp;
        *pp = NULL;
    }
    sl_arena_clear(a);
    if (keep != NULL) {
        keep->used = 0;
        keep->next = NULL;
        a->_chunks = keep;
    }
}

sl_str_t sl_str_dup(sl_arena_t *a, sl_str_t s)
{
    char *p = sl_arena_alloc(a, s.len + 1, 1);
    if (s.len)
        memcpy(p, s.base, s.len);
    p[s.len] = '\0';
    return sl_str(p, s.len);
}

char *sl_arena_printf(sl_arena_t *a, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    char *p = sl_arena_alloc(a, (size_t)n + 1, 1);
    if ((size_t)n < sizeof(small)) {
        memcpy(p, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return p;
}
