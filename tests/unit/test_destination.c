/* Tests for dns/destination (and the AAAA and MX queries of dns/resolver it stands on).
 *
 * Pure part: name checks, the MX verdict, null MX detection, preference order with a seeded
 * tie-break, the address order and the ok / 4.4.3 / 5.4.4 classification with its texts.
 *
 * Live part: the real module on a real libevent loop against Debian's unbound, started here
 * on a free loopback port with local-zone data (MX with two preferences, implicit MX, null
 * MX, NXDOMAIN, AAAA, SERVFAIL through a stub zone unbound may not query, REFUSED, dropped
 * queries). Without unbound those tests are skipped; literals, invalid targets and
 * cancellation still run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <ares.h>
#include <arpa/nameser.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "dns/destination.h"
#include "dns/resolver.h"

#ifndef UNBOUND
#define UNBOUND "/usr/sbin/unbound"
#endif
/* unbound is wrapped in timeout(1) so that a crashed test cannot leave it running. */
#define UNBOUND_LIFETIME_S "300"
#define READY_WAIT_MS 10000
#define WATCHDOG_MS 8000
#define RESOLVER_TIMEOUT_MS 1000
#define RESOLVER_TRIES 2
#define SHORT_TIMEOUT_MS 200
#define PATH_LEN 512
#define SMTP_TEST_PORT 2525
#define TIEBREAK_RUNS 40
#define MANY_MX 20
#define MANY_MX_STEP 5

extern char **environ;

/* ---- pure: names and MX verdicts ---------------------------------------------------------- */

static void test_name_ok(void **state)
{
	static const char *const good[] = { "a", "example.test", "mx-1.example.test", "_x.test",
					     "1.2.3.4", "xn--bcher-kva.example" };
	static const char *const bad[] = { "", ".", "a..b", ".a", "a.", "a b", "a\r\n.test",
					   "ex@mple.test", "a\\.b" };
	char label64[70], long_name[260];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(destination_name_ok(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(destination_name_ok(bad[i]));
	memset(label64, 'a', 64);
	label64[64] = '\0';
	assert_false(destination_name_ok(label64));
	label64[63] = '\0';
	assert_true(destination_name_ok(label64));
	/* 253 characters is the most; 254 is too long. */
	memset(long_name, 'a', sizeof(long_name));
	for (size_t i = 50; i < 253; i += 51)
		long_name[i] = '.';
	long_name[253] = '\0';
	assert_true(destination_name_ok(long_name));
	long_name[253] = 'a';
	long_name[254] = '\0';
	assert_false(destination_name_ok(long_name));
}

static struct resolver_mx mxrec(uint16_t pref, const char *host)
{
	struct resolver_mx m;

	memset(&m, 0, sizeof(m));
	m.preference = pref;
	snprintf(m.host, sizeof(m.host), "%s", host);
	return m;
}

static void test_null_mx(void **state)
{
	struct resolver_mx mx[3];

	(void)state;
	mx[0] = mxrec(0, "");
	assert_true(destination_mx_is_null(mx, 1));
	mx[0] = mxrec(10, ""); /* not the RFC 7505 form, but the root still accepts no mail */
	assert_true(destination_mx_is_null(mx, 1));
	mx[1] = mxrec(0, "");
	assert_true(destination_mx_is_null(mx, 2));
	mx[1] = mxrec(20, "mx.example.test"); /* a null MX beside a real one is ignored */
	assert_false(destination_mx_is_null(mx, 2));
	assert_false(destination_mx_is_null(mx, 0));
	mx[0] = mxrec(0, "mx.example.test");
	assert_false(destination_mx_is_null(mx, 1));
}

static void test_mx_classify(void **state)
{
	static struct resolver_answer ans;

	(void)state;
	memset(&ans, 0, sizeof(ans));
	ans.status = RESOLVER_OK;
	ans.mx[0] = mxrec(10, "mx.example.test");
	ans.nmx = 1;
	assert_int_equal(destination_mx_classify(&ans), DESTINATION_MX_USE);
	ans.mx[0] = mxrec(0, "");
	assert_int_equal(destination_mx_classify(&ans), DESTINATION_MX_NULL);
	ans.mx[1] = mxrec(10, "mx.example.test");
	ans.nmx = 2;
	assert_int_equal(destination_mx_classify(&ans), DESTINATION_MX_USE);
	ans.nmx = 0;
	assert_int_equal(destination_mx_classify(&ans), DESTINATION_MX_IMPLICIT);
	ans.status = RESOLVER_NXDOMAIN;
	ans.nodata = 1;
	assert_int_equal(destination_mx_classify(&ans), DESTINATION_MX_IMPLICIT);
	ans.nodata = 0;
	assert_int_equal(destination_mx_classify(&ans), DESTINATION_MX_NXDOMAIN);
	ans.status = RESOLVER_FAILED;
	assert_int_equal(destination_mx_classify(&ans), DESTINATION_MX_TEMPFAIL);
	ans.status = RESOLVER_REFUSED;
	assert_int_equal(destination_mx_classify(&ans), DESTINATION_MX_TEMPFAIL);
}

/* ---- pure: order -------------------------------------------------------------------------- */

static void test_mx_order_preference(void **state)
{
	struct resolver_mx mx[8];
	uint64_t seed = 42;
	size_t n;

	(void)state;
	mx[0] = mxrec(30, "c.test");
	mx[1] = mxrec(10, "a.test");
	mx[2] = mxrec(0, "");              /* the root beside real hosts: dropped */
	mx[3] = mxrec(20, "b.test");
	mx[4] = mxrec(5, "bad name.test"); /* unusable: dropped */
	mx[5] = mxrec(40, "A.test");       /* a.test again, worse: dropped */
	mx[6] = mxrec(65535, "z.test");
	n = destination_mx_order(mx, 7, DESTINATION_MAX_MX_HOSTS, &seed);
	assert_int_equal(n, 4);
	assert_string_equal(mx[0].host, "a.test");
	assert_int_equal(mx[0].preference, 10);
	assert_string_equal(mx[1].host, "b.test");
	assert_string_equal(mx[2].host, "c.test");
	assert_string_equal(mx[3].host, "z.test");
	assert_int_equal(mx[3].preference, 65535);

	/* Cut to max, keeping the most preferred. */
	mx[0] = mxrec(30, "c.test");
	mx[1] = mxrec(10, "a.test");
	mx[2] = mxrec(20, "b.test");
	n = destination_mx_order(mx, 3, 2, &seed);
	assert_int_equal(n, 2);
	assert_string_equal(mx[0].host, "a.test");
	assert_string_equal(mx[1].host, "b.test");

	/* Only unusable records: nothing left. */
	mx[0] = mxrec(0, "");
	mx[1] = mxrec(10, "x..test");
	assert_int_equal(destination_mx_order(mx, 2, DESTINATION_MAX_MX_HOSTS, &seed), 0);
	assert_int_equal(destination_mx_order(mx, 0, DESTINATION_MAX_MX_HOSTS, &seed), 0);
}

/* Three hosts at 10, two at 20: preference order always holds; equal preferences come out in
 * every order over many seeds, and one seed always gives the same order. */
static void test_mx_order_tiebreak(void **state)
{
	static const char *const perms[6] = { "abc", "acb", "bac", "bca", "cab", "cba" };
	int seen[6] = { 0 }, seen20[2] = { 0 };
	char first_order[8] = "";

	(void)state;
	for (uint64_t s = 0; s < 300; s++) {
		struct resolver_mx mx[5] = { mxrec(20, "d.test"), mxrec(10, "a.test"),
					     mxrec(20, "e.test"), mxrec(10, "b.test"),
					     mxrec(10, "c.test") };
		uint64_t seed = s;
		char order[4];
		assert_int_equal(destination_mx_order(mx, 5, DESTINATION_MAX_MX_HOSTS, &seed), 5);
		for (size_t i = 0; i < 3; i++) {
			assert_int_equal(mx[i].preference, 10);
			order[i] = mx[i].host[0];
		}
		order[3] = '\0';
		assert_int_equal(mx[3].preference, 20);
		assert_int_equal(mx[4].preference, 20);
		seen20[mx[3].host[0] == 'd']++;
		for (size_t p = 0; p < 6; p++)
			if (strcmp(order, perms[p]) == 0)
				seen[p]++;
		if (s == 7)
			snprintf(first_order, sizeof(first_order), "%s", order);
	}
	for (size_t p = 0; p < 6; p++)
		assert_true(seen[p] > 0);
	assert_true(seen20[0] > 0 && seen20[1] > 0);

	/* Deterministic for a seed. */
	for (int round = 0; round < 3; round++) {
		struct resolver_mx mx[5] = { mxrec(20, "d.test"), mxrec(10, "a.test"),
					     mxrec(20, "e.test"), mxrec(10, "b.test"),
					     mxrec(10, "c.test") };
		uint64_t seed = 7;
		char order[4];
		destination_mx_order(mx, 5, DESTINATION_MAX_MX_HOSTS, &seed);
		for (size_t i = 0; i < 3; i++)
			order[i] = mx[i].host[0];
		order[3] = '\0';
		assert_string_equal(order, first_order);
	}
}

/* ---- pure: build and classify ------------------------------------------------------------- */

static struct destination_host host(const char *name, uint16_t pref, const char *v6,
				    const char *v4)
{
	struct destination_host h;

	memset(&h, 0, sizeof(h));
	snprintf(h.name, sizeof(h.name), "%s", name);
	h.preference = pref;
	if (v6) {
		assert_int_equal(inet_pton(AF_INET6, v6, h.v6[0]), 1);
		h.nv6 = 1;
	}
	if (v4) {
		struct in_addr in;
		assert_int_equal(inet_pton(AF_INET, v4, &in), 1);
		h.v4[0] = ntohl(in.s_addr);
		h.nv4 = 1;
	}
	return h;
}

/* "ip:port host" of address i. */
static const char *addr_text(const struct destination_result *res, size_t i)
{
	static char buf[RESOLVER_HOST_MAX + 64];
	char ip[INET6_ADDRSTRLEN];
	const struct destination_addr *a = &res->addrs[i];
	unsigned port;

	assert_true(i < res->naddrs);
	if (a->sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
		assert_int_equal(a->salen, sizeof(*s6));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->sa;
		assert_int_equal(a->sa.ss_family, AF_INET);
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
		assert_int_equal(a->salen, sizeof(*s4));
	}
	snprintf(buf, sizeof(buf), "%s:%u %s", ip, port, a->host);
	return buf;
}

static void test_build_order(void **state)
{
	static struct destination_result res;
	struct destination_host h[3];

	(void)state;
	h[0] = host("a.test", 10, "2001:db8::a", "192.0.2.1");
	h[0].v4[1] = 0xc0000202; /* 192.0.2.2 */
	h[0].nv4 = 2;
	h[1] = host("b.test", 20, NULL, "192.0.2.1"); /* same address as a.test: not repeated */
	h[2] = host("c.test", 20, "2001:db8::c", "192.0.2.3");
	destination_build(h, 3, DESTINATION_MX, "example.test", 25, &res);
	assert_int_equal(res.status, DESTINATION_OK);
	assert_int_equal(res.kind, DESTINATION_MX);
	assert_string_equal(res.code, "2.0.0");
	assert_int_equal(res.naddrs, 5);
	assert_string_equal(addr_text(&res, 0), "2001:db8::a:25 a.test");
	assert_string_equal(addr_text(&res, 1), "192.0.2.1:25 a.test");
	assert_string_equal(addr_text(&res, 2), "192.0.2.2:25 a.test");
	assert_string_equal(addr_text(&res, 3), "2001:db8::c:25 c.test");
	assert_string_equal(addr_text(&res, 4), "192.0.2.3:25 c.test");
	assert_int_equal(res.addrs[0].preference, 10);
	assert_int_equal(res.addrs[4].preference, 20);
	assert_string_equal(res.text, "5 addresses of 3 MX hosts for example.test");
}

static void test_build_bounds(void **state)
{
	static struct destination_result res;
	static struct destination_host h[DESTINATION_MAX_MX_HOSTS];

	(void)state;
	/* Ten hosts with four addresses of each family: the first four hosts fill the list. */
	for (size_t i = 0; i < DESTINATION_MAX_MX_HOSTS; i++) {
		memset(&h[i], 0, sizeof(h[i]));
		snprintf(h[i].name, sizeof(h[i].name), "h%zu.test", i);
		h[i].preference = (uint16_t)i;
		for (size_t j = 0; j < DESTINATION_MAX_PER_FAMILY; j++) {
			h[i].v6[j][0] = 0x20;
			h[i].v6[j][14] = (uint8_t)i;
			h[i].v6[j][15] = (uint8_t)j;
			h[i].v4[j] = 0x0a000000u | (uint32_t)i << 8 | (uint32_t)j;
		}
		h[i].nv6 = h[i].nv4 = DESTINATION_MAX_PER_FAMILY;
	}
	destination_build(h, DESTINATION_MAX_MX_HOSTS, DESTINATION_MX, "big.test", 2525, &res);
	assert_int_equal(res.naddrs, DESTINATION_MAX_ADDRS);
	assert_string_equal(addr_text(&res, 0), "2000:::2525 h0.test");
	assert_string_equal(addr_text(&res, 1), "2000::1:2525 h0.test");
	assert_int_equal(res.addrs[0].sa.ss_family, AF_INET6);
	assert_int_equal(res.addrs[DESTINATION_MAX_PER_FAMILY].sa.ss_family, AF_INET);
	assert_string_equal(addr_text(&res, DESTINATION_MAX_PER_FAMILY), "10.0.0.0:2525 h0.test");
	assert_string_equal(res.addrs[DESTINATION_MAX_ADDRS - 1].host, "h3.test");
}

static void test_build_classify(void **state)
{
	static struct destination_result res;
	struct destination_host h[4];

	(void)state;
	/* No address anywhere, one lookup failed temporarily: 4.4.3 naming it. */
	h[0] = host("a.test", 10, NULL, NULL);
	h[1] = host("b.test", 20, NULL, NULL);
	h[1].tempfail = 1;
	snprintf(h[1].error, sizeof(h[1].error), "ARES_ETIMEOUT (Timeout while contacting DNS servers)");
	destination_build(h, 2, DESTINATION_MX, "example.test", 25, &res);
	assert_int_equal(res.status, DESTINATION_TEMPORARY);
	assert_string_equal(res.code, "4.4.3");
	assert_int_equal(res.naddrs, 0);
	assert_string_equal(res.text, "no address found for the MX hosts of example.test: temporary "
				      "DNS failure for b.test: ARES_ETIMEOUT (Timeout while "
				      "contacting DNS servers)");

	/* The same with an address on the other host: delivery goes on. */
	h[0] = host("a.test", 10, NULL, "192.0.2.1");
	destination_build(h, 2, DESTINATION_MX, "example.test", 25, &res);
	assert_int_equal(res.status, DESTINATION_OK);
	assert_int_equal(res.naddrs, 1);

	/* No address and no failure: 5.4.4, naming the first hosts. */
	for (size_t i = 0; i < 4; i++) {
		char name[16];
		snprintf(name, sizeof(name), "mx%zu.test", i + 1);
		h[i] = host(name, 10, NULL, NULL);
	}
	destination_build(h, 2, DESTINATION_MX, "example.test", 25, &res);
	assert_int_equal(res.status, DESTINATION_PERMANENT);
	assert_string_equal(res.code, "5.4.4");
	assert_string_equal(res.text,
			    "no A/AAAA records for any MX host of example.test (mx1.test, mx2.test)");
	destination_build(h, 4, DESTINATION_MX, "example.test", 25, &res);
	assert_string_equal(res.text, "no A/AAAA records for any MX host of example.test "
				      "(mx1.test, mx2.test, mx3.test, ...)");
	destination_build(NULL, 0, DESTINATION_MX, "example.test", 25, &res);
	assert_string_equal(res.code, "5.4.4");
	assert_string_equal(res.text, "no usable MX host name for example.test");

	/* Implicit MX and plain host. */
	h[0] = host("example.invalid", 0, NULL, NULL);
	destination_build(h, 1, DESTINATION_IMPLICIT_MX, "example.invalid", 25, &res);
	assert_string_equal(res.code, "5.4.4");
	assert_int_equal(res.kind, DESTINATION_IMPLICIT_MX);
	assert_string_equal(res.text, "no MX or A/AAAA records for example.invalid");
	h[0].tempfail = 1;
	snprintf(h[0].error, sizeof(h[0].error), "ARES_ESERVFAIL (Server failed)");
	destination_build(h, 1, DESTINATION_IMPLICIT_MX, "example.invalid", 25, &res);
	assert_string_equal(res.code, "4.4.3");
	assert_string_equal(res.text, "no MX for example.invalid, and its address lookup failed "
				      "temporarily: ARES_ESERVFAIL (Server failed)");
	h[0] = host("relay.test", 0, NULL, NULL);
	destination_build(h, 1, DESTINATION_HOST, "relay.test", 2600, &res);
	assert_string_equal(res.code, "5.4.4");
	assert_string_equal(res.text, "no A/AAAA records for relay.test");

	/* A target with control bytes never puts them into the text. */
	destination_build(h, 1, DESTINATION_HOST, "bad\r\nname", 25, &res);
	assert_string_equal(res.text, "no A/AAAA records for bad??name");
}

/* ---- unbound fixture ---------------------------------------------------------------------- */

struct unbound {
	char dir[PATH_LEN];
	unsigned port;
	pid_t pid;
};

static struct unbound ub;
static int have_unbound;

static const char zone_conf[] =
	"  local-zone: \".\" refuse\n"
	"  local-zone: \"test.\" static\n"
	"  local-data: \"test. 300 IN SOA ns.test. hostmaster.test. 1 3600 600 86400 60\"\n"
	"  local-data: \"mx2.test. 300 IN MX 10 a.mx2.test.\"\n"
	"  local-data: \"mx2.test. 300 IN MX 20 b.mx2.test.\"\n"
	"  local-data: \"mx2.test. 300 IN MX 20 c.mx2.test.\"\n"
	"  local-data: \"a.mx2.test. 300 IN A 127.0.0.1\"\n"
	"  local-data: \"a.mx2.test. 300 IN AAAA ::1\"\n"
	"  local-data: \"b.mx2.test. 300 IN A 127.0.0.2\"\n"
	"  local-data: \"c.mx2.test. 300 IN AAAA 2001:db8::c\"\n"
	"  local-data: \"nomx.test. 300 IN A 127.0.0.5\"\n"
	"  local-data: \"nomx.test. 300 IN AAAA 2001:db8::5\"\n"
	"  local-data: \"nullmx.test. 300 IN MX 0 .\"\n"
	"  local-data: \"v6only.test. 300 IN AAAA 2001:db8::6\"\n"
	"  local-data: \"Upper.Test. 300 IN MX 10 MX.Upper.Test.\"\n"
	"  local-data: \"mx.upper.test. 300 IN A 127.0.0.9\"\n"
	"  local-data: \"noaddr.test. 300 IN MX 10 gone.test.\"\n"
	"  local-data: \"noaddr.test. 300 IN MX 20 alsogone.test.\"\n"
	"  local-data: 'bare.test. 300 IN TXT \"no address here\"'\n"
	"  local-data: \"mxbroken.test. 300 IN MX 10 x.broken.test.\"\n"
	"  local-data: \"slowhost.test. 300 IN MX 10 x.blackhole.test.\"\n"
	"  local-data: \"partial.test. 300 IN MX 10 x.broken.test.\"\n"
	"  local-data: \"partial.test. 300 IN MX 20 b.mx2.test.\"\n"
	"  local-data: \"dup.test. 300 IN MX 10 a.mx2.test.\"\n"
	"  local-data: \"dup.test. 300 IN MX 30 a.mx2.test.\"\n"
	"  local-data: \"dup.test. 300 IN MX 20 same.test.\"\n"
	"  local-data: \"same.test. 300 IN A 127.0.0.1\"\n"
	"  local-data: \"same.test. 300 IN A 127.0.0.3\"\n"
	"  local-zone: \"broken.test.\" transparent\n"
	"  local-zone: \"refused.test.\" refuse\n"
	"  local-zone: \"blackhole.test.\" deny\n"
	/* 127.0.0.1 is never queried (do-not-query-localhost), so the stub fails at once. */
	"stub-zone:\n"
	"  name: \"broken.test.\"\n"
	"  stub-addr: 127.0.0.1\n"
	"remote-control:\n"
	"  control-enable: no\n";

/* A loopback port free for UDP and TCP a moment ago. */
static unsigned free_port(int udp_only)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		socklen_t len = sizeof(sin);
		int u = socket(AF_INET, SOCK_DGRAM, 0), t;

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		assert_true(u >= 0);
		assert_int_equal(bind(u, (struct sockaddr *)&sin, sizeof(sin)), 0);
		assert_int_equal(getsockname(u, (struct sockaddr *)&sin, &len), 0);
		if (udp_only) {
			close(u);
			return ntohs(sin.sin_port);
		}
		t = socket(AF_INET, SOCK_STREAM, 0);
		int ok = bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		close(t);
		close(u);
		if (ok)
			return ntohs(sin.sin_port);
	}
	fail_msg("no free loopback port");
	return 0;
}

/* One blocking query; returns the rcode and the answer count, -1 without an answer. */
static int udp_query(unsigned port, const char *name, int type, int *ancount_r)
{
	unsigned char *q = NULL, buf[512];
	int qlen = 0, fd = socket(AF_INET, SOCK_DGRAM, 0), rc = -1;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 0, 200000 };

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (ares_create_query(name, ns_c_in, type, 0x4242, 1, &q, &qlen, 0) != ARES_SUCCESS)
		fail_msg("ares_create_query");
	sendto(fd, q, (size_t)qlen, 0, (struct sockaddr *)&sin, sizeof(sin));
	ares_free_string(q);
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n >= 12) {
		rc = buf[3] & 0x0f;
		*ancount_r = buf[6] << 8 | buf[7];
	}
	close(fd);
	return rc;
}

static int spawn_unbound(const char *conf, const char *log)
{
	posix_spawn_file_actions_t fa;
	char *argv[] = { "timeout", UNBOUND_LIFETIME_S, UNBOUND, "-d", "-c", (char *)conf, NULL };
	int rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_APPEND,
					 0644);
	posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
	rc = posix_spawnp(&ub.pid, "timeout", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	return rc;
}

static int unbound_start(void **state)
{
	char conf[PATH_LEN + 16], log[PATH_LEN + 16];
	FILE *f;
	int an = 0;

	(void)state;
	if (access(UNBOUND, X_OK) != 0)
		return 0;
	snprintf(ub.dir, sizeof(ub.dir), "/tmp/mxg-destination.XXXXXX");
	assert_non_null(mkdtemp(ub.dir));
	ub.port = free_port(0);
	snprintf(conf, sizeof(conf), "%s/unbound.conf", ub.dir);
	snprintf(log, sizeof(log), "%s/unbound.log", ub.dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f,
		"server:\n  interface: 127.0.0.1@%u\n  do-daemonize: no\n  chroot: \"\"\n"
		"  username: \"\"\n  pidfile: \"\"\n  directory: \"%s\"\n  use-syslog: no\n"
		"  logfile: \"\"\n  verbosity: 1\n  num-threads: 1\n  do-ip6: no\n"
		"  module-config: \"iterator\"\n  do-not-query-localhost: yes\n",
		ub.port, ub.dir);
	/* More MX records than the resolver keeps, least preferred first. */
	for (unsigned i = 0; i < MANY_MX; i++)
		fprintf(f, "  local-data: \"many.test. 300 IN MX %u m%u.many.test.\"\n",
			MANY_MX_STEP * (MANY_MX - i), i);
	fputs(zone_conf, f);
	fclose(f);
	assert_int_equal(spawn_unbound(conf, log), 0);
	for (int waited = 0; waited < READY_WAIT_MS; waited += 20) {
		if (udp_query(ub.port, "a.mx2.test", ns_t_a, &an) == 0 && an == 1) {
			have_unbound = 1;
			return 0;
		}
		if (waitpid(ub.pid, NULL, WNOHANG) == ub.pid) {
			ub.pid = 0;
			break;
		}
		usleep(20000);
	}
	fail_msg("unbound did not answer; see %s", log);
	return -1;
}

static int unbound_stop(void **state)
{
	char cmd[PATH_LEN + 16];

	(void)state;
	if (ub.pid > 0) {
		kill(ub.pid, SIGTERM); /* timeout(1) passes it on to unbound */
		waitpid(ub.pid, NULL, 0);
	}
	if (ub.dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", ub.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", ub.dir);
	}
	return 0;
}

#define NEED_UNBOUND()                                                  \
	do {                                                            \
		if (!have_unbound) {                                    \
			fprintf(stderr, "unbound not installed: skipped\n"); \
			skip();                                         \
		}                                                       \
	} while (0)

/* ---- loop helpers ------------------------------------------------------------------------- */

struct ctx {
	struct event_base *base;
	struct resolver *r;
	struct destination_query *q;
	int done_calls;
	struct destination_result res; /* copy of the last result */
	struct resolver_answer ans;    /* the last resolver answer */
	int answers;
	int free_resolver_in_done;
	int cancel_in_done;
};

static void ctx_init(struct ctx *c, unsigned port, unsigned timeout_ms, unsigned tries)
{
	char err[256] = "", servers[64];

	memset(c, 0, sizeof(*c));
	c->base = event_base_new();
	assert_non_null(c->base);
	snprintf(servers, sizeof(servers), "127.0.0.1:%u", port);
	c->r = resolver_new(c->base, servers, timeout_ms, tries, err, sizeof(err));
	if (!c->r)
		fail_msg("resolver_new: %s", err);
}

static void ctx_fini(struct ctx *c)
{
	resolver_free(&c->r);
	event_base_free(c->base);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

static void run_for(struct ctx *c, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *wd = evtimer_new(c->base, on_watchdog, c->base);

	evtimer_add(wd, &tv);
	event_base_dispatch(c->base);
	event_free(wd);
}

static void on_done(void *arg, const struct destination_result *res)
{
	struct ctx *c = arg;

	c->done_calls++;
	c->res = *res;
	if (c->cancel_in_done)
		destination_cancel(&c->q);
	c->q = NULL; /* the query is freed when done returns */
	if (c->free_resolver_in_done)
		resolver_free(&c->r);
	event_base_loopbreak(c->base);
}

/* Resolves target and runs the loop until done; checks done is not called inside. */
static const struct destination_result *resolve_wait(struct ctx *c, const char *target, int mx,
						      uint16_t port)
{
	int before = c->done_calls;
	uint64_t waited = 0;

	c->q = destination_resolve(c->r, target, mx, port, on_done, c);
	assert_non_null(c->q);
	assert_int_equal(c->done_calls, before); /* never from inside destination_resolve */
	while (c->done_calls == before && waited < WATCHDOG_MS) {
		run_for(c, WATCHDOG_MS);
		waited += WATCHDOG_MS;
	}
	if (c->done_calls == before)
		fail_msg("no completion for %s", target);
	assert_int_equal(c->done_calls, before + 1);
	return &c->res;
}

static void on_answer(void *arg, const struct resolver_answer *ans)
{
	struct ctx *c = arg;

	c->answers++;
	c->ans = *ans;
	event_base_loopbreak(c->base);
}

static const struct resolver_answer *query_wait(struct ctx *c, const char *name,
						enum resolver_type type)
{
	struct resolver_req *req = NULL;
	int before = c->answers;

	resolver_query(c->r, name, type, on_answer, c, &req);
	while (c->answers == before)
		run_for(c, WATCHDOG_MS);
	assert_null(req);
	return &c->ans;
}

/* ---- live: resolver AAAA and MX ----------------------------------------------------------- */

static void test_resolver_aaaa_mx(void **state)
{
	static struct ctx c;
	const struct resolver_answer *a;
	uint8_t want[16];

	(void)state;
	NEED_UNBOUND();
	ctx_init(&c, ub.port, RESOLVER_TIMEOUT_MS, RESOLVER_TRIES);

	a = query_wait(&c, "c.mx2.test", RESOLVER_AAAA);
	assert_int_equal(a->status, RESOLVER_OK);
	assert_int_equal(a->naddrs6, 1);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::c", want), 1);
	assert_memory_equal(a->addrs6[0], want, 16);
	assert_true(a->has_ttl);
	assert_int_equal(a->ttl, 300);
	assert_int_equal(a->naddrs, 0);

	a = query_wait(&c, "mx2.test", RESOLVER_MX);
	assert_int_equal(a->status, RESOLVER_OK);
	assert_int_equal(a->nmx, 3);
	int seen = 0;
	for (size_t i = 0; i < a->nmx; i++) {
		if (strcmp(a->mx[i].host, "a.mx2.test") == 0 && a->mx[i].preference == 10)
			seen |= 1;
		if (strcmp(a->mx[i].host, "b.mx2.test") == 0 && a->mx[i].preference == 20)
			seen |= 2;
		if (strcmp(a->mx[i].host, "c.mx2.test") == 0 && a->mx[i].preference == 20)
			seen |= 4;
	}
	assert_int_equal(seen, 7);

	/* Past RESOLVER_MAX_MX records, the most preferred ones are kept. */
	a = query_wait(&c, "many.test", RESOLVER_MX);
	assert_int_equal(a->status, RESOLVER_OK);
	assert_int_equal(a->nmx, RESOLVER_MAX_MX);
	unsigned lo = 65535, hi = 0;
	for (size_t i = 0; i < a->nmx; i++) {
		lo = a->mx[i].preference < lo ? a->mx[i].preference : lo;
		hi = a->mx[i].preference > hi ? a->mx[i].preference : hi;
	}
	assert_int_equal(lo, MANY_MX_STEP);
	assert_int_equal(hi, MANY_MX_STEP * RESOLVER_MAX_MX);

	a = query_wait(&c, "upper.test", RESOLVER_MX); /* lower-cased, no trailing dot */
	assert_int_equal(a->nmx, 1);
	assert_string_equal(a->mx[0].host, "mx.upper.test");

	a = query_wait(&c, "nullmx.test", RESOLVER_MX);
	assert_int_equal(a->status, RESOLVER_OK);
	assert_int_equal(a->nmx, 1);
	assert_string_equal(a->mx[0].host, "");
	assert_int_equal(a->mx[0].preference, 0);

	/* NODATA and NXDOMAIN are both RESOLVER_NXDOMAIN (as the DNSBL code expects), told
	 * apart by nodata, with the SOA negative TTL. */
	a = query_wait(&c, "nomx.test", RESOLVER_MX);
	assert_int_equal(a->status, RESOLVER_NXDOMAIN);
	assert_int_equal(a->nodata, 1);
	assert_true(a->has_ttl);
	assert_int_equal(a->ttl, 60);
	a = query_wait(&c, "b.mx2.test", RESOLVER_AAAA);
	assert_int_equal(a->status, RESOLVER_NXDOMAIN);
	assert_int_equal(a->nodata, 1);
	a = query_wait(&c, "c.mx2.test", RESOLVER_A);
	assert_int_equal(a->status, RESOLVER_NXDOMAIN);
	assert_int_equal(a->nodata, 1);
	a = query_wait(&c, "nosuch.test", RESOLVER_MX);
	assert_int_equal(a->status, RESOLVER_NXDOMAIN);
	assert_int_equal(a->nodata, 0);
	assert_true(a->has_ttl);
	a = query_wait(&c, "nosuch.test", RESOLVER_A);
	assert_int_equal(a->nodata, 0);

	a = query_wait(&c, "broken.test", RESOLVER_MX);
	assert_int_equal(a->status, RESOLVER_FAILED);
	assert_string_equal(a->error, "ARES_ESERVFAIL");
	a = query_wait(&c, "refused.test", RESOLVER_AAAA);
	assert_int_equal(a->status, RESOLVER_REFUSED);

	/* A and TXT as before. */
	a = query_wait(&c, "a.mx2.test", RESOLVER_A);
	assert_int_equal(a->status, RESOLVER_OK);
	assert_int_equal(a->naddrs, 1);
	assert_int_equal(a->addrs[0], 0x7f000001);
	a = query_wait(&c, "bare.test", RESOLVER_TXT);
	assert_int_equal(a->status, RESOLVER_OK);
	assert_string_equal(a->txt, "no address here");
	ctx_fini(&c);
}

/* ---- live: destinations ------------------------------------------------------------------- */

static void test_mx_two_preferences(void **state)
{
	static struct ctx c;
	const struct destination_result *res;
	int b_first = 0, c_first = 0;

	(void)state;
	NEED_UNBOUND();
	ctx_init(&c, ub.port, RESOLVER_TIMEOUT_MS, RESOLVER_TRIES);
	for (int run = 0; run < TIEBREAK_RUNS; run++) {
		res = resolve_wait(&c, "mx2.test", 1, SMTP_TEST_PORT);
		assert_int_equal(res->status, DESTINATION_OK);
		assert_int_equal(res->kind, DESTINATION_MX);
		assert_string_equal(res->code, "2.0.0");
		assert_int_equal(res->naddrs, 4);
		assert_string_equal(addr_text(res, 0), "::1:2525 a.mx2.test");
		assert_string_equal(addr_text(res, 1), "127.0.0.1:2525 a.mx2.test");
		assert_int_equal(res->addrs[1].preference, 10);
		if (strcmp(res->addrs[2].host, "b.mx2.test") == 0) {
			b_first++;
			assert_string_equal(addr_text(res, 2), "127.0.0.2:2525 b.mx2.test");
			assert_string_equal(addr_text(res, 3), "2001:db8::c:2525 c.mx2.test");
		} else {
			c_first++;
			assert_string_equal(addr_text(res, 2), "2001:db8::c:2525 c.mx2.test");
			assert_string_equal(addr_text(res, 3), "127.0.0.2:2525 b.mx2.test");
		}
		assert_int_equal(res->addrs[3].preference, 20);
	}
	assert_string_equal(c.res.text, "4 addresses of 3 MX hosts for mx2.test");
	/* Equal preferences are shuffled per query (RFC 5321 5.1). */
	assert_true(b_first > 0 && c_first > 0);

	/* A trailing dot and upper case are fine. */
	res = resolve_wait(&c, "MX2.Test.", 1, 25);
	assert_int_equal(res->status, DESTINATION_OK);
	assert_string_equal(addr_text(res, 0), "::1:25 a.mx2.test");

	/* A host listed twice is looked up once, an address listed twice is tried once. */
	res = resolve_wait(&c, "dup.test", 1, 25);
	assert_int_equal(res->status, DESTINATION_OK);
	assert_int_equal(res->naddrs, 3);
	assert_string_equal(addr_text(res, 0), "::1:25 a.mx2.test");
	assert_string_equal(addr_text(res, 1), "127.0.0.1:25 a.mx2.test");
	assert_string_equal(addr_text(res, 2), "127.0.0.3:25 same.test");
	assert_string_equal(res->text, "3 addresses of 2 MX hosts for dup.test");
	ctx_fini(&c);
}

static void test_implicit_null_nxdomain(void **state)
{
	static struct ctx c;
	const struct destination_result *res;

	(void)state;
	NEED_UNBOUND();
	ctx_init(&c, ub.port, RESOLVER_TIMEOUT_MS, RESOLVER_TRIES);

	res = resolve_wait(&c, "nomx.test", 1, 25);
	assert_int_equal(res->status, DESTINATION_OK);
	assert_int_equal(res->kind, DESTINATION_IMPLICIT_MX);
	assert_int_equal(res->naddrs, 2);
	assert_string_equal(addr_text(res, 0), "2001:db8::5:25 nomx.test");
	assert_string_equal(addr_text(res, 1), "127.0.0.5:25 nomx.test");
	assert_string_equal(res->text, "no MX for nomx.test: 2 addresses of the domain itself "
				       "(implicit MX)");

	res = resolve_wait(&c, "nullmx.test", 1, 25);
	assert_int_equal(res->status, DESTINATION_PERMANENT);
	assert_string_equal(res->code, "5.1.10");
	assert_int_equal(res->naddrs, 0);
	assert_string_equal(res->text, "null MX: nullmx.test accepts no mail (RFC 7505)");

	res = resolve_wait(&c, "nosuch.test", 1, 25);
	assert_int_equal(res->status, DESTINATION_PERMANENT);
	assert_string_equal(res->code, "5.1.2");
	assert_string_equal(res->text, "domain nosuch.test does not exist (NXDOMAIN)");

	res = resolve_wait(&c, "bare.test", 1, 25); /* exists, no MX, no address */
	assert_int_equal(res->status, DESTINATION_PERMANENT);
	assert_string_equal(res->code, "5.4.4");
	assert_int_equal(res->kind, DESTINATION_IMPLICIT_MX);
	assert_string_equal(res->text, "no MX or A/AAAA records for bare.test");

	res = resolve_wait(&c, "noaddr.test", 1, 25); /* MX hosts without address */
	assert_int_equal(res->status, DESTINATION_PERMANENT);
	assert_string_equal(res->code, "5.4.4");
	assert_string_equal(res->text,
			    "no A/AAAA records for any MX host of noaddr.test (gone.test, alsogone.test)");
	ctx_fini(&c);
}

static void test_hosts_and_aaaa(void **state)
{
	static struct ctx c;
	const struct destination_result *res;

	(void)state;
	NEED_UNBOUND();
	ctx_init(&c, ub.port, RESOLVER_TIMEOUT_MS, RESOLVER_TRIES);
	res = resolve_wait(&c, "v6only.test", 0, 2600);
	assert_int_equal(res->status, DESTINATION_OK);
	assert_int_equal(res->kind, DESTINATION_HOST);
	assert_int_equal(res->naddrs, 1);
	assert_string_equal(addr_text(res, 0), "2001:db8::6:2600 v6only.test");

	res = resolve_wait(&c, "a.mx2.test", 0, 2600);
	assert_int_equal(res->naddrs, 2);
	assert_string_equal(addr_text(res, 0), "::1:2600 a.mx2.test");
	assert_string_equal(addr_text(res, 1), "127.0.0.1:2600 a.mx2.test");

	/* mx = 0 never looks at MX records: mx2.test itself has no address. */
	res = resolve_wait(&c, "mx2.test", 0, 25);
	assert_int_equal(res->status, DESTINATION_PERMANENT);
	assert_string_equal(res->code, "5.4.4");
	assert_string_equal(res->text, "no A/AAAA records for mx2.test");

	res = resolve_wait(&c, "nosuch.test", 0, 25);
	assert_int_equal(res->status, DESTINATION_PERMANENT);
	assert_string_equal(res->code, "5.4.4");

	res = resolve_wait(&c, "x.broken.test", 0, 25);
	assert_int_equal(res->status, DESTINATION_TEMPORARY);
	assert_string_equal(res->code, "4.4.3");
	assert_non_null(strstr(res->text, "temporary DNS failure looking up x.broken.test: "
					  "ARES_ESERVFAIL"));
	ctx_fini(&c);
}

static void test_temporary_failures(void **state)
{
	static struct ctx c;
	const struct destination_result *res;
	uint64_t t0;

	(void)state;
	NEED_UNBOUND();
	ctx_init(&c, ub.port, RESOLVER_TIMEOUT_MS, RESOLVER_TRIES);
	res = resolve_wait(&c, "broken.test", 1, 25); /* SERVFAIL for the MX */
	assert_int_equal(res->status, DESTINATION_TEMPORARY);
	assert_string_equal(res->code, "4.4.3");
	assert_non_null(strstr(res->text, "temporary DNS failure looking up the MX of broken.test: "
					  "ARES_ESERVFAIL"));

	res = resolve_wait(&c, "refused.test", 1, 25);
	assert_int_equal(res->status, DESTINATION_TEMPORARY);
	assert_string_equal(res->code, "4.4.3");
	assert_non_null(strstr(res->text, "REFUSED"));

	/* The only MX host fails temporarily: 4.4.3, not 5.4.4. */
	res = resolve_wait(&c, "mxbroken.test", 1, 25);
	assert_int_equal(res->status, DESTINATION_TEMPORARY);
	assert_string_equal(res->code, "4.4.3");
	assert_non_null(strstr(res->text, "temporary DNS failure for x.broken.test"));

	/* The best MX host fails, the backup answers: delivery goes to the backup. */
	res = resolve_wait(&c, "partial.test", 1, 25);
	assert_int_equal(res->status, DESTINATION_OK);
	assert_int_equal(res->naddrs, 1);
	assert_string_equal(addr_text(res, 0), "127.0.0.2:25 b.mx2.test");
	ctx_fini(&c);

	/* No answer at all: the resolver's timeout, then 4.4.3. */
	ctx_init(&c, ub.port, SHORT_TIMEOUT_MS, 1);
	t0 = (uint64_t)time(NULL);
	res = resolve_wait(&c, "blackhole.test", 1, 25);
	assert_int_equal(res->status, DESTINATION_TEMPORARY);
	assert_string_equal(res->code, "4.4.3");
	assert_non_null(strstr(res->text, "ARES_ETIMEOUT"));
	assert_true((uint64_t)time(NULL) - t0 < 5);
	ctx_fini(&c);
}

/* ---- without DNS -------------------------------------------------------------------------- */

static void test_literals(void **state)
{
	static struct ctx c;
	const struct destination_result *res;

	(void)state;
	/* A resolver that would not answer: literals must not need it. */
	ctx_init(&c, free_port(1), SHORT_TIMEOUT_MS, 1);
	res = resolve_wait(&c, "192.0.2.1", 0, 2600);
	assert_int_equal(res->status, DESTINATION_OK);
	assert_int_equal(res->kind, DESTINATION_LITERAL);
	assert_string_equal(addr_text(res, 0), "192.0.2.1:2600 192.0.2.1");
	res = resolve_wait(&c, "2001:db8::1", 0, 2600);
	assert_string_equal(addr_text(res, 0), "2001:db8::1:2600 2001:db8::1");
	res = resolve_wait(&c, "[2001:DB8::2]", 0, 25);
	assert_string_equal(addr_text(res, 0), "2001:db8::2:25 2001:db8::2");
	res = resolve_wait(&c, "[192.0.2.3]", 1, 25);
	assert_int_equal(res->status, DESTINATION_OK);
	assert_string_equal(addr_text(res, 0), "192.0.2.3:25 192.0.2.3");
	res = resolve_wait(&c, "[IPv6:2001:db8::4]", 1, 25);
	assert_string_equal(addr_text(res, 0), "2001:db8::4:25 2001:db8::4");
	assert_int_equal(res->naddrs, 1);
	ctx_fini(&c);
}

static void test_invalid_targets(void **state)
{
	static struct ctx c;
	const struct destination_result *res;

	(void)state;
	ctx_init(&c, free_port(1), SHORT_TIMEOUT_MS, 1);
	res = resolve_wait(&c, "", 1, 25);
	assert_int_equal(res->status, DESTINATION_PERMANENT);
	assert_string_equal(res->code, "5.1.2");
	assert_string_equal(res->text, "invalid destination domain \"\"");
	res = resolve_wait(&c, "exa mple.test", 1, 25);
	assert_string_equal(res->code, "5.1.2");
	res = resolve_wait(&c, "[IPv6:192.0.2.1]", 1, 25);
	assert_string_equal(res->code, "5.1.2");
	res = resolve_wait(&c, "[192.0.2.1", 1, 25);
	assert_string_equal(res->code, "5.1.2");
	res = resolve_wait(&c, "[not-an-ip]", 0, 25);
	assert_int_equal(res->status, DESTINATION_PERMANENT);
	assert_string_equal(res->code, "5.4.4");
	assert_string_equal(res->text, "invalid destination host \"[not-an-ip]\"");
	res = resolve_wait(&c, "bad\r\nhost", 0, 25);
	assert_string_equal(res->text, "invalid destination host \"bad??host\"");
	ctx_fini(&c);
}

static void test_cancel(void **state)
{
	static struct ctx c;
	struct destination_query *q;

	(void)state;
	/* Before the loop ran: a literal's deferred done never comes. */
	ctx_init(&c, free_port(1), SHORT_TIMEOUT_MS, 1);
	q = destination_resolve(c.r, "192.0.2.1", 0, 25, on_done, &c);
	destination_cancel(&q);
	assert_null(q);
	destination_cancel(&q); /* NULL is fine */
	/* In flight: the late resolver answers (here a refused port) are dropped. */
	q = destination_resolve(c.r, "example.test", 1, 25, on_done, &c);
	destination_cancel(&q);
	q = destination_resolve(c.r, "host.example.test", 0, 25, on_done, &c);
	destination_cancel(&q);
	run_for(&c, 3 * SHORT_TIMEOUT_MS);
	assert_int_equal(c.done_calls, 0);
	ctx_fini(&c);

	if (!have_unbound)
		return;
	/* Cancelled while the MX lookup runs, and while the MX host lookups run (unbound drops
	 * the queries for blackhole.test). */
	ctx_init(&c, ub.port, SHORT_TIMEOUT_MS, 1);
	q = destination_resolve(c.r, "blackhole.test", 1, 25, on_done, &c);
	run_for(&c, SHORT_TIMEOUT_MS / 4);
	destination_cancel(&q);
	q = destination_resolve(c.r, "slowhost.test", 1, 25, on_done, &c);
	run_for(&c, SHORT_TIMEOUT_MS / 4);
	destination_cancel(&q);
	run_for(&c, 2 * SHORT_TIMEOUT_MS);
	assert_int_equal(c.done_calls, 0);
	ctx_fini(&c);
}

static void test_done_may_cancel_and_free(void **state)
{
	static struct ctx c;
	const struct destination_result *res;

	(void)state;
	ctx_init(&c, free_port(1), SHORT_TIMEOUT_MS, 1);
	c.cancel_in_done = 1; /* a harmless no-op from inside done */
	res = resolve_wait(&c, "[192.0.2.9]", 1, 25);
	assert_int_equal(res->status, DESTINATION_OK);
	assert_null(c.q);
	ctx_fini(&c);

	if (!have_unbound)
		return;
	/* done runs outside every resolver callback: it may free the resolver. */
	ctx_init(&c, ub.port, RESOLVER_TIMEOUT_MS, RESOLVER_TRIES);
	c.free_resolver_in_done = 1;
	res = resolve_wait(&c, "mx2.test", 1, 25);
	assert_int_equal(res->status, DESTINATION_OK);
	assert_null(c.r);
	ctx_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_ok),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_mx_classify),
		cmocka_unit_test(test_mx_order_preference),
		cmocka_unit_test(test_mx_order_tiebreak),
		cmocka_unit_test(test_build_order),
		cmocka_unit_test(test_build_bounds),
		cmocka_unit_test(test_build_classify),
		cmocka_unit_test(test_resolver_aaaa_mx),
		cmocka_unit_test(test_mx_two_preferences),
		cmocka_unit_test(test_implicit_null_nxdomain),
		cmocka_unit_test(test_hosts_and_aaaa),
		cmocka_unit_test(test_temporary_failures),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_invalid_targets),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_done_may_cancel_and_free),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, unbound_start, unbound_stop);
}
