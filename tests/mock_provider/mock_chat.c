/*
 * What the chat formats share: token counting, the reply text and its stream
 * pieces, tool-call arguments made up from a JSON schema, and fake embeddings.
 *
 * Every format counts the same way, so one set of rules (README.md,
 * "Deterministic values") covers them all: input tokens are the characters of
 * the prompt texts / 4 (at least 1), output tokens are the words of the reply.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tests/mock_provider/mock.h"

/* Bounds on made-up tool arguments, so a hostile schema cannot make a huge reply. */
#define TOOL_ARGS_MAX_DEPTH 4
#define TOOL_ARGS_MAX_PROPS 32

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

uint64_t mock_count_chars(const char *s, size_t n)
{
    uint64_t chars = 0;

    for (size_t i = 0; i < n; i++)
        chars += ((unsigned char)s[i] & 0xc0) != 0x80;
    return chars;
}

uint64_t mock_count_words(const char *s, size_t n)
{
    uint64_t words = 0;
    bool in_word = false;

    for (size_t i = 0; i < n; i++) {
        bool sp = is_space(s[i]);
        if (!sp && !in_word)
            words++;
        in_word = !sp;
    }
    return words;
}

uint64_t mock_tokens_from_chars(uint64_t chars)
{
    return chars / 4 > 0 ? chars / 4 : 1;
}

uint64_t mock_json_chars(const json_t *s)
{
    if (!json_is_string(s))
        return 0;
    return mock_count_chars(json_string_value(s), json_string_length(s));
}

mock_str_t mock_reply_text(const mock_req_t *req)
{
    if (req->faults.content.base != NULL)
        return req->faults.content;
    return (mock_str_t){MOCK_DEFAULT_TEXT, sizeof(MOCK_DEFAULT_TEXT) - 1};
}

mock_str_t mock_truncate_words(mock_str_t text, uint64_t max_words, bool *truncated)
{
    uint64_t words = 0;
    size_t end = 0;
    bool in_word = false;

    *truncated = false;
    for (size_t i = 0; i < text.len; i++) {
        bool sp = is_space(text.base[i]);
        if (!sp && !in_word) {
            if (words == max_words) {
                *truncated = true;
                return (mock_str_t){text.base, end};
            }
            words++;
        }
        if (!sp)
            end = i + 1;
        in_word = !sp;
    }
    return text;
}

/* ---- stream pieces ------------------------------------------------------------ */

void mock_pieces_init(mock_pieces_t *p, mock_str_t text, int64_t chunks)
{
    size_t n, i = 0, k = 0;
    const char *s;

    mock_buf_init(&p->text);
    mock_buf_append(&p->text, text.base, text.len);
    s = p->text.base;
    n = p->text.len;
    p->tokens = malloc(sizeof(size_t) * (mock_count_words(s, n) + 2));
    if (p->tokens == NULL)
        abort();
    while (i < n) {
        size_t start = i;
        while (i < n && is_space(s[i]))
            i++;
        if (i == n && k > 0)
            break; /* trailing blanks stay with the last token */
        while (i < n && !is_space(s[i]))
            i++;
        p->tokens[k++] = start;
    }
    p->tokens[k] = n;
    p->n_tokens = k;
    p->n_pieces = chunks >= 0 ? (uint64_t)chunks : k;
}

void mock_pieces_dispose(mock_pieces_t *p)
{
    mock_buf_dispose(&p->text);
    free(p->tokens);
    p->tokens = NULL;
}

void mock_pieces_append(const mock_pieces_t *p, uint64_t i, mock_buf_t *b)
{
    uint64_t k = p->n_tokens, n = p->n_pieces;
    const char *s = p->text.base;

    if (k == 0) {
        MOCK_BUF_LIT(b, "\"\"");
        return;
    }
    if (n <= k) {
        size_t from = p->tokens[i * k / n], to = p->tokens[(i + 1) * k / n];
        mock_buf_append_json_str(b, s + from, to - from);
        return;
    }
    /* More pieces than tokens: the text repeats, one token per piece, with a
     * blank between repetitions. */
    uint64_t j = i % k;
    size_t from = p->tokens[j], to = p->tokens[j + 1];
    if (i >= k && j == 0 && !is_space(s[0])) {
        mock_buf_t tmp;
        mock_buf_init(&tmp);
        MOCK_BUF_LIT(&tmp, " ");
        mock_buf_append(&tmp, s + from, to - from);
        mock_buf_append_json_str(b, tmp.base, tmp.len);
        mock_buf_dispose(&tmp);
        return;
    }
    mock_buf_append_json_str(b, s + from, to - from);
}

uint64_t mock_pieces_output_tokens(const mock_pieces_t *p)
{
    if (p->n_pieces == 0 || p->n_tokens == 0)
        return 0;
    if (p->n_pieces > p->n_tokens)
        return p->n_pieces;
    return mock_count_words(p->text.base, p->text.len);
}

uint64_t mock_pieces_tokens_upto(const mock_pieces_t *p, uint64_t i)
{
    uint64_t total = mock_pieces_output_tokens(p), upto;

    if (p->n_pieces == 0 || p->n_tokens == 0)
        return 0;
    if (p->n_pieces > p->n_tokens)
        upto = i + 1;
    else
        upto = (i + 1) * p->n_tokens / p->n_pieces;
    return upto < total ? upto : total;
}

/* ---- tool arguments -------------------------------------------------------------- */

static void schema_object(const json_t *schema, mock_buf_t *out, int depth);

/* The schema's type: a string, or the first non-"null" entry of an array. */
static const char *schema_type(const json_t *schema)
{
    const json_t *t = json_object_get(schema, "type");

    if (json_is_string(t))
        return json_string_value(t);
    for (size_t i = 0; json_is_array(t) && i < json_array_size(t); i++) {
        const json_t *v = json_array_get(t, i);
        if (json_is_string(v) && strcasecmp(json_string_value(v), "null") != 0)
            return json_string_value(v);
    }
    return NULL;
}

static void schema_value(const json_t *schema, mock_buf_t *out, int depth)
{
    const json_t *e = json_object_get(schema, "enum");
    const json_t *c = json_object_get(schema, "const");
    const char *type = schema_type(schema);

    if (json_is_array(e) && json_array_size(e) > 0) {
        mock_buf_append_json(out, json_array_get(e, 0));
        return;
    }
    if (c != NULL) {
        mock_buf_append_json(out, c);
        return;
    }
    if (type == NULL) {
        const json_t *alt = json_object_get(schema, "anyOf");
        if (!json_is_array(alt))
            alt = json_object_get(schema, "oneOf");
        if (json_is_array(alt) && json_array_size(alt) > 0 && depth < TOOL_ARGS_MAX_DEPTH) {
            schema_value(json_array_get(alt, 0), out, depth + 1);
            return;
        }
        type = json_is_object(json_object_get(schema, "properties")) ? "object" : "string";
    }
    /* Gemini's schemas spell types in upper case ("STRING"). */
    if (strcasecmp(type, "string") == 0)
        MOCK_BUF_LIT(out, "\"mock\"");
    else if (strcasecmp(type, "integer") == 0 || strcasecmp(type, "number") == 0)
        MOCK_BUF_LIT(out, "1");
    else if (strcasecmp(type, "boolean") == 0)
        MOCK_BUF_LIT(out, "true");
    else if (strcasecmp(type, "array") == 0)
        MOCK_BUF_LIT(out, "[]");
    else if (strcasecmp(type, "object") == 0)
        schema_object(schema, out, depth + 1);
    else
        MOCK_BUF_LIT(out, "null");
}

static void schema_object(const json_t *schema, mock_buf_t *out, int depth)
{
    const json_t *props = json_object_get(schema, "properties");
    const char *key;
    json_t *value;
    int n = 0;

    MOCK_BUF_LIT(out, "{");
    if (depth <= TOOL_ARGS_MAX_DEPTH && json_is_object(props)) {
        json_object_foreach((json_t *)props, key, value) {
            if (n == TOOL_ARGS_MAX_PROPS)
                break;
            if (n++)
                MOCK_BUF_LIT(out, ",");
            mock_buf_append_json_cstr(out, key);
            MOCK_BUF_LIT(out, ":");
            if (json_is_object(value))
                schema_value(value, out, depth);
            else
                MOCK_BUF_LIT(out, "null");
        }
    }
    MOCK_BUF_LIT(out, "}");
}

void mock_tool_args(const json_t *schema, mock_buf_t *out)
{
    if (!json_is_object(schema)) {
        MOCK_BUF_LIT(out, "{}");
        return;
    }
    schema_object(schema, out, 1);
}

/* Backs off to the start of a UTF-8 character. */
static size_t char_boundary(const mock_buf_t *s, size_t pos)
{
    while (pos > 0 && pos < s->len && ((unsigned char)s->base[pos] & 0xc0) == 0x80)
        pos--;
    return pos;
}

void mock_split_piece(const mock_buf_t *s, uint64_t i, uint64_t n, size_t *from, size_t *to)
{
    *from = char_boundary(s, (size_t)(i * s->len / n));
    *to = i + 1 >= n ? s->len : char_boundary(s, (size_t)((i + 1) * s->len / n));
}

uint64_t mock_arg_pieces(const mock_buf_t *args)
{
    return args->len >= 3 ? 3 : (args->len > 0 ? args->len : 1);
}

bool mock_stream_error_default(const mock_req_t *req)
{
    mock_str_t v = req->faults.stream_error;

    return mock_str_eq_nocase(v, "1") || mock_str_eq_nocase(v, "true");
}

/* ---- embeddings -------------------------------------------------------------------- */

void mock_fake_embedding(uint64_t seed, float *v, size_t dims)
{
    uint64_t state = seed;
    double norm = 0;

    for (size_t i = 0; i < dims; i++) {
        double x = (double)(mock_splitmix64(&state) >> 11) * (1.0 / 9007199254740992.0);
        v[i] = (float)(x * 2 - 1);
        norm += (double)v[i] * v[i];
    }
    norm = sqrt(norm);
    for (size_t i = 0; norm > 0 && i < dims; i++)
        v[i] = (float)(v[i] / norm);
}

void mock_buf_append_floats(mock_buf_t *b, const float *v, size_t dims)
{
    MOCK_BUF_LIT(b, "[");
    for (size_t d = 0; d < dims; d++)
        mock_buf_appendf(b, d ? ",%.9g" : "%.9g", (double)v[d]);
    MOCK_BUF_LIT(b, "]");
}

void mock_buf_append_floats_b64(mock_buf_t *b, const float *v, size_t dims)
{
    unsigned char *le = malloc(dims * 4 + 1);

    if (le == NULL)
        abort();
    for (size_t d = 0; d < dims; d++) {
        uint32_t u;
        memcpy(&u, &v[d], sizeof(u));
        le[d * 4] = (unsigned char)u;
        le[d * 4 + 1] = (unsigned char)(u >> 8);
        le[d * 4 + 2] = (unsigned char)(u >> 16);
        le[d * 4 + 3] = (unsigned char)(u >> 24);
    }
    mock_buf_append_base64(b, le, dims * 4);
    free(le);
}

bool mock_embed_type_parse(const char *s, mock_embed_type_t *out)
{
    static const struct {
        const char *name;
        mock_embed_type_t type;
    } names[] = {
        {"float", MOCK_EMBED_FLOAT},   {"int8", MOCK_EMBED_INT8},       {"uint8", MOCK_EMBED_UINT8},
        {"binary", MOCK_EMBED_BINARY}, {"ubinary", MOCK_EMBED_UBINARY},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].type;
            return true;
        }
    }
    return false;
}

/* Quantizes v into bytes: one per value for int8/uint8, one per 8 values for
 * the packed binary types (first value in the high bit). Returns the count. */
static size_t quantize(const float *v, size_t dims, mock_embed_type_t type, int *q)
{
    if (type == MOCK_EMBED_INT8 || type == MOCK_EMBED_UINT8) {
        for (size_t d = 0; d < dims; d++) {
            long x = type == MOCK_EMBED_INT8 ? lround((double)v[d] * 127.0)
                                             : lround(((double)v[d] + 1.0) * 127.5);
            long lo = type == MOCK_EMBED_INT8 ? -128 : 0, hi = type == MOCK_EMBED_INT8 ? 127 : 255;
            q[d] = (int)(x < lo ? lo : x > hi ? hi : x);
        }
        return dims;
    }
    size_t n = (dims + 7) / 8;
    for (size_t i = 0; i < n; i++) {
        int byte = 0;
        for (size_t bit = 0; bit < 8; bit++) {
            size_t d = i * 8 + bit;
            if (d < dims && v[d] > 0)
                byte |= 0x80 >> bit;
        }
        /* "binary" is offset binary: the packed byte minus 128. */
        q[i] = type == MOCK_EMBED_BINARY ? byte - 128 : byte;
    }
    return n;
}

void mock_buf_append_embedding(mock_buf_t *b, const float *v, size_t dims, mock_embed_type_t type,
                               bool base64)
{
    if (type == MOCK_EMBED_FLOAT) {
        if (base64) {
            MOCK_BUF_LIT(b, "\"");
            mock_buf_append_floats_b64(b, v, dims);
            MOCK_BUF_LIT(b, "\"");
        } else {
            mock_buf_append_floats(b, v, dims);
        }
        return;
    }
    int *q = malloc(sizeof(int) * (dims + 1));
    if (q == NULL)
        abort();
    size_t n = quantize(v, dims, type, q);
    if (base64) {
        unsigned char *raw = malloc(n + 1);
        if (raw == NULL)
            abort();
        for (size_t i = 0; i < n; i++)
            raw[i] = (unsigned char)q[i];
        MOCK_BUF_LIT(b, "\"");
        mock_buf_append_base64(b, raw, n);
        MOCK_BUF_LIT(b, "\"");
        free(raw);
    } else {
        MOCK_BUF_LIT(b, "[");
        for (size_t i = 0; i < n; i++) {
            if (i)
                MOCK_BUF_LIT(b, ",");
            mock_buf_append_i64(b, q[i]);
        }
        MOCK_BUF_LIT(b, "]");
    }
    free(q);
}
