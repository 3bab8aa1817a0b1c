/* Model prices (US dollars per million tokens), global to the installation:
 * every role may read them, changing them takes an admin or owner token
 * that reaches every workspace. Seeded by migrations/0002_pricing.sql. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/provider.h"
#include "controlplane/api/api.h"

#define PRICE_JSON                                                                                 \
    "json_build_object('object', 'model_price', 'id', p.provider || '/' || p.model, 'provider',"  \
    " p.provider, 'model', p.model, 'currency', 'USD', 'input_per_mtok', p.input_per_mtok,"       \
    " 'output_per_mtok', p.output_per_mtok, 'cached_input_per_mtok', p.cached_input_per_mtok,"   \
    " 'created_at', p.created_at, 'updated_at', p.updated_at, 'version', p.version)"

static const cp_field_t fields[] = {
    {.name = "input_per_mtok", .type = CP_F_NUMBER, .required = 1, .min = 0, .max = 1e6},
    {.name = "output_per_mtok", .type = CP_F_NUMBER, .required = 1, .min = 0, .max = 1e6},
    {.name = "cached_input_per_mtok", .type = CP_F_NUMBER, .nullable = 1, .min = 0, .max = 1e6},
    {0},
};

int cp_h_pricing_list(cp_req_t *r)
{
    const char *filters[] = {cp_query(r, "provider"), cp_query(r, "model")};
    return cp_list(r,
                   "SELECT coalesce(json_agg(j ORDER BY k), '[]')::text FROM ("
                   " SELECT p.provider || '/' || p.model AS k, " PRICE_JSON " AS j"
                   " FROM model_pricing p"
                   " WHERE ($1::text IS NULL OR p.provider = $1) AND ($2::text IS NULL OR p.model = $2)"
                   " AND ($3::text IS NULL OR p.provider || '/' || p.model > $3)"
                   " ORDER BY k LIMIT $4::int) s",
                   2, filters, "id", 0);
}

int cp_h_pricing_get(cp_req_t *r)
{
    const char *vals[] = {r->params[0], r->params[1]};
    return cp_db_reply_one(r, 200, "price",
                           "SELECT " PRICE_JSON ", p.version FROM model_pricing p"
                           " WHERE p.provider = $1 AND p.model = $2",
                           2, vals);
}

static int need_global_admin(cp_req_t *r)
{
    if (cp_need_role(r, CP_ROLE_ADMIN) != 0)
        return -1;
    if (cp_scope(r) != NULL)
        return cp_fail(r, SL_EFORBIDDEN, "prices are global: changing them needs a token that "
                                         "reaches every workspace");
    return 0;
}

static int check_names(cp_req_t *r)
{
    const sl_provider_t *prov = sl_provider_find(sl_str_c(r->params[0]));
    if (prov == NULL || strcmp(prov->name, r->params[0]) != 0)
        return cp_fail_field(r, "provider", "unknown provider (see docs/providers.md; ids are lower case)");
    if (strlen(r->params[1]) > 256)
        return cp_fail_field(r, "model", "must have at most 256 characters");
    for (const char *p = r->params[1]; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return cp_fail_field(r, "model", "must not contain control characters");
    return 0;
}

int cp_h_pricing_put(cp_req_t *r)
{
    PGresult *res = NULL;
    if (need_global_admin(r) != 0 || check_names(r) != 0 ||
        cp_validate(r, r->json, fields, 0, "$") != 0)
        return -1;
    int want = cp_if_match(r);
    if (want < 0)
        return -1;
    const char *kv[] = {r->params[0], r->params[1]};
    if (cp_db(r, &res,
              "SELECT " PRICE_JSON ", p.version FROM model_pricing p WHERE p.provider = $1"
              " AND p.model = $2 FOR UPDATE",
              2, kv) != 0)
        return -1;
    char *before = PQntuples(res) == 1 ? sl_xstrdup(PQgetvalue(res, 0, 0)) : NULL;
    long have = PQntuples(res) == 1 ? strtol(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    PQclear(res);
    if (want > 0 && have != want) {
        sl_free(before);
        return cp_fail(r, SL_EPRECOND, NULL);
    }
    char *in = cp_param(json_object_get(r->json, "input_per_mtok"));
    char *out = cp_param(json_object_get(r->json, "output_per_mtok"));
    char *cached = cp_param(json_object_get(r->json, "cached_input_per_mtok"));
    const char *vals[] = {r->params[0], r->params[1], in, out, cached};
    int ret = cp_db(r, &res,
                    "WITH p AS (INSERT INTO model_pricing (provider, model, input_per_mtok,"
                    " output_per_mtok, cached_input_per_mtok) VALUES ($1, $2, $3::numeric,"
                    " $4::numeric, $5::numeric) ON CONFLICT (provider, model) DO UPDATE SET"
                    " input_per_mtok = EXCLUDED.input_per_mtok, output_per_mtok ="
                    " EXCLUDED.output_per_mtok, cached_input_per_mtok = EXCLUDED.cached_input_per_mtok,"
                    " updated_at = now(), version = model_pricing.version + 1 RETURNING *)"
                    " SELECT " PRICE_JSON ", p.version FROM p",
                    5, vals);
    sl_free(in);
    sl_free(out);
    sl_free(cached);
    if (ret == 0) {
        char id[400];
        snprintf(id, sizeof(id), "%s/%s", r->params[0], r->params[1]);
        cp_reply_written(r, before != NULL ? 200 : 201, res);
        ret = cp_audit(r, before != NULL ? "update" : "create", "model_price", id, NULL, before,
                       PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    sl_free(before);
    return ret;
}

int cp_h_pricing_delete(cp_req_t *r)
{
    PGresult *res = NULL;
    if (need_global_admin(r) != 0)
        return -1;
    const char *vals[] = {r->params[0], r->params[1]};
    if (cp_db(r, &res,
              "WITH p AS (DELETE FROM model_pricing WHERE provider = $1 AND model = $2 RETURNING *)"
              " SELECT " PRICE_JSON " FROM p",
              2, vals) != 0)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return cp_not_found(r, "price");
    }
    char id[400];
    snprintf(id, sizeof(id), "%s/%s", r->params[0], r->params[1]);
    int ret = cp_audit(r, "delete", "model_price", id, NULL, PQgetvalue(res, 0, 0), NULL);
    PQclear(res);
    if (ret == 0)
        cp_reply(r, 200, json_pack("{s:s, s:s, s:b}", "object", "model_price", "id", id, "deleted", 1));
    return ret;
}
