/**
 * Arena (region) allocator for per-request and per-connection memory.
 * Allocations are freed all at once by sl_arena_clear(); memory from other
 * libraries is tied to the arena with sl_arena_defer(). Not thread-safe: an
 * arena belongs to one loop thread. The struct is embedded by its owner.
 */
#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <stddef.h>

#include "common/alloc.h"
#include "common/str.h"

typedef struct sl_arena_chunk_s sl_arena_chunk_t;
typedef struct sl_arena_large_s sl_arena_large_t;
typedef struct sl_arena_defer_s sl_arena_defer_t;

typedef struct sl_arena_s {
    sl_arena_chunk_t *_chunks;   /* owned; newest first */
    sl_arena_large_t *_large;    /* owned; allocations too big for a chunk */
    sl_arena_defer_t *_defers;   /* owned (allocated in the arena); LIFO */
    size_t _chunk_size;
} sl_arena_t;

#define SL_ARENA_CHUNK_SIZE 4096

/** Initializes an empty arena; allocates nothing, cannot fail. */
void sl_arena_init(sl_arena_t *a);
/** Allocates size bytes aligned to align (a power of two); aborts on OOM. */
void *sl_arena_alloc(sl_arena_t *a, size_t size, size_t align);
/** Same, for sizes that come from input: NULL on failure (OOM hook applies). */
SL_WARN_UNUSED void *sl_arena_try_alloc(sl_arena_t *a, size_t size, size_t align);
/** Registers fn(arg) to run at the next clear, last registered first. */
void sl_arena_defer(sl_arena_t *a, void (*fn)(void *), void *arg);
/** Runs the defers and frees everything; the arena can be reused after. */
void sl_arena_clear(sl_arena_t *a);
/** Like clear, but keeps one chunk for the next use (no malloc for small uses). */
void sl_arena_reset(sl_arena_t *a);

#define SL_ARENA_NEW(a, type) ((type *)sl_arena_alloc((a), sizeof(type), _Alignof(type)))

/** Copies s into the arena (NUL-terminated copy; the view excludes the NUL). */
sl_str_t sl_str_dup(sl_arena_t *a, sl_str_t s);
/** printf into the arena. */
char *sl_arena_printf(sl_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
