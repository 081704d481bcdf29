/* probe_cache: see probe_cache.h. A ttlcache keyed by "tenant\nroute\naddress" (address
 * case-folded for ASCII); the value is the answer's state followed by its detail text.
 * Refused answers expire sooner than accepted ones; failures are never kept. */
#include "policy/probe_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ttlcache.h"
#include "util/xmalloc.h"

struct probe_cache {
	struct ttlcache *tc;
};

struct probe_cache *probe_cache_new(size_t max_entries, uint64_t seed)
{
	struct probe_cache *c = xcalloc(1, sizeof(*c));

	c->tc = ttlcache_new(max_entries, seed);
	return c;
}

void probe_cache_free(struct probe_cache **cp)
{
	if (!*cp)
		return;
	ttlcache_free(&(*cp)->tc);
	free(*cp);
	*cp = NULL;
}

size_t probe_cache_count(const struct probe_cache *c)
{
	return ttlcache_count(c->tc);
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

int probe_cache_get(struct probe_cache *c, const char *key, uint64_t now_ms,
		    struct engine_probe *answer)
{
	uint32_t state;
	size_t vlen;
	const char *v = ttlcache_get(c->tc, key, strlen(key), now_ms, &vlen);

	if (!v || vlen < sizeof(state) + 1)
		return 0;
	memcpy(&state, v, sizeof(state));
	answer->state = (enum engine_probe_state)state;
	answer->cached = 1;
	snprintf(answer->detail, sizeof(answer->detail), "%s", v + sizeof(state));
	return 1;
}

void probe_cache_put(struct probe_cache *c, const char *key, uint64_t now_ms,
		     const struct engine_probe *answer)
{
	size_t klen = strlen(key), dl = strnlen(answer->detail, sizeof(answer->detail) - 1);
	uint32_t state = (uint32_t)answer->state;
	char *v;

	if (answer->state != ENGINE_PROBE_ACCEPTED && answer->state != ENGINE_PROBE_REJECTED) {
		ttlcache_remove(c->tc, key, klen); /* a failure says nothing: forget the old answer */
		return;
	}
	v = xmalloc(sizeof(state) + dl + 1);
	memcpy(v, &state, sizeof(state));
	memcpy(v + sizeof(state), answer->detail, dl);
	v[sizeof(state) + dl] = '\0';
	ttlcache_put(c->tc, key, klen, now_ms,
		     now_ms + (answer->state == ENGINE_PROBE_ACCEPTED ? PROBE_CACHE_ACCEPTED_MS
								   : PROBE_CACHE_REFUSED_MS),
		     v, sizeof(state) + dl + 1);
	free(v);
}
