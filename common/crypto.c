#include "common/crypto.h"

#include <ctype.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "common/err.h"

int sl_crypto_random(void *buf, size_t n)
{
    if (n > (size_t)INT32_MAX || RAND_bytes(buf, (int)n) != 1)
        return SL_EINTERNAL;
    return 0;
}

void sl_sha256(const void *data, size_t n, uint8_t out[SL_SHA256_LEN])
{
    SHA256(data, n, out);
}

void sl_hex_encode(const void *data, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int sl_hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t n)
{
    if (hexlen != 2 * n)
        return SL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)hex[2 * i]), lo = hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return SL_EINVAL;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int sl_ct_eq(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

int sl_key_parse(const char *text, uint8_t key[SL_AEAD_KEY_LEN])
{
    if (text == NULL)
        return SL_EINVAL;
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    if (len == 2 * SL_AEAD_KEY_LEN)
        return sl_hex_decode(text, len, key, SL_AEAD_KEY_LEN);
    if (len == 44) {
        uint8_t tmp[36];
        int n = EVP_DecodeBlock(tmp, (const unsigned char *)text, (int)len);
        /* EVP_DecodeBlock counts the padding's zero bytes: 32 bytes take
         * 44 characters ending in one '='. */
        if (n != 33 || text[43] != '=' || text[42] == '=') {
            OPENSSL_cleanse(tmp, sizeof(tmp));
            return SL_EINVAL;
        }
        memcpy(key, tmp, SL_AEAD_KEY_LEN);
        OPENSSL_cleanse(tmp, sizeof(tmp));
        return 0;
    }
    return SL_EINVAL;
}

void sl_key_id(const uint8_t key[SL_AEAD_KEY_LEN], char out[SL_KEY_ID_LEN + 1])
{
    uint8_t buf[13 + SL_AEAD_KEY_LEN], md[SL_SHA256_LEN];
    memcpy(buf, "sluice-key-id", 13);
    memcpy(buf + 13, key, SL_AEAD_KEY_LEN);
    sl_sha256(buf, sizeof(buf), md);
    OPENSSL_cleanse(buf, sizeof(buf));
    sl_hex_encode(md, SL_KEY_ID_LEN / 2, out);
}

int sl_aead_seal(const uint8_t key[SL_AEAD_KEY_LEN], const void *plain, size_t n, const void *aad,
                 size_t aadlen, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    int len, ret = SL_EINTERNAL;

    if (n > (size_t)INT32_MAX - 64 || aadlen > (size_t)INT32_MAX)
        return SL_EINVAL;
    if (sl_crypto_random(out, SL_AEAD_NONCE_LEN) != 0)
        return SL_EINTERNAL;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        goto Exit;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, out) != 1)
        goto Exit;
    if (aadlen > 0 && EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1)
        goto Exit;
    if (n > 0 && EVP_EncryptUpdate(ctx, out + SL_AEAD_NONCE_LEN, &len, plain, (int)n) != 1)
        goto Exit;
    if (EVP_EncryptFinal_ex(ctx, out + SL_AEAD_NONCE_LEN + n, &len) != 1)
        goto Exit;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SL_AEAD_TAG_LEN,
                            out + SL_AEAD_NONCE_LEN + n) != 1)
        goto Exit;
    ret = 0;
Exit:
    EVP_CIPHER_CTX_free(ctx);
    return ret;
}

int sl_aead_open(const uint8_t key[SL_AEAD_KEY_LEN], const uint8_t *sealed, size_t n,
                 const void *aad, size_t aadlen, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = NULL;
    int len, ret = SL_EINVAL;

    if (n < SL_AEAD_OVERHEAD || n > (size_t)INT32_MAX || aadlen > (size_t)INT32_MAX)
        return SL_EINVAL;
    size_t clen = n - SL_AEAD_OVERHEAD;
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL)
        return SL_EINTERNAL;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, sealed) != 1)
        goto Exit;
    if (aadlen > 0 && EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1)
        goto Exit;
    if (clen > 0 &&
        EVP_DecryptUpdate(ctx, out, &len, sealed + SL_AEAD_NONCE_LEN, (int)clen) != 1)
        goto Exit;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SL_AEAD_TAG_LEN,
                            (void *)(sealed + SL_AEAD_NONCE_LEN + clen)) != 1)
        goto Exit;
    if (EVP_DecryptFinal_ex(ctx, out + clen, &len) != 1) {
        OPENSSL_cleanse(out, clen);
        goto Exit;
    }
    ret = 0;
Exit:
    EVP_CIPHER_CTX_free(ctx);
    return ret;
}
