#include "common/sse.h"
#include "common/err.h"

#include <string.h>

void sl_sse_decoder_init(sl_sse_decoder_t *d, size_t max_event)
{
    memset(d, 0, sizeof(*d));
    d->max_event = max_event;
    sl_buf_init(&d->line, max_event);
    sl_buf_init(&d->data, max_event);
    sl_buf_init(&d->event, max_event);
    sl_buf_init(&d->id, max_event);
}

void sl_sse_decoder_dispose(sl_sse_decoder_t *d)
{
    sl_buf_dispose(&d->line);
    sl_buf_dispose(&d->data);
    sl_buf_dispose(&d->event);
    sl_buf_dispose(&d->id);
}

int sl_sse_pending(const sl_sse_decoder_t *d)
{
    return d->line.len > 0 || d->has_fields;
}

static int dispatch(sl_sse_decoder_t *d, sl_sse_event_cb cb, void *ud)
{
    int r = 0;
    d->has_fields = 0;
    if (d->data.len > 0 || d->event.len > 0) {
        sl_sse_event_t ev;
        size_t dl = d->data.len;
        /* The spec appends "\n" after every data line and drops the last. */
        if (dl > 0 && d->data.base[dl - 1] == '\n')
            dl--;
        ev.data = sl_str(d->data.base, dl);
        ev.event = sl_buf_str(&d->event);
        ev.id = sl_buf_str(&d->id);
        ev.has_id = d->has_id;
        if (d->data.len > 0)
            r = cb(ud, &ev);
    }
    sl_buf_reset(&d->data);
    sl_buf_reset(&d->event);
    return r;
}

static int process_line(sl_sse_decoder_t *d, sl_str_t line, sl_sse_event_cb cb, void *ud)
{
    if (line.len == 0)
        return dispatch(d, cb, ud);
    if (line.base[0] == ':')
        return 0; /* comment, e.g. a keep-alive ping */
    d->has_fields = 1;
    const char *colon = memchr(line.base, ':', line.len);
    sl_str_t field, value;
    if (colon == NULL) {
        field = line;
        value = SL_STR_NULL;
    } else {
        field = sl_str(line.base, (size_t)(colon - line.base));
        value = sl_str(colon + 1, line.len - field.len - 1);
        if (value.len > 0 && value.base[0] == ' ') {
            value.base++;
            value.len--;
        }
    }
    int r = 0;
    if (sl_str_eq(field, SL_STRLIT("data"))) {
        if (d->data.len + d->event.len + value.len + 1 > d->max_event)
            return SL_ETOOBIG;
        r = sl_buf_append_str(&d->data, value);
        if (r == 0)
            r = sl_buf_append(&d->data, "\n", 1);
    } else if (sl_str_eq(field, SL_STRLIT("event"))) {
        sl_buf_reset(&d->event);
        r = sl_buf_append_str(&d->event, value);
    } else if (sl_str_eq(field, SL_STRLIT("id"))) {
        if (memchr(value.base ? value.base : "", '\0', value.len) == NULL) {
            sl_buf_reset(&d->id);
            r = sl_buf_append_str(&d->id, value);
            d->has_id = 1;
        }
    }
    /* "retry" and unknown fields are ignored, as the spec says. */
    return r;
}

int sl_sse_feed(sl_sse_decoder_t *d, const char *p, size_t n, sl_sse_event_cb cb, void *ud)
{
    size_t i = 0;
    if (!d->started && n > 0) {
        /* A UTF-8 BOM may only appear as the first bytes of the stream. */
        static const char bom[] = "\xEF\xBB\xBF";
        size_t have = d->line.len;
        while (i < n && have + i < 3 && p[i] == bom[have + i])
            i++;
        if (have + i < 3 && i == n) {
            int r = sl_buf_append(&d->line, p, n);
            return r;
        }
        if (have + i == 3) {
            sl_buf_reset(&d->line);
        } else {
            i = 0; /* not a BOM: the held bytes are ordinary line bytes */
        }
        d->started = 1;
    }
    while (i < n) {
        char c = p[i];
        if (d->last_cr) {
            d->last_cr = 0;
            if (c == '\n') {
                i++;
                continue;
            }
        }
        /* Find the end of the line within this piece. */
        size_t j = i;
        while (j < n && p[j] != '\n' && p[j] != '\r')
            j++;
        if (j == n) {
            int r = sl_buf_append(&d->line, p + i, n - i);
            return r;
        }
        sl_str_t line;
        int r;
        if (d->line.len > 0) {
            r = sl_buf_append(&d->line, p + i, j - i);
            if (r != 0)
                return r;
            line = sl_buf_str(&d->line);
        } else {
            if (j - i > d->max_event)
                return SL_ETOOBIG;
            line = sl_str(p + i, j - i);
        }
        if (p[j] == '\r')
            d->last_cr = 1;
        i = j + 1;
        r = process_line(d, line, cb, ud);
        sl_buf_reset(&d->line);
        if (r != 0)
            return r;
    }
    return 0;
}

int sl_sse_encode(sl_buf_t *out, sl_str_t event, sl_str_t data)
{
    /* Readers end lines at CR, LF or CRLF: split data on all three, so that
     * no byte of it can start a field of its own, and drop CR/LF from the
     * event name for the same reason. On failure out is left as it was. */
    size_t mark = out->len;
    int r = 0;
    if (event.len > 0) {
        r = sl_buf_append_str(out, SL_STRLIT("event: "));
        for (size_t i = 0; i < event.len && r == 0; i++)
            if (event.base[i] != '\r' && event.base[i] != '\n')
                r = sl_buf_append(out, event.base + i, 1);
        if (r == 0)
            r = sl_buf_append(out, "\n", 1);
    }
    size_t i = 0;
    while (r == 0) {
        size_t j = i;
        while (j < data.len && data.base[j] != '\n' && data.base[j] != '\r')
            j++;
        r = sl_buf_append_str(out, SL_STRLIT("data: "));
        if (r == 0)
            r = sl_buf_append(out, data.base + i, j - i);
        if (r == 0)
            r = sl_buf_append(out, "\n", 1);
        if (j >= data.len)
            break;
        i = j + 1;
        if (data.base[j] == '\r' && i < data.len && data.base[i] == '\n')
            i++;
    }
    if (r == 0)
        r = sl_buf_append(out, "\n", 1);
    if (r != 0)
        out->len = mark;
    return r;
}
