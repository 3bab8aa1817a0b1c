/*
 * POST /v1/messages: Anthropic Messages requests in, Anthropic answers out,
 * whatever the provider behind (see anthropic_in.h). Field mappings follow
 * Anthropic's Messages API reference and OpenAI's chat completions
 * reference; stop reasons and usage are mapped the same way as in
 * anthropic.c, in the other direction.
 */
#include "dataplane/providers/anthropic_in.h"

#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "common/sse.h"
#include "dataplane/providers/translate.h"

#define MAX_TOOL_INDEX 128

/* ---- request: Anthropic -> OpenAI ---------------------------------------- */

/* An Anthropic image block as an OpenAI image_url part. */
static json_t *image_part(const json_t *block)
{
    json_t *src = json_object_get(block, "source");
    const char *type = gw_tr_str(src, "type");
    const char *url = NULL;
    char *owned = NULL;
    if (type != NULL && strcmp(type, "base64") == 0) {
        const char *mt = gw_tr_str(src, "media_type");
        const char *data = gw_tr_str(src, "data");
        if (mt == NULL || data == NULL)
            return NULL;
        size_t n = strlen(mt) + strlen(data) + 16;
        owned = sl_xmalloc(n);
        snprintf(owned, n, "data:%s;base64,%s", mt, data);
        url = owned;
    } else if (type != NULL && strcmp(type, "url") == 0) {
        url = gw_tr_str(src, "url");
    }
    json_t *part = url ? json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url", "url", url)
                       : NULL;
    sl_free(owned);
    return part;
}

/* Text of a string or of an array of text blocks; NULL for anything else. */
static json_t *text_of(const json_t *content)
{
    if (json_is_string(content))
        return json_incref((json_t *)content);
    if (!json_is_array(content))
        return NULL;
    json_t *parts = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *t = gw_tr_str(b, "type");
        if (t != NULL && strcmp(t, "text") == 0 && gw_tr_str(b, "text") != NULL) {
            json_array_append_new(parts, json_pack("{s:s,s:s}", "type", "text", "text",
                                                   gw_tr_str(b, "text")));
        } else if (t != NULL && strcmp(t, "image") == 0) {
            json_t *p = image_part(b);
            if (p == NULL) {
                json_decref(parts);
                return NULL;
            }
            json_array_append_new(parts, p);
        } else {
            json_decref(parts);
            return NULL;
        }
    }
    return parts;
}

static int convert_user(gw_proxy_t *px, const json_t *content, json_t *msgs)
{
    if (json_is_string(content)) {
        json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", "user", "content", content));
        return 0;
    }
    if (!json_is_array(content))
        return gw_tr_invalid(px, "messages", "message content must be a string or an array of blocks");
    json_t *parts = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *t = gw_tr_str(b, "type");
        if (t == NULL) {
            json_decref(parts);
            return gw_tr_invalid(px, "messages", "content block without a type");
        }
        if (strcmp(t, "tool_result") == 0) {
            const char *id = gw_tr_str(b, "tool_use_id");
            json_t *c = json_object_get(b, "content");
            json_t *tc = c ? text_of(c) : json_string("");
            if (id == NULL || tc == NULL) {
                json_decref(tc);
                json_decref(parts);
                return gw_tr_invalid(px, "messages", "tool_result needs tool_use_id and text content");
            }
            if (json_is_true(json_object_get(b, "is_error")) && json_is_string(tc)) {
                json_t *e = json_sprintf("Error: %s", json_string_value(tc));
                json_decref(tc);
                tc = e;
            }
            json_array_append_new(msgs, json_pack("{s:s,s:s,s:o}", "role", "tool", "tool_call_id",
                                                  id, "content", tc));
        } else if (strcmp(t, "text") == 0 && gw_tr_str(b, "text") != NULL) {
            json_array_append_new(parts, json_pack("{s:s,s:s}", "type", "text", "text",
                                                   gw_tr_str(b, "text")));
        } else if (strcmp(t, "image") == 0) {
            json_t *p = image_part(b);
            if (p == NULL) {
                json_decref(parts);
                return gw_tr_invalid(px, "messages", "image block needs a base64 or url source");
            }
            json_array_append_new(parts, p);
        } else {
            json_decref(parts);
            px->error_message = sl_arena_printf(
                &px->req->arena,
                "content block type '%.40s' can only be sent to the anthropic provider", t);
            px->error_param = "messages";
            return SL_EINVAL;
        }
    }
    if (json_array_size(parts) > 0)
        json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "user", "content", parts));
    else
        json_decref(parts);
    return 0;
}

static int convert_assistant(gw_proxy_t *px, const json_t *content, json_t *msgs)
{
    if (json_is_string(content)) {
        json_array_append_new(msgs,
                              json_pack("{s:s,s:O}", "role", "assistant", "content", content));
        return 0;
    }
    if (!json_is_array(content))
        return gw_tr_invalid(px, "messages", "message content must be a string or an array of blocks");
    sl_buf_t text;
    sl_buf_init(&text, 64u << 20);
    json_t *calls = json_array();
    size_t i;
    json_t *b;
    int r = 0;
    json_array_foreach(content, i, b) {
        const char *t = gw_tr_str(b, "type");
        if (t != NULL && strcmp(t, "text") == 0 && gw_tr_str(b, "text") != NULL) {
            if (sl_buf_append_str(&text, sl_str_c(gw_tr_str(b, "text"))) != 0)
                r = SL_ETOOBIG;
        } else if (t != NULL && strcmp(t, "tool_use") == 0) {
            const char *id = gw_tr_str(b, "id"), *name = gw_tr_str(b, "name");
            json_t *input = json_object_get(b, "input");
            if (id == NULL || name == NULL) {
                r = gw_tr_invalid(px, "messages", "tool_use needs id and name");
                break;
            }
            const char *args = input ? gw_tr_dump(px, input).base : "{}";
            json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type",
                                                   "function", "function", "name", name,
                                                   "arguments", args));
        }
        /* thinking and redacted_thinking blocks are the provider's own. */
    }
    if (r == 0) {
        json_t *m = json_pack("{s:s}", "role", "assistant");
        json_object_set_new(m, "content", text.len ? json_stringn(text.base, text.len)
                                                   : json_null());
        if (json_array_size(calls) > 0)
            json_object_set(m, "tool_calls", calls);
        json_array_append_new(msgs, m);
    }
    json_decref(calls);
    sl_buf_dispose(&text);
    return r;
}

static int convert_tools(gw_proxy_t *px, const json_t *in, json_t *out)
{
    json_t *tools = json_object_get(in, "tools");
    if (json_is_array(tools) && json_array_size(tools) > 0) {
        json_t *ot = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            const char *name = gw_tr_str(t, "name");
            json_t *schema = json_object_get(t, "input_schema");
            const char *type = gw_tr_str(t, "type");
            if (name == NULL || (type != NULL && strcmp(type, "custom") != 0) || schema == NULL) {
                json_decref(ot);
                return gw_tr_invalid(px, "tools",
                           "only custom tools (name, input_schema) can be sent to a "
                           "non-Anthropic provider");
            }
            json_t *fn = json_pack("{s:s,s:O}", "name", name, "parameters", schema);
            if (gw_tr_str(t, "description") != NULL)
                json_object_set(fn, "description", json_object_get(t, "description"));
            json_array_append_new(ot, json_pack("{s:s,s:o}", "type", "function", "function", fn));
        }
        json_object_set_new(out, "tools", ot);
    }
    json_t *tc = json_object_get(in, "tool_choice");
    if (json_is_object(tc)) {
        const char *type = gw_tr_str(tc, "type");
        if (type == NULL)
            return gw_tr_invalid(px, "tool_choice", "tool_choice needs a type");
        if (strcmp(type, "auto") == 0)
            json_object_set_new(out, "tool_choice", json_string("auto"));
        else if (strcmp(type, "any") == 0)
            json_object_set_new(out, "tool_choice", json_string("required"));
        else if (strcmp(type, "none") == 0)
            json_object_set_new(out, "tool_choice", json_string("none"));
        else if (strcmp(type, "tool") == 0 && gw_tr_str(tc, "name") != NULL)
            json_object_set_new(out, "tool_choice",
                                json_pack("{s:s,s:{s:s}}", "type", "function", "function", "name",
                                          gw_tr_str(tc, "name")));
        else
            return gw_tr_invalid(px, "tool_choice", "unknown tool_choice type");
        if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")))
            json_object_set_new(out, "parallel_tool_calls", json_false());
    }
    return 0;
}

int gw_anthropic_in_request(gw_proxy_t *px)
{
    json_t *in = px->body;
    json_t *msgs_in = json_object_get(in, "messages");
    if (!json_is_array(msgs_in))
        return gw_tr_invalid(px, "messages", "messages: an array of messages is required");
    json_t *mt = json_object_get(in, "max_tokens");
    if (!json_is_integer(mt) || json_integer_value(mt) < 1)
        return gw_tr_invalid(px, "max_tokens", "max_tokens: a positive integer is required");
    json_t *out = json_object();
    json_t *msgs = json_array();
    json_object_set_new(out, "messages", msgs);
    int r = 0;
    json_t *sys = json_object_get(in, "system");
    if (sys != NULL) {
        json_t *st = text_of(sys);
        if (st == NULL)
            r = gw_tr_invalid(px, "system", "system must be a string or an array of text blocks");
        else
            json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "system", "content", st));
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs_in, i, m) {
        if (r != 0)
            break;
        const char *role = gw_tr_str(m, "role");
        json_t *content = json_object_get(m, "content");
        if (role != NULL && strcmp(role, "user") == 0)
            r = convert_user(px, content, msgs);
        else if (role != NULL && strcmp(role, "assistant") == 0)
            r = convert_assistant(px, content, msgs);
        else
            r = gw_tr_invalid(px, "messages", "message roles must be user or assistant");
    }
    if (r == 0)
        r = convert_tools(px, in, out);
    if (r != 0) {
        json_decref(out);
        return r;
    }
    static const char *const same[] = {"model", "max_tokens", "temperature", "top_p", "stream"};
    for (size_t k = 0; k < SL_ARRAY_SIZE(same); k++) {
        json_t *v = json_object_get(in, same[k]);
        if (v != NULL)
            json_object_set(out, same[k], v);
    }
    json_t *stop = json_object_get(in, "stop_sequences");
    if (json_is_array(stop) && json_array_size(stop) > 0)
        json_object_set(out, "stop", stop);
    const char *user = gw_tr_str(json_object_get(in, "metadata"), "user_id");
    if (user != NULL)
        json_object_set_new(out, "user", json_string(user));
    px->stream = json_is_true(json_object_get(in, "stream"));
    if (px->stream) /* usage for message_delta, whatever the client asked */
        json_object_set_new(out, "stream_options", json_pack("{s:b}", "include_usage", 1));
    px->include_usage = 0;
    px->tr.client_body = in; /* still released by the arena defer of parse_body */
    px->body = out;
    sl_arena_defer(&px->req->arena, sl_json_decref_cb, out);
    px->body_dirty = 1;
    px->endpoint = GW_EP_CHAT;
    return 0;
}

/* ---- answers: OpenAI -> Anthropic ------------------------------------------ */

static const char *stop_reason(const char *finish)
{
    if (finish == NULL || strcmp(finish, "stop") == 0)
        return "end_turn";
    if (strcmp(finish, "length") == 0)
        return "max_tokens";
    if (strcmp(finish, "tool_calls") == 0 || strcmp(finish, "function_call") == 0)
        return "tool_use";
    if (strcmp(finish, "content_filter") == 0)
        return "refusal";
    return "end_turn";
}

static json_t *usage_obj(const gw_proxy_t *px)
{
    const gw_usage_t *u = &px->usage;
    long long input = u->prompt_tokens - u->cached_tokens - u->cache_write_tokens;
    return json_pack("{s:I,s:I,s:I,s:I}", "input_tokens", (json_int_t)(input > 0 ? input : 0),
                     "output_tokens", (json_int_t)u->completion_tokens,
                     "cache_read_input_tokens", (json_int_t)u->cached_tokens,
                     "cache_creation_input_tokens", (json_int_t)u->cache_write_tokens);
}

json_t *gw_anthropic_in_response(gw_proxy_t *px, const json_t *o)
{
    json_t *choice = json_array_get(json_object_get(o, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    if (!json_is_object(msg))
        return NULL;
    json_t *content = json_array();
    const char *text = gw_tr_str(msg, "content");
    if (text != NULL && text[0] != '\0')
        json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", text));
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *args = gw_tr_str(fn, "arguments");
        json_t *input = args ? json_loads(args, JSON_DECODE_ANY, NULL) : NULL;
        if (!json_is_object(input)) {
            json_decref(input);
            input = json_object();
        }
        json_array_append_new(content, json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id",
                                                 gw_tr_str(tc, "id") ? gw_tr_str(tc, "id") : "",
                                                 "name",
                                                 gw_tr_str(fn, "name") ? gw_tr_str(fn, "name") : "",
                                                 "input", input));
    }
    const char *id = gw_tr_str(o, "id");
    const char *model = gw_tr_str(o, "model");
    gw_tr_ids(px);
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n,s:o}", "id", id ? id : px->tr.id, "type",
                     "message", "role", "assistant", "model", model ? model : px->tr.model,
                     "content", content, "stop_reason",
                     stop_reason(gw_tr_str(choice, "finish_reason")), "stop_sequence", "usage",
                     usage_obj(px));
}

const char *gw_anthropic_error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 529: return "overloaded_error";
    default: return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

json_t *gw_anthropic_in_error(int status, const char *message)
{
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                     gw_anthropic_error_type(status), "message", message);
}

/* ---- streams: OpenAI chunks -> Anthropic events ------------------------------- */

typedef struct {
    int started;
    int open;            /* index of the open content block, or -1 */
    int next;            /* next block index */
    int open_text;       /* the open block is a text block */
    int tool_block[MAX_TOOL_INDEX]; /* OpenAI tool call index -> block index + 1 */
    const char *stop;    /* static */
} ain_stream_t;

static ain_stream_t *stream_state(gw_proxy_t *px)
{
    if (px->tr.client == NULL) {
        ain_stream_t *s = SL_ARENA_NEW(&px->req->arena, ain_stream_t);
        memset(s, 0, sizeof(*s));
        s->open = -1;
        px->tr.client = s;
    }
    return px->tr.client;
}

static int event(gw_proxy_t *px, sl_buf_t *out, const char *type, json_t *data)
{
    if (data == NULL)
        return SL_EINTERNAL;
    /* "type" first, as Anthropic writes it. */
    json_t *o = json_pack("{s:s}", "type", type);
    json_object_update(o, data);
    json_decref(data);
    sl_str_t s = gw_tr_dump(px, o);
    json_decref(o);
    return sl_sse_encode(out, sl_str_c(type), s) == 0 ? 0 : SL_EUPTOOBIG;
}

static int start(gw_proxy_t *px, ain_stream_t *s, sl_buf_t *out)
{
    if (s->started)
        return 0;
    s->started = 1;
    gw_tr_ids(px);
    json_t *msg = json_pack("{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:i,s:i}}", "id", px->tr.id, "type",
                            "message", "role", "assistant", "model", px->tr.model, "content",
                            "stop_reason", "stop_sequence", "usage", "input_tokens", 0,
                            "output_tokens", 0);
    return event(px, out, "message_start", json_pack("{s:o}", "message", msg));
}

static int close_block(gw_proxy_t *px, ain_stream_t *s, sl_buf_t *out)
{
    if (s->open < 0)
        return 0;
    int idx = s->open;
    s->open = -1;
    s->open_text = 0;
    return event(px, out, "content_block_stop", json_pack("{s:i}", "index", idx));
}

static int open_block(gw_proxy_t *px, ain_stream_t *s, sl_buf_t *out, json_t *block)
{
    int r = close_block(px, s, out);
    s->open = s->next++;
    return r ? r
             : event(px, out, "content_block_start",
                     json_pack("{s:i,s:o}", "index", s->open, "content_block", block));
}

static int on_tool_delta(gw_proxy_t *px, ain_stream_t *s, sl_buf_t *out, const json_t *tc)
{
    json_t *ix = json_object_get(tc, "index");
    json_int_t k = json_is_integer(ix) ? json_integer_value(ix) : 0;
    if (k < 0 || k >= MAX_TOOL_INDEX)
        return SL_EUPPROTO;
    json_t *fn = json_object_get(tc, "function");
    int r = 0;
    if (s->tool_block[k] == 0) {
        const char *id = gw_tr_str(tc, "id"), *name = gw_tr_str(fn, "name");
        r = open_block(px, s, out,
                       json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id", id ? id : "",
                                 "name", name ? name : "", "input"));
        s->tool_block[k] = s->open + 1;
    }
    const char *args = gw_tr_str(fn, "arguments");
    if (r == 0 && args != NULL && args[0] != '\0')
        r = event(px, out, "content_block_delta",
                  json_pack("{s:i,s:{s:s,s:s}}", "index", s->tool_block[k] - 1, "delta", "type",
                            "input_json_delta", "partial_json", args));
    return r;
}

int gw_anthropic_in_chunk(gw_proxy_t *px, json_t *chunk, sl_buf_t *out)
{
    ain_stream_t *s = stream_state(px);
    int r = start(px, s, out);
    json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    json_t *delta = json_object_get(choice, "delta");
    const char *text = gw_tr_str(delta, "content");
    if (r == 0 && text != NULL && text[0] != '\0') {
        if (!s->open_text) {
            r = open_block(px, s, out, json_pack("{s:s,s:s}", "type", "text", "text", ""));
            s->open_text = 1;
        }
        if (r == 0)
            r = event(px, out, "content_block_delta",
                      json_pack("{s:i,s:{s:s,s:s}}", "index", s->open, "delta", "type",
                                "text_delta", "text", text));
    }
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(delta, "tool_calls"), i, tc) {
        if (r != 0)
            break;
        r = on_tool_delta(px, s, out, tc);
    }
    const char *fin = gw_tr_str(choice, "finish_reason");
    if (fin != NULL)
        s->stop = stop_reason(fin);
    json_decref(chunk);
    return r;
}

int gw_anthropic_in_done(gw_proxy_t *px, sl_buf_t *out)
{
    ain_stream_t *s = stream_state(px);
    int r = start(px, s, out);
    if (r == 0)
        r = close_block(px, s, out);
    if (r == 0)
        r = event(px, out, "message_delta",
                  json_pack("{s:{s:s,s:n},s:o}", "delta", "stop_reason",
                            s->stop ? s->stop : "end_turn", "stop_sequence", "usage",
                            usage_obj(px)));
    if (r == 0)
        r = event(px, out, "message_stop", json_object());
    return r;
}

int gw_anthropic_in_stream_error(gw_proxy_t *px, const char *message, int status, sl_buf_t *out)
{
    json_t *e = gw_anthropic_in_error(status, message);
    json_object_del(e, "type");
    return event(px, out, "error", e);
}
