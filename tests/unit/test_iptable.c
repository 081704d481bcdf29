/* iptable: per-client counts shared between processes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "event/iptable.h"

static struct ip_addr ip(const char *s)
{
	struct ip_addr a;
	assert_int_equal(ip_parse(s, &a), 0);
	return a;
}

static void test_sessions_per_client_across_columns(void **state)
{
	struct iptable *t = iptable_create(100, 4);
	struct iptable_count n;
	struct ip_addr a = ip("192.0.2.1"), b = ip("192.0.2.2");
	int h[3];

	(void)state;
	assert_non_null(t);
	h[0] = iptable_connect(t, 0, &a, 1000, &n);
	assert_int_equal(n.sessions, 1);
	assert_true(n.tracked);
	h[1] = iptable_connect(t, 1, &a, 1000, &n);
	assert_int_equal(n.sessions, 2);
	h[2] = iptable_connect(t, 1, &b, 1000, &n);
	assert_int_equal(n.sessions, 1); /* another client has its own count */
	iptable_disconnect(t, 0, h[0]);
	iptable_connect(t, 2, &a, 1000, &n);
	assert_int_equal(n.sessions, 2); /* h[1] and the new one */
	/* the process of column 1 died: its sessions (one of a, one of b) no longer count */
	iptable_forget_column(t, 1);
	iptable_connect(t, 0, &a, 1000, &n);
	assert_int_equal(n.sessions, 2);
	iptable_connect(t, 0, &b, 1000, &n);
	assert_int_equal(n.sessions, 1);
	/* a disconnect after the forget never goes below zero */
	iptable_disconnect(t, 1, h[2]);
	iptable_disconnect(t, 1, h[2]);
	iptable_connect(t, 3, &b, 1000, &n);
	assert_int_equal(n.sessions, 2);
	iptable_destroy(&t);
	assert_null(t);
}

static void test_connections_per_minute(void **state)
{
	struct iptable *t = iptable_create(100, 1);
	struct iptable_count n;
	struct ip_addr a = ip("198.51.100.7");
	time_t t0 = 6000; /* the start of a window (6000 / 60 = 100) */

	(void)state;
	for (int i = 1; i <= 30; i++) {
		int h = iptable_connect(t, 0, &a, t0 + 10, &n);
		iptable_disconnect(t, 0, h);
		assert_int_equal(n.per_minute, i);
		assert_int_equal(n.sessions, 1);
	}
	/* 30 s into the next window, half of the previous window still counts: 15 + 1 */
	iptable_connect(t, 0, &a, t0 + 90, &n);
	assert_int_equal(n.per_minute, 16);
	/* two windows later everything has aged out */
	iptable_connect(t, 0, &a, t0 + 200, &n);
	assert_int_equal(n.per_minute, 1);
	iptable_destroy(&t);
}

/* A full bucket evicts the least recently seen client without sessions, never one with. */
static void test_eviction_keeps_live_clients(void **state)
{
	struct iptable *t = iptable_create(1, 1); /* the minimum: 256 buckets of 8 */
	struct iptable_count n;
	char text[64];
	int live = 0, untracked = 0;

	(void)state;
	/* 256 * 8 live clients fill every slot, more cannot all be tracked */
	for (int i = 0; i < 4096; i++) {
		struct ip_addr a;
		snprintf(text, sizeof(text), "10.%d.%d.1", i / 256, i % 256);
		a = ip(text);
		if (iptable_connect(t, 0, &a, 1000, &n) == IPTABLE_UNTRACKED) {
			assert_false(n.tracked);
			assert_int_equal(n.sessions, 0);
			untracked++;
		} else {
			live++;
		}
	}
	assert_int_equal(live + untracked, 4096);
	assert_true(live <= 256 * 8);
	assert_true(untracked >= 4096 - 256 * 8);
	/* every tracked client still has its one session */
	int still = 0;
	for (int i = 0; i < 4096; i++) {
		struct ip_addr a;
		snprintf(text, sizeof(text), "10.%d.%d.1", i / 256, i % 256);
		a = ip(text);
		int h = iptable_connect(t, 0, &a, 1001, &n);
		if (h != IPTABLE_UNTRACKED && n.sessions == 2)
			still++;
	}
	assert_int_equal(still, live);
	iptable_destroy(&t);

	/* clients without sessions make room for new ones */
	t = iptable_create(1, 1);
	for (int i = 0; i < 4096; i++) {
		struct ip_addr a;
		snprintf(text, sizeof(text), "10.%d.%d.2", i / 256, i % 256);
		a = ip(text);
		int h = iptable_connect(t, 0, &a, 1000 + i, &n);
		assert_int_not_equal(h, IPTABLE_UNTRACKED);
		iptable_disconnect(t, 0, h);
	}
	iptable_destroy(&t);
}

static void test_ipv6_key(void **state)
{
	struct ip_addr k1, k2, k3;
	struct ip_addr a = ip("2001:db8:1:2::1"), b = ip("2001:db8:1:2:ffff::9"),
		       c = ip("2001:db8:1:3::1"), v4 = ip("192.0.2.200");

	(void)state;
	iptable_key(&a, 64, &k1);
	iptable_key(&b, 64, &k2);
	iptable_key(&c, 64, &k3);
	assert_memory_equal(&k1, &k2, sizeof(k1));
	assert_memory_not_equal(&k1, &k3, sizeof(k1));
	iptable_key(&a, 128, &k1);
	assert_memory_equal(&k1, &a, sizeof(a));
	iptable_key(&a, 60, &k1); /* not on a byte boundary */
	iptable_key(&c, 60, &k3);
	assert_memory_equal(&k1, &k3, sizeof(k1));
	iptable_key(&v4, 64, &k1); /* IPv4 is counted per address */
	assert_memory_equal(&k1, &v4, sizeof(v4));
}

/* The table is shared memory: a child's counts are the parent's. */
static void test_shared_between_processes(void **state)
{
	struct iptable *t = iptable_create(100, 2);
	struct iptable_count n;
	struct ip_addr a = ip("203.0.113.9");
	int status;

	(void)state;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 5; i++)
			iptable_connect(t, 1, &a, 1000, &n);
		_exit(n.sessions == 5 ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	iptable_connect(t, 0, &a, 1000, &n);
	assert_int_equal(n.sessions, 6);
	iptable_forget_column(t, 1);
	iptable_connect(t, 0, &a, 1000, &n);
	assert_int_equal(n.sessions, 2);
	iptable_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sessions_per_client_across_columns),
		cmocka_unit_test(test_connections_per_minute),
		cmocka_unit_test(test_eviction_keeps_live_clients),
		cmocka_unit_test(test_ipv6_key),
		cmocka_unit_test(test_shared_between_processes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
