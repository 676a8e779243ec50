/* webhook/addr.c: which target addresses a production server refuses to connect to: loopback,
 * unspecified, private, shared (CGNAT), link-local, multicast, broadcast, cloud metadata, and the
 * IPv6 forms that embed such an IPv4 address. */
#include "webhook/internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* ---- target address check ---- */

static int v4_refused(uint32_t a)
{
    uint8_t b0 = (uint8_t)(a >> 24), b1 = (uint8_t)(a >> 16);
    if (b0 == 0) return 1;                        /* 0/8: unspecified, "this network" */
    if (b0 == 10 || b0 == 127) return 1;          /* private, loopback */
    if (b0 == 169 && b1 == 254) return 1;         /* link-local, 169.254.169.254 metadata */
    if (b0 == 172 && (b1 & 0xf0) == 16) return 1; /* 172.16/12 */
    if (b0 == 192 && b1 == 168) return 1;         /* 192.168/16 */
    if (b0 == 100 && (b1 & 0xc0) == 64) return 1; /* 100.64/10 CGNAT, 100.100.100.200 */
    if (b0 == 192 && b1 == 0 && (uint8_t)(a >> 8) == 0) return 1; /* 192.0.0/24 IETF */
    if (b0 >= 224) return 1; /* multicast, reserved, 255.255.255.255 broadcast */
    return 0;
}

static int v6_refused(const unsigned char *a)
{
    static const unsigned char zero[16];
    if (memcmp(a, zero, 16) == 0) return 1;               /* :: */
    if (memcmp(a, zero, 15) == 0 && a[15] == 1) return 1; /* ::1 */
    /* IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d: judge the IPv4 address */
    if ((memcmp(a, zero, 10) == 0 && a[10] == 0xff && a[11] == 0xff) || memcmp(a, zero, 12) == 0)
        return v4_refused((uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 | (uint32_t)a[14] << 8 |
                          a[15]);
    /* NAT64 64:ff9b::/96 carries an IPv4 address too */
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    if (memcmp(a, nat64, 12) == 0)
        return v4_refused((uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 | (uint32_t)a[14] << 8 |
                          a[15]);
    /* 6to4 2002::/16 embeds one in bits 16..47 */
    if (a[0] == 0x20 && a[1] == 0x02)
        return v4_refused((uint32_t)a[2] << 24 | (uint32_t)a[3] << 16 | (uint32_t)a[4] << 8 | a[5]);
    if ((a[0] & 0xfe) == 0xfc) return 1;                 /* fc00::/7 (fd00:ec2::254 included) */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return 1; /* fe80::/10 link-local */
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return 1; /* fec0::/10 old site-local */
    if (a[0] == 0xff) return 1;                          /* multicast */
    return 0;
}

int addr_refused(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return v4_refused(ntohl(((const struct sockaddr_in *)(const void *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6)
        return v6_refused(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
    return 1;
}

int webhook_literal_host_refused(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    char buf[64];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof buf) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    if (inet_pton(AF_INET, host, &a4) == 1) return v4_refused(ntohl(a4.s_addr));
    if (inet_pton(AF_INET6, host, &a6) == 1) return v6_refused(a6.s6_addr);
    return 0;
}
