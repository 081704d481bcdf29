/* engine: the one decision function, per recipient, used by `serve` and `explain` alike.
 *
 * Pure: it reads a policy snapshot, facts about the client, and the DNSBL answers gathered so
 * far, and returns a verdict; with a trace it also records every step. The order of the rules
 * is docs/policy-precedence.md:
 *   1. recipient domain not served: relay only for an onprem connector of a tenant whose
 *      domains include the sender's domain (or the verified TLS name); else 550 5.7.1
 *   2. the tenant's IP Allow and Block lists, longest prefix wins, Block on an exact tie;
 *      a Block match rejects (550 5.7.1)
 *   3. a partner connector of the tenant with require_tls, matched by IP, without TLS: 530 5.7.0
 *   3a. the tenant checks recipients against its directory and the recipient is not in it
 *      (nor is its domain's catch-all; postmaster always is): 550 5.1.1; or by a probe of its
 *      server (rcpt_probe): refused there 550 5.1.1, no answer 451 4.4.3
 *   4. an Allow match or an onprem connector of the tenant accepts, DNSBLs notwithstanding
 *   5. DNSBL score >= threshold rejects (550 5.7.1 naming the lists)
 *   6. otherwise accept */
#ifndef MXG_ENGINE_H
#define MXG_ENGINE_H

#include <stddef.h>

#include "dns/dnsbl.h"
#include "policy/model.h"
#include "policy/trace.h"
#include "util/addr.h"

#define ENGINE_TEXT_MAX 480
#define ENGINE_FIELD_MAX 256

/* Verified names of the client's TLS certificate (SAN DNS names, else CN). */
#define ENGINE_TLS_NAMES_MAX 8

struct engine_client {
	struct ip_addr ip;
	const char *ip_str;
	int tls;
	const char *const *tls_names; /* verified names; NULL or empty when none */
	size_t ntls_names;
};

/* The answer of an RCPT probe to the tenant's own server (recipient check "probe"), made by
 * the caller before it decides; the engine only reads it. */
enum engine_probe_state {
	ENGINE_PROBE_ACCEPTED, /* the server accepted the recipient (2xx) */
	ENGINE_PROBE_REJECTED, /* the server refused it permanently (5xx) */
	ENGINE_PROBE_FAILED,   /* no usable answer: 4xx, connection error, timeout */
};

struct engine_probe {
	enum engine_probe_state state;
	int cached;                      /* the answer came from the cache */
	char detail[ENGINE_FIELD_MAX];   /* the server's reply or the error: for the trace and
					    the log, never for the reply to the client */
};

struct engine_request {
	const struct model_snapshot *snap;
	const struct engine_client *client;
	const char *sender_domain; /* lower case; "" for the null sender */
	const char *rcpt;          /* the recipient address as sent (local part as sent, quotes
				      included): the trace, and rule 3a takes the local part
				      from it (before the last '@'; all of it without one) */
	const char *rcpt_domain;   /* lower case; "" for <postmaster> */
	const struct dnsbl_answer *dnsbl; /* answers so far (any state), one per list */
	size_t ndnsbl;
	int dnsbl_complete;        /* 0: the decision is made without the pending answers */
	int dnsbl_threshold;
	const struct engine_probe *rcpt_probe; /* rule 3a with recipient check probe; NULL when no
						  probe was made (answers 451 4.4.3) */
};

enum engine_action { ENGINE_ACCEPT, ENGINE_REJECT, ENGINE_TEMPFAIL };

struct engine_verdict {
	enum engine_action action;
	int code;                       /* SMTP reply code */
	char enhanced[16];              /* RFC 3463 code */
	char text[ENGINE_TEXT_MAX];     /* reply text (the session adds host and reference) */
	const char *rule;               /* which rule decided: "relay", "ip-block", "partner-tls",
					   "recipient-unknown", "recipient-probe", "ip-allow",
					   "onprem-connector", "dnsbl", "default" */
	char list[ENGINE_FIELD_MAX];    /* the list or connector that decided, "" when none */
	char entry[ENGINE_FIELD_MAX];   /* the entry that matched, "" when none */
	const struct model_tenant *tenant; /* the recipient's tenant (NULL when refused relay) */
	char route[MODEL_ROUTE_SPEC_MAX + 1]; /* the tenant's route with its TLS mode
					      * ("HOST:PORT", "HOST:PORT tls=required", see
					      * model_route_spec_format), or "mx" to deliver by MX
					      * (relay) */
	int probe_wanted;               /* rule 3a wanted a probe answer and rq->rcpt_probe was
					   NULL: the caller may probe the tenant's server and
					   decide again with the answer */
	const char *reason;             /* tag for the verdict header: "allow-list",
					   "onprem-connector", "onprem-relay", "dnsbl-clean",
					   "dnsbl-timeout", "dnsbl-listed", "ip-block", ... */
	char dnsbl_summary[ENGINE_FIELD_MAX]; /* "clean", "listed:zen,timeout:spamcop", "none" */
	int score;                      /* DNSBL score counted */
};

void engine_decide(const struct engine_request *rq, struct engine_verdict *v, struct trace *tr);

#endif
