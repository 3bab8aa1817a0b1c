/*
 * Fuzz target for the message envelope decoder (proto/proto.c). Arbitrary
 * bytes are decoded with a fixed verifier (the RFC 8032 test key, so that
 * seeds signed with it reach the payload checks). On success the message
 * must be self-consistent: payload inside the input and matching its hash,
 * strings terminated inside their arrays; re-encoded, it must decode to the
 * same fields. On failure a static reason is given and nothing is left in
 * out. Without a verifier, signed types must always be refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/err.h"
#include "proto/proto.h"
#include "tests/fuzz/fuzz.h"

static sl_proto_signer_t *signer;
static sl_proto_verifier_t *verifier;

static void init_keys(void)
{
    uint8_t seed[32], pub[32];
    if (signer != NULL)
        return;
    CHECK(sl_key_parse("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed) ==
          0);
    signer = sl_proto_signer_new(seed);
    CHECK(signer != NULL);
    sl_proto_signer_public(signer, pub);
    verifier = sl_proto_verifier_new(pub);
    CHECK(verifier != NULL);
}

static int terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static int is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

/* Encodes m again and checks that it decodes to the same fields. */
static void reencode(const sl_msg_t *m)
{
    sl_buf_t b;
    sl_msg_t m2;
    const char *why = NULL;
    int rc = 0;

    sl_buf_init(&b, (size_t)SL_PROTO_MAX_MSG);
    switch (m->type) {
    case SL_MSG_SNAPSHOT:
    case SL_MSG_DELTA:
        rc = sl_proto_encode_snapshot(&b, m->type, m->version, m->prev, m->payload, m->payload_len,
                                      signer);
        break;
    case SL_MSG_ANNOUNCE:
        rc = sl_proto_encode_announce(&b, m->version, m->hash);
        break;
    case SL_MSG_SNAPSHOT_REQUEST:
        rc = sl_proto_encode_request(&b, m->node, m->version);
        break;
    case SL_MSG_HELLO:
        rc = sl_proto_encode_hello(&b, m->node, m->software, m->addr, m->version, m->token);
        break;
    case SL_MSG_HELLO_ACK:
        rc = sl_proto_encode_hello_ack(&b, m->ok, m->reason);
        break;
    }
    /* The payload fit in a message once; the envelope is the same size or
     * smaller (canonical integer widths, no unknown keys). */
    CHECK(rc == 0);
    CHECK(sl_proto_decode(b.base, b.len, verifier, &m2, &why) == 0);
    CHECK(why == NULL);
    CHECK(m2.type == m->type && m2.version == m->version && m2.prev == m->prev);
    CHECK(memcmp(m2.hash, m->hash, 32) == 0);
    CHECK(m2.payload_len == m->payload_len);
    if (m->payload_len > 0)
        CHECK(memcmp(m2.payload, m->payload, m->payload_len) == 0);
    CHECK(strcmp(m2.node, m->node) == 0 && strcmp(m2.software, m->software) == 0);
    CHECK(strcmp(m2.addr, m->addr) == 0 && strcmp(m2.token, m->token) == 0);
    CHECK(m2.ok == m->ok && strcmp(m2.reason, m->reason) == 0);
    sl_buf_dispose(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_msg_t m;
    const char *why = "unset";

    init_keys();
    int rc = sl_proto_decode(data, size, verifier, &m, &why);
    if (rc != 0) {
        CHECK(rc == SL_EINVAL || rc == SL_ENOMEM);
        CHECK(why != NULL && why[0] != '\0');
        CHECK(is_zero(&m, sizeof(m)));
    } else {
        CHECK(why == NULL);
        CHECK(m.type >= SL_MSG_SNAPSHOT && m.type <= SL_MSG_HELLO_ACK);
        CHECK(terminated(m.node, sizeof(m.node)) && terminated(m.software, sizeof(m.software)));
        CHECK(terminated(m.addr, sizeof(m.addr)) && terminated(m.token, sizeof(m.token)));
        CHECK(terminated(m.reason, sizeof(m.reason)));
        CHECK(m.ok == 0 || m.ok == 1);
        if (m.type == SL_MSG_SNAPSHOT || m.type == SL_MSG_DELTA) {
            /* Borrowed: the payload lies inside the input. */
            CHECK(m.payload != NULL);
            CHECK(m.payload >= data && m.payload_len <= size &&
                  (size_t)(m.payload - data) <= size - m.payload_len);
            uint8_t md[32];
            sl_sha256(m.payload, m.payload_len, md);
            CHECK(memcmp(md, m.hash, 32) == 0);
            CHECK(m.version >= 1);
            CHECK(m.type == SL_MSG_SNAPSHOT ? m.prev == 0 : (m.prev >= 1 && m.prev < m.version));
        } else {
            CHECK(m.payload == NULL && m.payload_len == 0);
        }
        if (m.type == SL_MSG_SNAPSHOT_REQUEST || m.type == SL_MSG_HELLO)
            CHECK(m.node[0] != '\0');
        reencode(&m);
    }

    /* Signed types are never accepted without a verifier; the rest decode
     * the same either way. */
    sl_msg_t m3;
    const char *why3;
    int rc3 = sl_proto_decode(data, size, NULL, &m3, &why3);
    if (rc == 0 && (m.type == SL_MSG_SNAPSHOT || m.type == SL_MSG_DELTA)) {
        CHECK(rc3 == SL_EINVAL);
        CHECK(strcmp(why3, "no verifier for a signed message") == 0);
    } else if (rc == 0) {
        CHECK(rc3 == 0 && memcmp(&m, &m3, sizeof(m)) == 0);
    } else {
        CHECK(rc3 != 0);
    }
    return 0;
}
