/**
 * The AWS event-stream framing (application/vnd.amazon.eventstream) that
 * Bedrock's ConverseStream and InvokeModelWithResponseStream answer with:
 * a resumable decoder and, for tests and fuzz seeds, an encoder.
 *
 * One message on the wire (all integers big-endian):
 *
 *   total length   u32   the whole message, these 4 bytes included
 *   headers length u32   bytes of the header block
 *   prelude CRC    u32   CRC-32 of the 8 bytes above
 *   headers              headers length bytes, each header being
 *                          name length u8 (1..255), name,
 *                          value type u8, value:
 *                            0 bool true, 1 bool false (no value bytes)
 *                            2 byte (i8), 3 short (i16), 4 int (i32),
 *                            5 long (i64), 8 timestamp (i64, ms since epoch)
 *                            6 byte array, 7 string (u16 length, bytes)
 *                            9 uuid (16 bytes)
 *   payload              total - headers length - 16 bytes
 *   message CRC    u32   CRC-32 of everything before it
 *
 * CRC-32 is the standard (zlib, IEEE 802.3) one. A message is at least 16
 * bytes. Bedrock sets the string headers :message-type ("event",
 * "exception" or "error"), :event-type, :exception-type, :content-type,
 * :error-code and :error-message, and the payload is JSON.
 *
 * The decoder gets the body in arbitrary pieces and gives the same messages
 * whether it is fed a stream whole, one byte at a time, or cut anywhere.
 * Complete messages in the input are decoded in place; only an unfinished
 * one is copied, into a buffer capped at max_message (SL_ETOOBIG past it,
 * checked from the prelude before anything is buffered). Errors are sticky:
 * after one, every feed returns it again without calling back (the framing
 * is lost; there is no resynchronizing). The decoder owns its buffer; one
 * decoder per stream, one thread.
 */
#ifndef GW_EVENTSTREAM_H
#define GW_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/str.h"

#define GW_ES_PRELUDE_LEN 12
#define GW_ES_MIN_MESSAGE 16
/* The AWS SDKs refuse messages above 16 MiB; a good cap to pass to init. */
#define GW_ES_DEFAULT_MAX_MESSAGE (16u << 20)

enum {
    GW_ES_BOOL_TRUE = 0,
    GW_ES_BOOL_FALSE = 1,
    GW_ES_BYTE = 2,
    GW_ES_SHORT = 3,
    GW_ES_INT = 4,
    GW_ES_LONG = 5,
    GW_ES_BYTES = 6,
    GW_ES_STRING = 7,
    GW_ES_TIMESTAMP = 8,
    GW_ES_UUID = 9,
};

/**
 * One decoded message. Every view points into the decoder's input or
 * buffer and is valid only during the callback. A field is empty when the
 * message has no such string header (when a name repeats, the last wins).
 */
typedef struct {
    sl_str_t message_type;   /* :message-type */
    sl_str_t event_type;     /* :event-type */
    sl_str_t exception_type; /* :exception-type */
    sl_str_t content_type;   /* :content-type */
    sl_str_t error_code;     /* :error-code */
    sl_str_t error_message;  /* :error-message */
    sl_str_t payload;
    sl_str_t headers; /* the raw header block, walk it with gw_es_header_next */
} gw_es_message_t;

/** One header; which fields hold the value depends on type. */
typedef struct {
    sl_str_t name;
    int type;       /* GW_ES_* */
    int64_t i;      /* bool (1/0), byte, short, int, long, timestamp (ms) */
    sl_str_t bytes; /* byte array, string, uuid (16 bytes) */
} gw_es_header_t;

/** Called per message; a non-zero return stops the decoder (feed returns 1). */
typedef int (*gw_es_cb)(void *ud, const gw_es_message_t *m);

typedef struct gw_es_decoder_s {
    sl_buf_t _buf;       /* owned: bytes of the unfinished message */
    size_t _max_message; /* cap on one message's total length */
    size_t _need;        /* total length of the buffered message, 0 until its prelude is in */
    int _err;            /* sticky: 0, 1 (stopped by the callback) or SL_E* */
} gw_es_decoder_t;

/** Initializes a decoder that accepts messages up to max_message bytes; allocates nothing. */
void gw_es_decoder_init(gw_es_decoder_t *d, size_t max_message);
/** Frees the buffer; the decoder may be initialized again. */
void gw_es_decoder_dispose(gw_es_decoder_t *d);

/**
 * Feeds n bytes (p may be NULL when n is 0). Calls cb for each complete
 * message, in order. Returns 0 when all bytes were consumed; 1 when cb
 * returned non-zero (the bytes after that message are dropped and every
 * later feed returns 1 at once); SL_EUPPROTO for a bad prelude CRC, a total
 * length below 16, a header block longer than the message allows, a
 * malformed header or a bad message CRC; SL_ETOOBIG when a message is
 * longer than max_message; SL_ENOMEM.
 */
int gw_es_feed(gw_es_decoder_t *d, const char *p, size_t n, gw_es_cb cb, void *ud);

/** Whether bytes of an unfinished message are buffered (the stream was cut mid-message). */
int gw_es_pending(const gw_es_decoder_t *d);

/**
 * Walks the header block of a message (valid during the callback only):
 * start with *off = 0; returns 1 and fills *h while there is a header, 0
 * at the end. The decoder validated the block before calling back, so this
 * cannot fail on a message it passed; on other input it returns 0 at the
 * first malformed header.
 */
int gw_es_header_next(const gw_es_message_t *m, size_t *off, gw_es_header_t *h);

/**
 * Appends one encoded message with the given headers (every type; for
 * bools only type matters, for byte/short/int the value must fit) and
 * payload. SL_EINVAL for an empty or 255+ byte name, a string or byte
 * array over 65535 bytes, a uuid not 16 bytes, an unknown type, a value out
 * of range, or a message over 4 GiB; SL_ETOOBIG (out's cap); SL_ENOMEM. out
 * is unchanged on error. For tests and fuzz seeds: the gateway never sends
 * event streams.
 */
int gw_es_encode_headers(sl_buf_t *out, const gw_es_header_t *h, size_t nh, sl_str_t payload);

/** Same, with string headers only (hnames[i] = hvalues[i]). */
int gw_es_encode(sl_buf_t *out, const sl_str_t *hnames, const sl_str_t *hvalues, size_t nh,
                 sl_str_t payload);

#endif
