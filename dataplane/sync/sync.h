/**
 * Snapshots from the control plane (proto/PROTOCOL.md). One thread holds an
 * NNG REQ socket (snapshot requests, hello) and a SUB socket (published
 * snapshots and announcements), verifies every snapshot's Ed25519
 * signature and hash, refuses older versions, persists the last verified
 * one to disk (write, fsync, rename) and swaps it in with RCU (liburcu):
 * workers read the current snapshot without a lock; the old one is freed
 * once no reader holds it. At start the persisted snapshot is loaded, so a
 * node restarted while the control plane is down serves what it had.
 */
#ifndef GW_SYNC_H
#define GW_SYNC_H

#include <jansson.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/crypto.h"
#include "common/snapshot.h"

typedef struct {
    const char *control_url;      /* tcp://host:port of the control plane's REP; PUB is port + 1 */
    uint8_t public_key[32];       /* verifies snapshots */
    uint8_t dataplane_key[SL_AEAD_KEY_LEN]; /* opens virtual keys' credentials */
    const char *snapshot_file;    /* persisted last snapshot; NULL: none */
    const char *node_id;
    const char *node_token;       /* may be NULL */
    const char *address;          /* this node's listen address, for the node list */
} gw_sync_config_t;

/** Loads the persisted snapshot and starts the thread. Returns 0 or SL_E*. */
int gw_sync_start(const gw_sync_config_t *cfg);
void gw_sync_stop(void);
/** 1 when the gateway runs with a control plane (requests need a Sluice key). */
int gw_sync_enabled(void);
/** Version of the snapshot in use (0: none yet). */
uint64_t gw_sync_version(void);

/* Worker threads register once; each read section is short (the auth stage). */
void gw_sync_register_thread(void);
void gw_sync_unregister_thread(void);
/** Enters a read section; returns the current snapshot (may be NULL). */
const sl_snapshot_t *gw_snap_read_begin(void);
void gw_snap_read_end(const sl_snapshot_t *s);

/**
 * Opens a virtual key's credentials (a JSON object: api_key, aws_...) into
 * a jansson value tied to the arena. NULL when they do not open.
 */
json_t *gw_sync_open_credentials(const sl_snap_vkey_t *v, sl_arena_t *a);

#endif
