#include "dataplane/sync/sync.h"

#include <errno.h>
#include <fcntl.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <urcu/urcu-memb.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "proto/proto.h"

#define GW_SYNC_REQ_TIMEOUT_MS 3000
#define GW_SYNC_SUB_TIMEOUT_MS 250

static struct {
    gw_sync_config_t cfg;
    int enabled;
    sl_proto_verifier_t *verifier;
    nng_socket req, sub;
    pthread_t thread;
    _Atomic int stop;
    int running;
    sl_snapshot_t *current;      /* RCU-protected; read with __atomic loads */
    _Atomic uint64_t version;
    uint8_t hash[32];            /* of the current payload (sync thread only) */
    uint64_t announced;          /* latest announced version (sync thread only) */
} g;

static const sl_log_ctx_t log_ctx = {.action = "syncing snapshots"};

int gw_sync_enabled(void)
{
    return g.enabled;
}

uint64_t gw_sync_version(void)
{
    return g.version;
}

void gw_sync_register_thread(void)
{
    urcu_memb_register_thread();
}

void gw_sync_unregister_thread(void)
{
    urcu_memb_unregister_thread();
}

const sl_snapshot_t *gw_snap_read_begin(void)
{
    urcu_memb_read_lock();
    return __atomic_load_n(&g.current, __ATOMIC_ACQUIRE);
}

void gw_snap_read_end(const sl_snapshot_t *s)
{
#if defined(__SANITIZE_THREAD__)
    /* liburcu's grace periods are invisible to ThreadSanitizer; this
     * release pairs with the acquire before the free, so that it sees the
     * order RCU guarantees. */
    if (s != NULL)
        __atomic_fetch_add((int *)&s->_tsan_readers, 1, __ATOMIC_RELEASE);
#else
    (void)s;
#endif
    urcu_memb_read_unlock();
}

json_t *gw_sync_open_credentials(const sl_snap_vkey_t *v, sl_arena_t *a)
{
    char aad[96];
    if (v->sealed_len < SL_AEAD_OVERHEAD)
        return NULL;
    size_t n = v->sealed_len - SL_AEAD_OVERHEAD;
    uint8_t *plain = sl_xmalloc(n + 1);
    snprintf(aad, sizeof(aad), "vk:%s", v->id);
    json_t *out = NULL;
    if (sl_aead_open(g.cfg.dataplane_key, v->sealed, v->sealed_len, aad, strlen(aad), plain) == 0)
        out = json_loadb((const char *)plain, n, 0, NULL);
    OPENSSL_cleanse(plain, n);
    sl_free(plain);
    if (out != NULL)
        sl_arena_defer(a, sl_json_decref_cb, out);
    return out;
}

/* ---- applying ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}


static void persist(const void *msg, size_t n)
{
    char tmp[1100];
    if (g.cfg.snapshot_file == NULL)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", g.cfg.snapshot_file);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        sl_log(SL_LOG_WARN, &log_ctx, errno, "cannot write %s", tmp);
        return;
    }
    const char *p = msg;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        p += w;
        left -= (size_t)w;
    }
    int ok = left == 0 && fsync(fd) == 0;
    close(fd);
    if (!ok || rename(tmp, g.cfg.snapshot_file) != 0) {
        sl_log(SL_LOG_WARN, &log_ctx, errno, "cannot persist the snapshot to %s",
               g.cfg.snapshot_file);
        unlink(tmp);
    }
}

/* Verifies and swaps in a SNAPSHOT message. Returns 0 when applied, 1 when
 * it is not newer (ignored), SL_EINVAL when refused (logged). */
static int apply(const void *data, size_t n, int save, const char *from)
{
    sl_msg_t m;
    const char *why = NULL;
    sl_snapshot_t *s = NULL;
    double t0 = now_s();
    if (sl_proto_decode(data, n, g.verifier, &m, &why) != 0 || m.type != SL_MSG_SNAPSHOT) {
        sl_log(SL_LOG_WARN, &log_ctx, 0, "refused a snapshot from %s: %s", from,
               why != NULL ? why : "not a full snapshot");
        return SL_EINVAL;
    }
    if (m.version <= g.version) {
        if (m.version < g.version)
            sl_log(SL_LOG_WARN, &log_ctx, 0, "refused snapshot %llu from %s: older than %llu",
                   (unsigned long long)m.version, from, (unsigned long long)g.version);
        return 1;
    }
    if (sl_snapshot_decode(m.payload, m.payload_len, m.version, m.hash, &s, &why) != 0) {
        sl_log(SL_LOG_WARN, &log_ctx, 0, "refused snapshot %llu from %s: %s",
               (unsigned long long)m.version, from, why);
        return SL_EINVAL;
    }
    sl_snapshot_t *old = __atomic_exchange_n(&g.current, s, __ATOMIC_ACQ_REL);
    g.version = m.version;
    memcpy(g.hash, m.hash, 32);
    sl_log(SL_LOG_INFO, &log_ctx, 0,
           "snapshot %llu in use (%zu key(s), %zu virtual key(s), from %s; verified and applied in "
           "%.1f ms)",
           (unsigned long long)m.version, s->nkeys, s->nvkeys, from, (now_s() - t0) * 1000.0);
    if (save)
        persist(data, n);
    if (old != NULL) {
        urcu_memb_synchronize_rcu();
#if defined(__SANITIZE_THREAD__)
        (void)__atomic_load_n(&old->_tsan_readers, __ATOMIC_ACQUIRE);
#endif
        sl_snapshot_free(old);
    }
    return 0;
}

static void load_file(void)
{
    if (g.cfg.snapshot_file == NULL)
        return;
    FILE *f = fopen(g.cfg.snapshot_file, "rb");
    if (f == NULL)
        return;
    sl_buf_t b;
    sl_buf_init(&b, SL_PROTO_MAX_MSG);
    char chunk[65536];
    size_t r;
    int ok = 1;
    while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (sl_buf_append(&b, chunk, r) != 0) {
            ok = 0;
            break;
        }
    fclose(f);
    if (ok && apply(b.base, b.len, 0, g.cfg.snapshot_file) == 0)
        sl_log(SL_LOG_INFO, &log_ctx, 0, "serving the persisted snapshot %llu until the control "
                                         "plane answers", (unsigned long long)g.version);
    sl_buf_dispose(&b);
}

/* ---- talking to the control plane --------------------------------------------- */

static int request(const sl_buf_t *msg, void **reply, size_t *n)
{
    int rv = nng_send(g.req, msg->base, msg->len, 0);
    if (rv == 0)
        rv = nng_recv(g.req, reply, n, NNG_FLAG_ALLOC);
    return rv;
}

static void fetch_full(void)
{
    sl_buf_t msg;
    void *reply = NULL;
    size_t n = 0;
    sl_buf_init(&msg, 4096);
    if (sl_proto_encode_request(&msg, g.cfg.node_id, g.version) == 0 && request(&msg, &reply, &n) == 0) {
        apply(reply, n, 1, "the control plane");
        nng_free(reply, n);
    }
    sl_buf_dispose(&msg);
}

static void say_hello(void)
{
    sl_buf_t msg;
    void *reply = NULL;
    size_t n = 0;
    sl_buf_init(&msg, 4096);
    if (sl_proto_encode_hello(&msg, g.cfg.node_id, "sluice-gateway", g.cfg.address, g.version,
                              g.cfg.node_token != NULL ? g.cfg.node_token : "") == 0 &&
        request(&msg, &reply, &n) == 0) {
        sl_msg_t m;
        const char *why;
        if (sl_proto_decode(reply, n, NULL, &m, &why) == 0 && m.type == SL_MSG_HELLO_ACK && !m.ok)
            sl_log(SL_LOG_WARN, &log_ctx, 0, "the control plane refused this node: %s", m.reason);
        nng_free(reply, n);
    }
    sl_buf_dispose(&msg);
}

static void *sync_main(void *arg)
{
    double next_hello = 0, next_fetch = 0;
    (void)arg;
    while (!g.stop) {
        double now = now_s();
        if (g.version == 0 && now >= next_fetch) {
            fetch_full(); /* joining: ask instead of waiting for a publication */
            next_fetch = now + 1.0;
        }
        if (now >= next_hello) {
            say_hello();
            next_hello = now + 5.0;
        }
        void *buf = NULL;
        size_t n = 0;
        int rv = nng_recv(g.sub, &buf, &n, NNG_FLAG_ALLOC);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break;
        sl_msg_t m;
        const char *why = NULL;
        if (sl_proto_decode(buf, n, g.verifier, &m, &why) != 0) {
            sl_log(SL_LOG_WARN, &log_ctx, 0, "refused a publication: %s", why);
        } else if (m.type == SL_MSG_SNAPSHOT) {
            apply(buf, n, 1, "a publication");
        } else if (m.type == SL_MSG_ANNOUNCE) {
            /* A version we do not have: a publication was missed (or the
             * node was away). Ask for the whole snapshot. */
            if (m.version > g.version)
                fetch_full();
        }
        nng_free(buf, n);
    }
    return NULL;
}

static int sub_url(const char *rep, char *out, size_t outsz)
{
    const char *colon = strrchr(rep, ':');
    long port = colon != NULL ? strtol(colon + 1, NULL, 10) : 0;
    if (colon == NULL || port <= 0 || port >= 65535)
        return -1;
    snprintf(out, outsz, "%.*s:%ld", (int)(colon - rep), rep, port + 1);
    return 0;
}

int gw_sync_start(const gw_sync_config_t *cfg)
{
    char sub[300];
    int rv;
    g.cfg = *cfg;
    g.verifier = sl_proto_verifier_new(cfg->public_key);
    if (g.verifier == NULL || sub_url(cfg->control_url, sub, sizeof(sub)) != 0) {
        sl_log(SL_LOG_ERROR, &log_ctx, 0, "bad control plane address %s (want tcp://host:port)",
               cfg->control_url);
        return SL_EINVAL;
    }
    g.enabled = 1;
    load_file();
    /* Dials are asynchronous: a control plane that is down is retried by
     * NNG in the background while the node serves its last snapshot. */
    if ((rv = nng_req0_open(&g.req)) != 0 ||
        (rv = nng_socket_set_ms(g.req, NNG_OPT_RECVTIMEO, GW_SYNC_REQ_TIMEOUT_MS)) != 0 ||
        (rv = nng_socket_set_ms(g.req, NNG_OPT_SENDTIMEO, GW_SYNC_REQ_TIMEOUT_MS)) != 0 ||
        (rv = nng_dial(g.req, cfg->control_url, NULL, NNG_FLAG_NONBLOCK)) != 0 ||
        (rv = nng_sub0_open(&g.sub)) != 0 ||
        (rv = nng_socket_set(g.sub, NNG_OPT_SUB_SUBSCRIBE, "", 0)) != 0 ||
        (rv = nng_socket_set_ms(g.sub, NNG_OPT_RECVTIMEO, GW_SYNC_SUB_TIMEOUT_MS)) != 0 ||
        (rv = nng_socket_set_size(g.sub, NNG_OPT_RECVMAXSZ, SL_PROTO_MAX_MSG)) != 0 ||
        (rv = nng_dial(g.sub, sub, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        sl_log(SL_LOG_ERROR, &log_ctx, 0, "cannot set up the control plane connection to %s: %s",
               cfg->control_url, nng_strerror(rv));
        return SL_EINVAL;
    }
    if (pthread_create(&g.thread, NULL, sync_main, NULL) != 0)
        return SL_EINTERNAL;
    g.running = 1;
    sl_log(SL_LOG_INFO, &log_ctx, 0, "snapshots from %s (published on %s)", cfg->control_url, sub);
    return 0;
}

void gw_sync_stop(void)
{
    if (!g.enabled)
        return;
    g.stop = 1;
    if (g.running)
        pthread_join(g.thread, NULL);
    nng_close(g.req);
    nng_close(g.sub);
    sl_snapshot_free(__atomic_exchange_n(&g.current, NULL, __ATOMIC_ACQ_REL));
    sl_proto_verifier_free(g.verifier);
    OPENSSL_cleanse(g.cfg.dataplane_key, sizeof(g.cfg.dataplane_key));
    g.enabled = 0;
}
