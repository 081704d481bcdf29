/* lint: risky settings, found before they bite. Each finding names what is wrong, where, and
 * the fix. The static checks read a policy snapshot and the config; the DNS checks (addresses
 * of connectors and Allow lists listed on a DNSBL right now; unhealthy zones) are fed in by
 * the caller, who owns the event loop. */
#ifndef MXG_LINT_H
#define MXG_LINT_H

#include <stddef.h>

#include "config/config.h"
#include "dns/dnsbl.h"
#include "policy/model.h"

#define LINT_TEXT_MAX 512

struct lint_finding {
	const char *check; /* stable id: "connector-allow-overlap", "allow-range-wide", ... */
	char subject[LINT_TEXT_MAX];
	char problem[LINT_TEXT_MAX];
	char fix[LINT_TEXT_MAX];
};

struct lint_report {
	struct lint_finding *findings;
	size_t n, cap;
};

void lint_report_free(struct lint_report *r);

/* Checks that need no DNS: connector ranges overlapping the same tenant's Allow list; public
 * Allow ranges wider than /24 (IPv4) or /48 (IPv6); the same range on Allow and Block; tenants
 * without domains; the same addresses on connectors of two tenants. */
void lint_static(const struct model_snapshot *snap, const struct config *cfg,
		 struct lint_report *r);

/* An address to look up on the DNSBLs, and what it stands for. */
struct lint_target {
	struct ip_addr ip;
	char what[LINT_TEXT_MAX]; /* "connector mx1 of tenant acme (192.0.2.0/28)" */
	int is_connector;
};
/* Addresses worth a DNSBL lookup: of connectors and Allow lists, every address of a range of
 * up to 256 addresses, and the first address of a wider one; at most max. Returns the count. */
size_t lint_dnsbl_targets(const struct model_snapshot *snap, struct lint_target *out, size_t max);
/* Records a target found listed on a blocklist (positive weight). */
void lint_add_listed(struct lint_report *r, const struct lint_target *t,
		     const struct dnsbl_answer *a);
/* Records a zone that fails its RFC 5782 health probe. */
void lint_add_zone(struct lint_report *r, const struct dnsbl_config *list, const char *why);

/* 1 when ip is in no private, loopback, link-local, shared, documentation or multicast range. */
int lint_ip_public(const struct ip_addr *ip);

#endif
