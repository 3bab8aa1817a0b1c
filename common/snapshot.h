/**
 * The snapshot model: everything a gateway needs to serve requests without
 * the control plane, as immutable C structs. The control plane encodes it
 * (sl_snap_writer_*) as the msgpack payload of a signed SNAPSHOT message
 * (proto/PROTOCOL.md); a gateway decodes it (sl_snapshot_decode) into one
 * allocation set owned by the sl_snapshot_t, looks keys up by hash and
 * objects by id, and frees it when no request uses it any more (RCU).
 *
 * Payload (msgpack map):
 *   "keys":    [[hash bin32, id, workspace, enabled, expires_ms, [models],
 *                [scopes], default_config|nil, rpm|nil, tpm|nil,
 *                budget_limit|nil, budget_period|nil], ...]
 *   "vkeys":   [[id, workspace, provider, {option: str}, sealed bin,
 *                [models], expires_ms, enabled], ...]
 *   "configs": [[id, workspace, version, body str (JSON)], ...]
 *   "pricing": [[provider, model, input, output, cached|nil], ...]
 * Unknown keys are ignored. expires_ms 0 means never. A virtual key's
 * secret is its credential object (JSON) sealed with AES-256-GCM under the
 * data-plane key, aad "vk:<id>". A decoded snapshot is read-only; any
 * thread.
 */
#ifndef SL_SNAPSHOT_H
#define SL_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/buf.h"
#include "common/str.h"

typedef struct {
    uint8_t hash[32];        /* SHA-256 of the secret */
    const char *id, *workspace, *default_config; /* default_config may be NULL */
    int enabled;
    int64_t expires_ms;      /* 0: never */
    const char **models;     /* allowed models; none: any */
    size_t nmodels;
    const char **scopes;     /* none: every endpoint */
    size_t nscopes;
    int64_t rpm, tpm;        /* -1: no limit */
    double budget_limit;     /* < 0: none */
    const char *budget_period;
} sl_snap_key_t;

typedef struct {
    const char *id, *workspace, *provider;
    const char **opt_names, **opt_values; /* provider settings (resource_name, aws_region...) */
    size_t nopts;
    const uint8_t *sealed;   /* credentials, sealed under the data-plane key */
    size_t sealed_len;
    const char **models;
    size_t nmodels;
    int64_t expires_ms;
    int enabled;
} sl_snap_vkey_t;

typedef struct {
    const char *id, *workspace;
    int version;
    const char *body;        /* the config's JSON text */
    size_t body_len;
} sl_snap_config_t;

typedef struct {
    const char *provider, *model;
    double input, output, cached; /* per million tokens; cached < 0: none */
} sl_snap_price_t;

typedef struct sl_snapshot_s {
    uint64_t version;
    uint8_t hash[32];        /* SHA-256 of the payload */
    sl_snap_key_t *keys;
    size_t nkeys;
    sl_snap_vkey_t *vkeys;
    size_t nvkeys;
    sl_snap_config_t *configs;
    size_t nconfigs;
    sl_snap_price_t *prices;
    size_t nprices;
    /* private */
    int _tsan_readers;       /* see dataplane/sync (ThreadSanitizer builds only) */
    uint32_t *_key_index, *_vkey_index, *_config_index; /* open addressing, slot = i + 1 */
    size_t _key_slots, _vkey_slots, _config_slots;
    sl_arena_t _arena;
} sl_snapshot_t;

/**
 * Decodes a payload into a new snapshot (freed with sl_snapshot_free).
 * Returns 0 or SL_EINVAL with *why naming the problem; nothing is kept
 * from payload.
 */
int sl_snapshot_decode(const void *payload, size_t n, uint64_t version, const uint8_t hash[32],
                       sl_snapshot_t **out, const char **why);
void sl_snapshot_free(sl_snapshot_t *s);

/** The key with this secret hash, or NULL. */
const sl_snap_key_t *sl_snapshot_key(const sl_snapshot_t *s, const uint8_t hash[32]);
const sl_snap_vkey_t *sl_snapshot_vkey(const sl_snapshot_t *s, sl_str_t id);
const sl_snap_config_t *sl_snapshot_config(const sl_snapshot_t *s, sl_str_t id);

/* ---- writing (control plane) ---------------------------------------------- */

typedef struct sl_snap_writer_s sl_snap_writer_t;

/** A writer for nkeys keys, nvkeys virtual keys... (the counts must be exact). */
sl_snap_writer_t *sl_snap_writer_new(size_t nkeys, size_t nvkeys, size_t nconfigs, size_t nprices);
void sl_snap_writer_key(sl_snap_writer_t *w, const sl_snap_key_t *k);
void sl_snap_writer_vkey(sl_snap_writer_t *w, const sl_snap_vkey_t *v);
void sl_snap_writer_config(sl_snap_writer_t *w, const sl_snap_config_t *c);
void sl_snap_writer_price(sl_snap_writer_t *w, const sl_snap_price_t *p);
/**
 * Finishes the payload: returns 0 with its bytes in *data, *n (owned by the
 * writer until sl_snap_writer_free), or SL_EINVAL when the counts given to
 * sl_snap_writer_new were not met.
 */
int sl_snap_writer_finish(sl_snap_writer_t *w, const void **data, size_t *n);
void sl_snap_writer_free(sl_snap_writer_t *w);

#endif
