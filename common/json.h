/**
 * JSON helpers on top of jansson, shared by both planes.
 */
#ifndef SL_JSON_H
#define SL_JSON_H

#include <jansson.h>

#include "common/buf.h"
#include "common/str.h"

/**
 * Appends an OpenAI-style error body:
 * {"error":{"message":..,"type":..,"param":..,"code":..}}. param may be NULL
 * (JSON null). Strings are escaped.
 */
int sl_json_error_body(sl_buf_t *out, const char *message, const char *type, const char *param,
                       const char *code);

/** Length of the valid UTF-8 sequence at p (1 to 4), or 0 when it is not one. */
size_t sl_utf8_len(const char *p, size_t n);

/** Appends s as a JSON string literal (with quotes), escaping as needed. */
int sl_json_append_string(sl_buf_t *out, sl_str_t s);

/**
 * Appends the compact JSON text of v (jansson's insertion order). About ten
 * times faster than jansson's own dump, which walks every string byte
 * through a UTF-8 decoder and a callback: translated answers are dumped on
 * the request path. 0, or SL_ETOOBIG past the buffer's cap.
 */
int sl_json_dump(sl_buf_t *out, const json_t *v);

/** json_decref for use as an arena defer. */
void sl_json_decref_cb(void *json);

#endif
