/* probe_cache: see probe_cache.h.
 *
 * Entries sit in a bucket chain for lookups and in one list in insertion order (oldest first)
 * for eviction. Refused answers expire sooner than accepted ones, so the oldest entry is not
 * always the first to expire; scanning a few of the oldest for expired ones before evicting the
 * very oldest keeps the useful entries at O(1) cost. The bucket array doubles as entries are
 * added (load factor at most 1) and never grows beyond what max_entries needs. */
#include "policy/probe_cache.h"

#include <stdio.h>
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
	enum engine_probe_state state;
	size_t key_len;
	char strs[]; /* key NUL detail NUL */
};

struct probe_cache {
	struct entry **buckets;
	size_t nbuckets; /* a power of two */
	size_t count, max;
	struct entry *oldest, *newest;
	uint64_t seed;
};

/* FNV-1a over the bytes, seeded, then splitmix64's finaliser so every bit counts. */
static uint64_t key_hash(const struct probe_cache *c, const char *key, size_t len)
{
	uint64_t h = 0xcbf29ce484222325u ^ c->seed;

	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3u;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9u;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebu;
	h ^= h >> 31;
	return h;
}

struct probe_cache *probe_cache_new(size_t max_entries, uint64_t seed)
{
	struct probe_cache *c = xcalloc(1, sizeof(*c));

	c->max = max_entries ? max_entries : 1;
	c->seed = seed;
	c->nbuckets = BUCKETS_MIN;
	c->buckets = xcalloc(c->nbuckets, sizeof(*c->buckets));
	return c;
}

void probe_cache_free(struct probe_cache **cp)
{
	struct probe_cache *c = *cp;

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

size_t probe_cache_count(const struct probe_cache *c)
{
	return c->count;
}

int probe_cache_key(const char *tenant, const char *route, const char *address, char *out,
		    size_t outsz)
{
	int n = snprintf(out, outsz, "%s\n%s\n%s", tenant, route, address);

	if (n < 0 || (size_t)n >= outsz) {
		if (outsz)
			out[0] = '\0';
		return -1;
	}
	for (char *p = out + n - strlen(address); *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + ('a' - 'A'));
	return 0;
}

static void entry_remove(struct probe_cache *c, struct entry *e)
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

static struct entry *entry_find(struct probe_cache *c, const char *key, size_t len, uint64_t h)
{
	for (struct entry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->chain)
		if (e->hash == h && e->key_len == len && !memcmp(e->strs, key, len))
			return e;
	return NULL;
}

static void grow(struct probe_cache *c)
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
static void evict(struct probe_cache *c, uint64_t now_ms)
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

int probe_cache_get(struct probe_cache *c, const char *key, uint64_t now_ms,
		    struct engine_probe *answer)
{
	size_t len = strlen(key);
	struct entry *e = entry_find(c, key, len, key_hash(c, key, len));

	if (!e)
		return 0;
	if (e->expires_ms <= now_ms) {
		entry_remove(c, e);
		return 0;
	}
	answer->state = e->state;
	answer->cached = 1;
	snprintf(answer->detail, sizeof(answer->detail), "%s", e->strs + e->key_len + 1);
	return 1;
}

static void entry_link(struct probe_cache *c, struct entry *e)
{
	size_t slot = e->hash & (c->nbuckets - 1);

	e->chain = c->buckets[slot];
	c->buckets[slot] = e;
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
	c->count++;
}

void probe_cache_put(struct probe_cache *c, const char *key, uint64_t now_ms,
		     const struct engine_probe *answer)
{
	size_t len = strlen(key);
	size_t dl = strnlen(answer->detail, sizeof(answer->detail) - 1);
	uint64_t h = key_hash(c, key, len);
	struct entry *e = entry_find(c, key, len, h);

	if (e)
		entry_remove(c, e);
	if (answer->state != ENGINE_PROBE_ACCEPTED && answer->state != ENGINE_PROBE_REJECTED)
		return;
	if (c->count >= c->max)
		evict(c, now_ms);
	if (c->count >= c->nbuckets && c->nbuckets < c->max)
		grow(c);
	e = xmalloc(sizeof(*e) + len + 1 + dl + 1);
	e->hash = h;
	e->expires_ms = now_ms + (answer->state == ENGINE_PROBE_ACCEPTED ? PROBE_CACHE_ACCEPTED_MS
									 : PROBE_CACHE_REFUSED_MS);
	e->state = answer->state;
	e->key_len = len;
	memcpy(e->strs, key, len + 1);
	memcpy(e->strs + len + 1, answer->detail, dl);
	e->strs[len + 1 + dl] = '\0';
	entry_link(c, e);
}
