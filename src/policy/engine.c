/* engine: see engine.h and docs/policy-precedence.md. Each rule is a small function that
 * either decides (fills the verdict, returns 1) or has no opinion (returns 0); engine_decide
 * runs them in the documented order. */
#include "policy/engine.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* What the engine learned about the client's connectors, for the recipient's tenant. */
struct conn_facts {
	const struct engine_request *rq;
	const struct model_tenant *tenant;
	struct trace *tr;
	const struct model_connector *onprem;      /* of the tenant, by IP or TLS name */
	const struct model_connector *partner_tls; /* of the tenant, by IP, require_tls */
	const struct model_connector *relay;       /* any tenant's onprem connector allowing relay */
	int relay_candidates;
	char relay_refusal[ENGINE_TEXT_MAX];
};

/* The texts every decision writes are built without snprintf, which cost more than the rest
 * of an accepting decision (docs/performance.md, "Policy decision"). */

/* Writes a then b into out (outsz > 0), truncated like snprintf(out, outsz, "%s%s", a, b). */
static void text2(char *out, size_t outsz, const char *a, const char *b)
{
	size_t la = strnlen(a, outsz - 1), lb = strnlen(b, outsz - 1 - la);

	memcpy(out, a, la);
	memcpy(out + la, b, lb);
	out[la + lb] = '\0';
}

/* Copies a string literal into a char array it fits in (checked when compiled). */
#define COPY_LITERAL(arr, lit)                                              \
	do {                                                                    \
		_Static_assert(sizeof(lit) <= sizeof(arr), "literal too long");    \
		memcpy((arr), (lit), sizeof(lit));                                  \
	} while (0)

static void set_reject(struct engine_verdict *v, int code, const char *enh, const char *rule)
{
	v->action = ENGINE_REJECT;
	v->code = code;
	text2(v->enhanced, sizeof(v->enhanced), enh, "");
	v->rule = rule;
}

static void set_accept(struct engine_verdict *v, const char *rule, const char *reason)
{
	v->action = ENGINE_ACCEPT;
	v->code = 250;
	COPY_LITERAL(v->enhanced, "2.1.5");
	COPY_LITERAL(v->text, "Ok");
	v->rule = rule;
	v->reason = reason;
}

static int domain_in_tenant(const struct model_tenant *t, const char *domain)
{
	for (size_t i = 0; i < t->ndomains; i++)
		if (strcmp(t->domains[i], domain) == 0)
			return 1;
	return 0;
}

/* A TLS name vouches for a tenant when it is one of its domains or a host inside one. */
static int name_in_tenant(const struct model_tenant *t, const char *name)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < t->ndomains; i++) {
		size_t dlen = strlen(t->domains[i]);
		if (strcasecmp(name, t->domains[i]) == 0 ||
		    (nlen > dlen && name[nlen - dlen - 1] == '.' &&
		     strcasecmp(name + nlen - dlen, t->domains[i]) == 0))
			return 1;
	}
	return 0;
}

static const char *type_name(enum connector_type t)
{
	return t == CONNECTOR_ONPREM ? "onprem" : "partner";
}

/* ---- DNSBL score -------------------------------------------------------------------- */

/* Some answers are missing: still pending, or the query ended at its deadline without them. */
static int dnsbl_missing(const struct engine_request *rq)
{
	if (!rq->dnsbl_complete)
		return 1;
	for (size_t i = 0; i < rq->ndnsbl; i++)
		if (rq->dnsbl[i].state == DNSBL_TIMEOUT || rq->dnsbl[i].state == DNSBL_PENDING)
			return 1;
	return 0;
}

static void dnsbl_score(const struct engine_request *rq, struct engine_verdict *v,
			struct trace *tr)
{
	size_t off = 0;
	char code[ADDR_STR_MAX];

	v->score = 0;
	for (size_t i = 0; i < rq->ndnsbl; i++) {
		const struct dnsbl_answer *a = &rq->dnsbl[i];
		snprintf(code, sizeof(code), "%u.%u.%u.%u", a->code >> 24, (a->code >> 16) & 255,
			 (a->code >> 8) & 255, a->code & 255);
		if (a->state == DNSBL_LISTED)
			v->score += a->list->weight;
		TRACE(tr, "dnsbl", "%s: %s%s%s%s%s%s (weight %d, %u ms%s)", a->list->display_name,
		      dnsbl_state_name(a->state), a->code ? " " : "", a->code ? code : "",
		      a->txt[0] ? " \"" : "", a->txt, a->txt[0] ? "\"" : "", a->list->weight,
		      a->elapsed_ms, a->cached ? ", cached" : "");
		if (a->detail[0])
			TRACE(tr, "dnsbl", "%s: %s", a->list->display_name, a->detail);
		if (a->state == DNSBL_NOT_LISTED || a->state == DNSBL_SKIPPED)
			continue;
		int n = snprintf(v->dnsbl_summary + off, sizeof(v->dnsbl_summary) - off, "%s%s:%s",
				 off ? "," : "", a->state == DNSBL_LISTED ? "listed"
						 : a->state == DNSBL_TIMEOUT ? "timeout"
						 : a->state == DNSBL_PENDING ? "timeout"
									      : "error",
				 a->list->name);
		if (n > 0 && (size_t)n < sizeof(v->dnsbl_summary) - off)
			off += (size_t)n;
	}
	if (off == 0 && rq->ndnsbl)
		COPY_LITERAL(v->dnsbl_summary, "clean");
	else if (off == 0)
		COPY_LITERAL(v->dnsbl_summary, "none");
	TRACE(tr, "dnsbl", "score %d, threshold %d%s", v->score, rq->dnsbl_threshold,
	      dnsbl_missing(rq) ? " (some answers missing: deciding without them)" : "");
}

/* ---- connectors --------------------------------------------------------------------- */

static void consider_relay(struct conn_facts *f, const struct model_connector *c, const char *how)
{
	const struct engine_request *rq = f->rq;
	const struct model_tenant *t = c->tenant;

	if (c->type != CONNECTOR_ONPREM || f->relay)
		return;
	f->relay_candidates++;
	if (rq->sender_domain[0] && domain_in_tenant(t, rq->sender_domain)) {
		f->relay = c;
		TRACE(f->tr, "relay", "onprem connector %s of tenant %s (%s): sender domain %s is "
		      "the tenant's: relay allowed", c->name, t->name, how, rq->sender_domain);
		return;
	}
	for (size_t i = 0; i < rq->client->ntls_names; i++) {
		if (name_in_tenant(t, rq->client->tls_names[i])) {
			f->relay = c;
			TRACE(f->tr, "relay", "onprem connector %s of tenant %s: verified TLS name %s "
			      "is in the tenant's domains: relay allowed", c->name, t->name,
			      rq->client->tls_names[i]);
			return;
		}
	}
	snprintf(f->relay_refusal, sizeof(f->relay_refusal),
		 "client [%s] is on-premises connector %s of tenant %s, but the sender domain %s "
		 "is not one of that tenant's domains", rq->client->ip_str, c->name, t->name,
		 rq->sender_domain[0] ? rq->sender_domain : "(null sender)");
	TRACE(f->tr, "relay", "onprem connector %s of tenant %s (%s): sender domain %s is not the "
	      "tenant's: no relay", c->name, t->name, how,
	      rq->sender_domain[0] ? rq->sender_domain : "(null sender)");
}

static void on_connector_ip(const struct model_connector *c, const struct cidr *range, void *arg)
{
	struct conn_facts *f = arg;
	char r[ADDR_STR_MAX + 8];

	TRACE(f->tr, "connector", "%s connector %s of tenant %s matches by IP range %s%s%s",
	      type_name(c->type), c->name, c->tenant->name, cidr_format(range, r, sizeof(r)),
	      c->require_tls ? " (requires TLS)" : "",
	      f->tenant && c->tenant != f->tenant ? " (another tenant: not considered)" : "");
	if (!f->tenant) {
		consider_relay(f, c, "IP");
		return;
	}
	if (c->tenant != f->tenant)
		return;
	if (c->type == CONNECTOR_ONPREM && !f->onprem)
		f->onprem = c;
	if (c->type == CONNECTOR_PARTNER && c->require_tls && !f->partner_tls)
		f->partner_tls = c;
}

static void on_connector_tls(const struct model_connector *c, void *arg)
{
	struct conn_facts *f = arg;

	TRACE(f->tr, "connector", "%s connector %s of tenant %s matches by verified TLS name %s",
	      type_name(c->type), c->name, c->tenant->name, c->tls_name);
	if (!f->tenant) {
		consider_relay(f, c, "TLS name");
		return;
	}
	if (c->tenant == f->tenant && c->type == CONNECTOR_ONPREM && !f->onprem)
		f->onprem = c;
}

static void gather_connectors(struct conn_facts *f)
{
	const struct engine_request *rq = f->rq;

	model_connectors_matching_ip(rq->snap, &rq->client->ip, on_connector_ip, f);
	for (size_t i = 0; i < rq->client->ntls_names; i++)
		model_connectors_matching_tls(rq->snap, rq->client->tls_names[i], on_connector_tls, f);
}

/* ---- the rules, in order ------------------------------------------------------------ */

/* 1. A domain no tenant serves: relay for a tenant's own servers only. */
static int rule_relay(const struct engine_request *rq, struct engine_verdict *v,
		      struct trace *tr)
{
	struct conn_facts f = { .rq = rq, .tr = tr };

	TRACE(tr, "tenant", "recipient domain %s is not served by any tenant: relay rules apply",
	      rq->rcpt_domain);
	gather_connectors(&f);
	if (f.relay) {
		v->tenant = f.relay->tenant;
		snprintf(v->route, sizeof(v->route), "mx");
		snprintf(v->list, sizeof(v->list), "onprem connector %s", f.relay->name);
		set_accept(v, "onprem-relay", "onprem-relay");
		return 1;
	}
	set_reject(v, 550, "5.7.1", "relay");
	if (f.relay_candidates)
		snprintf(v->text, sizeof(v->text), "Unable to relay to %s: %s", rq->rcpt_domain,
			 f.relay_refusal);
	else
		snprintf(v->text, sizeof(v->text),
			 "Unable to relay: %s is not a domain this gateway serves, and client [%s] "
			 "is not an on-premises connector of any tenant", rq->rcpt_domain,
			 rq->client->ip_str);
	snprintf(v->list, sizeof(v->list), "relay");
	v->reason = "relay-denied";
	return 1;
}

struct ip_trace {
	struct trace *tr;
	const struct model_ip_entry *winner;
};

static void trace_ip_entry(const struct model_ip_entry *e, void *arg)
{
	struct ip_trace *it = arg;
	char net[ADDR_STR_MAX + 8];

	TRACE(it->tr, "ip-list", "%s list entry %s%s%s%s matches%s",
	      e->list == IP_LIST_ALLOW ? "Allow" : "Block", cidr_format(&e->net, net, sizeof(net)),
	      e->comment[0] ? " \"" : "", e->comment, e->comment[0] ? "\"" : "",
	      e == it->winner ? " <- most specific (wins)" : "");
}

static void describe_entry(const struct model_ip_entry *e, char *out, size_t outsz)
{
	char net[ADDR_STR_MAX + 8];

	if (!e->comment[0]) {
		cidr_format(&e->net, out, outsz);
		return;
	}
	cidr_format(&e->net, net, sizeof(net));
	snprintf(out, outsz, "%s (%s)", net, e->comment);
}

/* 2. The tenant's Allow and Block lists: the most specific entry wins, Block on a tie. */
static const struct model_ip_entry *rule_ip_lists(const struct engine_request *rq,
						  const struct model_tenant *t,
						  struct engine_verdict *v, struct trace *tr)
{
	const struct model_ip_entry *e = model_ip_lookup(rq->snap, t, &rq->client->ip);
	struct ip_trace it = { tr, e };

	if (tr)
		model_ip_each_match(rq->snap, t, &rq->client->ip, trace_ip_entry, &it);
	if (!e) {
		TRACE(tr, "ip-list", "no Allow or Block entry of tenant %s contains %s", t->name,
		      rq->client->ip_str);
		return NULL;
	}
	if (e->list != IP_LIST_BLOCK)
		return e;
	describe_entry(e, v->entry, sizeof(v->entry));
	snprintf(v->list, sizeof(v->list), "IP Block list of tenant %s", t->name);
	set_reject(v, 550, "5.7.1", "ip-block");
	v->reason = "ip-block";
	snprintf(v->text, sizeof(v->text),
		 "Service unavailable; client [%s] blocked by %s using its IP Block list (entry %s)",
		 rq->client->ip_str, rq->rcpt_domain, v->entry);
	return e;
}

/* The local part of an address as sent, in the directory's canonical form: a quoted-string
 * loses its quotes and backslashes ("b\"ob"@x -> b"ob). Returns -1 when it is empty or longer
 * than MODEL_LOCAL_MAX, so no directory entry can match. */
static int rcpt_local(const char *rcpt, char out[MODEL_LOCAL_MAX + 1])
{
	const char *at = strrchr(rcpt, '@');
	size_t len = at ? (size_t)(at - rcpt) : strlen(rcpt), n = 0;

	if (len >= 2 && rcpt[0] == '"' && rcpt[len - 1] == '"') {
		for (size_t i = 1; i + 1 < len; i++) {
			if (rcpt[i] == '\\' && i + 2 < len)
				i++;
			if (n == MODEL_LOCAL_MAX)
				return -1;
			out[n++] = rcpt[i];
		}
	} else {
		if (len > MODEL_LOCAL_MAX)
			return -1;
		memcpy(out, rcpt, len);
		n = len;
	}
	out[n] = '\0';
	return n ? 0 : -1;
}

/* Copies an address for a reply text: quotes and backslashes (of a quoted local part) and
 * control bytes become '?', so the text needs no escaping where it is quoted again (logs). */
static void text_safe(const char *in, char *out, size_t outsz)
{
	size_t n = 0;

	for (; *in && n + 1 < outsz; in++) {
		unsigned char c = (unsigned char)*in;
		out[n++] = c == '"' || c == '\\' || c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	out[n] = '\0';
}

/* Refuses an address the tenant does not have: 550 5.1.1 naming the address and its domain,
 * never the tenant's route (what decided goes to the list and entry, for logs). */
static int recipient_unknown(const struct engine_request *rq, struct engine_verdict *v,
			     const char *how, const struct model_tenant *t, const char *entry)
{
	char shown[ENGINE_FIELD_MAX];

	text_safe(rq->rcpt, shown, sizeof(shown));
	set_reject(v, 550, "5.1.1", "recipient-unknown");
	v->reason = "recipient-unknown";
	snprintf(v->list, sizeof(v->list), "recipient %s of tenant %s", how, t->name);
	snprintf(v->entry, sizeof(v->entry), "%s", entry);
	snprintf(v->text, sizeof(v->text), "Recipient address rejected: %s does not exist at %s",
		 shown, rq->rcpt_domain);
	return 1;
}

/* 3a with recipient check probe: the caller asked the tenant's server. Only a permanent
 * refusal there refuses; no answer is a temporary failure, never a 550. */
static int rule_recipient_probe(const struct engine_request *rq, const struct model_tenant *t,
				struct engine_verdict *v, struct trace *tr)
{
	const struct engine_probe *p = rq->rcpt_probe;
	char shown[ENGINE_FIELD_MAX];

	if (p && p->state == ENGINE_PROBE_ACCEPTED) {
		TRACE(tr, "recipient", "the server of tenant %s accepts %s (probe%s: %s)", t->name,
		      rq->rcpt, p->cached ? ", cached" : "", p->detail);
		return 0;
	}
	if (p && p->state == ENGINE_PROBE_REJECTED) {
		TRACE(tr, "recipient", "the server of tenant %s refuses %s (probe%s: %s)", t->name,
		      rq->rcpt, p->cached ? ", cached" : "", p->detail);
		return recipient_unknown(rq, v, "probe", t, p->detail);
	}
	TRACE(tr, "recipient", "no answer from the server of tenant %s about %s (%s)", t->name,
	      rq->rcpt, p ? p->detail : "no probe made");
	v->probe_wanted = p == NULL;
	text_safe(rq->rcpt, shown, sizeof(shown));
	v->action = ENGINE_TEMPFAIL;
	v->code = 451;
	snprintf(v->enhanced, sizeof(v->enhanced), "4.4.3");
	v->rule = "recipient-probe";
	v->reason = "recipient-probe-failed";
	snprintf(v->list, sizeof(v->list), "recipient probe of tenant %s", t->name);
	snprintf(v->entry, sizeof(v->entry), "%s", p ? p->detail : "no probe made");
	snprintf(v->text, sizeof(v->text), "Recipient address %s cannot be verified at %s right "
		 "now; try again later", shown, rq->rcpt_domain);
	return 1;
}

/* 3a. The tenant's recipient directory (or its server, asked by a probe): an address the
 * tenant does not have is refused at RCPT, so mxgate never accepts mail that it would have
 * to bounce to a forged sender. postmaster is exempt (RFC 5321 section 4.5.1). */
static int rule_recipient(const struct engine_request *rq, const struct model_tenant *t,
			  struct engine_verdict *v, struct trace *tr)
{
	char local[MODEL_LOCAL_MAX + 1];
	enum model_rcpt_match m = MODEL_RCPT_UNKNOWN;
	int have_local;

	if (t->recipient_check == RCPT_CHECK_OFF) {
		TRACE(tr, "recipient", "tenant %s does not check recipients (recipient check off)",
		      t->name);
		return 0;
	}
	have_local = rcpt_local(rq->rcpt, local) == 0;
	if (have_local && strcasecmp(local, "postmaster") == 0) {
		TRACE(tr, "recipient", "%s: postmaster is always accepted (RFC 5321 section 4.5.1), "
		      "listed or not", rq->rcpt);
		return 0;
	}
	if (t->recipient_check == RCPT_CHECK_PROBE)
		return rule_recipient_probe(rq, t, v, tr);
	if (have_local)
		m = model_recipient_known(rq->snap, t, local, rq->rcpt_domain);
	if (m == MODEL_RCPT_LISTED || m == MODEL_RCPT_CATCHALL) {
		TRACE(tr, "recipient", "%s is in the recipient directory of tenant %s%s%s", rq->rcpt,
		      t->name, m == MODEL_RCPT_CATCHALL ? " by its catch-all entry *@" : "",
		      m == MODEL_RCPT_CATCHALL ? rq->rcpt_domain : "");
		return 0;
	}
	TRACE(tr, "recipient", "%s is not in the recipient directory of tenant %s (%zu entries), "
	      "nor is a catch-all *@%s", rq->rcpt, t->name, t->nrecipients, rq->rcpt_domain);
	return recipient_unknown(rq, v, "directory", t, "");
}

static void dnsbl_reject_text(const struct engine_request *rq, struct engine_verdict *v)
{
	size_t off = (size_t)snprintf(v->text, sizeof(v->text),
				      "Service unavailable; client [%s] blocked using ",
				      rq->client->ip_str);
	int first = 1;

	for (size_t i = 0; i < rq->ndnsbl && off < sizeof(v->text); i++) {
		const struct dnsbl_answer *a = &rq->dnsbl[i];
		const struct dnsbl_config *l = a->list;
		if (a->state != DNSBL_LISTED || l->weight <= 0)
			continue;
		off += (size_t)snprintf(v->text + off, sizeof(v->text) - off, "%s%s", first ? "" : ", ",
					l->display_name);
		if (first)
			snprintf(v->list, sizeof(v->list), "%s", l->display_name);
		first = 0;
		if (a->txt[0] && off < sizeof(v->text))
			off += (size_t)snprintf(v->text + off, sizeof(v->text) - off, " (%s)", a->txt);
		if (l->url[0] && off < sizeof(v->text)) {
			const char *mark = strstr(l->url, "{ip}");
			if (mark)
				off += (size_t)snprintf(v->text + off, sizeof(v->text) - off, "; see %.*s%s%s",
							(int)(mark - l->url), l->url, rq->client->ip_str,
							mark + 4);
			else
				off += (size_t)snprintf(v->text + off, sizeof(v->text) - off, "; see %s",
							l->url);
		}
	}
}

void engine_decide(const struct engine_request *rq, struct engine_verdict *v, struct trace *tr)
{
	const struct model_tenant *t;
	const struct model_ip_entry *e;
	struct conn_facts f = { .rq = rq, .tr = tr };

	memset(v, 0, sizeof(*v));
	TRACE(tr, "client", "client [%s], %s%s%s", rq->client->ip_str,
	      rq->client->tls ? "TLS" : "no TLS", rq->client->ntls_names ? ", verified name " : "",
	      rq->client->ntls_names ? rq->client->tls_names[0] : "");
	dnsbl_score(rq, v, tr);
	t = rq->rcpt_domain[0] ? model_tenant_for_domain(rq->snap, rq->rcpt_domain) : NULL;
	if (!t) {
		rule_relay(rq, v, tr);
		goto done;
	}
	v->tenant = t;
	/* cannot fail: MODEL_ROUTE_SPEC_MAX has room for any stored route and mode */
	model_route_spec_format(t->route, t->route_tls, v->route, sizeof(v->route));
	TRACE(tr, "tenant", "recipient %s: domain %s belongs to tenant %s (route %s)", rq->rcpt,
	      rq->rcpt_domain, t->name, v->route);
	f.tenant = t;
	gather_connectors(&f); /* before rule 2, so the trace shows them even on a Block */
	e = rule_ip_lists(rq, t, v, tr);
	if (v->action == ENGINE_REJECT)
		goto done;
	if (f.partner_tls && !rq->client->tls) {
		set_reject(v, 530, "5.7.0", "partner-tls");
		v->reason = "partner-tls";
		snprintf(v->list, sizeof(v->list), "partner connector %s", f.partner_tls->name);
		snprintf(v->text, sizeof(v->text),
			 "Must issue a STARTTLS command first: partner connector %s of tenant %s "
			 "requires TLS", f.partner_tls->name, t->name);
		goto done;
	}
	if (rule_recipient(rq, t, v, tr))
		goto done;
	if (e) {
		describe_entry(e, v->entry, sizeof(v->entry));
		text2(v->list, sizeof(v->list), "IP Allow list of tenant ", t->name);
		set_accept(v, "ip-allow", "allow-list");
		goto done;
	}
	if (f.onprem) {
		text2(v->list, sizeof(v->list), "onprem connector ", f.onprem->name);
		set_accept(v, "onprem-connector", "onprem-connector");
		goto done;
	}
	if (rq->ndnsbl && v->score >= rq->dnsbl_threshold) {
		set_reject(v, 550, "5.7.1", "dnsbl");
		v->reason = "dnsbl-listed";
		dnsbl_reject_text(rq, v);
		goto done;
	}
	set_accept(v, "default", rq->ndnsbl == 0 ? "no-dnsbl"
				 : dnsbl_missing(rq) ? "dnsbl-timeout"
						     : "dnsbl-clean");
done:
	TRACE(tr, "decision", "%s by rule %s%s%s%s%s%s: %d %s %s",
	      v->action == ENGINE_ACCEPT ? "accept"
	      : v->action == ENGINE_REJECT ? "reject" : "tempfail", v->rule, v->list[0] ? " (" : "",
	      v->list, v->entry[0] ? ", entry " : "", v->entry, v->list[0] ? ")" : "", v->code,
	      v->enhanced, v->text);
}
