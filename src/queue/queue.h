/* queue: durable hand-off of accepted messages (docs/queue-format.md).
 *
 * A message is written to queue/tmp/ID while DATA arrives, closed with an END record, then
 * committed: a background thread fsyncs the file, renames it to queue/incoming/ID and fsyncs
 * that directory, for all messages that are waiting at once (group commit). Only after that
 * does the caller's callback run and the client get its 250. A file in tmp/ is never
 * delivered; a file in incoming/ is complete. */
#ifndef MXG_QUEUE_H
#define MXG_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/ids.h"

struct bgjob_queue;
struct queue;
struct queue_msg;

struct queue_rcpt {
	const char *addr;
	const char *tenant;
	const char *route;
	const char *params; /* ESMTP RCPT parameters as received, "" when none */
};

struct queue_envelope {
	const char *qid;
	time_t arrival;
	const char *sid;
	const char *client_ip;
	const char *helo;
	const char *tls;         /* "" without TLS */
	const char *mail_from;   /* "" for the null sender */
	const char *mail_params; /* "" when none */
	const struct queue_rcpt *rcpts;
	size_t nrcpt;
};

/* Removes leftovers in data_dir/queue/tmp/ (messages whose 250 was never sent). Call once in
 * the master before workers start: a worker must never remove another's file in progress. */
int queue_clean_tmp(const char *data_dir, unsigned *removed_r);
/* Opens (creating when missing) data_dir/queue/{tmp,incoming}. Returns NULL with errno set. */
struct queue *queue_open(const char *data_dir, struct bgjob_queue *bg);
void queue_close(struct queue **q);

/* Creates queue/tmp/ID and writes the envelope. Returns NULL with errno set on failure. */
struct queue_msg *queue_msg_begin(struct queue *q, const struct queue_envelope *env);
/* Appends message bytes (buffered). Errors are sticky and reported by commit. */
void queue_msg_write(struct queue_msg *m, const void *buf, size_t len);
/* Returns 0, or the errno of the first failed write so far. */
int queue_msg_error(const struct queue_msg *m);
/* Discards the message: nothing of it remains on disk. */
void queue_msg_abort(struct queue_msg **m);

/* status is 0 when the message is durable in incoming/, else an errno (nothing is left). */
typedef void queue_commit_fn(void *arg, int status);
/* Ends the message and makes it durable; done() runs on the loop afterwards. Takes *m. */
void queue_msg_commit(struct queue_msg **m, queue_commit_fn *done, void *arg);

/* Counters for logs and benchmarks. */
struct queue_stats {
	uint64_t committed, failed, batches, fsyncs;
};
void queue_get_stats(const struct queue *q, struct queue_stats *st);

#endif
