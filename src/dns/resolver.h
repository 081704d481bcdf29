/* resolver: c-ares driven from a libevent loop, for the DNSBL and destination code (internal
 * to src/dns/). Query types: A and TXT (DNSBL), AAAA and MX (destination lookup for delivery).
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

#define RESOLVER_MAX_ADDRS 16  /* A answers kept (the first ones, in answer order) */
#define RESOLVER_MAX_ADDRS6 16 /* AAAA answers kept (the first ones, in answer order) */
#define RESOLVER_MAX_MX 16     /* MX records kept: the most preferred (lowest numbers) */
#define RESOLVER_TXT_MAX 256
/* A domain name as text with its NUL: 253 characters without the trailing dot (RFC 1035). */
#define RESOLVER_HOST_MAX 256

enum resolver_status {
	RESOLVER_OK,       /* addrs (A), addrs6 (AAAA), mx (MX) or txt (TXT) hold the answer */
	RESOLVER_NXDOMAIN, /* the name does not exist, or has no record of the type (nodata) */
	RESOLVER_REFUSED,  /* the server refused the query */
	RESOLVER_FAILED,   /* SERVFAIL, timeout, network error, malformed answer... */
};

enum resolver_type { RESOLVER_A, RESOLVER_TXT, RESOLVER_AAAA, RESOLVER_MX };

/* One MX record. host is the exchange without the trailing dot, lower case, or "" for the
 * root (the RFC 7505 null MX "0 ."); c-ares escapes odd bytes with backslashes, so the
 * caller checks the name before using it. */
struct resolver_mx {
	uint16_t preference;
	char host[RESOLVER_HOST_MAX];
};

struct resolver_answer {
	enum resolver_status status;
	const char *error;      /* c-ares status name ("ARES_ESERVFAIL"), "" when not failed */
	const char *error_text; /* c-ares' own words for it, "" when not failed */
	uint32_t addrs[RESOLVER_MAX_ADDRS]; /* A answers, host order */
	size_t naddrs;
	char txt[RESOLVER_TXT_MAX]; /* TXT answer: chunks joined, printable ASCII only */
	int has_ttl;  /* ttl is known: the smallest A/AAAA TTL, or the SOA negative TTL (RFC 2308);
		       * not set for positive MX and TXT answers */
	uint32_t ttl; /* seconds */
	/* RESOLVER_NXDOMAIN only: 1 when the name exists without a record of the type (NOERROR
	 * with an empty answer, "NODATA"), 0 for a real NXDOMAIN. Tells the implicit MX of
	 * RFC 5321 5.1 (no MX records) from a domain that does not exist. */
	int nodata;
	uint8_t addrs6[RESOLVER_MAX_ADDRS6][16]; /* AAAA answers, network order */
	size_t naddrs6;
	/* MX answers in answer order; past RESOLVER_MAX_MX records, a more preferred record
	 * takes the place of the least preferred one kept. */
	struct resolver_mx mx[RESOLVER_MAX_MX];
	size_t nmx;
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

/* The pure half of an answer: what the c-ares callback got (its status, the raw response
 * abuf[0..alen), which may be NULL) made into *ans for a query of the given type. No I/O and
 * nothing kept; exported so that fuzz/fuzz_dnsbl_answer.c drives the very code the callback
 * runs. */
void resolver_parse_answer(enum resolver_type type, int status, const unsigned char *abuf,
			   int alen, struct resolver_answer *ans);

/* The loop the resolver runs on, for callers that defer their own completion to it. */
struct event_base *resolver_base(const struct resolver *r);

#endif
