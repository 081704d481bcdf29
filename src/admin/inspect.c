/* inspect: see inspect.h. The decisions come from engine_decide(), the function `serve` runs,
 * with a trace; the replies from the session's own reply builder. */
#include "admin/inspect.h"

#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "dns/dnsbl.h"
#include "policy/engine.h"
#include "policy/lint.h"
#include "policy/model.h"
#include "smtp/reply.h"
#include "store/store.h"
#include "util/ids.h"
#include "util/strutil.h"

#define EXIT_USAGE 2
#define EXPLAIN_RCPTS_MAX 64
#define LINT_TARGETS_MAX 4096
/* DNSBL lookups lint keeps in flight at once */
#define LINT_PARALLEL 64

/* A policy snapshot and a DNSBL resolver on a private loop, for one command. */
struct inspect_ctx {
	const struct config *cfg;
	struct event_base *base;
	struct dnsbl *dnsbl;
	struct model_snapshot *snap;
	int pending; /* probes and lookups started and not yet answered */
	int running; /* inside event_base_dispatch */
};

static int ctx_open(struct inspect_ctx *x, const struct config *cfg)
{
	char err[STORE_ERR_MAX];
	struct store *st = store_open(cfg->data_dir, STORE_READ_WRITE, err, sizeof(err));

	memset(x, 0, sizeof(*x));
	x->cfg = cfg;
	if (!st || !(x->snap = store_load(st, err, sizeof(err)))) {
		fprintf(stderr, "mxgate: policy store: %s\n", err);
		store_close(&st);
		return -1;
	}
	store_close(&st);
	x->base = event_base_new();
	x->dnsbl = x->base ? dnsbl_new(x->base, cfg, err, sizeof(err)) : NULL;
	if (!x->dnsbl) {
		fprintf(stderr, "mxgate: DNSBL resolver: %s\n", err);
		return -1;
	}
	return 0;
}

static void ctx_close(struct inspect_ctx *x)
{
	dnsbl_free(&x->dnsbl);
	model_unref(&x->snap);
	if (x->base)
		event_base_free(x->base);
}

static void one_done(void *arg)
{
	struct inspect_ctx *x = arg;

	if (--x->pending == 0 && x->running)
		event_base_loopbreak(x->base);
}

static void query_done(void *arg, struct dnsbl_query *q)
{
	(void)q;
	one_done(arg);
}

/* Runs the loop until every started probe or lookup has called back. */
static void ctx_wait(struct inspect_ctx *x)
{
	if (x->pending == 0)
		return;
	x->running = 1;
	event_base_dispatch(x->base);
	x->running = 0;
}

static void ctx_probe(struct inspect_ctx *x)
{
	if (x->cfg->ndnsbl == 0)
		return;
	x->pending++;
	dnsbl_probe_all(x->dnsbl, one_done, x);
	ctx_wait(x);
}

static struct dnsbl_query *ctx_lookup(struct inspect_ctx *x, const struct ip_addr *ip)
{
	struct dnsbl_query *q;

	x->pending++;
	q = dnsbl_lookup(x->dnsbl, ip, query_done, x); /* may answer before it returns */
	ctx_wait(x);
	return q;
}

/* ---- explain ------------------------------------------------------------------------ */

struct explain_opts {
	struct ip_addr ip;
	char ip_str[ADDR_STR_MAX];
	const char *rcpts[EXPLAIN_RCPTS_MAX];
	size_t nrcpts;
	const char *sender;
	const char *tls_names[ENGINE_TLS_NAMES_MAX];
	size_t ntls;
	int tls, json;
};

static const char explain_usage[] =
	"usage: mxgate [-c FILE] explain IP [--rcpt ADDR]... [--sender ADDR] [--tls]\n"
	"                                   [--tls-name NAME] [--json]\n"
	"Replays the decision `serve` makes for a client at IP, step by step, with live DNSBL\n"
	"lookups, and prints the exact SMTP reply. Without --rcpt, one recipient per tenant.\n"
	"--tls-name: the client presents a verified certificate for NAME (implies --tls).\n"
	"Exit: 0 accepted, 1 rejected, 3 temporary failure, 2 usage.\n";

static int explain_parse(int argc, char **argv, struct explain_opts *o)
{
	static const struct option opts[] = {
		{ "rcpt", required_argument, NULL, 'r' }, { "sender", required_argument, NULL, 's' },
		{ "tls", no_argument, NULL, 't' }, { "tls-name", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	optind = 0; /* 0, not 1: makes GNU getopt start over after an earlier parse */
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'r':
			if (o->nrcpts == EXPLAIN_RCPTS_MAX || !strchr(optarg, '@')) {
				fprintf(stderr, "mxgate: --rcpt needs an address user@domain (at most %d)\n",
					EXPLAIN_RCPTS_MAX);
				return EXIT_USAGE;
			}
			o->rcpts[o->nrcpts++] = optarg;
			break;
		case 's': o->sender = optarg; break;
		case 't': o->tls = 1; break;
		case 'n':
			if (o->ntls < ENGINE_TLS_NAMES_MAX)
				o->tls_names[o->ntls++] = optarg;
			o->tls = 1;
			break;
		case 'j': o->json = 1; break;
		case 'h': printf("%s", explain_usage); return 0;
		default: fprintf(stderr, "%s", explain_usage); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1 || ip_parse(argv[optind], &o->ip) < 0) {
		fprintf(stderr, "mxgate: explain needs one IPv4 or IPv6 address%s%s\n%s",
			optind < argc ? ", not " : "", optind < argc ? argv[optind] : "", explain_usage);
		return EXIT_USAGE;
	}
	ip_format(&o->ip, o->ip_str);
	return -1;
}

/* Splits ADDR at the last '@' into a lower-case domain. */
static const char *addr_domain(const char *addr, char *buf, size_t bufsz)
{
	const char *at = strrchr(addr, '@');

	snprintf(buf, bufsz, "%s", at ? at + 1 : "");
	return str_lower(buf);
}

/* The reply exactly as the session would send it, CRLFs removed for printing. */
static void explain_reply(const struct engine_verdict *v, const char *ip, const char *host,
			  char *out, size_t outsz)
{
	char text[1024], ref[SHORT_ID_LEN + 1];

	if (v->action == ENGINE_ACCEPT) {
		reply_format(out, outsz, v->code, v->enhanced, v->text);
	} else {
		id_short(ref);
		reply_reject_text(text, sizeof(text), v->text, ip, host, ref);
		reply_format(out, outsz, v->code, v->enhanced, text);
	}
	for (char *p = out; *p; p++)
		if (*p == '\r')
			memmove(p, p + 1, strlen(p));
}

static json_t *trace_json(const struct trace *tr)
{
	json_t *a = json_array();

	for (size_t i = 0; i < trace_count(tr); i++) {
		const struct trace_step *s = trace_at(tr, i);
		json_array_append_new(a, json_pack("{s:s,s:s}", "step", s->category, "text", s->text));
	}
	return a;
}

static void print_trace(const struct trace *tr)
{
	for (size_t i = 0; i < trace_count(tr); i++) {
		const struct trace_step *s = trace_at(tr, i);
		printf("  %2zu  %-10s %s\n", i + 1, s->category, s->text);
	}
}

/* Without --rcpt: postmaster of each tenant's first domain, so every tenant's view shows. */
static size_t default_rcpts(const struct model_snapshot *snap, char (*buf)[300], size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < model_ntenants(snap) && n < max; i++) {
		const struct model_tenant *t = model_tenant_at(snap, i);
		if (t->ndomains)
			snprintf(buf[n++], sizeof(buf[0]), "postmaster@%s", t->domains[0]);
	}
	return n;
}

static int explain_one(struct inspect_ctx *x, const struct explain_opts *o,
		       const struct engine_request *base_rq, const char *rcpt, json_t *jrcpts)
{
	char domain[256], reply[2048];
	struct engine_request rq = *base_rq;
	struct engine_verdict v;
	struct trace *tr = trace_new();

	rq.rcpt = rcpt;
	rq.rcpt_domain = addr_domain(rcpt, domain, sizeof(domain));
	engine_decide(&rq, &v, tr);
	explain_reply(&v, o->ip_str, x->cfg->hostname, reply, sizeof(reply));
	if (jrcpts) {
		json_array_append_new(jrcpts, json_pack(
			"{s:s,s:s,s:s,s:s?,s:s,s:s,s:s,s:s,s:i,s:o}", "rcpt", rcpt, "action",
			v.action == ENGINE_ACCEPT ? "accept" : v.code >= 500 ? "reject" : "tempfail",
			"rule", v.rule, "tenant", v.tenant ? v.tenant->name : NULL, "list", v.list,
			"entry", v.entry, "reason", v.reason ? v.reason : "", "reply", reply, "score",
			v.score, "steps", trace_json(tr)));
	} else {
		printf("\nrecipient <%s>\n", rcpt);
		print_trace(tr);
		printf("  reply: %s", reply);
	}
	trace_free(&tr);
	return v.action == ENGINE_ACCEPT ? 0 : v.code >= 500 ? 1 : 3;
}

static void explain_header(struct inspect_ctx *x, const struct explain_opts *o,
			   const struct dnsbl_answer *ans, size_t nans, json_t *j)
{
	char why[256];

	if (j) {
		json_object_set_new(j, "client", json_string(o->ip_str));
		json_object_set_new(j, "tls", json_boolean(o->tls));
		json_object_set_new(j, "generation", json_integer((json_int_t)model_generation(x->snap)));
		json_t *lists = json_array();
		for (size_t i = 0; i < nans; i++)
			json_array_append_new(lists, json_pack(
				"{s:s,s:s,s:s,s:s,s:i,s:i,s:b}", "list", ans[i].list->name, "display",
				ans[i].list->display_name, "state", dnsbl_state_name(ans[i].state), "detail",
				ans[i].detail, "elapsed_ms", (int)ans[i].elapsed_ms, "weight",
				ans[i].list->weight, "healthy", dnsbl_zone_healthy(x->dnsbl, i, why, sizeof(why))));
		json_object_set_new(j, "dnsbl", lists);
		return;
	}
	printf("mxgate explain %s%s (policy generation %llu, config %s)\n", o->ip_str,
	       o->tls ? " over TLS" : "", (unsigned long long)model_generation(x->snap),
	       x->cfg->source);
	for (size_t i = 0; i < nans; i++)
		if (!dnsbl_zone_healthy(x->dnsbl, i, why, sizeof(why)))
			printf("warning: DNSBL %s is out of decisions: %s\n", ans[i].list->name, why);
}

int inspect_explain_main(const struct config *cfg, int argc, char **argv)
{
	struct explain_opts o;
	struct inspect_ctx x;
	char defaults[EXPLAIN_RCPTS_MAX][300], sdomain[256] = "";
	int rc = explain_parse(argc, argv, &o), worst = 0;

	if (rc >= 0)
		return rc;
	if (ctx_open(&x, cfg) < 0) {
		ctx_close(&x);
		return 1;
	}
	ctx_probe(&x);
	struct dnsbl_query *q = ctx_lookup(&x, &o.ip);
	struct engine_client ec = { .ip = o.ip, .ip_str = o.ip_str, .tls = o.tls,
				    .tls_names = o.tls_names, .ntls_names = o.ntls };
	struct engine_request rq = { .snap = x.snap, .client = &ec,
				     .sender_domain = o.sender ? addr_domain(o.sender, sdomain, sizeof(sdomain)) : "",
				     .dnsbl_threshold = cfg->dnsbl_threshold };
	rq.dnsbl = dnsbl_query_answers(q, &rq.ndnsbl);
	rq.dnsbl_complete = dnsbl_query_complete(q);
	if (o.nrcpts == 0) {
		o.nrcpts = default_rcpts(x.snap, defaults, EXPLAIN_RCPTS_MAX);
		for (size_t i = 0; i < o.nrcpts; i++)
			o.rcpts[i] = defaults[i];
	}
	json_t *j = o.json ? json_object() : NULL, *jr = o.json ? json_array() : NULL;
	explain_header(&x, &o, rq.dnsbl, rq.ndnsbl, j);
	if (o.nrcpts == 0 && !o.json)
		printf("no tenants yet: nothing is accepted (mxgate tenant add NAME --route HOST:PORT)\n");
	for (size_t i = 0; i < o.nrcpts; i++) {
		rc = explain_one(&x, &o, &rq, o.rcpts[i], jr);
		worst = rc == 1 || worst == 1 ? 1 : rc > worst ? rc : worst;
	}
	if (j) {
		json_object_set_new(j, "recipients", jr);
		json_dumpf(j, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(j);
	}
	dnsbl_query_free(&q);
	ctx_close(&x);
	return worst;
}

/* ---- lint --------------------------------------------------------------------------- */

static const char lint_usage[] =
	"usage: mxgate [-c FILE] lint [--json]\n"
	"Warns about risky policy settings, each with the fix; looks up connector and Allow list\n"
	"addresses on the configured DNSBLs and probes every zone. Exit 1 when it warns.\n";

static void lint_dns(struct inspect_ctx *x, struct lint_report *r)
{
	struct lint_target *targets = calloc(LINT_TARGETS_MAX, sizeof(*targets));
	size_t nt = targets ? lint_dnsbl_targets(x->snap, targets, LINT_TARGETS_MAX) : 0;
	char why[256];

	ctx_probe(x);
	for (size_t i = 0; i < x->cfg->ndnsbl; i++)
		if (!dnsbl_zone_healthy(x->dnsbl, i, why, sizeof(why)))
			lint_add_zone(r, &x->cfg->dnsbl[i], why);
	for (size_t i = 0; i < nt && x->cfg->ndnsbl; i += LINT_PARALLEL) {
		struct dnsbl_query *q[LINT_PARALLEL];
		size_t batch = nt - i < LINT_PARALLEL ? nt - i : LINT_PARALLEL;
		for (size_t k = 0; k < batch; k++) {
			x->pending++;
			q[k] = dnsbl_lookup(x->dnsbl, &targets[i + k].ip, query_done, x);
		}
		ctx_wait(x);
		for (size_t k = 0; k < batch; k++) {
			size_t na;
			const struct dnsbl_answer *a = dnsbl_query_answers(q[k], &na);
			for (size_t j = 0; j < na; j++)
				if (a[j].state == DNSBL_LISTED && a[j].list->weight > 0)
					lint_add_listed(r, &targets[i + k], &a[j]);
			dnsbl_query_free(&q[k]);
		}
	}
	free(targets);
}

int inspect_lint_main(const struct config *cfg, int argc, char **argv)
{
	struct inspect_ctx x;
	struct lint_report r = { 0 };
	int json = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = 1;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("%s", lint_usage);
			return 0;
		} else {
			fprintf(stderr, "mxgate: lint: unexpected argument '%s'\n%s", argv[i], lint_usage);
			return EXIT_USAGE;
		}
	}
	if (ctx_open(&x, cfg) < 0) {
		ctx_close(&x);
		return 1;
	}
	lint_static(x.snap, cfg, &r);
	lint_dns(&x, &r);
	if (json) {
		json_t *a = json_array();
		for (size_t i = 0; i < r.n; i++)
			json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s}", "check", r.findings[i].check,
							   "subject", r.findings[i].subject, "problem",
							   r.findings[i].problem, "fix", r.findings[i].fix));
		json_dumpf(a, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(a);
	} else {
		for (size_t i = 0; i < r.n; i++)
			printf("warning [%s] %s: %s\n  fix: %s\n", r.findings[i].check,
			       r.findings[i].subject, r.findings[i].problem, r.findings[i].fix);
		printf("%zu warning%s\n", r.n, r.n == 1 ? "" : "s");
	}
	int rc = r.n ? 1 : 0;
	lint_report_free(&r);
	ctx_close(&x);
	return rc;
}
