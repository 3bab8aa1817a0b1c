/* The snapshot payload in msgpack: written section by section by the control
 * plane, decoded whole by the gateway into arena-owned structs with hash
 * indexes. */
#include "common/snapshot.h"

#include <msgpack.h>
#include <string.h>

#include "common/alloc.h"
#include "common/crypto.h"
#include "common/err.h"

/* ---- writer ------------------------------------------------------------------ */

enum { SEC_KEYS, SEC_VKEYS, SEC_CONFIGS, SEC_PRICES, NSEC };
static const char *const sec_names[NSEC] = {"keys", "vkeys", "configs", "pricing"};

struct sl_snap_writer_s {
    msgpack_sbuffer sec[NSEC];
    msgpack_packer pk[NSEC];
    size_t want[NSEC], got[NSEC];
    msgpack_sbuffer out;
};

sl_snap_writer_t *sl_snap_writer_new(size_t nkeys, size_t nvkeys, size_t nconfigs, size_t nprices)
{
    sl_snap_writer_t *w = sl_xcalloc(1, sizeof(*w));
    size_t want[NSEC] = {nkeys, nvkeys, nconfigs, nprices};
    for (int i = 0; i < NSEC; i++) {
        msgpack_sbuffer_init(&w->sec[i]);
        msgpack_packer_init(&w->pk[i], &w->sec[i], msgpack_sbuffer_write);
        w->want[i] = want[i];
    }
    msgpack_sbuffer_init(&w->out);
    return w;
}

void sl_snap_writer_free(sl_snap_writer_t *w)
{
    if (w == NULL)
        return;
    for (int i = 0; i < NSEC; i++)
        msgpack_sbuffer_destroy(&w->sec[i]);
    msgpack_sbuffer_destroy(&w->out);
    sl_free(w);
}

static void pack_str(msgpack_packer *p, const char *s)
{
    if (s == NULL) {
        msgpack_pack_nil(p);
        return;
    }
    size_t n = strlen(s);
    msgpack_pack_str(p, n);
    msgpack_pack_str_body(p, s, n);
}

static void pack_strs(msgpack_packer *p, const char **v, size_t n)
{
    msgpack_pack_array(p, n);
    for (size_t i = 0; i < n; i++)
        pack_str(p, v[i]);
}

void sl_snap_writer_key(sl_snap_writer_t *w, const sl_snap_key_t *k)
{
    msgpack_packer *p = &w->pk[SEC_KEYS];
    w->got[SEC_KEYS]++;
    msgpack_pack_array(p, 12);
    msgpack_pack_bin(p, 32);
    msgpack_pack_bin_body(p, k->hash, 32);
    pack_str(p, k->id);
    pack_str(p, k->workspace);
    k->enabled ? msgpack_pack_true(p) : msgpack_pack_false(p);
    msgpack_pack_int64(p, k->expires_ms);
    pack_strs(p, k->models, k->nmodels);
    pack_strs(p, k->scopes, k->nscopes);
    pack_str(p, k->default_config);
    k->rpm >= 0 ? msgpack_pack_int64(p, k->rpm) : msgpack_pack_nil(p);
    k->tpm >= 0 ? msgpack_pack_int64(p, k->tpm) : msgpack_pack_nil(p);
    k->budget_limit >= 0 ? msgpack_pack_double(p, k->budget_limit) : msgpack_pack_nil(p);
    pack_str(p, k->budget_period);
}

void sl_snap_writer_vkey(sl_snap_writer_t *w, const sl_snap_vkey_t *v)
{
    msgpack_packer *p = &w->pk[SEC_VKEYS];
    w->got[SEC_VKEYS]++;
    msgpack_pack_array(p, 8);
    pack_str(p, v->id);
    pack_str(p, v->workspace);
    pack_str(p, v->provider);
    msgpack_pack_map(p, v->nopts);
    for (size_t i = 0; i < v->nopts; i++) {
        pack_str(p, v->opt_names[i]);
        pack_str(p, v->opt_values[i]);
    }
    msgpack_pack_bin(p, v->sealed_len);
    msgpack_pack_bin_body(p, v->sealed, v->sealed_len);
    pack_strs(p, v->models, v->nmodels);
    msgpack_pack_int64(p, v->expires_ms);
    v->enabled ? msgpack_pack_true(p) : msgpack_pack_false(p);
}

void sl_snap_writer_config(sl_snap_writer_t *w, const sl_snap_config_t *c)
{
    msgpack_packer *p = &w->pk[SEC_CONFIGS];
    w->got[SEC_CONFIGS]++;
    msgpack_pack_array(p, 4);
    pack_str(p, c->id);
    pack_str(p, c->workspace);
    msgpack_pack_int(p, c->version);
    msgpack_pack_str(p, c->body_len);
    msgpack_pack_str_body(p, c->body, c->body_len);
}

void sl_snap_writer_price(sl_snap_writer_t *w, const sl_snap_price_t *pr)
{
    msgpack_packer *p = &w->pk[SEC_PRICES];
    w->got[SEC_PRICES]++;
    msgpack_pack_array(p, 5);
    pack_str(p, pr->provider);
    pack_str(p, pr->model);
    msgpack_pack_double(p, pr->input);
    msgpack_pack_double(p, pr->output);
    pr->cached >= 0 ? msgpack_pack_double(p, pr->cached) : msgpack_pack_nil(p);
}

int sl_snap_writer_finish(sl_snap_writer_t *w, const void **data, size_t *n)
{
    msgpack_packer p;
    msgpack_sbuffer_clear(&w->out);
    msgpack_packer_init(&p, &w->out, msgpack_sbuffer_write);
    msgpack_pack_map(&p, NSEC);
    for (int i = 0; i < NSEC; i++) {
        if (w->got[i] != w->want[i])
            return SL_EINVAL;
        pack_str(&p, sec_names[i]);
        msgpack_pack_array(&p, w->want[i]);
        msgpack_sbuffer_write(&w->out, w->sec[i].data, w->sec[i].size);
    }
    *data = w->out.data;
    *n = w->out.size;
    return 0;
}

/* ---- reader ------------------------------------------------------------------- */

typedef struct {
    sl_arena_t *a;
    const char *why;
} rd_t;

static int is_str(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_STR;
}

/* A string (copied into the arena, NUL-terminated), or NULL for nil when
 * allowed. Returns -1 with why set otherwise. */
static int get_str(rd_t *r, const msgpack_object *o, int nullable, const char **out,
                   const char *what)
{
    if (o->type == MSGPACK_OBJECT_NIL && nullable) {
        *out = NULL;
        return 0;
    }
    if (!is_str(o) || memchr(o->via.str.ptr, 0, o->via.str.size) != NULL) {
        r->why = what;
        return -1;
    }
    char *s = sl_arena_alloc(r->a, o->via.str.size + 1, 1);
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    *out = s;
    return 0;
}

static int get_strs(rd_t *r, const msgpack_object *o, const char ***out, size_t *n,
                    const char *what)
{
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        r->why = what;
        return -1;
    }
    *n = o->via.array.size;
    *out = sl_arena_alloc(r->a, sizeof(char *) * (*n + 1), _Alignof(char *));
    for (size_t i = 0; i < *n; i++)
        if (get_str(r, &o->via.array.ptr[i], 0, &(*out)[i], what) != 0)
            return -1;
    return 0;
}

static int get_int(rd_t *r, const msgpack_object *o, int nullable, int64_t *out, const char *what)
{
    if (o->type == MSGPACK_OBJECT_NIL && nullable) {
        *out = -1;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) {
        *out = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    r->why = what;
    return -1;
}

static int get_num(rd_t *r, const msgpack_object *o, int nullable, double *out, const char *what)
{
    if (o->type == MSGPACK_OBJECT_NIL && nullable) {
        *out = -1;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) {
        *out = o->via.f64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *out = (double)o->via.u64;
        return 0;
    }
    r->why = what;
    return -1;
}

static int get_bool(rd_t *r, const msgpack_object *o, int *out, const char *what)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        r->why = what;
        return -1;
    }
    *out = o->via.boolean;
    return 0;
}

static const msgpack_object *row(rd_t *r, const msgpack_object *o, uint32_t n, const char *what)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n) {
        r->why = what;
        return NULL;
    }
    return o->via.array.ptr;
}

static int read_key(rd_t *r, const msgpack_object *o, sl_snap_key_t *k)
{
    const msgpack_object *f = row(r, o, 12, "a key is not a 12-field array");
    int64_t rpm, tpm;
    if (f == NULL)
        return -1;
    if (f[0].type != MSGPACK_OBJECT_BIN || f[0].via.bin.size != 32) {
        r->why = "a key's hash is not 32 bytes";
        return -1;
    }
    memcpy(k->hash, f[0].via.bin.ptr, 32);
    if (get_str(r, &f[1], 0, &k->id, "a key's id") || get_str(r, &f[2], 0, &k->workspace, "a key's workspace") ||
        get_bool(r, &f[3], &k->enabled, "a key's enabled flag") ||
        get_int(r, &f[4], 0, &k->expires_ms, "a key's expiry") ||
        get_strs(r, &f[5], &k->models, &k->nmodels, "a key's models") ||
        get_strs(r, &f[6], &k->scopes, &k->nscopes, "a key's scopes") ||
        get_str(r, &f[7], 1, &k->default_config, "a key's default config") ||
        get_int(r, &f[8], 1, &rpm, "a key's rpm") || get_int(r, &f[9], 1, &tpm, "a key's tpm") ||
        get_num(r, &f[10], 1, &k->budget_limit, "a key's budget") ||
        get_str(r, &f[11], 1, &k->budget_period, "a key's budget period"))
        return -1;
    k->rpm = rpm;
    k->tpm = tpm;
    return 0;
}

static int read_vkey(rd_t *r, const msgpack_object *o, sl_snap_vkey_t *v)
{
    const msgpack_object *f = row(r, o, 8, "a virtual key is not an 8-field array");
    if (f == NULL)
        return -1;
    if (get_str(r, &f[0], 0, &v->id, "a virtual key's id") ||
        get_str(r, &f[1], 0, &v->workspace, "a virtual key's workspace") ||
        get_str(r, &f[2], 0, &v->provider, "a virtual key's provider"))
        return -1;
    if (f[3].type != MSGPACK_OBJECT_MAP || f[4].type != MSGPACK_OBJECT_BIN) {
        r->why = "a virtual key's options or secret";
        return -1;
    }
    v->nopts = f[3].via.map.size;
    v->opt_names = sl_arena_alloc(r->a, sizeof(char *) * (v->nopts + 1), _Alignof(char *));
    v->opt_values = sl_arena_alloc(r->a, sizeof(char *) * (v->nopts + 1), _Alignof(char *));
    for (size_t i = 0; i < v->nopts; i++)
        if (get_str(r, &f[3].via.map.ptr[i].key, 0, &v->opt_names[i], "a virtual key's option") ||
            get_str(r, &f[3].via.map.ptr[i].val, 0, &v->opt_values[i], "a virtual key's option"))
            return -1;
    uint8_t *sealed = sl_arena_alloc(r->a, f[4].via.bin.size + 1, 1);
    memcpy(sealed, f[4].via.bin.ptr, f[4].via.bin.size);
    v->sealed = sealed;
    v->sealed_len = f[4].via.bin.size;
    return get_strs(r, &f[5], &v->models, &v->nmodels, "a virtual key's models") ||
                   get_int(r, &f[6], 0, &v->expires_ms, "a virtual key's expiry") ||
                   get_bool(r, &f[7], &v->enabled, "a virtual key's enabled flag")
               ? -1
               : 0;
}

static int read_config(rd_t *r, const msgpack_object *o, sl_snap_config_t *c)
{
    const msgpack_object *f = row(r, o, 4, "a config is not a 4-field array");
    int64_t ver;
    if (f == NULL || get_str(r, &f[0], 0, &c->id, "a config's id") ||
        get_str(r, &f[1], 0, &c->workspace, "a config's workspace") ||
        get_int(r, &f[2], 0, &ver, "a config's version") ||
        get_str(r, &f[3], 0, &c->body, "a config's body"))
        return -1;
    c->version = (int)ver;
    c->body_len = strlen(c->body);
    return 0;
}

static int read_price(rd_t *r, const msgpack_object *o, sl_snap_price_t *p)
{
    const msgpack_object *f = row(r, o, 5, "a price is not a 5-field array");
    if (f == NULL || get_str(r, &f[0], 0, &p->provider, "a price's provider") ||
        get_str(r, &f[1], 0, &p->model, "a price's model") ||
        get_num(r, &f[2], 0, &p->input, "a price's input") ||
        get_num(r, &f[3], 0, &p->output, "a price's output") ||
        get_num(r, &f[4], 1, &p->cached, "a price's cached input"))
        return -1;
    return 0;
}

/* FNV-1a, for ids; key hashes are uniform already (their first 8 bytes). */
static uint64_t id_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static uint64_t key_slot_hash(const uint8_t hash[32])
{
    uint64_t h;
    memcpy(&h, hash, sizeof(h));
    return h;
}

static uint32_t *index_new(sl_arena_t *a, size_t n, size_t *slots)
{
    size_t s = 8;
    while (s < n * 2)
        s <<= 1;
    *slots = s;
    uint32_t *t = sl_arena_alloc(a, s * sizeof(uint32_t), _Alignof(uint32_t));
    memset(t, 0, s * sizeof(uint32_t));
    return t;
}

static void index_put(uint32_t *t, size_t slots, uint64_t h, uint32_t i)
{
    size_t m = slots - 1;
    for (size_t p = h & m;; p = (p + 1) & m)
        if (t[p] == 0) {
            t[p] = i + 1;
            return;
        }
}

int sl_snapshot_decode(const void *payload, size_t n, uint64_t version, const uint8_t hash[32],
                       sl_snapshot_t **out, const char **why)
{
    msgpack_unpacked u;
    size_t off = 0;
    sl_snapshot_t *s = sl_xcalloc(1, sizeof(*s));
    rd_t r = {&s->_arena, NULL};
    int ret = SL_EINVAL;

    sl_arena_init(&s->_arena);
    s->version = version;
    memcpy(s->hash, hash, 32);
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, payload, n, &off) != MSGPACK_UNPACK_SUCCESS || off != n ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        r.why = "the payload is not one msgpack map";
        goto Exit;
    }
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        const msgpack_object *k = &u.data.via.map.ptr[i].key, *v = &u.data.via.map.ptr[i].val;
        int sec = -1;
        for (int j = 0; j < NSEC && is_str(k); j++)
            if (k->via.str.size == strlen(sec_names[j]) &&
                memcmp(k->via.str.ptr, sec_names[j], k->via.str.size) == 0)
                sec = j;
        if (sec < 0)
            continue; /* a later version's section */
        if (v->type != MSGPACK_OBJECT_ARRAY) {
            r.why = "a section is not an array";
            goto Exit;
        }
        size_t cnt = v->via.array.size;
        for (size_t e = 0; e < cnt; e++) {
            const msgpack_object *o = &v->via.array.ptr[e];
            int bad = 0;
            switch (sec) {
            case SEC_KEYS:
                if (s->keys == NULL)
                    s->keys = sl_arena_alloc(&s->_arena, sizeof(*s->keys) * (cnt + 1), 8);
                bad = read_key(&r, o, &s->keys[s->nkeys++]);
                break;
            case SEC_VKEYS:
                if (s->vkeys == NULL)
                    s->vkeys = sl_arena_alloc(&s->_arena, sizeof(*s->vkeys) * (cnt + 1), 8);
                bad = read_vkey(&r, o, &s->vkeys[s->nvkeys++]);
                break;
            case SEC_CONFIGS:
                if (s->configs == NULL)
                    s->configs = sl_arena_alloc(&s->_arena, sizeof(*s->configs) * (cnt + 1), 8);
                bad = read_config(&r, o, &s->configs[s->nconfigs++]);
                break;
            default:
                if (s->prices == NULL)
                    s->prices = sl_arena_alloc(&s->_arena, sizeof(*s->prices) * (cnt + 1), 8);
                bad = read_price(&r, o, &s->prices[s->nprices++]);
                break;
            }
            if (bad)
                goto Exit;
        }
    }
    s->_key_index = index_new(&s->_arena, s->nkeys, &s->_key_slots);
    for (size_t i = 0; i < s->nkeys; i++)
        index_put(s->_key_index, s->_key_slots, key_slot_hash(s->keys[i].hash), (uint32_t)i);
    s->_vkey_index = index_new(&s->_arena, s->nvkeys, &s->_vkey_slots);
    for (size_t i = 0; i < s->nvkeys; i++)
        index_put(s->_vkey_index, s->_vkey_slots,
                  id_hash(s->vkeys[i].id, strlen(s->vkeys[i].id)), (uint32_t)i);
    s->_config_index = index_new(&s->_arena, s->nconfigs, &s->_config_slots);
    for (size_t i = 0; i < s->nconfigs; i++)
        index_put(s->_config_index, s->_config_slots,
                  id_hash(s->configs[i].id, strlen(s->configs[i].id)), (uint32_t)i);
    *out = s;
    s = NULL;
    ret = 0;
Exit:
    msgpack_unpacked_destroy(&u);
    if (s != NULL) {
        *why = r.why != NULL ? r.why : "malformed snapshot";
        sl_snapshot_free(s);
    }
    return ret;
}

void sl_snapshot_free(sl_snapshot_t *s)
{
    if (s == NULL)
        return;
    sl_arena_clear(&s->_arena);
    sl_free(s);
}

const sl_snap_key_t *sl_snapshot_key(const sl_snapshot_t *s, const uint8_t hash[32])
{
    size_t m = s->_key_slots - 1;
    for (size_t p = key_slot_hash(hash) & m; s->_key_index[p] != 0; p = (p + 1) & m) {
        const sl_snap_key_t *k = &s->keys[s->_key_index[p] - 1];
        if (sl_ct_eq(k->hash, hash, 32))
            return k;
    }
    return NULL;
}

const sl_snap_vkey_t *sl_snapshot_vkey(const sl_snapshot_t *s, sl_str_t id)
{
    size_t m = s->_vkey_slots - 1;
    for (size_t p = id_hash(id.base, id.len) & m; s->_vkey_index[p] != 0; p = (p + 1) & m) {
        const sl_snap_vkey_t *v = &s->vkeys[s->_vkey_index[p] - 1];
        if (strlen(v->id) == id.len && memcmp(v->id, id.base, id.len) == 0)
            return v;
    }
    return NULL;
}

const sl_snap_config_t *sl_snapshot_config(const sl_snapshot_t *s, sl_str_t id)
{
    size_t m = s->_config_slots - 1;
    for (size_t p = id_hash(id.base, id.len) & m; s->_config_index[p] != 0; p = (p + 1) & m) {
        const sl_snap_config_t *c = &s->configs[s->_config_index[p] - 1];
        if (strlen(c->id) == id.len && memcmp(c->id, id.base, id.len) == 0)
            return c;
    }
    return NULL;
}
