/* destination: MX, A and AAAA lookups into an ordered address list; see destination.h.
 *
 * A query is a small state machine over the resolver: an MX request (mail domains only), then
 * one A and one AAAA request per host, all hosts in parallel. q->pending counts the requests
 * in flight; it is raised for a whole batch before the first request of the batch is sent,
 * because the resolver may answer inside resolver_query(). When it falls to zero the result
 * is built and the query's own event is activated: done() runs from that event on the next
 * loop turn, never from inside destination_resolve() or a resolver callback.
 *
 * The decisions (MX verdict, order, null MX, address order, classification and texts) are the
 * pure functions at the top, exported through destination.h for the unit tests. */
#include "dns/destination.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "util/addr.h"
#include "util/xmalloc.h"

#define NAME_MAX_LEN 253  /* RFC 1035 2.3.4, in text without the trailing dot */
#define LABEL_MAX_LEN 63
#define TEXT_NAME_MAX 128 /* a name quoted in a human text is cut here */
#define TEXT_HOSTS_LISTED 3 /* MX hosts named in a "no address" text */
#define IPV6_TAG "IPv6:"   /* RFC 5321 4.1.3 */
#define IPV6_TAG_LEN 5
#define SEED_FALLBACK 0x9e3779b97f4a7c15u /* any non-zero value: xorshift stays 0 from 0 */

/* ---- pure steps --------------------------------------------------------------------------- */

int destination_name_ok(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len == 0 || len > NAME_MAX_LEN)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > LABEL_MAX_LEN)
				return 0;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			label++;
		} else {
			return 0;
		}
	}
	return 1;
}

int destination_mx_is_null(const struct resolver_mx *mx, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (mx[i].host[0] != '\0')
			return 0;
	return 1;
}

enum destination_mx_verdict destination_mx_classify(const struct resolver_answer *ans)
{
	switch (ans->status) {
	case RESOLVER_OK:
		if (ans->nmx == 0)
			return DESTINATION_MX_IMPLICIT;
		return destination_mx_is_null(ans->mx, ans->nmx) ? DESTINATION_MX_NULL
								 : DESTINATION_MX_USE;
	case RESOLVER_NXDOMAIN:
		return ans->nodata ? DESTINATION_MX_IMPLICIT : DESTINATION_MX_NXDOMAIN;
	case RESOLVER_REFUSED:
	case RESOLVER_FAILED:
		break;
	}
	return DESTINATION_MX_TEMPFAIL;
}

/* xorshift64*: enough to shuffle equal preferences, deterministic for a given seed. */
static uint64_t next_random(uint64_t *seed)
{
	uint64_t x = *seed ? *seed : SEED_FALLBACK;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*seed = x;
	return x * 0x2545f4914f6cdd1du;
}

size_t destination_mx_order(struct resolver_mx *mx, size_t n, size_t max, uint64_t *seed)
{
	struct resolver_mx tmp;
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) /* drop the root and unusable names */
		if (destination_name_ok(mx[i].host))
			mx[kept++] = mx[i];
	for (size_t i = kept; i > 1; i--) { /* Fisher-Yates: a random order to start from */
		size_t j = (size_t)((next_random(seed) >> 32) % i);
		tmp = mx[i - 1];
		mx[i - 1] = mx[j];
		mx[j] = tmp;
	}
	for (size_t i = 1; i < kept; i++) { /* stable sort: equal preferences stay shuffled */
		size_t j = i;
		tmp = mx[i];
		for (; j > 0 && mx[j - 1].preference > tmp.preference; j--)
			mx[j] = mx[j - 1];
		mx[j] = tmp;
	}
	n = kept;
	kept = 0;
	for (size_t i = 0; i < n && kept < max; i++) { /* a repeated exchange: its best place */
		size_t j = 0;
		while (j < kept && strcasecmp(mx[j].host, mx[i].host) != 0)
			j++;
		if (j == kept)
			mx[kept++] = mx[i];
	}
	return kept;
}

/* A name for a human text: printable ASCII (others become '?'), cut at TEXT_NAME_MAX. */
static const char *text_name(const char *s, char out[TEXT_NAME_MAX])
{
	size_t i = 0;

	for (; s[i] && i + 1 < TEXT_NAME_MAX; i++)
		out[i] = (s[i] > 0x20 && s[i] < 0x7f) ? s[i] : '?';
	out[i] = '\0';
	return out;
}

static void set_outcome(struct destination_result *res, enum destination_status status,
			const char *code)
{
	res->status = status;
	snprintf(res->code, sizeof(res->code), "%s", code);
	if (status != DESTINATION_OK)
		res->naddrs = 0;
}

static int addr_listed(const struct destination_result *res, const struct sockaddr_storage *ss)
{
	for (size_t i = 0; i < res->naddrs; i++) {
		const struct sockaddr_storage *o = &res->addrs[i].sa;
		if (o->ss_family != ss->ss_family)
			continue;
		if (ss->ss_family == AF_INET6 &&
		    memcmp(&((const struct sockaddr_in6 *)o)->sin6_addr,
			   &((const struct sockaddr_in6 *)ss)->sin6_addr, sizeof(struct in6_addr)) == 0)
			return 1;
		if (ss->ss_family == AF_INET &&
		    ((const struct sockaddr_in *)o)->sin_addr.s_addr ==
			    ((const struct sockaddr_in *)ss)->sin_addr.s_addr)
			return 1;
	}
	return 0;
}

/* Appends one address unless it is listed already or the result is full. */
static void add_addr(struct destination_result *res, const struct sockaddr_storage *ss,
		     socklen_t len, const char *host, uint16_t preference)
{
	if (res->naddrs == DESTINATION_MAX_ADDRS || addr_listed(res, ss))
		return;
	struct destination_addr *a = &res->addrs[res->naddrs++];
	a->sa = *ss;
	a->salen = len;
	snprintf(a->host, sizeof(a->host), "%s", host);
	a->preference = preference;
}

static void add_host_addrs(struct destination_result *res, const struct destination_host *h,
			   uint16_t port)
{
	struct sockaddr_storage ss;

	for (size_t i = 0; i < h->nv6 && i < DESTINATION_MAX_PER_FAMILY; i++) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		memset(&ss, 0, sizeof(ss));
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, h->v6[i], sizeof(s6->sin6_addr));
		add_addr(res, &ss, sizeof(*s6), h->name, h->preference);
	}
	for (size_t i = 0; i < h->nv4 && i < DESTINATION_MAX_PER_FAMILY; i++) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		memset(&ss, 0, sizeof(ss));
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl(h->v4[i]);
		add_addr(res, &ss, sizeof(*s4), h->name, h->preference);
	}
}

static void text_ok(const struct destination_host *hosts, size_t nhosts,
		    enum destination_kind kind, const char *target, struct destination_result *res)
{
	char t[TEXT_NAME_MAX];

	text_name(target, t);
	if (kind == DESTINATION_MX)
		snprintf(res->text, sizeof(res->text), "%zu addresses of %zu MX hosts for %s",
			 res->naddrs, nhosts, t);
	else if (kind == DESTINATION_IMPLICIT_MX)
		snprintf(res->text, sizeof(res->text),
			 "no MX for %s: %zu addresses of the domain itself (implicit MX)", t,
			 res->naddrs);
	else
		snprintf(res->text, sizeof(res->text), "%zu addresses for %s", res->naddrs, t);
}

static void text_tempfail(const struct destination_host *h, enum destination_kind kind,
			  const char *target, struct destination_result *res)
{
	char t[TEXT_NAME_MAX], hn[TEXT_NAME_MAX];

	text_name(target, t);
	text_name(h->name, hn);
	if (kind == DESTINATION_MX)
		snprintf(res->text, sizeof(res->text),
			 "no address found for the MX hosts of %s: temporary DNS failure for %s: %s",
			 t, hn, h->error);
	else if (kind == DESTINATION_IMPLICIT_MX)
		snprintf(res->text, sizeof(res->text),
			 "no MX for %s, and its address lookup failed temporarily: %s", t, h->error);
	else
		snprintf(res->text, sizeof(res->text), "temporary DNS failure looking up %s: %s", t,
			 h->error);
}

static void text_noaddr(const struct destination_host *hosts, size_t nhosts,
			enum destination_kind kind, const char *target,
			struct destination_result *res)
{
	char t[TEXT_NAME_MAX], hn[TEXT_NAME_MAX];
	size_t len;

	text_name(target, t);
	if (kind == DESTINATION_IMPLICIT_MX) {
		snprintf(res->text, sizeof(res->text), "no MX or A/AAAA records for %s", t);
		return;
	}
	if (kind != DESTINATION_MX) {
		snprintf(res->text, sizeof(res->text), "no A/AAAA records for %s", t);
		return;
	}
	if (nhosts == 0) {
		snprintf(res->text, sizeof(res->text), "no usable MX host name for %s", t);
		return;
	}
	snprintf(res->text, sizeof(res->text), "no A/AAAA records for any MX host of %s (", t);
	for (size_t i = 0; i < nhosts && i < TEXT_HOSTS_LISTED; i++) {
		len = strlen(res->text);
		snprintf(res->text + len, sizeof(res->text) - len, "%s%s", i ? ", " : "",
			 text_name(hosts[i].name, hn));
	}
	len = strlen(res->text);
	snprintf(res->text + len, sizeof(res->text) - len, "%s)",
		 nhosts > TEXT_HOSTS_LISTED ? ", ..." : "");
}

void destination_build(const struct destination_host *hosts, size_t nhosts,
		       enum destination_kind kind, const char *target, uint16_t port,
		       struct destination_result *res_r)
{
	const struct destination_host *failed = NULL;

	memset(res_r, 0, sizeof(*res_r));
	res_r->kind = kind;
	for (size_t i = 0; i < nhosts; i++) {
		add_host_addrs(res_r, &hosts[i], port);
		if (hosts[i].tempfail && !failed)
			failed = &hosts[i];
	}
	if (res_r->naddrs > 0) {
		set_outcome(res_r, DESTINATION_OK, "2.0.0");
		text_ok(hosts, nhosts, kind, target, res_r);
	} else if (failed) {
		set_outcome(res_r, DESTINATION_TEMPORARY, "4.4.3");
		text_tempfail(failed, kind, target, res_r);
	} else {
		set_outcome(res_r, DESTINATION_PERMANENT, "5.4.4");
		text_noaddr(hosts, nhosts, kind, target, res_r);
	}
}

/* ---- the query ---------------------------------------------------------------------------- */

struct host_lookup {
	struct destination_query *q;
	struct destination_host h;
	struct resolver_req *a_req, *aaaa_req;
};

struct destination_query {
	struct resolver *r;
	destination_done_fn *done;
	void *arg;
	uint16_t port;
	enum destination_kind kind;
	char target[RESOLVER_HOST_MAX]; /* the normalised host name or domain */
	uint64_t seed;
	struct resolver_req *mx_req;
	struct host_lookup hosts[DESTINATION_MAX_MX_HOSTS];
	size_t nhosts;
	unsigned pending;     /* resolver requests in flight */
	struct event *finish; /* activated to run done on the next loop turn */
	int in_done;
	struct destination_result res;
};

static void finish_soon(struct destination_query *q)
{
	event_active(q->finish, 0, 0);
}

/* Ends the query without addresses; the caller writes q->res.text next. */
static char *fail(struct destination_query *q, enum destination_status status, const char *code)
{
	memset(&q->res, 0, sizeof(q->res));
	q->res.kind = q->kind;
	set_outcome(&q->res, status, code);
	finish_soon(q);
	return q->res.text;
}

static void on_finish(evutil_socket_t fd, short what, void *arg)
{
	struct destination_query *q = arg;

	q->in_done = 1;
	q->done(q->arg, &q->res);
	event_free(q->finish);
	free(q);
}

static void host_answered(struct host_lookup *hl)
{
	struct destination_query *q = hl->q;

	if (--q->pending > 0)
		return;
	struct destination_host hosts[DESTINATION_MAX_MX_HOSTS];
	for (size_t i = 0; i < q->nhosts; i++)
		hosts[i] = q->hosts[i].h;
	destination_build(hosts, q->nhosts, q->kind, q->target, q->port, &q->res);
	finish_soon(q);
}

static void note_failure(struct destination_host *h, const struct resolver_answer *ans)
{
	if (ans->status != RESOLVER_FAILED && ans->status != RESOLVER_REFUSED)
		return;
	if (!h->tempfail)
		snprintf(h->error, sizeof(h->error), "%s (%s)",
			 ans->status == RESOLVER_REFUSED ? "REFUSED" : ans->error,
			 ans->status == RESOLVER_REFUSED ? "the DNS server refused the query"
							 : ans->error_text);
	h->tempfail = 1;
}

static void on_a_answer(void *arg, const struct resolver_answer *ans)
{
	struct host_lookup *hl = arg;

	note_failure(&hl->h, ans);
	if (ans->status == RESOLVER_OK)
		for (size_t i = 0; i < ans->naddrs && hl->h.nv4 < DESTINATION_MAX_PER_FAMILY; i++)
			hl->h.v4[hl->h.nv4++] = ans->addrs[i];
	host_answered(hl);
}

static void on_aaaa_answer(void *arg, const struct resolver_answer *ans)
{
	struct host_lookup *hl = arg;

	note_failure(&hl->h, ans);
	if (ans->status == RESOLVER_OK)
		for (size_t i = 0; i < ans->naddrs6 && hl->h.nv6 < DESTINATION_MAX_PER_FAMILY; i++)
			memcpy(hl->h.v6[hl->h.nv6++], ans->addrs6[i], sizeof(hl->h.v6[0]));
	host_answered(hl);
}

/* Looks up hosts[0..n) (names and preferences set), A and AAAA each, all at once. */
static void start_hosts(struct destination_query *q, size_t n)
{
	q->nhosts = n;
	q->pending += 2 * (unsigned)n; /* all counted before any can answer */
	for (size_t i = 0; i < n; i++) {
		struct host_lookup *hl = &q->hosts[i];
		hl->q = q;
		resolver_query(q->r, hl->h.name, RESOLVER_A, on_a_answer, hl, &hl->a_req);
		resolver_query(q->r, hl->h.name, RESOLVER_AAAA, on_aaaa_answer, hl, &hl->aaaa_req);
	}
}

static void start_self(struct destination_query *q)
{
	snprintf(q->hosts[0].h.name, sizeof(q->hosts[0].h.name), "%s", q->target);
	start_hosts(q, 1);
}

static void start_mx_hosts(struct destination_query *q, const struct resolver_answer *ans)
{
	struct resolver_mx mx[RESOLVER_MAX_MX];
	size_t n = ans->nmx;

	memcpy(mx, ans->mx, n * sizeof(mx[0]));
	n = destination_mx_order(mx, n, DESTINATION_MAX_MX_HOSTS, &q->seed);
	if (n == 0) { /* only unusable names: nothing to look up */
		destination_build(NULL, 0, q->kind, q->target, q->port, &q->res);
		finish_soon(q);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(q->hosts[i].h.name, sizeof(q->hosts[i].h.name), "%s", mx[i].host);
		q->hosts[i].h.preference = mx[i].preference;
	}
	start_hosts(q, n);
}

static void on_mx_answer(void *arg, const struct resolver_answer *ans)
{
	struct destination_query *q = arg;

	q->pending--;
	switch (destination_mx_classify(ans)) {
	case DESTINATION_MX_USE:
		start_mx_hosts(q, ans);
		break;
	case DESTINATION_MX_IMPLICIT:
		q->kind = DESTINATION_IMPLICIT_MX;
		start_self(q);
		break;
	case DESTINATION_MX_NULL:
		snprintf(fail(q, DESTINATION_PERMANENT, "5.1.10"), DESTINATION_TEXT_MAX,
			 "null MX: %s accepts no mail (RFC 7505)", q->target);
		break;
	case DESTINATION_MX_NXDOMAIN:
		snprintf(fail(q, DESTINATION_PERMANENT, "5.1.2"), DESTINATION_TEXT_MAX,
			 "domain %s does not exist (NXDOMAIN)", q->target);
		break;
	case DESTINATION_MX_TEMPFAIL:
		snprintf(fail(q, DESTINATION_TEMPORARY, "4.4.3"), DESTINATION_TEXT_MAX,
			 "temporary DNS failure looking up the MX of %s: %s (%s)", q->target,
			 ans->status == RESOLVER_REFUSED ? "REFUSED" : ans->error,
			 ans->status == RESOLVER_REFUSED ? "the DNS server refused the query"
							 : ans->error_text);
		break;
	}
}

/* ---- targets ------------------------------------------------------------------------------ */

/* An IP literal: with mx, only the bracketed RFC 5321 forms "[a.b.c.d]" and "[IPv6:...]"
 * (a bare "[v6]" is accepted too); without, also a bare address. Returns 1 with *ip_r, 0 when target
 * is not written as a literal, -1 when it is a malformed one. */
static int parse_literal(const char *target, int mx, struct ip_addr *ip_r)
{
	char inner[RESOLVER_HOST_MAX];
	size_t len = strlen(target);

	if (target[0] != '[')
		return !mx && ip_parse(target, ip_r) == 0 ? 1 : 0;
	if (len < 3 || target[len - 1] != ']' || len - 2 >= sizeof(inner))
		return -1;
	memcpy(inner, target + 1, len - 2);
	inner[len - 2] = '\0';
	const char *p = inner;
	int tagged = strncasecmp(p, IPV6_TAG, IPV6_TAG_LEN) == 0;
	if (tagged)
		p += IPV6_TAG_LEN;
	if (ip_parse(p, ip_r) < 0 || (tagged && ip_is_v4(ip_r)))
		return -1;
	return 1;
}

static void finish_literal(struct destination_query *q, const struct ip_addr *ip)
{
	struct destination_host h;

	memset(&h, 0, sizeof(h));
	ip_format(ip, h.name);
	if (ip_is_v4(ip)) {
		h.v4[0] = (uint32_t)ip->b[12] << 24 | (uint32_t)ip->b[13] << 16 |
			  (uint32_t)ip->b[14] << 8 | ip->b[15];
		h.nv4 = 1;
	} else {
		memcpy(h.v6[0], ip->b, sizeof(h.v6[0]));
		h.nv6 = 1;
	}
	q->kind = DESTINATION_LITERAL;
	destination_build(&h, 1, q->kind, h.name, q->port, &q->res);
	finish_soon(q);
}

/* Lower case, without one trailing dot; 0 when the result is not a usable name. */
static int normalise_name(const char *target, char out[RESOLVER_HOST_MAX])
{
	size_t len = strlen(target);

	if (len > 0 && target[len - 1] == '.')
		len--;
	if (len >= RESOLVER_HOST_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		out[i] = (char)tolower((unsigned char)target[i]);
	out[len] = '\0';
	return destination_name_ok(out);
}

static uint64_t new_seed(void)
{
	return (uint64_t)arc4random() << 32 | arc4random();
}

struct destination_query *destination_resolve(struct resolver *r, const char *target, int mx,
					      uint16_t port, destination_done_fn *done, void *arg)
{
	struct destination_query *q = xcalloc(1, sizeof(*q));
	struct ip_addr ip;
	int lit = parse_literal(target, mx, &ip);

	q->r = r;
	q->done = done;
	q->arg = arg;
	q->port = port;
	q->seed = new_seed();
	q->kind = mx ? DESTINATION_MX : DESTINATION_HOST;
	q->finish = event_new(resolver_base(r), -1, 0, on_finish, q);
	if (!q->finish)
		abort(); /* allocation failure: same policy as xmalloc */
	if (lit > 0) {
		finish_literal(q, &ip);
	} else if (lit < 0 || !normalise_name(target, q->target)) {
		char t[TEXT_NAME_MAX];
		snprintf(fail(q, DESTINATION_PERMANENT, mx ? "5.1.2" : "5.4.4"),
			 DESTINATION_TEXT_MAX, "invalid destination %s \"%s\"",
			 mx ? "domain" : "host", text_name(target, t));
	} else if (mx) {
		q->pending = 1;
		resolver_query(r, q->target, RESOLVER_MX, on_mx_answer, q, &q->mx_req);
	} else {
		start_self(q);
	}
	return q;
}

void destination_cancel(struct destination_query **qp)
{
	struct destination_query *q = *qp;

	if (!q)
		return;
	*qp = NULL;
	if (q->in_done)
		return; /* on_finish frees it when done returns */
	resolver_cancel(&q->mx_req);
	for (size_t i = 0; i < q->nhosts; i++) {
		resolver_cancel(&q->hosts[i].a_req);
		resolver_cancel(&q->hosts[i].aaaa_req);
	}
	event_free(q->finish);
	free(q);
}
