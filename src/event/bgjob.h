/* bgjob: one background thread per event loop for work that may block (fsync, rename).
 *
 * work() runs on the thread, done() runs later on the loop, in submission order. Jobs are
 * never cancelled: done() always runs, so whatever the job refers to must stay alive until
 * then (or be looked up by id in done()). */
#ifndef MXG_BGJOB_H
#define MXG_BGJOB_H

struct event_base;
struct bgjob_queue;

typedef void bgjob_fn(void *arg);

/* Call once per process before creating the event base: makes libevent thread-aware. */
void bgjob_global_init(void);
struct bgjob_queue *bgjob_new(struct event_base *base);
void bgjob_submit(struct bgjob_queue *q, bgjob_fn *work, bgjob_fn *done, void *arg);
/* Jobs submitted and not yet done (for tests and a clean shutdown). */
unsigned bgjob_pending(const struct bgjob_queue *q);
/* Finishes queued work, joins the thread and runs the remaining done() callbacks here. */
void bgjob_free(struct bgjob_queue **q);

#endif
