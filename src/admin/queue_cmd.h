/* queue_cmd: `mxgate queue list|show|retry|hold|release|delete`, against the queue directory
 * of a running (or stopped) server. Requests are appended to the message's state log and the
 * queue manager is told with SIGUSR1; a stopped server applies them at its next start. */
#ifndef MXG_QUEUE_CMD_H
#define MXG_QUEUE_CMD_H

struct config;

/* argv[0] is "queue". Exit 0 done, 2 usage or unknown id, 1 I/O failure. */
int queue_cmd_main(const struct config *cfg, int argc, char **argv);

#endif
