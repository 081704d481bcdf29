/* workers: the master process and its worker processes.
 *
 * The master forks n workers, each running main() with its own event loop, restarts a worker
 * that dies unexpectedly, on SIGTERM/SIGINT passes the signal on and waits, and on SIGHUP asks
 * reload() for a new configuration: when it gives one, the workers are replaced by new ones
 * while the old ones finish their sessions. */
#ifndef MXG_WORKERS_H
#define MXG_WORKERS_H

/* A worker process: index 0..n-1 says which worker it is; slot 0..2n-1 is unique among the
 * processes alive at the same time (an old worker finishing after a reload and its successor
 * have different slots), for state shared between processes. */
typedef int worker_main_fn(unsigned index, unsigned slot, void *arg);

struct workers_hooks {
	worker_main_fn *main;
	/* The process in slot has ended (crashed or finished): drop what it held. May be NULL. */
	void (*exited)(unsigned slot, void *arg);
	/* SIGHUP: 0 when a new configuration is in force (new workers then start with arg), -1
	 * when the old one stays. May be NULL: SIGHUP is then ignored. */
	int (*reload)(void *arg);
	/* Workers with index >= n - nsingle never run twice at once: after a reload the new one
	 * starts when the old one has exited (the queue manager). */
	unsigned nsingle;
};

/* Returns the exit status for the master: 0 after a clean shutdown. */
int workers_run(unsigned n, const struct workers_hooks *hooks, void *arg);
/* The number of slots n workers use: every slot is below it. */
unsigned workers_nslots(unsigned n);
/* Number of online CPUs (at least 1). */
unsigned workers_ncpu(void);

#endif
