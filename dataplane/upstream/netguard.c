#include "dataplane/upstream/netguard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

static int add_list(gw_netguard_t *g, const char *list);
static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void gw_netguard_init(gw_netguard_t *g)
{
    memset(g, 0, sizeof(*g));
    g->allow_loopback = 1;
}

int gw_cidr_parse(const char *s, size_t len, gw_cidr_t *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof(tmp) || memchr(s, '\0', len) != NULL)
        return SL_EINVAL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *slash = strchr(tmp, '/');
    long prefix = -1;
    if (slash != NULL) {
        char *end;
        *slash = '\0';
        if (slash[1] < '0' || slash[1] > '9')
            return SL_EINVAL;
        prefix = strtol(slash + 1, &end, 10);
        if (*end != '\0' || prefix < 0)
            return SL_EINVAL;
    }
    struct in_addr a4;
    struct in6_addr a6;
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, tmp, &a4) == 1) {
        if (prefix > 32)
            return SL_EINVAL;
        memcpy(out->addr, v4mapped, 12);
        memcpy(out->addr + 12, &a4, 4);
        out->prefix = (prefix < 0 ? 32 : (int)prefix) + 96;
    } else if (inet_pton(AF_INET6, tmp, &a6) == 1) {
        if (prefix > 128)
            return SL_EINVAL;
        memcpy(out->addr, &a6, 16);
        out->prefix = prefix < 0 ? 128 : (int)prefix;
    } else {
        return SL_EINVAL;
    }
    return 0;
}

int gw_netguard_add_list(gw_netguard_t *g, const char *list)
{
    /* All or nothing: a bad entry leaves the guard as it was. */
    size_t before = g->ntrusted;
    int r = add_list(g, list);
    if (r != 0)
        g->ntrusted = before;
    return r;
}

static int add_list(gw_netguard_t *g, const char *list)
{
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n > 0 && (*p == ' ')) {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n > 0) {
            if (g->ntrusted == GW_NETGUARD_MAX_TRUSTED)
                return SL_EINVAL;
            if (gw_cidr_parse(p, n, &g->trusted[g->ntrusted]) != 0)
                return SL_EINVAL;
            g->ntrusted++;
        }
        if (e == NULL)
            break;
        p = e + 1;
    }
    return 0;
}

static int in_prefix(const uint8_t *a, const uint8_t *net, int prefix)
{
    int full = prefix / 8, rem = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rem == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rem));
    return (a[full] & mask) == (net[full] & mask);
}

static int in_v4(const uint8_t *a, uint8_t b0, uint8_t b1, int prefix)
{
    uint8_t net[16] = {0};
    memcpy(net, v4mapped, 12);
    net[12] = b0;
    net[13] = b1;
    return in_prefix(a, net, prefix + 96);
}

int gw_netguard_check(const gw_netguard_t *g, const struct sockaddr *sa)
{
    uint8_t a[16];
    if (sa->sa_family == AF_INET) {
        memcpy(a, v4mapped, 12);
        memcpy(a + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        return SL_EFORBIDDENHOST;
    }
    /* NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48) reaches the IPv4
     * address in the low 32 bits: judge that address. */
    static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (memcmp(a, nat64, 12) == 0 || (memcmp(a, nat64, 4) == 0 && a[4] == 0 && a[5] == 1)) {
        memcpy(a, v4mapped, 12);
    }
    int is_v4 = memcmp(a, v4mapped, 12) == 0;
    if (is_v4) {
        if (in_v4(a, 169, 254, 16) || in_v4(a, 0, 0, 8) || in_v4(a, 224, 0, 4) ||
            in_v4(a, 240, 0, 4))
            return SL_EFORBIDDENHOST; /* link-local/metadata, "this network", multicast, reserved */
        if (in_v4(a, 127, 0, 8))
            return g->allow_loopback ? 0 : SL_EFORBIDDENHOST;
    } else {
        static const uint8_t ec2[16] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0,
                                        0,    0,    0,    0,    0, 0, 0x02, 0x54};
        static const uint8_t any[16] = {0};
        static const uint8_t loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        if (memcmp(a, ec2, 16) == 0 || memcmp(a, any, 16) == 0 || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||
            a[0] == 0xff)
            return SL_EFORBIDDENHOST;
        if (memcmp(a, loop, 16) == 0)
            return g->allow_loopback ? 0 : SL_EFORBIDDENHOST;
    }
    int private_range;
    if (is_v4)
        private_range = in_v4(a, 10, 0, 8) || in_v4(a, 172, 16, 12) || in_v4(a, 192, 168, 16) ||
                        in_v4(a, 100, 64, 10);
    else
        private_range = (a[0] & 0xfe) == 0xfc;
    if (!private_range)
        return 0;
    for (size_t i = 0; i < g->ntrusted; i++)
        if (in_prefix(a, g->trusted[i].addr, g->trusted[i].prefix))
            return 0;
    return SL_EFORBIDDENHOST;
}
