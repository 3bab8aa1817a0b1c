/**
 * Allocation. Small allocations of fixed size (sl_xmalloc and friends) log
 * and abort on failure, so callers never check them. Allocations whose size
 * comes from input use the try variants, which return NULL and go through
 * one hook so that a test build can fail the Nth call (OOM torture tests).
 * Thread-safe.
 */
#ifndef SL_ALLOC_H
#define SL_ALLOC_H

#include <stddef.h>

#define SL_WARN_UNUSED __attribute__((warn_unused_result))

void *sl_xmalloc(size_t size);
void *sl_xcalloc(size_t n, size_t size);
void *sl_xrealloc(void *p, size_t size);
char *sl_xstrdup(const char *s);
char *sl_xstrndup(const char *s, size_t n);
void sl_free(void *p);

/** Like malloc/realloc but may fail (returns NULL); subject to the OOM hook. */
SL_WARN_UNUSED void *sl_try_malloc(size_t size);
SL_WARN_UNUSED void *sl_try_realloc(void *p, size_t size);

/**
 * Test hook: make the Nth following try-allocation fail (1 = the next one),
 * 0 disables. Returns how many try-allocations ran since the last call.
 */
unsigned long sl_alloc_fail_after(unsigned long n);

#endif
