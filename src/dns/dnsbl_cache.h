/* dnsbl_cache: bounded answer cache of one struct dnsbl (internal to src/dns/).
 *
 * Key: (list index, client address). Value: the final state, code, TXT and detail of one
 * answer, with an absolute expiry on the caller's monotonic millisecond clock. A seeded hash
 * with chaining; when full, an insert first drops expired entries among the oldest few, else
 * the oldest entry, so every operation is O(1) amortised and memory stays bounded. */
#ifndef MXG_DNS_DNSBL_CACHE_H
#define MXG_DNS_DNSBL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "dns/dnsbl.h"
#include "util/addr.h"

struct dnsbl_cache;

/* max_entries >= 1. seed randomises the hash so clients cannot aim at one chain. */
struct dnsbl_cache *dnsbl_cache_new(size_t max_entries, uint64_t seed);
void dnsbl_cache_free(struct dnsbl_cache **c);

/* On a hit (entry present and now_ms < its expiry) copies state, code, txt and detail into
 * *a (other fields untouched) and returns 1. An expired entry is removed; returns 0. */
int dnsbl_cache_get(struct dnsbl_cache *c, unsigned list, const struct ip_addr *ip,
		    uint64_t now_ms, struct dnsbl_answer *a);
/* Stores (replaces) the entry for (list, ip) until expires_ms. */
void dnsbl_cache_put(struct dnsbl_cache *c, unsigned list, const struct ip_addr *ip,
		     uint64_t now_ms, uint64_t expires_ms, const struct dnsbl_answer *a);
size_t dnsbl_cache_count(const struct dnsbl_cache *c);

#endif
