/**
 * What every adapter shares (translate.c), so that each format's file holds
 * only its own mapping:
 *
 *  - the OpenAI chat format is the hub: a request reaches an adapter as an
 *    OpenAI request (px->body; /v1/messages bodies are converted first by
 *    anthropic_in.c), and every adapter hands back OpenAI responses, OpenAI
 *    stream chunks and OpenAI errors through the functions below, which
 *    deliver them in the client's format (OpenAI, or Anthropic for
 *    /v1/messages);
 *  - upstream URL building (custom host, {placeholders}) and provider auth;
 *  - usage normalisation and retryable statuses.
 *
 * All of it runs on the loop thread; JSON values built here are owned by
 * the caller unless a function says it steals them. Strings returned live in
 * the request's arena.
 */
#ifndef GW_TRANSLATE_H
#define GW_TRANSLATE_H

#include <jansson.h>

#include "common/buf.h"
#include "common/sse.h"
#include "dataplane/proxy/stage.h"

/* ---- building the upstream request ------------------------------------- */

/**
 * The base URL for this request: the custom host when given, else the
 * provider's, with its {placeholders} filled from x-sluice-<name> headers
 * (or the model for {model}). No trailing slash. On a missing or invalid
 * value sets px->error_message/error_param and returns SL_EINVAL.
 */
int gw_tr_base_url(gw_proxy_t *px, sl_str_t *out);

/** Sets px->url to base + path (path starts with '/', may hold a query). */
void gw_tr_set_url(gw_proxy_t *px, sl_str_t base, const char *path_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** 1 for a URL-safe token: letters, digits, '-', '_', '.' (1 to 200 of them). */
int gw_tr_token_ok(sl_str_t v);

/** Starts px->up_headers with room for `extra` more than the caller's own. */
void gw_tr_headers_init(gw_proxy_t *px, size_t extra);
/** Appends one upstream header (name and value copied into the arena). */
void gw_tr_header_add(gw_proxy_t *px, sl_str_t name, sl_str_t value);
/**
 * Forwards the client's own headers (tracing, user agent, provider extras
 * such as Cohere's X-Client-Name): all but hop-by-hop ones, what the upstream
 * client manages, the gateway's (x-sluice-*, x-portkey-*), the client's
 * credentials (the key goes in the provider's style) and x-amz-*. For a
 * translated request (`translated`: the body is the adapter's) also
 * Content-Type, Accept and other vendors' API headers (openai-*,
 * anthropic-*, x-stainless-*); the anthropic adapter adds its own. A
 * routing config's forward_headers adds the headers it names (but never
 * the transport's own, credentials, nor the gateway's).
 */
void gw_tr_forward_headers(gw_proxy_t *px, int translated);

/**
 * Adds the provider's auth header for px->api_key in the provider's style
 * (bearer, x-api-key, api-key, x-goog-api-key). SIGV4 and QUERY_KEY are the
 * adapter's own business. No key and an optional style: nothing added.
 */
void gw_tr_auth_header(gw_proxy_t *px);
/** px->up_body = the JSON text of v (compact), in the arena. Does not steal v. */
int gw_tr_set_body(gw_proxy_t *px, const json_t *v);

/* ---- responses ---------------------------------------------------------- */

/**
 * A buffered 2xx answer translated to OpenAI format: replaces px->resp with
 * the client's format of `resp` (steals the reference) and sets the
 * content type. 0 or SL_E*.
 */
int gw_tr_respond_json(gw_proxy_t *px, json_t *resp);

/**
 * A provider error: keeps the raw body for the log record, marks the
 * request retryable for 429/503/529, and replaces px->resp with an OpenAI
 * error object {"error":{"message","type","param","code"}} (or Anthropic's
 * shape for /v1/messages). The upstream status is kept. type/code may be
 * NULL (then derived from the status).
 */
int gw_tr_respond_error(gw_proxy_t *px, const char *message, const char *type, const char *code);

/** Keeps the raw error body (px->resp) for the log and marks retryable statuses. */
void gw_tr_note_error(gw_proxy_t *px);

/** 1 when a provider answer with this status may be retried elsewhere. */
int gw_tr_retryable_status(int status);

/* ---- streams ------------------------------------------------------------ */

/**
 * One OpenAI chat.completion.chunk for the client: encoded as an SSE event
 * in the client's format and appended to out. Steals the reference. Fills
 * id/object/created/model when the chunk lacks them (from px->tr). A chunk
 * with "usage" updates px->usage; a usage-only chunk (empty choices) is
 * dropped for OpenAI clients that did not ask for stream_options.include_usage.
 */
int gw_tr_emit_chunk(gw_proxy_t *px, json_t *chunk, sl_buf_t *out);
/** The end of a complete stream: [DONE] (or message_stop); sets px->sse_done. */
int gw_tr_emit_done(gw_proxy_t *px, sl_buf_t *out);

/** A chunk skeleton {"choices":[{"index":0,"delta":{}}]}; *delta gets the delta object. */
json_t *gw_tr_chunk_new(json_t **delta);

/* ---- what every adapter's plumbing shares -------------------------------- */

/** The adapter's per-request state: `size` zeroed bytes in the arena, made on first use. */
void *gw_tr_state(gw_proxy_t *px, size_t size);
/** A request the format cannot express: sets the message and param, returns SL_EINVAL. */
int gw_tr_invalid(gw_proxy_t *px, const char *param, const char *msg);
/** GW_RESP_MODE_SSE for a 2xx text/event-stream answer, else GW_RESP_MODE_BUFFER. */
int gw_tr_sse_response_mode(gw_proxy_t *px);

/* What an SSE adapter's event callback gets: stop with f->err = SL_E*. */
typedef struct {
    gw_proxy_t *px;
    sl_buf_t *out;
    int err;
} gw_tr_feed_t;

/**
 * Feeds stream bytes to px->sse; on_event(ud = gw_tr_feed_t *) runs per
 * event and returns nonzero to stop (with f->err set). 0, the callback's
 * error, SL_EUPTOOBIG for an oversized event or SL_EUPSTREAM for bad framing.
 */
int gw_tr_sse_feed(gw_proxy_t *px, const char *p, size_t n, sl_buf_t *out,
                   int (*on_event)(void *ud, const sl_sse_event_t *ev));
/** gw_tr_emit_chunk into f->out; a failure is kept in f->err and returned. */
int gw_tr_feed_emit(gw_tr_feed_t *f, json_t *chunk);
/** The answer's first chunk (role assistant, empty content), once: *sent guards it. */
int gw_tr_feed_role(gw_tr_feed_t *f, int *sent);

/* ---- usage and small JSON helpers ---------------------------------------- */

/** Fills px->usage from an OpenAI usage object (prompt/completion/cached/reasoning). */
void gw_tr_usage_from_openai(gw_proxy_t *px, const json_t *usage);
/** Appends the OpenAI usage object of px->usage as JSON text (what gw_tr_usage_to_openai makes). */
int gw_tr_write_usage(const gw_proxy_t *px, sl_buf_t *out);
/** An OpenAI usage object from px->usage. New reference. */
json_t *gw_tr_usage_to_openai(const gw_proxy_t *px);

/** The compact JSON text of v in the request's arena (never json_dumps + free). */
sl_str_t gw_tr_dump(gw_proxy_t *px, const json_t *v);

/** The integer at key, or 0 when absent or not an integer. */
long long gw_tr_int(const json_t *o, const char *key);
/** An embedding as OpenAI's base64 (little-endian float32). New reference, or NULL. */
json_t *gw_tr_embedding_base64(gw_proxy_t *px, const json_t *vec);

/** The string at key, or NULL when absent or not a string. */
const char *gw_tr_str(const json_t *o, const char *key);
/** Parses px->resp as JSON; NULL when it is not JSON. New reference. */
json_t *gw_tr_parse_resp(gw_proxy_t *px);
/** "chatcmpl-<trace id>" style ids and the created timestamp, once per request. */
void gw_tr_ids(gw_proxy_t *px);

#endif
