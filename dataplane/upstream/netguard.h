/**
 * Which addresses the gateway may connect to on a caller's behalf (SSRF
 * guard for custom hosts). Checked on the address actually connected to,
 * after DNS resolution, from libcurl's open-socket callback.
 *
 * Always refused: link-local (169.254.0.0/16, fe80::/10, which covers cloud
 * metadata at 169.254.169.254), fd00:ec2::254, unspecified, multicast and
 * broadcast. Refused unless trusted: private ranges (10/8, 172.16/12,
 * 192.168/16, 100.64/10, fc00::/7). Loopback is allowed unless
 * allow_loopback is cleared. IPv4-mapped and NAT64 (64:ff9b::/96,
 * 64:ff9b:1::/48) IPv6 addresses are judged by the IPv4 address inside.
 * Read-only after set-up; any thread.
 */
#ifndef GW_NETGUARD_H
#define GW_NETGUARD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define GW_NETGUARD_MAX_TRUSTED 64

typedef struct {
    uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
    int prefix;       /* over the 128-bit form */
} gw_cidr_t;

typedef struct gw_netguard_s {
    gw_cidr_t trusted[GW_NETGUARD_MAX_TRUSTED];
    size_t ntrusted;
    int allow_loopback;
} gw_netguard_t;

void gw_netguard_init(gw_netguard_t *g);
/** Adds comma-separated CIDRs or addresses ("10.0.0.0/8,192.168.1.5,fd00::/8"). */
int gw_netguard_add_list(gw_netguard_t *g, const char *list);
/** 0 when the address may be used, SL_EFORBIDDENHOST when not. */
int gw_netguard_check(const gw_netguard_t *g, const struct sockaddr *sa);
/** Parses one CIDR or address. */
int gw_cidr_parse(const char *s, size_t len, gw_cidr_t *out);

#endif
