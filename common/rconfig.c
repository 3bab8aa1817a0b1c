/*
 * Routing config parser, validator and condition evaluator (rconfig.h).
 * Field names and semantics follow Portkey's config object reference, so
 * that Portkey configs are accepted unchanged.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "common/rconfig.h"

#include <math.h>
#include <pcre2.h>
#include <string.h>

#include "common/err.h"
#include "common/json.h"

typedef struct {
    sl_arena_t *a;
    const char **err;
} ctx_t;

static int fail(ctx_t *c, const char *path, const char *what)
{
    *c->err = sl_arena_printf(c->a, "%s: %s", path, what);
    return SL_EINVAL;
}

static const char *sub(ctx_t *c, const char *path, const char *key)
{
    return sl_arena_printf(c->a, "%s.%s", path, key);
}

static int str_field(ctx_t *c, const char *path, const json_t *o, const char *key,
                     const char **out)
{
    json_t *v = json_object_get(o, key);
    if (v == NULL)
        return 0;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 4096)
        return fail(c, sub(c, path, key), "must be a non-empty string");
    *out = json_string_value(v);
    return 0;
}

static int codes_field(ctx_t *c, const char *path, const json_t *v, int *codes, size_t *n)
{
    if (!json_is_array(v) || json_array_size(v) > SL_RCFG_MAX_CODES)
        return fail(c, path, "must be an array of at most 32 HTTP status codes");
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
        if (!json_is_integer(x) || json_integer_value(x) < 100 || json_integer_value(x) > 599)
            return fail(c, sl_arena_printf(c->a, "%s[%zu]", path, i),
                        "must be an HTTP status code (100..599)");
        codes[i] = (int)json_integer_value(x);
    }
    *n = json_array_size(v);
    return 0;
}

static int retry_field(ctx_t *c, const char *path, const json_t *v, sl_rcfg_retry_t *r)
{
    if (!json_is_object(v))
        return fail(c, path, "must be an object");
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        const char *p = sub(c, path, k);
        if (strcmp(k, "attempts") == 0) {
            if (!json_is_integer(x) || json_integer_value(x) < 0 ||
                json_integer_value(x) > SL_RCFG_MAX_ATTEMPTS)
                return fail(c, p, "must be an integer 0..10");
            r->attempts = (int)json_integer_value(x);
        } else if (strcmp(k, "on_status_codes") == 0) {
            int rc = codes_field(c, p, x, r->codes, &r->ncodes);
            if (rc != 0)
                return rc;
        } else if (strcmp(k, "use_retry_after_header") == 0 ||
                   strcmp(k, "use_retry_after_headers") == 0) { /* the plural Portkey's docs print */
            if (!json_is_boolean(x))
                return fail(c, p, "must be true or false");
            r->use_retry_after = json_is_true(x);
        } else {
            return fail(c, p, "unknown retry field");
        }
    }
    r->set = 1;
    return 0;
}

static int breaker_field(ctx_t *c, const char *path, const json_t *v, sl_rcfg_breaker_t *b)
{
    if (!json_is_object(v))
        return fail(c, path, "must be an object");
    b->failures = 5;
    b->window_ms = 30000;
    b->min_requests = 10;
    b->cooldown_ms = 30000;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        const char *p = sub(c, path, k);
        json_int_t i = json_is_integer(x) ? json_integer_value(x) : -1;
        if (strcmp(k, "failures") == 0) {
            if (i < 0 || i > 1000)
                return fail(c, p, "must be an integer 0..1000 (0: only the error rate opens it)");
            b->failures = (int)i;
        } else if (strcmp(k, "error_rate") == 0) {
            if (!json_is_number(x) || json_number_value(x) <= 0 || json_number_value(x) > 1)
                return fail(c, p, "must be a number above 0 and at most 1");
            b->error_rate = json_number_value(x);
        } else if (strcmp(k, "window_ms") == 0) {
            if (i < 100 || i > SL_RCFG_MAX_TIMEOUT_MS)
                return fail(c, p, "must be milliseconds, an integer 100..3600000");
            b->window_ms = (uint64_t)i;
        } else if (strcmp(k, "min_requests") == 0) {
            if (i < 1 || i > 100000)
                return fail(c, p, "must be an integer 1..100000");
            b->min_requests = (int)i;
        } else if (strcmp(k, "cooldown_ms") == 0) {
            if (i < 10 || i > SL_RCFG_MAX_TIMEOUT_MS)
                return fail(c, p, "must be milliseconds, an integer 10..3600000");
            b->cooldown_ms = (uint64_t)i;
        } else {
            return fail(c, p, "unknown circuit_breaker field");
        }
    }
    if (b->failures == 0 && b->error_rate == 0)
        return fail(c, path, "needs failures or error_rate");
    b->set = 1;
    return 0;
}

static const char *const ops[] = {"$eq", "$ne", "$in", "$nin", "$gt", "$gte",
                                  "$lt", "$lte", "$regex", "$and", "$or"};

static int query_valid(ctx_t *c, const char *path, const json_t *q, int depth)
{
    if (!json_is_object(q) || depth > 16)
        return fail(c, path, "must be a query object");
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)q, k, x) {
        const char *p = sub(c, path, k);
        if (strcmp(k, "$and") == 0 || strcmp(k, "$or") == 0) {
            if (!json_is_array(x) || json_array_size(x) == 0)
                return fail(c, p, "must be a non-empty array of queries");
            size_t i;
            json_t *e;
            json_array_foreach(x, i, e) {
                int r = query_valid(c, sl_arena_printf(c->a, "%s[%zu]", p, i), e, depth + 1);
                if (r != 0)
                    return r;
            }
            continue;
        }
        if (k[0] == '$')
            return fail(c, p, "unknown operator at the top of a query");
        if (strncmp(k, "metadata.", 9) != 0 && strncmp(k, "params.", 7) != 0 &&
            strcmp(k, "url.pathname") != 0)
            return fail(c, p, "fields are metadata.<key>, params.<key> or url.pathname");
        if (!json_is_object(x))
            continue; /* a bare value: $eq */
        const char *op;
        json_t *arg;
        json_object_foreach(x, op, arg) {
            const char *po = sub(c, p, op);
            size_t o;
            for (o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
                if (strcmp(op, ops[o]) == 0)
                    break;
            if (o == sizeof(ops) / sizeof(ops[0]) || strcmp(op, "$and") == 0 ||
                strcmp(op, "$or") == 0)
                return fail(c, po, "unknown operator (use $eq $ne $in $nin $gt $gte $lt $lte $regex)");
            if ((strcmp(op, "$in") == 0 || strcmp(op, "$nin") == 0) && !json_is_array(arg))
                return fail(c, po, "must be an array");
            if (op[1] == 'g' || op[1] == 'l') {
                if (!json_is_number(arg))
                    return fail(c, po, "must be a number");
            }
            if (strcmp(op, "$regex") == 0) {
                if (!json_is_string(arg))
                    return fail(c, po, "must be a string");
                int ec;
                PCRE2_SIZE eo;
                pcre2_code *re = pcre2_compile((PCRE2_SPTR)json_string_value(arg),
                                               json_string_length(arg), PCRE2_UTF, &ec, &eo, NULL);
                if (re == NULL)
                    return fail(c, po, "is not a valid regular expression");
                pcre2_code_free(re);
            }
        }
    }
    return 0;
}

static int node(ctx_t *c, const char *path, json_t *o, sl_rcfg_node_t *n, int depth);

static int strategy_field(ctx_t *c, const char *path, const json_t *v, sl_rcfg_node_t *n)
{
    if (!json_is_object(v))
        return fail(c, path, "must be an object");
    json_t *mode = json_object_get(v, "mode");
    const char *m = json_string_value(mode);
    if (m == NULL)
        return fail(c, sub(c, path, "mode"),
                    "is required: single, fallback, loadbalance or conditional");
    if (strcmp(m, "single") == 0)
        n->mode = SL_RCFG_SINGLE;
    else if (strcmp(m, "fallback") == 0)
        n->mode = SL_RCFG_FALLBACK;
    else if (strcmp(m, "loadbalance") == 0)
        n->mode = SL_RCFG_LOADBALANCE;
    else if (strcmp(m, "conditional") == 0)
        n->mode = SL_RCFG_CONDITIONAL;
    else
        return fail(c, sub(c, path, "mode"), "must be single, fallback, loadbalance or conditional");
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        const char *p = sub(c, path, k);
        if (strcmp(k, "mode") == 0)
            continue;
        if (strcmp(k, "on_status_codes") == 0) {
            int r = codes_field(c, p, x, n->codes, &n->ncodes);
            if (r != 0)
                return r;
        } else if (strcmp(k, "policy") == 0) {
            const char *pv = json_string_value(x);
            if (n->mode != SL_RCFG_LOADBALANCE)
                return fail(c, p, "applies to loadbalance only");
            if (pv != NULL && strcmp(pv, "weighted") == 0)
                n->policy = SL_RCFG_WEIGHTED;
            else if (pv != NULL && strcmp(pv, "least_latency") == 0)
                n->policy = SL_RCFG_LEAST_LATENCY;
            else
                return fail(c, p, "must be weighted or least_latency");
        } else if (strcmp(k, "conditions") == 0) {
            if (!json_is_array(x) || json_array_size(x) == 0 || json_array_size(x) > 64)
                return fail(c, p, "must be an array of 1..64 conditions");
            n->nconds = json_array_size(x);
            n->conds = sl_arena_alloc(c->a, n->nconds * sizeof(*n->conds), _Alignof(sl_rcfg_cond_t));
            size_t i;
            json_t *e;
            json_array_foreach(x, i, e) {
                const char *pe = sl_arena_printf(c->a, "%s[%zu]", p, i);
                json_t *q = json_object_get(e, "query");
                const char *then = json_string_value(json_object_get(e, "then"));
                if (!json_is_object(e) || q == NULL || then == NULL)
                    return fail(c, pe, "must be {\"query\": {...}, \"then\": \"<target name>\"}");
                int r = query_valid(c, sub(c, pe, "query"), q, 0);
                if (r != 0)
                    return r;
                n->conds[i].query = q;
                n->conds[i].then = then;
            }
        } else if (strcmp(k, "default") == 0) {
            if (!json_is_string(x))
                return fail(c, p, "must be a target name");
            n->default_target = json_string_value(x);
        } else {
            return fail(c, p, "unknown strategy field");
        }
    }
    if (n->mode == SL_RCFG_CONDITIONAL && n->nconds == 0)
        return fail(c, sub(c, path, "conditions"), "are required by the conditional mode");
    if (n->mode != SL_RCFG_CONDITIONAL && (n->nconds > 0 || n->default_target != NULL))
        return fail(c, path, "conditions and default apply to the conditional mode only");
    return 0;
}

static int target_named(const sl_rcfg_node_t *n, const char *name)
{
    for (size_t i = 0; i < n->ntargets; i++)
        if (n->targets[i].name != NULL && strcmp(n->targets[i].name, name) == 0)
            return 1;
    return 0;
}

static int node(ctx_t *c, const char *path, json_t *o, sl_rcfg_node_t *n, int depth)
{
    memset(n, 0, sizeof(*n));
    n->path = path;
    n->weight = 1;
    if (!json_is_object(o))
        return fail(c, path, "must be an object");
    if (depth > SL_RCFG_MAX_DEPTH)
        return fail(c, path, "targets nest deeper than 8 levels");
    const char *k;
    json_t *x;
    json_t *targets = NULL, *strategy = NULL;
    json_object_foreach(o, k, x) {
        const char *p = sub(c, path, k);
        int r = 0;
        if (strcmp(k, "strategy") == 0) {
            strategy = x;
        } else if (strcmp(k, "targets") == 0) {
            targets = x;
        } else if (strcmp(k, "name") == 0) {
            r = str_field(c, path, o, k, &n->name);
        } else if (strcmp(k, "provider") == 0) {
            r = str_field(c, path, o, k, &n->provider);
        } else if (strcmp(k, "api_key") == 0) {
            r = str_field(c, path, o, k, &n->api_key);
        } else if (strcmp(k, "virtual_key") == 0) {
            r = str_field(c, path, o, k, &n->virtual_key);
        } else if (strcmp(k, "custom_host") == 0) {
            r = str_field(c, path, o, k, &n->custom_host);
        } else if (strcmp(k, "weight") == 0) {
            if (!json_is_number(x) || json_number_value(x) < 0 || json_number_value(x) > 1e6 ||
                !isfinite(json_number_value(x)))
                r = fail(c, p, "must be a number 0..1000000");
            else
                n->weight = json_number_value(x);
        } else if (strcmp(k, "retry") == 0) {
            r = retry_field(c, p, x, &n->retry);
        } else if (strcmp(k, "circuit_breaker") == 0) {
            r = breaker_field(c, p, x, &n->breaker);
        } else if (strcmp(k, "request_timeout") == 0) {
            if (!json_is_integer(x) || json_integer_value(x) < 1 ||
                json_integer_value(x) > SL_RCFG_MAX_TIMEOUT_MS)
                r = fail(c, p, "must be milliseconds, an integer 1..3600000");
            else
                n->request_timeout_ms = (uint64_t)json_integer_value(x);
        } else if (strcmp(k, "override_params") == 0) {
            if (!json_is_object(x))
                r = fail(c, p, "must be an object");
            n->override_params = x;
        } else if (strcmp(k, "forward_headers") == 0) {
            size_t i;
            json_t *h;
            if (!json_is_array(x))
                r = fail(c, p, "must be an array of header names");
            json_array_foreach(x, i, h) {
                if (r == 0 && (!json_is_string(h) || json_string_length(h) == 0))
                    r = fail(c, sl_arena_printf(c->a, "%s[%zu]", p, i), "must be a header name");
            }
            n->forward_headers = x;
        } else if (strcmp(k, "cache") == 0) {
            const char *mode = json_string_value(json_object_get(x, "mode"));
            json_t *age = json_object_get(x, "max_age");
            if (!json_is_object(x) || mode == NULL ||
                (strcmp(mode, "simple") != 0 && strcmp(mode, "semantic") != 0))
                r = fail(c, sub(c, p, "mode"), "must be simple or semantic");
            else if (age != NULL && (!json_is_integer(age) || json_integer_value(age) < 0))
                r = fail(c, sub(c, p, "max_age"), "must be seconds, an integer >= 0");
            n->cache = x;
        } else if (strcmp(k, "input_guardrails") == 0 || strcmp(k, "before_request_hooks") == 0 ||
                   strcmp(k, "output_guardrails") == 0 || strcmp(k, "after_request_hooks") == 0) {
            if (!json_is_array(x))
                r = fail(c, p, "must be an array");
            if (k[0] == 'i' || k[0] == 'b')
                n->input_guardrails = x;
            else
                n->output_guardrails = x;
        } else if (json_is_string(x) || json_is_number(x) || json_is_boolean(x)) {
            /* Provider options (aws_region, resource_name...) and flags such
             * as strict_open_ai_compliance: kept for the provider. */
            if (n->options == NULL) {
                n->options = json_object();
                sl_arena_defer(c->a, sl_json_decref_cb, n->options);
            }
            json_object_set(n->options, k, x);
        } else {
            r = fail(c, p, "unknown field");
        }
        if (r != 0)
            return r;
    }
    if (strategy != NULL) {
        int r = strategy_field(c, sub(c, path, "strategy"), strategy, n);
        if (r != 0)
            return r;
    }
    if (targets != NULL) {
        const char *p = sub(c, path, "targets");
        if (!json_is_array(targets) || json_array_size(targets) == 0 ||
            json_array_size(targets) > SL_RCFG_MAX_TARGETS)
            return fail(c, p, "must be an array of 1..64 targets");
        if (strategy == NULL)
            return fail(c, path, "targets need a strategy");
        if (n->provider != NULL || n->api_key != NULL || n->virtual_key != NULL)
            return fail(c, path, "a node has targets or a provider, not both");
        n->ntargets = json_array_size(targets);
        n->targets = sl_arena_alloc(c->a, n->ntargets * sizeof(*n->targets),
                                    _Alignof(sl_rcfg_node_t));
        size_t i;
        json_t *t;
        json_array_foreach(targets, i, t) {
            int r = node(c, sl_arena_printf(c->a, "%s[%zu]", p, i), t, &n->targets[i], depth + 1);
            if (r != 0)
                return r;
        }
        double total = 0;
        for (i = 0; i < n->ntargets; i++)
            total += n->targets[i].weight;
        if (n->mode == SL_RCFG_LOADBALANCE && total <= 0)
            return fail(c, p, "a loadbalance needs a target with a weight above 0");
    } else if (strategy != NULL && n->mode != SL_RCFG_SINGLE) {
        return fail(c, sub(c, path, "targets"), "are required by this strategy");
    }
    for (size_t i = 0; i < n->nconds; i++)
        if (!target_named(n, n->conds[i].then))
            return fail(c, sl_arena_printf(c->a, "%s.strategy.conditions[%zu].then", path, i),
                        "names no target of this node");
    if (n->default_target != NULL && !target_named(n, n->default_target))
        return fail(c, sub(c, path, "strategy.default"), "names no target of this node");
    return 0;
}

int sl_rcfg_parse_json(sl_arena_t *a, json_t *v, sl_rcfg_t *out, const char **err)
{
    ctx_t c = {a, err};
    *err = NULL;
    memset(out, 0, sizeof(*out));
    if (!json_is_object(v))
        return fail(&c, "config", "must be a JSON object");
    json_incref(v);
    sl_arena_defer(a, sl_json_decref_cb, v);
    out->json = v;
    return node(&c, "config", v, &out->root, 0);
}

int sl_rcfg_parse(sl_arena_t *a, sl_str_t text, sl_rcfg_t *out, const char **err)
{
    json_error_t je;
    json_t *v = json_loadb(text.base, text.len, 0, &je);
    if (v == NULL) {
        *err = sl_arena_printf(a, "config: not JSON: %s (column %d)", je.text, je.column);
        return SL_EINVAL;
    }
    int r = sl_rcfg_parse_json(a, v, out, err);
    json_decref(v);
    return r;
}

/* ---- conditions ------------------------------------------------------------ */

/* The value at a dotted path below root ("a.b.c"), or NULL. */
static const json_t *lookup(const json_t *root, const char *path)
{
    const json_t *v = root;
    char key[256];
    while (v != NULL && *path != '\0') {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof(key))
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        v = json_object_get(v, key);
        path += n + (dot != NULL);
    }
    return v;
}

static int cmp_num(const json_t *a, const json_t *b, int *out)
{
    if (!json_is_number(a) || !json_is_number(b))
        return 0;
    double x = json_number_value(a), y = json_number_value(b);
    *out = x < y ? -1 : x > y;
    return 1;
}

static int in_array(const json_t *v, const json_t *arr)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        if (v != NULL && json_equal((json_t *)v, e))
            return 1;
    }
    return 0;
}

static int regex_match(const json_t *v, const json_t *pat)
{
    if (!json_is_string(v) || !json_is_string(pat))
        return 0;
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)json_string_value(pat), json_string_length(pat),
                                   PCRE2_UTF, &ec, &eo, NULL);
    if (re == NULL)
        return 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int r = pcre2_match(re, (PCRE2_SPTR)json_string_value(v), json_string_length(v), 0, 0, md,
                        NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return r >= 0;
}

static int op_holds(const char *op, const json_t *v, const json_t *arg)
{
    int c;
    if (strcmp(op, "$eq") == 0)
        return v != NULL && json_equal((json_t *)v, (json_t *)arg);
    if (strcmp(op, "$ne") == 0)
        return v == NULL || !json_equal((json_t *)v, (json_t *)arg);
    if (strcmp(op, "$in") == 0)
        return in_array(v, arg);
    if (strcmp(op, "$nin") == 0)
        return !in_array(v, arg);
    if (strcmp(op, "$regex") == 0)
        return regex_match(v, arg);
    if (!cmp_num(v, arg, &c))
        return 0;
    if (strcmp(op, "$gt") == 0)
        return c > 0;
    if (strcmp(op, "$gte") == 0)
        return c >= 0;
    if (strcmp(op, "$lt") == 0)
        return c < 0;
    if (strcmp(op, "$lte") == 0)
        return c <= 0;
    return 0;
}

int sl_rcfg_match(const json_t *q, const json_t *metadata, const json_t *params,
                  sl_str_t pathname)
{
    if (!json_is_object(q))
        return 0;
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)q, k, x) {
        if (strcmp(k, "$and") == 0 || strcmp(k, "$or") == 0) {
            int any = 0, all = 1;
            size_t i;
            json_t *e;
            json_array_foreach(x, i, e) {
                int m = sl_rcfg_match(e, metadata, params, pathname);
                any |= m;
                all &= m;
            }
            if (k[1] == 'a' ? !all : !any)
                return 0;
            continue;
        }
        const json_t *v = NULL;
        json_t *path_value = NULL;
        if (strncmp(k, "metadata.", 9) == 0) {
            v = lookup(metadata, k + 9);
        } else if (strncmp(k, "params.", 7) == 0) {
            v = lookup(params, k + 7);
        } else if (strcmp(k, "url.pathname") == 0) {
            path_value = json_stringn(pathname.base ? pathname.base : "", pathname.len);
            v = path_value;
        }
        int ok = 1;
        if (json_is_object(x)) {
            const char *op;
            json_t *arg;
            json_object_foreach(x, op, arg) {
                if (!op_holds(op, v, arg))
                    ok = 0;
            }
        } else {
            ok = op_holds("$eq", v, x);
        }
        json_decref(path_value);
        if (!ok)
            return 0;
    }
    return 1;
}
