/* dnsbl_cache: see dnsbl_cache.h.
 *
 * Entries sit in two structures: a bucket chain for lookups, and one list in insertion order
 * (oldest first) for eviction. TTLs differ, so the oldest entry is not always the first to
 * expire; scanning a few of the oldest for expired ones before evicting the very oldest keeps
 * most of the useful entries at O(1) cost. The bucket array doubles as entries are added
 * (load factor at most 1) and never exceeds what max_entries needs. */
#include "dns/dnsbl_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

#define BUCKETS_MIN 64
/* How many of the oldest entries an insert into a full cache checks for expiry. */
#define EVICT_SCAN 8

struct entry {
	struct entry *chain;        /* next in the bucket */
	struct entry *older, *newer; /* insertion order */
	uint64_t hash;
	uint64_t expires_ms;
	struct ip_addr ip;
	uint32_t code;
	unsigned list;
	enum dnsbl_state state;
	size_t txt_len;
	char strs[]; /* txt NUL detail NUL */
};

struct dnsbl_cache {
	struct entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count, max;
	struct entry *oldest, *newest;
	uint64_t seed;
};

/* splitmix64's finaliser: every input bit affects every output bit. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9u;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebu;
	x ^= x >> 31;
	return x;
}

static uint64_t key_hash(const struct dnsbl_cache *c, unsigned list, const struct ip_addr *ip)
{
	uint64_t hi, lo;

	memcpy(&hi, ip->b, sizeof(hi));
	memcpy(&lo, ip->b + sizeof(hi), sizeof(lo));
	return mix(mix(mix(c->seed ^ list) ^ hi) ^ lo);
}

struct dnsbl_cache *dnsbl_cache_new(size_t max_entries, uint64_t seed)
{
	struct dnsbl_cache *c = xcalloc(1, sizeof(*c));

	c->max = max_entries ? max_entries : 1;
	c->seed = seed;
	c->nbuckets = BUCKETS_MIN;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	return c;
}

void dnsbl_cache_free(struct dnsbl_cache **cp)
{
	struct dnsbl_cache *c = *cp;

	if (!c)
		return;
	*cp = NULL;
	while (c->oldest) {
		struct entry *e = c->oldest;
		c->oldest = e->newer;
		free(e);
	}
	free(c->buckets);
	free(c);
}

size_t dnsbl_cache_count(const struct dnsbl_cache *c)
{
	return c->count;
}

static struct entry **chain_slot(struct dnsbl_cache *c, const struct entry *e)
{
	struct entry **p = &c->buckets[e->hash & (c->nbuckets - 1)];

	while (*p != e)
		p = &(*p)->chain;
	return p;
}

static void entry_remove(struct dnsbl_cache *c, struct entry *e)
{
	struct entry **slot = chain_slot(c, e);

	*slot = e->chain;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	c->count--;
	free(e);
}

static struct entry *entry_find(struct dnsbl_cache *c, unsigned list, const struct ip_addr *ip,
				uint64_t h)
{
	for (struct entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->chain)
		if (e->hash == h && e->list == list && !memcmp(&e->ip, ip, sizeof(*ip)))
			return e;
	return NULL;
}

static void grow(struct dnsbl_cache *c)
{
	size_t n = c->nbuckets * 2;
	struct entry **b = xcalloc(n, sizeof(*b));

	for (struct entry *e = c->oldest; e; e = e->newer) {
		e->chain = b[e->hash & (n - 1)];
		b[e->hash & (n - 1)] = e;
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
}

/* Makes room for one entry: expired ones among the oldest few, else the oldest. */
static void evict(struct dnsbl_cache *c, uint64_t now_ms)
{
	struct entry *e = c->oldest;
	int freed = 0;

	for (int i = 0; e && i < EVICT_SCAN; i++) {
		struct entry *next = e->newer;
		if (e->expires_ms <= now_ms) {
			entry_remove(c, e);
			freed = 1;
		}
		e = next;
	}
	if (!freed && c->oldest)
		entry_remove(c, c->oldest);
}

int dnsbl_cache_get(struct dnsbl_cache *c, unsigned list, const struct ip_addr *ip,
		    uint64_t now_ms, struct dnsbl_answer *a)
{
	struct entry *e = entry_find(c, list, ip, key_hash(c, list, ip));

	if (!e)
		return 0;
	if (e->expires_ms <= now_ms) {
		entry_remove(c, e);
		return 0;
	}
	a->state = e->state;
	a->code = e->code;
	memcpy(a->txt, e->strs, e->txt_len + 1);
	snprintf(a->detail, sizeof(a->detail), "%s", e->strs + e->txt_len + 1);
	return 1;
}

void dnsbl_cache_put(struct dnsbl_cache *c, unsigned list, const struct ip_addr *ip,
		     uint64_t now_ms, uint64_t expires_ms, const struct dnsbl_answer *a)
{
	uint64_t h = key_hash(c, list, ip);
	struct entry *e = entry_find(c, list, ip, h);
	size_t tl = strnlen(a->txt, sizeof(a->txt) - 1), dl = strnlen(a->detail, sizeof(a->detail) - 1);

	if (e)
		entry_remove(c, e);
	if (c->count >= c->max)
		evict(c, now_ms);
	if (c->count >= c->nbuckets && c->nbuckets < c->max)
		grow(c);
	e = xmalloc(sizeof(*e) + tl + 1 + dl + 1);
	e->hash = h;
	e->expires_ms = expires_ms;
	e->ip = *ip;
	e->code = a->code;
	e->list = list;
	e->state = a->state;
	e->txt_len = tl;
	memcpy(e->strs, a->txt, tl);
	e->strs[tl] = '\0';
	memcpy(e->strs + tl + 1, a->detail, dl);
	e->strs[tl + 1 + dl] = '\0';
	e->chain = c->buckets[h & (c->nbuckets - 1)];
	c->buckets[h & (c->nbuckets - 1)] = e;
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
	c->count++;
}
