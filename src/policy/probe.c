/* probe: see probe.h.
 *
 * One struct probe_run per probe in flight: route host lookup (destination_resolve), then one
 * smtpc client, and one deadline timer over the whole. The checks waiting for it hang on the
 * run as struct probe_req; a run whose waiters all left goes on to its end, so its answer still
 * lands in the cache. A run ends in exactly one place, run_end(), which releases everything it
 * holds before it calls any waiter, so a waiter may start the next check (the session's next
 * pipelined RCPT) from inside its callback. */
#include "policy/probe.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "config/config.h"
#include "dns/destination.h"
#include "dns/resolver.h"
#include "policy/probe_cache.h"
#include "smtpc/smtpc.h"
#include "util/addr.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define PROBE_RCPT_MAX 320
#define PROBE_LOG_ID_MAX 32
/* The client's own step timeouts are this much longer than the deadline, so that the deadline
 * always ends a stalled probe (and says so): armed within the same few milliseconds, with
 * libevent's coarse clock, equal timeouts expired in either order. */
#define PROBE_STEP_MARGIN_MS 250

struct probe {
	const struct config *cfg;
	struct event_base *base;
	struct probe_cache *cache;
	struct resolver *res; /* made at the first probe */
	SSL_CTX *tls;         /* idem; NULL when it could not be made (opportunistic = plain) */
	int setup_done;
	struct probe_run *runs; /* in flight */
	unsigned nruns;
};

struct probe_req {
	struct probe_run *run;
	probe_done_fn *done;
	void *arg;
	struct probe_req *next;
};

struct probe_run {
	struct probe *p;
	struct probe_run *prev, *next;
	char key[PROBE_CACHE_KEY_MAX + 1]; /* "" when the address is too long to cache */
	char tenant[MODEL_NAME_MAX + 1];
	char route[MODEL_ROUTE_SPEC_MAX + 1];
	char host[MODEL_ROUTE_MAX + 1];
	char rcpt[PROBE_RCPT_MAX];
	char log_id[PROBE_LOG_ID_MAX];
	uint16_t port;
	enum route_tls tls;
	struct destination_query *dq;
	struct smtpc *c;
	struct event *deadline;
	uint64_t started_ms;
	struct probe_req *waiters;
	unsigned nwaiters; /* how many joined, for the log */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t random_seed(void)
{
	uint64_t seed;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&seed;
	return seed;
}

struct probe *probe_new(struct event_base *base, const struct config *cfg)
{
	struct probe *p = xcalloc(1, sizeof(*p));

	p->cfg = cfg;
	p->base = base;
	p->cache = probe_cache_new(PROBE_CACHE_MAX_ENTRIES, random_seed());
	return p;
}

unsigned probe_inflight(const struct probe *p)
{
	return p->nruns;
}

static void set_answer(struct engine_probe *a, enum engine_probe_state state, const char *fmt,
		       ...) __attribute__((format(printf, 3, 4)));

static void set_answer(struct engine_probe *a, enum engine_probe_state state, const char *fmt,
		       ...)
{
	va_list ap;

	memset(a, 0, sizeof(*a));
	a->state = state;
	va_start(ap, fmt);
	vsnprintf(a->detail, sizeof(a->detail), fmt, ap);
	va_end(ap);
}

/* ---- the end of a run ----------------------------------------------------------------- */

static const char *state_name(enum engine_probe_state s)
{
	switch (s) {
	case ENGINE_PROBE_ACCEPTED: return "accepted";
	case ENGINE_PROBE_REJECTED: return "refused";
	case ENGINE_PROBE_FAILED: return "failed";
	}
	return "?";
}

/* Drops everything the run holds (lookup, client, timer); no callback of theirs runs later. */
static void run_release(struct probe_run *r)
{
	destination_cancel(&r->dq);
	smtpc_free(&r->c);
	if (r->deadline) {
		event_free(r->deadline);
		r->deadline = NULL;
	}
}

static void run_unlink(struct probe_run *r)
{
	struct probe *p = r->p;

	if (r->prev)
		r->prev->next = r->next;
	else
		p->runs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	p->nruns--;
}

static void run_log(const struct probe_run *r, const struct engine_probe *a, int code)
{
	char rcpt[PROBE_RCPT_MAX * 4], detail[ENGINE_FIELD_MAX * 4];

	log_info("sid=%s policy probe tenant=%s rcpt=<%s> route=\"%s\" result=%s code=%d "
		 "reply=\"%s\" ms=%llu waiters=%u", r->log_id[0] ? r->log_id : "-", r->tenant,
		 log_escape(rcpt, sizeof(rcpt), r->rcpt, strlen(r->rcpt)), r->route,
		 state_name(a->state), code,
		 log_escape(detail, sizeof(detail), a->detail, strlen(a->detail)),
		 (unsigned long long)(now_ms() - r->started_ms), r->nwaiters);
}

/* The one end of every run: releases it, caches and logs the answer, then tells each waiter.
 * code is the server's reply code, 0 when none came. */
static void run_end(struct probe_run *r, const struct engine_probe *a, int code)
{
	run_release(r);
	if (r->key[0])
		probe_cache_put(r->p->cache, r->key, now_ms(), a);
	run_log(r, a, code);
	run_unlink(r);
	while (r->waiters) {
		struct probe_req *q = r->waiters;
		probe_done_fn *done = q->done;
		void *arg = q->arg;
		r->waiters = q->next;
		free(q);
		done(arg, a);
	}
	free(r);
}

static void run_fail(struct probe_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void run_fail(struct probe_run *r, const char *fmt, ...)
{
	struct engine_probe a;
	va_list ap;

	memset(&a, 0, sizeof(a));
	a.state = ENGINE_PROBE_FAILED;
	va_start(ap, fmt);
	vsnprintf(a.detail, sizeof(a.detail), fmt, ap);
	va_end(ap);
	run_end(r, &a, 0);
}

/* "CODE ENH text" of a server's reply (lines joined by spaces), or "no reply: text (ENH)" for
 * a status the client decided. */
static void describe_status(const struct smtpc_status *st, char *out, size_t outsz)
{
	char text[SMTPC_TEXT_MAX];

	snprintf(text, sizeof(text), "%s", st->text);
	for (char *nl = strchr(text, '\n'); nl; nl = strchr(nl, '\n'))
		*nl = ' ';
	if (st->local)
		snprintf(out, outsz, "no reply: %s (%s)", text, st->enh);
	else
		snprintf(out, outsz, "%d %s %s", st->code, st->enh, text);
}

/* ---- the steps of a run --------------------------------------------------------------- */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct probe_run *r = arg;

	(void)fd;
	(void)what;
	run_fail(r, "no answer within %u ms (probe_timeout_ms)", r->p->cfg->probe_timeout_ms);
}

/* Only a refusal of the address itself means "no such user": 5.1.x (bad mailbox or
 * address), or a 550/551/553 without an enhanced code. Any other 5xx (5.7.1 "relaying
 * denied" from a backend that does not know the gateway, say) says nothing about the user
 * and must not turn every recipient into a 550: it fails the probe, and the RCPT gets 451. */
static int addressing_refusal(const struct smtpc_status *st)
{
	if (st->enh[0] == '5' && st->enh[1] == '.' && st->enh[2] == '1' && st->enh[3] == '.')
		return 1;
	if (strncmp(st->enh, "5.0.0", 5) == 0) /* synthesized from the reply code: no real one */
		return st->code == 550 || st->code == 551 || st->code == 553;
	return 0;
}

/* The reply to RCPT decides; a status of any other stage (MAIL refused, connection lost, a
 * local refusal) says nothing about the address. */
static void on_sent(void *arg, struct smtpc *c, const struct smtpc_sent *sent)
{
	struct probe_run *r = arg;
	const struct smtpc_status *st = &sent->rcpt[0];
	enum engine_probe_state state = ENGINE_PROBE_FAILED;
	struct engine_probe a;
	int cls = smtpc_status_class(st);

	int code = st->local ? 0 : st->code;

	if (st->stage == SMTPC_STAGE_RCPT && !st->local && (cls == 2 || addressing_refusal(st)))
		state = cls == 2 ? ENGINE_PROBE_ACCEPTED : ENGINE_PROBE_REJECTED;
	memset(&a, 0, sizeof(a));
	a.state = state;
	describe_status(st, a.detail, sizeof(a.detail));
	if (st->stage != SMTPC_STAGE_RCPT && !st->local) {
		/* e.g. MAIL FROM:<> refused: say so, the reply alone would read like the answer */
		char d[sizeof(a.detail)];
		snprintf(d, sizeof(d), "%s refused: %s", smtpc_stage_name(st->stage), a.detail);
		memcpy(a.detail, d, sizeof(a.detail));
	}
	/* the transaction ended with QUIT: the client is done (sent is not used after this) */
	r->c = NULL;
	smtpc_free(&c);
	run_end(r, &a, code);
}

static int has_non_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

static void on_ready(void *arg, struct smtpc *c, const struct smtpc_ready_info *info)
{
	struct probe_run *r = arg;
	struct smtpc_rcpt rc = { .addr = r->rcpt };
	struct smtpc_msg m = {
		.sender = "", .rcpts = &rc, .nrcpt = 1, .needs_smtputf8 = has_non_ascii(r->rcpt),
		.body_fd = -1, .rcpt_only = 1,
	};
	char detail[ENGINE_FIELD_MAX];

	if (info->result != SMTPC_CONNECTED) {
		r->c = NULL;
		smtpc_free(&c);
		describe_status(&info->status, detail, sizeof(detail));
		run_fail(r, "%s", detail);
		return;
	}
	smtpc_send(c, &m, on_sent, r);
}

static void fill_params(const struct probe_run *r, const char *host_name, struct smtpc_params *sp)
{
	const struct probe *p = r->p;
	unsigned ms = p->cfg->probe_timeout_ms + PROBE_STEP_MARGIN_MS;

	smtpc_params_init(sp);
	sp->helo_name = p->cfg->hostname;
	sp->host_name = host_name;
	sp->log_id = r->log_id[0] ? r->log_id : NULL;
	sp->ssl_ctx = p->tls;
	sp->tls_name = r->host;
	sp->tls = r->tls != ROUTE_TLS_OPPORTUNISTIC ? SMTPC_TLS_REQUIRED
		  : p->tls ? SMTPC_TLS_OPPORTUNISTIC : SMTPC_TLS_NONE;
	sp->tls_verify = r->tls == ROUTE_TLS_VERIFY;
	/* the deadline bounds the whole: no step is cut before it */
	sp->timeouts = (struct smtpc_timeouts){
		.connect_ms = ms, .greeting_ms = ms, .ehlo_ms = ms, .starttls_ms = ms,
		.mail_ms = ms, .rcpt_ms = ms, .rset_ms = ms, .quit_ms = ms,
	};
}

static void on_resolved(void *arg, const struct destination_result *res)
{
	struct probe_run *r = arg;
	const struct sockaddr *addrs[DESTINATION_MAX_ADDRS];
	struct smtpc_params sp;

	r->dq = NULL;
	if (res->status != DESTINATION_OK || res->naddrs == 0) {
		run_fail(r, "route host %s: %s (%s)", r->host, res->text, res->code);
		return;
	}
	for (size_t i = 0; i < res->naddrs; i++)
		addrs[i] = (const struct sockaddr *)&res->addrs[i].sa;
	fill_params(r, res->addrs[0].host[0] ? res->addrs[0].host : r->host, &sp);
	r->c = smtpc_connect(r->p->base, &sp, addrs, res->naddrs, on_ready, r);
}

/* ---- starting -------------------------------------------------------------------------- */

/* The resolver and TLS context, once. 0, or -1 with why. */
static int setup(struct probe *p, char *why, size_t whysz)
{
	char err[256];

	if (p->res)
		return 0;
	p->res = resolver_new(p->base, p->cfg->resolver, PROBE_DNS_TIMEOUT_MS, PROBE_DNS_TRIES, err,
			      sizeof(err));
	if (!p->res) {
		snprintf(why, whysz, "cannot start a DNS resolver: %s", err);
		return -1;
	}
	if (!p->setup_done) {
		p->setup_done = 1;
		p->tls = SSL_CTX_new(TLS_client_method());
		if (p->tls && !SSL_CTX_set_default_verify_paths(p->tls))
			log_warn("policy probe cannot load the system trust store: probes of routes "
				 "with tls=verify will fail");
		if (!p->tls)
			log_warn("policy probe cannot create a TLS context: probes go in plain text, "
				 "and fail for routes that require TLS");
	}
	return 0;
}

static struct probe_req *join(struct probe_run *r, probe_done_fn *done, void *arg)
{
	struct probe_req *q = xcalloc(1, sizeof(*q));

	q->run = r;
	q->done = done;
	q->arg = arg;
	q->next = r->waiters;
	r->waiters = q;
	r->nwaiters++;
	return q;
}

static struct probe_run *run_find(struct probe *p, const char *key)
{
	if (!key[0])
		return NULL;
	for (struct probe_run *r = p->runs; r; r = r->next)
		if (!strcmp(r->key, key))
			return r;
	return NULL;
}

/* A new run for t, linked and started; NULL with *a filled when none can start. */
static struct probe_run *run_start(struct probe *p, const struct probe_target *t,
				   const char *key, struct engine_probe *a)
{
	char hostport[MODEL_ROUTE_MAX + 1], why[ENGINE_FIELD_MAX];
	struct timeval tv = { p->cfg->probe_timeout_ms / 1000,
			      (p->cfg->probe_timeout_ms % 1000) * 1000 };
	struct probe_run *r = xcalloc(1, sizeof(*r));

	if (model_route_spec_parse(t->route, hostport, sizeof(hostport), &r->tls) < 0 ||
	    hostport_split(hostport, r->host, sizeof(r->host), &r->port) < 0) {
		set_answer(a, ENGINE_PROBE_FAILED, "the tenant's route cannot be probed (not "
			   "HOST:PORT)");
		free(r);
		return NULL;
	}
	if (setup(p, why, sizeof(why)) < 0) {
		set_answer(a, ENGINE_PROBE_FAILED, "%s", why);
		free(r);
		return NULL;
	}
	r->p = p;
	snprintf(r->key, sizeof(r->key), "%s", key);
	snprintf(r->tenant, sizeof(r->tenant), "%s", t->tenant);
	snprintf(r->route, sizeof(r->route), "%s", t->route);
	snprintf(r->rcpt, sizeof(r->rcpt), "%s", t->rcpt);
	snprintf(r->log_id, sizeof(r->log_id), "%s", t->log_id ? t->log_id : "");
	r->started_ms = now_ms();
	r->next = p->runs;
	if (p->runs)
		p->runs->prev = r;
	p->runs = r;
	p->nruns++;
	r->deadline = evtimer_new(p->base, on_deadline, r);
	/* from now, not from the loop's cached time: a long loop iteration (or a descheduled
	 * process) must not eat into the tenant's time to answer */
	event_base_update_cache_time(p->base);
	evtimer_add(r->deadline, &tv);
	r->dq = destination_resolve(p->res, r->host, 0, r->port, on_resolved, r);
	return r;
}

int probe_check(struct probe *p, const struct probe_target *t, struct engine_probe *answer_r,
		probe_done_fn *done, void *arg, struct probe_req **req_r)
{
	char key[PROBE_CACHE_KEY_MAX + 1];
	struct probe_run *r;

	*req_r = NULL;
	if (probe_cache_key(t->tenant, t->route, t->rcpt, key, sizeof(key)) < 0)
		key[0] = '\0';
	if (key[0] && probe_cache_get(p->cache, key, now_ms(), answer_r))
		return 1;
	if ((r = run_find(p, key))) {
		*req_r = join(r, done, arg);
		return 0;
	}
	if (p->nruns >= PROBE_MAX_INFLIGHT) {
		set_answer(answer_r, ENGINE_PROBE_FAILED, "too many probes in flight (%u), not asked",
			   p->nruns);
		return 1;
	}
	if (strlen(t->rcpt) >= PROBE_RCPT_MAX) {
		set_answer(answer_r, ENGINE_PROBE_FAILED, "address too long to probe");
		return 1;
	}
	if (!(r = run_start(p, t, key, answer_r)))
		return 1;
	*req_r = join(r, done, arg);
	return 0;
}

void probe_cancel(struct probe_req **reqp)
{
	struct probe_req *q = *reqp;

	if (!q)
		return;
	*reqp = NULL;
	for (struct probe_req **pp = &q->run->waiters; *pp; pp = &(*pp)->next) {
		if (*pp == q) {
			*pp = q->next;
			break;
		}
	}
	free(q);
}

void probe_free(struct probe **pp)
{
	struct probe *p = *pp;

	if (!p)
		return;
	*pp = NULL;
	while (p->runs) {
		struct probe_run *r = p->runs;
		run_release(r);
		run_unlink(r);
		while (r->waiters) {
			struct probe_req *q = r->waiters;
			r->waiters = q->next;
			free(q);
		}
		free(r);
	}
	resolver_free(&p->res);
	if (p->tls)
		SSL_CTX_free(p->tls);
	probe_cache_free(&p->cache);
	free(p);
}
