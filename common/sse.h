/**
 * Server-sent events: a resumable decoder (WHATWG event-stream rules: LF,
 * CRLF or CR line ends, comments, multi-line data, one leading space after
 * the colon dropped, a UTF-8 BOM at the start ignored) and an encoder.
 *
 * The decoder gives the same events whether it is fed a stream whole or one
 * byte at a time. Each event is bounded by max_event bytes (SL_ETOOBIG past
 * it). Event views passed to the callback are valid only during the call.
 * Owns its buffers; one decoder per stream, one thread.
 */
#ifndef SL_SSE_H
#define SL_SSE_H

#include "common/buf.h"
#include "common/str.h"

typedef struct {
    sl_str_t event; /* empty when the stream gave no "event:" field */
    sl_str_t data;  /* data lines joined with "\n" */
    sl_str_t id;
    int has_id;
} sl_sse_event_t;

/** Called per event; a non-zero return stops decoding and is returned by feed. */
typedef int (*sl_sse_event_cb)(void *ud, const sl_sse_event_t *ev);

typedef struct sl_sse_decoder_s {
    sl_buf_t line;  /* current partial line */
    sl_buf_t data;  /* data buffer of the event being built */
    sl_buf_t event; /* event type */
    sl_buf_t id;
    int has_id;
    int has_fields; /* saw any field line since the last dispatch */
    int last_cr;    /* previous byte was CR: a following LF belongs to it */
    int started;    /* BOM check done */
    size_t max_event;
} sl_sse_decoder_t;

void sl_sse_decoder_init(sl_sse_decoder_t *d, size_t max_event);
void sl_sse_decoder_dispose(sl_sse_decoder_t *d);
/**
 * Feeds bytes. Returns 0, the callback's non-zero value, SL_ETOOBIG when one
 * event passes max_event, or SL_ENOMEM.
 */
int sl_sse_feed(sl_sse_decoder_t *d, const char *p, size_t n, sl_sse_event_cb cb, void *ud);
/**
 * Whether bytes of an unfinished event are pending (the stream stopped in the
 * middle of an event); such an event is never dispatched.
 */
int sl_sse_pending(const sl_sse_decoder_t *d);

/** Appends one encoded event ("event: ..\n", "data: ..\n" per line, "\n"). */
int sl_sse_encode(sl_buf_t *out, sl_str_t event, sl_str_t data);

#endif
