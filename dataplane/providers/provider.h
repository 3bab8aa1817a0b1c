/**
 * The provider table: data, not code. Each entry names a provider, its base
 * URL (including its API version segment), how it authenticates, which API
 * format (adapter) speaks to it and which endpoints it serves. Adding an
 * OpenAI-compatible service is one line in providers.c.
 *
 * Base URLs may hold placeholders in braces, filled per request from the
 * header x-sluice-<name> (or x-portkey-<name>): "{azure-resource-name}",
 * "{aws-region}", "{vertex-project-id}"... A value may only hold letters,
 * digits, '-', '_' and '.', so it can never change the URL's host or path
 * structure. "{model}" takes the request's model. A custom host replaces the
 * whole base URL, placeholders included. Read-only; any thread.
 */
#ifndef GW_PROVIDER_H
#define GW_PROVIDER_H

#include <stddef.h>
#include <stdio.h>

#include "common/str.h"

typedef enum {
    GW_AUTH_BEARER,          /* Authorization: Bearer <key> */
    GW_AUTH_BEARER_OPTIONAL, /* local servers: a key is sent when the caller has one */
    GW_AUTH_NONE,            /* no key at all */
    GW_AUTH_X_API_KEY,       /* x-api-key: <key> (Anthropic) */
    GW_AUTH_API_KEY,         /* api-key: <key> (Azure OpenAI; a bearer token also works) */
    GW_AUTH_GOOG_API_KEY,    /* x-goog-api-key: <key> (Gemini API) */
    GW_AUTH_QUERY_KEY,       /* ?key=<key> (only where a provider knows no header) */
    GW_AUTH_SIGV4,           /* AWS Signature Version 4 from x-sluice-aws-* headers */
} gw_auth_style_t;

typedef enum {
    GW_FORMAT_OPENAI,    /* OpenAI and every OpenAI-compatible API */
    GW_FORMAT_AZURE,     /* OpenAI bodies, deployment URLs and api-version */
    GW_FORMAT_ANTHROPIC, /* Messages API */
    GW_FORMAT_GEMINI,    /* generateContent (Gemini API and Vertex AI) */
    GW_FORMAT_BEDROCK,   /* Converse / ConverseStream, InvokeModel for embeddings */
    GW_FORMAT_COHERE,    /* v2 chat and embed */
    GW_FORMAT_COUNT
} gw_api_format_t;

/* Endpoint bits (gw_provider_t.endpoints). */
enum {
    GW_CAP_CHAT = 1u << 0,
    GW_CAP_COMPLETIONS = 1u << 1,
    GW_CAP_EMBEDDINGS = 1u << 2,
    GW_CAP_IMAGES = 1u << 3,
    GW_CAP_AUDIO = 1u << 4,       /* speech, transcriptions, translations */
    GW_CAP_MODELS = 1u << 5,
    GW_CAP_PASSTHROUGH = 1u << 6, /* any other /v1 path, sent as is */
};
#define GW_CAP_OPENAI_ALL 0x7fu
#define GW_CAP_OPENAI_LLM (GW_CAP_CHAT | GW_CAP_COMPLETIONS | GW_CAP_EMBEDDINGS | GW_CAP_MODELS | GW_CAP_PASSTHROUGH)
#define GW_CAP_CHAT_ONLY (GW_CAP_CHAT | GW_CAP_MODELS | GW_CAP_PASSTHROUGH)

typedef struct gw_provider_s {
    const char *name;     /* lower case, as in x-sluice-provider */
    const char *base_url; /* no trailing slash; may hold {placeholders} */
    gw_auth_style_t auth;
    gw_api_format_t format;
    unsigned endpoints;   /* GW_CAP_* */
    const char *label;    /* human name, for docs and listings */
} gw_provider_t;

/** Looks a provider up by name (case-insensitive); NULL when unknown. */
const gw_provider_t *gw_provider_find(sl_str_t name);
/** The whole table, for listings. */
const gw_provider_t *gw_provider_table(size_t *n);
/** The table as Markdown (docs/providers.md embeds it; a test keeps them equal). */
void gw_provider_print_table(FILE *f);
/** "openai", "anthropic"... */
const char *gw_format_name(gw_api_format_t f);

#endif
