/* Ids, secrets, sealing with the master key, bytea texts. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "controlplane/api/api.h"

void cp_new_id(const char *prefix, char *out, size_t outsz)
{
    struct timeval tv;
    uint8_t rnd[8];
    char hex[17];
    gettimeofday(&tv, NULL);
    unsigned long long ms = (unsigned long long)tv.tv_sec * 1000ull + (unsigned long long)tv.tv_usec / 1000ull;
    if (sl_crypto_random(rnd, sizeof(rnd)) != 0)
        memset(rnd, 0, sizeof(rnd));
    sl_hex_encode(rnd, sizeof(rnd), hex);
    snprintf(out, outsz, "%s_%012llx%s", prefix, ms & 0xffffffffffffull, hex);
}

void cp_secret_hint(const char *secret, char *hint, size_t hintsz)
{
    size_t n = strlen(secret);
    if (n < 16) {
        snprintf(hint, hintsz, "****");
        return;
    }
    /* Keep a recognisable prefix ("sk-sluice-", "sk-proj-") up to its last
     * '-' and the last four characters, never more than half the secret
     * in all (a long key shows 14 of its characters at most). */
    size_t pre = 0, most = n / 2 - 4 < 10 ? n / 2 - 4 : 10;
    for (size_t i = 0; i < n && i < most; i++)
        if (secret[i] == '-')
            pre = i + 1;
    if (pre == 0)
        pre = most < 3 ? most : 3;
    snprintf(hint, hintsz, "%.*s...%s", (int)pre, secret, secret + n - 4);
}

void cp_hash_secret(const char *secret, char hash_hex[65])
{
    uint8_t md[SL_SHA256_LEN];
    sl_sha256(secret, strlen(secret), md);
    sl_hex_encode(md, sizeof(md), hash_hex);
}

void cp_new_secret(const char *prefix, char *secret, size_t secretsz, char hash_hex[65],
                   char *hint, size_t hintsz)
{
    uint8_t rnd[32];
    char hex[65];
    SL_ASSERT(sl_crypto_random(rnd, sizeof(rnd)) == 0);
    sl_hex_encode(rnd, sizeof(rnd), hex);
    snprintf(secret, secretsz, "%s%s", prefix, hex);
    cp_hash_secret(secret, hash_hex);
    cp_secret_hint(secret, hint, hintsz);
}

/* Sealed form stored in Postgres: the master key's id (16 hex characters)
 * then nonce | ciphertext | tag, so that a rotation can tell which rows it
 * has re-sealed. */
int cp_seal(cp_app_t *app, const void *plain, size_t n, const char *aad, uint8_t **out,
            size_t *outlen)
{
    uint8_t *buf = sl_xmalloc(SL_KEY_ID_LEN + n + SL_AEAD_OVERHEAD);
    memcpy(buf, app->master_key_id, SL_KEY_ID_LEN);
    if (sl_aead_seal(app->master_key, plain, n, aad, strlen(aad), buf + SL_KEY_ID_LEN) != 0) {
        sl_free(buf);
        return SL_EINTERNAL;
    }
    *out = buf;
    *outlen = SL_KEY_ID_LEN + n + SL_AEAD_OVERHEAD;
    return 0;
}

int cp_open(cp_app_t *app, const uint8_t *sealed, size_t n, const char *aad, uint8_t **out,
            size_t *outlen)
{
    if (n < SL_KEY_ID_LEN + SL_AEAD_OVERHEAD ||
        memcmp(sealed, app->master_key_id, SL_KEY_ID_LEN) != 0)
        return SL_EINVAL;
    size_t plen = n - SL_KEY_ID_LEN - SL_AEAD_OVERHEAD;
    uint8_t *buf = sl_xmalloc(plen + 1);
    if (sl_aead_open(app->master_key, sealed + SL_KEY_ID_LEN, n - SL_KEY_ID_LEN, aad, strlen(aad),
                     buf) != 0) {
        sl_free(buf);
        return SL_EINVAL;
    }
    buf[plen] = 0;
    *out = buf;
    *outlen = plen;
    return 0;
}

char *cp_bytea_hex(const uint8_t *p, size_t n)
{
    char *s = sl_xmalloc(2 * n + 3);
    s[0] = '\\';
    s[1] = 'x';
    sl_hex_encode(p, n, s + 2);
    return s;
}

uint8_t *cp_bytea_parse(const char *text, size_t *n)
{
    if (strncmp(text, "\\x", 2) != 0)
        return NULL;
    size_t hl = strlen(text + 2);
    uint8_t *out = sl_xmalloc(hl / 2 + 1);
    if (hl % 2 != 0 || sl_hex_decode(text + 2, hl, out, hl / 2) != 0) {
        sl_free(out);
        return NULL;
    }
    *n = hl / 2;
    return out;
}
