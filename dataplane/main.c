/*
 * sluice-gateway: parses options, starts one worker per core and waits for
 * SIGTERM or SIGINT, then drains the workers and exits 0.
 */
#include <curl/curl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/alloc.h"
#include "common/err.h"
#include "common/log.h"
#include "dataplane/config.h"
#include "common/provider.h"
#include "dataplane/proxy/proxy.h"
#include "dataplane/proxy/stage.h"
#include "dataplane/server/http.h"
#include "dataplane/worker.h"
#include "dataplane/sync/sync.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sluice-gateway [options]\n"
            "  --listen HOST:PORT        address to serve on (default 127.0.0.1:8787; port 0 picks one)\n"
            "  --workers N               worker threads, one loop each (default: number of cores)\n"
            "  --trusted-hosts LIST      private CIDRs custom hosts may point at (comma-separated)\n"
            "  --no-loopback             refuse custom hosts on loopback too\n"
            "  --max-body-bytes N        request body limit (default 33554432)\n"
            "  --max-header-bytes N      request line + headers limit (default 32768)\n"
            "  --max-headers N           header count limit (default 100)\n"
            "  --header-timeout-ms N     time to send the request head (default 10000)\n"
            "  --body-timeout-ms N       longest silence while sending a body (default 30000)\n"
            "  --idle-timeout-ms N       keep-alive idle time (default 75000)\n"
            "  --send-timeout-ms N       a client that takes no response bytes this long is\n"
            "                            dropped (default 60000)\n"
            "  --upstream-timeout-ms N   whole upstream transfer (default 600000)\n"
            "  --shutdown-grace-ms N     time in-flight requests get on SIGTERM (default 30000)\n"
            "  --upstream-ca-file FILE   CA bundle to verify upstream TLS with (default: system's)\n"
            "  --upstream-http1 ENGINE   client for plain http:// upstreams: native (default) or\n"
            "                            libcurl\n"
            "  --list-providers          print the provider table (Markdown) and exit\n"
            "  --config FILE             routing config for requests without x-sluice-config\n"
            "  --control URL             serve what this control plane allows (tcp://host:8791):\n"
            "                            requests need a Sluice API key; keys from\n"
            "                            SLUICE_SNAPSHOT_PUBLIC_KEY and SLUICE_DATAPLANE_KEY[_FILE]\n"
            "  --snapshot-file FILE      keep the last verified snapshot here; loaded at start\n"
            "  --node-id ID              this node's name in the control plane (host-pid)\n"
            "                            (Portkey's schema; reloaded on SIGHUP)\n"
            "  --log-level LEVEL         error|warn|info|debug|trace (default info)\n");
}

static int parse_listen(gw_config_t *cfg, const char *s)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL)
        return -1;
    size_t hl = (size_t)(colon - s);
    if (hl >= sizeof(cfg->host))
        return -1;
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
        memcpy(cfg->host, s + 1, hl - 2);
        cfg->host[hl - 2] = '\0';
    } else {
        memcpy(cfg->host, s, hl);
        cfg->host[hl] = '\0';
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 0 || p > 65535)
        return -1;
    cfg->port = (int)p;
    return 0;
}

static int parse_num(const char *s, unsigned long long *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || s[0] == '-')
        return -1;
    *out = v;
    return 0;
}

static uv_signal_t sigterm_h, sigint_h, sighup_h;
static const char *config_path; /* --config FILE, or NULL */

/* Reads and installs --config FILE; 0, or -1 with err set. */
static int load_config(char *err, size_t errlen)
{
    FILE *f = fopen(config_path, "rb");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s", config_path);
        return -1;
    }
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof(text), f);
    int too_big = n == sizeof(text);
    fclose(f);
    if (too_big) {
        snprintf(err, errlen, "%s is larger than 1 MiB", config_path);
        return -1;
    }
    return gw_router_set_file_config(sl_str(text, n), err, errlen) == 0 ? 0 : -1;
}

static void on_sighup(uv_signal_t *h, int signum)
{
    char err[512];
    if (load_config(err, sizeof(err)) == 0)
        sl_log(SL_LOG_INFO, NULL, 0, "config reloaded from %s", config_path);
    else
        sl_log(SL_LOG_WARN, NULL, 0, "config not reloaded, the previous one stays: %s", err);
}

static void on_signal(uv_signal_t *h, int signum)
{
    sl_log(SL_LOG_INFO, NULL, 0, "signal %d: draining", signum);
    for (int i = 0; i < gw_nworkers; i++)
        gw_worker_stop(&gw_workers[i]);
    /* Both handles go, or the main loop would never end. A second signal
     * during the drain gets the default action (terminate). */
    uv_close((uv_handle_t *)&sigterm_h, NULL);
    uv_close((uv_handle_t *)&sigint_h, NULL);
    if (config_path != NULL)
        uv_close((uv_handle_t *)&sighup_h, NULL);
}

static gw_sync_config_t sync_cfg;

/* Reads a 32-byte key from VAR or VAR_FILE (hex or base64). */
static int env_key(const char *var, uint8_t out[32])
{
    char name[96], buf[256];
    const char *text = getenv(var);
    snprintf(name, sizeof(name), "%s_FILE", var);
    const char *file = getenv(name);
    if ((text == NULL || text[0] == '\0') && file != NULL && file[0] != '\0') {
        FILE *f = fopen(file, "r");
        size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
        if (f != NULL)
            fclose(f);
        buf[n] = '\0';
        text = buf;
    }
    int ret = text != NULL && text[0] != '\0' ? sl_key_parse(text, out) : SL_EINVAL;
    OPENSSL_cleanse(buf, sizeof(buf));
    return ret;
}

/* --control: snapshots from the control plane. */
static int setup_sync(const gw_config_t *cfg)
{
    static char node[128], addr[300];
    if (env_key("SLUICE_SNAPSHOT_PUBLIC_KEY", sync_cfg.public_key) != 0) {
        fprintf(stderr, "sluice-gateway: --control needs SLUICE_SNAPSHOT_PUBLIC_KEY (the control "
                        "plane's `sluice-control public-key`, 64 hex characters)\n");
        return -1;
    }
    if (env_key("SLUICE_DATAPLANE_KEY", sync_cfg.dataplane_key) != 0) {
        fprintf(stderr, "sluice-gateway: --control needs SLUICE_DATAPLANE_KEY or "
                        "SLUICE_DATAPLANE_KEY_FILE (the control plane's data-plane key)\n");
        return -1;
    }
    if (sync_cfg.node_id == NULL) {
        char host[64] = "gateway";
        gethostname(host, sizeof(host) - 1);
        snprintf(node, sizeof(node), "%s-%d", host, (int)getpid());
        sync_cfg.node_id = node;
    }
    snprintf(addr, sizeof(addr), "%s:%d", cfg->host, cfg->port);
    sync_cfg.address = addr;
    sync_cfg.node_token = getenv("SLUICE_NODE_TOKEN");
    return gw_sync_start(&sync_cfg) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    static gw_config_t cfg;
    enum {
        O_LISTEN = 256, O_WORKERS, O_TRUSTED, O_NOLOOP, O_MAXBODY, O_MAXHDR, O_MAXHDRS, O_HDRTO,
        O_BODYTO, O_IDLETO, O_UPTO, O_GRACE, O_LOG, O_HELP, O_CAFILE, O_SENDTO,
        O_H1, O_LISTPROV, O_CONFIG, O_CONTROL, O_SNAPFILE, O_NODEID
    };
    static const struct option opts[] = {
        {"listen", required_argument, 0, O_LISTEN},
        {"workers", required_argument, 0, O_WORKERS},
        {"trusted-hosts", required_argument, 0, O_TRUSTED},
        {"no-loopback", no_argument, 0, O_NOLOOP},
        {"max-body-bytes", required_argument, 0, O_MAXBODY},
        {"max-header-bytes", required_argument, 0, O_MAXHDR},
        {"max-headers", required_argument, 0, O_MAXHDRS},
        {"header-timeout-ms", required_argument, 0, O_HDRTO},
        {"body-timeout-ms", required_argument, 0, O_BODYTO},
        {"idle-timeout-ms", required_argument, 0, O_IDLETO},
        {"upstream-timeout-ms", required_argument, 0, O_UPTO},
        {"shutdown-grace-ms", required_argument, 0, O_GRACE},
        {"log-level", required_argument, 0, O_LOG},
        {"help", no_argument, 0, O_HELP},
        {"upstream-ca-file", required_argument, 0, O_CAFILE},
        {"send-timeout-ms", required_argument, 0, O_SENDTO},
        {"upstream-http1", required_argument, 0, O_H1},
        {"list-providers", no_argument, 0, O_LISTPROV},
        {"config", required_argument, 0, O_CONFIG},
        {"control", required_argument, 0, O_CONTROL},
        {"snapshot-file", required_argument, 0, O_SNAPFILE},
        {"node-id", required_argument, 0, O_NODEID},
        {0, 0, 0, 0},
    };
    gw_config_defaults(&cfg);
    if (sl_log_format_from_env() != 0) {
        fprintf(stderr, "sluice-gateway: SLUICE_LOG_FORMAT must be text or json\n");
        return 2;
    }
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        unsigned long long v = 0;
        int bad = 0;
        switch (c) {
        case O_LISTEN: bad = parse_listen(&cfg, optarg); break;
        case O_WORKERS: bad = parse_num(optarg, &v) || v > 256; cfg.workers = (int)v; break;
        case O_TRUSTED: bad = gw_netguard_add_list(&cfg.netguard, optarg) != 0; break;
        case O_NOLOOP: cfg.netguard.allow_loopback = 0; break;
        case O_MAXBODY: bad = parse_num(optarg, &v) || v == 0; cfg.max_body_bytes = v; break;
        case O_MAXHDR: bad = parse_num(optarg, &v) || v < 256; cfg.max_header_bytes = v; break;
        case O_MAXHDRS: bad = parse_num(optarg, &v) || v == 0; cfg.max_headers = v; break;
        case O_HDRTO: bad = parse_num(optarg, &v) || v == 0; cfg.header_timeout_ms = v; break;
        case O_BODYTO: bad = parse_num(optarg, &v) || v == 0; cfg.body_timeout_ms = v; break;
        case O_IDLETO: bad = parse_num(optarg, &v) || v == 0; cfg.idle_timeout_ms = v; break;
        case O_UPTO: bad = parse_num(optarg, &v) || v == 0; cfg.upstream_timeout_ms = v; break;
        case O_GRACE: bad = parse_num(optarg, &v); cfg.shutdown_grace_ms = v; break;
        case O_LOG:
            sl_log_level = sl_log_level_parse(optarg);
            bad = sl_log_level < 0;
            break;
        case O_HELP: usage(stdout); return 0;
        case O_LISTPROV: sl_provider_print_table(stdout); return 0;
        case O_CONFIG: config_path = optarg; break;
        case O_CONTROL: sync_cfg.control_url = optarg; break;
        case O_SNAPFILE: sync_cfg.snapshot_file = optarg; break;
        case O_NODEID: bad = strlen(optarg) == 0 || strlen(optarg) > 100; sync_cfg.node_id = optarg; break;
        case O_SENDTO: bad = parse_num(optarg, &v) || v == 0; cfg.send_timeout_ms = v; break;
        case O_CAFILE:
            bad = strlen(optarg) >= sizeof(cfg.ca_file) || access(optarg, R_OK) != 0;
            if (!bad)
                snprintf(cfg.ca_file, sizeof(cfg.ca_file), "%s", optarg);
            break;
        case O_H1:
            bad = strcmp(optarg, "native") != 0 && strcmp(optarg, "libcurl") != 0;
            cfg.upstream_native_http1 = strcmp(optarg, "native") == 0;
            break;
        default: usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "sluice-gateway: invalid value for --%s: %s\n",
                    opts[c - O_LISTEN].name, optarg ? optarg : "");
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    if (cfg.workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.workers = n > 0 ? (int)n : 1;
    }
    if (config_path != NULL) {
        char err[512];
        if (load_config(err, sizeof(err)) != 0) {
            fprintf(stderr, "sluice-gateway: --config: %s\n", err);
            return 2;
        }
    }
    if (sync_cfg.control_url != NULL && setup_sync(&cfg) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_ALL);

    /* Handlers first: a SIGTERM that comes as soon as we say we listen must
     * drain, not kill. libuv queues it until the main loop runs. */
    uv_loop_t *main_loop = uv_default_loop();
    uv_signal_init(main_loop, &sigterm_h);
    uv_signal_init(main_loop, &sigint_h);
    uv_signal_start(&sigterm_h, on_signal, SIGTERM);
    uv_signal_start(&sigint_h, on_signal, SIGINT);
    if (config_path != NULL) {
        uv_signal_init(main_loop, &sighup_h);
        uv_signal_start(&sighup_h, on_sighup, SIGHUP);
    }

    gw_http_set_handler(gw_proxy_handle);
    gw_nworkers = cfg.workers;
    gw_workers = sl_xcalloc((size_t)cfg.workers, sizeof(gw_worker_t));
    for (int i = 0; i < cfg.workers; i++) {
        if (gw_worker_init(&gw_workers[i], i, &cfg) != 0)
            return 1;
        if (i == 0 && cfg.port == 0)
            cfg.port = gw_worker_port(&gw_workers[0]); /* the others bind the same port */
    }
    for (int i = 0; i < cfg.workers; i++)
        if (gw_worker_start(&gw_workers[i]) != 0)
            return 1;
    printf("listening on %s:%d\n", cfg.host, cfg.port);
    fflush(stdout);
    sl_log(SL_LOG_INFO, NULL, 0, "sluice-gateway serving on %s:%d with %d workers", cfg.host,
           cfg.port, cfg.workers);

    uv_run(main_loop, UV_RUN_DEFAULT);

    for (int i = 0; i < cfg.workers; i++)
        gw_worker_join(&gw_workers[i]);
    for (int i = 0; i < cfg.workers; i++)
        gw_worker_dispose(&gw_workers[i]);
    gw_sync_stop();
    sl_free(gw_workers);
    uv_loop_close(main_loop);
    curl_global_cleanup();
    char none[8];
    gw_router_set_file_config(SL_STR_NULL, none, sizeof(none)); /* frees it */
    sl_log(SL_LOG_INFO, NULL, 0, "sluice-gateway stopped");
    return 0;
}
