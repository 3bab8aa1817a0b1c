#include "proto/proto.h"

#include <string.h>

#include <msgpack.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "common/alloc.h"
#include "common/crypto.h"
#include "common/err.h"
#include "common/log.h"

#define MAGIC "SLUICE"
#define MAGIC_LEN 6
/* The signature context, NUL included, so that a signature over these bytes
 * can never be mistaken for one over another kind of Sluice data. */
#define SIG_CONTEXT "sluice-snapshot-v1"
#define SIG_CONTEXT_LEN 19
#define SIGNED_LEN (SIG_CONTEXT_LEN + 1 + 8 + 8 + SL_PROTO_HASH_LEN)
_Static_assert(sizeof(SIG_CONTEXT) == SIG_CONTEXT_LEN, "the context is 18 characters and a NUL");

#define MEMBER_SIZE(type, m) sizeof(((type *)0)->m)

struct sl_proto_signer_s {
    EVP_PKEY *pkey; /* owned */
    uint8_t pub[SL_PROTO_KEY_LEN];
};

struct sl_proto_verifier_s {
    EVP_PKEY *pkey; /* owned */
};

const char *sl_proto_type_name(int type)
{
    static const char *const names[] = {
        [SL_MSG_SNAPSHOT] = "SNAPSHOT", [SL_MSG_DELTA] = "DELTA",
        [SL_MSG_ANNOUNCE] = "ANNOUNCE", [SL_MSG_SNAPSHOT_REQUEST] = "SNAPSHOT_REQUEST",
        [SL_MSG_HELLO] = "HELLO",       [SL_MSG_HELLO_ACK] = "HELLO_ACK",
    };
    if (type < SL_MSG_SNAPSHOT || type > SL_MSG_HELLO_ACK)
        return "unknown";
    return names[type];
}

/* ---- keys and signatures ------------------------------------------------ */

sl_proto_signer_t *sl_proto_signer_new(const uint8_t seed[32])
{
    sl_proto_signer_t *s = NULL;
    EVP_PKEY *pkey = NULL;
    size_t publen = SL_PROTO_KEY_LEN;

    if (seed == NULL)
        return NULL;
    pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, SL_PROTO_KEY_LEN);
    if (pkey == NULL)
        goto Exit;
    s = sl_xmalloc(sizeof(*s));
    /* The public key is derived once here, so that sl_proto_signer_public
     * cannot fail and never touches the key object. */
    if (EVP_PKEY_get_raw_public_key(pkey, s->pub, &publen) != 1 || publen != SL_PROTO_KEY_LEN) {
        sl_free(s);
        s = NULL;
        goto Exit;
    }
    s->pkey = pkey;
    pkey = NULL;
Exit:
    EVP_PKEY_free(pkey);
    if (s == NULL)
        ERR_clear_error(); /* leave no stale errors for the thread's next OpenSSL caller */
    return s;
}

void sl_proto_signer_public(const sl_proto_signer_t *s, uint8_t pub[32])
{
    memcpy(pub, s->pub, SL_PROTO_KEY_LEN);
}

void sl_proto_signer_free(sl_proto_signer_t *s)
{
    if (s == NULL)
        return;
    EVP_PKEY_free(s->pkey);
    sl_free(s);
}

sl_proto_verifier_t *sl_proto_verifier_new(const uint8_t pub[32])
{
    EVP_PKEY *pkey;
    sl_proto_verifier_t *v;

    if (pub == NULL)
        return NULL;
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, SL_PROTO_KEY_LEN);
    if (pkey == NULL) {
        ERR_clear_error();
        return NULL;
    }
    v = sl_xmalloc(sizeof(*v));
    v->pkey = pkey;
    return v;
}

void sl_proto_verifier_free(sl_proto_verifier_t *v)
{
    if (v == NULL)
        return;
    EVP_PKEY_free(v->pkey);
    sl_free(v);
}

/* Ed25519 is "pure" (no pre-hash), hence the NULL digest. */
static int ed_sign(EVP_PKEY *pkey, const void *msg, size_t n, uint8_t sig[SL_PROTO_SIG_LEN])
{
    EVP_MD_CTX *ctx = NULL;
    size_t siglen = SL_PROTO_SIG_LEN;
    int ret = SL_EINTERNAL;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        goto Exit;
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) != 1)
        goto Exit;
    if (EVP_DigestSign(ctx, sig, &siglen, msg, n) != 1 || siglen != SL_PROTO_SIG_LEN)
        goto Exit;
    ret = 0;
Exit:
    EVP_MD_CTX_free(ctx);
    if (ret != 0)
        ERR_clear_error();
    return ret;
}

/* 1 when sig is a valid signature of msg. */
static int ed_verify(EVP_PKEY *pkey, const void *msg, size_t n, const uint8_t sig[SL_PROTO_SIG_LEN])
{
    EVP_MD_CTX *ctx = NULL;
    int ok = 0;

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        goto Exit;
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1)
        goto Exit;
    ok = EVP_DigestVerify(ctx, sig, SL_PROTO_SIG_LEN, msg, n) == 1;
Exit:
    EVP_MD_CTX_free(ctx);
    if (!ok)
        ERR_clear_error(); /* a forged signature queues an error we do not report */
    return ok;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* The bytes a SNAPSHOT or DELTA signature covers (PROTOCOL.md). The payload
 * is covered through its hash, so the signature costs the same for any
 * payload size. */
static void signed_bytes(uint8_t out[SIGNED_LEN], int type, uint64_t version, uint64_t prev,
                         const uint8_t hash[SL_PROTO_HASH_LEN])
{
    memcpy(out, SIG_CONTEXT, SIG_CONTEXT_LEN);
    out[SIG_CONTEXT_LEN] = (uint8_t)type;
    put_be64(out + SIG_CONTEXT_LEN + 1, version);
    put_be64(out + SIG_CONTEXT_LEN + 9, prev);
    memcpy(out + SIG_CONTEXT_LEN + 17, hash, SL_PROTO_HASH_LEN);
}

/* Version rules shared by the encoder and the decoder, so that whatever one
 * writes the other accepts. 0 means "no snapshot" (SNAPSHOT_REQUEST "have"),
 * so no state carries it. */
static const char *check_versions(int type, uint64_t version, uint64_t prev)
{
    if (version == 0)
        return "version 0 is reserved";
    if (type == SL_MSG_SNAPSHOT && prev != 0)
        return "snapshot with nonzero prev";
    if (type == SL_MSG_DELTA && (prev == 0 || prev >= version))
        return "delta prev not between 1 and v - 1";
    return NULL;
}

/* ---- encoding ----------------------------------------------------------- */

/* msgpack-c passes the callback's result back from every msgpack_pack_*
 * call, so SL_ETOOBIG and SL_ENOMEM reach the encoders unchanged. */
static int buf_write(void *data, const char *p, size_t n)
{
    return sl_buf_append(data, p, n);
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        ret = (expr);                                                                              \
        if (ret != 0)                                                                              \
            goto Exit;                                                                             \
    } while (0)

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    int ret = msgpack_pack_str(pk, n);
    if (ret != 0)
        return ret;
    return msgpack_pack_str_body(pk, s, n);
}

static int pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    int ret = msgpack_pack_bin(pk, n);
    if (ret != 0)
        return ret;
    return msgpack_pack_bin_body(pk, n > 0 ? p : "", n);
}

static int pack_head(msgpack_packer *pk, int type, size_t nfields)
{
    int ret;
    TRY(msgpack_pack_array(pk, 4));
    TRY(pack_str(pk, MAGIC));
    TRY(msgpack_pack_uint64(pk, SL_PROTO_VERSION));
    TRY(msgpack_pack_uint64(pk, (uint64_t)type));
    TRY(msgpack_pack_map(pk, nfields));
Exit:
    return ret;
}

/* Every encoder ends here: a failed or oversized message is taken back out
 * of the buffer, so out holds whole messages only. */
static int finish(sl_buf_t *out, size_t start, int ret)
{
    if (ret == 0 && out->len - start > SL_PROTO_MAX_MSG)
        ret = SL_ETOOBIG;
    if (ret != 0)
        out->len = start;
    return ret;
}

/* A string fits a field of cap bytes (NUL included). */
static int str_fits(const char *s, size_t cap, int nonempty)
{
    if (s == NULL)
        return 0;
    size_t n = strnlen(s, cap);
    return n < cap && (n > 0 || !nonempty);
}

int sl_proto_encode_snapshot(sl_buf_t *out, sl_msg_type_t type, uint64_t version, uint64_t prev,
                             const void *payload, size_t n, const sl_proto_signer_t *signer)
{
    uint8_t hash[SL_PROTO_HASH_LEN], sig[SL_PROTO_SIG_LEN], msg[SIGNED_LEN];
    msgpack_packer pk;
    size_t start;
    int ret;

    if (out == NULL || signer == NULL || (payload == NULL && n > 0))
        return SL_EINVAL;
    if ((type != SL_MSG_SNAPSHOT && type != SL_MSG_DELTA) ||
        check_versions(type, version, prev) != NULL)
        return SL_EINVAL;
    if (n > SL_PROTO_MAX_MSG)
        return SL_ETOOBIG; /* before hashing: finish() would refuse it anyway */
    start = out->len;
    sl_sha256(n > 0 ? payload : "", n, hash);
    signed_bytes(msg, type, version, prev, hash);
    TRY(ed_sign(signer->pkey, msg, sizeof(msg), sig));
    msgpack_packer_init(&pk, out, buf_write);
    TRY(pack_head(&pk, type, 5));
    TRY(pack_str(&pk, "v"));
    TRY(msgpack_pack_uint64(&pk, version));
    TRY(pack_str(&pk, "prev"));
    TRY(msgpack_pack_uint64(&pk, prev));
    TRY(pack_str(&pk, "hash"));
    TRY(pack_bin(&pk, hash, sizeof(hash)));
    TRY(pack_str(&pk, "sig"));
    TRY(pack_bin(&pk, sig, sizeof(sig)));
    TRY(pack_str(&pk, "payload"));
    TRY(pack_bin(&pk, payload, n));
Exit:
    return finish(out, start, ret);
}

int sl_proto_encode_announce(sl_buf_t *out, uint64_t version, const uint8_t hash[32])
{
    msgpack_packer pk;
    size_t start;
    int ret;

    if (out == NULL || hash == NULL)
        return SL_EINVAL;
    start = out->len;
    msgpack_packer_init(&pk, out, buf_write);
    TRY(pack_head(&pk, SL_MSG_ANNOUNCE, 2));
    TRY(pack_str(&pk, "v"));
    TRY(msgpack_pack_uint64(&pk, version));
    TRY(pack_str(&pk, "hash"));
    TRY(pack_bin(&pk, hash, SL_PROTO_HASH_LEN));
Exit:
    return finish(out, start, ret);
}

int sl_proto_encode_request(sl_buf_t *out, const char *node, uint64_t have)
{
    msgpack_packer pk;
    size_t start;
    int ret;

    if (out == NULL || !str_fits(node, MEMBER_SIZE(sl_msg_t, node), 1))
        return SL_EINVAL;
    start = out->len;
    msgpack_packer_init(&pk, out, buf_write);
    TRY(pack_head(&pk, SL_MSG_SNAPSHOT_REQUEST, 2));
    TRY(pack_str(&pk, "node"));
    TRY(pack_str(&pk, node));
    TRY(pack_str(&pk, "have"));
    TRY(msgpack_pack_uint64(&pk, have));
Exit:
    return finish(out, start, ret);
}

int sl_proto_encode_hello(sl_buf_t *out, const char *node, const char *software, const char *addr,
                          uint64_t snap, const char *token)
{
    msgpack_packer pk;
    size_t start;
    int ret;

    if (out == NULL || !str_fits(node, MEMBER_SIZE(sl_msg_t, node), 1) ||
        !str_fits(software, MEMBER_SIZE(sl_msg_t, software), 0) ||
        !str_fits(addr, MEMBER_SIZE(sl_msg_t, addr), 0) ||
        !str_fits(token, MEMBER_SIZE(sl_msg_t, token), 0))
        return SL_EINVAL;
    start = out->len;
    msgpack_packer_init(&pk, out, buf_write);
    TRY(pack_head(&pk, SL_MSG_HELLO, 5));
    TRY(pack_str(&pk, "node"));
    TRY(pack_str(&pk, node));
    TRY(pack_str(&pk, "version"));
    TRY(pack_str(&pk, software));
    TRY(pack_str(&pk, "addr"));
    TRY(pack_str(&pk, addr));
    TRY(pack_str(&pk, "snap"));
    TRY(msgpack_pack_uint64(&pk, snap));
    TRY(pack_str(&pk, "token"));
    TRY(pack_str(&pk, token));
Exit:
    return finish(out, start, ret);
}

int sl_proto_encode_hello_ack(sl_buf_t *out, int ok, const char *reason)
{
    msgpack_packer pk;
    size_t start;
    int ret;

    if (reason == NULL)
        reason = "";
    if (out == NULL || !str_fits(reason, MEMBER_SIZE(sl_msg_t, reason), 0))
        return SL_EINVAL;
    start = out->len;
    msgpack_packer_init(&pk, out, buf_write);
    TRY(pack_head(&pk, SL_MSG_HELLO_ACK, 2));
    TRY(pack_str(&pk, "ok"));
    TRY(ok ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
    TRY(pack_str(&pk, "reason"));
    TRY(pack_str(&pk, reason));
Exit:
    return finish(out, start, ret);
}

/* ---- decoding: shape scan ----------------------------------------------- */

/*
 * msgpack-c allocates an array's or map's element table as soon as it reads
 * the header (template_callback_array), before the elements arrive: five
 * bytes claiming 2^32 elements make it ask malloc for 128 GiB. So every
 * message is walked here first, without allocating: one value exactly,
 * every claimed length within the input, nesting and the total number of
 * values bounded. After this walk msgpack-c allocates at most
 * SL_PROTO_MAX_OBJECTS objects.
 */
typedef struct {
    const uint8_t *p, *end;
    size_t objects;
} scan_t;

static uint64_t get_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static const char *scan_value(scan_t *s, int depth)
{
    size_t hdr = 0;    /* bytes of length or count after the type byte */
    uint64_t skip = 0; /* fixed bytes after the header (scalar, type byte of ext) */
    int container = 0; /* 1 array, 2 map */
    uint64_t count = 0;

    if (s->p == s->end)
        return "truncated message";
    if (++s->objects > SL_PROTO_MAX_OBJECTS)
        return "too many elements";
    uint8_t b = *s->p++;
    if (b <= 0x7f || b >= 0xe0) /* fixint */
        return NULL;
    if (b <= 0x8f) {
        container = 2;
        count = b & 0x0f;
    } else if (b <= 0x9f) {
        container = 1;
        count = b & 0x0f;
    } else if (b <= 0xbf) {
        skip = b & 0x1f; /* fixstr */
    } else {
        /* clang-format off */
        switch (b) {
        case 0xc0: case 0xc2: case 0xc3: break;           /* nil, false, true */
        case 0xc4: case 0xd9: hdr = 1; break;             /* bin 8, str 8 */
        case 0xc5: case 0xda: hdr = 2; break;             /* bin 16, str 16 */
        case 0xc6: case 0xdb: hdr = 4; break;             /* bin 32, str 32 */
        case 0xc7: hdr = 1; skip = 1; break;              /* ext 8 (+ type byte) */
        case 0xc8: hdr = 2; skip = 1; break;
        case 0xc9: hdr = 4; skip = 1; break;
        case 0xca: skip = 4; break;                       /* float 32 */
        case 0xcb: skip = 8; break;                       /* float 64 */
        case 0xcc: case 0xd0: skip = 1; break;            /* (u)int 8 */
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xce: case 0xd2: skip = 4; break;
        case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break;                       /* fixext 1 .. 16 */
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: container = 1; hdr = 2; break;         /* array 16, 32 */
        case 0xdd: container = 1; hdr = 4; break;
        case 0xde: container = 2; hdr = 2; break;         /* map 16, 32 */
        case 0xdf: container = 2; hdr = 4; break;
        default: return "malformed msgpack";              /* 0xc1: never used */
        }
        /* clang-format on */
    }
    size_t left = (size_t)(s->end - s->p);
    if (hdr > 0) {
        if (left < hdr)
            return "truncated message";
        uint64_t len = get_be(s->p, hdr);
        s->p += hdr;
        left -= hdr;
        if (container)
            count = len;
        else
            skip += len;
    }
    if (!container) {
        if (skip > left)
            return "truncated message";
        s->p += skip;
        return NULL;
    }
    if (depth > SL_PROTO_MAX_DEPTH)
        return "nesting too deep";
    uint64_t elems = container == 2 ? 2 * count : count; /* count < 2^32: no overflow */
    if (elems > left)                                    /* every value takes at least one byte */
        return "truncated message";
    if (elems > SL_PROTO_MAX_OBJECTS - s->objects)
        return "too many elements";
    for (uint64_t i = 0; i < elems; i++) {
        const char *why = scan_value(s, depth + 1);
        if (why != NULL)
            return why;
    }
    return NULL;
}

/* ---- decoding: fields ----------------------------------------------------- */

enum {
    F_V,
    F_PREV,
    F_HASH,
    F_SIG,
    F_PAYLOAD,
    F_NODE,
    F_HAVE,
    F_VERSION,
    F_ADDR,
    F_SNAP,
    F_TOKEN,
    F_OK,
    F_REASON,
    F__COUNT
};
enum { K_UINT, K_BIN, K_STR, K_BOOL };

typedef struct {
    const char *name;
    int kind;
    size_t size; /* K_BIN: exact length (0: any); K_STR: capacity, NUL included */
    const char *missing, *wrong_type, *duplicate, *bad_size, *has_nul;
} field_t;

/* Reasons are spelled out per field so that they stay static strings. */
#define FIELD(id, nm, k, sz, badsz)                                                                \
    [id] = {nm,                                                                                    \
            k,                                                                                     \
            sz,                                                                                    \
            "missing field " nm,                                                                   \
            "field " nm " has the wrong type",                                                     \
            "duplicate field " nm,                                                                 \
            badsz,                                                                                 \
            "field " nm " contains a NUL byte"}

static const field_t fields[F__COUNT] = {
    FIELD(F_V, "v", K_UINT, 0, NULL),
    FIELD(F_PREV, "prev", K_UINT, 0, NULL),
    FIELD(F_HASH, "hash", K_BIN, SL_PROTO_HASH_LEN, "field hash is not 32 bytes"),
    FIELD(F_SIG, "sig", K_BIN, SL_PROTO_SIG_LEN, "field sig is not 64 bytes"),
    FIELD(F_PAYLOAD, "payload", K_BIN, 0, NULL),
    FIELD(F_NODE, "node", K_STR, MEMBER_SIZE(sl_msg_t, node), "field node is too long"),
    FIELD(F_HAVE, "have", K_UINT, 0, NULL),
    FIELD(F_VERSION, "version", K_STR, MEMBER_SIZE(sl_msg_t, software),
          "field version is too long"),
    FIELD(F_ADDR, "addr", K_STR, MEMBER_SIZE(sl_msg_t, addr), "field addr is too long"),
    FIELD(F_SNAP, "snap", K_UINT, 0, NULL),
    FIELD(F_TOKEN, "token", K_STR, MEMBER_SIZE(sl_msg_t, token), "field token is too long"),
    FIELD(F_OK, "ok", K_BOOL, 0, NULL),
    FIELD(F_REASON, "reason", K_STR, MEMBER_SIZE(sl_msg_t, reason), "field reason is too long"),
};

#define B(f) (1u << (f))
/* The fields of each type; all of them are required. */
static const unsigned type_fields[] = {
    [SL_MSG_SNAPSHOT] = B(F_V) | B(F_PREV) | B(F_HASH) | B(F_SIG) | B(F_PAYLOAD),
    [SL_MSG_DELTA] = B(F_V) | B(F_PREV) | B(F_HASH) | B(F_SIG) | B(F_PAYLOAD),
    [SL_MSG_ANNOUNCE] = B(F_V) | B(F_HASH),
    [SL_MSG_SNAPSHOT_REQUEST] = B(F_NODE) | B(F_HAVE),
    [SL_MSG_HELLO] = B(F_NODE) | B(F_VERSION) | B(F_ADDR) | B(F_SNAP) | B(F_TOKEN),
    [SL_MSG_HELLO_ACK] = B(F_OK) | B(F_REASON),
};

static int find_field(const char *key, size_t n, unsigned want)
{
    for (int f = 0; f < F__COUNT; f++) {
        if ((want & B(f)) && strlen(fields[f].name) == n && memcmp(fields[f].name, key, n) == 0)
            return f;
    }
    return -1;
}

static const char *check_field(int f, const msgpack_object *o)
{
    const field_t *fd = &fields[f];
    switch (fd->kind) {
    case K_UINT:
        /* msgpack-c reports every non-negative integer, whatever its width
         * or signedness on the wire, as POSITIVE_INTEGER. */
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return fd->wrong_type;
        return NULL;
    case K_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return fd->wrong_type;
        return NULL;
    case K_BIN:
        if (o->type != MSGPACK_OBJECT_BIN)
            return fd->wrong_type;
        if (fd->size != 0 && o->via.bin.size != fd->size)
            return fd->bad_size;
        return NULL;
    case K_STR:
        if (o->type != MSGPACK_OBJECT_STR)
            return fd->wrong_type;
        if (o->via.str.size >= fd->size)
            return fd->bad_size;
        /* An embedded NUL would silently cut the C string short. */
        if (o->via.str.size > 0 && memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
            return fd->has_nul;
        return NULL;
    }
    return fd->wrong_type;
}

static void copy_str(char *dst, const msgpack_object *o)
{
    /* check_field bounded the size by the array's. */
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
}

static const char *unsupported_version(uint64_t v)
{
    static const char *const names[] = {
        "unsupported protocol version 0", NULL,
        "unsupported protocol version 2", "unsupported protocol version 3",
        "unsupported protocol version 4", "unsupported protocol version 5",
        "unsupported protocol version 6", "unsupported protocol version 7",
        "unsupported protocol version 8", "unsupported protocol version 9",
    };
    if (v < sizeof(names) / sizeof(names[0]) && names[v] != NULL)
        return names[v];
    return "unsupported protocol version (10 or higher)";
}

static const char *read_message(const msgpack_object *root, const uint8_t *data, size_t n,
                                const sl_proto_verifier_t *verifier, sl_msg_t *out)
{
    const msgpack_object *val[F__COUNT] = {0};
    const msgpack_object *e;
    const char *why;
    unsigned want, seen = 0;
    int type;

    if (root->type != MSGPACK_OBJECT_ARRAY)
        return "message is not an array";
    e = root->via.array.ptr;
    if (root->via.array.size < 1 || e[0].type != MSGPACK_OBJECT_STR ||
        e[0].via.str.size != MAGIC_LEN || memcmp(e[0].via.str.ptr, MAGIC, MAGIC_LEN) != 0)
        return "bad magic";
    /* The version is read before the array's length is checked, so that a
     * newer peer whose envelope has other elements is told the real reason. */
    if (root->via.array.size < 2 || e[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return "bad protocol version";
    if (e[1].via.u64 != SL_PROTO_VERSION)
        return unsupported_version(e[1].via.u64);
    if (root->via.array.size != 4)
        return "message is not an array of 4 elements";
    if (e[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER || e[2].via.u64 < SL_MSG_SNAPSHOT ||
        e[2].via.u64 > SL_MSG_HELLO_ACK)
        return "unknown message type";
    type = (int)e[2].via.u64;
    if (e[3].type != MSGPACK_OBJECT_MAP)
        return "body is not a map";

    want = type_fields[type];
    for (uint32_t i = 0; i < e[3].via.map.size; i++) {
        const msgpack_object_kv *kv = &e[3].via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return "body key is not a string";
        int f = find_field(kv->key.via.str.ptr, kv->key.via.str.size, want);
        if (f < 0)
            continue; /* unknown keys are ignored: newer peers may add fields */
        if (seen & B(f))
            return fields[f].duplicate; /* which one would count is ambiguous */
        seen |= B(f);
        val[f] = &kv->val;
    }
    for (int f = 0; f < F__COUNT; f++) {
        if (!(want & B(f)))
            continue;
        if (!(seen & B(f)))
            return fields[f].missing;
        why = check_field(f, val[f]);
        if (why != NULL)
            return why;
    }

    out->type = (sl_msg_type_t)type;
    switch (type) {
    case SL_MSG_SNAPSHOT:
    case SL_MSG_DELTA: {
        uint8_t msg[SIGNED_LEN], md[SL_PROTO_HASH_LEN];
        const uint8_t *p = (const uint8_t *)val[F_PAYLOAD]->via.bin.ptr;
        size_t len = val[F_PAYLOAD]->via.bin.size;

        /* msgpack_unpack_next does not copy bin bodies: they point into
         * the buffer it was given, which is data. */
        SL_ASSERT((uintptr_t)p >= (uintptr_t)data && len <= n &&
                  (uintptr_t)p - (uintptr_t)data <= n - len);
        if (verifier == NULL)
            return "no verifier for a signed message";
        out->version = val[F_V]->via.u64;
        out->prev = val[F_PREV]->via.u64;
        why = check_versions(type, out->version, out->prev);
        if (why != NULL)
            return why;
        memcpy(out->hash, val[F_HASH]->via.bin.ptr, SL_PROTO_HASH_LEN);
        /* The signature first: it is cheap and fixed-cost, while hashing a
         * forged 256 MiB payload would not be. */
        signed_bytes(msg, type, out->version, out->prev, out->hash);
        if (!ed_verify(verifier->pkey, msg, sizeof(msg), (const uint8_t *)val[F_SIG]->via.bin.ptr))
            return "bad signature";
        sl_sha256(p, len, md);
        if (!sl_ct_eq(md, out->hash, SL_PROTO_HASH_LEN))
            return "payload hash mismatch";
        out->payload = p;
        out->payload_len = len;
        break;
    }
    case SL_MSG_ANNOUNCE:
        out->version = val[F_V]->via.u64;
        memcpy(out->hash, val[F_HASH]->via.bin.ptr, SL_PROTO_HASH_LEN);
        break;
    case SL_MSG_SNAPSHOT_REQUEST:
        if (val[F_NODE]->via.str.size == 0)
            return "field node is empty";
        copy_str(out->node, val[F_NODE]);
        out->version = val[F_HAVE]->via.u64;
        break;
    case SL_MSG_HELLO:
        if (val[F_NODE]->via.str.size == 0)
            return "field node is empty";
        copy_str(out->node, val[F_NODE]);
        copy_str(out->software, val[F_VERSION]);
        copy_str(out->addr, val[F_ADDR]);
        copy_str(out->token, val[F_TOKEN]);
        out->version = val[F_SNAP]->via.u64;
        break;
    case SL_MSG_HELLO_ACK:
        out->ok = val[F_OK]->via.boolean ? 1 : 0;
        copy_str(out->reason, val[F_REASON]);
        break;
    }
    return NULL;
}

int sl_proto_decode(const void *data, size_t n, const sl_proto_verifier_t *verifier, sl_msg_t *out,
                    const char **why)
{
    msgpack_unpacked up;
    msgpack_unpack_return r;
    scan_t s;
    const char *reason = NULL;
    size_t off = 0;
    int ret = SL_EINVAL;

    msgpack_unpacked_init(&up);
    memset(out, 0, sizeof(*out));
    if (n > SL_PROTO_MAX_MSG) {
        reason = "message too large";
        goto Exit;
    }
    if (n == 0 || data == NULL) {
        reason = "truncated message";
        goto Exit;
    }
    s.p = data;
    s.end = s.p + n;
    s.objects = 0;
    reason = scan_value(&s, 1);
    if (reason == NULL && s.p != s.end)
        reason = "trailing bytes";
    if (reason != NULL)
        goto Exit;
    r = msgpack_unpack_next(&up, data, n, &off);
    if (r == MSGPACK_UNPACK_NOMEM_ERROR) {
        reason = "out of memory";
        ret = SL_ENOMEM;
        goto Exit;
    }
    /* The scan accepted exactly one value, so this only fires if msgpack-c
     * refuses something the scan let through. */
    if (r != MSGPACK_UNPACK_SUCCESS || off != n) {
        reason = "malformed msgpack";
        goto Exit;
    }
    reason = read_message(&up.data, data, n, verifier, out);
    if (reason == NULL)
        ret = 0;
Exit:
    /* Frees msgpack-c's zone; out holds nothing that points into it. */
    msgpack_unpacked_destroy(&up);
    if (ret != 0)
        memset(out, 0, sizeof(*out));
    if (why != NULL)
        *why = reason;
    return ret;
}
