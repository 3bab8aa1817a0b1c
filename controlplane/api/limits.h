/* Shared by api-keys and virtual-keys (api/ only). */
#ifndef CP_API_LIMITS_H
#define CP_API_LIMITS_H

#include "controlplane/api/api.h"

#define CP_LIMITS_NPARAMS 8

extern const cp_field_t cp_rate_fields[];
extern const cp_field_t cp_budget_fields[];

/* The SQL columns, in the order of cp_limits_params, and their casts. */
#define CP_LIMITS_COLS                                                                             \
    "allowed_models, metadata, rate_limit_rpm, rate_limit_tpm, budget_limit, budget_period,"      \
    " expires_at, enabled"
/* n: the SQL parameter number of the first one */
#define CP_LIMITS_VALS(a, b, c, d, e, f, g, h)                                                     \
    "ARRAY(SELECT jsonb_array_elements_text($" #a "::jsonb)), coalesce($" #b "::jsonb, '{}'), $" #c \
    "::int, $" #d "::bigint, $" #e "::numeric, $" #f ", $" #g "::timestamptz, $" #h "::boolean"
#define CP_LIMITS_JSON(t)                                                                          \
    "'allowed_models', to_jsonb(" t ".allowed_models), 'metadata', " t ".metadata,"              \
    " 'rate_limits', json_build_object('rpm', " t ".rate_limit_rpm, 'tpm', " t ".rate_limit_tpm)," \
    " 'budget', json_build_object('limit', " t ".budget_limit, 'period', " t ".budget_period),"  \
    " 'expires_at', " t ".expires_at, 'enabled', " t ".enabled"

#define CP_LIMITS_FIELDS                                                                           \
    {.name = "allowed_models", .type = CP_F_STRINGS, .max = 256},                                 \
        {.name = "metadata", .type = CP_F_OBJECT, .max = 1},                                       \
        {.name = "rate_limits", .type = CP_F_OBJECT, .sub = cp_rate_fields},                      \
        {.name = "budget", .type = CP_F_OBJECT, .sub = cp_budget_fields},                         \
        {.name = "expires_at", .type = CP_F_TIME, .nullable = 1},                                 \
        {.name = "enabled", .type = CP_F_BOOL}

/* Fills out[] (to free with cp_limits_free) from a validated object. */
void cp_limits_params(const json_t *obj, char *out[CP_LIMITS_NPARAMS]);
void cp_limits_free(char *p[CP_LIMITS_NPARAMS]);

#endif
