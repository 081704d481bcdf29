/* dnsbl: DNS blocklist lookups (RFC 5782) for one event loop, on c-ares.
 *
 * For a client address, every configured list is queried at once; answers are cached for
 * their TTL clamped to [dnsbl_cache_min_ttl, dnsbl_cache_max_ttl]; each answer is exactly one
 * of: listed (a configured code), not listed (NXDOMAIN / no A record), list error (an answer
 * that must never count as a listing: outside 127.0.0.0/8, 127.0.0.1, 127.255.255.0/24,
 * a code not configured... see dnsbl_interpret; and REFUSED: the list, or the resolver on its
 * behalf, refuses us) and resolver error (SERVFAIL, timeouts, network errors). A query
 * completes when every list answered or at its deadline (dnsbl_timeout_ms after the
 * start), whichever is first; lists still unanswered then are
 * DNSBL_TIMEOUT, and the decision goes on without them (fail open).
 *
 * Zone health: at start and every dnsbl_health_interval seconds each zone is probed: the test
 * entry 127.0.0.2 must be listed and 127.0.0.1 must not. A failing zone is skipped in lookups
 * (DNSBL_SKIPPED) until it passes again, with a warning in the log. */
#ifndef MXG_DNSBL_H
#define MXG_DNSBL_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/addr.h"

struct event_base;
struct dnsbl;
struct dnsbl_query;

#define DNSBL_TXT_MAX 256
#define DNSBL_DETAIL_MAX 128
/* RFC 1035 name length limit; a reversed IPv6 address alone is 64 octets. */
#define DNSBL_NAME_MAX 256

enum dnsbl_state {
	DNSBL_PENDING,
	DNSBL_LISTED,
	DNSBL_NOT_LISTED,
	DNSBL_LIST_ERROR,
	DNSBL_RESOLVER_ERROR,
	DNSBL_TIMEOUT,
	DNSBL_SKIPPED, /* zone failed its health probe, or IPv6 client and ipv6 = no */
};

struct dnsbl_answer {
	const struct dnsbl_config *list; /* dnsbl's own copy; valid as long as the query */
	enum dnsbl_state state;
	uint32_t code;                 /* the A answer that decided (host order), else 0 */
	char txt[DNSBL_TXT_MAX];       /* TXT reason when listed and txt = yes, else "" */
	char detail[DNSBL_DETAIL_MAX]; /* why for errors/skips: "127.255.255.254: query refused" */
	unsigned elapsed_ms;           /* 0 for cache hits */
	int cached;
};

typedef void dnsbl_done_fn(void *arg, struct dnsbl_query *q);

/* Sets up the resolver (cfg->resolver, else /etc/resolv.conf) on base and starts the zone
 * health probes. NULL with errbuf on failure. With no [dnsbl] sections it still works and
 * every query completes at once with no answers. */
struct dnsbl *dnsbl_new(struct event_base *base, const struct config *cfg, char *errbuf,
			size_t errsz);
/* Queries still held by the caller stay readable but never complete (done never runs);
 * they must still be freed with dnsbl_query_free. Safe from inside a done callback. */
void dnsbl_free(struct dnsbl **d);

/* Starts a lookup of ip on every list. done runs once, on the loop, when the query completes;
 * it may run before dnsbl_lookup returns (all answers cached). The query stays valid until
 * dnsbl_query_free, which also cancels a pending callback.
 * This implementation never calls done from inside dnsbl_lookup (nor from inside c-ares):
 * when every list is answered at once (cache, skips), dnsbl_query_complete() is already 1
 * on return and done follows on the next loop turn; done may free the query, or the dnsbl. */
struct dnsbl_query *dnsbl_lookup(struct dnsbl *d, const struct ip_addr *ip, dnsbl_done_fn *done,
				 void *arg);
int dnsbl_query_complete(const struct dnsbl_query *q);
/* Answers in configuration order, one per list (pending ones while not complete). */
const struct dnsbl_answer *dnsbl_query_answers(const struct dnsbl_query *q, size_t *n_r);
void dnsbl_query_free(struct dnsbl_query **q);

/* Health of list i (configuration order): 1 healthy (or not probed yet), 0 failing with the
 * reason in why. */
int dnsbl_zone_healthy(const struct dnsbl *d, size_t i, char *why, size_t whysz);
/* Re-probes every zone now; done(arg) runs when all probes have answered or timed out. */
void dnsbl_probe_all(struct dnsbl *d, void (*done)(void *arg), void *arg);

/* Counters for logs: lookups, cache hits, and per state. */
struct dnsbl_stats {
	uint64_t lookups, cache_hits, listed, not_listed, list_errors, resolver_errors, timeouts;
};
void dnsbl_get_stats(const struct dnsbl *d, struct dnsbl_stats *st);

/* --- pure helpers (unit-tested on their own) ---------------------------------------- */

/* "4.3.2.1.zone" for 1.2.3.4, nibbles for IPv6 ("b.a.9.8....zone"). Returns 0 or -1 when the
 * name would not fit. */
int dnsbl_query_name(const struct ip_addr *ip, const char *zone, char *out, size_t outsz);

/* Classifies an answer. rcode_nxdomain: the name does not exist (or exists without A records);
 * resolver_failed: SERVFAIL/timeout/network (detail is a generic "resolver failed"; the
 * lookup path replaces it with the c-ares status); otherwise addrs are the A records (host
 * order). For listed/list-error answers *code_r is the deciding address. code_r may be NULL,
 * detailsz 0. REFUSED is not classified here: lookups make it a list error directly.
 * Rules: any address outside 127.0.0.0/8 -> list error ("answer outside 127/8: resolver
 * rewrites NXDOMAIN or the list is dead"); 127.0.0.1 -> list error; 127.255.255.0/24 -> list
 * error ("query refused / typo / over quota"); 127.0.0.255 -> list error (dnswl.org's
 * refusal) -- these four even when a configured range covers them; an address in a
 * configured range -> listed; other 127/8 addresses -> list error ("code not configured").
 * With several addresses, any of the four error kinds makes the whole answer a list error;
 * otherwise one configured code is enough (codes of the list that are not configured, e.g.
 * PBL's when only SBL is wanted, are ignored next to it). */
enum dnsbl_state dnsbl_interpret(const struct dnsbl_config *list, int rcode_nxdomain,
				 int resolver_failed, const uint32_t *addrs, size_t naddrs,
				 uint32_t *code_r, char *detail, size_t detailsz);

const char *dnsbl_state_name(enum dnsbl_state s);

#endif
