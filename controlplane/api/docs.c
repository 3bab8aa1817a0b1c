/* Versioned documents: routing configs, guardrails and prompts. The head
 * row names the current version; every change appends an immutable
 * version, and a rollback appends a copy of an older one, so history only
 * grows and every version stays readable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "common/alloc.h"
#include "common/arena.h"
#include "common/err.h"
#include "common/log.h"
#include "common/rconfig.h"
#include "controlplane/api/api.h"

typedef int (*check_fn)(cp_req_t *r, const json_t *body, const char *path);

typedef struct {
    const char *base;    /* route prefix */
    const char *kind;    /* object name, and the body field holding the document */
    const char *prefix;  /* id prefix */
    check_fn check;
    /* SQL, built from literals below */
    const char *list, *get, *lock, *insert_head, *insert_version, *update_head, *del, *versions,
        *version;
} doc_kind_t;

#define DOC_JSON(OBJ, VT, FK)                                                                      \
    "json_build_object('object', '" OBJ "', 'id', d.id, 'workspace_id', d.workspace_id, 'name',"  \
    " d.name, 'current_version', d.current_version, '" OBJ "', (SELECT x.body FROM " VT " x"      \
    " WHERE x." FK " = d.id AND x.version = d.current_version), 'created_at', d.created_at,"      \
    " 'updated_at', d.updated_at, 'version', d.version)"
#define VER_JSON(OBJ, FK)                                                                          \
    "json_build_object('object', '" OBJ "_version', '" FK "', x." FK ", 'version', x.version,"    \
    " '" OBJ "', x.body, 'note', x.note, 'created_by', x.created_by, 'created_at', x.created_at)"

#define DOC_SQL(T, VT, FK, OBJ)                                                                    \
    .list = "SELECT coalesce(json_agg(j ORDER BY id DESC), '[]')::text FROM (SELECT d.id, "       \
            DOC_JSON(OBJ, VT, FK) " AS j FROM " T " d WHERE ($1::text IS NULL OR"                 \
            " d.workspace_id = $1) AND ($2::text IS NULL OR d.workspace_id = $2) AND ($3::text"   \
            " IS NULL OR d.id < $3) ORDER BY d.id DESC LIMIT $4::int) s",                        \
    .get = "SELECT " DOC_JSON(OBJ, VT, FK) ", d.version FROM " T " d WHERE d.id = $1 AND"        \
           " ($2::text IS NULL OR d.workspace_id = $2)",                                          \
    .lock = "SELECT " DOC_JSON(OBJ, VT, FK) ", d.version FROM " T " d WHERE d.id = $1 AND"       \
            " ($2::text IS NULL OR d.workspace_id = $2) FOR UPDATE",                              \
    .insert_head = "INSERT INTO " T " (id, workspace_id, name, current_version) VALUES ($1, $2,"  \
                   " $3, 1)",                                                                     \
    .insert_version = "INSERT INTO " VT " (" FK ", version, body, note, created_by) VALUES ($1,"  \
                      " $2::int, $3::jsonb, coalesce($4, ''), $5)",                               \
    .update_head = "WITH d AS (UPDATE " T " SET name = $2, current_version = $3::int,"           \
                   " updated_at = now(), version = version + 1 WHERE id = $1 RETURNING *)"        \
                   " SELECT " DOC_JSON(OBJ, VT, FK) ", d.version FROM d",                         \
    .del = "DELETE FROM " T " WHERE id = $1",                                                     \
    .versions = "SELECT coalesce(json_agg(j ORDER BY v DESC), '[]')::text FROM (SELECT"          \
                " x.version AS v, " VER_JSON(OBJ, FK) " AS j FROM " VT " x JOIN " T " d ON d.id"  \
                " = x." FK " WHERE x." FK " = $1 AND ($2::text IS NULL OR d.workspace_id = $2)"   \
                " AND ($3::int IS NULL OR x.version < $3::int) ORDER BY x.version DESC LIMIT"     \
                " $4::int) s",                                                                    \
    .version = "SELECT " VER_JSON(OBJ, FK) " FROM " VT " x JOIN " T " d ON d.id = x." FK          \
               " WHERE x." FK " = $1 AND x.version = $3::int AND ($2::text IS NULL OR"           \
               " d.workspace_id = $2)"

/* ---- shape checks -------------------------------------------------------- */

/* Stored configs reference provider credentials through virtual keys; a
 * secret pasted into a config would sit in clear in Postgres, in every
 * version and in every snapshot. */
static const char *const secret_names[] = {"api_key", "aws_secret_access_key", "aws_session_token",
                                           "azure_ad_token", "service_account_json", NULL};

static int find_secret(cp_req_t *r, const json_t *v, const char *path)
{
    char sub[512];
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) {
            snprintf(sub, sizeof(sub), "%.250s.%.100s", path, k);
            for (const char *const *s = secret_names; *s != NULL; s++)
                if (strcmp(k, *s) == 0)
                    return cp_fail_field(r, sub,
                                         "stored configs must not hold provider secrets; use a "
                                         "virtual_key");
            if (find_secret(r, x, sub) != 0)
                return -1;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) {
            snprintf(sub, sizeof(sub), "%.250s[%zu]", path, i);
            if (find_secret(r, x, sub) != 0)
                return -1;
        }
    }
    return 0;
}

static int check_config(cp_req_t *r, const json_t *body, const char *path)
{
    sl_arena_t a;
    sl_rcfg_t cfg;
    const char *err = NULL;
    if (!json_is_object(body))
        return cp_fail_field(r, path, "must be a routing config object");
    if (find_secret(r, body, path) != 0)
        return -1;
    sl_arena_init(&a);
    int ret = sl_rcfg_parse_json(&a, (json_t *)body, &cfg, &err);
    if (ret != 0) {
        /* err names the path inside the config: "targets[1].weight: ..." */
        char full[300];
        const char *e = err != NULL ? err : "config: invalid";
        /* The validator's paths start at "config"; ours at "$.config". */
        if (strncmp(e, "config", 6) == 0)
            e += 6;
        snprintf(full, sizeof(full), "%s%s", path, e);
        char *colon = strstr(full, ": ");
        if (colon != NULL)
            *colon = '\0';
        ret = cp_fail_field(r, full, "%s", colon != NULL ? colon + 2 : "invalid config");
    }
    sl_arena_clear(&a);
    return ret;
}

static const char *const g_types[] = {"regex", "pii", "injection", "json_schema", "webhook",
                                      "word_list", "length", "model_allow", NULL};
static const char *const g_actions[] = {"block", "mask", "warn", "log", NULL};
static const char *const g_stages[] = {"input", "output", "both", NULL};
static const char *const g_pii[] = {"email", "phone", "credit_card", "ssn", "ip_address",
                                    "iban", "api_key", "name", "address", NULL};

static const cp_field_t guardrail_fields[] = {
    {.name = "type", .type = CP_F_ENUM, .required = 1, .enums = g_types},
    {.name = "action", .type = CP_F_ENUM, .required = 1, .enums = g_actions},
    {.name = "stage", .type = CP_F_ENUM, .enums = g_stages},
    {.name = "description", .type = CP_F_TEXT, .max = 2000},
    {.name = "pattern", .type = CP_F_STRING, .max = 4096},
    {.name = "entities", .type = CP_F_STRINGS, .max = 16, .enums = g_pii},
    {.name = "threshold", .type = CP_F_NUMBER, .min = 0, .max = 1},
    {.name = "schema", .type = CP_F_OBJECT},
    {.name = "url", .type = CP_F_STRING, .max = 2048},
    {.name = "timeout_ms", .type = CP_F_INT, .min = 1, .max = 60000},
    {.name = "words", .type = CP_F_STRINGS, .max = 10000},
    {.name = "min", .type = CP_F_INT, .min = 0, .max = 10000000},
    {.name = "max", .type = CP_F_INT, .min = 0, .max = 10000000},
    {.name = "models", .type = CP_F_STRINGS, .max = 1000},
    {0},
};

static int need(cp_req_t *r, const json_t *body, const char *path, const char *field,
                const char *type)
{
    if (json_object_get(body, field) != NULL)
        return 0;
    char sub[512];
    snprintf(sub, sizeof(sub), "%s.%s", path, field);
    return cp_fail_field(r, sub, "is required for a %s guardrail", type);
}

static int check_guardrail(cp_req_t *r, const json_t *body, const char *path)
{
    char sub[512];
    if (cp_validate(r, body, guardrail_fields, 0, path) != 0)
        return -1;
    const char *type = json_string_value(json_object_get(body, "type"));
    if (strcmp(type, "regex") == 0) {
        if (need(r, body, path, "pattern", type) != 0)
            return -1;
        int code;
        PCRE2_SIZE off;
        const char *pat = json_string_value(json_object_get(body, "pattern"));
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code,
                                       &off, NULL);
        if (re == NULL) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(code, msg, sizeof(msg));
            snprintf(sub, sizeof(sub), "%s.pattern", path);
            return cp_fail_field(r, sub, "does not compile at offset %zu: %s", (size_t)off,
                                 (const char *)msg);
        }
        pcre2_code_free(re);
    } else if (strcmp(type, "pii") == 0) {
        return need(r, body, path, "entities", type);
    } else if (strcmp(type, "json_schema") == 0) {
        return need(r, body, path, "schema", type);
    } else if (strcmp(type, "word_list") == 0) {
        return need(r, body, path, "words", type);
    } else if (strcmp(type, "model_allow") == 0) {
        return need(r, body, path, "models", type);
    } else if (strcmp(type, "length") == 0) {
        json_t *mn = json_object_get(body, "min"), *mx = json_object_get(body, "max");
        if (mn == NULL && mx == NULL)
            return cp_fail_field(r, path, "a length guardrail needs min or max");
        if (mn != NULL && mx != NULL && json_integer_value(mn) > json_integer_value(mx)) {
            snprintf(sub, sizeof(sub), "%s.min", path);
            return cp_fail_field(r, sub, "must not exceed max");
        }
    } else if (strcmp(type, "webhook") == 0) {
        if (need(r, body, path, "url", type) != 0)
            return -1;
        const char *url = json_string_value(json_object_get(body, "url"));
        if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
            snprintf(sub, sizeof(sub), "%s.url", path);
            return cp_fail_field(r, sub, "must be an http:// or https:// URL");
        }
    }
    if (strcmp(json_string_value(json_object_get(body, "action")), "mask") == 0 &&
        strcmp(type, "pii") != 0 && strcmp(type, "regex") != 0 && strcmp(type, "word_list") != 0)
        return cp_fail_field(r, path, "action mask needs a pii, regex or word_list guardrail");
    return 0;
}

static const char *const p_roles[] = {"system", "developer", "user", "assistant", NULL};

static const cp_field_t message_fields[] = {
    {.name = "role", .type = CP_F_ENUM, .required = 1, .enums = p_roles},
    {.name = "content", .type = CP_F_TEXT, .required = 1, .max = 1000000},
    {0},
};

static const cp_field_t prompt_fields[] = {
    {.name = "messages", .type = CP_F_ANY, .required = 1},
    {.name = "model", .type = CP_F_STRING, .max = 256},
    {.name = "provider", .type = CP_F_STRING, .max = 64},
    {.name = "parameters", .type = CP_F_OBJECT},
    {.name = "variables", .type = CP_F_OBJECT},
    {.name = "description", .type = CP_F_TEXT, .max = 2000},
    {0},
};

/* Every {{variable}} a template uses must be a plain name. */
static int check_template(cp_req_t *r, const char *s, const char *path)
{
    for (const char *p = strstr(s, "{{"); p != NULL; p = strstr(p + 2, "{{")) {
        const char *end = strstr(p + 2, "}}");
        if (end == NULL)
            return cp_fail_field(r, path, "has an unclosed {{");
        const char *n = p + 2, *e = end;
        while (n < e && *n == ' ')
            n++;
        while (e > n && e[-1] == ' ')
            e--;
        size_t len = (size_t)(e - n);
        if (len == 0 || len > 64 || strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") < len)
            return cp_fail_field(r, path, "{{...}} must name a variable (letters, digits, _ and .)");
        p = end;
    }
    return 0;
}

static int check_prompt(cp_req_t *r, const json_t *body, const char *path)
{
    char sub[512];
    size_t i;
    json_t *m;
    if (cp_validate(r, body, prompt_fields, 0, path) != 0)
        return -1;
    const json_t *msgs = json_object_get(body, "messages");
    snprintf(sub, sizeof(sub), "%s.messages", path);
    if (!json_is_array(msgs) || json_array_size(msgs) == 0 || json_array_size(msgs) > 1000)
        return cp_fail_field(r, sub, "must be an array of 1 to 1000 messages");
    json_array_foreach(msgs, i, m) {
        snprintf(sub, sizeof(sub), "%s.messages[%zu]", path, i);
        if (cp_validate(r, m, message_fields, 0, sub) != 0)
            return -1;
        snprintf(sub, sizeof(sub), "%s.messages[%zu].content", path, i);
        if (check_template(r, json_string_value(json_object_get(m, "content")), sub) != 0)
            return -1;
    }
    return 0;
}

static const doc_kind_t kinds[] = {
    {"/v1/admin/configs", "config", "cfg", check_config,
     DOC_SQL("configs", "config_versions", "config_id", "config")},
    {"/v1/admin/guardrails", "guardrail", "grd", check_guardrail,
     DOC_SQL("guardrails", "guardrail_versions", "guardrail_id", "guardrail")},
    {"/v1/admin/prompts", "prompt", "pmt", check_prompt,
     DOC_SQL("prompts", "prompt_versions", "prompt_id", "prompt")},
};

static const doc_kind_t *kind_of(cp_req_t *r)
{
    int n;
    const char *path = cp_routes(&n)[r->route].path;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strncmp(path, kinds[i].base, strlen(kinds[i].base)) == 0)
            return &kinds[i];
    SL_ASSERT(!"route without a document kind");
    return NULL;
}

/* ---- handlers -------------------------------------------------------------- */

int cp_h_docs_list(cp_req_t *r)
{
    const doc_kind_t *k = kind_of(r);
    const char *filters[] = {cp_scope(r), cp_query(r, "workspace_id")};
    return cp_list(r, k->list, 2, filters, "id", 0);
}

int cp_h_docs_get(cp_req_t *r)
{
    const doc_kind_t *k = kind_of(r);
    const char *vals[] = {r->params[0], cp_scope(r)};
    return cp_db_reply_one(r, 200, k->kind, k->get, 2, vals);
}

static int add_version(cp_req_t *r, const doc_kind_t *k, const char *id, int version,
                       const json_t *body, const char *note)
{
    PGresult *res = NULL;
    char ver[16];
    snprintf(ver, sizeof(ver), "%d", version);
    char *b = cp_param(body);
    const char *vals[] = {id, ver, b, note, r->actor.id};
    int ret = cp_db(r, &res, k->insert_version, 5, vals);
    sl_free(b);
    PQclear(res);
    return ret;
}

int cp_h_docs_create(cp_req_t *r)
{
    const doc_kind_t *k = kind_of(r);
    PGresult *res = NULL;
    char id[48], ws[48], path[64];
    const cp_field_t fields[] = {
        {.name = "name", .type = CP_F_STRING, .required = 1, .min = 1, .max = 128},
        {.name = "workspace_id", .type = CP_F_STRING, .max = 64},
        {.name = k->kind, .type = CP_F_ANY, .required = 1},
        {.name = "note", .type = CP_F_TEXT, .max = 2000},
        {0},
    };
    snprintf(path, sizeof(path), "$.%s", k->kind);
    if (cp_need_role(r, CP_ROLE_MEMBER) != 0 || cp_validate(r, r->json, fields, 0, "$") != 0 ||
        k->check(r, json_object_get(r->json, k->kind), path) != 0 ||
        cp_target_workspace(r, r->json, ws) != 0)
        return -1;
    cp_new_id(k->prefix, id, sizeof(id));
    const char *name = json_string_value(json_object_get(r->json, "name"));
    const char *note = json_string_value(json_object_get(r->json, "note"));
    const char *hv[] = {id, ws, name};
    if (cp_db(r, &res, k->insert_head, 3, hv) != 0)
        return -1;
    PQclear(res);
    if (add_version(r, k, id, 1, json_object_get(r->json, k->kind), note) != 0)
        return -1;
    const char *gv[] = {id, NULL};
    if (cp_db_reply_one(r, 201, k->kind, k->get, 2, gv) != 0)
        return -1;
    return cp_audit(r, "create", k->kind, id, ws, NULL, r->out);
}

int cp_h_docs_update(cp_req_t *r)
{
    const doc_kind_t *k = kind_of(r);
    PGresult *res = NULL;
    char version[16], path[64], cv[16];
    const cp_field_t fields[] = {
        {.name = "name", .type = CP_F_STRING, .min = 1, .max = 128},
        {.name = k->kind, .type = CP_F_ANY},
        {.name = "note", .type = CP_F_TEXT, .max = 2000},
        {0},
    };
    snprintf(path, sizeof(path), "$.%s", k->kind);
    if (cp_need_role(r, CP_ROLE_MEMBER) != 0 || cp_validate(r, r->json, fields, 1, "$") != 0)
        return -1;
    json_t *body = json_object_get(r->json, k->kind);
    if (body != NULL && k->check(r, body, path) != 0)
        return -1;
    const char *lv[] = {r->params[0], cp_scope(r)};
    json_t *cur = cp_load_for_update(r, k->kind, k->lock, 2, lv, version);
    if (cur == NULL)
        return -1;
    int current = (int)json_integer_value(json_object_get(cur, "current_version"));
    if (body != NULL) {
        current++;
        if (add_version(r, k, r->params[0], current, body,
                        json_string_value(json_object_get(r->json, "note"))) != 0) {
            json_decref(cur);
            return -1;
        }
    }
    snprintf(cv, sizeof(cv), "%d", current);
    json_t *nm = json_object_get(r->json, "name");
    const char *name = nm != NULL ? json_string_value(nm)
                                  : json_string_value(json_object_get(cur, "name"));
    const char *uv[] = {r->params[0], name, cv};
    int ret = cp_db(r, &res, k->update_head, 3, uv);
    if (ret == 0) {
        char *before = cp_dump(cur);
        cp_reply_written(r, 200, res);
        ret = cp_audit(r, "update", k->kind, r->params[0],
                       json_string_value(json_object_get(cur, "workspace_id")), before,
                       PQgetvalue(res, 0, 0));
        sl_free(before);
    }
    PQclear(res);
    json_decref(cur);
    return ret;
}

int cp_h_docs_rollback(cp_req_t *r)
{
    const doc_kind_t *k = kind_of(r);
    PGresult *res = NULL;
    char version[16], cv[16], note[64];
    static const cp_field_t fields[] = {
        {.name = "version", .type = CP_F_INT, .required = 1, .min = 1, .max = 2147483647},
        {0},
    };
    if (cp_need_role(r, CP_ROLE_MEMBER) != 0 || cp_validate(r, r->json, fields, 0, "$") != 0)
        return -1;
    const char *lv[] = {r->params[0], cp_scope(r)};
    json_t *cur = cp_load_for_update(r, k->kind, k->lock, 2, lv, version);
    if (cur == NULL)
        return -1;
    int to = (int)json_integer_value(json_object_get(r->json, "version"));
    snprintf(cv, sizeof(cv), "%d", to);
    const char *vv[] = {r->params[0], NULL, cv};
    int ret = cp_db(r, &res, k->version, 3, vv);
    if (ret == 0 && PQntuples(res) != 1)
        ret = cp_fail_field(r, "$.version", "no such version of this %s", k->kind);
    json_t *old = ret == 0 ? json_loads(PQgetvalue(res, 0, 0), 0, NULL) : NULL;
    PQclear(res);
    res = NULL;
    if (ret == 0) {
        int current = (int)json_integer_value(json_object_get(cur, "current_version")) + 1;
        snprintf(note, sizeof(note), "rollback to version %d", to);
        ret = add_version(r, k, r->params[0], current, json_object_get(old, k->kind), note);
        snprintf(cv, sizeof(cv), "%d", current);
    }
    if (ret == 0) {
        const char *uv[] = {r->params[0], json_string_value(json_object_get(cur, "name")), cv};
        ret = cp_db(r, &res, k->update_head, 3, uv);
    }
    if (ret == 0) {
        char *before = cp_dump(cur);
        cp_reply_written(r, 200, res);
        ret = cp_audit(r, "rollback", k->kind, r->params[0],
                       json_string_value(json_object_get(cur, "workspace_id")), before,
                       PQgetvalue(res, 0, 0));
        sl_free(before);
    }
    PQclear(res);
    json_decref(old);
    json_decref(cur);
    return ret;
}

int cp_h_docs_delete(cp_req_t *r)
{
    const doc_kind_t *k = kind_of(r);
    return cp_delete_object(r, k->kind, k->kind, k->lock, k->del);
}

static int version_param(cp_req_t *r, const char *s, char out[16])
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > 2147483647)
        return cp_fail(r, SL_ENOTFOUND, "no such version");
    snprintf(out, 16, "%ld", v);
    return 0;
}

int cp_h_docs_versions(cp_req_t *r)
{
    const doc_kind_t *k = kind_of(r);
    PGresult *res = NULL;
    /* Existence first, so that an unknown or foreign id answers 404. */
    const char *gv[] = {r->params[0], cp_scope(r)};
    if (cp_db(r, &res, k->get, 2, gv) != 0)
        return -1;
    int found = PQntuples(res) == 1;
    PQclear(res);
    if (!found)
        return cp_not_found(r, k->kind);
    return cp_list(r, k->versions, 2, gv, "version", 1);
}

int cp_h_docs_version(cp_req_t *r)
{
    const doc_kind_t *k = kind_of(r);
    char v[16];
    if (version_param(r, r->params[1], v) != 0)
        return -1;
    const char *vals[] = {r->params[0], cp_scope(r), v};
    return cp_db_reply_one(r, 200, "version", k->version, 3, vals);
}
