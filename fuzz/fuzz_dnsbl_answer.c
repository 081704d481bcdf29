/* fuzz_dnsbl_answer: a DNS response as c-ares hands it to src/dns/resolver.c, through
 * resolver_parse_answer (the code on_ares_answer runs: c-ares' own record parsers, then ours:
 * TTLs, the SOA negative TTL walk, TXT joining, MX keeping) and, for A answers, through
 * dnsbl_interpret as src/dns/dnsbl.c calls it; MX answers go on to destination_mx_classify.
 *
 * Input: one mode byte, then the raw response.
 *   mode & 0x03  query type: A, TXT, AAAA, MX (enum resolver_type)
 *   mode & 0x0c  the list's codes: default range, one code, all of 127/8, several ranges
 *   mode & 0x10  the query failed in transport instead (timeout: no response at all)
 * The c-ares status is what c-ares 1.18 (ares_query.c qcallback) derives from the response
 * header before calling back; responses shorter than a header never reach the callback. */
#include <ares.h>
#include <arpa/nameser.h>
#include <ctype.h>

#include "dns/dnsbl.h"
#include "dns/destination.h"
#include "dns/resolver.h"
#include "fuzz.h"

#define MODE_TYPE 0x03
#define MODE_CODES_SHIFT 2
#define MODE_CODES 0x03
#define MODE_TIMEOUT 0x10
#define DNS_HEADER_LEN 12
#define DNS_TTL_MAX 0x7fffffffu /* what resolver.c keeps a TTL under (RFC 2181 8) */
#define ADDR(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

/* ares_query.c qcallback: the rcode becomes the status (NOERROR without answers: ENODATA);
 * rcodes past REFUSED leave ARES_SUCCESS as it was. */
static int ares_status_of(const uint8_t *p)
{
	unsigned rcode = p[3] & 0x0f, ancount = (unsigned)p[6] << 8 | p[7];

	switch (rcode) {
	case ns_r_noerror: return ancount > 0 ? ARES_SUCCESS : ARES_ENODATA;
	case ns_r_formerr: return ARES_EFORMERR;
	case ns_r_servfail: return ARES_ESERVFAIL;
	case ns_r_nxdomain: return ARES_ENOTFOUND;
	case ns_r_notimpl: return ARES_ENOTIMP;
	case ns_r_refused: return ARES_EREFUSED;
	default: return ARES_SUCCESS;
	}
}

static void list_setup(struct dnsbl_config *list, unsigned which)
{
	static const struct code_range sets[][3] = {
		{ { ADDR(127, 0, 0, 2), ADDR(127, 0, 0, 254) } },
		{ { ADDR(127, 0, 0, 2), ADDR(127, 0, 0, 2) } },
		{ { ADDR(127, 0, 0, 0), ADDR(127, 255, 255, 255) } },
		{ { ADDR(127, 0, 0, 2), ADDR(127, 0, 0, 3) },
		  { ADDR(127, 0, 0, 10), ADDR(127, 0, 0, 11) },
		  { ADDR(127, 0, 1, 0), ADDR(127, 0, 1, 255) } },
	};
	static const unsigned counts[] = { 1, 1, 1, 3 };

	memset(list, 0, sizeof(*list));
	strcpy(list->name, "fuzz");
	strcpy(list->zone, "dnsbl.example");
	list->weight = 1;
	list->ncodes = counts[which];
	memcpy(list->codes, sets[which], sizeof(sets[which]));
}

static void check_answer(enum resolver_type type, const struct resolver_answer *ans)
{
	FUZZ_CHECK(ans->status >= RESOLVER_OK && ans->status <= RESOLVER_FAILED);
	FUZZ_CHECK(ans->error && ans->error_text);
	FUZZ_CHECK((ans->status == RESOLVER_FAILED || ans->status == RESOLVER_REFUSED) ==
		   (ans->error[0] != '\0'));
	FUZZ_CHECK(!ans->nodata || ans->status == RESOLVER_NXDOMAIN);
	FUZZ_CHECK(!ans->has_ttl || ans->ttl <= DNS_TTL_MAX);
	FUZZ_CHECK(ans->naddrs <= RESOLVER_MAX_ADDRS && ans->naddrs6 <= RESOLVER_MAX_ADDRS6);
	FUZZ_CHECK(ans->nmx <= RESOLVER_MAX_MX);
	FUZZ_CHECK(type == RESOLVER_A || ans->naddrs == 0);
	FUZZ_CHECK(type == RESOLVER_AAAA || ans->naddrs6 == 0);
	FUZZ_CHECK(type == RESOLVER_MX || ans->nmx == 0);
	FUZZ_CHECK(fuzz_terminated(ans->txt, sizeof(ans->txt)));
	FUZZ_CHECK(type == RESOLVER_TXT || ans->txt[0] == '\0');
	for (const char *t = ans->txt; *t; t++) /* it may end up in an SMTP reply */
		FUZZ_CHECK(*t >= 0x20 && *t < 0x7f);
	for (size_t i = 0; i < ans->nmx; i++) {
		FUZZ_CHECK(fuzz_terminated(ans->mx[i].host, sizeof(ans->mx[i].host)));
		for (const char *h = ans->mx[i].host; *h; h++)
			FUZZ_CHECK(!isupper((unsigned char)*h));
	}
	if (ans->status == RESOLVER_OK && type == RESOLVER_A)
		FUZZ_CHECK(ans->naddrs >= 1 && ans->has_ttl);
	if (ans->status == RESOLVER_OK && type == RESOLVER_AAAA)
		FUZZ_CHECK(ans->naddrs6 >= 1 && ans->has_ttl);
	if (ans->status != RESOLVER_OK)
		FUZZ_CHECK(ans->naddrs == 0 && ans->naddrs6 == 0 && ans->nmx == 0);
}

static int never_listed(uint32_t a)
{
	return (a >> 24) != 127 || a == ADDR(127, 0, 0, 1) || a == ADDR(127, 0, 0, 255) ||
	       (a & 0xffffff00u) == ADDR(127, 255, 255, 0);
}

static int in_codes(const struct dnsbl_config *list, uint32_t a)
{
	for (unsigned i = 0; i < list->ncodes; i++)
		if (a >= list->codes[i].lo && a <= list->codes[i].hi)
			return 1;
	return 0;
}

static int in_addrs(const struct resolver_answer *ans, uint32_t a)
{
	for (size_t i = 0; i < ans->naddrs; i++)
		if (ans->addrs[i] == a)
			return 1;
	return 0;
}

/* dnsbl.c interpret_answer, then what each state promises. */
static void check_dnsbl(const struct dnsbl_config *list, const struct resolver_answer *ans)
{
	char detail[DNSBL_DETAIL_MAX];
	uint32_t code = 0xdeadbeef;
	enum dnsbl_state st;
	int nx = ans->status == RESOLVER_NXDOMAIN;

	if (ans->status == RESOLVER_REFUSED)
		return; /* a list error, straight away, without dnsbl_interpret */
	if (ans->status == RESOLVER_FAILED) {
		st = dnsbl_interpret(list, 0, 1, NULL, 0, &code, detail, sizeof(detail));
		FUZZ_CHECK(st == DNSBL_RESOLVER_ERROR && code == 0);
		return;
	}
	st = dnsbl_interpret(list, nx, 0, ans->addrs, ans->naddrs, &code, detail, sizeof(detail));
	FUZZ_CHECK(fuzz_terminated(detail, sizeof(detail)));
	FUZZ_CHECK(strcmp(dnsbl_state_name(st), "unknown") != 0);
	FUZZ_CHECK(st == dnsbl_interpret(list, nx, 0, ans->addrs, ans->naddrs, NULL, NULL, 0));
	switch (st) {
	case DNSBL_NOT_LISTED:
		FUZZ_CHECK((nx || ans->naddrs == 0) && code == 0);
		break;
	case DNSBL_LISTED:
		FUZZ_CHECK(in_addrs(ans, code) && in_codes(list, code) && !never_listed(code));
		for (size_t i = 0; i < ans->naddrs; i++)
			FUZZ_CHECK(!never_listed(ans->addrs[i]));
		break;
	case DNSBL_LIST_ERROR:
		FUZZ_CHECK(in_addrs(ans, code) && detail[0] != '\0');
		FUZZ_CHECK(never_listed(code) || !in_codes(list, code));
		break;
	default:
		FUZZ_CHECK(!"a state dnsbl_interpret never gives for an answer");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct resolver_answer ans;
	struct dnsbl_config list;

	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	enum resolver_type type = (enum resolver_type)(mode & MODE_TYPE);
	size_t len = size - 1;

	list_setup(&list, (mode >> MODE_CODES_SHIFT) & MODE_CODES);
	if (mode & MODE_TIMEOUT) {
		resolver_parse_answer(type, ARES_ETIMEOUT, NULL, 0, &ans);
	} else {
		if (len < DNS_HEADER_LEN || len > INT32_MAX)
			return 0;
		unsigned char *abuf = (unsigned char *)fuzz_dup(data + 1, len);
		resolver_parse_answer(type, ares_status_of(abuf), abuf, (int)len, &ans);
		free(abuf);
	}
	check_answer(type, &ans);
	if (type == RESOLVER_A)
		check_dnsbl(&list, &ans);
	if (type == RESOLVER_MX) {
		enum destination_mx_verdict v = destination_mx_classify(&ans);
		FUZZ_CHECK(v >= DESTINATION_MX_USE && v <= DESTINATION_MX_TEMPFAIL);
	}
	return 0;
}
