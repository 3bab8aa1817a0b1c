/*
 * The Anthropic Messages API: POST /v1/messages (plain and streamed) and
 * POST /v1/messages/count_tokens, with Anthropic's error objects.
 *
 * The stream follows the event order of Anthropic's streaming documentation:
 * message_start, then per content block content_block_start, (ping after the
 * first one), content_block_delta..., content_block_stop, then message_delta
 * and message_stop. Each event's "type" repeats its "event:" name.
 */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

#include "tests/mock_provider/mock.h"

#define ANTHROPIC_JSON_ERROR "The request body is not valid JSON."

static void append_json_string_value(mock_buf_t *b, const json_t *s)
{
    mock_buf_append_json_str(b, json_string_value(s), json_string_length(s));
}

/* ---- errors ---------------------------------------------------------------------- */

static void error_reply(const mock_req_t *req, mock_resp_t *resp, int status, const char *type,
                        const char *message)
{
    mock_buf_t *b = resp->body;

    resp->status = status;
    resp->content_type = "application/json";
    resp->stream = NULL;
    b->len = 0;
    MOCK_BUF_LIT(b, "{\"type\":\"error\",\"error\":{\"type\":");
    mock_buf_append_json_cstr(b, type);
    MOCK_BUF_LIT(b, ",\"message\":");
    mock_buf_append_json_cstr(b, message);
    MOCK_BUF_LIT(b, "},\"request_id\":\"req_mock_");
    mock_buf_append_u64(b, req->id);
    MOCK_BUF_LIT(b, "\"}");
}

static void invalid_request(const mock_req_t *req, mock_resp_t *resp, const char *message)
{
    error_reply(req, resp, 400, "invalid_request_error", message);
}

/* Status to error type and message, as in Anthropic's "HTTP errors" table. */
static const struct {
    int status;
    const char *type, *message;
} error_table[] = {
    {400, "invalid_request_error", "Mock error 400 (x-mock-status)."},
    {401, "authentication_error", "invalid x-api-key"},
    {402, "billing_error", "Your credit balance is too low to access the Anthropic API."},
    {403, "permission_error",
     "Your API key does not have permission to use the specified "
     "resource."},
    {404, "not_found_error", "The requested resource could not be found."},
    {413, "request_too_large", "Request exceeds the maximum allowed number of bytes."},
    {429, "rate_limit_error",
     "This request would exceed the rate limit for your organization "
     "(mock)."},
    {500, "api_error", "Internal server error"},
    {504, "timeout_error", "Request timed out"},
    {529, "overloaded_error", "Overloaded"},
};

static void anthropic_error(mock_req_t *req, mock_resp_t *resp, mock_err_kind_t kind, int status)
{
    switch (kind) {
    case MOCK_ERR_AUTH:
        error_reply(req, resp, 401, "authentication_error", "x-api-key header is required");
        return;
    case MOCK_ERR_BAD_JSON:
        invalid_request(req, resp, ANTHROPIC_JSON_ERROR);
        return;
    case MOCK_ERR_NOT_FOUND:
        error_reply(req, resp, 404, "not_found_error", "Not Found");
        return;
    case MOCK_ERR_INJECTED:
        break;
    }
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++) {
        if (error_table[i].status == status) {
            error_reply(req, resp, status, error_table[i].type, error_table[i].message);
            return;
        }
    }
    char msg[64];
    snprintf(msg, sizeof(msg), "Mock error %d (x-mock-status).", status);
    error_reply(req, resp, status, status >= 500 ? "api_error" : "invalid_request_error", msg);
}

static bool anthropic_authorized(const mock_req_t *req)
{
    mock_str_t key = mock_req_header(req, "x-api-key");

    return key.base != NULL && key.len > 0;
}

static void anthropic_headers(const mock_req_t *req, mock_buf_t *out)
{
    MOCK_BUF_LIT(out, "request-id: req_mock_");
    mock_buf_append_u64(out, req->id);
    MOCK_BUF_LIT(out, "\r\nanthropic-organization-id: 00000000-0000-4000-8000-000000000000\r\n"
                      "anthropic-ratelimit-requests-limit: 4000\r\n"
                      "anthropic-ratelimit-requests-remaining: 3999\r\n"
                      "anthropic-ratelimit-requests-reset: 2030-01-01T00:00:00Z\r\n"
                      "anthropic-ratelimit-input-tokens-limit: 400000\r\n"
                      "anthropic-ratelimit-input-tokens-remaining: 399000\r\n"
                      "anthropic-ratelimit-input-tokens-reset: 2030-01-01T00:00:00Z\r\n"
                      "anthropic-ratelimit-output-tokens-limit: 80000\r\n"
                      "anthropic-ratelimit-output-tokens-remaining: 79000\r\n"
                      "anthropic-ratelimit-output-tokens-reset: 2030-01-01T00:00:00Z\r\n");
}

/* ---- reading the request -------------------------------------------------------------- */

/* Characters of a content: a string, or blocks with "text" (tool_result
 * blocks count their own content). */
static uint64_t content_chars(const json_t *content, int depth)
{
    uint64_t chars = 0;

    if (json_is_string(content))
        return mock_json_chars(content);
    for (size_t i = 0; json_is_array(content) && i < json_array_size(content); i++) {
        const json_t *block = json_array_get(content, i);
        chars += mock_json_chars(json_object_get(block, "text"));
        if (depth < 2)
            chars += content_chars(json_object_get(block, "content"), depth + 1);
    }
    return chars;
}

/* True if the last user message answers a tool call. */
static bool last_user_is_tool_result(const json_t *messages)
{
    for (size_t i = json_array_size(messages); i-- > 0;) {
        const json_t *m = json_array_get(messages, i);
        const json_t *content = json_object_get(m, "content");
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role == NULL || strcmp(role, "user") != 0)
            continue;
        for (size_t k = 0; json_is_array(content) && k < json_array_size(content); k++) {
            const char *t = json_string_value(json_object_get(json_array_get(content, k), "type"));
            if (t != NULL && strcmp(t, "tool_result") == 0)
                return true;
        }
        return false;
    }
    return false;
}

/* The tool to call, or NULL to answer with text. *name is set to the name
 * to use (it may come from x-mock-tool-call and match no tool). */
static const json_t *pick_tool(const mock_req_t *req, const json_t *root, mock_str_t *name)
{
    const json_t *tools = json_object_get(root, "tools");
    const json_t *choice = json_object_get(root, "tool_choice");
    const char *ctype = json_string_value(json_object_get(choice, "type"));
    const json_t *want = NULL;

    if (!json_is_array(tools) || json_array_size(tools) == 0)
        return NULL;
    if (ctype != NULL && strcmp(ctype, "none") == 0)
        return NULL;
    if (last_user_is_tool_result(json_object_get(root, "messages")))
        return NULL;
    if (req->faults.tool_call.len > 0) {
        *name = req->faults.tool_call;
    } else {
        if (ctype != NULL && strcmp(ctype, "tool") == 0)
            want = json_object_get(choice, "name");
        if (!json_is_string(want))
            want = json_object_get(json_array_get(tools, 0), "name");
        *name = (mock_str_t){json_string_value(want) ? json_string_value(want) : "tool",
                             json_string_value(want) ? json_string_length(want) : 4};
    }
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *t = json_array_get(tools, i);
        const json_t *n = json_object_get(t, "name");
        if (json_is_string(n) && json_string_length(n) == name->len &&
            memcmp(json_string_value(n), name->base, name->len) == 0)
            return t;
    }
    return tools; /* a tool of that name is not declared: call it with {} */
}

/* ---- the reply ------------------------------------------------------------------------ */

typedef enum an_phase_e {
    AN_START,
    AN_BLOCK_START,
    AN_PING,
    AN_DELTA,
    AN_BLOCK_STOP,
    AN_MSG_DELTA,
    AN_MSG_STOP,
    AN_ERROR,
    AN_END
} an_phase_t;

/* A planned reply, shared by the plain and the streamed answer. */
typedef struct an_reply_s {
    an_phase_t phase;
    bool has_text; /* a text block (always, except a tool call without x-mock-content) */
    bool tool;     /* a tool_use block after the text */
    bool in_tool;  /* the current block is the tool_use block */
    bool pinged;
    bool stream_error;
    unsigned block;      /* index of the current block */
    uint64_t next;       /* next delta of the current block */
    uint64_t deltas;     /* deltas sent in all blocks */
    uint64_t arg_pieces; /* input_json_delta pieces after the first, empty one */
    mock_pieces_t text;
    mock_buf_t model;        /* JSON string */
    mock_buf_t tool_name;    /* JSON string */
    mock_buf_t args;         /* compact JSON */
    mock_buf_t json;         /* one event being built */
    mock_buf_t err_type;     /* JSON string */
    mock_buf_t err_msg;      /* JSON string */
    const char *stop_reason; /* static string */
    uint64_t id, input_tokens, output_tokens;
} an_reply_t;

static void reply_free(void *state)
{
    an_reply_t *r = state;

    mock_pieces_dispose(&r->text);
    mock_buf_dispose(&r->model);
    mock_buf_dispose(&r->tool_name);
    mock_buf_dispose(&r->args);
    mock_buf_dispose(&r->json);
    mock_buf_dispose(&r->err_type);
    mock_buf_dispose(&r->err_msg);
    free(r);
}

static void append_usage_start(const an_reply_t *r, mock_buf_t *j)
{
    MOCK_BUF_LIT(j, "{\"input_tokens\":");
    mock_buf_append_u64(j, r->input_tokens);
    MOCK_BUF_LIT(j, ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
                    "\"output_tokens\":1}");
}

static void append_tool_block(const an_reply_t *r, mock_buf_t *j, bool with_input)
{
    MOCK_BUF_LIT(j, "{\"type\":\"tool_use\",\"id\":\"toolu_mock_");
    mock_buf_append_u64(j, r->id);
    MOCK_BUF_LIT(j, "\",\"name\":");
    mock_buf_append(j, r->tool_name.base, r->tool_name.len);
    MOCK_BUF_LIT(j, ",\"input\":");
    if (with_input)
        mock_buf_append(j, r->args.base, r->args.len);
    else
        MOCK_BUF_LIT(j, "{}");
    MOCK_BUF_LIT(j, "}");
}

static void emit(mock_req_t *req, an_reply_t *r, mock_buf_t *out, const char *event)
{
    mock_sse_emit(req, out, event, r->json.base, r->json.len);
}

static bool stream_next(mock_req_t *req, void *state, mock_buf_t *out)
{
    an_reply_t *r = state;
    mock_buf_t *j = &r->json;

    j->len = 0;
    switch (r->phase) {
    case AN_START:
        MOCK_BUF_LIT(j, "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock_");
        mock_buf_append_u64(j, r->id);
        MOCK_BUF_LIT(j, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        mock_buf_append(j, r->model.base, r->model.len);
        MOCK_BUF_LIT(j, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
        append_usage_start(r, j);
        MOCK_BUF_LIT(j, "}}");
        emit(req, r, out, "message_start");
        r->in_tool = !r->has_text;
        r->phase = AN_BLOCK_START;
        return true;
    case AN_BLOCK_START:
        MOCK_BUF_LIT(j, "{\"type\":\"content_block_start\",\"index\":");
        mock_buf_append_u64(j, r->block);
        MOCK_BUF_LIT(j, ",\"content_block\":");
        if (r->in_tool)
            append_tool_block(r, j, false);
        else
            MOCK_BUF_LIT(j, "{\"type\":\"text\",\"text\":\"\"}");
        MOCK_BUF_LIT(j, "}");
        emit(req, r, out, "content_block_start");
        r->next = 0;
        r->phase = r->pinged ? AN_DELTA : AN_PING;
        return true;
    case AN_PING:
        MOCK_BUF_LIT(j, "{\"type\":\"ping\"}");
        emit(req, r, out, "ping");
        r->pinged = true;
        r->phase = AN_DELTA;
        return true;
    case AN_DELTA: {
        uint64_t n = r->in_tool ? r->arg_pieces + 1 : r->text.n_pieces;
        if (r->stream_error && r->deltas >= 2) {
            r->phase = AN_ERROR;
            return stream_next(req, state, out);
        }
        if (r->next >= n) {
            r->phase = AN_BLOCK_STOP;
            return stream_next(req, state, out);
        }
        MOCK_BUF_LIT(j, "{\"type\":\"content_block_delta\",\"index\":");
        mock_buf_append_u64(j, r->block);
        if (r->in_tool) {
            size_t from = 0, to = 0;
            /* Anthropic opens every tool input with an empty partial_json. */
            if (r->next > 0)
                mock_split_piece(&r->args, r->next - 1, r->arg_pieces, &from, &to);
            MOCK_BUF_LIT(j, ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":");
            mock_buf_append_json_str(j, r->args.base + from, to - from);
        } else {
            MOCK_BUF_LIT(j, ",\"delta\":{\"type\":\"text_delta\",\"text\":");
            mock_pieces_append(&r->text, r->next, j);
        }
        MOCK_BUF_LIT(j, "}}");
        emit(req, r, out, "content_block_delta");
        r->next++;
        r->deltas++;
        return true;
    }
    case AN_BLOCK_STOP: {
        bool last = r->in_tool || !r->tool;
        if (r->stream_error && last) {
            r->phase = AN_ERROR;
            return stream_next(req, state, out);
        }
        MOCK_BUF_LIT(j, "{\"type\":\"content_block_stop\",\"index\":");
        mock_buf_append_u64(j, r->block);
        MOCK_BUF_LIT(j, "}");
        emit(req, r, out, "content_block_stop");
        if (!last) {
            r->block++;
            r->in_tool = true;
            r->phase = AN_BLOCK_START;
        } else {
            r->phase = AN_MSG_DELTA;
        }
        return true;
    }
    case AN_MSG_DELTA:
        MOCK_BUF_LIT(j, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"");
        mock_buf_append(j, r->stop_reason, strlen(r->stop_reason));
        MOCK_BUF_LIT(j, "\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":");
        mock_buf_append_u64(j, r->output_tokens);
        MOCK_BUF_LIT(j, "}}");
        emit(req, r, out, "message_delta");
        r->phase = AN_MSG_STOP;
        return true;
    case AN_MSG_STOP:
        MOCK_BUF_LIT(j, "{\"type\":\"message_stop\"}");
        emit(req, r, out, "message_stop");
        r->phase = AN_END;
        return true;
    case AN_ERROR:
        MOCK_BUF_LIT(j, "{\"type\":\"error\",\"error\":{\"type\":");
        mock_buf_append(j, r->err_type.base, r->err_type.len);
        MOCK_BUF_LIT(j, ",\"message\":");
        mock_buf_append(j, r->err_msg.base, r->err_msg.len);
        MOCK_BUF_LIT(j, "}}");
        emit(req, r, out, "error");
        r->phase = AN_END;
        return true;
    case AN_END:
        break;
    }
    return false;
}

static const mock_stream_ops_t stream_ops = {
    .next = stream_next,
    .free = reply_free,
};

static void write_message(const an_reply_t *r, mock_buf_t *b)
{
    MOCK_BUF_LIT(b, "{\"id\":\"msg_mock_");
    mock_buf_append_u64(b, r->id);
    MOCK_BUF_LIT(b, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    mock_buf_append(b, r->model.base, r->model.len);
    MOCK_BUF_LIT(b, ",\"content\":[");
    if (r->has_text) {
        MOCK_BUF_LIT(b, "{\"type\":\"text\",\"text\":");
        mock_buf_append_json_str(b, r->text.text.base, r->text.text.len);
        MOCK_BUF_LIT(b, "}");
    }
    if (r->tool) {
        if (r->has_text)
            MOCK_BUF_LIT(b, ",");
        append_tool_block(r, b, true);
    }
    MOCK_BUF_LIT(b, "],\"stop_reason\":\"");
    mock_buf_append(b, r->stop_reason, strlen(r->stop_reason));
    MOCK_BUF_LIT(b, "\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":");
    mock_buf_append_u64(b, r->input_tokens);
    MOCK_BUF_LIT(b, ",\"output_tokens\":");
    mock_buf_append_u64(b, r->output_tokens);
    MOCK_BUF_LIT(b, ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0}}");
}

/* Input characters of system and messages; false (after answering) if the
 * request misses a required field. */
static bool read_request(mock_req_t *req, mock_resp_t *resp, uint64_t *chars)
{
    const json_t *root = req->json;
    const json_t *messages = json_object_get(root, "messages");
    const json_t *system = json_object_get(root, "system");

    if (mock_req_header(req, "anthropic-version").base == NULL) {
        invalid_request(req, resp, "anthropic-version: header is required");
        return false;
    }
    if (!json_is_string(json_object_get(root, "model"))) {
        invalid_request(req, resp, "model: Field required");
        return false;
    }
    if (!json_is_array(messages)) {
        invalid_request(req, resp, "messages: Field required");
        return false;
    }
    *chars = content_chars(system, 0);
    for (size_t i = 0; i < json_array_size(messages); i++)
        *chars += content_chars(json_object_get(json_array_get(messages, i), "content"), 0);
    return true;
}

static void messages(mock_req_t *req, mock_resp_t *resp)
{
    const json_t *root = req->json;
    const json_t *max_tokens = json_object_get(root, "max_tokens");
    mock_str_t tool_name = {NULL, 0};
    uint64_t chars;

    if (!read_request(req, resp, &chars))
        return;
    if (!json_is_integer(max_tokens)) {
        invalid_request(req, resp, "max_tokens: Field required");
        return;
    }
    if (json_integer_value(max_tokens) < 1) {
        invalid_request(req, resp, "max_tokens: Input should be greater than or equal to 1");
        return;
    }

    an_reply_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    bool stream = json_is_true(json_object_get(root, "stream"));
    const json_t *tool = pick_tool(req, root, &tool_name);
    mock_str_t text = mock_reply_text(req);
    bool truncated = false;

    r->id = req->id;
    r->input_tokens = mock_tokens_from_chars(chars);
    r->tool = tool != NULL;
    r->has_text = !r->tool || req->faults.content.base != NULL;
    if (!r->tool)
        text = mock_truncate_words(text, (uint64_t)json_integer_value(max_tokens), &truncated);
    if (!r->has_text)
        text = (mock_str_t){"", 0};
    mock_pieces_init(&r->text, text, stream ? req->faults.chunks : -1);
    append_json_string_value(&r->model, json_object_get(root, "model"));
    if (r->tool) {
        mock_buf_append_json_str(&r->tool_name, tool_name.base, tool_name.len);
        mock_tool_args(json_object_get(tool, "input_schema"), &r->args);
        r->arg_pieces = mock_arg_pieces(&r->args);
    }
    r->output_tokens = r->has_text ? mock_pieces_output_tokens(&r->text) : 0;
    if (r->tool)
        r->output_tokens += mock_tokens_from_chars(mock_count_chars(r->args.base, r->args.len));
    r->stop_reason = r->tool ? "tool_use" : truncated ? "max_tokens" : "end_turn";

    if (!stream) {
        write_message(r, resp->body);
        reply_free(r);
        return;
    }
    r->stream_error = req->faults.stream_error.base != NULL;
    if (r->stream_error && !mock_stream_error_default(req)) {
        mock_buf_append_json_str(&r->err_type, req->faults.stream_error.base,
                                 req->faults.stream_error.len);
        MOCK_BUF_LIT(&r->err_msg, "\"Mock stream error.\"");
    } else {
        MOCK_BUF_LIT(&r->err_type, "\"overloaded_error\"");
        MOCK_BUF_LIT(&r->err_msg, "\"Overloaded\"");
    }
    resp->content_type = "text/event-stream; charset=utf-8";
    resp->stream = &stream_ops;
    resp->stream_state = r;
}

static void count_tokens(mock_req_t *req, mock_resp_t *resp)
{
    uint64_t chars;

    if (!read_request(req, resp, &chars))
        return;
    MOCK_BUF_LIT(resp->body, "{\"input_tokens\":");
    mock_buf_append_u64(resp->body, mock_tokens_from_chars(chars));
    MOCK_BUF_LIT(resp->body, "}");
}

static const mock_route_t anthropic_routes[] = {
    {HTTP_POST, "/v1/messages", MOCK_ROUTE_JSON, messages},
    {HTTP_POST, "/v1/messages/count_tokens", MOCK_ROUTE_JSON, count_tokens},
    {0, NULL, 0, NULL},
};

const mock_format_t mock_anthropic_format = {
    .name = "anthropic",
    .routes = anthropic_routes,
    .authorized = anthropic_authorized,
    .error = anthropic_error,
    .headers = anthropic_headers,
};
