/*
 * The Cohere v2 API: POST /v2/chat (plain and streamed) and POST /v2/embed,
 * with Cohere's {"id","message"} errors.
 *
 * A stream is SSE with "event: <type>" lines whose names repeat the data's
 * "type": message-start, content-start, content-delta..., content-end,
 * message-end for text; message-start, tool-plan-delta..., tool-call-start,
 * tool-call-delta..., tool-call-end, message-end for a tool call. The stream
 * ends with "data: [DONE]", as Cohere's does.
 *
 * Usage has two pairs of counts, as Cohere's: billed_units (what is billed)
 * and tokens (what the model saw, which includes Cohere's prompt template; the
 * mock adds COHERE_TEMPLATE_TOKENS for it).
 */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/mock_provider/mock.h"

#define COHERE_TEMPLATE_TOKENS 64
#define DEFAULT_TOOL_PLAN_PREFIX "I will use the "
#define DEFAULT_TOOL_PLAN_SUFFIX " tool."

/* ---- errors -------------------------------------------------------------------------- */

static void error_reply(const mock_req_t *req, mock_resp_t *resp, int status, const char *message)
{
    mock_buf_t *b = resp->body;

    resp->status = status;
    resp->content_type = "application/json";
    resp->stream = NULL;
    b->len = 0;
    MOCK_BUF_LIT(b, "{\"id\":\"");
    mock_buf_append_uuid(b, req->id);
    MOCK_BUF_LIT(b, "\",\"message\":");
    mock_buf_append_json_cstr(b, message);
    MOCK_BUF_LIT(b, "}");
}

static void cohere_error(mock_req_t *req, mock_resp_t *resp, mock_err_kind_t kind, int status)
{
    char msg[128];

    switch (kind) {
    case MOCK_ERR_AUTH:
        error_reply(req, resp, 401, "no api key supplied");
        return;
    case MOCK_ERR_BAD_JSON:
        error_reply(req, resp, 400, "invalid request: failed to decode the request body as JSON");
        return;
    case MOCK_ERR_NOT_FOUND:
        error_reply(req, resp, 404, "not found");
        return;
    case MOCK_ERR_INJECTED:
        break;
    }
    switch (status) {
    case 400:
        error_reply(req, resp, status, "invalid request: mock error 400 (x-mock-status)");
        return;
    case 401:
        error_reply(req, resp, status, "invalid api token");
        return;
    case 404:
        error_reply(req, resp, status, "model not found (mock)");
        return;
    case 429:
        error_reply(req, resp, status,
                    "You are past the per minute request limit, please wait "
                    "before making more requests (mock).");
        return;
    case 500:
        error_reply(req, resp, status,
                    "internal server error, this has been reported to our "
                    "developers (mock)");
        return;
    default:
        snprintf(msg, sizeof(msg), "mock error %d (x-mock-status)", status);
        error_reply(req, resp, status, msg);
        return;
    }
}

static bool cohere_authorized(const mock_req_t *req)
{
    mock_str_t v = mock_req_header(req, "authorization");

    return v.len > 7 && strncasecmp(v.base, "Bearer ", 7) == 0;
}

static void cohere_headers(const mock_req_t *req, mock_buf_t *out)
{
    MOCK_BUF_LIT(out, "x-debug-trace-id: mock");
    mock_buf_append_u64(out, req->id);
    MOCK_BUF_LIT(out, "\r\n");
}

/* ---- reading the request -------------------------------------------------------------- */

/* Characters of a message content: a string, or items with "text". */
static uint64_t content_chars(const json_t *content)
{
    uint64_t chars = 0;

    if (json_is_string(content))
        return mock_json_chars(content);
    for (size_t i = 0; json_is_array(content) && i < json_array_size(content); i++)
        chars += mock_json_chars(json_object_get(json_array_get(content, i), "text"));
    return chars;
}

/* The tool to call, or NULL to answer with text (see mock_anthropic.c). */
static const json_t *pick_tool(const mock_req_t *req, const json_t *root, mock_str_t *name)
{
    const json_t *tools = json_object_get(root, "tools");
    const json_t *messages = json_object_get(root, "messages");
    const char *choice = json_string_value(json_object_get(root, "tool_choice"));
    size_t n = json_array_size(messages);

    if (!json_is_array(tools) || json_array_size(tools) == 0)
        return NULL;
    if (choice != NULL && strcasecmp(choice, "NONE") == 0)
        return NULL;
    if (n > 0) {
        const char *role =
            json_string_value(json_object_get(json_array_get(messages, n - 1), "role"));
        if (role != NULL && strcmp(role, "tool") == 0)
            return NULL;
    }
    if (req->faults.tool_call.len > 0) {
        *name = req->faults.tool_call;
    } else {
        const json_t *nm =
            json_object_get(json_object_get(json_array_get(tools, 0), "function"), "name");
        *name = json_is_string(nm) ? (mock_str_t){json_string_value(nm), json_string_length(nm)}
                                   : (mock_str_t){"tool", 4};
    }
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *fn = json_object_get(json_array_get(tools, i), "function");
        const json_t *nm = json_object_get(fn, "name");
        if (json_is_string(nm) && json_string_length(nm) == name->len &&
            memcmp(json_string_value(nm), name->base, name->len) == 0)
            return fn;
    }
    return tools;
}

/* ---- the reply ------------------------------------------------------------------------ */

typedef enum co_phase_e {
    CO_START,
    CO_CONTENT_START,
    CO_CONTENT_DELTA,
    CO_CONTENT_END,
    CO_PLAN_DELTA,
    CO_CALL_START,
    CO_CALL_DELTA,
    CO_CALL_END,
    CO_ERROR,
    CO_END_EVENT,
    CO_DONE,
    CO_FINISHED
} co_phase_t;

typedef struct co_reply_s {
    co_phase_t phase;
    bool tool;      /* tool plan and tool call instead of content */
    bool truncated; /* max_tokens cut the text */
    bool stream_error;
    uint64_t next;   /* next delta of the current part */
    uint64_t deltas; /* text or plan deltas sent */
    uint64_t arg_pieces;
    mock_pieces_t text;   /* the content, or the tool plan */
    mock_buf_t tool_name; /* JSON string */
    mock_buf_t call_id;   /* JSON string */
    mock_buf_t args;      /* compact JSON */
    mock_buf_t json;      /* one event being built */
    uint64_t id, input_tokens, output_tokens;
} co_reply_t;

static void reply_free(void *state)
{
    co_reply_t *r = state;

    mock_pieces_dispose(&r->text);
    mock_buf_dispose(&r->tool_name);
    mock_buf_dispose(&r->call_id);
    mock_buf_dispose(&r->args);
    mock_buf_dispose(&r->json);
    free(r);
}

static const char *finish_reason(const co_reply_t *r)
{
    return r->tool ? "TOOL_CALL" : r->truncated ? "MAX_TOKENS" : "COMPLETE";
}

static void append_usage(const co_reply_t *r, mock_buf_t *b)
{
    MOCK_BUF_LIT(b, "{\"billed_units\":{\"input_tokens\":");
    mock_buf_append_u64(b, r->input_tokens);
    MOCK_BUF_LIT(b, ",\"output_tokens\":");
    mock_buf_append_u64(b, r->output_tokens);
    MOCK_BUF_LIT(b, "},\"tokens\":{\"input_tokens\":");
    mock_buf_append_u64(b, r->input_tokens + COHERE_TEMPLATE_TOKENS);
    MOCK_BUF_LIT(b, ",\"output_tokens\":");
    mock_buf_append_u64(b, r->output_tokens);
    MOCK_BUF_LIT(b, "}}");
}

static void append_call(const co_reply_t *r, mock_buf_t *b, bool with_args)
{
    MOCK_BUF_LIT(b, "{\"id\":");
    mock_buf_append(b, r->call_id.base, r->call_id.len);
    MOCK_BUF_LIT(b, ",\"type\":\"function\",\"function\":{\"name\":");
    mock_buf_append(b, r->tool_name.base, r->tool_name.len);
    MOCK_BUF_LIT(b, ",\"arguments\":");
    if (with_args)
        mock_buf_append_json_str(b, r->args.base, r->args.len);
    else
        MOCK_BUF_LIT(b, "\"\"");
    MOCK_BUF_LIT(b, "}}");
}

static void emit(mock_req_t *req, co_reply_t *r, mock_buf_t *out, const char *event)
{
    mock_sse_emit(req, out, event, r->json.base, r->json.len);
}

static bool stream_next(mock_req_t *req, void *state, mock_buf_t *out)
{
    co_reply_t *r = state;
    mock_buf_t *j = &r->json;
    size_t from, to;

    j->len = 0;
    switch (r->phase) {
    case CO_START:
        MOCK_BUF_LIT(j, "{\"id\":\"");
        mock_buf_append_uuid(j, r->id);
        MOCK_BUF_LIT(j, "\",\"type\":\"message-start\",\"delta\":{\"message\":{\"role\":"
                        "\"assistant\",\"content\":[],\"tool_plan\":\"\",\"tool_calls\":[],"
                        "\"citations\":[]}}}");
        emit(req, r, out, "message-start");
        r->phase = r->tool ? CO_PLAN_DELTA : CO_CONTENT_START;
        return true;
    case CO_CONTENT_START:
        MOCK_BUF_LIT(j, "{\"type\":\"content-start\",\"index\":0,\"delta\":{\"message\":{"
                        "\"content\":{\"type\":\"text\",\"text\":\"\"}}}}");
        emit(req, r, out, "content-start");
        r->phase = CO_CONTENT_DELTA;
        return true;
    case CO_CONTENT_DELTA:
    case CO_PLAN_DELTA:
        if (r->stream_error && r->deltas >= 2) {
            r->phase = CO_ERROR;
            return stream_next(req, state, out);
        }
        if (r->next >= r->text.n_pieces) {
            if (r->stream_error) {
                r->phase = CO_ERROR;
                return stream_next(req, state, out);
            }
            r->next = 0;
            r->phase = r->phase == CO_PLAN_DELTA ? CO_CALL_START : CO_CONTENT_END;
            return stream_next(req, state, out);
        }
        if (r->phase == CO_PLAN_DELTA) {
            MOCK_BUF_LIT(j, "{\"type\":\"tool-plan-delta\",\"delta\":{\"message\":{\"tool_plan\":");
            mock_pieces_append(&r->text, r->next, j);
            MOCK_BUF_LIT(j, "}}}");
            emit(req, r, out, "tool-plan-delta");
        } else {
            MOCK_BUF_LIT(j, "{\"type\":\"content-delta\",\"index\":0,\"delta\":{\"message\":{"
                            "\"content\":{\"text\":");
            mock_pieces_append(&r->text, r->next, j);
            MOCK_BUF_LIT(j, "}}}}");
            emit(req, r, out, "content-delta");
        }
        r->next++;
        r->deltas++;
        return true;
    case CO_CONTENT_END:
        MOCK_BUF_LIT(j, "{\"type\":\"content-end\",\"index\":0}");
        emit(req, r, out, "content-end");
        r->phase = CO_END_EVENT;
        return true;
    case CO_CALL_START:
        MOCK_BUF_LIT(j, "{\"type\":\"tool-call-start\",\"index\":0,\"delta\":{\"message\":{"
                        "\"tool_calls\":");
        append_call(r, j, false);
        MOCK_BUF_LIT(j, "}}}");
        emit(req, r, out, "tool-call-start");
        r->next = 0;
        r->phase = CO_CALL_DELTA;
        return true;
    case CO_CALL_DELTA:
        if (r->next >= r->arg_pieces) {
            r->phase = CO_CALL_END;
            return stream_next(req, state, out);
        }
        mock_split_piece(&r->args, r->next, r->arg_pieces, &from, &to);
        MOCK_BUF_LIT(j, "{\"type\":\"tool-call-delta\",\"index\":0,\"delta\":{\"message\":{"
                        "\"tool_calls\":{\"function\":{\"arguments\":");
        mock_buf_append_json_str(j, r->args.base + from, to - from);
        MOCK_BUF_LIT(j, "}}}}}");
        emit(req, r, out, "tool-call-delta");
        r->next++;
        return true;
    case CO_CALL_END:
        MOCK_BUF_LIT(j, "{\"type\":\"tool-call-end\",\"index\":0}");
        emit(req, r, out, "tool-call-end");
        r->phase = CO_END_EVENT;
        return true;
    case CO_ERROR:
        /* Cohere reports a failed generation in message-end's delta. */
        MOCK_BUF_LIT(j, "{\"type\":\"message-end\",\"delta\":{\"error\":\"internal server error "
                        "(mock stream error)\",\"finish_reason\":\"ERROR\"}}");
        emit(req, r, out, "message-end");
        r->phase = CO_DONE;
        return true;
    case CO_END_EVENT:
        MOCK_BUF_LIT(j, "{\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"");
        mock_buf_append(j, finish_reason(r), strlen(finish_reason(r)));
        MOCK_BUF_LIT(j, "\",\"usage\":");
        append_usage(r, j);
        MOCK_BUF_LIT(j, "}}");
        emit(req, r, out, "message-end");
        r->phase = CO_DONE;
        return true;
    case CO_DONE:
        mock_sse_emit(req, out, NULL, "[DONE]", 6);
        r->phase = CO_FINISHED;
        return true;
    case CO_FINISHED:
        break;
    }
    return false;
}

static const mock_stream_ops_t stream_ops = {
    .next = stream_next,
    .free = reply_free,
};

static void chat(mock_req_t *req, mock_resp_t *resp)
{
    const json_t *root = req->json;
    const json_t *messages = json_object_get(root, "messages");
    const json_t *max = json_object_get(root, "max_tokens");
    mock_str_t name = {NULL, 0};
    uint64_t chars = 0;

    if (!json_is_string(json_object_get(root, "model"))) {
        error_reply(req, resp, 400, "invalid request: model must be specified");
        return;
    }
    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        error_reply(req, resp, 400, "invalid request: messages must not be empty");
        return;
    }
    for (size_t i = 0; i < json_array_size(messages); i++)
        chars += content_chars(json_object_get(json_array_get(messages, i), "content"));

    co_reply_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    bool stream = json_is_true(json_object_get(root, "stream"));
    const json_t *fn = pick_tool(req, root, &name);
    mock_str_t text = mock_reply_text(req);
    mock_buf_t plan;

    mock_buf_init(&plan);
    r->id = req->id;
    r->input_tokens = mock_tokens_from_chars(chars);
    r->tool = fn != NULL;
    if (r->tool && req->faults.content.base == NULL) {
        MOCK_BUF_LIT(&plan, DEFAULT_TOOL_PLAN_PREFIX);
        mock_buf_append(&plan, name.base, name.len);
        MOCK_BUF_LIT(&plan, DEFAULT_TOOL_PLAN_SUFFIX);
        text = (mock_str_t){plan.base, plan.len};
    }
    if (!r->tool && json_is_integer(max) && json_integer_value(max) >= 0)
        text = mock_truncate_words(text, (uint64_t)json_integer_value(max), &r->truncated);
    mock_pieces_init(&r->text, text, stream ? req->faults.chunks : -1);
    mock_buf_dispose(&plan);
    if (r->tool) {
        mock_buf_append_json_str(&r->tool_name, name.base, name.len);
        /* Cohere's call ids are "<name>_<12 characters>". */
        mock_buf_t id;
        mock_buf_init(&id);
        mock_buf_append(&id, name.base, name.len);
        mock_buf_appendf(&id, "_mock%08llu", (unsigned long long)(req->id % 100000000));
        mock_buf_append_json_str(&r->call_id, id.base, id.len);
        mock_buf_dispose(&id);
        mock_tool_args(json_object_get(fn, "parameters"), &r->args);
        r->arg_pieces = mock_arg_pieces(&r->args);
    }
    r->output_tokens = mock_pieces_output_tokens(&r->text);
    if (r->tool)
        r->output_tokens += mock_tokens_from_chars(mock_count_chars(r->args.base, r->args.len));

    if (stream) {
        r->stream_error = req->faults.stream_error.base != NULL;
        resp->content_type = "text/event-stream";
        resp->stream = &stream_ops;
        resp->stream_state = r;
        return;
    }
    mock_buf_t *b = resp->body;
    MOCK_BUF_LIT(b, "{\"id\":\"");
    mock_buf_append_uuid(b, r->id);
    MOCK_BUF_LIT(b, "\",\"message\":{\"role\":\"assistant\",");
    if (r->tool) {
        MOCK_BUF_LIT(b, "\"tool_plan\":");
        mock_buf_append_json_str(b, r->text.text.base, r->text.text.len);
        MOCK_BUF_LIT(b, ",\"tool_calls\":[");
        append_call(r, b, true);
        MOCK_BUF_LIT(b, "]");
    } else {
        MOCK_BUF_LIT(b, "\"content\":[{\"type\":\"text\",\"text\":");
        mock_buf_append_json_str(b, r->text.text.base, r->text.text.len);
        MOCK_BUF_LIT(b, "}]");
    }
    MOCK_BUF_LIT(b, "},\"finish_reason\":\"");
    mock_buf_append(b, finish_reason(r), strlen(finish_reason(r)));
    MOCK_BUF_LIT(b, "\",\"usage\":");
    append_usage(r, b);
    MOCK_BUF_LIT(b, "}");
    reply_free(r);
}

/* ---- embed ---------------------------------------------------------------------------- */

static void embed(mock_req_t *req, mock_resp_t *resp)
{
    static const char *const type_names[] = {"float", "int8", "uint8", "binary", "ubinary"};
    const json_t *root = req->json;
    const json_t *texts = json_object_get(root, "texts");
    const json_t *inputs = json_object_get(root, "inputs");
    const json_t *types = json_object_get(root, "embedding_types");
    const json_t *dim = json_object_get(root, "output_dimension");
    size_t dims = MOCK_EMBED_DIMS, n;
    bool want[6] = {false}; /* by mock_embed_type_t; [5] is base64 */
    uint64_t tokens = 0;

    if (!json_is_string(json_object_get(root, "model"))) {
        error_reply(req, resp, 400, "invalid request: model must be specified");
        return;
    }
    if (!json_is_string(json_object_get(root, "input_type"))) {
        error_reply(req, resp, 400,
                    "invalid request: valid input_type must be provided with the provided model");
        return;
    }
    if (!json_is_array(texts) && !json_is_array(inputs)) {
        error_reply(req, resp, 400,
                    "invalid request: one of texts, images or inputs must be "
                    "specified");
        return;
    }
    n = json_is_array(texts) ? json_array_size(texts) : json_array_size(inputs);
    if (dim != NULL && !json_is_null(dim)) {
        if (!json_is_integer(dim) || json_integer_value(dim) < 1 ||
            json_integer_value(dim) > MOCK_EMBED_MAX_DIMS) {
            error_reply(req, resp, 400, "invalid request: output_dimension is invalid");
            return;
        }
        dims = (size_t)json_integer_value(dim);
    }
    if (!json_is_array(types) || json_array_size(types) == 0) {
        want[MOCK_EMBED_FLOAT] = true;
    } else {
        for (size_t i = 0; i < json_array_size(types); i++) {
            const char *t = json_string_value(json_array_get(types, i));
            mock_embed_type_t et;
            if (t != NULL && strcmp(t, "base64") == 0) {
                want[5] = true;
            } else if (t != NULL && mock_embed_type_parse(t, &et)) {
                want[et] = true;
            } else {
                error_reply(req, resp, 400,
                            "invalid request: embedding_types must be one of "
                            "float, int8, uint8, binary, ubinary or base64");
                return;
            }
        }
    }

    /* The seed and size of input i: a text, or the text items of an input. */
    uint64_t *seeds = malloc(sizeof(uint64_t) * (n + 1));
    float *v = malloc(sizeof(float) * dims);
    if (seeds == NULL || v == NULL)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (json_is_array(texts)) {
            const json_t *t = json_array_get(texts, i);
            seeds[i] = mock_hash(json_string_value(t) ? json_string_value(t) : "",
                                 json_string_length(t), 0);
            tokens += mock_tokens_from_chars(mock_json_chars(t));
        } else {
            const json_t *content = json_object_get(json_array_get(inputs, i), "content");
            uint64_t chars = 0;
            seeds[i] = mock_hash("", 0, 0);
            for (size_t k = 0; json_is_array(content) && k < json_array_size(content); k++) {
                const json_t *t = json_object_get(json_array_get(content, k), "text");
                if (json_is_string(t))
                    seeds[i] = mock_hash(json_string_value(t), json_string_length(t), seeds[i]);
                chars += mock_json_chars(t);
            }
            tokens += mock_tokens_from_chars(chars);
        }
    }

    mock_buf_t *b = resp->body;
    bool first = true;
    MOCK_BUF_LIT(b, "{\"id\":\"");
    mock_buf_append_uuid(b, req->id);
    MOCK_BUF_LIT(b, "\",\"embeddings\":{");
    for (size_t t = 0; t < 6; t++) {
        if (!want[t])
            continue;
        if (!first)
            MOCK_BUF_LIT(b, ",");
        first = false;
        mock_buf_append_json_cstr(b, t == 5 ? "base64" : type_names[t]);
        MOCK_BUF_LIT(b, ":[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                MOCK_BUF_LIT(b, ",");
            mock_fake_embedding(seeds[i], v, dims);
            mock_buf_append_embedding(b, v, dims, t == 5 ? MOCK_EMBED_FLOAT : (mock_embed_type_t)t,
                                      t == 5);
        }
        MOCK_BUF_LIT(b, "]");
    }
    MOCK_BUF_LIT(b, "}");
    if (json_is_array(texts)) {
        MOCK_BUF_LIT(b, ",\"texts\":");
        mock_buf_append_json(b, texts);
    }
    MOCK_BUF_LIT(b, ",\"meta\":{\"api_version\":{\"version\":\"2\"},\"billed_units\":{"
                    "\"input_tokens\":");
    mock_buf_append_u64(b, tokens);
    MOCK_BUF_LIT(b, "}},\"response_type\":\"embeddings_by_type\"}");
    free(seeds);
    free(v);
}

static const mock_route_t cohere_routes[] = {
    {HTTP_POST, "/v2/chat", MOCK_ROUTE_JSON, chat},
    {HTTP_POST, "/v2/embed", MOCK_ROUTE_JSON, embed},
    {0, NULL, 0, NULL},
};

const mock_format_t mock_cohere_format = {
    .name = "cohere",
    .routes = cohere_routes,
    .authorized = cohere_authorized,
    .error = cohere_error,
    .headers = cohere_headers,
};
