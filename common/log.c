#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int sl_log_level = SL_LOG_INFO;
int sl_log_json = 0;

int sl_log_format_from_env(void)
{
    const char *f = getenv("SLUICE_LOG_FORMAT");
    if (f == NULL || f[0] == '\0' || strcmp(f, "text") == 0)
        return 0;
    if (strcmp(f, "json") == 0) {
        sl_log_json = 1;
        return 0;
    }
    return -1;
}

/* Appends s as the inside of a JSON string: quotes, backslashes and control
 * characters escaped (bytes >= 0x80 pass: messages are UTF-8 or escaped by
 * their writers). */
static size_t add_escaped(char *line, size_t n, size_t cap, const char *s)
{
    for (; *s != '\0' && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            line[n++] = '\\';
            line[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(line + n, cap - n, "\\u%04x", c);
        } else {
            line[n++] = (char)c;
        }
    }
    return n;
}

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

static void json_line(int level, const sl_log_ctx_t *ctx, int err, const char *msg,
                      const struct timespec *ts, const struct tm *tm)
{
    static const char *const lower[] = {"error", "warn", "info", "debug", "trace"};
    char line[4096];
    size_t n = strftime(line, sizeof(line), "{\"ts\":\"%Y-%m-%dT%H:%M:%S", tm);
    n = add(line, n, sizeof(line), ".%03ldZ\",\"level\":\"%s\",\"msg\":\"", ts->tv_nsec / 1000000,
            lower[level < 0 ? 0 : level > 4 ? 4 : level]);
    n = add_escaped(line, n, sizeof(line) - 300, msg);
    n = add(line, n, sizeof(line), "\"");
    if (err != 0) {
        char eb[128];
        n = add(line, n, sizeof(line), ",\"errno\":%d,\"error\":\"", err);
        n = add_escaped(line, n, sizeof(line) - 200, strerror_r(err, eb, sizeof(eb)));
        n = add(line, n, sizeof(line), "\"");
    }
    const char *names[] = {"action", "trace_id", "provider", "model"};
    const char *vals[] = {ctx ? ctx->action : NULL, ctx ? ctx->trace_id : NULL,
                          ctx ? ctx->provider : NULL, ctx ? ctx->model : NULL};
    for (int i = 0; i < 4; i++)
        if (vals[i] != NULL) {
            n = add(line, n, sizeof(line), ",\"%s\":\"", names[i]);
            n = add_escaped(line, n, sizeof(line) - 100, vals[i]);
            n = add(line, n, sizeof(line), "\"");
        }
    n = add(line, n, sizeof(line), "}\n");
    if (n > 0 && line[n - 1] != '\n') {
        /* cut short: still one line, still the same JSON shape */
        n = n > sizeof(line) - 3 ? sizeof(line) - 3 : n;
        line[n++] = '}';
        line[n++] = '\n';
    }
    ssize_t r = write(STDERR_FILENO, line, n);
    (void)r;
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
    if (sl_log_json) {
        char msg[1536];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        json_line(level, ctx, err, msg, &ts, &tm);
        return;
    }
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
