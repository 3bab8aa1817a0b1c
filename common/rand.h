/**
 * Fast non-cryptographic random numbers (xoshiro256**), one generator per
 * thread, seeded from OpenSSL's CSPRNG on first use. For identifiers that
 * must be unique, not secret (trace ids); never for keys or tokens.
 */
#ifndef SL_RAND_H
#define SL_RAND_H

#include <stdint.h>

uint64_t sl_rand_u64(void);
/** Seeds this thread's generator (tests, for reproducible sequences). */
void sl_rand_seed(uint64_t seed);
/** Writes a random (version 4) UUID as 36 characters plus a NUL. */
void sl_rand_uuid(char out[37]);

#endif
