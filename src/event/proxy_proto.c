/* proxy_proto: see proxy_proto.h.
 *
 * The parser keeps no state between calls: each call parses buf from its start again, which is
 * cheap because a header is bounded (PROXY_V1_MAX, PROXY_V2_MAX). Bytes that can still grow into
 * a valid header give PROXY_NEED_MORE; anything else is refused at the first byte that rules a
 * header out, so that a client talking SMTP straight to a PROXY listener is not left hanging
 * until a timeout. */
#include "event/proxy_proto.h"

#include <string.h>

/* v1: "PROXY TCP4 <src> <dst> <sport> <dport>\r\n", TCP6 alike, or "PROXY UNKNOWN...\r\n". */
#define V1_SIG "PROXY "
#define V1_SIG_LEN (sizeof(V1_SIG) - 1)
#define V1_ADDR4_TEXT_MAX 15 /* 255.255.255.255 */
#define V1_ADDR6_TEXT_MAX 45 /* ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 */
#define V1_PORT_TEXT_MAX 5
#define V1_PORT_MAX 65535u
#define V6_GROUP_DIGITS_MAX 4
#define V4_OCTET_DIGITS_MAX 3
#define V4_OCTET_MAX 255u
#define V4_OCTETS 4

/* v2: signature, ver_cmd, fam, 16-bit big-endian length, then the address block and TLVs. */
static const uint8_t v2_sig[] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };
#define V2_VER_CMD_OFF 12
#define V2_FAM_OFF 13
#define V2_LEN_OFF 14
#define V2_HDR_LEN 16
#define V2_VERSION 0x2
#define V2_CMD_LOCAL 0x0
#define V2_CMD_PROXY 0x1
#define V2_ADDR4_LEN 12 /* src 4, dst 4, sport 2, dport 2 */
#define V2_ADDR6_LEN 36 /* src 16, dst 16, sport 2, dport 2 */

enum v2_family {
	V2_FAM_UNSPEC = 0x00,
	V2_FAM_TCP4 = 0x11,
	V2_FAM_UDP4 = 0x12,
	V2_FAM_TCP6 = 0x21,
	V2_FAM_UDP6 = 0x22,
	V2_FAM_UNIX_STREAM = 0x31,
	V2_FAM_UNIX_DGRAM = 0x32,
};

enum match { MATCH_NONE, MATCH_PARTIAL, MATCH_FULL };

enum v1_field { FIELD_ADDR4, FIELD_ADDR6, FIELD_PORT, FIELD_NONE };

struct v1_proto {
	const char *name; /* with the space that must follow when address fields do */
	enum v1_field addr;
};

static const struct v1_proto v1_protos[] = {
	{ "TCP4 ", FIELD_ADDR4 },
	{ "TCP6 ", FIELD_ADDR6 },
	{ "UNKNOWN", FIELD_NONE },
};

struct v1_cursor {
	const uint8_t *buf;
	size_t pos;
	size_t lim; /* min(len, PROXY_V1_MAX): a header never extends past it */
};

static enum proxy_status fail(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return PROXY_ERROR;
}

/* Compares the bytes available with a literal that may be longer than they are. */
static enum match match_literal(const uint8_t *p, size_t avail, const void *lit, size_t litlen)
{
	size_t n = avail < litlen ? avail : litlen;

	if (memcmp(p, lit, n) != 0)
		return MATCH_NONE;
	return n == litlen ? MATCH_FULL : MATCH_PARTIAL;
}

static int is_digit(uint8_t ch)
{
	return ch >= '0' && ch <= '9';
}

static int is_xdigit(uint8_t ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static int field_char_ok(enum v1_field kind, uint8_t ch)
{
	switch (kind) {
	case FIELD_ADDR4:
		return is_digit(ch) || ch == '.';
	case FIELD_ADDR6:
		return is_xdigit(ch) || ch == ':' || ch == '.';
	case FIELD_PORT:
		return is_digit(ch);
	case FIELD_NONE:
		break;
	}
	return 0;
}

/* Whether s[0..n) (digits and dots only) is a dotted quad or, if !complete, can still become
 * one. Leading zeros are refused, as inet_pton does, since some readers take them as octal. */
static int v4_text_ok(const uint8_t *s, size_t n, int complete)
{
	unsigned octets = 1, digits = 0, value = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (digits == 0 || ++octets > V4_OCTETS)
				return 0;
			digits = value = 0;
			continue;
		}
		if (digits == 1 && value == 0)
			return 0;
		value = value * 10 + (unsigned)(s[i] - '0');
		if (++digits > V4_OCTET_DIGITS_MAX || value > V4_OCTET_MAX)
			return 0;
	}
	return !complete || (octets == V4_OCTETS && digits > 0);
}

/* Whether s[0..n) (hex digits, colons, dots) may be or become IPv6 text. Only necessary
 * conditions, enough to refuse garbage early; inet_pton has the last word on a complete field.
 * A dot needs an earlier colon, which is what keeps a bare dotted quad out of TCP6. */
static int v6_text_ok(const uint8_t *s, size_t n, int complete)
{
	int colon = 0, dot = 0, double_colons = 0;
	unsigned run = 0;

	if (n > V1_ADDR6_TEXT_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ':') {
			if (dot || (i > 0 && s[i - 1] == ':' && ++double_colons > 1))
				return 0;
			colon = 1;
			run = 0;
		} else if (s[i] == '.') {
			if (!colon)
				return 0;
			dot = 1;
			run = 0;
		} else if ((dot && !is_digit(s[i])) || ++run > V6_GROUP_DIGITS_MAX) {
			return 0;
		}
	}
	return !complete || colon;
}

/* Decimal 0..65535 without sign or leading zeros, so that one port has one spelling. */
static int port_text_ok(const uint8_t *s, size_t n, int complete, uint16_t *port_r)
{
	unsigned long value = 0;

	if (n > V1_PORT_TEXT_MAX || (n > 1 && s[0] == '0') || (complete && n == 0))
		return 0;
	for (size_t i = 0; i < n; i++)
		value = value * 10 + (unsigned long)(s[i] - '0');
	if (value > V1_PORT_MAX)
		return 0;
	*port_r = (uint16_t)value;
	return 1;
}

static int field_text_ok(enum v1_field kind, const uint8_t *s, size_t n, int complete)
{
	uint16_t port;

	switch (kind) {
	case FIELD_ADDR4:
		return v4_text_ok(s, n, complete);
	case FIELD_ADDR6:
		return v6_text_ok(s, n, complete);
	case FIELD_PORT:
		return port_text_ok(s, n, complete, &port);
	case FIELD_NONE:
		break;
	}
	return 0;
}

/* The bytes ran out before the header ended: fine unless the 107-byte limit is what ran out. */
static enum proxy_status v1_out_of_bytes(const struct v1_cursor *c, const char **why)
{
	if (c->lim == PROXY_V1_MAX)
		return fail(why, "v1 line too long");
	return PROXY_NEED_MORE;
}

/* The cursor is on a CR; the header ends with the LF that must follow it. */
static enum proxy_status v1_expect_lf(struct v1_cursor *c, const char **why)
{
	c->pos++;
	if (c->pos == c->lim)
		return v1_out_of_bytes(c, why);
	if (c->buf[c->pos] != '\n')
		return fail(why, "CR without LF in v1 line");
	c->pos++;
	return PROXY_OK;
}

/* Reads one field of the given kind and its terminator. On PROXY_OK, *tok_r and *n_r give the
 * field and the cursor is past the terminator (except a CR, left for v1_expect_lf). */
static enum proxy_status v1_field(struct v1_cursor *c, enum v1_field kind, uint8_t term,
				  const uint8_t **tok_r, size_t *n_r, const char **why)
{
	const char *bad = kind == FIELD_PORT ? "bad port" : "bad address";
	size_t start = c->pos;
	int complete;
	uint8_t next;

	while (c->pos < c->lim && field_char_ok(kind, c->buf[c->pos]))
		c->pos++;
	*tok_r = c->buf + start;
	*n_r = c->pos - start;
	complete = c->pos < c->lim;
	next = complete ? c->buf[c->pos] : 0;
	if (complete && next != ' ' && next != '\r' && next != '\n')
		return fail(why, bad);
	if (complete && *n_r == 0)
		return fail(why, "empty v1 field");
	if (!field_text_ok(kind, *tok_r, *n_r, complete))
		return fail(why, bad);
	if (!complete)
		return v1_out_of_bytes(c, why);
	if (next == '\n')
		return fail(why, "bare LF in v1 line");
	if (next != term)
		return fail(why, "bad v1 field separator");
	if (term != '\r')
		c->pos++;
	return PROXY_OK;
}

static enum proxy_status v1_addr(struct v1_cursor *c, enum v1_field kind, struct ip_addr *ip_r,
				 const char **why)
{
	char text[ADDR_STR_MAX];
	const uint8_t *tok;
	size_t n;
	enum proxy_status st = v1_field(c, kind, ' ', &tok, &n, why);

	if (st != PROXY_OK)
		return st;
	/* v1_field bounded n by V1_ADDR6_TEXT_MAX, which leaves room for the NUL. */
	memcpy(text, tok, n);
	text[n] = '\0';
	if (ip_parse(text, ip_r) < 0)
		return fail(why, "bad address");
	return PROXY_OK;
}

static enum proxy_status v1_port(struct v1_cursor *c, uint8_t term, uint16_t *port_r,
				 const char **why)
{
	const uint8_t *tok;
	size_t n;
	enum proxy_status st = v1_field(c, FIELD_PORT, term, &tok, &n, why);

	if (st == PROXY_OK)
		port_text_ok(tok, n, 1, port_r);
	return st;
}

static enum proxy_status v1_tcp(struct v1_cursor *c, enum v1_field kind, struct proxy_result *res,
				const char **why)
{
	enum proxy_status st;

	if ((st = v1_addr(c, kind, &res->src, why)) != PROXY_OK ||
	    (st = v1_addr(c, kind, &res->dst, why)) != PROXY_OK ||
	    (st = v1_port(c, ' ', &res->src_port, why)) != PROXY_OK ||
	    (st = v1_port(c, '\r', &res->dst_port, why)) != PROXY_OK)
		return st;
	return v1_expect_lf(c, why);
}

/* "UNKNOWN" is followed by a space or the CRLF; whatever lies before the CRLF is ignored. */
static enum proxy_status v1_unknown(struct v1_cursor *c, const char **why)
{
	if (c->pos < c->lim && c->buf[c->pos] != ' ' && c->buf[c->pos] != '\r' &&
	    c->buf[c->pos] != '\n')
		return fail(why, "bad v1 protocol");
	for (; c->pos < c->lim; c->pos++) {
		if (c->buf[c->pos] == '\n')
			return fail(why, "bare LF in v1 line");
		if (c->buf[c->pos] == '\r')
			return v1_expect_lf(c, why);
	}
	return v1_out_of_bytes(c, why);
}

/* Finds the protocol word after "PROXY "; NULL with *st_r set when there is none (yet). */
static const struct v1_proto *v1_proto(const struct v1_cursor *c, enum proxy_status *st_r,
				       const char **why)
{
	size_t avail = c->lim - c->pos;
	size_t i;

	*st_r = PROXY_ERROR;
	for (i = 0; i < sizeof(v1_protos) / sizeof(v1_protos[0]); i++) {
		const struct v1_proto *p = &v1_protos[i];
		enum match m = match_literal(c->buf + c->pos, avail, p->name, strlen(p->name));
		if (m == MATCH_FULL)
			return p;
		if (m == MATCH_PARTIAL)
			*st_r = PROXY_NEED_MORE;
	}
	if (*st_r == PROXY_ERROR)
		fail(why, "bad v1 protocol");
	return NULL;
}

static enum proxy_status v1_parse(const uint8_t *buf, size_t len, struct proxy_result *res,
				  const char **why)
{
	struct v1_cursor c = { buf, 0, len < PROXY_V1_MAX ? len : PROXY_V1_MAX };
	const struct v1_proto *proto;
	enum proxy_status st;

	switch (match_literal(buf, c.lim, V1_SIG, V1_SIG_LEN)) {
	case MATCH_NONE:
		return fail(why, "bad v1 signature");
	case MATCH_PARTIAL:
		return PROXY_NEED_MORE;
	case MATCH_FULL:
		break;
	}
	c.pos = V1_SIG_LEN;
	if (!(proto = v1_proto(&c, &st, why)))
		return st;
	c.pos += strlen(proto->name);
	res->version = 1;
	if (proto->addr == FIELD_NONE) {
		res->local = 1;
		st = v1_unknown(&c, why);
	} else {
		st = v1_tcp(&c, proto->addr, res, why);
	}
	res->header_len = c.pos;
	return st;
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* struct ip_addr keeps IPv4 as ::ffff:a.b.c.d (see addr.h). */
static void v4_mapped(const uint8_t v4[4], struct ip_addr *ip_r)
{
	memset(ip_r->b, 0, 10);
	ip_r->b[10] = 0xff;
	ip_r->b[11] = 0xff;
	memcpy(ip_r->b + 12, v4, 4);
}

/* Checks ver_cmd and fam as soon as they arrive. The spec has LOCAL discard the family (a
 * health check carries no client), but a value outside its table is refused either way. */
static enum proxy_status v2_check_fixed(const uint8_t *buf, size_t len, const char **why)
{
	if (len > V2_VER_CMD_OFF) {
		uint8_t ver_cmd = buf[V2_VER_CMD_OFF];
		if (ver_cmd >> 4 != V2_VERSION)
			return fail(why, "bad v2 version");
		if ((ver_cmd & 0x0f) != V2_CMD_LOCAL && (ver_cmd & 0x0f) != V2_CMD_PROXY)
			return fail(why, "bad v2 command");
	}
	if (len > V2_FAM_OFF) {
		switch (buf[V2_FAM_OFF]) {
		case V2_FAM_UDP4:
		case V2_FAM_UDP6:
			/* SMTP runs over TCP: a proxied UDP flow cannot be ours. */
			if ((buf[V2_VER_CMD_OFF] & 0x0f) == V2_CMD_PROXY)
				return fail(why, "unsupported family");
			break;
		case V2_FAM_UNSPEC:
		case V2_FAM_TCP4:
		case V2_FAM_TCP6:
		case V2_FAM_UNIX_STREAM:
		case V2_FAM_UNIX_DGRAM:
			break;
		default:
			return fail(why, "bad v2 family");
		}
	}
	return PROXY_NEED_MORE;
}

/* Address bytes a PROXY command must carry; 0 when the family gives no usable address. */
static size_t v2_addr_len(uint8_t ver_cmd, uint8_t fam)
{
	if ((ver_cmd & 0x0f) == V2_CMD_LOCAL)
		return 0;
	if (fam == V2_FAM_TCP4)
		return V2_ADDR4_LEN;
	if (fam == V2_FAM_TCP6)
		return V2_ADDR6_LEN;
	return 0;
}

static void v2_addresses(const uint8_t *p, size_t addr_len, struct proxy_result *res)
{
	if (addr_len == V2_ADDR4_LEN) {
		v4_mapped(p, &res->src);
		v4_mapped(p + 4, &res->dst);
		res->src_port = be16(p + 8);
		res->dst_port = be16(p + 10);
	} else {
		memcpy(res->src.b, p, 16);
		memcpy(res->dst.b, p + 16, 16);
		res->src_port = be16(p + 32);
		res->dst_port = be16(p + 34);
	}
}

static enum proxy_status v2_parse(const uint8_t *buf, size_t len, struct proxy_result *res,
				  const char **why)
{
	size_t body_len, addr_len;
	enum proxy_status st;

	switch (match_literal(buf, len, v2_sig, sizeof(v2_sig))) {
	case MATCH_NONE:
		return fail(why, "bad v2 signature");
	case MATCH_PARTIAL:
		return PROXY_NEED_MORE;
	case MATCH_FULL:
		break;
	}
	if ((st = v2_check_fixed(buf, len, why)) != PROXY_NEED_MORE || len < V2_HDR_LEN)
		return st;
	body_len = be16(buf + V2_LEN_OFF);
	if (V2_HDR_LEN + body_len > PROXY_V2_MAX)
		return fail(why, "v2 header too long");
	addr_len = v2_addr_len(buf[V2_VER_CMD_OFF], buf[V2_FAM_OFF]);
	if (body_len < addr_len)
		return fail(why, "v2 address block too short");
	if (len < V2_HDR_LEN + body_len)
		return PROXY_NEED_MORE;
	res->version = 2;
	res->header_len = V2_HDR_LEN + body_len;
	res->local = addr_len == 0;
	if (addr_len)
		v2_addresses(buf + V2_HDR_LEN, addr_len, res);
	return PROXY_OK;
}

enum proxy_status proxy_parse(const uint8_t *buf, size_t len, struct proxy_result *res,
			      const char **why)
{
	struct proxy_result r;
	enum proxy_status st;

	if (len == 0)
		return PROXY_NEED_MORE;
	memset(&r, 0, sizeof(r));
	/* The first byte tells the versions apart: 'P' against CR. */
	if (buf[0] == v2_sig[0])
		st = v2_parse(buf, len, &r, why);
	else
		st = v1_parse(buf, len, &r, why);
	/* *res is left alone unless the header is complete, so a caller never sees half a parse. */
	if (st == PROXY_OK)
		*res = r;
	return st;
}
