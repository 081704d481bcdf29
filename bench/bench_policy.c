/* bench_policy: the policy engine's cost without DNS, on the scale issue 5 names: 100,000
 * Allow/Block entries over 1,000 tenants. Prints, each as median, min and max of the runs:
 *   - the snapshot build (builder + model_builder_finish: the CPU part of a reload) and the
 *     free of a snapshot (the last model_unref, on the worker's loop in mxgate),
 *   - store_load() of the same policy from an SQLite store filled through the store API
 *     (what a reload really costs: the read transaction and the build),
 *   - per decision: engine_decide() (mean per run; median / p99 of single timed calls), and
 *     the longest-prefix lookup alone,
 * with wall and thread CPU time (the machine is shared) and minor page faults. Built with the
 * project (release build: see bench/README.md); never a test.
 *
 *   bench_policy [--runs N] [--decisions N] [--no-store] [--store-dir DIR]
 *
 * --store-dir keeps the filled store in DIR and reuses it (filling takes 12-35 s).
 * --decisions 200000 --runs 1 --no-store is the size for valgrind --tool=callgrind. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "policy/engine.h"
#include "policy/model.h"
#include "store/store.h"

#define TENANTS 1000
#define PER_TENANT 100
#define ENTRIES (TENANTS * PER_TENANT)
#define SAMPLES 100000 /* client/recipient pairs, cycled through */
#define RUNS_MAX 64

struct opts {
	int runs;
	size_t decisions;
	int store;
	const char *store_dir;
};

/* One generated IP list entry (network already masked, as the store requires). */
struct spec {
	uint32_t tenant; /* 1..TENANTS */
	enum ip_list list;
	struct cidr net;
};

/* One decision's input: a client in the recipient tenant's address space. */
struct sample {
	struct ip_addr ip;
	uint32_t tenant; /* index 0..TENANTS-1 */
	char domain[32];
};

static double now_ns(void)
{
	return bench_clock_ns(CLOCK_MONOTONIC);
}

/* The thread's CPU time: what the code cost, without the time the (shared, 2-core) machine
 * gave to others meanwhile. Not for single calls: it is a system call. */
static double cpu_ns(void)
{
	return bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static void v4(struct ip_addr *ip, uint32_t a)
{
	memset(ip, 0, sizeof(*ip));
	ip->b[10] = ip->b[11] = 0xff;
	ip->b[12] = (uint8_t)(a >> 24);
	ip->b[13] = (uint8_t)(a >> 16);
	ip->b[14] = (uint8_t)(a >> 8);
	ip->b[15] = (uint8_t)a;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Entries of tenant t: IPv4 /24../32 inside 10.(t & 255).0.0/16, three in four Allow, so
 * that a client of the tenant's space matches an entry a few times in a hundred (the common
 * case is a miss: the walk over every prefix length). Same sequence as the issue 3 bench. */
static struct spec *gen_specs(void)
{
	struct spec *sp = calloc(ENTRIES, sizeof(*sp));

	if (!sp)
		abort();
	for (uint32_t t = 0; t < TENANTS; t++) {
		for (uint32_t k = 0; k < PER_TENANT; k++) {
			struct spec *s = &sp[t * PER_TENANT + k];
			unsigned len = 24 + bench_next32() % 9; /* /24 .. /32 */
			uint32_t a = (10u << 24) | ((t & 0xff) << 16) | (bench_next32() & 0xffff);
			a &= len == 32 ? UINT32_MAX : ~(UINT32_MAX >> len);
			v4(&s->net.net, a);
			s->net.prefix = (uint8_t)(96 + len);
			s->tenant = t + 1;
			s->list = bench_next32() % 4 ? IP_LIST_ALLOW : IP_LIST_BLOCK;
		}
	}
	return sp;
}

static void gen_samples(struct sample *sa, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t t = bench_next32() % TENANTS;
		v4(&sa[i].ip, (10u << 24) | ((t & 0xff) << 16) | (bench_next32() & 0xffff));
		sa[i].tenant = t;
		snprintf(sa[i].domain, sizeof(sa[i].domain), "t%u.example", t);
	}
}

static struct model_snapshot *build(const struct spec *sp)
{
	struct model_builder *b = model_builder_new();
	char name[32], domain[64];

	for (uint32_t t = 0; t < TENANTS; t++) {
		snprintf(name, sizeof(name), "tenant%04u", t);
		snprintf(domain, sizeof(domain), "t%u.example", t);
		model_add_tenant(b, t + 1, name, "192.0.2.1:25");
		model_add_domain(b, t + 1, domain);
	}
	for (size_t i = 0; i < ENTRIES; i++)
		model_add_ip_entry(b, sp[i].tenant, sp[i].list, &sp[i].net, "");
	return model_builder_finish(&b, 1);
}

/* ---- the store ------------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Fills a new store in dir through the store API, one change per row as `mxgate allow add`
 * makes them. Returns the store, or NULL (with a message on stderr). */
static struct store *store_fill(const char *dir, const struct spec *sp, size_t *stored_r,
				double *fill_s_r)
{
	char err[STORE_ERR_MAX], name[32], domain[64], cidr[ADDR_STR_MAX + 8];
	struct store *st = store_open(dir, STORE_READ_WRITE, err, sizeof(err));
	double t0 = now_ns();

	*stored_r = 0;
	if (!st) {
		fprintf(stderr, "bench_policy: store: %s\n", err);
		return NULL;
	}
	for (uint32_t t = 0; t < TENANTS; t++) {
		snprintf(name, sizeof(name), "tenant%04u", t);
		snprintf(domain, sizeof(domain), "t%u.example", t);
		if (store_tenant_add(st, name, "192.0.2.1:25", err, sizeof(err)) != STORE_OK ||
		    store_domain_add(st, name, domain, err, sizeof(err)) != STORE_OK) {
			fprintf(stderr, "bench_policy: store: %s\n", err);
			store_close(&st);
			return NULL;
		}
	}
	for (size_t i = 0; i < ENTRIES; i++) {
		snprintf(name, sizeof(name), "tenant%04u", sp[i].tenant - 1);
		cidr_format(&sp[i].net, cidr, sizeof(cidr));
		int rc = store_ip_add(st, name, sp[i].list, cidr, "", err, sizeof(err));
		if (rc == STORE_OK)
			(*stored_r)++;
		else if (rc != STORE_REFUSED) { /* refused: a duplicate of the generator */
			fprintf(stderr, "bench_policy: store: %s\n", err);
			store_close(&st);
			return NULL;
		}
	}
	*fill_s_r = (now_ns() - t0) / 1e9;
	return st;
}

/* Minor page faults of this thread so far: a build touches a dozen megabytes of fresh memory,
 * and on this (virtual) machine faulting it in is a good part of the cost. */
static double minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return (double)ru.ru_minflt;
}

/* Times runs store_load() calls (wall and CPU ms); -1 when the store is unusable. With
 * --store-dir the store there is reused (filled first when there is none) and kept. */
static int bench_store(const struct opts *o, const struct spec *sp, double ms[RUNS_MAX],
		       double cpu_ms[RUNS_MAX], double faults[RUNS_MAX], size_t *stored_r,
		       size_t *loaded_r, double *fill_s_r)
{
	char dir[256], path[300], err[STORE_ERR_MAX];
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	struct store *st;

	if (o->store_dir) {
		snprintf(dir, sizeof(dir), "%s", o->store_dir);
		snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
		if (access(path, F_OK) != 0) {
			st = store_fill(dir, sp, stored_r, fill_s_r);
		} else if (!(st = store_open(dir, STORE_READ_WRITE, err, sizeof(err)))) {
			fprintf(stderr, "bench_policy: store %s: %s\n", dir, err);
			return -1;
		}
	} else {
		snprintf(dir, sizeof(dir), "%s/bench_policy.XXXXXX", base);
		if (!mkdtemp(dir)) {
			perror("bench_policy: mkdtemp");
			return -1;
		}
		st = store_fill(dir, sp, stored_r, fill_s_r);
	}
	for (int r = 0; st && r < o->runs; r++) {
		double t0 = now_ns(), c0 = cpu_ns(), f0 = minflt();
		struct model_snapshot *s = store_load(st, err, sizeof(err));
		ms[r] = (now_ns() - t0) / 1e6;
		cpu_ms[r] = (cpu_ns() - c0) / 1e6;
		faults[r] = minflt() - f0;
		if (!s) {
			fprintf(stderr, "bench_policy: store_load: %s\n", err);
			store_close(&st);
			break;
		}
		*loaded_r = 0;
		for (size_t i = 0; i < model_ntenants(s); i++)
			*loaded_r += model_tenant_at(s, i)->nallow + model_tenant_at(s, i)->nblock;
		model_unref(&s);
	}
	int ok = st != NULL;
	store_close(&st);
	if (!o->store_dir)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return ok ? 0 : -1;
}

/* ---- decisions ------------------------------------------------------------------------ */

static unsigned decide(const struct model_snapshot *s, const struct sample *sa)
{
	struct engine_client c = { .ip = sa->ip, .ip_str = "10.0.0.1" };
	struct engine_request rq = { .snap = s, .client = &c, .sender_domain = "x.example",
				     .rcpt = "bob@x", .rcpt_domain = sa->domain,
				     .dnsbl_complete = 1, .dnsbl_threshold = 1 };
	struct engine_verdict v;

	engine_decide(&rq, &v, NULL);
	return v.action == ENGINE_ACCEPT;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_policy [--runs N] [--decisions N] [--no-store] "
			"[--store-dir DIR]\n");
	exit(2);
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .runs = 5, .decisions = 1000000, .store = 1 };
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			o->runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--decisions") == 0 && i + 1 < argc)
			o->decisions = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--no-store") == 0)
			o->store = 0;
		else if (strcmp(argv[i], "--store-dir") == 0 && i + 1 < argc)
			o->store_dir = argv[++i];
		else
			usage();
	}
	if (o->runs < 1 || o->runs > RUNS_MAX || o->decisions < 1)
		usage();
}

/* Median, min and max of n sorted values. */
static void row(const char *what, const char *unit, const double *v, int n)
{
	printf("| %s | %s | %.1f | %.1f | %.1f |\n", what, unit, v[n / 2], v[0], v[n - 1]);
}

static void sort(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
}

int main(int argc, char **argv)
{
	struct opts o;
	double build_ms[RUNS_MAX] = { 0 }, build_cpu[RUNS_MAX] = { 0 }, free_ms[RUNS_MAX] = { 0 };
	double build_flt[RUNS_MAX] = { 0 }, load_ms[RUNS_MAX] = { 0 }, load_cpu[RUNS_MAX] = { 0 };
	double load_flt[RUNS_MAX] = { 0 }, engine[RUNS_MAX] = { 0 }, engine_cpu[RUNS_MAX] = { 0 };
	double lookup[RUNS_MAX] = { 0 }, lookup_cpu[RUNS_MAX] = { 0 };
	static struct sample sa[SAMPLES];
	const struct model_tenant *tenant[TENANTS];
	unsigned accepted = 0;
	volatile uintptr_t sink = 0;
	size_t stored = 0, loaded = 0;
	double fill_s = 0;
	int have_store;

	parse_opts(argc, argv, &o);
	struct spec *sp = gen_specs();
	gen_samples(sa, SAMPLES);
	struct model_snapshot *s = NULL;
	for (int r = 0; r <= o.runs; r++) {
		double t0 = now_ns();
		model_unref(&s); /* what the worker's loop pays when the last session lets go */
		if (r > 0)
			free_ms[r - 1] = (now_ns() - t0) / 1e6;
		if (r == o.runs)
			break;
		t0 = now_ns();
		double c0 = cpu_ns(), f0 = minflt();
		s = build(sp);
		build_ms[r] = (now_ns() - t0) / 1e6;
		build_cpu[r] = (cpu_ns() - c0) / 1e6;
		build_flt[r] = minflt() - f0;
	}
	s = build(sp);
	for (uint32_t t = 0; t < TENANTS; t++)
		tenant[t] = model_tenant_at(s, t); /* ids 1..TENANTS: index t */
	have_store = o.store &&
		     bench_store(&o, sp, load_ms, load_cpu, load_flt, &stored, &loaded, &fill_s) == 0;

	for (int r = 0; r < o.runs; r++) {
		double t0 = now_ns(), c0 = cpu_ns();
		for (size_t i = 0; i < o.decisions; i++)
			accepted += decide(s, &sa[i % SAMPLES]);
		engine[r] = (now_ns() - t0) / (double)o.decisions;
		engine_cpu[r] = (cpu_ns() - c0) / (double)o.decisions;
		t0 = now_ns();
		c0 = cpu_ns();
		for (size_t i = 0; i < o.decisions; i++) {
			const struct sample *x = &sa[i % SAMPLES];
			sink += (uintptr_t)model_ip_lookup(s, tenant[x->tenant], &x->ip);
		}
		lookup[r] = (now_ns() - t0) / (double)o.decisions;
		lookup_cpu[r] = (cpu_ns() - c0) / (double)o.decisions;
	}

	/* single calls, each timed: the distribution, timer cost included (printed) */
	size_t ncalls = o.decisions < SAMPLES ? o.decisions : SAMPLES;
	double *lat = calloc(ncalls, sizeof(*lat)), timer[101];
	if (!lat)
		abort();
	for (int i = 0; i < 101; i++) {
		double t0 = now_ns();
		timer[i] = now_ns() - t0;
	}
	for (size_t i = 0; i < ncalls; i++) {
		double t0 = now_ns();
		accepted += decide(s, &sa[(i * 7919) % SAMPLES]);
		lat[i] = now_ns() - t0;
	}
	qsort(lat, ncalls, sizeof(double), cmp_double);
	sort(timer, 101);
	sort(build_ms, o.runs);
	sort(build_cpu, o.runs);
	sort(free_ms, o.runs);
	sort(build_flt, o.runs);
	sort(load_flt, o.runs);
	sort(load_ms, o.runs);
	sort(load_cpu, o.runs);
	sort(engine, o.runs);
	sort(engine_cpu, o.runs);
	sort(lookup, o.runs);
	sort(lookup_cpu, o.runs);

	printf("| scenario | metric | median | min | max |\n|---|---|---:|---:|---:|\n");
	row("build snapshot (builder + finish), 100000 entries / 1000 tenants", "ms", build_ms,
	    o.runs);
	row("build snapshot", "CPU ms", build_cpu, o.runs);
	row("build snapshot", "page faults", build_flt, o.runs);
	row("free a snapshot (last model_unref, on the worker's loop)", "ms", free_ms, o.runs);
	if (have_store) {
		row("store_load (SQLite read + build), same policy", "ms", load_ms, o.runs);
		row("store_load", "CPU ms", load_cpu, o.runs);
		row("store_load", "page faults", load_flt, o.runs);
	}
	row("engine_decide, no DNS, mean per run", "ns/decision", engine, o.runs);
	row("engine_decide, no DNS, mean per run", "CPU ns/decision", engine_cpu, o.runs);
	printf("| engine_decide, single timed calls (%zu) | ns, median / p99 / max | %.0f | %.0f "
	       "| %.0f |\n", ncalls, lat[ncalls / 2], lat[ncalls * 99 / 100], lat[ncalls - 1]);
	printf("| engine_decide | decisions/s (one core) | %.0f | | |\n", 1e9 / engine[o.runs / 2]);
	row("longest-prefix lookup alone (the client's tenant)", "ns/lookup", lookup, o.runs);
	row("longest-prefix lookup alone", "CPU ns/lookup", lookup_cpu, o.runs);
	fprintf(stderr, "(runs %d x %zu decisions; timer overhead %.0f ns per timed call; accepted "
		"%u; checksum %lu)\n", o.runs, o.decisions, timer[50], accepted, (unsigned long)sink);
	if (have_store && stored)
		fprintf(stderr, "(store: %zu entries stored through store_ip_add in %.1f s, "
			"generator duplicates refused: %zu)\n", stored, fill_s,
			(size_t)ENTRIES - stored);
	if (have_store)
		fprintf(stderr, "(store_load: %zu entries in the snapshot)\n", loaded);
	free(lat);
	free(sp);
	model_unref(&s);
	return 0;
}
