/**
 * The provider table: data, not code. Each entry names a provider, its base
 * URL (including its API version segment), how it authenticates and which
 * API format (adapter) speaks to it. Adding an OpenAI-compatible service is
 * one line in providers.c. Read-only; any thread.
 */
#ifndef GW_PROVIDER_H
#define GW_PROVIDER_H

#include "common/str.h"

typedef enum {
    GW_AUTH_BEARER, /* Authorization: Bearer <key> */
    GW_AUTH_NONE,   /* local servers (Ollama, vLLM without a key) */
} gw_auth_style_t;

typedef enum {
    GW_FORMAT_OPENAI, /* OpenAI and every OpenAI-compatible API */
} gw_api_format_t;

typedef struct gw_provider_s {
    const char *name;
    const char *base_url;   /* no trailing slash */
    gw_auth_style_t auth;
    gw_api_format_t format;
} gw_provider_t;

/** Looks a provider up by name (case-insensitive); NULL when unknown. */
const gw_provider_t *gw_provider_find(sl_str_t name);
/** The whole table, for listings. */
const gw_provider_t *gw_provider_table(size_t *n);

#endif
