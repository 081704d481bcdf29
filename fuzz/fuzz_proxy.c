/* fuzz_proxy: the PROXY protocol v1/v2 header parser of src/event/proxy_proto.h.
 *
 * Input: the first bytes a client sends on a proxy listener. The parser keeps no state and
 * is called again with everything received so far, so the input is parsed whole and then as
 * every prefix (up to a bound past PROXY_V2_MAX), each an exact-size heap copy: a prefix must
 * give PROXY_NEED_MORE or the answer of the whole, an error stays an error as bytes arrive,
 * and a complete header gives the same result from every prefix that holds it. *res must be
 * untouched unless PROXY_OK. A v1 TCP header written back from its result (canonical text)
 * must parse to the same addresses and ports. */
#include "event/proxy_proto.h"
#include "fuzz.h"

/* Prefixes checked one by one: every header length, and a little more. */
#define PREFIX_CHECK_MAX (PROXY_V2_MAX + 64)
#define V2_SIG_LEN 12
#define V2_HDR_LEN 16
#define V2_FAM_TCP4 0x11
#define V2_FAM_TCP6 0x21
#define V1_TEXT_MAX (PROXY_V1_MAX + 1)
#define POISON 0xa5

static const uint8_t v2_sig[V2_SIG_LEN] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

static int same_result(const struct proxy_result *a, const struct proxy_result *b)
{
	return a->header_len == b->header_len && a->version == b->version &&
	       a->local == b->local && !memcmp(&a->src, &b->src, sizeof(a->src)) &&
	       !memcmp(&a->dst, &b->dst, sizeof(a->dst)) && a->src_port == b->src_port &&
	       a->dst_port == b->dst_port;
}

static enum proxy_status parse_copy(const uint8_t *data, size_t n, struct proxy_result *res,
				    const char **why)
{
	uint8_t *buf = (uint8_t *)fuzz_dup(data, n);
	struct proxy_result poisoned;

	memset(res, POISON, sizeof(*res));
	memset(&poisoned, POISON, sizeof(poisoned));
	*why = NULL;
	enum proxy_status st = proxy_parse(buf, n, res, why);
	FUZZ_CHECK(st == PROXY_NEED_MORE || st == PROXY_OK || st == PROXY_ERROR);
	if (st != PROXY_OK)
		FUZZ_CHECK(memcmp(res, &poisoned, sizeof(*res)) == 0);
	if (st == PROXY_ERROR)
		FUZZ_CHECK(*why != NULL && (*why)[0] != '\0');
	free(buf);
	return st;
}

static void check_ok(const uint8_t *data, size_t len, const struct proxy_result *res)
{
	FUZZ_CHECK(res->header_len >= 1 && res->header_len <= len);
	FUZZ_CHECK(res->local == 0 || res->local == 1);
	if (res->version == 1) {
		FUZZ_CHECK(res->header_len <= PROXY_V1_MAX && res->header_len >= 8);
		FUZZ_CHECK(memcmp(data, "PROXY ", 6) == 0);
		FUZZ_CHECK(data[res->header_len - 2] == '\r' && data[res->header_len - 1] == '\n');
		FUZZ_CHECK(memchr(data, '\n', res->header_len - 1) == NULL);
		return;
	}
	FUZZ_CHECK(res->version == 2);
	FUZZ_CHECK(res->header_len >= V2_HDR_LEN && res->header_len <= PROXY_V2_MAX);
	FUZZ_CHECK(memcmp(data, v2_sig, V2_SIG_LEN) == 0);
	FUZZ_CHECK(res->header_len == V2_HDR_LEN + ((size_t)data[14] << 8 | data[15]));
	if (res->local)
		return;
	/* the addresses are the block's bytes: TCP4 as ::ffff:a.b.c.d, ports big-endian */
	const uint8_t *a = data + V2_HDR_LEN;
	if (data[13] == V2_FAM_TCP4) {
		FUZZ_CHECK(ip_is_v4(&res->src) && ip_is_v4(&res->dst));
		FUZZ_CHECK(!memcmp(res->src.b + 12, a, 4) && !memcmp(res->dst.b + 12, a + 4, 4));
		FUZZ_CHECK(res->src_port == (a[8] << 8 | a[9]) && res->dst_port == (a[10] << 8 | a[11]));
	} else {
		FUZZ_CHECK(data[13] == V2_FAM_TCP6);
		FUZZ_CHECK(!memcmp(res->src.b, a, 16) && !memcmp(res->dst.b, a + 16, 16));
		FUZZ_CHECK(res->src_port == (a[32] << 8 | a[33]) && res->dst_port == (a[34] << 8 | a[35]));
	}
}

/* "PROXY TCP4|TCP6 src dst sport dport\r\n" in canonical text must give the same result. */
static void check_v1_rewrite(const uint8_t *data, const struct proxy_result *res)
{
	char src[ADDR_STR_MAX], dst[ADDR_STR_MAX], text[V1_TEXT_MAX + 16];
	int v6 = memcmp(data + 6, "TCP6", 4) == 0;
	struct proxy_result again;
	const char *why;

	if (res->version != 1 || res->local)
		return;
	ip_format(&res->src, src);
	ip_format(&res->dst, dst);
	/* TCP6 "::ffff:a.b.c.d" is kept as IPv4; ip_format writes the dotted quad alone */
	int n = snprintf(text, sizeof(text), "PROXY %s %s%s %s%s %u %u\r\n", v6 ? "TCP6" : "TCP4",
			 v6 && ip_is_v4(&res->src) ? "::ffff:" : "", src,
			 v6 && ip_is_v4(&res->dst) ? "::ffff:" : "", dst, (unsigned)res->src_port,
			 (unsigned)res->dst_port);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text));
	if ((size_t)n > PROXY_V1_MAX)
		return; /* "::ffff:" made it longer than the input was */
	FUZZ_CHECK(parse_copy((const uint8_t *)text, (size_t)n, &again, &why) == PROXY_OK);
	FUZZ_CHECK(again.header_len == (size_t)n && again.version == 1 && !again.local);
	FUZZ_CHECK(!memcmp(&again.src, &res->src, sizeof(again.src)));
	FUZZ_CHECK(!memcmp(&again.dst, &res->dst, sizeof(again.dst)));
	FUZZ_CHECK(again.src_port == res->src_port && again.dst_port == res->dst_port);
	if (!v6) /* IPv4 text and ports have one spelling only: the input was that spelling */
		FUZZ_CHECK(res->header_len == (size_t)n && !memcmp(text, data, (size_t)n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_result whole, part;
	const char *why;
	enum proxy_status st = parse_copy(data, size, &whole, &why);
	size_t lim = size < PREFIX_CHECK_MAX ? size : PREFIX_CHECK_MAX;
	int failed = 0;

	if (st == PROXY_OK) {
		check_ok(data, size, &whole);
		check_v1_rewrite(data, &whole);
	}
	for (size_t k = 0; k <= lim; k++) {
		enum proxy_status sk = parse_copy(data, k, &part, &why);
		switch (st) {
		case PROXY_OK:
			if (k < whole.header_len)
				FUZZ_CHECK(sk == PROXY_NEED_MORE);
			else
				FUZZ_CHECK(sk == PROXY_OK && same_result(&part, &whole));
			break;
		case PROXY_ERROR:
			FUZZ_CHECK(sk == PROXY_NEED_MORE || sk == PROXY_ERROR);
			FUZZ_CHECK(!failed || sk == PROXY_ERROR); /* no way back from an error */
			failed = sk == PROXY_ERROR;
			break;
		case PROXY_NEED_MORE:
			FUZZ_CHECK(sk == PROXY_NEED_MORE);
			break;
		}
	}
	/* a header never needs more than its bound: past it the answer is final */
	if (size > PROXY_V2_MAX)
		FUZZ_CHECK(st != PROXY_NEED_MORE);
	return 0;
}
