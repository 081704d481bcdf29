/* Unit tests for addr: IP text round trips, CIDR parsing and matching at the prefix edges,
 * HOST:PORT splitting. Table failures name the row through fail_msg(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "util/addr.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- ip_parse / ip_format ---------------------------------------------------------------- */

struct ip_case {
	const char *in;
	int ok;
	const char *out; /* canonical text when ok */
	int v4;          /* ip_is_v4 */
	uint8_t b[16];   /* expected bytes when ok */
};

#define V4M 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff

static const struct ip_case ip_cases[] = {
	{ "192.0.2.1", 1, "192.0.2.1", 1, { V4M, 192, 0, 2, 1 } },
	{ "0.0.0.0", 1, "0.0.0.0", 1, { V4M, 0, 0, 0, 0 } },
	{ "255.255.255.255", 1, "255.255.255.255", 1, { V4M, 255, 255, 255, 255 } },
	{ "127.0.0.1", 1, "127.0.0.1", 1, { V4M, 127, 0, 0, 1 } },
	{ "2001:db8::1", 1, "2001:db8::1", 0,
	  { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 } },
	{ "2001:DB8:0:0:0:0:0:A", 1, "2001:db8::a", 0,
	  { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a } },
	{ "::", 1, "::", 0, { 0 } },
	{ "::1", 1, "::1", 0, { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 } },
	{ "fe80::1:2", 1, "fe80::1:2", 0, { 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2 } },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0,
	  { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	    0xff } },
	/* IPv4-mapped text is the same address as the dotted quad. */
	{ "::ffff:192.0.2.1", 1, "192.0.2.1", 1, { V4M, 192, 0, 2, 1 } },
	{ "::FFFF:c000:0201", 1, "192.0.2.1", 1, { V4M, 192, 0, 2, 1 } },
	/* IPv4-compatible (deprecated) is not mapped. */
	{ "::192.0.2.1", 1, "::192.0.2.1", 0, { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1 } },
	{ "", 0, NULL, 0, { 0 } },
	{ "192.0.2", 0, NULL, 0, { 0 } },
	{ "192.0.2.256", 0, NULL, 0, { 0 } },
	{ "192.0.2.1.", 0, NULL, 0, { 0 } },
	{ "192.0.2.1 ", 0, NULL, 0, { 0 } },
	{ " 192.0.2.1", 0, NULL, 0, { 0 } },
	{ "192.0.02.1", 0, NULL, 0, { 0 } },
	{ "1.2.3.-4", 0, NULL, 0, { 0 } },
	{ "0x7f.0.0.1", 0, NULL, 0, { 0 } },
	{ "localhost", 0, NULL, 0, { 0 } },
	{ "2001:db8::1::2", 0, NULL, 0, { 0 } },
	{ ":::1", 0, NULL, 0, { 0 } },
	{ "1:2:3:4:5:6:7:8:9", 0, NULL, 0, { 0 } },
	{ "2001:db8::g", 0, NULL, 0, { 0 } },
	{ "12345::1", 0, NULL, 0, { 0 } },
	{ "fe80::1%eth0", 0, NULL, 0, { 0 } },
	{ "[::1]", 0, NULL, 0, { 0 } },
};

static void test_ip_parse_format(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(ip_cases); i++) {
		const struct ip_case *c = &ip_cases[i];
		struct ip_addr ip;
		char text[ADDR_STR_MAX];
		int rc;

		memset(&ip, 0xa5, sizeof(ip));
		rc = ip_parse(c->in, &ip);
		if (rc != (c->ok ? 0 : -1))
			fail_msg("ip_parse(\"%s\") = %d, want %d", c->in, rc, c->ok ? 0 : -1);
		if (!c->ok)
			continue;
		if (memcmp(ip.b, c->b, 16) != 0)
			fail_msg("ip_parse(\"%s\"): wrong bytes", c->in);
		if (ip_is_v4(&ip) != c->v4)
			fail_msg("ip_is_v4(\"%s\") = %d, want %d", c->in, ip_is_v4(&ip), c->v4);
		if (ip_format(&ip, text) != text || strcmp(text, c->out) != 0)
			fail_msg("ip_format(\"%s\") = \"%s\", want \"%s\"", c->in, text, c->out);
		/* The canonical text parses back to the same bytes. */
		struct ip_addr again;
		assert_int_equal(ip_parse(text, &again), 0);
		assert_memory_equal(again.b, ip.b, 16);
	}
}

static void test_ip_format_longest(void **state)
{
	/* The longest text form still fits ADDR_STR_MAX with its NUL. */
	static const char longest[] = "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255";
	struct ip_addr ip;
	char text[ADDR_STR_MAX];

	(void)state;
	assert_int_equal(sizeof(longest), ADDR_STR_MAX);
	assert_int_equal(ip_parse(longest, &ip), 0);
	ip_format(&ip, text);
	assert_string_equal(text, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
}

static void test_ip_from_sockaddr(void **state)
{
	struct sockaddr_storage ss;
	struct ip_addr ip;
	uint16_t port = 0;
	char text[ADDR_STR_MAX];

	(void)state;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(2525);
	assert_int_equal(inet_pton(AF_INET, "198.51.100.7", &sin->sin_addr), 1);
	assert_int_equal(ip_from_sockaddr((struct sockaddr *)&ss, &ip, &port), 0);
	assert_int_equal(port, 2525);
	assert_true(ip_is_v4(&ip));
	assert_string_equal(ip_format(&ip, text), "198.51.100.7");

	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(65535);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::25", &sin6->sin6_addr), 1);
	assert_int_equal(ip_from_sockaddr((struct sockaddr *)&ss, &ip, &port), 0);
	assert_int_equal(port, 65535);
	assert_false(ip_is_v4(&ip));
	assert_string_equal(ip_format(&ip, text), "2001:db8::25");
	/* port_r may be NULL. */
	assert_int_equal(ip_from_sockaddr((struct sockaddr *)&ss, &ip, NULL), 0);

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(ip_from_sockaddr((struct sockaddr *)&ss, &ip, &port), -1);
}

/* ---- cidr_parse -------------------------------------------------------------------------- */

struct cidr_case {
	const char *in;
	int rc;
	uint8_t prefix;  /* when ADDR_OK: stored prefix (IPv4 +96) */
	const char *fmt; /* when ADDR_OK: cidr_format output */
};

static const struct cidr_case cidr_cases[] = {
	{ "192.0.2.1", ADDR_OK, 128, "192.0.2.1/32" },
	{ "192.0.2.1/32", ADDR_OK, 128, "192.0.2.1/32" },
	{ "192.0.2.0/24", ADDR_OK, 120, "192.0.2.0/24" },
	{ "10.0.0.0/8", ADDR_OK, 104, "10.0.0.0/8" },
	{ "128.0.0.0/1", ADDR_OK, 97, "128.0.0.0/1" },
	{ "0.0.0.0/0", ADDR_OK, 96, "0.0.0.0/0" },
	{ "2001:db8::/32", ADDR_OK, 32, "2001:db8::/32" },
	{ "2001:db8::1", ADDR_OK, 128, "2001:db8::1/128" },
	{ "2001:db8::1/128", ADDR_OK, 128, "2001:db8::1/128" },
	{ "::/0", ADDR_OK, 0, "::/0" },
	{ "8000::/1", ADDR_OK, 1, "8000::/1" },
	{ "2001:db8::/127", ADDR_OK, 127, "2001:db8::/127" },
	/* Host bits beyond the prefix. */
	{ "192.0.2.1/24", ADDR_ERR_HOSTBITS, 0, NULL },
	{ "10.0.0.1/8", ADDR_ERR_HOSTBITS, 0, NULL },
	{ "192.0.2.1/31", ADDR_ERR_HOSTBITS, 0, NULL },
	{ "0.0.0.1/0", ADDR_ERR_HOSTBITS, 0, NULL },
	{ "128.0.0.0/0", ADDR_ERR_HOSTBITS, 0, NULL },
	{ "2001:db8::1/64", ADDR_ERR_HOSTBITS, 0, NULL },
	{ "2001:db8::1/127", ADDR_ERR_HOSTBITS, 0, NULL },
	{ "::1/0", ADDR_ERR_HOSTBITS, 0, NULL },
	/* Syntax. */
	{ "192.0.2.0/33", ADDR_ERR_SYNTAX, 0, NULL },
	{ "2001:db8::/129", ADDR_ERR_SYNTAX, 0, NULL },
	{ "1.2.3.4/", ADDR_ERR_SYNTAX, 0, NULL },
	{ "::/", ADDR_ERR_SYNTAX, 0, NULL },
	{ "/24", ADDR_ERR_SYNTAX, 0, NULL },
	{ "", ADDR_ERR_SYNTAX, 0, NULL },
	{ "1.2.3.0/-1", ADDR_ERR_SYNTAX, 0, NULL },
	{ "1.2.3.0/+24", ADDR_ERR_SYNTAX, 0, NULL },
	{ "1.2.3.0/24x", ADDR_ERR_SYNTAX, 0, NULL },
	{ "1.2.3.0/24 ", ADDR_ERR_SYNTAX, 0, NULL },
	{ "1.2.3.0/ 24", ADDR_ERR_SYNTAX, 0, NULL },
	{ "1.2.3.0/24/24", ADDR_ERR_SYNTAX, 0, NULL },
	{ "1.2.3.0/99999999999999999999999", ADDR_ERR_SYNTAX, 0, NULL },
	{ "1.2.3/24", ADDR_ERR_SYNTAX, 0, NULL },
	{ "example.com/24", ADDR_ERR_SYNTAX, 0, NULL },
	{ "2001:db8:::/32", ADDR_ERR_SYNTAX, 0, NULL },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255x/128", ADDR_ERR_SYNTAX, 0, NULL },
};

static const char *rc_name(int rc)
{
	switch (rc) {
	case ADDR_OK:
		return "OK";
	case ADDR_ERR_SYNTAX:
		return "SYNTAX";
	case ADDR_ERR_HOSTBITS:
		return "HOSTBITS";
	}
	return "?";
}

static void test_cidr_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cidr_cases); i++) {
		const struct cidr_case *c = &cidr_cases[i];
		struct cidr cd;
		char text[ADDR_STR_MAX + 4];
		int rc = cidr_parse(c->in, &cd);

		if (rc != c->rc)
			fail_msg("cidr_parse(\"%s\") = %s, want %s", c->in, rc_name(rc), rc_name(c->rc));
		if (rc != ADDR_OK)
			continue;
		if (cd.prefix != c->prefix)
			fail_msg("cidr_parse(\"%s\"): prefix %u, want %u", c->in, cd.prefix, c->prefix);
		cidr_format(&cd, text, sizeof(text));
		if (strcmp(text, c->fmt) != 0)
			fail_msg("cidr_format(\"%s\") = \"%s\", want \"%s\"", c->in, text, c->fmt);
	}
}

/* ---- cidr_contains ----------------------------------------------------------------------- */

struct contains_case {
	const char *cidr, *ip;
	int in;
};

static const struct contains_case contains_cases[] = {
	{ "192.0.2.0/24", "192.0.2.0", 1 },
	{ "192.0.2.0/24", "192.0.2.255", 1 },
	{ "192.0.2.0/24", "192.0.3.0", 0 },
	{ "192.0.2.0/24", "192.0.1.255", 0 },
	{ "192.0.2.0/25", "192.0.2.127", 1 },
	{ "192.0.2.0/25", "192.0.2.128", 0 },
	{ "192.0.2.128/25", "192.0.2.128", 1 },
	{ "192.0.2.128/25", "192.0.2.127", 0 },
	{ "10.0.0.0/8", "10.255.255.255", 1 },
	{ "10.0.0.0/8", "11.0.0.0", 0 },
	{ "10.0.0.0/7", "11.255.255.255", 1 },
	{ "10.0.0.0/7", "12.0.0.0", 0 },
	/* /32: exactly one address. */
	{ "192.0.2.1/32", "192.0.2.1", 1 },
	{ "192.0.2.1/32", "192.0.2.0", 0 },
	{ "192.0.2.1/32", "192.0.2.2", 0 },
	{ "192.0.2.1", "192.0.2.1", 1 },
	{ "192.0.2.1", "192.0.2.3", 0 },
	/* v4 /0: every IPv4 address, no IPv6 one. */
	{ "0.0.0.0/0", "0.0.0.0", 1 },
	{ "0.0.0.0/0", "255.255.255.255", 1 },
	{ "0.0.0.0/0", "::1", 0 },
	{ "0.0.0.0/0", "2001:db8::1", 0 },
	{ "0.0.0.0/0", "::ffff:1.2.3.4", 1 },
	/* /1 halves. */
	{ "128.0.0.0/1", "127.255.255.255", 0 },
	{ "128.0.0.0/1", "128.0.0.0", 1 },
	/* v4 prefix never matches an IPv6 address with the same low bits. */
	{ "192.0.2.0/24", "::192.0.2.1", 0 },
	{ "192.0.2.0/24", "2001:db8::c000:201", 0 },
	/* v6 */
	{ "2001:db8::/32", "2001:db8::1", 1 },
	{ "2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "2001:db8::/32", "2001:db9::", 0 },
	{ "2001:db8::/32", "2001:db7:ffff::", 0 },
	{ "2001:db8::/33", "2001:db8:7fff::1", 1 },
	{ "2001:db8::/33", "2001:db8:8000::", 0 },
	{ "2001:db8::1/128", "2001:db8::1", 1 },
	{ "2001:db8::1/128", "2001:db8::", 0 },
	{ "2001:db8::1/128", "2001:db8::3", 0 },
	{ "2001:db8::/127", "2001:db8::1", 1 },
	{ "2001:db8::/127", "2001:db8::2", 0 },
	{ "::/0", "::", 1 },
	{ "::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
	{ "::/0", "192.0.2.1", 1 }, /* IPv4 is inside ::/0 as ::ffff:0:0/96 */
	{ "::ffff:0:0/96", "192.0.2.1", 1 },
	{ "::ffff:0:0/96", "::1", 0 },
	{ "8000::/1", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 0 },
	{ "8000::/1", "8000::", 1 },
};

static void test_cidr_contains(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(contains_cases); i++) {
		const struct contains_case *c = &contains_cases[i];
		struct cidr cd;
		struct ip_addr ip;

		if (cidr_parse(c->cidr, &cd) != ADDR_OK || ip_parse(c->ip, &ip) != 0)
			fail_msg("row %zu: bad test input %s / %s", i, c->cidr, c->ip);
		if (cidr_contains(&cd, &ip) != c->in)
			fail_msg("cidr_contains(%s, %s) = %d, want %d", c->cidr, c->ip,
				 cidr_contains(&cd, &ip), c->in);
	}
}

/* Exhaustive over the prefix length: a /n contains the address that differs in bit n+1
 * onwards, and not the one that differs in bit n. */
static void test_cidr_contains_every_prefix(void **state)
{
	(void)state;
	for (unsigned n = 0; n <= 128; n++) {
		struct cidr cd;
		struct ip_addr in, out;

		memset(&cd, 0, sizeof(cd));
		cd.prefix = (uint8_t)n;
		memset(&in, 0, sizeof(in));
		memset(&out, 0, sizeof(out));
		if (n < 128) /* flip the first host bit: still inside */
			in.b[n / 8] |= (uint8_t)(0x80u >> (n % 8));
		assert_int_equal(cidr_contains(&cd, &in), 1);
		if (n > 0) { /* flip the last network bit: outside */
			out.b[(n - 1) / 8] |= (uint8_t)(0x80u >> ((n - 1) % 8));
			if (cidr_contains(&cd, &out) != 0)
				fail_msg("/%u contains an address differing in bit %u", n, n - 1);
		}
	}
}

/* ---- hostport_split ---------------------------------------------------------------------- */

struct hp_case {
	const char *in;
	int ok;
	const char *host;
	uint16_t port;
};

static const struct hp_case hp_cases[] = {
	{ "a:1", 1, "a", 1 },
	{ "mx.example:25", 1, "mx.example", 25 },
	{ "127.0.0.1:2525", 1, "127.0.0.1", 2525 },
	{ "0.0.0.0:65535", 1, "0.0.0.0", 65535 },
	{ "[::1]:25", 1, "::1", 25 },
	{ "[::]:25", 1, "::", 25 },
	{ "[2001:db8::1]:587", 1, "2001:db8::1", 587 },
	{ "::1:25", 0, NULL, 0 },
	{ "2001:db8::1:25", 0, NULL, 0 },
	{ "a:0", 0, NULL, 0 },
	{ "a:65536", 0, NULL, 0 },
	{ "a:99999999999999999999999", 0, NULL, 0 },
	{ "a:", 0, NULL, 0 },
	{ ":25", 0, NULL, 0 },
	{ "a", 0, NULL, 0 },
	{ "", 0, NULL, 0 },
	{ "a:25x", 0, NULL, 0 },
	{ "a:25 ", 0, NULL, 0 },
	{ "a:x25", 0, NULL, 0 },
	{ "a:-1", 0, NULL, 0 },
	{ "[::1]", 0, NULL, 0 },
	{ "[::1]25", 0, NULL, 0 },
	{ "[::1]:", 0, NULL, 0 },
	{ "[::1:25", 0, NULL, 0 },
	{ "[]:25", 0, NULL, 0 },
	{ "[::1]:0", 0, NULL, 0 },
	{ "[::1]:65536", 0, NULL, 0 },
};

static void test_hostport_split(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(hp_cases); i++) {
		const struct hp_case *c = &hp_cases[i];
		char host[64];
		uint16_t port = 7;
		int rc;

		strcpy(host, "untouched");
		rc = hostport_split(c->in, host, sizeof(host), &port);
		if (rc != (c->ok ? 0 : -1))
			fail_msg("hostport_split(\"%s\") = %d, want %d", c->in, rc, c->ok ? 0 : -1);
		if (!c->ok) {
			/* Nothing is written on failure. */
			assert_string_equal(host, "untouched");
			assert_int_equal(port, 7);
			continue;
		}
		if (strcmp(host, c->host) != 0 || port != c->port)
			fail_msg("hostport_split(\"%s\") = \"%s\" %u, want \"%s\" %u", c->in, host, port,
				 c->host, c->port);
	}
}

/* The port is digits only: no sign, no white space (the other parsers of mxgate agree). */
static void test_hostport_port_digits_only(void **state)
{
	static const char *const bad[] = { "a:+25", "a: 25", "[::1]:+25", "[::1]: 25" };
	char host[64];
	uint16_t port;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		int rc = hostport_split(bad[i], host, sizeof(host), &port);
		(void)rc;
		if (rc != -1)
			fail_msg("hostport_split(\"%s\") = %d, want -1", bad[i], rc);
	}
}

/* The host must fit hostsz with its NUL: hlen == hostsz - 1 fits, hostsz does not. */
static void test_hostport_host_size(void **state)
{
	char host[8];
	uint16_t port = 0;

	(void)state;
	assert_int_equal(hostport_split("abcdefg:25", host, sizeof(host), &port), 0);
	assert_string_equal(host, "abcdefg");
	assert_int_equal(port, 25);
	assert_int_equal(hostport_split("abcdefgh:25", host, sizeof(host), &port), -1);
	assert_int_equal(hostport_split("[1:2:3:44]:25", host, sizeof(host), &port), -1);
	assert_int_equal(hostport_split("[1:2::4]:25", host, sizeof(host), &port), 0);
	assert_string_equal(host, "1:2::4");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_parse_format),
		cmocka_unit_test(test_ip_format_longest),
		cmocka_unit_test(test_ip_from_sockaddr),
		cmocka_unit_test(test_cidr_parse),
		cmocka_unit_test(test_cidr_contains),
		cmocka_unit_test(test_cidr_contains_every_prefix),
		cmocka_unit_test(test_hostport_split),
		cmocka_unit_test(test_hostport_port_digits_only),
		cmocka_unit_test(test_hostport_host_size),
	};

	return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
