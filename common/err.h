/**
 * Error codes shared by both planes. Functions return 0 or a negative SL_E*
 * code; decoders may also return SL_AGAIN. The code, its HTTP status, its
 * OpenAI-style error type, its machine-readable code and its default message
 * live in one table so that nothing can drift apart.
 */
#ifndef SL_ERR_H
#define SL_ERR_H

/* XX(name, http status, openai type, code string, default message) */
#define SL_ERR_MAP(XX)                                                                             \
    XX(ENOMEM, 500, "api_error", "out_of_memory", "out of memory")                                 \
    XX(EINVAL, 400, "invalid_request_error", "invalid_request", "invalid argument")                \
    XX(EBADJSON, 400, "invalid_request_error", "invalid_json", "malformed JSON body")             \
    XX(EBADREQ, 400, "invalid_request_error", "bad_request", "malformed HTTP request")            \
    XX(EMEDIATYPE, 415, "invalid_request_error", "unsupported_media_type",                         \
       "request body must be application/json")                                                    \
    XX(ENOPROV, 400, "invalid_request_error", "unknown_provider", "unknown provider")             \
    XX(EUNSUPPORTED, 400, "invalid_request_error", "unsupported_endpoint",                         \
       "this provider does not support this endpoint")                                             \
    XX(ENOROUTE, 400, "invalid_request_error", "missing_provider",                                 \
       "no provider given: set the x-sluice-provider header")                                     \
    XX(EBADHOST, 400, "invalid_request_error", "invalid_custom_host", "invalid custom host")      \
    XX(EFORBIDDENHOST, 400, "invalid_request_error", "forbidden_custom_host",                      \
       "custom host resolves to a forbidden address")                                              \
    XX(ENOKEY, 401, "authentication_error", "missing_api_key", "missing API key")                 \
    XX(ENOTFOUND, 404, "invalid_request_error", "not_found", "not found")                         \
    XX(EMETHOD, 405, "invalid_request_error", "method_not_allowed", "method not allowed")         \
    XX(ETOOBIG, 413, "invalid_request_error", "request_too_large", "request body too large")      \
    XX(EHDRTOOBIG, 431, "invalid_request_error", "headers_too_large",                              \
       "request header fields too large")                                                          \
    XX(ETIMEOUT, 408, "invalid_request_error", "request_timeout",                                  \
       "client did not send the request in time")                                                  \
    XX(EREQTIMEOUT, 408, "timeout_error", "request_timeout_exceeded",                                    \
       "the request did not complete within its request_timeout")                                 \
    XX(EUPCONN, 502, "api_error", "upstream_unreachable", "upstream unreachable")                 \
    XX(EUPPROTO, 502, "api_error", "upstream_bad_response", "upstream sent an invalid response")  \
    XX(EUPTOOBIG, 502, "api_error", "upstream_response_too_large",                                 \
       "upstream response too large")                                                              \
    XX(EUPTIMEOUT, 504, "timeout_error", "upstream_timeout", "upstream timed out")                \
    XX(EUPSTREAM, 502, "api_error", "upstream_stream_error", "upstream connection broke mid-response")            \
    XX(EUNAVAILABLE, 503, "api_error", "circuit_open",                                             \
       "every target's circuit breaker is open")                                                   \
    XX(ESHUTDOWN, 503, "api_error", "shutting_down", "gateway is shutting down")                  \
    XX(EINTERNAL, 500, "api_error", "internal_error", "internal error")                           \
    XX(EIO, 500, "api_error", "io_error", "I/O error")                                             \
    XX(EAUTH, 401, "authentication_error", "invalid_token", "invalid or expired token")           \
    XX(EBADKEY, 401, "authentication_error", "invalid_api_key", "invalid API key")                \
    XX(ENOSNAPSHOT, 503, "api_error", "no_snapshot",                                               \
       "this gateway has no snapshot from its control plane yet")                                 \
    XX(EFORBIDDEN, 403, "permission_error", "forbidden", "not allowed for this token's role")     \
    XX(ECONFLICT, 409, "invalid_request_error", "conflict", "conflicts with an existing object")  \
    XX(EPRECOND, 412, "invalid_request_error", "precondition_failed",                              \
       "the object changed since it was read (If-Match does not match its ETag)")                 \
    XX(EIDEMPOTENCY, 422, "invalid_request_error", "idempotency_key_reused",                       \
       "this Idempotency-Key was used with another request")                                     \
    XX(EDBDOWN, 503, "api_error", "database_unavailable",                                          \
       "the database is unreachable; nothing was changed, retry later")                           \
    XX(EDB, 500, "api_error", "database_error", "database error")

typedef enum {
    SL_OK = 0,
    SL_AGAIN = -1,
#define SL_ERR_ENUM(name, status, type, code, msg) SL_##name,
    SL__ERR_FIRST = -1000,
    SL_ERR_MAP(SL_ERR_ENUM)
#undef SL_ERR_ENUM
} sl_err_t;

/** Default message of an error code; never NULL. */
const char *sl_strerror(int err);
/** HTTP status to answer with for an error code. */
int sl_err_status(int err);
/** OpenAI-style error type ("invalid_request_error", ...). */
const char *sl_err_type(int err);
/** Machine-readable code ("invalid_json", ...). */
const char *sl_err_code(int err);

#endif
