/* bgjob: see bgjob.h. The thread hands finished jobs back through a list and event_active(),
 * which libevent makes safe across threads once evthread_use_pthreads() has run. */
#include "event/bgjob.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdlib.h>

#include "util/log.h"
#include "util/xmalloc.h"

struct job {
	bgjob_fn *work, *done;
	void *arg;
	struct job *next;
};

struct jobq {
	struct job *head, *tail;
};

struct bgjob_queue {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct jobq todo, finished;
	struct event *done_ev;
	unsigned pending;
	int stopping;
};

static void jobq_push(struct jobq *q, struct job *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static void *bg_thread(void *arg)
{
	struct bgjob_queue *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->todo.head && !q->stopping)
			pthread_cond_wait(&q->wake, &q->lock);
		if (!q->todo.head)
			break;
		struct job *j = q->todo.head;
		q->todo.head = j->next;
		if (!q->todo.head)
			q->todo.tail = NULL;
		pthread_mutex_unlock(&q->lock);
		j->work(j->arg);
		pthread_mutex_lock(&q->lock);
		jobq_push(&q->finished, j);
		if (!q->stopping)
			event_active(q->done_ev, EV_READ, 0);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct bgjob_queue *q = arg;
	struct job *j;

	(void)fd;
	(void)what;
	pthread_mutex_lock(&q->lock);
	j = q->finished.head;
	q->finished.head = q->finished.tail = NULL;
	pthread_mutex_unlock(&q->lock);
	while (j) {
		struct job *next = j->next;
		q->pending--;
		j->done(j->arg);
		free(j);
		j = next;
	}
}

void bgjob_global_init(void)
{
	if (evthread_use_pthreads() < 0)
		fatal("bgjob: libevent has no pthreads support");
}

struct bgjob_queue *bgjob_new(struct event_base *base)
{
	struct bgjob_queue *q = xcalloc(1, sizeof(*q));

	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->wake, NULL);
	q->done_ev = event_new(base, -1, 0, on_done, q);
	if (!q->done_ev || pthread_create(&q->thread, NULL, bg_thread, q) != 0)
		fatal("bgjob: cannot start the background thread");
	return q;
}

void bgjob_submit(struct bgjob_queue *q, bgjob_fn *work, bgjob_fn *done, void *arg)
{
	struct job *j = xmalloc(sizeof(*j));

	j->work = work;
	j->done = done;
	j->arg = arg;
	q->pending++;
	pthread_mutex_lock(&q->lock);
	jobq_push(&q->todo, j);
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
}

unsigned bgjob_pending(const struct bgjob_queue *q)
{
	return q->pending;
}

void bgjob_free(struct bgjob_queue **qp)
{
	struct bgjob_queue *q = *qp;

	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stopping = 1;
	pthread_cond_signal(&q->wake);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	on_done(-1, 0, q); /* what finished after the loop stopped still gets its done() */
	event_free(q->done_ev);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->wake);
	free(q);
	*qp = NULL;
}
