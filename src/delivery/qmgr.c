/* qmgr: the queue manager process: the table of queued messages, when each is due, and the
 * event loop the delivery attempts run on. See delivery.h. */
#include "delivery/delivery.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "delivery/delivery_private.h"
#include "dns/resolver.h"
#include "event/bgjob.h"
#include "policy/model.h"
#include "store/store.h"
#include "queue/queue.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* The scheduler looks at the table this often; new messages wake it at once (inotify). */
#define QMGR_TICK_MS 250
/* A full directory scan, besides inotify, catches anything a missed event would hide. */
#define QMGR_SCAN_SECONDS 30
#define QMGR_DNS_TIMEOUT_MS 5000
#define QMGR_DNS_TRIES 2

/* The message table is an array (run_due walks it) with an index by id: with thousands
 * queued, finding an entry by id is the queue manager's most frequent operation. */
static size_t id_hash(const char *id)
{
	size_t h = 14695981039346656037u; /* FNV-1a */
	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211u;
	return h;
}

/* The index slot holding id, or the free slot where it would go. */
static size_t index_slot(const struct qmgr *q, const char *id)
{
	size_t mask = q->index_cap - 1, i = id_hash(id) & mask;

	while (q->index[i] && strcmp(q->entries[q->index[i] - 1].id, id) != 0)
		i = (i + 1) & mask;
	return i;
}

static void index_rebuild(struct qmgr *q, size_t cap)
{
	free(q->index);
	q->index_cap = cap;
	q->index = xcalloc(cap, sizeof(*q->index));
	for (size_t k = 0; k < q->nentries; k++)
		q->index[index_slot(q, q->entries[k].id)] = k + 1;
}

/* Linear probing deletion: the entries after the hole that would no longer be found move up. */
static void index_delete(struct qmgr *q, size_t i)
{
	size_t mask = q->index_cap - 1, j = i;

	q->index[i] = 0;
	for (;;) {
		j = (j + 1) & mask;
		if (!q->index[j])
			return;
		size_t home = id_hash(q->entries[q->index[j] - 1].id) & mask;
		/* the entry at j stays only if its home lies cyclically in (i, j] */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		q->index[i] = q->index[j];
		q->index[j] = 0;
		i = j;
	}
}

struct qentry *qmgr_entry(struct qmgr *q, const char *id)
{
	if (!q->index_cap)
		return NULL;
	size_t i = index_slot(q, id);
	return q->index[i] ? &q->entries[q->index[i] - 1] : NULL;
}

static struct qentry *entry_add(struct qmgr *q, const char *id)
{
	struct qentry *e = qmgr_entry(q, id);

	if (e)
		return e;
	if (q->nentries == q->cap) {
		q->cap = q->cap ? q->cap * 2 : 256;
		q->entries = xrealloc(q->entries, q->cap * sizeof(*q->entries));
		index_rebuild(q, q->cap * 2);
	}
	e = &q->entries[q->nentries++];
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	q->index[index_slot(q, id)] = q->nentries;
	return e;
}

void qmgr_entry_remove(struct qmgr *q, const char *id)
{
	struct qentry *e = qmgr_entry(q, id);

	if (!e)
		return;
	size_t pos = (size_t)(e - q->entries), last = q->nentries - 1;
	index_delete(q, index_slot(q, id));
	if (pos != last) {
		/* the last entry moves into the hole: its index slot follows it */
		q->entries[pos] = q->entries[last];
		q->index[index_slot(q, q->entries[pos].id)] = pos + 1;
	}
	q->nentries--;
}

void qmgr_attempt_over(struct qmgr *q, struct attempt *a, const char *id, time_t next, int held)
{
	struct qentry *e = qmgr_entry(q, id);

	(void)a;
	q->inflight--;
	if (!e)
		return;
	/* a slot is free: a message waiting for one need not wait for the next tick */
	if (!q->stopping && q->kick)
		event_active(q->kick, EV_TIMEOUT, 0);
	e->inflight = 0;
	e->held = held;
	if (next == 0 && !held) {
		qmgr_entry_remove(q, id);
		return;
	}
	e->next = next;
}

/* State logs whose message is gone (a crash between the two unlinks of a removal, or a
 * queue request racing one) are removed. */
static void sweep_orphans(struct qmgr *q)
{
	DIR *d = opendir(q->state_dir);
	struct dirent *de;
	char path[PATH_MAX];

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!id_queue_valid(de->d_name) || qmgr_entry(q, de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", q->incoming, de->d_name);
		if (access(path, F_OK) == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", q->state_dir, de->d_name);
		if (unlink(path) == 0)
			log_info("qid=%s qmgr removed an orphaned state log", de->d_name);
	}
	closedir(d);
}

int qmgr_tenant_route(struct qmgr *q, const char *domain, char *route, size_t routesz,
		      char *tenant, size_t tenantsz)
{
	char err[STORE_ERR_MAX];
	uint64_t gen;
	const struct model_tenant *t;

	if (!q->store)
		return -1;
	gen = store_generation(q->store);
	if (!q->snap || (gen && gen != model_generation(q->snap))) {
		struct model_snapshot *fresh = store_load(q->store, err, sizeof(err));
		if (fresh) {
			model_unref(&q->snap);
			q->snap = fresh;
		} else {
			log_warn("qmgr cannot read the policy store: %s", err);
		}
	}
	if (!q->snap || !(t = model_tenant_for_domain(q->snap, domain)))
		return -1;
	model_route_spec_format(t->route, t->route_tls, route, routesz); /* with its TLS needs */
	snprintf(tenant, tenantsz, "%s", t->name);
	return 0;
}

static void scan(struct qmgr *q)
{
	DIR *d = opendir(q->incoming);
	struct dirent *de;

	q->last_scan = time(NULL);
	if (!d) {
		log_warn("qmgr cannot scan %s: %s", q->incoming, strerror(errno));
		return;
	}
	while ((de = readdir(d)) != NULL)
		if (id_queue_valid(de->d_name))
			entry_add(q, de->d_name);
	closedir(d);
	sweep_orphans(q);
}

static void run_due(struct qmgr *q)
{
	time_t now = time(NULL);

	if (q->cfg->delivery_hold)
		return; /* [delivery] hold = yes: everything stays queued */

	for (size_t i = 0; i < q->nentries && q->inflight < QMGR_MAX_ATTEMPTS; i++) {
		struct qentry *e = &q->entries[i];
		if (e->inflight || (!e->check && ((e->held) || e->next > now)))
			continue;
		attempt_start(q, e);
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;

	(void)fd;
	(void)what;
	if (q->stopping)
		return;
	if (time(NULL) - q->last_scan >= QMGR_SCAN_SECONDS)
		scan(q);
	dest_prune(q);
	run_due(q);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;

	(void)fd;
	(void)what;
	if (!q->stopping)
		run_due(q);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	(void)what;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->mask & IN_Q_OVERFLOW)
				q->last_scan = 0; /* rescan on the next tick */
			else if (ev->len && id_queue_valid(ev->name))
				entry_add(q, ev->name);
			p += sizeof(*ev) + ev->len;
		}
	}
	run_due(q);
}

/* `mxgate queue hold|release|retry|delete` appended a request to a state log: look at every
 * message's state again (only those that are due are attempted). */
static void on_usr1(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;

	(void)fd;
	(void)what;
	scan(q);
	for (size_t i = 0; i < q->nentries; i++)
		q->entries[i].check = 1;
	run_due(q);
}

static void on_term(evutil_socket_t fd, short what, void *arg)
{
	struct qmgr *q = arg;

	(void)fd;
	(void)what;
	log_info("qmgr stopping: %u attempts in flight are abandoned and redone at the next start",
		 q->inflight);
	q->stopping = 1;
	event_base_loopexit(q->base, NULL);
}

static int setup(struct qmgr *q, const struct config *cfg, unsigned slot)
{
	char err[256], pidfile[PATH_MAX];
	struct timeval tick = { 0, QMGR_TICK_MS * 1000 };

	q->cfg = cfg;
	snprintf(q->incoming, sizeof(q->incoming), "%s/queue/incoming", cfg->data_dir);
	snprintf(q->state_dir, sizeof(q->state_dir), "%s/queue/state", cfg->data_dir);
	if (mkdir(q->state_dir, 0700) < 0 && errno != EEXIST) {
		log_err("qmgr cannot create %s: %s", q->state_dir, strerror(errno));
		return -1;
	}
	q->base = event_base_new();
	q->bg = bgjob_new(q->base);
	q->queue = queue_open(cfg->data_dir, slot, q->bg);
	q->res = resolver_new(q->base, cfg->resolver, QMGR_DNS_TIMEOUT_MS, QMGR_DNS_TRIES, err,
			      sizeof(err));
	if (!q->queue || !q->res) {
		log_err("qmgr cannot start: %s", q->res ? strerror(errno) : err);
		return -1;
	}
	if ((q->tls = SSL_CTX_new(TLS_client_method())) && !SSL_CTX_set_default_verify_paths(q->tls))
		log_warn("qmgr cannot load the system trust store: routes with tls=verify will defer");
	q->store = store_open(cfg->data_dir, STORE_READ_WRITE, err, sizeof(err));
	if (!q->store)
		log_warn("qmgr: policy store: %s (reports go by MX)", err);
	q->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	/* a commit links a finished file into incoming/ (IN_CREATE); one moved in by hand counts
	 * too (IN_MOVED_TO) */
	if (q->inotify_fd >= 0 &&
	    inotify_add_watch(q->inotify_fd, q->incoming, IN_CREATE | IN_MOVED_TO) >= 0) {
		q->inotify_ev = event_new(q->base, q->inotify_fd, EV_READ | EV_PERSIST, on_inotify, q);
		event_add(q->inotify_ev, NULL);
	}
	q->tick = event_new(q->base, -1, EV_PERSIST, on_tick, q);
	event_add(q->tick, &tick);
	q->kick = event_new(q->base, -1, 0, on_kick, q);
	q->usr1 = evsignal_new(q->base, SIGUSR1, on_usr1, q);
	q->term = evsignal_new(q->base, SIGTERM, on_term, q);
	evsignal_add(q->usr1, NULL);
	evsignal_add(q->term, NULL);
	snprintf(pidfile, sizeof(pidfile), "%s/%s", cfg->data_dir, QMGR_PID_FILE);
	FILE *f = fopen(pidfile, "w");
	if (f) {
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	return 0;
}

static void teardown(struct qmgr *q)
{
	char pidfile[PATH_MAX];

	snprintf(pidfile, sizeof(pidfile), "%s/%s", q->cfg->data_dir, QMGR_PID_FILE);
	unlink(pidfile);
	q->stopping = 1;
	/* the thread finishes what it was given (state records stay durable); the completions
	 * see `stopping` and leave their attempts to attempt_abort_all */
	bgjob_free(&q->bg);
	attempt_abort_all(q);
	dest_free_all(q);
	model_unref(&q->snap);
	store_close(&q->store);
	if (q->tick)
		event_free(q->tick);
	if (q->kick)
		event_free(q->kick);
	if (q->usr1)
		event_free(q->usr1);
	if (q->term)
		event_free(q->term);
	if (q->inotify_ev)
		event_free(q->inotify_ev);
	if (q->inotify_fd >= 0)
		close(q->inotify_fd);
	queue_close(&q->queue);
	resolver_free(&q->res);
	if (q->tls)
		SSL_CTX_free(q->tls);
	free(q->entries);
	free(q->index);
	if (q->base)
		event_base_free(q->base);
}

int qmgr_main(const struct config *cfg, unsigned slot)
{
	struct qmgr q;
	int rc = 1;

	memset(&q, 0, sizeof(q));
	q.inotify_fd = -1;
	signal(SIGPIPE, SIG_IGN);
	bgjob_global_init();
	if (setup(&q, cfg, slot) == 0) {
		scan(&q);
		log_info("qmgr started messages=%zu", q.nentries);
		run_due(&q);
		event_base_dispatch(q.base);
		rc = 0;
	}
	teardown(&q);
	log_info("qmgr stopped");
	return rc;
}
