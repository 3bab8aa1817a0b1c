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

/* ---- usage and small JSON helpers ---------------------------------------- */

/** Fills px->usage from an OpenAI usage object (prompt/completion/cached/reasoning). */
void gw_tr_usage_from_openai(gw_proxy_t *px, const json_t *usage);
/** An OpenAI usage object from px->usage. New reference. */
json_t *gw_tr_usage_to_openai(const gw_proxy_t *px);

/** The compact JSON text of v in the request's arena (never json_dumps + free). */
sl_str_t gw_tr_dump(gw_proxy_t *px, const json_t *v);

/** The string at key, or NULL when absent or not a string. */
const char *gw_tr_str(const json_t *o, const char *key);
/** Parses px->resp as JSON; NULL when it is not JSON. New reference. */
json_t *gw_tr_parse_resp(gw_proxy_t *px);
/** "chatcmpl-<trace id>" style ids and the created timestamp, once per request. */
void gw_tr_ids(gw_proxy_t *px);

#endif
