/* resolver: c-ares driven from a libevent loop, for the DNSBL code (internal to src/dns/).
 *
 * One channel per event loop. Each c-ares socket gets one libevent event; one timer follows
 * ares_timeout(). Nothing blocks and no thread is used.
 *
 * A request is cancellable through its handle slot: the caller keeps a struct resolver_req *
 * that the resolver sets when the request starts and clears when it ends. resolver_cancel()
 * clears the slot and guarantees the answer function never runs; the small request record
 * itself lives on inside c-ares until its answer, its timeout or resolver_free(). */
#ifndef MXG_DNS_RESOLVER_H
#define MXG_DNS_RESOLVER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct resolver;
struct resolver_req;

#define RESOLVER_MAX_ADDRS 16
#define RESOLVER_TXT_MAX 256

enum resolver_status {
	RESOLVER_OK,       /* addrs (A) or txt (TXT) hold the answer */
	RESOLVER_NXDOMAIN, /* the name does not exist, or has no record of the type */
	RESOLVER_REFUSED,  /* the server refused the query */
	RESOLVER_FAILED,   /* SERVFAIL, timeout, network error, malformed answer... */
};

enum resolver_type { RESOLVER_A, RESOLVER_TXT };

struct resolver_answer {
	enum resolver_status status;
	const char *error;      /* c-ares status name ("ARES_ESERVFAIL"), "" when not failed */
	const char *error_text; /* c-ares' own words for it, "" when not failed */
	uint32_t addrs[RESOLVER_MAX_ADDRS]; /* A answers, host order */
	size_t naddrs;
	char txt[RESOLVER_TXT_MAX]; /* TXT answer: chunks joined, printable ASCII only */
	int has_ttl;  /* ttl is known: the smallest A TTL, or the SOA negative TTL (RFC 2308) */
	uint32_t ttl; /* seconds */
};

typedef void resolver_answer_fn(void *arg, const struct resolver_answer *ans);

/* servers: "HOST:PORT" or "[V6]:PORT" with HOST an IP address; "" reads /etc/resolv.conf.
 * timeout_ms is the first try's timeout (c-ares doubles it per round), tries the attempts per
 * server. NULL with errbuf on failure. */
struct resolver *resolver_new(struct event_base *base, const char *servers, unsigned timeout_ms,
			      unsigned tries, char *errbuf, size_t errsz);
/* Destroys the channel; every request still pending ends without its answer function (all
 * must have been cancelled first: an uncancelled one would be answered with RESOLVER_FAILED
 * "ARES_EDESTRUCTION"). Not to be called from inside an answer function. */
void resolver_free(struct resolver **r);

/* Starts a query for name. *slot is set to the request and cleared when fn runs (before it
 * runs) or on cancel. fn may run before resolver_query returns (e.g. a malformed name). */
void resolver_query(struct resolver *r, const char *name, enum resolver_type type,
		    resolver_answer_fn *fn, void *arg, struct resolver_req **slot);
/* Cancels the request in *slot, if any: its fn will never run. Clears *slot. */
void resolver_cancel(struct resolver_req **slot);

#endif
