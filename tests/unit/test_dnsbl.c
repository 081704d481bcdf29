/* Unit tests for the pure parts of dnsbl: query names (IPv4, IPv6 nibbles, length limits),
 * answer interpretation as a table over every rule of dnsbl.h, state names, and the bounded
 * answer cache (hits, expiry, replacement, eviction order, growth). The event-loop parts are
 * exercised against real sockets by test_dnsbl_live.c. Table failures name the row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>

#include "dns/dnsbl.h"
#include "dns/dnsbl_cache.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_ADDRS 4

static uint32_t v4(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		fail_msg("bad IPv4 literal in test: %s", s);
	return ntohl(a.s_addr);
}

static struct ip_addr ip(const char *s)
{
	struct ip_addr a;

	if (ip_parse(s, &a) < 0)
		fail_msg("bad address literal in test: %s", s);
	return a;
}

/* "127.0.0.2-127.0.0.11,127.0.0.20" into list->codes (the config syntax, parsed naively). */
static void set_codes(struct dnsbl_config *list, const char *codes)
{
	char buf[256];
	char *save = NULL;

	memset(list, 0, sizeof(*list));
	snprintf(list->name, sizeof(list->name), "test");
	snprintf(buf, sizeof(buf), "%s", codes);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(t, '-');
		if (dash)
			*dash = '\0';
		list->codes[list->ncodes].lo = v4(t);
		list->codes[list->ncodes].hi = v4(dash ? dash + 1 : t);
		list->ncodes++;
	}
}

/* ---- dnsbl_query_name ---------------------------------------------------------------------- */

struct name_case {
	const char *ip;
	const char *zone;
	size_t outsz;
	int rc;
	const char *want;
};

#define ZONE_246 \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa." \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb." \
	"ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc." \
	"dddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define ZONE_245 \
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa." \
	"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb." \
	"ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc." \
	"ddddddddddddddddddddddddddddddddddddddddddddddddddddd"

static const struct name_case name_cases[] = {
	{ "192.0.2.1", "zen.spamhaus.org", DNSBL_NAME_MAX, 0, "1.2.0.192.zen.spamhaus.org" },
	{ "127.0.0.2", "bl.test", DNSBL_NAME_MAX, 0, "2.0.0.127.bl.test" },
	{ "1.2.3.4", "bl.test", DNSBL_NAME_MAX, 0, "4.3.2.1.bl.test" },
	{ "255.0.10.100", "x.y", DNSBL_NAME_MAX, 0, "100.10.0.255.x.y" },
	/* IPv4-mapped IPv6 text is an IPv4 client. */
	{ "::ffff:198.51.100.7", "bl.test", DNSBL_NAME_MAX, 0, "7.100.51.198.bl.test" },
	/* Hand-written nibbles: 2001:0db8:0000:0000:0000:0000:0000:0001 reversed. */
	{ "2001:db8::1", "bl.test", DNSBL_NAME_MAX, 0,
	  "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test" },
	/* RFC 5782 2.4's own example. */
	{ "2001:db8:1:2:3:4:567:89ab", "ugly.example.com", DNSBL_NAME_MAX, 0,
	  "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com" },
	{ "::", "bl.test", DNSBL_NAME_MAX, 0,
	  "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test" },
	{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "bl.test", DNSBL_NAME_MAX, 0,
	  "e.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.f.bl.test" },
	/* No zone: the reversed address alone. */
	{ "1.2.3.4", "", DNSBL_NAME_MAX, 0, "4.3.2.1" },
	/* 253 characters is the DNS limit: "4.3.2.1." (8) + 245 fits, + 246 does not. */
	{ "1.2.3.4", ZONE_245, DNSBL_NAME_MAX, 0, "4.3.2.1." ZONE_245 },
	{ "1.2.3.4", ZONE_246, DNSBL_NAME_MAX, -1, "" },
	/* 64 characters of nibbles + 246: too long for DNS although it fits the buffer... */
	{ "2001:db8::1", ZONE_246, 1024, -1, "" },
	/* ...and too long for the buffer. */
	{ "2001:db8::1", ZONE_245, DNSBL_NAME_MAX, -1, "" },
	/* Buffer exactly large enough, and one byte short. */
	{ "1.2.3.4", "bl.test", sizeof("4.3.2.1.bl.test"), 0, "4.3.2.1.bl.test" },
	{ "1.2.3.4", "bl.test", sizeof("4.3.2.1.bl.test") - 1, -1, "" },
};

static void test_query_name(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(name_cases); i++) {
		const struct name_case *c = &name_cases[i];
		struct ip_addr a = ip(c->ip);
		char out[1024];
		int rc;

		assert_true(c->outsz <= sizeof(out));
		memset(out, 'X', sizeof(out));
		rc = dnsbl_query_name(&a, c->zone, out, c->outsz);
		if (rc != c->rc)
			fail_msg("row %zu (%s): rc %d, want %d", i, c->ip, rc, c->rc);
		if (strcmp(out, c->want) != 0)
			fail_msg("row %zu (%s): \"%s\", want \"%s\"", i, c->ip, out, c->want);
	}
}

static void test_query_name_v6_shape(void **state)
{
	struct ip_addr a = ip("2001:db8::1");
	char out[DNSBL_NAME_MAX];
	size_t dots = 0;

	(void)state;
	assert_int_equal(dnsbl_query_name(&a, "z", out, sizeof(out)), 0);
	/* 32 nibbles, 32 dots (31 between nibbles, one before the zone), then "z". */
	assert_int_equal(strlen(out), 32 + 32 + 1);
	for (const char *p = out; *p; p++)
		dots += *p == '.';
	assert_int_equal(dots, 32);
}

static void test_query_name_zero_buffer(void **state)
{
	struct ip_addr a = ip("1.2.3.4");
	char out[1] = { 'X' };

	(void)state;
	assert_int_equal(dnsbl_query_name(&a, "bl.test", out, 0), -1);
	assert_int_equal(out[0], 'X'); /* nothing written into a zero-sized buffer */
}

/* ---- dnsbl_interpret ------------------------------------------------------------------------ */

#define ZEN "127.0.0.2-127.0.0.11"
#define SBL_ONLY "127.0.0.2-127.0.0.3"
#define DEFAULT_CODES "127.0.0.2-127.0.0.254"
#define DNSWL_WIDE "127.0.0.0-127.0.255.254"
#define ALL_LOOPBACK "127.0.0.0-127.255.255.255"
#define TWO_RANGES "127.0.0.2,127.0.0.4-127.0.0.5"

struct interp_case {
	const char *codes;
	int nxdomain, failed;
	const char *addrs[MAX_ADDRS];
	enum dnsbl_state want;
	const char *code;   /* expected *code_r, NULL for 0 */
	const char *detail; /* expected detail exactly */
};

#define OUTSIDE "answer outside 127.0.0.0/8 (NXDOMAIN-rewriting resolver or dead list)"
#define NOT_CONF "code not configured as listed"

static const struct interp_case interp_cases[] = {
	/* Not listed: NXDOMAIN, or NOERROR without A records. */
	{ ZEN, 1, 0, { NULL }, DNSBL_NOT_LISTED, NULL, "" },
	{ ZEN, 0, 0, { NULL }, DNSBL_NOT_LISTED, NULL, "" },
	{ ZEN, 1, 0, { "127.0.0.2" }, DNSBL_NOT_LISTED, NULL, "" }, /* nxdomain wins */
	/* Resolver failure wins over anything else. */
	{ ZEN, 0, 1, { NULL }, DNSBL_RESOLVER_ERROR, NULL, "resolver failed" },
	{ ZEN, 1, 1, { "127.0.0.2" }, DNSBL_RESOLVER_ERROR, NULL, "resolver failed" },
	/* Configured codes, at both ends of the range. */
	{ ZEN, 0, 0, { "127.0.0.2" }, DNSBL_LISTED, "127.0.0.2", "" },
	{ ZEN, 0, 0, { "127.0.0.11" }, DNSBL_LISTED, "127.0.0.11", "" },
	{ DEFAULT_CODES, 0, 0, { "127.0.0.254" }, DNSBL_LISTED, "127.0.0.254", "" },
	{ DNSWL_WIDE, 0, 0, { "127.0.10.2" }, DNSBL_LISTED, "127.0.10.2", "" },
	{ TWO_RANGES, 0, 0, { "127.0.0.2" }, DNSBL_LISTED, "127.0.0.2", "" },
	{ TWO_RANGES, 0, 0, { "127.0.0.5" }, DNSBL_LISTED, "127.0.0.5", "" },
	/* Other 127/8 codes: not configured. */
	{ ZEN, 0, 0, { "127.0.0.12" }, DNSBL_LIST_ERROR, "127.0.0.12", "127.0.0.12: " NOT_CONF },
	{ ZEN, 0, 0, { "127.0.0.0" }, DNSBL_LIST_ERROR, "127.0.0.0", "127.0.0.0: " NOT_CONF },
	{ TWO_RANGES, 0, 0, { "127.0.0.3" }, DNSBL_LIST_ERROR, "127.0.0.3", "127.0.0.3: " NOT_CONF },
	{ TWO_RANGES, 0, 0, { "127.0.0.6" }, DNSBL_LIST_ERROR, "127.0.0.6", "127.0.0.6: " NOT_CONF },
	{ "", 0, 0, { "127.0.0.2" }, DNSBL_LIST_ERROR, "127.0.0.2", "127.0.0.2: " NOT_CONF },
	/* 127.0.0.1 is never a listing, even when a range covers it. */
	{ ZEN, 0, 0, { "127.0.0.1" }, DNSBL_LIST_ERROR, "127.0.0.1",
	  "127.0.0.1: answer 127.0.0.1 is never a listing (dead list?)" },
	{ DNSWL_WIDE, 0, 0, { "127.0.0.1" }, DNSBL_LIST_ERROR, "127.0.0.1",
	  "127.0.0.1: answer 127.0.0.1 is never a listing (dead list?)" },
	/* The 127.255.255.0/24 error codes, even when configured. */
	{ ZEN, 0, 0, { "127.255.255.252" }, DNSBL_LIST_ERROR, "127.255.255.252",
	  "127.255.255.252: typo in zone" },
	{ ZEN, 0, 0, { "127.255.255.254" }, DNSBL_LIST_ERROR, "127.255.255.254",
	  "127.255.255.254: list refused the query (open/public resolver or no access)" },
	{ ZEN, 0, 0, { "127.255.255.255" }, DNSBL_LIST_ERROR, "127.255.255.255",
	  "127.255.255.255: over query quota" },
	{ ZEN, 0, 0, { "127.255.255.0" }, DNSBL_LIST_ERROR, "127.255.255.0",
	  "127.255.255.0: list error code (query refused, typo in zone or over quota)" },
	{ ALL_LOOPBACK, 0, 0, { "127.255.255.254" }, DNSBL_LIST_ERROR, "127.255.255.254",
	  "127.255.255.254: list refused the query (open/public resolver or no access)" },
	{ ALL_LOOPBACK, 0, 0, { "127.255.254.255" }, DNSBL_LISTED, "127.255.254.255", "" },
	/* dnswl.org's 127.0.0.255, even inside a configured range. */
	{ DEFAULT_CODES, 0, 0, { "127.0.0.255" }, DNSBL_LIST_ERROR, "127.0.0.255",
	  "127.0.0.255: list error code (dnswl.org: query refused or over limit)" },
	{ DNSWL_WIDE, 0, 0, { "127.0.0.255" }, DNSBL_LIST_ERROR, "127.0.0.255",
	  "127.0.0.255: list error code (dnswl.org: query refused or over limit)" },
	/* Outside 127.0.0.0/8, at the edges and far off, even with every 127 code configured. */
	{ ZEN, 0, 0, { "10.1.2.3" }, DNSBL_LIST_ERROR, "10.1.2.3", "10.1.2.3: " OUTSIDE },
	{ ZEN, 0, 0, { "126.255.255.255" }, DNSBL_LIST_ERROR, "126.255.255.255",
	  "126.255.255.255: " OUTSIDE },
	{ ZEN, 0, 0, { "128.0.0.2" }, DNSBL_LIST_ERROR, "128.0.0.2", "128.0.0.2: " OUTSIDE },
	{ ZEN, 0, 0, { "0.0.0.0" }, DNSBL_LIST_ERROR, "0.0.0.0", "0.0.0.0: " OUTSIDE },
	{ ALL_LOOPBACK, 0, 0, { "198.51.100.1" }, DNSBL_LIST_ERROR, "198.51.100.1",
	  "198.51.100.1: " OUTSIDE },
	/* Several addresses: one configured code is enough among trustworthy ones... */
	{ ZEN, 0, 0, { "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.10" }, DNSBL_LISTED,
	  "127.0.0.2", "" },
	{ SBL_ONLY, 0, 0, { "127.0.0.2", "127.0.0.11" }, DNSBL_LISTED, "127.0.0.2", "" },
	{ SBL_ONLY, 0, 0, { "127.0.0.11", "127.0.0.3" }, DNSBL_LISTED, "127.0.0.3", "" },
	{ SBL_ONLY, 0, 0, { "127.0.0.10", "127.0.0.11" }, DNSBL_LIST_ERROR, "127.0.0.10",
	  "127.0.0.10: " NOT_CONF },
	/* ...but one error address makes the whole answer a list error, wherever it stands. */
	{ ZEN, 0, 0, { "127.0.0.2", "10.0.0.1" }, DNSBL_LIST_ERROR, "10.0.0.1", "10.0.0.1: " OUTSIDE },
	{ ZEN, 0, 0, { "127.0.0.4", "127.255.255.254" }, DNSBL_LIST_ERROR, "127.255.255.254",
	  "127.255.255.254: list refused the query (open/public resolver or no access)" },
	{ ZEN, 0, 0, { "127.255.255.254", "127.0.0.1" }, DNSBL_LIST_ERROR, "127.255.255.254",
	  "127.255.255.254: list refused the query (open/public resolver or no access)" },
	{ ZEN, 0, 0, { "127.0.0.3", "127.0.0.5", "127.0.0.7", "127.0.0.1" }, DNSBL_LIST_ERROR,
	  "127.0.0.1", "127.0.0.1: answer 127.0.0.1 is never a listing (dead list?)" },
};

static void test_interpret_table(void **state)
{
	(void)state;
	assert_true(ARRAY_LEN(interp_cases) >= 25);
	for (size_t i = 0; i < ARRAY_LEN(interp_cases); i++) {
		const struct interp_case *c = &interp_cases[i];
		struct dnsbl_config list;
		uint32_t addrs[MAX_ADDRS], code = 0xdeadbeef;
		char detail[DNSBL_DETAIL_MAX];
		size_t n = 0;
		enum dnsbl_state st;

		set_codes(&list, c->codes);
		while (n < MAX_ADDRS && c->addrs[n]) {
			addrs[n] = v4(c->addrs[n]);
			n++;
		}
		memset(detail, 'X', sizeof(detail));
		st = dnsbl_interpret(&list, c->nxdomain, c->failed, addrs, n, &code, detail,
				     sizeof(detail));
		if (st != c->want)
			fail_msg("row %zu: state %s, want %s", i, dnsbl_state_name(st),
				 dnsbl_state_name(c->want));
		if (code != (c->code ? v4(c->code) : 0))
			fail_msg("row %zu: code %08x, want %s", i, code, c->code ? c->code : "0");
		if (strcmp(detail, c->detail) != 0)
			fail_msg("row %zu: detail \"%s\", want \"%s\"", i, detail, c->detail);
	}
}

static void test_interpret_small_buffers(void **state)
{
	struct dnsbl_config list;
	uint32_t a = v4("10.1.2.3");
	char detail[8];

	(void)state;
	set_codes(&list, ZEN);
	/* Truncated, still terminated. */
	assert_int_equal(dnsbl_interpret(&list, 0, 0, &a, 1, NULL, detail, sizeof(detail)),
			 DNSBL_LIST_ERROR);
	assert_string_equal(detail, "10.1.2.");
	/* No detail buffer and no code pointer at all. */
	assert_int_equal(dnsbl_interpret(&list, 0, 0, &a, 1, NULL, NULL, 0), DNSBL_LIST_ERROR);
	assert_int_equal(dnsbl_interpret(&list, 0, 1, NULL, 0, NULL, NULL, 0),
			 DNSBL_RESOLVER_ERROR);
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(dnsbl_state_name(DNSBL_PENDING), "pending");
	assert_string_equal(dnsbl_state_name(DNSBL_LISTED), "listed");
	assert_string_equal(dnsbl_state_name(DNSBL_NOT_LISTED), "not-listed");
	assert_string_equal(dnsbl_state_name(DNSBL_LIST_ERROR), "list-error");
	assert_string_equal(dnsbl_state_name(DNSBL_RESOLVER_ERROR), "resolver-error");
	assert_string_equal(dnsbl_state_name(DNSBL_TIMEOUT), "timeout");
	assert_string_equal(dnsbl_state_name(DNSBL_SKIPPED), "skipped");
	assert_string_equal(dnsbl_state_name((enum dnsbl_state)99), "unknown");
	assert_string_equal(dnsbl_state_name((enum dnsbl_state)-1), "unknown");
}

/* ---- dnsbl_cache ---------------------------------------------------------------------------- */

#define SEED 0x1234abcdu

static struct dnsbl_answer answer(enum dnsbl_state st, const char *code, const char *txt,
				  const char *detail)
{
	struct dnsbl_answer a;

	memset(&a, 0, sizeof(a));
	a.state = st;
	a.code = code ? v4(code) : 0;
	snprintf(a.txt, sizeof(a.txt), "%s", txt);
	snprintf(a.detail, sizeof(a.detail), "%s", detail);
	return a;
}

static struct ip_addr nth_ip(unsigned n)
{
	struct ip_addr a = ip("10.0.0.0");

	a.b[13] = (uint8_t)(n >> 16);
	a.b[14] = (uint8_t)(n >> 8);
	a.b[15] = (uint8_t)n;
	return a;
}

static void test_cache_hit_miss_expiry(void **state)
{
	struct dnsbl_cache *c = dnsbl_cache_new(16, SEED);
	struct dnsbl_answer in = answer(DNSBL_LISTED, "127.0.0.4", "Listed: see example", "");
	struct dnsbl_answer out;
	struct ip_addr a = ip("192.0.2.1"), b = ip("2001:db8::1");

	(void)state;
	dnsbl_cache_put(c, 0, &a, 1000, 61000, &in);
	memset(&out, 0, sizeof(out));
	assert_int_equal(dnsbl_cache_get(c, 0, &a, 1000, &out), 1);
	assert_int_equal(out.state, DNSBL_LISTED);
	assert_int_equal(out.code, v4("127.0.0.4"));
	assert_string_equal(out.txt, "Listed: see example");
	assert_string_equal(out.detail, "");
	/* Other list index, other address: misses. */
	assert_int_equal(dnsbl_cache_get(c, 1, &a, 1000, &out), 0);
	assert_int_equal(dnsbl_cache_get(c, 0, &b, 1000, &out), 0);
	/* Still there one ms before expiry, gone at it (and removed). */
	assert_int_equal(dnsbl_cache_get(c, 0, &a, 60999, &out), 1);
	assert_int_equal(dnsbl_cache_get(c, 0, &a, 61000, &out), 0);
	assert_int_equal(dnsbl_cache_count(c), 0);
	dnsbl_cache_free(&c);
	assert_null(c);
	dnsbl_cache_free(&c); /* NULL is fine */
}

static void test_cache_replace(void **state)
{
	struct dnsbl_cache *c = dnsbl_cache_new(16, SEED);
	struct dnsbl_answer listed = answer(DNSBL_LISTED, "127.0.0.2", "old", "");
	struct dnsbl_answer clean = answer(DNSBL_NOT_LISTED, NULL, "", "");
	struct dnsbl_answer out;
	struct ip_addr a = ip("192.0.2.1");

	(void)state;
	dnsbl_cache_put(c, 3, &a, 0, 10000, &listed);
	dnsbl_cache_put(c, 3, &a, 0, 20000, &clean);
	assert_int_equal(dnsbl_cache_count(c), 1);
	assert_int_equal(dnsbl_cache_get(c, 3, &a, 15000, &out), 1);
	assert_int_equal(out.state, DNSBL_NOT_LISTED);
	assert_string_equal(out.txt, "");
	dnsbl_cache_free(&c);
}

static void test_cache_bound_evicts_oldest(void **state)
{
	enum { MAX = 4, INSERTS = 10 };
	struct dnsbl_cache *c = dnsbl_cache_new(MAX, SEED);
	struct dnsbl_answer in = answer(DNSBL_NOT_LISTED, NULL, "", "");
	struct dnsbl_answer out;

	(void)state;
	for (unsigned i = 0; i < INSERTS; i++) {
		struct ip_addr a = nth_ip(i);
		dnsbl_cache_put(c, 0, &a, 0, 1000000, &in);
		assert_true(dnsbl_cache_count(c) <= MAX);
	}
	assert_int_equal(dnsbl_cache_count(c), MAX);
	/* Nothing expired: the oldest went first, the newest MAX stay. */
	for (unsigned i = 0; i < INSERTS; i++) {
		struct ip_addr a = nth_ip(i);
		assert_int_equal(dnsbl_cache_get(c, 0, &a, 0, &out), i >= INSERTS - MAX);
	}
	dnsbl_cache_free(&c);
}

static void test_cache_evicts_expired_first(void **state)
{
	enum { MAX = 4 };
	struct dnsbl_cache *c = dnsbl_cache_new(MAX, SEED);
	struct dnsbl_answer in = answer(DNSBL_NOT_LISTED, NULL, "", "");
	struct dnsbl_answer out;
	struct ip_addr a[MAX + 1];

	(void)state;
	for (unsigned i = 0; i <= MAX; i++)
		a[i] = nth_ip(i);
	/* Entry 2 has a short TTL; the others live long. */
	for (unsigned i = 0; i < MAX; i++)
		dnsbl_cache_put(c, 0, &a[i], 0, i == 2 ? 100 : 1000000, &in);
	dnsbl_cache_put(c, 0, &a[MAX], 500, 1000000, &in);
	assert_int_equal(dnsbl_cache_count(c), MAX);
	assert_int_equal(dnsbl_cache_get(c, 0, &a[0], 500, &out), 1); /* oldest survived */
	assert_int_equal(dnsbl_cache_get(c, 0, &a[2], 500, &out), 0); /* expired one went */
	assert_int_equal(dnsbl_cache_get(c, 0, &a[MAX], 500, &out), 1);
	dnsbl_cache_free(&c);
}

static void test_cache_many(void **state)
{
	enum { N = 20000 };
	struct dnsbl_cache *c = dnsbl_cache_new(N, SEED);
	struct dnsbl_answer out;

	(void)state;
	for (unsigned i = 0; i < N; i++) {
		struct ip_addr a = nth_ip(i);
		struct dnsbl_answer in = answer(i % 2 ? DNSBL_LISTED : DNSBL_NOT_LISTED,
						i % 2 ? "127.0.0.2" : NULL, i % 3 ? "" : "t",
						"");
		dnsbl_cache_put(c, i % 3, &a, 0, 1000, &in);
	}
	assert_int_equal(dnsbl_cache_count(c), N);
	for (unsigned i = 0; i < N; i++) {
		struct ip_addr a = nth_ip(i);
		if (dnsbl_cache_get(c, i % 3, &a, 10, &out) != 1)
			fail_msg("entry %u lost", i);
		assert_int_equal(out.state, i % 2 ? DNSBL_LISTED : DNSBL_NOT_LISTED);
		assert_string_equal(out.txt, i % 3 ? "" : "t");
	}
	dnsbl_cache_free(&c);
}

static void test_cache_long_strings(void **state)
{
	struct dnsbl_cache *c = dnsbl_cache_new(2, SEED);
	struct dnsbl_answer in, out;
	struct ip_addr a = ip("192.0.2.9");

	(void)state;
	memset(&in, 0, sizeof(in));
	in.state = DNSBL_LISTED;
	memset(in.txt, 't', sizeof(in.txt) - 1);
	memset(in.detail, 'd', sizeof(in.detail) - 1);
	dnsbl_cache_put(c, 0, &a, 0, 10, &in);
	assert_int_equal(dnsbl_cache_get(c, 0, &a, 0, &out), 1);
	assert_int_equal(strlen(out.txt), DNSBL_TXT_MAX - 1);
	assert_int_equal(strlen(out.detail), DNSBL_DETAIL_MAX - 1);
	dnsbl_cache_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_name),
		cmocka_unit_test(test_query_name_v6_shape),
		cmocka_unit_test(test_query_name_zero_buffer),
		cmocka_unit_test(test_interpret_table),
		cmocka_unit_test(test_interpret_small_buffers),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test(test_cache_hit_miss_expiry),
		cmocka_unit_test(test_cache_replace),
		cmocka_unit_test(test_cache_bound_evicts_oldest),
		cmocka_unit_test(test_cache_evicts_expired_first),
		cmocka_unit_test(test_cache_many),
		cmocka_unit_test(test_cache_long_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
