/* bench_util: the helpers every benchmark program here needs. Header only: each program is
 * its own executable, and bench/run compiles bench_dnsbl_cache.c on its own. */
#ifndef MXG_BENCH_UTIL_H
#define MXG_BENCH_UTIL_H

#include <stdint.h>
#include <time.h>

/* A fixed-seed xorshift: every run draws the same addresses and orders, so runs compare. */
static inline uint32_t bench_next32(void)
{
	static uint64_t rng = 0x9e3779b97f4a7c15ULL;

	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

/* clock_gettime(id) in nanoseconds. */
static inline double bench_clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

#endif
