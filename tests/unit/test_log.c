/* log: the line's head (time stamp, pid, level, worker) is right, in forked children too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define CAPTURE_MAX 4096

/* Runs fn with stderr sent to a temporary file; returns what it wrote (static buffer). */
static const char *capture(void (*fn)(void))
{
	static char buf[CAPTURE_MAX];
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	size_t n;

	assert_non_null(tmp);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	fn();
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	rewind(tmp);
	n = fread(buf, 1, sizeof(buf) - 1, tmp);
	buf[n] = '\0';
	fclose(tmp);
	return buf;
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ mxgate[PID] " at the start of line; returns the pid, -1 if the
 * head is malformed. */
static long head_pid(const char *line, time_t lo, time_t hi)
{
	struct tm tm = { 0 };
	char *end;
	const char *p = strptime(line, "%Y-%m-%dT%H:%M:%S", &tm);
	time_t t;
	long pid;

	if (!p || p[0] != '.' || p[4] != 'Z' || strncmp(p + 5, " mxgate[", 8) != 0)
		return -1;
	t = timegm(&tm);
	if (t < lo || t > hi)
		return -1;
	pid = strtol(p + 13, &end, 10);
	return *end == ']' ? pid : -1;
}

static void two_lines(void)
{
	log_info("first k=%d", 1);
	log_warn("second k=%d", 2);
}

static void test_head_and_fields(void **state)
{
	time_t before = time(NULL), after;
	const char *out;
	const char *second;

	(void)state;
	log_init("mxgate", 0, LOG_LVL_INFO);
	out = capture(two_lines);
	after = time(NULL);
	assert_int_equal(head_pid(out, before, after), (long)getpid());
	assert_non_null(strstr(out, "] info first k=1\n"));
	second = strchr(out, '\n') + 1;
	assert_int_equal(head_pid(second, before, after), (long)getpid());
	assert_non_null(strstr(second, "] warn second k=2\n"));
}

static void debug_line(void)
{
	log_debug("hidden");
}

static void test_level_filter(void **state)
{
	(void)state;
	log_init("mxgate", 0, LOG_LVL_INFO);
	assert_string_equal(capture(debug_line), "");
}

/* The pid is kept, not asked for per line: a forked child must still log its own. */
static void test_child_logs_its_own_pid(void **state)
{
	int fds[2];
	char buf[512];
	ssize_t n;
	pid_t child;
	int status;
	time_t before = time(NULL);

	(void)state;
	log_init("mxgate", 0, LOG_LVL_INFO);
	log_set_worker(-1);
	assert_int_equal(pipe(fds), 0);
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		dup2(fds[1], STDERR_FILENO);
		log_set_worker(3);
		log_info("from the child");
		_exit(0);
	}
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf) - 1);
	close(fds[0]);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_int_equal(head_pid(buf, before, time(NULL)), (long)child);
	assert_non_null(strstr(buf, "] info worker=3 from the child\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_head_and_fields),
		cmocka_unit_test(test_level_filter),
		cmocka_unit_test(test_child_logs_its_own_pid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
