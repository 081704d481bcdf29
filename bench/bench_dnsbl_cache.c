/* bench_dnsbl_cache: what a DNSBL cache hit costs a session (issue 5: under 5 us).
 *
 * With DNSBLs configured, a policy session starts dnsbl_lookup() for its client when it opens
 * (src/policy/policy.c). For a client seen recently every list is answered from the worker's
 * cache: the query is complete on return and its done callback runs from a 0 s timer on the
 * next loop turn. This program times that whole path with the code mxgate runs (src/dns over
 * c-ares and libevent): dnsbl_lookup + the loop turn that runs done + dnsbl_query_free, with
 * 1 list and with 3 lists, over a warm cache of --clients addresses visited in random order
 * (so the hash chains and entries are not all in the CPU cache). For reference it also times
 * the pieces: the loop turn alone (evtimer_new, a 0 s evtimer_add, one event_base_loop,
 * event_free: the deferred completion the path contains) and dnsbl_cache_get alone.
 *
 * Times are this thread's CPU time (CLOCK_THREAD_CPUTIME_ID: user + system, the epoll_wait of
 * the loop turn included) per operation, so that time spent descheduled on a shared machine
 * does not count; caches shared with other processes still do.
 *
 * The answers come from a real DNS server (bench/run passes the shared harness's rbldnsd,
 * zone bl.test); the configs must set dnsbl_cache_min_ttl high enough that nothing expires
 * during the run. Every timed lookup is checked afterwards through the dnsbl counters: all
 * answers must have been cache hits, else the run fails (exit 1).
 *
 *   bench_dnsbl_cache --config1 FILE --config3 FILE [--clients N] [--lookups N] [--runs N]
 *
 * Output: human lines, then one machine line per measurement:
 *   RESULT name ns_per_op_median ns_per_op_min ns_per_op_max
 * Built by bench/run (scenario dnsbl-cache) against build-bench's static libraries; never a
 * test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "bench_util.h"
#include "config/config.h"
#include "dns/dnsbl.h"
#include "dns/dnsbl_cache.h"
#include "util/addr.h"
#include "util/log.h"

#define RUNS_MAX 64
#define WARM_WINDOW 32 /* lookups in flight while warming the cache */
#define WARM_PASSES 5

struct opts {
	const char *config[2]; /* 1 list, 3 lists */
	size_t clients, lookups;
	int runs;
};

struct bench {
	struct event_base *base;
	struct dnsbl *d;
	struct ip_addr *ips;
	size_t *order;
	size_t n;
	size_t completed;
};

/* CPU time of this thread (user + system), not wall time: the machine is shared, and time
 * spent descheduled is not what a lookup costs. */
static double now_ns(void)
{
	return bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, double *v, int n, const char *what)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	printf("%-22s median %8.1f ns  min %8.1f  max %8.1f   %s\n", name, v[n / 2], v[0],
	       v[n - 1], what);
	printf("RESULT %s %.1f %.1f %.1f\n", name, v[n / 2], v[0], v[n - 1]);
}

/* Client addresses: 10.x.y.z, none of them in bl.test, so every answer is "not listed"
 * (NXDOMAIN), the common case for a client that comes back. */
static void make_clients(struct bench *b, size_t n, size_t lookups)
{
	char s[32];

	b->n = n;
	b->ips = calloc(n, sizeof(*b->ips));
	b->order = calloc(lookups, sizeof(*b->order));
	if (!b->ips || !b->order)
		abort();
	for (size_t i = 0; i < n; i++) {
		snprintf(s, sizeof(s), "10.%zu.%zu.%zu", (i >> 16) & 255, (i >> 8) & 255,
			 1 + (i & 127));
		if (ip_parse(s, &b->ips[i]) != 0)
			abort();
	}
	for (size_t i = 0; i < lookups; i++)
		b->order[i] = bench_next32() % n;
}

static void on_done(void *arg, struct dnsbl_query *q)
{
	(void)q;
	(*(size_t *)arg)++;
}

static void on_probes(void *arg)
{
	*(int *)arg = 1;
}

/* Health probes done and every list healthy (else lookups would be skipped, not cached). */
static int wait_healthy(struct bench *b, size_t nlists)
{
	int probed = 0;
	char why[256];

	dnsbl_probe_all(b->d, on_probes, &probed);
	while (!probed)
		event_base_loop(b->base, EVLOOP_ONCE);
	for (size_t i = 0; i < nlists; i++)
		if (!dnsbl_zone_healthy(b->d, i, why, sizeof(why))) {
			fprintf(stderr, "list %zu unhealthy: %s\n", i, why);
			return -1;
		}
	return 0;
}

/* One lookup per client through the resolver, WARM_WINDOW at a time, until every answer is a
 * real one (listed or not listed: what gets cached); a lost UDP answer (a timeout) is asked
 * again, at most WARM_PASSES times. */
static int warm(struct bench *b)
{
	struct dnsbl_query **qs = calloc(b->n, sizeof(*qs));
	size_t *todo = calloc(b->n, sizeof(*todo)), ntodo = b->n;

	if (!qs || !todo)
		abort();
	for (size_t i = 0; i < b->n; i++)
		todo[i] = i;
	for (int pass = 0; ntodo && pass < WARM_PASSES; pass++) {
		size_t started = 0, done = 0, bad = 0;
		while (done < ntodo) {
			while (started < ntodo && started - done < WARM_WINDOW) {
				qs[started] = dnsbl_lookup(b->d, &b->ips[todo[started]], on_done, &done);
				started++;
			}
			event_base_loop(b->base, EVLOOP_ONCE);
		}
		for (size_t i = 0; i < ntodo; i++) {
			size_t na, k;
			const struct dnsbl_answer *a = dnsbl_query_answers(qs[i], &na);
			for (k = 0; k < na; k++)
				if (a[k].state != DNSBL_NOT_LISTED && a[k].state != DNSBL_LISTED)
					break;
			if (k < na) {
				if (pass == WARM_PASSES - 1 && bad < 3)
					fprintf(stderr, "warm-up: client %zu list %zu: %s %s\n", todo[i], k,
						dnsbl_state_name(a[k].state), a[k].detail);
				todo[bad++] = todo[i];
			}
			dnsbl_query_free(&qs[i]);
		}
		ntodo = bad;
	}
	free(qs);
	free(todo);
	return ntodo ? -1 : 0;
}

/* The timed path: lookup (all answers cached), the loop turn that runs done, free. */
static double run_lookups(struct bench *b, size_t lookups)
{
	size_t fired = 0;
	double t0 = now_ns();

	for (size_t i = 0; i < lookups; i++) {
		struct dnsbl_query *q = dnsbl_lookup(b->d, &b->ips[b->order[i]], on_done, &fired);
		while (fired <= i)
			event_base_loop(b->base, EVLOOP_ONCE);
		dnsbl_query_free(&q);
	}
	return (now_ns() - t0) / (double)lookups;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(*(size_t *)arg)++;
}

/* The deferred completion alone: what the path does besides the DNSBL work. */
static double run_loop_turns(struct bench *b, size_t n)
{
	static const struct timeval zero = { 0, 0 };
	size_t fired = 0;
	double t0 = now_ns();

	for (size_t i = 0; i < n; i++) {
		struct event *ev = evtimer_new(b->base, on_tick, &fired);
		evtimer_add(ev, &zero);
		while (fired <= i)
			event_base_loop(b->base, EVLOOP_ONCE);
		event_free(ev);
	}
	return (now_ns() - t0) / (double)n;
}

/* dnsbl_cache_get alone, on a private cache holding the same kind of entries. */
static double run_cache_get(struct bench *b, struct dnsbl_cache *c, size_t n, unsigned nlists)
{
	struct dnsbl_answer a;
	size_t hits = 0;
	double t0 = now_ns();

	for (size_t i = 0; i < n; i++)
		hits += (size_t)dnsbl_cache_get(c, (unsigned)(i % nlists), &b->ips[b->order[i]],
						1000, &a);
	double per = (now_ns() - t0) / (double)n;
	if (hits != n) {
		fprintf(stderr, "cache_get: %zu hits of %zu\n", hits, n);
		exit(1);
	}
	return per;
}

static int bench_config(const struct opts *o, int which, struct bench *b, double *res,
			double *turns)
{
	static struct config cfg;
	char err[CONFIG_ERRORS_MAX];
	struct dnsbl_stats s0, s1;

	if (config_load(o->config[which], &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", o->config[which], err);
		return -1;
	}
	b->base = event_base_new();
	b->d = b->base ? dnsbl_new(b->base, &cfg, err, sizeof(err)) : NULL;
	if (!b->d) {
		fprintf(stderr, "dnsbl_new: %s\n", err);
		return -1;
	}
	if (wait_healthy(b, cfg.ndnsbl) != 0 || warm(b) != 0)
		return -1;
	dnsbl_get_stats(b->d, &s0);
	run_lookups(b, o->lookups / 10); /* warm the code paths and the allocator */
	for (int r = 0; r < o->runs; r++) {
		res[r] = run_lookups(b, o->lookups);
		if (turns)
			turns[r] = run_loop_turns(b, o->lookups);
	}
	dnsbl_get_stats(b->d, &s1);
	uint64_t want = (uint64_t)cfg.ndnsbl * (o->lookups / 10 + (uint64_t)o->runs * o->lookups);
	if (s1.cache_hits - s0.cache_hits != want || s1.lookups - s0.lookups != want) {
		fprintf(stderr, "%s: %llu cache hits and %llu lookups, expected %llu of each\n",
			o->config[which], (unsigned long long)(s1.cache_hits - s0.cache_hits),
			(unsigned long long)(s1.lookups - s0.lookups), (unsigned long long)want);
		return -1;
	}
	printf("%u list(s) (%s): %zu clients warm, %llu cached answers in the timed loops, all hits\n",
	       cfg.ndnsbl, o->config[which], b->n, (unsigned long long)want);
	dnsbl_free(&b->d);
	event_base_free(b->base);
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ { NULL, NULL }, 10000, 200000, 7 };
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--config1"))
			o->config[0] = argv[i + 1];
		else if (!strcmp(argv[i], "--config3"))
			o->config[1] = argv[i + 1];
		else if (!strcmp(argv[i], "--clients"))
			o->clients = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--lookups"))
			o->lookups = strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--runs"))
			o->runs = atoi(argv[i + 1]);
		else
			return -1;
	}
	if (!o->config[0] || !o->config[1] || o->clients < 1 || o->clients > 1000000 ||
	    o->lookups < 1000 || o->lookups > 100000000 || o->runs < 1 || o->runs > RUNS_MAX)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct bench b[2] = { { 0 }, { 0 } };
	double r1[RUNS_MAX], r3[RUNS_MAX], turns[RUNS_MAX], get[RUNS_MAX];

	if (parse_args(argc, argv, &o) != 0) {
		fprintf(stderr, "usage: %s --config1 FILE --config3 FILE [--clients N (1..1e6)] "
				"[--lookups N (1000..1e8)] [--runs N (1..%d)]\n", argv[0], RUNS_MAX);
		return 2;
	}
	log_init("bench_dnsbl_cache", 0, LOG_LVL_WARN);
	make_clients(&b[0], o.clients, o.lookups);
	b[1] = b[0];
	if (bench_config(&o, 0, &b[0], r1, turns) != 0 || bench_config(&o, 1, &b[1], r3, NULL) != 0)
		return 1;

	/* dnsbl_cache_get alone, 3 lists' worth of entries */
	struct dnsbl_cache *c = dnsbl_cache_new(100000, 42);
	struct dnsbl_answer a = { 0 };
	a.state = DNSBL_NOT_LISTED;
	for (size_t i = 0; i < b[0].n; i++)
		for (unsigned l = 0; l < 3; l++)
			dnsbl_cache_put(c, l, &b[0].ips[i], 0, 1u << 30, &a);
	for (int r = 0; r < o.runs; r++)
		get[r] = run_cache_get(&b[0], c, o.lookups, 3);
	dnsbl_cache_free(&c);

	printf("%zu lookups per run, %d runs; CPU ns per operation:\n", o.lookups, o.runs);
	report("cached_lookup_1list", r1, o.runs, "dnsbl_lookup + loop turn to done + query_free");
	report("cached_lookup_3lists", r3, o.runs, "the same with 3 lists");
	report("loop_turn_only", turns, o.runs, "evtimer_new + 0 s add + event_base_loop + event_free");
	report("cache_get_only", get, o.runs, "dnsbl_cache_get (one list's answer)");
	free(b[0].ips);
	free(b[0].order);
	return 0;
}
