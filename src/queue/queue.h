/* queue: durable hand-off of accepted messages (docs/queue-format.md).
 *
 * A message is written to a file of the process's own directory queue/tmp/SLOT while DATA
 * arrives, closed with an END record, then committed: a background thread fsyncs the file,
 * links it into queue/incoming/ID and fsyncs that directory, for all messages that are waiting
 * at once (group commit). Only after that does the caller's callback run and the client get its
 * 250. A file in tmp/ is never delivered; a file in incoming/ is complete. Files are reused:
 * the file keeps its tmp/SLOT name, and once the message has left incoming/ (queue_retire) it
 * is a spare there for a new message; files without that name go to queue/pool/. */
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

/* Prepares data_dir/queue/tmp/ and removes the unfinished messages of the layout before slot
 * directories (files directly in tmp/); *removed_r is how many. What a process left in its
 * tmp/SLOT (its spares, a message it was writing when it died) is the next one's spares; the
 * directories of slots >= nslots (a previous run had more workers) go, their files to pool/.
 * Call once in the master before workers start. */
int queue_clean_tmp(const char *data_dir, unsigned nslots, unsigned *removed_r);
/* Opens (creating when missing) data_dir/queue/{tmp/SLOT,incoming,pool} for the process in
 * slot (unique among live processes: tmp/SLOT is its own). Returns NULL with errno set. */
struct queue *queue_open(const char *data_dir, unsigned slot, struct bgjob_queue *bg);
void queue_close(struct queue **q);

/* Starts the file of a message (a spare, else a new file in tmp/SLOT) with its envelope.
 * Returns NULL with errno set on failure. */
struct queue_msg *queue_msg_begin(struct queue *q, const struct queue_envelope *env);
/* Appends message bytes (buffered). Errors are sticky and reported by commit. */
void queue_msg_write(struct queue_msg *m, const void *buf, size_t len);
/* Returns 0, or the errno of the first failed write so far. */
int queue_msg_error(const struct queue_msg *m);
/* Discards the message: it is never delivered. Its file is a spare again (what was written
 * stays until it is reused, like a delivered message's in pool/), or removed if big. */
void queue_msg_abort(struct queue_msg **m);

/* status is 0 when the message is durable in incoming/, else an errno (nothing is left). */
typedef void queue_commit_fn(void *arg, int status);
/* Ends the message and makes it durable; done() runs on the loop afterwards. Takes *m. */
void queue_msg_commit(struct queue_msg **m, queue_commit_fn *done, void *arg);

/* The message qid (size bytes, links: its link count when it was loaded) has left the queue.
 * With more than one link its incoming/ name is removed, which leaves the file a spare of the
 * slot that wrote it; a file without a tmp/SLOT name becomes a spare in pool/, or is removed
 * when pool/ is full or the file big. A stale count is safe: links only go down once a message
 * is committed, and a file is written only when it has one. Blocks: background thread only (one
 * thread per queue). */
void queue_retire(struct queue *q, const char *qid, uint64_t size, unsigned links);

/* Counters for logs and benchmarks. */
struct queue_stats {
	uint64_t committed, failed, batches, fsyncs;
	uint64_t spares_used, spares_claimed; /* messages written to a reused file; files from pool/ */
	uint64_t spares_busy; /* names looked past: their message was still queued */
};
void queue_get_stats(const struct queue *q, struct queue_stats *st);

#endif
