/* workers: the master process and its worker processes.
 *
 * The master forks n workers, each running worker_main() with its own event loop, restarts a
 * worker that dies unexpectedly, and on SIGTERM/SIGINT passes the signal on and waits. */
#ifndef MXG_WORKERS_H
#define MXG_WORKERS_H

typedef int worker_main_fn(unsigned index, void *arg);

/* Returns the exit status for the master: 0 after a clean shutdown. */
int workers_run(unsigned n, worker_main_fn *worker_main, void *arg);
/* Number of online CPUs (at least 1). */
unsigned workers_ncpu(void);

#endif
