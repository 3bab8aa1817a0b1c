/*
 * AWS Bedrock Runtime: Converse, ConverseStream and InvokeModel for the Titan
 * and Cohere embedding models, under /model/{modelId}/....
 *
 * Requests must carry a Signature Version 4 Authorization header (its format
 * and credential scope are checked, the signature itself never is) and
 * X-Amz-Date, or a Bedrock API key as "Authorization: Bearer". Errors are
 * {"message": ...} with the exception name in x-amzn-ErrorType.
 *
 * ConverseStream answers in the AWS event stream encoding
 * (application/vnd.amazon.eventstream), one frame per event:
 *
 *   total length    u32 big endian, the whole frame
 *   headers length  u32 big endian
 *   prelude CRC     u32 big endian, CRC-32 of the 8 bytes above
 *   headers         per header: name length u8, name, value type u8 (7 =
 *                   string), value length u16 big endian, value
 *   payload         JSON
 *   message CRC     u32 big endian, CRC-32 of everything before it
 *
 * with the headers :event-type, :content-type (application/json) and
 * :message-type (event), or :exception-type, :content-type and
 * :message-type (exception) for an error. CRC-32 is the one of zlib and
 * Ethernet (reflected polynomial 0xEDB88320).
 *
 * Like Bedrock, every event payload carries a "p" field of padding (a prefix
 * of a-zA-Z0-9) whose length varies from event to event, so that the sizes of
 * the frames do not give away the sizes of the tokens.
 */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/mock_provider/mock.h"

#define ERROR_NS_BEDROCK ":http://internal.amazon.com/coral/com.amazon.bedrock/"
#define ERROR_NS_CORAL ":http://internal.amazon.com/coral/com.amazon.coral.service/"
#define PADDING "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
#define THROTTLED_MESSAGE "Too many requests, please wait before trying again."

/* ---- CRC-32 and frames ------------------------------------------------------------------ */

static uint32_t crc_table[256];

static uint32_t crc32_update(uint32_t crc, const void *data, size_t n)
{
    const unsigned char *p = data;

    if (crc_table[1] == 0) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
    }
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void put_u32(mock_buf_t *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    mock_buf_append(b, x, 4);
}

/* Appends one event-stream message; names[i] = values[i] are string headers. */
static void append_frame(mock_buf_t *out, const char *const *names, const char *const *values,
                         size_t n_headers, const char *payload, size_t len, bool bad_crc)
{
    size_t start = out->len, hlen = 0;

    for (size_t i = 0; i < n_headers; i++)
        hlen += 1 + strlen(names[i]) + 1 + 2 + strlen(values[i]);
    put_u32(out, (uint32_t)(12 + hlen + len + 4));
    put_u32(out, (uint32_t)hlen);
    put_u32(out, crc32_update(0, out->base + start, 8));
    for (size_t i = 0; i < n_headers; i++) {
        size_t nl = strlen(names[i]), vl = strlen(values[i]);
        unsigned char h[3] = {(unsigned char)nl, 7, 0};
        mock_buf_append(out, h, 1);
        mock_buf_append(out, names[i], nl);
        h[0] = 7;
        h[1] = (unsigned char)(vl >> 8);
        h[2] = (unsigned char)vl;
        mock_buf_append(out, h, 3);
        mock_buf_append(out, values[i], vl);
    }
    mock_buf_append(out, payload, len);
    uint32_t crc = crc32_update(0, out->base + start, out->len - start);
    put_u32(out, bad_crc ? ~crc : crc);
}

/* ---- SigV4 ---------------------------------------------------------------------------------- */

static bool next_component(const char **p, const char *end, mock_str_t *key, mock_str_t *value)
{
    const char *s = *p, *eq, *stop;

    while (s < end && (*s == ' ' || *s == ','))
        s++;
    if (s == end)
        return false;
    stop = memchr(s, ',', (size_t)(end - s));
    if (stop == NULL)
        stop = end;
    eq = memchr(s, '=', (size_t)(stop - s));
    if (eq == NULL) {
        *key = (mock_str_t){s, (size_t)(stop - s)};
        *value = (mock_str_t){stop, 0};
    } else {
        *key = (mock_str_t){s, (size_t)(eq - s)};
        *value = (mock_str_t){eq + 1, (size_t)(stop - eq - 1)};
    }
    while (value->len > 0 && value->base[value->len - 1] == ' ')
        value->len--;
    *p = stop;
    return true;
}

bool mock_sigv4_parse(mock_str_t auth, mock_sigv4_t *out)
{
    static const char algo[] = "AWS4-HMAC-SHA256 ";
    mock_str_t key, value, cred = {NULL, 0};

    memset(out, 0, sizeof(*out));
    if (auth.base == NULL || auth.len < sizeof(algo) - 1 ||
        memcmp(auth.base, algo, sizeof(algo) - 1) != 0)
        return false;
    const char *p = auth.base + sizeof(algo) - 1, *end = auth.base + auth.len;
    while (next_component(&p, end, &key, &value)) {
        if (mock_str_eq_nocase(key, "Credential"))
            cred = value;
        else if (mock_str_eq_nocase(key, "SignedHeaders"))
            out->signed_headers = value;
        else if (mock_str_eq_nocase(key, "Signature"))
            out->signature = value;
    }
    /* Credential=AKID/YYYYMMDD/region/service/aws4_request */
    mock_str_t *parts[4] = {&out->access_key, &out->date, &out->region, &out->service};
    const char *s = cred.base, *cend = cred.base + cred.len;
    for (int i = 0; s != NULL && i < 4; i++) {
        const char *slash = memchr(s, '/', (size_t)(cend - s));
        if (slash == NULL)
            return true; /* an incomplete scope: the caller sees empty parts */
        *parts[i] = (mock_str_t){s, (size_t)(slash - s)};
        s = slash + 1;
    }
    if (s == NULL || !mock_str_eq_nocase((mock_str_t){s, (size_t)(cend - s)}, "aws4_request"))
        out->service = (mock_str_t){NULL, 0};
    return true;
}

static bool all_digits(mock_str_t s, size_t n)
{
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s.base[i] < '0' || s.base[i] > '9')
            return false;
    }
    return true;
}

static bool lower_hex(mock_str_t s, size_t n)
{
    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s.base[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

/* A plausible region: two letters, then "-word" parts, then "-" and one or
 * two digits (us-east-1, eu-central-2, us-gov-west-1, ap-southeast-4). */
static bool plausible_region(mock_str_t r)
{
    size_t last = r.len;

    if (r.len < 6 || r.base[0] < 'a' || r.base[0] > 'z' || r.base[1] < 'a' || r.base[1] > 'z' ||
        r.base[2] != '-')
        return false;
    for (size_t i = 3; i < r.len; i++) {
        char c = r.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    while (last > 0 && r.base[last - 1] >= '0' && r.base[last - 1] <= '9')
        last--;
    return last < r.len && r.len - last <= 2 && last - 1 > 2 && r.base[last - 1] == '-';
}

static bool signed_header(mock_str_t list, const char *name)
{
    size_t n = strlen(name);
    const char *p = list.base, *end = list.base + list.len;

    while (p != NULL && p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        if ((size_t)(stop - p) == n && strncasecmp(p, name, n) == 0)
            return true;
        p = semi ? semi + 1 : end;
    }
    return false;
}

/*
 * Checks the credentials; returns NULL when they pass, else the exception
 * name, with its message in msg. The messages are AWS's own.
 */
static const char *auth_problem(const mock_req_t *req, mock_buf_t *msg)
{
    mock_str_t auth = mock_req_header(req, "authorization");
    mock_str_t date = mock_req_header(req, "x-amz-date");
    mock_sigv4_t v;

    if (auth.base == NULL || auth.len == 0) {
        MOCK_BUF_LIT(msg, "Missing Authentication Token");
        return "MissingAuthenticationTokenException";
    }
    if (auth.len > 7 && strncasecmp(auth.base, "Bearer ", 7) == 0)
        return NULL; /* a Bedrock API key */
    if (!mock_sigv4_parse(auth, &v)) {
        MOCK_BUF_LIT(msg, "Authorization header requires 'Credential' parameter. Authorization "
                          "header requires 'Signature' parameter. Authorization header requires "
                          "'SignedHeaders' parameter.");
        return "IncompleteSignatureException";
    }
    if (v.access_key.len == 0 || v.region.len == 0)
        MOCK_BUF_LIT(msg, "Authorization header requires 'Credential' parameter. ");
    if (v.signature.len == 0)
        MOCK_BUF_LIT(msg, "Authorization header requires 'Signature' parameter. ");
    if (v.signed_headers.len == 0)
        MOCK_BUF_LIT(msg, "Authorization header requires 'SignedHeaders' parameter. ");
    if (msg->len > 0)
        return "IncompleteSignatureException";
    if (date.base == NULL) {
        MOCK_BUF_LIT(msg, "Authorization header requires existence of either a 'X-Amz-Date' or "
                          "a 'Date' header.");
        return "IncompleteSignatureException";
    }
    if (date.len != 16 || !all_digits((mock_str_t){date.base, 8}, 8) || date.base[8] != 'T' ||
        !all_digits((mock_str_t){date.base + 9, 6}, 6) || date.base[15] != 'Z') {
        MOCK_BUF_LIT(msg, "Date must be in ISO-8601 'basic format'. Got '");
        mock_buf_append(msg, date.base, date.len);
        MOCK_BUF_LIT(msg, "'. See http://en.wikipedia.org/wiki/ISO_8601");
        return "IncompleteSignatureException";
    }
    if (!all_digits(v.date, 8) || memcmp(v.date.base, date.base, 8) != 0) {
        MOCK_BUF_LIT(msg, "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
                          "version of date from HTTP: '");
        mock_buf_append(msg, v.date.base, v.date.len);
        MOCK_BUF_LIT(msg, "' != '");
        mock_buf_append(msg, date.base, 8);
        MOCK_BUF_LIT(msg, "', from '");
        mock_buf_append(msg, date.base, date.len);
        MOCK_BUF_LIT(msg, "'.");
        return "InvalidSignatureException";
    }
    if (!mock_str_eq_nocase(v.service, "bedrock")) {
        MOCK_BUF_LIT(msg, "Credential should be scoped to correct service: 'bedrock'. ");
        return "InvalidSignatureException";
    }
    if (!plausible_region(v.region)) {
        MOCK_BUF_LIT(msg, "Credential should be scoped to a valid region. ");
        return "InvalidSignatureException";
    }
    if (!signed_header(v.signed_headers, "host")) {
        MOCK_BUF_LIT(msg, "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                          "Authorization.");
        return "InvalidSignatureException";
    }
    if (!lower_hex(v.signature, 64)) {
        MOCK_BUF_LIT(msg, "The request signature we calculated does not match the signature you "
                          "provided. Check your AWS Secret Access Key and signing method.");
        return "InvalidSignatureException";
    }
    return NULL;
}

static bool bedrock_authorized(const mock_req_t *req)
{
    mock_buf_t msg;

    mock_buf_init(&msg);
    bool ok = auth_problem(req, &msg) == NULL;
    mock_buf_dispose(&msg);
    return ok;
}

/* ---- errors ---------------------------------------------------------------------------------- */

static void error_reply(mock_resp_t *resp, int status, const char *type, const char *ns,
                        const char *message, size_t len)
{
    resp->status = status;
    resp->content_type = "application/json";
    resp->stream = NULL;
    resp->body->len = 0;
    MOCK_BUF_LIT(resp->body, "{\"message\":");
    mock_buf_append_json_str(resp->body, message, len);
    MOCK_BUF_LIT(resp->body, "}");
    MOCK_BUF_LIT(resp->headers, "x-amzn-ErrorType: ");
    mock_buf_append(resp->headers, type, strlen(type));
    mock_buf_append(resp->headers, ns, strlen(ns));
    MOCK_BUF_LIT(resp->headers, "\r\n");
}

static void validation(mock_resp_t *resp, const char *message)
{
    error_reply(resp, 400, "ValidationException", ERROR_NS_BEDROCK, message, strlen(message));
}

static const struct {
    int status;
    const char *type, *message;
} error_table[] = {
    {400, "ValidationException", "Mock error 400 (x-mock-status)."},
    {403, "AccessDeniedException",
     "You don't have access to the model with the specified model "
     "ID."},
    {404, "ResourceNotFoundException",
     "Could not resolve the foundation model from the provided "
     "model identifier."},
    {408, "ModelTimeoutException",
     "Model has timed out in processing the request. Try your "
     "request again."},
    {424, "ModelErrorException",
     "The system encountered an unexpected error during processing. "
     "Try your request again."},
    {429, "ThrottlingException", THROTTLED_MESSAGE},
    {500, "InternalServerException",
     "The system encountered an unexpected error during "
     "processing. Try your request again."},
    {503, "ServiceUnavailableException", "Bedrock is unable to process your request."},
};

static void bedrock_error(mock_req_t *req, mock_resp_t *resp, mock_err_kind_t kind, int status)
{
    mock_buf_t msg;
    const char *type;

    switch (kind) {
    case MOCK_ERR_AUTH:
        mock_buf_init(&msg);
        type = auth_problem(req, &msg);
        if (type == NULL) /* cannot happen: the server asks only on failure */
            type = "MissingAuthenticationTokenException";
        error_reply(resp, 403, type, ERROR_NS_CORAL, msg.base ? msg.base : "", msg.len);
        mock_buf_dispose(&msg);
        return;
    case MOCK_ERR_BAD_JSON:
        validation(resp, "Malformed input request, please reformat your input and try again.");
        return;
    case MOCK_ERR_NOT_FOUND:
        error_reply(resp, 404, "UnknownOperationException", ERROR_NS_CORAL, "", 0);
        return;
    case MOCK_ERR_INJECTED:
        break;
    }
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++) {
        if (error_table[i].status == status) {
            error_reply(resp, status, error_table[i].type, ERROR_NS_BEDROCK, error_table[i].message,
                        strlen(error_table[i].message));
            return;
        }
    }
    char m[64];
    int n = snprintf(m, sizeof(m), "Mock error %d (x-mock-status).", status);
    error_reply(resp, status, status >= 500 ? "InternalServerException" : "ValidationException",
                ERROR_NS_BEDROCK, m, (size_t)n);
}

static void bedrock_headers(const mock_req_t *req, mock_buf_t *out)
{
    MOCK_BUF_LIT(out, "x-amzn-RequestId: ");
    mock_buf_append_uuid(out, req->id);
    MOCK_BUF_LIT(out, "\r\n");
}

/* ---- reading the request --------------------------------------------------------------------- */

/* The model id of "/model/{id}/...", percent-decoded. */
static void path_model(const mock_req_t *req, mock_buf_t *out)
{
    const char *s = req->path.base + 7; /* after "/model/" */
    const char *slash = memchr(s, '/', req->path.len - 7);

    mock_buf_append_pct_decoded(out, s, slash ? (size_t)(slash - s) : req->path.len - 7);
}

static uint64_t blocks_chars(const json_t *blocks, int depth)
{
    uint64_t chars = 0;

    for (size_t i = 0; json_is_array(blocks) && i < json_array_size(blocks); i++) {
        const json_t *b = json_array_get(blocks, i);
        chars += mock_json_chars(json_object_get(b, "text"));
        if (depth < 2)
            chars += blocks_chars(json_object_get(json_object_get(b, "toolResult"), "content"),
                                  depth + 1);
    }
    return chars;
}

static bool last_user_is_tool_result(const json_t *messages)
{
    for (size_t i = json_array_size(messages); i-- > 0;) {
        const json_t *m = json_array_get(messages, i);
        const json_t *content = json_object_get(m, "content");
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role == NULL || strcmp(role, "user") != 0)
            continue;
        for (size_t k = 0; json_is_array(content) && k < json_array_size(content); k++) {
            if (json_object_get(json_array_get(content, k), "toolResult") != NULL)
                return true;
        }
        return false;
    }
    return false;
}

/* The toolSpec to call, or NULL to answer with text (see mock_anthropic.c). */
static const json_t *pick_tool(const mock_req_t *req, const json_t *root, mock_str_t *name)
{
    const json_t *cfg = json_object_get(root, "toolConfig");
    const json_t *tools = json_object_get(cfg, "tools");
    const json_t *forced =
        json_object_get(json_object_get(json_object_get(cfg, "toolChoice"), "tool"), "name");

    if (!json_is_array(tools) || json_array_size(tools) == 0)
        return NULL;
    if (last_user_is_tool_result(json_object_get(root, "messages")))
        return NULL;
    if (req->faults.tool_call.len > 0) {
        *name = req->faults.tool_call;
    } else {
        /* The forced tool, else the first toolSpec (entries may also be cachePoints). */
        const json_t *n = forced;
        for (size_t i = 0; !json_is_string(n) && i < json_array_size(tools); i++)
            n = json_object_get(json_object_get(json_array_get(tools, i), "toolSpec"), "name");
        *name = json_is_string(n) ? (mock_str_t){json_string_value(n), json_string_length(n)}
                                  : (mock_str_t){"tool", 4};
    }
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *spec = json_object_get(json_array_get(tools, i), "toolSpec");
        const json_t *n = json_object_get(spec, "name");
        if (json_is_string(n) && json_string_length(n) == name->len &&
            memcmp(json_string_value(n), name->base, name->len) == 0)
            return spec;
    }
    return tools;
}

/* ---- Converse ----------------------------------------------------------------------------------
 */

typedef enum br_phase_e {
    BR_START,
    BR_BLOCK_START, /* tool blocks only: text blocks have no start event */
    BR_DELTA,
    BR_BLOCK_STOP,
    BR_MSG_STOP,
    BR_METADATA,
    BR_EXCEPTION,
    BR_END
} br_phase_t;

typedef struct br_reply_s {
    br_phase_t phase;
    bool has_text, tool, in_tool, truncated, stream_error;
    unsigned block;
    uint64_t next, deltas, arg_pieces, events;
    mock_pieces_t text;
    mock_buf_t tool_name;    /* JSON string */
    mock_buf_t args;         /* compact JSON */
    mock_buf_t json;         /* one payload being built */
    mock_buf_t payload;      /* the payload after x-mock-timestamps / x-mock-malformed */
    mock_buf_t exception;    /* the :exception-type of x-mock-stream-error */
    const char *stop_reason; /* static string */
    uint64_t id, input_tokens, output_tokens, latency_ms;
} br_reply_t;

static void reply_free(void *state)
{
    br_reply_t *r = state;

    mock_pieces_dispose(&r->text);
    mock_buf_dispose(&r->tool_name);
    mock_buf_dispose(&r->args);
    mock_buf_dispose(&r->json);
    mock_buf_dispose(&r->payload);
    mock_buf_dispose(&r->exception);
    free(r);
}

static void append_usage(const br_reply_t *r, mock_buf_t *b)
{
    MOCK_BUF_LIT(b, "\"usage\":{\"inputTokens\":");
    mock_buf_append_u64(b, r->input_tokens);
    MOCK_BUF_LIT(b, ",\"outputTokens\":");
    mock_buf_append_u64(b, r->output_tokens);
    MOCK_BUF_LIT(b, ",\"totalTokens\":");
    mock_buf_append_u64(b, r->input_tokens + r->output_tokens);
    MOCK_BUF_LIT(b, "},\"metrics\":{\"latencyMs\":");
    mock_buf_append_u64(b, r->latency_ms);
    MOCK_BUF_LIT(b, "}");
}

/* Closes the payload in r->json with its padding and writes it as an event. */
static void emit_event(mock_req_t *req, br_reply_t *r, mock_buf_t *out, const char *type)
{
    static const char *const names[] = {":event-type", ":content-type", ":message-type"};
    const char *values[] = {type, "application/json", "event"};
    size_t pad = 1 + (size_t)(r->events * 17 % 62);

    MOCK_BUF_LIT(&r->json, ",\"p\":\"");
    mock_buf_append(&r->json, PADDING, pad);
    MOCK_BUF_LIT(&r->json, "\"}");
    r->payload.len = 0;
    mock_emit_payload(req, &r->payload, r->json.base, r->json.len);
    append_frame(out, names, values, 3, r->payload.base, r->payload.len,
                 req->faults.malformed_crc && req->events_sent == 1);
    r->events++;
}

static bool stream_next(mock_req_t *req, void *state, mock_buf_t *out)
{
    br_reply_t *r = state;
    mock_buf_t *j = &r->json;

    j->len = 0;
    switch (r->phase) {
    case BR_START:
        MOCK_BUF_LIT(j, "{\"role\":\"assistant\"");
        emit_event(req, r, out, "messageStart");
        r->in_tool = !r->has_text;
        r->next = 0;
        r->phase = r->in_tool ? BR_BLOCK_START : BR_DELTA;
        return true;
    case BR_BLOCK_START:
        MOCK_BUF_LIT(j, "{\"contentBlockIndex\":");
        mock_buf_append_u64(j, r->block);
        MOCK_BUF_LIT(j, ",\"start\":{\"toolUse\":{\"toolUseId\":\"tooluse_mock_");
        mock_buf_append_u64(j, r->id);
        MOCK_BUF_LIT(j, "\",\"name\":");
        mock_buf_append(j, r->tool_name.base, r->tool_name.len);
        MOCK_BUF_LIT(j, "}}");
        emit_event(req, r, out, "contentBlockStart");
        r->next = 0;
        r->phase = BR_DELTA;
        return true;
    case BR_DELTA: {
        uint64_t n = r->in_tool ? r->arg_pieces : r->text.n_pieces;
        if (r->stream_error && r->deltas >= 2) {
            r->phase = BR_EXCEPTION;
            return stream_next(req, state, out);
        }
        if (r->next >= n) {
            r->phase = BR_BLOCK_STOP;
            return stream_next(req, state, out);
        }
        MOCK_BUF_LIT(j, "{\"contentBlockIndex\":");
        mock_buf_append_u64(j, r->block);
        if (r->in_tool) {
            size_t from, to;
            mock_split_piece(&r->args, r->next, r->arg_pieces, &from, &to);
            MOCK_BUF_LIT(j, ",\"delta\":{\"toolUse\":{\"input\":");
            mock_buf_append_json_str(j, r->args.base + from, to - from);
            MOCK_BUF_LIT(j, "}}");
        } else {
            MOCK_BUF_LIT(j, ",\"delta\":{\"text\":");
            mock_pieces_append(&r->text, r->next, j);
            MOCK_BUF_LIT(j, "}");
        }
        emit_event(req, r, out, "contentBlockDelta");
        r->next++;
        r->deltas++;
        return true;
    }
    case BR_BLOCK_STOP: {
        bool last = r->in_tool || !r->tool;
        if (r->stream_error && last) {
            r->phase = BR_EXCEPTION;
            return stream_next(req, state, out);
        }
        MOCK_BUF_LIT(j, "{\"contentBlockIndex\":");
        mock_buf_append_u64(j, r->block);
        emit_event(req, r, out, "contentBlockStop");
        if (!last) {
            r->block++;
            r->in_tool = true;
            r->phase = BR_BLOCK_START;
        } else {
            r->phase = BR_MSG_STOP;
        }
        return true;
    }
    case BR_MSG_STOP:
        MOCK_BUF_LIT(j, "{\"stopReason\":\"");
        mock_buf_append(j, r->stop_reason, strlen(r->stop_reason));
        MOCK_BUF_LIT(j, "\"");
        emit_event(req, r, out, "messageStop");
        r->phase = BR_METADATA;
        return true;
    case BR_METADATA:
        MOCK_BUF_LIT(j, "{");
        append_usage(r, j);
        emit_event(req, r, out, "metadata");
        r->phase = BR_END;
        return true;
    case BR_EXCEPTION: {
        static const char *const names[] = {":exception-type", ":content-type", ":message-type"};
        const char *values[] = {r->exception.base, "application/json", "exception"};
        MOCK_BUF_LIT(j, "{\"message\":");
        if (mock_stream_error_default(req))
            MOCK_BUF_LIT(j, "\"" THROTTLED_MESSAGE "\"}");
        else
            MOCK_BUF_LIT(j, "\"Mock stream error.\"}");
        append_frame(out, names, values, 3, j->base, j->len, false);
        r->phase = BR_END;
        return true;
    }
    case BR_END:
        break;
    }
    return false;
}

static const mock_stream_ops_t stream_ops = {
    .next = stream_next,
    .free = reply_free,
};

static void converse_reply(mock_req_t *req, mock_resp_t *resp, bool stream)
{
    const json_t *root = req->json;
    const json_t *messages = json_object_get(root, "messages");
    const json_t *max = json_object_get(json_object_get(root, "inferenceConfig"), "maxTokens");
    mock_str_t name = {NULL, 0};

    if (!json_is_array(messages)) {
        validation(resp, "1 validation error detected: Value null at 'messages' failed to "
                         "satisfy constraint: Member must not be null");
        return;
    }
    if (json_array_size(messages) == 0) {
        validation(resp, "A conversation must start with a user message. Try again with a "
                         "conversation that starts with a user message.");
        return;
    }
    uint64_t chars = blocks_chars(json_object_get(root, "system"), 0);
    for (size_t i = 0; i < json_array_size(messages); i++)
        chars += blocks_chars(json_object_get(json_array_get(messages, i), "content"), 0);

    br_reply_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    const json_t *spec = pick_tool(req, root, &name);
    mock_str_t text = mock_reply_text(req);

    r->id = req->id;
    r->latency_ms = req->faults.delay_ms;
    r->input_tokens = mock_tokens_from_chars(chars);
    r->tool = spec != NULL;
    r->has_text = !r->tool || req->faults.content.base != NULL;
    if (!r->tool && json_is_integer(max) && json_integer_value(max) >= 0)
        text = mock_truncate_words(text, (uint64_t)json_integer_value(max), &r->truncated);
    if (!r->has_text)
        text = (mock_str_t){"", 0};
    mock_pieces_init(&r->text, text, stream ? req->faults.chunks : -1);
    if (r->tool) {
        mock_buf_append_json_str(&r->tool_name, name.base, name.len);
        mock_tool_args(json_object_get(json_object_get(spec, "inputSchema"), "json"), &r->args);
        r->arg_pieces = mock_arg_pieces(&r->args);
    }
    r->output_tokens = r->has_text ? mock_pieces_output_tokens(&r->text) : 0;
    if (r->tool)
        r->output_tokens += mock_tokens_from_chars(mock_count_chars(r->args.base, r->args.len));
    r->stop_reason = r->tool ? "tool_use" : r->truncated ? "max_tokens" : "end_turn";

    if (stream) {
        r->stream_error = req->faults.stream_error.base != NULL;
        if (r->stream_error && !mock_stream_error_default(req))
            mock_buf_append(&r->exception, req->faults.stream_error.base,
                            req->faults.stream_error.len);
        else
            MOCK_BUF_LIT(&r->exception, "throttlingException");
        mock_buf_append(&r->exception, "", 1); /* a C string, for the frame header */
        resp->content_type = "application/vnd.amazon.eventstream";
        resp->stream = &stream_ops;
        resp->stream_state = r;
        return;
    }
    mock_buf_t *b = resp->body;
    MOCK_BUF_LIT(b, "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[");
    if (r->has_text) {
        MOCK_BUF_LIT(b, "{\"text\":");
        mock_buf_append_json_str(b, r->text.text.base, r->text.text.len);
        MOCK_BUF_LIT(b, "}");
    }
    if (r->tool) {
        if (r->has_text)
            MOCK_BUF_LIT(b, ",");
        MOCK_BUF_LIT(b, "{\"toolUse\":{\"toolUseId\":\"tooluse_mock_");
        mock_buf_append_u64(b, r->id);
        MOCK_BUF_LIT(b, "\",\"name\":");
        mock_buf_append(b, r->tool_name.base, r->tool_name.len);
        MOCK_BUF_LIT(b, ",\"input\":");
        mock_buf_append(b, r->args.base, r->args.len);
        MOCK_BUF_LIT(b, "}}");
    }
    MOCK_BUF_LIT(b, "]}},\"stopReason\":\"");
    mock_buf_append(b, r->stop_reason, strlen(r->stop_reason));
    MOCK_BUF_LIT(b, "\",");
    append_usage(r, b);
    MOCK_BUF_LIT(b, "}");
    reply_free(r);
}

static void converse(mock_req_t *req, mock_resp_t *resp)
{
    converse_reply(req, resp, false);
}

static void converse_stream(mock_req_t *req, mock_resp_t *resp)
{
    converse_reply(req, resp, true);
}

/* ---- InvokeModel: embeddings --------------------------------------------------------------------
 */

static bool has_prefix(const mock_buf_t *s, const char *prefix)
{
    size_t n = strlen(prefix);

    return s->len >= n && memcmp(s->base, prefix, n) == 0;
}

static void token_headers(mock_resp_t *resp, uint64_t tokens, uint64_t latency_ms)
{
    MOCK_BUF_LIT(resp->headers, "x-amzn-bedrock-input-token-count: ");
    mock_buf_append_u64(resp->headers, tokens);
    MOCK_BUF_LIT(resp->headers, "\r\nx-amzn-bedrock-invocation-latency: ");
    mock_buf_append_u64(resp->headers, latency_ms);
    MOCK_BUF_LIT(resp->headers, "\r\n");
}

static void titan_embed(mock_req_t *req, mock_resp_t *resp, bool v2)
{
    const json_t *root = req->json;
    const json_t *input = json_object_get(root, "inputText");
    const json_t *dim = json_object_get(root, "dimensions");
    const json_t *types = json_object_get(root, "embeddingTypes");
    bool want_float = true, want_binary = false;
    size_t dims = MOCK_EMBED_DIMS;

    if (!json_is_string(input)) {
        validation(resp, "Malformed input request: #: required key [inputText] not found, "
                         "please reformat your input and try again.");
        return;
    }
    if (v2 && dim != NULL) {
        json_int_t d = json_integer_value(dim);
        if (!json_is_integer(dim) || (d != 256 && d != 512 && d != 1024)) {
            validation(resp, "Malformed input request: #/dimensions: must be one of 256, 512 "
                             "or 1024, please reformat your input and try again.");
            return;
        }
        dims = (size_t)d;
    }
    if (v2 && json_is_array(types) && json_array_size(types) > 0) {
        want_float = false;
        for (size_t i = 0; i < json_array_size(types); i++) {
            const char *t = json_string_value(json_array_get(types, i));
            if (t != NULL && strcmp(t, "float") == 0) {
                want_float = true;
            } else if (t != NULL && strcmp(t, "binary") == 0) {
                want_binary = true;
            } else {
                validation(resp, "Malformed input request: #/embeddingTypes: expected float or "
                                 "binary, please reformat your input and try again.");
                return;
            }
        }
    }
    uint64_t tokens = mock_tokens_from_chars(mock_json_chars(input));
    float *v = malloc(sizeof(float) * dims);
    if (v == NULL)
        abort();
    mock_fake_embedding(mock_hash(json_string_value(input), json_string_length(input), 0), v, dims);
    mock_buf_t *b = resp->body;
    MOCK_BUF_LIT(b, "{");
    if (want_float) {
        MOCK_BUF_LIT(b, "\"embedding\":");
        mock_buf_append_floats(b, v, dims);
        MOCK_BUF_LIT(b, ",");
    }
    if (v2) {
        MOCK_BUF_LIT(b, "\"embeddingsByType\":{");
        if (want_float) {
            MOCK_BUF_LIT(b, "\"float\":");
            mock_buf_append_floats(b, v, dims);
        }
        if (want_binary) {
            /* Titan's binary embeddings are one 0 or 1 per dimension. */
            if (want_float)
                MOCK_BUF_LIT(b, ",");
            MOCK_BUF_LIT(b, "\"binary\":[");
            for (size_t d = 0; d < dims; d++) {
                if (d)
                    MOCK_BUF_LIT(b, ",");
                mock_buf_append_u64(b, v[d] > 0 ? 1 : 0);
            }
            MOCK_BUF_LIT(b, "]");
        }
        MOCK_BUF_LIT(b, "},");
    }
    MOCK_BUF_LIT(b, "\"inputTextTokenCount\":");
    mock_buf_append_u64(b, tokens);
    MOCK_BUF_LIT(b, "}");
    free(v);
    token_headers(resp, tokens, req->faults.delay_ms);
}

/* Cohere Embed on Bedrock: the v1 embed body, with the model in the path. */
static void cohere_embed(mock_req_t *req, mock_resp_t *resp)
{
    const json_t *root = req->json;
    const json_t *texts = json_object_get(root, "texts");
    const json_t *types = json_object_get(root, "embedding_types");
    bool by_type = json_is_array(types) && json_array_size(types) > 0;
    uint64_t tokens = 0;

    if (!json_is_array(texts) || json_array_size(texts) == 0) {
        validation(resp, "Malformed input request: #: required key [texts] not found, please "
                         "reformat your input and try again.");
        return;
    }
    if (!json_is_string(json_object_get(root, "input_type"))) {
        validation(resp, "Malformed input request: #: required key [input_type] not found, "
                         "please reformat your input and try again.");
        return;
    }
    for (size_t t = 0; by_type && t < json_array_size(types); t++) {
        const char *name = json_string_value(json_array_get(types, t));
        mock_embed_type_t et;
        if (name == NULL || !mock_embed_type_parse(name, &et)) {
            validation(resp, "Malformed input request: #/embedding_types: expected float, int8, "
                             "uint8, binary or ubinary, please reformat your input and try "
                             "again.");
            return;
        }
    }
    float v[MOCK_EMBED_DIMS];
    mock_buf_t *b = resp->body;
    MOCK_BUF_LIT(b, "{\"embeddings\":");
    size_t n_types = by_type ? json_array_size(types) : 1;
    if (by_type)
        MOCK_BUF_LIT(b, "{");
    for (size_t t = 0; t < n_types; t++) {
        mock_embed_type_t et = MOCK_EMBED_FLOAT;
        if (by_type) {
            const char *name = json_string_value(json_array_get(types, t));
            mock_embed_type_parse(name, &et);
            if (t)
                MOCK_BUF_LIT(b, ",");
            mock_buf_append_json_cstr(b, name);
            MOCK_BUF_LIT(b, ":");
        }
        MOCK_BUF_LIT(b, "[");
        for (size_t i = 0; i < json_array_size(texts); i++) {
            const json_t *s = json_array_get(texts, i);
            if (i)
                MOCK_BUF_LIT(b, ",");
            mock_fake_embedding(mock_hash(json_string_value(s) ? json_string_value(s) : "",
                                          json_string_length(s), 0),
                                v, MOCK_EMBED_DIMS);
            mock_buf_append_embedding(b, v, MOCK_EMBED_DIMS, et, false);
        }
        MOCK_BUF_LIT(b, "]");
    }
    if (by_type)
        MOCK_BUF_LIT(b, "}");
    for (size_t i = 0; i < json_array_size(texts); i++)
        tokens += mock_tokens_from_chars(mock_json_chars(json_array_get(texts, i)));
    MOCK_BUF_LIT(b, ",\"id\":\"");
    mock_buf_append_uuid(b, req->id);
    MOCK_BUF_LIT(b, "\",\"response_type\":");
    if (by_type)
        MOCK_BUF_LIT(b, "\"embeddings_by_type\"");
    else
        MOCK_BUF_LIT(b, "\"embeddings_floats\"");
    MOCK_BUF_LIT(b, ",\"texts\":");
    mock_buf_append_json(b, texts);
    MOCK_BUF_LIT(b, "}");
    token_headers(resp, tokens, req->faults.delay_ms);
}

static void invoke(mock_req_t *req, mock_resp_t *resp)
{
    mock_buf_t model;

    mock_buf_init(&model);
    path_model(req, &model);
    if (has_prefix(&model, "amazon.titan-embed-text-v1"))
        titan_embed(req, resp, false);
    else if (has_prefix(&model, "amazon.titan-embed-text"))
        titan_embed(req, resp, true);
    else if (has_prefix(&model, "cohere.embed"))
        cohere_embed(req, resp);
    else
        validation(resp, "The provided model identifier is invalid.");
    mock_buf_dispose(&model);
}

static const mock_route_t bedrock_routes[] = {
    {HTTP_POST, "/model/*/converse", MOCK_ROUTE_JSON, converse},
    {HTTP_POST, "/model/*/converse-stream", MOCK_ROUTE_JSON, converse_stream},
    {HTTP_POST, "/model/*/invoke", MOCK_ROUTE_JSON, invoke},
    {0, NULL, 0, NULL},
};

const mock_format_t mock_bedrock_format = {
    .name = "bedrock",
    .routes = bedrock_routes,
    .authorized = bedrock_authorized,
    .error = bedrock_error,
    .headers = bedrock_headers,
};
