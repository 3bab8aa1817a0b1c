/*
 * The OpenAI API format: chat completions, legacy completions, embeddings,
 * models, images, speech and transcriptions, with OpenAI's error objects.
 *
 * /v1/embeddings also answers for Voyage and Jina, whose embeddings APIs sit
 * on the same path: the model name ("voyage-*", "jina-*") selects their
 * request parameters, response shape and {"detail": ...} errors.
 *
 * The chat, completions and embeddings handlers are shared with mock_azure.c,
 * which passes the deployment as the default model and asks for Azure's
 * content filter results.
 *
 * Replies are written with plain appends instead of building jansson trees,
 * because the chat completion path is what the benchmark hammers; jansson is
 * only used (by the server) to read the request body.
 */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/mock_provider/mock.h"

#define TOOL_ARGUMENTS "{}"

/* A 1x1 transparent PNG, the b64_json image of every generation. */
#define PNG_1X1_B64                                                                                \
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5E"     \
    "rkJggg=="

#define CHAT_USAGE_DETAILS                                                                         \
    ",\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"                         \
    "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"                    \
    "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}"

/* Azure's content filter verdicts: everything safe. */
#define AZURE_FILTERS                                                                              \
    "{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},"                                        \
    "\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"},"                                    \
    "\"sexual\":{\"filtered\":false,\"severity\":\"safe\"},"                                       \
    "\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}"
#define AZURE_PROMPT_FILTERS                                                                       \
    "\"prompt_filter_results\":[{\"prompt_index\":0,"                                              \
    "\"content_filter_results\":" AZURE_FILTERS "}]"

#define STREAM_ERROR_MESSAGE                                                                       \
    "The server had an error while processing your request. Sorry about that!"

static void append_json_string_value(mock_buf_t *b, const json_t *s)
{
    mock_buf_append_json_str(b, json_string_value(s), json_string_length(s));
}

/* ---- embeddings flavours ------------------------------------------------------- */

typedef enum flavor_e { FLAVOR_OPENAI, FLAVOR_VOYAGE, FLAVOR_JINA } flavor_t;

static flavor_t flavor_of_model(const json_t *model)
{
    const char *m = json_string_value(model);

    if (m == NULL)
        return FLAVOR_OPENAI;
    if (strncmp(m, "voyage", 6) == 0)
        return FLAVOR_VOYAGE;
    if (strncmp(m, "jina", 4) == 0)
        return FLAVOR_JINA;
    return FLAVOR_OPENAI;
}

/* Errors are written before the body is parsed (missing key, injected
 * status), so the embeddings flavour is read from the raw body here. */
static flavor_t flavor_of_request(const mock_req_t *req)
{
    static const char path[] = "/v1/embeddings";
    flavor_t f;

    if (req->path.len != sizeof(path) - 1 || memcmp(req->path.base, path, sizeof(path) - 1) != 0)
        return FLAVOR_OPENAI;
    if (req->json != NULL)
        return flavor_of_model(json_object_get(req->json, "model"));
    json_t *root = json_loadb(req->body.base ? req->body.base : "", req->body.len, 0, NULL);
    f = flavor_of_model(json_object_get(root, "model"));
    json_decref(root);
    return f;
}

/* ---- errors ---------------------------------------------------------------- */

static void error_reply(mock_resp_t *resp, int status, const char *message, size_t message_len,
                        const char *type, const char *param, const char *code)
{
    mock_buf_t *b = resp->body;

    resp->status = status;
    resp->content_type = "application/json";
    resp->stream = NULL;
    b->len = 0;
    MOCK_BUF_LIT(b, "{\"error\":{\"message\":");
    mock_buf_append_json_str(b, message, message_len);
    MOCK_BUF_LIT(b, ",\"type\":");
    mock_buf_append_json_cstr(b, type);
    MOCK_BUF_LIT(b, ",\"param\":");
    if (param != NULL)
        mock_buf_append_json_cstr(b, param);
    else
        MOCK_BUF_LIT(b, "null");
    MOCK_BUF_LIT(b, ",\"code\":");
    if (code != NULL)
        mock_buf_append_json_cstr(b, code);
    else
        MOCK_BUF_LIT(b, "null");
    MOCK_BUF_LIT(b, "}}");
}

void mock__openai_error_reply(mock_resp_t *resp, int status, const char *message, const char *type,
                              const char *param, const char *code)
{
    error_reply(resp, status, message, strlen(message), type, param, code);
}

/* Voyage's and Jina's errors: FastAPI's {"detail": "..."}. */
static void detail_reply(mock_resp_t *resp, int status, const char *message)
{
    resp->status = status;
    resp->content_type = "application/json";
    resp->stream = NULL;
    resp->body->len = 0;
    MOCK_BUF_LIT(resp->body, "{\"detail\":");
    mock_buf_append_json_cstr(resp->body, message);
    MOCK_BUF_LIT(resp->body, "}");
}

static void invalid_request(mock_resp_t *resp, const char *message, const char *param,
                            const char *code)
{
    error_reply(resp, 400, message, strlen(message), "invalid_request_error", param, code);
}

static void missing_param(mock_resp_t *resp, const char *param)
{
    char msg[128];
    int n = snprintf(msg, sizeof(msg), "Missing required parameter: '%s'.", param);

    error_reply(resp, 400, msg, (size_t)n, "invalid_request_error", param,
                "missing_required_parameter");
}

static void detail_error(mock_req_t *req, mock_resp_t *resp, mock_err_kind_t kind, int status)
{
    char msg[128];

    switch (kind) {
    case MOCK_ERR_AUTH:
        detail_reply(resp, 401, "Provided API key is invalid.");
        return;
    case MOCK_ERR_BAD_JSON:
        detail_reply(resp, 400, "Request body is not valid JSON.");
        return;
    case MOCK_ERR_NOT_FOUND:
        detail_reply(resp, 404, "Not Found");
        return;
    case MOCK_ERR_INJECTED:
        break;
    }
    if (status == 429)
        snprintf(msg, sizeof(msg), "%s", "Rate limit exceeded (mock). Please retry later.");
    else if (status >= 500)
        snprintf(msg, sizeof(msg), "Internal server error (mock %d).", status);
    else
        snprintf(msg, sizeof(msg), "Mock error %d (x-mock-status).", status);
    detail_reply(resp, status, msg);
}

static void openai_error(mock_req_t *req, mock_resp_t *resp, mock_err_kind_t kind, int status)
{
    char msg[512];
    int n;

    if (flavor_of_request(req) != FLAVOR_OPENAI) {
        detail_error(req, resp, kind, status);
        return;
    }
    switch (kind) {
    case MOCK_ERR_AUTH:
        n = snprintf(msg, sizeof(msg), "%s",
                     "You didn't provide an API key. You need to provide your API key in an "
                     "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                     "YOUR_KEY), or as the password field (with blank username) if you're "
                     "accessing the API from your browser and are prompted for a username. You "
                     "can obtain an API key from https://platform.openai.com/account/api-keys.");
        error_reply(resp, 401, msg, (size_t)n, "invalid_request_error", NULL, "invalid_api_key");
        return;
    case MOCK_ERR_BAD_JSON:
        n = snprintf(msg, sizeof(msg), "%s",
                     "We could not parse the JSON body of your request. (HINT: This likely "
                     "means you aren't using your HTTP library correctly. The OpenAI API "
                     "expects a JSON payload, but what was sent was not valid JSON. If you have "
                     "trouble figuring out how to fix this, please contact us through our help "
                     "center at help.openai.com.)");
        error_reply(resp, 400, msg, (size_t)n, "invalid_request_error", NULL, NULL);
        return;
    case MOCK_ERR_NOT_FOUND: {
        mock_buf_t m;
        const char *method = http_method_str((enum http_method)req->method);
        mock_buf_init(&m);
        MOCK_BUF_LIT(&m, "Unknown request URL: ");
        mock_buf_append(&m, method, strlen(method));
        MOCK_BUF_LIT(&m, " ");
        mock_buf_append(&m, req->path.base, req->path.len);
        MOCK_BUF_LIT(&m, ".");
        error_reply(resp, 404, m.base, m.len, "invalid_request_error", NULL, "unknown_url");
        mock_buf_dispose(&m);
        return;
    }
    case MOCK_ERR_INJECTED:
        break;
    }
    if (status == 429) {
        n = snprintf(msg, sizeof(msg), "%s",
                     "Rate limit reached for requests (mock). Please try again in 1s.");
        error_reply(resp, status, msg, (size_t)n, "rate_limit_exceeded", NULL,
                    "rate_limit_exceeded");
    } else if (status == 500) {
        n = snprintf(msg, sizeof(msg), "%s",
                     "The server had an error while processing your request. Sorry about that!");
        error_reply(resp, status, msg, (size_t)n, "server_error", NULL, NULL);
    } else if (status > 500) {
        n = snprintf(msg, sizeof(msg), "Mock upstream error %d (x-mock-status).", status);
        error_reply(resp, status, msg, (size_t)n, "server_error", NULL, NULL);
    } else if (status == 401) {
        n = snprintf(msg, sizeof(msg), "%s", "Incorrect API key provided (x-mock-status).");
        error_reply(resp, status, msg, (size_t)n, "invalid_request_error", NULL, "invalid_api_key");
    } else {
        n = snprintf(msg, sizeof(msg), "Mock error %d (x-mock-status).", status);
        error_reply(resp, status, msg, (size_t)n, "invalid_request_error", NULL, NULL);
    }
}

static bool openai_authorized(const mock_req_t *req)
{
    mock_str_t v = mock_req_header(req, "authorization");
    size_t i = 7;

    if (v.base == NULL || v.len < 7 || strncasecmp(v.base, "Bearer ", 7) != 0)
        return false;
    while (i < v.len && v.base[i] == ' ')
        i++;
    return i < v.len;
}

static void openai_headers(const mock_req_t *req, mock_buf_t *out)
{
    MOCK_BUF_LIT(out, "x-request-id: req_mock_");
    mock_buf_append_u64(out, req->id);
    MOCK_BUF_LIT(out, "\r\nopenai-processing-ms: ");
    mock_buf_append_u64(out, req->processing_ms);
    MOCK_BUF_LIT(out, "\r\nopenai-version: 2020-10-01\r\n"
                      "x-ratelimit-limit-requests: 10000\r\n"
                      "x-ratelimit-remaining-requests: 9999\r\n"
                      "x-ratelimit-reset-requests: 6ms\r\n"
                      "x-ratelimit-limit-tokens: 10000000\r\n"
                      "x-ratelimit-remaining-tokens: 9999000\r\n"
                      "x-ratelimit-reset-tokens: 6ms\r\n");
}

/* ---- text helpers -------------------------------------------------------------- */

/* Characters of a message content: a string, or an array of parts with "text". */
static uint64_t content_chars(const json_t *content)
{
    uint64_t chars = 0;
    size_t i;

    if (json_is_string(content))
        return mock_json_chars(content);
    if (!json_is_array(content))
        return 0;
    for (i = 0; i < json_array_size(content); i++) {
        const json_t *part = json_array_get(content, i);
        chars += mock_json_chars(json_object_get(part, "text"));
    }
    return chars;
}

static bool include_usage(const json_t *root)
{
    json_t *opts = json_object_get(root, "stream_options");

    return json_is_object(opts) && json_is_true(json_object_get(opts, "include_usage"));
}

static void append_usage(mock_buf_t *b, bool chat, uint64_t p, uint64_t c)
{
    MOCK_BUF_LIT(b, "{\"prompt_tokens\":");
    mock_buf_append_u64(b, p);
    MOCK_BUF_LIT(b, ",\"completion_tokens\":");
    mock_buf_append_u64(b, c);
    MOCK_BUF_LIT(b, ",\"total_tokens\":");
    mock_buf_append_u64(b, p + c);
    if (chat)
        MOCK_BUF_LIT(b, CHAT_USAGE_DETAILS);
    MOCK_BUF_LIT(b, "}");
}

/* The model of the reply (borrowed, not escaped): the body's, else the
 * caller's default. Returns false (after answering 400) when there is neither. */
static bool reply_model(const mock_req_t *req, mock_resp_t *resp, const mock_openai_opts_t *o,
                        mock_str_t *model)
{
    json_t *m = json_object_get(req->json, "model");

    if (json_is_string(m)) {
        *model = (mock_str_t){json_string_value(m), json_string_length(m)};
        return true;
    }
    if (o->model.base != NULL) {
        *model = o->model;
        return true;
    }
    invalid_request(resp, "you must provide a model parameter", NULL, NULL);
    return false;
}

/* ---- streams ---------------------------------------------------------------------- */

typedef enum phase_e {
    PH_AZURE_PROMPT,
    PH_ROLE,
    PH_PIECES,
    PH_ERROR,
    PH_FINISH,
    PH_USAGE,
    PH_DONE,
    PH_END
} phase_t;

/* One chat or text completion stream; pieces are computed on demand. */
typedef struct oa_stream_s {
    bool chat;
    bool include_usage;
    bool tool;
    bool azure;
    bool stream_error; /* x-mock-stream-error: an error event after two pieces */
    phase_t phase;
    mock_buf_t prefix;    /* owned: the chunk object up to and including "choices": */
    mock_buf_t json;      /* owned: one event being built */
    mock_buf_t tool_name; /* owned: JSON-quoted tool name */
    mock_pieces_t pieces; /* owned */
    uint64_t next_piece;
    uint64_t id;
    uint64_t prompt_tokens, completion_tokens;
} oa_stream_t;

static void stream_free(void *state)
{
    oa_stream_t *st = state;

    mock_buf_dispose(&st->prefix);
    mock_buf_dispose(&st->json);
    mock_buf_dispose(&st->tool_name);
    mock_pieces_dispose(&st->pieces);
    free(st);
}

/* Closes a chat choice; Azure adds its filter verdicts (empty on the role and
 * finish chunks, as Azure sends them). */
static void choice_tail(const oa_stream_t *st, mock_buf_t *j, bool content)
{
    if (st->azure) {
        if (content)
            MOCK_BUF_LIT(j, ",\"content_filter_results\":" AZURE_FILTERS);
        else
            MOCK_BUF_LIT(j, ",\"content_filter_results\":{}");
    }
    MOCK_BUF_LIT(j, ",\"logprobs\":null,\"finish_reason\":null}]");
}

static bool stream_next(mock_req_t *req, void *state, mock_buf_t *out)
{
    oa_stream_t *st = state;
    mock_buf_t *j = &st->json;

    j->len = 0;
    switch (st->phase) {
    case PH_AZURE_PROMPT:
        /* Azure's first chunk carries only the prompt's filter verdicts. */
        MOCK_BUF_LIT(j, "{\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\","
                        "\"object\":\"\"," AZURE_PROMPT_FILTERS "}");
        mock_sse_emit(req, out, NULL, j->base, j->len);
        st->phase = PH_ROLE;
        return true;
    case PH_ERROR:
        MOCK_BUF_LIT(j, "{\"error\":{\"message\":\"" STREAM_ERROR_MESSAGE "\",\"type\":"
                        "\"server_error\",\"param\":null,\"code\":null}}");
        mock_sse_emit(req, out, NULL, j->base, j->len);
        st->phase = PH_END;
        return true;
    case PH_DONE:
        mock_sse_emit(req, out, NULL, "[DONE]", 6);
        st->phase = PH_END;
        return true;
    case PH_END:
        return false;
    default:
        break;
    }
    mock_buf_append(j, st->prefix.base, st->prefix.len);
    switch (st->phase) {
    case PH_ROLE:
        if (st->tool) {
            MOCK_BUF_LIT(j, "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,"
                            "\"tool_calls\":[{\"index\":0,\"id\":\"call_mock_");
            mock_buf_append_u64(j, st->id);
            MOCK_BUF_LIT(j, "\",\"type\":\"function\",\"function\":{\"name\":");
            mock_buf_append(j, st->tool_name.base, st->tool_name.len);
            MOCK_BUF_LIT(j, ",\"arguments\":\"\"}}],\"refusal\":null}");
        } else {
            MOCK_BUF_LIT(j, "[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\","
                            "\"refusal\":null}");
        }
        choice_tail(st, j, false);
        st->phase = PH_PIECES;
        break;
    case PH_PIECES:
        if (st->tool) {
            MOCK_BUF_LIT(j, "[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":"
                            "{\"arguments\":");
            mock_buf_append_json_cstr(j, TOOL_ARGUMENTS);
            MOCK_BUF_LIT(j, "}}]}");
            choice_tail(st, j, true);
            st->phase = st->stream_error ? PH_ERROR : PH_FINISH;
            break;
        }
        if (st->stream_error &&
            st->next_piece >= (st->pieces.n_pieces < 2 ? st->pieces.n_pieces : 2)) {
            st->phase = PH_ERROR;
            return stream_next(req, state, out);
        }
        if (st->next_piece >= st->pieces.n_pieces) {
            st->phase = PH_FINISH;
            return stream_next(req, state, out);
        }
        if (st->chat) {
            MOCK_BUF_LIT(j, "[{\"index\":0,\"delta\":{\"content\":");
            mock_pieces_append(&st->pieces, st->next_piece, j);
            MOCK_BUF_LIT(j, "}");
            choice_tail(st, j, true);
        } else {
            MOCK_BUF_LIT(j, "[{\"text\":");
            mock_pieces_append(&st->pieces, st->next_piece, j);
            MOCK_BUF_LIT(j, ",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]");
        }
        st->next_piece++;
        break;
    case PH_FINISH:
        if (st->chat) {
            MOCK_BUF_LIT(j, "[{\"index\":0,\"delta\":{},");
            if (st->azure)
                MOCK_BUF_LIT(j, "\"content_filter_results\":{},");
            MOCK_BUF_LIT(j, "\"logprobs\":null,\"finish_reason\":");
            if (st->tool)
                MOCK_BUF_LIT(j, "\"tool_calls\"}]");
            else
                MOCK_BUF_LIT(j, "\"stop\"}]");
        } else {
            MOCK_BUF_LIT(j, "[{\"text\":\"\",\"index\":0,\"logprobs\":null,"
                            "\"finish_reason\":\"stop\"}]");
        }
        st->phase = st->include_usage ? PH_USAGE : PH_DONE;
        break;
    case PH_USAGE:
        MOCK_BUF_LIT(j, "[],\"usage\":");
        append_usage(j, st->chat, st->prompt_tokens, st->completion_tokens);
        MOCK_BUF_LIT(j, "}");
        mock_sse_emit(req, out, NULL, j->base, j->len);
        st->phase = PH_DONE;
        return true;
    default:
        return false;
    }
    /* OpenAI marks the usage slot on every chunk once usage was asked for. */
    if (st->include_usage)
        MOCK_BUF_LIT(j, ",\"usage\":null");
    MOCK_BUF_LIT(j, "}");
    mock_sse_emit(req, out, NULL, j->base, j->len);
    return true;
}

static const mock_stream_ops_t stream_ops = {
    .next = stream_next,
    .free = stream_free,
};

static void start_stream(mock_req_t *req, mock_resp_t *resp, bool chat, mock_str_t model,
                         bool usage, uint64_t prompt_tokens, mock_str_t tool, bool azure)
{
    oa_stream_t *st = calloc(1, sizeof(*st));

    if (st == NULL)
        abort();
    st->chat = chat;
    st->include_usage = usage;
    st->tool = tool.base != NULL;
    st->azure = azure && chat;
    st->stream_error = req->faults.stream_error.base != NULL;
    st->phase = st->azure ? PH_AZURE_PROMPT : chat ? PH_ROLE : PH_PIECES;
    st->id = req->id;
    st->prompt_tokens = prompt_tokens;
    if (st->tool)
        mock_buf_append_json_str(&st->tool_name, tool.base, tool.len);
    mock_pieces_init(&st->pieces, mock_reply_text(req), req->faults.chunks);
    if (st->tool)
        st->completion_tokens = mock_count_words(TOOL_ARGUMENTS, sizeof(TOOL_ARGUMENTS) - 1);
    else
        st->completion_tokens = mock_pieces_output_tokens(&st->pieces);

    mock_buf_t *p = &st->prefix;
    if (chat)
        MOCK_BUF_LIT(p, "{\"id\":\"chatcmpl-mock-");
    else
        MOCK_BUF_LIT(p, "{\"id\":\"cmpl-mock-");
    mock_buf_append_u64(p, req->id);
    if (chat)
        MOCK_BUF_LIT(p, "\",\"object\":\"chat.completion.chunk\",\"created\":");
    else
        MOCK_BUF_LIT(p, "\",\"object\":\"text_completion\",\"created\":");
    mock_buf_append_i64(p, mock_now_unix());
    MOCK_BUF_LIT(p, ",\"model\":");
    mock_buf_append_json_str(p, model.base, model.len);
    if (chat)
        MOCK_BUF_LIT(p, ",\"system_fingerprint\":\"fp_mock\"");
    MOCK_BUF_LIT(p, ",\"choices\":");

    resp->content_type = "text/event-stream; charset=utf-8";
    resp->stream = &stream_ops;
    resp->stream_state = st;
}

/* ---- chat completions ----------------------------------------------------------- */

void mock__openai_chat(mock_req_t *req, mock_resp_t *resp, const mock_openai_opts_t *o)
{
    json_t *root = req->json;
    json_t *messages = json_object_get(root, "messages");
    json_t *tools = json_object_get(root, "tools");
    uint64_t chars = 0;
    mock_str_t model;
    size_t i;

    if (!reply_model(req, resp, o, &model))
        return;
    if (!json_is_array(messages)) {
        missing_param(resp, "messages");
        return;
    }
    for (i = 0; i < json_array_size(messages); i++) {
        const json_t *msg = json_array_get(messages, i);
        chars += content_chars(json_object_get(msg, "content"));
    }
    uint64_t prompt_tokens = mock_tokens_from_chars(chars);
    mock_str_t tool = {NULL, 0};
    if (json_is_array(tools) && json_array_size(tools) > 0 && req->faults.tool_call.len > 0)
        tool = req->faults.tool_call;

    if (json_is_true(json_object_get(root, "stream"))) {
        start_stream(req, resp, true, model, include_usage(root), prompt_tokens, tool, o->azure);
        return;
    }

    mock_buf_t *b = resp->body;
    mock_str_t text = mock_reply_text(req);
    uint64_t completion_tokens;
    MOCK_BUF_LIT(b, "{\"id\":\"chatcmpl-mock-");
    mock_buf_append_u64(b, req->id);
    MOCK_BUF_LIT(b, "\",\"object\":\"chat.completion\",\"created\":");
    mock_buf_append_i64(b, mock_now_unix());
    MOCK_BUF_LIT(b, ",\"model\":");
    mock_buf_append_json_str(b, model.base, model.len);
    if (o->azure)
        MOCK_BUF_LIT(b, "," AZURE_PROMPT_FILTERS);
    MOCK_BUF_LIT(b, ",\"choices\":[{\"index\":0,");
    if (o->azure)
        MOCK_BUF_LIT(b, "\"content_filter_results\":" AZURE_FILTERS ",");
    MOCK_BUF_LIT(b, "\"message\":{\"role\":\"assistant\",\"content\":");
    if (tool.base != NULL) {
        MOCK_BUF_LIT(b, "null,\"tool_calls\":[{\"id\":\"call_mock_");
        mock_buf_append_u64(b, req->id);
        MOCK_BUF_LIT(b, "\",\"type\":\"function\",\"function\":{\"name\":");
        mock_buf_append_json_str(b, tool.base, tool.len);
        MOCK_BUF_LIT(b, ",\"arguments\":");
        mock_buf_append_json_cstr(b, TOOL_ARGUMENTS);
        MOCK_BUF_LIT(b,
                     "}}],\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}]");
        completion_tokens = mock_count_words(TOOL_ARGUMENTS, sizeof(TOOL_ARGUMENTS) - 1);
    } else {
        mock_buf_append_json_str(b, text.base, text.len);
        MOCK_BUF_LIT(b, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}]");
        completion_tokens = mock_count_words(text.base, text.len);
    }
    MOCK_BUF_LIT(b, ",\"usage\":");
    append_usage(b, true, prompt_tokens, completion_tokens);
    MOCK_BUF_LIT(b, ",\"system_fingerprint\":\"fp_mock\"}");
}

/* ---- legacy completions --------------------------------------------------------- */

/* Prompt size of a string, an array of strings, or token arrays. */
static uint64_t prompt_tokens_of(const json_t *prompt)
{
    uint64_t chars = 0, tokens = 0;
    size_t i;

    if (json_is_string(prompt))
        return mock_tokens_from_chars(mock_json_chars(prompt));
    if (!json_is_array(prompt))
        return 1;
    for (i = 0; i < json_array_size(prompt); i++) {
        const json_t *v = json_array_get(prompt, i);
        if (json_is_string(v))
            chars += mock_json_chars(v);
        else if (json_is_integer(v))
            tokens++;
        else if (json_is_array(v))
            tokens += json_array_size(v);
    }
    return tokens + chars / 4 > 0 ? tokens + chars / 4 : 1;
}

void mock__openai_completions(mock_req_t *req, mock_resp_t *resp, const mock_openai_opts_t *o)
{
    json_t *root = req->json;
    mock_str_t model;

    if (!reply_model(req, resp, o, &model))
        return;
    uint64_t prompt_tokens = prompt_tokens_of(json_object_get(root, "prompt"));
    if (json_is_true(json_object_get(root, "stream"))) {
        start_stream(req, resp, false, model, include_usage(root), prompt_tokens,
                     (mock_str_t){NULL, 0}, o->azure);
        return;
    }

    mock_buf_t *b = resp->body;
    mock_str_t text = mock_reply_text(req);
    MOCK_BUF_LIT(b, "{\"id\":\"cmpl-mock-");
    mock_buf_append_u64(b, req->id);
    MOCK_BUF_LIT(b, "\",\"object\":\"text_completion\",\"created\":");
    mock_buf_append_i64(b, mock_now_unix());
    MOCK_BUF_LIT(b, ",\"model\":");
    mock_buf_append_json_str(b, model.base, model.len);
    MOCK_BUF_LIT(b, ",\"choices\":[{\"text\":");
    mock_buf_append_json_str(b, text.base, text.len);
    MOCK_BUF_LIT(b, ",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":");
    append_usage(b, false, prompt_tokens, mock_count_words(text.base, text.len));
    MOCK_BUF_LIT(b, "}");
}

/* ---- embeddings ------------------------------------------------------------------- */

static uint64_t input_seed(const json_t *in)
{
    if (json_is_string(in))
        return mock_hash(json_string_value(in), json_string_length(in), 0);
    if (json_is_object(in)) {
        /* Jina's {"text": ...}, {"image": ...} or {"url": ...} inputs. */
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)in, key, v) {
            if (json_is_string(v))
                return mock_hash(json_string_value(v), json_string_length(v), 0);
        }
        return mock_hash("", 0, 0);
    }
    /* A token array: hash the numbers. */
    uint64_t h = mock_hash("", 0, 1);
    size_t i;
    for (i = 0; i < json_array_size(in); i++) {
        const json_t *t = json_array_get(in, i);
        json_int_t x = json_integer_value(t);
        h = mock_hash(&x, sizeof(x), h);
    }
    return h;
}

static uint64_t input_tokens(const json_t *in)
{
    if (json_is_string(in))
        return mock_tokens_from_chars(mock_json_chars(in));
    if (json_is_object(in))
        return mock_tokens_from_chars(mock_json_chars(json_object_get(in, "text")));
    return json_array_size(in) > 0 ? json_array_size(in) : 1;
}

static bool is_token_array(const json_t *a)
{
    size_t i;

    if (!json_is_array(a) || json_array_size(a) == 0)
        return false;
    for (i = 0; i < json_array_size(a); i++) {
        const json_t *t = json_array_get(a, i);
        if (!json_is_integer(t))
            return false;
    }
    return true;
}

static bool input_ok(flavor_t f, const json_t *v)
{
    switch (f) {
    case FLAVOR_VOYAGE:
        return json_is_string(v);
    case FLAVOR_JINA:
        return json_is_string(v) || json_is_object(v);
    case FLAVOR_OPENAI:
        break;
    }
    return json_is_string(v) || is_token_array(v);
}

/* The per-flavour request parameters, validated. */
typedef struct embed_opts_s {
    size_t dims;
    mock_embed_type_t type;
    bool b64;
} embed_opts_t;

static bool embed_opts(flavor_t f, const json_t *root, mock_resp_t *resp, embed_opts_t *eo)
{
    const char *dim_name = f == FLAVOR_VOYAGE ? "output_dimension" : "dimensions";
    json_t *dim = json_object_get(root, dim_name);

    eo->dims = MOCK_EMBED_DIMS;
    eo->type = MOCK_EMBED_FLOAT;
    eo->b64 = false;
    if (dim != NULL && !json_is_null(dim)) {
        if (!json_is_integer(dim) || json_integer_value(dim) < 1 ||
            json_integer_value(dim) > MOCK_EMBED_MAX_DIMS) {
            if (f != FLAVOR_OPENAI) {
                detail_reply(resp, 400, "Invalid output dimension.");
                return false;
            }
            invalid_request(resp,
                            "Invalid value for 'dimensions': expected an integer "
                            "between 1 and 65536.",
                            "dimensions", "invalid_value");
            return false;
        }
        eo->dims = (size_t)json_integer_value(dim);
    }
    if (f == FLAVOR_VOYAGE) {
        json_t *dtype = json_object_get(root, "output_dtype");
        json_t *fmt = json_object_get(root, "encoding_format");
        if (dtype != NULL && !json_is_null(dtype) &&
            (!json_is_string(dtype) ||
             !mock_embed_type_parse(json_string_value(dtype), &eo->type))) {
            detail_reply(resp, 400,
                         "Value error, output_dtype must be one of float, int8, uint8, "
                         "binary or ubinary.");
            return false;
        }
        if (fmt != NULL && !json_is_null(fmt)) {
            if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "base64") != 0) {
                detail_reply(resp, 400, "Value error, encoding_format must be null or base64.");
                return false;
            }
            eo->b64 = true;
        }
        return true;
    }
    if (f == FLAVOR_JINA) {
        json_t *et = json_object_get(root, "embedding_type");
        if (et != NULL && !json_is_null(et)) {
            const char *s = json_string_value(et);
            if (s != NULL && strcmp(s, "base64") == 0) {
                eo->b64 = true;
            } else if (s == NULL || !mock_embed_type_parse(s, &eo->type) ||
                       eo->type == MOCK_EMBED_INT8 || eo->type == MOCK_EMBED_UINT8) {
                detail_reply(resp, 400,
                             "embedding_type must be one of float, base64, binary or "
                             "ubinary.");
                return false;
            }
        }
        return true;
    }
    json_t *fmt = json_object_get(root, "encoding_format");
    if (fmt != NULL && !json_is_null(fmt)) {
        if (json_is_string(fmt) && strcmp(json_string_value(fmt), "base64") == 0) {
            eo->b64 = true;
        } else if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "float") != 0) {
            invalid_request(resp,
                            "Invalid value for 'encoding_format': expected 'float' or "
                            "'base64'.",
                            "encoding_format", "invalid_value");
            return false;
        }
    }
    return true;
}

static void bad_input(flavor_t f, mock_resp_t *resp)
{
    if (f != FLAVOR_OPENAI) {
        detail_reply(resp, 400, "Value error, input must be a string or a list of inputs.");
        return;
    }
    invalid_request(resp,
                    "'$.input' is invalid. Please check the API reference: "
                    "https://platform.openai.com/docs/api-reference.",
                    NULL, NULL);
}

void mock__openai_embeddings(mock_req_t *req, mock_resp_t *resp, const mock_openai_opts_t *o)
{
    json_t *root = req->json;
    json_t *input = json_object_get(root, "input");
    const json_t *single = NULL;
    flavor_t f = flavor_of_model(json_object_get(root, "model"));
    embed_opts_t eo;
    mock_str_t model;
    size_t n_inputs, i;

    if (!reply_model(req, resp, o, &model))
        return;
    if (input == NULL) {
        if (f != FLAVOR_OPENAI)
            detail_reply(resp, 400, "Field required: input");
        else
            missing_param(resp, "input");
        return;
    }
    if (!embed_opts(f, root, resp, &eo))
        return;
    /* input: one input, or an array of them. */
    if (input_ok(f, input) && !json_is_object(input)) {
        single = input;
        n_inputs = 1;
    } else if (json_is_array(input) && json_array_size(input) > 0) {
        for (i = 0; i < json_array_size(input); i++) {
            if (!input_ok(f, json_array_get(input, i))) {
                bad_input(f, resp);
                return;
            }
        }
        n_inputs = json_array_size(input);
    } else {
        bad_input(f, resp);
        return;
    }

    uint64_t tokens = 0;
    for (i = 0; i < n_inputs; i++)
        tokens += input_tokens(single ? single : json_array_get(input, i));
    float *vec = malloc(sizeof(float) * eo.dims);
    if (vec == NULL)
        abort();
    mock_buf_t *b = resp->body;
    if (f == FLAVOR_JINA) {
        MOCK_BUF_LIT(b, "{\"model\":");
        mock_buf_append_json_str(b, model.base, model.len);
        MOCK_BUF_LIT(b, ",\"object\":\"list\",\"usage\":{\"total_tokens\":");
        mock_buf_append_u64(b, tokens);
        MOCK_BUF_LIT(b, ",\"prompt_tokens\":");
        mock_buf_append_u64(b, tokens);
        MOCK_BUF_LIT(b, "},\"data\":[");
    } else {
        MOCK_BUF_LIT(b, "{\"object\":\"list\",\"data\":[");
    }
    for (i = 0; i < n_inputs; i++) {
        const json_t *in = single ? single : json_array_get(input, i);
        mock_fake_embedding(input_seed(in), vec, eo.dims);
        if (i)
            MOCK_BUF_LIT(b, ",");
        if (f == FLAVOR_VOYAGE) {
            MOCK_BUF_LIT(b, "{\"object\":\"embedding\",\"embedding\":");
            mock_buf_append_embedding(b, vec, eo.dims, eo.type, eo.b64);
            MOCK_BUF_LIT(b, ",\"index\":");
            mock_buf_append_u64(b, i);
        } else {
            MOCK_BUF_LIT(b, "{\"object\":\"embedding\",\"index\":");
            mock_buf_append_u64(b, i);
            MOCK_BUF_LIT(b, ",\"embedding\":");
            mock_buf_append_embedding(b, vec, eo.dims, eo.type, eo.b64);
        }
        MOCK_BUF_LIT(b, "}");
    }
    free(vec);
    if (f == FLAVOR_JINA) {
        MOCK_BUF_LIT(b, "]}");
        return;
    }
    MOCK_BUF_LIT(b, "],\"model\":");
    mock_buf_append_json_str(b, model.base, model.len);
    if (f == FLAVOR_VOYAGE) {
        MOCK_BUF_LIT(b, ",\"usage\":{\"total_tokens\":");
    } else {
        MOCK_BUF_LIT(b, ",\"usage\":{\"prompt_tokens\":");
        mock_buf_append_u64(b, tokens);
        MOCK_BUF_LIT(b, ",\"total_tokens\":");
    }
    mock_buf_append_u64(b, tokens);
    MOCK_BUF_LIT(b, "}}");
}

/* ---- models ----------------------------------------------------------------------- */

static const struct {
    const char *id;
    int64_t created;
} models[] = {
    {"gpt-4o", 1715367049},
    {"gpt-4o-mini", 1721172741},
    {"gpt-4.1", 1744316542},
    {"gpt-4.1-mini", 1744318173},
    {"o3-mini", 1737146383},
    {"gpt-3.5-turbo-instruct", 1692901427},
    {"text-embedding-3-small", 1705948997},
    {"text-embedding-3-large", 1705953180},
    {"dall-e-3", 1698785189},
    {"tts-1", 1681940951},
    {"whisper-1", 1677532384},
};

static void append_model(mock_buf_t *b, size_t i)
{
    MOCK_BUF_LIT(b, "{\"id\":");
    mock_buf_append_json_cstr(b, models[i].id);
    MOCK_BUF_LIT(b, ",\"object\":\"model\",\"created\":");
    mock_buf_append_i64(b, models[i].created);
    MOCK_BUF_LIT(b, ",\"owned_by\":\"mock\"}");
}

static void list_models(mock_req_t *req, mock_resp_t *resp)
{
    mock_buf_t *b = resp->body;

    MOCK_BUF_LIT(b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        if (i)
            MOCK_BUF_LIT(b, ",");
        append_model(b, i);
    }
    MOCK_BUF_LIT(b, "]}");
}

static void get_model(mock_req_t *req, mock_resp_t *resp)
{
    const char *s = req->path.base + strlen("/v1/models/");
    size_t n = req->path.len - strlen("/v1/models/");
    mock_buf_t id;

    /* Model ids such as "ft:gpt-4o:org::x" may arrive percent-encoded. */
    mock_buf_init(&id);
    mock_buf_append_pct_decoded(&id, s, n);
    for (size_t i = 0; i < sizeof(models) / sizeof(models[0]); i++) {
        if (strlen(models[i].id) == id.len && memcmp(models[i].id, id.base, id.len) == 0) {
            append_model(resp->body, i);
            mock_buf_dispose(&id);
            return;
        }
    }
    mock_buf_t msg;
    mock_buf_init(&msg);
    MOCK_BUF_LIT(&msg, "The model '");
    mock_buf_append(&msg, id.base, id.len);
    MOCK_BUF_LIT(&msg, "' does not exist");
    error_reply(resp, 404, msg.base, msg.len, "invalid_request_error", "model", "model_not_found");
    mock_buf_dispose(&msg);
    mock_buf_dispose(&id);
}

/* ---- images, audio ------------------------------------------------------------ */

static void images_generations(mock_req_t *req, mock_resp_t *resp)
{
    json_t *root = req->json;
    json_t *prompt = json_object_get(root, "prompt");
    json_t *n = json_object_get(root, "n");
    json_t *fmt = json_object_get(root, "response_format");
    json_int_t count = 1;
    bool b64 = false;

    if (!json_is_string(prompt)) {
        missing_param(resp, "prompt");
        return;
    }
    if (n != NULL && !json_is_null(n)) {
        if (!json_is_integer(n) || json_integer_value(n) < 1 || json_integer_value(n) > 10) {
            invalid_request(resp, "Invalid value for 'n': expected an integer between 1 and 10.",
                            "n", "invalid_value");
            return;
        }
        count = json_integer_value(n);
    }
    if (json_is_string(fmt) && strcmp(json_string_value(fmt), "b64_json") == 0)
        b64 = true;

    mock_buf_t *b = resp->body;
    MOCK_BUF_LIT(b, "{\"created\":");
    mock_buf_append_i64(b, mock_now_unix());
    MOCK_BUF_LIT(b, ",\"data\":[");
    for (json_int_t i = 0; i < count; i++) {
        if (i)
            MOCK_BUF_LIT(b, ",");
        if (b64) {
            MOCK_BUF_LIT(b, "{\"b64_json\":\"" PNG_1X1_B64 "\"");
        } else {
            MOCK_BUF_LIT(b, "{\"url\":\"https://mock.invalid/img/");
            mock_buf_append_u64(b, req->id);
            if (i > 0) {
                MOCK_BUF_LIT(b, "-");
                mock_buf_append_i64(b, i);
            }
            MOCK_BUF_LIT(b, ".png\"");
        }
        MOCK_BUF_LIT(b, ",\"revised_prompt\":");
        append_json_string_value(b, prompt);
        MOCK_BUF_LIT(b, "}");
    }
    MOCK_BUF_LIT(b, "]}");
}

/* Speech output is capped so a huge input cannot make a huge reply. */
#define SPEECH_BYTES_PER_CHAR 32
#define SPEECH_MAX_BYTES ((size_t)16 << 20)

static void audio_speech(mock_req_t *req, mock_resp_t *resp)
{
    static const struct {
        const char *format, *content_type;
    } types[] = {
        {"mp3", "audio/mpeg"},  {"opus", "audio/opus"}, {"aac", "audio/aac"},
        {"flac", "audio/flac"}, {"wav", "audio/wav"},   {"pcm", "audio/pcm"},
    };
    json_t *root = req->json;
    json_t *model = json_object_get(root, "model");
    json_t *input = json_object_get(root, "input");
    json_t *fmt = json_object_get(root, "response_format");

    if (!json_is_string(model)) {
        invalid_request(resp, "you must provide a model parameter", NULL, NULL);
        return;
    }
    if (!json_is_string(input)) {
        missing_param(resp, "input");
        return;
    }
    resp->content_type = "audio/mpeg";
    for (size_t i = 0; json_is_string(fmt) && i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(json_string_value(fmt), types[i].format) == 0)
            resp->content_type = types[i].content_type;
    }

    const char *s = json_string_value(input);
    size_t n = json_string_length(input);
    size_t len = n * SPEECH_BYTES_PER_CHAR;
    if (len > SPEECH_MAX_BYTES)
        len = SPEECH_MAX_BYTES;
    uint64_t state = mock_hash(s, n, 0);
    mock_buf_t *b = resp->body;
    /* An ID3v2.4 tag header with an empty tag, then bytes derived from input. */
    mock_buf_append(b, "ID3\x04\x00\x00\x00\x00\x00\x00", 10);
    mock_buf_reserve(b, len);
    for (size_t i = 0; i < len; i += 8) {
        uint64_t x = mock_splitmix64(&state);
        size_t k = len - i < 8 ? len - i : 8;
        memcpy(b->base + b->len, &x, k);
        b->len += k;
    }
}

static void audio_transcriptions(mock_req_t *req, mock_resp_t *resp)
{
    mock_buf_t *b = resp->body;

    MOCK_BUF_LIT(b, "{\"text\":\"mock transcription of ");
    mock_buf_append_u64(b, req->body.len);
    MOCK_BUF_LIT(b, " bytes\"}");
}

static const mock_openai_opts_t plain_opts = {{NULL, 0}, false};

static void chat_completions(mock_req_t *req, mock_resp_t *resp)
{
    mock__openai_chat(req, resp, &plain_opts);
}

static void completions(mock_req_t *req, mock_resp_t *resp)
{
    mock__openai_completions(req, resp, &plain_opts);
}

static void embeddings(mock_req_t *req, mock_resp_t *resp)
{
    mock__openai_embeddings(req, resp, &plain_opts);
}

static const mock_route_t openai_routes[] = {
    {HTTP_POST, "/v1/chat/completions", MOCK_ROUTE_JSON, chat_completions},
    {HTTP_POST, "/v1/completions", MOCK_ROUTE_JSON, completions},
    {HTTP_POST, "/v1/embeddings", MOCK_ROUTE_JSON, embeddings},
    {HTTP_GET, "/v1/models", 0, list_models},
    {HTTP_GET, "/v1/models/", MOCK_ROUTE_PREFIX, get_model},
    {HTTP_POST, "/v1/images/generations", MOCK_ROUTE_JSON, images_generations},
    {HTTP_POST, "/v1/audio/speech", MOCK_ROUTE_JSON, audio_speech},
    {HTTP_POST, "/v1/audio/transcriptions", 0, audio_transcriptions},
    {0, NULL, 0, NULL},
};

const mock_format_t mock_openai_format = {
    .name = "openai",
    .routes = openai_routes,
    .authorized = openai_authorized,
    .error = openai_error,
    .headers = openai_headers,
};
