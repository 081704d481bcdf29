/* Unit tests for proxy_proto: tables of valid, truncated and malformed PROXY v1 and v2 headers.
 *
 * Every input is copied into a heap buffer of exactly its length, so that AddressSanitizer
 * catches any read beyond len. Table failures name the row through fail_msg(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "event/proxy_proto.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define TRAILER "EHLO client.example\r\n"
#define V2_HDR_LEN 16
#define V2_BUF_MAX (PROXY_V2_MAX + 64)

static const uint8_t v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

static const char *status_name(enum proxy_status st)
{
	switch (st) {
	case PROXY_NEED_MORE:
		return "NEED_MORE";
	case PROXY_OK:
		return "OK";
	case PROXY_ERROR:
		return "ERROR";
	}
	return "?";
}

/* Parses a private copy of exactly n bytes so that an over-read is a sanitizer error. */
static enum proxy_status parse_exact(const void *bytes, size_t n, struct proxy_result *res,
				     const char **why)
{
	uint8_t *copy = malloc(n ? n : 1);
	enum proxy_status st;

	assert_non_null(copy);
	if (n)
		memcpy(copy, bytes, n);
	st = proxy_parse(copy, n, res, why);
	free(copy);
	return st;
}

static void expect_status(const char *name, size_t n, enum proxy_status got,
			  enum proxy_status want)
{
	if (got != want)
		fail_msg("%s (%zu bytes): got %s, want %s", name, n, status_name(got),
			 status_name(want));
}

static void expect_addr(const char *name, const char *which, const struct ip_addr *ip,
			const char *want)
{
	char text[ADDR_STR_MAX];

	ip_format(ip, text);
	if (strcmp(text, want) != 0)
		fail_msg("%s: %s is %s, want %s", name, which, text, want);
}

static void expect_num(const char *name, const char *which, size_t got, size_t want)
{
	if (got != want)
		fail_msg("%s: %s is %zu, want %zu", name, which, got, want);
}

/* Checks a PROXY_OK result; src == NULL means a local result with no address. */
struct want {
	size_t header_len;
	int version;
	const char *src, *dst;
	uint16_t src_port, dst_port;
};

static void expect_result(const char *name, const struct proxy_result *res,
			  const struct want *w)
{
	expect_num(name, "header_len", res->header_len, w->header_len);
	expect_num(name, "version", (size_t)res->version, (size_t)w->version);
	expect_num(name, "local", (size_t)res->local, w->src == NULL);
	if (w->src == NULL)
		return;
	expect_addr(name, "src", &res->src, w->src);
	expect_addr(name, "dst", &res->dst, w->dst);
	expect_num(name, "src_port", res->src_port, w->src_port);
	expect_num(name, "dst_port", res->dst_port, w->dst_port);
	/* An IPv4 text must come out IPv4-mapped; an IPv6 text (other than ::ffff:x) must not. */
	expect_num(name, "src is v4", (size_t)ip_is_v4(&res->src),
		   strchr(w->src, ':') == NULL);
}

/* ---- v1 ---------------------------------------------------------------------------------- */

#define V6_MAX "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
#define V6_LONGEST "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"

struct v1_ok_case {
	const char *name;
	const char *header; /* a TRAILER follows it in the input and must not be consumed */
	const char *src, *dst; /* NULL for UNKNOWN */
	uint16_t src_port, dst_port;
};

static const struct v1_ok_case v1_ok_cases[] = {
	{ "tcp4", "PROXY TCP4 192.0.2.1 198.51.100.2 12345 25\r\n", "192.0.2.1",
	  "198.51.100.2", 12345, 25 },
	{ "tcp4 port bounds", "PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", "0.0.0.0",
	  "255.255.255.255", 0, 65535 },
	{ "tcp6", "PROXY TCP6 2001:db8::1 2001:db8::2 12345 25\r\n", "2001:db8::1", "2001:db8::2",
	  12345, 25 },
	{ "tcp6 upper case hex", "PROXY TCP6 2001:DB8::A ::1 1 2\r\n", "2001:db8::a", "::1", 1,
	  2 },
	{ "tcp6 all zeros", "PROXY TCP6 :: ::1 65535 0\r\n", "::", "::1", 65535, 0 },
	{ "tcp6 longest canonical", "PROXY TCP6 " V6_MAX " " V6_MAX " 65535 65535\r\n", V6_MAX,
	  V6_MAX, 65535, 65535 },
	/* Valid IPv6 text; it denotes an IPv4 client, so it comes out IPv4-mapped. */
	{ "tcp6 v4-mapped text", "PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 2525 25\r\n",
	  "192.0.2.1", "2001:db8::2", 2525, 25 },
	{ "unknown bare", "PROXY UNKNOWN\r\n", NULL, NULL, 0, 0 },
	{ "unknown with fields", "PROXY UNKNOWN 192.0.2.1 198.51.100.2 12345 25\r\n", NULL, NULL, 0,
	  0 },
	/* The spec's worst case: exactly PROXY_V1_MAX bytes. */
	{ "unknown 107 bytes", "PROXY UNKNOWN " V6_MAX " " V6_MAX " 65535 65535\r\n", NULL, NULL,
	  0, 0 },
};

static void test_v1_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(v1_ok_cases); i++) {
		const struct v1_ok_case *c = &v1_ok_cases[i];
		struct want w = { strlen(c->header), 1, c->src, c->dst, c->src_port, c->dst_port };
		char input[256];
		struct proxy_result res;
		const char *why = NULL;

		snprintf(input, sizeof(input), "%s%s", c->header, TRAILER);
		expect_status(c->name, strlen(input), parse_exact(input, strlen(input), &res, &why),
			      PROXY_OK);
		expect_result(c->name, &res, &w);
		/* Without the trailer the header alone is also complete. */
		expect_status(c->name, w.header_len, parse_exact(c->header, w.header_len, &res, &why),
			      PROXY_OK);
		expect_num(c->name, "header_len alone", res.header_len, w.header_len);
	}
	assert_int_equal(strlen(v1_ok_cases[ARRAY_LEN(v1_ok_cases) - 1].header), PROXY_V1_MAX);
}

/* Every proper prefix of every valid header asks for more, whole or split anywhere. */
static void test_v1_every_prefix_needs_more(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(v1_ok_cases); i++) {
		const struct v1_ok_case *c = &v1_ok_cases[i];
		size_t full = strlen(c->header);
		struct proxy_result res;

		for (size_t n = 0; n < full; n++)
			expect_status(c->name, n, parse_exact(c->header, n, &res, NULL),
				      PROXY_NEED_MORE);
		expect_status(c->name, full, parse_exact(c->header, full, &res, NULL), PROXY_OK);
	}
}

struct v1_bad_case {
	const char *name;
	const char *input;
	const char *why;
};

static const struct v1_bad_case v1_bad_cases[] = {
	/* Not a PROXY header at all: refused at the first differing byte. */
	{ "smtp", "EHLO x\r\n", "bad v1 signature" },
	{ "http", "GET /", "bad v1 signature" },
	{ "smtp first byte", "E", "bad v1 signature" },
	{ "lower case proxy", "proxy TCP4 192.0.2.1 198.51.100.2 1 2\r\n", "bad v1 signature" },
	{ "proxy without space", "PROXYTCP4", "bad v1 signature" },
	{ "space before PROXY", " PROXY", "bad v1 signature" },
	/* Protocol word. */
	{ "double space after PROXY", "PROXY  TCP4 192.0.2.1 198.51.100.2 1 2\r\n",
	  "bad v1 protocol" },
	{ "lower case tcp4", "PROXY tcp4 192.0.2.1 198.51.100.2 1 2\r\n", "bad v1 protocol" },
	{ "TCP5", "PROXY TCP5 ", "bad v1 protocol" },
	{ "UDP4", "PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n", "bad v1 protocol" },
	{ "TCP4 without fields", "PROXY TCP4\r\n", "bad v1 protocol" },
	{ "UNKNOWNX", "PROXY UNKNOWNX\r\n", "bad v1 protocol" },
	/* Field layout. */
	{ "double space before src", "PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",
	  "empty v1 field" },
	{ "double space between addresses", "PROXY TCP4 192.0.2.1  198.51.100.2 1 2\r\n",
	  "empty v1 field" },
	{ "double space between ports", "PROXY TCP4 192.0.2.1 198.51.100.2 1  2\r\n",
	  "empty v1 field" },
	{ "missing dport", "PROXY TCP4 192.0.2.1 198.51.100.2 12345\r\n",
	  "bad v1 field separator" },
	{ "missing ports", "PROXY TCP4 192.0.2.1 198.51.100.2\r\n", "bad v1 field separator" },
	{ "space before CRLF", "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 \r\n",
	  "bad v1 field separator" },
	{ "extra field", "PROXY TCP4 192.0.2.1 198.51.100.2 1 2 3\r\n", "bad v1 field separator" },
	{ "tab separator", "PROXY TCP4 192.0.2.1\t198.51.100.2 1 2\r\n", "bad address" },
	/* Ports. */
	{ "port 65536", "PROXY TCP4 192.0.2.1 198.51.100.2 65536 25\r\n", "bad port" },
	{ "port 99999 early", "PROXY TCP4 192.0.2.1 198.51.100.2 99999", "bad port" },
	{ "port six digits", "PROXY TCP4 192.0.2.1 198.51.100.2 1 100000\r\n", "bad port" },
	{ "port leading zero", "PROXY TCP4 192.0.2.1 198.51.100.2 080 25\r\n", "bad port" },
	{ "port 00", "PROXY TCP4 192.0.2.1 198.51.100.2 1 00\r\n", "bad port" },
	{ "port plus sign", "PROXY TCP4 192.0.2.1 198.51.100.2 +80 25\r\n", "bad port" },
	{ "port minus sign", "PROXY TCP4 192.0.2.1 198.51.100.2 -1 25\r\n", "bad port" },
	{ "port hex", "PROXY TCP4 192.0.2.1 198.51.100.2 0x19 25\r\n", "bad port" },
	/* Line ends. */
	{ "bare LF", "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n", "bare LF in v1 line" },
	{ "bare LF after address", "PROXY TCP4 192.0.2.1\n", "bare LF in v1 line" },
	{ "unknown bare LF", "PROXY UNKNOWN\n", "bare LF in v1 line" },
	{ "unknown LF in rest", "PROXY UNKNOWN abc\ndef\r\n", "bare LF in v1 line" },
	{ "CR without LF", "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\rX", "CR without LF in v1 line" },
	{ "unknown CR without LF", "PROXY UNKNOWN\r\r\n", "CR without LF in v1 line" },
	{ "tcp6 longest text over 107", "PROXY TCP6 " V6_LONGEST " " V6_LONGEST " 65535 65535\r\n",
	  "v1 line too long" },
	/* Addresses. */
	{ "tcp4 with ipv6", "PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n", "bad address" },
	{ "tcp4 with ::1", "PROXY TCP4 ::1 ::1 1 2\r\n", "bad address" },
	{ "tcp4 dst ipv6", "PROXY TCP4 192.0.2.1 2001:db8::2 1 2\r\n", "bad address" },
	{ "tcp6 with dotted quad", "PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n", "bad address" },
	{ "tcp6 dotted quad early", "PROXY TCP6 1.", "bad address" },
	{ "tcp6 dst dotted quad", "PROXY TCP6 ::1 198.51.100.2 1 2\r\n", "bad address" },
	{ "octet 256", "PROXY TCP4 192.0.2.256 198.51.100.2 1 2\r\n", "bad address" },
	{ "octet 256 early", "PROXY TCP4 256", "bad address" },
	{ "three octets", "PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n", "bad address" },
	{ "five octets early", "PROXY TCP4 192.0.2.1.", "bad address" },
	{ "empty octet", "PROXY TCP4 192..2.1 198.51.100.2 1 2\r\n", "bad address" },
	{ "octet leading zero", "PROXY TCP4 192.0.02.1 198.51.100.2 1 2\r\n", "bad address" },
	{ "hostname", "PROXY TCP4 mx.example 198.51.100.2 1 2\r\n", "bad address" },
	{ "two double colons", "PROXY TCP6 2001::db8::1 ::1 1 2\r\n", "bad address" },
	{ "triple colon", "PROXY TCP6 :::1 ::1 1 2\r\n", "bad address" },
	{ "five hex digits", "PROXY TCP6 2001:0db80::1 ::1 1 2\r\n", "bad address" },
	{ "nine groups", "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "bad address" },
	{ "hex after v4 part", "PROXY TCP6 ::1.2.3.a ::1 1 2\r\n", "bad address" },
	{ "zone id", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "bad address" },
};

static void test_v1_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(v1_bad_cases); i++) {
		const struct v1_bad_case *c = &v1_bad_cases[i];
		size_t n = strlen(c->input);
		struct proxy_result res;
		const char *why = NULL;

		expect_status(c->name, n, parse_exact(c->input, n, &res, &why), PROXY_ERROR);
		if (why == NULL || strcmp(why, c->why) != 0)
			fail_msg("%s: why is \"%s\", want \"%s\"", c->name, why ? why : "(null)",
				 c->why);
	}
}

/* The header must end within PROXY_V1_MAX bytes, whatever those bytes are. */
static void test_v1_too_long(void **state)
{
	static const char unknown[] = "PROXY UNKNOWN ";
	char line[PROXY_V1_MAX + 8];
	struct proxy_result res;
	const char *why = NULL;
	size_t pre = strlen(unknown);

	(void)state;
	memcpy(line, unknown, pre);
	memset(line + pre, 'x', sizeof(line) - pre);
	/* 107 bytes without CRLF: refused; 106 without CRLF: could still end at 107. */
	assert_int_equal(parse_exact(line, PROXY_V1_MAX, &res, &why), PROXY_ERROR);
	assert_string_equal(why, "v1 line too long");
	assert_int_equal(parse_exact(line, PROXY_V1_MAX - 1, &res, &why), PROXY_NEED_MORE);
	/* CRLF at bytes 107..108: one byte too many, refused even when all of it is there. */
	memcpy(line + PROXY_V1_MAX - 1, "\r\n", 2);
	assert_int_equal(parse_exact(line, PROXY_V1_MAX + 1, &res, &why), PROXY_ERROR);
	assert_string_equal(why, "v1 line too long");
	/* CRLF at bytes 106..107: exactly the limit. */
	memcpy(line + PROXY_V1_MAX - 2, "\r\n", 2);
	assert_int_equal(parse_exact(line, PROXY_V1_MAX + 1, &res, &why), PROXY_OK);
	assert_int_equal(res.header_len, PROXY_V1_MAX);
	assert_int_equal(res.local, 1);
}

struct partial_case {
	const char *name;
	const char *input;
	size_t len; /* 0: strlen(input) */
};

/* Inputs that are not the prefix of one fixed header, yet could still become a valid one. */
static const struct partial_case partial_cases[] = {
	{ "empty", "", 0 },
	{ "P", "P", 0 },
	{ "PROX", "PROX", 0 },
	{ "PROXY T", "PROXY T", 0 },
	{ "PROXY UNK", "PROXY UNK", 0 },
	{ "tcp4 half address", "PROXY TCP4 1.2.", 0 },
	{ "tcp6 half v4 tail", "PROXY TCP6 ::ffff:1.2", 0 },
	{ "tcp6 after double colon", "PROXY TCP6 2001::", 0 },
	{ "unknown rest", "PROXY UNKNOWN anything at all", 0 },
	{ "before LF", "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r", 0 },
	{ "port zero so far", "PROXY TCP4 192.0.2.1 198.51.100.2 0", 0 },
	{ "CR", "\r", 0 },
	{ "v2 signature up to NUL", "\r\n\r\n\0", 5 },
	{ "v2 signature", "\r\n\r\n\0\r\nQUIT\n", 12 },
};

static void test_partial_needs_more(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(partial_cases); i++) {
		const struct partial_case *c = &partial_cases[i];
		size_t n = c->len ? c->len : strlen(c->input);
		struct proxy_result res;

		expect_status(c->name, n, parse_exact(c->input, n, &res, NULL), PROXY_NEED_MORE);
	}
}

/* ---- v2 ---------------------------------------------------------------------------------- */

#define V2_LOCAL 0x20
#define V2_PROXY 0x21
#define FAM_UNSPEC 0x00
#define FAM_TCP4 0x11
#define FAM_UDP4 0x12
#define FAM_TCP6 0x21
#define FAM_UDP6 0x22
#define FAM_UNIX_STREAM 0x31
#define FAM_UNIX_DGRAM 0x32
#define LEN_AS_BODY (-1)

/* 192.0.2.1:12345 -> 198.51.100.2:25 */
#define BODY4 192, 0, 2, 1, 198, 51, 100, 2, 0x30, 0x39, 0x00, 0x19
/* [2001:db8::1]:12345 -> [2001:db8::2]:25 */
#define BODY6                                                                                      \
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x20, 0x01, 0x0d, 0xb8, 0, 0, \
		0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0x30, 0x39, 0x00, 0x19
/* PP2_TYPE_AUTHORITY "mx.example", then PP2_TYPE_NOOP with three bytes. */
#define TLVS                                                                           \
	0x02, 0x00, 0x0a, 'm', 'x', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0x04, 0x00, 0x03, 0, 0, 0

static const uint8_t body4[] = { BODY4 };
static const uint8_t body6[] = { BODY6 };
static const uint8_t body4_tlv[] = { BODY4, TLVS };
static const uint8_t body6_tlv[] = { BODY6, TLVS };
/* The largest body allowed: addresses, then zero bytes standing for TLVs. */
static const uint8_t body4_max[PROXY_V2_MAX - V2_HDR_LEN] = { BODY4 };
static const uint8_t unix_body[216]; /* two 108-byte sun_path fields */

struct v2_case {
	const char *name;
	uint8_t ver_cmd, fam;
	const uint8_t *body;
	size_t body_len;
	long len_field; /* LEN_AS_BODY, or a length that differs from body_len */
	enum proxy_status status;
	const char *why; /* for PROXY_ERROR */
	struct want want; /* for PROXY_OK */
};

#define WANT4(len) { len, 2, "192.0.2.1", "198.51.100.2", 12345, 25 }
#define WANT6(len) { len, 2, "2001:db8::1", "2001:db8::2", 12345, 25 }
#define WANT_LOCAL(len) { len, 2, NULL, NULL, 0, 0 }
#define OK(want) PROXY_OK, NULL, want
#define ERR(why) PROXY_ERROR, why, { 0, 0, NULL, NULL, 0, 0 }

static const struct v2_case v2_cases[] = {
	{ "tcp4", V2_PROXY, FAM_TCP4, body4, sizeof(body4), LEN_AS_BODY, OK(WANT4(28)) },
	{ "tcp6", V2_PROXY, FAM_TCP6, body6, sizeof(body6), LEN_AS_BODY, OK(WANT6(52)) },
	{ "tcp4 with TLVs", V2_PROXY, FAM_TCP4, body4_tlv, sizeof(body4_tlv), LEN_AS_BODY,
	  OK(WANT4(28 + 19)) },
	{ "tcp6 with TLVs", V2_PROXY, FAM_TCP6, body6_tlv, sizeof(body6_tlv), LEN_AS_BODY,
	  OK(WANT6(52 + 19)) },
	{ "tcp4 at size limit", V2_PROXY, FAM_TCP4, body4_max, sizeof(body4_max), LEN_AS_BODY,
	  OK(WANT4(PROXY_V2_MAX)) },
	{ "local unspec", V2_LOCAL, FAM_UNSPEC, NULL, 0, LEN_AS_BODY, OK(WANT_LOCAL(16)) },
	{ "local with tcp4 block", V2_LOCAL, FAM_TCP4, body4, sizeof(body4), LEN_AS_BODY,
	  OK(WANT_LOCAL(28)) },
	{ "local tcp4 without block", V2_LOCAL, FAM_TCP4, NULL, 0, LEN_AS_BODY, OK(WANT_LOCAL(16)) },
	/* The spec has LOCAL discard the family, so even a UDP one does no harm. */
	{ "local udp4", V2_LOCAL, FAM_UDP4, body4, sizeof(body4), LEN_AS_BODY, OK(WANT_LOCAL(28)) },
	{ "proxy unspec", V2_PROXY, FAM_UNSPEC, NULL, 0, LEN_AS_BODY, OK(WANT_LOCAL(16)) },
	{ "proxy unspec with TLVs", V2_PROXY, FAM_UNSPEC, body4_tlv, sizeof(body4_tlv), LEN_AS_BODY,
	  OK(WANT_LOCAL(16 + sizeof(body4_tlv))) },
	{ "proxy unix stream", V2_PROXY, FAM_UNIX_STREAM, unix_body, sizeof(unix_body), LEN_AS_BODY,
	  OK(WANT_LOCAL(16 + 216)) },
	{ "proxy unix dgram", V2_PROXY, FAM_UNIX_DGRAM, unix_body, sizeof(unix_body), LEN_AS_BODY,
	  OK(WANT_LOCAL(16 + 216)) },
	{ "length over limit", V2_PROXY, FAM_TCP4, NULL, 0, PROXY_V2_MAX - 16 + 1,
	  ERR("v2 header too long") },
	{ "length 65535", V2_PROXY, FAM_TCP4, NULL, 0, 0xffff, ERR("v2 header too long") },
	{ "local length over limit", V2_LOCAL, FAM_UNSPEC, NULL, 0, 0x8000,
	  ERR("v2 header too long") },
	{ "tcp4 block of 11", V2_PROXY, FAM_TCP4, body4, 11, LEN_AS_BODY,
	  ERR("v2 address block too short") },
	{ "tcp4 block of 0", V2_PROXY, FAM_TCP4, NULL, 0, LEN_AS_BODY,
	  ERR("v2 address block too short") },
	{ "tcp6 block of 35", V2_PROXY, FAM_TCP6, body6, 35, LEN_AS_BODY,
	  ERR("v2 address block too short") },
	{ "tcp6 with a v4 block", V2_PROXY, FAM_TCP6, body4, sizeof(body4), LEN_AS_BODY,
	  ERR("v2 address block too short") },
	{ "version 1", 0x11, FAM_TCP4, body4, sizeof(body4), LEN_AS_BODY, ERR("bad v2 version") },
	{ "version 3", 0x31, FAM_TCP4, body4, sizeof(body4), LEN_AS_BODY, ERR("bad v2 version") },
	{ "version 0", 0x01, FAM_TCP4, body4, sizeof(body4), LEN_AS_BODY, ERR("bad v2 version") },
	{ "command 2", 0x22, FAM_TCP4, body4, sizeof(body4), LEN_AS_BODY, ERR("bad v2 command") },
	{ "command 15", 0x2f, FAM_TCP4, body4, sizeof(body4), LEN_AS_BODY, ERR("bad v2 command") },
	{ "udp4", V2_PROXY, FAM_UDP4, body4, sizeof(body4), LEN_AS_BODY,
	  ERR("unsupported family") },
	{ "udp6", V2_PROXY, FAM_UDP6, body6, sizeof(body6), LEN_AS_BODY,
	  ERR("unsupported family") },
	{ "family 0x13", V2_PROXY, 0x13, body4, sizeof(body4), LEN_AS_BODY, ERR("bad v2 family") },
	{ "family 0x41", V2_PROXY, 0x41, body4, sizeof(body4), LEN_AS_BODY, ERR("bad v2 family") },
	{ "local family 0xff", V2_LOCAL, 0xff, NULL, 0, LEN_AS_BODY, ERR("bad v2 family") },
};

/* Writes signature, ver_cmd, fam, length and body, then TRAILER; returns the total size. */
static size_t build_v2(uint8_t *out, const struct v2_case *c)
{
	size_t len_field = c->len_field == LEN_AS_BODY ? c->body_len : (size_t)c->len_field;
	size_t n = 0;

	memcpy(out, v2_sig, sizeof(v2_sig));
	n += sizeof(v2_sig);
	out[n++] = c->ver_cmd;
	out[n++] = c->fam;
	out[n++] = (uint8_t)(len_field >> 8);
	out[n++] = (uint8_t)len_field;
	if (c->body_len)
		memcpy(out + n, c->body, c->body_len);
	n += c->body_len;
	memcpy(out + n, TRAILER, strlen(TRAILER));
	return n + strlen(TRAILER);
}

static void test_v2_table(void **state)
{
	static uint8_t buf[V2_BUF_MAX];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(v2_cases); i++) {
		const struct v2_case *c = &v2_cases[i];
		size_t n = build_v2(buf, c);
		struct proxy_result res;
		const char *why = NULL;

		expect_status(c->name, n, parse_exact(buf, n, &res, &why), c->status);
		if (c->status == PROXY_OK)
			expect_result(c->name, &res, &c->want);
		else if (why == NULL || strcmp(why, c->why) != 0)
			fail_msg("%s: why is \"%s\", want \"%s\"", c->name, why ? why : "(null)",
				 c->why);
	}
}

/* Every proper prefix of a valid v2 header asks for more. */
static void test_v2_every_prefix_needs_more(void **state)
{
	static uint8_t buf[V2_BUF_MAX];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(v2_cases); i++) {
		const struct v2_case *c = &v2_cases[i];
		struct proxy_result res;

		if (c->status != PROXY_OK)
			continue;
		build_v2(buf, c);
		for (size_t n = 0; n < c->want.header_len; n++)
			expect_status(c->name, n, parse_exact(buf, n, &res, NULL), PROXY_NEED_MORE);
		expect_status(c->name, c->want.header_len,
			      parse_exact(buf, c->want.header_len, &res, NULL), PROXY_OK);
	}
}

/* A v2 error is reported as soon as the byte that decides it has arrived. */
static void test_v2_errors_are_early(void **state)
{
	static const struct {
		const char *name;
		size_t deciding; /* bytes up to and including the deciding one */
	} early[] = {
		{ "version 1", 13 }, { "command 2", 13 },	  { "udp4", 14 },
		{ "family 0x41", 14 }, { "length over limit", 16 }, { "tcp4 block of 11", 16 },
	};
	static uint8_t buf[V2_BUF_MAX];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(early); i++) {
		const struct v2_case *c = NULL;
		struct proxy_result res;

		for (size_t j = 0; j < ARRAY_LEN(v2_cases); j++)
			if (strcmp(v2_cases[j].name, early[i].name) == 0)
				c = &v2_cases[j];
		assert_non_null(c);
		build_v2(buf, c);
		expect_status(c->name, early[i].deciding - 1,
			      parse_exact(buf, early[i].deciding - 1, &res, NULL), PROXY_NEED_MORE);
		expect_status(c->name, early[i].deciding,
			      parse_exact(buf, early[i].deciding, &res, NULL), PROXY_ERROR);
	}
}

static void test_v2_bad_signature(void **state)
{
	uint8_t buf[sizeof(v2_sig)];
	struct proxy_result res;
	const char *why = NULL;

	(void)state;
	/* Changing any one byte after the first is seen at that byte. */
	for (size_t i = 1; i < sizeof(v2_sig); i++) {
		memcpy(buf, v2_sig, sizeof(v2_sig));
		buf[i] ^= 0x20;
		assert_int_equal(parse_exact(buf, i, &res, &why), PROXY_NEED_MORE);
		assert_int_equal(parse_exact(buf, i + 1, &res, &why), PROXY_ERROR);
		assert_string_equal(why, "bad v2 signature");
	}
	/* A client sending an empty line first is not a PROXY peer. */
	assert_int_equal(parse_exact("\r\nEHLO x\r\n", 10, &res, &why), PROXY_ERROR);
	assert_string_equal(why, "bad v2 signature");
}

/* why may be NULL on every error path; *res is only written on PROXY_OK. */
static void test_why_null_and_res_untouched(void **state)
{
	static const char *const bad[] = { "EHLO x\r\n", "PROXY TCP4 256", "PROXY TCP4 1.2.3.4\n",
					   "\r\nX" };
	struct proxy_result res, before;

	(void)state;
	memset(&res, 0xa5, sizeof(res));
	before = res;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		assert_int_equal(parse_exact(bad[i], strlen(bad[i]), &res, NULL), PROXY_ERROR);
	assert_int_equal(parse_exact("PROXY TCP4 1.2", 14, &res, NULL), PROXY_NEED_MORE);
	assert_memory_equal(&res, &before, sizeof(res));
	assert_int_equal(proxy_parse(NULL, 0, &res, NULL), PROXY_NEED_MORE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_valid),
		cmocka_unit_test(test_v1_every_prefix_needs_more),
		cmocka_unit_test(test_v1_malformed),
		cmocka_unit_test(test_v1_too_long),
		cmocka_unit_test(test_partial_needs_more),
		cmocka_unit_test(test_v2_table),
		cmocka_unit_test(test_v2_every_prefix_needs_more),
		cmocka_unit_test(test_v2_errors_are_early),
		cmocka_unit_test(test_v2_bad_signature),
		cmocka_unit_test(test_why_null_and_res_untouched),
	};

	return cmocka_run_group_tests_name("proxy_proto", tests, NULL, NULL);
}
