/**
 * The mock LLM provider: a single-threaded libuv HTTP/1.1 server that imitates
 * provider APIs, one file per API format.
 *
 * Layout:
 *   mock_server.c     sockets, HTTP parsing, pipelining, timers, fault injection
 *   mock_record.c     the request recorder and the /__mock/ admin API
 *   mock_util.c       byte buffers, JSON string escaping, base64, small parsers
 *   mock_chat.c       what every chat format shares: token counts, text pieces,
 *                     tool arguments from a JSON schema, fake embeddings
 *   mock_openai.c     OpenAI (also Voyage and Jina embeddings on /v1/embeddings)
 *   mock_azure.c      Azure OpenAI (the OpenAI handlers behind Azure's paths)
 *   mock_anthropic.c  Anthropic Messages
 *   mock_gemini.c     Google Gemini API and Vertex AI generateContent
 *   mock_cohere.c     Cohere v2 chat and embed
 *   mock_bedrock.c    AWS Bedrock Converse, ConverseStream (event stream) and
 *                     InvokeModel embeddings
 *   main.c            command line only
 *
 * Threads: everything runs on the loop thread; nothing here is thread safe.
 * Failure: allocations of fixed or output size abort on failure (this is a
 * test tool, and a half-working mock is worse than a dead one); buffers whose
 * size comes from a request use the try variant and turn into an error reply.
 */
#ifndef SLUICE_TESTS_MOCK_PROVIDER_MOCK_H
#define SLUICE_TESTS_MOCK_PROVIDER_MOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Requests whose body exceeds this get a 413 and lose their connection. */
#define MOCK_MAX_BODY_BYTES ((size_t)64 << 20)
/* URL plus all header lines; more gets a 431. */
#define MOCK_MAX_HEAD_BYTES ((size_t)256 << 10)
#define MOCK_MAX_HEADERS 100
/* How many recorded requests the recorder keeps (oldest are dropped). */
#define MOCK_RECORD_MAX 1000

/* ---- small helpers (mock_util.c) ---------------------------------------- */

/** A borrowed byte string; base is NULL when the value is absent. */
typedef struct mock_str_s {
    const char *base;
    size_t len;
} mock_str_t;

/** A growable byte buffer. base is owned; it is NULL until the first append. */
typedef struct mock_buf_s {
    char *base;
    size_t len;
    size_t cap;
} mock_buf_t;

void mock_buf_init(mock_buf_t *b);
void mock_buf_dispose(mock_buf_t *b);
/** Ensures room for extra more bytes. Returns 0, or -1 if out of memory. */
int mock_buf_try_reserve(mock_buf_t *b, size_t extra) __attribute__((warn_unused_result));
/** Like mock_buf_try_reserve, but aborts when out of memory. */
void mock_buf_reserve(mock_buf_t *b, size_t extra);
void mock_buf_append(mock_buf_t *b, const void *p, size_t n);
#define MOCK_BUF_LIT(b, s) mock_buf_append((b), "" s, sizeof(s) - 1)
void mock_buf_append_u64(mock_buf_t *b, uint64_t v);
void mock_buf_append_i64(mock_buf_t *b, int64_t v);
void mock_buf_appendf(mock_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/**
 * Appends p as a quoted JSON string. Bytes that are not valid UTF-8 become
 * U+FFFD, so the output is always valid JSON whatever the input.
 */
void mock_buf_append_json_str(mock_buf_t *b, const char *p, size_t n);
void mock_buf_append_base64(mock_buf_t *b, const void *p, size_t n);

bool mock_utf8_valid(const char *p, size_t n);
/** Parses an unsigned decimal (surrounding blanks allowed) no larger than max. */
bool mock_parse_u64(mock_str_t s, uint64_t max, uint64_t *out);
bool mock_str_eq_nocase(mock_str_t s, const char *lit);
/** Unix time in seconds and CLOCK_REALTIME microseconds. */
int64_t mock_now_unix(void);
int64_t mock_now_us(void);
/** FNV-1a and splitmix64, for deterministic fake payloads. */
uint64_t mock_hash(const void *p, size_t n, uint64_t seed);
uint64_t mock_splitmix64(uint64_t *state);

/* ---- requests and replies ----------------------------------------------- */

typedef struct mock_header_s {
    mock_str_t name; /* as received, original case */
    mock_str_t value;
} mock_header_t;

/**
 * The x-mock-* request headers, parsed once when the headers are complete.
 * They are ignored (left at their defaults) for /__mock/ requests.
 */
typedef struct mock_faults_s {
    int status;              /* x-mock-status (200..599), 0 if absent */
    mock_str_t retry_after;  /* x-mock-retry-after, copied into Retry-After */
    uint64_t delay_ms;       /* x-mock-delay-ms: before the response head */
    uint64_t chunk_delay_ms; /* x-mock-chunk-delay-ms: between stream events */
    int64_t drop_after;      /* x-mock-drop-after, -1 if absent */
    bool malformed;          /* x-mock-malformed: 1 */
    bool timestamps;         /* x-mock-timestamps: 1 */
    bool close;              /* x-mock-close: 1 */
    mock_str_t content;      /* x-mock-content: reply text override */
    int64_t chunks;          /* x-mock-chunks: content pieces in a stream, -1 if absent */
    mock_str_t tool_call;    /* x-mock-tool-call: reply with a call to this tool */
    mock_str_t stream_error; /* x-mock-stream-error: error event mid-stream; NULL if absent */
    bool malformed_crc;      /* x-mock-malformed: crc (event-stream frames only) */
} mock_faults_t;

/**
 * One parsed request, as the format handlers see it. Everything in it is
 * borrowed from the server and valid until the reply is complete, except json,
 * which is valid only during the handler call.
 */
typedef struct mock_req_s {
    uint64_t id;      /* sequence number, unique per process; used in reply ids */
    uint64_t conn_id; /* sequence number of the TCP connection it came on */
    unsigned method;  /* enum http_method */
    mock_str_t url;   /* path and query as received */
    mock_str_t path;  /* url up to '?' */
    mock_str_t query; /* after '?', empty if none */
    const mock_header_t *headers;
    size_t n_headers;
    mock_str_t body; /* decoded (de-chunked) body */
    json_t *json;    /* the body parsed, for MOCK_ROUTE_JSON routes; else NULL */
    mock_faults_t faults;
    int64_t events_sent;    /* stream events written so far; read by mock_sse_emit */
    uint64_t processing_ms; /* set just before the format's headers hook runs */
} mock_req_t;

/** Case-insensitive header lookup; returns a str with base NULL if absent. */
mock_str_t mock_req_header(const mock_req_t *req, const char *name);

/**
 * A streamed reply: the server calls next() each time an event is due (so a
 * timestamp taken inside next() is the write time) and sends what it appended
 * to out as one HTTP chunk. next() returns false, appending nothing, when the
 * stream is over. free() releases state; it runs exactly once, also when the
 * client disconnects early.
 */
typedef struct mock_stream_ops_s {
    bool (*next)(mock_req_t *req, void *state, mock_buf_t *out);
    void (*free)(void *state);
} mock_stream_ops_t;

/** What a handler fills in. */
typedef struct mock_resp_s {
    int status;                      /* 200 on entry */
    const char *content_type;        /* static string; "application/json" on entry */
    mock_buf_t *body;                /* borrowed server scratch buffer, empty on entry */
    mock_buf_t *headers;             /* borrowed scratch: extra "name: value\r\n" lines */
    const mock_stream_ops_t *stream; /* set to stream the reply instead of sending body */
    void *stream_state;              /* owned by the stream once set */
} mock_resp_t;

/** Appends one SSE event: optional "event:" line, then "data: <data>\n\n".
 * It applies x-mock-timestamps (adds "x_mock_sent_us" to a JSON object) and
 * x-mock-malformed (the second event's data is cut in half). */
void mock_sse_emit(const mock_req_t *req, mock_buf_t *out, const char *event, const char *data,
                   size_t len);
/** mock_sse_emit with another line end: "\r\n" gives "data: <data>\r\n\r\n". */
void mock_sse_emit_eol(const mock_req_t *req, mock_buf_t *out, const char *event, const char *data,
                       size_t len, const char *eol);
/** Appends an event's payload with the x-mock-timestamps and x-mock-malformed
 * treatment of mock_sse_emit, for streams that are not SSE. */
void mock_emit_payload(const mock_req_t *req, mock_buf_t *out, const char *data, size_t len);

/* ---- API formats ---------------------------------------------------------- */

typedef void (*mock_handler_fn)(mock_req_t *req, mock_resp_t *resp);

#define MOCK_ROUTE_PREFIX 1u /* path is a prefix, not the whole path */
#define MOCK_ROUTE_JSON 2u   /* the body must be a JSON object; the server parses it */

typedef struct mock_route_s {
    int method; /* enum http_method */
    /* A '*' matches one or more characters other than '/' (the model in
     * "/v1beta/models/" "*:generateContent"); the rest matches itself. */
    const char *path;
    unsigned flags;
    mock_handler_fn handler;
} mock_route_t;

typedef enum mock_err_kind_e {
    MOCK_ERR_INJECTED,  /* x-mock-status >= 400 */
    MOCK_ERR_AUTH,      /* no credentials */
    MOCK_ERR_BAD_JSON,  /* body of a MOCK_ROUTE_JSON route is not a JSON object */
    MOCK_ERR_NOT_FOUND, /* no route matched */
} mock_err_kind_t;

/**
 * One provider API. Routes of all formats are tried in order; a request that
 * matches none is answered by the first format (OpenAI).
 */
typedef struct mock_format_s {
    const char *name;
    const mock_route_t *routes; /* terminated by an entry with path NULL */
    bool (*authorized)(const mock_req_t *req);
    /* Writes this API's error object and sets resp->status. */
    void (*error)(mock_req_t *req, mock_resp_t *resp, mock_err_kind_t kind, int status);
    /* Appends this API's extra response header lines ("name: value\r\n"). */
    void (*headers)(const mock_req_t *req, mock_buf_t *out);
} mock_format_t;

extern const mock_format_t mock_openai_format;
extern const mock_format_t mock_azure_format;
extern const mock_format_t mock_anthropic_format;
extern const mock_format_t mock_gemini_format;
extern const mock_format_t mock_cohere_format;
extern const mock_format_t mock_bedrock_format;

/** The OpenAI handlers, shared with mock_azure.c. */
typedef struct mock_openai_opts_s {
    mock_str_t model; /* used when the body has no "model"; base NULL makes it required */
    bool azure;       /* add Azure's content filter results */
} mock_openai_opts_t;

void mock__openai_chat(mock_req_t *req, mock_resp_t *resp, const mock_openai_opts_t *o);
void mock__openai_completions(mock_req_t *req, mock_resp_t *resp, const mock_openai_opts_t *o);
void mock__openai_embeddings(mock_req_t *req, mock_resp_t *resp, const mock_openai_opts_t *o);
/** Writes an OpenAI error object ("param" and "code" may be NULL). */
void mock__openai_error_reply(mock_resp_t *resp, int status, const char *message, const char *type,
                              const char *param, const char *code);

/* ---- what the chat formats share (mock_chat.c) ------------------------------ */

/** The reply text when x-mock-content is absent. */
#define MOCK_DEFAULT_TEXT "This is a mock response."

uint64_t mock_count_chars(const char *s, size_t n); /* UTF-8 code points */
uint64_t mock_count_words(const char *s, size_t n); /* runs of non-blanks */
/** chars / 4, at least 1: the input token count of every format. */
uint64_t mock_tokens_from_chars(uint64_t chars);
/** Characters of a JSON string, or 0 for anything else. */
uint64_t mock_json_chars(const json_t *s);
/** x-mock-content, or MOCK_DEFAULT_TEXT. */
mock_str_t mock_reply_text(const mock_req_t *req);
/** The first max_words words of text (blanks between them kept); sets
 * *truncated when words were dropped. */
mock_str_t mock_truncate_words(mock_str_t text, uint64_t max_words, bool *truncated);

/**
 * A reply text cut into stream pieces. The text is split into tokens, each a
 * word with the blanks before it. With n_pieces <= tokens the tokens are
 * grouped evenly; with more, the text repeats one token per piece. Pieces are
 * computed on demand, so a million pieces cost nothing but the token table.
 */
typedef struct mock_pieces_s {
    mock_buf_t text; /* owned copy */
    size_t *tokens;  /* owned: start of each token, then the text length */
    size_t n_tokens;
    uint64_t n_pieces;
} mock_pieces_t;

/** chunks < 0 gives one piece per token. */
void mock_pieces_init(mock_pieces_t *p, mock_str_t text, int64_t chunks);
void mock_pieces_dispose(mock_pieces_t *p);
/** Appends piece i as a JSON string. */
void mock_pieces_append(const mock_pieces_t *p, uint64_t i, mock_buf_t *out);
/** The output token count: words of the text, or n_pieces when the text repeats. */
uint64_t mock_pieces_output_tokens(const mock_pieces_t *p);
/** Output tokens carried by pieces 0..i (for cumulative usage), capped by the total. */
uint64_t mock_pieces_tokens_upto(const mock_pieces_t *p, uint64_t i);

/**
 * Appends the arguments a tool is called with: a compact JSON object with one
 * value per property of the JSON schema, in schema order (enum: its first
 * value; string "mock"; integer and number 1; boolean true; array []; object:
 * the same rule one level down, up to 4 levels; anything else null). A
 * missing or property-less schema gives {}.
 */
void mock_tool_args(const json_t *schema, mock_buf_t *out);
/** Splits a JSON text in n pieces on character boundaries; piece i is [*from, *to). */
void mock_split_piece(const mock_buf_t *s, uint64_t i, uint64_t n, size_t *from, size_t *to);
/** How many argument pieces a streamed tool call is cut into (3, fewer for short ones). */
uint64_t mock_arg_pieces(const mock_buf_t *args);

/** Appends a compact JSON encoding of v. */
void mock_buf_append_json(mock_buf_t *b, const json_t *v);
void mock_buf_append_json_cstr(mock_buf_t *b, const char *s);
/** Appends "00000000-0000-4000-8000-<n as 12 decimal digits>", a UUID-shaped id. */
void mock_buf_append_uuid(mock_buf_t *b, uint64_t n);
/** Appends s with %XX escapes decoded. */
void mock_buf_append_pct_decoded(mock_buf_t *b, const char *s, size_t n);
/** The value of query parameter name (not decoded), base NULL if absent. */
mock_str_t mock_query_param(const mock_req_t *req, const char *name);
/** True if x-mock-stream-error asks for the default error ("1" or "true"). */
bool mock_stream_error_default(const mock_req_t *req);

/** Default embedding size of every format, unless the request asks for another. */
#define MOCK_EMBED_DIMS 8
#define MOCK_EMBED_MAX_DIMS 65536
/** Fills v with a unit vector derived from seed. */
void mock_fake_embedding(uint64_t seed, float *v, size_t dims);
/** Appends v as a JSON array of floats ("%.9g"). */
void mock_buf_append_floats(mock_buf_t *b, const float *v, size_t dims);
/** Appends v as base64 of little-endian float32. */
void mock_buf_append_floats_b64(mock_buf_t *b, const float *v, size_t dims);

/** Embedding value types of Cohere, Voyage and Jina. */
typedef enum mock_embed_type_e {
    MOCK_EMBED_FLOAT,
    MOCK_EMBED_INT8,    /* round(v * 127) */
    MOCK_EMBED_UINT8,   /* round((v + 1) * 127.5) */
    MOCK_EMBED_BINARY,  /* sign bits packed 8 per byte, first in the high bit, minus 128 */
    MOCK_EMBED_UBINARY, /* the same bytes, unsigned */
} mock_embed_type_t;

/** "float", "int8", "uint8", "binary" or "ubinary". */
bool mock_embed_type_parse(const char *s, mock_embed_type_t *out);
/** Appends v as a JSON array of that type, or with base64 as a JSON string:
 * base64 of float32 little-endian for floats, of one byte per value otherwise. */
void mock_buf_append_embedding(mock_buf_t *b, const float *v, size_t dims, mock_embed_type_t type,
                               bool base64);

/* ---- AWS Signature Version 4 (mock_bedrock.c) ------------------------------ */

/** The parts of a SigV4 "Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=...,
 * Signature=..." header. */
typedef struct mock_sigv4_s {
    mock_str_t access_key, date, region, service, signed_headers, signature;
} mock_sigv4_t;

/** Splits an AWS4-HMAC-SHA256 Authorization value; false if it is not one. The
 * parts borrow from auth. Format only: the signature is never verified. */
bool mock_sigv4_parse(mock_str_t auth, mock_sigv4_t *out);

/* ---- recorder (mock_record.c) --------------------------------------------- */

typedef struct mock_record_s mock_record_t;

/** A ring of the last MOCK_RECORD_MAX requests; records are owned. */
typedef struct mock_records_s {
    mock_record_t *ring[MOCK_RECORD_MAX];
    size_t start;
    size_t count;
} mock_records_t;

void mock_records_init(mock_records_t *r);
void mock_records_clear(mock_records_t *r);
void mock_records_add(mock_records_t *r, const mock_req_t *req);
/** Answers a request under /__mock/. r is NULL when recording is off. */
void mock_admin_handle(mock_records_t *r, mock_req_t *req, mock_resp_t *resp);

/* ---- server (mock_server.c) ----------------------------------------------- */

typedef struct mock_config_s {
    const char *host;
    int port;    /* 0 picks a free port */
    bool record; /* keep requests for /__mock/requests */
    bool quiet;  /* nothing on stderr but fatal errors */
} mock_config_t;

/**
 * Listens, prints "listening on HOST:PORT" to stdout, and serves until SIGTERM
 * or SIGINT. Returns the process exit code; all memory is freed on return.
 */
int mock_server_run(const mock_config_t *cfg);

#endif
