/*
 * Fuzz target for the SSRF guard (dataplane/upstream/netguard.c): CIDR and
 * trusted-list parsing of arbitrary strings, and the invariants of the check
 * whatever the trusted list: metadata, link-local, unspecified and multicast
 * addresses are always refused, public ones always allowed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/err.h"
#include "dataplane/upstream/netguard.h"
#include "tests/fuzz/fuzz.h"


static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static int check6(const gw_netguard_t *g, const uint8_t addr[16])
{
    struct sockaddr_in6 s6;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    memcpy(&s6.sin6_addr, addr, 16);
    int r = gw_netguard_check(g, (const struct sockaddr *)&s6);
    CHECK(r == 0 || r == SL_EFORBIDDENHOST);
    if (memcmp(addr, v4mapped, 12) == 0) {
        /* A mapped address is judged exactly like the IPv4 one. */
        struct sockaddr_in s4;
        memset(&s4, 0, sizeof(s4));
        s4.sin_family = AF_INET;
        memcpy(&s4.sin_addr, addr + 12, 4);
        CHECK(gw_netguard_check(g, (const struct sockaddr *)&s4) == r);
    }
    return r;
}

static int check_str(const gw_netguard_t *g, const char *ip)
{
    uint8_t a[16];
    struct in_addr a4;
    if (inet_pton(AF_INET, ip, &a4) == 1) {
        memcpy(a, v4mapped, 12);
        memcpy(a + 12, &a4, 4);
    } else {
        CHECK(inet_pton(AF_INET6, ip, a) == 1);
    }
    return check6(g, a);
}

static void invariants(const gw_netguard_t *g)
{
    static const char *const never[] = {"169.254.169.254", "169.254.170.2",
                                        "fd00:ec2::254",   "fe80::1",
                                        "0.0.0.0",         "::",
                                        "224.0.0.1",       "ff02::1",
                                        "255.255.255.255", "::ffff:169.254.169.254"};
    static const char *const always[] = {"8.8.8.8", "1.1.1.1", "2001:4860::8888"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        CHECK(check_str(g, never[i]) == SL_EFORBIDDENHOST);
    for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
        CHECK(check_str(g, always[i]) == 0);
    CHECK(check_str(g, "127.0.0.1") == (g->allow_loopback ? 0 : SL_EFORBIDDENHOST));
    CHECK(check_str(g, "::1") == (g->allow_loopback ? 0 : SL_EFORBIDDENHOST));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gw_cidr_t c;
    /* An exact-size copy, so that reading past len is caught. */
    char *s = sl_xmalloc(size);
    if (size > 0)
        memcpy(s, data, size);
    if (gw_cidr_parse(s, size, &c) == 0) {
        CHECK(c.prefix >= 0 && c.prefix <= 128);
        /* Printed back, the network parses to itself. */
        char text[INET6_ADDRSTRLEN + 8];
        CHECK(inet_ntop(AF_INET6, c.addr, text, INET6_ADDRSTRLEN) != NULL);
        size_t tl = strlen(text);
        tl += (size_t)snprintf(text + tl, sizeof(text) - tl, "/%d", c.prefix);
        gw_cidr_t c2;
        CHECK(gw_cidr_parse(text, tl, &c2) == 0);
        CHECK(memcmp(c.addr, c2.addr, 16) == 0 && c.prefix == c2.prefix);
    }
    sl_free(s);

    /* The whole input as a trusted list (up to its first NUL). */
    char *list = sl_xmalloc(size + 1);
    if (size > 0)
        memcpy(list, data, size);
    list[size] = '\0';
    gw_netguard_t g;
    gw_netguard_init(&g);
    int r = gw_netguard_add_list(&g, list);
    CHECK(r == 0 || r == SL_EINVAL);
    CHECK(g.ntrusted <= GW_NETGUARD_MAX_TRUSTED);
    for (size_t i = 0; i < g.ntrusted; i++)
        CHECK(g.trusted[i].prefix >= 0 && g.trusted[i].prefix <= 128);
    sl_free(list);

    invariants(&g);
    g.allow_loopback = 0;
    invariants(&g);
    g.allow_loopback = 1;

    /* Each trusted network and raw 16-byte windows of the input as addresses. */
    for (size_t i = 0; i < g.ntrusted; i++)
        check6(&g, g.trusted[i].addr);
    for (size_t off = 0; off + 16 <= size && off < 64; off += 16)
        check6(&g, data + off);
    return 0;
}
