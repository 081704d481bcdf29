/* bench_policy: the policy engine's cost without DNS, on the scale issue 3 names: 100,000
 * Allow/Block entries over 1,000 tenants. Prints the snapshot build time (the CPU part of a
 * reload), and per decision the median of 5 runs of engine_decide() and of the longest-prefix
 * lookup alone. Built with the project (release build: bench/run --policy); never a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/engine.h"
#include "policy/model.h"

#define TENANTS 1000
#define PER_TENANT 100
#define DECISIONS 1000000
#define RUNS 5

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t next32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static double now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
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

/* Entries of tenant t live in 10.t/16-ish space so probes hit about half the time. */
static struct model_snapshot *build(double *ms_r)
{
	struct model_builder *b = model_builder_new();
	char name[32], domain[64];
	double t0 = now_ns();

	for (uint32_t t = 0; t < TENANTS; t++) {
		snprintf(name, sizeof(name), "tenant%04u", t);
		snprintf(domain, sizeof(domain), "t%u.example", t);
		model_add_tenant(b, t + 1, name, "192.0.2.1:25");
		model_add_domain(b, t + 1, domain);
		for (uint32_t k = 0; k < PER_TENANT; k++) {
			struct cidr c;
			unsigned len = 24 + next32() % 9; /* /24 .. /32 */
			v4(&c.net, (10u << 24) | ((t & 0xff) << 16) | (next32() & 0xffff));
			c.prefix = (uint8_t)(96 + len);
			model_add_ip_entry(b, t + 1, next32() % 4 ? IP_LIST_ALLOW : IP_LIST_BLOCK, &c,
					   "");
		}
	}
	struct model_snapshot *s = model_builder_finish(&b, 1);
	*ms_r = (now_ns() - t0) / 1e6;
	return s;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(void)
{
	double build_ms, engine[RUNS], lookup[RUNS];
	struct model_snapshot *s = build(&build_ms);
	static struct ip_addr ips[DECISIONS / 10];
	static char doms[DECISIONS / 10][32];
	unsigned accepted = 0;
	volatile uintptr_t sink = 0;

	for (size_t i = 0; i < DECISIONS / 10; i++) {
		uint32_t t = next32() % TENANTS;
		v4(&ips[i], (10u << 24) | ((t & 0xff) << 16) | (next32() & 0xffff));
		snprintf(doms[i], sizeof(doms[i]), "t%u.example", t);
	}
	for (int r = 0; r < RUNS; r++) {
		double t0 = now_ns();
		for (size_t i = 0; i < DECISIONS; i++) {
			size_t k = i % (DECISIONS / 10);
			struct engine_client c = { .ip = ips[k], .ip_str = "10.0.0.1" };
			struct engine_request rq = { .snap = s, .client = &c, .sender_domain = "x.example",
						     .rcpt = "bob@x", .rcpt_domain = doms[k],
						     .dnsbl_complete = 1, .dnsbl_threshold = 1 };
			struct engine_verdict v;
			engine_decide(&rq, &v, NULL);
			accepted += v.action == ENGINE_ACCEPT;
		}
		engine[r] = (now_ns() - t0) / DECISIONS;
		const struct model_tenant *t = model_tenant_at(s, 7);
		t0 = now_ns();
		for (size_t i = 0; i < DECISIONS; i++)
			sink += (uintptr_t)model_ip_lookup(s, t, &ips[i % (DECISIONS / 10)]);
		lookup[r] = (now_ns() - t0) / DECISIONS;
	}
	qsort(engine, RUNS, sizeof(double), cmp_double);
	qsort(lookup, RUNS, sizeof(double), cmp_double);
	printf("| scenario | metric | median | min | max |\n|---|---|---:|---:|---:|\n");
	printf("| build snapshot, %d entries / %d tenants | ms | %.1f | | |\n", TENANTS * PER_TENANT,
	       TENANTS, build_ms);
	printf("| engine_decide, no DNS | ns/decision | %.0f | %.0f | %.0f |\n", engine[RUNS / 2],
	       engine[0], engine[RUNS - 1]);
	printf("| engine_decide | decisions/s (one core) | %.0f | | |\n", 1e9 / engine[RUNS / 2]);
	printf("| longest-prefix lookup alone | ns/lookup | %.0f | %.0f | %.0f |\n", lookup[RUNS / 2],
	       lookup[0], lookup[RUNS - 1]);
	fprintf(stderr, "(accepted %u of %d; checksum %lu)\n", accepted, RUNS * DECISIONS,
		(unsigned long)sink);
	model_unref(&s);
	return 0;
}
