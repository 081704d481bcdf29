/* iptable: see iptable.h. One process-shared robust mutex guards the table: every operation
 * is a few dozen instructions at connect and at close, far below the cost of the accept. */
#include "event/iptable.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define BUCKET_SLOTS 8
#define MIN_BUCKETS 256
#define MAX_COLUMNS 256
#define WINDOW_SECONDS 60

struct slot {
	struct ip_addr key;
	uint8_t used;
	uint32_t window;          /* start of the current one-minute window (seconds / 60) */
	uint32_t cur, prev;       /* connections in the current and the previous window */
	time_t last_seen;
	uint32_t sessions[];      /* one per column */
};

struct iptable {
	pthread_mutex_t lock;
	size_t map_size;
	unsigned nbuckets; /* a power of two */
	unsigned columns;
	size_t slot_size;
	unsigned char slots[];
};

static struct slot *slot_at(struct iptable *t, size_t i)
{
	return (struct slot *)(t->slots + i * t->slot_size);
}

struct iptable *iptable_create(unsigned clients, unsigned columns)
{
	pthread_mutexattr_t attr;
	unsigned nb = MIN_BUCKETS;

	if (columns == 0 || columns > MAX_COLUMNS)
		return NULL;
	while ((size_t)nb * BUCKET_SLOTS < (size_t)clients * 2 && nb < (1u << 24))
		nb <<= 1;
	size_t slot_size = (sizeof(struct slot) + columns * sizeof(uint32_t) + 7) & ~(size_t)7;
	size_t size = sizeof(struct iptable) + (size_t)nb * BUCKET_SLOTS * slot_size;
	struct iptable *t = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				 -1, 0);
	if (t == MAP_FAILED)
		return NULL;
	/* fresh anonymous memory is zero: every slot is unused */
	t->map_size = size;
	t->nbuckets = nb;
	t->columns = columns;
	t->slot_size = slot_size;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
	pthread_mutex_init(&t->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	return t;
}

void iptable_destroy(struct iptable **t)
{
	if (!*t)
		return;
	munmap(*t, (*t)->map_size);
	*t = NULL;
}

/* A process that died holding the lock left at most one slot half-updated: counters only,
 * never the structure, so the table stays usable. */
static void table_lock(struct iptable *t)
{
	if (pthread_mutex_lock(&t->lock) == EOWNERDEAD)
		pthread_mutex_consistent(&t->lock);
}

static void table_unlock(struct iptable *t)
{
	pthread_mutex_unlock(&t->lock);
}

static uint32_t key_hash(const struct ip_addr *ip)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (int i = 0; i < 16; i++)
		h = (h ^ ip->b[i]) * 16777619u;
	return h;
}

static unsigned slot_sessions(const struct iptable *t, const struct slot *s)
{
	unsigned n = 0;
	for (unsigned c = 0; c < t->columns; c++)
		n += s->sessions[c];
	return n;
}

/* The client's slot; else a free one or the least recently seen one without sessions. */
static struct slot *slot_find(struct iptable *t, const struct ip_addr *key, size_t *index_r)
{
	size_t base = (size_t)(key_hash(key) & (t->nbuckets - 1)) * BUCKET_SLOTS;
	struct slot *victim = NULL;
	size_t victim_index = 0;

	for (size_t i = base; i < base + BUCKET_SLOTS; i++) {
		struct slot *s = slot_at(t, i);
		if (s->used && !memcmp(&s->key, key, sizeof(*key))) {
			*index_r = i;
			return s;
		}
		if (s->used && slot_sessions(t, s) > 0)
			continue;
		if (!victim || !s->used || (victim->used && s->last_seen < victim->last_seen)) {
			victim = s;
			victim_index = i;
		}
	}
	if (!victim)
		return NULL;
	memset(victim, 0, t->slot_size);
	victim->key = *key;
	victim->used = 1;
	*index_r = victim_index;
	return victim;
}

/* Connections in the last minute, estimated from two fixed windows: the previous window's
 * count weighted by how much of it still lies within the last 60 seconds. */
static unsigned window_count(struct slot *s, time_t now)
{
	uint32_t w = (uint32_t)(now / WINDOW_SECONDS);

	if (w != s->window) {
		s->prev = w == s->window + 1 ? s->cur : 0;
		s->cur = 0;
		s->window = w;
	}
	unsigned into = (unsigned)(now % WINDOW_SECONDS);
	return s->cur + (unsigned)((uint64_t)s->prev * (WINDOW_SECONDS - into) / WINDOW_SECONDS);
}

int iptable_connect(struct iptable *t, unsigned col, const struct ip_addr *ip, time_t now,
		    struct iptable_count *count_r)
{
	size_t index;

	memset(count_r, 0, sizeof(*count_r));
	if (col >= t->columns)
		return IPTABLE_UNTRACKED;
	table_lock(t);
	struct slot *s = slot_find(t, ip, &index);
	if (s) {
		window_count(s, now);
		s->cur++;
		s->last_seen = now;
		s->sessions[col]++;
		count_r->per_minute = window_count(s, now);
		count_r->sessions = slot_sessions(t, s);
		count_r->tracked = 1;
	}
	table_unlock(t);
	return s ? (int)index : IPTABLE_UNTRACKED;
}

void iptable_disconnect(struct iptable *t, unsigned col, int handle)
{
	if (handle < 0 || (size_t)handle >= (size_t)t->nbuckets * BUCKET_SLOTS || col >= t->columns)
		return;
	table_lock(t);
	struct slot *s = slot_at(t, (size_t)handle);
	if (s->used && s->sessions[col] > 0)
		s->sessions[col]--;
	table_unlock(t);
}

void iptable_forget_column(struct iptable *t, unsigned col)
{
	if (col >= t->columns)
		return;
	table_lock(t);
	for (size_t i = 0; i < (size_t)t->nbuckets * BUCKET_SLOTS; i++)
		slot_at(t, i)->sessions[col] = 0;
	table_unlock(t);
}

void iptable_key(const struct ip_addr *ip, unsigned v6_prefix, struct ip_addr *key_r)
{
	*key_r = *ip;
	if (ip_is_v4(ip) || v6_prefix >= 128)
		return;
	unsigned full = v6_prefix / 8, bits = v6_prefix % 8;
	if (bits)
		key_r->b[full] &= (uint8_t)(0xff << (8 - bits));
	memset(key_r->b + full + (bits ? 1 : 0), 0, 16 - full - (bits ? 1 : 0));
}
