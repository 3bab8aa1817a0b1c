/*
 * Tests for proto/proto.c: round trips of every message type, the key
 * handling against RFC 8032, signature and hash checks, and the refusal
 * (with its reason, without a crash) of malformed input: wrong magic,
 * other protocol versions, truncation at every length, trailing bytes,
 * oversized claimed lengths, wrong field types, nesting. The .c file is
 * included to reach its static signing helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "proto/proto.c"

static const char *SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
static const char *SEED_B64 = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
static const char *PUB_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
static const char *SIG_HEX = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555f"
                             "b8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

#define BUF_MAX (1u << 20)

static sl_proto_signer_t *signer;     /* the RFC 8032 key */
static sl_proto_verifier_t *verifier; /* its public key */
static sl_proto_signer_t *other;      /* another key */

static int setup(void **state)
{
    uint8_t seed[32], pub[32];
    assert_int_equal(sl_key_parse(SEED_HEX, seed), 0);
    signer = sl_proto_signer_new(seed);
    assert_non_null(signer);
    sl_proto_signer_public(signer, pub);
    verifier = sl_proto_verifier_new(pub);
    assert_non_null(verifier);
    memset(seed, 0x42, sizeof(seed));
    other = sl_proto_signer_new(seed);
    assert_non_null(other);
    return 0;
}

static int teardown(void **state)
{
    sl_proto_signer_free(signer);
    sl_proto_signer_free(other);
    sl_proto_verifier_free(verifier);
    return 0;
}

/* Decodes from an exact-size heap copy, so that ASan sees any read past
 * the input; the payload is checked to lie in the copy, then cleared
 * (it would dangle). */
static int decode_copy(const void *p, size_t n, const sl_proto_verifier_t *v, sl_msg_t *m,
                       const char **why)
{
    uint8_t *copy = sl_xmalloc(n > 0 ? n : 1);
    if (n > 0)
        memcpy(copy, p, n);
    int rc = sl_proto_decode(n > 0 ? copy : NULL, n, v, m, why);
    if (rc == 0 && m->payload != NULL) {
        assert_true(m->payload >= copy && m->payload + m->payload_len <= copy + n);
        m->payload = NULL;
    }
    sl_free(copy);
    return rc;
}

static void expect_refused(const void *p, size_t n, const char *reason)
{
    sl_msg_t m;
    const char *why = NULL;
    int rc = decode_copy(p, n, verifier, &m, &why);
    if (rc != SL_EINVAL || why == NULL || strcmp(why, reason) != 0)
        fail_msg("expected \"%s\", got rc %d \"%s\"", reason, rc, why ? why : "(null)");
    /* Nothing of a refused message is left in out. */
    sl_msg_t zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&m, &zero, sizeof(m));
}

/* ---- hand-built messages -------------------------------------------------- */

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} mb_t;

static void mb_init(mb_t *m)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
}

static void mb_dispose(mb_t *m)
{
    msgpack_sbuffer_destroy(&m->sb);
}

static void mb_str(mb_t *m, const char *s)
{
    msgpack_pack_str(&m->pk, strlen(s));
    msgpack_pack_str_body(&m->pk, s, strlen(s));
}

static void mb_bin(mb_t *m, const void *p, size_t n)
{
    msgpack_pack_bin(&m->pk, n);
    msgpack_pack_bin_body(&m->pk, p, n);
}

static void mb_head(mb_t *m, const char *magic, uint64_t version, uint64_t type, size_t nfields)
{
    msgpack_pack_array(&m->pk, 4);
    mb_str(m, magic);
    msgpack_pack_uint64(&m->pk, version);
    msgpack_pack_uint64(&m->pk, type);
    msgpack_pack_map(&m->pk, nfields);
}

/* A SNAPSHOT/DELTA body whose signature covers sign_type, v and prev as
 * given (which may differ from what the envelope says). */
static void mb_signed(mb_t *m, int type, int sign_type, uint64_t v, uint64_t prev,
                      const sl_proto_signer_t *s, const void *payload, size_t n)
{
    uint8_t hash[32], sig[64], msg[SIGNED_LEN];
    sl_sha256(payload, n, hash);
    signed_bytes(msg, sign_type, v, prev, hash);
    assert_int_equal(ed_sign(s->pkey, msg, sizeof(msg), sig), 0);
    mb_head(m, MAGIC, 1, (uint64_t)type, 5);
    mb_str(m, "v");
    msgpack_pack_uint64(&m->pk, v);
    mb_str(m, "prev");
    msgpack_pack_uint64(&m->pk, prev);
    mb_str(m, "hash");
    mb_bin(m, hash, 32);
    mb_str(m, "sig");
    mb_bin(m, sig, 64);
    mb_str(m, "payload");
    mb_bin(m, payload, n);
}

/* ---- keys ------------------------------------------------------------------- */

static void rfc8032_vector1(void **state)
{
    uint8_t seed[32], seed2[32], pub[32], want_pub[32], want_sig[64], sig[64];

    assert_int_equal(sl_key_parse(SEED_HEX, seed), 0);
    assert_int_equal(sl_key_parse(SEED_B64, seed2), 0);
    assert_memory_equal(seed, seed2, 32);
    assert_int_equal(sl_hex_decode(PUB_HEX, 64, want_pub, 32), 0);
    assert_int_equal(sl_hex_decode(SIG_HEX, 128, want_sig, 64), 0);

    sl_proto_signer_t *s = sl_proto_signer_new(seed2);
    assert_non_null(s);
    sl_proto_signer_public(s, pub);
    assert_memory_equal(pub, want_pub, 32);
    /* TEST 1: the empty message. */
    assert_int_equal(ed_sign(s->pkey, "", 0, sig), 0);
    assert_memory_equal(sig, want_sig, 64);

    sl_proto_verifier_t *v = sl_proto_verifier_new(want_pub);
    assert_non_null(v);
    assert_true(ed_verify(v->pkey, "", 0, want_sig));
    want_sig[0] ^= 1;
    assert_false(ed_verify(v->pkey, "", 0, want_sig));
    want_sig[0] ^= 1;
    assert_false(ed_verify(v->pkey, "x", 1, want_sig));

    sl_proto_verifier_free(v);
    sl_proto_signer_free(s);
    sl_proto_signer_free(NULL);
    sl_proto_verifier_free(NULL);
    assert_null(sl_proto_signer_new(NULL));
    assert_null(sl_proto_verifier_new(NULL));
}

static void signed_layout(void **state)
{
    uint8_t hash[32], out[SIGNED_LEN];
    for (int i = 0; i < 32; i++)
        hash[i] = (uint8_t)i;
    signed_bytes(out, SL_MSG_DELTA, 0x0102030405060708ull, 0x1112131415161718ull, hash);
    assert_int_equal(sizeof(out), 68);
    assert_memory_equal(out, "sluice-snapshot-v1\0", 19);
    assert_int_equal(out[19], 2);
    assert_memory_equal(out + 20, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
    assert_memory_equal(out + 28, "\x11\x12\x13\x14\x15\x16\x17\x18", 8);
    assert_memory_equal(out + 36, hash, 32);
}

/* ---- round trips -------------------------------------------------------------- */

static void roundtrip_snapshot(void **state)
{
    static const char payload[] = "\x81\xa4keys\x90 any opaque bytes \0 with a NUL";
    uint8_t want_hash[32];
    sl_buf_t b;
    sl_msg_t m;
    const char *why = "unset";

    sl_buf_init(&b, BUF_MAX);
    assert_int_equal(
        sl_proto_encode_snapshot(&b, SL_MSG_SNAPSHOT, 7, 0, payload, sizeof(payload), signer), 0);
    assert_int_equal(sl_proto_decode(b.base, b.len, verifier, &m, &why), 0);
    assert_null(why);
    assert_int_equal(m.type, SL_MSG_SNAPSHOT);
    assert_int_equal(m.version, 7);
    assert_int_equal(m.prev, 0);
    sl_sha256(payload, sizeof(payload), want_hash);
    assert_memory_equal(m.hash, want_hash, 32);
    assert_int_equal(m.payload_len, sizeof(payload));
    assert_memory_equal(m.payload, payload, sizeof(payload));
    /* Borrowed: the payload is the tail of the message itself. */
    assert_ptr_equal(m.payload, (const uint8_t *)b.base + b.len - sizeof(payload));
    /* Ed25519 is deterministic: the same message encodes the same. */
    sl_buf_t b2;
    sl_buf_init(&b2, BUF_MAX);
    assert_int_equal(
        sl_proto_encode_snapshot(&b2, SL_MSG_SNAPSHOT, 7, 0, payload, sizeof(payload), signer), 0);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.base, b2.base, b.len);
    sl_buf_dispose(&b2);
    sl_buf_dispose(&b);
}

static void roundtrip_delta_and_empty_payload(void **state)
{
    sl_buf_t b;
    sl_msg_t m;
    const char *why;
    uint8_t empty_hash[32];

    sl_buf_init(&b, BUF_MAX);
    assert_int_equal(sl_proto_encode_snapshot(&b, SL_MSG_DELTA, 9, 8, NULL, 0, signer), 0);
    assert_int_equal(sl_proto_decode(b.base, b.len, verifier, &m, &why), 0);
    assert_int_equal(m.type, SL_MSG_DELTA);
    assert_int_equal(m.version, 9);
    assert_int_equal(m.prev, 8);
    assert_int_equal(m.payload_len, 0);
    assert_non_null(m.payload);
    sl_sha256("", 0, empty_hash);
    assert_memory_equal(m.hash, empty_hash, 32);
    sl_buf_dispose(&b);

    /* A big payload takes bin 32. */
    size_t big = 70000;
    uint8_t *p = sl_xmalloc(big);
    for (size_t i = 0; i < big; i++)
        p[i] = (uint8_t)(i * 31);
    sl_buf_init(&b, BUF_MAX);
    assert_int_equal(
        sl_proto_encode_snapshot(&b, SL_MSG_DELTA, UINT64_MAX, UINT64_MAX - 1, p, big, signer), 0);
    assert_int_equal(decode_copy(b.base, b.len, verifier, &m, &why), 0);
    assert_int_equal(m.version, UINT64_MAX);
    assert_int_equal(m.prev, UINT64_MAX - 1);
    assert_int_equal(m.payload_len, big);
    sl_free(p);
    sl_buf_dispose(&b);
}

static void roundtrip_others(void **state)
{
    uint8_t hash[32];
    sl_buf_t b;
    sl_msg_t m;
    const char *why;

    for (int i = 0; i < 32; i++)
        hash[i] = (uint8_t)(0xa0 + i);
    sl_buf_init(&b, BUF_MAX);

    assert_int_equal(sl_proto_encode_announce(&b, 42, hash), 0);
    /* Unsigned types need no verifier. */
    assert_int_equal(decode_copy(b.base, b.len, NULL, &m, &why), 0);
    assert_int_equal(m.type, SL_MSG_ANNOUNCE);
    assert_int_equal(m.version, 42);
    assert_memory_equal(m.hash, hash, 32);
    assert_null(m.payload);

    sl_buf_reset(&b);
    assert_int_equal(sl_proto_encode_request(&b, "gw-eu-1", 0), 0);
    assert_int_equal(decode_copy(b.base, b.len, verifier, &m, &why), 0);
    assert_int_equal(m.type, SL_MSG_SNAPSHOT_REQUEST);
    assert_string_equal(m.node, "gw-eu-1");
    assert_int_equal(m.version, 0);

    sl_buf_reset(&b);
    assert_int_equal(
        sl_proto_encode_hello(&b, "gw-eu-1", "0.4.0", "10.0.0.7:8787", 12, "nt_secret"), 0);
    assert_int_equal(decode_copy(b.base, b.len, NULL, &m, &why), 0);
    assert_int_equal(m.type, SL_MSG_HELLO);
    assert_string_equal(m.node, "gw-eu-1");
    assert_string_equal(m.software, "0.4.0");
    assert_string_equal(m.addr, "10.0.0.7:8787");
    assert_string_equal(m.token, "nt_secret");
    assert_int_equal(m.version, 12);

    sl_buf_reset(&b);
    assert_int_equal(sl_proto_encode_hello_ack(&b, 1, NULL), 0);
    assert_int_equal(decode_copy(b.base, b.len, NULL, &m, &why), 0);
    assert_int_equal(m.type, SL_MSG_HELLO_ACK);
    assert_int_equal(m.ok, 1);
    assert_string_equal(m.reason, "");

    sl_buf_reset(&b);
    assert_int_equal(sl_proto_encode_hello_ack(&b, 0, "unknown node token"), 0);
    assert_int_equal(decode_copy(b.base, b.len, NULL, &m, &why), 0);
    assert_int_equal(m.ok, 0);
    assert_string_equal(m.reason, "unknown node token");

    /* Longest strings that fit. */
    char node[128], sw[64], reason[160];
    memset(node, 'n', sizeof(node) - 1);
    node[sizeof(node) - 1] = '\0';
    memset(sw, 's', sizeof(sw) - 1);
    sw[sizeof(sw) - 1] = '\0';
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    sl_buf_reset(&b);
    assert_int_equal(sl_proto_encode_hello(&b, node, sw, node, 1, node), 0);
    assert_int_equal(decode_copy(b.base, b.len, NULL, &m, &why), 0);
    assert_string_equal(m.node, node);
    assert_string_equal(m.software, sw);
    assert_string_equal(m.addr, node);
    assert_string_equal(m.token, node);
    sl_buf_reset(&b);
    assert_int_equal(sl_proto_encode_hello_ack(&b, 0, reason), 0);
    assert_int_equal(decode_copy(b.base, b.len, NULL, &m, &why), 0);
    assert_string_equal(m.reason, reason);

    /* Encoders append: two messages in one buffer, the second decodable. */
    sl_buf_reset(&b);
    assert_int_equal(sl_proto_encode_request(&b, "a", 1), 0);
    size_t first = b.len;
    assert_int_equal(sl_proto_encode_request(&b, "b", 2), 0);
    assert_int_equal(decode_copy(b.base + first, b.len - first, NULL, &m, &why), 0);
    assert_string_equal(m.node, "b");
    expect_refused(b.base, b.len, "trailing bytes");
    sl_buf_dispose(&b);
}

static void type_names(void **state)
{
    assert_string_equal(sl_proto_type_name(SL_MSG_SNAPSHOT), "SNAPSHOT");
    assert_string_equal(sl_proto_type_name(SL_MSG_HELLO_ACK), "HELLO_ACK");
    assert_string_equal(sl_proto_type_name(0), "unknown");
    assert_string_equal(sl_proto_type_name(7), "unknown");
}

/* ---- encoder arguments ---------------------------------------------------------- */

static void encoder_refusals(void **state)
{
    uint8_t hash[32] = {0};
    char long_node[129];
    sl_buf_t b;

    memset(long_node, 'x', 128);
    long_node[128] = '\0';
    sl_buf_init(&b, BUF_MAX);
    assert_int_equal(sl_proto_encode_snapshot(&b, SL_MSG_ANNOUNCE, 1, 0, "x", 1, signer),
                     SL_EINVAL);
    assert_int_equal(sl_proto_encode_snapshot(&b, SL_MSG_SNAPSHOT, 0, 0, "x", 1, signer),
                     SL_EINVAL);
    assert_int_equal(sl_proto_encode_snapshot(&b, SL_MSG_SNAPSHOT, 2, 1, "x", 1, signer),
                     SL_EINVAL);
    assert_int_equal(sl_proto_encode_snapshot(&b, SL_MSG_DELTA, 2, 2, "x", 1, signer), SL_EINVAL);
    assert_int_equal(sl_proto_encode_snapshot(&b, SL_MSG_DELTA, 2, 0, "x", 1, signer), SL_EINVAL);
    assert_int_equal(sl_proto_encode_snapshot(&b, SL_MSG_SNAPSHOT, 1, 0, "x", 1, NULL), SL_EINVAL);
    assert_int_equal(sl_proto_encode_snapshot(&b, SL_MSG_SNAPSHOT, 1, 0, NULL, 1, signer),
                     SL_EINVAL);
    assert_int_equal(sl_proto_encode_announce(&b, 1, NULL), SL_EINVAL);
    assert_int_equal(sl_proto_encode_request(&b, "", 1), SL_EINVAL);
    assert_int_equal(sl_proto_encode_request(&b, NULL, 1), SL_EINVAL);
    assert_int_equal(sl_proto_encode_request(&b, long_node, 1), SL_EINVAL);
    assert_int_equal(sl_proto_encode_hello(&b, "n", "v", "a", 1, long_node), SL_EINVAL);
    assert_int_equal(sl_proto_encode_hello(&b, "n", "v", long_node, 1, "t"), SL_EINVAL);
    assert_int_equal(sl_proto_encode_hello(&b, "n", long_node + 64, "a", 1, "t"), SL_EINVAL);
    assert_int_equal(sl_proto_encode_hello(&b, "n", NULL, "a", 1, "t"), SL_EINVAL);
    assert_int_equal(sl_proto_encode_hello_ack(&b, 0, long_node), 0); /* 128 < 160 */
    sl_buf_reset(&b);
    char long_reason[161];
    memset(long_reason, 'r', 160);
    long_reason[160] = '\0';
    assert_int_equal(sl_proto_encode_hello_ack(&b, 0, long_reason), SL_EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(sl_proto_encode_announce(&b, 1, hash), 0);
    sl_buf_dispose(&b);

    /* The buffer's cap: the failed message is taken back out. */
    uint8_t payload[200] = {1};
    sl_buf_init(&b, 100);
    assert_int_equal(sl_proto_encode_request(&b, "a", 1), 0);
    size_t before = b.len;
    assert_int_equal(
        sl_proto_encode_snapshot(&b, SL_MSG_SNAPSHOT, 1, 0, payload, sizeof(payload), signer),
        SL_ETOOBIG);
    assert_int_equal(b.len, before);
    sl_buf_dispose(&b);
}

static void message_too_large(void **state)
{
    size_t n = (size_t)SL_PROTO_MAX_MSG + 1;
    uint8_t *big = sl_xcalloc(n, 1);
    sl_buf_t b;
    sl_msg_t m;
    const char *why;

    sl_buf_init(&b, (size_t)2 * SL_PROTO_MAX_MSG);
    assert_int_equal(sl_proto_encode_snapshot(&b, SL_MSG_SNAPSHOT, 1, 0, big, n, signer),
                     SL_ETOOBIG);
    /* A payload that fits alone but not with the envelope around it. */
    assert_int_equal(sl_proto_encode_snapshot(&b, SL_MSG_SNAPSHOT, 1, 0, big, n - 1, signer),
                     SL_ETOOBIG);
    assert_int_equal(b.len, 0);
    assert_int_equal(sl_proto_decode(big, n, verifier, &m, &why), SL_EINVAL);
    assert_string_equal(why, "message too large");
    sl_buf_dispose(&b);
    sl_free(big);
}

/* ---- signatures and hashes ----------------------------------------------------- */

static void signature_checks(void **state)
{
    static const char payload[] = "snapshot content";
    sl_buf_t b;
    sl_msg_t m;
    const char *why;

    /* Signed by another key. */
    sl_buf_init(&b, BUF_MAX);
    assert_int_equal(
        sl_proto_encode_snapshot(&b, SL_MSG_SNAPSHOT, 3, 0, payload, sizeof(payload), other), 0);
    expect_refused(b.base, b.len, "bad signature");

    /* One flipped bit in the payload (the message's last bytes). */
    sl_buf_reset(&b);
    assert_int_equal(
        sl_proto_encode_snapshot(&b, SL_MSG_SNAPSHOT, 3, 0, payload, sizeof(payload), signer), 0);
    assert_int_equal(decode_copy(b.base, b.len, verifier, &m, &why), 0);
    for (size_t bit = 0; bit < 8 * sizeof(payload); bit += 13) {
        b.base[b.len - sizeof(payload) + bit / 8] ^= (char)(1 << (bit % 8));
        expect_refused(b.base, b.len, "payload hash mismatch");
        b.base[b.len - sizeof(payload) + bit / 8] ^= (char)(1 << (bit % 8));
    }

    /* Any flipped bit of the hash or the signature: both are bin fields
     * found by their key. */
    const char *h = memmem(b.base, b.len, "\xa4hash\xc4\x20", 7);
    assert_non_null(h);
    size_t hoff = (size_t)(h - b.base) + 7;
    for (size_t i = 0; i < 32; i++) {
        b.base[hoff + i] ^= 0x10;
        expect_refused(b.base, b.len, "bad signature");
        b.base[hoff + i] ^= 0x10;
    }
    const char *s = memmem(b.base, b.len, "\xa3sig\xc4\x40", 6);
    assert_non_null(s);
    size_t soff = (size_t)(s - b.base) + 6;
    for (size_t i = 0; i < 64; i++) {
        b.base[soff + i] ^= 0x01;
        expect_refused(b.base, b.len, "bad signature");
        b.base[soff + i] ^= 0x01;
    }
    assert_int_equal(decode_copy(b.base, b.len, verifier, &m, &why), 0);

    /* Signed data requires a verifier. */
    assert_int_equal(decode_copy(b.base, b.len, NULL, &m, &why), SL_EINVAL);
    assert_string_equal(why, "no verifier for a signed message");
    sl_buf_dispose(&b);

    /* The signature covers type, v and prev. */
    mb_t mb;
    mb_init(&mb);
    mb_signed(&mb, SL_MSG_DELTA, SL_MSG_SNAPSHOT, 5, 3, signer, "p", 1);
    expect_refused(mb.sb.data, mb.sb.size, "bad signature");
    mb_dispose(&mb);
    mb_init(&mb);
    mb_signed(&mb, SL_MSG_DELTA, SL_MSG_DELTA, 5, 3, signer, "p", 1);
    assert_int_equal(decode_copy(mb.sb.data, mb.sb.size, verifier, &m, &why), 0);
    mb_dispose(&mb);

    /* Version rules, checked before the signature. */
    mb_init(&mb);
    mb_signed(&mb, SL_MSG_SNAPSHOT, SL_MSG_SNAPSHOT, 5, 3, signer, "p", 1);
    expect_refused(mb.sb.data, mb.sb.size, "snapshot with nonzero prev");
    mb_dispose(&mb);
    mb_init(&mb);
    mb_signed(&mb, SL_MSG_DELTA, SL_MSG_DELTA, 5, 5, signer, "p", 1);
    expect_refused(mb.sb.data, mb.sb.size, "delta prev not between 1 and v - 1");
    mb_dispose(&mb);
    mb_init(&mb);
    mb_signed(&mb, SL_MSG_DELTA, SL_MSG_DELTA, 5, 0, signer, "p", 1);
    expect_refused(mb.sb.data, mb.sb.size, "delta prev not between 1 and v - 1");
    mb_dispose(&mb);
    mb_init(&mb);
    mb_signed(&mb, SL_MSG_SNAPSHOT, SL_MSG_SNAPSHOT, 0, 0, signer, "p", 1);
    expect_refused(mb.sb.data, mb.sb.size, "version 0 is reserved");
    mb_dispose(&mb);
}

/* ---- envelope refusals ------------------------------------------------------------ */

static void envelope_refusals(void **state)
{
    mb_t mb;

    mb_init(&mb);
    mb_head(&mb, "SLUICX", 1, SL_MSG_SNAPSHOT_REQUEST, 0);
    expect_refused(mb.sb.data, mb.sb.size, "bad magic");
    mb_dispose(&mb);

    mb_init(&mb);
    mb_head(&mb, "sluice", 1, SL_MSG_SNAPSHOT_REQUEST, 0);
    expect_refused(mb.sb.data, mb.sb.size, "bad magic");
    mb_dispose(&mb);

    mb_init(&mb);
    mb_head(&mb, "SLUICE", 2, SL_MSG_SNAPSHOT_REQUEST, 0);
    expect_refused(mb.sb.data, mb.sb.size, "unsupported protocol version 2");
    mb_dispose(&mb);

    mb_init(&mb);
    mb_head(&mb, "SLUICE", 0, SL_MSG_SNAPSHOT_REQUEST, 0);
    expect_refused(mb.sb.data, mb.sb.size, "unsupported protocol version 0");
    mb_dispose(&mb);

    mb_init(&mb);
    mb_head(&mb, "SLUICE", 1000, SL_MSG_SNAPSHOT_REQUEST, 0);
    expect_refused(mb.sb.data, mb.sb.size, "unsupported protocol version (10 or higher)");
    mb_dispose(&mb);

    /* A version-2 envelope of another shape still names its version. */
    mb_init(&mb);
    msgpack_pack_array(&mb.pk, 2);
    mb_str(&mb, "SLUICE");
    msgpack_pack_uint64(&mb.pk, 2);
    expect_refused(mb.sb.data, mb.sb.size, "unsupported protocol version 2");
    mb_dispose(&mb);

    mb_init(&mb);
    msgpack_pack_array(&mb.pk, 3);
    mb_str(&mb, "SLUICE");
    msgpack_pack_uint64(&mb.pk, 1);
    msgpack_pack_uint64(&mb.pk, 3);
    expect_refused(mb.sb.data, mb.sb.size, "message is not an array of 4 elements");
    mb_dispose(&mb);

    mb_init(&mb);
    msgpack_pack_array(&mb.pk, 1);
    mb_str(&mb, "SLUICE");
    expect_refused(mb.sb.data, mb.sb.size, "bad protocol version");
    mb_dispose(&mb);

    mb_init(&mb);
    msgpack_pack_array(&mb.pk, 0);
    expect_refused(mb.sb.data, mb.sb.size, "bad magic");
    mb_dispose(&mb);

    mb_init(&mb);
    msgpack_pack_array(&mb.pk, 4);
    msgpack_pack_uint64(&mb.pk, 1); /* magic of the wrong type */
    msgpack_pack_uint64(&mb.pk, 1);
    msgpack_pack_uint64(&mb.pk, 3);
    msgpack_pack_map(&mb.pk, 0);
    expect_refused(mb.sb.data, mb.sb.size, "bad magic");
    mb_dispose(&mb);

    mb_init(&mb);
    msgpack_pack_array(&mb.pk, 4);
    mb_str(&mb, "SLUICE");
    mb_str(&mb, "1"); /* version as a string */
    msgpack_pack_uint64(&mb.pk, 3);
    msgpack_pack_map(&mb.pk, 0);
    expect_refused(mb.sb.data, mb.sb.size, "bad protocol version");
    mb_dispose(&mb);

    mb_init(&mb);
    msgpack_pack_array(&mb.pk, 4);
    mb_str(&mb, "SLUICE");
    msgpack_pack_int64(&mb.pk, -1);
    msgpack_pack_uint64(&mb.pk, 3);
    msgpack_pack_map(&mb.pk, 0);
    expect_refused(mb.sb.data, mb.sb.size, "bad protocol version");
    mb_dispose(&mb);

    static const uint64_t bad_types[] = {0, 7, 255, 65536, UINT64_MAX};
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        mb_init(&mb);
        mb_head(&mb, "SLUICE", 1, bad_types[i], 0);
        expect_refused(mb.sb.data, mb.sb.size, "unknown message type");
        mb_dispose(&mb);
    }

    mb_init(&mb);
    msgpack_pack_array(&mb.pk, 4);
    mb_str(&mb, "SLUICE");
    msgpack_pack_uint64(&mb.pk, 1);
    mb_str(&mb, "3");
    msgpack_pack_map(&mb.pk, 0);
    expect_refused(mb.sb.data, mb.sb.size, "unknown message type");
    mb_dispose(&mb);

    mb_init(&mb);
    msgpack_pack_array(&mb.pk, 4);
    mb_str(&mb, "SLUICE");
    msgpack_pack_uint64(&mb.pk, 1);
    msgpack_pack_uint64(&mb.pk, 3);
    msgpack_pack_array(&mb.pk, 0);
    expect_refused(mb.sb.data, mb.sb.size, "body is not a map");
    mb_dispose(&mb);

    /* Not an array at all. */
    mb_init(&mb);
    msgpack_pack_map(&mb.pk, 0);
    expect_refused(mb.sb.data, mb.sb.size, "message is not an array");
    mb_dispose(&mb);
    expect_refused("\x01", 1, "message is not an array");
    expect_refused("\xc1", 1, "malformed msgpack");
    expect_refused("\x94\xa6SLUICE\x01\x03\xc1", 11, "malformed msgpack");
    expect_refused("", 0, "truncated message");
}

/* Every prefix of every kind of message is "truncated", every extension
 * "trailing bytes". */
static void truncation_and_trailing(void **state)
{
    static const char payload[] = "0123456789";
    uint8_t hash[32] = {9};
    sl_buf_t b[6];
    for (int i = 0; i < 6; i++)
        sl_buf_init(&b[i], BUF_MAX);
    assert_int_equal(sl_proto_encode_snapshot(&b[0], SL_MSG_SNAPSHOT, 1, 0, payload, 10, signer),
                     0);
    assert_int_equal(sl_proto_encode_snapshot(&b[1], SL_MSG_DELTA, 2, 1, payload, 10, signer), 0);
    assert_int_equal(sl_proto_encode_announce(&b[2], 2, hash), 0);
    assert_int_equal(sl_proto_encode_request(&b[3], "node", 1), 0);
    assert_int_equal(sl_proto_encode_hello(&b[4], "node", "1.0", "h:1", 1, "tok"), 0);
    assert_int_equal(sl_proto_encode_hello_ack(&b[5], 1, "fine"), 0);

    for (int i = 0; i < 6; i++) {
        sl_msg_t m;
        const char *why;
        assert_int_equal(decode_copy(b[i].base, b[i].len, verifier, &m, &why), 0);
        for (size_t k = 0; k < b[i].len; k++)
            expect_refused(b[i].base, k, "truncated message");
        static const char *const tails[] = {"\x00", "\xc0", "\x94", "\xff\xff"};
        for (size_t t = 0; t < 4; t++) {
            size_t tl = strlen(tails[t]) > 0 ? strlen(tails[t]) : 1;
            assert_int_equal(sl_buf_append(&b[i], tails[t], tl), 0);
            expect_refused(b[i].base, b[i].len, "trailing bytes");
            b[i].len -= tl;
        }
        sl_buf_dispose(&b[i]);
    }
}

static void oversized_claims(void **state)
{
    /* Top-level array / map of 2^32 - 1 elements in 5 bytes: msgpack-c would
     * allocate the element table up front. */
    expect_refused("\xdd\xff\xff\xff\xff", 5, "truncated message");
    expect_refused("\xdf\xff\xff\xff\xff", 5, "truncated message");
    expect_refused("\xdc\xff\xff", 3, "truncated message");
    /* Claims that fit the input but not the object limit. */
    size_t n = 3 + 2000;
    uint8_t *p = sl_xcalloc(n, 1);
    memcpy(p, "\xdc\x07\xd0", 3); /* array 16 of 2000 zeros */
    expect_refused(p, n, "too many elements");
    sl_free(p);

    /* The same inside a well-formed envelope. */
    static const char head[] = "\x94\xa6SLUICE\x01\x01";
    uint8_t msg[64];
    size_t hl = sizeof(head) - 1;
    memcpy(msg, head, hl);
    memcpy(msg + hl, "\xdf\xff\xff\xff\xff", 5);
    expect_refused(msg, hl + 5, "truncated message");
    /* Body with a payload claiming 4 GiB. */
    memcpy(msg + hl, "\x81\xa7payload\xc6\xff\xff\xff\xff", 14);
    expect_refused(msg, hl + 14, "truncated message");
    memcpy(msg + hl, "\x81\xa7payload\xdb\xff\xff\xff\xff", 14); /* str 32 */
    expect_refused(msg, hl + 14, "truncated message");
    memcpy(msg + hl, "\x81\xa7payload\xc9\xff\xff\xff\xff\x01", 15); /* ext 32 */
    expect_refused(msg, hl + 15, "truncated message");
    /* Length field itself cut short. */
    memcpy(msg + hl, "\x81\xa7payload\xc6\xff", 11);
    expect_refused(msg, hl + 11, "truncated message");
}

static void nesting(void **state)
{
    mb_t mb;
    sl_msg_t m;
    const char *why;

    /* Body value nested to the limit: accepted (unknown key). */
    mb_init(&mb);
    mb_head(&mb, "SLUICE", 1, SL_MSG_SNAPSHOT_REQUEST, 3);
    mb_str(&mb, "node");
    mb_str(&mb, "n");
    mb_str(&mb, "have");
    msgpack_pack_uint64(&mb.pk, 4);
    mb_str(&mb, "future");
    for (int d = 3; d <= SL_PROTO_MAX_DEPTH; d++)
        msgpack_pack_array(&mb.pk, 1);
    msgpack_pack_nil(&mb.pk);
    assert_int_equal(decode_copy(mb.sb.data, mb.sb.size, NULL, &m, &why), 0);
    assert_int_equal(m.version, 4);
    mb_dispose(&mb);

    /* One more level: refused. */
    mb_init(&mb);
    mb_head(&mb, "SLUICE", 1, SL_MSG_SNAPSHOT_REQUEST, 3);
    mb_str(&mb, "node");
    mb_str(&mb, "n");
    mb_str(&mb, "have");
    msgpack_pack_uint64(&mb.pk, 4);
    mb_str(&mb, "future");
    for (int d = 3; d <= SL_PROTO_MAX_DEPTH + 1; d++)
        msgpack_pack_array(&mb.pk, 1);
    msgpack_pack_nil(&mb.pk);
    expect_refused(mb.sb.data, mb.sb.size, "nesting too deep");
    mb_dispose(&mb);

    /* Deeper than msgpack-c's own stack (32). */
    uint8_t deep[100];
    memset(deep, 0x91, sizeof(deep));
    deep[99] = 0xc0;
    expect_refused(deep, sizeof(deep), "nesting too deep");
    memset(deep, 0x81, sizeof(deep)); /* maps {k: {k: ...}} need keys: truncated */
    expect_refused(deep, sizeof(deep), "nesting too deep");
}

/* A REQUEST body with one field replaced by raw msgpack bytes. */
static void request_with(mb_t *mb, const char *key, const void *raw, size_t n)
{
    mb_init(mb);
    mb_head(mb, "SLUICE", 1, SL_MSG_SNAPSHOT_REQUEST, 2);
    mb_str(mb, "node");
    if (strcmp(key, "node") == 0)
        msgpack_sbuffer_write(&mb->sb, raw, n);
    else
        mb_str(mb, "n");
    mb_str(mb, "have");
    if (strcmp(key, "have") == 0)
        msgpack_sbuffer_write(&mb->sb, raw, n);
    else
        msgpack_pack_uint64(&mb->pk, 1);
}

static void field_refusals(void **state)
{
    mb_t mb;
    sl_msg_t m;
    const char *why;

    request_with(&mb, "have", "\xa1\x31", 2); /* "1" */
    expect_refused(mb.sb.data, mb.sb.size, "field have has the wrong type");
    mb_dispose(&mb);
    request_with(&mb, "have", "\xff", 1); /* -1 */
    expect_refused(mb.sb.data, mb.sb.size, "field have has the wrong type");
    mb_dispose(&mb);
    request_with(&mb, "have", "\xcb\x3f\xf0\0\0\0\0\0\0", 9); /* 1.0 */
    expect_refused(mb.sb.data, mb.sb.size, "field have has the wrong type");
    mb_dispose(&mb);
    request_with(&mb, "have", "\xc0", 1);
    expect_refused(mb.sb.data, mb.sb.size, "field have has the wrong type");
    mb_dispose(&mb);
    /* A non-negative int 64 is an unsigned integer to msgpack-c: accepted. */
    request_with(&mb, "have", "\xd3\0\0\0\0\0\0\0\x05", 9);
    assert_int_equal(decode_copy(mb.sb.data, mb.sb.size, NULL, &m, &why), 0);
    assert_int_equal(m.version, 5);
    mb_dispose(&mb);
    request_with(&mb, "node", "\xc4\x01n", 3); /* bin, not str */
    expect_refused(mb.sb.data, mb.sb.size, "field node has the wrong type");
    mb_dispose(&mb);
    request_with(&mb, "node", "\xa0", 1);
    expect_refused(mb.sb.data, mb.sb.size, "field node is empty");
    mb_dispose(&mb);
    request_with(&mb, "node", "\xa3n\0n", 4);
    expect_refused(mb.sb.data, mb.sb.size, "field node contains a NUL byte");
    mb_dispose(&mb);
    uint8_t longstr[2 + 128];
    longstr[0] = 0xd9;
    longstr[1] = 128;
    memset(longstr + 2, 'x', 128);
    request_with(&mb, "node", longstr, sizeof(longstr));
    expect_refused(mb.sb.data, mb.sb.size, "field node is too long");
    mb_dispose(&mb);
    longstr[1] = 127;
    request_with(&mb, "node", longstr, sizeof(longstr) - 1);
    assert_int_equal(decode_copy(mb.sb.data, mb.sb.size, NULL, &m, &why), 0);
    assert_int_equal(strlen(m.node), 127);
    mb_dispose(&mb);

    /* Missing, duplicate, non-string key, unknown keys. */
    mb_init(&mb);
    mb_head(&mb, "SLUICE", 1, SL_MSG_SNAPSHOT_REQUEST, 1);
    mb_str(&mb, "node");
    mb_str(&mb, "n");
    expect_refused(mb.sb.data, mb.sb.size, "missing field have");
    mb_dispose(&mb);

    mb_init(&mb);
    mb_head(&mb, "SLUICE", 1, SL_MSG_SNAPSHOT_REQUEST, 3);
    mb_str(&mb, "node");
    mb_str(&mb, "n");
    mb_str(&mb, "have");
    msgpack_pack_uint64(&mb.pk, 1);
    mb_str(&mb, "have");
    msgpack_pack_uint64(&mb.pk, 2);
    expect_refused(mb.sb.data, mb.sb.size, "duplicate field have");
    mb_dispose(&mb);

    mb_init(&mb);
    mb_head(&mb, "SLUICE", 1, SL_MSG_SNAPSHOT_REQUEST, 3);
    msgpack_pack_uint64(&mb.pk, 1);
    mb_str(&mb, "x");
    mb_str(&mb, "node");
    mb_str(&mb, "n");
    mb_str(&mb, "have");
    msgpack_pack_uint64(&mb.pk, 1);
    expect_refused(mb.sb.data, mb.sb.size, "body key is not a string");
    mb_dispose(&mb);

    /* Unknown keys, even duplicated or of any type, are ignored; so are
     * fields of other types ("v" in a REQUEST). */
    mb_init(&mb);
    mb_head(&mb, "SLUICE", 1, SL_MSG_SNAPSHOT_REQUEST, 6);
    mb_str(&mb, "zone");
    msgpack_pack_map(&mb.pk, 1);
    mb_str(&mb, "a");
    msgpack_pack_double(&mb.pk, 1.5);
    mb_str(&mb, "node");
    mb_str(&mb, "gw");
    mb_str(&mb, "zone");
    msgpack_pack_nil(&mb.pk);
    mb_str(&mb, "v");
    mb_str(&mb, "not a number");
    mb_str(&mb, "have");
    msgpack_pack_uint64(&mb.pk, 77);
    mb_str(&mb, "");
    msgpack_pack_ext(&mb.pk, 2, 5);
    msgpack_pack_ext_body(&mb.pk, "ab", 2);
    assert_int_equal(decode_copy(mb.sb.data, mb.sb.size, NULL, &m, &why), 0);
    assert_string_equal(m.node, "gw");
    assert_int_equal(m.version, 77);
    mb_dispose(&mb);

    /* Bin sizes and types in a signed body. */
    static const struct {
        const char *key;
        const char *raw;
        size_t n;
        const char *why;
    } cases[] = {
        {"hash", "\xc4\x1fghijklmnopqrstuvwxyzGHIJKLMNOPQ", 33, "field hash is not 32 bytes"},
        {"hash", "\xa2\x61\x62", 3, "field hash has the wrong type"},
        {"sig", "\xc4\x01\x78", 3, "field sig is not 64 bytes"},
        {"sig", "\xc0", 1, "field sig has the wrong type"},
        {"payload", "\xa1\x78", 2, "field payload has the wrong type"},
        {"v", "\xc3", 1, "field v has the wrong type"},
        {"prev", "\x90", 1, "field prev has the wrong type"},
    };
    static const char *const keys[] = {"v", "prev", "hash", "sig", "payload"};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        uint8_t hash[32] = {0}, sig[64] = {0};
        mb_init(&mb);
        mb_head(&mb, "SLUICE", 1, SL_MSG_SNAPSHOT, 5);
        for (size_t k = 0; k < 5; k++) {
            mb_str(&mb, keys[k]);
            if (strcmp(keys[k], cases[c].key) == 0)
                msgpack_sbuffer_write(&mb.sb, cases[c].raw, cases[c].n);
            else if (k < 2)
                msgpack_pack_uint64(&mb.pk, 1 - k);
            else if (k == 2)
                mb_bin(&mb, hash, 32);
            else if (k == 3)
                mb_bin(&mb, sig, 64);
            else
                mb_bin(&mb, "p", 1);
        }
        expect_refused(mb.sb.data, mb.sb.size, cases[c].why);
        mb_dispose(&mb);
    }

    /* HELLO_ACK "ok" must be a boolean. */
    mb_init(&mb);
    mb_head(&mb, "SLUICE", 1, SL_MSG_HELLO_ACK, 2);
    mb_str(&mb, "ok");
    msgpack_pack_uint64(&mb.pk, 1);
    mb_str(&mb, "reason");
    mb_str(&mb, "");
    expect_refused(mb.sb.data, mb.sb.size, "field ok has the wrong type");
    mb_dispose(&mb);

    /* HELLO missing its token. */
    mb_init(&mb);
    mb_head(&mb, "SLUICE", 1, SL_MSG_HELLO, 4);
    mb_str(&mb, "node");
    mb_str(&mb, "n");
    mb_str(&mb, "version");
    mb_str(&mb, "1");
    mb_str(&mb, "addr");
    mb_str(&mb, "a");
    mb_str(&mb, "snap");
    msgpack_pack_uint64(&mb.pk, 0);
    expect_refused(mb.sb.data, mb.sb.size, "missing field token");
    mb_dispose(&mb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc8032_vector1),
        cmocka_unit_test(signed_layout),
        cmocka_unit_test(roundtrip_snapshot),
        cmocka_unit_test(roundtrip_delta_and_empty_payload),
        cmocka_unit_test(roundtrip_others),
        cmocka_unit_test(type_names),
        cmocka_unit_test(encoder_refusals),
        cmocka_unit_test(message_too_large),
        cmocka_unit_test(signature_checks),
        cmocka_unit_test(envelope_refusals),
        cmocka_unit_test(truncation_and_trailing),
        cmocka_unit_test(oversized_claims),
        cmocka_unit_test(nesting),
        cmocka_unit_test(field_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
