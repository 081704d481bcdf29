/* dnsbl_cache: see dnsbl_cache.h. A ttlcache keyed by (list, address); the value is the
 * answer's state and code followed by its TXT and detail texts. */
#include "dns/dnsbl_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ttlcache.h"
#include "util/xmalloc.h"

struct dnsbl_cache {
	struct ttlcache *tc;
};

struct cached_head {
	uint32_t state, code;
	uint32_t txt_len; /* then txt NUL detail NUL */
};

#define KEY_LEN (sizeof(uint32_t) + 16)

static void make_key(unsigned list, const struct ip_addr *ip, unsigned char key[KEY_LEN])
{
	uint32_t l = list;

	memcpy(key, &l, sizeof(l));
	memcpy(key + sizeof(l), ip->b, 16);
}

struct dnsbl_cache *dnsbl_cache_new(size_t max_entries, uint64_t seed)
{
	struct dnsbl_cache *c = xcalloc(1, sizeof(*c));

	c->tc = ttlcache_new(max_entries, seed);
	return c;
}

void dnsbl_cache_free(struct dnsbl_cache **cp)
{
	if (!*cp)
		return;
	ttlcache_free(&(*cp)->tc);
	free(*cp);
	*cp = NULL;
}

size_t dnsbl_cache_count(const struct dnsbl_cache *c)
{
	return ttlcache_count(c->tc);
}

int dnsbl_cache_get(struct dnsbl_cache *c, unsigned list, const struct ip_addr *ip,
		    uint64_t now_ms, struct dnsbl_answer *a)
{
	unsigned char key[KEY_LEN];
	struct cached_head h;
	size_t vlen;
	const char *v;

	make_key(list, ip, key);
	v = ttlcache_get(c->tc, key, sizeof(key), now_ms, &vlen);
	if (!v || vlen < sizeof(h))
		return 0;
	memcpy(&h, v, sizeof(h));
	v += sizeof(h);
	a->state = (enum dnsbl_state)h.state;
	a->code = h.code;
	snprintf(a->txt, sizeof(a->txt), "%s", v);
	snprintf(a->detail, sizeof(a->detail), "%s", v + h.txt_len + 1);
	return 1;
}

void dnsbl_cache_put(struct dnsbl_cache *c, unsigned list, const struct ip_addr *ip,
		     uint64_t now_ms, uint64_t expires_ms, const struct dnsbl_answer *a)
{
	unsigned char key[KEY_LEN];
	size_t tl = strnlen(a->txt, sizeof(a->txt) - 1), dl = strnlen(a->detail, sizeof(a->detail) - 1);
	struct cached_head h = { (uint32_t)a->state, a->code, (uint32_t)tl };
	char *v = xmalloc(sizeof(h) + tl + 1 + dl + 1);

	memcpy(v, &h, sizeof(h));
	memcpy(v + sizeof(h), a->txt, tl);
	v[sizeof(h) + tl] = '\0';
	memcpy(v + sizeof(h) + tl + 1, a->detail, dl);
	v[sizeof(h) + tl + 1 + dl] = '\0';
	make_key(list, ip, key);
	ttlcache_put(c->tc, key, sizeof(key), now_ms, expires_ms, v, sizeof(h) + tl + 1 + dl + 1);
	free(v);
}
