/* addr.c: which addresses a webhook must not reach (SSRF): loopback, private, link-local,
 * CGNAT, unspecified, multicast, reserved, and their IPv6 counterparts and IPv4 embeddings. */
#include "sb_webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static bool
sb_wh_v4_private(uint32_t a) /* host order */
{
	return (a >> 24) == 0 ||                 /* 0.0.0.0/8 "this network" */
	       (a >> 24) == 10 ||                /* 10/8 */
	       (a >> 24) == 127 ||               /* loopback */
	       (a & 0xffc00000) == 0x64400000 || /* 100.64/10 CGNAT */
	       (a & 0xffff0000) == 0xa9fe0000 || /* 169.254/16 link-local (cloud metadata) */
	       (a & 0xfff00000) == 0xac100000 || /* 172.16/12 */
	       (a & 0xffffff00) == 0xc0000000 || /* 192.0.0/24 protocol assignments */
	       (a & 0xffff0000) == 0xc0a80000 || /* 192.168/16 */
	       (a & 0xfffe0000) == 0xc6120000 || /* 198.18/15 benchmarking */
	       (a >> 28) >= 0xe;                 /* 224/4 multicast, 240/4 reserved, broadcast */
}

bool
sb_webhook_addr_private(const struct sockaddr *sa)
{
	if (sa == NULL)
		return true;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		return sb_wh_v4_private(ntohl(in->sin_addr.s_addr));
	}
	if (sa->sa_family != AF_INET6)
		return true;
	const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
	static const uint8_t zero[16];
	if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1))
		return true; /* :: and ::1 */
	/* ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), 64:ff9b::a.b.c.d (NAT64) */
	bool mapped = memcmp(b, zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff;
	bool compat = memcmp(b, zero, 12) == 0;
	bool nat64 = b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
	             memcmp(b + 4, zero, 8) == 0;
	if (mapped || compat || nat64) {
		uint32_t v4 =
		    (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
		return sb_wh_v4_private(v4);
	}
	return (b[0] & 0xfe) == 0xfc ||                   /* fc00::/7 unique local */
	       (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || /* fe80::/10 link-local */
	       (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) || /* fec0::/10 site-local (deprecated) */
	       b[0] == 0xff ||                            /* multicast */
	       (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8); /* documentation */
}
