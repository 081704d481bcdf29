/* model: an immutable snapshot of the policy store (tenants, accepted domains, connectors,
 * IP Allow and Block lists, recipient directories), built once and then only read, by any
 * number of sessions.
 *
 * A worker swaps in a new snapshot when the store changes; a session keeps the snapshot it
 * started with (reference counted), so a change never alters a decision half-way through a
 * transaction. Building goes through the builder so the store never sees the index layout.
 *
 * Reference counts are not atomic: a snapshot is built on one thread and then handed over
 * whole to one event loop, which alone refs and unrefs it. */
#ifndef MXG_MODEL_H
#define MXG_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "util/addr.h"

#define MODEL_NAME_MAX 64      /* tenant and connector names */
#define MODEL_ROUTE_MAX 262    /* HOST:PORT */
/* A route with its TLS mode, as verdicts and queue files carry it: "HOST:PORT tls=required"
 * (see model_route_spec_format). */
#define MODEL_ROUTE_SPEC_MAX (MODEL_ROUTE_MAX + 16)
#define MODEL_DOMAIN_MAX 253
#define MODEL_TLS_NAME_MAX 253
#define MODEL_COMMENT_MAX 200
#define MODEL_LOCAL_MAX 64     /* a recipient's local part in octets (RFC 5321 4.5.3.1.1) */
#define MODEL_RCPT_WILDCARD "*" /* the local part of a catch-all entry: "*@domain" */

enum connector_type { CONNECTOR_ONPREM, CONNECTOR_PARTNER };
enum ip_list { IP_LIST_ALLOW = 1, IP_LIST_BLOCK = 2 };

/* How a tenant's recipients are checked at RCPT (docs/policy-precedence.md, rule 3a): not at
 * all, against the tenant's recipient directory, or by asking the tenant's server (the
 * caller's probe answer, struct engine_request.rcpt_probe; the store does not let an admin
 * choose it yet). */
enum recipient_check { RCPT_CHECK_OFF = 0, RCPT_CHECK_DIRECTORY = 1, RCPT_CHECK_PROBE = 2 };

/* How the queue manager (and a recipient probe) uses TLS to a tenant's route: STARTTLS when
 * offered; STARTTLS or no delivery (certificate not checked); STARTTLS with the chain verified
 * against the system trust store and the route's host name. `mxgate tenant set --route-tls`. */
enum route_tls { ROUTE_TLS_OPPORTUNISTIC = 0, ROUTE_TLS_REQUIRED = 1, ROUTE_TLS_VERIFY = 2 };

/* What model_recipient_known found. */
enum model_rcpt_match {
	MODEL_RCPT_UNKNOWN = 0,  /* neither the address nor a catch-all of its domain */
	MODEL_RCPT_LISTED = 1,   /* the address itself */
	MODEL_RCPT_CATCHALL = 2, /* only the catch-all entry "*@domain" */
};

/* The fields every decision reads come first, so that a short route and the settings share
 * the struct's first cache line (docs/performance.md, "Policy decision"). */
struct model_tenant {
	uint32_t id;
	enum recipient_check recipient_check; /* RCPT_CHECK_OFF unless set */
	enum route_tls route_tls;             /* ROUTE_TLS_OPPORTUNISTIC unless set */
	char route[MODEL_ROUTE_MAX + 1];
	char name[MODEL_NAME_MAX + 1];
	char **domains; /* A-label, lower case */
	size_t ndomains;
	struct model_connector **connectors;
	size_t nconnectors;
	size_t nallow, nblock;
	size_t nrecipients;                   /* directory entries, catch-alls included */
};

struct model_connector {
	uint32_t id;
	const struct model_tenant *tenant;
	char name[MODEL_NAME_MAX + 1];
	enum connector_type type;
	char tls_name[MODEL_TLS_NAME_MAX + 1]; /* "" = none */
	int require_tls;
	struct cidr *ranges;
	size_t nranges;
};

struct model_ip_entry {
	struct cidr net;
	enum ip_list list;
	const struct model_tenant *tenant;
	const char *comment; /* "" when none */
};

struct model_snapshot;
struct model_builder;

/* --- building (the store, tests, benchmarks) ------------------------------------------ */
struct model_builder *model_builder_new(void);
/* Each add returns 0, or -1 for a name or text over its limit. References are resolved in
 * model_builder_finish: a row naming an unknown tenant or connector id is dropped there; the
 * store's constraints make both that and a domain of two tenants impossible (the first added
 * would win). Networks are masked to their prefix.
 *
 * IPv4 is kept as IPv4-mapped IPv6, so an IPv6 prefix shorter than /96 that covers
 * ::ffff:0:0/96 (such as ::/0) also covers every IPv4 address; the store accepts IPv4 entries
 * as IPv4 and IPv6 entries as written. */
int model_add_tenant(struct model_builder *b, uint32_t id, const char *name, const char *route);
int model_add_domain(struct model_builder *b, uint32_t tenant_id, const char *domain);
int model_add_connector(struct model_builder *b, uint32_t id, uint32_t tenant_id, const char *name,
			enum connector_type type, const char *tls_name, int require_tls);
int model_add_connector_range(struct model_builder *b, uint32_t connector_id,
			      const struct cidr *range);
int model_add_ip_entry(struct model_builder *b, uint32_t tenant_id, enum ip_list list,
		       const struct cidr *net, const char *comment);
/* Sets a tenant's recipient check (default RCPT_CHECK_OFF); the last call for a tenant wins.
 * -1 for a value outside enum recipient_check. */
int model_set_recipient_check(struct model_builder *b, uint32_t tenant_id,
			      enum recipient_check check);
/* Sets a tenant's route TLS mode (default ROUTE_TLS_OPPORTUNISTIC); the last call for a
 * tenant wins. -1 for a value outside enum route_tls. */
int model_set_route_tls(struct model_builder *b, uint32_t tenant_id, enum route_tls tls);
/* Adds local@domain to the tenant's recipient directory. domain: A-label, lower case, one of
 * the tenant's domains (an entry at another domain is dropped in finish). local: the
 * canonical local part (a quoted-string without its quotes and backslashes), 1..64 octets;
 * MODEL_RCPT_WILDCARD makes the entry the domain's catch-all. An entry equal to an earlier
 * one (local part compared as in model_recipient_known) is dropped. */
int model_add_recipient(struct model_builder *b, uint32_t tenant_id, const char *domain,
			const char *local);
/* Indexes everything and returns the snapshot (reference count 1); frees the builder. */
struct model_snapshot *model_builder_finish(struct model_builder **b, uint64_t generation);
void model_builder_free(struct model_builder **b);

/* --- sharing -------------------------------------------------------------------------- */
struct model_snapshot *model_ref(struct model_snapshot *s);
void model_unref(struct model_snapshot **s);
uint64_t model_generation(const struct model_snapshot *s);

/* --- reading ------------------------------------------------------------------------- */
size_t model_ntenants(const struct model_snapshot *s);
const struct model_tenant *model_tenant_at(const struct model_snapshot *s, size_t i);
const struct model_tenant *model_tenant_by_name(const struct model_snapshot *s, const char *name);
/* The tenant that accepts mail for domain (lower case, exact match), or NULL. */
const struct model_tenant *model_tenant_for_domain(const struct model_snapshot *s,
						   const char *domain);

/* The tenant's Allow/Block entry with the longest prefix containing ip; on an exact tie of
 * prefix the Block entry is returned. NULL when none contains ip. */
const struct model_ip_entry *model_ip_lookup(const struct model_snapshot *s,
					     const struct model_tenant *t, const struct ip_addr *ip);
/* Calls fn for every Allow/Block entry of t that contains ip, longest prefix first. */
void model_ip_each_match(const struct model_snapshot *s, const struct model_tenant *t,
			 const struct ip_addr *ip,
			 void (*fn)(const struct model_ip_entry *e, void *arg), void *arg);
/* Calls fn for every entry of t (for lint and list views). */
void model_ip_each(const struct model_snapshot *s, const struct model_tenant *t,
		   void (*fn)(const struct model_ip_entry *e, void *arg), void *arg);

/* Calls fn for every connector (of any tenant) with a range containing ip, and the most
 * specific matching range, most specific first. */
void model_connectors_matching_ip(const struct model_snapshot *s, const struct ip_addr *ip,
				  void (*fn)(const struct model_connector *c,
					     const struct cidr *range, void *arg),
				  void *arg);
/* Calls fn for every connector whose tls_name equals name (case-insensitive). */
void model_connectors_matching_tls(const struct model_snapshot *s, const char *name,
				   void (*fn)(const struct model_connector *c, void *arg),
				   void *arg);

/* Looks local@domain up in t's recipient directory: one or two hash probes, whatever the
 * size of the directory. local is canonical (see model_add_recipient) and compared with the
 * entries case-insensitively for ASCII letters only (other octets, e.g. UTF-8, exactly);
 * domain exactly (lower case, A-label). The address itself wins over its domain's catch-all.
 * Does not look at t->recipient_check. */
enum model_rcpt_match model_recipient_known(const struct model_snapshot *s,
					    const struct model_tenant *t, const char *local,
					    const char *domain);
/* "off", "directory", "probe"; NULL for a value outside the enum. */
const char *model_recipient_check_name(enum recipient_check check);

/* --- routes with their TLS mode (pure) -------------------------------------------------
 * A verdict carries a tenant's route to the queue file, and the queue manager reads it back
 * without the store, so the TLS mode travels inside the route text (docs/queue-format.md):
 *   "HOST:PORT"                opportunistic
 *   "HOST:PORT tls=required"   required
 *   "HOST:PORT tls=verify"     verify
 * HOST:PORT is the stored route (a name, an IPv4 address or [IPv6]:PORT; it never holds a
 * space). */

/* "opportunistic", "required", "verify"; NULL for a value outside the enum. */
const char *model_route_tls_name(enum route_tls tls);
/* The inverse of model_route_tls_name (exact, lower case): 0, or -1 for anything else. */
int model_route_tls_parse(const char *text, enum route_tls *tls_r);
/* Writes the route spec of route and tls into out. Returns 0, or -1 when it does not fit
 * (out is then empty). */
int model_route_spec_format(const char *route, enum route_tls tls, char *out, size_t outsz);
/* Splits a route spec: HOST:PORT into hostport (outsz bytes), the mode into *tls_r. Returns 0,
 * or -1 when the text is not a route spec: empty HOST:PORT, a space inside it, an option
 * other than one "tls=MODE", or hostport too small. The HOST:PORT part itself is the
 * caller's to check (hostport_split). */
int model_route_spec_parse(const char *spec, char *hostport, size_t hostport_sz,
			   enum route_tls *tls_r);

#endif
