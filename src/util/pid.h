/* pid: this process's pid without a system call per use. */
#ifndef MXG_PID_H
#define MXG_PID_H

#include <sys/types.h>

/* getpid(), kept: glibc (>= 2.25) asks the kernel on every call, and ids and log lines want it
 * several times per message. Correct in forked children (refreshed at fork). */
pid_t pid_self(void);

#endif
