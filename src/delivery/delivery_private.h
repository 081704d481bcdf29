/* delivery internals shared by qmgr.c (the message table, scheduling, reports), dest.c (the
 * connections per destination) and attempt.c (one delivery attempt of one message). */
#ifndef MXG_DELIVERY_PRIVATE_H
#define MXG_DELIVERY_PRIVATE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "queue/qfile.h"
#include "queue/qstate.h"
#include "smtpc/smtpc.h"
#include "util/ids.h"

struct config;
struct event;
struct event_base;
struct resolver;
struct bgjob_queue;
struct queue;
struct store;
struct model_snapshot;
struct attempt;
struct dest;

/* Attempts in flight at once, over all destinations. */
#define QMGR_MAX_ATTEMPTS 256
/* Idle connections kept per destination (at most `concurrency` too), and for how long (s). */
#define DEST_IDLE_MAX 16
#define DEST_IDLE_SECONDS 5

struct qentry {
	char id[QUEUE_ID_LEN + 1];
	time_t next;  /* not before; 0 = as soon as possible */
	int inflight;
	int check;    /* an admin request arrived: read its state even if not due */
	int held;
};

struct qmgr {
	const struct config *cfg;
	struct event_base *base;
	struct resolver *res;
	struct bgjob_queue *bg;
	struct queue *queue; /* where reports are queued */
	/* the policy store, read on the background thread only: reports to a sender in a
	 * tenant's domain go to that tenant's route, not by MX */
	struct store *store;
	struct model_snapshot *snap;
	SSL_CTX *tls;        /* client context for STARTTLS (system trust store, for verify) */
	char incoming[PATH_MAX / 2], state_dir[PATH_MAX / 2];
	struct qentry *entries;
	size_t nentries, cap;
	size_t *index;    /* open addressing over entries by id: entry position + 1, 0 = free */
	size_t index_cap; /* a power of two, at least twice cap */
	struct dest *dests;
	struct attempt *attempts; /* in flight, for shutdown */
	unsigned inflight;
	struct event *tick, *usr1, *term, *inotify_ev;
	struct event *kick; /* an attempt ended: look for due messages once this loop round */
	int inotify_fd;
	time_t last_scan;
	int stopping;
};

/* --- qmgr.c --- */
struct qentry *qmgr_entry(struct qmgr *q, const char *id);
void qmgr_entry_remove(struct qmgr *q, const char *id);
/* Called by attempt.c when an attempt is over: next is the entry's new schedule (0 = the
 * message is gone). */
void qmgr_attempt_over(struct qmgr *q, struct attempt *a, const char *id, time_t next, int held);

/* Background thread only: the route ("HOST:PORT...") and tenant for mail to domain, when a
 * tenant serves it; returns 0, or -1 (deliver by MX). */
int qmgr_tenant_route(struct qmgr *q, const char *domain, char *route, size_t routesz,
		      char *tenant, size_t tenantsz);

/* --- attempt.c --- */
void attempt_start(struct qmgr *q, struct qentry *e);
void attempt_abort_all(struct qmgr *q);

/* --- dest.c: connections per destination, with a concurrency limit ---------------------- */
struct dest_status {
	int ok;                    /* 1: a connected client */
	struct smtpc_status status; /* why not */
	int permanent;             /* the destination itself is bad (no such domain, null MX) */
	char remote[SMTPC_HOST_MAX];
};
typedef void dest_ready_fn(void *arg, struct smtpc *c, const struct dest_status *st);
/* key: a route spec ("HOST:PORT", "HOST:PORT tls=required|verify") or "mx:DOMAIN". Calls
 * ready with a connection to the destination (an idle one, or a new one within the
 * concurrency limit; else later, when one frees up). ready never runs inside dest_acquire.
 * Returns a handle for dest_cancel. */
struct dest_wait *dest_acquire(struct qmgr *q, const char *key, dest_ready_fn *ready, void *arg);
void dest_cancel(struct dest_wait **w);
/* Gives a connection back: kept idle for the next message when reusable, else closed. */
void dest_release(struct qmgr *q, const char *key, struct smtpc *c, int reusable,
		  const char *remote);
void dest_free_all(struct qmgr *q);
/* Closes idle connections that waited longer than DEST_IDLE_SECONDS. */
void dest_prune(struct qmgr *q);

#endif
