#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sl_log_level = SL_LOG_INFO;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

int sl_log_level_parse(const char *name)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

static size_t add(char *line, size_t n, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static size_t add(char *line, size_t n, size_t cap, const char *fmt, ...)
{
    if (n >= cap)
        return n;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(line + n, cap - n, fmt, ap);
    va_end(ap);
    if (w < 0)
        return n;
    return n + (size_t)w >= cap ? cap - 1 : n + (size_t)w;
}

void sl__log(int level, const sl_log_ctx_t *ctx, int err, const char *fmt, ...)
{
    char line[2048];
    size_t n = 0;
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n = add(line, n, sizeof(line), ".%03ldZ %s ", ts.tv_nsec / 1000000,
            level_names[level < 0 ? 0 : level > 4 ? 4 : level]);
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (w > 0)
        n = n + (size_t)w >= sizeof(line) ? sizeof(line) - 1 : n + (size_t)w;
    if (err != 0) {
        char eb[128];
        const char *es = strerror_r(err, eb, sizeof(eb));
        n = add(line, n, sizeof(line), " (%d: %s)", err, es);
    }
    if (ctx != NULL) {
        if (ctx->action != NULL)
            n = add(line, n, sizeof(line), " while %s", ctx->action);
        if (ctx->trace_id != NULL)
            n = add(line, n, sizeof(line), ", trace_id=%s", ctx->trace_id);
        if (ctx->provider != NULL)
            n = add(line, n, sizeof(line), ", provider=%s", ctx->provider);
        if (ctx->model != NULL)
            n = add(line, n, sizeof(line), ", model=%s", ctx->model);
    }
    if (n >= sizeof(line) - 1)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t r = write(STDERR_FILENO, line, n);
    (void)r;
}

void sl__assert_fail(const char *expr, const char *file, int line)
{
    sl__log(SL_LOG_ERROR, NULL, 0, "assertion failed: %s at %s:%d", expr, file, line);
    abort();
}
