/* Unit tests for model: the immutable policy snapshot. IP Allow/Block lists by longest prefix
 * (v4, v6, /0, host entries, ties, IPv4-mapped separation, tenant isolation), the order and
 * completeness of model_ip_each_match, domains and names, connectors by IP and by TLS name,
 * reference counting, unknown references, a 100,000-entry table checked against a
 * brute-force scan, and the lookup's prefix filter: every length 0..128 along one address,
 * its anchor boundaries, clients near entries they are not in, and 40,000 entries of any
 * length against brute force. Table failures name the row through fail_msg(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "policy/model.h"
#include "util/addr.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------------------------ */

static struct cidr cidr_of(const char *s)
{
	struct cidr c;

	if (cidr_parse(s, &c) != ADDR_OK)
		fail_msg("bad CIDR in test: %s", s);
	return c;
}

static struct ip_addr ip_of(const char *s)
{
	struct ip_addr ip;

	if (ip_parse(s, &ip) != 0)
		fail_msg("bad IP in test: %s", s);
	return ip;
}

static const char *fmt_cidr(const struct cidr *c, char *out, size_t outsz)
{
	return cidr_format(c, out, outsz);
}

static struct model_snapshot *finish(struct model_builder **b, uint64_t generation)
{
	return model_builder_finish(b, generation);
}

/* An entry to add: tenant id, list, CIDR text, comment. */
struct entry_spec {
	uint32_t tenant_id;
	enum ip_list list;
	const char *cidr;
	const char *comment;
};

/* Builds a snapshot with tenants 1..ntenants named t1.. and the given entries. */
static struct model_snapshot *build_entries(unsigned ntenants, const struct entry_spec *e,
					    size_t n)
{
	struct model_builder *b = model_builder_new();
	char name[16];

	for (unsigned i = 1; i <= ntenants; i++) {
		snprintf(name, sizeof(name), "t%u", i);
		assert_int_equal(model_add_tenant(b, i, name, "127.0.0.1:2525"), 0);
	}
	for (size_t i = 0; i < n; i++) {
		struct cidr c = cidr_of(e[i].cidr);
		assert_int_equal(model_add_ip_entry(b, e[i].tenant_id, e[i].list, &c, e[i].comment), 0);
	}
	struct model_snapshot *s = finish(&b, 7);
	assert_null(b);
	assert_non_null(s);
	return s;
}

static const struct model_tenant *tenant_named(const struct model_snapshot *s, const char *name)
{
	const struct model_tenant *t = model_tenant_by_name(s, name);

	if (!t)
		fail_msg("no tenant %s", name);
	return t;
}

/* A lookup probe: tenant, address, expected winner (NULL = none), its list and comment. */
struct probe {
	const char *tenant;
	const char *ip;
	const char *want; /* CIDR as cidr_format writes it, NULL = no match */
	enum ip_list list;
	const char *comment;
};

static void run_probes(const struct model_snapshot *s, const struct probe *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct model_tenant *t = tenant_named(s, p[i].tenant);
		struct ip_addr ip = ip_of(p[i].ip);
		const struct model_ip_entry *e = model_ip_lookup(s, t, &ip);
		char got[ADDR_STR_MAX + 8];

		if (!p[i].want) {
			if (e)
				fail_msg("%s %s: want no match, got %s (%s)", p[i].tenant, p[i].ip,
					 fmt_cidr(&e->net, got, sizeof(got)),
					 e->list == IP_LIST_BLOCK ? "block" : "allow");
			continue;
		}
		if (!e)
			fail_msg("%s %s: want %s, got no match", p[i].tenant, p[i].ip, p[i].want);
		fmt_cidr(&e->net, got, sizeof(got));
		if (strcmp(got, p[i].want) != 0 || e->list != p[i].list)
			fail_msg("%s %s: want %s (%s), got %s (%s)", p[i].tenant, p[i].ip, p[i].want,
				 p[i].list == IP_LIST_BLOCK ? "block" : "allow", got,
				 e->list == IP_LIST_BLOCK ? "block" : "allow");
		if (e->tenant != t)
			fail_msg("%s %s: entry belongs to tenant %s", p[i].tenant, p[i].ip,
				 e->tenant ? e->tenant->name : "(null)");
		if (p[i].comment && strcmp(e->comment, p[i].comment) != 0)
			fail_msg("%s %s: comment \"%s\", want \"%s\"", p[i].tenant, p[i].ip, e->comment,
				 p[i].comment);
		if (!cidr_contains(&e->net, &ip))
			fail_msg("%s %s: winner %s does not contain the address", p[i].tenant, p[i].ip,
				 got);
	}
}

#define A IP_LIST_ALLOW
#define B IP_LIST_BLOCK

/* ---- longest prefix ----------------------------------------------------------------------- */

static const struct entry_spec nested_entries[] = {
	{ 1, B, "10.0.0.0/8", "ten" },
	{ 1, A, "10.1.0.0/16", "ten-one" },
	{ 1, B, "10.1.2.0/24", "ten-one-two" },
	{ 1, A, "10.1.2.3/32", "host" },
	{ 1, B, "2001:db8::/32", "doc" },
	{ 1, A, "2001:db8:1::/48", "doc-1" },
	{ 1, B, "2001:db8:1:2::/64", "doc-1-2" },
	{ 1, A, "2001:db8:1:2::5/128", "doc-host" },
	/* Odd prefix lengths: bit boundaries inside an octet. */
	{ 1, A, "172.16.0.0/12", "odd12" },
	{ 1, B, "172.20.0.0/14", "odd14" },
	{ 1, A, "172.21.128.0/17", "odd17" },
	{ 1, B, "2001:db8:8000::/33", "odd33" },
};

static const struct probe nested_probes[] = {
	{ "t1", "10.9.9.9", "10.0.0.0/8", B, "ten" },
	{ "t1", "10.0.0.0", "10.0.0.0/8", B, "ten" },
	{ "t1", "10.255.255.255", "10.0.0.0/8", B, "ten" },
	{ "t1", "10.1.9.9", "10.1.0.0/16", A, "ten-one" },
	{ "t1", "10.1.255.255", "10.1.0.0/16", A, "ten-one" },
	{ "t1", "10.1.2.9", "10.1.2.0/24", B, "ten-one-two" },
	{ "t1", "10.1.2.2", "10.1.2.0/24", B, "ten-one-two" },
	{ "t1", "10.1.2.4", "10.1.2.0/24", B, "ten-one-two" },
	{ "t1", "10.1.2.3", "10.1.2.3/32", A, "host" },
	{ "t1", "10.2.2.3", "10.0.0.0/8", B, "ten" },
	{ "t1", "11.0.0.1", NULL, 0, NULL },
	{ "t1", "9.255.255.255", NULL, 0, NULL },
	{ "t1", "2001:db8:4444::1", "2001:db8::/32", B, "doc" },
	{ "t1", "2001:db8:ffff::1", "2001:db8:8000::/33", B, "odd33" },
	{ "t1", "2001:db8:1:ffff::1", "2001:db8:1::/48", A, "doc-1" },
	{ "t1", "2001:db8:1:2::6", "2001:db8:1:2::/64", B, "doc-1-2" },
	{ "t1", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64", B, "doc-1-2" },
	{ "t1", "2001:db8:1:2::5", "2001:db8:1:2::5/128", A, "doc-host" },
	{ "t1", "2001:db9::1", NULL, 0, NULL },
	{ "t1", "2001:db7:ffff:ffff::1", NULL, 0, NULL },
	{ "t1", "172.16.0.1", "172.16.0.0/12", A, "odd12" },
	{ "t1", "172.31.255.255", "172.16.0.0/12", A, "odd12" },
	{ "t1", "172.32.0.0", NULL, 0, NULL },
	{ "t1", "172.20.0.1", "172.20.0.0/14", B, "odd14" },
	{ "t1", "172.23.255.255", "172.20.0.0/14", B, "odd14" },
	{ "t1", "172.24.0.0", "172.16.0.0/12", A, "odd12" },
	{ "t1", "172.21.127.255", "172.20.0.0/14", B, "odd14" },
	{ "t1", "172.21.128.0", "172.21.128.0/17", A, "odd17" },
	{ "t1", "172.21.255.255", "172.21.128.0/17", A, "odd17" },
	{ "t1", "2001:db8:7fff::1", "2001:db8::/32", B, "doc" },
	{ "t1", "2001:db8:8000::1", "2001:db8:8000::/33", B, "odd33" },
};

static void test_longest_prefix(void **state)
{
	struct model_snapshot *s = build_entries(1, nested_entries, ARRAY_LEN(nested_entries));
	const struct model_tenant *t = tenant_named(s, "t1");

	(void)state;
	run_probes(s, nested_probes, ARRAY_LEN(nested_probes));
	assert_int_equal(t->nallow, 6);
	assert_int_equal(t->nblock, 6);
	model_unref(&s);
	assert_null(s);
}

/* Insertion order must not matter: the same entries added backwards give the same answers. */
static void test_longest_prefix_any_order(void **state)
{
	struct entry_spec rev[ARRAY_LEN(nested_entries)];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(nested_entries); i++)
		rev[i] = nested_entries[ARRAY_LEN(nested_entries) - 1 - i];
	struct model_snapshot *s = build_entries(1, rev, ARRAY_LEN(rev));
	run_probes(s, nested_probes, ARRAY_LEN(nested_probes));
	model_unref(&s);
}

/* ---- ties, /0, host entries ----------------------------------------------------------------- */

static const struct entry_spec tie_entries[] = {
	/* t1: Allow added first, t2: Block added first, t3: several of each on one key */
	{ 1, A, "192.0.2.0/24", "allow" },
	{ 1, B, "192.0.2.0/24", "block" },
	{ 2, B, "192.0.2.0/24", "block" },
	{ 2, A, "192.0.2.0/24", "allow" },
	{ 3, A, "2001:db8::/48", "allow1" },
	{ 3, A, "2001:db8::/48", "allow2" },
	{ 3, B, "2001:db8::/48", "block" },
	{ 3, A, "2001:db8::/48", "allow3" },
	/* a tie at a shorter prefix does not beat a longer Allow */
	{ 3, A, "2001:db8::1/128", "host" },
	/* ties at /0 and at host prefixes */
	{ 4, A, "0.0.0.0/0", "all4-allow" },
	{ 4, B, "0.0.0.0/0", "all4-block" },
	{ 4, B, "198.51.100.7/32", "host-block" },
	{ 4, A, "198.51.100.7/32", "host-allow" },
	{ 4, A, "::/0", "all-allow" },
	{ 4, B, "::/0", "all-block" },
	{ 4, A, "2001:db8::7/128", "h6-allow" },
	{ 4, B, "2001:db8::7/128", "h6-block" },
};

static const struct probe tie_probes[] = {
	{ "t1", "192.0.2.1", "192.0.2.0/24", B, "block" },
	{ "t2", "192.0.2.1", "192.0.2.0/24", B, "block" },
	{ "t3", "2001:db8::2", "2001:db8::/48", B, "block" },
	{ "t3", "2001:db8::1", "2001:db8::1/128", A, "host" },
	{ "t4", "203.0.113.1", "0.0.0.0/0", B, "all4-block" },
	{ "t4", "198.51.100.7", "198.51.100.7/32", B, "host-block" },
	{ "t4", "2001:db8::8", "::/0", B, "all-block" },
	{ "t4", "2001:db8::7", "2001:db8::7/128", B, "h6-block" },
};

static void test_tie_block_wins(void **state)
{
	struct model_snapshot *s = build_entries(4, tie_entries, ARRAY_LEN(tie_entries));

	(void)state;
	run_probes(s, tie_probes, ARRAY_LEN(tie_probes));
	model_unref(&s);
}

static const struct entry_spec zero_entries[] = {
	{ 1, B, "0.0.0.0/0", "all v4" },
	{ 2, A, "::/0", "all" },
	{ 3, A, "0.0.0.0/0", "all v4" },
	{ 3, B, "::/0", "all" },
	{ 3, B, "0.0.0.0/1", "low half" },
	{ 3, A, "128.0.0.0/1", "high half" },
};

static const struct probe zero_probes[] = {
	{ "t1", "0.0.0.0", "0.0.0.0/0", B, "all v4" },
	{ "t1", "1.2.3.4", "0.0.0.0/0", B, "all v4" },
	{ "t1", "255.255.255.255", "0.0.0.0/0", B, "all v4" },
	{ "t1", "::ffff:1.2.3.4", "0.0.0.0/0", B, "all v4" },
	/* An IPv4 /0 is ::ffff:0:0/96: no IPv6 address outside it. */
	{ "t1", "::", NULL, 0, NULL },
	{ "t1", "::1", NULL, 0, NULL },
	{ "t1", "::1.2.3.4", NULL, 0, NULL },      /* IPv4-compatible, not mapped */
	{ "t1", "64:ff9b::1.2.3.4", NULL, 0, NULL }, /* NAT64 */
	{ "t1", "::fffe:1.2.3.4", NULL, 0, NULL },
	{ "t1", "2001:db8::1", NULL, 0, NULL },
	{ "t1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL, 0, NULL },
	{ "t2", "::", "::/0", A, "all" },
	{ "t2", "2001:db8::1", "::/0", A, "all" },
	{ "t2", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0", A, "all" },
	/* IPv4 is stored mapped (util/addr.h): ::/0 contains ::ffff:0:0/96, so every IPv4
	 * client as well. */
	{ "t2", "192.0.2.1", "::/0", A, "all" },
	/* The IPv4 /0 is more specific than ::/0 for an IPv4 client; /1 more still. */
	{ "t3", "10.0.0.1", "0.0.0.0/1", B, "low half" },
	{ "t3", "127.255.255.255", "0.0.0.0/1", B, "low half" },
	{ "t3", "128.0.0.0", "128.0.0.0/1", A, "high half" },
	{ "t3", "2001:db8::1", "::/0", B, "all" },
};

static void test_zero_prefix(void **state)
{
	struct model_snapshot *s = build_entries(3, zero_entries, ARRAY_LEN(zero_entries));

	(void)state;
	run_probes(s, zero_probes, ARRAY_LEN(zero_probes));
	model_unref(&s);
}

static const struct entry_spec host_entries[] = {
	{ 1, B, "192.0.2.7/32", "h4" },
	{ 1, A, "198.51.100.9", "no slash" }, /* a host without /len is a /32 */
	{ 1, B, "0.0.0.0/32", "zero" },
	{ 1, B, "255.255.255.255/32", "ones" },
	{ 1, B, "2001:db8::7/128", "h6" },
	{ 1, A, "2001:db8::9", "no slash 6" },
	{ 1, B, "::/128", "unspec" },
	{ 1, B, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", "ones6" },
	{ 1, A, "::ffff:203.0.113.5/128", "mapped host" },
};

static const struct probe host_probes[] = {
	{ "t1", "192.0.2.7", "192.0.2.7/32", B, "h4" },
	{ "t1", "192.0.2.6", NULL, 0, NULL },
	{ "t1", "192.0.2.8", NULL, 0, NULL },
	{ "t1", "::ffff:192.0.2.7", "192.0.2.7/32", B, "h4" },
	{ "t1", "::192.0.2.7", NULL, 0, NULL },
	{ "t1", "198.51.100.9", "198.51.100.9/32", A, "no slash" },
	{ "t1", "198.51.100.8", NULL, 0, NULL },
	{ "t1", "0.0.0.0", "0.0.0.0/32", B, "zero" },
	{ "t1", "0.0.0.1", NULL, 0, NULL },
	{ "t1", "255.255.255.255", "255.255.255.255/32", B, "ones" },
	{ "t1", "255.255.255.254", NULL, 0, NULL },
	{ "t1", "2001:db8::7", "2001:db8::7/128", B, "h6" },
	{ "t1", "2001:db8::6", NULL, 0, NULL },
	{ "t1", "2001:db8::8", NULL, 0, NULL },
	{ "t1", "2001:db8::9", "2001:db8::9/128", A, "no slash 6" },
	{ "t1", "::", "::/128", B, "unspec" },
	{ "t1", "::1", NULL, 0, NULL },
	{ "t1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
	  B, "ones6" },
	{ "t1", "203.0.113.5", "203.0.113.5/32", A, "mapped host" },
};

static void test_host_entries(void **state)
{
	struct model_snapshot *s = build_entries(1, host_entries, ARRAY_LEN(host_entries));

	(void)state;
	run_probes(s, host_probes, ARRAY_LEN(host_probes));
	model_unref(&s);
}

/* IPv4 entries never match IPv6 addresses outside ::ffff:0:0/96, and IPv6 entries that do
 * not cover that range never match IPv4 addresses. */
static const struct entry_spec family_entries[] = {
	{ 1, B, "192.0.2.0/24", "v4" },
	{ 1, B, "10.0.0.0/8", "v4 ten" },
	{ 2, B, "2001:db8::/32", "v6" },
	{ 2, B, "::/96", "v4-compatible" },
	{ 2, B, "64:ff9b::/96", "nat64" },
	{ 2, B, "::1/128", "loopback" },
	{ 2, B, "fe80::/10", "link-local" },
	{ 3, A, "::ffff:0:0/96", "all mapped" }, /* written as IPv6: still all of IPv4 */
	{ 3, B, "::ffff:192.0.2.0/120", "v4 /24 written as v6" },
};

static const struct probe family_probes[] = {
	{ "t1", "192.0.2.1", "192.0.2.0/24", B, "v4" },
	{ "t1", "::ffff:192.0.2.1", "192.0.2.0/24", B, "v4" },
	{ "t1", "::192.0.2.1", NULL, 0, NULL },
	{ "t1", "64:ff9b::192.0.2.1", NULL, 0, NULL },
	{ "t1", "2001:db8::c000:201", NULL, 0, NULL },
	{ "t1", "c000:201::", NULL, 0, NULL },
	{ "t1", "a00::1", NULL, 0, NULL },
	{ "t1", "10.1.2.3", "10.0.0.0/8", B, "v4 ten" },
	{ "t2", "192.0.2.1", NULL, 0, NULL },
	{ "t2", "0.0.0.1", NULL, 0, NULL },
	{ "t2", "0.0.0.0", NULL, 0, NULL },
	{ "t2", "32.1.13.184", NULL, 0, NULL }, /* 0x20010db8 as IPv4 */
	{ "t2", "2001:db8::1", "2001:db8::/32", B, "v6" },
	{ "t2", "::192.0.2.1", "::/96", B, "v4-compatible" },
	{ "t2", "64:ff9b::192.0.2.1", "64:ff9b::/96", B, "nat64" },
	{ "t2", "::1", "::1/128", B, "loopback" },
	{ "t2", "fe80::1", "fe80::/10", B, "link-local" },
	{ "t3", "8.8.8.8", "0.0.0.0/0", A, "all mapped" },
	{ "t3", "192.0.2.9", "192.0.2.0/24", B, "v4 /24 written as v6" },
	{ "t3", "2001:db8::1", NULL, 0, NULL },
	{ "t3", "::1", NULL, 0, NULL },
};

static void test_family_separation(void **state)
{
	struct model_snapshot *s = build_entries(3, family_entries, ARRAY_LEN(family_entries));

	(void)state;
	run_probes(s, family_probes, ARRAY_LEN(family_probes));
	model_unref(&s);
}

/* Tenant A's entries never match for tenant B, whatever their prefixes. */
static const struct entry_spec isolation_entries[] = {
	{ 1, B, "192.0.2.0/24", "A block" },
	{ 1, A, "2001:db8::/32", "A allow" },
	{ 2, A, "192.0.2.1/32", "B allow" },
	{ 2, B, "0.0.0.0/0", "B block all v4" },
	{ 3, A, "198.51.100.0/24", "C allow" },
};

static const struct probe isolation_probes[] = {
	{ "t1", "192.0.2.1", "192.0.2.0/24", B, "A block" },
	{ "t1", "198.51.100.1", NULL, 0, NULL },
	{ "t1", "2001:db8::1", "2001:db8::/32", A, "A allow" },
	{ "t2", "192.0.2.1", "192.0.2.1/32", A, "B allow" },
	{ "t2", "192.0.2.2", "0.0.0.0/0", B, "B block all v4" },
	{ "t2", "198.51.100.1", "0.0.0.0/0", B, "B block all v4" },
	{ "t2", "2001:db8::1", NULL, 0, NULL },
	{ "t3", "192.0.2.1", NULL, 0, NULL },
	{ "t3", "198.51.100.1", "198.51.100.0/24", A, "C allow" },
	{ "t4", "192.0.2.1", NULL, 0, NULL }, /* a tenant without entries */
	{ "t4", "2001:db8::1", NULL, 0, NULL },
};

static void test_tenant_isolation(void **state)
{
	struct model_snapshot *s = build_entries(4, isolation_entries, ARRAY_LEN(isolation_entries));

	(void)state;
	run_probes(s, isolation_probes, ARRAY_LEN(isolation_probes));
	assert_int_equal(tenant_named(s, "t4")->nallow, 0);
	assert_int_equal(tenant_named(s, "t4")->nblock, 0);
	assert_int_equal(tenant_named(s, "t2")->nallow, 1);
	assert_int_equal(tenant_named(s, "t2")->nblock, 1);
	model_unref(&s);
}

/* Host bits in a CIDR given to the builder are cleared (the store refuses them; the index
 * still must not depend on it). */
static void test_entry_host_bits_masked(void **state)
{
	struct model_builder *b = model_builder_new();
	struct cidr c;
	char text[ADDR_STR_MAX + 8];

	(void)state;
	assert_int_equal(model_add_tenant(b, 1, "t1", "127.0.0.1:25"), 0);
	c = cidr_of("10.1.2.3/32");
	c.prefix = 96 + 8; /* 10.1.2.3/8 */
	assert_int_equal(model_add_ip_entry(b, 1, IP_LIST_BLOCK, &c, NULL), 0);
	struct model_snapshot *s = finish(&b, 1);
	struct ip_addr ip = ip_of("10.200.0.1");
	const struct model_ip_entry *e = model_ip_lookup(s, model_tenant_at(s, 0), &ip);
	assert_non_null(e);
	assert_string_equal(cidr_format(&e->net, text, sizeof(text)), "10.0.0.0/8");
	assert_string_equal(e->comment, ""); /* NULL comment reads as "" */
	model_unref(&s);
}

/* ---- model_ip_each_match / model_ip_each ------------------------------------------------------ */

struct collected {
	const struct model_ip_entry *e[64];
	size_t n;
};

static void collect_entry(const struct model_ip_entry *e, void *arg)
{
	struct collected *c = arg;

	if (c->n >= ARRAY_LEN(c->e))
		fail_msg("too many callbacks");
	c->e[c->n++] = e;
}

static const struct entry_spec order_entries[] = {
	{ 1, B, "10.0.0.0/8", "b8" },
	{ 1, A, "10.1.0.0/16", "a16" },
	{ 1, B, "10.1.0.0/16", "b16" },
	{ 1, A, "10.1.2.0/24", "a24" },
	{ 1, A, "10.1.2.3/32", "a32" },
	{ 1, B, "10.1.2.3/32", "b32" },
	{ 1, A, "10.1.2.0/25", "a25" },
	{ 1, A, "0.0.0.0/0", "a0" },
	{ 1, B, "::/0", "b-all" },
	{ 1, A, "10.1.2.4/32", "not this host" },
	{ 1, B, "11.0.0.0/8", "other net" },
	{ 1, A, "2001:db8::/32", "v6" },
	{ 2, B, "10.1.2.3/32", "other tenant" },
	{ 2, A, "10.0.0.0/8", "other tenant" },
};

static void test_each_match_order(void **state)
{
	static const char *const want[] = {
		"b32", "a32", "a25", "a24", "b16", "a16", "b8", "a0", "b-all",
	};
	struct model_snapshot *s = build_entries(2, order_entries, ARRAY_LEN(order_entries));
	const struct model_tenant *t = tenant_named(s, "t1");
	struct ip_addr ip = ip_of("10.1.2.3");
	struct collected c = { .n = 0 };

	(void)state;
	model_ip_each_match(s, t, &ip, collect_entry, &c);
	for (size_t i = 0; i < c.n && i < ARRAY_LEN(want); i++)
		if (strcmp(c.e[i]->comment, want[i]) != 0)
			fail_msg("match %zu: got %s, want %s", i, c.e[i]->comment, want[i]);
	assert_int_equal(c.n, ARRAY_LEN(want));
	/* The first match is the lookup's winner. */
	assert_ptr_equal(c.e[0], model_ip_lookup(s, t, &ip));

	/* An address with no entry: no callback. */
	c.n = 0;
	ip = ip_of("2001:db9::1");
	model_ip_each_match(s, tenant_named(s, "t2"), &ip, collect_entry, &c);
	assert_int_equal(c.n, 0);

	/* model_ip_each: exactly the tenant's entries, each once. */
	c.n = 0;
	model_ip_each(s, t, collect_entry, &c);
	assert_int_equal(c.n, 12);
	assert_int_equal(t->nallow + t->nblock, 12);
	for (size_t i = 0; i < c.n; i++) {
		assert_ptr_equal(c.e[i]->tenant, t);
		for (size_t j = 0; j < i; j++)
			assert_ptr_not_equal(c.e[i], c.e[j]);
	}
	c.n = 0;
	model_ip_each(s, tenant_named(s, "t2"), collect_entry, &c);
	assert_int_equal(c.n, 2);
	model_unref(&s);
}

/* Completeness: for many addresses, each_match reports exactly the entries containing the
 * address (checked by cidr_contains over model_ip_each), longest first, Block before Allow on
 * a tie. */

static void test_each_match_complete(void **state)
{
	static const char *const probes[] = {
		"10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.200", "10.1.3.1", "10.2.0.0",
		"11.1.1.1", "12.0.0.1", "0.0.0.0", "255.255.255.255", "2001:db8::1", "2001:db9::",
		"::", "::1",
	};
	struct model_snapshot *s = build_entries(2, order_entries, ARRAY_LEN(order_entries));
	const struct model_tenant *t = tenant_named(s, "t1");
	struct collected all = { .n = 0 };

	(void)state;
	model_ip_each(s, t, collect_entry, &all);
	for (size_t p = 0; p < ARRAY_LEN(probes); p++) {
		struct ip_addr ip = ip_of(probes[p]);
		struct collected got = { .n = 0 };
		size_t want = 0;

		model_ip_each_match(s, t, &ip, collect_entry, &got);
		for (size_t i = 0; i < all.n; i++)
			if (cidr_contains(&all.e[i]->net, &ip))
				want++;
		if (got.n != want)
			fail_msg("%s: %zu matches reported, %zu entries contain it", probes[p], got.n,
				 want);
		for (size_t i = 0; i < got.n; i++) {
			if (!cidr_contains(&got.e[i]->net, &ip))
				fail_msg("%s: reported entry %s does not contain it", probes[p],
					 got.e[i]->comment);
			for (size_t j = 0; j < i; j++)
				if (got.e[i] == got.e[j])
					fail_msg("%s: entry %s reported twice", probes[p], got.e[i]->comment);
			if (i == 0)
				continue;
			const struct model_ip_entry *x = got.e[i - 1], *y = got.e[i];
			if (x->net.prefix < y->net.prefix ||
			    (x->net.prefix == y->net.prefix && x->list == IP_LIST_ALLOW &&
			     y->list == IP_LIST_BLOCK))
				fail_msg("%s: %s reported before %s", probes[p], x->comment, y->comment);
		}
		const struct model_ip_entry *w = model_ip_lookup(s, t, &ip);
		assert_ptr_equal(w, got.n ? got.e[0] : NULL);
	}
	model_unref(&s);
}

struct conn_hit {
	const struct model_connector *c;
	struct cidr range;
};

struct conn_hits {
	struct conn_hit h[16];
	size_t n;
};

static void collect_conn_ip(const struct model_connector *c, const struct cidr *range, void *arg)
{
	struct conn_hits *hits = arg;

	if (hits->n >= ARRAY_LEN(hits->h))
		fail_msg("too many connector callbacks");
	hits->h[hits->n].c = c;
	hits->h[hits->n].range = *range;
	hits->n++;
}

static void collect_conn_tls(const struct model_connector *c, void *arg)
{
	struct conn_hits *hits = arg;

	if (hits->n >= ARRAY_LEN(hits->h))
		fail_msg("too many connector callbacks");
	hits->h[hits->n++].c = c;
}

/* ---- tenants and domains ----------------------------------------------------------------- */

static void test_tenants_and_domains(void **state)
{
	struct model_builder *b = model_builder_new();

	(void)state;
	/* Added out of id order; read back sorted by id. */
	assert_int_equal(model_add_tenant(b, 30, "gamma", "10.0.0.3:25"), 0);
	assert_int_equal(model_add_tenant(b, 10, "acme", "10.0.0.1:25"), 0);
	assert_int_equal(model_add_tenant(b, 20, "beta", "[2001:db8::25]:2525"), 0);
	assert_int_equal(model_add_domain(b, 10, "acme.example"), 0);
	assert_int_equal(model_add_domain(b, 10, "acme-corp.example"), 0);
	assert_int_equal(model_add_domain(b, 20, "beta.example"), 0);
	assert_int_equal(model_add_domain(b, 20, "xn--bta-bma.example"), 0);
	/* Many domains for one tenant, to grow the hash beyond its first size. */
	for (int i = 0; i < 100; i++) {
		char d[32];
		snprintf(d, sizeof(d), "d%03d.gamma.example", i);
		assert_int_equal(model_add_domain(b, 30, d), 0);
	}
	struct model_snapshot *s = finish(&b, 42);

	assert_int_equal(model_generation(s), 42);
	assert_int_equal(model_ntenants(s), 3);
	assert_int_equal(model_tenant_at(s, 0)->id, 10);
	assert_int_equal(model_tenant_at(s, 1)->id, 20);
	assert_int_equal(model_tenant_at(s, 2)->id, 30);
	assert_null(model_tenant_at(s, 3));

	const struct model_tenant *acme = model_tenant_by_name(s, "acme");
	const struct model_tenant *beta = model_tenant_by_name(s, "beta");
	const struct model_tenant *gamma = model_tenant_by_name(s, "gamma");
	assert_non_null(acme);
	assert_non_null(beta);
	assert_non_null(gamma);
	assert_string_equal(acme->route, "10.0.0.1:25");
	assert_string_equal(beta->route, "[2001:db8::25]:2525");
	assert_int_equal(acme->ndomains, 2);
	assert_int_equal(gamma->ndomains, 100);
	assert_null(model_tenant_by_name(s, "delta"));
	assert_null(model_tenant_by_name(s, ""));
	assert_null(model_tenant_by_name(s, "acm"));
	assert_null(model_tenant_by_name(s, "acmee"));

	static const struct {
		const char *domain;
		const char *tenant; /* NULL = none */
	} rows[] = {
		{ "acme.example", "acme" },
		{ "acme-corp.example", "acme" },
		{ "beta.example", "beta" },
		{ "xn--bta-bma.example", "beta" },
		{ "d000.gamma.example", "gamma" },
		{ "d099.gamma.example", "gamma" },
		{ "d100.gamma.example", NULL },
		/* exact match of the stored lower-case A-label only */
		{ "ACME.EXAMPLE", NULL },
		{ "Acme.example", NULL },
		{ "sub.acme.example", NULL },
		{ "cme.example", NULL },
		{ "example", NULL },
		{ "acme.example.", NULL },
		{ "gamma.example", NULL },
		{ "", NULL },
	};
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		const struct model_tenant *t = model_tenant_for_domain(s, rows[i].domain);
		if (!rows[i].tenant ? t != NULL : (!t || strcmp(t->name, rows[i].tenant) != 0))
			fail_msg("domain \"%s\": tenant %s, want %s", rows[i].domain,
				 t ? t->name : "(none)", rows[i].tenant ? rows[i].tenant : "(none)");
	}
	model_unref(&s);
}

/* An empty builder gives a working, empty snapshot. */
static void test_empty_snapshot(void **state)
{
	struct model_builder *b = model_builder_new();
	struct model_snapshot *s = finish(&b, 1);
	struct ip_addr ip = ip_of("192.0.2.1");
	struct conn_hits hits = { .n = 0 };

	(void)state;
	assert_int_equal(model_ntenants(s), 0);
	assert_null(model_tenant_at(s, 0));
	assert_null(model_tenant_by_name(s, "acme"));
	assert_null(model_tenant_for_domain(s, "acme.example"));
	model_connectors_matching_ip(s, &ip, collect_conn_ip, &hits);
	model_connectors_matching_tls(s, "mx.example", collect_conn_tls, &hits);
	assert_int_equal(hits.n, 0);
	model_unref(&s);
}

/* A policy with tenants but no connector at all (the usual fresh install). */
static void test_no_connectors(void **state)
{
	(void)state;
	struct model_builder *b = model_builder_new();
	struct ip_addr ip = ip_of("192.0.2.1");
	struct conn_hits hits = { .n = 0 };

	assert_int_equal(model_add_tenant(b, 1, "acme", "10.0.0.1:25"), 0);
	struct model_snapshot *s = model_builder_finish(&b, 1);
	assert_int_equal(model_ntenants(s), 1);
	assert_int_equal(model_tenant_at(s, 0)->nconnectors, 0);
	model_connectors_matching_ip(s, &ip, collect_conn_ip, &hits);
	model_connectors_matching_tls(s, "mx.example", collect_conn_tls, &hits);
	assert_int_equal(hits.n, 0);
	model_unref(&s);
}

/* ---- connectors ----------------------------------------------------------------------------- */

/* tenants: acme (1), beta (2); connectors by id; tenant 99 does not exist. */
static struct model_snapshot *build_connectors(void)
{
	static const struct {
		uint32_t id, tenant;
		const char *name;
		enum connector_type type;
		const char *tls_name;
		int require_tls;
		const char *ranges[4];
	} conns[] = {
		{ 11, 1, "acme-mail", CONNECTOR_ONPREM, "mail.acme.example", 0,
		  { "192.0.2.0/24", "192.0.2.128/25", "192.0.2.130/32" } },
		{ 12, 2, "beta-partner", CONNECTOR_PARTNER, "", 1, { "192.0.2.128/26" } },
		{ 13, 2, "beta-onprem", CONNECTOR_ONPREM, "MX.Beta.Example", 0, { "192.0.0.0/16" } },
		{ 14, 1, "acme-partner", CONNECTOR_PARTNER, "mail.acme.example", 0,
		  { "2001:db8::/32", "2001:db8:1::/48" } },
		{ 15, 99, "orphan", CONNECTOR_ONPREM, "mail.acme.example", 0, { "192.0.2.130/32" } },
		{ 16, 2, "beta-twin", CONNECTOR_ONPREM, "", 0, { "192.0.0.0/16" } },
		{ 17, 1, "acme-tls-only", CONNECTOR_ONPREM, "relay.acme.example", 0, { NULL } },
		{ 18, 2, "beta-all", CONNECTOR_PARTNER, "", 0, { "0.0.0.0/0", "::/0" } },
	};
	struct model_builder *b = model_builder_new();

	assert_int_equal(model_add_tenant(b, 2, "beta", "10.0.0.2:25"), 0);
	assert_int_equal(model_add_tenant(b, 1, "acme", "10.0.0.1:25"), 0);
	assert_int_equal(model_add_domain(b, 1, "acme.example"), 0);
	for (size_t i = 0; i < ARRAY_LEN(conns); i++) {
		model_add_connector(b, conns[i].id, conns[i].tenant, conns[i].name, conns[i].type,
				    conns[i].tls_name, conns[i].require_tls);
		for (size_t r = 0; r < ARRAY_LEN(conns[i].ranges) && conns[i].ranges[r]; r++) {
			struct cidr c = cidr_of(conns[i].ranges[r]);
			model_add_connector_range(b, conns[i].id, &c);
		}
	}
	/* A range for a connector that does not exist. */
	struct cidr c = cidr_of("192.0.2.130/32");
	model_add_connector_range(b, 77, &c);
	return finish(&b, 3);
}

static void test_connectors_matching_ip(void **state)
{
	static const struct {
		const char *ip;
		const char *want[6]; /* "name range", most specific first */
	} rows[] = {
		/* acme-mail once, with its most specific range, though three of its ranges match */
		{ "192.0.2.130", { "acme-mail 192.0.2.130/32", "beta-partner 192.0.2.128/26",
				   "beta-onprem 192.0.0.0/16", "beta-twin 192.0.0.0/16",
				   "beta-all 0.0.0.0/0" } },
		{ "192.0.2.129", { "acme-mail 192.0.2.128/25", "beta-partner 192.0.2.128/26",
				   "beta-onprem 192.0.0.0/16", "beta-twin 192.0.0.0/16",
				   "beta-all 0.0.0.0/0" } },
		{ "192.0.2.200", { "acme-mail 192.0.2.128/25", "beta-onprem 192.0.0.0/16",
				   "beta-twin 192.0.0.0/16", "beta-all 0.0.0.0/0" } },
		{ "192.0.2.10", { "acme-mail 192.0.2.0/24", "beta-onprem 192.0.0.0/16",
				  "beta-twin 192.0.0.0/16", "beta-all 0.0.0.0/0" } },
		{ "192.0.3.1", { "beta-onprem 192.0.0.0/16", "beta-twin 192.0.0.0/16",
				 "beta-all 0.0.0.0/0" } },
		{ "198.51.100.1", { "beta-all 0.0.0.0/0" } },
		{ "2001:db8:1::1", { "acme-partner 2001:db8:1::/48", "beta-all ::/0" } },
		{ "2001:db8:2::1", { "acme-partner 2001:db8::/32", "beta-all ::/0" } },
		{ "2001:db9::1", { "beta-all ::/0" } },
	};
	struct model_snapshot *s = build_connectors();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct conn_hits hits = { .n = 0 };
		struct ip_addr ip = ip_of(rows[i].ip);
		size_t nwant = 0;

		model_connectors_matching_ip(s, &ip, collect_conn_ip, &hits);
		while (nwant < ARRAY_LEN(rows[i].want) && rows[i].want[nwant])
			nwant++;
		if (hits.n != nwant)
			fail_msg("%s: %zu connectors reported, want %zu", rows[i].ip, hits.n, nwant);
		for (size_t k = 0; k < hits.n; k++) {
			char got[MODEL_NAME_MAX + ADDR_STR_MAX + 16], r[ADDR_STR_MAX + 8];
			size_t j;

			snprintf(got, sizeof(got), "%s %s", hits.h[k].c->name,
				 cidr_format(&hits.h[k].range, r, sizeof(r)));
			for (j = 0; j < nwant && strcmp(got, rows[i].want[j]) != 0; j++)
				;
			if (j == nwant)
				fail_msg("%s: unexpected callback %zu \"%s\"", rows[i].ip, k, got);
			/* Ties of prefix (beta-onprem and beta-twin) may come in either order. */
			if (k > 0 && hits.h[k - 1].range.prefix < hits.h[k].range.prefix)
				fail_msg("%s: \"%s\" reported after a less specific range", rows[i].ip,
					 got);
			if (!hits.h[k].c->tenant)
				fail_msg("%s: connector %s without tenant reported", rows[i].ip, got);
			for (j = 0; j < k; j++)
				if (hits.h[j].c == hits.h[k].c)
					fail_msg("%s: connector %s reported twice", rows[i].ip,
						 hits.h[k].c->name);
		}
	}

	/* The tenant side: each tenant lists its own connectors with their ranges. */
	const struct model_tenant *acme = model_tenant_by_name(s, "acme");
	const struct model_tenant *beta = model_tenant_by_name(s, "beta");
	assert_int_equal(acme->nconnectors, 3);
	assert_int_equal(beta->nconnectors, 4);
	for (size_t i = 0; i < acme->nconnectors; i++) {
		const struct model_connector *c = acme->connectors[i];
		assert_ptr_equal(c->tenant, acme);
		if (strcmp(c->name, "acme-mail") == 0) {
			assert_int_equal(c->type, CONNECTOR_ONPREM);
			assert_int_equal(c->nranges, 3);
			assert_string_equal(c->tls_name, "mail.acme.example");
			assert_int_equal(c->require_tls, 0);
		} else if (strcmp(c->name, "acme-partner") == 0) {
			assert_int_equal(c->type, CONNECTOR_PARTNER);
			assert_int_equal(c->nranges, 2);
		} else {
			assert_string_equal(c->name, "acme-tls-only");
			assert_int_equal(c->nranges, 0);
		}
	}
	for (size_t i = 0; i < beta->nconnectors; i++)
		if (strcmp(beta->connectors[i]->name, "beta-partner") == 0)
			assert_int_equal(beta->connectors[i]->require_tls, 1);
	model_unref(&s);
}

static void test_connectors_matching_tls(void **state)
{
	static const struct {
		const char *name;
		const char *want[4];
	} rows[] = {
		{ "mail.acme.example", { "acme-mail", "acme-partner" } },
		{ "MAIL.ACME.EXAMPLE", { "acme-mail", "acme-partner" } },
		{ "Mail.Acme.Example", { "acme-mail", "acme-partner" } },
		{ "mx.beta.example", { "beta-onprem" } },
		{ "MX.BETA.EXAMPLE", { "beta-onprem" } },
		{ "relay.acme.example", { "acme-tls-only" } },
		{ "acme.example", { NULL } },
		{ "x.mail.acme.example", { NULL } },
		{ "mail.acme.example.", { NULL } },
		{ "mail.acme.exampl", { NULL } },
		{ "", { NULL } }, /* connectors without a TLS name never match */
	};
	struct model_snapshot *s = build_connectors();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct conn_hits hits = { .n = 0 };
		size_t nwant = 0;

		model_connectors_matching_tls(s, rows[i].name, collect_conn_tls, &hits);
		while (nwant < ARRAY_LEN(rows[i].want) && rows[i].want[nwant])
			nwant++;
		if (hits.n != nwant)
			fail_msg("\"%s\": %zu connectors, want %zu", rows[i].name, hits.n, nwant);
		for (size_t w = 0; w < nwant; w++) {
			int found = 0;
			for (size_t k = 0; k < hits.n; k++)
				found += strcmp(hits.h[k].c->name, rows[i].want[w]) == 0;
			if (found != 1)
				fail_msg("\"%s\": %s reported %d times", rows[i].name, rows[i].want[w],
					 found);
		}
		for (size_t k = 0; k < hits.n; k++)
			assert_non_null(hits.h[k].c->tenant); /* the orphan never shows */
	}
	model_unref(&s);
}

/* ---- sharing ---------------------------------------------------------------------------------- */

static void test_refcount(void **state)
{
	struct entry_spec e[] = { { 1, B, "192.0.2.0/24", "x" } };
	struct model_snapshot *s = build_entries(1, e, 1);
	struct model_snapshot *s2 = model_ref(s);
	struct model_snapshot *s3 = model_ref(s);
	struct model_snapshot *none = NULL;

	(void)state;
	assert_ptr_equal(s2, s);
	assert_ptr_equal(s3, s);
	model_unref(&s);
	assert_null(s);
	/* still readable through the other references */
	struct ip_addr ip = ip_of("192.0.2.1");
	assert_non_null(model_ip_lookup(s2, model_tenant_at(s2, 0), &ip));
	assert_int_equal(model_generation(s3), 7);
	model_unref(&s2);
	assert_null(s2);
	assert_non_null(model_tenant_by_name(s3, "t1"));
	model_unref(&s3); /* last: frees; ASan reports a leak or a double free */
	assert_null(s3);
	model_unref(&s3);   /* NULL is a no-op */
	model_unref(&none);
}

/* A builder dropped without finishing frees all it holds. */
static void test_builder_free(void **state)
{
	struct model_builder *b = model_builder_new();
	struct cidr c = cidr_of("192.0.2.0/24");

	(void)state;
	model_add_tenant(b, 1, "acme", "10.0.0.1:25");
	model_add_domain(b, 1, "acme.example");
	model_add_connector(b, 5, 1, "c", CONNECTOR_ONPREM, "", 0);
	model_add_connector_range(b, 5, &c);
	model_add_ip_entry(b, 1, IP_LIST_ALLOW, &c, "comment");
	model_builder_free(&b);
	assert_null(b);
	model_builder_free(&b); /* NULL is a no-op */
}

/* Names and routes at their limits are kept; longer ones are refused. */
static void test_builder_limits(void **state)
{
	struct model_builder *b = model_builder_new();
	char name[MODEL_NAME_MAX + 2], route[MODEL_ROUTE_MAX + 2], dom[MODEL_DOMAIN_MAX + 2];

	(void)state;
	memset(name, 'n', sizeof(name));
	name[MODEL_NAME_MAX] = '\0';
	memset(route, 'r', sizeof(route));
	route[MODEL_ROUTE_MAX] = '\0';
	memset(dom, 'd', sizeof(dom));
	dom[MODEL_DOMAIN_MAX] = '\0';
	assert_int_equal(model_add_tenant(b, 1, name, route), 0);
	assert_int_equal(model_add_domain(b, 1, dom), 0);
	name[MODEL_NAME_MAX] = 'n';
	name[MODEL_NAME_MAX + 1] = '\0';
	assert_int_equal(model_add_tenant(b, 2, name, "x:25"), -1);
	assert_int_equal(model_add_connector(b, 3, 1, name, CONNECTOR_ONPREM, "", 0), -1);
	dom[MODEL_DOMAIN_MAX] = 'd';
	dom[MODEL_DOMAIN_MAX + 1] = '\0';
	assert_int_equal(model_add_domain(b, 1, dom), -1);
	route[MODEL_ROUTE_MAX] = 'r';
	route[MODEL_ROUTE_MAX + 1] = '\0';
	assert_int_equal(model_add_tenant(b, 4, "ok", route), -1);

	struct model_snapshot *s = finish(&b, 1);
	assert_int_equal(model_ntenants(s), 1);
	assert_int_equal(strlen(model_tenant_at(s, 0)->name), MODEL_NAME_MAX);
	assert_int_equal(strlen(model_tenant_at(s, 0)->route), MODEL_ROUTE_MAX);
	dom[MODEL_DOMAIN_MAX] = '\0';
	assert_ptr_equal(model_tenant_for_domain(s, dom), model_tenant_at(s, 0));
	model_unref(&s);
}

/* References to unknown tenants and connectors are tolerated: the snapshot builds and the
 * dangling rows are left out. */
static void test_unknown_references(void **state)
{
	struct model_builder *b = model_builder_new();
	struct cidr net = cidr_of("192.0.2.0/24");
	struct cidr host = cidr_of("192.0.2.1/32");
	int rc;

	(void)state;
	assert_int_equal(model_add_tenant(b, 1, "acme", "10.0.0.1:25"), 0);
	assert_int_equal(model_add_domain(b, 1, "acme.example"), 0);
	assert_int_equal(model_add_ip_entry(b, 1, IP_LIST_ALLOW, &net, "real"), 0);
	assert_int_equal(model_add_connector(b, 1, 1, "real", CONNECTOR_ONPREM, "real.example", 0), 0);
	assert_int_equal(model_add_connector_range(b, 1, &net), 0);

	/* model.h: references are resolved at finish, where rows naming unknown ids are dropped */
	rc = model_add_domain(b, 99, "ghost.example");
	assert_int_equal(rc, 0);
	rc = model_add_ip_entry(b, 99, IP_LIST_BLOCK, &host, "ghost");
	assert_int_equal(rc, 0);
	rc = model_add_connector(b, 2, 99, "ghost", CONNECTOR_ONPREM, "ghost.example", 0);
	assert_int_equal(rc, 0);
	model_add_connector_range(b, 2, &host); /* its tenant is unknown */
	rc = model_add_connector_range(b, 3, &host); /* no connector 3 */
	assert_int_equal(rc, 0);

	struct model_snapshot *s = finish(&b, 1);
	const struct model_tenant *acme = model_tenant_by_name(s, "acme");
	struct ip_addr ip = ip_of("192.0.2.1");
	struct conn_hits hits = { .n = 0 };
	struct collected c = { .n = 0 };

	assert_int_equal(model_ntenants(s), 1);
	assert_null(model_tenant_for_domain(s, "ghost.example"));
	assert_ptr_equal(model_tenant_for_domain(s, "acme.example"), acme);
	const struct model_ip_entry *e = model_ip_lookup(s, acme, &ip);
	assert_non_null(e);
	assert_string_equal(e->comment, "real");
	model_ip_each(s, acme, collect_entry, &c);
	assert_int_equal(c.n, 1);
	assert_int_equal(acme->nallow + acme->nblock, 1);
	model_connectors_matching_ip(s, &ip, collect_conn_ip, &hits);
	assert_int_equal(hits.n, 1);
	assert_string_equal(hits.h[0].c->name, "real");
	assert_int_equal(hits.h[0].range.prefix, net.prefix);
	hits.n = 0;
	model_connectors_matching_tls(s, "ghost.example", collect_conn_tls, &hits);
	assert_int_equal(hits.n, 0);
	assert_int_equal(acme->nconnectors, 1);
	model_unref(&s);
}

/* A domain belongs to at most one tenant; the store enforces it, and model.h documents that
 * the builder, fed a duplicate anyway, lets the first tenant win. */
static void test_duplicate_domain(void **state)
{
	struct model_builder *b = model_builder_new();
	int rc;

	(void)state;
	assert_int_equal(model_add_tenant(b, 1, "acme", "10.0.0.1:25"), 0);
	assert_int_equal(model_add_tenant(b, 2, "beta", "10.0.0.2:25"), 0);
	assert_int_equal(model_add_domain(b, 1, "shared.example"), 0);
	rc = model_add_domain(b, 2, "shared.example");
	assert_int_equal(rc, 0);
	struct model_snapshot *s = finish(&b, 1);
	const struct model_tenant *t = model_tenant_for_domain(s, "shared.example");
	assert_non_null(t);
	assert_string_equal(t->name, "acme");
	model_unref(&s);
}

/* ---- scale: 1,000 tenants x 100 entries against a brute-force scan ---------------------------- */

#define SCALE_TENANTS 1000
#define SCALE_PER_TENANT 100
#define SCALE_PROBES 10000

/* A 64-bit LCG (Knuth's MMIX constants); the high bits are the usable ones. */
static uint64_t lcg_state;

static uint32_t lcg(void)
{
	lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(lcg_state >> 33);
}

static uint32_t lcg_below(uint32_t n)
{
	return lcg() % n;
}

static void mask_ip(struct ip_addr *ip, unsigned prefix)
{
	for (unsigned bit = prefix; bit < 128; bit++)
		ip->b[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
}

/* Addresses from a small space, so that entries nest and probes hit: v4 in 10.0.0.0/21,
 * v6 in 2001:db8:0-1:0-3::0-ff. */
static struct ip_addr random_v4(void)
{
	struct ip_addr ip = ip_of("10.0.0.0");

	ip.b[14] = (uint8_t)lcg_below(8);
	ip.b[15] = (uint8_t)lcg_below(256);
	return ip;
}

static struct ip_addr random_v6(void)
{
	struct ip_addr ip = ip_of("2001:db8::");

	ip.b[5] = (uint8_t)lcg_below(2);
	ip.b[7] = (uint8_t)lcg_below(4);
	ip.b[15] = (uint8_t)lcg_below(256);
	if (lcg_below(4) == 0)
		ip.b[9] = (uint8_t)lcg_below(256);
	return ip;
}

struct scale_entry {
	struct cidr net;
	enum ip_list list;
};

/* The rule, written the obvious way: longest prefix containing ip, Block on a tie. */
static const struct scale_entry *brute_lookup(const struct scale_entry *e, size_t n,
					      const struct ip_addr *ip)
{
	const struct scale_entry *best = NULL;

	for (size_t i = 0; i < n; i++) {
		if (!cidr_contains(&e[i].net, ip))
			continue;
		if (!best || e[i].net.prefix > best->net.prefix ||
		    (e[i].net.prefix == best->net.prefix && e[i].list == IP_LIST_BLOCK))
			best = &e[i];
	}
	return best;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

struct count_arg {
	size_t n;
	uint8_t last_prefix;
};

static void count_match(const struct model_ip_entry *e, void *arg)
{
	struct count_arg *c = arg;

	if (c->n && e->net.prefix > c->last_prefix)
		fail_msg("each_match: prefix %u after %u", e->net.prefix, c->last_prefix);
	c->last_prefix = e->net.prefix;
	c->n++;
}

static void test_scale_against_brute_force(void **state)
{
	struct scale_entry *all = calloc((size_t)SCALE_TENANTS * SCALE_PER_TENANT, sizeof(*all));
	struct model_builder *b = model_builder_new();
	struct timespec t0;
	size_t hits = 0, blocks = 0, v6_hits = 0, ties = 0;
	char name[16];

	(void)state;
	assert_non_null(all);
	lcg_state = 20240601;
	/* Tenants added in descending id order; ids are not contiguous. */
	for (uint32_t i = SCALE_TENANTS; i-- > 0;) {
		snprintf(name, sizeof(name), "t%04u", i);
		assert_int_equal(model_add_tenant(b, 1000 + i * 7, name, "127.0.0.1:25"), 0);
	}
	for (uint32_t i = 0; i < SCALE_TENANTS; i++) {
		struct scale_entry *e = &all[(size_t)i * SCALE_PER_TENANT];
		for (size_t k = 0; k < SCALE_PER_TENANT; k++) {
			if (k > 0 && lcg_below(16) == 0) {
				/* the same CIDR again on the other list: a tie */
				e[k].net = e[k - 1].net;
				e[k].list = e[k - 1].list == IP_LIST_ALLOW ? IP_LIST_BLOCK : IP_LIST_ALLOW;
				continue;
			}
			if (lcg_below(100) < 85) {
				e[k].net.net = random_v4();
				e[k].net.prefix = (uint8_t)(96 + 24 + lcg_below(9)); /* /24../32 */
			} else {
				e[k].net.net = random_v6();
				e[k].net.prefix = (uint8_t)(48 + lcg_below(81)); /* /48../128 */
			}
			mask_ip(&e[k].net.net, e[k].net.prefix);
			e[k].list = lcg_below(3) == 0 ? IP_LIST_BLOCK : IP_LIST_ALLOW;
		}
	}
	/* Entries interleaved across tenants, as a database might return them. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t k = 0; k < SCALE_PER_TENANT; k++)
		for (uint32_t i = 0; i < SCALE_TENANTS; i++) {
			const struct scale_entry *e = &all[(size_t)i * SCALE_PER_TENANT + k];
			assert_int_equal(model_add_ip_entry(b, 1000 + i * 7, e->list, &e->net, ""), 0);
		}
	struct model_snapshot *s = finish(&b, 1);
	double build_s = seconds_since(&t0);
	assert_int_equal(model_ntenants(s), SCALE_TENANTS);

	struct ip_addr *probe = calloc(SCALE_PROBES, sizeof(*probe));
	uint32_t *probe_tenant = calloc(SCALE_PROBES, sizeof(*probe_tenant));
	const struct model_ip_entry **got = calloc(SCALE_PROBES, sizeof(*got));
	assert_non_null(probe);
	assert_non_null(probe_tenant);
	assert_non_null(got);
	for (size_t p = 0; p < SCALE_PROBES; p++) {
		uint32_t r = lcg_below(20);
		probe_tenant[p] = lcg_below(SCALE_TENANTS);
		probe[p] = r < 14 ? random_v4() : r < 18 ? random_v6()
			   : r == 18 ? ip_of("192.0.2.1") : ip_of("2001:db9::1");
	}
	const struct model_tenant *tenant_of[SCALE_TENANTS];
	for (uint32_t i = 0; i < SCALE_TENANTS; i++) {
		snprintf(name, sizeof(name), "t%04u", i);
		tenant_of[i] = model_tenant_by_name(s, name);
		assert_non_null(tenant_of[i]);
		assert_int_equal(tenant_of[i]->id, 1000 + i * 7);
		assert_int_equal(tenant_of[i]->nallow + tenant_of[i]->nblock, SCALE_PER_TENANT);
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t p = 0; p < SCALE_PROBES; p++)
		got[p] = model_ip_lookup(s, tenant_of[probe_tenant[p]], &probe[p]);
	double lookup_s = seconds_since(&t0);

	for (size_t p = 0; p < SCALE_PROBES; p++) {
		const struct scale_entry *te = &all[(size_t)probe_tenant[p] * SCALE_PER_TENANT];
		const struct scale_entry *want = brute_lookup(te, SCALE_PER_TENANT, &probe[p]);
		char a[ADDR_STR_MAX], w[ADDR_STR_MAX + 8], g[ADDR_STR_MAX + 8];

		if (!want != !got[p] ||
		    (want && (want->net.prefix != got[p]->net.prefix ||
			      memcmp(want->net.net.b, got[p]->net.net.b, 16) != 0 ||
			      want->list != got[p]->list)))
			fail_msg("probe %zu: tenant t%04u ip %s: model %s %s, brute force %s %s", p,
				 probe_tenant[p], ip_format(&probe[p], a),
				 got[p] ? cidr_format(&got[p]->net, g, sizeof(g)) : "none",
				 got[p] ? (got[p]->list == IP_LIST_BLOCK ? "block" : "allow") : "",
				 want ? cidr_format(&want->net, w, sizeof(w)) : "none",
				 want ? (want->list == IP_LIST_BLOCK ? "block" : "allow") : "");
		if (got[p] && got[p]->tenant != tenant_of[probe_tenant[p]])
			fail_msg("probe %zu: entry of another tenant", p);
		if (want) {
			hits++;
			blocks += want->list == IP_LIST_BLOCK;
			v6_hits += !ip_is_v4(&probe[p]);
			for (size_t i = 0; i < SCALE_PER_TENANT; i++)
				if (&te[i] != want && te[i].net.prefix == want->net.prefix &&
				    te[i].list != want->list &&
				    memcmp(te[i].net.net.b, want->net.net.b, 16) == 0) {
					ties++;
					break;
				}
		}
		if (p % 10 == 0) {
			/* each_match: as many as the brute force finds, longest first */
			struct count_arg c = { 0, 0 };
			size_t n = 0;
			model_ip_each_match(s, tenant_of[probe_tenant[p]], &probe[p], count_match, &c);
			for (size_t i = 0; i < SCALE_PER_TENANT; i++)
				n += cidr_contains(&te[i].net, &probe[p]) != 0;
			if (c.n != n)
				fail_msg("probe %zu: each_match reported %zu, brute force %zu", p, c.n, n);
		}
	}
	/* The data must exercise what it claims to. */
	assert_true(hits > SCALE_PROBES / 10);
	assert_true(blocks > 0);
	assert_true(v6_hits > 0);
	assert_true(ties > 0);
	assert_true(hits < SCALE_PROBES);

	printf("model scale: %d entries over %d tenants built in %.3f s; %d lookups in %.4f s "
	       "(%.0f lookups/s); %zu hits, %zu block winners, %zu v6 hits, %zu ties\n",
	       SCALE_TENANTS * SCALE_PER_TENANT, SCALE_TENANTS, build_s, SCALE_PROBES, lookup_s,
	       lookup_s > 0 ? SCALE_PROBES / lookup_s : 0.0, hits, blocks, v6_hits, ties);
	free(probe);
	free(probe_tenant);
	free(got);
	free(all);
	model_unref(&s);
}

/* ---- the prefix filter: every length, anchor boundaries, near misses ----------------------- *
 *
 * A lookup probes only the prefix lengths that the filter names for the client's network at
 * each anchor (IPv4 /24 and /16, IPv6 /64, /48, /32, ...; model.c). These tests put entries
 * at every length, and clients that share exactly k leading bits with them, so that the
 * filter says "something here" for lengths that then do not match (its false positives), and
 * the answer must come from a shorter length, under another anchor. */

/* Entries of one tenant on the path to base at the lengths in lens (a 129-bit set), added in
 * the order given; the list alternates with the length, the comment names it. */
static struct model_snapshot *path_snapshot(const struct ip_addr *base, const uint8_t *lens,
					    size_t nlens, struct scale_entry *out)
{
	struct model_builder *b = model_builder_new();
	char comment[16];

	assert_int_equal(model_add_tenant(b, 1, "t1", "127.0.0.1:25"), 0);
	assert_int_equal(model_add_tenant(b, 2, "t2", "127.0.0.1:25"), 0);
	for (size_t i = 0; i < nlens; i++) {
		out[i].net.net = *base;
		out[i].net.prefix = lens[i];
		mask_ip(&out[i].net.net, lens[i]);
		out[i].list = lens[i] % 2 ? IP_LIST_BLOCK : IP_LIST_ALLOW;
		snprintf(comment, sizeof(comment), "len %u", lens[i]);
		assert_int_equal(model_add_ip_entry(b, 1, out[i].list, &out[i].net, comment), 0);
	}
	/* The same networks for t2, one bit further: t1's lookups must never see them. */
	for (size_t i = 0; i < nlens; i++) {
		struct cidr c = out[i].net;
		if (c.prefix == 0)
			continue;
		c.net.b[(c.prefix - 1) / 8] ^= (uint8_t)(0x80u >> ((c.prefix - 1) % 8));
		assert_int_equal(model_add_ip_entry(b, 2, IP_LIST_BLOCK, &c, "t2"), 0);
	}
	return finish(&b, 1);
}

/* For every k in 0..128: the client that shares exactly k leading bits with base (bit k
 * flipped; base itself for 128) gets the longest entry of length <= k, and each_match reports
 * exactly the entries of length <= k, longest first. */
static void check_path(const struct ip_addr *base, const uint8_t *lens, size_t nlens,
		       const char *what)
{
	struct scale_entry e[129];
	struct model_snapshot *s = path_snapshot(base, lens, nlens, e);
	const struct model_tenant *t = model_tenant_by_name(s, "t1");

	for (unsigned k = 0; k <= 128; k++) {
		struct ip_addr ip = *base;
		char a[ADDR_STR_MAX], g[ADDR_STR_MAX + 8], comment[16];
		struct count_arg c = { 0, 0 };
		size_t nwant = 0;

		if (k < 128)
			ip.b[k / 8] ^= (uint8_t)(0x80u >> (k % 8));
		const struct scale_entry *want = brute_lookup(e, nlens, &ip);
		const struct model_ip_entry *got = model_ip_lookup(s, t, &ip);
		if (!want != !got || (want && (got->net.prefix != want->net.prefix ||
					       memcmp(got->net.net.b, want->net.net.b, 16) != 0)))
			fail_msg("%s: client %s (shares %u bits): model %s, brute force /%d", what,
				 ip_format(&ip, a), k,
				 got ? cidr_format(&got->net, g, sizeof(g)) : "none",
				 want ? (int)want->net.prefix : -1);
		if (got) {
			snprintf(comment, sizeof(comment), "len %u", got->net.prefix);
			assert_string_equal(got->comment, comment);
			assert_int_equal(got->list, want->list);
			assert_ptr_equal(got->tenant, t);
		}
		model_ip_each_match(s, t, &ip, count_match, &c);
		for (size_t i = 0; i < nlens; i++)
			nwant += cidr_contains(&e[i].net, &ip) != 0;
		if (c.n != nwant)
			fail_msg("%s: client %s: each_match reported %zu, want %zu", what,
				 ip_format(&ip, a), c.n, nwant);
	}
	model_unref(&s);
}

static void test_filter_every_length(void **state)
{
	static const uint8_t boundaries[] = { 128, 127, 121, 120, 119, 113, 112, 111, 97, 96, 95,
					      65, 64, 63, 49, 48, 47, 33, 32, 31, 1, 0 };
	static const uint8_t v4_only[] = { 96 + 32, 96 + 28, 96 + 24, 96 + 23, 96 + 16,
					   96 + 15, 96 + 8, 96 + 0 };
	static const uint8_t host_and_zero[] = { 0, 128 };
	const char *bases[] = { "2001:db8:1234:5678:9abc:def0:1357:9bdf", "198.51.100.77",
				"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0.0.0.0",
				"255.255.255.255" };
	uint8_t all[129], every3[43], shortest_first[129];
	size_t n3 = 0;

	(void)state;
	for (unsigned l = 0; l <= 128; l++) {
		all[l] = (uint8_t)(128 - l);   /* longest first */
		shortest_first[l] = (uint8_t)l; /* insertion order must not matter */
		if (l % 3 == 1)
			every3[n3++] = (uint8_t)l;
	}
	for (size_t i = 0; i < ARRAY_LEN(bases); i++) {
		struct ip_addr base = ip_of(bases[i]);
		char what[96];

		snprintf(what, sizeof(what), "%s, every length", bases[i]);
		check_path(&base, all, ARRAY_LEN(all), what);
		snprintf(what, sizeof(what), "%s, every length, shortest added first", bases[i]);
		check_path(&base, shortest_first, ARRAY_LEN(shortest_first), what);
		snprintf(what, sizeof(what), "%s, every third length", bases[i]);
		check_path(&base, every3, n3, what);
		snprintf(what, sizeof(what), "%s, anchor boundaries", bases[i]);
		check_path(&base, boundaries, ARRAY_LEN(boundaries), what);
		snprintf(what, sizeof(what), "%s, IPv4 lengths", bases[i]);
		check_path(&base, v4_only, ARRAY_LEN(v4_only), what);
		snprintf(what, sizeof(what), "%s, /0 and the host", bases[i]);
		check_path(&base, host_and_zero, ARRAY_LEN(host_and_zero), what);
	}
}

/* The cases the filter is for, by hand: something of the tenant in the client's /24 (or IPv6
 * /64), but not the client. */
static const struct entry_spec near_entries[] = {
	{ 1, A, "10.1.2.128/25", "upper half" },
	{ 1, B, "10.1.2.7/32", "one host" },
	{ 1, B, "10.1.0.0/16", "the /16" },
	{ 1, A, "10.1.2.0/23", "a /23 under the /16 anchor" },
	{ 1, A, "2001:db8:0:1::/64", "a /64" },
	{ 1, B, "2001:db8:0:1:8000::/65", "half of it" },
	{ 1, B, "2001:db8::/32", "the /32" },
	/* t2 has the very /24 and /64 that t1 has nothing in */
	{ 2, B, "10.1.3.0/24", "t2" },
	{ 2, B, "2001:db8:0:2::/64", "t2" },
	/* t3: only a v4-mapped /96 written as IPv6, and a /120 inside it */
	{ 3, A, "::ffff:0:0/96", "all of IPv4" },
	{ 3, B, "::ffff:192.0.2.0/120", "a /24 as /120" },
};

static const struct probe near_probes[] = {
	{ "t1", "10.1.2.1", "10.1.2.0/23", A, "a /23 under the /16 anchor" }, /* /25, /32 no */
	{ "t1", "10.1.2.8", "10.1.2.0/23", A, "a /23 under the /16 anchor" },
	{ "t1", "10.1.2.7", "10.1.2.7/32", B, "one host" },
	{ "t1", "10.1.2.200", "10.1.2.128/25", A, "upper half" },
	{ "t1", "10.1.3.1", "10.1.2.0/23", A, "a /23 under the /16 anchor" },
	{ "t1", "10.1.4.1", "10.1.0.0/16", B, "the /16" },
	{ "t1", "10.2.2.7", NULL, 0, NULL },
	{ "t1", "2001:db8:0:1::1", "2001:db8:0:1::/64", A, "a /64" },
	{ "t1", "2001:db8:0:1:8000::1", "2001:db8:0:1:8000::/65", B, "half of it" },
	{ "t1", "2001:db8:0:2::1", "2001:db8::/32", B, "the /32" },
	{ "t1", "2001:db9:0:1::1", NULL, 0, NULL },
	{ "t2", "10.1.2.7", NULL, 0, NULL },
	{ "t2", "2001:db8:0:1::1", NULL, 0, NULL },
	{ "t3", "192.0.2.1", "192.0.2.0/24", B, "a /24 as /120" },
	{ "t3", "::ffff:192.0.2.1", "192.0.2.0/24", B, "a /24 as /120" },
	{ "t3", "192.0.3.1", "0.0.0.0/0", A, "all of IPv4" },
	{ "t3", "::192.0.2.1", NULL, 0, NULL }, /* IPv4-compatible: outside ::ffff:0:0/96 */
	{ "t3", "2001:db8::1", NULL, 0, NULL },
};

static void test_filter_near_misses(void **state)
{
	struct model_snapshot *s = build_entries(3, near_entries, ARRAY_LEN(near_entries));

	(void)state;
	run_probes(s, near_probes, ARRAY_LEN(near_probes));
	model_unref(&s);
}

/* ---- scale, every length: 500 tenants x 80 entries of any length against brute force -------- */

#define ANY_TENANTS 500
#define ANY_PER_TENANT 80
#define ANY_PROBES 20000

struct any_entry {
	struct scale_entry e;
	char comment[24];
};

/* The rule with the builder's order for equal entries: longest prefix; on a tie of prefix
 * the last Block entry, else the first entry (what model_ip_lookup returns, comment and all). */
static const struct any_entry *any_brute(const struct any_entry *e, size_t n,
					 const struct ip_addr *ip)
{
	const struct any_entry *best = NULL;

	for (size_t i = 0; i < n; i++) {
		if (!cidr_contains(&e[i].e.net, ip))
			continue;
		if (!best || e[i].e.net.prefix > best->e.net.prefix ||
		    (e[i].e.net.prefix == best->e.net.prefix && e[i].e.list == IP_LIST_BLOCK))
			best = &e[i];
	}
	return best;
}

/* A network of any length in a small space, so that networks nest and share filter groups:
 * IPv4 in 10.0.0.0/14, IPv6 in 2001:db8::/29 with few distinct bits per anchor span. */
static struct cidr any_net(void)
{
	struct cidr c;

	if (lcg_below(2)) {
		c.net = ip_of("10.0.0.0");
		c.net.b[13] = (uint8_t)lcg_below(4);
		c.net.b[14] = (uint8_t)lcg_below(16);
		c.net.b[15] = (uint8_t)lcg();
		c.prefix = (uint8_t)(96 + lcg_below(33));
	} else {
		c.net = ip_of("2001:db8::");
		c.net.b[3] |= (uint8_t)lcg_below(8);
		for (unsigned i = 4; i < 16; i += 2)
			c.net.b[i + lcg_below(2)] = (uint8_t)lcg_below(4);
		c.prefix = (uint8_t)lcg_below(129);
	}
	mask_ip(&c.net, c.prefix);
	return c;
}

/* A client near e: inside it with random host bits, and half the time one bit flipped at a
 * random position above the prefix, so that it shares a filter group with e but not e. */
static struct ip_addr near_ip(const struct cidr *e)
{
	struct ip_addr ip = e->net;

	for (unsigned bit = e->prefix; bit < 128; bit++)
		if (lcg_below(2))
			ip.b[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
	if (e->prefix > 0 && lcg_below(2)) {
		unsigned bit = lcg_below(e->prefix);
		ip.b[bit / 8] ^= (uint8_t)(0x80u >> (bit % 8));
	}
	return ip;
}

static void test_any_length_against_brute_force(void **state)
{
	struct any_entry *all = calloc((size_t)ANY_TENANTS * ANY_PER_TENANT, sizeof(*all));
	struct model_builder *b = model_builder_new();
	size_t hits = 0, misses_near = 0, dup_ties = 0, lens_hit[129] = { 0 };
	char name[16];

	(void)state;
	assert_non_null(all);
	lcg_state = 20261128;
	for (uint32_t i = 0; i < ANY_TENANTS; i++) {
		snprintf(name, sizeof(name), "t%04u", i);
		assert_int_equal(model_add_tenant(b, i + 1, name, "127.0.0.1:25"), 0);
	}
	for (uint32_t i = 0; i < ANY_TENANTS; i++) {
		struct any_entry *e = &all[(size_t)i * ANY_PER_TENANT];
		for (size_t k = 0; k < ANY_PER_TENANT; k++) {
			uint32_t r = lcg_below(32);
			if (k > 0 && r < 2) { /* the same CIDR on the other list */
				e[k].e.net = e[k - 1].e.net;
				e[k].e.list = e[k - 1].e.list == IP_LIST_ALLOW ? IP_LIST_BLOCK
									      : IP_LIST_ALLOW;
			} else if (k > 0 && r == 2) { /* an equal entry: which one wins is defined */
				e[k].e = e[k - 1].e;
				dup_ties++;
			} else {
				e[k].e.net = any_net();
				e[k].e.list = lcg_below(3) == 0 ? IP_LIST_BLOCK : IP_LIST_ALLOW;
			}
			/* comments of every size, a long one now and then (the builder's text block) */
			if (lcg_below(50) == 0)
				memset(e[k].comment, 'x', sizeof(e[k].comment) - 1);
			else if (lcg_below(4))
				snprintf(e[k].comment, sizeof(e[k].comment), "t%u e%zu", i, k);
		}
	}
	/* Added tenant by tenant, as the store reads them. */
	for (size_t i = 0; i < (size_t)ANY_TENANTS * ANY_PER_TENANT; i++)
		assert_int_equal(model_add_ip_entry(b, (uint32_t)(i / ANY_PER_TENANT) + 1,
						    all[i].e.list, &all[i].e.net, all[i].comment), 0);
	struct model_snapshot *s = finish(&b, 1);

	for (size_t p = 0; p < ANY_PROBES; p++) {
		uint32_t ti = lcg_below(ANY_TENANTS), r = lcg_below(10);
		const struct any_entry *te = &all[(size_t)ti * ANY_PER_TENANT];
		const struct any_entry *other = &all[(size_t)lcg_below(ANY_TENANTS) * ANY_PER_TENANT];
		struct ip_addr ip = r < 6   ? near_ip(&te[lcg_below(ANY_PER_TENANT)].e.net)
				    : r < 8 ? near_ip(&other[lcg_below(ANY_PER_TENANT)].e.net)
					    : any_net().net;
		const struct model_tenant *t = model_tenant_at(s, ti);
		const struct any_entry *want = any_brute(te, ANY_PER_TENANT, &ip);
		const struct model_ip_entry *got = model_ip_lookup(s, t, &ip);
		char a[ADDR_STR_MAX], g[ADDR_STR_MAX + 8], w[ADDR_STR_MAX + 8];

		if (!want != !got ||
		    (want && (got->net.prefix != want->e.net.prefix ||
			      memcmp(got->net.net.b, want->e.net.net.b, 16) != 0 ||
			      got->list != want->e.list || strcmp(got->comment, want->comment) != 0)))
			fail_msg("probe %zu: tenant t%04u ip %s: model %s %s \"%s\", brute force %s %s "
				 "\"%s\"", p, ti, ip_format(&ip, a),
				 got ? cidr_format(&got->net, g, sizeof(g)) : "none",
				 got ? (got->list == IP_LIST_BLOCK ? "block" : "allow") : "",
				 got ? got->comment : "",
				 want ? cidr_format(&want->e.net, w, sizeof(w)) : "none",
				 want ? (want->e.list == IP_LIST_BLOCK ? "block" : "allow") : "",
				 want ? want->comment : "");
		if (got && got->tenant != t)
			fail_msg("probe %zu: entry of another tenant", p);
		if (want) {
			hits++;
			lens_hit[want->e.net.prefix]++;
		} else if (r < 6) {
			misses_near++;
		}
		if (p % 8 == 0) {
			struct count_arg c = { 0, 0 };
			size_t n = 0;
			model_ip_each_match(s, t, &ip, count_match, &c);
			for (size_t i = 0; i < ANY_PER_TENANT; i++)
				n += cidr_contains(&te[i].e.net, &ip) != 0;
			if (c.n != n)
				fail_msg("probe %zu: each_match reported %zu, brute force %zu", p, c.n, n);
		}
	}
	/* The data must exercise what it claims to: hits under every anchor's span, IPv4 and
	 * IPv6, clients near an entry that match nothing, equal entries. */
	size_t spans[7] = { 0 };
	static const unsigned span_start[] = { 0, 32, 48, 64, 96, 112, 120 };
	for (unsigned l = 0; l <= 128; l++) {
		unsigned a = 6;
		while (span_start[a] > l)
			a--;
		spans[a] += lens_hit[l];
	}
	for (size_t a = 0; a < ARRAY_LEN(spans); a++)
		if (spans[a] == 0)
			fail_msg("no hit with a prefix in the span from /%u", span_start[a]);
	assert_true(lens_hit[0] > 0);
	assert_true(lens_hit[128] > 0);
	assert_true(misses_near > 0);
	assert_true(dup_ties > 0);
	assert_true(hits < ANY_PROBES);
	free(all);
	model_unref(&s);
}

/* model_route_spec_format at its limits: the text and its NUL fit exactly, or nothing. */
static void test_route_spec_format_limits(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(model_route_spec_format("a.example:25", ROUTE_TLS_VERIFY, out, 24), 0);
	assert_string_equal(out, "a.example:25 tls=verify"); /* 23 characters */
	memset(out, 'x', sizeof(out));
	assert_int_equal(model_route_spec_format("a.example:25", ROUTE_TLS_VERIFY, out, 23), -1);
	assert_string_equal(out, "");
	assert_int_equal(model_route_spec_format("a.example:25", ROUTE_TLS_OPPORTUNISTIC, out, 13),
			 0);
	assert_string_equal(out, "a.example:25");
	assert_int_equal(model_route_spec_format("a.example:25", ROUTE_TLS_OPPORTUNISTIC, out, 12),
			 -1);
	assert_string_equal(out, "");
	out[0] = 'x';
	assert_int_equal(model_route_spec_format("a:1", ROUTE_TLS_REQUIRED, out, 0), -1);
	assert_int_equal(out[0], 'x'); /* outsz 0: nothing written */
	assert_int_equal(model_route_spec_format("", ROUTE_TLS_REQUIRED, out, sizeof(out)), 0);
	assert_string_equal(out, " tls=required");
}

/* ---- recipient directories ------------------------------------------------------------ */

/* t1 (a.example, b.example), t2 (c.example); t1 checks its directory. */
static struct model_snapshot *recipient_snapshot(void)
{
	struct model_builder *b = model_builder_new();

	assert_int_equal(model_add_tenant(b, 1, "t1", "10.0.0.1:25"), 0);
	assert_int_equal(model_add_tenant(b, 2, "t2", "10.0.0.2:25"), 0);
	assert_int_equal(model_add_domain(b, 1, "a.example"), 0);
	assert_int_equal(model_add_domain(b, 1, "b.example"), 0);
	assert_int_equal(model_add_domain(b, 2, "c.example"), 0);
	assert_int_equal(model_set_recipient_check(b, 1, RCPT_CHECK_DIRECTORY), 0);
	assert_int_equal(model_add_recipient(b, 1, "a.example", "Bob"), 0);
	assert_int_equal(model_add_recipient(b, 1, "a.example", "john doe"), 0);
	assert_int_equal(model_add_recipient(b, 1, "a.example", "j\xc3\xb6rg"), 0); /* jörg */
	assert_int_equal(model_add_recipient(b, 1, "a.example", "first.last+tag"), 0);
	assert_int_equal(model_add_recipient(b, 1, "b.example", MODEL_RCPT_WILDCARD), 0);
	assert_int_equal(model_add_recipient(b, 1, "b.example", "alice"), 0);
	assert_int_equal(model_add_recipient(b, 2, "c.example", "bob"), 0);
	return finish(&b, 1);
}

static void test_recipients_lookup(void **state)
{
	struct model_snapshot *s = recipient_snapshot();
	const struct model_tenant *t1 = model_tenant_by_name(s, "t1");
	const struct model_tenant *t2 = model_tenant_by_name(s, "t2");
	static const struct {
		const char *tenant, *local, *domain;
		enum model_rcpt_match want;
	} rows[] = {
		{ "t1", "Bob", "a.example", MODEL_RCPT_LISTED },
		{ "t1", "bob", "a.example", MODEL_RCPT_LISTED },
		{ "t1", "BOB", "a.example", MODEL_RCPT_LISTED },
		{ "t1", "bo", "a.example", MODEL_RCPT_UNKNOWN },
		{ "t1", "bobb", "a.example", MODEL_RCPT_UNKNOWN },
		{ "t1", "John Doe", "a.example", MODEL_RCPT_LISTED },
		{ "t1", "john  doe", "a.example", MODEL_RCPT_UNKNOWN },
		{ "t1", "j\xc3\xb6rg", "a.example", MODEL_RCPT_LISTED },
		{ "t1", "J\xc3\xb6RG", "a.example", MODEL_RCPT_LISTED },   /* ASCII letters fold */
		{ "t1", "j\xc3\x96rg", "a.example", MODEL_RCPT_UNKNOWN },  /* jÖrg: UTF-8 does not */
		{ "t1", "first.last+tag", "a.example", MODEL_RCPT_LISTED },
		{ "t1", "first.last", "a.example", MODEL_RCPT_UNKNOWN },     /* no subaddressing */
		{ "t1", "bob", "b.example", MODEL_RCPT_CATCHALL },           /* b.example catch-all */
		{ "t1", "alice", "b.example", MODEL_RCPT_LISTED },           /* listed beats catch-all */
		{ "t1", "*", "b.example", MODEL_RCPT_CATCHALL },
		{ "t1", "*", "a.example", MODEL_RCPT_UNKNOWN },
		{ "t1", "alice", "a.example", MODEL_RCPT_UNKNOWN },
		{ "t1", "bob", "c.example", MODEL_RCPT_UNKNOWN },            /* t2's domain */
		{ "t1", "bob", "A.example", MODEL_RCPT_UNKNOWN },            /* domains are exact */
		{ "t2", "bob", "c.example", MODEL_RCPT_LISTED },
		{ "t2", "BOB", "c.example", MODEL_RCPT_LISTED },
		{ "t2", "bob", "a.example", MODEL_RCPT_UNKNOWN },            /* t1's address */
		{ "t2", "x", "b.example", MODEL_RCPT_UNKNOWN },              /* t1's catch-all */
	};

	(void)state;
	assert_int_equal(t1->recipient_check, RCPT_CHECK_DIRECTORY);
	assert_int_equal(t2->recipient_check, RCPT_CHECK_OFF);
	assert_int_equal(t1->nrecipients, 6);
	assert_int_equal(t2->nrecipients, 1);
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		const struct model_tenant *t = model_tenant_by_name(s, rows[i].tenant);
		enum model_rcpt_match got = model_recipient_known(s, t, rows[i].local, rows[i].domain);
		if (got != rows[i].want)
			fail_msg("row %zu: %s %s@%s: %d, want %d", i, rows[i].tenant, rows[i].local,
				 rows[i].domain, got, rows[i].want);
	}
	assert_int_equal(model_recipient_known(s, NULL, "bob", "a.example"), MODEL_RCPT_UNKNOWN);
	model_unref(&s);
}

/* The check defaults to off, the last setting wins, values outside the enum are refused and
 * names are stable (the store writes them). */
static void test_recipient_check_flag(void **state)
{
	struct model_builder *b = model_builder_new();

	(void)state;
	assert_int_equal(model_add_tenant(b, 1, "t1", "10.0.0.1:25"), 0);
	assert_int_equal(model_add_tenant(b, 2, "t2", "10.0.0.2:25"), 0);
	assert_int_equal(model_add_tenant(b, 3, "t3", "10.0.0.3:25"), 0);
	assert_int_equal(model_set_recipient_check(b, 2, RCPT_CHECK_DIRECTORY), 0);
	assert_int_equal(model_set_recipient_check(b, 3, RCPT_CHECK_DIRECTORY), 0);
	assert_int_equal(model_set_recipient_check(b, 3, RCPT_CHECK_OFF), 0);
	assert_int_equal(model_set_recipient_check(b, 1, (enum recipient_check)7), -1);
	assert_int_equal(model_set_recipient_check(b, 99, RCPT_CHECK_DIRECTORY), 0); /* dropped */

	struct model_snapshot *s = finish(&b, 1);
	assert_int_equal(model_tenant_by_name(s, "t1")->recipient_check, RCPT_CHECK_OFF);
	assert_int_equal(model_tenant_by_name(s, "t2")->recipient_check, RCPT_CHECK_DIRECTORY);
	assert_int_equal(model_tenant_by_name(s, "t3")->recipient_check, RCPT_CHECK_OFF);
	assert_int_equal(model_tenant_by_name(s, "t1")->nrecipients, 0);
	assert_int_equal(model_recipient_known(s, model_tenant_by_name(s, "t2"), "x", "y.example"),
			 MODEL_RCPT_UNKNOWN);
	assert_string_equal(model_recipient_check_name(RCPT_CHECK_OFF), "off");
	assert_string_equal(model_recipient_check_name(RCPT_CHECK_DIRECTORY), "directory");
	assert_string_equal(model_recipient_check_name(RCPT_CHECK_PROBE), "probe");
	assert_null(model_recipient_check_name((enum recipient_check)7));
	model_unref(&s);
}

/* Entries of an unknown tenant, at a domain that is not their tenant's, and repeats (in any
 * ASCII case) are dropped at finish; limits are refused at once. */
static void test_recipient_references_and_limits(void **state)
{
	struct model_builder *b = model_builder_new();
	char local[MODEL_LOCAL_MAX + 2], dom[MODEL_DOMAIN_MAX + 2];

	(void)state;
	memset(local, 'l', sizeof(local));
	local[MODEL_LOCAL_MAX] = '\0';
	memset(dom, 'd', sizeof(dom));
	dom[MODEL_DOMAIN_MAX] = '\0';
	assert_int_equal(model_add_tenant(b, 1, "t1", "10.0.0.1:25"), 0);
	assert_int_equal(model_add_tenant(b, 2, "t2", "10.0.0.2:25"), 0);
	assert_int_equal(model_add_domain(b, 1, "a.example"), 0);
	assert_int_equal(model_add_domain(b, 1, dom), 0);
	assert_int_equal(model_add_domain(b, 2, "c.example"), 0);
	assert_int_equal(model_add_recipient(b, 1, "a.example", "bob"), 0);
	assert_int_equal(model_add_recipient(b, 1, "a.example", "BOB"), 0);   /* repeat */
	assert_int_equal(model_add_recipient(b, 1, "c.example", "carol"), 0); /* t2's domain */
	assert_int_equal(model_add_recipient(b, 1, "z.example", "zed"), 0);   /* nobody's */
	assert_int_equal(model_add_recipient(b, 99, "a.example", "ghost"), 0);
	assert_int_equal(model_add_recipient(b, 1, dom, local), 0);           /* at the limits */
	local[MODEL_LOCAL_MAX] = 'l';
	local[MODEL_LOCAL_MAX + 1] = '\0';
	assert_int_equal(model_add_recipient(b, 1, "a.example", local), -1);
	assert_int_equal(model_add_recipient(b, 1, "a.example", ""), -1);
	assert_int_equal(model_add_recipient(b, 1, "", "bob"), -1);
	dom[MODEL_DOMAIN_MAX] = 'd';
	dom[MODEL_DOMAIN_MAX + 1] = '\0';
	assert_int_equal(model_add_recipient(b, 1, dom, "bob"), -1);

	struct model_snapshot *s = finish(&b, 1);
	const struct model_tenant *t1 = model_tenant_by_name(s, "t1");
	const struct model_tenant *t2 = model_tenant_by_name(s, "t2");
	assert_int_equal(t1->nrecipients, 2);
	assert_int_equal(t2->nrecipients, 0);
	assert_int_equal(model_recipient_known(s, t1, "Bob", "a.example"), MODEL_RCPT_LISTED);
	assert_int_equal(model_recipient_known(s, t1, "carol", "c.example"), MODEL_RCPT_UNKNOWN);
	assert_int_equal(model_recipient_known(s, t2, "carol", "c.example"), MODEL_RCPT_UNKNOWN);
	assert_int_equal(model_recipient_known(s, t1, "ghost", "a.example"), MODEL_RCPT_UNKNOWN);
	dom[MODEL_DOMAIN_MAX] = '\0';
	local[MODEL_LOCAL_MAX] = '\0';
	assert_int_equal(model_recipient_known(s, t1, local, dom), MODEL_RCPT_LISTED);
	local[MODEL_LOCAL_MAX - 1] = '\0';
	assert_int_equal(model_recipient_known(s, t1, local, dom), MODEL_RCPT_UNKNOWN);
	model_unref(&s);
}

/* A builder with recipients, freed unfinished, leaks nothing (ASan watches). */
static void test_recipient_builder_free(void **state)
{
	struct model_builder *b = model_builder_new();

	(void)state;
	for (int i = 0; i < 5000; i++) {
		char local[16];
		snprintf(local, sizeof(local), "u%d", i);
		assert_int_equal(model_add_recipient(b, 1, i % 2 ? "a.example" : "b.example", local), 0);
	}
	assert_int_equal(model_set_recipient_check(b, 1, RCPT_CHECK_DIRECTORY), 0);
	model_builder_free(&b);
	assert_null(b);
}

#define RCPT_SCALE 1000000
#define RCPT_SCALE_TENANTS 50

/* A million entries over 50 tenants and 100 domains: every 97th entry is found (in another
 * case), a miss next to it is not, and a second tenant never sees the first one's entries.
 * The time to build and to look up is printed, not asserted (machines differ). */
static void test_recipients_million(void **state)
{
	struct model_builder *b = model_builder_new();
	struct timespec t0, t1, t2;
	char local[32], domain[32], name[16];
	size_t found = 0;

	(void)state;
	for (uint32_t t = 1; t <= RCPT_SCALE_TENANTS; t++) {
		snprintf(name, sizeof(name), "t%u", t);
		assert_int_equal(model_add_tenant(b, t, name, "10.0.0.1:25"), 0);
		for (int d = 0; d < 2; d++) {
			snprintf(domain, sizeof(domain), "d%u-%d.example", t, d);
			assert_int_equal(model_add_domain(b, t, domain), 0);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (uint32_t i = 0; i < RCPT_SCALE; i++) {
		uint32_t t = 1 + i % RCPT_SCALE_TENANTS;
		snprintf(domain, sizeof(domain), "d%u-%u.example", t, (i / RCPT_SCALE_TENANTS) % 2);
		snprintf(local, sizeof(local), "user.%u", i);
		assert_int_equal(model_add_recipient(b, t, domain, local), 0);
	}
	struct model_snapshot *s = finish(&b, 1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (uint32_t i = 0; i < RCPT_SCALE; i += 97) {
		uint32_t t = 1 + i % RCPT_SCALE_TENANTS;
		snprintf(name, sizeof(name), "t%u", t);
		const struct model_tenant *ten = model_tenant_by_name(s, name);
		snprintf(domain, sizeof(domain), "d%u-%u.example", t, (i / RCPT_SCALE_TENANTS) % 2);
		snprintf(local, sizeof(local), "USER.%u", i);
		if (model_recipient_known(s, ten, local, domain) != MODEL_RCPT_LISTED)
			fail_msg("%s@%s of %s not found", local, domain, name);
		snprintf(local, sizeof(local), "user.%u", i + RCPT_SCALE);
		assert_int_equal(model_recipient_known(s, ten, local, domain), MODEL_RCPT_UNKNOWN);
		snprintf(name, sizeof(name), "t%u", 1 + (t % RCPT_SCALE_TENANTS));
		snprintf(local, sizeof(local), "user.%u", i);
		assert_int_equal(model_recipient_known(s, model_tenant_by_name(s, name), local, domain),
				 MODEL_RCPT_UNKNOWN);
		found++;
	}
	clock_gettime(CLOCK_MONOTONIC, &t2);
	for (size_t i = 0; i < model_ntenants(s); i++)
		assert_int_equal(model_tenant_at(s, i)->nrecipients, RCPT_SCALE / RCPT_SCALE_TENANTS);
	fprintf(stderr, "recipients: %d entries built in %.0f ms; %zu x 3 lookups in %.0f ms\n",
		RCPT_SCALE, (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6,
		found, (double)(t2.tv_sec - t1.tv_sec) * 1e3 + (double)(t2.tv_nsec - t1.tv_nsec) / 1e6);
	model_unref(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_longest_prefix),
		cmocka_unit_test(test_longest_prefix_any_order),
		cmocka_unit_test(test_tie_block_wins),
		cmocka_unit_test(test_zero_prefix),
		cmocka_unit_test(test_host_entries),
		cmocka_unit_test(test_family_separation),
		cmocka_unit_test(test_tenant_isolation),
		cmocka_unit_test(test_entry_host_bits_masked),
		cmocka_unit_test(test_each_match_order),
		cmocka_unit_test(test_each_match_complete),
		cmocka_unit_test(test_tenants_and_domains),
		cmocka_unit_test(test_empty_snapshot),
		cmocka_unit_test(test_no_connectors),
		cmocka_unit_test(test_connectors_matching_ip),
		cmocka_unit_test(test_connectors_matching_tls),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_builder_free),
		cmocka_unit_test(test_builder_limits),
		cmocka_unit_test(test_unknown_references),
		cmocka_unit_test(test_duplicate_domain),
		cmocka_unit_test(test_scale_against_brute_force),
		cmocka_unit_test(test_filter_every_length),
		cmocka_unit_test(test_filter_near_misses),
		cmocka_unit_test(test_any_length_against_brute_force),
		cmocka_unit_test(test_route_spec_format_limits),
		cmocka_unit_test(test_recipients_lookup),
		cmocka_unit_test(test_recipient_check_flag),
		cmocka_unit_test(test_recipient_references_and_limits),
		cmocka_unit_test(test_recipient_builder_free),
		cmocka_unit_test(test_recipients_million),
	};

	return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
