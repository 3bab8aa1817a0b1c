/* The fields API keys and virtual keys share: allowed models, metadata,
 * rate limits, budget, expiry, enabled. */
#include <string.h>

#include "common/alloc.h"
#include "controlplane/api/api.h"
#include "controlplane/api/limits.h"

static const char *const periods[] = {"day", "week", "month", "total", NULL};

const cp_field_t cp_rate_fields[] = {
    {.name = "rpm", .type = CP_F_INT, .nullable = 1, .min = 0, .max = 1e9},
    {.name = "tpm", .type = CP_F_INT, .nullable = 1, .min = 0, .max = 1e12},
    {0},
};

const cp_field_t cp_budget_fields[] = {
    {.name = "limit", .type = CP_F_NUMBER, .nullable = 1, .min = 0, .max = 1e12},
    {.name = "period", .type = CP_F_ENUM, .nullable = 1, .enums = periods},
    {0},
};

void cp_limits_params(const json_t *obj, char *out[CP_LIMITS_NPARAMS])
{
    const json_t *rate = json_object_get(obj, "rate_limits");
    const json_t *budget = json_object_get(obj, "budget");
    const json_t *models = json_object_get(obj, "allowed_models");
    const json_t *limit = json_object_get(budget, "limit");
    const json_t *period = json_object_get(budget, "period");
    out[0] = models != NULL ? cp_param(models) : sl_xstrdup("[]");
    out[1] = cp_param(json_object_get(obj, "metadata"));
    out[2] = cp_param(json_object_get(rate, "rpm"));
    out[3] = cp_param(json_object_get(rate, "tpm"));
    out[4] = cp_param(limit);
    /* A limit without a period is a monthly budget. */
    int has_limit = limit != NULL && !json_is_null(limit);
    out[5] = !has_limit                               ? NULL
             : period != NULL && !json_is_null(period) ? cp_param(period)
                                                       : sl_xstrdup("month");
    out[6] = cp_param(json_object_get(obj, "expires_at"));
    const json_t *en = json_object_get(obj, "enabled");
    out[7] = en != NULL ? cp_param(en) : sl_xstrdup("true");
}

void cp_limits_free(char *p[CP_LIMITS_NPARAMS])
{
    for (int i = 0; i < CP_LIMITS_NPARAMS; i++)
        sl_free(p[i]);
}
