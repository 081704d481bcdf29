/* workers: see workers.h. The master stays tiny and never runs an event loop: it only forks,
 * reaps and forwards signals, so a bug in protocol code cannot take it down. */
#include "event/workers.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xmalloc.h"

#define WORKERS_MAX 64
/* A worker that dies this soon after start is crashing at start: do not restart it in a loop. */
#define WORKER_MIN_LIFETIME_SECONDS 2

static volatile sig_atomic_t got_term;
static volatile sig_atomic_t got_child;

static void on_signal(int sig)
{
	if (sig == SIGCHLD)
		got_child = 1;
	else
		got_term = sig;
}

static pid_t spawn(unsigned index, worker_main_fn *worker_main, void *arg, const sigset_t *orig)
{
	pid_t pid = fork();

	if (pid < 0) {
		log_err("fork failed: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		sigprocmask(SIG_SETMASK, orig, NULL);
		log_set_worker((int)index);
		exit(worker_main(index, arg)); /* exit, not _exit: sanitizers check leaks at exit */
	}
	return pid;
}

static void signal_all(const pid_t *pids, unsigned n, int sig)
{
	for (unsigned i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], sig);
}

/* Reaps every exited worker; restarts those that ran long enough, unless stopping. Returns the
 * number of workers still alive, or -1 when one crashed straight after start. */
static int reap(pid_t *pids, time_t *started, unsigned n, worker_main_fn *fn, void *arg,
		const sigset_t *orig)
{
	int status, alive = 0, failed = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			if (pids[i] != pid)
				continue;
			pids[i] = 0;
			if (got_term)
				break;
			log_warn("worker %u pid=%d exited status=%d signal=%d", i, (int)pid,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
				 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
			if (time(NULL) - started[i] < WORKER_MIN_LIFETIME_SECONDS) {
				failed = 1;
				break;
			}
			pids[i] = spawn(i, fn, arg, orig);
			started[i] = time(NULL);
		}
	}
	for (unsigned i = 0; i < n; i++)
		alive += pids[i] > 0;
	return failed ? -1 : alive;
}

int workers_run(unsigned n, worker_main_fn *worker_main, void *arg)
{
	pid_t pids[WORKERS_MAX] = { 0 };
	time_t started[WORKERS_MAX];
	sigset_t block, orig;
	struct sigaction sa;
	int rc = 0, forwarded = 0;

	if (n == 0 || n > WORKERS_MAX)
		n = n ? WORKERS_MAX : 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, &orig);

	for (unsigned i = 0; i < n; i++) {
		pids[i] = spawn(i, worker_main, arg, &orig);
		started[i] = time(NULL);
	}
	for (;;) {
		if (got_term && !forwarded) {
			log_info("master shutting down signal=%d", (int)got_term);
			signal_all(pids, n, SIGTERM);
			forwarded = 1;
		}
		int alive = reap(pids, started, n, worker_main, arg, &orig);
		if (alive < 0) {
			log_err("a worker failed at start; stopping");
			got_term = SIGTERM;
			rc = 1;
			continue;
		}
		if (alive == 0)
			break;
		got_child = 0;
		if (!got_term || forwarded)
			sigsuspend(&orig);
	}
	sigprocmask(SIG_SETMASK, &orig, NULL);
	return rc;
}

unsigned workers_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}
