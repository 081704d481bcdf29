/* dest: connections per destination. A destination is a tenant's route with its TLS mode
 * ("HOST:PORT", "HOST:PORT tls=required", "HOST:PORT tls=verify": model_route_spec_parse) or
 * a mail domain reached by MX ("mx:DOMAIN"). The key is the whole text, so connections that
 * need TLS are never shared with ones that do not. At most cfg->dest_concurrency connections to one
 * destination are in use at once (`active`, idle ones not counted: they are used first); a
 * finished connection that can carry another transaction waits
 * idle for DEST_IDLE_SECONDS so the next message to the same place skips connect and EHLO. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "delivery/delivery_private.h"
#include "dns/destination.h"
#include "policy/model.h"
#include "util/addr.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define DEST_KEY_MAX 300

struct idle_conn {
	struct smtpc *c;
	time_t since;
	char remote[SMTPC_HOST_MAX];
};

struct dest {
	struct qmgr *q;
	char key[DEST_KEY_MAX];
	char target[DEST_KEY_MAX];
	int mx;
	enum route_tls tls; /* a route's mode; opportunistic for MX */
	uint16_t port;
	unsigned active; /* connections in use or being set up */
	struct idle_conn idle[DEST_IDLE_MAX];
	size_t nidle;
	struct dest_wait *waiters, **waiters_tail;
	struct dest *next;
};

struct dest_wait {
	struct dest *d;
	dest_ready_fn *ready;
	void *arg;
	struct destination_query *dq;
	struct smtpc *connecting;
	struct smtpc *handover;
	struct dest_status st;
	struct event *ev; /* delivers the result on a later loop turn */
	struct dest_wait *next;
	int queued, has_slot;
};

static int parse_key(struct dest *d, const char *key)
{
	char hostport[DEST_KEY_MAX], host[DEST_KEY_MAX];
	uint16_t port;

	if (!strncmp(key, "mx:", 3)) {
		d->mx = 1;
		snprintf(d->target, sizeof(d->target), "%s", key + 3);
		d->port = (uint16_t)d->q->cfg->mx_port;
		return 0;
	}
	if (model_route_spec_parse(key, hostport, sizeof(hostport), &d->tls) < 0 ||
	    hostport_split(hostport, host, sizeof(host), &port) < 0)
		return -1;
	snprintf(d->target, sizeof(d->target), "%s", host);
	d->port = port;
	return 0;
}

static struct dest *dest_get(struct qmgr *q, const char *key)
{
	struct dest *d;

	for (d = q->dests; d; d = d->next)
		if (!strcmp(d->key, key))
			return d;
	d = xcalloc(1, sizeof(*d));
	d->q = q;
	snprintf(d->key, sizeof(d->key), "%s", key);
	d->waiters_tail = &d->waiters;
	if (parse_key(d, key) < 0) {
		/* kept anyway: every acquire on it fails permanently with a clear text */
		d->target[0] = '\0';
	}
	d->next = q->dests;
	q->dests = d;
	return d;
}

static void deliver(evutil_socket_t fd, short what, void *arg)
{
	struct dest_wait *w = arg;
	struct smtpc *c = w->handover;

	(void)fd;
	(void)what;
	w->handover = NULL;
	event_free(w->ev);
	w->ev = NULL;
	dest_ready_fn *ready = w->ready;
	void *rarg = w->arg;
	struct dest_status st = w->st;
	free(w);
	ready(rarg, c, &st);
}

/* Hands the result to the waiter on the next loop turn (never inside the caller). */
static void finish(struct dest_wait *w, struct smtpc *c)
{
	static const struct timeval now = { 0, 0 };

	w->handover = c;
	w->st.ok = c != NULL;
	if (!c && w->has_slot)
		w->d->active--; /* the slot was for a connection that did not come */
	w->ev = evtimer_new(w->d->q->base, deliver, w);
	evtimer_add(w->ev, &now);
}

static void set_failure(struct dest_wait *w, const char *enh, int code, const char *text,
			int permanent)
{
	memset(&w->st.status, 0, sizeof(w->st.status));
	snprintf(w->st.status.enh, sizeof(w->st.status.enh), "%s", enh);
	w->st.status.code = code;
	w->st.status.local = 1;
	w->st.status.stage = SMTPC_STAGE_CONNECT;
	snprintf(w->st.status.text, sizeof(w->st.status.text), "%s", text);
	w->st.permanent = permanent;
}

static void on_connected(void *arg, struct smtpc *c, const struct smtpc_ready_info *info)
{
	struct dest_wait *w = arg;

	w->connecting = NULL;
	snprintf(w->st.remote, sizeof(w->st.remote), "%s", info->host[0] ? info->host : info->ip);
	if (info->result == SMTPC_CONNECTED) {
		log_info("qmgr connected dest=\"%s\" host=%s ip=%s tls=%s verified=%s", w->d->key,
			 info->host, info->ip, info->tls ? info->tls_summary : "no",
			 info->tls_verified ? "yes" : "no");
		finish(w, c);
		return;
	}
	w->st.status = info->status;
	w->st.permanent = 0;
	smtpc_free(&c);
	finish(w, NULL);
}

static void on_resolved(void *arg, const struct destination_result *res)
{
	struct dest_wait *w = arg;
	struct dest *d = w->d;
	const struct config *cfg = d->q->cfg;
	const struct sockaddr *addrs[DESTINATION_MAX_ADDRS];
	struct smtpc_params p;

	w->dq = NULL;
	if (res->status != DESTINATION_OK || res->naddrs == 0) {
		set_failure(w, res->code, res->status == DESTINATION_PERMANENT ? 550 : 451, res->text,
			    res->status == DESTINATION_PERMANENT);
		finish(w, NULL);
		return;
	}
	for (size_t i = 0; i < res->naddrs; i++)
		addrs[i] = (const struct sockaddr *)&res->addrs[i].sa;
	smtpc_params_init(&p);
	p.helo_name = cfg->hostname;
	p.host_name = res->addrs[0].host[0] ? res->addrs[0].host : d->target;
	p.log_id = NULL; /* connections serve many messages: lines name the host */
	p.tls = d->q->tls ? SMTPC_TLS_OPPORTUNISTIC : SMTPC_TLS_NONE;
	p.ssl_ctx = d->q->tls;
	if (!d->mx) {
		/* the route's host names the server: SNI, and what verify checks */
		p.tls_name = d->target;
		if (d->tls != ROUTE_TLS_OPPORTUNISTIC)
			p.tls = SMTPC_TLS_REQUIRED;
		p.tls_verify = d->tls == ROUTE_TLS_VERIFY;
	}
	p.timeouts.connect_ms = cfg->connect_timeout * 1000;
	p.timeouts.greeting_ms = cfg->connect_timeout * 1000;
	p.timeouts.mail_ms = p.timeouts.rcpt_ms = p.timeouts.ehlo_ms = cfg->smtp_timeout * 1000;
	p.timeouts.data_init_ms = p.timeouts.data_block_ms = cfg->smtp_timeout * 1000;
	p.timeouts.data_end_ms = cfg->data_timeout_out * 1000;
	w->connecting = smtpc_connect(d->q->base, &p, addrs, res->naddrs, on_connected, w);
}

static void start_connect(struct dest_wait *w)
{
	struct dest *d = w->d;

	w->has_slot = 1;
	d->active++;
	if (!d->target[0]) {
		set_failure(w, "5.4.4", 550, "invalid route (expected HOST:PORT, optionally followed "
				       "by tls=required or tls=verify)", 1);
		finish(w, NULL);
		return;
	}
	w->dq = destination_resolve(d->q->res, d->target, d->mx, d->port, on_resolved, w);
}

struct dest_wait *dest_acquire(struct qmgr *q, const char *key, dest_ready_fn *ready, void *arg)
{
	struct dest *d = dest_get(q, key);
	struct dest_wait *w = xcalloc(1, sizeof(*w));

	w->d = d;
	w->ready = ready;
	w->arg = arg;
	/* an idle connection the server closed meanwhile is of no use */
	while (d->nidle > 0 && !smtpc_is_reusable(d->idle[d->nidle - 1].c))
		smtpc_free(&d->idle[--d->nidle].c);
	if (d->nidle > 0) {
		struct idle_conn *ic = &d->idle[--d->nidle];
		w->has_slot = 1;
		d->active++;
		snprintf(w->st.remote, sizeof(w->st.remote), "%s", ic->remote);
		finish(w, ic->c);
		return w;
	}
	if (d->active < q->cfg->dest_concurrency) {
		start_connect(w);
		return w;
	}
	w->queued = 1;
	*d->waiters_tail = w;
	d->waiters_tail = &w->next;
	return w;
}

static void unqueue(struct dest_wait *w)
{
	struct dest *d = w->d;

	for (struct dest_wait **pp = &d->waiters; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			if (d->waiters_tail == &w->next)
				d->waiters_tail = pp;
			break;
		}
	w->queued = 0;
}

void dest_cancel(struct dest_wait **wp)
{
	struct dest_wait *w = *wp;

	if (!w)
		return;
	*wp = NULL;
	if (w->queued)
		unqueue(w);
	if (w->dq)
		destination_cancel(&w->dq);
	if (w->connecting)
		smtpc_free(&w->connecting);
	if (w->ev)
		event_free(w->ev);
	if (w->handover)
		smtpc_free(&w->handover);
	if (w->has_slot && w->d->active > 0)
		w->d->active--;
	free(w);
}

void dest_release(struct qmgr *q, const char *key, struct smtpc *c, int reusable,
		  const char *remote)
{
	struct dest *d = dest_get(q, key);
	time_t now = time(NULL);

	if (d->waiters) { /* the slot goes to the first waiter */
		struct dest_wait *w = d->waiters;
		unqueue(w);
		if (reusable) {
			w->has_slot = 1;
			snprintf(w->st.remote, sizeof(w->st.remote), "%s", remote);
			finish(w, c);
			return;
		}
		smtpc_free(&c);
		d->active--;
		start_connect(w);
		return;
	}
	d->active--;
	if (!reusable) {
		smtpc_free(&c);
		return;
	}
	/* drop idle connections that waited too long, keep this one */
	size_t k = 0;
	for (size_t i = 0; i < d->nidle; i++) {
		if (now - d->idle[i].since > DEST_IDLE_SECONDS)
			smtpc_quit(&d->idle[i].c);
		else
			d->idle[k++] = d->idle[i];
	}
	d->nidle = k;
	if (d->nidle == DEST_IDLE_MAX || d->nidle >= q->cfg->dest_concurrency || q->stopping) {
		smtpc_quit(&c);
		return;
	}
	d->idle[d->nidle] = (struct idle_conn){ .c = c, .since = now };
	snprintf(d->idle[d->nidle].remote, sizeof(d->idle[0].remote), "%s", remote);
	d->nidle++;
}

void dest_free_all(struct qmgr *q)
{
	while (q->dests) {
		struct dest *d = q->dests;
		q->dests = d->next;
		for (size_t i = 0; i < d->nidle; i++)
			smtpc_free(&d->idle[i].c);
		while (d->waiters) {
			struct dest_wait *w = d->waiters;
			dest_cancel(&w);
		}
		free(d);
	}
}

void dest_prune(struct qmgr *q)
{
	time_t now = time(NULL);

	for (struct dest *d = q->dests; d; d = d->next) {
		size_t k = 0;
		for (size_t i = 0; i < d->nidle; i++) {
			if (now - d->idle[i].since > DEST_IDLE_SECONDS || q->stopping)
				smtpc_quit(&d->idle[i].c);
			else
				d->idle[k++] = d->idle[i];
		}
		d->nidle = k;
	}
}
