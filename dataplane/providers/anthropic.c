/*
 * Anthropic Messages adapter. OpenAI chat requests become Messages
 * requests (system prompt, multi-turn, images, tools, tool results), and
 * Messages answers, errors and streams (message_start, content_block_*,
 * input_json_delta, message_delta, message_stop, ping, error) become OpenAI
 * answers and chunks as they arrive. A /v1/messages client routed here is
 * passed through untouched: its bytes out, Anthropic's bytes back.
 */
#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "common/sse.h"
#include "dataplane/providers/adapter.h"
#include "dataplane/providers/jtok.h"
#include "dataplane/providers/translate.h"

#define DEFAULT_MAX_TOKENS 4096
#define DEFAULT_VERSION "2023-06-01"
#define MAX_BLOCKS 256

typedef struct {
    int passthrough;
    int ntools;
    int tool_of_block[MAX_BLOCKS]; /* block index -> OpenAI tool index + 1; 0: not a tool */
} anth_state_t;

static anth_state_t *state(gw_proxy_t *px)
{
    return gw_tr_state(px, sizeof(anth_state_t));
}

/* ---- request --------------------------------------------------------------- */

/* An OpenAI image_url part as an Anthropic image block. */
static json_t *image_block(gw_proxy_t *px, const json_t *part)
{
    const char *url = gw_tr_str(json_object_get(part, "image_url"), "url");
    if (url == NULL)
        return NULL;
    if (strncmp(url, "data:", 5) == 0) {
        const char *semi = strchr(url, ';');
        const char *comma = strchr(url, ',');
        if (semi == NULL || comma == NULL || semi > comma || strncmp(semi, ";base64,", 8) != 0)
            return NULL;
        char *mt = sl_arena_printf(&px->req->arena, "%.*s", (int)(semi - url - 5), url + 5);
        return json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", "image", "source", "type", "base64",
                         "media_type", mt, "data", comma + 1);
    }
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type", "url", "url", url);
}

/* OpenAI message content (string or parts) as Anthropic blocks. */
static int content_blocks(gw_proxy_t *px, const json_t *c, json_t *blocks)
{
    if (json_is_string(c)) {
        if (json_string_length(c) > 0)
            json_array_append_new(blocks, json_pack("{s:s,s:O}", "type", "text", "text", c));
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
        if (t != NULL && strcmp(t, "text") == 0 && gw_tr_str(p, "text") != NULL) {
            json_array_append_new(blocks, json_pack("{s:s,s:O}", "type", "text", "text",
                                                    json_object_get(p, "text")));
        } else if (t != NULL && strcmp(t, "image_url") == 0) {
            json_t *b = image_block(px, p);
            if (b == NULL)
                return gw_tr_invalid(px, "messages", "image_url must be an http(s) URL or a base64 data URL");
            json_array_append_new(blocks, b);
        } else {
            return gw_tr_invalid(px, "messages", "content part type not supported by anthropic");
        }
    }
    return 0;
}

/* Appends a turn, merging it into the previous one when the role repeats
 * (Anthropic wants turns to alternate; tool results join the user turn). */
static void add_turn(json_t *msgs, const char *role, json_t *blocks)
{
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    const char *lr = gw_tr_str(last, "role");
    if (last != NULL && lr != NULL && strcmp(lr, role) == 0) {
        json_array_extend(json_object_get(last, "content"), blocks);
        json_decref(blocks);
        return;
    }
    json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", role, "content", blocks));
}

static int convert_messages(gw_proxy_t *px, const json_t *in, json_t *out)
{
    json_t *msgs = json_array();
    json_t *system = json_array();
    json_object_set_new(out, "messages", msgs);
    size_t i;
    json_t *m;
    int r = 0;
    json_array_foreach(json_object_get(in, "messages"), i, m) {
        const char *role = gw_tr_str(m, "role");
        json_t *c = json_object_get(m, "content");
        json_t *blocks = json_array();
        if (role == NULL) {
            r = gw_tr_invalid(px, "messages", "every message needs a role");
        } else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            r = content_blocks(px, c, system);
        } else if (strcmp(role, "user") == 0) {
            r = content_blocks(px, c, blocks);
            if (r == 0 && json_array_size(blocks) > 0) {
                add_turn(msgs, "user", blocks);
                blocks = NULL;
            }
        } else if (strcmp(role, "assistant") == 0) {
            r = content_blocks(px, c, blocks);
            size_t k;
            json_t *tc;
            json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
                if (r != 0)
                    break;
                json_t *fn = json_object_get(tc, "function");
                const char *args = gw_tr_str(fn, "arguments");
                json_t *input = args && args[0] ? json_loads(args, 0, NULL) : json_object();
                if (!json_is_object(input) || gw_tr_str(tc, "id") == NULL ||
                    gw_tr_str(fn, "name") == NULL) {
                    json_decref(input);
                    r = gw_tr_invalid(px, "messages",
                            "tool_calls need an id, a name and arguments that are a JSON object");
                    break;
                }
                json_array_append_new(blocks, json_pack("{s:s,s:O,s:O,s:o}", "type", "tool_use",
                                                        "id", json_object_get(tc, "id"), "name",
                                                        json_object_get(fn, "name"), "input",
                                                        input));
            }
            if (r == 0 && json_array_size(blocks) > 0) {
                add_turn(msgs, "assistant", blocks);
                blocks = NULL;
            }
        } else if (strcmp(role, "tool") == 0) {
            const char *id = gw_tr_str(m, "tool_call_id");
            json_t *tr = json_array();
            if (id == NULL) {
                r = gw_tr_invalid(px, "messages", "tool messages need a tool_call_id");
            } else if ((r = content_blocks(px, c, tr)) == 0) {
                json_array_append_new(blocks, json_pack("{s:s,s:s,s:O}", "type", "tool_result",
                                                        "tool_use_id", id, "content", tr));
                add_turn(msgs, "user", blocks);
                blocks = NULL;
            }
            json_decref(tr);
        } else {
            r = gw_tr_invalid(px, "messages", "message role not supported by anthropic");
        }
        json_decref(blocks);
        if (r != 0)
            break;
    }
    if (r == 0 && json_array_size(system) > 0)
        json_object_set(out, "system", system);
    json_decref(system);
    if (r == 0 && json_array_size(msgs) == 0)
        r = gw_tr_invalid(px, "messages", "at least one user message is required");
    return r;
}

static int convert_tools(gw_proxy_t *px, const json_t *in, json_t *out)
{
    json_t *tools = json_object_get(in, "tools");
    if (json_is_array(tools) && json_array_size(tools) > 0) {
        json_t *at = json_array();
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            json_t *fn = json_object_get(t, "function");
            const char *name = gw_tr_str(fn, "name");
            if (name == NULL) {
                json_decref(at);
                return gw_tr_invalid(px, "tools", "tools must be functions with a name");
            }
            json_t *schema = json_object_get(fn, "parameters");
            json_t *a = json_pack("{s:s}", "name", name);
            json_object_set_new(a, "input_schema",
                                schema ? json_incref(schema)
                                       : json_pack("{s:s,s:{}}", "type", "object", "properties"));
            if (gw_tr_str(fn, "description") != NULL)
                json_object_set(a, "description", json_object_get(fn, "description"));
            json_array_append_new(at, a);
        }
        json_object_set_new(out, "tools", at);
    }
    json_t *tc = json_object_get(in, "tool_choice");
    json_t *choice = NULL;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        if (strcmp(s, "auto") == 0)
            choice = json_pack("{s:s}", "type", "auto");
        else if (strcmp(s, "required") == 0)
            choice = json_pack("{s:s}", "type", "any");
        else if (strcmp(s, "none") == 0)
            choice = json_pack("{s:s}", "type", "none");
        else
            return gw_tr_invalid(px, "tool_choice", "tool_choice must be auto, required, none or a function");
    } else if (json_is_object(tc)) {
        const char *name = gw_tr_str(json_object_get(tc, "function"), "name");
        if (name == NULL)
            return gw_tr_invalid(px, "tool_choice", "tool_choice must name a function");
        choice = json_pack("{s:s,s:s}", "type", "tool", "name", name);
    }
    if (json_is_false(json_object_get(in, "parallel_tool_calls")) &&
        json_object_get(out, "tools") != NULL) {
        if (choice == NULL)
            choice = json_pack("{s:s}", "type", "auto");
        json_object_set_new(choice, "disable_parallel_tool_use", json_true());
    }
    if (choice != NULL)
        json_object_set_new(out, "tool_choice", choice);
    return 0;
}

static json_t *to_anthropic(gw_proxy_t *px, int *err)
{
    const json_t *in = px->body;
    json_t *out = json_object();
    json_object_set(out, "model", json_object_get(in, "model"));
    json_t *mt = json_object_get(in, "max_completion_tokens");
    if (!json_is_integer(mt))
        mt = json_object_get(in, "max_tokens");
    json_object_set_new(out, "max_tokens",
                        json_integer(json_is_integer(mt) ? json_integer_value(mt)
                                                         : DEFAULT_MAX_TOKENS));
    int r = convert_messages(px, in, out);
    if (r == 0)
        r = convert_tools(px, in, out);
    static const char *const same[] = {"temperature", "top_p", "top_k", "stream"};
    for (size_t i = 0; r == 0 && i < SL_ARRAY_SIZE(same); i++) {
        json_t *v = json_object_get(in, same[i]);
        if (v != NULL && !json_is_null(v))
            json_object_set(out, same[i], v);
    }
    json_t *stop = json_object_get(in, "stop");
    if (json_is_string(stop))
        json_object_set_new(out, "stop_sequences", json_pack("[O]", stop));
    else if (json_is_array(stop) && json_array_size(stop) > 0)
        json_object_set(out, "stop_sequences", stop);
    const char *user = gw_tr_str(in, "user");
    if (user != NULL)
        json_object_set_new(out, "metadata", json_pack("{s:s}", "user_id", user));
    if (r != 0) {
        json_decref(out);
        *err = r;
        return NULL;
    }
    return out;
}

static int build_request(gw_proxy_t *px)
{
    anth_state_t *s = state(px);
    sl_str_t base;
    int r = gw_tr_base_url(px, &base);
    if (r != 0)
        return r;
    gw_tr_set_url(px, base, "/messages");
    gw_tr_headers_init(px, px->req->nheaders + 4);
    gw_tr_forward_headers(px, 1);
    gw_tr_header_add(px, SL_STRLIT("Content-Type"), SL_STRLIT("application/json"));
    sl_str_t ver = sl_str_trim(gw_proxy_option(px, "anthropic-version"));
    if (ver.len == 0)
        ver = sl_str_trim(gw_req_header(px->req, "anthropic-version"));
    gw_tr_header_add(px, SL_STRLIT("anthropic-version"),
                     ver.len ? ver : SL_STRLIT(DEFAULT_VERSION));
    sl_str_t beta = sl_str_trim(gw_proxy_option(px, "anthropic-beta"));
    if (beta.len == 0)
        beta = sl_str_trim(gw_req_header(px->req, "anthropic-beta"));
    if (beta.len > 0)
        gw_tr_header_add(px, SL_STRLIT("anthropic-beta"), beta);
    gw_tr_auth_header(px);
    if (px->client == GW_CLIENT_ANTHROPIC) {
        s->passthrough = 1; /* the client's own bytes */
        px->up_body = sl_buf_str(&px->req->body);
        return 0;
    }
    json_t *body = to_anthropic(px, &r);
    if (body == NULL)
        return r;
    r = gw_tr_set_body(px, body);
    json_decref(body);
    return r;
}

/* ---- answers ----------------------------------------------------------------- */

static const char *finish_reason(const char *stop)
{
    if (stop == NULL)
        return NULL;
    if (strcmp(stop, "max_tokens") == 0 || strcmp(stop, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp(stop, "tool_use") == 0)
        return "tool_calls";
    if (strcmp(stop, "refusal") == 0)
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn */
}

/* Anthropic usage into px->usage; fields absent from u are left alone. */
static void take_usage(gw_proxy_t *px, const json_t *u)
{
    if (!json_is_object(u))
        return;
    gw_usage_t *g = &px->usage;
    if (json_object_get(u, "input_tokens") != NULL) {
        g->cached_tokens = gw_tr_int(u, "cache_read_input_tokens");
        g->cache_write_tokens = gw_tr_int(u, "cache_creation_input_tokens");
        g->prompt_tokens = gw_tr_int(u, "input_tokens") + g->cached_tokens + g->cache_write_tokens;
    }
    if (json_object_get(u, "output_tokens") != NULL)
        g->completion_tokens = gw_tr_int(u, "output_tokens");
    g->set = 1;
}

/* Anthropic usage from a token view into px->usage (see take_usage). */
static void take_usage_view(gw_proxy_t *px, const gw_jview_t *v, int u)
{
    if (gw_jview_type(v, u) != GW_J_OBJECT)
        return;
    gw_usage_t *g = &px->usage;
    long long in = gw_jview_int(v, gw_jview_get(v, u, "input_tokens"));
    long long out = gw_jview_int(v, gw_jview_get(v, u, "output_tokens"));
    long long cr = gw_jview_int(v, gw_jview_get(v, u, "cache_read_input_tokens"));
    long long cw = gw_jview_int(v, gw_jview_get(v, u, "cache_creation_input_tokens"));
    g->cached_tokens = cr > 0 ? cr : 0;
    g->cache_write_tokens = cw > 0 ? cw : 0;
    g->prompt_tokens = (in > 0 ? in : 0) + g->cached_tokens + g->cache_write_tokens;
    g->completion_tokens = out > 0 ? out : 0;
    g->set = 1;
}

/*
 * A Messages answer written straight out as a chat completion, from a token
 * view of it: the same answer to_openai() builds, without building trees
 * (translation is on the request path of every non-streaming call).
 */
static int write_openai(gw_proxy_t *px, const gw_jview_t *v, sl_buf_t *out)
{
    int content = gw_jview_get(v, 0, "content");
    if (gw_jview_type(v, 0) != GW_J_OBJECT || gw_jview_type(v, content) != GW_J_ARRAY)
        return SL_EUPPROTO;
    take_usage_view(px, v, gw_jview_get(v, 0, "usage"));
    gw_tr_ids(px);
    int r = 0, ntext = 0, ncalls = 0;
#define PUT(s) (r = r ? r : sl_buf_append_str(out, SL_STRLIT(s)) ? SL_EUPTOOBIG : 0)
    int id = gw_jview_get(v, 0, "id"), model = gw_jview_get(v, 0, "model");
    PUT("{\"id\":");
    if (r == 0)
        r = gw_jview_type(v, id) == GW_J_STRING ? gw_jview_put_string(v, id, out)
                                                 : sl_json_append_string(out, sl_str_c(px->tr.id));
    char created[64];
    snprintf(created, sizeof(created), ",\"object\":\"chat.completion\",\"created\":%lld,",
             px->tr.created);
    r = r ? r : sl_buf_append_str(out, sl_str_c(created)) ? SL_EUPTOOBIG : 0;
    PUT("\"model\":");
    if (r == 0)
        r = gw_jview_type(v, model) == GW_J_STRING
                ? gw_jview_put_string(v, model, out)
                : sl_json_append_string(out, sl_str_c(px->tr.model));
    PUT(",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    /* The text blocks, joined: their escaped contents go one after another. */
    for (int b = gw_jview_first(v, content); r == 0 && b >= 0; b = gw_jview_next(v, b))
        if (gw_jview_eq(v, gw_jview_get(v, b, "type"), "text")) {
            int t = gw_jview_get(v, b, "text");
            if (gw_jview_type(v, t) != GW_J_STRING)
                continue;
            if (ntext++ == 0)
                PUT("\"");
            if (r == 0)
                r = gw_jview_put_chars(v, t, out);
        }
    for (int b = gw_jview_first(v, content); b >= 0; b = gw_jview_next(v, b))
        ncalls += gw_jview_eq(v, gw_jview_get(v, b, "type"), "tool_use");
    if (ntext > 0)
        PUT("\"");
    else if (ncalls > 0)
        PUT("null");
    else
        PUT("\"\"");
    if (ncalls > 0) {
        PUT(",\"tool_calls\":[");
        int k = 0;
        for (int b = gw_jview_first(v, content); r == 0 && b >= 0; b = gw_jview_next(v, b)) {
            if (!gw_jview_eq(v, gw_jview_get(v, b, "type"), "tool_use"))
                continue;
            int tid = gw_jview_get(v, b, "id"), name = gw_jview_get(v, b, "name");
            int input = gw_jview_get(v, b, "input");
            if (gw_jview_type(v, tid) != GW_J_STRING || gw_jview_type(v, name) != GW_J_STRING)
                return SL_EUPPROTO;
            if (k++ > 0)
                PUT(",");
            PUT("{\"id\":");
            r = r ? r : gw_jview_put_string(v, tid, out);
            PUT(",\"type\":\"function\",\"function\":{\"name\":");
            r = r ? r : gw_jview_put_string(v, name, out);
            PUT(",\"arguments\":");
            /* The input object's own text, as a string (tokenized strictly above). */
            if (r == 0)
                r = sl_json_append_string(out, gw_jview_type(v, input) == GW_J_OBJECT
                                                    ? gw_jview_raw(v, input)
                                                    : SL_STRLIT("{}"));
            PUT("}}");
        }
        PUT("]");
    }
    PUT("},\"logprobs\":null,\"finish_reason\":\"");
    int sr = gw_jview_get(v, 0, "stop_reason");
    char stop[32] = "";
    sl_str_t srv = gw_jview_raw(v, sr);
    if (gw_jview_type(v, sr) == GW_J_STRING && srv.len < sizeof(stop)) {
        memcpy(stop, srv.base, srv.len);
        stop[srv.len] = '\0';
    }
    const char *fin = finish_reason(stop[0] ? stop : NULL);
    r = r ? r : sl_buf_append_str(out, sl_str_c(fin ? fin : "stop")) ? SL_EUPTOOBIG : 0;
    PUT("\"}],\"usage\":");
    r = r ? r : gw_tr_write_usage(px, out);
    PUT("}");
#undef PUT
    return r;
}

static int on_response(gw_proxy_t *px)
{
    anth_state_t *s = state(px);
    int ok = px->up.status >= 200 && px->up.status < 300;
    if (s->passthrough) {
        /* The client speaks Anthropic: its answer as is, usage and errors noted. */
        if (ok) {
            json_t *a = gw_tr_parse_resp(px);
            take_usage(px, json_object_get(a, "usage"));
            json_decref(a);
        } else {
            gw_tr_note_error(px);
        }
        return 0;
    }
    if (!ok) {
        json_t *a = gw_tr_parse_resp(px);
        json_t *e = json_object_get(a, "error");
        int r = gw_tr_respond_error(px, gw_tr_str(e, "message"), gw_tr_str(e, "type"), NULL);
        json_decref(a);
        return r;
    }
    /* Only an OpenAI client gets here: an Anthropic one is passed through. */
    gw_jview_t v;
    int r = gw_jview_parse(&v, &px->req->arena, sl_buf_str(&px->resp));
    if (r != 0)
        return r;
    sl_buf_t out;
    sl_buf_init(&out, px->resp.max);
    r = write_openai(px, &v, &out);
    if (r == 0) {
        /* The answer replaces the provider's in place. */
        sl_buf_t old = px->resp;
        px->resp = out;
        out = old;
        px->tr.resp_ct = "application/json";
    }
    sl_buf_dispose(&out);
    return r;
}

/* ---- streams ----------------------------------------------------------------- */

typedef gw_tr_feed_t feed_t;

static int translate_event(feed_t *f, const char *type, json_t *ev)
{
    gw_proxy_t *px = f->px;
    anth_state_t *s = state(px);
    json_t *delta;
    if (strcmp(type, "message_start") == 0) {
        json_t *m = json_object_get(ev, "message");
        gw_tr_ids(px);
        if (gw_tr_str(m, "id") != NULL)
            px->tr.id = sl_arena_printf(&px->req->arena, "%s", gw_tr_str(m, "id"));
        if (gw_tr_str(m, "model") != NULL)
            px->tr.model = sl_arena_printf(&px->req->arena, "%s", gw_tr_str(m, "model"));
        take_usage(px, json_object_get(m, "usage"));
        json_t *c = gw_tr_chunk_new(&delta);
        json_object_set_new(delta, "role", json_string("assistant"));
        json_object_set_new(delta, "content", json_string(""));
        return gw_tr_feed_emit(f, c);
    }
    if (strcmp(type, "content_block_start") == 0) {
        json_t *b = json_object_get(ev, "content_block");
        json_int_t idx = json_integer_value(json_object_get(ev, "index"));
        const char *bt = gw_tr_str(b, "type");
        if (bt == NULL || idx < 0 || idx >= MAX_BLOCKS)
            return f->err = SL_EUPPROTO;
        if (strcmp(bt, "tool_use") == 0) {
            int t = s->ntools++;
            s->tool_of_block[idx] = t + 1;
            json_t *c = gw_tr_chunk_new(&delta);
            json_object_set_new(delta, "tool_calls",
                                json_pack("[{s:i,s:s,s:s,s:{s:s,s:s}}]", "index", t, "id",
                                          gw_tr_str(b, "id") ? gw_tr_str(b, "id") : "", "type",
                                          "function", "function", "name",
                                          gw_tr_str(b, "name") ? gw_tr_str(b, "name") : "",
                                          "arguments", ""));
            return gw_tr_feed_emit(f, c);
        }
        if (strcmp(bt, "text") == 0 && gw_tr_str(b, "text") != NULL &&
            gw_tr_str(b, "text")[0] != '\0') {
            json_t *c = gw_tr_chunk_new(&delta);
            json_object_set(delta, "content", json_object_get(b, "text"));
            return gw_tr_feed_emit(f, c);
        }
        return 0;
    }
    if (strcmp(type, "content_block_delta") == 0) {
        json_t *d = json_object_get(ev, "delta");
        json_int_t idx = json_integer_value(json_object_get(ev, "index"));
        const char *dt = gw_tr_str(d, "type");
        if (dt == NULL || idx < 0 || idx >= MAX_BLOCKS)
            return f->err = SL_EUPPROTO;
        if (strcmp(dt, "text_delta") == 0 && gw_tr_str(d, "text") != NULL) {
            json_t *c = gw_tr_chunk_new(&delta);
            json_object_set(delta, "content", json_object_get(d, "text"));
            return gw_tr_feed_emit(f, c);
        }
        if (strcmp(dt, "input_json_delta") == 0) {
            if (s->tool_of_block[idx] == 0 || gw_tr_str(d, "partial_json") == NULL)
                return f->err = SL_EUPPROTO;
            json_t *c = gw_tr_chunk_new(&delta);
            json_object_set_new(delta, "tool_calls",
                                json_pack("[{s:i,s:{s:O}}]", "index", s->tool_of_block[idx] - 1,
                                          "function", "arguments",
                                          json_object_get(d, "partial_json")));
            return gw_tr_feed_emit(f, c);
        }
        return 0; /* thinking, signature and citations deltas have no OpenAI form */
    }
    if (strcmp(type, "message_delta") == 0) {
        take_usage(px, json_object_get(ev, "usage"));
        const char *fin = finish_reason(gw_tr_str(json_object_get(ev, "delta"), "stop_reason"));
        if (fin == NULL)
            return 0;
        json_t *c = gw_tr_chunk_new(&delta);
        json_object_set_new(json_array_get(json_object_get(c, "choices"), 0), "finish_reason",
                            json_string(fin));
        return gw_tr_feed_emit(f, c);
    }
    if (strcmp(type, "message_stop") == 0) {
        json_t *c = json_pack("{s:[],s:o}", "choices", "usage", gw_tr_usage_to_openai(px));
        if (gw_tr_feed_emit(f, c) != 0)
            return f->err;
        int r = gw_tr_emit_done(px, f->out);
        return r ? (f->err = r) : 0;
    }
    if (strcmp(type, "error") == 0) {
        json_t *e = json_object_get(ev, "error");
        const char *msg = gw_tr_str(e, "message");
        px->stream_error_message =
            sl_arena_printf(&px->req->arena, "anthropic: %s", msg ? msg : "stream error");
        return f->err = SL_EUPSTREAM;
    }
    return 0; /* ping, and event types added later */
}

static int on_event(void *ud, const sl_sse_event_t *ev)
{
    feed_t *f = ud;
    gw_proxy_t *px = f->px;
    json_t *j = json_loadb(ev->data.base, ev->data.len, 0, NULL);
    const char *type = gw_tr_str(j, "type");
    if (type == NULL) {
        json_decref(j);
        f->err = SL_EUPPROTO;
        return 1;
    }
    if (state(px)->passthrough) {
        if (strcmp(type, "message_start") == 0)
            take_usage(px, json_object_get(json_object_get(j, "message"), "usage"));
        else if (strcmp(type, "message_delta") == 0)
            take_usage(px, json_object_get(j, "usage"));
        else if (strcmp(type, "message_stop") == 0 || strcmp(type, "error") == 0)
            px->sse_done = 1; /* both end an Anthropic stream properly */
        json_decref(j);
        if (sl_sse_encode(f->out, ev->event, ev->data) != 0)
            f->err = SL_EUPTOOBIG;
        return f->err != 0;
    }
    translate_event(f, type, j);
    json_decref(j);
    return f->err != 0;
}

static int on_stream_data(gw_proxy_t *px, const char *p, size_t n, sl_buf_t *out)
{
    return gw_tr_sse_feed(px, p, n, out, on_event);
}

static int stream_complete(gw_proxy_t *px)
{
    return !sl_sse_pending(&px->sse) && px->sse_done;
}

const gw_adapter_t gw_adapter_anthropic = {
    .name = "anthropic",
    .build_request = build_request,
    .response_mode = gw_tr_sse_response_mode,
    .on_stream_data = on_stream_data,
    .stream_complete = stream_complete,
    .on_response = on_response,
};
