/* dnsbl_answer: the pure half of the DNSBL module (see dnsbl.h): query names and the
 * classification of an answer into exactly one state. No I/O, no allocation, so it is tested
 * as a table.
 *
 * Classification order matters: an answer that must never count as a listing (outside
 * 127.0.0.0/8, 127.0.0.1, 127.0.0.255, 127.255.255.0/24) poisons the whole answer, even when
 * another address in it is a configured code, because it means the resolver or the list is
 * broken and the other addresses cannot be trusted either. Among trustworthy addresses one
 * configured code is enough to be listed; addresses of the list's own that are simply not
 * configured (e.g. Spamhaus PBL codes when only SBL is wanted) are ignored then. */
#include "dns/dnsbl.h"

#include <stdio.h>
#include <string.h>

/* Text of a reversed address: 4 octets, or 32 nibbles with their dots. */
#define REV_TEXT_MAX 72
/* RFC 1035 2.3.4: 255 octets on the wire are at most 253 characters of text. */
#define DNS_NAME_TEXT_MAX 253
#define V4_TEXT_MAX 16

#define LOOPBACK_NET 0x7f000000u /* 127.0.0.0/8 */
#define LOOPBACK_MASK 0xff000000u
#define ADDR_NEVER_LISTED 0x7f000001u /* 127.0.0.1: RFC 5782 test point for "not listed" */
#define ADDR_DNSWL_ERROR 0x7f0000ffu  /* 127.0.0.255: dnswl.org's "query refused" */
#define ERROR_NET 0x7fffff00u        /* 127.255.255.0/24: Spamhaus-style error codes */
#define ERROR_MASK 0xffffff00u
#define ADDR_TYPO 0x7ffffffcu        /* 127.255.255.252 */
#define ADDR_REFUSED 0x7ffffffeu     /* 127.255.255.254 */
#define ADDR_QUOTA 0x7fffffffu       /* 127.255.255.255 */

static const char *const state_names[] = {
	[DNSBL_PENDING] = "pending",
	[DNSBL_LISTED] = "listed",
	[DNSBL_NOT_LISTED] = "not-listed",
	[DNSBL_LIST_ERROR] = "list-error",
	[DNSBL_RESOLVER_ERROR] = "resolver-error",
	[DNSBL_TIMEOUT] = "timeout",
	[DNSBL_SKIPPED] = "skipped",
};

const char *dnsbl_state_name(enum dnsbl_state s)
{
	if ((unsigned)s < sizeof(state_names) / sizeof(state_names[0]))
		return state_names[s];
	return "unknown";
}

static size_t reverse_v6(const struct ip_addr *ip, char *rev)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	for (int i = 15; i >= 0; i--) {
		rev[n++] = hex[ip->b[i] & 0x0f];
		rev[n++] = '.';
		rev[n++] = hex[ip->b[i] >> 4];
		rev[n++] = '.';
	}
	rev[--n] = '\0'; /* no dot after the last nibble */
	return n;
}

int dnsbl_query_name(const struct ip_addr *ip, const char *zone, char *out, size_t outsz)
{
	char rev[REV_TEXT_MAX];
	int len;

	if (ip_is_v4(ip))
		snprintf(rev, sizeof(rev), "%u.%u.%u.%u", ip->b[15], ip->b[14], ip->b[13], ip->b[12]);
	else
		reverse_v6(ip, rev);
	len = snprintf(out, outsz, zone[0] ? "%s.%s" : "%s", rev, zone);
	if (len < 0 || (size_t)len >= outsz || len > DNS_NAME_TEXT_MAX) {
		if (outsz)
			out[0] = '\0';
		return -1;
	}
	return 0;
}

static const char *v4_text(uint32_t a, char buf[V4_TEXT_MAX])
{
	snprintf(buf, V4_TEXT_MAX, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff,
		 a & 0xff);
	return buf;
}

/* Why a must never count as a listing, or NULL when it is an ordinary 127/8 code. */
static const char *never_listed_reason(uint32_t a)
{
	if ((a & LOOPBACK_MASK) != LOOPBACK_NET)
		return "answer outside 127.0.0.0/8 (NXDOMAIN-rewriting resolver or dead list)";
	if (a == ADDR_NEVER_LISTED)
		return "answer 127.0.0.1 is never a listing (dead list?)";
	if (a == ADDR_DNSWL_ERROR)
		return "list error code (dnswl.org: query refused or over limit)";
	if ((a & ERROR_MASK) != ERROR_NET)
		return NULL;
	switch (a) {
	case ADDR_TYPO:
		return "typo in zone";
	case ADDR_REFUSED:
		return "list refused the query (open/public resolver or no access)";
	case ADDR_QUOTA:
		return "over query quota";
	default:
		return "list error code (query refused, typo in zone or over quota)";
	}
}

static int code_configured(const struct dnsbl_config *list, uint32_t a)
{
	for (unsigned i = 0; i < list->ncodes; i++)
		if (a >= list->codes[i].lo && a <= list->codes[i].hi)
			return 1;
	return 0;
}

static void set_detail(char *detail, size_t detailsz, uint32_t a, const char *why)
{
	char buf[V4_TEXT_MAX];

	if (detailsz)
		snprintf(detail, detailsz, "%s: %s", v4_text(a, buf), why);
}

enum dnsbl_state dnsbl_interpret(const struct dnsbl_config *list, int rcode_nxdomain,
				 int resolver_failed, const uint32_t *addrs, size_t naddrs,
				 uint32_t *code_r, char *detail, size_t detailsz)
{
	uint32_t dummy;

	if (!code_r)
		code_r = &dummy;
	*code_r = 0;
	if (detailsz)
		detail[0] = '\0';
	if (resolver_failed) {
		if (detailsz)
			snprintf(detail, detailsz, "resolver failed");
		return DNSBL_RESOLVER_ERROR;
	}
	if (rcode_nxdomain || naddrs == 0)
		return DNSBL_NOT_LISTED;
	for (size_t i = 0; i < naddrs; i++) {
		const char *why = never_listed_reason(addrs[i]);
		if (why) {
			*code_r = addrs[i];
			set_detail(detail, detailsz, addrs[i], why);
			return DNSBL_LIST_ERROR;
		}
	}
	for (size_t i = 0; i < naddrs; i++) {
		if (code_configured(list, addrs[i])) {
			*code_r = addrs[i];
			return DNSBL_LISTED;
		}
	}
	*code_r = addrs[0];
	set_detail(detail, detailsz, addrs[0], "code not configured as listed");
	return DNSBL_LIST_ERROR;
}
