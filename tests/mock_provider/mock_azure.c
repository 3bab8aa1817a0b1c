/*
 * Azure OpenAI: the OpenAI handlers behind Azure's paths and keys.
 *
 *   /openai/deployments/{deployment}/chat/completions?api-version=...
 *   /openai/deployments/{deployment}/completions?api-version=...
 *   /openai/deployments/{deployment}/embeddings?api-version=...
 *   /openai/v1/chat/completions, /openai/v1/completions, /openai/v1/embeddings
 *     (the "v1" API: no api-version, the model in the body)
 *
 * The bodies are OpenAI's, with the differences Azure makes: the model
 * defaults to the deployment, and chat replies carry content filter results
 * ("prompt_filter_results", per choice "content_filter_results"; a stream
 * starts with a chunk that has only prompt_filter_results and no choices).
 * Errors of Azure's own front end (auth, missing api-version, unknown
 * deployment, throttling, 5xx) are {"error":{"code","message"}}; the other
 * 4xx are OpenAI's error objects, as Azure passes them through.
 */
#include <http_parser.h>
#include <string.h>
#include <strings.h>

#include "tests/mock_provider/mock.h"

#define DEPLOYMENTS "/openai/deployments/"

/* Azure's own {"error":{"code","message"}}. */
static void azure_reply(mock_resp_t *resp, int status, const char *code, const char *message)
{
    resp->status = status;
    resp->content_type = "application/json";
    resp->stream = NULL;
    resp->body->len = 0;
    MOCK_BUF_LIT(resp->body, "{\"error\":{\"code\":");
    mock_buf_append_json_cstr(resp->body, code);
    MOCK_BUF_LIT(resp->body, ",\"message\":");
    mock_buf_append_json_cstr(resp->body, message);
    MOCK_BUF_LIT(resp->body, "}}");
}

static void azure_error(mock_req_t *req, mock_resp_t *resp, mock_err_kind_t kind, int status)
{
    char msg[320];

    switch (kind) {
    case MOCK_ERR_AUTH:
        status = 401;
        break;
    case MOCK_ERR_BAD_JSON:
        mock__openai_error_reply(resp, 400,
                                 "We could not parse the JSON body of your request. (HINT: This "
                                 "likely means you aren't using your HTTP library correctly. The "
                                 "OpenAI API expects a JSON payload, but what was sent was not "
                                 "valid JSON.",
                                 "invalid_request_error", NULL, NULL);
        return;
    case MOCK_ERR_NOT_FOUND:
        azure_reply(resp, 404, "404", "Resource not found");
        return;
    case MOCK_ERR_INJECTED:
        break;
    }
    switch (status) {
    case 401:
        azure_reply(resp, 401, "401",
                    "Access denied due to invalid subscription key or wrong API endpoint. Make "
                    "sure to provide a valid key for an active subscription and use a correct "
                    "regional API endpoint for your resource.");
        return;
    case 403:
        azure_reply(resp, 403, "403",
                    "Public access is disabled. Please configure private "
                    "endpoint.");
        return;
    case 404:
        azure_reply(resp, 404, "DeploymentNotFound",
                    "The API deployment for this resource does not exist. If you created the "
                    "deployment within the last 5 minutes, please wait a moment and try again.");
        return;
    case 408:
        azure_reply(resp, 408, "Timeout", "The operation was timeout.");
        return;
    case 429: {
        mock_str_t v = mock_query_param(req, "api-version");
        snprintf(msg, sizeof(msg),
                 "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                 "version %.*s have exceeded call rate limit of your current OpenAI S0 pricing "
                 "tier. Please retry after 1 second.",
                 (int)(v.len > 40 ? 40 : v.len), v.base ? v.base : "");
        azure_reply(resp, 429, "429", msg);
        return;
    }
    default:
        break;
    }
    if (status >= 500) {
        snprintf(msg, sizeof(msg),
                 "Backend returned unexpected response (mock %d). Please "
                 "contact Microsoft for help.",
                 status);
        azure_reply(resp, status, "InternalServerError", msg);
        return;
    }
    snprintf(msg, sizeof(msg), "Mock error %d (x-mock-status).", status);
    mock__openai_error_reply(resp, status, msg, "invalid_request_error", NULL, NULL);
}

static bool azure_authorized(const mock_req_t *req)
{
    mock_str_t key = mock_req_header(req, "api-key");
    mock_str_t bearer = mock_req_header(req, "authorization");

    if (key.len > 0)
        return true;
    return bearer.len > 7 && strncasecmp(bearer.base, "Bearer ", 7) == 0;
}

static void azure_headers(const mock_req_t *req, mock_buf_t *out)
{
    MOCK_BUF_LIT(out, "apim-request-id: ");
    mock_buf_append_uuid(out, req->id);
    MOCK_BUF_LIT(out, "\r\nx-request-id: ");
    mock_buf_append_uuid(out, req->id);
    MOCK_BUF_LIT(out, "\r\nx-ms-region: East US\r\n"
                      "x-ms-rai-invoked: true\r\n"
                      "x-ratelimit-remaining-requests: 99\r\n"
                      "x-ratelimit-remaining-tokens: 99000\r\n");
}

/* Options for a request: the deployment as default model. Returns false
 * (after answering 404, as Azure does) when api-version is missing. */
static bool azure_opts(mock_req_t *req, mock_resp_t *resp, mock_openai_opts_t *o)
{
    const char *p = req->path.base;
    size_t n = req->path.len;

    o->azure = true;
    o->model = (mock_str_t){NULL, 0};
    if (n > sizeof(DEPLOYMENTS) - 1 && memcmp(p, DEPLOYMENTS, sizeof(DEPLOYMENTS) - 1) == 0) {
        const char *d = p + sizeof(DEPLOYMENTS) - 1;
        const char *slash = memchr(d, '/', n - (sizeof(DEPLOYMENTS) - 1));
        o->model = (mock_str_t){d, slash ? (size_t)(slash - d) : 0};
        if (mock_query_param(req, "api-version").len == 0) {
            azure_reply(resp, 404, "404", "Resource not found");
            return false;
        }
    }
    return true;
}

static void chat(mock_req_t *req, mock_resp_t *resp)
{
    mock_openai_opts_t o;

    if (azure_opts(req, resp, &o))
        mock__openai_chat(req, resp, &o);
}

static void completions(mock_req_t *req, mock_resp_t *resp)
{
    mock_openai_opts_t o;

    if (azure_opts(req, resp, &o))
        mock__openai_completions(req, resp, &o);
}

static void embeddings(mock_req_t *req, mock_resp_t *resp)
{
    mock_openai_opts_t o;

    if (azure_opts(req, resp, &o))
        mock__openai_embeddings(req, resp, &o);
}

static const mock_route_t azure_routes[] = {
    {HTTP_POST, DEPLOYMENTS "*/chat/completions", MOCK_ROUTE_JSON, chat},
    {HTTP_POST, DEPLOYMENTS "*/completions", MOCK_ROUTE_JSON, completions},
    {HTTP_POST, DEPLOYMENTS "*/embeddings", MOCK_ROUTE_JSON, embeddings},
    {HTTP_POST, "/openai/v1/chat/completions", MOCK_ROUTE_JSON, chat},
    {HTTP_POST, "/openai/v1/completions", MOCK_ROUTE_JSON, completions},
    {HTTP_POST, "/openai/v1/embeddings", MOCK_ROUTE_JSON, embeddings},
    {0, NULL, 0, NULL},
};

const mock_format_t mock_azure_format = {
    .name = "azure",
    .routes = azure_routes,
    .authorized = azure_authorized,
    .error = azure_error,
    .headers = azure_headers,
};
