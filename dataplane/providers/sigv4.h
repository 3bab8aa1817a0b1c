/**
 * AWS Signature Version 4 (header-based, AWS4-HMAC-SHA256), for the Bedrock
 * adapter and any other AWS service reached over HTTPS.
 *
 * The signer follows AWS's published algorithm and reproduces the official
 * SigV4 test suite (tests/unit/dataplane/providers/sigv4_test.c):
 *   - canonical URI: the path of the URL exactly as it goes on the wire
 *     (already URI-encoded once), normalized (empty and "." segments dropped,
 *     ".." pops one, a trailing "/" kept) and then URI-encoded once more,
 *     so a "%3A" on the wire is signed as "%253A". This "double encoding" is
 *     what AWS specifies for every service except S3; for the service "s3"
 *     the path is signed as sent (no normalization, no second encoding).
 *   - canonical query: each name and value percent-decoded, then encoded
 *     with the SigV4 rules, sorted by name then value (byte order).
 *   - canonical headers: every header given (except the hop-by-hop and
 *     transport headers listed in sigv4.c) plus host, x-amz-date and
 *     x-amz-security-token; names lower-cased, values trimmed with runs of
 *     whitespace collapsed, repeated names joined with ",", sorted by name.
 *   - hashed payload: hex SHA-256 of the body, or the value of an
 *     X-Amz-Content-Sha256 header when the caller passes one (S3 uses it).
 * Hashes and HMACs come from OpenSSL (EVP); nothing here is hand-written
 * crypto.
 *
 * Secrets: the secret access key is only fed to HMAC; the derived keys live
 * on the stack and are wiped with OPENSSL_cleanse before returning. Nothing
 * is logged and no error message carries a credential. The session token is
 * not secret in the same way (it is sent as a header) but the trace below
 * contains it, so never log a trace outside tests.
 *
 * Ownership: the credentials, URL, headers and body are borrowed for the
 * call only. Everything returned is allocated in the arena given and lives
 * until that arena is cleared. Pure functions, any thread (one arena per
 * thread, as always).
 */
#ifndef GW_SIGV4_H
#define GW_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/str.h"
#include "dataplane/server/http.h"

/* Longest secret access key accepted (AWS's are 40 characters). */
#define GW_SIGV4_MAX_SECRET 128
/* Cap on the canonical request (SL_ETOOBIG past it). */
#define GW_SIGV4_MAX_CANONICAL (1u << 20)

typedef struct {
    sl_str_t access_key_id;     /* borrowed; "AKIA..." */
    sl_str_t secret_access_key; /* borrowed; only ever fed to HMAC */
    sl_str_t session_token;     /* borrowed; empty for long-term keys */
    sl_str_t region;            /* borrowed; "us-east-1" */
    sl_str_t service;           /* borrowed; "bedrock" (signing name of bedrock-runtime too) */
} gw_sigv4_creds_t;

/**
 * The intermediate strings of one signature, for tests and debugging. All
 * in the arena. Holds the session token: never log it in production.
 */
typedef struct {
    sl_str_t canonical_request;
    sl_str_t string_to_sign;
    sl_str_t signed_headers; /* "content-type;host;x-amz-date" */
    sl_str_t signature;      /* 64 lower-case hex digits */
} gw_sigv4_trace_t;

/**
 * Signs a request. method is the HTTP method as sent ("POST"); url is the
 * full URL as it will be sent ("https://host[:port]/path?query"), with the
 * path already URI-encoded (build it with gw_sigv4_uri_encode); headers are
 * the headers that will be sent besides the ones returned (a Host header is
 * optional: without one, the host[:port] of the URL is signed, the port
 * dropped when it is the scheme's default, as libcurl sends it); body is
 * the exact body that will be sent; now is the signing time (UTC seconds).
 *
 * On success returns 0 and sets *out to an arena array of *nout headers to
 * add to the request: X-Amz-Date, X-Amz-Security-Token (only with a session
 * token), then Authorization. X-Amz-Content-Sha256 is not added (Bedrock
 * does not need it); pass one in headers to have it signed and used as the
 * payload hash.
 *
 * Errors (nothing in *out): SL_EINVAL for a missing credential field, a URL
 * that is not http(s) or holds control characters or user info, a header
 * name or value with control characters, or a caller header named
 * Authorization, X-Amz-Date or X-Amz-Security-Token (the signer owns
 * those); SL_ETOOBIG past GW_SIGV4_MAX_CANONICAL; SL_ENOMEM; SL_EINTERNAL if
 * OpenSSL fails.
 */
int gw_sigv4_sign(sl_arena_t *a, const gw_sigv4_creds_t *c, const char *method, const char *url,
                  const gw_http_header_t *headers, size_t nheaders, sl_str_t body, time_t now,
                  gw_http_header_t **out, size_t *nout);

/** Same as gw_sigv4_sign; also fills *trace (may be NULL) on success. */
int gw_sigv4_sign_trace(sl_arena_t *a, const gw_sigv4_creds_t *c, const char *method,
                        const char *url, const gw_http_header_t *headers, size_t nheaders,
                        sl_str_t body, time_t now, gw_http_header_t **out, size_t *nout,
                        gw_sigv4_trace_t *trace);

/**
 * Appends s URI-encoded with the SigV4 rules: the unreserved characters
 * A-Z a-z 0-9 - _ . ~ are kept, every other byte becomes %XX (upper-case
 * hex); "/" is kept unless encode_slash. Use it with encode_slash = 1 for
 * each path segment that comes from data (a Bedrock model id or ARN):
 * "anthropic.claude-3-5-sonnet-20240620-v1:0" becomes
 * "anthropic.claude-3-5-sonnet-20240620-v1%3A0". The result is what goes on
 * the wire; the signer encodes it once more for the canonical URI, as AWS
 * does. 0, SL_ETOOBIG (out's cap) or SL_ENOMEM; out unchanged on error.
 */
int gw_sigv4_uri_encode(sl_buf_t *out, sl_str_t s, int encode_slash);

#endif
