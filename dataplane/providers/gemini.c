/*
 * Google Gemini adapter: the Gemini API (generativelanguage.googleapis.com,
 * key in x-goog-api-key) and Vertex AI's Google publisher models (OAuth
 * bearer token), which take the same generateContent bodies.
 *
 * OpenAI chat requests become GenerateContentRequests: messages turn into
 * contents (roles user and model, consecutive turns of one role merged),
 * system and developer messages into systemInstruction, images into
 * inlineData or fileData parts, assistant tool calls into functionCall
 * parts and tool results into functionResponse parts; tools into
 * functionDeclarations (their JSON schemas cut down to the OpenAPI subset
 * Gemini accepts), tool_choice into toolConfig and the sampling options into
 * generationConfig. Answers, errors (google.rpc.Status) and SSE streams
 * (streamGenerateContent?alt=sse, one GenerateContentResponse per event,
 * no [DONE]) become OpenAI answers and chunks. Embeddings go to
 * embedContent / batchEmbedContents on the Gemini API and to :predict on
 * Vertex AI, which has no batch method for text embeddings.
 */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/sse.h"
#include "dataplane/providers/adapter.h"
#include "dataplane/providers/translate.h"

#define MAX_CANDIDATES 16    /* candidateCount is at most 8 */
#define MAX_SCHEMA_DEPTH 64  /* deeper tool schemas are cut off */
#define MAX_TEXT (64u << 20) /* text of one candidate in a buffered answer */

typedef struct {
    int vertex;                 /* provider vertex-ai: embeddings through :predict */
    int batch;                  /* embeddings: an array input */
    int b64;                    /* embeddings: encoding_format base64 */
    int ncalls;                 /* tool calls in this response so far: ids call_<n> */
    int done;                   /* stream: the usage chunk and the end were emitted */
    uint32_t seen;              /* stream: candidates whose role chunk was emitted */
    uint32_t finished;          /* stream: candidates that got their finish_reason */
    uint32_t called;            /* stream: candidates that made a tool call */
    int ntools[MAX_CANDIDATES]; /* stream: tool calls per candidate (delta index) */
} gm_state_t;

static gm_state_t *state(gw_proxy_t *px)
{
    return gw_tr_state(px, sizeof(gm_state_t));
}

/* ---- request: parts ---------------------------------------------------------- */

/* A MIME type from a URL's file extension, or NULL; fileData may omit it. */
static const char *guess_mime(const char *url)
{
    static const struct {
        const char *ext, *mime;
    } types[] = {
        {"png", "image/png"},   {"jpg", "image/jpeg"},      {"jpeg", "image/jpeg"},
        {"webp", "image/webp"}, {"gif", "image/gif"},       {"heic", "image/heic"},
        {"heif", "image/heif"}, {"pdf", "application/pdf"}, {"mp3", "audio/mp3"},
        {"wav", "audio/wav"},   {"flac", "audio/flac"},     {"ogg", "audio/ogg"},
        {"mp4", "video/mp4"},   {"mov", "video/mov"},       {"webm", "video/webm"},
        {"txt", "text/plain"},
    };
    size_t end = strcspn(url, "?#");
    size_t dot = end;
    while (dot > 0 && url[dot - 1] != '.' && url[dot - 1] != '/')
        dot--;
    if (dot == 0 || url[dot - 1] != '.')
        return NULL;
    size_t n = end - dot;
    for (size_t i = 0; i < SL_ARRAY_SIZE(types); i++)
        if (strlen(types[i].ext) == n && strncasecmp(url + dot, types[i].ext, n) == 0)
            return types[i].mime;
    return NULL;
}

/* "data:<mime>;base64,<data>" as an inlineData part; NULL when malformed. */
static json_t *inline_data(gw_proxy_t *px, const char *url)
{
    const char *semi = strchr(url, ';');
    const char *comma = strchr(url, ',');
    if (semi == NULL || comma == NULL || semi > comma || semi == url + 5 ||
        strncmp(semi, ";base64,", 8) != 0)
        return NULL;
    char *mt = sl_arena_printf(&px->req->arena, "%.*s", (int)(semi - url - 5), url + 5);
    return json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType", mt, "data", comma + 1);
}

/* An OpenAI image_url part: a data URL inline, an http(s) or gs:// URL by reference. */
static json_t *image_part(gw_proxy_t *px, const json_t *part)
{
    const json_t *iu = json_object_get(part, "image_url");
    const char *url = json_is_string(iu) ? json_string_value(iu) : gw_tr_str(iu, "url");
    if (url == NULL)
        return NULL;
    if (strncmp(url, "data:", 5) == 0)
        return inline_data(px, url);
    if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0 &&
        strncmp(url, "gs://", 5) != 0)
        return NULL;
    json_t *fd = json_pack("{s:s}", "fileUri", url);
    const char *mime = guess_mime(url);
    if (mime != NULL)
        json_object_set_new(fd, "mimeType", json_string(mime));
    return json_pack("{s:o}", "fileData", fd);
}

/* OpenAI message content (a string or parts) appended to Gemini parts. */
static int content_parts(gw_proxy_t *px, const json_t *c, json_t *parts, int text_only)
{
    if (json_is_string(c)) {
        if (json_string_length(c) > 0)
            json_array_append_new(parts, json_pack("{s:O}", "text", c));
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
        json_t *part = NULL;
        if (t != NULL && strcmp(t, "text") == 0 && gw_tr_str(p, "text") != NULL) {
            if (json_string_length(json_object_get(p, "text")) > 0)
                json_array_append_new(parts,
                                      json_pack("{s:O}", "text", json_object_get(p, "text")));
            continue;
        }
        if (t != NULL && strcmp(t, "refusal") == 0)
            continue; /* an assistant's refusal has no Gemini form */
        if (text_only)
            return gw_tr_invalid(px, "messages", "system messages may only hold text for gemini");
        if (t != NULL && strcmp(t, "image_url") == 0) {
            part = image_part(px, p);
            if (part == NULL)
                return gw_tr_invalid(px, "messages",
                           "image_url must be a base64 data URL or an http(s) or gs:// URL");
        } else if (t != NULL && strcmp(t, "input_audio") == 0) {
            const json_t *a = json_object_get(p, "input_audio");
            const char *data = gw_tr_str(a, "data"), *fmt = gw_tr_str(a, "format");
            if (data == NULL || fmt == NULL || !gw_tr_token_ok(sl_str_c(fmt)))
                return gw_tr_invalid(px, "messages", "input_audio needs data and a format");
            part = json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType",
                             sl_arena_printf(&px->req->arena, "audio/%s", fmt), "data", data);
        } else if (t != NULL && strcmp(t, "file") == 0) {
            const char *fd = gw_tr_str(json_object_get(p, "file"), "file_data");
            part = fd != NULL && strncmp(fd, "data:", 5) == 0 ? inline_data(px, fd) : NULL;
            if (part == NULL)
                return gw_tr_invalid(px, "messages", "file parts need file_data as a base64 data URL");
        } else {
            return gw_tr_invalid(px, "messages", "content part type not supported by gemini");
        }
        json_array_append_new(parts, part);
    }
    return 0;
}

/* Appends a turn, merging it into the previous one when the role repeats. */
static void add_turn(json_t *contents, const char *role, json_t *parts)
{
    if (json_array_size(parts) == 0) {
        json_decref(parts);
        return;
    }
    json_t *last = json_array_get(contents, json_array_size(contents) - 1);
    const char *lr = gw_tr_str(last, "role");
    if (lr != NULL && strcmp(lr, role) == 0) {
        json_array_extend(json_object_get(last, "parts"), parts);
        json_decref(parts);
        return;
    }
    json_array_append_new(contents, json_pack("{s:s,s:o}", "role", role, "parts", parts));
}

/* The function name of the tool call `id`, from the latest assistant message before `upto`. */
static const char *call_name(const json_t *msgs, size_t upto, const char *id)
{
    for (size_t i = upto; i-- > 0;) {
        const json_t *m = json_array_get(msgs, i);
        const char *role = gw_tr_str(m, "role");
        if (role == NULL || strcmp(role, "assistant") != 0)
            continue;
        size_t k;
        json_t *tc;
        json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
            const char *tid = gw_tr_str(tc, "id");
            if (tid != NULL && strcmp(tid, id) == 0)
                return gw_tr_str(json_object_get(tc, "function"), "name");
        }
    }
    return NULL;
}

/* A tool result's text: the content string, or its text parts joined. */
static const char *result_text(gw_proxy_t *px, const json_t *c)
{
    if (json_is_string(c))
        return json_string_value(c);
    sl_buf_t b;
    sl_buf_init(&b, MAX_TEXT);
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p) {
        const char *t = gw_tr_str(p, "text");
        if (t != NULL && sl_buf_append_str(&b, sl_str_c(t)) != 0)
            break;
    }
    const char *s = sl_str_dup(&px->req->arena, sl_buf_str(&b)).base;
    sl_buf_dispose(&b);
    return s ? s : "";
}

/* A functionResponse part: the result as an object, wrapped when it is not one. */
static json_t *function_response(gw_proxy_t *px, const char *name, const json_t *c)
{
    const char *text = result_text(px, c);
    json_t *resp = json_loads(text, JSON_DECODE_ANY, NULL);
    if (!json_is_object(resp)) {
        json_decref(resp);
        resp = json_pack("{s:s}", "content", text);
    }
    return json_pack("{s:{s:s,s:o}}", "functionResponse", "name", name, "response", resp);
}

static int convert_messages(gw_proxy_t *px, const json_t *in, json_t *out)
{
    const json_t *msgs = json_object_get(in, "messages");
    if (!json_is_array(msgs))
        return gw_tr_invalid(px, "messages", "messages must be an array");
    json_t *contents = json_array();
    json_t *system = json_array();
    size_t i;
    json_t *m;
    int r = 0;
    json_array_foreach(msgs, i, m) {
        const char *role = gw_tr_str(m, "role");
        json_t *c = json_object_get(m, "content");
        json_t *parts = json_array();
        if (role == NULL) {
            r = gw_tr_invalid(px, "messages", "every message needs a role");
        } else if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            r = content_parts(px, c, system, 1);
        } else if (strcmp(role, "user") == 0) {
            r = content_parts(px, c, parts, 0);
            if (r == 0) {
                add_turn(contents, "user", parts);
                parts = NULL;
            }
        } else if (strcmp(role, "assistant") == 0) {
            r = content_parts(px, c, parts, 0);
            size_t k;
            json_t *tc;
            json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
                if (r != 0)
                    break;
                json_t *fn = json_object_get(tc, "function");
                const char *name = gw_tr_str(fn, "name");
                const char *args = gw_tr_str(fn, "arguments");
                json_t *a = args && args[0] ? json_loads(args, 0, NULL) : json_object();
                if (!json_is_object(a) || name == NULL) {
                    json_decref(a);
                    r = gw_tr_invalid(px, "messages",
                            "tool_calls need a name and arguments that are a JSON object");
                    break;
                }
                json_array_append_new(
                    parts, json_pack("{s:{s:s,s:o}}", "functionCall", "name", name, "args", a));
            }
            if (r == 0) {
                add_turn(contents, "model", parts);
                parts = NULL;
            }
        } else if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0) {
            /* Gemini answers calls by function name; OpenAI by call id. */
            const char *name = gw_tr_str(m, "name");
            if (strcmp(role, "tool") == 0) {
                const char *id = gw_tr_str(m, "tool_call_id");
                name = id ? call_name(msgs, i, id) : NULL;
            }
            if (name == NULL) {
                r = gw_tr_invalid(px, "messages",
                        "a tool message's tool_call_id must match a tool call of an earlier "
                        "assistant message");
            } else {
                json_array_append_new(parts, function_response(px, name, c));
                add_turn(contents, "user", parts);
                parts = NULL;
            }
        } else {
            r = gw_tr_invalid(px, "messages", "message role not supported by gemini");
        }
        json_decref(parts);
        if (r != 0)
            break;
    }
    if (r == 0 && json_array_size(contents) == 0)
        r = gw_tr_invalid(px, "messages", "at least one user or assistant message is required");
    if (r == 0) {
        json_object_set(out, "contents", contents);
        if (json_array_size(system) > 0)
            json_object_set_new(out, "systemInstruction", json_pack("{s:O}", "parts", system));
    }
    json_decref(contents);
    json_decref(system);
    return r;
}

/* ---- request: schemas and tools -------------------------------------------------- */

/* Schema keys Gemini takes as they are (its Schema object, an OpenAPI 3.0 subset). */
static int schema_key_kept(const char *k)
{
    static const char *const keys[] = {
        "title",         "description",   "nullable",  "required",         "minItems", "maxItems",
        "minProperties", "maxProperties", "minLength", "maxLength",        "pattern",  "minimum",
        "maximum",       "example",       "default",   "propertyOrdering",
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(keys); i++)
        if (strcmp(k, keys[i]) == 0)
            return 1;
    return 0;
}

/* Only these formats are accepted (strings: enum, date-time; numbers: the rest). */
static int format_kept(const char *f)
{
    static const char *const fs[] = {"enum", "date-time", "float", "double", "int32", "int64"};
    for (size_t i = 0; f != NULL && i < SL_ARRAY_SIZE(fs); i++)
        if (strcmp(f, fs[i]) == 0)
            return 1;
    return 0;
}

static int all_strings(const json_t *a)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (!json_is_string(v))
            return 0;
    }
    return json_is_array(a);
}

/*
 * A JSON schema cut down to what Gemini's Schema accepts: keys it rejects
 * ($schema, additionalProperties, $ref, $defs, strict, exclusive bounds...)
 * are dropped; a type list with "null" becomes nullable, oneOf becomes
 * anyOf, a string const becomes a one-value enum. New reference.
 */
static json_t *clean_schema(const json_t *s, int depth)
{
    json_t *out = json_object();
    if (!json_is_object(s) || depth > MAX_SCHEMA_DEPTH)
        return out;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) {
        if (strcmp(k, "properties") == 0 && json_is_object(v)) {
            json_t *props = json_object();
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv) {
                json_object_set_new(props, pk, clean_schema(pv, depth + 1));
            }
            json_object_set_new(out, k, props);
        } else if (strcmp(k, "items") == 0 && json_is_object(v)) {
            json_object_set_new(out, k, clean_schema(v, depth + 1));
        } else if ((strcmp(k, "anyOf") == 0 ||
                    (strcmp(k, "oneOf") == 0 && json_object_get(s, "anyOf") == NULL)) &&
                   json_is_array(v)) {
            json_t *alts = json_array();
            size_t i;
            json_t *a;
            json_array_foreach(v, i, a) {
                json_t *alt = clean_schema(a, depth + 1);
                if (json_object_size(alt) > 0)
                    json_array_append_new(alts, alt); /* e.g. a $ref: nothing left */
                else
                    json_decref(alt);
            }
            if (json_array_size(alts) > 0)
                json_object_set_new(out, "anyOf", alts);
            else
                json_decref(alts);
        } else if (strcmp(k, "type") == 0 && json_is_string(v)) {
            json_object_set(out, k, v);
        } else if (strcmp(k, "type") == 0 && json_is_array(v)) {
            size_t i;
            json_t *t;
            json_array_foreach(v, i, t) {
                if (json_is_string(t) && strcmp(json_string_value(t), "null") == 0)
                    json_object_set_new(out, "nullable", json_true());
                else if (json_is_string(t) && json_object_get(out, "type") == NULL)
                    json_object_set(out, "type", t);
            }
        } else if (strcmp(k, "enum") == 0 && all_strings(v)) {
            json_object_set(out, k, v);
        } else if (strcmp(k, "const") == 0 && json_is_string(v) &&
                   json_object_get(s, "enum") == NULL) {
            json_object_set_new(out, "enum", json_pack("[O]", v));
        } else if (strcmp(k, "format") == 0 && json_is_string(v)) {
            if (format_kept(json_string_value(v)))
                json_object_set(out, k, v);
        } else if (schema_key_kept(k)) {
            json_object_set(out, k, v);
        }
    }
    return out;
}

/* Function parameters; NULL when there are none (Gemini rejects an empty object). */
static json_t *parameters(const json_t *schema)
{
    if (!json_is_object(schema))
        return NULL;
    json_t *p = clean_schema(schema, 0);
    const char *t = gw_tr_str(p, "type");
    json_t *props = json_object_get(p, "properties");
    if (json_object_size(p) == 0 ||
        (t != NULL && strcmp(t, "object") == 0 && json_object_size(props) == 0)) {
        json_decref(p);
        return NULL;
    }
    return p;
}

static int convert_tools(gw_proxy_t *px, const json_t *in, json_t *out)
{
    json_t *tools = json_object_get(in, "tools");
    json_t *decls = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        const char *type = gw_tr_str(t, "type");
        json_t *fn = json_object_get(t, "function");
        const char *name = gw_tr_str(fn, "name");
        if ((type != NULL && strcmp(type, "function") != 0) || name == NULL) {
            json_decref(decls);
            return gw_tr_invalid(px, "tools", "gemini takes only function tools, each with a name");
        }
        json_t *d = json_pack("{s:s}", "name", name);
        if (gw_tr_str(fn, "description") != NULL)
            json_object_set(d, "description", json_object_get(fn, "description"));
        json_t *params = parameters(json_object_get(fn, "parameters"));
        if (params != NULL)
            json_object_set_new(d, "parameters", params);
        json_array_append_new(decls, d);
    }
    if (json_array_size(decls) == 0) {
        json_decref(decls);
        return 0; /* a tool_choice without tools has nothing to configure */
    }
    json_object_set_new(out, "tools", json_pack("[{s:o}]", "functionDeclarations", decls));

    json_t *tc = json_object_get(in, "tool_choice");
    json_t *cfg = NULL;
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        const char *mode = strcmp(s, "auto") == 0       ? "AUTO"
                           : strcmp(s, "none") == 0     ? "NONE"
                           : strcmp(s, "required") == 0 ? "ANY"
                                                        : NULL;
        if (mode == NULL)
            return gw_tr_invalid(px, "tool_choice", "tool_choice must be auto, required, none or a function");
        cfg = json_pack("{s:s}", "mode", mode);
    } else if (json_is_object(tc)) {
        const char *name = gw_tr_str(json_object_get(tc, "function"), "name");
        if (name == NULL)
            return gw_tr_invalid(px, "tool_choice", "tool_choice must name a function");
        cfg = json_pack("{s:s,s:[s]}", "mode", "ANY", "allowedFunctionNames", name);
    } else if (tc != NULL && !json_is_null(tc)) {
        return gw_tr_invalid(px, "tool_choice", "tool_choice must be auto, required, none or a function");
    }
    if (cfg != NULL)
        json_object_set_new(out, "toolConfig", json_pack("{s:o}", "functionCallingConfig", cfg));
    return 0;
}

/* ---- request: generation config --------------------------------------------------- */

/* Copies in[key] to gc[gkey] when it is a number (integer: whole numbers only). */
static int copy_num(gw_proxy_t *px, const json_t *in, const char *key, json_t *gc, const char *gkey,
                    int integer)
{
    json_t *v = json_object_get(in, key);
    if (v == NULL || json_is_null(v))
        return 0;
    if (integer ? !json_is_integer(v) : !json_is_number(v))
        return gw_tr_invalid(px, key, integer ? "must be an integer" : "must be a number");
    json_object_set(gc, gkey, v);
    return 0;
}

static int generation_config(gw_proxy_t *px, const json_t *in, json_t *out)
{
    json_t *gc = json_object();
    int r = 0;
    r = r ? r : copy_num(px, in, "temperature", gc, "temperature", 0);
    r = r ? r : copy_num(px, in, "top_p", gc, "topP", 0);
    r = r ? r : copy_num(px, in, "top_k", gc, "topK", 1);
    r = r ? r : copy_num(px, in, "n", gc, "candidateCount", 1);
    r = r ? r : copy_num(px, in, "seed", gc, "seed", 1);
    r = r ? r : copy_num(px, in, "presence_penalty", gc, "presencePenalty", 0);
    r = r ? r : copy_num(px, in, "frequency_penalty", gc, "frequencyPenalty", 0);
    r = r ? r : copy_num(px, in, "max_tokens", gc, "maxOutputTokens", 1);
    /* The newer name wins when both are given. */
    r = r ? r : copy_num(px, in, "max_completion_tokens", gc, "maxOutputTokens", 1);
    json_t *stop = json_object_get(in, "stop");
    if (r == 0 && json_is_string(stop)) {
        json_object_set_new(gc, "stopSequences", json_pack("[O]", stop));
    } else if (r == 0 && json_is_array(stop) && json_array_size(stop) > 0) {
        if (all_strings(stop))
            json_object_set(gc, "stopSequences", stop);
        else
            r = gw_tr_invalid(px, "stop", "stop must be a string or an array of strings");
    }
    json_t *rf = json_object_get(in, "response_format");
    const char *rt = gw_tr_str(rf, "type");
    if (r == 0 && rf != NULL && !json_is_null(rf)) {
        if (rt != NULL && strcmp(rt, "json_object") == 0) {
            json_object_set_new(gc, "responseMimeType", json_string("application/json"));
        } else if (rt != NULL && strcmp(rt, "json_schema") == 0) {
            json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
            json_object_set_new(gc, "responseMimeType", json_string("application/json"));
            if (json_is_object(schema))
                json_object_set_new(gc, "responseSchema", clean_schema(schema, 0));
        } else if (rt == NULL || strcmp(rt, "text") != 0) {
            r = gw_tr_invalid(px, "response_format",
                    "response_format type must be text, json_object or json_schema");
        }
    }
    if (r == 0 && json_object_size(gc) > 0)
        json_object_set(out, "generationConfig", gc);
    json_decref(gc);
    return r;
}

static json_t *chat_request(gw_proxy_t *px, int *err)
{
    const json_t *in = px->body;
    json_t *out = json_object();
    int r = convert_messages(px, in, out);
    r = r ? r : convert_tools(px, in, out);
    r = r ? r : generation_config(px, in, out);
    if (r != 0) {
        json_decref(out);
        *err = r;
        return NULL;
    }
    return out;
}

/* ---- request: embeddings ----------------------------------------------------------- */

static json_t *embed_request(gw_proxy_t *px, sl_str_t model, const char **method, int *err)
{
    gm_state_t *s = state(px);
    const json_t *in = px->body;
    json_t *input = json_object_get(in, "input");
    json_t *dims = json_object_get(in, "dimensions");
    const char *enc = gw_tr_str(in, "encoding_format");
    *err = SL_EINVAL;
    if (json_is_array(input) && json_array_size(input) > 0 && all_strings(input)) {
        s->batch = 1;
    } else if (!json_is_string(input)) {
        gw_tr_invalid(px, "input", "gemini embeddings take a string or a non-empty array of strings");
        return NULL;
    }
    if (dims != NULL && !json_is_null(dims) &&
        (!json_is_integer(dims) || json_integer_value(dims) < 1)) {
        gw_tr_invalid(px, "dimensions", "dimensions must be a positive integer");
        return NULL;
    }
    if (json_is_null(dims))
        dims = NULL;
    if (json_object_get(in, "encoding_format") != NULL &&
        !json_is_null(json_object_get(in, "encoding_format")) &&
        (enc == NULL || (strcmp(enc, "float") != 0 && strcmp(enc, "base64") != 0))) {
        gw_tr_invalid(px, "encoding_format", "encoding_format must be float or base64");
        return NULL;
    }
    s->b64 = enc != NULL && strcmp(enc, "base64") == 0;
    json_t *texts = s->batch ? json_incref(input) : json_pack("[O]", input);
    json_t *out;
    size_t i;
    json_t *t;
    if (s->vertex) {
        /* Vertex AI: the text embeddings API (PredictRequest). */
        json_t *inst = json_array();
        json_array_foreach(texts, i, t) {
            json_array_append_new(inst, json_pack("{s:O}", "content", t));
        }
        out = json_pack("{s:o}", "instances", inst);
        if (dims != NULL)
            json_object_set_new(out, "parameters",
                                json_pack("{s:O}", "outputDimensionality", dims));
        *method = "predict";
    } else {
        char *name = sl_arena_printf(&px->req->arena, "models/%.*s", (int)model.len, model.base);
        json_t *reqs = json_array();
        json_array_foreach(texts, i, t) {
            json_t *one =
                json_pack("{s:s,s:{s:[{s:O}]}}", "model", name, "content", "parts", "text", t);
            if (dims != NULL)
                json_object_set(one, "outputDimensionality", dims);
            json_array_append_new(reqs, one);
        }
        if (s->batch) {
            out = json_pack("{s:o}", "requests", reqs);
            *method = "batchEmbedContents";
        } else {
            out = json_incref(json_array_get(reqs, 0));
            json_decref(reqs);
            *method = "embedContent";
        }
    }
    json_decref(texts);
    *err = 0;
    return out;
}

static int build_request(gw_proxy_t *px)
{
    gm_state_t *s = state(px);
    s->vertex = strcmp(px->provider->name, "vertex-ai") == 0;
    sl_str_t model = px->model;
    if (sl_str_starts_with(model, SL_STRLIT("models/")))
        model = sl_str(model.base + 7, model.len - 7);
    if (!gw_tr_token_ok(model))
        return gw_tr_invalid(px, "model",
                   "gemini needs a model name of letters, digits, '-', '_' and '.' "
                   "(e.g. gemini-2.0-flash)");
    if (px->body == NULL || (px->endpoint != GW_EP_CHAT && px->endpoint != GW_EP_EMBEDDINGS)) {
        px->error_message = "gemini serves chat completions and embeddings only";
        return SL_EUNSUPPORTED;
    }
    sl_str_t base;
    int r = gw_tr_base_url(px, &base);
    if (r != 0)
        return r;
    const char *method;
    json_t *body;
    if (px->endpoint == GW_EP_EMBEDDINGS) {
        body = embed_request(px, model, &method, &r);
    } else {
        body = chat_request(px, &r);
        method = px->stream ? "streamGenerateContent?alt=sse" : "generateContent";
    }
    if (body == NULL)
        return r;
    gw_tr_set_url(px, base, "/models/%.*s:%s", (int)model.len, model.base, method);
    gw_req_t *req = px->req;
    gw_tr_headers_init(px, req->nheaders + 2);
    gw_tr_forward_headers(px, 1);
    gw_tr_header_add(px, SL_STRLIT("Content-Type"), SL_STRLIT("application/json"));
    gw_tr_auth_header(px);
    r = gw_tr_set_body(px, body);
    json_decref(body);
    return r;
}

/* ---- answers ------------------------------------------------------------------------ */

/*
 * UsageMetadata into px->usage. Thinking tokens count as completion tokens,
 * as OpenAI counts reasoning; tool-use prompt tokens (grounding) as prompt.
 */
static void take_usage(gw_proxy_t *px, const json_t *u)
{
    if (!json_is_object(u))
        return;
    gw_usage_t *g = &px->usage;
    g->prompt_tokens = gw_tr_int(u, "promptTokenCount") + gw_tr_int(u, "toolUsePromptTokenCount");
    g->reasoning_tokens = gw_tr_int(u, "thoughtsTokenCount");
    g->completion_tokens = gw_tr_int(u, "candidatesTokenCount") + g->reasoning_tokens;
    g->cached_tokens = gw_tr_int(u, "cachedContentTokenCount");
    g->set = 1;
}

/* Candidate.finishReason as an OpenAI finish_reason; NULL while generating. */
static const char *finish_reason(const char *fr, int called)
{
    static const char *const filtered[] = {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    };
    if (fr == NULL || fr[0] == '\0')
        return NULL;
    if (strcmp(fr, "MAX_TOKENS") == 0)
        return "length";
    for (size_t i = 0; i < SL_ARRAY_SIZE(filtered); i++)
        if (strcmp(fr, filtered[i]) == 0)
            return "content_filter";
    /* STOP, and OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL...: the model stopped. */
    return called ? "tool_calls" : "stop";
}

/* google.rpc.Status code name -> OpenAI error type; NULL: derived from the HTTP status. */
static const char *status_type(const char *status)
{
    static const struct {
        const char *status, *type;
    } map[] = {
        {"INVALID_ARGUMENT", "invalid_request_error"},
        {"FAILED_PRECONDITION", "invalid_request_error"},
        {"OUT_OF_RANGE", "invalid_request_error"},
        {"NOT_FOUND", "invalid_request_error"},
        {"ALREADY_EXISTS", "invalid_request_error"},
        {"UNAUTHENTICATED", "authentication_error"},
        {"PERMISSION_DENIED", "permission_error"},
        {"RESOURCE_EXHAUSTED", "rate_limit_error"},
        {"DEADLINE_EXCEEDED", "timeout_error"},
        {"UNAVAILABLE", "api_error"},
        {"INTERNAL", "api_error"},
        {"UNKNOWN", "api_error"},
        {"DATA_LOSS", "api_error"},
        {"UNIMPLEMENTED", "api_error"},
    };
    for (size_t i = 0; status != NULL && i < SL_ARRAY_SIZE(map); i++)
        if (strcmp(status, map[i].status) == 0)
            return map[i].type;
    return NULL;
}

/* A Google error body ({"error":{"code","message","status"}}, or a list of them). */
static int respond_google_error(gw_proxy_t *px, const json_t *j)
{
    if (json_is_array(j))
        j = json_array_get(j, 0);
    json_t *e = json_object_get(j, "error");
    const char *status = gw_tr_str(e, "status");
    return gw_tr_respond_error(px, gw_tr_str(e, "message"), status_type(status), status);
}

/* The model's text (thoughts left out) and its calls, from one candidate's parts. */
static int candidate_parts(gw_proxy_t *px, const json_t *cand, sl_buf_t *text, json_t *calls)
{
    gm_state_t *s = state(px);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p) {
        if (json_is_true(json_object_get(p, "thought")))
            continue;
        const char *t = gw_tr_str(p, "text");
        json_t *fc = json_object_get(p, "functionCall");
        if (t != NULL) {
            if (sl_buf_append_str(text, sl_str_c(t)) != 0)
                return SL_EUPTOOBIG;
        } else if (json_is_object(fc)) {
            json_t *args = json_object_get(fc, "args");
            const char *name = gw_tr_str(fc, "name");
            char id[32];
            snprintf(id, sizeof(id), "call_%d", s->ncalls++);
            json_array_append_new(
                calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function", "function",
                                 "name", name ? name : "", "arguments",
                                 json_is_object(args) ? gw_tr_dump(px, args).base : "{}"));
        }
    }
    return 0;
}

static int chat_response(gw_proxy_t *px, const json_t *g)
{
    if (!json_is_object(g))
        return SL_EUPPROTO;
    take_usage(px, json_object_get(g, "usageMetadata"));
    json_t *cands = json_object_get(g, "candidates");
    if (json_array_size(cands) == 0) {
        const json_t *fb = json_object_get(g, "promptFeedback");
        const char *block = gw_tr_str(fb, "blockReason");
        if (block == NULL)
            return SL_EUPPROTO;
        /* A 200 without choices would look like an empty answer: refuse it plainly. */
        const char *why = gw_tr_str(fb, "blockReasonMessage");
        px->up.status = 400;
        return gw_tr_respond_error(
            px,
            sl_arena_printf(&px->req->arena,
                            "the prompt was blocked by the provider's safety filters "
                            "(blockReason %s)%s%s",
                            block, why ? ": " : "", why ? why : ""),
            "invalid_request_error", "content_filter");
    }
    gw_tr_ids(px);
    json_t *choices = json_array();
    size_t i;
    json_t *c;
    int r = 0;
    json_array_foreach(cands, i, c) {
        sl_buf_t text;
        sl_buf_init(&text, MAX_TEXT);
        json_t *calls = json_array();
        r = candidate_parts(px, c, &text, calls);
        json_t *msg = json_pack("{s:s}", "role", "assistant");
        json_object_set_new(msg, "content",
                            text.len || json_array_size(calls) == 0
                                ? json_stringn(text.base ? text.base : "", text.len)
                                : json_null());
        if (json_array_size(calls) > 0)
            json_object_set(msg, "tool_calls", calls);
        const char *fin = finish_reason(gw_tr_str(c, "finishReason"), json_array_size(calls) > 0);
        json_t *idx = json_object_get(c, "index");
        json_array_append_new(
            choices, json_pack("{s:I,s:o,s:n,s:s}", "index",
                               json_is_integer(idx) ? json_integer_value(idx) : (json_int_t)i,
                               "message", msg, "logprobs", "finish_reason",
                               fin ? fin : (json_array_size(calls) ? "tool_calls" : "stop")));
        json_decref(calls);
        sl_buf_dispose(&text);
        if (r != 0)
            break;
    }
    if (r != 0) {
        json_decref(choices);
        return r;
    }
    const char *model = gw_tr_str(g, "modelVersion");
    json_t *o =
        json_pack("{s:s,s:s,s:I,s:s,s:o,s:o}", "id", px->tr.id, "object", "chat.completion",
                  "created", (json_int_t)px->tr.created, "model", model ? model : px->tr.model,
                  "choices", choices, "usage", gw_tr_usage_to_openai(px));
    return o ? gw_tr_respond_json(px, o) : SL_EUPPROTO;
}

/* The values as base64 of little-endian float32, as OpenAI's encoding_format base64. */
static int embed_response(gw_proxy_t *px, const json_t *g)
{
    gm_state_t *s = state(px);
    /* Vertex: predictions[].embeddings; batch: embeddings[]; single: embedding. */
    json_t *single = NULL;
    json_t *list;
    if (s->vertex) {
        list = json_object_get(g, "predictions");
    } else if (s->batch) {
        list = json_object_get(g, "embeddings");
    } else {
        json_t *one = json_object_get(g, "embedding");
        single = json_is_object(one) ? json_pack("[O]", one) : NULL;
        list = single;
    }
    if (!json_is_array(list)) {
        json_decref(single);
        return SL_EUPPROTO;
    }
    json_t *data = json_array();
    long long tokens = 0;
    size_t i;
    json_t *e;
    int r = 0;
    json_array_foreach(list, i, e) {
        if (s->vertex) {
            json_t *st = json_object_get(json_object_get(e, "embeddings"), "statistics");
            tokens += gw_tr_int(st, "token_count") + gw_tr_int(st, "tokenCount");
            e = json_object_get(e, "embeddings");
        }
        json_t *values = json_object_get(e, "values");
        if (!json_is_array(values)) {
            r = SL_EUPPROTO;
            break;
        }
        json_t *emb = s->b64 ? gw_tr_embedding_base64(px, values) : json_incref(values);
        if (emb == NULL) {
            r = SL_EUPTOOBIG;
            break;
        }
        json_array_append_new(data, json_pack("{s:s,s:I,s:o}", "object", "embedding", "index",
                                              (json_int_t)i, "embedding", emb));
    }
    json_decref(single);
    if (r != 0) {
        json_decref(data);
        return r;
    }
    px->usage.prompt_tokens = tokens;
    px->usage.set = 1;
    json_t *o = json_pack("{s:s,s:o,s:s#,s:{s:I,s:I}}", "object", "list", "data", data, "model",
                          px->model.base ? px->model.base : "", (int)px->model.len, "usage",
                          "prompt_tokens", (json_int_t)tokens, "total_tokens", (json_int_t)tokens);
    return o ? gw_tr_respond_json(px, o) : SL_EUPPROTO;
}

static int on_response(gw_proxy_t *px)
{
    json_t *g = gw_tr_parse_resp(px);
    int r;
    if (px->up.status < 200 || px->up.status >= 300)
        r = respond_google_error(px, g);
    else if (px->endpoint == GW_EP_EMBEDDINGS)
        r = embed_response(px, g);
    else
        r = chat_response(px, g);
    json_decref(g);
    return r;
}

/* ---- streams -------------------------------------------------------------------------- */

typedef gw_tr_feed_t feed_t;

static json_t *chunk_for(int idx, json_t **delta)
{
    json_t *c = gw_tr_chunk_new(delta);
    json_object_set_new(json_array_get(json_object_get(c, "choices"), 0), "index",
                        json_integer(idx));
    return c;
}

static int emit_role(feed_t *f, int idx)
{
    gm_state_t *s = state(f->px);
    if (s->seen & (1u << idx))
        return 0;
    s->seen |= 1u << idx;
    json_t *delta;
    json_t *c = chunk_for(idx, &delta);
    json_object_set_new(delta, "role", json_string("assistant"));
    json_object_set_new(delta, "content", json_string(""));
    return gw_tr_feed_emit(f, c);
}

static int emit_finish(feed_t *f, int idx, const char *fin)
{
    gm_state_t *s = state(f->px);
    s->finished |= 1u << idx;
    json_t *delta;
    json_t *c = chunk_for(idx, &delta);
    json_object_set_new(json_array_get(json_object_get(c, "choices"), 0), "finish_reason",
                        json_string(fin));
    return gw_tr_feed_emit(f, c);
}

/* One candidate of a streamed GenerateContentResponse. */
static int stream_candidate(feed_t *f, const json_t *cand, size_t pos)
{
    gw_proxy_t *px = f->px;
    gm_state_t *s = state(px);
    json_t *jidx = json_object_get(cand, "index");
    json_int_t idx = json_is_integer(jidx) ? json_integer_value(jidx) : (json_int_t)pos;
    if (idx < 0 || idx >= MAX_CANDIDATES)
        return f->err = SL_EUPPROTO;
    int i = (int)idx;
    if (s->finished & (1u << i))
        return 0; /* nothing may follow a choice's finish_reason */
    if (emit_role(f, i) != 0)
        return f->err;
    sl_buf_t text;
    sl_buf_init(&text, MAX_TEXT);
    json_t *calls = json_array();
    int r = candidate_parts(px, cand, &text, calls);
    json_t *delta;
    if (r == 0 && text.len > 0) {
        json_t *c = chunk_for(i, &delta);
        json_object_set_new(delta, "content", json_stringn(text.base, text.len));
        r = gw_tr_feed_emit(f, c);
    }
    sl_buf_dispose(&text);
    /* Gemini sends each call whole: one tool_calls delta per call. */
    size_t k;
    json_t *call;
    json_array_foreach(calls, k, call) {
        if (r != 0)
            break;
        json_object_set_new(call, "index", json_integer(s->ntools[i]++));
        s->called |= 1u << i;
        json_t *c = chunk_for(i, &delta);
        json_object_set_new(delta, "tool_calls", json_pack("[O]", call));
        r = gw_tr_feed_emit(f, c);
    }
    json_decref(calls);
    if (r != 0)
        return f->err = r;
    const char *fin = finish_reason(gw_tr_str(cand, "finishReason"), (s->called >> i) & 1u);
    return fin ? emit_finish(f, i, fin) : 0;
}

/* Every choice that started has finished: what follows may only add usage. */
static int all_finished(const gm_state_t *s)
{
    return s->finished != 0 && (s->seen & ~s->finished) == 0;
}

static int maybe_end(feed_t *f)
{
    state(f->px)->done = all_finished(state(f->px));
    return 0;
}

/*
 * Gemini has no end marker: when the body ends cleanly after every choice
 * finished, the usage chunk (with the last usageMetadata seen) and the end.
 */
static int stream_end(gw_proxy_t *px, sl_buf_t *out)
{
    gm_state_t *s = state(px);
    if (!s->done || sl_sse_pending(&px->sse))
        return 0; /* incomplete: stream_complete says so */
    feed_t f = {px, out, 0};
    if (gw_tr_feed_emit(&f, json_pack("{s:[],s:o}", "choices", "usage",
                                      gw_tr_usage_to_openai(px))) != 0)
        return f.err;
    return gw_tr_emit_done(px, out);
}

static int translate_event(feed_t *f, const json_t *g)
{
    gw_proxy_t *px = f->px;
    gm_state_t *s = state(px);
    take_usage(px, json_object_get(g, "usageMetadata"));
    if (s->done)
        return 0; /* a trailing event after the end: only its usage counts */
    json_t *e = json_object_get(g, "error");
    if (json_is_object(e)) {
        const char *msg = gw_tr_str(e, "message");
        px->stream_error_message =
            sl_arena_printf(&px->req->arena, "gemini: %s", msg ? msg : "stream error");
        return f->err = SL_EUPSTREAM;
    }
    const char *mv = gw_tr_str(g, "modelVersion");
    if (mv != NULL && s->seen == 0)
        px->tr.model = sl_arena_printf(&px->req->arena, "%s", mv);
    json_t *cands = json_object_get(g, "candidates");
    size_t i;
    json_t *c;
    json_array_foreach(cands, i, c) {
        if (stream_candidate(f, c, i) != 0)
            return f->err;
    }
    const char *block = gw_tr_str(json_object_get(g, "promptFeedback"), "blockReason");
    if (json_array_size(cands) == 0 && block != NULL) {
        /* The prompt was refused after the head went out: a filtered, empty answer. */
        if (emit_role(f, 0) != 0 || emit_finish(f, 0, "content_filter") != 0)
            return f->err;
    }
    return maybe_end(f);
}

static int on_event(void *ud, const sl_sse_event_t *ev)
{
    feed_t *f = ud;
    if (sl_str_eq(ev->data, SL_STRLIT("[DONE]")))
        return 0; /* not Gemini's, but harmless */
    json_t *g = json_loadb(ev->data.base, ev->data.len, 0, NULL);
    if (!json_is_object(g)) {
        json_decref(g);
        f->err = SL_EUPPROTO;
        return 1;
    }
    translate_event(f, g);
    json_decref(g);
    return f->err != 0;
}

static int on_stream_data(gw_proxy_t *px, const char *p, size_t n, sl_buf_t *out)
{
    return gw_tr_sse_feed(px, p, n, out, on_event);
}

/* Gemini has no [DONE]: complete when the body ended cleanly after every choice finished. */
static int stream_complete(gw_proxy_t *px)
{
    return !sl_sse_pending(&px->sse) && state(px)->done && px->sse_done;
}

const gw_adapter_t gw_adapter_gemini = {
    .name = "gemini",
    .build_request = build_request,
    .response_mode = gw_tr_sse_response_mode,
    .on_stream_data = on_stream_data,
    .stream_end = stream_end,
    .stream_complete = stream_complete,
    .on_response = on_response,
};
