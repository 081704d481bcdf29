/* probe_cache: the answers of recipient probes (probe.h), per worker, pure (no I/O, no clock:
 * the caller passes its monotonic milliseconds).
 *
 * Key: a tenant, its route and a recipient address (probe_cache_key). Value: accepted or
 * refused, and the server's reply for logs and explain. Only definite answers are kept, each
 * for its own time: an accepted address for PROBE_CACHE_ACCEPTED_MS, a refused one for
 * PROBE_CACHE_REFUSED_MS (shorter: a mailbox created a minute ago must not stay unknown for
 * an hour). A failed probe (4xx, timeout, connection error) is never cached: the next RCPT
 * asks again.
 *
 * A seeded hash with chaining and an insertion-order list; when full, an insert first drops
 * expired entries among the oldest few, else the oldest entry, so memory stays bounded at
 * max_entries and every operation is O(1) amortised. */
#ifndef MXG_POLICY_PROBE_CACHE_H
#define MXG_POLICY_PROBE_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/engine.h"

#define PROBE_CACHE_ACCEPTED_MS (3600u * 1000) /* an address the server accepted: 1 hour */
#define PROBE_CACHE_REFUSED_MS (600u * 1000)   /* an address it refused: 10 minutes */
#define PROBE_CACHE_MAX_ENTRIES 20000          /* per worker */
/* A key: tenant name, route spec and address, with separators. */
#define PROBE_CACHE_KEY_MAX (MODEL_NAME_MAX + MODEL_ROUTE_SPEC_MAX + 320)

struct probe_cache;

/* max_entries >= 1 (0 is taken as 1). seed randomises the hash. */
struct probe_cache *probe_cache_new(size_t max_entries, uint64_t seed);
void probe_cache_free(struct probe_cache **c);

/* Writes the key of (tenant, route, address) into out (PROBE_CACHE_KEY_MAX + 1 bytes fit any
 * the policy passes): the address with ASCII letters folded to lower case, since the cache,
 * like the recipient directory, treats Bob@x and bob@x as one mailbox. Returns 0, or -1 when
 * it does not fit (no caching for that address). */
int probe_cache_key(const char *tenant, const char *route, const char *address, char *out,
		    size_t outsz);

/* On a hit (present, now_ms before its expiry) fills *answer (state, detail; cached = 1) and
 * returns 1. An expired entry is removed; returns 0. */
int probe_cache_get(struct probe_cache *c, const char *key, uint64_t now_ms,
		    struct engine_probe *answer);
/* Stores (replaces) the answer for key until now_ms plus the time its state is kept. A failed
 * answer is not stored, and removes an entry the key had. */
void probe_cache_put(struct probe_cache *c, const char *key, uint64_t now_ms,
		     const struct engine_probe *answer);
size_t probe_cache_count(const struct probe_cache *c);

#endif
