/* Live tests for dnsbl: the real module on a real libevent loop against a real rbldnsd on a
 * free loopback port, and against a UDP port where nothing answers.
 *
 * rbldnsd (Debian package rbldnsd) is started through system() with its zones written into a
 * temporary directory; without it, the tests that need it are skipped and the rest (deadline,
 * cancellation, freeing in flight) still run. Log output is captured where a test checks it:
 * zone health transitions are logged once, and a secret zone never reaches the log. */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "dns/dnsbl.h"

#ifndef RBLDNSD
#define RBLDNSD "/usr/sbin/rbldnsd"
#endif
/* rbldnsd is wrapped in timeout(1) so that a crashed test cannot leave it running. */
#define RBLDNSD_LIFETIME_S 300
#define READY_WAIT_MS 5000
#define WATCHDOG_MS 8000
#define TIMEOUT_MS 300
#define TIMEOUT_SLACK_MS 200
#define PATH_LEN 512
#define SECRET "k3y0123456789abcdef"

/* ---- rbldnsd fixture ------------------------------------------------------------------------ */

struct rbl {
	char dir[PATH_LEN];
	unsigned port;
	pid_t pid;
	time_t mtime; /* bumped on every rewrite: rbldnsd reloads on a changed mtime */
};

static struct rbl rbl;
static int have_rbldnsd;

static const char zone_bl[] =
	"$SOA 0 ns.bl.test. admin.bl.test. 0 2h 2h 1w 120\n"
	"$TTL 600\n"
	":127.0.0.2:Listed $ see https://bl.test/\n"
	"127.0.0.2\n"
	"192.0.2.10\n"
	"192.0.2.11 :4:\n";
/* Everything about it lives one second: positive TTL, SOA TTL and SOA minimum. */
static const char zone_short[] =
	"$TTL 1\n"
	"$SOA 0 ns.short.test. admin.short.test. 0 2h 2h 1w 1\n"
	"127.0.0.2\n"
	"192.0.2.10\n";
static const char zone_bl6[] =
	"2001:db8:1::/48 :127.0.0.3:v6 listed\n"
	"::ffff:127.0.0.2\n";
static const char zone_dead_without_test_entry[] = "192.0.2.10\n";
static const char zone_dead_with_test_entry[] = "127.0.0.2\n192.0.2.10\n";
static const char zone_everything[] = "0.0.0.0/1\n128.0.0.0/1\n";
static const char zone_refusing[] = "0.0.0.0/1 :127.255.255.254:\n128.0.0.0/1 :127.255.255.254:\n";

static void write_zone(const char *name, const char *text)
{
	char path[PATH_LEN + 64];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", rbl.dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0644);
	/* A distinct mtime per write: rbldnsd compares whole seconds. */
	struct timeval tv[2] = { { rbl.mtime, 0 }, { rbl.mtime, 0 } };
	rbl.mtime++;
	utimes(path, tv);
}

static unsigned free_udp_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	unsigned port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* One blocking query; returns the rcode and the first A address (or 0), -1 on no answer. */
static int udp_query(unsigned port, const char *name, uint32_t *a_r)
{
	unsigned char *q = NULL, buf[512];
	int qlen = 0, fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 0, 200000 };
	int rc = -1;

	*a_r = 0;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (ares_create_query(name, ns_c_in, ns_t_a, 0x4242, 1, &q, &qlen, 0) != ARES_SUCCESS)
		fail_msg("ares_create_query");
	sendto(fd, q, (size_t)qlen, 0, (struct sockaddr *)&sin, sizeof(sin));
	ares_free_string(q);
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n >= 12) {
		struct ares_addrttl at[4];
		int nat = 4;
		rc = buf[3] & 0x0f;
		if (rc == 0 && ares_parse_a_reply(buf, (int)n, NULL, at, &nat) == ARES_SUCCESS &&
		    nat > 0)
			*a_r = ntohl(at[0].ipaddr.s_addr);
	}
	close(fd);
	return rc;
}

/* Waits until name answers with rcode want_rcode (and address want_a when not 0). */
static int wait_answer(const char *name, int want_rcode, uint32_t want_a)
{
	for (int waited = 0; waited < READY_WAIT_MS; waited += 50) {
		uint32_t a;
		int rc = udp_query(rbl.port, name, &a);
		if (rc == want_rcode && (!want_a || a == want_a))
			return 1;
		usleep(50000);
	}
	return 0;
}

static void rbl_reload(void)
{
	assert_int_equal(kill(rbl.pid, SIGHUP), 0);
}

static int rbl_start(void **state)
{
	char cmd[4096], pidpath[PATH_LEN + 16];
	FILE *f;

	(void)state;
	if (access(RBLDNSD, X_OK) != 0)
		return 0;
	snprintf(rbl.dir, sizeof(rbl.dir), "/tmp/mxg-dnsbl-live.XXXXXX");
	assert_non_null(mkdtemp(rbl.dir));
	chmod(rbl.dir, 0755); /* rbldnsd reads its zones as user rbldns */
	rbl.mtime = time(NULL) - 1000;
	rbl.port = free_udp_port();
	write_zone("bl", zone_bl);
	write_zone("bl6", zone_bl6);
	write_zone("short", zone_short);
	write_zone("dead", zone_dead_without_test_entry);
	write_zone("everything", zone_everything);
	write_zone("refusing", zone_refusing);
	snprintf(pidpath, sizeof(pidpath), "%s/pid", rbl.dir);
	snprintf(cmd, sizeof(cmd),
		 "timeout %d " RBLDNSD " -n -q -b 127.0.0.1/%u -w %s -p %s -c 0 -t 600"
		 " bl.test:ip4set:bl bl.test:ip6trie:bl6 notxt.test:ip4set:bl short.test:ip4set:short"
		 " dead.test:ip4set:dead everything.test:ip4set:everything"
		 " " SECRET ".dqs.test:ip4set:refusing"
		 " >%s/log 2>&1 &",
		 RBLDNSD_LIFETIME_S, rbl.port, rbl.dir, pidpath, rbl.dir);
	assert_int_equal(system(cmd), 0);
	for (int i = 0; i < READY_WAIT_MS / 50 && rbl.pid <= 0; i++) {
		usleep(50000);
		if ((f = fopen(pidpath, "r"))) {
			if (fscanf(f, "%d", &rbl.pid) != 1)
				rbl.pid = 0;
			fclose(f);
		}
	}
	assert_true(rbl.pid > 0);
	assert_true(wait_answer("2.0.0.127.bl.test", 0, 0x7f000002));
	have_rbldnsd = 1;
	return 0;
}

static int rbl_stop(void **state)
{
	char cmd[PATH_LEN + 16];

	(void)state;
	if (rbl.pid > 0)
		kill(rbl.pid, SIGTERM);
	if (rbl.dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", rbl.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", rbl.dir);
	}
	return 0;
}

#define NEED_RBLDNSD()                                                  \
	do {                                                            \
		if (!have_rbldnsd) {                                    \
			fprintf(stderr, "rbldnsd not installed: skipped\n"); \
			skip();                                         \
		}                                                       \
	} while (0)

/* ---- loop helpers --------------------------------------------------------------------------- */

struct ctx {
	struct event_base *base;
	struct config *cfg;
	struct dnsbl *d;
	int done_calls;
	struct dnsbl_query *last_done;
	int free_in_done;  /* done frees the query */
	int free_all_in_done; /* done frees the query and the dnsbl */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void add_list(struct config *cfg, const char *name, const char *zone, int txt, int ipv6)
{
	struct dnsbl_config *l = &cfg->dnsbl[cfg->ndnsbl++];

	memset(l, 0, sizeof(*l));
	snprintf(l->name, sizeof(l->name), "%s", name);
	snprintf(l->display_name, sizeof(l->display_name), "%s list", name);
	snprintf(l->zone, sizeof(l->zone), "%s", zone);
	l->codes[0] = (struct code_range){ 0x7f000002, 0x7f0000fe };
	l->ncodes = 1;
	l->weight = 1;
	l->fetch_txt = txt;
	l->ipv6 = ipv6;
}

static struct config *new_config(unsigned port)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	assert_non_null(cfg);
	if (port)
		snprintf(cfg->resolver, sizeof(cfg->resolver), "127.0.0.1:%u", port);
	cfg->dnsbl_timeout_ms = 2000;
	cfg->dnsbl_cache_min_ttl = 60;
	cfg->dnsbl_cache_max_ttl = 3600;
	cfg->dnsbl_health_interval = 0;
	cfg->dnsbl_threshold = 1;
	return cfg;
}

static void ctx_init(struct ctx *c, struct config *cfg)
{
	char err[256] = "";

	memset(c, 0, sizeof(*c));
	c->base = event_base_new();
	assert_non_null(c->base);
	c->cfg = cfg;
	c->d = dnsbl_new(c->base, cfg, err, sizeof(err));
	if (!c->d)
		fail_msg("dnsbl_new: %s", err);
}

static void ctx_fini(struct ctx *c)
{
	dnsbl_free(&c->d);
	event_base_free(c->base);
	free(c->cfg);
}

static void on_done(void *arg, struct dnsbl_query *q)
{
	struct ctx *c = arg;

	c->done_calls++;
	c->last_done = q;
	assert_true(dnsbl_query_complete(q));
	if (c->free_in_done || c->free_all_in_done)
		dnsbl_query_free(&q);
	if (c->free_all_in_done)
		dnsbl_free(&c->d);
	event_base_loopbreak(c->base);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(arg);
}

/* Runs the loop until something breaks it or ms pass. */
static void run_for(struct ctx *c, unsigned ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	struct event *wd = evtimer_new(c->base, on_watchdog, c->base);

	evtimer_add(wd, &tv);
	event_base_dispatch(c->base);
	event_free(wd);
}

/* Looks ip up and runs the loop until done. */
static struct dnsbl_query *lookup_wait(struct ctx *c, const char *ipstr)
{
	struct ip_addr ip;
	struct dnsbl_query *q;
	int before = c->done_calls;

	assert_int_equal(ip_parse(ipstr, &ip), 0);
	q = dnsbl_lookup(c->d, &ip, on_done, c);
	assert_non_null(q);
	while (c->done_calls == before) {
		uint64_t t = mono_ms();
		run_for(c, WATCHDOG_MS);
		if (c->done_calls == before && mono_ms() - t >= WATCHDOG_MS)
			fail_msg("no completion for %s", ipstr);
	}
	assert_int_equal(c->done_calls, before + 1);
	assert_ptr_equal(c->last_done, q);
	return q;
}

static void on_probed(void *arg)
{
	struct ctx *c = arg;

	c->done_calls++;
	event_base_loopbreak(c->base);
}

static void probe_wait(struct ctx *c)
{
	int before = c->done_calls;

	dnsbl_probe_all(c->d, on_probed, c);
	while (c->done_calls == before)
		run_for(c, WATCHDOG_MS);
}

static const struct dnsbl_answer *answer_of(struct dnsbl_query *q, size_t i)
{
	size_t n;
	const struct dnsbl_answer *a = dnsbl_query_answers(q, &n);

	assert_true(i < n);
	return &a[i];
}

/* ---- stderr capture (log lines) ------------------------------------------------------------- */

struct capture {
	int saved;
	char path[64];
};

static void capture_start(struct capture *cap)
{
	int fd;

	snprintf(cap->path, sizeof(cap->path), "/tmp/mxg-dnsbl-log.XXXXXX");
	fd = mkstemp(cap->path);
	assert_true(fd >= 0);
	fflush(stderr);
	cap->saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
}

/* Restores stderr and returns what was logged (malloc'd). */
static char *capture_end(struct capture *cap)
{
	FILE *f;
	char *text = calloc(1, 65536);
	size_t n;

	fflush(stderr);
	dup2(cap->saved, STDERR_FILENO);
	close(cap->saved);
	f = fopen(cap->path, "r");
	assert_non_null(f);
	n = fread(text, 1, 65535, f);
	text[n] = '\0';
	fclose(f);
	unlink(cap->path);
	fputs(text, stderr); /* still visible in the test log */
	return text;
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* ---- against rbldnsd ------------------------------------------------------------------------ */

static void test_listed_txt_and_cache(void **state)
{
	struct ctx c;
	struct config *cfg;
	struct dnsbl_query *q;
	const struct dnsbl_answer *a;
	struct dnsbl_stats st;

	(void)state;
	NEED_RBLDNSD();
	cfg = new_config(rbl.port);
	add_list(cfg, "bl", "bl.test", 1, 1);
	add_list(cfg, "notxt", "notxt.test", 0, 1);
	ctx_init(&c, cfg);
	probe_wait(&c);

	q = lookup_wait(&c, "192.0.2.10");
	a = answer_of(q, 0);
	assert_int_equal(a->state, DNSBL_LISTED);
	assert_int_equal(a->code, 0x7f000002);
	assert_string_equal(a->txt, "Listed 192.0.2.10 see https://bl.test/");
	assert_int_equal(a->cached, 0);
	assert_string_equal(a->list->name, "bl");
	a = answer_of(q, 1);
	assert_int_equal(a->state, DNSBL_LISTED);
	assert_string_equal(a->txt, ""); /* txt = no */
	dnsbl_query_free(&q);
	assert_null(q);

	/* Second time: from the cache, complete when dnsbl_lookup returns, done still once. */
	struct ip_addr ip;
	int before = c.done_calls;
	assert_int_equal(ip_parse("192.0.2.10", &ip), 0);
	q = dnsbl_lookup(c.d, &ip, on_done, &c);
	assert_true(dnsbl_query_complete(q));
	assert_int_equal(c.done_calls, before); /* never from inside dnsbl_lookup */
	a = answer_of(q, 0);
	assert_int_equal(a->state, DNSBL_LISTED);
	assert_int_equal(a->cached, 1);
	assert_int_equal(a->elapsed_ms, 0);
	assert_string_equal(a->txt, "Listed 192.0.2.10 see https://bl.test/");
	run_for(&c, 200);
	assert_int_equal(c.done_calls, before + 1);
	dnsbl_query_free(&q);

	/* A listing with its own code and no TXT. */
	q = lookup_wait(&c, "192.0.2.11");
	a = answer_of(q, 0);
	assert_int_equal(a->state, DNSBL_LISTED);
	assert_int_equal(a->code, 0x7f000004);
	assert_string_equal(a->txt, "");
	dnsbl_query_free(&q);

	dnsbl_get_stats(c.d, &st);
	assert_int_equal(st.lookups, 6);
	assert_int_equal(st.cache_hits, 2);
	assert_int_equal(st.listed, 6);
	ctx_fini(&c);
}

static void test_not_listed_cached(void **state)
{
	struct ctx c;
	struct config *cfg;
	struct dnsbl_query *q;
	const struct dnsbl_answer *a;

	(void)state;
	NEED_RBLDNSD();
	cfg = new_config(rbl.port);
	add_list(cfg, "bl", "bl.test", 1, 1);
	ctx_init(&c, cfg);
	q = lookup_wait(&c, "192.0.2.99");
	a = answer_of(q, 0);
	assert_int_equal(a->state, DNSBL_NOT_LISTED);
	assert_int_equal(a->code, 0);
	assert_string_equal(a->txt, "");
	assert_int_equal(a->cached, 0);
	dnsbl_query_free(&q);
	q = lookup_wait(&c, "192.0.2.99");
	a = answer_of(q, 0);
	assert_int_equal(a->state, DNSBL_NOT_LISTED);
	assert_int_equal(a->cached, 1);
	dnsbl_query_free(&q);
	ctx_fini(&c);
}

static void test_ipv6(void **state)
{
	struct ctx c;
	struct config *cfg;
	struct dnsbl_query *q;
	const struct dnsbl_answer *a;

	(void)state;
	NEED_RBLDNSD();
	cfg = new_config(rbl.port);
	add_list(cfg, "bl", "bl.test", 1, 1);
	add_list(cfg, "v4only", "bl.test", 0, 0);
	ctx_init(&c, cfg);
	q = lookup_wait(&c, "2001:db8:1::5");
	a = answer_of(q, 0);
	assert_int_equal(a->state, DNSBL_LISTED);
	assert_int_equal(a->code, 0x7f000003);
	assert_string_equal(a->txt, "v6 listed");
	a = answer_of(q, 1);
	assert_int_equal(a->state, DNSBL_SKIPPED);
	assert_string_equal(a->detail, "list does not support IPv6");
	dnsbl_query_free(&q);
	q = lookup_wait(&c, "2001:db8:2::5");
	assert_int_equal(answer_of(q, 0)->state, DNSBL_NOT_LISTED);
	dnsbl_query_free(&q);
	ctx_fini(&c);
}

static void test_refused_is_list_error(void **state)
{
	struct ctx c;
	struct config *cfg;
	struct dnsbl_query *q;
	const struct dnsbl_answer *a;

	(void)state;
	NEED_RBLDNSD();
	cfg = new_config(rbl.port);
	/* rbldnsd refuses names outside the zones it serves. */
	add_list(cfg, "unserved", "unserved.test", 0, 1);
	ctx_init(&c, cfg);
	q = lookup_wait(&c, "192.0.2.10");
	a = answer_of(q, 0);
	assert_int_equal(a->state, DNSBL_LIST_ERROR);
	assert_string_equal(a->detail,
			    "REFUSED: list refused the query (open/public resolver or no access)");
	dnsbl_query_free(&q);
	/* Errors are not cached. */
	q = lookup_wait(&c, "192.0.2.10");
	assert_int_equal(answer_of(q, 0)->cached, 0);
	dnsbl_query_free(&q);
	ctx_fini(&c);
}

static void test_zone_health(void **state)
{
	struct ctx c;
	struct config *cfg;
	struct dnsbl_query *q;
	struct capture cap;
	char why[DNSBL_DETAIL_MAX];
	char *log;

	(void)state;
	NEED_RBLDNSD();
	cfg = new_config(rbl.port);
	add_list(cfg, "good", "bl.test", 0, 1);
	add_list(cfg, "dead", "dead.test", 0, 1);
	add_list(cfg, "everything", "everything.test", 0, 1);
	add_list(cfg, "dqs", SECRET ".dqs.test", 1, 1);
	snprintf(cfg->dnsbl[3].display_zone, sizeof(cfg->dnsbl[3].display_zone), "dqs.test");
	capture_start(&cap);
	ctx_init(&c, cfg);
	/* Healthy until a probe has answered. */
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(dnsbl_zone_healthy(c.d, i, why, sizeof(why)), 1);
	probe_wait(&c); /* the one dnsbl_new started has finished too by now, or runs along */
	probe_wait(&c);
	log = capture_end(&cap);

	assert_int_equal(dnsbl_zone_healthy(c.d, 0, why, sizeof(why)), 1);
	assert_string_equal(why, "");
	assert_int_equal(dnsbl_zone_healthy(c.d, 1, why, sizeof(why)), 0);
	assert_string_equal(why, "test entry 127.0.0.2 not listed: NXDOMAIN");
	assert_int_equal(dnsbl_zone_healthy(c.d, 2, why, sizeof(why)), 0);
	assert_string_equal(why, "127.0.0.1 listed: the list answers for everything");
	assert_int_equal(dnsbl_zone_healthy(c.d, 3, why, sizeof(why)), 0);
	assert_string_equal(why, "test entry 127.0.0.2 not listed: 127.255.255.254: list refused "
				 "the query (open/public resolver or no access)");
	assert_int_equal(dnsbl_zone_healthy(c.d, 4, why, sizeof(why)), 0);

	/* One warning per transition although three probe runs saw the failures. */
	assert_int_equal(count_of(log, "dnsbl zone-unhealthy list=dead zone=\"dead list\" why="), 1);
	assert_int_equal(count_of(log, "dnsbl zone-unhealthy list=everything "), 1);
	assert_int_equal(count_of(log, "dnsbl zone-unhealthy list=dqs zone=\"dqs.test\" "), 1);
	assert_int_equal(count_of(log, "list=good"), 0);
	assert_null(strstr(log, SECRET));
	free(log);

	/* Unhealthy lists are skipped, with the reason. */
	capture_start(&cap);
	q = lookup_wait(&c, "192.0.2.10");
	assert_int_equal(answer_of(q, 0)->state, DNSBL_LISTED);
	assert_int_equal(answer_of(q, 1)->state, DNSBL_SKIPPED);
	assert_string_equal(answer_of(q, 1)->detail, "test entry 127.0.0.2 not listed: NXDOMAIN");
	assert_int_equal(answer_of(q, 2)->state, DNSBL_SKIPPED);
	assert_int_equal(answer_of(q, 3)->state, DNSBL_SKIPPED);
	for (size_t i = 0; i < 4; i++)
		assert_null(strstr(answer_of(q, i)->detail, SECRET));
	dnsbl_query_free(&q);

	/* The dead zone gets its test entry back: healthy again, logged once. */
	write_zone("dead", zone_dead_with_test_entry);
	rbl_reload();
	assert_true(wait_answer("2.0.0.127.dead.test", 0, 0x7f000002));
	probe_wait(&c);
	probe_wait(&c);
	log = capture_end(&cap);
	assert_int_equal(dnsbl_zone_healthy(c.d, 1, why, sizeof(why)), 1);
	assert_int_equal(count_of(log, "dnsbl zone-healthy list=dead zone=\"dead list\""), 1);
	assert_null(strstr(log, SECRET));
	free(log);
	write_zone("dead", zone_dead_without_test_entry);
	rbl_reload();
	assert_true(wait_answer("2.0.0.127.dead.test", 3, 0));
	ctx_fini(&c);
}

static void test_periodic_probe(void **state)
{
	struct ctx c;
	struct config *cfg;
	char why[DNSBL_DETAIL_MAX];

	(void)state;
	NEED_RBLDNSD();
	cfg = new_config(rbl.port);
	cfg->dnsbl_health_interval = 1;
	add_list(cfg, "dead", "dead.test", 0, 1);
	ctx_init(&c, cfg);
	run_for(&c, 500); /* the start probe */
	assert_int_equal(dnsbl_zone_healthy(c.d, 0, why, sizeof(why)), 0);
	write_zone("dead", zone_dead_with_test_entry);
	rbl_reload();
	assert_true(wait_answer("2.0.0.127.dead.test", 0, 0x7f000002));
	run_for(&c, 1600); /* at least one periodic probe */
	assert_int_equal(dnsbl_zone_healthy(c.d, 0, why, sizeof(why)), 1);
	write_zone("dead", zone_dead_without_test_entry);
	rbl_reload();
	assert_true(wait_answer("2.0.0.127.dead.test", 3, 0));
	ctx_fini(&c);
}

static void test_cache_ttl_clamp(void **state)
{
	struct ctx c;
	struct config *cfg;
	struct dnsbl_query *q;

	(void)state;
	NEED_RBLDNSD();
	cfg = new_config(rbl.port);
	/* Answers carry TTL 600 (positive) and 120 (negative, SOA minimum); both are clamped
	 * down to 1 s. */
	cfg->dnsbl_cache_min_ttl = 0;
	cfg->dnsbl_cache_max_ttl = 1;
	add_list(cfg, "bl", "bl.test", 0, 1);
	ctx_init(&c, cfg);
	q = lookup_wait(&c, "192.0.2.10");
	dnsbl_query_free(&q);
	q = lookup_wait(&c, "192.0.2.98");
	dnsbl_query_free(&q);
	q = lookup_wait(&c, "192.0.2.10");
	assert_int_equal(answer_of(q, 0)->cached, 1);
	dnsbl_query_free(&q);
	q = lookup_wait(&c, "192.0.2.98");
	assert_int_equal(answer_of(q, 0)->cached, 1);
	dnsbl_query_free(&q);
	usleep(1100000);
	q = lookup_wait(&c, "192.0.2.10");
	assert_int_equal(answer_of(q, 0)->cached, 0);
	assert_int_equal(answer_of(q, 0)->state, DNSBL_LISTED);
	dnsbl_query_free(&q);
	q = lookup_wait(&c, "192.0.2.98");
	assert_int_equal(answer_of(q, 0)->cached, 0);
	dnsbl_query_free(&q);
	ctx_fini(&c);
}

static void test_cache_uses_answer_ttl(void **state)
{
	struct ctx c;
	struct config *cfg;
	struct dnsbl_query *q;
	const char *ips[] = { "192.0.2.10", "192.0.2.98" }; /* listed, not listed */

	(void)state;
	NEED_RBLDNSD();
	cfg = new_config(rbl.port);
	/* Within [0, 3600] the answers' own TTLs (1 s, and 1 s from the SOA) decide. */
	cfg->dnsbl_cache_min_ttl = 0;
	add_list(cfg, "short", "short.test", 0, 1);
	ctx_init(&c, cfg);
	for (size_t i = 0; i < 2; i++) {
		q = lookup_wait(&c, ips[i]);
		assert_int_equal(answer_of(q, 0)->state, i ? DNSBL_NOT_LISTED : DNSBL_LISTED);
		dnsbl_query_free(&q);
		q = lookup_wait(&c, ips[i]);
		assert_int_equal(answer_of(q, 0)->cached, 1);
		dnsbl_query_free(&q);
	}
	usleep(1100000);
	for (size_t i = 0; i < 2; i++) {
		q = lookup_wait(&c, ips[i]);
		assert_int_equal(answer_of(q, 0)->cached, 0);
		dnsbl_query_free(&q);
	}
	ctx_fini(&c);
}

/* ---- against a port where nothing answers ----------------------------------------------- */

struct blackhole {
	int fd;
	unsigned port;
};

static void blackhole_open(struct blackhole *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	b->fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(b->fd >= 0);
	assert_int_equal(bind(b->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(b->fd, (struct sockaddr *)&sin, &len), 0);
	b->port = ntohs(sin.sin_port);
}

static struct config *blackhole_config(const struct blackhole *b)
{
	struct config *cfg = new_config(b->port);

	cfg->dnsbl_timeout_ms = TIMEOUT_MS;
	add_list(cfg, "one", "one.test", 1, 1);
	add_list(cfg, "two", "two.test", 0, 1);
	return cfg;
}

static void test_deadline(void **state)
{
	struct blackhole b;
	struct ctx c;
	struct dnsbl_query *q;
	struct dnsbl_stats st;
	uint64_t t0, took;

	(void)state;
	blackhole_open(&b);
	ctx_init(&c, blackhole_config(&b));
	run_for(&c, TIMEOUT_MS + 100); /* let the start probes time out */
	t0 = mono_ms();
	q = lookup_wait(&c, "192.0.2.1");
	took = mono_ms() - t0;
	if (took + TIMEOUT_SLACK_MS < TIMEOUT_MS || took > TIMEOUT_MS + TIMEOUT_SLACK_MS)
		fail_msg("deadline %u ms, took %llu ms", TIMEOUT_MS, (unsigned long long)took);
	for (size_t i = 0; i < 2; i++) {
		const struct dnsbl_answer *a = answer_of(q, i);
		assert_int_equal(a->state, DNSBL_TIMEOUT);
		assert_string_equal(a->detail, "no answer within 300 ms");
		assert_true(a->elapsed_ms >= TIMEOUT_MS - 5);
	}
	dnsbl_query_free(&q);
	/* Timeouts are neither cached nor do they change zone health. */
	assert_int_equal(dnsbl_zone_healthy(c.d, 0, NULL, 0), 1);
	dnsbl_get_stats(c.d, &st);
	assert_int_equal(st.timeouts, 2);
	assert_int_equal(st.cache_hits, 0);
	/* Late retries and answers after the deadline must find nothing to call. */
	run_for(&c, 2 * TIMEOUT_MS);
	assert_int_equal(c.done_calls, 1);
	ctx_fini(&c);
	close(b.fd);
}

static void test_free_pending_query(void **state)
{
	struct blackhole b;
	struct ctx c;
	struct ip_addr ip;
	struct dnsbl_query *q1, *q2;

	(void)state;
	blackhole_open(&b);
	ctx_init(&c, blackhole_config(&b));
	assert_int_equal(ip_parse("192.0.2.1", &ip), 0);
	q1 = dnsbl_lookup(c.d, &ip, on_done, &c);
	q2 = dnsbl_lookup(c.d, &ip, on_done, &c);
	assert_false(dnsbl_query_complete(q1));
	dnsbl_query_free(&q1); /* at once */
	run_for(&c, TIMEOUT_MS / 3); /* after c-ares sent (and maybe retried) */
	dnsbl_query_free(&q2);
	run_for(&c, 2 * TIMEOUT_MS); /* deadlines and c-ares timeouts pass */
	assert_int_equal(c.done_calls, 0);
	ctx_fini(&c);
	close(b.fd);
}

static void test_free_dnsbl_in_flight(void **state)
{
	struct blackhole b;
	struct ctx c;
	struct ip_addr ip;
	struct dnsbl_query *q;
	size_t n;

	(void)state;
	blackhole_open(&b);
	ctx_init(&c, blackhole_config(&b));
	assert_int_equal(ip_parse("2001:db8::7", &ip), 0);
	q = dnsbl_lookup(c.d, &ip, on_done, &c);
	dnsbl_probe_all(c.d, on_probed, &c);
	run_for(&c, 50);
	dnsbl_free(&c.d); /* c-ares ends its queries with ARES_EDESTRUCTION */
	assert_null(c.d);
	/* The query stays readable, never completes, and is still freed by its owner. */
	assert_false(dnsbl_query_complete(q));
	const struct dnsbl_answer *a = dnsbl_query_answers(q, &n);
	assert_int_equal(n, 2);
	assert_int_equal(a[0].state, DNSBL_PENDING);
	assert_string_equal(a[1].list->name, "two");
	run_for(&c, 2 * TIMEOUT_MS);
	assert_int_equal(c.done_calls, 0);
	dnsbl_query_free(&q);
	ctx_fini(&c);
	close(b.fd);
}

static void test_free_everything_in_done(void **state)
{
	struct blackhole b;
	struct ctx c;

	(void)state;
	blackhole_open(&b);
	ctx_init(&c, blackhole_config(&b));
	c.free_all_in_done = 1;
	(void)lookup_wait(&c, "192.0.2.1"); /* done frees the query and the dnsbl */
	assert_null(c.d);
	run_for(&c, 2 * TIMEOUT_MS);
	assert_int_equal(c.done_calls, 1);
	ctx_fini(&c);
	close(b.fd);
}

static void test_connection_refused(void **state)
{
	struct ctx c;
	struct config *cfg;
	struct dnsbl_query *q;
	const struct dnsbl_answer *a;

	(void)state;
	cfg = new_config(free_udp_port()); /* nobody listens: ICMP port unreachable */
	cfg->dnsbl_timeout_ms = 1000;
	add_list(cfg, "one", "one.test", 0, 1);
	ctx_init(&c, cfg);
	q = lookup_wait(&c, "192.0.2.1");
	a = answer_of(q, 0);
	/* Linux reports the ICMP port unreachable on c-ares' connected UDP socket. */
	assert_int_equal(a->state, DNSBL_RESOLVER_ERROR);
	assert_string_equal(a->detail,
			    "resolver error ARES_ECONNREFUSED: Could not contact DNS servers");
	dnsbl_query_free(&q);
	ctx_fini(&c);
}

/* ---- against a scripted DNS server on the loop -------------------------------------------- */

/* Answers every A query with rcode and (when addr is set) one A record, after a_delay_ms,
 * except 1.0.0.127.* (NXDOMAIN); every TXT query with one TXT record after txt_delay_ms.
 * Runs on the test's own loop. */
struct fake_dns {
	int fd;
	unsigned port;
	struct event *ev;
	int rcode;
	uint32_t addr;
	unsigned a_delay_ms, txt_delay_ms;
	unsigned queries;
	struct fake_reply *replies;
};

struct fake_reply {
	struct fake_dns *f;
	struct fake_reply *next;
	struct event *ev;
	struct sockaddr_in peer;
	unsigned char buf[512];
	size_t len;
};

#define FAKE_TXT "fake reason"
#define PROBE_NOT_LISTED_QNAME "\0011\0010\0010\003127"
#define FAKE_TTL 300

static void fake_send(evutil_socket_t fd, short what, void *arg)
{
	struct fake_reply *r = arg, **p = &r->f->replies;

	sendto(r->f->fd, r->buf, r->len, 0, (struct sockaddr *)&r->peer, sizeof(r->peer));
	while (*p != r)
		p = &(*p)->next;
	*p = r->next;
	event_free(r->ev);
	free(r);
}

static size_t put_rr(unsigned char *p, unsigned type, const unsigned char *rdata, size_t rdlen)
{
	const unsigned char head[] = { 0xc0, 0x0c, 0, (unsigned char)type, 0, 1, 0, 0,
				       FAKE_TTL >> 8, FAKE_TTL & 0xff, 0, (unsigned char)rdlen };

	memcpy(p, head, sizeof(head));
	memcpy(p + sizeof(head), rdata, rdlen);
	return sizeof(head) + rdlen;
}

/* The reply to the query in r->buf (length r->len); returns its delay. */
static unsigned fake_answer(struct fake_dns *f, struct fake_reply *r)
{
	size_t off = 12;
	unsigned type;

	while (off < r->len && r->buf[off])
		off += 1u + r->buf[off];
	off += 5; /* root label, type, class */
	if (off > r->len || off + 64 > sizeof(r->buf))
		return 0;
	type = r->buf[off - 3];
	r->len = off;
	r->buf[2] |= 0x84; /* QR, AA */
	r->buf[3] = 0x80;  /* RA, rcode 0 */
	if (type == ns_t_txt) {
		unsigned char rd[1 + sizeof(FAKE_TXT) - 1] = { sizeof(FAKE_TXT) - 1 };
		memcpy(rd + 1, FAKE_TXT, sizeof(FAKE_TXT) - 1);
		r->buf[7] = 1;
		r->len += put_rr(r->buf + off, ns_t_txt, rd, sizeof(rd));
		return f->txt_delay_ms;
	}
	/* Like a sound list, 127.0.0.1 is never listed: probes judge only what a test sets. */
	if (!memcmp(r->buf + 12, PROBE_NOT_LISTED_QNAME, sizeof(PROBE_NOT_LISTED_QNAME) - 1)) {
		r->buf[3] |= ns_r_nxdomain;
		return f->a_delay_ms;
	}
	r->buf[3] |= (unsigned char)f->rcode;
	if (f->addr && f->rcode == 0) {
		unsigned char rd[4] = { f->addr >> 24, (f->addr >> 16) & 0xff, (f->addr >> 8) & 0xff,
					f->addr & 0xff };
		r->buf[7] = 1;
		r->len += put_rr(r->buf + off, ns_t_a, rd, sizeof(rd));
	}
	return f->a_delay_ms;
}

static void fake_read(evutil_socket_t fd, short what, void *arg)
{
	struct fake_dns *f = arg;
	struct fake_reply *r = calloc(1, sizeof(*r));
	socklen_t plen = sizeof(r->peer);
	ssize_t n = recvfrom(fd, r->buf, sizeof(r->buf), 0, (struct sockaddr *)&r->peer, &plen);
	unsigned delay;

	if (n < 12) {
		free(r);
		return;
	}
	f->queries++;
	r->f = f;
	r->len = (size_t)n;
	delay = fake_answer(f, r);
	struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
	r->ev = evtimer_new(event_get_base(f->ev), fake_send, r);
	r->next = f->replies;
	f->replies = r;
	evtimer_add(r->ev, &tv);
}

static void fake_start(struct fake_dns *f, struct event_base *base)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);

	f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(f->fd, (struct sockaddr *)&sin, &len), 0);
	f->port = ntohs(sin.sin_port);
	f->ev = event_new(base, f->fd, EV_READ | EV_PERSIST, fake_read, f);
	event_add(f->ev, NULL);
}

static void fake_stop(struct fake_dns *f)
{
	while (f->replies) {
		struct fake_reply *r = f->replies;
		f->replies = r->next;
		event_free(r->ev);
		free(r);
	}
	event_free(f->ev);
	close(f->fd);
}

/* A loop and a fake server first, then the dnsbl on it (the port is known only then). */
static void fake_ctx(struct ctx *c, struct fake_dns *f, unsigned timeout_ms)
{
	char err[256] = "";
	struct config *cfg;

	memset(c, 0, sizeof(*c));
	c->base = event_base_new();
	fake_start(f, c->base);
	cfg = new_config(f->port);
	cfg->dnsbl_timeout_ms = timeout_ms;
	add_list(cfg, "fake", "fake.test", 1, 1);
	c->cfg = cfg;
	c->d = dnsbl_new(c->base, cfg, err, sizeof(err));
	assert_non_null(c->d);
}

static void test_fake_servfail(void **state)
{
	struct fake_dns f = { .rcode = 2 };
	struct ctx c;
	struct dnsbl_query *q;
	const struct dnsbl_answer *a;
	char why[DNSBL_DETAIL_MAX];

	(void)state;
	fake_ctx(&c, &f, 1000);
	probe_wait(&c);
	/* A SERVFAIL during a probe proves nothing about the zone. */
	assert_int_equal(dnsbl_zone_healthy(c.d, 0, why, sizeof(why)), 1);
	q = lookup_wait(&c, "192.0.2.1");
	a = answer_of(q, 0);
	assert_int_equal(a->state, DNSBL_RESOLVER_ERROR);
	assert_non_null(strstr(a->detail, "resolver error ARES_ESERVFAIL: "));
	dnsbl_query_free(&q);
	unsigned before = f.queries;
	q = lookup_wait(&c, "192.0.2.1"); /* not cached */
	assert_int_equal(answer_of(q, 0)->cached, 0);
	assert_int_equal(f.queries, before + 1);
	dnsbl_query_free(&q);
	dnsbl_free(&c.d);
	fake_stop(&f);
	ctx_fini(&c);
}

static void test_fake_rewriting_resolver(void **state)
{
	struct fake_dns f = { .addr = 0x0a010203 }; /* 10.1.2.3 for every name */
	struct ctx c;
	struct dnsbl_query *q;
	const struct dnsbl_answer *a;
	char why[DNSBL_DETAIL_MAX];

	(void)state;
	fake_ctx(&c, &f, 1000);
	q = lookup_wait(&c, "192.0.2.1"); /* before the probe answered: not skipped */
	a = answer_of(q, 0);
	assert_int_equal(a->state, DNSBL_LIST_ERROR);
	assert_int_equal(a->code, 0x0a010203);
	assert_string_equal(a->detail, "10.1.2.3: answer outside 127.0.0.0/8 (NXDOMAIN-rewriting "
				       "resolver or dead list)");
	assert_string_equal(a->txt, ""); /* no TXT for errors */
	dnsbl_query_free(&q);
	probe_wait(&c);
	assert_int_equal(dnsbl_zone_healthy(c.d, 0, why, sizeof(why)), 0);
	assert_string_equal(why, "test entry 127.0.0.2 not listed: 10.1.2.3: answer outside "
				 "127.0.0.0/8 (NXDOMAIN-rewriting resolver or dead list)");
	q = lookup_wait(&c, "192.0.2.1");
	assert_int_equal(answer_of(q, 0)->state, DNSBL_SKIPPED);
	assert_string_equal(answer_of(q, 0)->detail, why);
	dnsbl_query_free(&q);
	dnsbl_free(&c.d);
	fake_stop(&f);
	ctx_fini(&c);
}

static void test_fake_late_answers(void **state)
{
	struct fake_dns f = { .addr = 0x7f000002, .a_delay_ms = 2 * TIMEOUT_MS };
	struct ctx c;
	struct dnsbl_query *q;
	uint64_t t0, took;

	(void)state;
	fake_ctx(&c, &f, TIMEOUT_MS);
	t0 = mono_ms();
	q = lookup_wait(&c, "192.0.2.1");
	took = mono_ms() - t0;
	assert_true(took < TIMEOUT_MS + TIMEOUT_SLACK_MS);
	assert_int_equal(answer_of(q, 0)->state, DNSBL_TIMEOUT);
	dnsbl_query_free(&q);
	/* The late answers arrive for requests whose owners are gone. */
	run_for(&c, 3 * TIMEOUT_MS);
	assert_int_equal(c.done_calls, 1);
	dnsbl_free(&c.d);
	fake_stop(&f);
	ctx_fini(&c);
}

static void test_fake_late_txt(void **state)
{
	struct fake_dns f = { .addr = 0x7f000002, .txt_delay_ms = 2 * TIMEOUT_MS };
	struct ctx c;
	struct dnsbl_query *q;
	const struct dnsbl_answer *a;

	(void)state;
	fake_ctx(&c, &f, TIMEOUT_MS);
	q = lookup_wait(&c, "192.0.2.1");
	a = answer_of(q, 0);
	/* The listing stands without its reason, and is not cached without it. */
	assert_int_equal(a->state, DNSBL_LISTED);
	assert_string_equal(a->txt, "");
	dnsbl_query_free(&q);
	f.txt_delay_ms = 0;
	q = lookup_wait(&c, "192.0.2.1");
	a = answer_of(q, 0);
	assert_int_equal(a->cached, 0);
	assert_string_equal(a->txt, FAKE_TXT);
	dnsbl_query_free(&q);
	q = lookup_wait(&c, "192.0.2.1");
	assert_int_equal(answer_of(q, 0)->cached, 1);
	assert_string_equal(answer_of(q, 0)->txt, FAKE_TXT);
	dnsbl_query_free(&q);
	dnsbl_free(&c.d);
	fake_stop(&f);
	ctx_fini(&c);
}

/* ---- without the network ------------------------------------------------------------------ */

static void test_no_lists(void **state)
{
	struct ctx c;
	struct ip_addr ip;
	struct dnsbl_query *q;
	size_t n = 99;

	(void)state;
	ctx_init(&c, new_config(free_udp_port()));
	assert_int_equal(ip_parse("192.0.2.1", &ip), 0);
	q = dnsbl_lookup(c.d, &ip, on_done, &c);
	assert_true(dnsbl_query_complete(q));
	(void)dnsbl_query_answers(q, &n);
	assert_int_equal(n, 0);
	run_for(&c, 100);
	assert_int_equal(c.done_calls, 1);
	dnsbl_query_free(&q);
	/* Freed before the loop ran: done is cancelled. */
	q = dnsbl_lookup(c.d, &ip, on_done, &c);
	dnsbl_query_free(&q);
	run_for(&c, 50);
	assert_int_equal(c.done_calls, 1);
	ctx_fini(&c);
}

static void test_bad_resolver(void **state)
{
	struct event_base *base = event_base_new();
	struct config *cfg = new_config(0);
	char err[256] = "";

	(void)state;
	snprintf(cfg->resolver, sizeof(cfg->resolver), "dns.example:53");
	assert_null(dnsbl_new(base, cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "dns.example:53"));
	snprintf(cfg->resolver, sizeof(cfg->resolver), "[::1]:5353");
	struct dnsbl *d = dnsbl_new(base, cfg, err, sizeof(err));
	assert_non_null(d);
	dnsbl_free(&d);
	dnsbl_free(&d); /* NULL is fine */
	free(cfg);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listed_txt_and_cache),
		cmocka_unit_test(test_not_listed_cached),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_refused_is_list_error),
		cmocka_unit_test(test_zone_health),
		cmocka_unit_test(test_periodic_probe),
		cmocka_unit_test(test_cache_ttl_clamp),
		cmocka_unit_test(test_cache_uses_answer_ttl),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_free_pending_query),
		cmocka_unit_test(test_free_dnsbl_in_flight),
		cmocka_unit_test(test_free_everything_in_done),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_fake_servfail),
		cmocka_unit_test(test_fake_rewriting_resolver),
		cmocka_unit_test(test_fake_late_answers),
		cmocka_unit_test(test_fake_late_txt),
		cmocka_unit_test(test_no_lists),
		cmocka_unit_test(test_bad_resolver),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, rbl_start, rbl_stop);
}
