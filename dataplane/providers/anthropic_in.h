/**
 * Inbound Anthropic format: POST /v1/messages. The request is converted to
 * the OpenAI hub format on the way in (so that every later stage and every
 * adapter sees one format), and answers, stream chunks and errors are
 * converted back to Anthropic's Messages format on the way out. Routed to
 * the anthropic provider, the client's bytes go through untouched instead.
 * Loop thread only; JSON arguments are borrowed unless said otherwise.
 */
#ifndef GW_ANTHROPIC_IN_H
#define GW_ANTHROPIC_IN_H

#include <jansson.h>

#include "common/buf.h"
#include "dataplane/proxy/stage.h"

/**
 * Converts px->body (an Anthropic Messages request) to an OpenAI chat
 * request: px->body is replaced (the original kept in px->tr.client_body),
 * px->stream/include_usage/model set. 0, or SL_EINVAL with
 * px->error_message/error_param.
 */
int gw_anthropic_in_request(gw_proxy_t *px);
/** An Anthropic message for an OpenAI chat completion. New reference or NULL. */
json_t *gw_anthropic_in_response(gw_proxy_t *px, const json_t *openai);
/** {"type":"error","error":{"type","message"}} for a status. New reference. */
json_t *gw_anthropic_in_error(int status, const char *message);
/** Anthropic's error type for an HTTP status. */
const char *gw_anthropic_error_type(int status);
/** One OpenAI chunk as Anthropic stream events appended to out. Steals chunk. */
int gw_anthropic_in_chunk(gw_proxy_t *px, json_t *chunk, sl_buf_t *out);
/** Closes the message: content_block_stop, message_delta, message_stop. */
int gw_anthropic_in_done(gw_proxy_t *px, sl_buf_t *out);
/** An error event ending a broken stream. */
int gw_anthropic_in_stream_error(gw_proxy_t *px, const char *message, int status, sl_buf_t *out);

#endif
