/*
 * AWS Bedrock Runtime adapter, following AWS's Bedrock Runtime API
 * reference:
 *
 *  - chat: POST /model/{modelId}/converse, or /converse-stream for streams.
 *    OpenAI messages become Converse messages (text, base64 images,
 *    toolUse and toolResult blocks; consecutive turns of one role merged,
 *    tool results in a user turn), system and developer messages the system
 *    blocks, max_tokens/temperature/top_p/stop the inferenceConfig, tools
 *    and tool_choice the toolConfig. Converse answers, errors and
 *    ConverseStream event streams (application/vnd.amazon.eventstream,
 *    decoded incrementally by eventstream.c) become OpenAI answers, errors
 *    and chunks as they arrive. OpenAI options with no Converse field
 *    (top_k, seed, penalties, response_format, logprobs, user) are not sent:
 *    their place in additionalModelRequestFields depends on the model.
 *  - embeddings: POST /model/{modelId}/invoke with the model's own body:
 *    {"inputText"} for Amazon Titan (one text per call), {"texts",
 *    "input_type"} for Cohere Embed. Answers become OpenAI embedding lists.
 *
 * Every request is signed with SigV4 (sigv4.c, service "bedrock") from the
 * x-sluice-aws-access-key-id / -secret-access-key / -session-token / -region
 * headers (x-portkey-* too). What is sent is exactly what was signed: the
 * URL (model id percent-encoded once, so that "v1:0" goes out as "v1%3A0"
 * and the signer encodes it once more for the canonical URI), the
 * Content-Type header and the body bytes. The secret key is only ever
 * handed to the signer; it never reaches a log line or an error message,
 * and a provider error that quotes the session token back (AWS's signature
 * mismatch message lists the canonical request) has it masked before the
 * body is kept for the log or relayed.
 */
#include <float.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "dataplane/providers/adapter.h"
#include "dataplane/providers/eventstream.h"
#include "dataplane/providers/sigv4.h"
#include "dataplane/providers/translate.h"

#define MAX_BLOCKS 256          /* content blocks of one streamed answer */
#define MAX_EVENT (8u << 20)    /* one event-stream message, as one SSE event upstream */
#define MAX_MODEL_ID 2048       /* Bedrock's limit on a modelId (an ARN at most) */
#define MAX_KEY_ID 128          /* AWS access key ids are 16 to 128 characters */
#define MAX_TEXT (64u << 20)    /* the text of one buffered answer */
#define DEFAULT_INPUT_TYPE "search_document"

typedef enum {
    EMBED_NONE,
    EMBED_TITAN_V1, /* {"inputText"} only */
    EMBED_TITAN,    /* Titan Text Embeddings V2 and Multimodal: also "dimensions" */
    EMBED_COHERE,   /* {"texts","input_type"} */
} embed_kind_t;

typedef struct {
    gw_es_decoder_t dec; /* owned; disposed by an arena defer */
    embed_kind_t embed;
    int role_sent;       /* stream: the first chunk (delta.role) went out */
    int done;            /* stream: metadata seen, usage and [DONE] sent */
    int ntools;          /* stream: tool blocks so far (OpenAI tool index) */
    int tool_of_block[MAX_BLOCKS]; /* contentBlockIndex -> tool index + 1; 0: not a tool */
} br_state_t;

static void dispose_decoder(void *p)
{
    gw_es_decoder_dispose(p);
}

static br_state_t *state(gw_proxy_t *px)
{
    int fresh = px->tr.adapter == NULL;
    br_state_t *s = gw_tr_state(px, sizeof(br_state_t));
    if (fresh) {
        gw_es_decoder_init(&s->dec, MAX_EVENT);
        sl_arena_defer(&px->req->arena, dispose_decoder, &s->dec);
    }
    return s;
}

static int is_str(const char *s, const char *want)
{
    return s != NULL && strcmp(s, want) == 0;
}

/* ---- credentials and signing ------------------------------------------------ */

static int all_alnum(sl_str_t s)
{
    for (size_t i = 0; i < s.len; i++) {
        char c = s.base[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

static int all_visible(sl_str_t s)
{
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.base[i] <= 0x20 || (unsigned char)s.base[i] >= 0x7f)
            return 0;
    return 1;
}

/*
 * The credentials from the request headers. Messages name the headers that
 * are missing or malformed, never a value.
 */
static int read_creds(gw_proxy_t *px, gw_sigv4_creds_t *c)
{
    c->access_key_id = sl_str_trim(gw_proxy_option(px, "aws-access-key-id"));
    c->secret_access_key = sl_str_trim(gw_proxy_option(px, "aws-secret-access-key"));
    c->session_token = sl_str_trim(gw_proxy_option(px, "aws-session-token"));
    c->region = sl_str_trim(gw_proxy_option(px, "aws-region"));
    c->service = SL_STRLIT("bedrock");
    if (c->access_key_id.len == 0 || c->secret_access_key.len == 0) {
        px->error_message =
            c->access_key_id.len == 0 && c->secret_access_key.len == 0
                ? "bedrock needs AWS credentials: send x-sluice-aws-access-key-id and "
                  "x-sluice-aws-secret-access-key (plus x-sluice-aws-session-token for "
                  "temporary credentials) and x-sluice-aws-region"
            : c->access_key_id.len == 0
                ? "bedrock needs the header x-sluice-aws-access-key-id with "
                  "x-sluice-aws-secret-access-key"
                : "bedrock needs the header x-sluice-aws-secret-access-key with "
                  "x-sluice-aws-access-key-id";
        px->error_param = c->access_key_id.len == 0 ? "x-sluice-aws-access-key-id"
                                                    : "x-sluice-aws-secret-access-key";
        return SL_ENOKEY;
    }
    if (c->access_key_id.len > MAX_KEY_ID || !all_alnum(c->access_key_id))
        return gw_tr_invalid(px, "x-sluice-aws-access-key-id",
                   "x-sluice-aws-access-key-id must be an AWS access key id (letters and digits)");
    if (c->secret_access_key.len > GW_SIGV4_MAX_SECRET || !all_visible(c->secret_access_key))
        return gw_tr_invalid(px, "x-sluice-aws-secret-access-key",
                   "x-sluice-aws-secret-access-key is not an AWS secret access key");
    if (!all_visible(c->session_token))
        return gw_tr_invalid(px, "x-sluice-aws-session-token",
                   "x-sluice-aws-session-token is not an AWS session token");
    if (!gw_tr_token_ok(c->region))
        return gw_tr_invalid(px, "x-sluice-aws-region",
                   "bedrock needs the header x-sluice-aws-region (e.g. us-east-1)");
    return 0;
}

/*
 * base without an explicit default port ("https://h:443" -> "https://h"):
 * libcurl leaves it out of the Host header it sends and the native HTTP/1.1
 * engine would not, so dropping it keeps the signed host equal to the sent
 * one whichever engine runs.
 */
static sl_str_t drop_default_port(gw_proxy_t *px, sl_str_t base)
{
    size_t at;
    const char *dflt;
    if (sl_str_istarts_with(base, "https://")) {
        at = 8;
        dflt = ":443";
    } else if (sl_str_istarts_with(base, "http://")) {
        at = 7;
        dflt = ":80";
    } else {
        return base;
    }
    size_t end = at;
    while (end < base.len && base.base[end] != '/' && base.base[end] != '?')
        end++;
    size_t dl = strlen(dflt);
    if (end - at <= dl || memcmp(base.base + end - dl, dflt, dl) != 0)
        return base;
    return sl_str_c(sl_arena_printf(&px->req->arena, "%.*s%.*s", (int)(end - dl),
                                    base.base, (int)(base.len - end), base.base + end));
}

/* px->url = base + "/model/" + the encoded model id + "/" + op. */
static int set_url(gw_proxy_t *px, const char *op)
{
    if (px->model.len == 0)
        return gw_tr_invalid(px, "model", "model is required: a Bedrock model id, inference profile id "
                                "or ARN (e.g. anthropic.claude-3-haiku-20240307-v1:0)");
    if (px->model.len > MAX_MODEL_ID)
        return gw_tr_invalid(px, "model", "model is longer than Bedrock's 2048 characters");
    sl_str_t base;
    int r = gw_tr_base_url(px, &base);
    if (r != 0)
        return r;
    base = drop_default_port(px, base);
    sl_buf_t m;
    sl_buf_init(&m, MAX_MODEL_ID * 3 + 1);
    r = gw_sigv4_uri_encode(&m, px->model, 1);
    if (r == 0)
        px->url = sl_arena_printf(&px->req->arena, "%.*s/model/%.*s/%s", (int)base.len,
                                  base.base, (int)m.len, m.base, op);
    sl_buf_dispose(&m);
    return r == 0 ? 0 : SL_ENOMEM;
}

/* Signs what build_request prepared and adds X-Amz-Date, X-Amz-Security-Token, Authorization. */
static int sign(gw_proxy_t *px, const gw_sigv4_creds_t *c)
{
    gw_http_header_t *h = NULL;
    size_t n = 0;
    int r = gw_sigv4_sign(&px->req->arena, c, "POST", px->url, px->up_headers, px->n_up_headers,
                          px->up_body, time(NULL), &h, &n);
    if (r != 0) {
        if (r == SL_EINVAL)
            px->error_message = "bedrock: this request cannot be signed (check the "
                                "x-sluice-aws-* headers and the custom host)";
        return r;
    }
    for (size_t i = 0; i < n; i++)
        gw_tr_header_add(px, h[i].name, h[i].value);
    return 0;
}

/* Overwrites every copy of secret in p[0..n) with '*' (secrets too short to matter are left). */
static void mask(char *p, size_t n, sl_str_t secret)
{
    if (p == NULL || secret.len < 8 || n < secret.len)
        return;
    for (size_t i = 0; i + secret.len <= n; i++) {
        if (p[i] == secret.base[0] && memcmp(p + i, secret.base, secret.len) == 0) {
            memset(p + i, '*', secret.len);
            i += secret.len - 1;
        }
    }
}

static void mask_secrets(gw_proxy_t *px, char *p, size_t n)
{
    mask(p, n, sl_str_trim(gw_proxy_option(px, "aws-secret-access-key")));
    mask(p, n, sl_str_trim(gw_proxy_option(px, "aws-session-token")));
}

/* ---- chat request --------------------------------------------------------------- */

/* A base64 data URL as a Converse image block. */
static int image_block(gw_proxy_t *px, const json_t *part, json_t *blocks)
{
    const char *url = gw_tr_str(json_object_get(part, "image_url"), "url");
    if (url == NULL)
        return gw_tr_invalid(px, "messages", "image_url parts need an image_url.url");
    if (strncmp(url, "data:", 5) != 0)
        return gw_tr_invalid(px, "messages",
                   "bedrock's Converse API takes images as bytes only: send them as base64 "
                   "data URLs (data:image/png;base64,...), http(s) image URLs are not supported");
    const char *semi = strchr(url, ';');
    const char *comma = strchr(url, ',');
    if (semi == NULL || comma == NULL || semi > comma || strncmp(semi, ";base64,", 8) != 0)
        return gw_tr_invalid(px, "messages", "image data URLs must be base64 (data:image/png;base64,...)");
    static const struct {
        const char *mime, *format;
    } formats[] = {{"image/png", "png"},   {"image/jpeg", "jpeg"}, {"image/jpg", "jpeg"},
                   {"image/gif", "gif"},   {"image/webp", "webp"}};
    sl_str_t mime = sl_str(url + 5, (size_t)(semi - url - 5));
    for (size_t i = 0; i < SL_ARRAY_SIZE(formats); i++) {
        if (sl_str_ieq_c(mime, formats[i].mime)) {
            json_array_append_new(blocks, json_pack("{s:{s:s,s:{s:s}}}", "image", "format",
                                                    formats[i].format, "source", "bytes",
                                                    comma + 1));
            return 0;
        }
    }
    return gw_tr_invalid(px, "messages", "bedrock takes png, jpeg, gif and webp images");
}

/* OpenAI message content (string or parts) as Converse blocks; images only where allowed. */
static int content_blocks(gw_proxy_t *px, const json_t *c, json_t *blocks, int images)
{
    if (json_is_string(c)) {
        /* Converse refuses blank text blocks. */
        if (json_string_length(c) > 0)
            json_array_append_new(blocks, json_pack("{s:O}", "text", c));
        return 0;
    }
    if (c == NULL || json_is_null(c))
        return 0;
    if (!json_is_array(c))
        return gw_tr_invalid(px, "messages", "message content must be a string or an array of parts");
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p) {
        const char *t = gw_tr_str(p, "type");
        const char *key = is_str(t, "refusal") ? "refusal" : "text";
        json_t *text = json_object_get(p, key);
        if ((is_str(t, "text") || is_str(t, "refusal")) && json_is_string(text)) {
            if (json_string_length(text) > 0)
                json_array_append_new(blocks, json_pack("{s:O}", "text", text));
        } else if (is_str(t, "image_url") && images) {
            int r = image_block(px, p, blocks);
            if (r != 0)
                return r;
        } else {
            return gw_tr_invalid(px, "messages", "content part type not supported by bedrock");
        }
    }
    return 0;
}

/* Appends a turn, merging it into the previous one when the role repeats
 * (Converse wants user and assistant turns to alternate). Steals blocks. */
static void add_turn(json_t *msgs, const char *role, json_t *blocks)
{
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    if (last != NULL && is_str(gw_tr_str(last, "role"), role)) {
        json_array_extend(json_object_get(last, "content"), blocks);
        json_decref(blocks);
        return;
    }
    json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", role, "content", blocks));
}

/* An assistant message's tool_calls as toolUse blocks. */
static int tool_use_blocks(gw_proxy_t *px, const json_t *m, json_t *blocks)
{
    size_t k;
    json_t *tc;
    json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *args = gw_tr_str(fn, "arguments");
        json_t *input = args && args[0] ? json_loads(args, 0, NULL) : json_object();
        if (!json_is_object(input) || gw_tr_str(tc, "id") == NULL ||
            gw_tr_str(fn, "name") == NULL) {
            json_decref(input);
            return gw_tr_invalid(px, "messages",
                       "tool_calls need an id, a name and arguments that are a JSON object");
        }
        json_array_append_new(blocks, json_pack("{s:{s:O,s:O,s:o}}", "toolUse", "toolUseId",
                                                json_object_get(tc, "id"), "name",
                                                json_object_get(fn, "name"), "input", input));
    }
    return 0;
}

/*
 * A tool message as a toolResult block. OpenAI has no error status for a
 * tool result, and AWS documents ToolResultBlock.status for Nova and Claude
 * models only, so none is sent.
 */
static int tool_result_block(gw_proxy_t *px, const json_t *m, json_t *blocks)
{
    const char *id = gw_tr_str(m, "tool_call_id");
    if (id == NULL)
        return gw_tr_invalid(px, "messages", "tool messages need a tool_call_id");
    json_t *content = json_array();
    int r = content_blocks(px, json_object_get(m, "content"), content, 0);
    if (r != 0) {
        json_decref(content);
        return r;
    }
    json_array_append_new(blocks, json_pack("{s:{s:s,s:o}}", "toolResult", "toolUseId", id,
                                            "content", content));
    return 0;
}

static int convert_messages(gw_proxy_t *px, const json_t *in, json_t *out)
{
    const json_t *list = json_object_get(in, "messages");
    if (!json_is_array(list))
        return gw_tr_invalid(px, "messages", "messages must be an array");
    json_t *msgs = json_array();
    json_t *system = json_array();
    json_object_set_new(out, "messages", msgs);
    size_t i;
    json_t *m;
    int r = 0;
    json_array_foreach(list, i, m) {
        const char *role = gw_tr_str(m, "role");
        json_t *c = json_object_get(m, "content");
        json_t *blocks = json_array();
        const char *turn = NULL;
        if (role == NULL) {
            r = gw_tr_invalid(px, "messages", "every message needs a role");
        } else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            r = content_blocks(px, c, system, 0);
        } else if (strcmp(role, "user") == 0) {
            r = content_blocks(px, c, blocks, 1);
            turn = "user";
        } else if (strcmp(role, "assistant") == 0) {
            r = content_blocks(px, c, blocks, 0);
            if (r == 0)
                r = tool_use_blocks(px, m, blocks);
            turn = "assistant";
        } else if (strcmp(role, "tool") == 0) {
            r = tool_result_block(px, m, blocks);
            turn = "user";
        } else {
            r = gw_tr_invalid(px, "messages", "message role not supported by bedrock");
        }
        if (r == 0 && turn != NULL && json_array_size(blocks) > 0) {
            add_turn(msgs, turn, blocks);
            blocks = NULL;
        }
        json_decref(blocks);
        if (r != 0)
            break;
    }
    if (r == 0 && json_array_size(system) > 0)
        json_object_set(out, "system", system);
    json_decref(system);
    if (r == 0 && json_array_size(msgs) == 0)
        r = gw_tr_invalid(px, "messages", "at least one user message with content is required");
    return r;
}

static int convert_tools(gw_proxy_t *px, const json_t *in, json_t *out)
{
    json_t *tc = json_object_get(in, "tool_choice");
    json_t *choice = NULL;
    int none = 0;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "auto") == 0)
            choice = json_pack("{s:{}}", "auto");
        else if (strcmp(s, "required") == 0)
            choice = json_pack("{s:{}}", "any");
        else if (strcmp(s, "none") == 0)
            none = 1; /* Converse has no "none": the tools are left out */
        else
            return gw_tr_invalid(px, "tool_choice", "tool_choice must be auto, required, none or a function");
    } else if (json_is_object(tc)) {
        const char *name = gw_tr_str(json_object_get(tc, "function"), "name");
        if (name == NULL)
            return gw_tr_invalid(px, "tool_choice", "tool_choice must name a function");
        choice = json_pack("{s:{s:s}}", "tool", "name", name);
    } else if (tc != NULL && !json_is_null(tc)) {
        return gw_tr_invalid(px, "tool_choice", "tool_choice must be auto, required, none or a function");
    }
    json_t *tools = json_object_get(in, "tools");
    if (none || !json_is_array(tools) || json_array_size(tools) == 0) {
        json_decref(choice); /* a choice without tools means nothing to Converse */
        return 0;
    }
    json_t *specs = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *fn = json_object_get(t, "function");
        const char *type = gw_tr_str(t, "type");
        const char *name = gw_tr_str(fn, "name");
        if ((type != NULL && strcmp(type, "function") != 0) || name == NULL) {
            json_decref(specs);
            json_decref(choice);
            return gw_tr_invalid(px, "tools", "bedrock tools must be functions with a name");
        }
        json_t *schema = json_object_get(fn, "parameters");
        json_t *spec = json_pack("{s:s}", "name", name);
        if (gw_tr_str(fn, "description") != NULL)
            json_object_set(spec, "description", json_object_get(fn, "description"));
        json_object_set_new(spec, "inputSchema",
                            json_pack("{s:o}", "json",
                                      json_is_object(schema)
                                          ? json_incref(schema)
                                          : json_pack("{s:s,s:{}}", "type", "object",
                                                      "properties")));
        json_array_append_new(specs, json_pack("{s:o}", "toolSpec", spec));
    }
    json_t *cfg = json_pack("{s:o}", "tools", specs);
    if (choice != NULL)
        json_object_set_new(cfg, "toolChoice", choice);
    json_object_set_new(out, "toolConfig", cfg);
    return 0;
}

static int convert_inference(gw_proxy_t *px, const json_t *in, json_t *out)
{
    json_t *cfg = json_object();
    json_t *mt = json_object_get(in, "max_completion_tokens");
    if (!json_is_integer(mt))
        mt = json_object_get(in, "max_tokens");
    if (json_is_integer(mt))
        json_object_set(cfg, "maxTokens", mt);
    json_t *v = json_object_get(in, "temperature");
    if (json_is_number(v))
        json_object_set(cfg, "temperature", v);
    v = json_object_get(in, "top_p");
    if (json_is_number(v))
        json_object_set(cfg, "topP", v);
    json_t *stop = json_object_get(in, "stop");
    if (json_is_string(stop)) {
        json_object_set_new(cfg, "stopSequences", json_pack("[O]", stop));
    } else if (json_is_array(stop) && json_array_size(stop) > 0) {
        size_t i;
        json_t *s;
        json_array_foreach(stop, i, s) {
            if (!json_is_string(s)) {
                json_decref(cfg);
                return gw_tr_invalid(px, "stop", "stop must be a string or an array of strings");
            }
        }
        json_object_set(cfg, "stopSequences", stop);
    }
    if (json_object_size(cfg) > 0)
        json_object_set(out, "inferenceConfig", cfg);
    json_decref(cfg);
    return 0;
}

static json_t *converse_request(gw_proxy_t *px, int *err)
{
    const json_t *in = px->body;
    json_t *n = json_object_get(in, "n");
    if (json_is_integer(n) && json_integer_value(n) != 1) {
        *err = gw_tr_invalid(px, "n", "bedrock returns one choice per request: n must be 1");
        return NULL;
    }
    json_t *out = json_object();
    int r = convert_messages(px, in, out);
    if (r == 0)
        r = convert_inference(px, in, out);
    if (r == 0)
        r = convert_tools(px, in, out);
    if (r != 0) {
        json_decref(out);
        *err = r;
        return NULL;
    }
    return out;
}

/* ---- embeddings request ------------------------------------------------------------ */

static embed_kind_t embed_kind(sl_str_t model)
{
    char id[MAX_MODEL_ID + 1];
    size_t n = model.len < MAX_MODEL_ID ? model.len : MAX_MODEL_ID;
    memcpy(id, model.base, n);
    id[n] = '\0';
    /* A model id may come as an ARN or with a region prefix: look inside. */
    if (strstr(id, "amazon.titan-embed-text-v1") != NULL ||
        strstr(id, "amazon.titan-embed-g1-text") != NULL)
        return EMBED_TITAN_V1;
    if (strstr(id, "amazon.titan-embed") != NULL)
        return EMBED_TITAN;
    if (strstr(id, "cohere.embed") != NULL)
        return EMBED_COHERE;
    return EMBED_NONE;
}

static json_t *embed_request(gw_proxy_t *px, int *err)
{
    const json_t *in = px->body;
    br_state_t *s = state(px);
    json_t *input = json_object_get(in, "input");
    *err = 0;
    s->embed = embed_kind(px->model);
    if (s->embed == EMBED_NONE) {
        *err = gw_tr_invalid(px, "model", "bedrock embeddings need an amazon.titan-embed-* or "
                                "cohere.embed-* model");
        return NULL;
    }
    int strings = json_is_string(input) || (json_is_array(input) && json_array_size(input) > 0);
    size_t i;
    json_t *v;
    if (json_is_array(input))
        json_array_foreach(input, i, v) strings = strings && json_is_string(v);
    if (!strings) {
        *err = gw_tr_invalid(px, "input", "bedrock embeds text: input must be a string or a non-empty "
                                "array of strings (no token arrays)");
        return NULL;
    }
    const char *enc = gw_tr_str(in, "encoding_format");
    json_t *encv = json_object_get(in, "encoding_format");
    if ((encv != NULL && !json_is_null(encv) && enc == NULL) ||
        (enc != NULL && strcmp(enc, "float") != 0 && strcmp(enc, "base64") != 0)) {
        *err = gw_tr_invalid(px, "encoding_format", "encoding_format must be float or base64");
        return NULL;
    }
    json_t *dims = json_object_get(in, "dimensions");
    if (dims != NULL && !json_is_null(dims) && !json_is_integer(dims)) {
        *err = gw_tr_invalid(px, "dimensions", "dimensions must be an integer");
        return NULL;
    }
    if (!json_is_integer(dims))
        dims = NULL;
    if (s->embed != EMBED_COHERE) {
        if (json_is_array(input) && json_array_size(input) > 1) {
            *err = gw_tr_invalid(px, "input", "Amazon Titan embeds one text per request: send input as "
                                    "a single string (one request per text)");
            return NULL;
        }
        if (dims != NULL && s->embed == EMBED_TITAN_V1) {
            *err = gw_tr_invalid(px, "dimensions", "amazon.titan-embed-text-v1 has a fixed size: "
                                         "dimensions needs Titan Text Embeddings V2");
            return NULL;
        }
        json_t *text = json_is_string(input) ? input : json_array_get(input, 0);
        json_t *out = json_pack("{s:O}", "inputText", text);
        if (dims != NULL)
            json_object_set(out, "dimensions", dims);
        return out;
    }
    sl_str_t it = sl_str_trim(gw_proxy_option(px, "cohere-input-type"));
    if (it.len > 0 && !gw_tr_token_ok(it)) {
        *err = gw_tr_invalid(px, "x-sluice-cohere-input-type",
                   "x-sluice-cohere-input-type must be a Cohere input type, e.g. search_query");
        return NULL;
    }
    json_t *out = json_object();
    json_object_set_new(out, "texts",
                        json_is_string(input) ? json_pack("[O]", input) : json_incref(input));
    json_object_set_new(out, "input_type", it.len > 0 ? json_stringn(it.base, it.len)
                                                      : json_string(DEFAULT_INPUT_TYPE));
    if (dims != NULL)
        json_object_set(out, "output_dimension", dims); /* Cohere Embed v4 */
    return out;
}

/*
 * The client's headers after the signed ones (its Content-Type and Accept
 * stay behind: the body is ours, and InvokeModel reads Accept as the MIME
 * type wanted for the model's answer, so JSON is asked for explicitly there
 * and for Converse; event streams get the transport's Accept).
 */
static void forward_headers(gw_proxy_t *px, int accept_json)
{
    if (accept_json)
        gw_tr_header_add(px, SL_STRLIT("Accept"), SL_STRLIT("application/json"));
    gw_tr_forward_headers(px, 1);
}

static int build_request(gw_proxy_t *px)
{
    state(px);
    if (px->endpoint != GW_EP_CHAT && px->endpoint != GW_EP_EMBEDDINGS) {
        px->error_message = "bedrock serves chat completions and embeddings only";
        return SL_EUNSUPPORTED;
    }
    if (px->body == NULL)
        return gw_tr_invalid(px, NULL, "request body must be a JSON object");
    gw_sigv4_creds_t creds;
    int r = read_creds(px, &creds);
    if (r != 0)
        return r;
    int chat = px->endpoint == GW_EP_CHAT;
    r = set_url(px, chat ? (px->stream ? "converse-stream" : "converse") : "invoke");
    if (r != 0)
        return r;
    json_t *body = chat ? converse_request(px, &r) : embed_request(px, &r);
    if (body == NULL)
        return r;
    r = gw_tr_set_body(px, body);
    json_decref(body);
    if (r != 0)
        return r;
    /* Only Content-Type (with the host and date) is signed: the client's own headers are
     * forwarded unsigned, as AWS allows, so nothing on the way can break the signature. */
    gw_tr_headers_init(px, px->req->nheaders + 6);
    gw_tr_header_add(px, SL_STRLIT("Content-Type"), SL_STRLIT("application/json"));
    r = sign(px, &creds);
    if (r != 0)
        return r;
    forward_headers(px, !(chat && px->stream));
    return 0;
}

/* ---- answers ------------------------------------------------------------------------- */

/* A token count: absent, not an integer or negative is 0. */
static long long count_at(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    json_int_t i = json_is_integer(v) ? json_integer_value(v) : 0;
    return i > 0 ? (long long)i : 0;
}

/*
 * Converse usage into px->usage. inputTokens counts the input that was
 * neither read from nor written to the prompt cache (as Anthropic's
 * input_tokens; totalTokens = input + output + cache read + cache write),
 * while px->usage.prompt_tokens counts all of it.
 */
static void take_usage(gw_proxy_t *px, const json_t *u)
{
    if (!json_is_object(u))
        return;
    gw_usage_t *g = &px->usage;
    g->cached_tokens = count_at(u, "cacheReadInputTokens");
    g->cache_write_tokens = count_at(u, "cacheWriteInputTokens");
    g->prompt_tokens = count_at(u, "inputTokens") + g->cached_tokens + g->cache_write_tokens;
    g->completion_tokens = count_at(u, "outputTokens");
    g->set = 1;
}

static const char *finish_reason(const char *stop)
{
    if (stop == NULL)
        return "stop";
    if (strcmp(stop, "max_tokens") == 0 || strcmp(stop, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp(stop, "tool_use") == 0)
        return "tool_calls";
    if (strcmp(stop, "guardrail_intervened") == 0 || strcmp(stop, "content_filtered") == 0)
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, malformed_* */
}

static json_t *converse_answer(gw_proxy_t *px, const json_t *a)
{
    const json_t *content = json_object_get(json_object_get(json_object_get(a, "output"),
                                                            "message"),
                                            "content");
    if (!json_is_array(content))
        return NULL;
    sl_buf_t text;
    sl_buf_init(&text, MAX_TEXT);
    json_t *calls = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *t = gw_tr_str(b, "text");
        json_t *tu = json_object_get(b, "toolUse");
        if (t != NULL) {
            if (sl_buf_append_str(&text, sl_str_c(t)) != 0)
                break;
        } else if (json_is_object(tu)) {
            json_t *input = json_object_get(tu, "input");
            const char *id = gw_tr_str(tu, "toolUseId"), *name = gw_tr_str(tu, "name");
            const char *args = input ? gw_tr_dump(px, input).base : "{}";
            json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id ? id : "",
                                                   "type", "function", "function", "name",
                                                   name ? name : "", "arguments", args));
        }
        /* reasoningContent, citations and other blocks have no OpenAI form */
    }
    json_t *msg = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(msg, "content", text.len || json_array_size(calls) == 0
                                            ? json_stringn(text.base ? text.base : "", text.len)
                                            : json_null());
    if (json_array_size(calls) > 0)
        json_object_set(msg, "tool_calls", calls);
    json_decref(calls);
    sl_buf_dispose(&text);
    take_usage(px, json_object_get(a, "usage"));
    gw_tr_ids(px);
    return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}],s:o}", "id", px->tr.id, "object",
                     "chat.completion", "created", (json_int_t)px->tr.created, "model",
                     px->tr.model, "choices", "index", 0, "message", msg, "logprobs",
                     "finish_reason", finish_reason(gw_tr_str(a, "stopReason")), "usage",
                     gw_tr_usage_to_openai(px));
}

/* The input token count InvokeModel reports in a header (Cohere's body has none). */
static long long header_tokens(gw_proxy_t *px)
{
    unsigned long long v = 0;
    sl_str_t h = sl_str_trim(gw_upstream_header(&px->up, "x-amzn-bedrock-input-token-count"));
    if (h.len == 0 || sl_str_to_u64(h, &v) != 0 || v > (1ull << 50))
        return 0;
    return (long long)v;
}

static json_t *embed_answer(gw_proxy_t *px, const json_t *a)
{
    br_state_t *s = state(px);
    json_t *vecs;
    long long tokens;
    if (s->embed == EMBED_COHERE) {
        /* embeddings_floats ([[...]]), or embeddings_by_type ({"float":[[...]]}) */
        json_t *e = json_object_get(a, "embeddings");
        vecs = json_is_array(e) ? json_incref(e) : json_incref(json_object_get(e, "float"));
        tokens = header_tokens(px);
    } else {
        json_t *e = json_object_get(a, "embedding");
        if (!json_is_array(e))
            e = json_object_get(json_object_get(a, "embeddingsByType"), "float");
        vecs = json_is_array(e) ? json_pack("[O]", e) : NULL;
        tokens = json_is_integer(json_object_get(a, "inputTextTokenCount"))
                     ? count_at(a, "inputTextTokenCount")
                     : header_tokens(px);
    }
    if (!json_is_array(vecs)) {
        json_decref(vecs);
        return NULL;
    }
    int base64 = is_str(gw_tr_str(px->body, "encoding_format"), "base64");
    json_t *data = json_array();
    size_t i, k;
    json_t *v, *x;
    json_array_foreach(vecs, i, v) {
        int ok = json_is_array(v);
        json_array_foreach(v, k, x) ok = ok && json_is_number(x);
        json_t *emb = ok ? (base64 ? gw_tr_embedding_base64(px, v) : json_incref(v)) : NULL;
        if (emb == NULL) {
            json_decref(data);
            json_decref(vecs);
            return NULL;
        }
        json_array_append_new(data, json_pack("{s:s,s:I,s:o}", "object", "embedding", "index",
                                              (json_int_t)i, "embedding", emb));
    }
    json_decref(vecs);
    px->usage.prompt_tokens = tokens;
    px->usage.set = 1;
    gw_tr_ids(px);
    return json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model",
                     px->tr.model, "usage", "prompt_tokens", (json_int_t)tokens, "total_tokens",
                     (json_int_t)tokens);
}

/* An AWS exception name as an OpenAI error type; NULL: derived from the status. */
static const char *error_type(const char *exception)
{
    static const struct {
        const char *exception, *type;
    } types[] = {
        {"ValidationException", "invalid_request_error"},
        {"ResourceNotFoundException", "invalid_request_error"},
        {"ModelNotReadyException", "api_error"},
        {"ThrottlingException", "rate_limit_error"},
        {"ServiceQuotaExceededException", "rate_limit_error"},
        {"AccessDeniedException", "permission_error"},
        {"UnrecognizedClientException", "authentication_error"},
        {"InvalidSignatureException", "authentication_error"},
        {"IncompleteSignatureException", "authentication_error"},
        {"MissingAuthenticationTokenException", "authentication_error"},
        {"ExpiredTokenException", "authentication_error"},
        {"ModelTimeoutException", "timeout_error"},
        {"InternalServerException", "api_error"},
        {"ModelErrorException", "api_error"},
        {"ModelStreamErrorException", "api_error"},
        {"ServiceUnavailableException", "api_error"},
    };
    for (size_t i = 0; exception != NULL && i < SL_ARRAY_SIZE(types); i++)
        if (strcmp(exception, types[i].exception) == 0)
            return types[i].type;
    return NULL;
}

/*
 * A Bedrock error: {"message"} (or "Message") with the exception name in
 * x-amzn-ErrorType, "ThrottlingException:http://internal.amazon.com/...";
 * some front ends put it in the body's "__type" instead.
 */
static int respond_error(gw_proxy_t *px)
{
    mask_secrets(px, px->resp.base, px->resp.len);
    json_t *a = gw_tr_parse_resp(px);
    sl_str_t t = sl_str_trim(gw_upstream_header(&px->up, "x-amzn-errortype"));
    const char *raw = t.len ? NULL : gw_tr_str(a, "__type");
    if (raw != NULL) {
        t = sl_str_c(raw);
        const char *hash = memchr(t.base, '#', t.len); /* "namespace#Exception" */
        if (hash != NULL)
            t = sl_str(hash + 1, t.len - (size_t)(hash + 1 - t.base));
    }
    const char *colon = t.len ? memchr(t.base, ':', t.len) : NULL;
    if (colon != NULL)
        t.len = (size_t)(colon - t.base);
    const char *exception =
        t.len > 0 && t.len <= 128 && gw_tr_token_ok(t)
            ? sl_arena_printf(&px->req->arena, "%.*s", (int)t.len, t.base)
            : NULL;
    const char *msg = gw_tr_str(a, "message");
    if (msg == NULL)
        msg = gw_tr_str(a, "Message");
    if ((msg == NULL || msg[0] == '\0') && exception != NULL)
        msg = sl_arena_printf(&px->req->arena, "bedrock: %s", exception);
    int r = gw_tr_respond_error(px, msg, error_type(exception), exception);
    json_decref(a);
    return r;
}

static int on_response(gw_proxy_t *px)
{
    if (px->up.status < 200 || px->up.status >= 300)
        return respond_error(px);
    json_t *a = gw_tr_parse_resp(px);
    if (!json_is_object(a)) {
        json_decref(a);
        return SL_EUPPROTO;
    }
    json_t *o = px->endpoint == GW_EP_EMBEDDINGS ? embed_answer(px, a) : converse_answer(px, a);
    json_decref(a);
    return o ? gw_tr_respond_json(px, o) : SL_EUPPROTO;
}

/* ---- streams ------------------------------------------------------------------------------ */

typedef gw_tr_feed_t feed_t;

static int send_role(feed_t *f)
{
    return gw_tr_feed_role(f, &state(f->px)->role_sent);
}

/* The tool index of a block, or -1 when the block is not a started tool block. */
static int tool_of(br_state_t *s, const json_t *ev)
{
    json_t *idx = json_object_get(ev, "contentBlockIndex");
    if (!json_is_integer(idx))
        return -1;
    json_int_t i = json_integer_value(idx);
    if (i < 0 || i >= MAX_BLOCKS)
        return -1;
    return s->tool_of_block[i] - 1;
}

static int on_block_start(feed_t *f, br_state_t *s, const json_t *ev)
{
    json_t *tu = json_object_get(json_object_get(ev, "start"), "toolUse");
    if (!json_is_object(tu))
        return 0; /* other block kinds start without anything to say */
    json_t *idx = json_object_get(ev, "contentBlockIndex");
    json_int_t i = json_is_integer(idx) ? json_integer_value(idx) : -1;
    if (i < 0 || i >= MAX_BLOCKS || s->tool_of_block[i] != 0)
        return f->err = SL_EUPPROTO;
    int t = s->ntools++;
    s->tool_of_block[i] = t + 1;
    const char *id = gw_tr_str(tu, "toolUseId"), *name = gw_tr_str(tu, "name");
    json_t *delta;
    json_t *c = gw_tr_chunk_new(&delta);
    json_object_set_new(delta, "tool_calls",
                        json_pack("[{s:i,s:s,s:s,s:{s:s,s:s}}]", "index", t, "id", id ? id : "",
                                  "type", "function", "function", "name", name ? name : "",
                                  "arguments", ""));
    return gw_tr_feed_emit(f, c);
}

static int on_block_delta(feed_t *f, br_state_t *s, const json_t *ev)
{
    json_t *d = json_object_get(ev, "delta");
    json_t *text = json_object_get(d, "text");
    json_t *tu = json_object_get(d, "toolUse");
    json_t *delta;
    if (json_is_string(text)) {
        if (json_string_length(text) == 0)
            return 0;
        json_t *c = gw_tr_chunk_new(&delta);
        json_object_set(delta, "content", text);
        return gw_tr_feed_emit(f, c);
    }
    if (json_is_object(tu)) {
        int t = tool_of(s, ev);
        json_t *input = json_object_get(tu, "input");
        if (t < 0 || !json_is_string(input))
            return f->err = SL_EUPPROTO;
        json_t *c = gw_tr_chunk_new(&delta);
        json_object_set_new(delta, "tool_calls", json_pack("[{s:i,s:{s:O}}]", "index", t,
                                                           "function", "arguments", input));
        return gw_tr_feed_emit(f, c);
    }
    return 0; /* reasoningContent and citation deltas have no OpenAI form */
}

static int on_event(feed_t *f, sl_str_t type, const json_t *ev)
{
    gw_proxy_t *px = f->px;
    br_state_t *s = state(px);
    if (sl_str_eq(type, SL_STRLIT("messageStart")))
        return send_role(f);
    if (sl_str_eq(type, SL_STRLIT("contentBlockStart")))
        return send_role(f) ? f->err : on_block_start(f, s, ev);
    if (sl_str_eq(type, SL_STRLIT("contentBlockDelta")))
        return send_role(f) ? f->err : on_block_delta(f, s, ev);
    if (sl_str_eq(type, SL_STRLIT("messageStop"))) {
        if (send_role(f) != 0)
            return f->err;
        json_t *delta;
        json_t *c = gw_tr_chunk_new(&delta);
        json_object_set_new(json_array_get(json_object_get(c, "choices"), 0), "finish_reason",
                            json_string(finish_reason(gw_tr_str(ev, "stopReason"))));
        return gw_tr_feed_emit(f, c);
    }
    if (sl_str_eq(type, SL_STRLIT("metadata"))) {
        /* The last event of a ConverseStream answer, after messageStop. */
        take_usage(px, json_object_get(ev, "usage"));
        if (gw_tr_feed_emit(f, json_pack("{s:[],s:o}", "choices", "usage", gw_tr_usage_to_openai(px))) != 0)
            return f->err;
        s->done = 1;
        int r = gw_tr_emit_done(px, f->out);
        return r ? (f->err = r) : 0;
    }
    return 0; /* contentBlockStop, and event types added later */
}

/* An exception (or error) message ends the stream with the provider's words. */
static int on_exception(feed_t *f, const gw_es_message_t *m)
{
    gw_proxy_t *px = f->px;
    int error = sl_str_eq(m->message_type, SL_STRLIT("error"));
    sl_str_t type = error ? m->error_code : m->exception_type;
    json_t *j = json_loadb(m->payload.base, m->payload.len, 0, NULL);
    const char *msg = gw_tr_str(j, "message");
    if (msg == NULL)
        msg = gw_tr_str(j, "Message");
    char *text;
    if (error || msg == NULL) {
        sl_str_t em = error ? m->error_message : SL_STR_NULL;
        text = sl_arena_printf(&px->req->arena, "bedrock: %.*s: %.*s",
                               (int)(type.len ? type.len : 9), type.len ? type.base : "exception",
                               (int)(em.len ? em.len : 12), em.len ? em.base : "stream error");
    } else {
        text = sl_arena_printf(&px->req->arena, "bedrock: %.*s: %s",
                               (int)(type.len ? type.len : 9), type.len ? type.base : "exception",
                               msg);
    }
    json_decref(j);
    mask_secrets(px, text, strlen(text));
    px->stream_error_message = text;
    return f->err = SL_EUPSTREAM;
}

static int on_message(void *ud, const gw_es_message_t *m)
{
    feed_t *f = ud;
    br_state_t *s = state(f->px);
    if (sl_str_eq(m->message_type, SL_STRLIT("exception")) ||
        sl_str_eq(m->message_type, SL_STRLIT("error")))
        return on_exception(f, m) != 0;
    if (!sl_str_eq(m->message_type, SL_STRLIT("event")) || s->done)
        return 0; /* other message types carry nothing for the client */
    json_t *ev = json_loadb(m->payload.base, m->payload.len, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        f->err = SL_EUPPROTO;
        return 1;
    }
    on_event(f, m->event_type, ev);
    json_decref(ev);
    return f->err != 0;
}

static int on_stream_data(gw_proxy_t *px, const char *p, size_t n, sl_buf_t *out)
{
    br_state_t *s = state(px);
    feed_t f = {px, out, 0};
    int r = gw_es_feed(&s->dec, p, n, on_message, &f);
    if (r == 0)
        return 0;
    if (r == 1)
        return f.err ? f.err : SL_EUPSTREAM; /* the error is sticky in the decoder too */
    return r == SL_ETOOBIG ? SL_EUPTOOBIG : r;
}

/* Complete once the metadata event (which follows messageStop) was translated, with
 * no unfinished message behind it. */
static int stream_complete(gw_proxy_t *px)
{
    br_state_t *s = state(px);
    return s->done && !gw_es_pending(&s->dec);
}

static int response_mode(gw_proxy_t *px)
{
    sl_str_t ct = gw_upstream_header(&px->up, "content-type");
    int ok = px->up.status >= 200 && px->up.status < 300;
    return ok && sl_str_istarts_with(ct, "application/vnd.amazon.eventstream")
               ? GW_RESP_MODE_SSE
               : GW_RESP_MODE_BUFFER;
}

const gw_adapter_t gw_adapter_bedrock = {
    .name = "bedrock",
    .build_request = build_request,
    .response_mode = response_mode,
    .on_stream_data = on_stream_data,
    .stream_complete = stream_complete,
    .on_response = on_response,
};
