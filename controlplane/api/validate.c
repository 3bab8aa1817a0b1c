/* Request bodies checked against field tables: types, ranges, lengths,
 * unknown fields refused, each error naming its JSON path. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "controlplane/api/api.h"

#define DEFAULT_STRING_MAX 256
#define DEFAULT_TEXT_MAX 65536
#define DEFAULT_ITEMS_MAX 256

/* Characters, not bytes: limits are stated in characters (jansson has
 * checked the UTF-8 already). */
static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Postgres text cannot hold NUL, and a name with control characters is a
 * trap in every log and UI that shows it. */
static int clean_string(const json_t *v, int allow_newlines)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0 || (c < 0x20 && !(allow_newlines && (c == '\n' || c == '\t' || c == '\r'))) ||
            c == 0x7f)
            return 0;
    }
    return 1;
}

static int is_rfc3339(const char *s)
{
    /* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM); Postgres then checks
     * the calendar (2024-02-30 is refused with a 400 too). */
    const char *shape = "dddd-dd-ddTdd:dd:dd";
    size_t i = 0;
    for (; shape[i] != '\0'; i++) {
        if (s[i] == '\0')
            return 0;
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : (shape[i] == 'T' ? (s[i] != 'T' && s[i] != 't' && s[i] != ' ') : s[i] != shape[i]))
            return 0;
    }
    if (s[i] == '.') {
        i++;
        size_t d = strspn(s + i, "0123456789");
        if (d == 0 || d > 9)
            return 0;
        i += d;
    }
    if (s[i] == 'Z' || s[i] == 'z')
        return s[i + 1] == '\0';
    if ((s[i] == '+' || s[i] == '-') && strlen(s + i) == 6 && s[i + 3] == ':' &&
        strspn(s + i + 1, "0123456789") == 2 && strspn(s + i + 4, "0123456789") == 2)
        return 1;
    return 0;
}

static int check_field(cp_req_t *r, const cp_field_t *f, const json_t *v, const char *path,
                       int partial)
{
    double max;
    if (json_is_null(v)) {
        if (f->nullable || !f->required)
            return f->nullable ? 0 : cp_fail_field(r, path, "may not be null");
        return cp_fail_field(r, path, "is required and may not be null");
    }
    switch (f->type) {
    case CP_F_STRING:
    case CP_F_TEXT:
        max = f->max > 0 ? f->max : (f->type == CP_F_STRING ? DEFAULT_STRING_MAX : DEFAULT_TEXT_MAX);
        if (!json_is_string(v))
            return cp_fail_field(r, path, "must be a string");
        if (utf8_chars(json_string_value(v), json_string_length(v)) > (size_t)max)
            return cp_fail_field(r, path, "must have at most %.0f characters", max);
        if (f->min > 0 && json_string_length(v) < (size_t)f->min)
            return cp_fail_field(r, path, "must have at least %.0f characters", f->min);
        if (!clean_string(v, f->type == CP_F_TEXT))
            return cp_fail_field(r, path, "must not contain control characters");
        return 0;
    case CP_F_INT:
        if (!json_is_integer(v))
            return cp_fail_field(r, path, "must be an integer");
        if ((double)json_integer_value(v) < f->min || (double)json_integer_value(v) > f->max)
            return cp_fail_field(r, path, "must be from %.0f to %.0f", f->min, f->max);
        return 0;
    case CP_F_NUMBER:
        if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return cp_fail_field(r, path, "must be a number");
        if (json_number_value(v) < f->min || json_number_value(v) > f->max)
            return cp_fail_field(r, path, "must be from %g to %g", f->min, f->max);
        return 0;
    case CP_F_BOOL:
        return json_is_boolean(v) ? 0 : cp_fail_field(r, path, "must be true or false");
    case CP_F_OBJECT:
        if (!json_is_object(v))
            return cp_fail_field(r, path, "must be an object");
        if (f->sub != NULL)
            return cp_validate(r, v, f->sub, partial, path);
        if (f->max == 1) {
            /* metadata: flat string values, bounded */
            const char *k;
            json_t *x;
            char sub[512];
            if (json_object_size(v) > 64)
                return cp_fail_field(r, path, "may have at most 64 keys");
            json_object_foreach((json_t *)v, k, x) {
                snprintf(sub, sizeof(sub), "%.250s.%.200s", path, k);
                if (partial && json_is_null(x))
                    continue; /* a merge patch removing the key */
                json_t *key = json_string(k);
                int clean = key != NULL && clean_string(key, 0);
                json_decref(key);
                if (strlen(k) == 0 || utf8_chars(k, strlen(k)) > 128 || !clean)
                    return cp_fail_field(r, sub, "keys must have 1 to 128 characters, none of them control characters");
                if (!json_is_string(x) ||
                    utf8_chars(json_string_value(x), json_string_length(x)) > 1024 ||
                    !clean_string(x, 0))
                    return cp_fail_field(r, sub, "must be a string of at most 1024 characters");
            }
        }
        return 0;
    case CP_F_STRINGS: {
        size_t i;
        json_t *x;
        char sub[512];
        max = f->max > 0 ? f->max : DEFAULT_ITEMS_MAX;
        if (!json_is_array(v))
            return cp_fail_field(r, path, "must be an array of strings");
        if (json_array_size(v) > (size_t)max)
            return cp_fail_field(r, path, "may have at most %.0f items", max);
        json_array_foreach(v, i, x) {
            snprintf(sub, sizeof(sub), "%.250s[%zu]", path, i);
            if (!json_is_string(x) || json_string_length(x) == 0 ||
                utf8_chars(json_string_value(x), json_string_length(x)) > 256 || !clean_string(x, 0))
                return cp_fail_field(r, sub, "must be a non-empty string of at most 256 characters");
            if (f->enums != NULL) {
                int ok = 0;
                for (const char *const *e = f->enums; *e != NULL; e++)
                    ok |= strcmp(*e, json_string_value(x)) == 0;
                if (!ok)
                    return cp_fail_field(r, sub, "is not a known value");
            }
        }
        return 0;
    }
    case CP_F_TIME:
        if (!json_is_string(v) || !is_rfc3339(json_string_value(v)))
            return cp_fail_field(r, path, "must be an RFC 3339 timestamp (2030-01-31T00:00:00Z)");
        return 0;
    case CP_F_ENUM: {
        char allowed[256] = "";
        if (json_is_string(v))
            for (const char *const *e = f->enums; *e != NULL; e++)
                if (strcmp(*e, json_string_value(v)) == 0)
                    return 0;
        for (const char *const *e = f->enums; *e != NULL; e++) {
            strncat(allowed, *e, sizeof(allowed) - strlen(allowed) - 3);
            if (e[1] != NULL)
                strncat(allowed, ", ", sizeof(allowed) - strlen(allowed) - 1);
        }
        return cp_fail_field(r, path, "must be one of: %s", allowed);
    }
    case CP_F_ANY:
        return 0;
    }
    return 0;
}

int cp_validate(cp_req_t *r, const json_t *obj, const cp_field_t *fields, int partial,
                const char *prefix)
{
    const char *k;
    json_t *v;
    char path[512];

    if (!json_is_object(obj))
        return strcmp(prefix, "$") == 0
                   ? cp_fail(r, SL_EBADJSON, "the request body must be a JSON object")
                   : cp_fail_field(r, prefix, "must be an object");
    json_object_foreach((json_t *)obj, k, v) {
        const cp_field_t *f = fields;
        while (f->name != NULL && strcmp(f->name, k) != 0)
            f++;
        snprintf(path, sizeof(path), "%.250s.%.200s", prefix, k);
        if (f->name == NULL)
            return cp_fail_field(r, path, "unknown field");
        if (check_field(r, f, v, path, partial) != 0)
            return -1;
    }
    if (!partial)
        for (const cp_field_t *f = fields; f->name != NULL; f++)
            if (f->required && json_object_get(obj, f->name) == NULL) {
                snprintf(path, sizeof(path), "%.250s.%.200s", prefix, f->name);
                return cp_fail_field(r, path, "is required");
            }
    return 0;
}
