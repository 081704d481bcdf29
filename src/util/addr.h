/* addr: IP addresses and CIDR prefixes, independent of sockets where possible.
 *
 * An IPv4 address is kept as an IPv4-mapped IPv6 address (::ffff:a.b.c.d) so that one 128-bit
 * comparison serves both families; prefix lengths of IPv4 CIDRs are stored +96. */
#ifndef MXG_ADDR_H
#define MXG_ADDR_H

#include <stdint.h>
#include <sys/socket.h>

#define ADDR_STR_MAX 46 /* INET6_ADDRSTRLEN */

struct ip_addr {
	uint8_t b[16]; /* network order; IPv4 is ::ffff:a.b.c.d */
};

struct cidr {
	struct ip_addr net;
	uint8_t prefix; /* 0..128, IPv4 prefixes are +96 */
};

int ip_is_v4(const struct ip_addr *ip);
/* Parses a textual IPv4 or IPv6 address; returns 0 on success, -1 on syntax error. */
int ip_parse(const char *s, struct ip_addr *ip_r);
/* Writes the address as text (dotted quad for IPv4) into out; returns out. */
char *ip_format(const struct ip_addr *ip, char out[ADDR_STR_MAX]);
/* Converts a socket address (AF_INET or AF_INET6); returns -1 for other families. */
int ip_from_sockaddr(const struct sockaddr *sa, struct ip_addr *ip_r, uint16_t *port_r);

/* Parses "ADDR" (a host prefix) or "ADDR/LEN". Host bits set beyond the prefix are an error
 * (ADDR_ERR_HOSTBITS) so that "10.0.0.1/8" cannot be mistaken for a single address. */
enum { ADDR_OK = 0, ADDR_ERR_SYNTAX = -1, ADDR_ERR_HOSTBITS = -2 };
int cidr_parse(const char *s, struct cidr *c_r);
int cidr_contains(const struct cidr *c, const struct ip_addr *ip);
/* Formats as "a.b.c.d/n" or "x::/n"; returns out (size ADDR_STR_MAX + 4). */
char *cidr_format(const struct cidr *c, char *out, size_t outsz);

/* Splits "HOST:PORT" or "[V6]:PORT" into host (without brackets) and port. Returns 0 or -1. */
int hostport_split(const char *s, char *host, size_t hostsz, uint16_t *port_r);

#endif
