/* model: see model.h.
 *
 * Allow/Block entries and connector ranges live in one kind of index, a prefix table: a hash
 * of (scope, prefix length, network) -> the values with exactly that prefix. A scope is a
 * tenant (its IP lists) or the global connector scope. Each scope keeps the distinct prefix
 * lengths it uses, longest first, so a longest-prefix lookup is one hash probe per distinct
 * length -- in practice a handful (/32, /24, /16 ...), whatever the number of entries.
 *
 * Recipient directories share one hash table keyed by (tenant, domain, local part folded to
 * ASCII lower case), sized for a million entries and more: an entry is 24 bytes plus its
 * local part in one text block, a slot 4 bytes, the table at most half full. */
#include "policy/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xmalloc.h"

#define SCOPE_CONNECTORS UINT32_MAX
#define PREFIX_LENGTHS 129
/* Offsets into the recipient text block are 32-bit; a directory never comes near 4 GiB. */
#define RCPT_TEXT_MAX ((size_t)UINT32_MAX - 1)

/* ---- growable arrays ------------------------------------------------------------------ */

#define VEC(type) struct { type *v; size_t n, cap; }
#define VEC_PUSH(vec, item)                                                          \
	do {                                                                             \
		if ((vec).n == (vec).cap) {                                                  \
			(vec).cap = (vec).cap ? (vec).cap * 2 : 16;                              \
			(vec).v = xrealloc((vec).v, (vec).cap * sizeof(*(vec).v));               \
		}                                                                            \
		(vec).v[(vec).n++] = (item);                                                 \
	} while (0)

/* ---- prefix table --------------------------------------------------------------------- */

struct pkey {
	struct ip_addr net;
	uint32_t scope;
	uint8_t prefix;
};

struct prec {
	struct pkey key;
	uint32_t first, count; /* into ptab.values */
};

struct ptab {
	struct prec *recs;
	size_t nrecs;
	uint32_t *slots; /* rec index + 1; 0 = empty */
	size_t mask;
	uint32_t *values;
};

struct pair {
	struct pkey key;
	uint32_t value;
};

static void ip_mask(struct ip_addr *ip, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;

	if (full >= 16)
		return;
	if (rest)
		ip->b[full++] &= (uint8_t)(0xff00u >> rest);
	memset(ip->b + full, 0, 16 - full);
}

static uint64_t pkey_hash(const struct pkey *k)
{
	uint64_t a, b, h;

	memcpy(&a, k->net.b, 8);
	memcpy(&b, k->net.b + 8, 8);
	h = a * 0x9e3779b97f4a7c15ULL ^ b;
	h ^= ((uint64_t)k->scope << 8 | k->prefix) * 0xc2b2ae3d27d4eb4fULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static int pkey_cmp(const struct pkey *x, const struct pkey *y)
{
	if (x->scope != y->scope)
		return x->scope < y->scope ? -1 : 1;
	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	return memcmp(x->net.b, y->net.b, 16);
}

static int pair_cmp(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	int c = pkey_cmp(&x->key, &y->key);
	return c ? c : (x->value > y->value) - (x->value < y->value);
}

/* Builds the table from pairs (sorted here); values of one key stay in insertion order. */
static void ptab_build(struct ptab *t, struct pair *pairs, size_t n)
{
	size_t cap = 16;

	qsort(pairs, n, sizeof(*pairs), pair_cmp);
	t->recs = xcalloc(n ? n : 1, sizeof(*t->recs));
	t->values = xcalloc(n ? n : 1, sizeof(*t->values));
	t->nrecs = 0;
	for (size_t i = 0; i < n; i++) {
		if (t->nrecs == 0 || pkey_cmp(&t->recs[t->nrecs - 1].key, &pairs[i].key) != 0) {
			t->recs[t->nrecs].key = pairs[i].key;
			t->recs[t->nrecs].first = (uint32_t)i;
			t->nrecs++;
		}
		t->recs[t->nrecs - 1].count++;
		t->values[i] = pairs[i].value;
	}
	while (cap < t->nrecs * 2)
		cap *= 2;
	t->mask = cap - 1;
	t->slots = xcalloc(cap, sizeof(*t->slots));
	for (size_t r = 0; r < t->nrecs; r++) {
		size_t h = pkey_hash(&t->recs[r].key) & t->mask;
		while (t->slots[h])
			h = (h + 1) & t->mask;
		t->slots[h] = (uint32_t)r + 1;
	}
}

static const struct prec *ptab_find(const struct ptab *t, const struct pkey *k)
{
	size_t h = pkey_hash(k) & t->mask;

	for (uint32_t s; (s = t->slots[h]) != 0; h = (h + 1) & t->mask)
		if (pkey_cmp(&t->recs[s - 1].key, k) == 0)
			return &t->recs[s - 1];
	return NULL;
}

static void ptab_free(struct ptab *t)
{
	free(t->recs);
	free(t->slots);
	free(t->values);
}

/* Distinct prefix lengths of one scope, longest first. */
struct lens {
	uint8_t len[PREFIX_LENGTHS];
	uint8_t n;
};

static void lens_add(struct lens *l, uint8_t prefix)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (l->len[i] == prefix)
			return;
		if (l->len[i] < prefix)
			break;
	}
	memmove(l->len + i + 1, l->len + i, l->n - i);
	l->len[i] = prefix;
	l->n++;
}

/* ---- snapshot ------------------------------------------------------------------------- */

struct rcpt_entry {
	uint64_t hash;
	const char *domain; /* the tenant's own copy of the domain */
	uint32_t local;     /* offset of the local part in rcpt_text */
	uint32_t tenant;    /* tenant index */
};

struct domain_slot {
	const char *domain;
	const struct model_tenant *tenant;
};

struct model_snapshot {
	unsigned refs;
	uint64_t generation;
	struct model_tenant *tenants; /* sorted by id */
	size_t ntenants;
	struct model_tenant **by_name; /* sorted by name */
	struct domain_slot *domains;   /* open addressing, power of two */
	size_t domain_mask;
	struct model_connector *connectors;
	size_t nconnectors;
	struct cidr *ranges; /* all connector ranges; connectors point into it */
	struct model_ip_entry *entries;
	size_t nentries;
	struct ptab ip_tab;          /* scope = tenant index; values = entry index */
	struct lens *tenant_lens;    /* [ntenants] */
	struct ptab conn_tab;        /* scope = SCOPE_CONNECTORS; values = range index */
	struct lens conn_lens;
	uint32_t *range_owner;       /* range index -> connector index */
	char *arena;                 /* domains and comments */
	struct rcpt_entry *rcpts;    /* recipient directory entries of every tenant */
	size_t nrcpts;
	uint32_t *rcpt_slots;        /* entry index + 1; 0 = empty; open addressing */
	size_t rcpt_mask;
	char *rcpt_text;             /* the entries' local parts (and the builder's domains) */
};

/* ---- builder -------------------------------------------------------------------------- */

struct b_domain { uint32_t tenant_id; char *domain; };
struct b_range { uint32_t connector_id; struct cidr range; };
struct b_entry { uint32_t tenant_id; enum ip_list list; struct cidr net; char *comment; };
struct b_check { uint32_t tenant_id; enum recipient_check check; };
struct b_route_tls { uint32_t tenant_id; enum route_tls tls; };
/* Recipients keep their texts in one block (a million strdups would dominate the load);
 * consecutive entries of one domain share its text. */
struct b_rcpt { uint32_t tenant_id, domain, local; /* offsets into rcpt_text */ };

struct model_builder {
	VEC(struct model_tenant) tenants;
	VEC(struct b_domain) domains;
	VEC(struct model_connector) connectors;
	VEC(struct b_range) ranges;
	VEC(struct b_entry) entries;
	VEC(struct b_check) checks;
	VEC(struct b_route_tls) route_tls;
	VEC(struct b_rcpt) rcpts;
	VEC(char) rcpt_text;
	uint32_t last_domain; /* offset + 1 of the last recipient domain, 0 = none */
};

struct model_builder *model_builder_new(void)
{
	return xcalloc(1, sizeof(struct model_builder));
}

void model_builder_free(struct model_builder **bp)
{
	struct model_builder *b = *bp;

	if (!b)
		return;
	for (size_t i = 0; i < b->domains.n; i++)
		free(b->domains.v[i].domain);
	for (size_t i = 0; i < b->entries.n; i++)
		free(b->entries.v[i].comment);
	free(b->tenants.v);
	free(b->domains.v);
	free(b->connectors.v);
	free(b->ranges.v);
	free(b->entries.v);
	free(b->checks.v);
	free(b->route_tls.v);
	free(b->rcpts.v);
	free(b->rcpt_text.v);
	free(b);
	*bp = NULL;
}

int model_add_tenant(struct model_builder *b, uint32_t id, const char *name, const char *route)
{
	struct model_tenant t;

	if (strlen(name) > MODEL_NAME_MAX || strlen(route) > MODEL_ROUTE_MAX)
		return -1;
	memset(&t, 0, sizeof(t));
	t.id = id;
	strcpy(t.name, name);
	strcpy(t.route, route);
	VEC_PUSH(b->tenants, t);
	return 0;
}

int model_add_domain(struct model_builder *b, uint32_t tenant_id, const char *domain)
{
	struct b_domain d = { tenant_id, xstrdup(domain) };

	if (strlen(domain) > MODEL_DOMAIN_MAX) {
		free(d.domain);
		return -1;
	}
	VEC_PUSH(b->domains, d);
	return 0;
}

int model_add_connector(struct model_builder *b, uint32_t id, uint32_t tenant_id, const char *name,
			enum connector_type type, const char *tls_name, int require_tls)
{
	struct model_connector c;

	if (strlen(name) > MODEL_NAME_MAX || strlen(tls_name) > MODEL_TLS_NAME_MAX)
		return -1;
	memset(&c, 0, sizeof(c));
	c.id = id;
	/* tenant_id parked in the pointer's place until finish resolves it */
	c.tenant = (const struct model_tenant *)(uintptr_t)tenant_id;
	strcpy(c.name, name);
	c.type = type;
	strcpy(c.tls_name, tls_name);
	c.require_tls = require_tls;
	VEC_PUSH(b->connectors, c);
	return 0;
}

int model_add_connector_range(struct model_builder *b, uint32_t connector_id,
			      const struct cidr *range)
{
	struct b_range r = { connector_id, *range };

	VEC_PUSH(b->ranges, r);
	return 0;
}

int model_add_ip_entry(struct model_builder *b, uint32_t tenant_id, enum ip_list list,
		       const struct cidr *net, const char *comment)
{
	struct b_entry e = { tenant_id, list, *net, xstrdup(comment ? comment : "") };

	VEC_PUSH(b->entries, e);
	return 0;
}

int model_set_recipient_check(struct model_builder *b, uint32_t tenant_id,
			      enum recipient_check check)
{
	struct b_check c = { tenant_id, check };

	if (!model_recipient_check_name(check))
		return -1;
	VEC_PUSH(b->checks, c);
	return 0;
}

int model_set_route_tls(struct model_builder *b, uint32_t tenant_id, enum route_tls tls)
{
	struct b_route_tls r = { tenant_id, tls };

	if (!model_route_tls_name(tls))
		return -1;
	VEC_PUSH(b->route_tls, r);
	return 0;
}

/* Appends len bytes and a NUL to the recipient text; the offset, or -1 when full. */
static int64_t rcpt_text_add(struct model_builder *b, const char *text, size_t len)
{
	size_t off = b->rcpt_text.n;

	if (len + 1 > RCPT_TEXT_MAX - off)
		return -1;
	if (b->rcpt_text.cap - off < len + 1) {
		size_t cap = b->rcpt_text.cap ? b->rcpt_text.cap : 4096;
		while (cap - off < len + 1)
			cap *= 2;
		b->rcpt_text.v = xrealloc(b->rcpt_text.v, cap);
		b->rcpt_text.cap = cap;
	}
	memcpy(b->rcpt_text.v + off, text, len);
	b->rcpt_text.v[off + len] = '\0';
	b->rcpt_text.n = off + len + 1;
	return (int64_t)off;
}

int model_add_recipient(struct model_builder *b, uint32_t tenant_id, const char *domain,
			const char *local)
{
	size_t llen = strlen(local), dlen = strlen(domain);
	struct b_rcpt r = { .tenant_id = tenant_id };
	int64_t off;

	if (llen == 0 || llen > MODEL_LOCAL_MAX || dlen == 0 || dlen > MODEL_DOMAIN_MAX)
		return -1;
	if (b->last_domain && strcmp(b->rcpt_text.v + b->last_domain - 1, domain) == 0) {
		r.domain = b->last_domain - 1;
	} else {
		if ((off = rcpt_text_add(b, domain, dlen)) < 0)
			return -1;
		r.domain = (uint32_t)off;
		b->last_domain = (uint32_t)off + 1;
	}
	if ((off = rcpt_text_add(b, local, llen)) < 0)
		return -1;
	r.local = (uint32_t)off;
	VEC_PUSH(b->rcpts, r);
	return 0;
}

static int tenant_id_cmp(const void *a, const void *b)
{
	const struct model_tenant *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static int tenant_name_cmp(const void *a, const void *b)
{
	const struct model_tenant *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static struct model_tenant *tenant_by_id(struct model_snapshot *s, uint32_t id)
{
	struct model_tenant key = { .id = id };
	return bsearch(&key, s->tenants, s->ntenants, sizeof(*s->tenants), tenant_id_cmp);
}

static uint64_t str_hash(const char *str)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *str; str++)
		h = (h ^ (unsigned char)*str) * 1099511628211ULL;
	return h;
}

static void index_domains(struct model_snapshot *s, struct model_builder *b)
{
	size_t cap = 16;

	while (cap < b->domains.n * 2)
		cap *= 2;
	s->domain_mask = cap - 1;
	s->domains = xcalloc(cap, sizeof(*s->domains));
	for (size_t i = 0; i < b->domains.n; i++) {
		struct model_tenant *t = tenant_by_id(s, b->domains.v[i].tenant_id);
		if (!t)
			continue;
		char *d = b->domains.v[i].domain;
		b->domains.v[i].domain = NULL; /* the snapshot owns it now */
		t->domains = xrealloc(t->domains, (t->ndomains + 1) * sizeof(*t->domains));
		t->domains[t->ndomains++] = d;
		size_t h = str_hash(d) & s->domain_mask;
		while (s->domains[h].domain)
			h = (h + 1) & s->domain_mask;
		s->domains[h] = (struct domain_slot){ d, t };
	}
}

static int connector_id_cmp(const void *a, const void *b)
{
	const struct model_connector *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static void index_connectors(struct model_snapshot *s, struct model_builder *b)
{
	struct pair *pairs = xcalloc(b->ranges.n ? b->ranges.n : 1, sizeof(*pairs));
	size_t np = 0;

	s->nconnectors = b->connectors.n;
	s->connectors = b->connectors.v;
	b->connectors.v = NULL;
	if (s->nconnectors) /* qsort(NULL, 0) is undefined */
		qsort(s->connectors, s->nconnectors, sizeof(*s->connectors), connector_id_cmp);
	for (size_t i = 0; i < s->nconnectors; i++) {
		struct model_connector *c = &s->connectors[i];
		struct model_tenant *t = tenant_by_id(s, (uint32_t)(uintptr_t)c->tenant);
		c->tenant = t;
		if (t) {
			t->connectors = xrealloc(t->connectors, (t->nconnectors + 1) * sizeof(c));
			t->connectors[t->nconnectors++] = c;
		}
	}
	s->ranges = xcalloc(b->ranges.n ? b->ranges.n : 1, sizeof(*s->ranges));
	s->range_owner = xcalloc(b->ranges.n ? b->ranges.n : 1, sizeof(*s->range_owner));
	for (size_t i = 0; i < b->ranges.n; i++) {
		struct model_connector key = { .id = b->ranges.v[i].connector_id };
		struct model_connector *c = bsearch(&key, s->connectors, s->nconnectors,
						    sizeof(*s->connectors), connector_id_cmp);
		if (!c || !c->tenant)
			continue;
		s->ranges[np] = b->ranges.v[i].range;
		ip_mask(&s->ranges[np].net, s->ranges[np].prefix);
		s->range_owner[np] = (uint32_t)(c - s->connectors);
		pairs[np].key = (struct pkey){ s->ranges[np].net, SCOPE_CONNECTORS, s->ranges[np].prefix };
		pairs[np].value = (uint32_t)np;
		lens_add(&s->conn_lens, s->ranges[np].prefix);
		np++;
	}
	for (size_t i = 0; i < np; i++) {
		struct model_connector *c = &s->connectors[s->range_owner[i]];
		c->ranges = xrealloc(c->ranges, (c->nranges + 1) * sizeof(*c->ranges));
		c->ranges[c->nranges++] = s->ranges[i];
	}
	ptab_build(&s->conn_tab, pairs, np);
	free(pairs);
}

static void index_entries(struct model_snapshot *s, struct model_builder *b)
{
	struct pair *pairs = xcalloc(b->entries.n ? b->entries.n : 1, sizeof(*pairs));
	size_t n = 0;

	s->entries = xcalloc(b->entries.n ? b->entries.n : 1, sizeof(*s->entries));
	s->tenant_lens = xcalloc(s->ntenants ? s->ntenants : 1, sizeof(*s->tenant_lens));
	for (size_t i = 0; i < b->entries.n; i++) {
		struct b_entry *be = &b->entries.v[i];
		struct model_tenant *t = tenant_by_id(s, be->tenant_id);
		if (!t)
			continue;
		struct model_ip_entry *e = &s->entries[n];
		e->net = be->net;
		ip_mask(&e->net.net, e->net.prefix);
		e->list = be->list;
		e->tenant = t;
		e->comment = be->comment;
		be->comment = NULL;
		if (be->list == IP_LIST_ALLOW)
			t->nallow++;
		else
			t->nblock++;
		uint32_t scope = (uint32_t)(t - s->tenants);
		pairs[n].key = (struct pkey){ e->net.net, scope, e->net.prefix };
		pairs[n].value = (uint32_t)n;
		lens_add(&s->tenant_lens[scope], e->net.prefix);
		n++;
	}
	s->nentries = n;
	ptab_build(&s->ip_tab, pairs, n);
	free(pairs);
}

/* The tenants' settings (recipient check, route TLS); the last call for a tenant wins. */
static void apply_settings(struct model_snapshot *s, struct model_builder *b)
{
	for (size_t i = 0; i < b->checks.n; i++) {
		struct model_tenant *t = tenant_by_id(s, b->checks.v[i].tenant_id);
		if (t)
			t->recipient_check = b->checks.v[i].check;
	}
	for (size_t i = 0; i < b->route_tls.n; i++) {
		struct model_tenant *t = tenant_by_id(s, b->route_tls.v[i].tenant_id);
		if (t)
			t->route_tls = b->route_tls.v[i].tls;
	}
}

static unsigned char ascii_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Local parts are equal when they differ at most in the case of ASCII letters. */
static int local_eq(const char *a, const char *b)
{
	for (; *a && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b); a++, b++)
		;
	return *a == *b;
}

/* FNV-1a over the tenant, the domain and the folded local part, then a 64-bit finalizer so
 * that the low bits (the slot) depend on every input byte. */
static uint64_t rcpt_hash(uint32_t tenant, const char *domain, const char *local)
{
	uint64_t h = 1469598103934665603ULL ^ (tenant * 0x9e3779b97f4a7c15ULL);

	for (; *domain; domain++)
		h = (h ^ (unsigned char)*domain) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL; /* no domain has 0xff: separates domain and local */
	for (; *local; local++)
		h = (h ^ ascii_lower((unsigned char)*local)) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static const struct rcpt_entry *rcpt_find(const struct model_snapshot *s, uint64_t h,
					  uint32_t tenant, const char *domain, const char *local)
{
	for (size_t i = h & s->rcpt_mask; s->rcpt_slots[i]; i = (i + 1) & s->rcpt_mask) {
		const struct rcpt_entry *e = &s->rcpts[s->rcpt_slots[i] - 1];
		if (e->hash == h && e->tenant == tenant && strcmp(e->domain, domain) == 0 &&
		    local_eq(s->rcpt_text + e->local, local))
			return e;
	}
	return NULL;
}

/* The tenant's own copy of one of its domains, or NULL when the domain is not the tenant's. */
static const char *tenant_domain(const struct model_snapshot *s, const struct model_tenant *t,
				 const char *domain)
{
	size_t h = str_hash(domain) & s->domain_mask;

	for (; s->domains[h].domain; h = (h + 1) & s->domain_mask)
		if (strcmp(s->domains[h].domain, domain) == 0)
			return s->domains[h].tenant == t ? s->domains[h].domain : NULL;
	return NULL;
}

static void index_recipients(struct model_snapshot *s, struct model_builder *b)
{
	size_t cap = 16;

	while (cap < b->rcpts.n * 2)
		cap *= 2;
	s->rcpt_mask = cap - 1;
	s->rcpt_slots = xcalloc(cap, sizeof(*s->rcpt_slots));
	s->rcpts = xcalloc(b->rcpts.n ? b->rcpts.n : 1, sizeof(*s->rcpts));
	s->rcpt_text = b->rcpt_text.v ? b->rcpt_text.v : xcalloc(1, 1);
	b->rcpt_text.v = NULL;
	for (size_t i = 0; i < b->rcpts.n; i++) {
		const struct b_rcpt *r = &b->rcpts.v[i];
		struct model_tenant *t = tenant_by_id(s, r->tenant_id);
		const char *domain = t ? tenant_domain(s, t, s->rcpt_text + r->domain) : NULL;
		if (!domain)
			continue;
		uint32_t ti = (uint32_t)(t - s->tenants);
		const char *local = s->rcpt_text + r->local;
		uint64_t h = rcpt_hash(ti, domain, local);
		if (rcpt_find(s, h, ti, domain, local))
			continue;
		s->rcpts[s->nrcpts] = (struct rcpt_entry){ h, domain, r->local, ti };
		size_t slot = h & s->rcpt_mask;
		while (s->rcpt_slots[slot])
			slot = (slot + 1) & s->rcpt_mask;
		s->rcpt_slots[slot] = (uint32_t)++s->nrcpts;
		t->nrecipients++;
	}
}

struct model_snapshot *model_builder_finish(struct model_builder **bp, uint64_t generation)
{
	struct model_builder *b = *bp;
	struct model_snapshot *s = xcalloc(1, sizeof(*s));

	s->refs = 1;
	s->generation = generation;
	s->ntenants = b->tenants.n;
	s->tenants = b->tenants.v ? b->tenants.v : xcalloc(1, sizeof(*s->tenants));
	b->tenants.v = NULL;
	qsort(s->tenants, s->ntenants, sizeof(*s->tenants), tenant_id_cmp);
	s->by_name = xcalloc(s->ntenants ? s->ntenants : 1, sizeof(*s->by_name));
	for (size_t i = 0; i < s->ntenants; i++)
		s->by_name[i] = &s->tenants[i];
	qsort(s->by_name, s->ntenants, sizeof(*s->by_name), tenant_name_cmp);
	index_domains(s, b);
	index_connectors(s, b);
	index_entries(s, b);
	apply_settings(s, b);
	index_recipients(s, b);
	model_builder_free(bp);
	return s;
}

/* ---- sharing -------------------------------------------------------------------------- */

struct model_snapshot *model_ref(struct model_snapshot *s)
{
	s->refs++;
	return s;
}

static void snapshot_free(struct model_snapshot *s)
{
	for (size_t i = 0; i < s->ntenants; i++) {
		for (size_t d = 0; d < s->tenants[i].ndomains; d++)
			free(s->tenants[i].domains[d]);
		free(s->tenants[i].domains);
		free(s->tenants[i].connectors);
	}
	for (size_t i = 0; i < s->nconnectors; i++)
		free(s->connectors[i].ranges);
	for (size_t i = 0; i < s->nentries; i++)
		free((char *)s->entries[i].comment);
	free(s->tenants);
	free(s->by_name);
	free(s->domains);
	free(s->connectors);
	free(s->ranges);
	free(s->range_owner);
	free(s->entries);
	free(s->tenant_lens);
	free(s->rcpts);
	free(s->rcpt_slots);
	free(s->rcpt_text);
	ptab_free(&s->ip_tab);
	ptab_free(&s->conn_tab);
	free(s);
}

void model_unref(struct model_snapshot **sp)
{
	struct model_snapshot *s = *sp;

	if (!s)
		return;
	*sp = NULL;
	if (--s->refs == 0)
		snapshot_free(s);
}

uint64_t model_generation(const struct model_snapshot *s)
{
	return s->generation;
}

/* ---- reading -------------------------------------------------------------------------- */

size_t model_ntenants(const struct model_snapshot *s)
{
	return s->ntenants;
}

const struct model_tenant *model_tenant_at(const struct model_snapshot *s, size_t i)
{
	return i < s->ntenants ? &s->tenants[i] : NULL;
}

const struct model_tenant *model_tenant_by_name(const struct model_snapshot *s, const char *name)
{
	size_t lo = 0, hi = s->ntenants;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, s->by_name[mid]->name);
		if (c == 0)
			return s->by_name[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct model_tenant *model_tenant_for_domain(const struct model_snapshot *s,
						   const char *domain)
{
	size_t h = str_hash(domain) & s->domain_mask;

	for (; s->domains[h].domain; h = (h + 1) & s->domain_mask)
		if (strcmp(s->domains[h].domain, domain) == 0)
			return s->domains[h].tenant;
	return NULL;
}

/* Walks the prefix lengths of one scope, longest first, calling fn for each record found;
 * stops when fn returns nonzero. */
static void ptab_walk(const struct ptab *t, const struct lens *l, uint32_t scope,
		      const struct ip_addr *ip, int (*fn)(const struct prec *r, void *arg), void *arg)
{
	struct pkey k = { .scope = scope };

	for (size_t i = 0; i < l->n; i++) {
		k.prefix = l->len[i];
		k.net = *ip;
		ip_mask(&k.net, k.prefix);
		const struct prec *r = ptab_find(t, &k);
		if (r && fn(r, arg))
			return;
	}
}

struct ip_walk {
	const struct model_snapshot *s;
	const struct model_ip_entry *best;
	void (*each)(const struct model_ip_entry *e, void *arg);
	void *arg;
};

static int pick_best(const struct prec *r, void *arg)
{
	struct ip_walk *w = arg;

	for (uint32_t i = 0; i < r->count; i++) {
		const struct model_ip_entry *e = &w->s->entries[w->s->ip_tab.values[r->first + i]];
		if (!w->best || e->list == IP_LIST_BLOCK)
			w->best = e;
	}
	return 1;
}

const struct model_ip_entry *model_ip_lookup(const struct model_snapshot *s,
					     const struct model_tenant *t, const struct ip_addr *ip)
{
	struct ip_walk w = { .s = s };
	uint32_t scope = (uint32_t)(t - s->tenants);

	ptab_walk(&s->ip_tab, &s->tenant_lens[scope], scope, ip, pick_best, &w);
	return w.best;
}

static int call_each(const struct prec *r, void *arg)
{
	struct ip_walk *w = arg;

	/* Block first on a tie, the order in which the engine weighs them */
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t i = 0; i < r->count; i++) {
			const struct model_ip_entry *e = &w->s->entries[w->s->ip_tab.values[r->first + i]];
			if ((e->list == IP_LIST_BLOCK) == (pass == 0))
				w->each(e, w->arg);
		}
	return 0;
}

void model_ip_each_match(const struct model_snapshot *s, const struct model_tenant *t,
			 const struct ip_addr *ip,
			 void (*fn)(const struct model_ip_entry *e, void *arg), void *arg)
{
	struct ip_walk w = { .s = s, .each = fn, .arg = arg };
	uint32_t scope = (uint32_t)(t - s->tenants);

	ptab_walk(&s->ip_tab, &s->tenant_lens[scope], scope, ip, call_each, &w);
}

void model_ip_each(const struct model_snapshot *s, const struct model_tenant *t,
		   void (*fn)(const struct model_ip_entry *e, void *arg), void *arg)
{
	for (size_t i = 0; i < s->nentries; i++)
		if (s->entries[i].tenant == t)
			fn(&s->entries[i], arg);
}

/* Connectors reported once per lookup; beyond this many distinct matches (never seen in a sane
 * configuration) a connector may be reported again for a shorter range. */
#define CONN_SEEN_MAX 64

struct conn_walk {
	const struct model_snapshot *s;
	void (*fn)(const struct model_connector *c, const struct cidr *range, void *arg);
	void *arg;
	const struct model_connector *seen[CONN_SEEN_MAX];
	size_t nseen;
};

static int call_connectors(const struct prec *r, void *arg)
{
	struct conn_walk *w = arg;

	for (uint32_t i = 0; i < r->count; i++) {
		uint32_t ri = w->s->conn_tab.values[r->first + i];
		const struct model_connector *c = &w->s->connectors[w->s->range_owner[ri]];
		size_t k;
		for (k = 0; k < w->nseen && w->seen[k] != c; k++)
			;
		if (k < w->nseen)
			continue; /* reported with a more specific range already */
		if (w->nseen < CONN_SEEN_MAX)
			w->seen[w->nseen++] = c;
		w->fn(c, &w->s->ranges[ri], w->arg);
	}
	return 0;
}

void model_connectors_matching_ip(const struct model_snapshot *s, const struct ip_addr *ip,
				  void (*fn)(const struct model_connector *c,
					     const struct cidr *range, void *arg),
				  void *arg)
{
	struct conn_walk w = { .s = s, .fn = fn, .arg = arg };

	ptab_walk(&s->conn_tab, &s->conn_lens, SCOPE_CONNECTORS, ip, call_connectors, &w);
}

void model_connectors_matching_tls(const struct model_snapshot *s, const char *name,
				   void (*fn)(const struct model_connector *c, void *arg),
				   void *arg)
{
	for (size_t i = 0; i < s->nconnectors; i++)
		if (s->connectors[i].tenant && s->connectors[i].tls_name[0] &&
		    strcasecmp(s->connectors[i].tls_name, name) == 0)
			fn(&s->connectors[i], arg);
}

enum model_rcpt_match model_recipient_known(const struct model_snapshot *s,
					    const struct model_tenant *t, const char *local,
					    const char *domain)
{
	uint32_t ti;

	if (!t || t->nrecipients == 0)
		return MODEL_RCPT_UNKNOWN;
	ti = (uint32_t)(t - s->tenants);
	if (rcpt_find(s, rcpt_hash(ti, domain, local), ti, domain, local))
		return strcmp(local, MODEL_RCPT_WILDCARD) == 0 ? MODEL_RCPT_CATCHALL
							       : MODEL_RCPT_LISTED;
	if (rcpt_find(s, rcpt_hash(ti, domain, MODEL_RCPT_WILDCARD), ti, domain,
		      MODEL_RCPT_WILDCARD))
		return MODEL_RCPT_CATCHALL;
	return MODEL_RCPT_UNKNOWN;
}

const char *model_recipient_check_name(enum recipient_check check)
{
	switch (check) {
	case RCPT_CHECK_OFF: return "off";
	case RCPT_CHECK_DIRECTORY: return "directory";
	case RCPT_CHECK_PROBE: return "probe";
	}
	return NULL;
}

/* ---- routes with their TLS mode ------------------------------------------------------- */

#define ROUTE_TLS_OPTION "tls="

const char *model_route_tls_name(enum route_tls tls)
{
	switch (tls) {
	case ROUTE_TLS_OPPORTUNISTIC: return "opportunistic";
	case ROUTE_TLS_REQUIRED: return "required";
	case ROUTE_TLS_VERIFY: return "verify";
	}
	return NULL;
}

int model_route_tls_parse(const char *text, enum route_tls *tls_r)
{
	static const enum route_tls all[] = { ROUTE_TLS_OPPORTUNISTIC, ROUTE_TLS_REQUIRED,
					      ROUTE_TLS_VERIFY };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcmp(text, model_route_tls_name(all[i])) == 0) {
			*tls_r = all[i];
			return 0;
		}
	}
	return -1;
}

int model_route_spec_format(const char *route, enum route_tls tls, char *out, size_t outsz)
{
	const char *name = model_route_tls_name(tls);
	int n;

	if (!name) {
		if (outsz)
			out[0] = '\0';
		return -1;
	}
	if (tls == ROUTE_TLS_OPPORTUNISTIC) /* the plain form: files of older versions read alike */
		n = snprintf(out, outsz, "%s", route);
	else
		n = snprintf(out, outsz, "%s " ROUTE_TLS_OPTION "%s", route, name);
	if (n < 0 || (size_t)n >= outsz) {
		if (outsz)
			out[0] = '\0';
		return -1;
	}
	return 0;
}

int model_route_spec_parse(const char *spec, char *hostport, size_t hostport_sz,
			   enum route_tls *tls_r)
{
	size_t len = strcspn(spec, " ");
	const char *opt = spec + len;

	if (len == 0 || len >= hostport_sz)
		return -1;
	*tls_r = ROUTE_TLS_OPPORTUNISTIC;
	if (*opt == ' ') {
		opt++;
		if (strncmp(opt, ROUTE_TLS_OPTION, strlen(ROUTE_TLS_OPTION)) != 0 ||
		    model_route_tls_parse(opt + strlen(ROUTE_TLS_OPTION), tls_r) < 0)
			return -1;
	}
	memcpy(hostport, spec, len);
	hostport[len] = '\0';
	return 0;
}
