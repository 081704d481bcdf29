/* model: see model.h.
 *
 * Allow/Block entries and connector ranges live in one kind of index, a prefix table: a hash
 * of (scope, prefix length, network) -> the values with exactly that prefix, and beside it a
 * filter that says, per scope and coarse network (the client's IPv4 /24 or /16, its IPv6 /64,
 * ...), which prefix lengths have entries there. A scope is a tenant (its IP lists) or the
 * global connector scope. A longest-prefix lookup probes only the lengths the filter names,
 * longest first, and stops at the first hit: for an IPv4 client usually one probe of one
 * cache line, whatever the number of entries (docs/performance.md, "Policy decision").
 *
 * Recipient directories share one hash table keyed by (tenant, domain, local part folded to
 * ASCII lower case), sized for a million entries and more: an entry is 24 bytes plus its
 * local part in one text block, a slot 4 bytes, the table at most half full. */
#include "policy/model.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/xmalloc.h"

#define SCOPE_CONNECTORS UINT32_MAX
/* Offsets into a text block (recipients, comments) are 32-bit; never near 4 GiB. */
#define TEXT_MAX ((size_t)UINT32_MAX - 1)

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

/* ---- prefix table ---------------------------------------------------------------------
 *
 * Two open-addressing hash tables over (scope, prefix length, network), both with 8-byte slots
 * that carry a 31-bit tag of the key's hash, so that a probe that finds nothing costs one cache
 * line and a probe that finds something touches the record only when the tag matches:
 *
 *   exact   (scope, len, net) -> record: the values (entries, ranges) with exactly that prefix;
 *   filter  (scope, anchor, net masked to the anchor) -> a bit per prefix length in
 *           [anchor, next anchor) for which the scope has an entry under that network.
 *
 * The anchors cut 0..128 into spans of at most 32 lengths: IPv4 /24../32 is one span (120..128),
 * /16../23 another (112..119), so the common lookup of an IPv4 client is one filter probe at its
 * /24 and, only when something of the tenant lies in that /24, one exact probe per length
 * present there, longest first, stopping at the first hit. A lookup never probes a length the
 * scope does not use under the client's network.
 *
 * Filter slots keep only the tag, not the key: two networks whose tags are equal share the
 * bits of a slot (merged when built), and a lookup ORs the bits of every slot with its tag
 * between its home slot and the next empty slot, where its own slot must lie. A collision can
 * only add lengths to probe, which the exact table then refutes; it never hides one. */

struct pkey {
	struct ip_addr net;
	uint32_t scope;
	uint8_t prefix;
};

struct prec {
	struct pkey key;
	uint32_t first, count; /* into ptab.values, in insertion order */
	uint32_t best;         /* the value a lookup returns: the last preferred one, else the
				  first (struct pair) */
};

struct pslot {
	uint32_t tag; /* 0 = empty */
	uint32_t val; /* exact: record index; filter: bit (len - anchor) per length present */
};

struct ptab {
	struct prec *recs;
	size_t nrecs;
	struct pslot *slots; /* exact */
	size_t mask;
	struct pslot *filter;
	size_t fmask;
	uint32_t *values;
};

/* What a table is built from: a key and its value (entry or range index). Of the values of
 * one key, the record's best is the last with prefer set, else the first (ip_tab: a Block
 * entry wins an exact tie). hash is the builder's. */
struct pair {
	struct pkey key;
	uint32_t value;
	uint8_t prefer;
	uint64_t hash;
};

/* A filter bit to set: the hash of (scope, anchor, network) and the bit. */
struct fbit {
	uint64_t hash;
	uint32_t bit;
};

/* Filter anchors, ascending; each covers the lengths up to the next (the last up to 128). */
static const uint8_t anchors[] = { 0, 32, 48, 64, 96, 112, 120 };
#define NANCHORS (sizeof(anchors) / sizeof(anchors[0]))

static unsigned anchor_index(unsigned prefix)
{
	unsigned a = NANCHORS - 1;

	while (anchors[a] > prefix)
		a--;
	return a;
}

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
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* The slot tag: high bits of the hash (the slot index uses the low ones), never 0. */
static uint32_t hash_tag(uint64_t h)
{
	return (uint32_t)(h >> 32) | 1;
}

static int pkey_eq(const struct pkey *x, const struct pkey *y)
{
	return x->scope == y->scope && x->prefix == y->prefix &&
	       memcmp(x->net.b, y->net.b, 16) == 0;
}

static size_t table_cap(size_t n)
{
	size_t cap = 16;

	while (cap < n * 2) /* at most half full */
		cap *= 2;
	return cap;
}

/* The record of key k (hash h), created (with count 0) when new. */
static uint32_t ptab_intern(struct ptab *t, const struct pkey *k, uint64_t h)
{
	uint32_t tag = hash_tag(h);
	size_t i = h & t->mask;

	for (; t->slots[i].tag; i = (i + 1) & t->mask)
		if (t->slots[i].tag == tag && pkey_eq(&t->recs[t->slots[i].val].key, k))
			return t->slots[i].val;
	t->recs[t->nrecs].key = *k;
	t->slots[i] = (struct pslot){ tag, (uint32_t)t->nrecs };
	return (uint32_t)t->nrecs++;
}

/* Sets a filter bit: in the first slot with the tag on the probe path, else in the empty slot
 * that ends it. */
static void filter_add(struct ptab *t, const struct fbit *f)
{
	uint32_t tag = hash_tag(f->hash);
	size_t i = f->hash & t->fmask;

	for (; t->filter[i].tag && t->filter[i].tag != tag; i = (i + 1) & t->fmask)
		;
	t->filter[i].tag = tag;
	t->filter[i].val |= 1u << f->bit;
}

/* Building inserts keys in the order of their home slots, so that it walks each table from
 * start to end instead of jumping around megabytes of it (a cache miss per key, which is
 * what a build of 100,000 entries spent most of its time on). The order is a stable counting
 * sort on the top bits of the home slot: NBUCKETS regions of the table. */
#define NBUCKETS 1024

static size_t home_bucket(uint64_t h, size_t mask)
{
	return (size_t)((h & mask) * NBUCKETS / (mask + 1));
}

/* Copies n items of size sz, each with its uint64_t hash at offset hash_off, into out in the
 * order of home_bucket, stably. */
static inline void order_by_home(const void *items, size_t n, size_t sz, size_t hash_off,
				 size_t mask, void *out_items)
{
	size_t *pos = xcalloc(NBUCKETS + 1, sizeof(*pos));
	const char *in = items;
	char *out = out_items;
	uint64_t h;

	for (size_t i = 0; i < n; i++) {
		memcpy(&h, in + i * sz + hash_off, sizeof(h));
		pos[home_bucket(h, mask) + 1]++;
	}
	for (size_t b = 0; b < NBUCKETS; b++)
		pos[b + 1] += pos[b];
	for (size_t i = 0; i < n; i++) {
		memcpy(&h, in + i * sz + hash_off, sizeof(h));
		memcpy(out + pos[home_bucket(h, mask)]++ * sz, in + i * sz, sz);
	}
	free(pos);
}

/* Builds the table from pairs, grouping equal keys by hashing: no sort by key. The values of
 * one key stay in insertion order. pairs is scratch space here (a build allocates a dozen
 * megabytes; what it does not allocate, it does not page-fault in). */
static void ptab_build(struct ptab *t, struct pair *pairs, size_t n)
{
	uint32_t *rec_of = xmalloc((n ? n : 1) * sizeof(*rec_of)); /* of sorted[i] */
	struct pair *sorted = xmalloc((n ? n : 1) * sizeof(*sorted));
	struct fbit *bits, *sorted_bits;
	uint32_t first = 0;

	t->recs = xcalloc(n ? n : 1, sizeof(*t->recs));
	t->values = xcalloc(n ? n : 1, sizeof(*t->values));
	t->nrecs = 0;
	t->mask = table_cap(n) - 1;
	t->slots = xcalloc(t->mask + 1, sizeof(*t->slots));
	for (size_t i = 0; i < n; i++)
		pairs[i].hash = pkey_hash(&pairs[i].key);
	order_by_home(pairs, n, sizeof(*pairs), offsetof(struct pair, hash), t->mask, sorted);
	for (size_t i = 0; i < n; i++) {
		rec_of[i] = ptab_intern(t, &sorted[i].key, sorted[i].hash);
		t->recs[rec_of[i]].count++;
	}
	for (size_t r = 0; r < t->nrecs; r++) {
		t->recs[r].first = first;
		first += t->recs[r].count;
		t->recs[r].count = 0;
	}
	for (size_t i = 0; i < n; i++) { /* stable order: a key's values in insertion order */
		struct prec *r = &t->recs[rec_of[i]];
		if (r->count == 0 || sorted[i].prefer)
			r->best = sorted[i].value;
		t->values[r->first + r->count++] = sorted[i].value;
	}
	free(rec_of);

	/* The filter's items, one per record, in the two arrays just used: both hold n pairs */
	_Static_assert(sizeof(struct fbit) <= sizeof(struct pair), "fbit fits in a pair");
	t->fmask = table_cap(t->nrecs) - 1;
	t->filter = xcalloc(t->fmask + 1, sizeof(*t->filter));
	bits = (struct fbit *)(void *)pairs;
	sorted_bits = (struct fbit *)(void *)sorted;
	for (size_t r = 0; r < t->nrecs; r++) {
		const struct pkey *k = &t->recs[r].key;
		unsigned a = anchor_index(k->prefix);
		struct pkey g = { .net = k->net, .scope = k->scope, .prefix = anchors[a] };
		ip_mask(&g.net, g.prefix);
		bits[r] = (struct fbit){ pkey_hash(&g), (uint32_t)(k->prefix - anchors[a]) };
	}
	order_by_home(bits, t->nrecs, sizeof(*bits), offsetof(struct fbit, hash), t->fmask,
		      sorted_bits);
	for (size_t r = 0; r < t->nrecs; r++)
		filter_add(t, &sorted_bits[r]);
	free(sorted);
}

static const struct prec *ptab_find(const struct ptab *t, const struct pkey *k)
{
	uint64_t h = pkey_hash(k);
	uint32_t tag = hash_tag(h);

	for (size_t i = h & t->mask; t->slots[i].tag; i = (i + 1) & t->mask)
		if (t->slots[i].tag == tag && pkey_eq(&t->recs[t->slots[i].val].key, k))
			return &t->recs[t->slots[i].val];
	return NULL;
}

/* The lengths in [anchor, next anchor) that may have an entry of the scope under k->net
 * (k->prefix is the anchor, k->net masked to it): bit (len - anchor). */
static uint32_t filter_get(const struct ptab *t, const struct pkey *k)
{
	uint64_t h = pkey_hash(k);
	uint32_t tag = hash_tag(h), lens = 0;

	for (size_t i = h & t->fmask; t->filter[i].tag; i = (i + 1) & t->fmask)
		if (t->filter[i].tag == tag)
			lens |= t->filter[i].val;
	return lens;
}

static void ptab_free(struct ptab *t)
{
	free(t->recs);
	free(t->slots);
	free(t->filter);
	free(t->values);
}

/* The anchors a scope uses: bit i for anchors[i]. */
static uint8_t anchor_bit(unsigned prefix)
{
	return (uint8_t)(1u << anchor_index(prefix));
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
	uint8_t *tenant_anchors;     /* [ntenants]: the filter anchors each tenant uses */
	struct ptab conn_tab;        /* scope = SCOPE_CONNECTORS; values = range index */
	uint8_t conn_anchors;
	uint32_t *range_owner;       /* range index -> connector index */
	char *ip_text;               /* the entries' comments, one block */
	struct rcpt_entry *rcpts;    /* recipient directory entries of every tenant */
	size_t nrcpts;
	uint32_t *rcpt_slots;        /* entry index + 1; 0 = empty; open addressing */
	size_t rcpt_mask;
	char *rcpt_text;             /* the entries' local parts (and the builder's domains) */
};

/* ---- builder -------------------------------------------------------------------------- */

struct b_domain { uint32_t tenant_id; char *domain; };
struct b_range { uint32_t connector_id; struct cidr range; };
/* Comments are offsets into ip_text (offset 0 is ""), not 100,000 strdups. */
struct b_entry { uint32_t tenant_id; enum ip_list list; struct cidr net; uint32_t comment; };
struct b_check { uint32_t tenant_id; enum recipient_check check; };
struct b_route_tls { uint32_t tenant_id; enum route_tls tls; };
/* Recipients keep their texts in one block (a million strdups would dominate the load);
 * consecutive entries of one domain share its text. */
struct b_rcpt { uint32_t tenant_id, domain, local; /* offsets into rcpt_text */ };

/* A block of NUL-terminated texts addressed by 32-bit offsets. */
struct text {
	char *v;
	size_t n, cap;
};

struct model_builder {
	VEC(struct model_tenant) tenants;
	VEC(struct b_domain) domains;
	VEC(struct model_connector) connectors;
	VEC(struct b_range) ranges;
	VEC(struct b_entry) entries;
	VEC(struct b_check) checks;
	VEC(struct b_route_tls) route_tls;
	VEC(struct b_rcpt) rcpts;
	struct text rcpt_text;
	struct text ip_text; /* comments; offset 0 is "" */
	uint32_t last_domain; /* offset + 1 of the last recipient domain, 0 = none */
};

/* Appends len bytes and a NUL to a text block; the offset, or -1 when full. */
static int64_t text_add(struct text *tx, const char *text, size_t len)
{
	size_t off = tx->n;

	if (len + 1 > TEXT_MAX - off)
		return -1;
	if (tx->cap - off < len + 1) {
		size_t cap = tx->cap ? tx->cap : 4096;
		while (cap - off < len + 1)
			cap *= 2;
		tx->v = xrealloc(tx->v, cap);
		tx->cap = cap;
	}
	memcpy(tx->v + off, text, len);
	tx->v[off + len] = '\0';
	tx->n = off + len + 1;
	return (int64_t)off;
}

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
	free(b->tenants.v);
	free(b->domains.v);
	free(b->connectors.v);
	free(b->ranges.v);
	free(b->entries.v);
	free(b->checks.v);
	free(b->route_tls.v);
	free(b->rcpts.v);
	free(b->rcpt_text.v);
	free(b->ip_text.v);
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
	struct b_entry e = { tenant_id, list, *net, 0 };
	size_t len = comment ? strlen(comment) : 0;
	int64_t off;

	if (b->ip_text.n == 0 && text_add(&b->ip_text, "", 0) < 0) /* offset 0: no comment */
		return -1;
	if (len) {
		if ((off = text_add(&b->ip_text, comment, len)) < 0)
			return -1;
		e.comment = (uint32_t)off;
	}
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
		if ((off = text_add(&b->rcpt_text, domain, dlen)) < 0)
			return -1;
		r.domain = (uint32_t)off;
		b->last_domain = (uint32_t)off + 1;
	}
	if ((off = text_add(&b->rcpt_text, local, llen)) < 0)
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
		s->conn_anchors |= anchor_bit(s->ranges[np].prefix);
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
	struct model_tenant *t = NULL;
	size_t n = 0;

	s->entries = xcalloc(b->entries.n ? b->entries.n : 1, sizeof(*s->entries));
	s->tenant_anchors = xcalloc(s->ntenants ? s->ntenants : 1, sizeof(*s->tenant_anchors));
	s->ip_text = b->ip_text.v ? b->ip_text.v : xcalloc(1, 1);
	b->ip_text.v = NULL;
	for (size_t i = 0; i < b->entries.n; i++) {
		struct b_entry *be = &b->entries.v[i];
		if (!t || t->id != be->tenant_id) /* the store reads a tenant's entries together */
			t = tenant_by_id(s, be->tenant_id);
		if (!t)
			continue;
		struct model_ip_entry *e = &s->entries[n];
		e->net = be->net;
		ip_mask(&e->net.net, e->net.prefix);
		e->list = be->list;
		e->tenant = t;
		e->comment = s->ip_text + be->comment;
		if (be->list == IP_LIST_ALLOW)
			t->nallow++;
		else
			t->nblock++;
		uint32_t scope = (uint32_t)(t - s->tenants);
		pairs[n].key = (struct pkey){ e->net.net, scope, e->net.prefix };
		pairs[n].value = (uint32_t)n;
		pairs[n].prefer = e->list == IP_LIST_BLOCK;
		s->tenant_anchors[scope] |= anchor_bit(e->net.prefix);
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
	free(s->tenants);
	free(s->by_name);
	free(s->domains);
	free(s->connectors);
	free(s->ranges);
	free(s->range_owner);
	free(s->entries);
	free(s->tenant_anchors);
	free(s->ip_text);
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

/* Walks the records of one scope that contain ip, longest prefix first, calling fn for each;
 * stops when fn returns nonzero. used: the scope's anchor bits. Per anchor the scope uses,
 * longest first: one filter probe, then one exact probe per length the filter names. */
static void ptab_walk(const struct ptab *t, uint8_t used, uint32_t scope,
		      const struct ip_addr *ip, int (*fn)(const struct prec *r, void *arg), void *arg)
{
	struct pkey k = { .scope = scope };

	for (unsigned a = NANCHORS; a-- > 0;) {
		if (!(used >> a & 1))
			continue;
		k.prefix = anchors[a];
		k.net = *ip;
		ip_mask(&k.net, k.prefix);
		for (uint32_t lens = filter_get(t, &k); lens;) {
			unsigned bit = 31u - (unsigned)__builtin_clz(lens);
			lens &= ~(1u << bit);
			k.prefix = (uint8_t)(anchors[a] + bit);
			k.net = *ip;
			ip_mask(&k.net, k.prefix);
			const struct prec *r = ptab_find(t, &k);
			if (r && fn(r, arg))
				return;
		}
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

	w->best = &w->s->entries[r->best];
	return 1;
}

const struct model_ip_entry *model_ip_lookup(const struct model_snapshot *s,
					     const struct model_tenant *t, const struct ip_addr *ip)
{
	struct ip_walk w = { .s = s };
	uint32_t scope = (uint32_t)(t - s->tenants);

	ptab_walk(&s->ip_tab, s->tenant_anchors[scope], scope, ip, pick_best, &w);
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

	ptab_walk(&s->ip_tab, s->tenant_anchors[scope], scope, ip, call_each, &w);
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
	struct conn_walk w; /* seen[] is read below nseen only: not cleared, 512 bytes a call */

	if (!s->conn_anchors)
		return;
	w.s = s;
	w.fn = fn;
	w.arg = arg;
	w.nseen = 0;
	ptab_walk(&s->conn_tab, s->conn_anchors, SCOPE_CONNECTORS, ip, call_connectors, &w);
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

/* Formatted by hand, not snprintf: the engine writes a route into every accepting verdict. */
int model_route_spec_format(const char *route, enum route_tls tls, char *out, size_t outsz)
{
	const char *name = model_route_tls_name(tls);
	size_t rlen = strlen(route), olen = 0, nlen = 0;

	if (name && tls != ROUTE_TLS_OPPORTUNISTIC) { /* opportunistic: the plain form, as older
							  versions wrote it */
		olen = 1 + strlen(ROUTE_TLS_OPTION);
		nlen = strlen(name);
	}
	if (!name || rlen + olen + nlen >= outsz) {
		if (outsz)
			out[0] = '\0';
		return -1;
	}
	memcpy(out, route, rlen);
	if (olen) {
		memcpy(out + rlen, " " ROUTE_TLS_OPTION, olen);
		memcpy(out + rlen + olen, name, nlen);
	}
	out[rlen + olen + nlen] = '\0';
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
