/* policy: who may send mail to whom through mxgate. The SMTP session asks at connect, MAIL and
 * RCPT time and gets a verdict through a callback, because a real answer may need DNS.
 *
 * This first version is the interim rule set of the foundation: recipients in the [accept]
 * domains of the config are accepted and routed to [accept] route; every other domain is
 * refused with 550 5.7.1 (never an open relay). The tenant engine replaces the body, not the
 * interface. */
#ifndef MXG_POLICY_H
#define MXG_POLICY_H

#include "util/addr.h"
#include "util/ids.h"

struct config;
struct policy;

#define POLICY_TEXT_MAX 400
#define POLICY_NAME_MAX 64
#define POLICY_ROUTE_MAX 256

struct policy_client {
	struct ip_addr ip;
	const char *ip_str;
	const char *helo;     /* may be NULL before HELO */
	int tls;
	const char *sid;
};

enum policy_action { POLICY_ACCEPT, POLICY_REJECT, POLICY_TEMPFAIL };

struct policy_verdict {
	enum policy_action action;
	int code;                        /* SMTP reply code for REJECT/TEMPFAIL */
	char enhanced[16];               /* RFC 3463 code */
	char text[POLICY_TEXT_MAX];      /* reply text, without the reference */
	char rule[POLICY_NAME_MAX];      /* which rule decided: "relay", "accepted-domain", ... */
	char tenant[POLICY_NAME_MAX];    /* for ACCEPT of a served recipient */
	char route[POLICY_ROUTE_MAX];    /* HOST:PORT for ACCEPT */
	char reason[POLICY_NAME_MAX];    /* verdict reason for the trace header: "accepted-domain" */
};

/* Called exactly once per check, possibly before the check function returns. */
typedef void policy_done_fn(void *arg, const struct policy_verdict *v);

struct policy *policy_new(const struct config *cfg);
void policy_free(struct policy **p);

void policy_check_connect(struct policy *p, const struct policy_client *cl, policy_done_fn *done,
			  void *arg);
/* rcpt_domain is lower-case, "" for <postmaster>, "[...]" for an address literal. */
void policy_check_rcpt(struct policy *p, const struct policy_client *cl, const char *mail_from,
		       const char *rcpt, const char *rcpt_domain, policy_done_fn *done, void *arg);

#endif
