/*
 * Cohere v2 adapter: POST {base}/chat and POST {base}/embed, bearer auth.
 *
 * Chat: OpenAI chat requests become v2 chat requests (system, user with text
 * and image_url parts, assistant with tool_calls, tool results, tools,
 * tool_choice, sampling parameters, response_format), and v2 answers,
 * errors and streams (message-start, content-*, tool-plan-delta,
 * tool-call-*, citation-*, message-end) become OpenAI answers and chunks as
 * they arrive. Cohere's tool_plan (the text a model writes before it calls
 * tools) is the OpenAI assistant content that accompanies tool_calls, in
 * both directions, as Anthropic's text blocks before tool_use are in
 * anthropic.c. A generation that Cohere ends with finish_reason ERROR or
 * TIMEOUT is an error for the client, in a buffered answer and in a stream.
 *
 * Embeddings: OpenAI embedding requests (string or array of strings) become
 * v2 embed requests for float embeddings; input_type is search_document
 * unless the client sets x-sluice-cohere-input-type. The answer becomes an
 * OpenAI embedding list (floats, or base64 of little-endian float32 when the
 * client asked for encoding_format "base64", as OpenAI sends it).
 *
 * The client's own headers go along, as openai.c sends them, except
 * credentials, hop-by-hop and body headers and other vendors' API headers.
 */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "common/sse.h"
#include "dataplane/providers/adapter.h"
#include "dataplane/providers/translate.h"

#define DEFAULT_INPUT_TYPE "search_document"
#define MAX_CALLS 256 /* tool calls in one streamed answer */

typedef struct {
    int role_sent;                /* the first chunk (role) went out */
    int ended;                    /* message-end translated: the rest is ignored */
    int ntools;                   /* tool calls started */
    int last_tool;                /* OpenAI index of the last started call; -1: none */
    int tool_of_index[MAX_CALLS]; /* Cohere event index -> OpenAI tool index + 1; 0: none */
} co_state_t;

static co_state_t *state(gw_proxy_t *px)
{
    int fresh = px->tr.adapter == NULL;
    co_state_t *s = gw_tr_state(px, sizeof(co_state_t));
    if (fresh)
        s->last_tool = -1; /* no tool call started yet */
    return s;
}

static int is_str(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

/* ---- chat request ---------------------------------------------------------- */

/*
 * OpenAI content that holds only text (a string, or text parts; refusal
 * parts count as text) appended to b. Used where Cohere wants one string
 * (assistant content, tool_plan).
 */
static int flat_text(gw_proxy_t *px, const json_t *c, sl_buf_t *b)
{
    if (c == NULL || json_is_null(c))
        return 0;
    if (json_is_string(c))
        return sl_buf_append(b, json_string_value(c), json_string_length(c)) == 0
                   ? 0
                   : gw_tr_invalid(px, "messages", "message content too large");
    if (!json_is_array(c))
        return gw_tr_invalid(px, "messages", "message content must be a string or an array of parts");
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p) {
        const char *t = gw_tr_str(p, "type");
        json_t *s = json_object_get(p, is_str(t, "refusal") ? "refusal" : "text");
        if (!(is_str(t, "text") || is_str(t, "refusal")) || !json_is_string(s))
            return gw_tr_invalid(px, "messages", "assistant content parts must be text for cohere");
        if (sl_buf_append(b, json_string_value(s), json_string_length(s)) != 0)
            return gw_tr_invalid(px, "messages", "message content too large");
    }
    return 0;
}

/*
 * OpenAI content as Cohere content: a string stays a string; parts become
 * Cohere's text parts, and image_url parts (user messages only) Cohere's
 * image_url parts, which have the same shape. *out: new reference.
 */
static int parts(gw_proxy_t *px, const json_t *c, int images, json_t **out)
{
    *out = NULL;
    if (c == NULL || json_is_null(c)) {
        *out = json_string("");
        return 0;
    }
    if (json_is_string(c)) {
        *out = json_incref((json_t *)c);
        return 0;
    }
    if (!json_is_array(c))
        return gw_tr_invalid(px, "messages", "message content must be a string or an array of parts");
    json_t *a = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p) {
        const char *t = gw_tr_str(p, "type");
        if (is_str(t, "text") && gw_tr_str(p, "text") != NULL) {
            json_array_append_new(a, json_pack("{s:s,s:O}", "type", "text", "text",
                                               json_object_get(p, "text")));
        } else if (images && is_str(t, "image_url")) {
            json_t *iu = json_object_get(p, "image_url");
            /* OpenAI also accepts the URL as a bare string. */
            const char *url = json_is_string(iu) ? json_string_value(iu) : gw_tr_str(iu, "url");
            if (url == NULL) {
                json_decref(a);
                return gw_tr_invalid(px, "messages", "image_url parts need a url");
            }
            json_t *img = json_pack("{s:s}", "url", url);
            if (gw_tr_str(iu, "detail") != NULL)
                json_object_set(img, "detail", json_object_get(iu, "detail"));
            json_array_append_new(a, json_pack("{s:s,s:o}", "type", "image_url", "image_url", img));
        } else {
            json_decref(a);
            return gw_tr_invalid(px, "messages",
                       images ? "content part type not supported by cohere (text and image_url)"
                              : "content parts must be text for cohere");
        }
    }
    *out = a;
    return 0;
}

static int assistant_message(gw_proxy_t *px, const json_t *m, json_t *msgs)
{
    sl_buf_t text;
    sl_buf_init(&text, 64u << 20);
    json_t *out = json_pack("{s:s}", "role", "assistant");
    int r = flat_text(px, json_object_get(m, "content"), &text);
    json_t *calls = json_object_get(m, "tool_calls");
    json_t *cc = json_array();
    size_t k;
    json_t *tc;
    json_array_foreach(calls, k, tc) {
        if (r != 0)
            break;
        json_t *fn = json_object_get(tc, "function");
        json_t *args = json_object_get(fn, "arguments");
        if (gw_tr_str(tc, "id") == NULL || gw_tr_str(fn, "name") == NULL ||
            (args != NULL && !json_is_string(args) && !json_is_null(args))) {
            r = gw_tr_invalid(px, "messages", "tool_calls need an id, a function name and string arguments");
            break;
        }
        json_array_append_new(
            cc, json_pack("{s:O,s:s,s:{s:O,s:s}}", "id", json_object_get(tc, "id"), "type",
                          "function", "function", "name", json_object_get(fn, "name"),
                          "arguments", json_is_string(args) ? json_string_value(args) : "{}"));
    }
    if (r == 0) {
        json_t *t = json_stringn(text.base ? text.base : "", text.len);
        if (json_array_size(cc) > 0) {
            /* The text that comes with tool calls is Cohere's tool plan. */
            json_object_set_new(out, "tool_calls", cc);
            cc = NULL;
            if (text.len > 0)
                json_object_set_new(out, "tool_plan", t);
            else
                json_decref(t);
        } else {
            json_object_set_new(out, "content", t);
        }
        json_array_append(msgs, out);
    }
    json_decref(cc);
    json_decref(out);
    sl_buf_dispose(&text);
    return r;
}

static int convert_messages(gw_proxy_t *px, const json_t *in, json_t *out)
{
    json_t *src = json_object_get(in, "messages");
    if (!json_is_array(src) || json_array_size(src) == 0)
        return gw_tr_invalid(px, "messages", "messages must be a non-empty array");
    json_t *msgs = json_array();
    json_object_set_new(out, "messages", msgs);
    size_t i;
    json_t *m;
    json_array_foreach(src, i, m) {
        const char *role = gw_tr_str(m, "role");
        json_t *c = json_object_get(m, "content");
        json_t *pc = NULL;
        int r = 0;
        if (role == NULL) {
            r = gw_tr_invalid(px, "messages", "every message needs a role");
        } else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            r = parts(px, c, 0, &pc);
            if (r == 0)
                json_array_append_new(msgs,
                                      json_pack("{s:s,s:o}", "role", "system", "content", pc));
        } else if (strcmp(role, "user") == 0) {
            r = parts(px, c, 1, &pc);
            if (r == 0)
                json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "user", "content", pc));
        } else if (strcmp(role, "assistant") == 0) {
            r = assistant_message(px, m, msgs);
        } else if (strcmp(role, "tool") == 0) {
            const char *id = gw_tr_str(m, "tool_call_id");
            r = id != NULL ? parts(px, c, 0, &pc)
                           : gw_tr_invalid(px, "messages", "tool messages need a tool_call_id");
            if (r == 0)
                json_array_append_new(msgs, json_pack("{s:s,s:s,s:o}", "role", "tool",
                                                      "tool_call_id", id, "content", pc));
        } else {
            r = gw_tr_invalid(px, "messages", "message role not supported by cohere");
        }
        if (r != 0)
            return r;
    }
    return 0;
}

/* One OpenAI function tool as Cohere's (same shape; parameters required). */
static json_t *tool(const json_t *t, int *strict)
{
    json_t *fn = json_object_get(t, "function");
    const char *name = gw_tr_str(fn, "name");
    const char *type = gw_tr_str(t, "type");
    if (name == NULL || (type != NULL && strcmp(type, "function") != 0))
        return NULL;
    json_t *params = json_object_get(fn, "parameters");
    json_t *f = json_pack("{s:s}", "name", name);
    if (gw_tr_str(fn, "description") != NULL)
        json_object_set(f, "description", json_object_get(fn, "description"));
    json_object_set_new(f, "parameters",
                        json_is_object(params)
                            ? json_incref(params)
                            : json_pack("{s:s,s:{}}", "type", "object", "properties"));
    if (json_is_true(json_object_get(fn, "strict")))
        *strict = 1;
    return json_pack("{s:s,s:o}", "type", "function", "function", f);
}

static int convert_tools(gw_proxy_t *px, const json_t *in, json_t *out)
{
    json_t *tools = json_object_get(in, "tools");
    json_t *tc = json_object_get(in, "tool_choice");
    const char *only = NULL; /* a named tool_choice */
    const char *choice = NULL;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "required") == 0)
            choice = "REQUIRED";
        else if (strcmp(s, "none") == 0)
            choice = "NONE";
        else if (strcmp(s, "auto") != 0)
            return gw_tr_invalid(px, "tool_choice", "tool_choice must be auto, required, none or a function");
    } else if (json_is_object(tc)) {
        only = gw_tr_str(json_object_get(tc, "function"), "name");
        if (only == NULL)
            return gw_tr_invalid(px, "tool_choice", "tool_choice must name a function");
        /* Cohere cannot pin one tool: offer only that one, and require a call. */
        choice = "REQUIRED";
    } else if (tc != NULL && !json_is_null(tc)) {
        return gw_tr_invalid(px, "tool_choice", "tool_choice must be auto, required, none or a function");
    }
    if (tools == NULL || json_is_null(tools) ||
        (json_is_array(tools) && json_array_size(tools) == 0)) {
        if (only != NULL)
            return gw_tr_invalid(px, "tool_choice", "tool_choice names a function that is not in tools");
        return 0; /* Cohere refuses tool_choice without tools */
    }
    if (!json_is_array(tools))
        return gw_tr_invalid(px, "tools", "tools must be an array");
    json_t *ct = json_array();
    int strict = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_t *c = tool(t, &strict);
        if (c == NULL) {
            json_decref(ct);
            return gw_tr_invalid(px, "tools", "tools must be functions with a name");
        }
        if (only != NULL && strcmp(gw_tr_str(json_object_get(c, "function"), "name"), only) != 0)
            json_decref(c);
        else
            json_array_append_new(ct, c);
    }
    if (json_array_size(ct) == 0) {
        json_decref(ct);
        return gw_tr_invalid(px, "tool_choice", "tool_choice names a function that is not in tools");
    }
    json_object_set_new(out, "tools", ct);
    if (strict)
        json_object_set_new(out, "strict_tools", json_true());
    if (choice != NULL)
        json_object_set_new(out, "tool_choice", json_string(choice));
    return 0;
}

static int convert_format(gw_proxy_t *px, const json_t *in, json_t *out)
{
    json_t *rf = json_object_get(in, "response_format");
    if (rf == NULL || json_is_null(rf))
        return 0;
    const char *t = gw_tr_str(rf, "type");
    if (is_str(t, "text")) {
        json_object_set_new(out, "response_format", json_pack("{s:s}", "type", "text"));
    } else if (is_str(t, "json_object")) {
        json_object_set_new(out, "response_format", json_pack("{s:s}", "type", "json_object"));
    } else if (is_str(t, "json_schema")) {
        json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        json_t *f = json_pack("{s:s}", "type", "json_object");
        if (json_is_object(schema))
            json_object_set(f, "json_schema", schema);
        json_object_set_new(out, "response_format", f);
    } else {
        return gw_tr_invalid(px, "response_format", "response_format type must be text, json_object or "
                                          "json_schema");
    }
    return 0;
}

static int set_if(json_t *out, const char *to, const json_t *in, const char *from)
{
    json_t *v = json_object_get(in, from);
    if (v == NULL || json_is_null(v))
        return 0;
    json_object_set(out, to, v);
    return 1;
}

static json_t *chat_request(gw_proxy_t *px, int *err)
{
    const json_t *in = px->body;
    json_t *out = json_object();
    int r = 0;
    set_if(out, "model", in, "model");
    json_t *n = json_object_get(in, "n");
    if (json_is_integer(n) && json_integer_value(n) != 1)
        r = gw_tr_invalid(px, "n", "cohere returns one choice: n must be 1");
    if (r == 0)
        r = convert_messages(px, in, out);
    if (r == 0)
        r = convert_tools(px, in, out);
    if (r == 0)
        r = convert_format(px, in, out);
    if (!set_if(out, "max_tokens", in, "max_completion_tokens"))
        set_if(out, "max_tokens", in, "max_tokens");
    static const char *const same[] = {"temperature", "seed", "frequency_penalty",
                                       "presence_penalty"};
    for (size_t i = 0; i < SL_ARRAY_SIZE(same); i++)
        set_if(out, same[i], in, same[i]);
    set_if(out, "p", in, "top_p");
    set_if(out, "k", in, "top_k");
    json_t *stop = json_object_get(in, "stop");
    if (json_is_string(stop))
        json_object_set_new(out, "stop_sequences", json_pack("[O]", stop));
    else if (json_is_array(stop) && json_array_size(stop) > 0)
        json_object_set(out, "stop_sequences", stop);
    if (px->stream)
        json_object_set_new(out, "stream", json_true());
    if (r != 0) {
        json_decref(out);
        *err = r;
        return NULL;
    }
    return out;
}

/* ---- embed request --------------------------------------------------------- */

static json_t *embed_request(gw_proxy_t *px, int *err)
{
    const json_t *in = px->body;
    json_t *input = json_object_get(in, "input");
    json_t *texts;
    *err = 0;
    if (json_is_string(input)) {
        texts = json_pack("[O]", input);
    } else if (json_is_array(input) && json_array_size(input) > 0) {
        size_t i;
        json_t *v;
        json_array_foreach(input, i, v) {
            if (!json_is_string(v)) {
                *err = gw_tr_invalid(px, "input", "cohere embeds text: input must be a string or an array "
                                        "of strings (no token arrays)");
                return NULL;
            }
        }
        texts = json_incref(input);
    } else {
        *err = gw_tr_invalid(px, "input", "input must be a string or a non-empty array of strings");
        return NULL;
    }
    const char *enc = gw_tr_str(in, "encoding_format");
    json_t *encv = json_object_get(in, "encoding_format");
    if ((encv != NULL && !json_is_null(encv) && enc == NULL) ||
        (enc != NULL && strcmp(enc, "float") != 0 && strcmp(enc, "base64") != 0)) {
        json_decref(texts);
        *err = gw_tr_invalid(px, "encoding_format", "encoding_format must be float or base64");
        return NULL;
    }
    sl_str_t it = sl_str_trim(gw_proxy_option(px, "cohere-input-type"));
    if (it.len > 0 && !gw_tr_token_ok(it)) {
        json_decref(texts);
        *err = gw_tr_invalid(px, "x-sluice-cohere-input-type",
                   "x-sluice-cohere-input-type must be a Cohere input type, e.g. search_query");
        return NULL;
    }
    json_t *out = json_object();
    set_if(out, "model", in, "model");
    json_object_set_new(out, "texts", texts);
    json_object_set_new(out, "input_type",
                        it.len > 0 ? json_stringn(it.base, it.len)
                                   : json_string(DEFAULT_INPUT_TYPE));
    json_object_set_new(out, "embedding_types", json_pack("[s]", "float"));
    set_if(out, "output_dimension", in, "dimensions");
    return out;
}

static int build_request(gw_proxy_t *px)
{
    state(px);
    if (px->endpoint != GW_EP_CHAT && px->endpoint != GW_EP_EMBEDDINGS) {
        px->error_message = "cohere serves chat completions and embeddings only";
        return SL_EUNSUPPORTED;
    }
    if (px->body == NULL)
        return gw_tr_invalid(px, NULL, "request body must be a JSON object");
    sl_str_t base;
    int r = gw_tr_base_url(px, &base);
    if (r != 0)
        return r;
    int chat = px->endpoint == GW_EP_CHAT;
    gw_tr_set_url(px, base, chat ? "/chat" : "/embed");
    gw_req_t *req = px->req;
    gw_tr_headers_init(px, req->nheaders + 2);
    gw_tr_forward_headers(px, 1);
    gw_tr_header_add(px, SL_STRLIT("Content-Type"), SL_STRLIT("application/json"));
    gw_tr_auth_header(px);
    json_t *body = chat ? chat_request(px, &r) : embed_request(px, &r);
    if (body == NULL)
        return r;
    r = gw_tr_set_body(px, body);
    json_decref(body);
    return r;
}

/* ---- answers --------------------------------------------------------------- */

/* A token count: Cohere sends integers, and floats in billed_units. */
static int count_at(const json_t *o, const char *k, long long *out)
{
    json_t *v = json_object_get(o, k);
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        *out = i < 0 ? 0 : (long long)i;
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        *out = d > 0 ? (d < 1e15 ? (long long)d : (long long)1e15) : 0;
        return 1;
    }
    return 0;
}

/* Cohere usage into px->usage: the tokens the model saw, else the billed ones. */
static void take_usage(gw_proxy_t *px, const json_t *u)
{
    if (!json_is_object(u))
        return;
    const json_t *tok = json_object_get(u, "tokens");
    const json_t *billed = json_object_get(u, "billed_units");
    gw_usage_t *g = &px->usage;
    long long v;
    if (count_at(tok, "input_tokens", &v) || count_at(billed, "input_tokens", &v))
        g->prompt_tokens = v;
    if (count_at(tok, "output_tokens", &v) || count_at(billed, "output_tokens", &v))
        g->completion_tokens = v;
    g->set = 1;
}

/* NULL for ERROR and TIMEOUT (the generation failed); "stop" for unknown ones. */
static const char *finish_reason(const char *f)
{
    if (f == NULL)
        return "stop";
    if (strcmp(f, "ERROR") == 0 || strcmp(f, "TIMEOUT") == 0)
        return NULL;
    if (strcmp(f, "MAX_TOKENS") == 0)
        return "length";
    if (strcmp(f, "TOOL_CALL") == 0)
        return "tool_calls";
    return "stop"; /* COMPLETE, STOP_SEQUENCE */
}

/* A failed generation: the error the client gets, and its code. */
static int generation_failed(gw_proxy_t *px, const char *fin, const char *msg)
{
    int timeout = is_str(fin, "TIMEOUT");
    px->error_message = sl_arena_printf(&px->req->arena, "cohere: %s",
                                        msg && msg[0] ? msg
                                        : timeout     ? "the generation timed out"
                                                      : "the generation failed");
    return timeout ? SL_EUPTIMEOUT : SL_EUPSTREAM;
}

/* Cohere tool call arguments as the string OpenAI wants. */
static json_t *arguments(gw_proxy_t *px, const json_t *fn)
{
    json_t *a = json_object_get(fn, "arguments");
    if (json_is_string(a))
        return json_incref(a);
    if (a == NULL || json_is_null(a))
        return json_string("{}");
    sl_str_t s = gw_tr_dump(px, a);
    return s.len > 0 ? json_stringn(s.base, s.len) : json_string("{}");
}

static json_t *chat_answer(gw_proxy_t *px, const json_t *a)
{
    const json_t *m = json_object_get(a, "message");
    sl_buf_t text;
    sl_buf_init(&text, 64u << 20);
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(m, "content"), i, b) {
        const char *t = gw_tr_str(b, "type");
        /* thinking blocks have no OpenAI form */
        if ((t == NULL || strcmp(t, "text") == 0) && gw_tr_str(b, "text") != NULL &&
            sl_buf_append_str(&text, sl_str_c(gw_tr_str(b, "text"))) != 0)
            break;
    }
    json_t *calls = json_array();
    json_t *tc;
    json_array_foreach(json_object_get(m, "tool_calls"), i, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *id = gw_tr_str(tc, "id"), *name = gw_tr_str(fn, "name");
        json_t *c = json_pack("{s:s,s:s,s:{s:s}}", "id", id ? id : "", "type", "function",
                              "function", "name", name ? name : "");
        json_object_set_new(json_object_get(c, "function"), "arguments", arguments(px, fn));
        json_array_append_new(calls, c);
    }
    const char *plan = gw_tr_str(m, "tool_plan");
    if (text.len == 0 && plan != NULL && json_array_size(calls) > 0)
        (void)sl_buf_append_str(&text, sl_str_c(plan)); /* capped like the text itself */
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
    const char *fin = finish_reason(gw_tr_str(a, "finish_reason"));
    return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}],s:o}", "id",
                     gw_tr_str(a, "id") ? gw_tr_str(a, "id") : px->tr.id, "object",
                     "chat.completion", "created", (json_int_t)px->tr.created, "model",
                     px->tr.model, "choices", "index", 0, "message", msg, "logprobs",
                     "finish_reason", fin ? fin : "stop", "usage", gw_tr_usage_to_openai(px));
}

static json_t *embed_answer(gw_proxy_t *px, const json_t *a)
{
    json_t *e = json_object_get(a, "embeddings");
    /* embeddings_by_type ({"float":[...]}), or the older embeddings_floats ([...]) */
    json_t *vecs = json_is_array(e) ? e : json_object_get(e, "float");
    if (!json_is_array(vecs))
        return NULL;
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
            return NULL;
        }
        json_array_append_new(data, json_pack("{s:s,s:I,s:o}", "object", "embedding", "index",
                                              (json_int_t)i, "embedding", emb));
    }
    long long in = 0;
    count_at(json_object_get(json_object_get(a, "meta"), "billed_units"), "input_tokens", &in);
    gw_tr_ids(px);
    return json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data", data, "model",
                     px->tr.model, "usage", "prompt_tokens", (json_int_t)in, "total_tokens",
                     (json_int_t)in);
}

/* Cohere's error text: {"message"} or {"id","message"}; tolerant of other shapes. */
static const char *error_message(const json_t *a)
{
    const char *m = gw_tr_str(a, "message");
    if (m == NULL)
        m = gw_tr_str(a, "error");
    if (m == NULL)
        m = gw_tr_str(json_object_get(a, "error"), "message");
    return m;
}

static int on_response(gw_proxy_t *px)
{
    json_t *a = gw_tr_parse_resp(px);
    int r;
    if (px->up.status < 200 || px->up.status >= 300) {
        r = gw_tr_respond_error(px, error_message(a), NULL, NULL);
        json_decref(a);
        return r;
    }
    if (!json_is_object(a)) {
        json_decref(a);
        return SL_EUPPROTO;
    }
    json_t *o = NULL;
    if (px->endpoint == GW_EP_EMBEDDINGS) {
        o = embed_answer(px, a);
    } else if (json_is_object(json_object_get(a, "message"))) {
        const char *fin = gw_tr_str(a, "finish_reason");
        if (fin != NULL && finish_reason(fin) == NULL) {
            gw_tr_note_error(px); /* the raw answer, for the log */
            r = generation_failed(px, fin, error_message(a));
            json_decref(a);
            return r;
        }
        o = chat_answer(px, a);
    }
    json_decref(a);
    return o ? gw_tr_respond_json(px, o) : SL_EUPPROTO;
}

/* ---- streams --------------------------------------------------------------- */

typedef gw_tr_feed_t feed_t;

static int send_role(feed_t *f)
{
    return gw_tr_feed_role(f, &state(f->px)->role_sent);
}

static int emit_text(feed_t *f, const char *text)
{
    if (text == NULL || text[0] == '\0')
        return 0;
    json_t *delta;
    json_t *c = gw_tr_chunk_new(&delta);
    json_object_set_new(delta, "content", json_string(text));
    return gw_tr_feed_emit(f, c);
}

/* delta.message.<key>; tool_calls may come as an object or a one-element array. */
static json_t *delta_message(const json_t *ev, const char *key)
{
    json_t *v = json_object_get(json_object_get(json_object_get(ev, "delta"), "message"), key);
    return json_is_array(v) ? json_array_get(v, 0) : v;
}

/* The OpenAI tool index of a tool-call event; -1 when no call is open. */
static int tool_index(co_state_t *s, const json_t *ev)
{
    json_t *ix = json_object_get(ev, "index");
    if (json_is_integer(ix) && json_integer_value(ix) >= 0 &&
        json_integer_value(ix) < MAX_CALLS && s->tool_of_index[json_integer_value(ix)] > 0)
        return s->tool_of_index[json_integer_value(ix)] - 1;
    return s->last_tool;
}

static int tool_call_start(feed_t *f, const json_t *ev)
{
    co_state_t *s = state(f->px);
    const json_t *tc = delta_message(ev, "tool_calls");
    json_t *fn = json_object_get(tc, "function");
    if (!json_is_object(tc) || s->ntools >= MAX_CALLS) {
        f->px->stream_error_message = "cohere: a tool-call-start event without a tool call";
        return f->err = SL_EUPPROTO;
    }
    int t = s->ntools++;
    json_t *ix = json_object_get(ev, "index");
    if (json_is_integer(ix) && json_integer_value(ix) >= 0 && json_integer_value(ix) < MAX_CALLS)
        s->tool_of_index[json_integer_value(ix)] = t + 1;
    s->last_tool = t;
    const char *args = gw_tr_str(fn, "arguments");
    json_t *delta;
    json_t *c = gw_tr_chunk_new(&delta);
    json_object_set_new(delta, "tool_calls",
                        json_pack("[{s:i,s:s,s:s,s:{s:s,s:s}}]", "index", t, "id",
                                  gw_tr_str(tc, "id") ? gw_tr_str(tc, "id") : "", "type",
                                  "function", "function", "name",
                                  gw_tr_str(fn, "name") ? gw_tr_str(fn, "name") : "",
                                  "arguments", args ? args : ""));
    return gw_tr_feed_emit(f, c);
}

static int tool_call_delta(feed_t *f, const json_t *ev)
{
    int t = tool_index(state(f->px), ev);
    if (t < 0) {
        f->px->stream_error_message = "cohere: a tool-call-delta event before any tool-call-start";
        return f->err = SL_EUPPROTO;
    }
    const char *args = gw_tr_str(json_object_get(delta_message(ev, "tool_calls"), "function"),
                                 "arguments");
    if (args == NULL || args[0] == '\0')
        return 0;
    json_t *delta;
    json_t *c = gw_tr_chunk_new(&delta);
    json_object_set_new(delta, "tool_calls", json_pack("[{s:i,s:{s:s}}]", "index", t, "function",
                                                       "arguments", args));
    return gw_tr_feed_emit(f, c);
}

static int message_end(feed_t *f, const json_t *ev)
{
    gw_proxy_t *px = f->px;
    json_t *d = json_object_get(ev, "delta");
    const char *fin = gw_tr_str(d, "finish_reason");
    take_usage(px, json_object_get(d, "usage"));
    if (fin != NULL && finish_reason(fin) == NULL) {
        generation_failed(px, fin, gw_tr_str(d, "error"));
        px->stream_error_message = px->error_message;
        return f->err = is_str(fin, "TIMEOUT") ? SL_EUPTIMEOUT : SL_EUPSTREAM;
    }
    state(px)->ended = 1;
    if (send_role(f) != 0)
        return f->err;
    json_t *delta;
    json_t *c = gw_tr_chunk_new(&delta);
    json_object_set_new(json_array_get(json_object_get(c, "choices"), 0), "finish_reason",
                        json_string(finish_reason(fin)));
    if (gw_tr_feed_emit(f, c) != 0)
        return f->err;
    c = json_pack("{s:[],s:o}", "choices", "usage", gw_tr_usage_to_openai(px));
    if (gw_tr_feed_emit(f, c) != 0)
        return f->err;
    int r = gw_tr_emit_done(px, f->out);
    return r ? (f->err = r) : 0;
}

static int translate_event(feed_t *f, const char *type, const json_t *ev)
{
    gw_proxy_t *px = f->px;
    if (strcmp(type, "message-start") == 0) {
        gw_tr_ids(px);
        /* Chunks carry Cohere's id, unless some already went out with ours. */
        if (gw_tr_str(ev, "id") != NULL && !state(px)->role_sent)
            px->tr.id = sl_arena_printf(&px->req->arena, "%s", gw_tr_str(ev, "id"));
        return send_role(f);
    }
    if (strcmp(type, "message-end") == 0)
        return message_end(f, ev);
    int content = strcmp(type, "content-start") == 0 || strcmp(type, "content-delta") == 0;
    int plan = strcmp(type, "tool-plan-delta") == 0;
    int call_start = strcmp(type, "tool-call-start") == 0;
    int call_delta = strcmp(type, "tool-call-delta") == 0;
    /* content-end, tool-call-end, citation-start/-end, debug and later types: nothing */
    if (!content && !plan && !call_start && !call_delta)
        return 0;
    int r = send_role(f);
    if (r != 0)
        return r;
    if (content) {
        const json_t *c = delta_message(ev, "content");
        const char *t = gw_tr_str(c, "type");
        /* thinking content has no OpenAI form */
        return t == NULL || strcmp(t, "text") == 0 ? emit_text(f, gw_tr_str(c, "text")) : 0;
    }
    if (plan)
        return emit_text(f, gw_tr_str(json_object_get(json_object_get(ev, "delta"), "message"),
                                      "tool_plan"));
    return call_start ? tool_call_start(f, ev) : tool_call_delta(f, ev);
}

static int on_event(void *ud, const sl_sse_event_t *ev)
{
    feed_t *f = ud;
    gw_proxy_t *px = f->px;
    sl_str_t data = sl_str_trim(ev->data);
    /* A [DONE] before message-end ends nothing: stream_complete says so. */
    if (data.len == 0 || sl_str_eq(data, SL_STRLIT("[DONE]")))
        return 0;
    json_t *j = json_loadb(data.base, data.len, 0, NULL);
    /* The type is in the data ("type") and, from Cohere, in the event name too. */
    const char *type = gw_tr_str(j, "type");
    char name[64];
    if (type == NULL && ev->event.len > 0 && ev->event.len < sizeof(name)) {
        memcpy(name, ev->event.base, ev->event.len);
        name[ev->event.len] = '\0';
        type = name;
    }
    if (!json_is_object(j) || type == NULL) {
        json_decref(j);
        px->stream_error_message = "cohere: a stream event is not a JSON object with a type";
        f->err = SL_EUPPROTO;
        return 1;
    }
    translate_event(f, type, j);
    json_decref(j);
    /* After message-end the answer is whole: stop decoding (see on_stream_data). */
    return f->err != 0 || state(px)->ended;
}

/*
 * Whatever follows message-end (Cohere's closing [DONE]) is not decoded at
 * all, however the bytes are cut, so that nothing after a complete answer
 * can turn it into an error.
 */
static int on_stream_data(gw_proxy_t *px, const char *p, size_t n, sl_buf_t *out)
{
    if (state(px)->ended)
        return 0;
    feed_t f = {px, out, 0};
    int r = sl_sse_feed(&px->sse, p, n, on_event, &f);
    if (r == 0 || (f.err == 0 && state(px)->ended))
        return 0;
    if (f.err != 0)
        return f.err;
    return r == SL_ETOOBIG ? SL_EUPTOOBIG : SL_EUPSTREAM;
}

static int stream_complete(gw_proxy_t *px)
{
    return px->sse_done && state(px)->ended;
}

const gw_adapter_t gw_adapter_cohere = {
    .name = "cohere",
    .build_request = build_request,
    .response_mode = gw_tr_sse_response_mode,
    .on_stream_data = on_stream_data,
    .stream_complete = stream_complete,
    .on_response = on_response,
};
