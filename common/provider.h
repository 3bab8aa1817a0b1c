/**
 * The provider table: data, not code. Each entry names a provider, its base
 * URL (including its API version segment), how it authenticates, which API
 * format (adapter) speaks to it and which endpoints it serves. Adding an
 * OpenAI-compatible service is one line in common/provider.c.
 *
 * Base URLs may hold placeholders in braces, filled per request from the
 * header x-sluice-<name> (or x-portkey-<name>): "{azure-resource-name}",
 * "{aws-region}", "{vertex-project-id}"... A value may only hold letters,
 * digits, '-', '_' and '.', so it can never change the URL's host or path
 * structure. "{model}" takes the request's model. A custom host replaces the
 * whole base URL, placeholders included. Read-only; any thread.
 */
#ifndef SL_PROVIDER_H
#define SL_PROVIDER_H

#include <stddef.h>
#include <stdio.h>

#include "common/str.h"

typedef enum {
    SL_AUTH_BEARER,          /* Authorization: Bearer <key> */
    SL_AUTH_BEARER_OPTIONAL, /* local servers: a key is sent when the caller has one */
    SL_AUTH_NONE,            /* no key at all */
    SL_AUTH_X_API_KEY,       /* x-api-key: <key> (Anthropic) */
    SL_AUTH_API_KEY,         /* api-key: <key> (Azure OpenAI; a bearer token also works) */
    SL_AUTH_GOOG_API_KEY,    /* x-goog-api-key: <key> (Gemini API) */
    SL_AUTH_QUERY_KEY,       /* ?key=<key> (only where a provider knows no header) */
    SL_AUTH_SIGV4,           /* AWS Signature Version 4 from x-sluice-aws-* headers */
} sl_auth_style_t;

typedef enum {
    SL_FORMAT_OPENAI,    /* OpenAI and every OpenAI-compatible API */
    SL_FORMAT_AZURE,     /* OpenAI bodies, deployment URLs and api-version */
    SL_FORMAT_ANTHROPIC, /* Messages API */
    SL_FORMAT_GEMINI,    /* generateContent (Gemini API and Vertex AI) */
    SL_FORMAT_BEDROCK,   /* Converse / ConverseStream, InvokeModel for embeddings */
    SL_FORMAT_COHERE,    /* v2 chat and embed */
    SL_FORMAT_COUNT
} sl_api_format_t;

/* Endpoint bits (sl_provider_t.endpoints). */
enum {
    SL_CAP_CHAT = 1u << 0,
    SL_CAP_COMPLETIONS = 1u << 1,
    SL_CAP_EMBEDDINGS = 1u << 2,
    SL_CAP_IMAGES = 1u << 3,
    SL_CAP_AUDIO = 1u << 4,       /* speech, transcriptions, translations */
    SL_CAP_MODELS = 1u << 5,
    SL_CAP_PASSTHROUGH = 1u << 6, /* any other /v1 path, sent as is */
};
#define SL_CAP_OPENAI_ALL 0x7fu
#define SL_CAP_OPENAI_LLM (SL_CAP_CHAT | SL_CAP_COMPLETIONS | SL_CAP_EMBEDDINGS | SL_CAP_MODELS | SL_CAP_PASSTHROUGH)
#define SL_CAP_CHAT_ONLY (SL_CAP_CHAT | SL_CAP_MODELS | SL_CAP_PASSTHROUGH)

typedef struct sl_provider_s {
    const char *name;     /* lower case, as in x-sluice-provider */
    const char *base_url; /* no trailing slash; may hold {placeholders} */
    sl_auth_style_t auth;
    sl_api_format_t format;
    unsigned endpoints;   /* SL_CAP_* */
    const char *label;    /* human name, for docs and listings */
} sl_provider_t;

/** Looks a provider up by name (case-insensitive); NULL when unknown. */
const sl_provider_t *sl_provider_find(sl_str_t name);
/** The whole table, for listings. */
const sl_provider_t *sl_provider_table(size_t *n);
/** The table as Markdown (docs/providers.md embeds it; a test keeps them equal). */
void sl_provider_print_table(FILE *f);
/** "openai", "anthropic"... */
const char *sl_format_name(sl_api_format_t f);

#endif
