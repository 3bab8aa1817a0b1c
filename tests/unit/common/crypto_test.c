/* common/crypto.c: SHA-256 and AES-256-GCM against published vectors,
 * sealing round trips, tampering, key parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/crypto.h"
#include "common/err.h"

static void test_sha256_vector(void **state)
{
    uint8_t md[SL_SHA256_LEN];
    char hex[65];
    sl_sha256("abc", 3, md);
    sl_hex_encode(md, sizeof(md), hex);
    /* FIPS 180-2, appendix B.1 */
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_hex(void **state)
{
    uint8_t out[4];
    assert_int_equal(sl_hex_decode("00ff7A10", 8, out, 4), 0);
    assert_memory_equal(out, "\x00\xff\x7a\x10", 4);
    assert_int_equal(sl_hex_decode("00ff7A1", 7, out, 4), SL_EINVAL);
    assert_int_equal(sl_hex_decode("00ff7A1g", 8, out, 4), SL_EINVAL);
}

static void test_ct_eq(void **state)
{
    assert_true(sl_ct_eq("abcd", "abcd", 4));
    assert_false(sl_ct_eq("abcd", "abce", 4));
}

/* NIST GCM test case 16 (AES-256, 96-bit IV, with AAD), in sealed form. */
static void test_gcm_vector(void **state)
{
    uint8_t key[32], iv[12], pt[60], aad[20], ct[60], tag[16], sealed[12 + 60 + 16], out[60];
    assert_int_equal(sl_hex_decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
                                   64, key, 32), 0);
    assert_int_equal(sl_hex_decode("cafebabefacedbaddecaf888", 24, iv, 12), 0);
    assert_int_equal(sl_hex_decode("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                                   "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
                                   120, pt, 60), 0);
    assert_int_equal(sl_hex_decode("feedfacedeadbeeffeedfacedeadbeefabaddad2", 40, aad, 20), 0);
    assert_int_equal(sl_hex_decode("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                                   "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
                                   120, ct, 60), 0);
    assert_int_equal(sl_hex_decode("76fc6ece0f4e1768cddf8853bb2d551b", 32, tag, 16), 0);
    memcpy(sealed, iv, 12);
    memcpy(sealed + 12, ct, 60);
    memcpy(sealed + 72, tag, 16);
    assert_int_equal(sl_aead_open(key, sealed, sizeof(sealed), aad, sizeof(aad), out), 0);
    assert_memory_equal(out, pt, 60);
    sealed[20] ^= 1;
    assert_int_equal(sl_aead_open(key, sealed, sizeof(sealed), aad, sizeof(aad), out), SL_EINVAL);
}

static void test_seal_roundtrip_and_tamper(void **state)
{
    uint8_t key[32], other[32], a[64 + SL_AEAD_OVERHEAD], b[64 + SL_AEAD_OVERHEAD], out[64];
    const char *msg = "{\"api_key\":\"sk-proj-0123456789abcdef0123456789abcdef\"}";
    size_t n = strlen(msg);
    memset(key, 7, sizeof(key));
    memset(other, 8, sizeof(other));
    assert_int_equal(sl_aead_seal(key, msg, n, "vk:1", 4, a), 0);
    assert_int_equal(sl_aead_seal(key, msg, n, "vk:1", 4, b), 0);
    /* a fresh nonce each time */
    assert_memory_not_equal(a, b, n + SL_AEAD_OVERHEAD);
    assert_int_equal(sl_aead_open(key, a, n + SL_AEAD_OVERHEAD, "vk:1", 4, out), 0);
    assert_memory_equal(out, msg, n);
    /* another row's aad, another key, a flipped bit, a cut: all refused */
    assert_int_equal(sl_aead_open(key, a, n + SL_AEAD_OVERHEAD, "vk:2", 4, out), SL_EINVAL);
    assert_int_equal(sl_aead_open(other, a, n + SL_AEAD_OVERHEAD, "vk:1", 4, out), SL_EINVAL);
    a[n + SL_AEAD_OVERHEAD - 1] ^= 0x80;
    assert_int_equal(sl_aead_open(key, a, n + SL_AEAD_OVERHEAD, "vk:1", 4, out), SL_EINVAL);
    assert_int_equal(sl_aead_open(key, a, SL_AEAD_OVERHEAD - 1, "vk:1", 4, out), SL_EINVAL);
    /* empty plaintext */
    assert_int_equal(sl_aead_seal(key, "", 0, NULL, 0, a), 0);
    assert_int_equal(sl_aead_open(key, a, SL_AEAD_OVERHEAD, NULL, 0, out), 0);
}

static void test_key_parse(void **state)
{
    uint8_t key[32];
    char id[SL_KEY_ID_LEN + 1], id2[SL_KEY_ID_LEN + 1];
    assert_int_equal(sl_key_parse(" 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
                                  key), 0);
    assert_int_equal(key[31], 0x1f);
    uint8_t key2[32];
    /* the same 32 bytes in base64 */
    assert_int_equal(sl_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", key2), 0);
    assert_memory_equal(key, key2, 32);
    assert_int_equal(sl_key_parse("short", key), SL_EINVAL);
    assert_int_equal(sl_key_parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh==", key), SL_EINVAL);
    assert_int_equal(sl_key_parse("zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                                  key), SL_EINVAL);
    assert_int_equal(sl_key_parse(NULL, key), SL_EINVAL);
    sl_key_id(key, id);
    key[0] ^= 1;
    sl_key_id(key, id2);
    assert_int_equal(strlen(id), SL_KEY_ID_LEN);
    assert_string_not_equal(id, id2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vector), cmocka_unit_test(test_hex),
        cmocka_unit_test(test_ct_eq),         cmocka_unit_test(test_gcm_vector),
        cmocka_unit_test(test_seal_roundtrip_and_tamper), cmocka_unit_test(test_key_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
