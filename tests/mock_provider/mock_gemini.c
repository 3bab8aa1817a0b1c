/*
 * The Google Gemini API (generativelanguage.googleapis.com, /v1beta and /v1)
 * and Vertex AI's generateContent for Google models
 * (/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:...).
 *
 * Both speak the same bodies; they differ in authentication: the Gemini API
 * takes an API key (x-goog-api-key, or ?key=), Vertex AI an OAuth bearer
 * token. Errors are google.rpc.Status objects: {"error":{"code","message","status"}}.
 *
 * streamGenerateContent with ?alt=sse sends "data: <GenerateContentResponse>"
 * events terminated by "\r\n\r\n", as Google's servers do, with no [DONE];
 * the last event carries finishReason. Without alt=sse the responses are
 * streamed as the elements of one JSON array.
 *
 * Request field names are accepted in both of proto3 JSON's spellings
 * ("systemInstruction" and "system_instruction").
 */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/mock_provider/mock.h"

#define SAFETY_OK                                                                                  \
    "[{\"category\":\"HARM_CATEGORY_HATE_SPEECH\",\"probability\":\"NEGLIGIBLE\"},"                \
    "{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":\"NEGLIGIBLE\"},"           \
    "{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"probability\":\"NEGLIGIBLE\"},"                  \
    "{\"category\":\"HARM_CATEGORY_SEXUALLY_EXPLICIT\",\"probability\":\"NEGLIGIBLE\"}]"
#define SAFETY_BLOCKED                                                                             \
    "[{\"category\":\"HARM_CATEGORY_HATE_SPEECH\",\"probability\":\"NEGLIGIBLE\"},"                \
    "{\"category\":\"HARM_CATEGORY_DANGEROUS_CONTENT\",\"probability\":\"HIGH\","                  \
    "\"blocked\":true},"                                                                           \
    "{\"category\":\"HARM_CATEGORY_HARASSMENT\",\"probability\":\"NEGLIGIBLE\"},"                  \
    "{\"category\":\"HARM_CATEGORY_SEXUALLY_EXPLICIT\",\"probability\":\"NEGLIGIBLE\"}]"

/* ---- errors -------------------------------------------------------------------------- */

static const struct {
    int code;
    const char *status, *message;
} error_table[] = {
    {400, "INVALID_ARGUMENT", "Request contains an invalid argument."},
    {401, "UNAUTHENTICATED", "Request had invalid authentication credentials."},
    {403, "PERMISSION_DENIED", "The caller does not have permission"},
    {404, "NOT_FOUND", "Requested entity was not found."},
    {409, "ABORTED", "The operation was aborted."},
    {429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."},
    {499, "CANCELLED", "The operation was cancelled."},
    {500, "INTERNAL",
     "An internal error has occurred. Please retry or report in "
     "https://developers.generativeai.google/guide/troubleshooting"},
    {501, "NOT_IMPLEMENTED", "Operation is not implemented, or supported, or enabled."},
    {503, "UNAVAILABLE", "The model is overloaded. Please try again later."},
    {504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."},
};

static void append_status(mock_buf_t *b, int code, const char *status, const char *message)
{
    MOCK_BUF_LIT(b, "{\"error\":{\"code\":");
    mock_buf_append_u64(b, (uint64_t)code);
    MOCK_BUF_LIT(b, ",\"message\":");
    mock_buf_append_json_cstr(b, message);
    MOCK_BUF_LIT(b, ",\"status\":");
    mock_buf_append_json_cstr(b, status);
    MOCK_BUF_LIT(b, "}}");
}

static void error_reply(mock_resp_t *resp, int code, const char *status, const char *message)
{
    resp->status = code;
    resp->content_type = "application/json; charset=UTF-8";
    resp->stream = NULL;
    resp->body->len = 0;
    append_status(resp->body, code, status, message);
}

static void invalid_argument(mock_resp_t *resp, const char *message)
{
    error_reply(resp, 400, "INVALID_ARGUMENT", message);
}

static bool is_vertex(const mock_req_t *req)
{
    return memmem(req->path.base, req->path.len, "/projects/", 10) != NULL;
}

static void gemini_error(mock_req_t *req, mock_resp_t *resp, mock_err_kind_t kind, int status)
{
    switch (kind) {
    case MOCK_ERR_AUTH:
        if (is_vertex(req))
            error_reply(resp, 401, "UNAUTHENTICATED",
                        "Request is missing required authentication credential. Expected OAuth 2 "
                        "access token, login cookie or other valid authentication credential. See "
                        "https://developers.google.com/identity/sign-in/web/devconsole-project.");
        else
            error_reply(resp, 403, "PERMISSION_DENIED",
                        "Method doesn't allow unregistered callers (callers without established "
                        "identity). Please use API Key or other form of API consumer identity to "
                        "call this API.");
        return;
    case MOCK_ERR_BAD_JSON:
        invalid_argument(resp, "Invalid JSON payload received. Unexpected token.");
        return;
    case MOCK_ERR_NOT_FOUND:
        error_reply(resp, 404, "NOT_FOUND", "Requested entity was not found.");
        return;
    case MOCK_ERR_INJECTED:
        break;
    }
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++) {
        if (error_table[i].code == status) {
            error_reply(resp, status, error_table[i].status, error_table[i].message);
            return;
        }
    }
    error_reply(resp, status, status >= 500 ? "INTERNAL" : "FAILED_PRECONDITION",
                status >= 500 ? "Internal error (mock)." : "Precondition failed (mock).");
}

static bool gemini_authorized(const mock_req_t *req)
{
    if (is_vertex(req)) {
        mock_str_t v = mock_req_header(req, "authorization");
        return v.len > 7 && strncasecmp(v.base, "Bearer ", 7) == 0;
    }
    if (mock_req_header(req, "x-goog-api-key").len > 0)
        return true;
    return mock_query_param(req, "key").len > 0;
}

static void gemini_headers(const mock_req_t *req, mock_buf_t *out)
{
    MOCK_BUF_LIT(out, "server: scaffolding on HTTPServer2\r\nserver-timing: gfet4t7; dur=");
    mock_buf_append_u64(out, req->processing_ms);
    MOCK_BUF_LIT(out, "\r\nvary: Origin, X-Origin, Referer\r\n");
}

/* ---- reading the request -------------------------------------------------------------- */

/* A field in either of proto3 JSON's spellings. */
static const json_t *get2(const json_t *obj, const char *camel, const char *snake)
{
    const json_t *v = json_object_get(obj, camel);

    return v != NULL ? v : json_object_get(obj, snake);
}

/* The model of a path ".../models/{model}:{method}", decoded, as a JSON string. */
static void path_model(const mock_req_t *req, mock_buf_t *out)
{
    const char *p = req->path.base, *end = p + req->path.len;
    const char *m = NULL, *colon = NULL;
    mock_buf_t raw;

    for (const char *s = p; s + 8 <= end; s++) {
        if (memcmp(s, "/models/", 8) == 0)
            m = s + 8;
    }
    for (const char *s = m; s != NULL && s < end; s++) {
        if (*s == ':')
            colon = s;
    }
    mock_buf_init(&raw);
    if (m != NULL && colon != NULL)
        mock_buf_append_pct_decoded(&raw, m, (size_t)(colon - m));
    mock_buf_append_json_str(out, raw.base ? raw.base : "", raw.len);
    mock_buf_dispose(&raw);
}

static uint64_t parts_chars(const json_t *content)
{
    const json_t *parts = json_object_get(content, "parts");
    uint64_t chars = 0;

    for (size_t i = 0; json_is_array(parts) && i < json_array_size(parts); i++)
        chars += mock_json_chars(json_object_get(json_array_get(parts, i), "text"));
    return chars;
}

static uint64_t request_chars(const json_t *root)
{
    const json_t *contents = json_object_get(root, "contents");
    uint64_t chars = parts_chars(get2(root, "systemInstruction", "system_instruction"));

    for (size_t i = 0; json_is_array(contents) && i < json_array_size(contents); i++)
        chars += parts_chars(json_array_get(contents, i));
    return chars;
}

/* True if the last content answers a function call. */
static bool last_is_function_response(const json_t *contents)
{
    size_t n = json_array_size(contents);
    const json_t *parts = n ? json_object_get(json_array_get(contents, n - 1), "parts") : NULL;

    for (size_t i = 0; json_is_array(parts) && i < json_array_size(parts); i++) {
        if (get2(json_array_get(parts, i), "functionResponse", "function_response") != NULL)
            return true;
    }
    return false;
}

/* The function declaration to call, or NULL to answer with text; *name is
 * the name to use (x-mock-tool-call may name an undeclared one). */
static const json_t *pick_function(const mock_req_t *req, const json_t *root, mock_str_t *name)
{
    const json_t *tools = json_object_get(root, "tools");
    const json_t *cfg = get2(get2(root, "toolConfig", "tool_config"), "functionCallingConfig",
                             "function_calling_config");
    const char *mode = json_string_value(json_object_get(cfg, "mode"));
    const json_t *allowed = get2(cfg, "allowedFunctionNames", "allowed_function_names");
    const json_t *first = NULL, *found = NULL;

    if (mode != NULL && strcasecmp(mode, "NONE") == 0)
        return NULL;
    if (last_is_function_response(json_object_get(root, "contents")))
        return NULL;
    for (size_t i = 0; json_is_array(tools) && i < json_array_size(tools); i++) {
        const json_t *decls =
            get2(json_array_get(tools, i), "functionDeclarations", "function_declarations");
        if (json_is_array(decls) && json_array_size(decls) > 0 && first == NULL)
            first = json_array_get(decls, 0);
    }
    if (first == NULL)
        return NULL;
    if (req->faults.tool_call.len > 0) {
        *name = req->faults.tool_call;
    } else {
        const json_t *n = json_is_array(allowed) && json_array_size(allowed) > 0
                              ? json_array_get(allowed, 0)
                              : json_object_get(first, "name");
        *name = json_is_string(n) ? (mock_str_t){json_string_value(n), json_string_length(n)}
                                  : (mock_str_t){"function", 8};
    }
    for (size_t i = 0; json_is_array(tools) && i < json_array_size(tools) && !found; i++) {
        const json_t *decls =
            get2(json_array_get(tools, i), "functionDeclarations", "function_declarations");
        for (size_t k = 0; json_is_array(decls) && k < json_array_size(decls); k++) {
            const json_t *d = json_array_get(decls, k);
            const json_t *n = json_object_get(d, "name");
            if (json_is_string(n) && json_string_length(n) == name->len &&
                memcmp(json_string_value(n), name->base, name->len) == 0) {
                found = d;
                break;
            }
        }
    }
    return found != NULL ? found : tools;
}

/* ---- the reply ------------------------------------------------------------------------ */

typedef enum safety_e { SAFETY_NONE, SAFETY_PROMPT, SAFETY_CANDIDATE } safety_t;

typedef struct gm_reply_s {
    bool sse;       /* alt=sse; else one streamed JSON array */
    bool has_text;  /* a text part (always, except a call without x-mock-content) */
    bool tool;      /* a functionCall part */
    bool truncated; /* maxOutputTokens cut the text */
    bool stream_error;
    bool done;
    safety_t safety;
    uint64_t next;    /* next text piece */
    uint64_t emitted; /* events written */
    mock_pieces_t text;
    mock_buf_t model;     /* JSON string */
    mock_buf_t tool_name; /* JSON string */
    mock_buf_t args;      /* compact JSON */
    mock_buf_t parts;     /* scratch: the parts of one response */
    mock_buf_t json;      /* scratch: one response */
    uint64_t id, input_tokens, output_tokens;
} gm_reply_t;

static void reply_free(void *state)
{
    gm_reply_t *r = state;

    mock_pieces_dispose(&r->text);
    mock_buf_dispose(&r->model);
    mock_buf_dispose(&r->tool_name);
    mock_buf_dispose(&r->args);
    mock_buf_dispose(&r->parts);
    mock_buf_dispose(&r->json);
    free(r);
}

static void append_usage(const gm_reply_t *r, mock_buf_t *b, uint64_t candidates, bool with_cand)
{
    MOCK_BUF_LIT(b, "\"usageMetadata\":{\"promptTokenCount\":");
    mock_buf_append_u64(b, r->input_tokens);
    if (with_cand) {
        MOCK_BUF_LIT(b, ",\"candidatesTokenCount\":");
        mock_buf_append_u64(b, candidates);
    }
    MOCK_BUF_LIT(b, ",\"totalTokenCount\":");
    mock_buf_append_u64(b, r->input_tokens + candidates);
    MOCK_BUF_LIT(b, ",\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":");
    mock_buf_append_u64(b, r->input_tokens);
    MOCK_BUF_LIT(b, "}]}");
}

static void append_tail(const gm_reply_t *r, mock_buf_t *b)
{
    MOCK_BUF_LIT(b, ",\"modelVersion\":");
    mock_buf_append(b, r->model.base, r->model.len);
    MOCK_BUF_LIT(b, ",\"responseId\":\"mock-");
    mock_buf_append_u64(b, r->id);
    MOCK_BUF_LIT(b, "\"}");
}

/* One GenerateContentResponse with r->parts as the candidate's parts. */
static void append_response(const gm_reply_t *r, mock_buf_t *b, bool last, uint64_t candidates)
{
    MOCK_BUF_LIT(b, "{\"candidates\":[{\"content\":{\"parts\":[");
    mock_buf_append(b, r->parts.base, r->parts.len);
    MOCK_BUF_LIT(b, "],\"role\":\"model\"},");
    if (last) {
        if (r->truncated)
            MOCK_BUF_LIT(b, "\"finishReason\":\"MAX_TOKENS\",");
        else
            MOCK_BUF_LIT(b, "\"finishReason\":\"STOP\",");
    }
    MOCK_BUF_LIT(b, "\"index\":0");
    if (last)
        MOCK_BUF_LIT(b, ",\"safetyRatings\":" SAFETY_OK);
    MOCK_BUF_LIT(b, "}],");
    append_usage(r, b, candidates, true);
    append_tail(r, b);
}

static void append_safety_block(const gm_reply_t *r, mock_buf_t *b)
{
    if (r->safety == SAFETY_PROMPT)
        MOCK_BUF_LIT(
            b, "{\"promptFeedback\":{\"blockReason\":\"SAFETY\",\"safetyRatings\":" SAFETY_BLOCKED
               "},");
    else
        MOCK_BUF_LIT(b, "{\"candidates\":[{\"finishReason\":\"SAFETY\",\"index\":0,"
                        "\"safetyRatings\":" SAFETY_BLOCKED "}],");
    append_usage(r, b, 0, false);
    append_tail(r, b);
}

static void append_call_part(const gm_reply_t *r, mock_buf_t *b)
{
    MOCK_BUF_LIT(b, "{\"functionCall\":{\"name\":");
    mock_buf_append(b, r->tool_name.base, r->tool_name.len);
    MOCK_BUF_LIT(b, ",\"args\":");
    mock_buf_append(b, r->args.base, r->args.len);
    MOCK_BUF_LIT(b, "}}");
}

static void emit(mock_req_t *req, gm_reply_t *r, mock_buf_t *out, bool last)
{
    if (r->sse) {
        mock_sse_emit_eol(req, out, NULL, r->json.base, r->json.len, "\r\n");
    } else {
        if (r->emitted == 0)
            MOCK_BUF_LIT(out, "[");
        else
            MOCK_BUF_LIT(out, ",\r\n");
        mock_emit_payload(req, out, r->json.base, r->json.len);
        if (last)
            MOCK_BUF_LIT(out, "]");
    }
    r->emitted++;
    r->done = last;
}

static bool stream_next(mock_req_t *req, void *state, mock_buf_t *out)
{
    gm_reply_t *r = state;
    uint64_t n_text = r->has_text ? r->text.n_pieces : 0;
    mock_buf_t *j = &r->json;
    bool last;

    if (r->done)
        return false;
    j->len = 0;
    r->parts.len = 0;
    if (r->safety != SAFETY_NONE) {
        append_safety_block(r, j);
        emit(req, r, out, true);
        return true;
    }
    if (r->stream_error && r->next >= (n_text < 2 ? n_text : 2)) {
        append_status(j, 503, "UNAVAILABLE", "The model is overloaded. Please try again later.");
        emit(req, r, out, true);
        return true;
    }
    if (r->next < n_text) {
        last = r->next + 1 == n_text && !r->tool;
        MOCK_BUF_LIT(&r->parts, "{\"text\":");
        mock_pieces_append(&r->text, r->next, &r->parts);
        MOCK_BUF_LIT(&r->parts, "}");
        append_response(r, j, last,
                        last ? r->output_tokens : mock_pieces_tokens_upto(&r->text, r->next));
        r->next++;
    } else if (r->tool) {
        last = true;
        append_call_part(r, &r->parts);
        append_response(r, j, true, r->output_tokens);
    } else {
        /* An empty text: one response with an empty part. */
        last = true;
        MOCK_BUF_LIT(&r->parts, "{\"text\":\"\"}");
        append_response(r, j, true, r->output_tokens);
    }
    emit(req, r, out, last);
    return true;
}

static const mock_stream_ops_t stream_ops = {
    .next = stream_next,
    .free = reply_free,
};

static void generate(mock_req_t *req, mock_resp_t *resp, bool stream)
{
    const json_t *root = req->json;
    const json_t *contents = json_object_get(root, "contents");
    const json_t *gen = get2(root, "generationConfig", "generation_config");
    const json_t *max = get2(gen, "maxOutputTokens", "max_output_tokens");
    mock_str_t name = {NULL, 0};
    mock_str_t safety = mock_req_header(req, "x-mock-safety-block");

    if (!json_is_array(contents) || json_array_size(contents) == 0) {
        invalid_argument(resp, "* GenerateContentRequest.contents: contents is not specified\n");
        return;
    }
    gm_reply_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    const json_t *fn = pick_function(req, root, &name);
    mock_str_t text = mock_reply_text(req);

    r->id = req->id;
    r->sse = mock_str_eq_nocase(mock_query_param(req, "alt"), "sse");
    r->input_tokens = mock_tokens_from_chars(request_chars(root));
    r->tool = fn != NULL;
    r->has_text = !r->tool || req->faults.content.base != NULL;
    if (!r->tool && json_is_integer(max) && json_integer_value(max) >= 0)
        text = mock_truncate_words(text, (uint64_t)json_integer_value(max), &r->truncated);
    if (!r->has_text)
        text = (mock_str_t){"", 0};
    mock_pieces_init(&r->text, text, stream ? req->faults.chunks : -1);
    path_model(req, &r->model);
    if (r->tool) {
        const json_t *schema = json_object_get(fn, "parameters");
        if (schema == NULL)
            schema = get2(fn, "parametersJsonSchema", "parameters_json_schema");
        mock_buf_append_json_str(&r->tool_name, name.base, name.len);
        mock_tool_args(schema, &r->args);
    }
    r->output_tokens = r->has_text ? mock_pieces_output_tokens(&r->text) : 0;
    if (r->tool)
        r->output_tokens += mock_tokens_from_chars(mock_count_chars(r->args.base, r->args.len));
    if (mock_str_eq_nocase(safety, "candidate"))
        r->safety = SAFETY_CANDIDATE;
    else if (mock_str_eq_nocase(safety, "1") || mock_str_eq_nocase(safety, "true") ||
             mock_str_eq_nocase(safety, "prompt"))
        r->safety = SAFETY_PROMPT;

    if (!stream) {
        if (r->safety != SAFETY_NONE) {
            append_safety_block(r, resp->body);
        } else {
            if (r->has_text) {
                MOCK_BUF_LIT(&r->parts, "{\"text\":");
                mock_buf_append_json_str(&r->parts, r->text.text.base, r->text.text.len);
                MOCK_BUF_LIT(&r->parts, "}");
            }
            if (r->tool) {
                if (r->has_text)
                    MOCK_BUF_LIT(&r->parts, ",");
                append_call_part(r, &r->parts);
            }
            append_response(r, resp->body, true, r->output_tokens);
        }
        reply_free(r);
        return;
    }
    r->stream_error = req->faults.stream_error.base != NULL;
    resp->content_type = r->sse ? "text/event-stream" : "application/json; charset=UTF-8";
    resp->stream = &stream_ops;
    resp->stream_state = r;
}

static void generate_content(mock_req_t *req, mock_resp_t *resp)
{
    generate(req, resp, false);
}

static void stream_generate_content(mock_req_t *req, mock_resp_t *resp)
{
    generate(req, resp, true);
}

static void count_tokens(mock_req_t *req, mock_resp_t *resp)
{
    const json_t *root = req->json;
    const json_t *inner = get2(root, "generateContentRequest", "generate_content_request");
    uint64_t n = mock_tokens_from_chars(request_chars(inner != NULL ? inner : root));

    MOCK_BUF_LIT(resp->body, "{\"totalTokens\":");
    mock_buf_append_u64(resp->body, n);
    MOCK_BUF_LIT(resp->body, ",\"promptTokensDetails\":[{\"modality\":\"TEXT\",\"tokenCount\":");
    mock_buf_append_u64(resp->body, n);
    MOCK_BUF_LIT(resp->body, "}]}");
}

/* ---- embeddings ---------------------------------------------------------------------- */

/* Appends {"values":[...]} for one EmbedContentRequest; false (after
 * answering 400) if it is not one. */
static bool embed_one(const json_t *request, mock_resp_t *resp, mock_buf_t *out)
{
    const json_t *content = json_object_get(request, "content");
    const json_t *parts = json_object_get(content, "parts");
    const json_t *dim = get2(request, "outputDimensionality", "output_dimensionality");
    size_t dims = MOCK_EMBED_DIMS;
    uint64_t seed = mock_hash("", 0, 0);

    if (!json_is_array(parts)) {
        invalid_argument(resp, "* EmbedContentRequest.content: content is not specified\n");
        return false;
    }
    if (dim != NULL) {
        if (!json_is_integer(dim) || json_integer_value(dim) < 1 ||
            json_integer_value(dim) > MOCK_EMBED_MAX_DIMS) {
            invalid_argument(resp, "* EmbedContentRequest.output_dimensionality: must be a "
                                   "positive integer\n");
            return false;
        }
        dims = (size_t)json_integer_value(dim);
    }
    for (size_t i = 0; i < json_array_size(parts); i++) {
        const json_t *t = json_object_get(json_array_get(parts, i), "text");
        if (json_is_string(t))
            seed = mock_hash(json_string_value(t), json_string_length(t), seed);
    }
    float *v = malloc(sizeof(float) * dims);
    if (v == NULL)
        abort();
    mock_fake_embedding(seed, v, dims);
    MOCK_BUF_LIT(out, "{\"values\":");
    mock_buf_append_floats(out, v, dims);
    MOCK_BUF_LIT(out, "}");
    free(v);
    return true;
}

static void embed_content(mock_req_t *req, mock_resp_t *resp)
{
    MOCK_BUF_LIT(resp->body, "{\"embedding\":");
    if (!embed_one(req->json, resp, resp->body))
        return;
    MOCK_BUF_LIT(resp->body, "}");
}

static void batch_embed_contents(mock_req_t *req, mock_resp_t *resp)
{
    const json_t *requests = json_object_get(req->json, "requests");

    if (!json_is_array(requests) || json_array_size(requests) == 0) {
        invalid_argument(resp, "* BatchEmbedContentsRequest.requests: requests is not "
                               "specified\n");
        return;
    }
    MOCK_BUF_LIT(resp->body, "{\"embeddings\":[");
    for (size_t i = 0; i < json_array_size(requests); i++) {
        if (i)
            MOCK_BUF_LIT(resp->body, ",");
        if (!embed_one(json_array_get(requests, i), resp, resp->body))
            return;
    }
    MOCK_BUF_LIT(resp->body, "]}");
}

#define VERTEX_MODELS(v) "/" v "/projects/*/locations/*/publishers/google/models/*"

static const mock_route_t gemini_routes[] = {
    {HTTP_POST, "/v1beta/models/*:generateContent", MOCK_ROUTE_JSON, generate_content},
    {HTTP_POST, "/v1beta/models/*:streamGenerateContent", MOCK_ROUTE_JSON, stream_generate_content},
    {HTTP_POST, "/v1beta/models/*:countTokens", MOCK_ROUTE_JSON, count_tokens},
    {HTTP_POST, "/v1beta/models/*:embedContent", MOCK_ROUTE_JSON, embed_content},
    {HTTP_POST, "/v1beta/models/*:batchEmbedContents", MOCK_ROUTE_JSON, batch_embed_contents},
    {HTTP_POST, "/v1/models/*:generateContent", MOCK_ROUTE_JSON, generate_content},
    {HTTP_POST, "/v1/models/*:streamGenerateContent", MOCK_ROUTE_JSON, stream_generate_content},
    {HTTP_POST, "/v1/models/*:countTokens", MOCK_ROUTE_JSON, count_tokens},
    {HTTP_POST, "/v1/models/*:embedContent", MOCK_ROUTE_JSON, embed_content},
    {HTTP_POST, "/v1/models/*:batchEmbedContents", MOCK_ROUTE_JSON, batch_embed_contents},
    {HTTP_POST, VERTEX_MODELS("v1") ":generateContent", MOCK_ROUTE_JSON, generate_content},
    {HTTP_POST, VERTEX_MODELS("v1") ":streamGenerateContent", MOCK_ROUTE_JSON,
     stream_generate_content},
    {HTTP_POST, VERTEX_MODELS("v1") ":countTokens", MOCK_ROUTE_JSON, count_tokens},
    {HTTP_POST, VERTEX_MODELS("v1beta1") ":generateContent", MOCK_ROUTE_JSON, generate_content},
    {HTTP_POST, VERTEX_MODELS("v1beta1") ":streamGenerateContent", MOCK_ROUTE_JSON,
     stream_generate_content},
    {HTTP_POST, VERTEX_MODELS("v1beta1") ":countTokens", MOCK_ROUTE_JSON, count_tokens},
    {0, NULL, 0, NULL},
};

const mock_format_t mock_gemini_format = {
    .name = "gemini",
    .routes = gemini_routes,
    .authorized = gemini_authorized,
    .error = gemini_error,
    .headers = gemini_headers,
};
