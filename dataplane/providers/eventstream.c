#include "dataplane/providers/eventstream.h"

#include <string.h>
#include <zlib.h>

#include "common/err.h"

/* A buffer that grew past this for one big message is freed once it is done. */
#define KEEP_BUF_BYTES (64u * 1024)

static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | (uint32_t)u[3];
}

static uint16_t be16(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint16_t)(u[0] << 8 | u[1]);
}

static uint64_t be64(const char *p)
{
    return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static uint32_t crc(const char *p, size_t n)
{
    /* zlib takes uInt lengths; messages are below 4 GiB, but stay general. */
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > 0x40000000u ? 0x40000000u : (uInt)n;
        c = crc32(c, (const Bytef *)p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

void gw_es_decoder_init(gw_es_decoder_t *d, size_t max_message)
{
    memset(d, 0, sizeof(*d));
    d->_max_message = max_message;
    /* The buffer must at least hold a prelude, whatever the cap. */
    sl_buf_init(&d->_buf, max_message > GW_ES_MIN_MESSAGE ? max_message : GW_ES_MIN_MESSAGE);
}

void gw_es_decoder_dispose(gw_es_decoder_t *d)
{
    sl_buf_dispose(&d->_buf);
    d->_need = 0;
}

int gw_es_pending(const gw_es_decoder_t *d)
{
    return d->_buf.len > 0;
}

/*
 * Validates a prelude (12 bytes) and gives the message's total length. The
 * CRC is checked first, so that a corrupted length is reported as what it
 * is rather than as an oversized message.
 */
static int check_prelude(const char *p, size_t max_message, size_t *total)
{
    uint32_t tl = be32(p), hl = be32(p + 4);
    if (crc(p, 8) != be32(p + 8))
        return SL_EUPPROTO;
    if (tl < GW_ES_MIN_MESSAGE || hl > tl - GW_ES_MIN_MESSAGE)
        return SL_EUPPROTO;
    if (tl > max_message)
        return SL_ETOOBIG;
    *total = tl;
    return 0;
}

/*
 * Reads the header at *off of block[0..len). 1 and *h filled, 0 at the end
 * of the block, -1 when the header is malformed or runs past the block.
 */
static int parse_header(const char *block, size_t len, size_t *off, gw_es_header_t *h)
{
    size_t at = *off;
    if (at >= len)
        return 0;
    size_t nl = (unsigned char)block[at++];
    if (nl == 0 || len - at < nl + 1)
        return -1;
    h->name = sl_str(block + at, nl);
    at += nl;
    h->type = (unsigned char)block[at++];
    h->i = 0;
    h->bytes = SL_STR_NULL;
    size_t rest = len - at;
    switch (h->type) {
    case GW_ES_BOOL_TRUE:
        h->i = 1;
        break;
    case GW_ES_BOOL_FALSE:
        break;
    case GW_ES_BYTE:
        if (rest < 1)
            return -1;
        h->i = (int8_t)(unsigned char)block[at];
        at += 1;
        break;
    case GW_ES_SHORT:
        if (rest < 2)
            return -1;
        h->i = (int16_t)be16(block + at);
        at += 2;
        break;
    case GW_ES_INT:
        if (rest < 4)
            return -1;
        h->i = (int32_t)be32(block + at);
        at += 4;
        break;
    case GW_ES_LONG:
    case GW_ES_TIMESTAMP:
        if (rest < 8)
            return -1;
        h->i = (int64_t)be64(block + at);
        at += 8;
        break;
    case GW_ES_BYTES:
    case GW_ES_STRING: {
        if (rest < 2)
            return -1;
        size_t vl = be16(block + at);
        at += 2;
        if (rest - 2 < vl)
            return -1;
        h->bytes = sl_str(block + at, vl);
        at += vl;
        break;
    }
    case GW_ES_UUID:
        if (rest < 16)
            return -1;
        h->bytes = sl_str(block + at, 16);
        at += 16;
        break;
    default:
        return -1;
    }
    *off = at;
    return 1;
}

int gw_es_header_next(const gw_es_message_t *m, size_t *off, gw_es_header_t *h)
{
    return parse_header(m->headers.base, m->headers.len, off, h) == 1;
}

/* Decodes one complete message of total bytes (prelude already checked) and calls back. */
static int process(const char *p, size_t total, gw_es_cb cb, void *ud)
{
    if (crc(p, total - 4) != be32(p + total - 4))
        return SL_EUPPROTO;
    size_t hl = be32(p + 4);
    gw_es_message_t m;
    memset(&m, 0, sizeof(m));
    m.headers = sl_str(p + GW_ES_PRELUDE_LEN, hl);
    m.payload = sl_str(p + GW_ES_PRELUDE_LEN + hl, total - hl - GW_ES_MIN_MESSAGE);

    size_t off = 0;
    gw_es_header_t h;
    int r;
    while ((r = parse_header(m.headers.base, hl, &off, &h)) == 1) {
        if (h.type != GW_ES_STRING || h.name.base[0] != ':')
            continue;
        if (sl_str_eq(h.name, SL_STRLIT(":message-type")))
            m.message_type = h.bytes;
        else if (sl_str_eq(h.name, SL_STRLIT(":event-type")))
            m.event_type = h.bytes;
        else if (sl_str_eq(h.name, SL_STRLIT(":exception-type")))
            m.exception_type = h.bytes;
        else if (sl_str_eq(h.name, SL_STRLIT(":content-type")))
            m.content_type = h.bytes;
        else if (sl_str_eq(h.name, SL_STRLIT(":error-code")))
            m.error_code = h.bytes;
        else if (sl_str_eq(h.name, SL_STRLIT(":error-message")))
            m.error_message = h.bytes;
    }
    if (r < 0)
        return SL_EUPPROTO;
    return cb(ud, &m) != 0 ? 1 : 0;
}

/* Appends p[0..n) to the buffer of the unfinished message (room was reserved or is tiny). */
static int stash(gw_es_decoder_t *d, const char *p, size_t n)
{
    return sl_buf_append(&d->_buf, p, n);
}

int gw_es_feed(gw_es_decoder_t *d, const char *p, size_t n, gw_es_cb cb, void *ud)
{
    size_t i = 0, total = 0;
    int r = 0;

    if (d->_err != 0)
        return d->_err;

    /* First finish the message whose start was buffered by an earlier feed. */
    while (d->_buf.len > 0 && i < n) {
        if (d->_need == 0) {
            size_t take = GW_ES_PRELUDE_LEN - d->_buf.len;
            if (take > n - i)
                take = n - i;
            r = stash(d, p + i, take);
            if (r != 0)
                goto Fail;
            i += take;
            if (d->_buf.len < GW_ES_PRELUDE_LEN)
                return 0;
            r = check_prelude(d->_buf.base, d->_max_message, &total);
            if (r != 0)
                goto Fail;
            r = sl_buf_try_reserve(&d->_buf, total - d->_buf.len);
            if (r != 0)
                goto Fail;
            d->_need = total;
        }
        size_t take = d->_need - d->_buf.len;
        if (take > n - i)
            take = n - i;
        r = stash(d, p + i, take);
        if (r != 0)
            goto Fail;
        i += take;
        if (d->_buf.len < d->_need)
            return 0;
        r = process(d->_buf.base, d->_need, cb, ud);
        d->_need = 0;
        if (d->_buf.cap > KEEP_BUF_BYTES)
            sl_buf_dispose(&d->_buf);
        else
            sl_buf_reset(&d->_buf);
        if (r != 0)
            goto Fail;
    }

    /* Then the complete messages of this input, in place. */
    while (n - i >= GW_ES_PRELUDE_LEN) {
        r = check_prelude(p + i, d->_max_message, &total);
        if (r != 0)
            goto Fail;
        if (n - i < total)
            break;
        r = process(p + i, total, cb, ud);
        i += total;
        if (r != 0)
            goto Fail;
    }

    /* Keep the start of an unfinished message for the next feed. */
    if (i < n) {
        if (n - i >= GW_ES_PRELUDE_LEN) {
            /* Its prelude was checked above; total is its length. */
            r = sl_buf_try_reserve(&d->_buf, total);
            if (r != 0)
                goto Fail;
            d->_need = total;
        }
        r = stash(d, p + i, n - i);
        if (r != 0)
            goto Fail;
    }
    return 0;

Fail:
    d->_err = r;
    return r;
}

static int header_size(const gw_es_header_t *h, size_t *size)
{
    if (h->name.len == 0 || h->name.len > 255)
        return SL_EINVAL;
    size_t vs;
    switch (h->type) {
    case GW_ES_BOOL_TRUE:
    case GW_ES_BOOL_FALSE:
        vs = 0;
        break;
    case GW_ES_BYTE:
        if (h->i < INT8_MIN || h->i > INT8_MAX)
            return SL_EINVAL;
        vs = 1;
        break;
    case GW_ES_SHORT:
        if (h->i < INT16_MIN || h->i > INT16_MAX)
            return SL_EINVAL;
        vs = 2;
        break;
    case GW_ES_INT:
        if (h->i < INT32_MIN || h->i > INT32_MAX)
            return SL_EINVAL;
        vs = 4;
        break;
    case GW_ES_LONG:
    case GW_ES_TIMESTAMP:
        vs = 8;
        break;
    case GW_ES_BYTES:
    case GW_ES_STRING:
        if (h->bytes.len > UINT16_MAX)
            return SL_EINVAL;
        vs = 2 + h->bytes.len;
        break;
    case GW_ES_UUID:
        if (h->bytes.len != 16)
            return SL_EINVAL;
        vs = 16;
        break;
    default:
        return SL_EINVAL;
    }
    *size = 1 + h->name.len + 1 + vs;
    return 0;
}

static char *put_header(char *w, const gw_es_header_t *h)
{
    *w++ = (char)h->name.len;
    memcpy(w, h->name.base, h->name.len);
    w += h->name.len;
    *w++ = (char)h->type;
    uint64_t u = (uint64_t)h->i;
    switch (h->type) {
    case GW_ES_BYTE:
        *w++ = (char)u;
        break;
    case GW_ES_SHORT:
        *w++ = (char)(u >> 8);
        *w++ = (char)u;
        break;
    case GW_ES_INT:
        put32(w, (uint32_t)u);
        w += 4;
        break;
    case GW_ES_LONG:
    case GW_ES_TIMESTAMP:
        put32(w, (uint32_t)(u >> 32));
        put32(w + 4, (uint32_t)u);
        w += 8;
        break;
    case GW_ES_BYTES:
    case GW_ES_STRING:
        *w++ = (char)(h->bytes.len >> 8);
        *w++ = (char)h->bytes.len;
        if (h->bytes.len)
            memcpy(w, h->bytes.base, h->bytes.len);
        w += h->bytes.len;
        break;
    case GW_ES_UUID:
        memcpy(w, h->bytes.base, 16);
        w += 16;
        break;
    default:
        break;
    }
    return w;
}

int gw_es_encode_headers(sl_buf_t *out, const gw_es_header_t *h, size_t nh, sl_str_t payload)
{
    size_t hl = 0;
    for (size_t k = 0; k < nh; k++) {
        size_t s;
        int r = header_size(&h[k], &s);
        if (r != 0)
            return r;
        if (hl > UINT32_MAX - s)
            return SL_EINVAL;
        hl += s;
    }
    if (hl > UINT32_MAX - GW_ES_MIN_MESSAGE || payload.len > UINT32_MAX - GW_ES_MIN_MESSAGE - hl)
        return SL_EINVAL;
    size_t total = GW_ES_MIN_MESSAGE + hl + payload.len;
    int r = sl_buf_try_reserve(out, total);
    if (r != 0)
        return r;
    char *start = out->base + out->len, *w = start;
    put32(w, (uint32_t)total);
    put32(w + 4, (uint32_t)hl);
    put32(w + 8, crc(w, 8));
    w += GW_ES_PRELUDE_LEN;
    for (size_t k = 0; k < nh; k++)
        w = put_header(w, &h[k]);
    if (payload.len)
        memcpy(w, payload.base, payload.len);
    w += payload.len;
    put32(w, crc(start, total - 4));
    out->len += total;
    return 0;
}

int gw_es_encode(sl_buf_t *out, const sl_str_t *hnames, const sl_str_t *hvalues, size_t nh,
                 sl_str_t payload)
{
    gw_es_header_t small[16] = {0};
    gw_es_header_t *h = small;
    if (nh > SL_ARRAY_SIZE(small)) {
        if (nh > SIZE_MAX / sizeof(*h))
            return SL_EINVAL;
        h = sl_try_malloc(nh * sizeof(*h));
        if (h == NULL)
            return SL_ENOMEM;
    }
    for (size_t k = 0; k < nh; k++)
        h[k] = (gw_es_header_t){.name = hnames[k], .type = GW_ES_STRING, .bytes = hvalues[k]};
    int r = gw_es_encode_headers(out, h, nh, payload);
    if (h != small)
        sl_free(h);
    return r;
}
