/*
 * The request recorder and the /__mock/ admin API.
 *
 * Recording sits on the hot path of every benchmark request, so a record is
 * one allocation holding raw copies of the request line, headers and body; it
 * is turned into JSON only when a test asks for it.
 */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

#include "tests/mock_provider/mock.h"

struct mock_record_s {
    uint64_t id;
    uint64_t conn_id;
    int64_t time_us;
    unsigned method;
    size_t n_headers;
    mock_str_t url;         /* points into data */
    mock_str_t body;        /* points into data */
    mock_header_t *headers; /* points into data */
    _Alignas(max_align_t) char data[];
};

void mock_records_init(mock_records_t *r)
{
    memset(r, 0, sizeof(*r));
}

void mock_records_clear(mock_records_t *r)
{
    for (size_t i = 0; i < r->count; i++)
        free(r->ring[(r->start + i) % MOCK_RECORD_MAX]);
    r->start = 0;
    r->count = 0;
}

static char *copy_str(char *dst, mock_str_t *to, mock_str_t from)
{
    if (from.len)
        memcpy(dst, from.base, from.len);
    to->base = dst;
    to->len = from.len;
    return dst + from.len;
}

void mock_records_add(mock_records_t *r, const mock_req_t *req)
{
    size_t bytes = sizeof(mock_header_t) * req->n_headers + req->url.len + req->body.len;
    for (size_t i = 0; i < req->n_headers; i++)
        bytes += req->headers[i].name.len + req->headers[i].value.len;

    mock_record_t *rec = malloc(sizeof(*rec) + bytes);
    if (rec == NULL)
        return; /* losing a record of a huge body beats killing the mock */
    rec->id = req->id;
    rec->conn_id = req->conn_id;
    rec->time_us = mock_now_us();
    rec->method = req->method;
    rec->n_headers = req->n_headers;
    rec->headers = (mock_header_t *)(void *)rec->data;
    char *p = rec->data + sizeof(mock_header_t) * req->n_headers;
    for (size_t i = 0; i < req->n_headers; i++) {
        p = copy_str(p, &rec->headers[i].name, req->headers[i].name);
        p = copy_str(p, &rec->headers[i].value, req->headers[i].value);
    }
    p = copy_str(p, &rec->url, req->url);
    copy_str(p, &rec->body, req->body);

    if (r->count == MOCK_RECORD_MAX) {
        free(r->ring[r->start]);
        r->ring[r->start] = rec;
        r->start = (r->start + 1) % MOCK_RECORD_MAX;
    } else {
        r->ring[(r->start + r->count) % MOCK_RECORD_MAX] = rec;
        r->count++;
    }
}

static void dump_str_field(mock_buf_t *out, const char *name, mock_str_t v)
{
    MOCK_BUF_LIT(out, ",\"");
    mock_buf_append(out, name, strlen(name));
    MOCK_BUF_LIT(out, "\":");
    mock_buf_append_json_str(out, v.base ? v.base : "", v.len);
}

/* For SigV4-signed requests (Bedrock): the parts of the Authorization header,
 * so a test can check the credential scope without parsing it. */
static void dump_sigv4(const mock_record_t *rec, mock_buf_t *out)
{
    mock_sigv4_t v;

    for (size_t i = 0; i < rec->n_headers; i++) {
        if (!mock_str_eq_nocase(rec->headers[i].name, "authorization") ||
            !mock_sigv4_parse(rec->headers[i].value, &v))
            continue;
        MOCK_BUF_LIT(out, ",\"sigv4\":{\"algorithm\":\"AWS4-HMAC-SHA256\"");
        dump_str_field(out, "access_key", v.access_key);
        dump_str_field(out, "date", v.date);
        dump_str_field(out, "region", v.region);
        dump_str_field(out, "service", v.service);
        MOCK_BUF_LIT(out, ",\"signed_headers\":[");
        const char *p = v.signed_headers.base, *end = p + v.signed_headers.len;
        for (int k = 0; p != NULL && p < end; k++) {
            const char *semi = memchr(p, ';', (size_t)(end - p));
            const char *stop = semi ? semi : end;
            if (k)
                MOCK_BUF_LIT(out, ",");
            mock_buf_append_json_str(out, p, (size_t)(stop - p));
            p = semi ? semi + 1 : end;
        }
        MOCK_BUF_LIT(out, "]");
        dump_str_field(out, "signature", v.signature);
        MOCK_BUF_LIT(out, "}");
        return;
    }
}

static void dump_record(const mock_record_t *rec, mock_buf_t *out)
{
    const char *method = http_method_str((enum http_method)rec->method);

    MOCK_BUF_LIT(out, "{\"id\":");
    mock_buf_append_u64(out, rec->id);
    MOCK_BUF_LIT(out, ",\"request_id\":\"req_mock_");
    mock_buf_append_u64(out, rec->id);
    MOCK_BUF_LIT(out, "\",\"conn\":");
    mock_buf_append_u64(out, rec->conn_id);
    MOCK_BUF_LIT(out, ",\"time_us\":");
    mock_buf_append_i64(out, rec->time_us);
    MOCK_BUF_LIT(out, ",\"method\":");
    mock_buf_append_json_str(out, method, strlen(method));
    MOCK_BUF_LIT(out, ",\"path\":");
    mock_buf_append_json_str(out, rec->url.base, rec->url.len);
    MOCK_BUF_LIT(out, ",\"headers\":[");
    for (size_t i = 0; i < rec->n_headers; i++) {
        if (i)
            MOCK_BUF_LIT(out, ",");
        MOCK_BUF_LIT(out, "[");
        mock_buf_append_json_str(out, rec->headers[i].name.base, rec->headers[i].name.len);
        MOCK_BUF_LIT(out, ",");
        mock_buf_append_json_str(out, rec->headers[i].value.base, rec->headers[i].value.len);
        MOCK_BUF_LIT(out, "]");
    }
    MOCK_BUF_LIT(out, "],\"body\":");
    if (mock_utf8_valid(rec->body.base, rec->body.len))
        mock_buf_append_json_str(out, rec->body.base, rec->body.len);
    else
        MOCK_BUF_LIT(out, "null");
    MOCK_BUF_LIT(out, ",\"body_base64\":\"");
    mock_buf_append_base64(out, rec->body.base, rec->body.len);
    MOCK_BUF_LIT(out, "\",\"body_length\":");
    mock_buf_append_u64(out, rec->body.len);
    dump_sigv4(rec, out);
    MOCK_BUF_LIT(out, "}");
}

static bool path_is(const mock_req_t *req, const char *p)
{
    size_t n = strlen(p);

    return req->path.len == n && memcmp(req->path.base, p, n) == 0;
}

static void admin_not_found(mock_resp_t *resp, const char *message)
{
    resp->status = 404;
    MOCK_BUF_LIT(resp->body, "{\"error\":{\"message\":");
    mock_buf_append_json_str(resp->body, message, strlen(message));
    MOCK_BUF_LIT(resp->body, ",\"type\":\"mock_error\"}}");
}

void mock_admin_handle(mock_records_t *r, mock_req_t *req, mock_resp_t *resp)
{
    mock_buf_t *out = resp->body;

    if (path_is(req, "/__mock/health") && req->method == HTTP_GET) {
        MOCK_BUF_LIT(out, "{\"ok\":true}");
    } else if (path_is(req, "/__mock/requests") && req->method == HTTP_GET) {
        MOCK_BUF_LIT(out, "[");
        for (size_t i = 0; r != NULL && i < r->count; i++) {
            if (i)
                MOCK_BUF_LIT(out, ",\n");
            dump_record(r->ring[(r->start + i) % MOCK_RECORD_MAX], out);
        }
        MOCK_BUF_LIT(out, "]");
    } else if (path_is(req, "/__mock/requests") && req->method == HTTP_DELETE) {
        if (r != NULL)
            mock_records_clear(r);
        resp->status = 204;
    } else if (path_is(req, "/__mock/requests/last") && req->method == HTTP_GET) {
        if (r == NULL || r->count == 0) {
            admin_not_found(resp, "no request recorded");
            return;
        }
        dump_record(r->ring[(r->start + r->count - 1) % MOCK_RECORD_MAX], out);
    } else {
        admin_not_found(resp, "unknown /__mock/ endpoint");
    }
}
