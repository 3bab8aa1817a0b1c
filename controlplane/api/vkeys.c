/* Virtual keys: provider credentials that applications never see. The
 * secret fields are sealed with AES-256-GCM under the master key, bound to
 * the virtual key's id (a sealed secret moved to another row fails to
 * open); no endpoint ever answers them, only a masked hint. Rotation
 * replaces the credentials and keeps the id, so applications change
 * nothing. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "common/provider.h"
#include "controlplane/api/api.h"
#include "controlplane/api/limits.h"

#define VK_JSON                                                                                    \
    "json_build_object('object', 'virtual_key', 'id', v.id, 'workspace_id', v.workspace_id,"      \
    " 'name', v.name, 'provider', v.provider, 'options', v.options, 'secret_hint',"              \
    " v.secret_hint, " CP_LIMITS_JSON("v") ", 'rotated_at', v.rotated_at, 'created_at',"         \
    " v.created_at, 'updated_at', v.updated_at, 'version', v.version)"

#define VK_SELECT "SELECT " VK_JSON ", v.version FROM virtual_keys v"
#define VK_LOCK VK_SELECT " WHERE v.id = $1 AND ($2::text IS NULL OR v.workspace_id = $2) FOR UPDATE"

/* What each provider's credentials hold: secret fields are sealed, option
 * fields are kept in clear (they are settings, not secrets). The first
 * secret field gives the hint. */
typedef struct {
    const char *provider;            /* NULL: every other provider */
    const char *secret_req[3];       /* all required */
    const char *secret_opt[3];
    const char *one_of[3];           /* at least one of these secrets */
    const char *option_req[3];
    const char *option_opt[3];
} cred_spec_t;

static const cred_spec_t specs[] = {
    {.provider = "azure-openai",
     .one_of = {"api_key", "azure_ad_token"},
     .option_req = {"resource_name", "deployment_id", "api_version"}},
    {.provider = "bedrock",
     .secret_req = {"aws_access_key_id", "aws_secret_access_key"},
     .secret_opt = {"aws_session_token"},
     .option_req = {"aws_region"}},
    {.provider = "vertex-ai",
     .secret_req = {"service_account_json"},
     .option_req = {"vertex_region"},
     .option_opt = {"vertex_project_id"}},
    /* Local servers take a key only when they were set up with one. */
    {.provider = "ollama", .secret_opt = {"api_key"}},
    {.provider = "vllm", .secret_opt = {"api_key"}},
    {.provider = "lm-studio", .secret_opt = {"api_key"}},
    {.provider = NULL, .secret_req = {"api_key"}},
};

static const cp_field_t fields[] = {
    {.name = "name", .type = CP_F_STRING, .required = 1, .min = 1, .max = 128},
    {.name = "workspace_id", .type = CP_F_STRING, .max = 64},
    {.name = "provider", .type = CP_F_STRING, .required = 1, .min = 1, .max = 64},
    {.name = "credentials", .type = CP_F_ANY, .required = 1},
    CP_LIMITS_FIELDS,
    {0},
};

static const cp_field_t update_fields[] = {
    {.name = "name", .type = CP_F_STRING, .min = 1, .max = 128},
    CP_LIMITS_FIELDS,
    {0},
};

static const cp_field_t rotate_fields[] = {
    {.name = "credentials", .type = CP_F_ANY, .required = 1},
    {0},
};

static const cred_spec_t *spec_for(const char *provider)
{
    const cred_spec_t *s = specs;
    while (s->provider != NULL && strcmp(s->provider, provider) != 0)
        s++;
    return s;
}

static int in(const char *const *list, size_t n, const char *k)
{
    for (size_t i = 0; i < n && list[i] != NULL; i++)
        if (strcmp(list[i], k) == 0)
            return 1;
    return 0;
}

/* A Vertex service account: an object (or its JSON text) holding at least
 * client_email and private_key. */
static json_t *service_account(const json_t *v)
{
    json_t *o = json_is_string(v) ? json_loads(json_string_value(v), 0, NULL) : json_incref((json_t *)v);
    if (!json_is_object(o) || !json_is_string(json_object_get(o, "client_email")) ||
        !json_is_string(json_object_get(o, "private_key"))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* Splits validated credentials into the sealed secret object, the clear
 * options and the hint. Returns 0 or -1 (answered). */
static int split_credentials(cp_req_t *r, const char *provider, const json_t *cred,
                             json_t **secret, json_t **options, char *hint, size_t hintsz)
{
    const cred_spec_t *s = spec_for(provider);
    const char *k;
    json_t *v;
    char path[512];
    int one = 0;

    *secret = NULL;
    *options = NULL;
    if (!json_is_object(cred))
        return cp_fail_field(r, "$.credentials", "must be an object");
    *secret = json_object();
    *options = json_object();
    hint[0] = '\0';
    json_object_foreach((json_t *)cred, k, v) {
        snprintf(path, sizeof(path), "$.credentials.%.200s", k);
        int is_secret = in(s->secret_req, 3, k) || in(s->secret_opt, 3, k) || in(s->one_of, 3, k);
        int is_option = in(s->option_req, 3, k) || in(s->option_opt, 3, k);
        if (!is_secret && !is_option) {
            cp_fail_field(r, path, "is not a credential field of provider %s", provider);
            goto Fail;
        }
        if (strcmp(k, "service_account_json") == 0) {
            json_t *sa = service_account(v);
            if (sa == NULL) {
                cp_fail_field(r, path, "must be a service account key (JSON with client_email and private_key)");
                goto Fail;
            }
            if (hint[0] == '\0')
                snprintf(hint, hintsz, "service account %s",
                         json_string_value(json_object_get(sa, "client_email")));
            json_object_set_new(*secret, k, sa);
            continue;
        }
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 16384 ||
            strlen(json_string_value(v)) != json_string_length(v)) {
            cp_fail_field(r, path, "must be a non-empty string of at most 16384 characters");
            goto Fail;
        }
        if (is_option && json_string_length(v) > 256) {
            cp_fail_field(r, path, "must have at most 256 characters");
            goto Fail;
        }
        if (is_secret) {
            one |= in(s->one_of, 3, k);
            json_object_set(*secret, k, v);
        } else {
            json_object_set(*options, k, v);
        }
    }
    for (int i = 0; i < 3 && s->secret_req[i] != NULL; i++)
        if (json_object_get(cred, s->secret_req[i]) == NULL) {
            snprintf(path, sizeof(path), "$.credentials.%s", s->secret_req[i]);
            cp_fail_field(r, path, "is required for provider %s", provider);
            goto Fail;
        }
    for (int i = 0; i < 3 && s->option_req[i] != NULL; i++)
        if (json_object_get(cred, s->option_req[i]) == NULL) {
            snprintf(path, sizeof(path), "$.credentials.%s", s->option_req[i]);
            cp_fail_field(r, path, "is required for provider %s", provider);
            goto Fail;
        }
    if (s->one_of[0] != NULL && !one) {
        cp_fail_field(r, "$.credentials", "needs one of %s or %s for provider %s", s->one_of[0],
                      s->one_of[1], provider);
        goto Fail;
    }
    /* The hint comes from the provider's main field (Bedrock's access key
     * id, not its secret key), whatever order the request gave. */
    const char *const *lists[] = {s->secret_req, s->one_of, s->secret_opt};
    for (int l = 0; l < 3 && hint[0] == '\0'; l++)
        for (int i = 0; i < 3 && lists[l][i] != NULL && hint[0] == '\0'; i++) {
            json_t *x = json_object_get(*secret, lists[l][i]);
            if (json_is_string(x))
                cp_secret_hint(json_string_value(x), hint, hintsz);
        }
    if (hint[0] == '\0')
        snprintf(hint, hintsz, "(none)");
    return 0;
Fail:
    json_decref(*secret);
    json_decref(*options);
    *secret = *options = NULL;
    return -1;
}

/* The secret object sealed for Postgres, as a bytea hex parameter. */
static char *seal_secret(cp_req_t *r, const char *id, json_t *secret)
{
    char aad[80];
    uint8_t *sealed = NULL;
    size_t n = 0;
    char *plain = json_dumps(secret, JSON_COMPACT);
    snprintf(aad, sizeof(aad), "vk:%s", id);
    int ret = plain != NULL ? cp_seal(r->app, plain, strlen(plain), aad, &sealed, &n) : SL_ENOMEM;
    if (plain != NULL) {
        OPENSSL_cleanse(plain, strlen(plain));
        sl_free(plain); /* jansson allocates with malloc */
    }
    if (ret != 0)
        return NULL;
    char *hex = cp_bytea_hex(sealed, n);
    sl_free(sealed);
    return hex;
}

static int provider_ok(cp_req_t *r, const char *p)
{
    const sl_provider_t *prov = sl_provider_find(sl_str_c(p));
    /* The table's own spelling only, so that the name stored is the one the
     * credential rules and the gateway compare with. */
    if (prov == NULL || strcmp(prov->name, p) != 0)
        return cp_fail_field(r, "$.provider",
                             "unknown provider (see docs/providers.md: openai, azure-openai, ...)");
    return 0;
}

int cp_h_vkeys_list(cp_req_t *r)
{
    const char *filters[] = {cp_scope(r), cp_query(r, "workspace_id"), cp_query(r, "provider")};
    return cp_list(r,
                   "SELECT coalesce(json_agg(j ORDER BY id DESC), '[]')::text FROM ("
                   " SELECT v.id, " VK_JSON " AS j FROM virtual_keys v"
                   " WHERE ($1::text IS NULL OR v.workspace_id = $1)"
                   " AND ($2::text IS NULL OR v.workspace_id = $2)"
                   " AND ($3::text IS NULL OR v.provider = $3)"
                   " AND ($4::text IS NULL OR v.id < $4) ORDER BY v.id DESC LIMIT $5::int) s",
                   3, filters, "id", 0);
}

int cp_h_vkeys_get(cp_req_t *r)
{
    const char *vals[] = {r->params[0], cp_scope(r)};
    return cp_db_reply_one(r, 200, "virtual key",
                           VK_SELECT " WHERE v.id = $1 AND ($2::text IS NULL OR v.workspace_id = $2)",
                           2, vals);
}

int cp_h_vkeys_create(cp_req_t *r)
{
    PGresult *res = NULL;
    char id[48], ws[48], hint[300];
    char *lp[CP_LIMITS_NPARAMS];
    json_t *secret = NULL, *options = NULL;
    if (cp_need_role(r, CP_ROLE_MEMBER) != 0 || cp_validate(r, r->json, fields, 0, "$") != 0)
        return -1;
    const char *provider = json_string_value(json_object_get(r->json, "provider"));
    if (provider_ok(r, provider) != 0 || cp_target_workspace(r, r->json, ws) != 0 ||
        split_credentials(r, provider, json_object_get(r->json, "credentials"), &secret, &options,
                          hint, sizeof(hint)) != 0)
        return -1;
    cp_new_id("vk", id, sizeof(id));
    char *sealed = seal_secret(r, id, secret);
    json_decref(secret);
    if (sealed == NULL) {
        json_decref(options);
        return cp_fail(r, SL_EINTERNAL, NULL);
    }
    cp_limits_params(r->json, lp);
    char *name = cp_param(json_object_get(r->json, "name"));
    char *opts = cp_param(options);
    json_decref(options);
    const char *vals[] = {id, ws, name, provider, opts, sealed, r->app->master_key_id, hint,
                          lp[0], lp[1], lp[2], lp[3], lp[4], lp[5], lp[6], lp[7]};
    int ret = cp_db(r, &res,
                    "WITH v AS (INSERT INTO virtual_keys (id, workspace_id, name, provider, options,"
                    " secret, secret_key_id, secret_hint, " CP_LIMITS_COLS ") VALUES ($1, $2, $3, $4,"
                    " $5::jsonb, $6::bytea, $7, $8, " CP_LIMITS_VALS(9, 10, 11, 12, 13, 14, 15, 16)
                    ") RETURNING *) SELECT " VK_JSON ", v.version FROM v",
                    16, vals);
    cp_limits_free(lp);
    sl_free(name);
    sl_free(opts);
    sl_free(sealed);
    if (ret != 0)
        return -1;
    cp_reply_written(r, 201, res);
    ret = cp_audit(r, "create", "virtual_key", id, ws, NULL, PQgetvalue(res, 0, 0));
    PQclear(res);
    return ret;
}

static json_t *load(cp_req_t *r, char version[16])
{
    const char *vals[] = {r->params[0], cp_scope(r)};
    return cp_load_for_update(r, "virtual key", VK_LOCK, 2, vals, version);
}

int cp_h_vkeys_update(cp_req_t *r)
{
    PGresult *res = NULL;
    char version[16];
    char *lp[CP_LIMITS_NPARAMS];
    if (cp_need_role(r, CP_ROLE_MEMBER) != 0)
        return -1;
    if (json_object_get(r->json, "credentials") != NULL)
        return cp_fail_field(r, "$.credentials", "changes through POST /v1/admin/virtual-keys/{id}/rotate");
    if (json_object_get(r->json, "provider") != NULL || json_object_get(r->json, "workspace_id") != NULL)
        return cp_fail(r, SL_EINVAL, "a virtual key's provider and workspace cannot be changed");
    if (cp_validate(r, r->json, update_fields, 1, "$") != 0)
        return -1;
    json_t *cur = load(r, version);
    if (cur == NULL)
        return -1;
    const char *ws = json_string_value(json_object_get(cur, "workspace_id"));
    char *before = cp_dump(cur);
    cp_merge_patch(cur, r->json);
    cp_limits_params(cur, lp);
    char *name = cp_param(json_object_get(cur, "name"));
    const char *vals[] = {r->params[0], name, lp[0], lp[1], lp[2], lp[3], lp[4], lp[5], lp[6],
                          lp[7]};
    int ret = cp_db(r, &res,
                    "WITH v AS (UPDATE virtual_keys SET name = $2, (" CP_LIMITS_COLS ") = (SELECT "
                    CP_LIMITS_VALS(3, 4, 5, 6, 7, 8, 9, 10) "), updated_at = now(),"
                    " version = version + 1 WHERE id = $1 RETURNING *)"
                    " SELECT " VK_JSON ", v.version FROM v",
                    10, vals);
    if (ret == 0) {
        cp_reply_written(r, 200, res);
        ret = cp_audit(r, "update", "virtual_key", r->params[0], ws, before, PQgetvalue(res, 0, 0));
    }
    cp_limits_free(lp);
    sl_free(name);
    sl_free(before);
    json_decref(cur);
    PQclear(res);
    return ret;
}

int cp_h_vkeys_rotate(cp_req_t *r)
{
    PGresult *res = NULL;
    char version[16], hint[300];
    json_t *secret = NULL, *options = NULL;
    if (cp_need_role(r, CP_ROLE_MEMBER) != 0 || cp_validate(r, r->json, rotate_fields, 0, "$") != 0)
        return -1;
    json_t *cur = load(r, version);
    if (cur == NULL)
        return -1;
    const char *provider = json_string_value(json_object_get(cur, "provider"));
    if (split_credentials(r, provider, json_object_get(r->json, "credentials"), &secret, &options,
                          hint, sizeof(hint)) != 0) {
        json_decref(cur);
        return -1;
    }
    char *sealed = seal_secret(r, r->params[0], secret);
    json_decref(secret);
    char *opts = cp_param(options);
    json_decref(options);
    const char *ws = json_string_value(json_object_get(cur, "workspace_id"));
    char *before = cp_dump(cur);
    const char *vals[] = {r->params[0], sealed, r->app->master_key_id, hint, opts};
    int ret = sealed == NULL ? cp_fail(r, SL_EINTERNAL, NULL)
                             : cp_db(r, &res,
                                     "WITH v AS (UPDATE virtual_keys SET secret = $2::bytea,"
                                     " secret_key_id = $3, secret_hint = $4, options = $5::jsonb,"
                                     " rotated_at = now(), updated_at = now(), version = version + 1"
                                     " WHERE id = $1 RETURNING *) SELECT " VK_JSON ", v.version FROM v",
                                     5, vals);
    if (ret == 0) {
        cp_reply_written(r, 200, res);
        ret = cp_audit(r, "rotate", "virtual_key", r->params[0], ws, before, PQgetvalue(res, 0, 0));
    }
    sl_free(sealed);
    sl_free(opts);
    sl_free(before);
    json_decref(cur);
    PQclear(res);
    return ret;
}

int cp_h_vkeys_delete(cp_req_t *r)
{
    return cp_delete_object(r, "virtual key", "virtual_key", VK_LOCK,
                            "DELETE FROM virtual_keys WHERE id = $1");
}
