/* addr: see addr.h. */
#include "util/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int ip_is_v4(const struct ip_addr *ip)
{
	return memcmp(ip->b, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0;
}

int ip_parse(const char *s, struct ip_addr *ip_r)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memcpy(ip_r->b, v4_mapped_prefix, 12);
		memcpy(ip_r->b + 12, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, ip_r->b) == 1)
		return 0;
	return -1;
}

char *ip_format(const struct ip_addr *ip, char out[ADDR_STR_MAX])
{
	if (ip_is_v4(ip))
		inet_ntop(AF_INET, ip->b + 12, out, ADDR_STR_MAX);
	else
		inet_ntop(AF_INET6, ip->b, out, ADDR_STR_MAX);
	return out;
}

int ip_from_sockaddr(const struct sockaddr *sa, struct ip_addr *ip_r, uint16_t *port_r)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		memcpy(ip_r->b, v4_mapped_prefix, 12);
		memcpy(ip_r->b + 12, &sin->sin_addr, 4);
		if (port_r)
			*port_r = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		memcpy(ip_r->b, &sin6->sin6_addr, 16);
		if (port_r)
			*port_r = ntohs(sin6->sin6_port);
		return 0;
	}
	return -1;
}

static int prefix_has_host_bits(const struct ip_addr *ip, unsigned prefix)
{
	for (unsigned bit = prefix; bit < 128; bit++)
		if (ip->b[bit / 8] & (0x80u >> (bit % 8)))
			return 1;
	return 0;
}

int cidr_parse(const char *s, struct cidr *c_r)
{
	char buf[ADDR_STR_MAX + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long len;
	char *end;

	if (alen == 0 || alen >= ADDR_STR_MAX)
		return ADDR_ERR_SYNTAX;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (ip_parse(buf, &c_r->net) < 0)
		return ADDR_ERR_SYNTAX;
	/* "::ffff:1.2.3.4" written as IPv6 is still an IPv4 host for matching purposes. */
	unsigned base = ip_is_v4(&c_r->net) && strchr(buf, ':') == NULL ? 96 : 0;
	unsigned max = base ? 32 : 128;
	if (!slash) {
		c_r->prefix = 128;
		return ADDR_OK;
	}
	if (slash[1] < '0' || slash[1] > '9')
		return ADDR_ERR_SYNTAX;
	errno = 0;
	len = strtoul(slash + 1, &end, 10);
	if (errno || *end != '\0' || len > max)
		return ADDR_ERR_SYNTAX;
	c_r->prefix = (uint8_t)(base + len);
	if (prefix_has_host_bits(&c_r->net, c_r->prefix))
		return ADDR_ERR_HOSTBITS;
	return ADDR_OK;
}

int cidr_contains(const struct cidr *c, const struct ip_addr *ip)
{
	unsigned full = c->prefix / 8, rest = c->prefix % 8;

	if (memcmp(c->net.b, ip->b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	uint8_t mask = (uint8_t)(0xff00u >> rest);
	return (c->net.b[full] & mask) == (ip->b[full] & mask);
}

char *cidr_format(const struct cidr *c, char *out, size_t outsz)
{
	char a[ADDR_STR_MAX];
	int v4 = ip_is_v4(&c->net) && c->prefix >= 96;

	ip_format(&c->net, a);
	snprintf(out, outsz, "%s/%u", a, v4 ? c->prefix - 96u : c->prefix);
	return out;
}

int hostport_split(const char *s, char *host, size_t hostsz, uint16_t *port_r)
{
	const char *colon;
	const char *h = s;
	size_t hlen;
	char *end;
	unsigned long port;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -1;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -1; /* bare IPv6 needs brackets */
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= hostsz || colon[1] == '\0')
		return -1;
	if (colon[1] < '0' || colon[1] > '9') /* strtoul would take a sign or spaces */
		return -1;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end != '\0' || port == 0 || port > 65535)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port_r = (uint16_t)port;
	return 0;
}
