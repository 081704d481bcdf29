/* Unit tests for engine: docs/policy-precedence.md as a table of cases. One policy snapshot
 * (three tenants, their connectors and IP lists) and hand-made DNSBL answers; every row checks
 * the whole verdict (action, codes, rule, reason, tenant, list, entry, DNSBL summary, score,
 * key parts of the text), that a trace ends with the decision step, and that deciding without
 * a trace gives the identical verdict. Table failures name the row through fail_msg(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "dns/dnsbl.h"
#include "policy/engine.h"
#include "policy/model.h"
#include "policy/trace.h"
#include "util/addr.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* ---- the policy ------------------------------------------------------------------------------ *
 *
 * acme  (acme.example, acme-corp.example), route 10.0.0.25:25
 *   onprem  acme-onprem         198.51.100.0/24          (the founding case's connector)
 *   onprem  acme-tls            TLS name relay.acme.example
 *   onprem  acme-badtls         TLS name mx.outsider.example (not one of acme's domains)
 *   partner acme-partner        203.0.113.0/28, require TLS
 *   partner acme-partner-plain  203.0.113.64/28
 *   Allow 198.51.100.25/32 "partner relay"   Block 198.51.100.128/26 "bad half"
 *   Allow 192.0.2.0/24 "office"              Block 192.0.2.64/27 "guest wifi"
 *   Block 10.20.0.0/16 "hosting"             Allow 10.20.30.0/24 "our hoster"
 *   Allow+Block 172.16.5.0/24 "tie"          Block 2001:db8:bad::/48 "v6 abuse"
 *   Block 203.0.113.9/32 "compromised partner host"  Allow 203.0.113.7/32 "partner host"
 * beta  (beta.example), route 10.0.0.26:2525
 *   partner beta-partner        192.0.2.0/28, require TLS
 *   onprem  beta-onprem         2001:db8:beef::/48
 *   Block 198.51.100.25/32 "not for beta"
 * gamma (gamma.example), route [2001:db8::26]:25
 *   onprem  gamma-onprem        198.51.100.96/28 (inside acme-onprem's range)
 * delta (delta.example, delta-corp.example), route mail.delta-backend.example:25,
 *       recipient check directory: bob@delta.example, Carol@delta.example,
 *       "john doe"@delta.example, *@delta-corp.example (rule 3a)
 *   onprem  delta-onprem        100.64.0.0/24
 *   partner delta-partner       100.64.3.0/24, require TLS
 *   Allow 100.64.1.0/24 "delta office"   Block 100.64.2.0/24 "delta blocked"
 *
 * epsilon (epsilon.example), route mail.eps-backend.example:25, recipient check probe
 *   Block 100.65.2.0/24 "eps blocked"
 *
 * acme, beta and gamma do not check recipients (recipient check off).
 *
 * Addresses on nothing at all: 233.252.0.1, 2001:db8:cafe::1. */

static void add_entry(struct model_builder *b, uint32_t tenant, enum ip_list list,
		      const char *net, const char *comment)
{
	struct cidr c;

	if (cidr_parse(net, &c) != ADDR_OK)
		fail_msg("bad CIDR in test: %s", net);
	assert_int_equal(model_add_ip_entry(b, tenant, list, &c, comment), 0);
}

static void add_connector(struct model_builder *b, uint32_t id, uint32_t tenant, const char *name,
			  enum connector_type type, const char *tls_name, int require_tls,
			  const char *range)
{
	struct cidr c;

	assert_int_equal(model_add_connector(b, id, tenant, name, type, tls_name, require_tls), 0);
	if (!range)
		return;
	if (cidr_parse(range, &c) != ADDR_OK)
		fail_msg("bad CIDR in test: %s", range);
	assert_int_equal(model_add_connector_range(b, id, &c), 0);
}

static struct model_snapshot *build_policy(void)
{
	struct model_builder *b = model_builder_new();

	assert_int_equal(model_add_tenant(b, 1, "acme", "10.0.0.25:25"), 0);
	assert_int_equal(model_add_tenant(b, 2, "beta", "10.0.0.26:2525"), 0);
	assert_int_equal(model_add_tenant(b, 3, "gamma", "[2001:db8::26]:25"), 0);
	assert_int_equal(model_add_domain(b, 1, "acme.example"), 0);
	assert_int_equal(model_add_domain(b, 1, "acme-corp.example"), 0);
	assert_int_equal(model_add_domain(b, 2, "beta.example"), 0);
	assert_int_equal(model_add_domain(b, 3, "gamma.example"), 0);

	add_connector(b, 101, 1, "acme-onprem", CONNECTOR_ONPREM, "", 0, "198.51.100.0/24");
	add_connector(b, 102, 1, "acme-tls", CONNECTOR_ONPREM, "relay.acme.example", 0, NULL);
	add_connector(b, 103, 1, "acme-partner", CONNECTOR_PARTNER, "", 1, "203.0.113.0/28");
	add_connector(b, 104, 1, "acme-partner-plain", CONNECTOR_PARTNER, "", 0, "203.0.113.64/28");
	add_connector(b, 105, 1, "acme-badtls", CONNECTOR_ONPREM, "mx.outsider.example", 0, NULL);
	add_connector(b, 201, 2, "beta-partner", CONNECTOR_PARTNER, "", 1, "192.0.2.0/28");
	add_connector(b, 202, 2, "beta-onprem", CONNECTOR_ONPREM, "", 0, "2001:db8:beef::/48");
	add_connector(b, 301, 3, "gamma-onprem", CONNECTOR_ONPREM, "", 0, "198.51.100.96/28");

	add_entry(b, 1, IP_LIST_ALLOW, "198.51.100.25/32", "partner relay");
	add_entry(b, 1, IP_LIST_BLOCK, "198.51.100.128/26", "bad half");
	add_entry(b, 1, IP_LIST_ALLOW, "192.0.2.0/24", "office");
	add_entry(b, 1, IP_LIST_BLOCK, "192.0.2.64/27", "guest wifi");
	add_entry(b, 1, IP_LIST_BLOCK, "10.20.0.0/16", "hosting");
	add_entry(b, 1, IP_LIST_ALLOW, "10.20.30.0/24", "our hoster");
	add_entry(b, 1, IP_LIST_ALLOW, "172.16.5.0/24", "tie");
	add_entry(b, 1, IP_LIST_BLOCK, "172.16.5.0/24", "tie");
	add_entry(b, 1, IP_LIST_BLOCK, "2001:db8:bad::/48", "v6 abuse");
	add_entry(b, 1, IP_LIST_BLOCK, "203.0.113.9/32", "compromised partner host");
	add_entry(b, 1, IP_LIST_ALLOW, "203.0.113.7/32", "partner host");
	add_entry(b, 2, IP_LIST_BLOCK, "198.51.100.25/32", "not for beta");

	assert_int_equal(model_add_tenant(b, 4, "delta", "mail.delta-backend.example:25"), 0);
	assert_int_equal(model_add_domain(b, 4, "delta.example"), 0);
	assert_int_equal(model_add_domain(b, 4, "delta-corp.example"), 0);
	assert_int_equal(model_set_recipient_check(b, 4, RCPT_CHECK_DIRECTORY), 0);
	assert_int_equal(model_add_recipient(b, 4, "delta.example", "bob"), 0);
	assert_int_equal(model_add_recipient(b, 4, "delta.example", "Carol"), 0);
	assert_int_equal(model_add_recipient(b, 4, "delta.example", "john doe"), 0);
	assert_int_equal(model_add_recipient(b, 4, "delta-corp.example", MODEL_RCPT_WILDCARD), 0);
	add_connector(b, 401, 4, "delta-onprem", CONNECTOR_ONPREM, "", 0, "100.64.0.0/24");
	add_connector(b, 402, 4, "delta-partner", CONNECTOR_PARTNER, "", 1, "100.64.3.0/24");
	add_entry(b, 4, IP_LIST_ALLOW, "100.64.1.0/24", "delta office");
	add_entry(b, 4, IP_LIST_BLOCK, "100.64.2.0/24", "delta blocked");

	assert_int_equal(model_add_tenant(b, 5, "epsilon", "mail.eps-backend.example:25"), 0);
	assert_int_equal(model_add_domain(b, 5, "epsilon.example"), 0);
	assert_int_equal(model_set_recipient_check(b, 5, RCPT_CHECK_PROBE), 0);
	add_entry(b, 5, IP_LIST_BLOCK, "100.65.2.0/24", "eps blocked");

	return model_builder_finish(&b, 1);
}

/* ---- the DNSBLs ------------------------------------------------------------------------------ */

#define SECRET "k3ysecret0123456789"

static struct dnsbl_config lists[5];

static void set_list(struct dnsbl_config *l, const char *name, const char *display,
		     const char *zone, const char *display_zone, int weight, int txt,
		     const char *url)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", name);
	snprintf(l->display_name, sizeof(l->display_name), "%s", display);
	snprintf(l->zone, sizeof(l->zone), "%s", zone);
	snprintf(l->display_zone, sizeof(l->display_zone), "%s", display_zone);
	l->codes[0] = (struct code_range){ IP4(127, 0, 0, 2), IP4(127, 0, 0, 11) };
	l->ncodes = 1;
	l->weight = weight;
	l->fetch_txt = txt;
	snprintf(l->url, sizeof(l->url), "%s", url);
	l->ipv6 = 1;
}

static void make_lists(void)
{
	set_list(&lists[0], "zen", "Spamhaus ZEN", "zen.spamhaus.org", "", 10, 1,
		 "https://check.spamhaus.org/listed/?searchterm={ip}");
	set_list(&lists[1], "dqs", "Spamhaus DQS", SECRET ".zen.dq.spamhaus.net",
		 "zen.dq.spamhaus.net", 10, 0, "");
	set_list(&lists[2], "spamcop", "SpamCop", "bl.spamcop.net", "", 5, 1, "");
	set_list(&lists[3], "barracuda", "Barracuda", "b.barracudacentral.org", "", 5, 0,
		 "https://www.barracudacentral.org/lookups/lookup-reputation?ip={ip}&x=1");
	set_list(&lists[4], "dnswl", "DNSWL", "list.dnswl.org", "", -10, 0, "");
}

static const struct dnsbl_config *list_named(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(lists); i++)
		if (strcmp(lists[i].name, name) == 0)
			return &lists[i];
	fail_msg("no list %s", name);
	return NULL;
}

/* ---- the table ------------------------------------------------------------------------------- */

struct ans {
	const char *list; /* NULL ends the array */
	enum dnsbl_state state;
	uint32_t code;
	const char *txt;
	const char *detail;
};

#define LISTED(l) { l, DNSBL_LISTED, IP4(127, 0, 0, 2), "", "" }
#define CLEAN(l) { l, DNSBL_NOT_LISTED, 0, "", "" }

struct ecase {
	const char *name;
	/* the request */
	const char *ip;
	int tls;
	const char *tls_name; /* a verified name, NULL when none */
	const char *sender;   /* sender domain, "" = null sender */
	const char *rcpt_domain;
	const char *rcpt_local; /* NULL = "bob" ("postmaster" without a domain) */
	struct probe_ans {
		int made; /* 0: no probe (rcpt_probe NULL) */
		enum engine_probe_state state;
		const char *detail;
	} probe;
	struct ans dnsbl[6];
	int incomplete; /* dnsbl_complete = 0 */
	int threshold;  /* 0 = 10 */
	/* the verdict */
	enum engine_action action;
	int code;
	const char *enhanced;
	const char *rule;
	const char *reason;
	const char *tenant; /* NULL = none */
	const char *route;  /* NULL = not checked */
	const char *list;
	const char *entry;
	const char *summary;
	int score;
	const char *text_has[6];
	const char *text_not[3];
	const char *trace_has[5];
};

/* The expected verdict: action, code, enhanced code, rule, reason, tenant, route, list,
 * entry, DNSBL summary, score. */
#define V(...) V_(__VA_ARGS__)
#define V_(act, code_, enh, rule_, reason_, tenant_, route_, list_, entry_, summary_, score_) \
	.action = (act), .code = (code_), .enhanced = (enh), .rule = (rule_), .reason = (reason_), \
	.tenant = (tenant_), .route = (route_), .list = (list_), .entry = (entry_),             \
	.summary = (summary_), .score = (score_)
#define ACCEPT ENGINE_ACCEPT, 250, "2.1.5"
#define REJECT_550 ENGINE_REJECT, 550, "5.7.1"
#define REJECT_530 ENGINE_REJECT, 530, "5.7.0"
#define REJECT_511 ENGINE_REJECT, 550, "5.1.1"
#define TEMPFAIL_451 ENGINE_TEMPFAIL, 451, "4.4.3"
#define EPS_PROBE "recipient probe of tenant epsilon"
#define EPS_ROUTE "mail.eps-backend.example:25"
#define EPS_NO_USER "550 5.1.1 <nobody@epsilon.example>: User unknown (mail.eps-backend.example)"
#define DELTA_DIR "recipient directory of tenant delta"
#define DELTA_ROUTE "mail.delta-backend.example:25"
#define ACME_ALLOW "IP Allow list of tenant acme"
#define ACME_BLOCK "IP Block list of tenant acme"
#define ZEN_TXT "Listed by CSS, see https://check.spamhaus.org/query/ip/"

static const struct ecase cases[] = {
	/* ---- 1. relay: a recipient domain no tenant serves ---- */
	{ .name = "relay: no connector",
	  .ip = "233.252.0.1", .sender = "acme.example", .rcpt_domain = "external.example",
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "none", 0),
	  .text_has = { "Unable to relay", "external.example", "[233.252.0.1]",
			"not an on-premises connector" } },
	{ .name = "relay: onprem connector, sender domain not the tenant's",
	  .ip = "198.51.100.10", .sender = "other.example", .rcpt_domain = "external.example",
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "none", 0),
	  .text_has = { "Unable to relay", "external.example", "[198.51.100.10]", "acme-onprem",
			"other.example", "tenant acme" },
	  .trace_has = { "no relay" } },
	{ .name = "relay: onprem connector, the tenant's sender",
	  .ip = "198.51.100.10", .sender = "acme.example", .rcpt_domain = "external.example",
	  V(ACCEPT, "onprem-relay", "onprem-relay", "acme", "mx", "onprem connector acme-onprem", "",
	  "none", 0), .trace_has = { "relay allowed" } },
	{ .name = "relay: onprem connector, the tenant's second domain",
	  .ip = "198.51.100.10", .sender = "acme-corp.example", .rcpt_domain = "external.example",
	  V(ACCEPT, "onprem-relay", "onprem-relay", "acme", "mx", "onprem connector acme-onprem", "",
	  "none", 0)},
	{ .name = "relay: onprem connector, sender is a subdomain of the tenant's",
	  .ip = "198.51.100.10", .sender = "sub.acme.example", .rcpt_domain = "external.example",
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "none", 0),
	  .text_has = { "sub.acme.example" } },
	{ .name = "relay: a partner connector never relays",
	  .ip = "203.0.113.5", .tls = 1, .sender = "acme.example", .rcpt_domain = "external.example",
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "none", 0),
	  .text_has = { "[203.0.113.5]", "not an on-premises connector" } },
	{ .name = "relay: null sender on an onprem connector",
	  .ip = "198.51.100.10", .sender = "", .rcpt_domain = "external.example",
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "none", 0),
	  .text_has = { "(null sender)", "acme-onprem" } },
	{ .name = "relay: an Allow entry does not open relay",
	  .ip = "192.0.2.9", .sender = "acme.example", .rcpt_domain = "external.example",
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "none", 0),
	  .text_has = { "[192.0.2.9]", "not an on-premises connector" } },
	{ .name = "relay: founding client, foreign sender",
	  .ip = "198.51.100.25", .sender = "partner.example", .rcpt_domain = "external.example",
	  .dnsbl = { LISTED("zen") },
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "listed:zen", 10),
	  .text_has = { "partner.example", "acme-onprem" } },
	{ .name = "relay: a DNS allow list does not open relay",
	  .ip = "233.252.0.1", .sender = "acme.example", .rcpt_domain = "external.example",
	  .dnsbl = { CLEAN("zen"), LISTED("dnswl") },
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "listed:dnswl", -10)},
	{ .name = "relay: verified TLS name of an onprem connector, in the tenant's domains",
	  .ip = "233.252.0.1", .tls = 1, .tls_name = "relay.acme.example", .sender = "other.example",
	  .rcpt_domain = "external.example",
	  V(ACCEPT, "onprem-relay", "onprem-relay", "acme", "mx", "onprem connector acme-tls", "",
	  "none", 0), .trace_has = { "verified TLS name relay.acme.example" } },
	{ .name = "relay: verified TLS name matched case-insensitively",
	  .ip = "233.252.0.1", .tls = 1, .tls_name = "Relay.ACME.example", .sender = "other.example",
	  .rcpt_domain = "external.example",
	  V(ACCEPT, "onprem-relay", "onprem-relay", "acme", "mx", "onprem connector acme-tls", "",
	  "none", 0)},
	{ .name = "relay: TLS without a verified name",
	  .ip = "233.252.0.1", .tls = 1, .sender = "other.example", .rcpt_domain = "external.example",
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "none", 0),
	  .text_has = { "not an on-premises connector" } },
	{ .name = "relay: verified TLS name unknown to every connector",
	  .ip = "233.252.0.1", .tls = 1, .tls_name = "mail.acme.example", .sender = "other.example",
	  .rcpt_domain = "external.example",
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "none", 0)},
	{ .name = "relay: onprem TLS name outside the tenant's domains, foreign sender",
	  .ip = "233.252.0.1", .tls = 1, .tls_name = "mx.outsider.example", .sender = "other.example",
	  .rcpt_domain = "external.example",
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "none", 0),
	  .text_has = { "acme-badtls", "other.example" } },
	{ .name = "relay: onprem TLS name outside the tenant's domains, the tenant's sender",
	  .ip = "233.252.0.1", .tls = 1, .tls_name = "mx.outsider.example", .sender = "acme.example",
	  .rcpt_domain = "external.example",
	  V(ACCEPT, "onprem-relay", "onprem-relay", "acme", "mx", "onprem connector acme-badtls", "",
	  "none", 0)},
	{ .name = "relay: <postmaster> without a domain",
	  .ip = "233.252.0.1", .sender = "acme.example", .rcpt_domain = "",
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "none", 0),
	  .text_has = { "[233.252.0.1]" } },
	{ .name = "relay: overlapping onprem connectors, gamma's sender",
	  .ip = "198.51.100.100", .sender = "gamma.example", .rcpt_domain = "external.example",
	  V(ACCEPT, "onprem-relay", "onprem-relay", "gamma", "mx", "onprem connector gamma-onprem", "",
	  "none", 0)},
	{ .name = "relay: overlapping onprem connectors, acme's sender",
	  .ip = "198.51.100.100", .sender = "acme.example", .rcpt_domain = "external.example",
	  V(ACCEPT, "onprem-relay", "onprem-relay", "acme", "mx", "onprem connector acme-onprem", "",
	  "none", 0)},
	{ .name = "relay: overlapping onprem connectors, a third tenant's sender",
	  .ip = "198.51.100.100", .sender = "beta.example", .rcpt_domain = "external.example",
	  V(REJECT_550, "relay", "relay-denied", NULL, "", "relay", "", "none", 0),
	  .text_has = { "Unable to relay to external.example", "beta.example" } },
	{ .name = "relay: IPv6 onprem connector",
	  .ip = "2001:db8:beef::7", .sender = "beta.example", .rcpt_domain = "external.example",
	  V(ACCEPT, "onprem-relay", "onprem-relay", "beta", "mx", "onprem connector beta-onprem", "",
	  "none", 0)},

	/* ---- 2. the tenant's IP lists: longest prefix, Block on a tie ---- */
	{ .name = "ip-block beats the onprem connector",
	  .ip = "198.51.100.130", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { CLEAN("zen"), CLEAN("spamcop") },
	  V(REJECT_550, "ip-block", "ip-block", "acme", "10.0.0.25:25", ACME_BLOCK,
	  "198.51.100.128/26 (bad half)", "clean", 0),
	  .text_has = { "[198.51.100.130]", "acme.example", "IP Block list", "198.51.100.128/26",
			"bad half" },
	  .trace_has = { "Block list entry 198.51.100.128/26", "acme-onprem" } },
	{ .name = "ip-block beats the onprem connector with the tenant's own sender",
	  .ip = "198.51.100.130", .sender = "acme.example", .rcpt_domain = "acme.example",
	  V(REJECT_550, "ip-block", "ip-block", "acme", NULL, ACME_BLOCK,
	  "198.51.100.128/26 (bad half)", "none", 0)},
	{ .name = "ip-block: a longer Block beats a shorter Allow",
	  .ip = "192.0.2.70", .sender = "other.example", .rcpt_domain = "acme.example",
	  V(REJECT_550, "ip-block", "ip-block", "acme", NULL, ACME_BLOCK,
	  "192.0.2.64/27 (guest wifi)", "none", 0),
	  .text_has = { "[192.0.2.70]", "192.0.2.64/27" },
	  .trace_has = { "Allow list entry 192.0.2.0/24", "192.0.2.64/27 \"guest wifi\" matches <-" } },
	{ .name = "ip-allow: a longer Allow beats a shorter Block, DNSBL-listed",
	  .ip = "10.20.30.5", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("zen") },
	  V(ACCEPT, "ip-allow", "allow-list", "acme", "10.0.0.25:25", ACME_ALLOW,
	  "10.20.30.0/24 (our hoster)", "listed:zen", 10),
	  .trace_has = { "Block list entry 10.20.0.0/16" } },
	{ .name = "ip-block: the shorter Block alone",
	  .ip = "10.20.1.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  V(REJECT_550, "ip-block", "ip-block", "acme", NULL, ACME_BLOCK, "10.20.0.0/16 (hosting)",
	  "none", 0)},
	{ .name = "ip-block: exact tie, Block wins",
	  .ip = "172.16.5.9", .sender = "other.example", .rcpt_domain = "acme-corp.example",
	  V(REJECT_550, "ip-block", "ip-block", "acme", NULL, ACME_BLOCK, "172.16.5.0/24 (tie)",
	  "none", 0), .text_has = { "acme-corp.example", "172.16.5.0/24" } },
	{ .name = "ip-block: IPv6 entry",
	  .ip = "2001:db8:bad::1", .sender = "other.example", .rcpt_domain = "acme.example",
	  V(REJECT_550, "ip-block", "ip-block", "acme", NULL, ACME_BLOCK,
	  "2001:db8:bad::/48 (v6 abuse)", "none", 0),
	  .text_has = { "[2001:db8:bad::1]", "2001:db8:bad::/48" } },
	{ .name = "ip-block beats a partner connector that requires TLS",
	  .ip = "203.0.113.9", .sender = "partner.example", .rcpt_domain = "acme.example",
	  V(REJECT_550, "ip-block", "ip-block", "acme", NULL, ACME_BLOCK,
	  "203.0.113.9/32 (compromised partner host)", "none", 0)},

	/* ---- 3. partner connectors that require TLS ---- */
	{ .name = "partner-tls: require_tls without TLS",
	  .ip = "203.0.113.5", .sender = "partner.example", .rcpt_domain = "acme.example",
	  .dnsbl = { CLEAN("zen") },
	  V(REJECT_530, "partner-tls", "partner-tls", "acme", "10.0.0.25:25",
	  "partner connector acme-partner", "", "clean", 0),
	  .text_has = { "STARTTLS", "partner connector acme-partner", "tenant acme", "requires TLS" } },
	{ .name = "partner-tls: require_tls with TLS goes on (clean)",
	  .ip = "203.0.113.5", .tls = 1, .sender = "partner.example", .rcpt_domain = "acme.example",
	  .dnsbl = { CLEAN("zen"), CLEAN("spamcop") },
	  V(ACCEPT, "default", "dnsbl-clean", "acme", "10.0.0.25:25", "", "", "clean", 0)},
	{ .name = "partner-tls: with TLS the partner is still subject to DNSBLs",
	  .ip = "203.0.113.5", .tls = 1, .sender = "partner.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("zen") },
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "acme", NULL, "Spamhaus ZEN", "", "listed:zen", 10),
	  .text_has = { "[203.0.113.5]", "Spamhaus ZEN" } },
	{ .name = "partner-tls beats an Allow entry",
	  .ip = "203.0.113.7", .sender = "partner.example", .rcpt_domain = "acme.example",
	  V(REJECT_530, "partner-tls", "partner-tls", "acme", NULL, "partner connector acme-partner",
	  "", "none", 0)},
	{ .name = "partner-tls satisfied: the Allow entry accepts",
	  .ip = "203.0.113.7", .tls = 1, .sender = "partner.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("zen") },
	  V(ACCEPT, "ip-allow", "allow-list", "acme", NULL, ACME_ALLOW, "203.0.113.7/32 (partner host)",
	  "listed:zen", 10)},
	{ .name = "partner connector without require_tls, no TLS",
	  .ip = "203.0.113.70", .sender = "partner.example", .rcpt_domain = "acme.example",
	  V(ACCEPT, "default", "no-dnsbl", "acme", NULL, "", "", "none", 0)},
	{ .name = "another tenant's require_tls partner: acme's Allow decides",
	  .ip = "192.0.2.5", .sender = "partner.example", .rcpt_domain = "acme.example",
	  V(ACCEPT, "ip-allow", "allow-list", "acme", NULL, ACME_ALLOW, "192.0.2.0/24 (office)",
	  "none", 0)},
	{ .name = "another tenant's require_tls partner: gamma unaffected",
	  .ip = "192.0.2.5", .sender = "partner.example", .rcpt_domain = "gamma.example",
	  V(ACCEPT, "default", "no-dnsbl", "gamma", "[2001:db8::26]:25", "", "", "none", 0),
	  .trace_has = { "another tenant: not considered" } },
	{ .name = "the require_tls partner's own tenant: beta rejects",
	  .ip = "192.0.2.5", .sender = "partner.example", .rcpt_domain = "beta.example",
	  V(REJECT_530, "partner-tls", "partner-tls", "beta", "10.0.0.26:2525",
	  "partner connector beta-partner", "", "none", 0),
	  .text_has = { "beta-partner", "tenant beta" } },

	/* ---- 4. Allow entry or onprem connector: accept, DNSBLs notwithstanding ---- */
	{ .name = "founding case: onprem range + Allow /32 + listed on ZEN",
	  .ip = "198.51.100.25", .sender = "partner.example", .rcpt_domain = "acme.example",
	  .dnsbl = { { "zen", DNSBL_LISTED, IP4(127, 0, 0, 3), ZEN_TXT "198.51.100.25", "" },
		     CLEAN("spamcop"), CLEAN("barracuda") },
	  V(ACCEPT, "ip-allow", "allow-list", "acme", "10.0.0.25:25", ACME_ALLOW,
	  "198.51.100.25/32 (partner relay)", "listed:zen", 10),
	  .trace_has = { "onprem connector acme-onprem of tenant acme matches by IP range "
			 "198.51.100.0/24",
			 "Allow list entry 198.51.100.25/32 \"partner relay\" matches <- most specific",
			 "Spamhaus ZEN: listed 127.0.0.3", "acme.example belongs to tenant acme" } },
	{ .name = "founding case without the Allow entry: the onprem connector accepts",
	  .ip = "198.51.100.26", .sender = "partner.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("zen"), LISTED("dqs") },
	  V(ACCEPT, "onprem-connector", "onprem-connector", "acme", "10.0.0.25:25",
	  "onprem connector acme-onprem", "", "listed:zen,listed:dqs", 20)},
	{ .name = "founding client, tenant beta: beta's Block list",
	  .ip = "198.51.100.25", .sender = "partner.example", .rcpt_domain = "beta.example",
	  .dnsbl = { LISTED("zen") },
	  V(REJECT_550, "ip-block", "ip-block", "beta", "10.0.0.26:2525",
	  "IP Block list of tenant beta", "198.51.100.25/32 (not for beta)", "listed:zen", 10),
	  .text_has = { "beta.example", "198.51.100.25/32" } },
	{ .name = "founding client, tenant gamma: no Allow, no connector, the list is named",
	  .ip = "198.51.100.25", .sender = "partner.example", .rcpt_domain = "gamma.example",
	  .dnsbl = { { "zen", DNSBL_LISTED, IP4(127, 0, 0, 3), ZEN_TXT "198.51.100.25", "" } },
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "gamma", NULL, "Spamhaus ZEN", "", "listed:zen", 10),
	  .text_has = { "Service unavailable; client [198.51.100.25] blocked using Spamhaus ZEN",
			ZEN_TXT "198.51.100.25",
			"https://check.spamhaus.org/listed/?searchterm=198.51.100.25" },
	  .text_not = { "{ip}", "zen.spamhaus.org" } },
	{ .name = "ip-allow beats every listing",
	  .ip = "10.20.30.5", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("zen"), LISTED("dqs"), LISTED("spamcop"), LISTED("barracuda") },
	  V(ACCEPT, "ip-allow", "allow-list", "acme", NULL, ACME_ALLOW, "10.20.30.0/24 (our hoster)",
	  "listed:zen,listed:dqs,listed:spamcop,listed:barracuda", 30)},
	{ .name = "onprem connector by verified TLS name accepts despite DNSBL",
	  .ip = "233.252.0.1", .tls = 1, .tls_name = "relay.acme.example", .sender = "other.example",
	  .rcpt_domain = "acme.example", .dnsbl = { LISTED("zen") },
	  V(ACCEPT, "onprem-connector", "onprem-connector", "acme", NULL, "onprem connector acme-tls",
	  "", "listed:zen", 10)},
	{ .name = "onprem connector of another tenant does not exempt",
	  .ip = "2001:db8:beef::7", .sender = "beta.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("zen") },
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "acme", NULL, "Spamhaus ZEN", "", "listed:zen", 10),
	  .text_has = { "[2001:db8:beef::7]", "searchterm=2001:db8:beef::7" } },
	{ .name = "Allow entry of another tenant does not exempt",
	  .ip = "10.20.30.5", .sender = "other.example", .rcpt_domain = "beta.example",
	  .dnsbl = { LISTED("zen") },
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "beta", NULL, "Spamhaus ZEN", "", "listed:zen", 10)},
	{ .name = "a partner connector (no TLS requirement) does not exempt",
	  .ip = "203.0.113.70", .sender = "partner.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("zen") },
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "acme", NULL, "Spamhaus ZEN", "", "listed:zen", 10)},

	/* ---- 5. DNSBL score >= threshold ---- */
	{ .name = "dnsbl: one list reaches the threshold (TXT and URL)",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { { "zen", DNSBL_LISTED, IP4(127, 0, 0, 2), ZEN_TXT "233.252.0.1", "" },
		     CLEAN("spamcop") },
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "acme", "10.0.0.25:25", "Spamhaus ZEN", "",
	  "listed:zen", 10),
	  .text_has = { "Service unavailable; client [233.252.0.1] blocked using Spamhaus ZEN",
			"(" ZEN_TXT "233.252.0.1)",
			"see https://check.spamhaus.org/listed/?searchterm=233.252.0.1" },
	  .text_not = { "{ip}", "zen.spamhaus.org", "SpamCop" },
	  .trace_has = { "Spamhaus ZEN: listed 127.0.0.2", "SpamCop: not-listed",
			 "score 10, threshold 10" } },
	{ .name = "dnsbl: a list with a secret zone is shown by its display name",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("dqs") },
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "acme", NULL, "Spamhaus DQS", "", "listed:dqs", 10),
	  .text_has = { "blocked using Spamhaus DQS" },
	  .text_not = { "dq.spamhaus.net", "(", "see " } },
	{ .name = "dnsbl: two lists sum to the threshold",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { CLEAN("zen"), { "spamcop", DNSBL_LISTED, IP4(127, 0, 0, 2), "Blocked - see "
				     "https://www.spamcop.net/bl.shtml?233.252.0.1", "" },
		     LISTED("barracuda") },
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "acme", NULL, "SpamCop", "",
	  "listed:spamcop,listed:barracuda", 10),
	  .text_has = { "blocked using SpamCop", "spamcop.net/bl.shtml?233.252.0.1", "Barracuda",
			"lookup-reputation?ip=233.252.0.1&x=1" },
	  .text_not = { "Spamhaus", "{ip}", "barracudacentral.org/lookups/lookup-reputation?ip={" } },
	{ .name = "dnsbl: one list below the threshold",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { CLEAN("zen"), LISTED("spamcop") },
	  V(ACCEPT, "default", "dnsbl-clean", "acme", NULL, "", "", "listed:spamcop", 5)},
	{ .name = "dnsbl: a DNS allow list (negative weight) brings the score below",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("zen"), LISTED("dnswl") },
	  V(ACCEPT, "default", "dnsbl-clean", "acme", NULL, "", "", "listed:zen,listed:dnswl", 0)},
	{ .name = "dnsbl: a DNS allow list not enough against two lists",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("zen"), LISTED("dqs"), LISTED("dnswl") },
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "acme", NULL, "Spamhaus ZEN", "",
	  "listed:zen,listed:dqs,listed:dnswl", 10),
	  .text_has = { "Spamhaus ZEN", "Spamhaus DQS" }, .text_not = { "DNSWL" } },
	{ .name = "dnsbl: list errors, resolver errors and skips never count",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { { "zen", DNSBL_LIST_ERROR, IP4(127, 255, 255, 254), "",
		       "127.255.255.254: query refused" },
		     { "dqs", DNSBL_RESOLVER_ERROR, 0, "", "SERVFAIL" },
		     { "spamcop", DNSBL_SKIPPED, 0, "", "zone failed its health probe" },
		     { "barracuda", DNSBL_LIST_ERROR, IP4(10, 0, 0, 1), "",
		       "answer outside 127/8" },
		     CLEAN("dnswl") },
	  .threshold = 1,
	  V(ACCEPT, "default", "dnsbl-clean", "acme", NULL, "", "",
	  "error:zen,error:dqs,error:barracuda", 0),
	  .trace_has = { "127.255.255.254: query refused", "Spamhaus DQS: resolver-error",
			 "SpamCop: skipped" } },
	{ .name = "dnsbl: pending and timed-out answers never count (incomplete)",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { { "zen", DNSBL_PENDING, 0, "", "" }, { "spamcop", DNSBL_TIMEOUT, 0, "", "" },
		     CLEAN("barracuda") },
	  .incomplete = 1, .threshold = 1,
	  V(ACCEPT, "default", "dnsbl-timeout", "acme", NULL, "", "", "timeout:zen,timeout:spamcop", 0),
	  .trace_has = { "some answers missing" } },
	{ .name = "dnsbl: incomplete, but the answers so far reach the threshold",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("zen"), { "dqs", DNSBL_PENDING, 0, "", "" } },
	  .incomplete = 1,
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "acme", NULL, "Spamhaus ZEN", "",
	  "listed:zen,timeout:dqs", 10), .text_not = { "DQS" } },
	{ .name = "dnsbl: no lists configured",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  V(ACCEPT, "default", "no-dnsbl", "acme", "10.0.0.25:25", "", "", "none", 0)},
	{ .name = "dnsbl: every list answers not listed",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { CLEAN("zen"), CLEAN("dqs"), CLEAN("spamcop"), CLEAN("barracuda"),
		     CLEAN("dnswl") },
	  V(ACCEPT, "default", "dnsbl-clean", "acme", NULL, "", "", "clean", 0)},
	{ .name = "dnsbl: the threshold above the score",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .dnsbl = { LISTED("zen") }, .threshold = 11,
	  V(ACCEPT, "default", "dnsbl-clean", "acme", NULL, "", "", "listed:zen", 10)},
	{ .name = "dnsbl: IPv6 client",
	  .ip = "2001:db8:cafe::1", .sender = "other.example", .rcpt_domain = "gamma.example",
	  .dnsbl = { LISTED("zen") },
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "gamma", NULL, "Spamhaus ZEN", "", "listed:zen", 10),
	  .text_has = { "client [2001:db8:cafe::1] blocked using Spamhaus ZEN",
			"searchterm=2001:db8:cafe::1" } },

	/* ---- 3a. the tenant's recipient directory ---- */
	{ .name = "recipient: listed",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  V(ACCEPT, "default", "no-dnsbl", "delta", DELTA_ROUTE, "", "", "none", 0),
	  .trace_has = { "bob@delta.example is in the recipient directory of tenant delta" } },
	{ .name = "recipient: listed, local part in another case",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "BoB",
	  V(ACCEPT, "default", "no-dnsbl", "delta", DELTA_ROUTE, "", "", "none", 0)},
	{ .name = "recipient: listed in another case than sent",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "carol",
	  V(ACCEPT, "default", "no-dnsbl", "delta", DELTA_ROUTE, "", "", "none", 0)},
	{ .name = "recipient: quoted local part that needs no quotes",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "\"bob\"",
	  V(ACCEPT, "default", "no-dnsbl", "delta", DELTA_ROUTE, "", "", "none", 0)},
	{ .name = "recipient: quoted local part with a space",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "\"John Doe\"",
	  V(ACCEPT, "default", "no-dnsbl", "delta", DELTA_ROUTE, "", "", "none", 0)},
	{ .name = "recipient: unknown",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "nobody",
	  V(REJECT_511, "recipient-unknown", "recipient-unknown", "delta", DELTA_ROUTE, DELTA_DIR, "",
	  "none", 0),
	  .text_has = { "Recipient address rejected: nobody@delta.example does not exist at "
			"delta.example" },
	  .text_not = { "delta-backend", "10.0.0." },
	  .trace_has = { "nobody@delta.example is not in the recipient directory of tenant delta" } },
	{ .name = "recipient: unknown, a prefix of a listed local part",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "bo",
	  V(REJECT_511, "recipient-unknown", "recipient-unknown", "delta", NULL, DELTA_DIR, "",
	  "none", 0)},
	{ .name = "recipient: listed at the other domain only",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "anyone",
	  V(REJECT_511, "recipient-unknown", "recipient-unknown", "delta", NULL, DELTA_DIR, "",
	  "none", 0)},
	{ .name = "recipient: catch-all of the domain",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta-corp.example",
	  .rcpt_local = "anyone",
	  V(ACCEPT, "default", "no-dnsbl", "delta", DELTA_ROUTE, "", "", "none", 0),
	  .trace_has = { "by its catch-all entry *@delta-corp.example" } },
	{ .name = "recipient: postmaster is accepted unlisted",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "PostMaster",
	  V(ACCEPT, "default", "no-dnsbl", "delta", DELTA_ROUTE, "", "", "none", 0),
	  .trace_has = { "postmaster is always accepted" } },
	{ .name = "recipient: quotes and backslashes of the address do not reach the text",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "\"no\\\"body\"",
	  V(REJECT_511, "recipient-unknown", "recipient-unknown", "delta", NULL, DELTA_DIR, "",
	  "none", 0),
	  .text_has = { "?no??body?@delta.example does not exist" }, .text_not = { "\"", "\\" } },
	{ .name = "recipient: an Allow entry does not make an unknown recipient known",
	  .ip = "100.64.1.7", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "nobody",
	  V(REJECT_511, "recipient-unknown", "recipient-unknown", "delta", NULL, DELTA_DIR, "",
	  "none", 0),
	  .trace_has = { "Allow list entry 100.64.1.0/24" } },
	{ .name = "recipient: Allow entry, listed recipient",
	  .ip = "100.64.1.7", .sender = "other.example", .rcpt_domain = "delta.example",
	  .dnsbl = { LISTED("zen") },
	  V(ACCEPT, "ip-allow", "allow-list", "delta", DELTA_ROUTE, "IP Allow list of tenant delta",
	  "100.64.1.0/24 (delta office)", "listed:zen", 10)},
	{ .name = "recipient: the tenant's onprem connector, unknown recipient",
	  .ip = "100.64.0.9", .sender = "delta.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "nobody",
	  V(REJECT_511, "recipient-unknown", "recipient-unknown", "delta", NULL, DELTA_DIR, "",
	  "none", 0)},
	{ .name = "recipient: the tenant's onprem connector, listed recipient",
	  .ip = "100.64.0.9", .sender = "delta.example", .rcpt_domain = "delta.example",
	  V(ACCEPT, "onprem-connector", "onprem-connector", "delta", DELTA_ROUTE,
	  "onprem connector delta-onprem", "", "none", 0)},
	{ .name = "recipient: Block runs first",
	  .ip = "100.64.2.7", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "nobody",
	  V(REJECT_550, "ip-block", "ip-block", "delta", NULL, "IP Block list of tenant delta",
	  "100.64.2.0/24 (delta blocked)", "none", 0)},
	{ .name = "recipient: a partner without TLS is told to use TLS first",
	  .ip = "100.64.3.7", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "nobody",
	  V(REJECT_530, "partner-tls", "partner-tls", "delta", NULL, "partner connector delta-partner",
	  "", "none", 0)},
	{ .name = "recipient: a partner with TLS, unknown recipient",
	  .ip = "100.64.3.7", .tls = 1, .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "nobody",
	  V(REJECT_511, "recipient-unknown", "recipient-unknown", "delta", NULL, DELTA_DIR, "",
	  "none", 0)},
	{ .name = "recipient: DNSBL-listed client, unknown recipient",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  .rcpt_local = "nobody", .dnsbl = { LISTED("zen") },
	  V(REJECT_511, "recipient-unknown", "recipient-unknown", "delta", NULL, DELTA_DIR, "",
	  "listed:zen", 10)},
	{ .name = "recipient: DNSBL-listed client, listed recipient",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "delta.example",
	  .dnsbl = { LISTED("zen") },
	  V(REJECT_550, "dnsbl", "dnsbl-listed", "delta", NULL, "Spamhaus ZEN", "", "listed:zen",
	  10)},
	{ .name = "recipient: relay by the tenant's onprem connector is not checked",
	  .ip = "100.64.0.9", .sender = "delta.example", .rcpt_domain = "external.example",
	  .rcpt_local = "nobody",
	  V(ACCEPT, "onprem-relay", "onprem-relay", "delta", "mx", "onprem connector delta-onprem",
	  "", "none", 0)},
	{ .name = "recipient: check off accepts any local part",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "acme.example",
	  .rcpt_local = "nobody",
	  V(ACCEPT, "default", "no-dnsbl", "acme", "10.0.0.25:25", "", "", "none", 0),
	  .trace_has = { "tenant acme does not check recipients (recipient check off)" } },

	{ .name = "recipient probe: accepted by the tenant's server",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "epsilon.example",
	  .probe = { 1, ENGINE_PROBE_ACCEPTED, "250 2.1.5 Ok" },
	  V(ACCEPT, "default", "no-dnsbl", "epsilon", EPS_ROUTE, "", "", "none", 0),
	  .trace_has = { "the server of tenant epsilon accepts bob@epsilon.example" } },
	{ .name = "recipient probe: refused by the tenant's server",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "epsilon.example",
	  .rcpt_local = "nobody", .probe = { 1, ENGINE_PROBE_REJECTED, EPS_NO_USER },
	  V(REJECT_511, "recipient-unknown", "recipient-unknown", "epsilon", EPS_ROUTE, EPS_PROBE,
	  EPS_NO_USER, "none", 0),
	  .text_has = { "Recipient address rejected: nobody@epsilon.example does not exist at "
			"epsilon.example" },
	  .text_not = { "eps-backend", "User unknown" },
	  .trace_has = { "refuses nobody@epsilon.example" } },
	{ .name = "recipient probe: no answer is a temporary failure, never a 550",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "epsilon.example",
	  .rcpt_local = "nobody",
	  .probe = { 1, ENGINE_PROBE_FAILED, "connect to mail.eps-backend.example: timed out" },
	  V(TEMPFAIL_451, "recipient-probe", "recipient-probe-failed", "epsilon", EPS_ROUTE,
	  EPS_PROBE, "connect to mail.eps-backend.example: timed out", "none", 0),
	  .text_has = { "nobody@epsilon.example cannot be verified at epsilon.example",
			"try again later" },
	  .text_not = { "eps-backend", "timed out" } },
	{ .name = "recipient probe: none made",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "epsilon.example",
	  V(TEMPFAIL_451, "recipient-probe", "recipient-probe-failed", "epsilon", NULL, EPS_PROBE,
	  "no probe made", "none", 0)},
	{ .name = "recipient probe: postmaster needs none",
	  .ip = "233.252.0.1", .sender = "other.example", .rcpt_domain = "epsilon.example",
	  .rcpt_local = "postmaster",
	  V(ACCEPT, "default", "no-dnsbl", "epsilon", EPS_ROUTE, "", "", "none", 0)},
	{ .name = "recipient probe: Block runs first",
	  .ip = "100.65.2.1", .sender = "other.example", .rcpt_domain = "epsilon.example",
	  .probe = { 1, ENGINE_PROBE_REJECTED, EPS_NO_USER },
	  V(REJECT_550, "ip-block", "ip-block", "epsilon", NULL, "IP Block list of tenant epsilon",
	  "100.65.2.0/24 (eps blocked)", "none", 0)},

	/* ---- 6. nothing decided: accept ---- */
	{ .name = "default: nothing matches, TLS session with a verified name",
	  .ip = "233.252.0.1", .tls = 1, .tls_name = "mx.unknown.example", .sender = "",
	  .rcpt_domain = "beta.example", .dnsbl = { CLEAN("zen") },
	  V(ACCEPT, "default", "dnsbl-clean", "beta", "10.0.0.26:2525", "", "", "clean", 0)},
};

/* ---- running a case ------------------------------------------------------------------------- */

struct run {
	struct engine_probe probe;
	struct engine_client client;
	const char *names[1];
	struct dnsbl_answer answers[6];
	struct engine_request rq;
	char rcpt[300];
};

static void prepare(const struct model_snapshot *snap, const struct ecase *c, struct run *r)
{
	size_t n = 0;

	memset(r, 0, sizeof(*r));
	if (ip_parse(c->ip, &r->client.ip) != 0)
		fail_msg("%s: bad IP %s", c->name, c->ip);
	r->client.ip_str = c->ip;
	r->client.tls = c->tls;
	if (c->tls_name) {
		r->names[0] = c->tls_name;
		r->client.tls_names = r->names;
		r->client.ntls_names = 1;
	}
	for (; n < ARRAY_LEN(c->dnsbl) && c->dnsbl[n].list; n++) {
		struct dnsbl_answer *a = &r->answers[n];
		a->list = list_named(c->dnsbl[n].list);
		a->state = c->dnsbl[n].state;
		a->code = c->dnsbl[n].code;
		snprintf(a->txt, sizeof(a->txt), "%s", c->dnsbl[n].txt ? c->dnsbl[n].txt : "");
		snprintf(a->detail, sizeof(a->detail), "%s",
			 c->dnsbl[n].detail ? c->dnsbl[n].detail : "");
		a->elapsed_ms = (unsigned)(12 * n);
		a->cached = n % 2;
	}
	if (!c->rcpt_domain[0])
		snprintf(r->rcpt, sizeof(r->rcpt), "postmaster");
	else
		snprintf(r->rcpt, sizeof(r->rcpt), "%s@%s", c->rcpt_local ? c->rcpt_local : "bob",
			 c->rcpt_domain);
	r->rq.snap = snap;
	r->rq.client = &r->client;
	r->rq.sender_domain = c->sender;
	r->rq.rcpt = r->rcpt;
	r->rq.rcpt_domain = c->rcpt_domain;
	r->rq.dnsbl = n ? r->answers : NULL;
	r->rq.ndnsbl = n;
	r->rq.dnsbl_complete = !c->incomplete;
	r->rq.dnsbl_threshold = c->threshold ? c->threshold : 10;
	if (c->probe.made) {
		r->probe.state = c->probe.state;
		r->probe.cached = 1;
		snprintf(r->probe.detail, sizeof(r->probe.detail), "%s", c->probe.detail);
		r->rq.rcpt_probe = &r->probe;
	}
}

static const char *action_name(enum engine_action a)
{
	return a == ENGINE_ACCEPT ? "accept" : a == ENGINE_REJECT ? "reject" : "tempfail";
}

static int str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The verdict without a trace must be the verdict with one, field by field. */
static void same_verdict(const char *name, const struct engine_verdict *a,
			 const struct engine_verdict *b)
{
	if (a->action != b->action || a->code != b->code || strcmp(a->enhanced, b->enhanced) != 0 ||
	    strcmp(a->text, b->text) != 0 || !str_eq(a->rule, b->rule) ||
	    strcmp(a->list, b->list) != 0 || strcmp(a->entry, b->entry) != 0 ||
	    a->tenant != b->tenant || strcmp(a->route, b->route) != 0 ||
	    !str_eq(a->reason, b->reason) || strcmp(a->dnsbl_summary, b->dnsbl_summary) != 0 ||
	    a->score != b->score)
		fail_msg("%s: the verdict with a trace differs from the one without", name);
}

static int trace_contains(const struct trace *tr, const char *needle)
{
	for (size_t i = 0; i < trace_count(tr); i++)
		if (strstr(trace_at(tr, i)->text, needle))
			return 1;
	return 0;
}

/* Secret zones never leave the engine: not in the reply, the list, the summary or the trace. */
static void check_no_secret(const char *name, const struct engine_verdict *v,
			    const struct trace *tr)
{
	if (strstr(v->text, SECRET) || strstr(v->list, SECRET) || strstr(v->entry, SECRET) ||
	    strstr(v->dnsbl_summary, SECRET))
		fail_msg("%s: the secret zone leaked into the verdict", name);
	if (trace_contains(tr, SECRET))
		fail_msg("%s: the secret zone leaked into the trace", name);
}

#define EXPECT_STR(field, got, want)                                                        \
	do {                                                                                    \
		if (!str_eq((got), (want)))                                                         \
			fail_msg("%s: %s is \"%s\", want \"%s\"", c->name, field,                       \
				 (got) ? (got) : "(null)", (want) ? (want) : "(null)");                     \
	} while (0)

static void check_case(const struct model_snapshot *snap, const struct ecase *c)
{
	struct run r;
	struct engine_verdict v, plain;
	struct trace *tr = trace_new();

	prepare(snap, c, &r);
	engine_decide(&r.rq, &v, tr);

	if (v.action != c->action || v.code != c->code)
		fail_msg("%s: %s %d, want %s %d (text: %s)", c->name, action_name(v.action), v.code,
			 action_name(c->action), c->code, v.text);
	EXPECT_STR("enhanced", v.enhanced, c->enhanced);
	EXPECT_STR("rule", v.rule, c->rule);
	EXPECT_STR("reason", v.reason, c->reason);
	EXPECT_STR("tenant", v.tenant ? v.tenant->name : NULL, c->tenant);
	if (c->tenant && v.tenant != model_tenant_by_name(snap, c->tenant))
		fail_msg("%s: tenant pointer is not the snapshot's", c->name);
	if (c->route)
		EXPECT_STR("route", v.route, c->route);
	else if (c->tenant && c->action != ENGINE_ACCEPT)
		EXPECT_STR("route", v.route, v.tenant->route);
	EXPECT_STR("list", v.list, c->list);
	EXPECT_STR("entry", v.entry, c->entry);
	EXPECT_STR("dnsbl summary", v.dnsbl_summary, c->summary);
	if (v.score != c->score)
		fail_msg("%s: score %d, want %d", c->name, v.score, c->score);
	if (c->action == ENGINE_ACCEPT)
		EXPECT_STR("text", v.text, "Ok");
	for (size_t i = 0; i < ARRAY_LEN(c->text_has) && c->text_has[i]; i++)
		if (!strstr(v.text, c->text_has[i]))
			fail_msg("%s: text lacks \"%s\": %s", c->name, c->text_has[i], v.text);
	for (size_t i = 0; i < ARRAY_LEN(c->text_not) && c->text_not[i]; i++)
		if (strstr(v.text, c->text_not[i]))
			fail_msg("%s: text has \"%s\": %s", c->name, c->text_not[i], v.text);
	/* Every rejection names the rule's list; none shows a configured zone. */
	if (c->action == ENGINE_REJECT && !v.list[0])
		fail_msg("%s: rejection without a list", c->name);
	for (size_t i = 0; i < ARRAY_LEN(lists); i++)
		if (strstr(v.text, lists[i].zone))
			fail_msg("%s: text shows the zone %s", c->name, lists[i].zone);
	check_no_secret(c->name, &v, tr);

	/* The trace: some steps, the decision last, naming the rule. */
	size_t n = trace_count(tr);
	if (n == 0)
		fail_msg("%s: empty trace", c->name);
	const struct trace_step *last = trace_at(tr, n - 1);
	EXPECT_STR("last trace category", last->category, "decision");
	if (!strstr(last->text, v.rule) || !strstr(last->text, action_name(v.action)))
		fail_msg("%s: decision step \"%s\" does not name %s by rule %s", c->name, last->text,
			 action_name(v.action), v.rule);
	for (size_t i = 0; i + 1 < n; i++)
		if (strcmp(trace_at(tr, i)->category, "decision") == 0)
			fail_msg("%s: a decision step before the last", c->name);
	for (size_t i = 0; i < ARRAY_LEN(c->trace_has) && c->trace_has[i]; i++)
		if (!trace_contains(tr, c->trace_has[i]))
			fail_msg("%s: trace lacks \"%s\"", c->name, c->trace_has[i]);

	/* Without a trace: the same verdict. */
	memset(&plain, 0x5a, sizeof(plain));
	engine_decide(&r.rq, &plain, NULL);
	same_verdict(c->name, &v, &plain);
	trace_free(&tr);
	assert_null(tr);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
	make_lists();
	*state = build_policy();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	struct model_snapshot *s = *state;

	model_unref(&s);
	*state = NULL;
	return 0;
}

static void test_precedence_table(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		check_case(*state, &cases[i]);
}

/* A verdict struct is fully rewritten: deciding twice into the same struct, in either order,
 * gives each case's own verdict (recipients of two tenants in one transaction). */
static void test_two_tenants_one_client(void **state)
{
	const struct model_snapshot *snap = *state;
	static const struct ecase base = {
		.name = "founding client", .ip = "198.51.100.25", .sender = "partner.example",
		.rcpt_domain = "acme.example",
		.dnsbl = { LISTED("zen") },
	};
	static const struct {
		const char *domain;
		enum engine_action action;
		const char *rule, *reason, *tenant, *route;
	} rcpts[] = {
		{ "acme.example", ENGINE_ACCEPT, "ip-allow", "allow-list", "acme", "10.0.0.25:25" },
		{ "beta.example", ENGINE_REJECT, "ip-block", "ip-block", "beta", "10.0.0.26:2525" },
		{ "gamma.example", ENGINE_REJECT, "dnsbl", "dnsbl-listed", "gamma",
		  "[2001:db8::26]:25" },
		{ "acme-corp.example", ENGINE_ACCEPT, "ip-allow", "allow-list", "acme",
		  "10.0.0.25:25" },
		{ "external.example", ENGINE_REJECT, "relay", "relay-denied", NULL, "" },
	};
	struct engine_verdict v;
	struct run r;

	prepare(snap, &base, &r);
	for (int pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < ARRAY_LEN(rcpts); k++) {
			size_t i = pass ? ARRAY_LEN(rcpts) - 1 - k : k;
			r.rq.rcpt_domain = rcpts[i].domain;
			engine_decide(&r.rq, &v, NULL);
			if (v.action != rcpts[i].action || strcmp(v.rule, rcpts[i].rule) != 0 ||
			    strcmp(v.reason, rcpts[i].reason) != 0 ||
			    !str_eq(v.tenant ? v.tenant->name : NULL, rcpts[i].tenant) ||
			    strcmp(v.route, rcpts[i].route) != 0)
				fail_msg("%s: %s rule %s reason %s tenant %s route %s", rcpts[i].domain,
					 action_name(v.action), v.rule, v.reason,
					 v.tenant ? v.tenant->name : "-", v.route);
			assert_string_equal(v.dnsbl_summary, "listed:zen");
			if (v.action == ENGINE_ACCEPT)
				assert_string_equal(v.entry, "198.51.100.25/32 (partner relay)");
		}
}

/* explain's view of the founding case: every kind of step is there, in a fixed order. */
static void test_founding_case_trace(void **state)
{
	const struct ecase *c = NULL;
	struct engine_verdict v;
	struct run r;
	struct trace *tr = trace_new();
	/* connectors are looked at before the IP lists so the trace shows them on a Block too */
	static const char *const order[] = { "client", "dnsbl", "tenant", "connector", "ip-list",
					     "decision" };
	size_t at = 0;

	for (size_t i = 0; i < ARRAY_LEN(cases) && !c; i++)
		if (strncmp(cases[i].name, "founding case:", 14) == 0)
			c = &cases[i];
	assert_non_null(c);
	prepare(*state, c, &r);
	engine_decide(&r.rq, &v, tr);
	/* each category appears, and the first appearances follow rule order */
	for (size_t i = 0; i < trace_count(tr) && at < ARRAY_LEN(order); i++)
		if (strcmp(trace_at(tr, i)->category, order[at]) == 0)
			at++;
	if (at != ARRAY_LEN(order))
		fail_msg("trace lacks a \"%s\" step in order", order[at]);
	assert_true(trace_contains(tr, "198.51.100.25"));
	assert_true(trace_contains(tr, "bob@acme.example"));
	assert_true(trace_contains(tr, "accept by rule ip-allow"));
	assert_true(trace_contains(tr, ZEN_TXT "198.51.100.25"));
	trace_free(&tr);
}

/* A query that completed at its deadline: dnsbl.h says lists still unanswered then are
 * DNSBL_TIMEOUT and dnsbl_query_complete() is true. */
static void test_timeout_state_reason(void **state)
{
	static const struct ecase c = {
		.name = "timed-out list in a completed query", .ip = "233.252.0.1",
		.sender = "other.example", .rcpt_domain = "acme.example",
		.dnsbl = { CLEAN("zen"), { "spamcop", DNSBL_TIMEOUT, 0, "", "" } },
	};
	struct engine_verdict v;
	struct run r;

	prepare(*state, &c, &r);
	engine_decide(&r.rq, &v, NULL);
	assert_int_equal(v.action, ENGINE_ACCEPT);
	assert_string_equal(v.rule, "default");
	assert_string_equal(v.dnsbl_summary, "timeout:spamcop");
	assert_string_equal(v.reason, "dnsbl-timeout");
}

/* docs/policy-precedence.md rule 1: relay when the client matches an onprem connector (by IP
 * range or verified TLS name) and the sender's domain is the tenant's "(or the verified TLS
 * name is one of them or a host in one)". */
static void test_relay_ip_connector_with_tenant_tls_name(void **state)
{
	static const struct ecase c = {
		.name = "onprem by IP, verified TLS name in the tenant's domains", .ip = "198.51.100.10",
		.tls = 1, .tls_name = "mail.acme.example", .sender = "other.example",
		.rcpt_domain = "external.example",
	};
	struct engine_verdict v;
	struct run r;

	prepare(*state, &c, &r);
	engine_decide(&r.rq, &v, NULL);
	assert_int_equal(v.action, ENGINE_ACCEPT);
	assert_string_equal(v.rule, "onprem-relay");
}

/* Rule 3a with local parts at and over their limits, and addresses only explain can give
 * (no '@', an empty local part): no directory entry can match them, so they are refused. */
static void test_recipient_odd_addresses(void **state)
{
	static const struct {
		const char *rcpt;
		enum engine_action action;
	} rows[] = {
		{ "@delta.example", ENGINE_REJECT },
		{ "\"\"@delta.example", ENGINE_REJECT },
		{ "delta.example", ENGINE_REJECT },
		{ "POSTMASTER", ENGINE_ACCEPT },
		{ "\"postmaster\"@delta.example", ENGINE_ACCEPT },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@delta-corp.example",
		  ENGINE_ACCEPT },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@delta-corp.example",
		  ENGINE_REJECT },
	};
	struct engine_client client = { .ip_str = "233.252.0.1" };
	struct engine_request rq = {
		.snap = *state, .client = &client, .sender_domain = "other.example",
		.dnsbl_complete = 1, .dnsbl_threshold = 10,
	};
	struct engine_verdict v;

	assert_int_equal(ip_parse(client.ip_str, &client.ip), 0);
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		const char *at = strrchr(rows[i].rcpt, '@');
		rq.rcpt = rows[i].rcpt;
		rq.rcpt_domain = at ? at + 1 : "delta.example";
		engine_decide(&rq, &v, NULL);
		if (v.action != rows[i].action)
			fail_msg("%s: %s by rule %s", rows[i].rcpt, action_name(v.action), v.rule);
		if (v.action == ENGINE_REJECT)
			assert_string_equal(v.rule, "recipient-unknown");
	}
}

/* The texts every decision writes (engine.c builds them without snprintf): exact, with names
 * at their longest, entries without a comment, routes with a TLS mode, into a verdict struct
 * full of garbage. Its own small policy: tenant T (64 characters), route with tls=required,
 * Allow 100.66.1.0/24 and 2001:db8:66::/48 and Block 100.66.2.0/24 without comments, onprem
 * connector C (64 characters) on 100.66.3.0/24. */
static void test_accept_texts_exact(void **state)
{
	char tname[MODEL_NAME_MAX + 1], cname[MODEL_NAME_MAX + 1], want[ENGINE_FIELD_MAX];
	struct model_builder *b = model_builder_new();
	static const struct {
		const char *ip;
		int ndnsbl;
		enum engine_action action;
		const char *rule, *reason, *list_prefix, *entry, *summary;
	} rows[] = {
		{ "100.66.1.9", 0, ENGINE_ACCEPT, "ip-allow", "allow-list", "IP Allow list of tenant ",
		  "100.66.1.0/24", "none" },
		{ "2001:db8:66::1", 1, ENGINE_ACCEPT, "ip-allow", "allow-list",
		  "IP Allow list of tenant ", "2001:db8:66::/48", "clean" },
		{ "100.66.3.1", 0, ENGINE_ACCEPT, "onprem-connector", "onprem-connector",
		  "onprem connector ", "", "none" },
		{ "100.66.4.1", 0, ENGINE_ACCEPT, "default", "no-dnsbl", "", "", "none" },
		{ "100.66.4.1", 1, ENGINE_ACCEPT, "default", "dnsbl-clean", "", "", "clean" },
		{ "100.66.2.1", 0, ENGINE_REJECT, "ip-block", "ip-block", "IP Block list of tenant ",
		  "100.66.2.0/24", "none" },
	};
	struct dnsbl_answer clean = { .list = &lists[0], .state = DNSBL_NOT_LISTED };
	struct cidr c;

	(void)state;
	memset(tname, 't', MODEL_NAME_MAX);
	tname[MODEL_NAME_MAX] = '\0';
	memset(cname, 'c', MODEL_NAME_MAX);
	cname[MODEL_NAME_MAX] = '\0';
	assert_int_equal(model_add_tenant(b, 1, tname, "mail.zeta.example:2525"), 0);
	assert_int_equal(model_set_route_tls(b, 1, ROUTE_TLS_REQUIRED), 0);
	assert_int_equal(model_add_domain(b, 1, "zeta.example"), 0);
	add_entry(b, 1, IP_LIST_ALLOW, "100.66.1.0/24", NULL);
	add_entry(b, 1, IP_LIST_ALLOW, "2001:db8:66::/48", "");
	add_entry(b, 1, IP_LIST_BLOCK, "100.66.2.0/24", NULL);
	assert_int_equal(model_add_connector(b, 7, 1, cname, CONNECTOR_ONPREM, "", 0), 0);
	assert_int_equal(cidr_parse("100.66.3.0/24", &c), ADDR_OK);
	assert_int_equal(model_add_connector_range(b, 7, &c), 0);
	struct model_snapshot *snap = model_builder_finish(&b, 1);

	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct engine_client client = { .ip_str = rows[i].ip };
		struct engine_request rq = {
			.snap = snap, .client = &client, .sender_domain = "x.example",
			.rcpt = "bob@zeta.example", .rcpt_domain = "zeta.example", .dnsbl = &clean,
			.ndnsbl = (size_t)rows[i].ndnsbl, .dnsbl_complete = 1, .dnsbl_threshold = 10,
		};
		struct engine_verdict v;

		assert_int_equal(ip_parse(rows[i].ip, &client.ip), 0);
		memset(&v, 0x5a, sizeof(v));
		engine_decide(&rq, &v, NULL);
		if (v.action != rows[i].action || strcmp(v.rule, rows[i].rule) != 0 ||
		    strcmp(v.reason, rows[i].reason) != 0)
			fail_msg("%s: %s rule %s reason %s", rows[i].ip, action_name(v.action), v.rule,
				 v.reason);
		snprintf(want, sizeof(want), "%s%s", rows[i].list_prefix,
			 !rows[i].list_prefix[0] ? ""
			 : strncmp(rows[i].list_prefix, "onprem", 6) == 0 ? cname : tname);
		assert_string_equal(v.list, want);
		assert_string_equal(v.entry, rows[i].entry);
		assert_string_equal(v.dnsbl_summary, rows[i].summary);
		assert_string_equal(v.route, "mail.zeta.example:2525 tls=required");
		assert_ptr_equal(v.tenant, model_tenant_at(snap, 0));
		if (v.action == ENGINE_ACCEPT) {
			assert_int_equal(v.code, 250);
			assert_string_equal(v.enhanced, "2.1.5");
			assert_string_equal(v.text, "Ok");
		} else {
			assert_int_equal(v.code, 550);
			assert_string_equal(v.enhanced, "5.7.1");
			snprintf(want, sizeof(want), "Service unavailable; client [%s] blocked by "
				 "zeta.example using its IP Block list (entry %s)", rows[i].ip,
				 rows[i].entry);
			assert_string_equal(v.text, want);
		}
		assert_int_equal(v.probe_wanted, 0);
		assert_int_equal(v.score, 0);
	}
	model_unref(&snap);
}

/* Texts at their limits: 16 lists with the longest names, TXT records and URLs, all listed.
 * The reply, list and summary are cut to their buffers, NUL-terminated (ASan watches). */
static void test_long_texts_truncate(void **state)
{
	static struct dnsbl_config big[CONFIG_MAX_DNSBL];
	static struct dnsbl_answer ans[CONFIG_MAX_DNSBL];
	struct engine_client client = { .ip_str = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe" };
	struct engine_request rq = {
		.snap = *state, .client = &client, .sender_domain = "other.example",
		.rcpt = "bob@gamma.example", .rcpt_domain = "gamma.example", .dnsbl = ans,
		.ndnsbl = CONFIG_MAX_DNSBL, .dnsbl_complete = 1, .dnsbl_threshold = 10,
	};
	struct engine_verdict v, plain;
	struct trace *tr = trace_new();

	assert_int_equal(ip_parse(client.ip_str, &client.ip), 0);
	for (size_t i = 0; i < CONFIG_MAX_DNSBL; i++) {
		memset(&big[i], 0, sizeof(big[i]));
		memset(big[i].name, 'a' + (int)i, sizeof(big[i].name) - 1);
		memset(big[i].display_name, 'A' + (int)i, sizeof(big[i].display_name) - 1);
		memset(big[i].zone, 'z', sizeof(big[i].zone) - 1);
		memcpy(big[i].url, "https://x/{ip}", 14);
		memset(big[i].url + 14, 'u', sizeof(big[i].url) - 15);
		big[i].weight = 10;
		memset(&ans[i], 0, sizeof(ans[i]));
		ans[i].list = &big[i];
		ans[i].state = i % 4 == 3 ? DNSBL_LIST_ERROR : DNSBL_LISTED;
		ans[i].code = IP4(127, 0, 0, 2);
		memset(ans[i].txt, 't', sizeof(ans[i].txt) - 1);
		memset(ans[i].detail, 'd', sizeof(ans[i].detail) - 1);
	}
	engine_decide(&rq, &v, tr);
	assert_int_equal(v.action, ENGINE_REJECT);
	assert_string_equal(v.rule, "dnsbl");
	assert_int_equal(v.score, 120);
	assert_true(strlen(v.text) < sizeof(v.text));
	assert_true(strlen(v.list) < sizeof(v.list));
	assert_true(strlen(v.dnsbl_summary) < sizeof(v.dnsbl_summary));
	assert_true(strncmp(v.text, "Service unavailable; client [ffff:", 34) == 0);
	assert_true(strncmp(v.list, big[0].display_name, sizeof(v.list) - 1) == 0);
	assert_true(strncmp(v.dnsbl_summary, "listed:aaa", 10) == 0);
	assert_null(strstr(v.text, "zzzzzzzz"));
	assert_true(trace_count(tr) > 0);
	assert_string_equal(trace_at(tr, trace_count(tr) - 1)->category, "decision");
	for (size_t i = 0; i < trace_count(tr); i++)
		assert_true(strlen(trace_at(tr, i)->text) < TRACE_TEXT_MAX);
	engine_decide(&rq, &plain, NULL);
	same_verdict("long texts", &v, &plain);
	trace_free(&tr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_precedence_table),
		cmocka_unit_test(test_two_tenants_one_client),
		cmocka_unit_test(test_founding_case_trace),
		cmocka_unit_test(test_timeout_state_reason),
		cmocka_unit_test(test_relay_ip_connector_with_tenant_tls_name),
		cmocka_unit_test(test_long_texts_truncate),
		cmocka_unit_test(test_accept_texts_exact),
		cmocka_unit_test(test_recipient_odd_addresses),
	};

	return cmocka_run_group_tests_name("engine", tests, setup, teardown);
}
