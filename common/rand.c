#include "common/rand.h"

#include <openssl/rand.h>
#include <string.h>
#include <time.h>

static _Thread_local uint64_t state[4];
static _Thread_local int seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void seed(void)
{
    if (RAND_bytes((unsigned char *)state, sizeof(state)) != 1) {
        /* Uniqueness is all that matters here: fall back to time and address. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        state[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30);
        state[1] = (uint64_t)(uintptr_t)&state;
        state[2] = 0x9e3779b97f4a7c15ull;
        state[3] = 0xbf58476d1ce4e5b9ull;
    }
    if ((state[0] | state[1] | state[2] | state[3]) == 0)
        state[0] = 1;
    seeded = 1;
}

void sl_rand_seed(uint64_t s)
{
    /* splitmix64 spreads one number over the four words, as xoshiro's authors advise */
    for (int i = 0; i < 4; i++) {
        uint64_t z = (s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        state[i] = z ^ (z >> 31);
    }
    seeded = 1;
}

uint64_t sl_rand_u64(void)
{
    if (!seeded)
        seed();
    uint64_t result = rotl(state[1] * 5, 7) * 9;
    uint64_t t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 45);
    return result;
}

void sl_rand_uuid(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    uint64_t a = sl_rand_u64(), b = sl_rand_u64();
    memcpy(r, &a, 8);
    memcpy(r + 8, &b, 8);
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[r[i] >> 4];
        out[o++] = hex[r[i] & 15];
    }
    out[o] = '\0';
}
