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
#define SLOTS_MAX (2 * WORKERS_MAX)
/* A worker that dies this soon after start is crashing at start: do not restart it in a loop. */
#define WORKER_MIN_LIFETIME_SECONDS 2

static volatile sig_atomic_t got_term;
static volatile sig_atomic_t got_child;
static volatile sig_atomic_t got_hup;

static void on_signal(int sig)
{
	if (sig == SIGCHLD)
		got_child = 1;
	else if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = sig;
}

/* One process: a current worker, or an old one finishing its sessions after a reload. */
struct proc {
	pid_t pid; /* 0: none */
	unsigned index, slot;
	time_t started;
};

struct master {
	unsigned n;
	const struct workers_hooks *hooks;
	void *arg;
	sigset_t orig;
	struct proc cur[WORKERS_MAX];
	struct proc old[SLOTS_MAX];
	int pending[WORKERS_MAX]; /* single workers waiting for their predecessor to exit */
	unsigned char slot_used[SLOTS_MAX];
};

unsigned workers_nslots(unsigned n)
{
	return 2 * n; /* the workers and, during a reload, their successors */
}

static int take_slot(struct master *m, unsigned *slot_r)
{
	for (unsigned s = 0; s < workers_nslots(m->n); s++)
		if (!m->slot_used[s]) {
			m->slot_used[s] = 1;
			*slot_r = s;
			return 0;
		}
	return -1;
}

static void spawn(struct master *m, unsigned index)
{
	struct proc *p = &m->cur[index];
	unsigned slot;

	p->pid = 0;
	if (take_slot(m, &slot) < 0) {
		log_err("worker %u: no free slot", index); /* cannot happen: reloads wait */
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_err("fork failed: %s", strerror(errno));
		m->slot_used[slot] = 0;
		return;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGHUP, SIG_IGN);
		sigprocmask(SIG_SETMASK, &m->orig, NULL);
		log_set_worker((int)index);
		/* exit, not _exit: sanitizers check leaks at exit */
		exit(m->hooks->main(index, slot, m->arg));
	}
	*p = (struct proc){ .pid = pid, .index = index, .slot = slot, .started = time(NULL) };
}

static void signal_all(struct master *m, int sig)
{
	for (unsigned i = 0; i < m->n; i++)
		if (m->cur[i].pid > 0)
			kill(m->cur[i].pid, sig);
	for (unsigned i = 0; i < SLOTS_MAX; i++)
		if (m->old[i].pid > 0)
			kill(m->old[i].pid, sig);
}

static void release_slot(struct master *m, unsigned slot)
{
	if (m->hooks->exited)
		m->hooks->exited(slot, m->arg);
	m->slot_used[slot] = 0;
}

static int old_alive(const struct master *m, unsigned index)
{
	for (unsigned i = 0; i < SLOTS_MAX; i++)
		if (m->old[i].pid > 0 && m->old[i].index == index)
			return 1;
	return 0;
}

/* An old worker ended; a single worker waiting for it may start now. */
static int reap_old(struct master *m, pid_t pid)
{
	for (unsigned i = 0; i < SLOTS_MAX; i++) {
		if (m->old[i].pid != pid)
			continue;
		unsigned index = m->old[i].index;
		m->old[i].pid = 0;
		release_slot(m, m->old[i].slot);
		if (m->pending[index] && !old_alive(m, index) && !got_term) {
			m->pending[index] = 0;
			spawn(m, index);
		}
		return 1;
	}
	return 0;
}

/* Reaps every exited process; restarts current workers that ran long enough, unless stopping.
 * Returns the number of processes still alive, or -1 when one crashed straight after start. */
static int reap(struct master *m)
{
	int status, alive = 0, failed = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (reap_old(m, pid))
			continue;
		for (unsigned i = 0; i < m->n; i++) {
			struct proc *p = &m->cur[i];
			if (p->pid != pid)
				continue;
			p->pid = 0;
			release_slot(m, p->slot);
			if (got_term)
				break;
			log_warn("worker %u pid=%d exited status=%d signal=%d", i, (int)pid,
				 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
				 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
			if (time(NULL) - p->started < WORKER_MIN_LIFETIME_SECONDS) {
				failed = 1;
				break;
			}
			spawn(m, i);
		}
	}
	for (unsigned i = 0; i < m->n; i++)
		alive += m->cur[i].pid > 0 || m->pending[i];
	for (unsigned i = 0; i < SLOTS_MAX; i++)
		alive += m->old[i].pid > 0;
	return failed ? -1 : alive;
}

static int reload_in_progress(const struct master *m)
{
	for (unsigned i = 0; i < SLOTS_MAX; i++)
		if (m->old[i].pid > 0)
			return 1;
	return 0;
}

/* The current workers become old ones (told to finish), and new ones take their place. */
static void replace_workers(struct master *m)
{
	for (unsigned i = 0; i < m->n; i++) {
		struct proc *p = &m->cur[i];
		if (p->pid > 0) {
			for (unsigned k = 0; k < SLOTS_MAX; k++)
				if (m->old[k].pid == 0) {
					m->old[k] = *p;
					break;
				}
			kill(p->pid, SIGTERM);
			p->pid = 0;
		}
		if (i >= m->n - m->hooks->nsingle && old_alive(m, i))
			m->pending[i] = 1;
		else
			spawn(m, i);
	}
}

static void on_reload(struct master *m)
{
	got_hup = 0;
	if (!m->hooks->reload) {
		log_info("SIGHUP ignored: nothing to reload");
		return;
	}
	if (reload_in_progress(m)) {
		log_warn("reload refused: workers of the previous reload are still finishing");
		return;
	}
	if (m->hooks->reload(m->arg) < 0)
		return; /* the hook logged why; the running configuration stays */
	log_info("reload: starting new workers; the old ones finish their sessions");
	replace_workers(m);
}

int workers_run(unsigned n, const struct workers_hooks *hooks, void *arg)
{
	struct master *m = xcalloc(1, sizeof(*m));
	sigset_t block;
	struct sigaction sa;
	int rc = 0, forwarded = 0;

	if (n == 0 || n > WORKERS_MAX)
		n = n ? WORKERS_MAX : 1;
	m->n = n;
	m->hooks = hooks;
	m->arg = arg;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &m->orig);

	for (unsigned i = 0; i < n; i++)
		spawn(m, i);
	for (;;) {
		if (got_term && !forwarded) {
			log_info("master shutting down signal=%d", (int)got_term);
			memset(m->pending, 0, sizeof(m->pending));
			signal_all(m, SIGTERM);
			forwarded = 1;
		}
		if (got_hup && !got_term)
			on_reload(m);
		int alive = reap(m);
		if (alive < 0) {
			log_err("a worker failed at start; stopping");
			got_term = SIGTERM;
			rc = 1;
			continue;
		}
		if (alive == 0)
			break;
		got_child = 0;
		if ((!got_term || forwarded) && !got_hup)
			sigsuspend(&m->orig);
	}
	sigprocmask(SIG_SETMASK, &m->orig, NULL);
	free(m);
	return rc;
}

unsigned workers_ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}
