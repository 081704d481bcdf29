/* Unit tests for route TLS (`mxgate tenant set --route-tls`): the route spec a verdict carries
 * to the queue file and the queue manager parses back (model_route_spec_format / _parse), the
 * mode names, the model setting, and the engine putting the tenant's mode into the verdict's
 * route (and asking for a probe only when rule 3a needs one). Tables name the failing row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/engine.h"
#include "policy/model.h"
#include "util/addr.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static void test_mode_names(void **state)
{
	static const struct {
		const char *text;
		int ok;
		enum route_tls tls;
	} rows[] = {
		{ "opportunistic", 1, ROUTE_TLS_OPPORTUNISTIC },
		{ "required", 1, ROUTE_TLS_REQUIRED },
		{ "verify", 1, ROUTE_TLS_VERIFY },
		{ "Required", 0, 0 },
		{ "require", 0, 0 },
		{ "required ", 0, 0 },
		{ "", 0, 0 },
		{ "none", 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		enum route_tls tls = (enum route_tls)99;
		int rc = model_route_tls_parse(rows[i].text, &tls);
		if ((rc == 0) != rows[i].ok || (rows[i].ok && tls != rows[i].tls))
			fail_msg("'%s': rc %d tls %d", rows[i].text, rc, (int)tls);
		if (rows[i].ok && strcmp(model_route_tls_name(tls), rows[i].text) != 0)
			fail_msg("'%s' does not round-trip", rows[i].text);
	}
	assert_null(model_route_tls_name((enum route_tls)3));
}

static void test_spec_format(void **state)
{
	static const struct {
		const char *route;
		enum route_tls tls;
		const char *spec;
	} rows[] = {
		{ "10.0.0.5:25", ROUTE_TLS_OPPORTUNISTIC, "10.0.0.5:25" },
		{ "10.0.0.5:25", ROUTE_TLS_REQUIRED, "10.0.0.5:25 tls=required" },
		{ "mx.acme.example:2525", ROUTE_TLS_VERIFY, "mx.acme.example:2525 tls=verify" },
		{ "[2001:db8::25]:25", ROUTE_TLS_REQUIRED, "[2001:db8::25]:25 tls=required" },
	};
	char out[MODEL_ROUTE_SPEC_MAX + 1], host[MODEL_ROUTE_MAX + 1];
	char route[MODEL_ROUTE_MAX + 1];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		enum route_tls tls;
		assert_int_equal(model_route_spec_format(rows[i].route, rows[i].tls, out,
							 sizeof(out)), 0);
		if (strcmp(out, rows[i].spec) != 0)
			fail_msg("row %zu: '%s', want '%s'", i, out, rows[i].spec);
		/* and back */
		assert_int_equal(model_route_spec_parse(out, host, sizeof(host), &tls), 0);
		assert_string_equal(host, rows[i].route);
		assert_int_equal(tls, rows[i].tls);
	}
	/* the longest route a tenant can have fits with the longest mode */
	memset(route, 'a', MODEL_ROUTE_MAX - 6);
	strcpy(route + MODEL_ROUTE_MAX - 6, ".x:255");
	assert_int_equal(strlen(route), MODEL_ROUTE_MAX);
	assert_int_equal(model_route_spec_format(route, ROUTE_TLS_REQUIRED, out, sizeof(out)), 0);
	/* too small a buffer, or an unknown mode: -1 and an empty result */
	assert_int_equal(model_route_spec_format("10.0.0.5:25", ROUTE_TLS_REQUIRED, out, 12), -1);
	assert_string_equal(out, "");
	assert_int_equal(model_route_spec_format("10.0.0.5:25", (enum route_tls)7, out, sizeof(out)),
			 -1);
	assert_string_equal(out, "");
}

static void test_spec_parse(void **state)
{
	static const struct {
		const char *spec;
		const char *hostport; /* NULL: refused */
		enum route_tls tls;
	} rows[] = {
		{ "10.0.0.5:25", "10.0.0.5:25", ROUTE_TLS_OPPORTUNISTIC },
		{ "10.0.0.5:25 tls=required", "10.0.0.5:25", ROUTE_TLS_REQUIRED },
		{ "10.0.0.5:25 tls=verify", "10.0.0.5:25", ROUTE_TLS_VERIFY },
		{ "10.0.0.5:25 tls=opportunistic", "10.0.0.5:25", ROUTE_TLS_OPPORTUNISTIC },
		{ "[::1]:25 tls=required", "[::1]:25", ROUTE_TLS_REQUIRED },
		{ "mx.example:25", "mx.example:25", ROUTE_TLS_OPPORTUNISTIC },
		/* anything else is not a route spec */
		{ "", NULL, 0 },
		{ " tls=required", NULL, 0 },
		{ "10.0.0.5:25 ", NULL, 0 },
		{ "10.0.0.5:25 tls=", NULL, 0 },
		{ "10.0.0.5:25 tls=Required", NULL, 0 },
		{ "10.0.0.5:25 tls=required ", NULL, 0 },
		{ "10.0.0.5:25  tls=required", NULL, 0 },
		{ "10.0.0.5:25 tls=required tls=verify", NULL, 0 },
		{ "10.0.0.5:25 verify", NULL, 0 },
		{ "10.0.0.5:25 tls=none", NULL, 0 },
	};
	char host[MODEL_ROUTE_MAX + 1];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		enum route_tls tls = (enum route_tls)99;
		int rc = model_route_spec_parse(rows[i].spec, host, sizeof(host), &tls);
		if (!rows[i].hostport) {
			if (rc != -1)
				fail_msg("'%s' accepted as '%s'", rows[i].spec, host);
			continue;
		}
		if (rc != 0 || strcmp(host, rows[i].hostport) != 0 || tls != rows[i].tls)
			fail_msg("'%s': rc %d host '%s' tls %d", rows[i].spec, rc, host, (int)tls);
	}
	/* hostport buffer too small by one, then just right */
	enum route_tls tls;
	assert_int_equal(model_route_spec_parse("10.0.0.5:25 tls=verify", host, 11, &tls), -1);
	assert_int_equal(model_route_spec_parse("10.0.0.5:25 tls=verify", host, 12, &tls), 0);
	assert_int_equal(tls, ROUTE_TLS_VERIFY);
}

/* acme (acme.example) routes to 10.0.0.25:25 with tls given per test; probe (probe.example)
 * checks recipients by probe; block 192.0.2.66/32 at probe. */
static struct model_snapshot *snapshot(enum route_tls acme_tls)
{
	struct model_builder *b = model_builder_new();
	struct cidr net;

	assert_int_equal(model_add_tenant(b, 1, "acme", "10.0.0.25:25"), 0);
	assert_int_equal(model_add_domain(b, 1, "acme.example"), 0);
	assert_int_equal(model_add_tenant(b, 2, "probe", "mail.probe-backend.example:2525"), 0);
	assert_int_equal(model_add_domain(b, 2, "probe.example"), 0);
	assert_int_equal(model_set_recipient_check(b, 2, RCPT_CHECK_PROBE), 0);
	assert_int_equal(model_set_route_tls(b, 2, ROUTE_TLS_VERIFY), 0);
	assert_int_equal(cidr_parse("192.0.2.66/32", &net), 0);
	assert_int_equal(model_add_ip_entry(b, 2, IP_LIST_BLOCK, &net, "blocked"), 0);
	if (acme_tls != ROUTE_TLS_OPPORTUNISTIC)
		assert_int_equal(model_set_route_tls(b, 1, acme_tls), 0);
	assert_int_equal(model_set_route_tls(b, 1, (enum route_tls)5), -1);
	return model_builder_finish(&b, 1);
}

static void decide(const struct model_snapshot *s, const char *ip, const char *rcpt,
		   const char *domain, const struct engine_probe *probe, struct engine_verdict *v)
{
	struct engine_client c = { .ip_str = ip };
	struct engine_request rq = {
		.snap = s, .client = &c, .sender_domain = "sender.example", .rcpt = rcpt,
		.rcpt_domain = domain, .dnsbl_complete = 1, .dnsbl_threshold = 1,
		.rcpt_probe = probe,
	};

	assert_int_equal(ip_parse(ip, &c.ip), 0);
	engine_decide(&rq, v, NULL);
}

static void test_verdict_route(void **state)
{
	static const struct {
		enum route_tls tls;
		const char *route;
	} rows[] = {
		{ ROUTE_TLS_OPPORTUNISTIC, "10.0.0.25:25" },
		{ ROUTE_TLS_REQUIRED, "10.0.0.25:25 tls=required" },
		{ ROUTE_TLS_VERIFY, "10.0.0.25:25 tls=verify" },
	};
	struct engine_verdict v;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		struct model_snapshot *s = snapshot(rows[i].tls);
		assert_int_equal(model_tenant_by_name(s, "acme")->route_tls, rows[i].tls);
		decide(s, "198.51.100.1", "bob@acme.example", "acme.example", NULL, &v);
		assert_int_equal(v.action, ENGINE_ACCEPT);
		if (strcmp(v.route, rows[i].route) != 0)
			fail_msg("row %zu: route '%s', want '%s'", i, v.route, rows[i].route);
		assert_int_equal(v.probe_wanted, 0);
		model_unref(&s);
	}
}

static void test_probe_wanted(void **state)
{
	struct model_snapshot *s = snapshot(ROUTE_TLS_OPPORTUNISTIC);
	struct engine_probe ok = { .state = ENGINE_PROBE_ACCEPTED, .detail = "250 2.1.5 Ok" };
	struct engine_probe no = { .state = ENGINE_PROBE_REJECTED, .detail = "550 5.1.1 no" };
	struct engine_verdict v;

	(void)state;
	/* no answer yet: the engine asks for one, and meanwhile says 451 */
	decide(s, "198.51.100.1", "bob@probe.example", "probe.example", NULL, &v);
	assert_int_equal(v.probe_wanted, 1);
	assert_int_equal(v.code, 451);
	assert_string_equal(v.enhanced, "4.4.3");
	assert_string_equal(v.route, "mail.probe-backend.example:2525 tls=verify");
	/* the text never names the route's host */
	assert_null(strstr(v.text, "probe-backend"));
	/* with the answer */
	decide(s, "198.51.100.1", "bob@probe.example", "probe.example", &ok, &v);
	assert_int_equal(v.probe_wanted, 0);
	assert_int_equal(v.action, ENGINE_ACCEPT);
	assert_string_equal(v.route, "mail.probe-backend.example:2525 tls=verify");
	decide(s, "198.51.100.1", "bob@probe.example", "probe.example", &no, &v);
	assert_int_equal(v.probe_wanted, 0);
	assert_int_equal(v.code, 550);
	assert_string_equal(v.enhanced, "5.1.1");
	assert_null(strstr(v.text, "probe-backend"));
	/* rules before 3a decide without a probe: Block, postmaster, another tenant, relay */
	decide(s, "192.0.2.66", "bob@probe.example", "probe.example", NULL, &v);
	assert_int_equal(v.probe_wanted, 0);
	assert_string_equal(v.rule, "ip-block");
	decide(s, "198.51.100.1", "PostMaster@probe.example", "probe.example", NULL, &v);
	assert_int_equal(v.probe_wanted, 0);
	assert_int_equal(v.action, ENGINE_ACCEPT);
	decide(s, "198.51.100.1", "bob@acme.example", "acme.example", NULL, &v);
	assert_int_equal(v.probe_wanted, 0);
	decide(s, "198.51.100.1", "bob@elsewhere.example", "elsewhere.example", NULL, &v);
	assert_int_equal(v.probe_wanted, 0);
	assert_string_equal(v.rule, "relay");
	model_unref(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_names),
		cmocka_unit_test(test_spec_format),
		cmocka_unit_test(test_spec_parse),
		cmocka_unit_test(test_verdict_route),
		cmocka_unit_test(test_probe_wanted),
	};

	return cmocka_run_group_tests_name("route_tls", tests, NULL, NULL);
}
