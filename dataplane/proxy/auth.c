/*
 * Authentication stage. In standalone, header-driven mode the caller brings
 * its own provider key in Authorization. With a control plane (--control),
 * the caller brings a Sluice API key instead, resolved against the current
 * snapshot: its workspace, model allow-list and default config, and the
 * virtual key it names (x-sluice-virtual-key), whose credentials are opened
 * into the request's arena. Everything kept is copied out of the snapshot
 * inside one short RCU read section.
 */
#include <string.h>
#include <time.h>

#include "common/crypto.h"
#include "common/err.h"
#include "dataplane/proxy/stage.h"
#include "dataplane/sync/sync.h"

static const char **copy_strs(sl_arena_t *a, const char **v, size_t n)
{
    const char **out = sl_arena_alloc(a, sizeof(char *) * (n + 1), _Alignof(char *));
    for (size_t i = 0; i < n; i++)
        out[i] = sl_arena_printf(a, "%s", v[i]);
    return out;
}

static int has(const char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A virtual key of the request's workspace: its provider, credentials
 * (opened into the arena, with its settings) and model allow-list. */
static int use_vkey(gw_proxy_t *px, const sl_snapshot_t *s, sl_str_t id, const char *param)
{
    sl_arena_t *a = &px->req->arena;
    const sl_snap_vkey_t *v = sl_snapshot_vkey(s, id);
    int64_t now = now_ms();
    /* Another workspace's virtual key reads as unknown. */
    if (v == NULL || strcmp(v->workspace, px->workspace) != 0 || !v->enabled ||
        (v->expires_ms != 0 && now >= v->expires_ms)) {
        px->error_message = sl_arena_printf(a, "%s%sunknown, disabled or expired virtual key",
                                            param[0] == 'x' ? "" : param,
                                            param[0] == 'x' ? "" : ".virtual_key: ");
        px->error_param = param[0] == 'x' ? param : "x-sluice-config";
        return SL_EBADKEY;
    }
    json_t *creds = gw_sync_open_credentials(v, a);
    if (!json_is_object(creds)) {
        px->error_message = "this virtual key's credentials cannot be opened on this gateway "
                            "(data-plane key mismatch)";
        return SL_EINTERNAL;
    }
    for (size_t i = 0; i < v->nopts; i++)
        json_object_set_new(creds, v->opt_names[i], json_string(v->opt_values[i]));
    px->vk_creds = creds;
    px->vk_provider = sl_str_c(sl_arena_printf(a, "%s", v->provider));
    px->vk_models = copy_strs(a, v->models, v->nmodels);
    px->nvk_models = v->nmodels;
    json_t *ak = json_object_get(creds, "api_key");
    if (!json_is_string(ak))
        ak = json_object_get(creds, "azure_ad_token");
    px->api_key = json_is_string(ak) ? sl_str(json_string_value(ak), json_string_length(ak))
                                     : SL_STR_NULL;
    return 0;
}

int gw_auth_virtual_key(gw_proxy_t *px, sl_str_t id, const char *where)
{
    const sl_snapshot_t *s = gw_snap_read_begin();
    int r = s != NULL ? use_vkey(px, s, id, where) : SL_ENOSNAPSHOT;
    gw_snap_read_end(s);
    return r;
}

/* Resolves the key, virtual key and config inside the read section. */
static int resolve(gw_proxy_t *px, const sl_snapshot_t *s, sl_str_t key)
{
    sl_arena_t *a = &px->req->arena;
    uint8_t hash[32];
    int64_t now = now_ms();

    sl_sha256(key.base, key.len, hash);
    const sl_snap_key_t *k = sl_snapshot_key(s, hash);
    if (k == NULL || !k->enabled) {
        px->error_message = "invalid API key: unknown, revoked or disabled";
        return SL_EBADKEY;
    }
    if (k->expires_ms != 0 && now >= k->expires_ms) {
        px->error_message = "this API key has expired";
        return SL_EBADKEY;
    }
    px->key_id = sl_arena_printf(a, "%s", k->id);
    px->workspace = sl_arena_printf(a, "%s", k->workspace);
    px->key_models = copy_strs(a, k->models, k->nmodels);
    px->nkey_models = k->nmodels;

    sl_str_t vk_id = sl_str_trim(gw_proxy_header(px, "virtual-key"));
    if (vk_id.len > 0) {
        if (k->nscopes > 0 && !has(k->scopes, k->nscopes, "virtual_keys")) {
            px->error_message = "this API key may not choose a virtual key (scope virtual_keys)";
            px->error_param = "x-sluice-virtual-key";
            return SL_EFORBIDDEN;
        }
        int r = use_vkey(px, s, vk_id, "x-sluice-virtual-key");
        if (r != 0)
            return r;
    }

    /* x-sluice-config: a config id of this workspace, or inline JSON when
     * the key's scopes allow it; else the key's default config. */
    sl_str_t cfg = sl_str_trim(gw_proxy_header(px, "config"));
    const char *cfg_id = NULL;
    char idbuf[128];
    if (cfg.len > 0 && cfg.base[0] != '{') {
        if (cfg.len >= sizeof(idbuf)) {
            px->error_message = "unknown config";
            px->error_param = "x-sluice-config";
            return SL_EINVAL;
        }
        memcpy(idbuf, cfg.base, cfg.len);
        idbuf[cfg.len] = '\0';
        cfg_id = idbuf;
    } else if (cfg.len > 0) {
        if (k->nscopes > 0 && !has(k->scopes, k->nscopes, "configs")) {
            px->error_message = "this API key may not send inline configs (scope configs)";
            px->error_param = "x-sluice-config";
            return SL_EFORBIDDEN;
        }
        return GW_STAGE_NEXT; /* the router reads the header */
    } else {
        cfg_id = k->default_config;
    }
    if (cfg_id != NULL) {
        const sl_snap_config_t *c = sl_snapshot_config(s, sl_str_c(cfg_id));
        if (c == NULL || strcmp(c->workspace, k->workspace) != 0) {
            px->error_message = "unknown config";
            px->error_param = "x-sluice-config";
            return SL_EINVAL;
        }
        px->snap_config = sl_str_dup(a, sl_str(c->body, c->body_len));
    }
    return GW_STAGE_NEXT;
}

int gw_auth_stage(gw_proxy_t *px)
{
    sl_str_t key = SL_STR_NULL;
    sl_str_t auth = sl_str_trim(gw_req_header(px->req, "authorization"));
    if (sl_str_istarts_with(auth, "bearer ")) {
        key = sl_str_trim(sl_str(auth.base + 7, auth.len - 7));
    } else {
        /* Anthropic's SDK sends its key as x-api-key (and so may others). */
        key = sl_str_trim(gw_req_header(px->req, "x-api-key"));
    }
    if (!gw_sync_enabled()) {
        px->api_key = key;
        return GW_STAGE_NEXT;
    }
    sl_str_t sk = sl_str_trim(gw_proxy_header(px, "api-key"));
    if (sk.len > 0)
        key = sk;
    if (key.len == 0) {
        px->error_message = "missing API key: send Authorization: Bearer sk-sluice-...";
        return SL_ENOKEY;
    }
    /* The Sluice key is never sent on: the provider key comes from the
     * virtual key (or a config's target). */
    px->api_key = SL_STR_NULL;
    const sl_snapshot_t *s = gw_snap_read_begin();
    int r = s != NULL ? resolve(px, s, key) : SL_ENOSNAPSHOT;
    gw_snap_read_end(s);
    return r;
}
