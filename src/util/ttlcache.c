/* ttlcache: see ttlcache.h. */
#include "util/ttlcache.h"

#include <stdlib.h>
#include <string.h>

#include "util/xmalloc.h"

#define BUCKETS_MIN 64
/* How many of the oldest entries an insert into a full cache checks for expiry. */
#define EVICT_SCAN 8

struct entry {
	struct entry *chain;         /* next in the bucket */
	struct entry *older, *newer; /* insertion order */
	uint64_t hash;
	uint64_t expires_ms;
	size_t klen, vlen;
	unsigned char data[]; /* key, then value */
};

struct ttlcache {
	struct entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count, max;
	struct entry *oldest, *newest;
	uint64_t seed;
};

/* FNV-1a over the bytes, seeded, then splitmix64's finaliser so every bit counts. */
static uint64_t key_hash(const struct ttlcache *c, const void *key, size_t klen)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ULL ^ c->seed;

	for (size_t i = 0; i < klen; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

struct ttlcache *ttlcache_new(size_t max_entries, uint64_t seed)
{
	struct ttlcache *c = xcalloc(1, sizeof(*c));

	c->max = max_entries ? max_entries : 1;
	c->seed = seed;
	c->nbuckets = BUCKETS_MIN;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	return c;
}

void ttlcache_free(struct ttlcache **cp)
{
	struct ttlcache *c = *cp;

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

size_t ttlcache_count(const struct ttlcache *c)
{
	return c->count;
}

static void entry_remove(struct ttlcache *c, struct entry *e)
{
	struct entry **p = &c->buckets[e->hash & (c->nbuckets - 1)];

	while (*p != e)
		p = &(*p)->chain;
	*p = e->chain;
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

static struct entry *entry_find(struct ttlcache *c, const void *key, size_t klen, uint64_t h)
{
	for (struct entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->chain)
		if (e->hash == h && e->klen == klen && !memcmp(e->data, key, klen))
			return e;
	return NULL;
}

static void grow(struct ttlcache *c)
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
static void evict(struct ttlcache *c, uint64_t now_ms)
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

const void *ttlcache_get(struct ttlcache *c, const void *key, size_t klen, uint64_t now_ms,
			 size_t *vlen_r)
{
	struct entry *e = entry_find(c, key, klen, key_hash(c, key, klen));

	if (!e)
		return NULL;
	if (e->expires_ms <= now_ms) {
		entry_remove(c, e);
		return NULL;
	}
	*vlen_r = e->vlen;
	return e->data + e->klen;
}

void ttlcache_remove(struct ttlcache *c, const void *key, size_t klen)
{
	struct entry *e = entry_find(c, key, klen, key_hash(c, key, klen));

	if (e)
		entry_remove(c, e);
}

void ttlcache_put(struct ttlcache *c, const void *key, size_t klen, uint64_t now_ms,
		  uint64_t expires_ms, const void *val, size_t vlen)
{
	uint64_t h = key_hash(c, key, klen);
	struct entry *e = entry_find(c, key, klen, h);

	if (e)
		entry_remove(c, e);
	if (c->count >= c->max)
		evict(c, now_ms);
	if (c->count >= c->nbuckets && c->nbuckets < c->max)
		grow(c);
	e = xmalloc(sizeof(*e) + klen + vlen);
	e->hash = h;
	e->expires_ms = expires_ms;
	e->klen = klen;
	e->vlen = vlen;
	memcpy(e->data, key, klen);
	memcpy(e->data + klen, val, vlen);
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
