/**
 * Logging to stderr, one line per event. The macro checks the level before
 * formatting. Lines from the request path carry a context (trace id, the
 * action in progress, provider, model). Never pass secrets: keys are logged
 * only by their last four characters or their hash. Thread-safe (one
 * write(2) per line).
 */
#ifndef SL_LOG_H
#define SL_LOG_H

enum { SL_LOG_ERROR = 0, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG, SL_LOG_TRACE };

typedef struct sl_log_ctx_s {
    const char *trace_id; /* borrowed */
    const char *action;   /* static string: what was being done */
    const char *provider; /* borrowed */
    const char *model;    /* borrowed */
} sl_log_ctx_t;

extern int sl_log_level;
/** 1: one JSON object per line ({"ts","level","msg","errno","error","action",
 *  "trace_id","provider","model"}) for log pipelines; 0: plain text. */
extern int sl_log_json;

/** Reads SLUICE_LOG_FORMAT ("text" or "json"); returns -1 for another value. */
int sl_log_format_from_env(void);

/** Parses "error", "warn", "info", "debug", "trace"; -1 when unknown. */
int sl_log_level_parse(const char *name);

void sl__log(int level, const sl_log_ctx_t *ctx, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* err is an errno value (0 for none), printed as "(err: strerror)". */
#define sl_log(level, ctx, err, ...)                                                               \
    do {                                                                                           \
        if ((level) <= sl_log_level)                                                               \
            sl__log((level), (ctx), (err), __VA_ARGS__);                                           \
    } while (0)

#define SL_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (!(x))                                                                                  \
            sl__assert_fail(#x, __FILE__, __LINE__);                                               \
    } while (0)

_Noreturn void sl__assert_fail(const char *expr, const char *file, int line);

#endif
