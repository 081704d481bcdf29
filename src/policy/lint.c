/* lint: see lint.h. */
#include "policy/lint.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

/* Allow ranges wider than these, in public space, let far more than one partner's servers
 * skip every DNSBL. */
#define LINT_ALLOW_MAX_V4 24
#define LINT_ALLOW_MAX_V6 48
/* Ranges of up to 2^8 addresses (a /24, a /120) are looked up address by address. */
#define LINT_RANGE_HOST_BITS 8

static struct lint_finding *add(struct lint_report *r, const char *check)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->findings = xrealloc(r->findings, r->cap * sizeof(*r->findings));
	}
	struct lint_finding *f = &r->findings[r->n++];
	memset(f, 0, sizeof(*f));
	f->check = check;
	return f;
}

void lint_report_free(struct lint_report *r)
{
	free(r->findings);
	memset(r, 0, sizeof(*r));
}

static const char *const non_public[] = {
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
	"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
	"::/128", "::1/128", "fc00::/7", "fe80::/10", "2001:db8::/32", "ff00::/8",
};

int lint_ip_public(const struct ip_addr *ip)
{
	struct cidr c;

	for (size_t i = 0; i < sizeof(non_public) / sizeof(non_public[0]); i++)
		if (cidr_parse(non_public[i], &c) == ADDR_OK && cidr_contains(&c, ip))
			return 0;
	return 1;
}

static int overlap(const struct cidr *a, const struct cidr *b)
{
	return cidr_contains(a, &b->net) || cidr_contains(b, &a->net);
}

static char *fmt(char *buf, const struct cidr *c)
{
	return cidr_format(c, buf, ADDR_STR_MAX + 8);
}

struct entries {
	const struct model_ip_entry **v;
	size_t n, cap;
};

static void collect(const struct model_ip_entry *e, void *arg)
{
	struct entries *es = arg;

	if (es->n == es->cap) {
		es->cap = es->cap ? es->cap * 2 : 64;
		es->v = xrealloc(es->v, es->cap * sizeof(*es->v));
	}
	es->v[es->n++] = e;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct model_ip_entry *x = *(const struct model_ip_entry *const *)a;
	const struct model_ip_entry *y = *(const struct model_ip_entry *const *)b;
	int c = memcmp(x->net.net.b, y->net.net.b, 16);

	if (c)
		return c;
	if (x->net.prefix != y->net.prefix)
		return x->net.prefix < y->net.prefix ? -1 : 1;
	return (int)x->list - (int)y->list;
}

static void check_connector_allow(const struct model_tenant *t, const struct entries *es,
				  struct lint_report *r)
{
	char a[ADDR_STR_MAX + 8], b[ADDR_STR_MAX + 8];

	for (size_t c = 0; c < t->nconnectors; c++) {
		const struct model_connector *k = t->connectors[c];
		for (size_t i = 0; i < k->nranges; i++)
			for (size_t e = 0; e < es->n; e++) {
				if (es->v[e]->list != IP_LIST_ALLOW || !overlap(&k->ranges[i], &es->v[e]->net))
					continue;
				struct lint_finding *f = add(r, "connector-allow-overlap");
				snprintf(f->subject, sizeof(f->subject), "tenant %s", t->name);
				snprintf(f->problem, sizeof(f->problem),
					 "%s connector %s range %s overlaps IP Allow entry %s: one address is "
					 "trusted by two mechanisms (the case that hid a blocklist in EOP)",
					 k->type == CONNECTOR_ONPREM ? "onprem" : "partner", k->name,
					 fmt(a, &k->ranges[i]), fmt(b, &es->v[e]->net));
				snprintf(f->fix, sizeof(f->fix),
					 "keep only the tenant's own servers on the connector and remove %s "
					 "from one of them (`mxgate allow remove %s %s` if the connector is "
					 "right)", b, t->name, b);
			}
	}
}

static void check_entries(const struct model_tenant *t, struct entries *es, struct lint_report *r)
{
	char a[ADDR_STR_MAX + 8];

	if (es->n) /* qsort(NULL, 0) is undefined */
		qsort(es->v, es->n, sizeof(*es->v), entry_cmp);
	for (size_t i = 0; i < es->n; i++) {
		const struct model_ip_entry *e = es->v[i];
		if (i + 1 < es->n && es->v[i + 1]->net.prefix == e->net.prefix &&
		    !memcmp(es->v[i + 1]->net.net.b, e->net.net.b, 16) && e->list != es->v[i + 1]->list) {
			struct lint_finding *f = add(r, "allow-block-same");
			snprintf(f->subject, sizeof(f->subject), "tenant %s", t->name);
			snprintf(f->problem, sizeof(f->problem),
				 "%s is on both the IP Allow and the IP Block list; Block wins the tie",
				 fmt(a, &e->net));
			snprintf(f->fix, sizeof(f->fix), "remove it from the list that is wrong "
				 "(`mxgate allow remove %s %s` or `mxgate block remove %s %s`)",
				 t->name, a, t->name, a);
		}
		unsigned width = ip_is_v4(&e->net.net) ? e->net.prefix - 96u : e->net.prefix;
		unsigned limit = ip_is_v4(&e->net.net) ? LINT_ALLOW_MAX_V4 : LINT_ALLOW_MAX_V6;
		if (e->list == IP_LIST_ALLOW && width < limit && lint_ip_public(&e->net.net)) {
			struct lint_finding *f = add(r, "allow-range-wide");
			snprintf(f->subject, sizeof(f->subject), "tenant %s", t->name);
			snprintf(f->problem, sizeof(f->problem),
				 "IP Allow entry %s is wider than /%u in public address space: every "
				 "host in it skips the DNSBLs for this tenant", fmt(a, &e->net), limit);
			snprintf(f->fix, sizeof(f->fix), "list the partner's mail servers only "
				 "(/%u or narrower), or use a partner connector with a TLS name", limit);
		}
	}
}

/* Every connector range with its connector, so overlaps are one pass over pairs. */
struct range_ref {
	const struct model_connector *c;
	const struct cidr *range;
};

static size_t collect_ranges(const struct model_snapshot *snap, struct range_ref **out)
{
	size_t n = 0, cap = 0;

	*out = NULL;
	for (size_t i = 0; i < model_ntenants(snap); i++) {
		const struct model_tenant *t = model_tenant_at(snap, i);
		for (size_t c = 0; c < t->nconnectors; c++)
			for (size_t k = 0; k < t->connectors[c]->nranges; k++) {
				if (n == cap) {
					cap = cap ? cap * 2 : 64;
					*out = xrealloc(*out, cap * sizeof(**out));
				}
				(*out)[n++] = (struct range_ref){ t->connectors[c], &t->connectors[c]->ranges[k] };
			}
	}
	return n;
}

static void check_cross_tenant(const struct model_snapshot *snap, struct lint_report *r)
{
	char a[ADDR_STR_MAX + 8], b[ADDR_STR_MAX + 8];
	struct range_ref *rr;
	size_t n = collect_ranges(snap, &rr);

	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			const struct model_connector *p = rr[i].c, *q = rr[j].c;
			if (p->tenant == q->tenant || !overlap(rr[i].range, rr[j].range))
				continue;
			struct lint_finding *f = add(r, "connector-two-tenants");
			snprintf(f->subject, sizeof(f->subject), "tenants %s and %s", p->tenant->name,
				 q->tenant->name);
			snprintf(f->problem, sizeof(f->problem),
				 "connector %s (%s) of %s and connector %s (%s) of %s cover the same "
				 "addresses: relay attribution is ambiguous", p->name, fmt(a, rr[i].range),
				 p->tenant->name, q->name, fmt(b, rr[j].range), q->tenant->name);
			snprintf(f->fix, sizeof(f->fix), "a shared host cannot be either tenant's own "
				 "server: narrow the ranges, or identify each tenant's servers by TLS name");
		}
	free(rr);
}

void lint_static(const struct model_snapshot *snap, const struct config *cfg,
		 struct lint_report *r)
{
	(void)cfg;
	for (size_t i = 0; i < model_ntenants(snap); i++) {
		const struct model_tenant *t = model_tenant_at(snap, i);
		struct entries es = { 0 };
		if (t->ndomains == 0) {
			struct lint_finding *f = add(r, "tenant-no-domain");
			snprintf(f->subject, sizeof(f->subject), "tenant %s", t->name);
			snprintf(f->problem, sizeof(f->problem), "no accepted domain: no mail is accepted "
				 "for it and its onprem servers cannot relay");
			snprintf(f->fix, sizeof(f->fix), "`mxgate domain add %s DOMAIN`", t->name);
		}
		if (t->route[0] == '\0') {
			struct lint_finding *f = add(r, "tenant-no-route");
			snprintf(f->subject, sizeof(f->subject), "tenant %s", t->name);
			snprintf(f->problem, sizeof(f->problem), "no route: accepted mail cannot be delivered");
			snprintf(f->fix, sizeof(f->fix), "re-add the tenant with --route HOST:PORT");
		}
		model_ip_each(snap, t, collect, &es);
		check_connector_allow(t, &es, r);
		check_entries(t, &es, r);
		free(es.v);
	}
	check_cross_tenant(snap, r);
}

static size_t push_target(struct lint_target *out, size_t n, size_t max, const struct cidr *c,
			  int is_connector, const char *fmtstr, ...)
	__attribute__((format(printf, 6, 7)));

/* Every address of a range of at most LINT_RANGE_HOSTS addresses is looked up (a listed
 * host hides anywhere in a /24); of a wider range, only the first. */
static size_t push_target(struct lint_target *out, size_t n, size_t max, const struct cidr *c,
			  int is_connector, const char *fmtstr, ...)
{
	va_list ap;
	char what[LINT_TEXT_MAX];
	unsigned hostbits = 128u - c->prefix;
	uint32_t count = hostbits <= LINT_RANGE_HOST_BITS ? 1u << hostbits : 1;

	va_start(ap, fmtstr);
	vsnprintf(what, sizeof(what), fmtstr, ap);
	va_end(ap);
	for (uint32_t k = 0; k < count && n < max; k++, n++) {
		out[n].ip = c->net;
		/* add k to the low 32 bits: ranges this small never carry past them */
		uint32_t low = (uint32_t)out[n].ip.b[12] << 24 | (uint32_t)out[n].ip.b[13] << 16 |
			       (uint32_t)out[n].ip.b[14] << 8 | out[n].ip.b[15];
		low += k;
		out[n].ip.b[12] = (uint8_t)(low >> 24);
		out[n].ip.b[13] = (uint8_t)(low >> 16);
		out[n].ip.b[14] = (uint8_t)(low >> 8);
		out[n].ip.b[15] = (uint8_t)low;
		out[n].is_connector = is_connector;
		snprintf(out[n].what, sizeof(out[n].what), "%s", what);
	}
	return n;
}

struct target_walk {
	struct lint_target *out;
	size_t n, max;
	const struct model_tenant *t;
};

static void allow_target(const struct model_ip_entry *e, void *arg)
{
	struct target_walk *w = arg;
	char a[ADDR_STR_MAX + 8];

	if (e->list == IP_LIST_ALLOW)
		w->n = push_target(w->out, w->n, w->max, &e->net, 0, "IP Allow entry %s of tenant %s",
				   fmt(a, &e->net), w->t->name);
}

size_t lint_dnsbl_targets(const struct model_snapshot *snap, struct lint_target *out, size_t max)
{
	struct target_walk w = { .out = out, .max = max };
	char a[ADDR_STR_MAX + 8];

	for (size_t i = 0; i < model_ntenants(snap); i++) {
		const struct model_tenant *t = model_tenant_at(snap, i);
		for (size_t c = 0; c < t->nconnectors; c++)
			for (size_t k = 0; k < t->connectors[c]->nranges; k++)
				w.n = push_target(out, w.n, max, &t->connectors[c]->ranges[k], 1,
						  "connector %s of tenant %s (%s)", t->connectors[c]->name,
						  t->name, fmt(a, &t->connectors[c]->ranges[k]));
		w.t = t;
		model_ip_each(snap, t, allow_target, &w);
	}
	return w.n;
}

void lint_add_listed(struct lint_report *r, const struct lint_target *t,
		     const struct dnsbl_answer *a)
{
	char ip[ADDR_STR_MAX];
	struct lint_finding *f = add(r, t->is_connector ? "connector-listed" : "allow-listed");

	snprintf(f->subject, sizeof(f->subject), "%s", t->what);
	snprintf(f->problem, sizeof(f->problem), "%s is listed on %s right now (%u.%u.%u.%u%s%s)%s",
		 ip_format(&t->ip, ip), a->list->display_name, a->code >> 24, (a->code >> 16) & 255,
		 (a->code >> 8) & 255, a->code & 255, a->txt[0] ? ": " : "", a->txt,
		 t->is_connector ? "; a connector should hold only the tenant's own or partner "
				   "servers, and a listed one is probably a shared or compromised host"
				 : "; the Allow list makes mxgate accept it anyway");
	snprintf(f->fix, sizeof(f->fix), "check the host; if it is not the tenant's or a partner's "
		 "mail server, remove it%s", t->is_connector ? " from the connector" : " from the Allow list");
}

void lint_add_zone(struct lint_report *r, const struct dnsbl_config *list, const char *why)
{
	struct lint_finding *f = add(r, "dnsbl-zone-unhealthy");

	snprintf(f->subject, sizeof(f->subject), "DNSBL %s (%s)", list->name,
		 list->display_zone[0] ? list->display_zone : list->display_name);
	snprintf(f->problem, sizeof(f->problem), "fails the RFC 5782 test: %s; it is left out of "
		 "decisions until it passes", why);
	snprintf(f->fix, sizeof(f->fix), "check the zone name, the resolver (public resolvers are "
		 "refused by most lists) and the list's status; remove the [dnsbl %s] section if "
		 "the list is dead", list->name);
}
