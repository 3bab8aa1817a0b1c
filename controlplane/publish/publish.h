/**
 * The snapshot publisher: builds the snapshot of what gateways need from
 * Postgres after every committed change (LISTEN sluice_changes), signs it,
 * publishes it on an NNG PUB socket, announces the current version and hash
 * every second, and serves the latest one on an NNG REP socket to nodes
 * that join or detect a gap (proto/PROTOCOL.md). One thread for building
 * and publishing, one for the REP socket; both stop with cp_publisher_stop.
 */
#ifndef CP_PUBLISH_H
#define CP_PUBLISH_H

#include <stdint.h>

#include "common/crypto.h"
#include "controlplane/api/api.h"

typedef struct {
    const char *db_url;
    const char *listen;          /* tcp://host:port: REP on port, PUB on port + 1 */
    uint8_t signing_seed[32];    /* Ed25519 private key */
    uint8_t dataplane_key[SL_AEAD_KEY_LEN]; /* seals virtual keys inside snapshots */
    cp_app_t *app;               /* master key, to open stored secrets */
    int announce_ms;             /* default 1000 */
} cp_publisher_config_t;

typedef struct cp_publisher_s cp_publisher_t;

/** Binds both sockets and starts the threads. NULL on failure (logged). */
cp_publisher_t *cp_publisher_start(const cp_publisher_config_t *cfg);
void cp_publisher_stop(cp_publisher_t *p);

#endif
