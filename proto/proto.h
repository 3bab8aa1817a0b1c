/**
 * The envelope of plane-to-plane messages (proto/PROTOCOL.md is the spec):
 * one msgpack array ["SLUICE", 1, type, {body}] per message. Full
 * snapshots and deltas carry an opaque payload, its SHA-256 and an Ed25519
 * signature over a fixed byte layout, so a gateway only ever applies state
 * that the control plane's key signed.
 *
 * Ownership: encoders append to a caller-owned sl_buf_t (its cap bounds the
 * message) and leave it as it was on failure. The decoder allocates nothing
 * that outlives the call: the sl_msg_t is caller storage, its strings are
 * copied into fixed arrays, and its payload pointer BORROWS from the input
 * buffer, so it is valid only while that buffer is. Reasons for a refusal
 * are static strings (compare by content or pointer, never free).
 *
 * Threads: signers and verifiers are immutable once created and may be used
 * by any number of threads at once (OpenSSL 3 allows concurrent operations
 * on a shared EVP_PKEY; each call uses its own EVP_MD_CTX). Every other
 * function is pure.
 *
 * Keys are raw 32-byte Ed25519 keys (the private one is the RFC 8032 seed),
 * configured as 64 hex characters or base64: parse them with sl_key_parse
 * (common/crypto.h) and pass the bytes here.
 */
#ifndef SL_PROTO_H
#define SL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define SL_PROTO_VERSION 1
#define SL_PROTO_MAX_MSG (256u << 20) /* bigger messages are refused */
/* Shape limits checked before msgpack-c sees the bytes (see PROTOCOL.md). */
#define SL_PROTO_MAX_DEPTH 8      /* nesting of arrays and maps, the top array is 1 */
#define SL_PROTO_MAX_OBJECTS 1024 /* msgpack values in one message, keys included */
#define SL_PROTO_HASH_LEN 32
#define SL_PROTO_SIG_LEN 64
#define SL_PROTO_KEY_LEN 32

typedef enum {
    SL_MSG_SNAPSHOT = 1,
    SL_MSG_DELTA,
    SL_MSG_ANNOUNCE,
    SL_MSG_SNAPSHOT_REQUEST,
    SL_MSG_HELLO,
    SL_MSG_HELLO_ACK
} sl_msg_type_t;

/** A decoded message. Fields not used by its type are zero. */
typedef struct {
    sl_msg_type_t type;
    uint64_t version;       /* SNAPSHOT/DELTA/ANNOUNCE: "v"; REQUEST: "have"; HELLO: "snap" */
    uint64_t prev;          /* SNAPSHOT (always 0) and DELTA: the base version */
    uint8_t hash[32];       /* SNAPSHOT/DELTA/ANNOUNCE: SHA-256 of the payload */
    const uint8_t *payload; /* SNAPSHOT/DELTA: borrowed, points INTO the decoded input */
    size_t payload_len;
    /* REQUEST (node), HELLO (all); NUL-terminated, refused if longer */
    char node[128], software[64], addr[128], token[128];
    int ok;           /* HELLO_ACK: 0 or 1 */
    char reason[160]; /* HELLO_ACK */
} sl_msg_t;

typedef struct sl_proto_signer_s sl_proto_signer_t;     /* wraps an EVP_PKEY (private) */
typedef struct sl_proto_verifier_s sl_proto_verifier_t; /* wraps an EVP_PKEY (public) */

/** A signer from a 32-byte Ed25519 seed. NULL on failure. */
sl_proto_signer_t *sl_proto_signer_new(const uint8_t seed[32]);
/** The signer's 32-byte public key (what gateways are configured with). */
void sl_proto_signer_public(const sl_proto_signer_t *s, uint8_t pub[32]);
/** NULL is a no-op. */
void sl_proto_signer_free(sl_proto_signer_t *s);

/** A verifier from a 32-byte Ed25519 public key. NULL on failure. */
sl_proto_verifier_t *sl_proto_verifier_new(const uint8_t pub[32]);
/** NULL is a no-op. */
void sl_proto_verifier_free(sl_proto_verifier_t *v);

/**
 * Appends a signed SNAPSHOT or DELTA message carrying n payload bytes.
 * version must be at least 1; a SNAPSHOT has prev 0, a DELTA 1 <= prev <
 * version. Returns 0, SL_EINVAL (bad arguments), SL_ETOOBIG (the message
 * would pass SL_PROTO_MAX_MSG or the cap of out), SL_ENOMEM or
 * SL_EINTERNAL (signing failed).
 */
int sl_proto_encode_snapshot(sl_buf_t *out, sl_msg_type_t type, uint64_t version, uint64_t prev,
                             const void *payload, size_t n, const sl_proto_signer_t *signer);

/** Appends an ANNOUNCE. Returns 0, SL_ETOOBIG or SL_ENOMEM. */
int sl_proto_encode_announce(sl_buf_t *out, uint64_t version, const uint8_t hash[32]);

/**
 * Appends a SNAPSHOT_REQUEST (have: the version the node holds, 0 for none).
 * node must be 1 to 127 bytes. Returns 0, SL_EINVAL, SL_ETOOBIG or SL_ENOMEM.
 */
int sl_proto_encode_request(sl_buf_t *out, const char *node, uint64_t have);

/**
 * Appends a HELLO. node must be 1 to 127 bytes; software at most 63, addr
 * and token at most 127 (sizes of the sl_msg_t arrays, NUL excluded).
 * Returns 0, SL_EINVAL, SL_ETOOBIG or SL_ENOMEM.
 */
int sl_proto_encode_hello(sl_buf_t *out, const char *node, const char *software, const char *addr,
                          uint64_t snap, const char *token);

/** Appends a HELLO_ACK; reason (NULL for "") at most 159 bytes. */
int sl_proto_encode_hello_ack(sl_buf_t *out, int ok, const char *reason);

/**
 * Decodes exactly one message of n bytes. verifier is required for
 * SNAPSHOT and DELTA (the signature, then the payload hash, are checked)
 * and ignored for the other types. Returns 0 and fills *out, or SL_EINVAL
 * with *out zeroed and *why (if why is not NULL) set to a static string
 * naming the reason: "bad magic", "unsupported protocol version 2",
 * "truncated message", "trailing bytes", "message too large", "unknown
 * message type", "bad signature", "payload hash mismatch", "missing field
 * v", ... On success *why is NULL. Never allocates anything that outlives
 * the call; out->payload borrows from data.
 */
int sl_proto_decode(const void *data, size_t n, const sl_proto_verifier_t *verifier, sl_msg_t *out,
                    const char **why);

/** "SNAPSHOT", "DELTA", ... or "unknown", for logs. */
const char *sl_proto_type_name(int type);

#endif
