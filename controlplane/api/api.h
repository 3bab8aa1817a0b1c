/**
 * The admin REST API of sluice-control (/v1/admin/...), on libmicrohttpd
 * with a thread pool. A request is read whole (capped), authenticated with
 * an admin token, dispatched to its route's handler with a pooled Postgres
 * connection, and answered with JSON. Writes run in one transaction that
 * the dispatcher opens and commits only when the handler succeeded, so a
 * failed write changes nothing (the audit record and the idempotency record
 * commit with it or not at all).
 *
 * Handlers run on MHD's worker threads; everything they touch is either
 * per-request (cp_req_t) or thread-safe (pool, metrics).
 */
#ifndef CP_API_H
#define CP_API_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/crypto.h"
#include "controlplane/store/store.h"

struct MHD_Connection;

typedef struct cp_app_s {
    cp_pool_t *pool;
    uint8_t master_key[SL_AEAD_KEY_LEN];
    char master_key_id[SL_KEY_ID_LEN + 1];
    size_t max_body;        /* bytes a request body may have */
    int threads;
    struct cp_metrics_s *metrics;
    _Atomic int started;    /* migrations applied and bootstrap done */
} cp_app_t;

enum { CP_ROLE_NONE = 0, CP_ROLE_VIEWER, CP_ROLE_MEMBER, CP_ROLE_ADMIN, CP_ROLE_OWNER };

typedef struct {
    char id[48];            /* admin token id */
    int role;               /* CP_ROLE_* */
    char workspace[48];     /* "" when the token reaches every workspace */
} cp_actor_t;

#define CP_MAX_PARAMS 3

typedef struct cp_req_s {
    cp_app_t *app;
    struct MHD_Connection *conn;
    const char *method;     /* borrowed from MHD */
    const char *url;        /* borrowed from MHD */
    int route;              /* index into the route table, -1 before routing */
    char *params[CP_MAX_PARAMS]; /* path parameters; owned */
    sl_buf_t body;
    int body_too_big;
    json_t *json;           /* parsed body; owned */
    cp_actor_t actor;
    PGconn *db;             /* borrowed from the pool while handling */
    char request_id[40];
    /* the answer */
    int status;
    char *out;              /* owned (sl_xmalloc) */
    size_t outlen;
    char etag[24];
    int replayed;           /* answered from the idempotency record */
    char allow[48];         /* methods the path takes, for a 405 */
    double started;         /* monotonic seconds */
    double elapsed;         /* seconds to the answer */
} cp_req_t;

typedef int (*cp_handler_t)(cp_req_t *r);

/* ---- answering (http.c) ------------------------------------------------ */

/** Answers with a JSON value (reference stolen). Returns 0. */
int cp_reply(cp_req_t *r, int status, json_t *body);
/** Answers with JSON text produced elsewhere (Postgres). Returns 0. */
int cp_reply_raw(cp_req_t *r, int status, const char *json, size_t len);
/**
 * Answers with an error: the SL_E* code gives status, type and code; msg
 * (printf format, may be NULL for the default) the message. Returns -1 so
 * that handlers can `return cp_fail(...)`.
 */
int cp_fail(cp_req_t *r, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** 400 invalid_request_error, code invalid_field, param = JSON path. Returns -1. */
int cp_fail_field(cp_req_t *r, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** 404 with "<what> not found" (also what another workspace's objects answer). */
int cp_not_found(cp_req_t *r, const char *what);

const char *cp_header(cp_req_t *r, const char *name);
const char *cp_query(cp_req_t *r, const char *name);

/* ---- database (http.c) -------------------------------------------------- */

/**
 * Runs a statement on the request's connection. On failure answers the
 * request (503 database unreachable, 409 unique violation, 400 bad value,
 * 500 otherwise) and returns -1; *res is NULL then.
 */
int cp_db(cp_req_t *r, PGresult **res, const char *sql, int n, const char *const *vals);
/** Like cp_db, expecting exactly one row with one column: copies it to r's answer. */
int cp_db_reply_one(cp_req_t *r, int status, const char *what, const char *sql, int n,
                    const char *const *vals);

/* ---- common checks (auth.c) -------------------------------------------- */

/** 403 unless the caller's role is at least role. Returns 0 or -1. */
int cp_need_role(cp_req_t *r, int role);
/** The caller's workspace scope as a SQL parameter: NULL for every workspace. */
const char *cp_scope(cp_req_t *r);
/**
 * Resolves the workspace a create lands in: the body's workspace_id, or the
 * caller's own. Checks it exists and is visible. Writes it to out (48
 * bytes). Returns 0 or -1 (answered).
 */
int cp_target_workspace(cp_req_t *r, json_t *body, char *out);
const char *cp_role_name(int role);
int cp_role_parse(const char *s);

/* ---- audit (audit.c) ----------------------------------------------------- */

/**
 * Records a write in the request's transaction. before/after are JSON texts
 * (NULL for none) rendered without secrets. Returns 0 or -1 (answered).
 */
int cp_audit(cp_req_t *r, const char *action, const char *type, const char *id,
             const char *workspace, const char *before, const char *after);

/* ---- helpers (util.c) -------------------------------------------------- */

/** A new id: prefix, '_', 12 hex digits of milliseconds, 16 random hex digits. */
void cp_new_id(const char *prefix, char *out, size_t outsz);
/** A new secret: prefix + 64 hex characters (256 bits); its SHA-256 hex and hint. */
void cp_new_secret(const char *prefix, char *secret, size_t secretsz, char hash_hex[65],
                   char *hint, size_t hintsz);
/** SHA-256 hex of a secret as given by a caller. */
void cp_hash_secret(const char *secret, char hash_hex[65]);
/** Masked hint of a secret: its first characters up to the last '-' or 3, "...", last 4. */
void cp_secret_hint(const char *secret, char *hint, size_t hintsz);

/**
 * Pagination: reads ?limit (1..100, default 20) and ?after. Returns 0 or -1
 * (answered). *after is NULL without a cursor.
 */
int cp_page_args(cp_req_t *r, int *limit, const char **after);
/**
 * Answers a page of a list: sql takes the filters as $1..$n, then the
 * cursor ($n+1, NULL for the first page) and the row limit ($n+2, one more
 * than the page size, to tell whether more follow), and returns one JSON
 * array text. numeric_cursor: the cursor must be digits.
 */
int cp_list(cp_req_t *r, const char *sql, int nfilters, const char *const *filters,
            const char *cursor_field, int numeric_cursor);
/**
 * Answers a list from a JSON array text holding up to limit+1 items, each
 * with an "id" (or the key named by cursor_field): {"object":"list",
 * "data":[...], "has_more":bool, "next_cursor":...}.
 */
int cp_reply_page(cp_req_t *r, const char *array_text, int limit, const char *cursor_field);

/**
 * If-Match: returns 0 when absent or "*", else the version it names (> 0),
 * or -1 after answering 400 for a malformed value.
 */
int cp_if_match(cp_req_t *r);
/** Sets the ETag answered for an object at a version. */
void cp_set_etag(cp_req_t *r, const char *version);

/**
 * Loads an object to change: sql returns (render json text, version) for
 * the id and scope in vals, locked FOR UPDATE. Checks If-Match. Returns the
 * render (new reference) with its version, or NULL (answered 404/412).
 */
json_t *cp_load_for_update(cp_req_t *r, const char *what, const char *sql, int n,
                           const char *const *vals, char version[16]);
/**
 * DELETE of a workspace object (member role): locks it by (id, scope) with
 * lock_sql (render, version; 404 for another workspace's), checks If-Match,
 * runs delete_sql ($1 = id), audits, answers {"object","id","deleted"}.
 */
int cp_delete_object(cp_req_t *r, const char *what, const char *type, const char *lock_sql,
                     const char *delete_sql);
/** Compact JSON text of v, to free with sl_free. */
char *cp_dump(const json_t *v);
/** Answers the (render, version) row of an INSERT/UPDATE ... RETURNING. */
int cp_reply_written(cp_req_t *r, int status, PGresult *res);

/** RFC 7396 JSON merge patch: applies patch to target in place. */
void cp_merge_patch(json_t *target, const json_t *patch);

/* ---- validation (validate.c) ------------------------------------------ */

typedef enum {
    CP_F_STRING,   /* max: longest length (default 256) */
    CP_F_TEXT,     /* long string (max default 65536) */
    CP_F_INT,      /* min..max */
    CP_F_NUMBER,   /* min..max, decimals */
    CP_F_BOOL,
    CP_F_OBJECT,   /* any object (metadata: string values only when max == 1) */
    CP_F_STRINGS,  /* array of strings, max items */
    CP_F_TIME,     /* RFC 3339 timestamp */
    CP_F_ENUM,     /* one of enums */
    CP_F_ANY,      /* any JSON, checked by the handler */
} cp_ftype_t;

typedef struct cp_field_s {
    const char *name;
    cp_ftype_t type;
    int required;
    int nullable;
    double min, max;
    const char *const *enums;
    const struct cp_field_s *sub; /* CP_F_OBJECT with known fields; ends with a NULL name */
} cp_field_t;

/**
 * Checks obj against the fields (unknown fields refused). With partial,
 * required fields may be missing (PATCH). prefix is the JSON path of obj
 * ("$"). Returns 0 or -1 (answered 400 naming the path).
 */
int cp_validate(cp_req_t *r, const json_t *obj, const cp_field_t *fields, int partial,
                const char *prefix);

/**
 * A JSON value as a SQL text parameter, in the arena-less way: returns a
 * string to free with sl_free, or NULL for JSON null/absent. Strings as is,
 * numbers and booleans in their text form, objects and arrays as JSON.
 */
char *cp_param(const json_t *v);

/* ---- routes ------------------------------------------------------------ */

typedef struct {
    const char *method;
    const char *path;       /* "/v1/admin/api-keys/{id}"; a final "{...}" takes the rest */
    cp_handler_t fn;
    int write;              /* runs in a transaction */
    int idempotent;         /* honours Idempotency-Key */
    int public_;            /* no token needed */
} cp_route_t;

const cp_route_t *cp_routes(int *n);

/* Handlers, one file per resource. */
int cp_h_workspaces_list(cp_req_t *r);
int cp_h_workspaces_create(cp_req_t *r);
int cp_h_workspaces_get(cp_req_t *r);
int cp_h_workspaces_update(cp_req_t *r);
int cp_h_workspaces_delete(cp_req_t *r);
int cp_h_tokens_list(cp_req_t *r);
int cp_h_tokens_create(cp_req_t *r);
int cp_h_tokens_get(cp_req_t *r);
int cp_h_tokens_delete(cp_req_t *r);
int cp_h_tokens_me(cp_req_t *r);
int cp_h_keys_list(cp_req_t *r);
int cp_h_keys_create(cp_req_t *r);
int cp_h_keys_get(cp_req_t *r);
int cp_h_keys_update(cp_req_t *r);
int cp_h_keys_delete(cp_req_t *r);
int cp_h_keys_rotate(cp_req_t *r);
int cp_h_keys_revoke(cp_req_t *r);
int cp_h_vkeys_list(cp_req_t *r);
int cp_h_vkeys_create(cp_req_t *r);
int cp_h_vkeys_get(cp_req_t *r);
int cp_h_vkeys_update(cp_req_t *r);
int cp_h_vkeys_delete(cp_req_t *r);
int cp_h_vkeys_rotate(cp_req_t *r);
int cp_h_docs_list(cp_req_t *r);
int cp_h_docs_create(cp_req_t *r);
int cp_h_docs_get(cp_req_t *r);
int cp_h_docs_update(cp_req_t *r);
int cp_h_docs_delete(cp_req_t *r);
int cp_h_docs_versions(cp_req_t *r);
int cp_h_docs_version(cp_req_t *r);
int cp_h_docs_rollback(cp_req_t *r);
int cp_h_pricing_list(cp_req_t *r);
int cp_h_pricing_get(cp_req_t *r);
int cp_h_pricing_put(cp_req_t *r);
int cp_h_pricing_delete(cp_req_t *r);
int cp_h_audit_list(cp_req_t *r);
int cp_h_nodes_list(cp_req_t *r);
int cp_h_openapi(cp_req_t *r);
int cp_h_health(cp_req_t *r);
int cp_h_ready(cp_req_t *r);
int cp_h_metrics(cp_req_t *r);

/* ---- server (server.c) -------------------------------------------------- */

typedef struct cp_server_s cp_server_t;
/** Starts listening on host:port with threads workers. NULL on failure (logged). */
cp_server_t *cp_server_start(cp_app_t *app, const char *listen);
void cp_server_stop(cp_server_t *s);
/** The port listened on (the one picked when asked for port 0). */
unsigned cp_server_port(const cp_server_t *s);

/* ---- metrics (metrics.c) ------------------------------------------------ */
struct cp_metrics_s *cp_metrics_new(int nroutes);
void cp_metrics_free(struct cp_metrics_s *m);
void cp_metrics_observe(struct cp_metrics_s *m, int route, int status, double seconds);

/** Seals/opens with the master key, binding the sealed bytes to aad. */
int cp_seal(cp_app_t *app, const void *plain, size_t n, const char *aad, uint8_t **out,
            size_t *outlen);
int cp_open(cp_app_t *app, const uint8_t *sealed, size_t n, const char *aad, uint8_t **out,
            size_t *outlen);
/** bytea <-> \x hex text for SQL parameters and results. */
char *cp_bytea_hex(const uint8_t *p, size_t n);
uint8_t *cp_bytea_parse(const char *text, size_t *n);

#endif
