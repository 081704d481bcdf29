/* Unit tests for probe_cache: the answers of recipient probes, per worker. Keys (tenant, route,
 * address with ASCII case folded), which answers are kept and for how long, replacement, and
 * the bound on entries (expired ones go first, else the oldest). The clock is the test's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/probe_cache.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define T0 1000000u /* any start: the cache only compares times */

static struct engine_probe answer(enum engine_probe_state state, const char *detail)
{
	struct engine_probe a;

	memset(&a, 0, sizeof(a));
	a.state = state;
	snprintf(a.detail, sizeof(a.detail), "%s", detail);
	return a;
}

static const char *key(const char *tenant, const char *route, const char *addr)
{
	static char buf[4][PROBE_CACHE_KEY_MAX + 1];
	static unsigned next;
	char *k = buf[next++ % 4];

	assert_int_equal(probe_cache_key(tenant, route, addr, k, PROBE_CACHE_KEY_MAX + 1), 0);
	return k;
}

static void test_keys(void **state)
{
	char k[PROBE_CACHE_KEY_MAX + 1];

	(void)state;
	/* ASCII case folds in the address only; UTF-8 bytes stay as they are */
	assert_string_equal(key("Acme", "10.0.0.5:25", "Bob.Smith@ACME.example"),
			    "Acme\n10.0.0.5:25\nbob.smith@acme.example");
	assert_string_equal(key("acme", "mx.example:25 tls=required", "J\xc3\x96RG@x.example"),
			    "acme\nmx.example:25 tls=required\nj\xc3\x96rg@x.example");
	/* tenant, route and address are all part of it */
	assert_string_not_equal(key("a", "r:25", "x@y"), key("b", "r:25", "x@y"));
	assert_string_not_equal(key("a", "r:25", "x@y"), key("a", "r:26", "x@y"));
	assert_string_not_equal(key("a", "r:25", "x@y"), key("a", "r:25", "z@y"));
	/* too long: -1 and an empty key */
	assert_int_equal(probe_cache_key("a", "r:25", "x@y", k, 10), -1);
	assert_string_equal(k, "");
	assert_int_equal(probe_cache_key("a", "r:25", "x@y", k, 11), 0);
	assert_string_equal(k, "a\nr:25\nx@y");
}

static void test_get_put(void **state)
{
	struct probe_cache *c = probe_cache_new(100, 42);
	struct engine_probe a = answer(ENGINE_PROBE_ACCEPTED, "250 2.1.5 Ok"), got;
	const char *bob = key("acme", "10.0.0.5:25", "bob@acme.example");

	(void)state;
	assert_int_equal(probe_cache_get(c, bob, T0, &got), 0);
	probe_cache_put(c, bob, T0, &a);
	assert_int_equal(probe_cache_count(c), 1);
	memset(&got, 0, sizeof(got));
	assert_int_equal(probe_cache_get(c, bob, T0 + 1, &got), 1);
	assert_int_equal(got.state, ENGINE_PROBE_ACCEPTED);
	assert_int_equal(got.cached, 1);
	assert_string_equal(got.detail, "250 2.1.5 Ok");
	/* the same mailbox in another case is the same entry */
	assert_int_equal(probe_cache_get(c, key("acme", "10.0.0.5:25", "BOB@Acme.Example"), T0,
					 &got), 1);
	/* replacing: the latest answer wins, still one entry */
	struct engine_probe r = answer(ENGINE_PROBE_REJECTED, "550 5.1.1 unknown");
	probe_cache_put(c, bob, T0 + 5, &r);
	assert_int_equal(probe_cache_count(c), 1);
	assert_int_equal(probe_cache_get(c, bob, T0 + 6, &got), 1);
	assert_int_equal(got.state, ENGINE_PROBE_REJECTED);
	assert_string_equal(got.detail, "550 5.1.1 unknown");
	probe_cache_free(&c);
	assert_null(c);
	probe_cache_free(&c); /* NULL is fine */
}

static void test_lifetimes(void **state)
{
	struct probe_cache *c = probe_cache_new(100, 7);
	struct engine_probe ok = answer(ENGINE_PROBE_ACCEPTED, "250 ok");
	struct engine_probe no = answer(ENGINE_PROBE_REJECTED, "550 no");
	struct engine_probe failed = answer(ENGINE_PROBE_FAILED, "451 later"), got;
	const char *a = key("t", "r:25", "a@x"), *b = key("t", "r:25", "b@x");
	const char *f = key("t", "r:25", "f@x");

	(void)state;
	/* an accepted address is kept an hour, a refused one ten minutes */
	assert_true(PROBE_CACHE_REFUSED_MS < PROBE_CACHE_ACCEPTED_MS);
	probe_cache_put(c, a, T0, &ok);
	probe_cache_put(c, b, T0, &no);
	assert_int_equal(probe_cache_get(c, b, T0 + PROBE_CACHE_REFUSED_MS - 1, &got), 1);
	assert_int_equal(probe_cache_get(c, b, T0 + PROBE_CACHE_REFUSED_MS, &got), 0);
	assert_int_equal(probe_cache_count(c), 1); /* the expired entry went on the lookup */
	assert_int_equal(probe_cache_get(c, a, T0 + PROBE_CACHE_ACCEPTED_MS - 1, &got), 1);
	assert_int_equal(probe_cache_get(c, a, T0 + PROBE_CACHE_ACCEPTED_MS, &got), 0);
	assert_int_equal(probe_cache_count(c), 0);
	/* a failed probe is never kept, and drops what the key had */
	probe_cache_put(c, f, T0, &failed);
	assert_int_equal(probe_cache_count(c), 0);
	assert_int_equal(probe_cache_get(c, f, T0, &got), 0);
	probe_cache_put(c, f, T0, &ok);
	probe_cache_put(c, f, T0 + 1, &failed);
	assert_int_equal(probe_cache_count(c), 0);
	assert_int_equal(probe_cache_get(c, f, T0 + 2, &got), 0);
	probe_cache_free(&c);
}

static void test_bounded(void **state)
{
	enum { MAX = 50 };
	struct probe_cache *c = probe_cache_new(MAX, 1);
	struct engine_probe ok = answer(ENGINE_PROBE_ACCEPTED, "250 ok");
	struct engine_probe no = answer(ENGINE_PROBE_REJECTED, "550 no"), got;
	char addr[64];

	(void)state;
	for (unsigned i = 0; i < 10 * MAX; i++) {
		snprintf(addr, sizeof(addr), "user%u@x.example", i);
		probe_cache_put(c, key("t", "r:25", addr), T0 + i, &ok);
		assert_true(probe_cache_count(c) <= MAX);
	}
	assert_int_equal(probe_cache_count(c), MAX);
	/* full and nothing expired: the oldest went, the newest are there */
	assert_int_equal(probe_cache_get(c, key("t", "r:25", "user0@x.example"), T0 + 500, &got), 0);
	snprintf(addr, sizeof(addr), "user%u@x.example", 10 * MAX - 1);
	assert_int_equal(probe_cache_get(c, key("t", "r:25", addr), T0 + 500, &got), 1);
	probe_cache_free(&c);

	/* an expired entry among the oldest goes before an older live one */
	c = probe_cache_new(3, 1);
	probe_cache_put(c, key("t", "r:25", "old-live@x"), T0, &ok);
	probe_cache_put(c, key("t", "r:25", "refused@x"), T0, &no);
	probe_cache_put(c, key("t", "r:25", "live@x"), T0, &ok);
	probe_cache_put(c, key("t", "r:25", "new@x"), T0 + PROBE_CACHE_REFUSED_MS, &ok);
	assert_int_equal(probe_cache_count(c), 3);
	assert_int_equal(probe_cache_get(c, key("t", "r:25", "old-live@x"),
					 T0 + PROBE_CACHE_REFUSED_MS, &got), 1);
	assert_int_equal(probe_cache_get(c, key("t", "r:25", "new@x"),
					 T0 + PROBE_CACHE_REFUSED_MS, &got), 1);
	probe_cache_free(&c);

	/* 0 entries is taken as 1 */
	c = probe_cache_new(0, 1);
	probe_cache_put(c, key("t", "r:25", "a@x"), T0, &ok);
	probe_cache_put(c, key("t", "r:25", "b@x"), T0, &ok);
	assert_int_equal(probe_cache_count(c), 1);
	probe_cache_free(&c);
}

/* Many keys in few buckets and back: lookups stay exact across the table's growth. */
static void test_many(void **state)
{
	struct probe_cache *c = probe_cache_new(5000, 99);
	struct engine_probe ok = answer(ENGINE_PROBE_ACCEPTED, "250 ok");
	struct engine_probe no = answer(ENGINE_PROBE_REJECTED, "550 no"), got;
	char addr[64];

	(void)state;
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(addr, sizeof(addr), "u%u@x.example", i);
		probe_cache_put(c, key("t", "r:25", addr), T0, i % 3 ? &ok : &no);
	}
	assert_int_equal(probe_cache_count(c), 3000);
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(addr, sizeof(addr), "U%u@X.EXAMPLE", i);
		if (probe_cache_get(c, key("t", "r:25", addr), T0 + 1, &got) != 1 ||
		    got.state != (i % 3 ? ENGINE_PROBE_ACCEPTED : ENGINE_PROBE_REJECTED))
			fail_msg("entry %u lost or wrong", i);
	}
	assert_int_equal(probe_cache_get(c, key("t", "r:25", "u3000@x.example"), T0 + 1, &got), 0);
	probe_cache_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_get_put),
		cmocka_unit_test(test_lifetimes),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests_name("probe_cache", tests, NULL, NULL);
}
