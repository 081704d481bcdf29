/* dnsbl: parallel DNSBL lookups with a cache and zone health probes; see dnsbl.h.
 *
 * A query holds one struct lookup per list. A lookup is answered from the cache, skipped
 * (IPv6 client on an IPv4-only list, unhealthy zone), or sent to the resolver as an A query,
 * then a TXT query when it is listed and the list wants the reason. A resolver request
 * reaches its lookup through a handle slot that dnsbl_query_free() clears (resolver_cancel),
 * so an answer arriving after the query is gone is dropped inside the resolver.
 *
 * Completion is never reported from inside c-ares or from inside dnsbl_lookup(): when the
 * last list settles, the query's timer is re-armed to fire at once and done() runs from it on
 * the next loop turn. So done() may free the query or even the whole struct dnsbl, and
 * dnsbl_query_complete() is already 1 when dnsbl_lookup() returns with everything cached; the
 * caller may then use the answers at once and free the query, which also cancels done().
 *
 * Health probes reuse the same machinery: a probe run is two internal queries (127.0.0.2 and
 * 127.0.0.1) over every list, without cache, TXT, stats or health skipping.
 *
 * The configured zone may hold a secret key (Spamhaus DQS), so neither it nor a query name is
 * ever logged or put into a detail: logs say list=NAME zone=DISPLAY. */
#include "dns/dnsbl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>

#include "dns/dnsbl_cache.h"
#include "dns/resolver.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* Per worker; a negative entry is ~100 bytes, so the bound is about 10 MB. */
#define CACHE_MAX_ENTRIES 100000
/* Two tries of half the deadline each: a lost UDP packet is retried once before the
 * per-query deadline (which bounds the wait anyway) runs out. */
#define RESOLVER_TRIES 2
#define RESOLVER_TIMEOUT_DIVISOR 2
#define RESOLVER_TIMEOUT_MIN_MS 5
#define MS_PER_S 1000u

/* The lists a struct dnsbl was made with, shared with its queries so that answer->list stays
 * valid for as long as a query lives, even after dnsbl_free(). */
struct dnsbl_lists {
	unsigned refs;
	size_t n;
	struct dnsbl_config cfg[];
};

struct zone_health {
	int healthy;
	char why[DNSBL_DETAIL_MAX];
};

struct probe_run;

struct dnsbl {
	struct event_base *base;
	struct resolver *res;
	struct dnsbl_cache *cache;
	struct dnsbl_lists *lists;
	struct zone_health *health; /* one per list */
	unsigned timeout_ms, min_ttl, max_ttl;
	struct event *health_timer; /* NULL when dnsbl_health_interval = 0 */
	struct dnsbl_query *queries; /* live queries, to detach them in dnsbl_free */
	struct probe_run *runs;
	struct dnsbl_stats stats;
};

/* One list of one query while it is in flight. */
struct lookup {
	struct dnsbl_query *q;
	size_t idx;
	struct resolver_req *a_req, *txt_req;
	int settled;
	int cacheable;
	int has_ttl;
	uint32_t ttl;
};

enum { QF_PROBE = 1 }; /* health probe: no cache, TXT, stats, logs or health skip */

struct dnsbl_query {
	struct dnsbl *d; /* NULL once dnsbl_free() detached the query */
	struct dnsbl_query *prev, *next;
	struct dnsbl_lists *lists;
	unsigned flags;
	struct ip_addr ip;
	dnsbl_done_fn *done;
	void *arg;
	struct event *timer; /* the deadline; then fires at once to report completion */
	uint64_t start_ms;
	size_t n, npending;
	int complete;
	struct dnsbl_answer *answers;
	struct lookup *lk;
};

struct probe_run {
	struct dnsbl *d;
	struct probe_run *prev, *next;
	struct dnsbl_query *q[2]; /* [0] 127.0.0.2 must be listed, [1] 127.0.0.1 must not */
	unsigned ndone;
	void (*done)(void *arg);
	void *arg;
};

#define PROBE_LISTED "127.0.0.2"
#define PROBE_NOT_LISTED "127.0.0.1"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * MS_PER_S + (uint64_t)ts.tv_nsec / 1000000u;
}

/* What logs and details may call a zone: never the configured one, which may hold a key. */
static const char *display_zone(const struct dnsbl_config *list)
{
	if (list->display_zone[0])
		return list->display_zone;
	return list->display_name[0] ? list->display_name : list->name;
}

static void lists_unref(struct dnsbl_lists **lp)
{
	struct dnsbl_lists *l = *lp;

	*lp = NULL;
	if (l && --l->refs == 0)
		free(l);
}

/* ---- settling one list ---------------------------------------------------------------------- */

static void count_answer(struct dnsbl_stats *st, const struct dnsbl_answer *a)
{
	if (a->state == DNSBL_SKIPPED)
		return;
	st->lookups++;
	st->cache_hits += a->cached ? 1 : 0;
	switch (a->state) {
	case DNSBL_LISTED: st->listed++; break;
	case DNSBL_NOT_LISTED: st->not_listed++; break;
	case DNSBL_LIST_ERROR: st->list_errors++; break;
	case DNSBL_RESOLVER_ERROR: st->resolver_errors++; break;
	case DNSBL_TIMEOUT: st->timeouts++; break;
	default: break;
	}
}

/* Errors are logged where they are seen (once per answer from the network, not per cache
 * hit): they are never listings, and an admin must be able to find out why. */
static void log_answer(const struct dnsbl_query *q, const struct dnsbl_answer *a)
{
	char ip[ADDR_STR_MAX];
	int err = a->state == DNSBL_LIST_ERROR || a->state == DNSBL_RESOLVER_ERROR ||
		  a->state == DNSBL_TIMEOUT;

	if (a->cached || a->state == DNSBL_SKIPPED)
		return;
	log_msg(err ? LOG_LVL_INFO : LOG_LVL_DEBUG,
		"dnsbl answer list=%s zone=\"%s\" ip=%s state=%s ms=%u detail=\"%s\"", a->list->name,
		display_zone(a->list), ip_format(&q->ip, ip), dnsbl_state_name(a->state),
		a->elapsed_ms, a->detail);
}

/* Only real answers are cached: a listing or a non-listing, never an error or a timeout. */
static void cache_store(struct dnsbl *d, const struct dnsbl_query *q, const struct lookup *lk,
			uint64_t now)
{
	const struct dnsbl_answer *a = &q->answers[lk->idx];
	uint32_t ttl = lk->has_ttl ? lk->ttl : d->min_ttl;

	if (!lk->cacheable || (a->state != DNSBL_LISTED && a->state != DNSBL_NOT_LISTED))
		return;
	ttl = ttl < d->min_ttl ? d->min_ttl : ttl > d->max_ttl ? d->max_ttl : ttl;
	if (ttl > 0)
		dnsbl_cache_put(d->cache, (unsigned)lk->idx, &q->ip, now,
				now + (uint64_t)ttl * MS_PER_S, a);
}

/* The list's answer is final: timestamps, counts, logs and caches it. */
static void settle(struct dnsbl_query *q, struct lookup *lk)
{
	struct dnsbl_answer *a = &q->answers[lk->idx];
	uint64_t now = now_ms();

	lk->settled = 1;
	if (!a->cached && a->state != DNSBL_SKIPPED)
		a->elapsed_ms = (unsigned)(now - q->start_ms);
	if (q->flags & QF_PROBE)
		return;
	count_answer(&q->d->stats, a);
	log_answer(q, a);
	cache_store(q->d, q, lk, now);
}

/* done() runs from the query timer on the next loop turn (see the file comment). */
static void mark_complete(struct dnsbl_query *q)
{
	static const struct timeval now = { 0, 0 };

	q->complete = 1;
	evtimer_add(q->timer, &now);
}

static void settle_and_count(struct dnsbl_query *q, struct lookup *lk)
{
	settle(q, lk);
	if (--q->npending == 0)
		mark_complete(q);
}

/* ---- resolver answers ----------------------------------------------------------------------- */

static void on_txt_answer(void *arg, const struct resolver_answer *ans)
{
	struct lookup *lk = arg;
	struct dnsbl_answer *a = &lk->q->answers[lk->idx];

	if (ans->status == RESOLVER_OK)
		snprintf(a->txt, sizeof(a->txt), "%s", ans->txt);
	/* A TXT that failed to arrive may arrive next time: keep the listing out of the cache. */
	lk->cacheable = ans->status == RESOLVER_OK || ans->status == RESOLVER_NXDOMAIN;
	settle_and_count(lk->q, lk);
}

static void interpret_answer(const struct dnsbl_config *list, const struct resolver_answer *ans,
			     struct dnsbl_answer *a)
{
	switch (ans->status) {
	case RESOLVER_REFUSED:
		/* The list (or the resolver on its behalf) refuses us: a list error, as for the
		 * 127.255.255.254 answer, never a listing and never the resolver's fault alone. */
		a->state = DNSBL_LIST_ERROR;
		snprintf(a->detail, sizeof(a->detail),
			 "REFUSED: list refused the query (open/public resolver or no access)");
		return;
	case RESOLVER_FAILED:
		a->state = dnsbl_interpret(list, 0, 1, NULL, 0, &a->code, a->detail,
					   sizeof(a->detail));
		snprintf(a->detail, sizeof(a->detail), "resolver error %s: %s", ans->error,
			 ans->error_text);
		return;
	default:
		a->state = dnsbl_interpret(list, ans->status == RESOLVER_NXDOMAIN, 0, ans->addrs,
					   ans->naddrs, &a->code, a->detail, sizeof(a->detail));
		return;
	}
}

static void on_a_answer(void *arg, const struct resolver_answer *ans)
{
	struct lookup *lk = arg;
	struct dnsbl_query *q = lk->q;
	struct dnsbl_answer *a = &q->answers[lk->idx];
	char name[DNSBL_NAME_MAX];

	interpret_answer(a->list, ans, a);
	lk->has_ttl = ans->has_ttl;
	lk->ttl = ans->ttl;
	lk->cacheable = 1;
	if (a->state == DNSBL_LISTED && a->list->fetch_txt && !(q->flags & QF_PROBE) &&
	    dnsbl_query_name(&q->ip, a->list->zone, name, sizeof(name)) == 0) {
		resolver_query(q->d->res, name, RESOLVER_TXT, on_txt_answer, lk, &lk->txt_req);
		return;
	}
	settle_and_count(q, lk);
}

/* ---- starting a query ----------------------------------------------------------------------- */

/* Answers list i without the network when it can; returns 1 when it did. */
static int answer_locally(struct dnsbl_query *q, size_t i, uint64_t now)
{
	struct dnsbl *d = q->d;
	struct dnsbl_answer *a = &q->answers[i];

	if (!ip_is_v4(&q->ip) && !a->list->ipv6) {
		a->state = DNSBL_SKIPPED;
		snprintf(a->detail, sizeof(a->detail), "list does not support IPv6");
		return 1;
	}
	if (q->flags & QF_PROBE)
		return 0;
	if (!d->health[i].healthy) {
		a->state = DNSBL_SKIPPED;
		snprintf(a->detail, sizeof(a->detail), "%s", d->health[i].why);
		return 1;
	}
	if (dnsbl_cache_get(d->cache, (unsigned)i, &q->ip, now, a)) {
		a->cached = 1;
		return 1;
	}
	return 0;
}

static void start_list(struct dnsbl_query *q, size_t i, uint64_t now)
{
	struct lookup *lk = &q->lk[i];
	struct dnsbl_answer *a = &q->answers[i];
	char name[DNSBL_NAME_MAX];

	lk->q = q;
	lk->idx = i;
	if (answer_locally(q, i, now)) {
		settle_and_count(q, lk);
		return;
	}
	if (dnsbl_query_name(&q->ip, a->list->zone, name, sizeof(name)) < 0) {
		a->state = DNSBL_LIST_ERROR;
		snprintf(a->detail, sizeof(a->detail), "zone too long for a query name");
		settle_and_count(q, lk);
		return;
	}
	resolver_query(q->d->res, name, RESOLVER_A, on_a_answer, lk, &lk->a_req);
}

static void on_query_timer(evutil_socket_t fd, short what, void *arg);

static struct dnsbl_query *query_start(struct dnsbl *d, const struct ip_addr *ip, unsigned flags,
				       dnsbl_done_fn *done, void *arg)
{
	struct dnsbl_query *q = xcalloc(1, sizeof(*q));
	struct timeval deadline = { d->timeout_ms / MS_PER_S, (d->timeout_ms % MS_PER_S) * 1000 };
	uint64_t now = now_ms();

	q->d = d;
	q->lists = d->lists;
	q->lists->refs++;
	q->flags = flags;
	q->ip = *ip;
	q->done = done;
	q->arg = arg;
	q->start_ms = now;
	q->n = q->npending = d->lists->n;
	q->answers = xcalloc(q->n ? q->n : 1, sizeof(*q->answers));
	q->lk = xcalloc(q->n ? q->n : 1, sizeof(*q->lk));
	q->timer = evtimer_new(d->base, on_query_timer, q);
	if (!q->timer)
		abort();
	q->next = d->queries;
	if (d->queries)
		d->queries->prev = q;
	d->queries = q;
	evtimer_add(q->timer, &deadline);
	for (size_t i = 0; i < q->n; i++) {
		q->answers[i].list = &q->lists->cfg[i];
		q->answers[i].state = DNSBL_PENDING;
	}
	if (q->n == 0)
		mark_complete(q);
	for (size_t i = 0; i < q->n; i++)
		start_list(q, i, now);
	return q;
}

/* Deadline: every list still unanswered times out (fail open); a listing still waiting for
 * its TXT stays a listing, without the reason. */
static void expire(struct dnsbl_query *q)
{
	for (size_t i = 0; i < q->n; i++) {
		struct lookup *lk = &q->lk[i];
		struct dnsbl_answer *a = &q->answers[i];
		if (lk->settled)
			continue;
		resolver_cancel(&lk->a_req);
		resolver_cancel(&lk->txt_req);
		if (a->state == DNSBL_PENDING) {
			a->state = DNSBL_TIMEOUT;
			snprintf(a->detail, sizeof(a->detail), "no answer within %u ms",
				 q->d->timeout_ms);
		}
		lk->cacheable = 0;
		settle(q, lk);
	}
	q->npending = 0;
	q->complete = 1;
}

static void on_query_timer(evutil_socket_t fd, short what, void *arg)
{
	struct dnsbl_query *q = arg;

	if (!q->complete)
		expire(q);
	if (q->done)
		q->done(q->arg, q); /* last: it may free q or q->d */
}

struct dnsbl_query *dnsbl_lookup(struct dnsbl *d, const struct ip_addr *ip, dnsbl_done_fn *done,
				 void *arg)
{
	return query_start(d, ip, 0, done, arg);
}

int dnsbl_query_complete(const struct dnsbl_query *q)
{
	return q->complete;
}

const struct dnsbl_answer *dnsbl_query_answers(const struct dnsbl_query *q, size_t *n_r)
{
	*n_r = q->n;
	return q->answers;
}

/* Stops everything that could still call back into q and takes it off d's list. */
static void query_detach(struct dnsbl_query *q)
{
	for (size_t i = 0; i < q->n; i++) {
		resolver_cancel(&q->lk[i].a_req);
		resolver_cancel(&q->lk[i].txt_req);
	}
	if (q->timer) {
		event_free(q->timer);
		q->timer = NULL;
	}
	if (!q->d)
		return;
	if (q->prev)
		q->prev->next = q->next;
	else
		q->d->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	q->d = NULL;
}

void dnsbl_query_free(struct dnsbl_query **qp)
{
	struct dnsbl_query *q = *qp;

	if (!q)
		return;
	*qp = NULL;
	query_detach(q);
	lists_unref(&q->lists);
	free(q->answers);
	free(q->lk);
	free(q);
}

/* ---- zone health ---------------------------------------------------------------------------- */

enum probe_verdict { PROBE_PASS, PROBE_FAIL, PROBE_INCONCLUSIVE };

static int probe_inconclusive(const struct dnsbl_answer *a)
{
	return a->state == DNSBL_RESOLVER_ERROR || a->state == DNSBL_TIMEOUT ||
	       a->state == DNSBL_PENDING || a->state == DNSBL_SKIPPED;
}

/* a then b into out, truncated: a detail inside a why may lose its tail, by design. */
static void join(char *out, size_t outsz, const char *a, const char *b)
{
	size_t n = 0;

	for (; *a && n + 1 < outsz; a++)
		out[n++] = *a;
	for (; *b && n + 1 < outsz; b++)
		out[n++] = *b;
	if (outsz)
		out[n] = '\0';
}

/* RFC 5782 5: the test entry 127.0.0.2 must be listed, 127.0.0.1 must not. */
static enum probe_verdict probe_judge(const struct dnsbl_answer *two, const struct dnsbl_answer *one,
				      char *why, size_t whysz)
{
	if (two->state == DNSBL_NOT_LISTED) {
		snprintf(why, whysz, "test entry " PROBE_LISTED " not listed: NXDOMAIN");
		return PROBE_FAIL;
	}
	if (two->state == DNSBL_LIST_ERROR) {
		join(why, whysz, "test entry " PROBE_LISTED " not listed: ", two->detail);
		return PROBE_FAIL;
	}
	if (one->state == DNSBL_LISTED) {
		snprintf(why, whysz, PROBE_NOT_LISTED " listed: the list answers for everything");
		return PROBE_FAIL;
	}
	if (one->state == DNSBL_LIST_ERROR) {
		join(why, whysz, "test entry " PROBE_NOT_LISTED ": ", one->detail);
		return PROBE_FAIL;
	}
	if (probe_inconclusive(two) || probe_inconclusive(one)) {
		snprintf(why, whysz, "%s", probe_inconclusive(two) ? two->detail : one->detail);
		return PROBE_INCONCLUSIVE;
	}
	return PROBE_PASS;
}

static void health_update(struct dnsbl *d, size_t i, const struct dnsbl_answer *two,
			  const struct dnsbl_answer *one)
{
	const struct dnsbl_config *list = &d->lists->cfg[i];
	struct zone_health *h = &d->health[i];
	char why[DNSBL_DETAIL_MAX];

	switch (probe_judge(two, one, why, sizeof(why))) {
	case PROBE_INCONCLUSIVE:
		log_info("dnsbl zone-probe-inconclusive list=%s zone=\"%s\" why=\"%s\"", list->name,
			 display_zone(list), why);
		return;
	case PROBE_FAIL:
		if (h->healthy)
			log_warn("dnsbl zone-unhealthy list=%s zone=\"%s\" why=\"%s\"", list->name,
				 display_zone(list), why);
		h->healthy = 0;
		snprintf(h->why, sizeof(h->why), "%s", why);
		return;
	case PROBE_PASS:
		if (!h->healthy)
			log_info("dnsbl zone-healthy list=%s zone=\"%s\"", list->name,
				 display_zone(list));
		h->healthy = 1;
		h->why[0] = '\0';
		return;
	}
}

static void probe_run_free(struct dnsbl *d, struct probe_run *run)
{
	if (run->prev)
		run->prev->next = run->next;
	else
		d->runs = run->next;
	if (run->next)
		run->next->prev = run->prev;
	dnsbl_query_free(&run->q[0]);
	dnsbl_query_free(&run->q[1]);
	free(run);
}

static void on_probe_query_done(void *arg, struct dnsbl_query *q)
{
	struct probe_run *run = arg;
	struct dnsbl *d = run->d;
	void (*done)(void *) = run->done;
	void *done_arg = run->arg;

	if (++run->ndone < 2)
		return;
	for (size_t i = 0; i < d->lists->n; i++)
		health_update(d, i, &run->q[0]->answers[i], &run->q[1]->answers[i]);
	probe_run_free(d, run);
	if (done)
		done(done_arg); /* last: it may free d */
}

void dnsbl_probe_all(struct dnsbl *d, void (*done)(void *arg), void *arg)
{
	struct probe_run *run = xcalloc(1, sizeof(*run));
	struct ip_addr two, one;

	if (ip_parse(PROBE_LISTED, &two) < 0 || ip_parse(PROBE_NOT_LISTED, &one) < 0)
		abort(); /* constants */
	run->d = d;
	run->done = done;
	run->arg = arg;
	run->next = d->runs;
	if (d->runs)
		d->runs->prev = run;
	d->runs = run;
	/* Completion is deferred to the loop, so neither can finish before both exist. */
	run->q[0] = query_start(d, &two, QF_PROBE, on_probe_query_done, run);
	run->q[1] = query_start(d, &one, QF_PROBE, on_probe_query_done, run);
}

static void on_health_timer(evutil_socket_t fd, short what, void *arg)
{
	dnsbl_probe_all(arg, NULL, NULL);
}

int dnsbl_zone_healthy(const struct dnsbl *d, size_t i, char *why, size_t whysz)
{
	if (i >= d->lists->n) {
		if (whysz)
			snprintf(why, whysz, "no such list");
		return 0;
	}
	if (whysz)
		snprintf(why, whysz, "%s", d->health[i].why);
	return d->health[i].healthy;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

static uint64_t random_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&seed;
	return seed;
}

static void copy_config(struct dnsbl *d, const struct config *cfg)
{
	d->lists = xcalloc(1, sizeof(*d->lists) + cfg->ndnsbl * sizeof(d->lists->cfg[0]));
	d->lists->refs = 1;
	d->lists->n = cfg->ndnsbl;
	memcpy(d->lists->cfg, cfg->dnsbl, cfg->ndnsbl * sizeof(d->lists->cfg[0]));
	d->health = xcalloc(cfg->ndnsbl ? cfg->ndnsbl : 1, sizeof(*d->health));
	for (size_t i = 0; i < cfg->ndnsbl; i++)
		d->health[i].healthy = 1; /* until a probe says otherwise */
	d->timeout_ms = cfg->dnsbl_timeout_ms;
	d->min_ttl = cfg->dnsbl_cache_min_ttl;
	d->max_ttl = cfg->dnsbl_cache_max_ttl;
}

struct dnsbl *dnsbl_new(struct event_base *base, const struct config *cfg, char *errbuf,
			size_t errsz)
{
	struct dnsbl *d = xcalloc(1, sizeof(*d));
	unsigned try_ms = cfg->dnsbl_timeout_ms / RESOLVER_TIMEOUT_DIVISOR;

	d->base = base;
	copy_config(d, cfg);
	d->res = resolver_new(base, cfg->resolver,
			      try_ms < RESOLVER_TIMEOUT_MIN_MS ? RESOLVER_TIMEOUT_MIN_MS : try_ms,
			      RESOLVER_TRIES, errbuf, errsz);
	if (!d->res) {
		dnsbl_free(&d);
		return NULL;
	}
	d->cache = dnsbl_cache_new(CACHE_MAX_ENTRIES, random_seed());
	if (d->lists->n == 0)
		return d;
	dnsbl_probe_all(d, NULL, NULL);
	if (cfg->dnsbl_health_interval > 0) {
		struct timeval iv = { cfg->dnsbl_health_interval, 0 };
		d->health_timer = event_new(base, -1, EV_PERSIST, on_health_timer, d);
		if (!d->health_timer)
			abort();
		evtimer_add(d->health_timer, &iv);
	}
	return d;
}

void dnsbl_free(struct dnsbl **dp)
{
	struct dnsbl *d = *dp;

	if (!d)
		return;
	*dp = NULL;
	if (d->health_timer)
		event_free(d->health_timer);
	while (d->runs)
		probe_run_free(d, d->runs);
	/* Queries the caller still holds stay readable (and must still be freed by it); they
	 * will never complete. */
	while (d->queries)
		query_detach(d->queries);
	resolver_free(&d->res);
	dnsbl_cache_free(&d->cache);
	lists_unref(&d->lists);
	free(d->health);
	free(d);
}

void dnsbl_get_stats(const struct dnsbl *d, struct dnsbl_stats *st)
{
	*st = d->stats;
}
