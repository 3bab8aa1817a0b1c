/* common/snapshot.c: a payload written by the control plane's writer reads
 * back whole; lookups by hash and id; malformed payloads refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/crypto.h"
#include "common/err.h"
#include "common/snapshot.h"

static const uint8_t zero[32];

static void roundtrip(void **state)
{
    const char *models[] = {"gpt-4o", "gpt-4o-mini"};
    const char *scopes[] = {"chat"};
    const char *on[] = {"resource_name"}, *ov[] = {"res1"};
    sl_snap_writer_t *w = sl_snap_writer_new(300, 2, 1, 1);
    for (int i = 0; i < 300; i++) {
        char id[32];
        snprintf(id, sizeof(id), "key_%d", i);
        sl_snap_key_t k = {.id = id, .workspace = i % 2 ? "ws_a" : "ws_b", .enabled = 1,
                           .expires_ms = i == 7 ? 1234 : 0, .models = models, .nmodels = i == 5 ? 2 : 0,
                           .scopes = scopes, .nscopes = i == 6, .default_config = i == 8 ? "cfg_1" : NULL,
                           .rpm = i == 9 ? 60 : -1, .tpm = -1, .budget_limit = i == 9 ? 12.5 : -1,
                           .budget_period = i == 9 ? "month" : NULL};
        sl_sha256(id, strlen(id), k.hash);
        sl_snap_writer_key(w, &k);
    }
    uint8_t sealed[40];
    memset(sealed, 7, sizeof(sealed));
    sl_snap_vkey_t v = {.id = "vk_1", .workspace = "ws_a", .provider = "azure-openai",
                        .opt_names = on, .opt_values = ov, .nopts = 1, .sealed = sealed,
                        .sealed_len = sizeof(sealed), .models = models, .nmodels = 1, .enabled = 1};
    sl_snap_writer_vkey(w, &v);
    v.id = "vk_2";
    v.nopts = 0;
    sl_snap_writer_vkey(w, &v);
    sl_snap_config_t c = {"cfg_1", "ws_a", 3, "{\"provider\":\"openai\"}", 21};
    sl_snap_writer_config(w, &c);
    sl_snap_price_t p = {"openai", "gpt-4o", 2.5, 10, -1};
    sl_snap_writer_price(w, &p);
    const void *data;
    size_t n;
    assert_int_equal(sl_snap_writer_finish(w, &data, &n), 0);

    sl_snapshot_t *s = NULL;
    const char *why = NULL;
    assert_int_equal(sl_snapshot_decode(data, n, 42, zero, &s, &why), 0);
    assert_int_equal(s->version, 42);
    assert_int_equal(s->nkeys, 300);
    for (int i = 0; i < 300; i++) {
        char id[32];
        uint8_t h[32];
        snprintf(id, sizeof(id), "key_%d", i);
        sl_sha256(id, strlen(id), h);
        const sl_snap_key_t *k = sl_snapshot_key(s, h);
        assert_non_null(k);
        assert_string_equal(k->id, id);
    }
    uint8_t h[32];
    sl_sha256("key_9", 5, h);
    const sl_snap_key_t *k9 = sl_snapshot_key(s, h);
    assert_int_equal(k9->rpm, 60);
    assert_int_equal(k9->tpm, -1);
    assert_true(k9->budget_limit == 12.5);
    assert_string_equal(k9->budget_period, "month");
    sl_sha256("nope", 4, h);
    assert_null(sl_snapshot_key(s, h));
    const sl_snap_vkey_t *vk = sl_snapshot_vkey(s, sl_str_c("vk_1"));
    assert_non_null(vk);
    assert_string_equal(vk->provider, "azure-openai");
    assert_int_equal(vk->nopts, 1);
    assert_string_equal(vk->opt_values[0], "res1");
    assert_memory_equal(vk->sealed, sealed, sizeof(sealed));
    assert_null(sl_snapshot_vkey(s, sl_str_c("vk_3")));
    const sl_snap_config_t *cf = sl_snapshot_config(s, sl_str_c("cfg_1"));
    assert_non_null(cf);
    assert_int_equal(cf->version, 3);
    assert_string_equal(cf->body, "{\"provider\":\"openai\"}");
    assert_int_equal(s->nprices, 1);
    assert_true(s->prices[0].cached < 0);
    sl_snapshot_free(s);

    /* every truncation is refused, never read past */
    for (size_t cut = 0; cut < n; cut += 7) {
        s = NULL;
        assert_int_equal(sl_snapshot_decode(data, cut, 1, zero, &s, &why), SL_EINVAL);
        assert_null(s);
        assert_non_null(why);
    }
    sl_snap_writer_free(w);
}

static void counts_must_match(void **state)
{
    sl_snap_writer_t *w = sl_snap_writer_new(1, 0, 0, 0);
    const void *data;
    size_t n;
    assert_int_equal(sl_snap_writer_finish(w, &data, &n), SL_EINVAL);
    sl_snap_writer_free(w);
}

static void malformed(void **state)
{
    sl_snapshot_t *s = NULL;
    const char *why = NULL;
    /* {"keys": [1]} : a key that is not an array */
    const uint8_t bad1[] = {0x81, 0xa4, 'k', 'e', 'y', 's', 0x91, 0x01};
    assert_int_equal(sl_snapshot_decode(bad1, sizeof(bad1), 1, zero, &s, &why), SL_EINVAL);
    /* [] : not a map */
    const uint8_t bad2[] = {0x90};
    assert_int_equal(sl_snapshot_decode(bad2, sizeof(bad2), 1, zero, &s, &why), SL_EINVAL);
    /* {"later": 1} : unknown sections are ignored */
    const uint8_t ok[] = {0x81, 0xa5, 'l', 'a', 't', 'e', 'r', 0x01};
    assert_int_equal(sl_snapshot_decode(ok, sizeof(ok), 1, zero, &s, &why), 0);
    assert_int_equal(s->nkeys, 0);
    uint8_t h[32] = {0};
    assert_null(sl_snapshot_key(s, h));
    sl_snapshot_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip),
        cmocka_unit_test(counts_must_match),
        cmocka_unit_test(malformed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
