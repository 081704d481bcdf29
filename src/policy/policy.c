/* policy: see policy.h.
 *
 * A check waits for up to two things, in parallel: the client's DNSBL answers (started at
 * connect) and, for a tenant with recipient check "probe", the probe of the tenant's server
 * (probe.h). The engine is asked first without a probe answer: only when it says it wants one
 * (rules 1 to 3 did not decide, the address is not postmaster) is the cache looked up or a probe
 * started. The final decision runs when the last of the two is in. */
#include "policy/policy.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "dns/dnsbl.h"
#include "event/bgjob.h"
#include "policy/probe.h"
#include "store/store.h"
#include "util/log.h"
#include "util/xmalloc.h"

struct policy {
	const struct config *cfg;
	struct event_base *base;
	struct store *store;          /* used only by the reload job on the background thread */
	struct bgjob_queue *bg;
	struct model_snapshot *current;
	struct event *reload_timer;
	struct dnsbl *dnsbl;
	struct probe *probe;
	int reloading;
	/* the last failed reload: logged once, its generation tried again after RELOAD_RETRY_MS */
	char failed_error[STORE_ERR_MAX];
	uint64_t failed_generation; /* 0: the generation itself could not be read */
	uint64_t retry_at_ms;
	/* reload job in/out, touched by the thread only while reloading is set */
	uint64_t job_generation;   /* in: the current snapshot's */
	int job_retry;             /* in: the failed generation may be loaded again */
	enum { RELOAD_SAME, RELOAD_WAIT, RELOAD_NEW, RELOAD_FAILED } job_status;
	uint64_t job_seen;         /* out: the store's generation, 0 when unreadable */
	struct model_snapshot *job_result;
	char job_error[STORE_ERR_MAX];
};

struct pending_rcpt {
	policy_done_fn *done;
	void *arg;
	struct policy_client cl;
	char ip_str[ADDR_STR_MAX];
	char sender_domain[256], rcpt[300], rcpt_domain[256];
	struct engine_probe probe; /* the probe's answer, when have_probe */
	int have_probe;
};

struct policy_session {
	struct policy *p;
	struct model_snapshot *snap;
	struct dnsbl_query *q;
	int waiting;               /* for the DNSBL answers */
	struct probe_req *probing; /* for a recipient probe */
	struct pending_rcpt pending;
};

/* ---- reload ------------------------------------------------------------------------- */

/* A store that failed to load is tried again after this long, or at once when its generation
 * changes: a damaged store is not read in full at every poll, and one repaired in place under
 * the same generation is still picked up. */
#define RELOAD_RETRY_MS 5000

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Background thread. Whatever goes wrong (a lock, a damaged file), the current snapshot stays:
 * the job only ever produces a complete new one. */
static void reload_work(void *arg)
{
	struct policy *p = arg;

	p->job_result = NULL;
	p->job_error[0] = '\0';
	p->job_status = RELOAD_FAILED;
	if (store_generation_read(p->store, &p->job_seen, p->job_error, sizeof(p->job_error)) !=
	    STORE_OK)
		return;
	if (p->job_seen == p->job_generation) {
		p->job_status = RELOAD_SAME;
		return;
	}
	if (p->job_seen == p->failed_generation && !p->job_retry) {
		p->job_status = RELOAD_WAIT;
		return;
	}
	p->job_result = store_load(p->store, p->job_error, sizeof(p->job_error));
	if (p->job_result)
		p->job_status = RELOAD_NEW;
}

/* Logs a failure once (again only when it changes), and keeps serving the current snapshot. */
static void reload_failed(struct policy *p)
{
	int again = p->failed_error[0] && p->failed_generation == p->job_seen &&
		    strcmp(p->failed_error, p->job_error) == 0;

	p->failed_generation = p->job_seen;
	p->retry_at_ms = now_ms() + RELOAD_RETRY_MS;
	if (again)
		return;
	snprintf(p->failed_error, sizeof(p->failed_error), "%s", p->job_error);
	log_warn("policy reload-failed generation=%llu error=\"%s\" (keeping generation %llu)",
		 (unsigned long long)p->job_seen, p->job_error,
		 (unsigned long long)model_generation(p->current));
}

static void reload_done(void *arg)
{
	struct policy *p = arg;

	p->reloading = 0;
	switch (p->job_status) {
	case RELOAD_FAILED:
		reload_failed(p);
		return;
	case RELOAD_WAIT:
		return;
	case RELOAD_SAME:
		if (p->failed_error[0])
			log_info("policy store readable again generation=%llu",
				 (unsigned long long)p->job_seen);
		p->failed_error[0] = '\0';
		p->failed_generation = 0;
		return;
	case RELOAD_NEW:
		break;
	}
	model_unref(&p->current);
	p->current = p->job_result;
	p->job_result = NULL;
	p->job_generation = model_generation(p->current);
	p->failed_error[0] = '\0';
	p->failed_generation = 0;
	log_info("policy reloaded generation=%llu tenants=%zu",
		 (unsigned long long)p->job_generation, model_ntenants(p->current));
}

static void on_reload_timer(evutil_socket_t fd, short what, void *arg)
{
	struct policy *p = arg;

	(void)fd;
	(void)what;
	if (p->reloading)
		return;
	p->reloading = 1;
	p->job_retry = !p->failed_error[0] || now_ms() >= p->retry_at_ms;
	bgjob_submit(p->bg, reload_work, reload_done, p);
}

struct policy *policy_new(struct event_base *base, const struct config *cfg, char *errbuf,
			  size_t errsz)
{
	struct policy *p = xcalloc(1, sizeof(*p));
	struct timeval tv = { .tv_sec = cfg->reload_interval_ms / 1000,
			      .tv_usec = (cfg->reload_interval_ms % 1000) * 1000 };

	p->cfg = cfg;
	p->base = base;
	p->store = store_open(cfg->data_dir, STORE_READ_WRITE, errbuf, errsz);
	if (!p->store)
		goto fail;
	p->current = store_load(p->store, errbuf, errsz);
	if (!p->current)
		goto fail;
	p->job_generation = model_generation(p->current);
	p->dnsbl = dnsbl_new(base, cfg, errbuf, errsz);
	if (!p->dnsbl)
		goto fail;
	p->probe = probe_new(base, cfg);
	p->bg = bgjob_new(base);
	p->reload_timer = event_new(base, -1, EV_PERSIST, on_reload_timer, p);
	event_add(p->reload_timer, &tv);
	return p;
fail:
	model_unref(&p->current);
	store_close(&p->store);
	free(p);
	return NULL;
}

void policy_free(struct policy **pp)
{
	struct policy *p = *pp;

	if (!p)
		return;
	event_free(p->reload_timer);
	bgjob_free(&p->bg); /* runs reload_done of a reload in progress */
	dnsbl_free(&p->dnsbl);
	probe_free(&p->probe);
	model_unref(&p->current);
	store_close(&p->store);
	free(p);
	*pp = NULL;
}

/* ---- sessions ----------------------------------------------------------------------- */

/* The engine's request for r, with the DNSBL answers so far and the probe's answer if any;
 * ec is the client part it points to. */
static void make_request(const struct policy_session *ps, const struct pending_rcpt *r,
			 struct engine_client *ec, struct engine_request *rq)
{
	*ec = (struct engine_client){
		.ip = r->cl.ip, .ip_str = r->cl.ip_str, .tls = r->cl.tls,
		.tls_names = r->cl.tls_names, .ntls_names = r->cl.ntls_names,
	};
	*rq = (struct engine_request){
		.snap = ps->snap, .client = ec, .sender_domain = r->sender_domain, .rcpt = r->rcpt,
		.rcpt_domain = r->rcpt_domain, .dnsbl_threshold = ps->p->cfg->dnsbl_threshold,
		.rcpt_probe = r->have_probe ? &r->probe : NULL,
	};
	if (ps->q) {
		rq->dnsbl = dnsbl_query_answers(ps->q, &rq->ndnsbl);
		rq->dnsbl_complete = dnsbl_query_complete(ps->q);
	} else {
		rq->dnsbl_complete = 1;
	}
}

static void decide(struct policy_session *ps, const struct pending_rcpt *r)
{
	struct engine_client ec;
	struct engine_request rq;
	struct engine_verdict ev;
	struct policy_verdict v;

	make_request(ps, r, &ec, &rq);
	engine_decide(&rq, &ev, NULL);
	memset(&v, 0, sizeof(v));
	v.action = ev.action == ENGINE_ACCEPT ? POLICY_ACCEPT
		   : ev.action == ENGINE_REJECT ? POLICY_REJECT
						: POLICY_TEMPFAIL;
	v.code = ev.code;
	memcpy(v.enhanced, ev.enhanced, sizeof(v.enhanced));
	memcpy(v.text, ev.text, sizeof(v.text));
	v.rule = ev.rule;
	memcpy(v.list, ev.list, sizeof(v.list));
	memcpy(v.entry, ev.entry, sizeof(v.entry));
	snprintf(v.tenant, sizeof(v.tenant), "%s", ev.tenant ? ev.tenant->name : "");
	memcpy(v.route, ev.route, sizeof(ev.route));
	v.reason = ev.reason ? ev.reason : "";
	memcpy(v.dnsbl, ev.dnsbl_summary, sizeof(v.dnsbl));
	if (strstr(v.dnsbl, "timeout:"))
		log_info("sid=%s policy dnsbl-timeout ip=%s dnsbl=%s (deciding without the missing "
			 "answers)", r->cl.sid ? r->cl.sid : "-", r->cl.ip_str, v.dnsbl);
	r->done(r->arg, &v);
}

static void on_probe_done(void *arg, const struct engine_probe *answer)
{
	struct policy_session *ps = arg;

	ps->probing = NULL; /* the probe module freed the request */
	ps->pending.probe = *answer;
	ps->pending.have_probe = 1;
	if (!ps->waiting)
		decide(ps, &ps->pending);
}

/* Starts what rule 3a needs when the recipient's tenant probes its server: the cache's answer
 * (kept in r), or a probe (ps->probing set). Nothing for any other recipient, nor when an
 * earlier rule decides without the probe (a Block entry, relay, postmaster). */
static void start_probe(struct policy_session *ps, struct pending_rcpt *r)
{
	const struct model_tenant *t = model_tenant_for_domain(ps->snap, r->rcpt_domain);
	struct engine_client ec;
	struct engine_request rq;
	struct engine_verdict ev;

	if (!t || t->recipient_check != RCPT_CHECK_PROBE)
		return;
	make_request(ps, r, &ec, &rq);
	engine_decide(&rq, &ev, NULL);
	if (!ev.probe_wanted)
		return;
	struct probe_target target = {
		.tenant = t->name, .route = ev.route, .rcpt = r->rcpt, .log_id = r->cl.sid,
	};
	if (probe_check(ps->p->probe, &target, &r->probe, on_probe_done, ps, &ps->probing))
		r->have_probe = 1;
}

static void on_dnsbl_done(void *arg, struct dnsbl_query *q)
{
	struct policy_session *ps = arg;

	(void)q;
	if (!ps->waiting)
		return;
	ps->waiting = 0;
	if (!ps->probing)
		decide(ps, &ps->pending);
}

struct policy_session *policy_session_new(struct policy *p, const struct policy_client *cl)
{
	struct policy_session *ps = xcalloc(1, sizeof(*ps));

	ps->p = p;
	ps->snap = model_ref(p->current);
	if (p->cfg->ndnsbl)
		ps->q = dnsbl_lookup(p->dnsbl, &cl->ip, on_dnsbl_done, ps);
	return ps;
}

void policy_session_free(struct policy_session **psp)
{
	struct policy_session *ps = *psp;

	if (!ps)
		return;
	dnsbl_query_free(&ps->q);
	probe_cancel(&ps->probing);
	model_unref(&ps->snap);
	free(ps);
	*psp = NULL;
}

void policy_check_rcpt(struct policy_session *ps, const struct policy_client *cl,
		       const char *mail_from_domain, const char *rcpt, const char *rcpt_domain,
		       policy_done_fn *done, void *arg)
{
	struct pending_rcpt *r = &ps->pending;

	r->done = done;
	r->arg = arg;
	r->cl = *cl;
	snprintf(r->ip_str, sizeof(r->ip_str), "%s", cl->ip_str);
	r->cl.ip_str = r->ip_str;
	snprintf(r->sender_domain, sizeof(r->sender_domain), "%s", mail_from_domain);
	snprintf(r->rcpt, sizeof(r->rcpt), "%s", rcpt);
	snprintf(r->rcpt_domain, sizeof(r->rcpt_domain), "%s", rcpt_domain);
	r->have_probe = 0;
	start_probe(ps, r);
	if (ps->q && !dnsbl_query_complete(ps->q))
		ps->waiting = 1; /* on_dnsbl_done decides, unless the probe is still out */
	if (!ps->waiting && !ps->probing)
		decide(ps, r);
}
