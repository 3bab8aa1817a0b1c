/*
 * sluice-control: the control plane. Parses settings (flags, or the
 * matching environment variables), applies the migrations, installs the
 * bootstrap token and serves the admin REST API until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/alloc.h"
#include "common/crypto.h"
#include "common/err.h"
#include "common/log.h"
#include "controlplane/api/api.h"
#include "controlplane/publish/publish.h"
#include "proto/proto.h"
#include "controlplane/store/store.h"

#define VERSION "0.2.0"

typedef struct {
    const char *listen;
    const char *db_url;
    const char *master_key;      /* text (env or flag) */
    const char *master_key_file;
    const char *new_master_key;
    const char *new_master_key_file;
    const char *bootstrap;
    const char *snapshot_listen;
    const char *signing_key, *signing_key_file;
    const char *dataplane_key, *dataplane_key_file;
    int threads;
    long max_body;
    int migrate;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sluice-control [serve|migrate|rotate-master-key|routes] [options]\n"
            "\n"
            "commands:\n"
            "  serve                  serve the admin API (default); applies migrations first\n"
            "  migrate                apply the migrations and exit\n"
            "  rotate-master-key      re-encrypt every stored secret under a new master key\n"
            "                         (--new-master-key-file or SLUICE_NEW_MASTER_KEY), then exit\n"
            "  routes                 print every route (METHOD PATH) and exit\n"
            "  public-key             print the snapshot signing key's public half (hex), which\n"
            "                         gateways verify snapshots with, and exit\n"
            "\n"
            "options (each also read from the environment variable shown):\n"
            "  --listen HOST:PORT         SLUICE_CONTROL_LISTEN   admin API address (127.0.0.1:8790)\n"
            "  --database-url URL         SLUICE_DATABASE_URL     libpq URL of the database (required)\n"
            "  --master-key-file FILE     SLUICE_MASTER_KEY_FILE  file holding the master key\n"
            "                             SLUICE_MASTER_KEY       the master key itself: 32 bytes as\n"
            "                                                     64 hex characters or base64\n"
            "  --new-master-key-file FILE SLUICE_NEW_MASTER_KEY_FILE, SLUICE_NEW_MASTER_KEY\n"
            "                                                     (rotate-master-key only)\n"
            "                             SLUICE_BOOTSTRAP_TOKEN  owner token installed on first start,\n"
            "                                                     when no admin token exists yet\n"
            "  --threads N                SLUICE_CONTROL_THREADS  HTTP worker threads (default 8)\n"
            "  --snapshot-listen URL      SLUICE_SNAPSHOT_LISTEN  gateways' snapshot requests (REP) on\n"
            "                                                     URL, publications (PUB) on its port + 1\n"
            "                                                     (tcp://127.0.0.1:8791)\n"
            "  --signing-key-file FILE    SLUICE_SNAPSHOT_SIGNING_KEY_FILE, SLUICE_SNAPSHOT_SIGNING_KEY\n"
            "                                                     Ed25519 key signing snapshots (32 bytes)\n"
            "  --dataplane-key-file FILE  SLUICE_DATAPLANE_KEY_FILE, SLUICE_DATAPLANE_KEY\n"
            "                                                     seals provider credentials inside\n"
            "                                                     snapshots (32 bytes; gateways hold it)\n"
            "                             SLUICE_NODE_TOKEN       token gateways must present (optional)\n"
            "                             Without both keys no snapshots are published.\n"
            "  --max-body-bytes N         SLUICE_CONTROL_MAX_BODY request body limit (1048576)\n"
            "  --log-level LEVEL          SLUICE_LOG_LEVEL        error|warn|info|debug|trace (info)\n"
            "                             SLUICE_LOG_FORMAT       text (default) or json: one JSON\n"
            "                                                     object per line\n"
            "  --no-migrate                                       do not apply migrations at start\n"
            "  --help, --version\n"
            "\n"
            "Secrets are read from the environment or files, never from flags, so that they do\n"
            "not show in the process list.\n");
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : def;
}

/* Reads a key from a file (first line) or the text itself into key. */
static int load_key(const char *text, const char *file, uint8_t key[SL_AEAD_KEY_LEN],
                    const char *what, const char *how)
{
    char buf[256];
    if (file != NULL) {
        FILE *f = fopen(file, "r");
        if (f == NULL) {
            sl_log(SL_LOG_ERROR, NULL, errno, "cannot read the %s file %s", what, file);
            return -1;
        }
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        text = buf;
    }
    if (text == NULL) {
        sl_log(SL_LOG_ERROR, NULL, 0,
               "no %s: set %s (32 bytes, 64 hex characters or base64; e.g. `openssl rand -hex "
               "32`)",
               what, how);
        return -1;
    }
    int ret = sl_key_parse(text, key);
    OPENSSL_cleanse(buf, sizeof(buf));
    if (ret != 0) {
        sl_log(SL_LOG_ERROR, NULL, 0, "the %s is not 32 bytes as 64 hex characters or base64",
               what);
        return -1;
    }
    return 0;
}

static int parse(int argc, char **argv, opts_t *o, const char **cmd)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"database-url", required_argument, NULL, 'd'},
        {"master-key-file", required_argument, NULL, 'k'},
        {"new-master-key-file", required_argument, NULL, 'n'},
        {"threads", required_argument, NULL, 't'},
        {"snapshot-listen", required_argument, NULL, 's'},
        {"signing-key-file", required_argument, NULL, 'S'},
        {"dataplane-key-file", required_argument, NULL, 'D'},
        {"max-body-bytes", required_argument, NULL, 'b'},
        {"log-level", required_argument, NULL, 'v'},
        {"no-migrate", no_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *lvl = env_or("SLUICE_LOG_LEVEL", NULL);
    if (sl_log_format_from_env() != 0) {
        fprintf(stderr, "sluice-control: SLUICE_LOG_FORMAT must be text or json\n");
        return -1;
    }
    o->listen = env_or("SLUICE_CONTROL_LISTEN", "127.0.0.1:8790");
    o->db_url = env_or("SLUICE_DATABASE_URL", NULL);
    o->master_key = env_or("SLUICE_MASTER_KEY", NULL);
    o->master_key_file = env_or("SLUICE_MASTER_KEY_FILE", NULL);
    o->new_master_key = env_or("SLUICE_NEW_MASTER_KEY", NULL);
    o->new_master_key_file = env_or("SLUICE_NEW_MASTER_KEY_FILE", NULL);
    o->bootstrap = env_or("SLUICE_BOOTSTRAP_TOKEN", NULL);
    o->snapshot_listen = env_or("SLUICE_SNAPSHOT_LISTEN", "tcp://127.0.0.1:8791");
    o->signing_key = env_or("SLUICE_SNAPSHOT_SIGNING_KEY", NULL);
    o->signing_key_file = env_or("SLUICE_SNAPSHOT_SIGNING_KEY_FILE", NULL);
    o->dataplane_key = env_or("SLUICE_DATAPLANE_KEY", NULL);
    o->dataplane_key_file = env_or("SLUICE_DATAPLANE_KEY_FILE", NULL);
    o->threads = (int)strtol(env_or("SLUICE_CONTROL_THREADS", "8"), NULL, 10);
    o->max_body = strtol(env_or("SLUICE_CONTROL_MAX_BODY", "1048576"), NULL, 10);
    o->migrate = 1;
    *cmd = "serve";
    if (argc > 1 && argv[1][0] != '-') {
        *cmd = argv[1];
        argv++;
        argc--;
    }
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'l': o->listen = optarg; break;
        case 'd': o->db_url = optarg; break;
        case 'k': o->master_key_file = optarg; break;
        case 'n': o->new_master_key_file = optarg; break;
        case 't': o->threads = (int)strtol(optarg, NULL, 10); break;
        case 's': o->snapshot_listen = optarg; break;
        case 'S': o->signing_key_file = optarg; break;
        case 'D': o->dataplane_key_file = optarg; break;
        case 'b': o->max_body = strtol(optarg, NULL, 10); break;
        case 'v': lvl = optarg; break;
        case 'M': o->migrate = 0; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("sluice-control " VERSION "\n"); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sluice-control: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    if (lvl != NULL) {
        int l = sl_log_level_parse(lvl);
        if (l < 0) {
            fprintf(stderr, "sluice-control: unknown log level %s\n", lvl);
            return -1;
        }
        sl_log_level = l;
    }
    if (o->threads < 1 || o->threads > 256) {
        fprintf(stderr, "sluice-control: --threads must be 1..256\n");
        return -1;
    }
    if (o->max_body < 1024 || o->max_body > (64L << 20)) {
        fprintf(stderr, "sluice-control: --max-body-bytes must be 1024..67108864\n");
        return -1;
    }
    return 0;
}

/* Installs the bootstrap owner token when no admin token exists yet.
 * Replicas racing here insert the same hash: one wins, the other's insert
 * does nothing. */
static int bootstrap(const char *url, const char *token)
{
    char hash[65], hashp[70], hint[48];
    PGresult *res = NULL;
    if (strlen(token) < 16) {
        sl_log(SL_LOG_ERROR, NULL, 0, "SLUICE_BOOTSTRAP_TOKEN must have at least 16 characters");
        return -1;
    }
    cp_hash_secret(token, hash);
    cp_secret_hint(token, hint, sizeof(hint));
    snprintf(hashp, sizeof(hashp), "\\x%s", hash);
    PGconn *c = PQconnectdb(url);
    int ret = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        const char *vals[] = {hashp, hint};
        ret = cp_q(c, &res,
                   "INSERT INTO admin_tokens (id, workspace_id, name, role, token_hash, token_hint,"
                   " created_by) SELECT 'tok_bootstrap', NULL, 'bootstrap', 'owner', $1::bytea, $2,"
                   " 'bootstrap' WHERE NOT EXISTS (SELECT 1 FROM admin_tokens)"
                   " ON CONFLICT DO NOTHING",
                   2, vals);
        if (ret == 0 && strcmp(PQcmdTuples(res), "1") == 0)
            sl_log(SL_LOG_INFO, NULL, 0, "installed the bootstrap owner token (%s)", hint);
        else if (ret == 0)
            sl_log(SL_LOG_INFO, NULL, 0,
                   "admin tokens exist already; SLUICE_BOOTSTRAP_TOKEN is not installed again");
        PQclear(res);
    }
    PQfinish(c);
    return ret == 0 ? 0 : -1;
}

/* Idempotency records are kept 24 hours; replicas may all do this. */
static void janitor(const char *url)
{
    PGresult *res = NULL;
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) == CONNECTION_OK &&
        cp_q(c, &res, "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'",
             0, NULL) == 0 && strcmp(PQcmdTuples(res), "0") != 0)
        sl_log(SL_LOG_DEBUG, NULL, 0, "removed %s expired idempotency record(s)", PQcmdTuples(res));
    PQclear(res);
    PQfinish(c);
}

static int wait_signal(sigset_t *set, int seconds)
{
    struct timespec ts = {seconds, 0};
    int sig = sigtimedwait(set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

static int serve(opts_t *o, cp_app_t *app, cp_publisher_config_t *pubcfg)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* Blocked before MHD starts its threads, so that they inherit the mask
     * and only sigwait here sees the signals. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    cp_server_t *srv = cp_server_start(app, o->listen);
    if (srv == NULL)
        return 1;
    char shown[96];
    snprintf(shown, sizeof(shown), "%.*s:%u", (int)(strrchr(o->listen, ':') - o->listen), o->listen,
             cp_server_port(srv));
    sl_log(SL_LOG_INFO, NULL, 0, "sluice-control %s: admin API on http://%s/v1/admin (%d threads)",
           VERSION, shown, app->threads);

    /* Postgres may not be up yet (compose, a restart): keep trying, while
     * /health answers and /ready says why it is not ready. */
    int delay = 1, sig = 0;
    while (o->migrate) {
        int applied;
        int ret = cp_migrate(o->db_url, &applied);
        if (ret == 0) {
            sl_log(SL_LOG_INFO, NULL, 0, "database schema up to date (%d migration(s) applied)",
                   applied);
            break;
        }
        if (ret != SL_EDBDOWN) {
            cp_server_stop(srv);
            return 1;
        }
        sl_log(SL_LOG_WARN, NULL, 0, "database unreachable; retrying in %d s", delay);
        sig = wait_signal(&set, delay);
        if (sig != 0)
            break;
        delay = delay < 8 ? delay * 2 : 8;
    }
    while (sig == 0 && o->bootstrap != NULL && bootstrap(o->db_url, o->bootstrap) != 0) {
        if (strlen(o->bootstrap) < 16) {
            cp_server_stop(srv);
            return 1;
        }
        sig = wait_signal(&set, 1);
    }
    cp_publisher_t *pub = NULL;
    if (sig == 0 && pubcfg != NULL) {
        pubcfg->app = app;
        pubcfg->db_url = o->db_url;
        pub = cp_publisher_start(pubcfg);
        if (pub == NULL) {
            cp_server_stop(srv);
            return 1;
        }
    }
    if (sig == 0)
        app->started = 1;
    while (sig == 0) {
        sig = wait_signal(&set, 600);
        if (sig == 0)
            janitor(o->db_url);
    }
    sl_log(SL_LOG_INFO, NULL, 0, "signal %d: stopping (finishing requests in flight)", sig);
    cp_publisher_stop(pub);
    cp_server_stop(srv);
    return 0;
}

/* Re-seals every stored secret under the new key in one transaction. */
static int rotate_master_key(opts_t *o, cp_app_t *old)
{
    cp_app_t neu = {0};
    PGresult *res = NULL, *ures = NULL;
    int ret = 1, count = 0;

    if (load_key(o->new_master_key, o->new_master_key_file, neu.master_key, "new master key",
                 "SLUICE_NEW_MASTER_KEY or --new-master-key-file") != 0)
        return 1;
    sl_key_id(neu.master_key, neu.master_key_id);
    if (strcmp(neu.master_key_id, old->master_key_id) == 0) {
        sl_log(SL_LOG_ERROR, NULL, 0, "the new master key is the current one");
        return 1;
    }
    PGconn *c = PQconnectdb(o->db_url);
    if (PQstatus(c) != CONNECTION_OK || cp_tx(c, "BEGIN") != 0) {
        sl_log(SL_LOG_ERROR, NULL, 0, "cannot reach the database");
        goto Exit;
    }
    static const char *const sel[] = {
        "SELECT 'vk:' || id, encode(secret, 'hex'), id, NULL FROM virtual_keys FOR UPDATE",
        "SELECT 'idem:' || actor_id || ':' || idem_key, encode(response, 'hex'), actor_id,"
        " idem_key FROM idempotency_keys WHERE response IS NOT NULL FOR UPDATE",
    };
    static const char *const upd[] = {
        "UPDATE virtual_keys SET secret = $1::bytea, secret_key_id = $3 WHERE id = $2",
        "UPDATE idempotency_keys SET response = $1::bytea WHERE actor_id = $2 AND idem_key = $3",
    };
    for (int t = 0; t < 2; t++) {
        if (cp_q(c, &res, sel[t], 0, NULL) != 0)
            goto Exit;
        for (int i = 0; i < PQntuples(res); i++) {
            const char *hex = PQgetvalue(res, i, 1);
            size_t n = strlen(hex) / 2, plen = 0, slen = 0;
            uint8_t *sealed = sl_xmalloc(n + 1), *plain = NULL, *resealed = NULL;
            if (sl_hex_decode(hex, strlen(hex), sealed, n) != 0)
                n = 0;
            if (n >= SL_KEY_ID_LEN && memcmp(sealed, neu.master_key_id, SL_KEY_ID_LEN) == 0) {
                sl_free(sealed); /* already under the new key (a rerun) */
                continue;
            }
            if (cp_open(old, sealed, n, PQgetvalue(res, i, 0), &plain, &plen) != 0) {
                sl_log(SL_LOG_ERROR, NULL, 0,
                       "a secret (%s) does not open with the current master key; nothing changed",
                       PQgetvalue(res, i, 2));
                sl_free(sealed);
                goto Exit;
            }
            int sret = cp_seal(&neu, plain, plen, PQgetvalue(res, i, 0), &resealed, &slen);
            OPENSSL_cleanse(plain, plen);
            sl_free(plain);
            sl_free(sealed);
            if (sret != 0)
                goto Exit;
            char *rhex = cp_bytea_hex(resealed, slen);
            sl_free(resealed);
            /* virtual_keys: (sealed, id, key id); idempotency_keys: (sealed,
             * actor, key) */
            const char *vals[] = {rhex, PQgetvalue(res, i, 2),
                                  t == 0 ? neu.master_key_id : PQgetvalue(res, i, 3)};
            int uret = cp_q(c, &ures, upd[t], 3, vals);
            sl_free(rhex);
            PQclear(ures);
            ures = NULL;
            if (uret != 0)
                goto Exit;
            count++;
        }
        PQclear(res);
        res = NULL;
    }
    if (cp_tx(c, "COMMIT") != 0)
        goto Exit;
    printf("re-encrypted %d secret(s) under master key %s; restart every sluice-control with "
           "the new key\n",
           count, neu.master_key_id);
    ret = 0;
Exit:
    if (ret != 0 && PQerrorMessage(c)[0] != '\0') {
        const char *why = PQerrorMessage(c);
        sl_log(SL_LOG_ERROR, NULL, 0, "master key rotation failed, nothing changed: %.*s",
               (int)strcspn(why, "\n"), why);
    }
    PQclear(res);
    PQfinish(c);
    OPENSSL_cleanse(neu.master_key, sizeof(neu.master_key));
    return ret;
}

int main(int argc, char **argv)
{
    opts_t o = {0};
    const char *cmd = "serve";
    cp_app_t app = {0};
    int n, ret = 1;

    if (parse(argc, argv, &o, &cmd) != 0)
        return 2;
    if (strcmp(cmd, "public-key") == 0) {
        uint8_t seed[32], pub[32];
        char hex[65];
        if (load_key(o.signing_key, o.signing_key_file, seed, "snapshot signing key",
                     "SLUICE_SNAPSHOT_SIGNING_KEY or --signing-key-file") != 0)
            return 2;
        sl_proto_signer_t *s = sl_proto_signer_new(seed);
        OPENSSL_cleanse(seed, sizeof(seed));
        if (s == NULL)
            return 1;
        sl_proto_signer_public(s, pub);
        sl_proto_signer_free(s);
        sl_hex_encode(pub, sizeof(pub), hex);
        printf("%s\n", hex);
        return 0;
    }
    if (strcmp(cmd, "routes") == 0) {
        const cp_route_t *routes = cp_routes(&n);
        for (int i = 0; i < n; i++)
            printf("%s %s\n", routes[i].method, routes[i].path);
        return 0;
    }
    if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0 &&
        strcmp(cmd, "rotate-master-key") != 0) {
        fprintf(stderr, "sluice-control: unknown command %s\n", cmd);
        usage(stderr);
        return 2;
    }
    if (o.db_url == NULL) {
        sl_log(SL_LOG_ERROR, NULL, 0, "no database: set SLUICE_DATABASE_URL or --database-url");
        return 2;
    }
    if (strcmp(cmd, "migrate") == 0) {
        int applied;
        if (cp_migrate(o.db_url, &applied) != 0)
            return 1;
        printf("database schema up to date (%d migration(s) applied)\n", applied);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0 && o.bootstrap != NULL && strlen(o.bootstrap) < 16) {
        sl_log(SL_LOG_ERROR, NULL, 0, "SLUICE_BOOTSTRAP_TOKEN must have at least 16 characters");
        return 2;
    }
    if (load_key(o.master_key, o.master_key_file, app.master_key, "master key",
                 "SLUICE_MASTER_KEY or --master-key-file") != 0)
        return 2;
    sl_key_id(app.master_key, app.master_key_id);
    if (strcmp(cmd, "rotate-master-key") == 0) {
        ret = rotate_master_key(&o, &app);
        OPENSSL_cleanse(app.master_key, sizeof(app.master_key));
        return ret;
    }
    cp_routes(&n);
    app.threads = o.threads;
    app.max_body = (size_t)o.max_body;
    app.pool = cp_pool_new(o.db_url, o.threads);
    app.metrics = cp_metrics_new(n);
    /* Snapshots for gateways need both the signing key and the data-plane
     * key; without them the control plane serves the admin API alone. */
    cp_publisher_config_t pubcfg = {.listen = o.snapshot_listen};
    int have_sign = o.signing_key != NULL || o.signing_key_file != NULL;
    int have_dp = o.dataplane_key != NULL || o.dataplane_key_file != NULL;
    if (have_sign != have_dp) {
        sl_log(SL_LOG_ERROR, NULL, 0, "snapshots need both SLUICE_SNAPSHOT_SIGNING_KEY and "
                                      "SLUICE_DATAPLANE_KEY (or their _FILE forms)");
        return 2;
    }
    if (have_sign && (load_key(o.signing_key, o.signing_key_file, pubcfg.signing_seed,
                               "snapshot signing key", "SLUICE_SNAPSHOT_SIGNING_KEY") != 0 ||
                      load_key(o.dataplane_key, o.dataplane_key_file, pubcfg.dataplane_key,
                               "data-plane key", "SLUICE_DATAPLANE_KEY") != 0))
        return 2;
    if (!have_sign)
        sl_log(SL_LOG_INFO, NULL, 0, "no snapshot keys: gateways get no snapshots from this "
                                     "control plane (set SLUICE_SNAPSHOT_SIGNING_KEY and "
                                     "SLUICE_DATAPLANE_KEY)");
    ret = serve(&o, &app, have_sign ? &pubcfg : NULL);
    OPENSSL_cleanse(&pubcfg, sizeof(pubcfg));
    cp_pool_free(app.pool);
    cp_metrics_free(app.metrics);
    OPENSSL_cleanse(app.master_key, sizeof(app.master_key));
    return ret;
}
