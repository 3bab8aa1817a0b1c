/**
 * Hashing, randomness and authenticated encryption for both planes, on
 * OpenSSL. API keys and admin tokens are kept as SHA-256 hashes; provider
 * secrets are sealed with AES-256-GCM (a fresh 96-bit nonce per seal; the
 * sealed form is nonce | ciphertext | tag). Keys are 32 bytes, given to
 * the programs as 64 hex characters or base64. Pure functions; any thread.
 */
#ifndef SL_CRYPTO_H
#define SL_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define SL_AEAD_KEY_LEN 32
#define SL_AEAD_NONCE_LEN 12
#define SL_AEAD_TAG_LEN 16
#define SL_AEAD_OVERHEAD (SL_AEAD_NONCE_LEN + SL_AEAD_TAG_LEN)
#define SL_SHA256_LEN 32
#define SL_KEY_ID_LEN 16 /* hex characters */

/** Fills buf from the CSPRNG. Returns 0 or SL_EINTERNAL. */
int sl_crypto_random(void *buf, size_t n);

void sl_sha256(const void *data, size_t n, uint8_t out[SL_SHA256_LEN]);

/** Writes 2n lower-case hex characters and a NUL to out. */
void sl_hex_encode(const void *data, size_t n, char *out);

/** Decodes exactly 2n hex characters into out. Returns 0 or SL_EINVAL. */
int sl_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t n);

/** Constant-time equality of two buffers of the same length (1 when equal). */
int sl_ct_eq(const void *a, const void *b, size_t n);

/**
 * Parses a 32-byte key written as 64 hex characters or as base64 (44
 * characters with padding), surrounding white space ignored. Returns 0 or
 * SL_EINVAL; never echoes the text in an error.
 */
int sl_key_parse(const char *text, uint8_t key[SL_AEAD_KEY_LEN]);

/** A key's public fingerprint: the first 8 bytes of SHA-256("sluice-key-id" | key), hex. */
void sl_key_id(const uint8_t key[SL_AEAD_KEY_LEN], char out[SL_KEY_ID_LEN + 1]);

/**
 * Seals n bytes with AES-256-GCM; aad (may be NULL) is authenticated, not
 * encrypted. out must hold n + SL_AEAD_OVERHEAD bytes. Returns 0 or
 * SL_EINTERNAL.
 */
int sl_aead_seal(const uint8_t key[SL_AEAD_KEY_LEN], const void *plain, size_t n, const void *aad,
                 size_t aadlen, uint8_t *out);

/**
 * Opens what sl_aead_seal produced (n bytes, at least SL_AEAD_OVERHEAD);
 * out must hold n - SL_AEAD_OVERHEAD bytes. Returns 0, or SL_EINVAL when
 * the input is too short or fails authentication (wrong key, altered bytes,
 * other aad): nothing in out is then meaningful.
 */
int sl_aead_open(const uint8_t key[SL_AEAD_KEY_LEN], const uint8_t *sealed, size_t n,
                 const void *aad, size_t aadlen, uint8_t *out);

#endif
