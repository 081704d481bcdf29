/* delivery: the queue manager, a process of its own beside the SMTP workers.
 *
 * It finds messages in queue/incoming/ (inotify, and a periodic scan), delivers each
 * recipient to its route (a tenant's HOST:PORT, or "mx": by MX lookup), retries deferred
 * recipients with a doubling backoff, reports failures and long delays to the sender
 * (RFC 3464, queued like any message), and removes a message once every recipient is final.
 * The state of each recipient is appended to queue/state/ID before anything else depends on
 * it, so a crash at any point redelivers at worst, never loses. */
#ifndef MXG_DELIVERY_H
#define MXG_DELIVERY_H

struct config;

/* Runs the queue manager until SIGTERM; returns the process exit status. slot is its process
 * slot (its own directory in queue/tmp, for the reports it queues). */
int qmgr_main(const struct config *cfg, unsigned slot);

/* Path of the file holding the queue manager's pid (for `mxgate queue` to signal it). */
#define QMGR_PID_FILE "qmgr.pid"

#endif
