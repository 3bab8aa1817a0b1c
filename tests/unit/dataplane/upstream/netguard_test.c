/* Tests for dataplane/upstream/netguard.c: the SSRF guard for custom hosts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "common/err.h"
#include "common/str.h"
#include "dataplane/upstream/netguard.h"

/* Checks one literal address (IPv4 or IPv6) against the guard. */
static int check(const gw_netguard_t *g, const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(443);
    } else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(443);
    } else {
        fail_msg("bad test address %s", ip);
    }
    int r = gw_netguard_check(g, (const struct sockaddr *)&ss);
    assert_true(r == 0 || r == SL_EFORBIDDENHOST);
    return r;
}

static void expect_refused(const gw_netguard_t *g, const char *const *ips, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (check(g, ips[i]) != SL_EFORBIDDENHOST)
            fail_msg("%s was allowed", ips[i]);
}

static void expect_allowed(const gw_netguard_t *g, const char *const *ips, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (check(g, ips[i]) != 0)
            fail_msg("%s was refused", ips[i]);
}

#define REFUSED(g, ...)                                                                            \
    do {                                                                                           \
        static const char *const ips_[] = {__VA_ARGS__};                                           \
        expect_refused((g), ips_, SL_ARRAY_SIZE(ips_));                                            \
    } while (0)
#define ALLOWED(g, ...)                                                                            \
    do {                                                                                           \
        static const char *const ips_[] = {__VA_ARGS__};                                           \
        expect_allowed((g), ips_, SL_ARRAY_SIZE(ips_));                                            \
    } while (0)

/* Every private range trusted, and everything else too. */
static const char trust_all[] = "0.0.0.0/0,::/0,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,"
                                "100.64.0.0/10,fc00::/7,169.254.0.0/16,fe80::/10,127.0.0.0/8,"
                                "::1,fd00:ec2::254,224.0.0.0/4,ff00::/8";

static void metadata_always_refused(void **state)
{
    gw_netguard_t g;
    gw_netguard_init(&g);
    REFUSED(&g, "169.254.169.254", "169.254.170.2", "169.254.0.1", "169.254.255.255",
            "fd00:ec2::254", "fe80::1", "fe80::a9fe:a9fe", "febf:ffff::1",
            "::ffff:169.254.169.254");
    assert_int_equal(gw_netguard_add_list(&g, trust_all), 0);
    REFUSED(&g, "169.254.169.254", "169.254.170.2", "fd00:ec2::254", "fe80::1",
            "::ffff:169.254.169.254");
}

static void unspecified_multicast_broadcast_refused(void **state)
{
    gw_netguard_t g;
    gw_netguard_init(&g);
    REFUSED(&g, "0.0.0.0", "0.1.2.3", "::", "::ffff:0.0.0.0", "224.0.0.1", "239.255.255.250",
            "ff02::1", "ff05::1:3", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "255.255.255.255",
            "240.0.0.1");
    assert_int_equal(gw_netguard_add_list(&g, trust_all), 0);
    REFUSED(&g, "0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255");
}

static void loopback(void **state)
{
    gw_netguard_t g;
    gw_netguard_init(&g);
    assert_int_equal(g.allow_loopback, 1);
    ALLOWED(&g, "127.0.0.1", "127.1.2.3", "127.255.255.254", "::1", "::ffff:127.0.0.1");
    g.allow_loopback = 0;
    REFUSED(&g, "127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1");
    /* Trusting loopback doesn't override allow_loopback = 0. */
    assert_int_equal(gw_netguard_add_list(&g, "127.0.0.0/8,::1"), 0);
    REFUSED(&g, "127.0.0.1", "::1");
}

static void private_refused_unless_trusted(void **state)
{
    gw_netguard_t g;
    gw_netguard_init(&g);
    REFUSED(&g, "10.1.2.3", "10.0.0.0", "10.255.255.255", "172.16.0.1", "172.31.255.255",
            "192.168.1.1", "192.168.0.0", "100.64.0.1", "100.127.255.255", "fc00::1",
            "fd12:3456:789a::1", "fdff::1", "::ffff:10.0.0.1", "::ffff:192.168.1.1");
    /* Just outside the ranges. */
    ALLOWED(&g, "9.255.255.255", "11.0.0.0", "172.15.255.255", "172.32.0.0", "192.167.255.255",
            "192.169.0.0", "100.63.255.255", "100.128.0.0", "fbff::1", "fe00::1");
}

static void trusted_list(void **state)
{
    gw_netguard_t g;
    gw_netguard_init(&g);
    assert_int_equal(gw_netguard_add_list(&g, "10.0.0.0/8, 192.168.1.5 ,fd00::/8"), 0);
    assert_int_equal(g.ntrusted, 3);
    ALLOWED(&g, "10.1.2.3", "10.255.0.1", "192.168.1.5", "fd00::1", "fdab::1", "::ffff:10.0.0.1");
    REFUSED(&g, "192.168.1.6", "192.168.1.4", "fc00::1", "172.16.0.1", "100.64.0.1");
    /* Lists add up. */
    assert_int_equal(gw_netguard_add_list(&g, "172.16.0.0/12"), 0);
    assert_int_equal(g.ntrusted, 4);
    ALLOWED(&g, "172.20.1.1", "10.1.2.3");
}

static void trusted_list_narrow_prefixes(void **state)
{
    gw_netguard_t g;
    gw_netguard_init(&g);
    assert_int_equal(gw_netguard_add_list(&g, "10.1.2.0/23,192.168.7.7/32,fd00:1::/33"), 0);
    ALLOWED(&g, "10.1.2.1", "10.1.3.255", "192.168.7.7", "fd00:1::5", "fd00:1:7fff::1");
    REFUSED(&g, "10.1.4.0", "10.1.1.255", "192.168.7.8", "fd00:1:8000::1", "fd00:2::1");
    /* Host bits in the network part are ignored. */
    gw_netguard_init(&g);
    assert_int_equal(gw_netguard_add_list(&g, "10.9.9.9/8"), 0);
    ALLOWED(&g, "10.0.0.1");
}

static void trusted_list_syntax(void **state)
{
    gw_netguard_t g;
    gw_netguard_init(&g);
    assert_int_equal(gw_netguard_add_list(&g, ""), 0);
    assert_int_equal(gw_netguard_add_list(&g, " , ,"), 0);
    assert_int_equal(gw_netguard_add_list(&g, ","), 0);
    assert_int_equal(g.ntrusted, 0);
    assert_int_equal(gw_netguard_add_list(&g, "  10.0.0.1  "), 0);
    assert_int_equal(g.ntrusted, 1);

    static const char *const bad[] = {
        "10.0.0.0/33",    "::/129",
        "10.0.0.0/-1",    "10.0.0.0/",
        "10.0.0.0/8x",    "10.0.0.256",
        "10.0.0",         "hostname",
        "10.0.0.0/8,bad", "/8",
        "10.0.0.0//8",    "10.0.0.0/8/8",
        "fd00::/8x",      "fd00:::1",
        "1.2.3.4:80",     "[::1]",
        "10.0.0.1\t",     "0123456789012345678901234567890123456789012345678901234567890123456789",
    };
    for (size_t i = 0; i < SL_ARRAY_SIZE(bad); i++) {
        gw_netguard_init(&g);
        if (gw_netguard_add_list(&g, bad[i]) != SL_EINVAL)
            fail_msg("\"%s\" was accepted", bad[i]);
    }
}

static void trusted_list_limit(void **state)
{
    gw_netguard_t g;
    gw_netguard_init(&g);
    char list[GW_NETGUARD_MAX_TRUSTED * 20 + 32];
    size_t n = 0;
    for (int i = 0; i < GW_NETGUARD_MAX_TRUSTED; i++)
        n += (size_t)snprintf(list + n, sizeof(list) - n, "%s10.0.%d.0/24", i ? "," : "", i);
    assert_int_equal(gw_netguard_add_list(&g, list), 0);
    assert_int_equal(g.ntrusted, GW_NETGUARD_MAX_TRUSTED);
    ALLOWED(&g, "10.0.0.1", "10.0.63.1");
    REFUSED(&g, "10.0.64.1");
    /* One more is refused, without writing past the array. */
    assert_int_equal(gw_netguard_add_list(&g, "192.168.0.0/16"), SL_EINVAL);
    assert_int_equal(g.ntrusted, GW_NETGUARD_MAX_TRUSTED);
    REFUSED(&g, "192.168.0.1");
}

static void cidr_parse(void **state)
{
    gw_cidr_t c;
    static const uint8_t v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 0};
    assert_int_equal(gw_cidr_parse("10.0.0.0/8", 10, &c), 0);
    assert_memory_equal(c.addr, v4, 16);
    assert_int_equal(c.prefix, 96 + 8);

    assert_int_equal(gw_cidr_parse("10.0.0.0", 8, &c), 0);
    assert_int_equal(c.prefix, 128);
    assert_int_equal(gw_cidr_parse("0.0.0.0/0", 9, &c), 0);
    assert_int_equal(c.prefix, 96);
    assert_int_equal(gw_cidr_parse("1.2.3.4/32", 10, &c), 0);
    assert_int_equal(c.prefix, 128);

    assert_int_equal(gw_cidr_parse("fd00::/8", 8, &c), 0);
    assert_int_equal(c.prefix, 8);
    assert_int_equal(c.addr[0], 0xfd);
    assert_int_equal(gw_cidr_parse("::1", 3, &c), 0);
    assert_int_equal(c.prefix, 128);
    assert_int_equal(c.addr[15], 1);
    assert_int_equal(gw_cidr_parse("::/0", 4, &c), 0);
    assert_int_equal(c.prefix, 0);

    /* Only len bytes are read: the input need not be NUL-terminated. */
    assert_int_equal(gw_cidr_parse("10.0.0.1garbage", 8, &c), 0);
    assert_int_equal(c.prefix, 128);
    assert_int_equal(gw_cidr_parse("10.0.0.0/8,", 10, &c), 0);

    assert_int_equal(gw_cidr_parse("", 0, &c), SL_EINVAL);
    assert_int_equal(gw_cidr_parse("10.0.0.0/33", 11, &c), SL_EINVAL);
    assert_int_equal(gw_cidr_parse("::/129", 6, &c), SL_EINVAL);
    char longs[200];
    memset(longs, '1', sizeof(longs));
    assert_int_equal(gw_cidr_parse(longs, sizeof(longs), &c), SL_EINVAL);
}

static void mapped_judged_as_ipv4(void **state)
{
    gw_netguard_t g;
    gw_netguard_init(&g);
    REFUSED(&g, "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::ffff:224.0.0.1", "::ffff:0.0.0.0");
    ALLOWED(&g, "::ffff:8.8.8.8", "::ffff:127.0.0.1");
    /* An IPv4 trust entry covers the mapped form, and the other way round. */
    assert_int_equal(gw_netguard_add_list(&g, "10.0.0.0/8,::ffff:192.168.0.0/112"), 0);
    ALLOWED(&g, "::ffff:10.0.0.1", "10.0.0.1", "192.168.3.4", "::ffff:192.168.3.4");
    REFUSED(&g, "::ffff:169.254.169.254");
}

static void public_allowed(void **state)
{
    gw_netguard_t g;
    gw_netguard_init(&g);
    ALLOWED(&g, "8.8.8.8", "1.1.1.1", "104.18.6.192", "2001:4860::8888", "2606:4700::1111",
            "2a00:1450:4001:80b::200e");
    g.allow_loopback = 0;
    ALLOWED(&g, "8.8.8.8", "2001:4860::8888");
}

static void other_families_refused(void **state)
{
    gw_netguard_t g;
    gw_netguard_init(&g);
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", "/tmp/x.sock");
    assert_int_equal(gw_netguard_check(&g, (const struct sockaddr *)&un), SL_EFORBIDDENHOST);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNSPEC;
    assert_int_equal(gw_netguard_check(&g, (const struct sockaddr *)&ss), SL_EFORBIDDENHOST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(metadata_always_refused),
        cmocka_unit_test(unspecified_multicast_broadcast_refused),
        cmocka_unit_test(loopback),
        cmocka_unit_test(private_refused_unless_trusted),
        cmocka_unit_test(trusted_list),
        cmocka_unit_test(trusted_list_narrow_prefixes),
        cmocka_unit_test(trusted_list_syntax),
        cmocka_unit_test(trusted_list_limit),
        cmocka_unit_test(cidr_parse),
        cmocka_unit_test(mapped_judged_as_ipv4),
        cmocka_unit_test(public_allowed),
        cmocka_unit_test(other_families_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
