#include "controlplane/publish/publish.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/snapshot.h"
#include "proto/proto.h"

struct cp_publisher_s {
    cp_publisher_config_t cfg;
    nng_socket pub, rep;
    pthread_t builder, server;
    int started_builder, started_server;
    _Atomic int stop;
    sl_proto_signer_t *signer;
    pthread_mutex_t mu;          /* guards current */
    uint8_t *current;            /* the latest SNAPSHOT message; owned */
    size_t current_len;
    uint64_t version;
    uint8_t hash[32];
    char *db_url;                /* owned */
};

static const sl_log_ctx_t log_ctx = {.action = "publishing snapshots"};

/* ---- building ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}


/* A JSON array of strings (Postgres to_json of a text[]) as an arena array. */
static const char **strs(sl_arena_t *a, const char *json, size_t *n)
{
    json_t *v = json_loads(json, 0, NULL);
    size_t cnt = json_is_array(v) ? json_array_size(v) : 0;
    const char **out = sl_arena_alloc(a, sizeof(char *) * (cnt + 1), _Alignof(char *));
    for (size_t i = 0; i < cnt; i++) {
        const char *s = json_string_value(json_array_get(v, i));
        out[i] = sl_arena_printf(a, "%s", s != NULL ? s : "");
    }
    json_decref(v);
    *n = cnt;
    return out;
}

static int64_t i64_or(const PGresult *res, int r, int c, int64_t def)
{
    return PQgetisnull(res, r, c) ? def : strtoll(PQgetvalue(res, r, c), NULL, 10);
}

static const char *str_or_null(const PGresult *res, int r, int c)
{
    return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}

#define Q_KEYS                                                                                     \
    "SELECT encode(h, 'hex'), id, workspace_id, enabled, exp_ms, to_json(allowed_models)::text,"  \
    " to_json(scopes)::text, default_config_id, rate_limit_rpm, rate_limit_tpm,"                  \
    " budget_limit::float8, budget_period FROM ("                                                 \
    " SELECT key_hash AS h, id, workspace_id, enabled,"                                           \
    "  coalesce((extract(epoch FROM expires_at) * 1000)::bigint, 0) AS exp_ms, allowed_models,"   \
    "  scopes, default_config_id, rate_limit_rpm, rate_limit_tpm, budget_limit, budget_period"    \
    " FROM api_keys WHERE revoked_at IS NULL AND enabled"                                         \
    "  AND (expires_at IS NULL OR expires_at > now())"                                            \
    " UNION ALL"                                                                                  \
    " SELECT old_key_hash, id, workspace_id, enabled,"                                            \
    "  (extract(epoch FROM least(old_key_expires_at, coalesce(expires_at, old_key_expires_at)))"  \
    "   * 1000)::bigint, allowed_models, scopes, default_config_id, rate_limit_rpm,"              \
    "  rate_limit_tpm, budget_limit, budget_period"                                               \
    " FROM api_keys WHERE revoked_at IS NULL AND enabled AND old_key_hash IS NOT NULL"            \
    "  AND old_key_expires_at > now()) k"
#define Q_VKEYS                                                                                    \
    "SELECT id, workspace_id, provider, options::text, encode(secret, 'hex'),"                    \
    " to_json(allowed_models)::text,"                                                             \
    " coalesce((extract(epoch FROM expires_at) * 1000)::bigint, 0), enabled"                      \
    " FROM virtual_keys WHERE enabled AND (expires_at IS NULL OR expires_at > now())"
#define Q_CONFIGS                                                                                  \
    "SELECT c.id, c.workspace_id, c.current_version, v.body::text FROM configs c"                 \
    " JOIN config_versions v ON v.config_id = c.id AND v.version = c.current_version"
#define Q_PRICES                                                                                   \
    "SELECT provider, model, input_per_mtok::float8, output_per_mtok::float8,"                    \
    " cached_input_per_mtok::float8 FROM model_pricing"

/* Re-seals a stored virtual-key secret (master key) under the data-plane
 * key. The plaintext lives only in this function. */
static int reseal(cp_publisher_t *p, const char *id, const char *hex, uint8_t **out, size_t *n)
{
    char aad[80];
    size_t sn = strlen(hex) / 2, plen = 0;
    uint8_t *sealed = sl_xmalloc(sn + 1), *plain = NULL;
    int ret = SL_EINVAL;
    snprintf(aad, sizeof(aad), "vk:%s", id);
    if (sl_hex_decode(hex, strlen(hex), sealed, sn) == 0 &&
        cp_open(p->cfg.app, sealed, sn, aad, &plain, &plen) == 0) {
        *out = sl_xmalloc(plen + SL_AEAD_OVERHEAD);
        ret = sl_aead_seal(p->cfg.dataplane_key, plain, plen, aad, strlen(aad), *out);
        *n = plen + SL_AEAD_OVERHEAD;
        OPENSSL_cleanse(plain, plen);
        if (ret != 0) {
            sl_free(*out);
            *out = NULL;
        }
    }
    sl_free(plain);
    sl_free(sealed);
    return ret;
}

static int build(cp_publisher_t *p, PGconn *c)
{
    PGresult *rk = NULL, *rv = NULL, *rc = NULL, *rp = NULL, *rver = NULL;
    sl_snap_writer_t *w = NULL;
    sl_arena_t a;
    sl_buf_t msg;
    int ret = SL_EDB;

    double t0 = now_s();
    sl_arena_init(&a);
    sl_buf_init(&msg, SL_PROTO_MAX_MSG);
    /* One consistent view of every table. */
    if (cp_tx(c, "BEGIN ISOLATION LEVEL REPEATABLE READ") != 0)
        goto Exit;
    if (cp_q(c, &rver, "SELECT nextval('snapshot_version')", 0, NULL) != 0 ||
        cp_q(c, &rk, Q_KEYS, 0, NULL) != 0 || cp_q(c, &rv, Q_VKEYS, 0, NULL) != 0 ||
        cp_q(c, &rc, Q_CONFIGS, 0, NULL) != 0 || cp_q(c, &rp, Q_PRICES, 0, NULL) != 0) {
        cp_tx(c, "ROLLBACK");
        goto Exit;
    }
    if (cp_tx(c, "COMMIT") != 0)
        goto Exit;
    uint64_t version = strtoull(PQgetvalue(rver, 0, 0), NULL, 10);
    w = sl_snap_writer_new((size_t)PQntuples(rk), (size_t)PQntuples(rv), (size_t)PQntuples(rc),
                           (size_t)PQntuples(rp));
    for (int i = 0; i < PQntuples(rk); i++) {
        sl_snap_key_t k = {0};
        sl_hex_decode(PQgetvalue(rk, i, 0), 64, k.hash, 32);
        k.id = PQgetvalue(rk, i, 1);
        k.workspace = PQgetvalue(rk, i, 2);
        k.enabled = PQgetvalue(rk, i, 3)[0] == 't';
        k.expires_ms = i64_or(rk, i, 4, 0);
        k.models = strs(&a, PQgetvalue(rk, i, 5), &k.nmodels);
        k.scopes = strs(&a, PQgetvalue(rk, i, 6), &k.nscopes);
        k.default_config = str_or_null(rk, i, 7);
        k.rpm = i64_or(rk, i, 8, -1);
        k.tpm = i64_or(rk, i, 9, -1);
        k.budget_limit = PQgetisnull(rk, i, 10) ? -1 : strtod(PQgetvalue(rk, i, 10), NULL);
        k.budget_period = str_or_null(rk, i, 11);
        sl_snap_writer_key(w, &k);
    }
    for (int i = 0; i < PQntuples(rv); i++) {
        sl_snap_vkey_t v = {0};
        uint8_t *sealed = NULL;
        v.id = PQgetvalue(rv, i, 0);
        v.workspace = PQgetvalue(rv, i, 1);
        v.provider = PQgetvalue(rv, i, 2);
        json_t *opts = json_loads(PQgetvalue(rv, i, 3), 0, NULL);
        size_t no = json_is_object(opts) ? json_object_size(opts) : 0, j = 0;
        v.opt_names = sl_arena_alloc(&a, sizeof(char *) * (no + 1), _Alignof(char *));
        v.opt_values = sl_arena_alloc(&a, sizeof(char *) * (no + 1), _Alignof(char *));
        const char *ok;
        json_t *ov;
        json_object_foreach(opts, ok, ov) {
            if (!json_is_string(ov))
                continue;
            v.opt_names[j] = sl_arena_printf(&a, "%s", ok);
            v.opt_values[j++] = sl_arena_printf(&a, "%s", json_string_value(ov));
        }
        v.nopts = j;
        json_decref(opts);
        if (reseal(p, v.id, PQgetvalue(rv, i, 4), &sealed, &v.sealed_len) != 0) {
            /* A secret that does not open (another master key?) leaves this
             * virtual key out rather than the whole snapshot. */
            sl_log(SL_LOG_ERROR, &log_ctx, 0,
                   "virtual key %s does not open with the master key; left out of the snapshot",
                   v.id);
            v.sealed_len = 0;
            v.enabled = 0;
        } else {
            v.enabled = PQgetvalue(rv, i, 7)[0] == 't';
        }
        v.sealed = sealed != NULL ? sealed : (const uint8_t *)"";
        v.models = strs(&a, PQgetvalue(rv, i, 5), &v.nmodels);
        v.expires_ms = i64_or(rv, i, 6, 0);
        sl_snap_writer_vkey(w, &v);
        sl_free(sealed);
    }
    for (int i = 0; i < PQntuples(rc); i++) {
        sl_snap_config_t cf = {PQgetvalue(rc, i, 0), PQgetvalue(rc, i, 1),
                               (int)strtol(PQgetvalue(rc, i, 2), NULL, 10), PQgetvalue(rc, i, 3),
                               (size_t)PQgetlength(rc, i, 3)};
        sl_snap_writer_config(w, &cf);
    }
    for (int i = 0; i < PQntuples(rp); i++) {
        sl_snap_price_t pr = {PQgetvalue(rp, i, 0), PQgetvalue(rp, i, 1),
                              strtod(PQgetvalue(rp, i, 2), NULL), strtod(PQgetvalue(rp, i, 3), NULL),
                              PQgetisnull(rp, i, 4) ? -1 : strtod(PQgetvalue(rp, i, 4), NULL)};
        sl_snap_writer_price(w, &pr);
    }
    const void *payload;
    size_t plen;
    if (sl_snap_writer_finish(w, &payload, &plen) != 0 ||
        sl_proto_encode_snapshot(&msg, SL_MSG_SNAPSHOT, version, 0, payload, plen, p->signer) != 0) {
        ret = SL_EINTERNAL;
        goto Exit;
    }
    uint8_t hash[32];
    sl_sha256(payload, plen, hash);
    /* Published before it becomes the one REP serves: a node asking in
     * between gets the previous one, then this one from PUB. */
    int rv_send = nng_send(p->pub, msg.base, msg.len, 0);
    if (rv_send != 0)
        sl_log(SL_LOG_WARN, &log_ctx, 0, "publishing snapshot %llu: %s",
               (unsigned long long)version, nng_strerror(rv_send));
    pthread_mutex_lock(&p->mu);
    sl_free(p->current);
    p->current = sl_xmalloc(msg.len);
    memcpy(p->current, msg.base, msg.len);
    p->current_len = msg.len;
    p->version = version;
    memcpy(p->hash, hash, 32);
    pthread_mutex_unlock(&p->mu);
    sl_log(SL_LOG_INFO, &log_ctx, 0,
           "snapshot %llu: %d key(s), %d virtual key(s), %d config(s), %d price(s), %zu bytes, "
           "built in %.1f ms",
           (unsigned long long)version, PQntuples(rk), PQntuples(rv), PQntuples(rc),
           PQntuples(rp), msg.len, (now_s() - t0) * 1000.0);
    ret = 0;
Exit:
    PQclear(rver);
    PQclear(rk);
    PQclear(rv);
    PQclear(rc);
    PQclear(rp);
    sl_snap_writer_free(w);
    sl_buf_dispose(&msg);
    sl_arena_clear(&a);
    return ret;
}

static void announce(cp_publisher_t *p)
{
    sl_buf_t msg;
    sl_buf_init(&msg, 4096);
    pthread_mutex_lock(&p->mu);
    uint64_t v = p->version;
    uint8_t h[32];
    memcpy(h, p->hash, 32);
    pthread_mutex_unlock(&p->mu);
    if (v != 0 && sl_proto_encode_announce(&msg, v, h) == 0)
        nng_send(p->pub, msg.base, msg.len, 0);
    sl_buf_dispose(&msg);
}

/* Waits for change notifications and rebuilds; announces meanwhile. A
 * lost database connection is re-opened, and everything rebuilt once it
 * is back (changes made meanwhile were not notified to us). */
static void *builder_main(void *arg)
{
    cp_publisher_t *p = arg;
    PGconn *c = NULL;
    int dirty = 1;
    double next_announce = 0;

    while (!p->stop) {
        if (c == NULL || PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = PQconnectdb(p->db_url);
            PGresult *res = NULL;
            if (PQstatus(c) != CONNECTION_OK || cp_q(c, &res, "LISTEN sluice_changes", 0, NULL) != 0) {
                PQclear(res);
                PQfinish(c);
                c = NULL;
                struct timespec ts = {0, 500 * 1000 * 1000};
                nanosleep(&ts, NULL);
                announce(p);
                continue;
            }
            PQclear(res);
            dirty = 1;
        }
        if (dirty) {
            if (build(p, c) == 0)
                dirty = 0;
        }
        double now = now_s();
        if (now >= next_announce) {
            announce(p);
            next_announce = now + p->cfg.announce_ms / 1000.0;
        }
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        int wait_ms = (int)((next_announce - now_s()) * 1000);
        if (dirty)
            wait_ms = 200; /* a failed build: try again soon */
        if (poll(&pfd, 1, wait_ms < 1 ? 1 : wait_ms > 200 ? 200 : wait_ms) > 0) {
            if (PQconsumeInput(c) != 1)
                continue;
            for (PGnotify *n = PQnotifies(c); n != NULL; n = PQnotifies(c)) {
                dirty = 1; /* several changes in a burst make one snapshot */
                PQfreemem(n);
            }
        }
    }
    PQfinish(c);
    return NULL;
}

/* ---- serving ---------------------------------------------------------------- */

static void hello(cp_publisher_t *p, PGconn **c, const sl_msg_t *m)
{
    char snap[24];
    PGresult *res = NULL;
    snprintf(snap, sizeof(snap), "%llu", (unsigned long long)m->version);
    if (*c == NULL || PQstatus(*c) != CONNECTION_OK) {
        PQfinish(*c);
        *c = PQconnectdb(p->db_url);
    }
    const char *vals[] = {m->node, m->addr, m->software, snap};
    cp_q(*c, &res,
         "INSERT INTO nodes (id, address, software_version, snapshot_version) VALUES ($1, $2, $3,"
         " $4::bigint) ON CONFLICT (id) DO UPDATE SET address = EXCLUDED.address,"
         " software_version = EXCLUDED.software_version, snapshot_version ="
         " EXCLUDED.snapshot_version, last_seen_at = now()",
         4, vals);
    PQclear(res);
}

static void *server_main(void *arg)
{
    cp_publisher_t *p = arg;
    PGconn *c = NULL;
    const char *node_token = getenv("SLUICE_NODE_TOKEN");

    while (!p->stop) {
        void *buf = NULL;
        size_t n = 0;
        int rv = nng_recv(p->rep, &buf, &n, NNG_FLAG_ALLOC);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break;
        sl_msg_t m;
        const char *why = NULL;
        sl_buf_t out;
        sl_buf_init(&out, 4096);
        if (sl_proto_decode(buf, n, NULL, &m, &why) != 0) {
            sl_log(SL_LOG_WARN, &log_ctx, 0, "refused a message from a node: %s", why);
            (void)sl_proto_encode_hello_ack(&out, 0, why);
            nng_send(p->rep, out.base, out.len, 0);
        } else if (m.type == SL_MSG_SNAPSHOT_REQUEST) {
            pthread_mutex_lock(&p->mu);
            if (p->current != NULL)
                nng_send(p->rep, p->current, p->current_len, 0);
            else if (sl_proto_encode_hello_ack(&out, 0, "no snapshot built yet") == 0)
                nng_send(p->rep, out.base, out.len, 0);
            pthread_mutex_unlock(&p->mu);
        } else if (m.type == SL_MSG_HELLO) {
            int ok = node_token == NULL || node_token[0] == '\0' ||
                     (strlen(m.token) == strlen(node_token) &&
                      sl_ct_eq(m.token, node_token, strlen(node_token)));
            if (ok)
                hello(p, &c, &m);
            else
                sl_log(SL_LOG_WARN, &log_ctx, 0, "node %s: wrong node token", m.node);
            if (sl_proto_encode_hello_ack(&out, ok, ok ? "" : "wrong node token") == 0)
                nng_send(p->rep, out.base, out.len, 0);
        } else if (sl_proto_encode_hello_ack(&out, 0, "unexpected message type") == 0) {
            nng_send(p->rep, out.base, out.len, 0);
        }
        sl_buf_dispose(&out);
        nng_free(buf, n);
    }
    PQfinish(c);
    return NULL;
}

/* tcp://host:port -> tcp://host:(port+1) */
static int pub_url(const char *rep, char *out, size_t outsz)
{
    const char *colon = strrchr(rep, ':');
    long port = colon != NULL ? strtol(colon + 1, NULL, 10) : 0;
    if (colon == NULL || port <= 0 || port >= 65535)
        return -1;
    snprintf(out, outsz, "%.*s:%ld", (int)(colon - rep), rep, port + 1);
    return 0;
}

cp_publisher_t *cp_publisher_start(const cp_publisher_config_t *cfg)
{
    char pub[300];
    int rv;
    cp_publisher_t *p = sl_xcalloc(1, sizeof(*p));
    p->cfg = *cfg;
    if (p->cfg.announce_ms <= 0)
        p->cfg.announce_ms = 1000;
    p->db_url = sl_xstrdup(cfg->db_url);
    pthread_mutex_init(&p->mu, NULL);
    p->signer = sl_proto_signer_new(cfg->signing_seed);
    if (p->signer == NULL || pub_url(cfg->listen, pub, sizeof(pub)) != 0) {
        sl_log(SL_LOG_ERROR, &log_ctx, 0, "bad snapshot listen address %s (want tcp://host:port)",
               cfg->listen);
        goto Fail;
    }
    if ((rv = nng_pub0_open(&p->pub)) != 0 || (rv = nng_listen(p->pub, pub, NULL, 0)) != 0 ||
        (rv = nng_rep0_open(&p->rep)) != 0 || (rv = nng_listen(p->rep, cfg->listen, NULL, 0)) != 0 ||
        (rv = nng_socket_set_ms(p->rep, NNG_OPT_RECVTIMEO, 200)) != 0 ||
        (rv = nng_socket_set_size(p->rep, NNG_OPT_RECVMAXSZ, 1 << 20)) != 0) {
        sl_log(SL_LOG_ERROR, &log_ctx, 0, "cannot listen for gateways on %s and %s: %s",
               cfg->listen, pub, nng_strerror(rv));
        goto Fail;
    }
    if (pthread_create(&p->builder, NULL, builder_main, p) != 0)
        goto Fail;
    p->started_builder = 1;
    if (pthread_create(&p->server, NULL, server_main, p) != 0)
        goto Fail;
    p->started_server = 1;
    sl_log(SL_LOG_INFO, &log_ctx, 0, "snapshots for gateways: requests on %s, published on %s",
           cfg->listen, pub);
    return p;
Fail:
    cp_publisher_stop(p);
    return NULL;
}

void cp_publisher_stop(cp_publisher_t *p)
{
    if (p == NULL)
        return;
    p->stop = 1;
    if (p->started_builder)
        pthread_join(p->builder, NULL);
    if (p->started_server)
        pthread_join(p->server, NULL);
    nng_close(p->pub);
    nng_close(p->rep);
    sl_proto_signer_free(p->signer);
    pthread_mutex_destroy(&p->mu);
    sl_free(p->current);
    sl_free(p->db_url);
    OPENSSL_cleanse(p->cfg.dataplane_key, sizeof(p->cfg.dataplane_key));
    OPENSSL_cleanse(p->cfg.signing_seed, sizeof(p->cfg.signing_seed));
    sl_free(p);
}
