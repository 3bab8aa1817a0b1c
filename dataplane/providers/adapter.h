/**
 * A provider adapter: the hooks that speak one API format, so that the
 * pipeline (proxy.c) never knows which format it is relaying. One file per
 * format behind this header: openai.c (OpenAI, OpenAI-compatible, Azure),
 * anthropic.c, gemini.c, bedrock.c, cohere.c. Adapters are stateless
 * tables; per-request state lives in gw_proxy_t (px->tr.adapter). What they
 * share (URLs, auth, emitting OpenAI answers and chunks in the client's
 * format) is in translate.h. Hooks run on the loop thread, the stream hooks
 * inside upstream callbacks (they must not abort the transfer themselves:
 * they return an error and the pipeline does).
 *
 * Contract: build_request gets an OpenAI-format request in px->body (for
 * GW_EP_CHAT and GW_EP_EMBEDDINGS when the format translates; other
 * endpoints only reach formats that list them in their provider's
 * endpoints). on_response gets every buffered answer, 2xx or not, in
 * px->resp, and must leave the client's answer there (gw_tr_respond_json,
 * gw_tr_respond_error). on_stream_data gets 2xx stream bytes and emits with
 * gw_tr_emit_chunk / gw_tr_emit_done.
 */
#ifndef GW_ADAPTER_H
#define GW_ADAPTER_H

#include "common/buf.h"
#include "common/provider.h"

typedef struct gw_proxy_s gw_proxy_t;

typedef struct gw_adapter_s {
    const char *name;
    /** Fills px->url, px->up_headers and px->up_body. 0 or SL_E*. */
    int (*build_request)(gw_proxy_t *px);
    /** Once the upstream head is in (px->up): how to relay the body. */
    int (*response_mode)(gw_proxy_t *px);
    /**
     * Stream bytes as they arrive: appends what the client should get to
     * out (OpenAI-format SSE). 0, or SL_E* to end the stream with an error
     * event (what was appended before the failure is still sent).
     */
    int (*on_stream_data)(gw_proxy_t *px, const char *p, size_t n, sl_buf_t *out);
    /**
     * Optional. After a clean end of the upstream body, before
     * stream_complete: appends to out what ends the client's stream, for
     * formats without an end marker (Gemini). 0 or SL_E*.
     */
    int (*stream_end)(gw_proxy_t *px, sl_buf_t *out);
    /** After a clean end of the upstream body: was the stream complete? */
    int (*stream_complete)(gw_proxy_t *px);
    /** A buffered body (px->resp) before it is answered; NULL relays it as is. */
    int (*on_response)(gw_proxy_t *px);
} gw_adapter_t;

/** The adapter of an API format (never NULL for a format in the table). */
const gw_adapter_t *gw_adapter_for(sl_api_format_t format);

extern const gw_adapter_t gw_adapter_openai;    /* openai.c: OpenAI and Azure OpenAI */
extern const gw_adapter_t gw_adapter_anthropic; /* anthropic.c */
extern const gw_adapter_t gw_adapter_gemini;    /* gemini.c: Gemini API and Vertex AI */
extern const gw_adapter_t gw_adapter_bedrock;   /* bedrock.c */
extern const gw_adapter_t gw_adapter_cohere;    /* cohere.c */

#endif
