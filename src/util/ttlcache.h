/* ttlcache: a bounded cache of byte-string keys to byte-string values, each with its own
 * expiry. The DNSBL answers and the recipient-probe answers are both kept in one.
 *
 * Entries sit in a bucket chain for lookups and in one list in insertion order (oldest first)
 * for eviction. Expiries differ, so the oldest entry is not always the first to expire;
 * scanning a few of the oldest for expired ones before evicting the very oldest keeps the
 * useful entries at O(1) cost. The bucket array doubles as entries are added (load factor at
 * most 1) and never grows beyond what max_entries needs. Not thread-safe: one per loop. */
#ifndef MXG_TTLCACHE_H
#define MXG_TTLCACHE_H

#include <stddef.h>
#include <stdint.h>

struct ttlcache;

/* seed keys the hash so clients cannot aim collisions at one bucket. */
struct ttlcache *ttlcache_new(size_t max_entries, uint64_t seed);
void ttlcache_free(struct ttlcache **c);

/* A live entry's value (valid until the next put, or free) and its length; NULL when absent or
 * expired (an expired entry is dropped). */
const void *ttlcache_get(struct ttlcache *c, const void *key, size_t klen, uint64_t now_ms,
			 size_t *vlen_r);
/* Stores (replacing) key -> val until expires_ms, evicting when full. */
void ttlcache_put(struct ttlcache *c, const void *key, size_t klen, uint64_t now_ms,
		  uint64_t expires_ms, const void *val, size_t vlen);
/* Drops key if present. */
void ttlcache_remove(struct ttlcache *c, const void *key, size_t klen);
size_t ttlcache_count(const struct ttlcache *c);

#endif
