/* policy: the per-worker policy service the SMTP session talks to.
 *
 * It holds the current snapshot of the policy store (reloaded in the background when the
 * store's generation changes), the worker's DNSBL resolver, and runs the decision engine.
 * A session opens a policy_session at connect: it keeps the snapshot of that moment for its
 * whole life and starts the DNSBL lookups for the client at once, so they run while the client
 * says EHLO and MAIL. Each RCPT then asks policy_check_rcpt, whose answer comes through a
 * callback: at once when the DNSBL answers are in, else when they arrive or time out. For a
 * tenant with recipient check "probe" the answer also waits for the probe of the tenant's
 * server (at most [policy] probe_timeout_ms), unless its answer is cached. */
#ifndef MXG_POLICY_H
#define MXG_POLICY_H

#include <stddef.h>

#include "policy/engine.h"
#include "util/addr.h"

struct config;
struct event_base;
struct policy;
struct policy_session;

#define POLICY_TEXT_MAX ENGINE_TEXT_MAX
#define POLICY_NAME_MAX 65
#define POLICY_ROUTE_MAX (MODEL_ROUTE_SPEC_MAX + 1)

struct policy_client {
	struct ip_addr ip;
	const char *ip_str;
	int tls;
	const char *const *tls_names; /* verified certificate names */
	size_t ntls_names;
	const char *sid;
};

enum policy_action { POLICY_ACCEPT, POLICY_REJECT, POLICY_TEMPFAIL };

struct policy_verdict {
	enum policy_action action;
	int code;
	char enhanced[16];
	char text[POLICY_TEXT_MAX];
	const char *rule;
	char list[ENGINE_FIELD_MAX];
	char entry[ENGINE_FIELD_MAX];
	char tenant[POLICY_NAME_MAX]; /* "" when refused without a tenant */
	char route[POLICY_ROUTE_MAX]; /* route with its TLS mode (model_route_spec_format) */
	const char *reason;           /* verdict header tag */
	char dnsbl[ENGINE_FIELD_MAX]; /* DNSBL summary for the header and log */
};

/* Called exactly once per check, possibly before the check function returns. */
typedef void policy_done_fn(void *arg, const struct policy_verdict *v);

/* Loads the first snapshot from cfg->data_dir's store (blocking: call before the loop runs)
 * and starts the reload timer and the DNSBL resolver on base. NULL with errbuf on failure. */
struct policy *policy_new(struct event_base *base, const struct config *cfg, char *errbuf,
			  size_t errsz);
/* Stops reloads (waits for one in progress) and frees; sessions must be gone. */
void policy_free(struct policy **p);

struct policy_session *policy_session_new(struct policy *p, const struct policy_client *cl);
/* Frees the session state; a pending check's callback is never called afterwards. */
void policy_session_free(struct policy_session **ps);

/* One pending check per session at a time (the SMTP session is busy meanwhile). mail_from_domain
 * is "" for the null sender; rcpt_domain is lower case. */
void policy_check_rcpt(struct policy_session *ps, const struct policy_client *cl,
		       const char *mail_from_domain, const char *rcpt, const char *rcpt_domain,
		       policy_done_fn *done, void *arg);

#endif
