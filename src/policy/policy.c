/* policy: see policy.h. Interim rule set: accepted domains from the config. */
#include "policy/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "util/xmalloc.h"

struct policy {
	const struct config *cfg;
};

struct policy *policy_new(const struct config *cfg)
{
	struct policy *p = xcalloc(1, sizeof(*p));
	p->cfg = cfg;
	return p;
}

void policy_free(struct policy **p)
{
	free(*p);
	*p = NULL;
}

static void verdict_accept(struct policy_verdict *v, const char *rule, const char *route)
{
	memset(v, 0, sizeof(*v));
	v->action = POLICY_ACCEPT;
	v->code = 250;
	snprintf(v->enhanced, sizeof(v->enhanced), "2.1.5");
	snprintf(v->rule, sizeof(v->rule), "%s", rule);
	snprintf(v->reason, sizeof(v->reason), "%s", rule);
	snprintf(v->tenant, sizeof(v->tenant), "%s", "default");
	snprintf(v->route, sizeof(v->route), "%s", route);
}

void policy_check_connect(struct policy *p, const struct policy_client *cl, policy_done_fn *done,
			  void *arg)
{
	struct policy_verdict v;

	(void)p;
	(void)cl;
	verdict_accept(&v, "connect", "");
	done(arg, &v);
}

static int domain_accepted(const struct config *cfg, const char *domain)
{
	for (unsigned i = 0; i < cfg->naccept_domains; i++)
		if (strcmp(cfg->accept_domains[i], domain) == 0)
			return 1;
	return 0;
}

void policy_check_rcpt(struct policy *p, const struct policy_client *cl, const char *mail_from,
		       const char *rcpt, const char *rcpt_domain, policy_done_fn *done, void *arg)
{
	struct policy_verdict v;
	/* <postmaster> without a domain is the gateway's own postmaster: RFC 5321 4.5.1 requires
	 * accepting it; it goes to the first accepted domain's route. */
	const char *domain = rcpt_domain[0] ? rcpt_domain : NULL;

	(void)mail_from;
	(void)rcpt;
	if ((domain && domain_accepted(p->cfg, domain)) || (!domain && p->cfg->naccept_domains)) {
		verdict_accept(&v, "accepted-domain", p->cfg->accept_route);
		done(arg, &v);
		return;
	}
	memset(&v, 0, sizeof(v));
	v.action = POLICY_REJECT;
	v.code = 550;
	snprintf(v.enhanced, sizeof(v.enhanced), "5.7.1");
	snprintf(v.rule, sizeof(v.rule), "relay");
	snprintf(v.text, sizeof(v.text),
		 "Unable to relay: %s is not a domain this gateway accepts mail for, and client [%s] "
		 "may not relay",
		 domain ? domain : "(none)", cl->ip_str);
	done(arg, &v);
}
