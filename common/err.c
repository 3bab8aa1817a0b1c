#include "common/err.h"

typedef struct {
    int err;
    int status;
    const char *type;
    const char *code;
    const char *msg;
} err_entry_t;

static const err_entry_t table[] = {
#define SL_ERR_ROW(name, status, type, code, msg) {SL_##name, status, type, code, msg},
    SL_ERR_MAP(SL_ERR_ROW)
#undef SL_ERR_ROW
};

static const err_entry_t unknown = {0, 500, "api_error", "internal_error", "unknown error"};

static const err_entry_t *find(int err)
{
    if (err <= SL__ERR_FIRST || err > SL__ERR_FIRST + (int)(sizeof(table) / sizeof(table[0])))
        return &unknown;
    return &table[err - (SL__ERR_FIRST + 1)];
}

const char *sl_strerror(int err)
{
    if (err == SL_OK)
        return "success";
    if (err == SL_AGAIN)
        return "need more input";
    return find(err)->msg;
}

int sl_err_status(int err)
{
    return find(err)->status;
}

const char *sl_err_type(int err)
{
    return find(err)->type;
}

const char *sl_err_code(int err)
{
    return find(err)->code;
}
