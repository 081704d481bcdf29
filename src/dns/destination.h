/* destination: where to deliver, from a host name or a mail domain (internal to src/dns/,
 * used by delivery).
 *
 * destination_resolve() turns a target into an ordered list of socket addresses to try:
 *   - mx = 0: target is a host name, or an IP literal ("192.0.2.1", "2001:db8::1" or
 *     "[2001:db8::1]"): A and AAAA in parallel; a literal needs no DNS.
 *   - mx = 1: target is a mail domain (A-labels, as in the envelope after IDNA), or an
 *     RFC 5321 address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]"): MX lookup, hosts
 *     ordered by preference with equal preferences shuffled (RFC 5321 5.1), then A and AAAA
 *     of up to DESTINATION_MAX_MX_HOSTS hosts in parallel. No MX records (NODATA) means the
 *     implicit MX: the domain's own A/AAAA.
 *
 * Address order: host by host in MX order; within a host, its IPv6 addresses first, then its
 * IPv4 ones (at most DESTINATION_MAX_PER_FAMILY of each, in DNS order), so that a host with
 * broken IPv6 still gets its IPv4 tried before the next host. An address already listed for
 * a better host is not repeated. At most DESTINATION_MAX_ADDRS in all.
 *
 * Outcome (status, RFC 3463 code, text):
 *   ok            at least one address; code "2.0.0"
 *   permanent     5.1.2  the domain does not exist (NXDOMAIN), or the target is not a valid
 *                        domain name or literal
 *                 5.1.10 null MX (RFC 7505): every MX record names the root ("0 .")
 *                 5.4.4  no address: no MX host (or implicit MX, or host) has an A or AAAA
 *                        record and no lookup failed temporarily
 *   temporary     4.4.3  the MX lookup failed (SERVFAIL, REFUSED, timeout, network), or no
 *                        address was found and at least one address lookup failed so
 *
 * An MX host with no address (or an unusable name) is skipped; a temporary failure for one
 * host does not stop delivery to the others (RFC 5321 5.1). mxgate does not know its own
 * names here, so the "MX list contains this host" rule of RFC 5321 5.1 is the caller's. */
#ifndef MXG_DNS_DESTINATION_H
#define MXG_DNS_DESTINATION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns/resolver.h"

struct destination_query;

#define DESTINATION_MAX_MX_HOSTS 10  /* MX hosts whose addresses are looked up */
#define DESTINATION_MAX_PER_FAMILY 4 /* IPv6 and IPv4 addresses kept per host, each */
#define DESTINATION_MAX_ADDRS 32     /* addresses in a result */
#define DESTINATION_CODE_MAX 8       /* "5.1.10" and its NUL */
#define DESTINATION_TEXT_MAX 512
#define DESTINATION_ERROR_MAX 96     /* one resolver error, as "ARES_ETIMEOUT (...)" */

enum destination_status {
	DESTINATION_OK,
	DESTINATION_TEMPORARY, /* try again later (4.x.x) */
	DESTINATION_PERMANENT, /* will not work (5.x.x): bounce */
};

/* How the hosts of a result were found. */
enum destination_kind {
	DESTINATION_HOST,         /* mx = 0: the target itself */
	DESTINATION_MX,           /* the domain's MX records */
	DESTINATION_IMPLICIT_MX,  /* the domain has no MX: its own address (RFC 5321 5.1) */
	DESTINATION_LITERAL,      /* an IP literal: no DNS */
};

struct destination_addr {
	struct sockaddr_storage sa; /* AF_INET6 or AF_INET, port set */
	socklen_t salen;
	char host[RESOLVER_HOST_MAX]; /* the MX host (or host, or domain, or literal without its
				       * brackets) for logs and the DSN Remote-MTA field */
	uint16_t preference;          /* MX preference; 0 for the other kinds */
};

struct destination_result {
	enum destination_status status;
	enum destination_kind kind;
	char code[DESTINATION_CODE_MAX]; /* RFC 3463: "2.0.0", "4.4.3", "5.1.2", ... */
	char text[DESTINATION_TEXT_MAX]; /* human words, printable ASCII, no CR/LF */
	struct destination_addr addrs[DESTINATION_MAX_ADDRS]; /* in the order to try */
	size_t naddrs;                                        /* 0 unless DESTINATION_OK */
};

/* res and everything in it is valid only while done runs: copy what is kept. */
typedef void destination_done_fn(void *arg, const struct destination_result *res);

/* Starts the lookup of target (see the top of this file) and returns its handle, never NULL.
 * port is put into every address (25 for MX delivery; tests aim MX hosts elsewhere).
 * done runs exactly once, from its own event on r's loop: never inside
 * destination_resolve() and never inside a resolver callback, so it may free r (once no
 * other lookup uses it). The query is freed when done returns: the caller forgets its
 * handle in done (destination_cancel() on it from inside done is a harmless no-op). */
struct destination_query *destination_resolve(struct resolver *r, const char *target, int mx,
					      uint16_t port, destination_done_fn *done, void *arg);
/* Cancels *q (NULL or already cleared is fine): its DNS requests are dropped, done never
 * runs, the query is freed and *q cleared. Not for a query whose done has returned. */
void destination_cancel(struct destination_query **q);

/* ---- the pure steps, exported for unit tests --------------------------------------------- */

/* What an MX answer means. */
enum destination_mx_verdict {
	DESTINATION_MX_USE,      /* records to order and resolve */
	DESTINATION_MX_IMPLICIT, /* NODATA: use the domain's own address */
	DESTINATION_MX_NULL,     /* RFC 7505 null MX */
	DESTINATION_MX_NXDOMAIN, /* the domain does not exist */
	DESTINATION_MX_TEMPFAIL, /* SERVFAIL, REFUSED, timeout, ... */
};

enum destination_mx_verdict destination_mx_classify(const struct resolver_answer *ans);

/* 1 when the records are a null MX: at least one, and every exchange is the root (""). */
int destination_mx_is_null(const struct resolver_mx *mx, size_t n);

/* 1 when name is a usable host or domain name: LDH labels (underscore allowed) of 1..63
 * characters, 253 at most in all, no trailing dot. */
int destination_name_ok(const char *name);

/* Orders MX records in place for delivery: ascending preference, equal preferences in a
 * random order drawn from *seed (any value; advanced), records whose exchange is the root or
 * not a usable name dropped, a repeated exchange kept only at its best preference, and the
 * list cut to max. Returns the new count. */
size_t destination_mx_order(struct resolver_mx *mx, size_t n, size_t max, uint64_t *seed);

/* The address lookups of one host, as input to destination_build(). */
struct destination_host {
	char name[RESOLVER_HOST_MAX];
	uint16_t preference;
	uint8_t v6[DESTINATION_MAX_PER_FAMILY][16]; /* network order */
	size_t nv6;
	uint32_t v4[DESTINATION_MAX_PER_FAMILY]; /* host order */
	size_t nv4;
	int tempfail;                     /* an A or AAAA lookup failed temporarily */
	char error[DESTINATION_ERROR_MAX]; /* the first such failure, "" without one */
};

/* Builds the result from the hosts in delivery order: addresses in the documented order with
 * port set, and the classification (ok, 4.4.3 when none has an address and one lookup failed
 * temporarily, else 5.4.4). target is the host name or mail domain, for the text. */
void destination_build(const struct destination_host *hosts, size_t nhosts,
		       enum destination_kind kind, const char *target, uint16_t port,
		       struct destination_result *res_r);

#endif
