/* attempt: one delivery attempt of one message.
 *
 *   load (thread)   read the queue file and its state log
 *   plan (loop)     group the recipients still to deliver by destination
 *   send (loop)     per group: a connection from dest, one transaction
 *   record (thread) append every recipient's outcome and the next attempt time, fdatasync;
 *                   build the report (failure or delay) when one is due
 *   report (loop)   queue the report like any message (group commit)
 *   close (thread)  note the report, remove the message once every recipient is final
 * Nothing is acted on before it is recorded, so a crash redelivers, never loses. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "delivery/delivery_private.h"
#include "dsn/ndr.h"
#include "policy/model.h"
#include "event/bgjob.h"
#include "queue/queue.h"
#include "util/log.h"
#include "util/xtext.h"
#include "util/xmalloc.h"

#define ATTEMPT_KEY_MAX 300
/* A queue file larger than this is not read into memory for a report's returned content. */
#define ATTEMPT_FILE_MAX (256u * 1024 * 1024)

struct group {
	struct attempt *a;
	char key[ATTEMPT_KEY_MAX];
	size_t *idx;
	size_t n;
	struct smtpc_rcpt *rc;
	struct dest_wait *wait;
	struct smtpc *c; /* while a transaction runs */
	char remote[SMTPC_HOST_MAX];
};

struct attempt {
	struct qmgr *q;
	struct attempt *link; /* in q->attempts */
	char id[QUEUE_ID_LEN + 1];
	char path[PATH_MAX], spath[PATH_MAX];
	time_t now;
	/* load */
	int load_errno;
	const char *load_why;
	char *buf;
	size_t len;
	unsigned links; /* of the queue file: 2 while its writer keeps its name (queue_retire) */
	int fd;
	struct qfile_env env;
	struct qstate st;
	/* send */
	struct group *groups;
	size_t ngroups, ndone;
	struct qstate_rcpt *res; /* this attempt's outcome per recipient; PENDING = not tried */
	unsigned *notify;        /* SMTPC_NOTIFY_* per recipient; 0 = not given */
	char **orcpt;            /* decoded "type;addr" per recipient, NULL when none */
	enum smtpc_ret ret;
	char envid[128];
	int needs_8bit, needs_utf8;
	/* record */
	char *records;
	size_t rlen;
	time_t next;
	int final;
	enum ndr_kind report_kind;
	int report;
	char *ndr;
	size_t ndr_len;
	unsigned ndr_flags;
	char report_qid[QUEUE_ID_LEN + 1];
	char report_route[MODEL_ROUTE_MAX + 32], report_tenant[MODEL_NAME_MAX + 1];
	int report_failed;
};

/* ---- helpers ---------------------------------------------------------------------------- */

/* The value of KEY= in a space-separated parameter list, copied into out; 0 when found. */
static int param_get(const char *params, const char *key, char *out, size_t outsz)
{
	size_t klen = strlen(key);

	for (const char *p = params; p && *p;) {
		size_t n = strcspn(p, " ");
		if (n > klen && !strncasecmp(p, key, klen) && p[klen] == '=') {
			snprintf(out, outsz, "%.*s", (int)(n - klen - 1), p + klen + 1);
			return 0;
		}
		if (n == klen && !strncasecmp(p, key, klen)) {
			out[0] = '\0';
			return 0;
		}
		p += n;
		while (*p == ' ')
			p++;
	}
	return -1;
}

static unsigned notify_bits(const char *v)
{
	unsigned bits = 0;

	if (!strcasecmp(v, "NEVER"))
		return SMTPC_NOTIFY_NEVER;
	if (strcasestr(v, "SUCCESS"))
		bits |= SMTPC_NOTIFY_SUCCESS;
	if (strcasestr(v, "FAILURE"))
		bits |= SMTPC_NOTIFY_FAILURE;
	if (strcasestr(v, "DELAY"))
		bits |= SMTPC_NOTIFY_DELAY;
	return bits;
}

/* RFC 3461 4.1: without NOTIFY the reporting is ours to choose; mxgate reports failures and
 * delays, as Postfix does. */
static int wants(const struct attempt *a, size_t i, unsigned bit)
{
	return a->notify[i] == 0 ? bit != SMTPC_NOTIFY_SUCCESS : (a->notify[i] & bit) != 0;
}

static const char *rcpt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at ? at + 1 : "";
}

static void attempt_free(struct attempt *a)
{
	for (size_t g = 0; g < a->ngroups; g++) {
		dest_cancel(&a->groups[g].wait);
		smtpc_free(&a->groups[g].c);
		free(a->groups[g].idx);
		free(a->groups[g].rc);
	}
	if (a->orcpt)
		for (size_t i = 0; i < a->env.nrcpt; i++)
			free(a->orcpt[i]);
	free(a->orcpt);
	free(a->notify);
	free(a->groups);
	free(a->res);
	free(a->records);
	free(a->ndr);
	qfile_env_free(&a->env);
	qstate_free(&a->st);
	free(a->buf);
	if (a->fd >= 0)
		close(a->fd);
	free(a);
}

static void unlink_attempt(struct attempt *a)
{
	for (struct attempt **pp = &a->q->attempts; *pp; pp = &(*pp)->link)
		if (*pp == a) {
			*pp = a->link;
			break;
		}
}

static void over(struct attempt *a, time_t next, int held)
{
	struct qmgr *q = a->q;

	unlink_attempt(a);
	qmgr_attempt_over(q, a, a->id, next, held);
	attempt_free(a);
}

/* ---- load (thread) ------------------------------------------------------------------------ */

static void load_work(void *arg)
{
	struct attempt *a = arg;
	struct stat sb;

	a->fd = open(a->path, O_RDONLY | O_CLOEXEC);
	if (a->fd < 0 || fstat(a->fd, &sb) < 0) {
		a->load_errno = errno;
		return;
	}
	if ((uint64_t)sb.st_size > ATTEMPT_FILE_MAX) {
		a->load_errno = EFBIG;
		return;
	}
	a->len = (size_t)sb.st_size;
	a->links = (unsigned)sb.st_nlink;
	a->buf = xmalloc(a->len + 1);
	if (pread(a->fd, a->buf, a->len, 0) != (ssize_t)a->len) {
		a->load_errno = EIO;
		return;
	}
	if (qfile_env_read(a->buf, a->len, &a->env, &a->load_why) < 0) {
		a->load_errno = EINVAL;
		return;
	}
	if (qstate_load(a->spath, a->env.nrcpt, &a->st) < 0)
		a->load_errno = errno;
}

/* ---- send (loop) ------------------------------------------------------------------------ */

static void conclude(struct attempt *a);

static void group_done(struct group *g)
{
	struct attempt *a = g->a;

	if (++a->ndone == a->ngroups)
		conclude(a);
}

/* "550 5.1.1 text" per line, as the server sent it (smtpc keeps the text without codes). */
static void reply_verbatim(const struct smtpc_status *s, char *out, size_t outsz)
{
	const char *t = s->text;
	size_t o = 0;

	out[0] = '\0';
	do {
		size_t n = strcspn(t, "\n");
		int k = snprintf(out + o, outsz - o, "%s%d %s%s%.*s", o ? "\r\n" : "", s->code,
				 s->enh[0] == '0' + s->code / 100 && s->enh[1] == '.' ? s->enh : "",
				 s->enh[0] == '0' + s->code / 100 && s->enh[1] == '.' ? " " : "", (int)n, t);
		if (k < 0 || (size_t)k >= outsz - o)
			break;
		o += (size_t)k;
		t += n;
	} while (*t++ == '\n' && *t);
}

static void set_result(struct attempt *a, size_t i, const struct smtpc_status *s,
		       const char *remote, int permanent_dest)
{
	struct qstate_rcpt *r = &a->res[i];
	int cls = s->enh[0] == '2' ? 2 : s->enh[0] == '5' ? 5 : 4;

	char etext[QSTATE_TEXT_MAX * 4];

	if (permanent_dest)
		cls = 5;
	r->status = cls == 2 ? RCPT_DELIVERED : cls == 5 ? RCPT_FAILED : RCPT_DEFERRED;
	r->when = a->now;
	snprintf(r->enhanced, sizeof(r->enhanced), "%s", s->enh);
	snprintf(r->remote, sizeof(r->remote), "%s", remote);
	if (s->local) {
		/* no server said this: code 0 marks mxgate's own words (a report's detail) */
		r->code = 0;
		snprintf(r->text, sizeof(r->text), "%s", s->text);
	} else {
		/* the reply as the server sent it, each line with its codes, for the report */
		r->code = s->code;
		reply_verbatim(s, r->text, sizeof(r->text));
	}
	log_info("qid=%s qmgr %s rcpt=<%s> dsn=%s remote=%s reply=\"%s\"", a->id,
		 qstate_status_name(r->status), a->env.rcpts[i].addr, r->enhanced,
		 remote[0] ? remote : "-", log_escape(etext, sizeof(etext), r->text, strlen(r->text)));
}

static void group_sent(void *arg, struct smtpc *c, const struct smtpc_sent *sent)
{
	struct group *g = arg;
	struct attempt *a = g->a;

	g->c = NULL;
	for (size_t k = 0; k < g->n && k < sent->nrcpt; k++)
		set_result(a, g->idx[k], &sent->rcpt[k], g->remote, 0);
	dest_release(a->q, g->key, c, sent->reusable, g->remote);
	group_done(g);
}

static void group_ready(void *arg, struct smtpc *c, const struct dest_status *st)
{
	struct group *g = arg;
	struct attempt *a = g->a;
	struct smtpc_msg m;

	g->wait = NULL;
	snprintf(g->remote, sizeof(g->remote), "%s", st->remote);
	if (!c) {
		for (size_t k = 0; k < g->n; k++)
			set_result(a, g->idx[k], &st->status, st->remote, st->permanent);
		group_done(g);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.sender = strcmp(a->env.v.from, "<>") ? a->env.v.from : "";
	m.rcpts = g->rc;
	m.nrcpt = g->n;
	m.ret = a->ret;
	m.envid = a->envid[0] ? a->envid : NULL;
	m.needs_8bitmime = a->needs_8bit;
	m.needs_smtputf8 = a->needs_utf8;
	m.body_fd = a->fd;
	m.body_off = (off_t)(a->env.v.body - a->buf);
	m.body_len = a->env.v.body_len;
	g->c = c;
	smtpc_send(c, &m, group_sent, g);
}

static struct group *group_for(struct attempt *a, const char *key)
{
	for (size_t g = 0; g < a->ngroups; g++)
		if (!strcmp(a->groups[g].key, key))
			return &a->groups[g];
	struct group *g = &a->groups[a->ngroups++];
	memset(g, 0, sizeof(*g));
	g->a = a;
	snprintf(g->key, sizeof(g->key), "%s", key);
	g->idx = xcalloc(a->env.nrcpt, sizeof(*g->idx));
	g->rc = xcalloc(a->env.nrcpt, sizeof(*g->rc));
	return g;
}

static void parse_params(struct attempt *a)
{
	char v[600];

	if (param_get(a->env.mail_params, "RET", v, sizeof(v)) == 0)
		a->ret = !strcasecmp(v, "FULL") ? SMTPC_RET_FULL : SMTPC_RET_HDRS;
	if (param_get(a->env.mail_params, "ENVID", v, sizeof(v)) == 0)
		snprintf(a->envid, sizeof(a->envid), "%s", v);
	a->needs_8bit = param_get(a->env.mail_params, "BODY", v, sizeof(v)) == 0 &&
			!strcasecmp(v, "8BITMIME");
	a->needs_utf8 = param_get(a->env.mail_params, "SMTPUTF8", v, sizeof(v)) == 0;
	a->notify = xcalloc(a->env.nrcpt, sizeof(*a->notify));
	a->orcpt = xcalloc(a->env.nrcpt, sizeof(*a->orcpt));
	for (size_t i = 0; i < a->env.nrcpt; i++) {
		if (param_get(a->env.rcpts[i].params, "NOTIFY", v, sizeof(v)) == 0)
			a->notify[i] = notify_bits(v);
		if (param_get(a->env.rcpts[i].params, "ORCPT", v, sizeof(v)) == 0)
			a->orcpt[i] = xstrdup(v);
	}
}

static void plan(struct attempt *a)
{
	char key[ATTEMPT_KEY_MAX];

	a->groups = xcalloc(a->env.nrcpt, sizeof(*a->groups));
	for (size_t i = 0; i < a->env.nrcpt; i++) {
		enum rcpt_status s = a->st.rcpts[i].status;
		if (s == RCPT_DELIVERED || s == RCPT_FAILED)
			continue;
		const struct qfile_rcpt *r = &a->env.rcpts[i];
		if (!strcmp(r->route, "mx"))
			snprintf(key, sizeof(key), "mx:%s", rcpt_domain(r->addr));
		else
			snprintf(key, sizeof(key), "%s", r->route);
		struct group *g = group_for(a, key);
		g->rc[g->n] = (struct smtpc_rcpt){ r->addr, a->notify[i], a->orcpt[i] };
		g->idx[g->n++] = i;
	}
	if (a->ngroups == 0) {
		conclude(a); /* every recipient final already: only the report and removal remain */
		return;
	}
	for (size_t g = 0; g < a->ngroups; g++)
		a->groups[g].wait = dest_acquire(a->q, a->groups[g].key, group_ready, &a->groups[g]);
}

static void remove_work(void *arg)
{
	struct attempt *a = arg;

	/* a crash before the next line leaves an orphan log: scan() sweeps it */
	queue_retire(a->q->queue, a->id, a->len, a->links);
	unlink(a->spath);
}

static void removed_done(void *arg)
{
	struct attempt *a = arg;

	if (!a->q->stopping)
		over(a, 0, 0);
}

static void load_done(void *arg)
{
	struct attempt *a = arg;

	if (a->q->stopping)
		return; /* shutting down: attempt_abort_all frees it */

	if (a->load_errno == ENOENT) {
		over(a, 0, 0); /* removed meanwhile (queue delete) */
		return;
	}
	if (a->load_errno) {
		log_err("qid=%s qmgr unreadable queue file: %s; left in place for inspection",
			a->id, a->load_why ? a->load_why : strerror(a->load_errno));
		over(a, a->now + (time_t)a->q->cfg->retry_max, 1);
		return;
	}
	if (a->st.deleted) {
		log_info("qid=%s qmgr deleted by the administrator (no report)", a->id);
		bgjob_submit(a->q->bg, remove_work, removed_done, a);
		return;
	}
	if (a->st.held) {
		over(a, 0, 1);
		return;
	}
	if (!a->st.retry_now && a->st.next_attempt > a->now) {
		over(a, a->st.next_attempt, 0);
		return;
	}
	parse_params(a);
	a->res = xcalloc(a->env.nrcpt, sizeof(*a->res));
	plan(a);
}

void attempt_start(struct qmgr *q, struct qentry *e)
{
	struct attempt *a = xcalloc(1, sizeof(*a));

	a->q = q;
	a->fd = -1;
	a->now = time(NULL);
	snprintf(a->id, sizeof(a->id), "%s", e->id);
	snprintf(a->path, sizeof(a->path), "%s/%s", q->incoming, e->id);
	snprintf(a->spath, sizeof(a->spath), "%s/%s", q->state_dir, e->id);
	e->inflight = 1;
	e->check = 0;
	q->inflight++;
	a->link = q->attempts;
	q->attempts = a;
	bgjob_submit(q->bg, load_work, load_done, a);
}

/* ---- record (thread) and report ----------------------------------------------------------- */

static time_t backoff(const struct config *cfg, unsigned attempts)
{
	time_t d = cfg->retry_first;

	for (unsigned i = 1; i < attempts && d < (time_t)cfg->retry_max; i++)
		d *= 2;
	return d < (time_t)cfg->retry_max ? d : (time_t)cfg->retry_max;
}

/* Folds this attempt's outcomes into the state; a deferral past the queue lifetime fails. */
static void merge(struct attempt *a)
{
	const struct config *cfg = a->q->cfg;
	time_t expires = (time_t)a->env.arrival + (time_t)cfg->max_lifetime;

	for (size_t i = 0; i < a->env.nrcpt; i++) {
		struct qstate_rcpt *r = &a->res[i];
		if (r->status == RCPT_PENDING)
			continue;
		if (r->status == RCPT_DEFERRED && a->now >= expires) {
			/* the last reply stays as it was: the report quotes it beside 4.4.7 */
			r->status = RCPT_FAILED;
			snprintf(r->enhanced, sizeof(r->enhanced), "4.4.7");
			log_info("qid=%s qmgr expired rcpt=<%s> dsn=4.4.7 after=%us", a->id,
				 a->env.rcpts[i].addr, cfg->max_lifetime);
		}
		a->st.rcpts[i] = *r;
	}
}

static void append_record(struct attempt *a, const char *rec, size_t n)
{
	a->records = xrealloc(a->records, a->rlen + n + 1);
	memcpy(a->records + a->rlen, rec, n);
	a->rlen += n;
}

static void build_records(struct attempt *a)
{
	char rec[QSTATE_TEXT_MAX * 4 + QSTATE_REMOTE_MAX * 3 + 128];

	for (size_t i = 0; i < a->env.nrcpt; i++)
		if (a->res[i].status != RCPT_PENDING)
			append_record(a, rec, qstate_format_rcpt(rec, sizeof(rec), i, &a->st.rcpts[i]));
	if (a->ngroups) {
		int n = snprintf(rec, sizeof(rec), "attempt %" PRId64 " %" PRId64 "\n",
				 (int64_t)a->now, (int64_t)a->next);
		append_record(a, rec, (size_t)n);
	}
}

/* Which report is due now: a failure report once every recipient is final, a delay report
 * once, after delay_warning. Never for the null sender (no bounce loops). */
static void choose_report(struct attempt *a)
{
	const struct config *cfg = a->q->cfg;
	int failed = 0, delayed = 0;

	if (!strcmp(a->env.v.from, "<>") || a->st.reported[0])
		return;
	for (size_t i = 0; i < a->env.nrcpt; i++) {
		if (a->st.rcpts[i].status == RCPT_FAILED && wants(a, i, SMTPC_NOTIFY_FAILURE))
			failed++;
		if (a->st.rcpts[i].status == RCPT_DEFERRED && wants(a, i, SMTPC_NOTIFY_DELAY))
			delayed++;
	}
	if (a->final && failed) {
		a->report = 1;
		a->report_kind = NDR_FAILURE;
	} else if (!a->final && delayed && !a->st.warned && cfg->delay_warning &&
		   a->now - (time_t)a->env.arrival >= (time_t)cfg->delay_warning) {
		a->report = 1;
		a->report_kind = NDR_DELAY;
	}
}

static void build_report(struct attempt *a)
{
	const struct config *cfg = a->q->cfg;
	struct ndr_rcpt *rr = xcalloc(a->env.nrcpt, sizeof(*rr));
	char *orcpt = xcalloc(a->env.nrcpt, 520);
	size_t n = 0;
	const char *err = NULL;
	char envid[128];

	for (size_t i = 0; i < a->env.nrcpt; i++) {
		const struct qstate_rcpt *r = &a->st.rcpts[i];
		int fail = a->report_kind == NDR_FAILURE && r->status == RCPT_FAILED &&
			   wants(a, i, SMTPC_NOTIFY_FAILURE);
		int delay = a->report_kind == NDR_DELAY && r->status == RCPT_DEFERRED &&
			    wants(a, i, SMTPC_NOTIFY_DELAY);
		if (!fail && !delay)
			continue;
		if (a->orcpt[i])
			xtext_decode(a->orcpt[i], orcpt + i * 520, 520);
		rr[n++] = (struct ndr_rcpt){
			.orcpt = a->orcpt[i] ? orcpt + i * 520 : NULL,
			.rcpt = a->env.rcpts[i].addr,
			.action = fail ? NDR_ACTION_FAILED : NDR_ACTION_DELAYED,
			.status = r->enhanced[0] && r->enhanced[0] != '-' ? r->enhanced
									 : (fail ? "5.0.0" : "4.0.0"),
			.remote_mta = r->remote[0] && strcmp(r->remote, "-") ? r->remote : NULL,
			.remote_reply = r->code ? r->text : NULL,
			.detail = r->code ? NULL : r->text,
			.last_attempt = r->when,
		};
	}
	xtext_decode(a->envid, envid, sizeof(envid));
	id_queue(a->report_qid);
	if (qmgr_tenant_route(a->q, rcpt_domain(a->env.v.from), a->report_route,
			      sizeof(a->report_route), a->report_tenant,
			      sizeof(a->report_tenant)) < 0) {
		snprintf(a->report_route, sizeof(a->report_route), "mx");
		snprintf(a->report_tenant, sizeof(a->report_tenant), "-");
	}
	struct ndr_input in = {
		.kind = a->report_kind, .reporting_mta = cfg->hostname, .queue_id = a->id,
		.envid = a->envid[0] ? envid : NULL, .sender = a->env.v.from,
		.arrival = (time_t)a->env.arrival,
		.retry_until = (time_t)a->env.arrival + (time_t)cfg->max_lifetime,
		.ret = a->ret == SMTPC_RET_FULL ? NDR_RET_FULL : NDR_RET_HDRS,
		.msg = a->env.v.body, .msg_len = a->env.v.body_len, .rcpts = rr, .nrcpts = n,
		.now = a->now, .token = a->report_qid,
	};
	a->ndr = n ? ndr_build(&in, &a->ndr_len, &a->ndr_flags, &err) : NULL;
	if (!a->ndr && n)
		log_err("qid=%s qmgr report not built: %s", a->id, err ? err : "?");
	free(rr);
	free(orcpt);
}

static void record_work(void *arg)
{
	struct attempt *a = arg;

	/* Every recipient final and nothing to report: the message is removed next, and a crash
	 * before that redelivers it whether or not its outcome was logged. No log, no fdatasync. */
	if (a->rlen && !(a->final && !a->report) && qstate_append(a->spath, a->records, a->rlen) < 0)
		a->report_failed = errno ? errno : EIO;
	if (a->report && !a->report_failed)
		build_report(a);
}

static void close_work(void *arg)
{
	struct attempt *a = arg;

	if (a->ndr_len && !a->report_failed)
		qstate_append_word(a->spath, a->report_kind == NDR_FAILURE ? "reported" : "warned",
				   a->report_kind == NDR_FAILURE ? a->report_qid : "1");
	if (a->final && !a->report_failed) {
		queue_retire(a->q->queue, a->id, a->len, a->links); /* as in remove_work */
		unlink(a->spath);
	}
}

static void close_done(void *arg)
{
	struct attempt *a = arg;

	if (a->q->stopping)
		return; /* shutting down: attempt_abort_all frees it */

	if (a->final && !a->report_failed) {
		log_info("qid=%s qmgr removed (every recipient final)%s%s", a->id,
			 a->ndr_len ? ", report queued as " : "", a->ndr_len ? a->report_qid : "");
		over(a, 0, 0);
		return;
	}
	over(a, a->report_failed ? a->now + (time_t)a->q->cfg->retry_first : a->next, 0);
}

static void report_committed(void *arg, int status)
{
	struct attempt *a = arg;

	if (a->q->stopping)
		return;
	if (status) {
		log_warn("qid=%s qmgr report not queued: %s; retrying later", a->id, strerror(status));
		a->report_failed = status;
	} else {
		log_info("qid=%s qmgr report %s queued as %s to <%s>", a->id,
			 a->report_kind == NDR_FAILURE ? "failure" : "delay", a->report_qid,
			 a->env.v.from);
	}
	bgjob_submit(a->q->bg, close_work, close_done, a);
}

/* Reports go out like any message: to the route of the tenant that serves the sender's domain,
 * else by MX. */
static void queue_report(struct attempt *a)
{
	struct queue_rcpt rc = { a->env.v.from, a->report_tenant, a->report_route, "" };
	char params[64];
	struct queue_envelope env = {
		.qid = a->report_qid, .arrival = a->now, .sid = "qmgr", .client_ip = "127.0.0.1",
		.helo = a->q->cfg->hostname, .tls = "", .mail_from = "", .rcpts = &rc, .nrcpt = 1,
	};

	snprintf(params, sizeof(params), "%s%s%s",
		 a->ndr_flags & NDR_NEEDS_8BITMIME ? "BODY=8BITMIME" : "",
		 (a->ndr_flags & NDR_NEEDS_8BITMIME) && (a->ndr_flags & NDR_NEEDS_SMTPUTF8) ? " " : "",
		 a->ndr_flags & NDR_NEEDS_SMTPUTF8 ? "SMTPUTF8" : "");
	env.mail_params = params;
	struct queue_msg *m = queue_msg_begin(a->q->queue, &env);
	if (!m) {
		report_committed(a, errno ? errno : EIO);
		return;
	}
	queue_msg_write(m, a->ndr, a->ndr_len);
	queue_msg_commit(&m, report_committed, a);
}

static void record_done(void *arg)
{
	struct attempt *a = arg;

	if (a->q->stopping)
		return; /* shutting down: attempt_abort_all frees it */

	if (a->report_failed) {
		log_err("qid=%s qmgr cannot record delivery state: %s", a->id, strerror(a->report_failed));
		over(a, a->now + (time_t)a->q->cfg->retry_first, 0);
		return;
	}
	if (a->ndr) {
		queue_report(a);
		return;
	}
	if (a->report) /* nothing to report after all: do not try again */
		a->report = 0;
	bgjob_submit(a->q->bg, close_work, close_done, a);
}

static void conclude(struct attempt *a)
{
	const struct config *cfg = a->q->cfg;
	time_t expires = (time_t)a->env.arrival + (time_t)cfg->max_lifetime;

	merge(a);
	a->final = qstate_all_final(&a->st);
	a->next = a->now + backoff(cfg, a->st.attempts + 1);
	if (a->next > expires)
		a->next = expires > a->now ? expires : a->now + 1;
	build_records(a);
	choose_report(a);
	if (a->final && !a->report) {
		/* the common end: record_work would write nothing (see there), so the message goes
		 * straight to removal, one hand-off to the thread instead of two */
		bgjob_submit(a->q->bg, close_work, close_done, a);
		return;
	}
	bgjob_submit(a->q->bg, record_work, record_done, a);
}

void attempt_abort_all(struct qmgr *q)
{
	while (q->attempts) {
		struct attempt *a = q->attempts;
		q->attempts = a->link;
		attempt_free(a);
	}
}
