/* pid: see pid.h. Set once at start (a constructor, before any thread) and again in each
 * forked child by the atfork handler, which runs in the child's only thread: never written
 * while other threads read it. */
#include "util/pid.h"

#include <pthread.h>
#include <unistd.h>

static pid_t self_pid;

static void pid_refresh(void)
{
	self_pid = getpid();
}

__attribute__((constructor)) static void pid_setup(void)
{
	pid_refresh();
	if (pthread_atfork(NULL, NULL, pid_refresh) != 0)
		self_pid = 0; /* no handler: ask every time */
}

pid_t pid_self(void)
{
	return self_pid ? self_pid : getpid();
}
