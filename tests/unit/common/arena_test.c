/*
 * Tests for common/arena.c. The .c file is included so that the tests can
 * check that every allocation lies inside the block it was carved from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/arena.c"

static int setup(void **state)
{
    sl_arena_t *a = sl_xmalloc(sizeof(*a));
    sl_arena_init(a);
    *state = a;
    return 0;
}

static int teardown(void **state)
{
    sl_arena_t *a = *state;
    sl_alloc_fail_after(0);
    sl_arena_clear(a);
    sl_free(a);
    return 0;
}

static size_t count_chunks(const sl_arena_t *a)
{
    size_t n = 0;
    for (const sl_arena_chunk_t *c = a->_chunks; c != NULL; c = c->next)
        n++;
    return n;
}

static size_t count_large(const sl_arena_t *a)
{
    size_t n = 0;
    for (const sl_arena_large_t *l = a->_large; l != NULL; l = l->next)
        n++;
    return n;
}

/* Whether [p, p + size) lies inside the data area of one of the chunks. */
static int in_some_chunk(const sl_arena_t *a, const void *p, size_t size)
{
    uintptr_t b = (uintptr_t)p;
    for (const sl_arena_chunk_t *c = a->_chunks; c != NULL; c = c->next) {
        uintptr_t lo = (uintptr_t)c->data, hi = lo + c->size;
        if (b >= lo && b <= hi && size <= hi - b)
            return 1;
    }
    return 0;
}

/* p starts inside a chunk but runs past its end. */
static int straddles_chunk(const sl_arena_t *a, const void *p, size_t size)
{
    uintptr_t b = (uintptr_t)p;
    for (const sl_arena_chunk_t *c = a->_chunks; c != NULL; c = c->next) {
        uintptr_t lo = (uintptr_t)c->data, hi = lo + c->size;
        if (b >= lo && b <= hi && size > hi - b)
            return 1;
    }
    return 0;
}

static void init_allocates_nothing(void **state)
{
    sl_arena_t *a = *state;
    assert_null(a->_chunks);
    assert_null(a->_large);
    assert_null(a->_defers);
    /* Clearing an empty arena is fine, twice. */
    sl_arena_clear(a);
    sl_arena_clear(a);
}

typedef struct {
    void *p;
    size_t size;
    unsigned char tag;
} rec_t;

static void alignment_1_to_64(void **state)
{
    sl_arena_t *a = *state;
    static rec_t recs[4000];
    size_t n = 0;
    unsigned char tag = 1;
    /* Mixed sizes and alignments, so that padding lands everywhere in chunks. */
    for (int round = 0; round < 8; round++) {
        for (size_t align = 1; align <= 64; align *= 2) {
            for (size_t size = 1; size <= 1100; size = size * 3 + round) {
                void *p = sl_arena_alloc(a, size, align);
                assert_non_null(p);
                assert_int_equal((uintptr_t)p % align, 0);
                if (size <= SL_ARENA_CHUNK_SIZE / 4)
                    assert_true(in_some_chunk(a, p, size));
                memset(p, tag, size);
                assert_true(n < SL_ARRAY_SIZE(recs));
                recs[n++] = (rec_t){p, size, tag};
                tag = (unsigned char)(tag % 250 + 1);
            }
        }
    }
    /* No allocation overlapped another one. */
    for (size_t i = 0; i < n; i++) {
        unsigned char *p = recs[i].p;
        for (size_t k = 0; k < recs[i].size; k++)
            if (p[k] != recs[i].tag)
                fail_msg("allocation %zu (size %zu) was overwritten at %zu", i, recs[i].size, k);
    }
    assert_true(count_chunks(a) > 1);
}

static void alignment_zero_means_one(void **state)
{
    sl_arena_t *a = *state;
    char *p = sl_arena_alloc(a, 3, 0);
    char *q = sl_arena_alloc(a, 3, 0);
    assert_non_null(p);
    assert_non_null(q);
    assert_ptr_equal(q, p + 3);
}

static void arena_new_is_aligned(void **state)
{
    sl_arena_t *a = *state;
    typedef struct {
        char c;
        long double ld;
    } odd_t;
    sl_arena_alloc(a, 1, 1);
    odd_t *o = SL_ARENA_NEW(a, odd_t);
    assert_int_equal((uintptr_t)o % _Alignof(odd_t), 0);
    o->c = 'x';
    o->ld = 1.5L;
    double *d = SL_ARENA_NEW(a, double);
    assert_int_equal((uintptr_t)d % _Alignof(double), 0);
}

static void large_allocations(void **state)
{
    sl_arena_t *a = *state;
    size_t sizes[] = {SL_ARENA_CHUNK_SIZE / 4 + 1, SL_ARENA_CHUNK_SIZE, 100000, 4u << 20};
    unsigned char *ps[SL_ARRAY_SIZE(sizes)];
    for (size_t i = 0; i < SL_ARRAY_SIZE(sizes); i++) {
        ps[i] = sl_arena_alloc(a, sizes[i], 16);
        assert_non_null(ps[i]);
        assert_int_equal((uintptr_t)ps[i] % 16, 0);
        memset(ps[i], (int)i + 1, sizes[i]);
    }
    for (size_t align = 32; align <= 4096; align *= 2) {
        void *p = sl_arena_alloc(a, 5000, align);
        assert_int_equal((uintptr_t)p % align, 0);
        memset(p, 0xee, 5000);
    }
    assert_true(count_large(a) >= SL_ARRAY_SIZE(sizes));
    for (size_t i = 0; i < SL_ARRAY_SIZE(sizes); i++)
        for (size_t k = 0; k < sizes[i]; k += 997)
            assert_int_equal(ps[i][k], i + 1);
    /* Large blocks don't disturb the small ones in between. */
    char *s = sl_arena_alloc(a, 10, 1);
    memcpy(s, "small", 6);
    void *big = sl_arena_alloc(a, 50000, 8);
    memset(big, 0, 50000);
    assert_string_equal(s, "small");
}

static void many_allocations_across_chunks(void **state)
{
    sl_arena_t *a = *state;
    enum { N = 20000 };
    uint32_t **ptrs = sl_xmalloc(N * sizeof(*ptrs));
    for (uint32_t i = 0; i < N; i++) {
        ptrs[i] = sl_arena_alloc(a, 3 * sizeof(uint32_t), _Alignof(uint32_t));
        ptrs[i][0] = i;
        ptrs[i][1] = ~i;
        ptrs[i][2] = i * 7u;
    }
    for (uint32_t i = 0; i < N; i++) {
        assert_int_equal(ptrs[i][0], i);
        assert_int_equal(ptrs[i][1], ~i);
        assert_int_equal(ptrs[i][2], i * 7u);
    }
    /* 240 KB of small objects need many chunks and no large blocks. */
    assert_true(count_chunks(a) >= N * 12 / SL_ARENA_CHUNK_SIZE);
    assert_int_equal(count_large(a), 0);
    sl_free(ptrs);
}

typedef struct {
    int order[16];
    int n;
} calls_t;

typedef struct {
    calls_t *calls;
    int id;
} defer_arg_t;

static void record_call(void *arg)
{
    defer_arg_t *d = arg;
    d->calls->order[d->calls->n++] = d->id;
}

static void defers_run_lifo(void **state)
{
    sl_arena_t *a = *state;
    calls_t calls = {{0}, 0};
    defer_arg_t args[5];
    for (int i = 0; i < 5; i++) {
        args[i] = (defer_arg_t){&calls, i};
        sl_arena_defer(a, record_call, &args[i]);
        /* Interleave allocations of all kinds with the defers. */
        memset(sl_arena_alloc(a, 700, 8), 0, 700);
        memset(sl_arena_alloc(a, 9000, 8), 0, 9000);
    }
    assert_int_equal(calls.n, 0);
    sl_arena_clear(a);
    assert_int_equal(calls.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(calls.order[i], 4 - i);
    /* Defers ran once: clearing again does nothing. */
    sl_arena_clear(a);
    assert_int_equal(calls.n, 5);
}

static void free_cb(void *p)
{
    sl_free(p);
}

static void defer_frees_foreign_memory(void **state)
{
    sl_arena_t *a = *state;
    /* Memory from elsewhere tied to the arena (leak-checked by ASan). */
    for (int i = 0; i < 100; i++)
        sl_arena_defer(a, free_cb, sl_xmalloc(100));
}

typedef struct {
    sl_arena_t *a;
    calls_t *calls;
    defer_arg_t inner;
} nested_t;

static void defer_registers_defer(void *arg)
{
    nested_t *n = arg;
    n->calls->order[n->calls->n++] = 100;
    sl_arena_defer(n->a, record_call, &n->inner);
}

static void defer_added_during_clear_runs(void **state)
{
    sl_arena_t *a = *state;
    calls_t calls = {{0}, 0};
    nested_t n = {a, &calls, {&calls, 7}};
    sl_arena_defer(a, defer_registers_defer, &n);
    sl_arena_clear(a);
    assert_int_equal(calls.n, 2);
    assert_int_equal(calls.order[0], 100);
    assert_int_equal(calls.order[1], 7);
    assert_null(a->_defers);
}

static void reusable_after_clear(void **state)
{
    sl_arena_t *a = *state;
    calls_t calls = {{0}, 0};
    defer_arg_t arg = {&calls, 1};
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 100; i++)
            memset(sl_arena_alloc(a, 100, 8), round, 100);
        memset(sl_arena_alloc(a, 10000, 64), round, 10000);
        sl_arena_defer(a, record_call, &arg);
        sl_arena_clear(a);
        assert_null(a->_chunks);
        assert_null(a->_large);
        assert_null(a->_defers);
        assert_int_equal(calls.n, round + 1);
    }
    char *p = sl_arena_alloc(a, 4, 1);
    memcpy(p, "abc", 4);
    assert_string_equal(p, "abc");
}

static void str_dup(void **state)
{
    sl_arena_t *a = *state;
    char src[] = "hello world";
    sl_str_t d = sl_str_dup(a, sl_str(src, 5));
    assert_int_equal(d.len, 5);
    assert_ptr_not_equal(d.base, src);
    assert_memory_equal(d.base, "hello", 6); /* NUL-terminated copy */
    src[0] = 'J';
    assert_memory_equal(d.base, "hello", 5);

    sl_str_t e = sl_str_dup(a, SL_STR_NULL);
    assert_int_equal(e.len, 0);
    assert_non_null(e.base);
    assert_int_equal(e.base[0], '\0');

    sl_str_t z = sl_str_dup(a, SL_STRLIT("a\0b"));
    assert_int_equal(z.len, 3);
    assert_memory_equal(z.base, "a\0b", 4);

    /* Longer than a chunk. */
    char *big = sl_xmalloc(10000);
    memset(big, 'q', 10000);
    sl_str_t bd = sl_str_dup(a, sl_str(big, 10000));
    assert_int_equal(bd.len, 10000);
    assert_memory_equal(bd.base, big, 10000);
    assert_int_equal(bd.base[10000], '\0');
    sl_free(big);
}

static void printf_short_and_long(void **state)
{
    sl_arena_t *a = *state;
    char *s = sl_arena_printf(a, "%s-%d", "abc", 42);
    assert_string_equal(s, "abc-42");
    s = sl_arena_printf(a, "%s", "");
    assert_string_equal(s, "");

    /* Around the 256-byte stack buffer, and far past it. */
    size_t lens[] = {254, 255, 256, 257, 300, 1000, 5000};
    char *src = sl_xmalloc(5001);
    for (size_t i = 0; i < 5000; i++)
        src[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < SL_ARRAY_SIZE(lens); i++) {
        src[lens[i]] = '\0';
        char *out = sl_arena_printf(a, "[%s]", src);
        assert_int_equal(strlen(out), lens[i] + 2);
        assert_int_equal(out[0], '[');
        assert_memory_equal(out + 1, src, lens[i]);
        assert_int_equal(out[lens[i] + 1], ']');
        src[lens[i]] = (char)('a' + lens[i] % 26);
    }
    sl_free(src);
    char *num = sl_arena_printf(a, "%0300d", 7);
    assert_int_equal(strlen(num), 300);
    assert_int_equal(num[299], '7');
    assert_int_equal(num[0], '0');
}

static void try_alloc_fails_under_oom_hook(void **state)
{
    sl_arena_t *a = *state;
    /* A fresh arena needs a chunk: that allocation fails. */
    sl_alloc_fail_after(1);
    void *p = sl_arena_try_alloc(a, 64, 8);
    assert_null(p);
    assert_null(a->_chunks);
    /* The next one succeeds and the arena works normally. */
    p = sl_arena_try_alloc(a, 64, 8);
    assert_non_null(p);
    memset(p, 1, 64);

    /* A large block fails the same way and leaves the arena as it was. */
    size_t nlarge = count_large(a), nchunks = count_chunks(a);
    sl_alloc_fail_after(1);
    void *big = sl_arena_try_alloc(a, 100000, 8);
    assert_null(big);
    assert_int_equal(count_large(a), nlarge);
    assert_int_equal(count_chunks(a), nchunks);

    /* When the current chunk is full, the new chunk's allocation fails. */
    size_t before = count_chunks(a);
    sl_alloc_fail_after(0);
    while (count_chunks(a) == before) {
        void *q = sl_arena_try_alloc(a, 512, 8);
        assert_non_null(q);
    }
    /* Fill the rest of that chunk exactly, so that the next one needs a new chunk. */
    sl_arena_chunk_t *c = a->_chunks;
    while (c->size > c->used) {
        size_t room = c->size - c->used;
        void *fill = sl_arena_try_alloc(a, room > 1024 ? 1024 : room, 1);
        assert_non_null(fill);
        assert_ptr_equal(a->_chunks, c);
    }
    before = count_chunks(a);
    sl_alloc_fail_after(1);
    void *r = sl_arena_try_alloc(a, 512, 8);
    assert_null(r);
    assert_int_equal(count_chunks(a), before);
    /* The plain allocator is not subject to the hook. */
    sl_alloc_fail_after(1);
    void *x = sl_arena_alloc(a, 512, 8);
    assert_non_null(x);
}

static void try_alloc_huge_sizes_fail(void **state)
{
    sl_arena_t *a = *state;
    /* Sizes from input can be absurd; they must fail, not wrap around. */
    assert_null(sl_arena_try_alloc(a, SIZE_MAX, 1));
    assert_null(sl_arena_try_alloc(a, SIZE_MAX, 8));
    assert_null(sl_arena_try_alloc(a, SIZE_MAX - 8, 16));
    assert_null(sl_arena_try_alloc(a, SIZE_MAX, 64));
    assert_null(sl_arena_try_alloc(a, SIZE_MAX - 32, 64));
}

static void alignment_larger_than_chunk_padding(void **state)
{
    sl_arena_t *a = *state;
    /*
     * align is documented as any power of two. Small sizes with page-sized
     * alignments go to a chunk, where the padding can be most of the chunk.
     */
    size_t sizes[] = {1, 17, 100, 512, 1024};
    for (size_t align = 128; align <= 16384; align *= 2) {
        for (size_t i = 0; i < SL_ARRAY_SIZE(sizes); i++) {
            void *p = sl_arena_alloc(a, sizes[i], align);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % align, 0);
            /* Very aligned requests may get a block of their own; either
             * way the memory must not run past a chunk. */
            if (straddles_chunk(a, p, sizes[i]))
                fail_msg("sl_arena_alloc(size=%zu, align=%zu) returned memory past the end of "
                         "its chunk",
                         sizes[i], align);
            memset(p, 0xab, sizes[i]);
        }
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(init_allocates_nothing),
        T(alignment_1_to_64),
        T(alignment_zero_means_one),
        T(arena_new_is_aligned),
        T(large_allocations),
        T(many_allocations_across_chunks),
        T(defers_run_lifo),
        T(defer_frees_foreign_memory),
        T(defer_added_during_clear_runs),
        T(reusable_after_clear),
        T(str_dup),
        T(printf_short_and_long),
        T(try_alloc_fails_under_oom_hook),
        T(try_alloc_huge_sizes_fail),
        T(alignment_larger_than_chunk_padding),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
