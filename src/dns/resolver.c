/* resolver: c-ares on a libevent loop; see resolver.h.
 *
 * c-ares tells us through the socket-state callback which sockets it wants watched for
 * reading or writing; each gets one persistent libevent event. After every call into c-ares
 * the single timer is re-armed from ares_timeout(), so retries and timeouts happen without
 * polling. Answers are parsed here (A and AAAA with TTLs, TXT, MX, the SOA negative TTL) so
 * that the DNSBL and destination code never see a DNS packet. */
#include "dns/resolver.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ares.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "util/addr.h"
#include "util/xmalloc.h"

/* RFC 1035 header and fixed RR field sizes, for the SOA walk. */
#define DNS_HEADER_LEN 12
#define DNS_QFIXED_LEN 4  /* type, class */
#define DNS_RRFIXED_LEN 10 /* type, class, ttl, rdlength */
#define DNS_SOA_TIMERS_LEN 20 /* serial, refresh, retry, expire, minimum */
#define DNS_TYPE_SOA 6
/* Longest configured resolver text, plus room for the brackets of the CSV form. */
#define SERVERS_TEXT_MAX 300
/* RFC 2181 8: a TTL with the top bit set is to be read as zero. */
#define DNS_TTL_MAX 0x7fffffffu

struct sock_watch {
	ares_socket_t fd;
	struct event *ev;
	struct sock_watch *next;
};

struct resolver {
	struct event_base *base;
	ares_channel channel;
	struct event *timer;
	struct sock_watch *socks;
};

struct resolver_req {
	struct resolver_req **slot; /* the owner's handle; NULL once cancelled or answered */
	resolver_answer_fn *fn;     /* NULL once cancelled */
	void *arg;
	enum resolver_type type;
};

static const char *const status_names[] = {
	[ARES_SUCCESS] = "ARES_SUCCESS",
	[ARES_ENODATA] = "ARES_ENODATA",
	[ARES_EFORMERR] = "ARES_EFORMERR",
	[ARES_ESERVFAIL] = "ARES_ESERVFAIL",
	[ARES_ENOTFOUND] = "ARES_ENOTFOUND",
	[ARES_ENOTIMP] = "ARES_ENOTIMP",
	[ARES_EREFUSED] = "ARES_EREFUSED",
	[ARES_EBADQUERY] = "ARES_EBADQUERY",
	[ARES_EBADNAME] = "ARES_EBADNAME",
	[ARES_EBADFAMILY] = "ARES_EBADFAMILY",
	[ARES_EBADRESP] = "ARES_EBADRESP",
	[ARES_ECONNREFUSED] = "ARES_ECONNREFUSED",
	[ARES_ETIMEOUT] = "ARES_ETIMEOUT",
	[ARES_EOF] = "ARES_EOF",
	[ARES_EFILE] = "ARES_EFILE",
	[ARES_ENOMEM] = "ARES_ENOMEM",
	[ARES_EDESTRUCTION] = "ARES_EDESTRUCTION",
	[ARES_EBADSTR] = "ARES_EBADSTR",
	[ARES_EBADFLAGS] = "ARES_EBADFLAGS",
	[ARES_ENONAME] = "ARES_ENONAME",
	[ARES_EBADHINTS] = "ARES_EBADHINTS",
	[ARES_ENOTINITIALIZED] = "ARES_ENOTINITIALIZED",
	[ARES_ELOADIPHLPAPI] = "ARES_ELOADIPHLPAPI",
	[ARES_EADDRGETNETWORKPARAMS] = "ARES_EADDRGETNETWORKPARAMS",
	[ARES_ECANCELLED] = "ARES_ECANCELLED",
};

static const char *status_name(int status)
{
	if (status >= 0 && (size_t)status < sizeof(status_names) / sizeof(status_names[0]) &&
	    status_names[status])
		return status_names[status];
	return "ARES_UNKNOWN";
}

/* ---- loop glue ---------------------------------------------------------------------------- */

static void rearm_timer(struct resolver *r)
{
	struct timeval tv;

	if (ares_timeout(r->channel, NULL, &tv))
		evtimer_add(r->timer, &tv);
	else
		evtimer_del(r->timer);
}

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;

	/* The watch for fd may be freed inside (socket closed): only r is used afterwards. */
	ares_process_fd(r->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	rearm_timer(r);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct resolver *r = arg;

	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm_timer(r);
}

static struct sock_watch **watch_find(struct resolver *r, ares_socket_t fd)
{
	struct sock_watch **w = &r->socks;

	while (*w && (*w)->fd != fd)
		w = &(*w)->next;
	return w;
}

/* c-ares: start, change or stop watching fd. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	struct sock_watch **wp = watch_find(r, fd), *w = *wp;

	if (w)
		event_free(w->ev);
	if (!readable && !writable) {
		if (w) {
			*wp = w->next;
			free(w);
		}
		return;
	}
	if (!w) {
		w = xcalloc(1, sizeof(*w));
		w->fd = fd;
		w->next = r->socks;
		r->socks = w;
	}
	short what = (short)(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
	w->ev = event_new(r->base, fd, what, on_sock_event, r);
	if (!w->ev)
		abort(); /* allocation failure: same policy as xmalloc */
	event_add(w->ev, NULL);
}

/* ---- setup -------------------------------------------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

/* A no-op on Linux today, but the documented way to start c-ares; once per process because it
 * is not thread-safe and every worker creates a resolver. */
static void lib_init(void)
{
	(void)ares_library_init(ARES_LIB_INIT_ALL);
}

/* "HOST:PORT" / "[V6]:PORT" with HOST a literal address, into the c-ares CSV form. */
static int servers_csv(const char *servers, char *csv, size_t csvsz, char *errbuf, size_t errsz)
{
	char host[SERVERS_TEXT_MAX];
	uint16_t port;
	struct ip_addr ip;

	if (hostport_split(servers, host, sizeof(host), &port) < 0 || ip_parse(host, &ip) < 0) {
		snprintf(errbuf, errsz, "resolver \"%s\": expected IP:PORT or [IPv6]:PORT", servers);
		return -1;
	}
	char text[ADDR_STR_MAX];
	ip_format(&ip, text);
	snprintf(csv, csvsz, ip_is_v4(&ip) ? "%s:%u" : "[%s]:%u", text, (unsigned)port);
	return 0;
}

static int channel_init(struct resolver *r, const char *servers, unsigned timeout_ms,
			unsigned tries, char *errbuf, size_t errsz)
{
	struct ares_options opts;
	int rc;

	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = on_sock_state;
	opts.sock_state_cb_data = r;
	opts.timeout = (int)timeout_ms;
	opts.tries = (int)tries;
	/* STAYOPEN: keep the UDP sockets (and their events) across queries instead of churning
	 * them. NOCHECKRESP: hand SERVFAIL and REFUSED answers to us as they are; otherwise
	 * c-ares 1.18 retries them on the next server and, when none is left, reports
	 * ARES_ECONNREFUSED, which would make a list's REFUSED (a list error) look like a dead
	 * resolver. The price: no fail-over to a second resolv.conf server on SERVFAIL. */
	opts.flags = ARES_FLAG_STAYOPEN | ARES_FLAG_NOCHECKRESP;
	rc = ares_init_options(&r->channel, &opts,
			       ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
				       ARES_OPT_FLAGS);
	if (rc != ARES_SUCCESS) {
		snprintf(errbuf, errsz, "c-ares init: %s (%s)", ares_strerror(rc), status_name(rc));
		return -1;
	}
	if (!servers[0])
		return 0;
	char csv[SERVERS_TEXT_MAX];
	if (servers_csv(servers, csv, sizeof(csv), errbuf, errsz) < 0)
		return -1;
	rc = ares_set_servers_ports_csv(r->channel, csv);
	if (rc != ARES_SUCCESS) {
		snprintf(errbuf, errsz, "resolver \"%s\": %s", servers, ares_strerror(rc));
		return -1;
	}
	return 0;
}

struct resolver *resolver_new(struct event_base *base, const char *servers, unsigned timeout_ms,
			      unsigned tries, char *errbuf, size_t errsz)
{
	struct resolver *r = xcalloc(1, sizeof(*r));

	pthread_once(&lib_once, lib_init);
	r->base = base;
	r->timer = evtimer_new(base, on_timer, r);
	if (!r->timer)
		abort();
	if (channel_init(r, servers, timeout_ms, tries, errbuf, errsz) < 0) {
		resolver_free(&r);
		return NULL;
	}
	return r;
}

void resolver_free(struct resolver **rp)
{
	struct resolver *r = *rp;

	if (!r)
		return;
	*rp = NULL;
	/* Ends every request (cancelled ones are just freed) and closes every socket, which
	 * comes back through on_sock_state and frees the watches. */
	if (r->channel)
		ares_destroy(r->channel);
	while (r->socks) {
		struct sock_watch *w = r->socks;
		r->socks = w->next;
		event_free(w->ev);
		free(w);
	}
	event_free(r->timer);
	free(r);
}

/* ---- answers ------------------------------------------------------------------------------ */

/* Advances *off past one (possibly compressed) name; -1 when it runs off the packet. */
static int skip_name(const unsigned char *p, size_t len, size_t *off)
{
	while (*off < len) {
		unsigned c = p[*off];
		if ((c & 0xc0) == 0xc0) {
			if (*off + 2 > len)
				return -1;
			*off += 2;
			return 0;
		}
		if (c & 0xc0)
			return -1; /* reserved label types */
		*off += 1 + c;
		if (c == 0)
			return 0;
	}
	return -1;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static unsigned get16(const unsigned char *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

/* Negative-answer TTL (RFC 2308 5): min(SOA TTL, SOA MINIMUM) of the first SOA in the
 * authority section. Returns 0 and *ttl_r, or -1 when there is none or the packet is bad. */
static int soa_negative_ttl(const unsigned char *p, size_t len, uint32_t *ttl_r)
{
	size_t off = DNS_HEADER_LEN;

	if (!p || len < DNS_HEADER_LEN)
		return -1;
	unsigned qd = get16(p + 4), an = get16(p + 6), ns = get16(p + 8);
	for (unsigned i = 0; i < qd; i++)
		if (skip_name(p, len, &off) < 0 || (off += DNS_QFIXED_LEN) > len)
			return -1;
	for (unsigned i = 0; i < an + ns; i++) {
		if (skip_name(p, len, &off) < 0 || off + DNS_RRFIXED_LEN > len)
			return -1;
		unsigned type = get16(p + off);
		uint32_t ttl = get32(p + off + 4);
		size_t rdlen = get16(p + off + 8), rd = off + DNS_RRFIXED_LEN;
		off = rd + rdlen;
		if (off > len)
			return -1;
		if (i < an || type != DNS_TYPE_SOA)
			continue;
		if (skip_name(p, off, &rd) < 0 || skip_name(p, off, &rd) < 0 ||
		    rd + DNS_SOA_TIMERS_LEN > off)
			return -1;
		uint32_t minimum = get32(p + rd + 16);
		ttl = ttl < minimum ? ttl : minimum;
		*ttl_r = ttl > DNS_TTL_MAX ? 0 : ttl;
		return 0;
	}
	return -1;
}

/* A NOERROR answer without a record of the asked type (RFC 2308 "NODATA"). */
static void set_nodata(const unsigned char *abuf, int alen, struct resolver_answer *ans)
{
	ans->status = RESOLVER_NXDOMAIN;
	ans->nodata = 1;
	ans->has_ttl = soa_negative_ttl(abuf, alen > 0 ? (size_t)alen : 0, &ans->ttl) == 0;
}

static void set_parse_error(int rc, struct resolver_answer *ans)
{
	ans->status = RESOLVER_FAILED;
	ans->error = status_name(rc);
	ans->error_text = ares_strerror(rc);
}

static void parse_a(const unsigned char *abuf, int alen, struct resolver_answer *ans)
{
	struct ares_addrttl at[RESOLVER_MAX_ADDRS];
	int n = RESOLVER_MAX_ADDRS;
	int rc = ares_parse_a_reply(abuf, alen, NULL, at, &n);

	if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && n == 0)) {
		set_nodata(abuf, alen, ans);
		return;
	}
	if (rc != ARES_SUCCESS) {
		set_parse_error(rc, ans);
		return;
	}
	ans->has_ttl = 1;
	ans->ttl = DNS_TTL_MAX;
	for (int i = 0; i < n; i++) {
		uint32_t ttl = at[i].ttl < 0 ? 0 : (uint32_t)at[i].ttl;
		ans->addrs[i] = ntohl(at[i].ipaddr.s_addr);
		ans->ttl = ttl < ans->ttl ? ttl : ans->ttl;
	}
	ans->naddrs = (size_t)n;
}

/* Appends TXT bytes as printable ASCII: control bytes are dropped (they could end an SMTP
 * reply line), other non-ASCII bytes become '?'. */
static void txt_append(char *dst, size_t *len, const unsigned char *src, size_t n)
{
	for (size_t i = 0; i < n && *len + 1 < RESOLVER_TXT_MAX; i++) {
		if (src[i] < 0x20 || src[i] == 0x7f)
			continue;
		dst[(*len)++] = src[i] < 0x80 ? (char)src[i] : '?';
	}
	dst[*len] = '\0';
}

/* Character-strings of one record are joined as they are (RFC 7208 3.3 style); several
 * records are separated by a space. */
static void parse_txt(const unsigned char *abuf, int alen, struct resolver_answer *ans)
{
	struct ares_txt_ext *txt = NULL;
	int rc = ares_parse_txt_reply_ext(abuf, alen, &txt);
	size_t len = 0;

	if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && !txt)) {
		set_nodata(abuf, alen, ans);
		return;
	}
	if (rc != ARES_SUCCESS) {
		set_parse_error(rc, ans);
		return;
	}
	for (const struct ares_txt_ext *t = txt; t; t = t->next) {
		if (t->record_start && t != txt)
			txt_append(ans->txt, &len, (const unsigned char *)" ", 1);
		txt_append(ans->txt, &len, t->txt, t->length);
	}
	ares_free_data(txt);
}

static void parse_aaaa(const unsigned char *abuf, int alen, struct resolver_answer *ans)
{
	struct ares_addr6ttl at[RESOLVER_MAX_ADDRS6];
	int n = RESOLVER_MAX_ADDRS6;
	int rc = ares_parse_aaaa_reply(abuf, alen, NULL, at, &n);

	if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && n == 0)) {
		set_nodata(abuf, alen, ans);
		return;
	}
	if (rc != ARES_SUCCESS) {
		set_parse_error(rc, ans);
		return;
	}
	ans->has_ttl = 1;
	ans->ttl = DNS_TTL_MAX;
	for (int i = 0; i < n; i++) {
		uint32_t ttl = at[i].ttl < 0 ? 0 : (uint32_t)at[i].ttl;
		memcpy(ans->addrs6[i], &at[i].ip6addr, sizeof(ans->addrs6[i]));
		ans->ttl = ttl < ans->ttl ? ttl : ans->ttl;
	}
	ans->naddrs6 = (size_t)n;
}

/* Copies an exchange name: lower case, without a trailing dot ("" for the root). A name
 * too long for RESOLVER_HOST_MAX is cut, which makes it fail the caller's name check. */
static void mx_host_copy(char *dst, const char *src)
{
	size_t len = 0;

	for (; src[len] && len + 1 < RESOLVER_HOST_MAX; len++)
		dst[len] = (char)tolower((unsigned char)src[len]);
	if (len > 0 && dst[len - 1] == '.' && (len < 2 || dst[len - 2] != '\\'))
		len--;
	dst[len] = '\0';
}

/* Keeps the RESOLVER_MAX_MX most preferred records, in answer order while there is room. */
static void mx_keep(struct resolver_answer *ans, const struct ares_mx_reply *m)
{
	size_t slot = ans->nmx;

	if (slot == RESOLVER_MAX_MX) {
		slot = 0;
		for (size_t i = 1; i < ans->nmx; i++)
			if (ans->mx[i].preference > ans->mx[slot].preference)
				slot = i;
		if (ans->mx[slot].preference <= m->priority)
			return;
	} else {
		ans->nmx++;
	}
	ans->mx[slot].preference = m->priority;
	mx_host_copy(ans->mx[slot].host, m->host ? m->host : "");
}

static void parse_mx(const unsigned char *abuf, int alen, struct resolver_answer *ans)
{
	struct ares_mx_reply *mx = NULL;
	int rc = ares_parse_mx_reply(abuf, alen, &mx);

	if (rc == ARES_ENODATA || (rc == ARES_SUCCESS && !mx)) {
		set_nodata(abuf, alen, ans);
		return;
	}
	if (rc != ARES_SUCCESS) {
		set_parse_error(rc, ans);
		return;
	}
	for (const struct ares_mx_reply *m = mx; m; m = m->next)
		mx_keep(ans, m);
	ares_free_data(mx);
}

void resolver_parse_answer(enum resolver_type type, int status, const unsigned char *abuf,
			   int alen, struct resolver_answer *ans)
{
	memset(ans, 0, sizeof(*ans));
	ans->error = "";
	ans->error_text = "";
	switch (status) {
	case ARES_SUCCESS:
		switch (type) {
		case RESOLVER_A: parse_a(abuf, alen, ans); break;
		case RESOLVER_TXT: parse_txt(abuf, alen, ans); break;
		case RESOLVER_AAAA: parse_aaaa(abuf, alen, ans); break;
		case RESOLVER_MX: parse_mx(abuf, alen, ans); break;
		}
		return;
	case ARES_ENODATA:
		set_nodata(abuf, alen, ans);
		return;
	case ARES_ENOTFOUND:
		ans->status = RESOLVER_NXDOMAIN;
		ans->has_ttl = soa_negative_ttl(abuf, alen > 0 ? (size_t)alen : 0, &ans->ttl) == 0;
		return;
	case ARES_EREFUSED:
		ans->status = RESOLVER_REFUSED;
		break;
	default:
		ans->status = RESOLVER_FAILED;
		break;
	}
	ans->error = status_name(status);
	ans->error_text = ares_strerror(status);
}

/* c-ares: a request ended (answer, failure, timeout, or channel destruction). */
static void on_ares_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct resolver_req *req = arg;

	if (req->slot)
		*req->slot = NULL;
	if (req->fn) {
		struct resolver_answer ans;
		resolver_parse_answer(req->type, status, abuf, alen, &ans);
		req->fn(req->arg, &ans);
	}
	free(req);
}

static int query_type(enum resolver_type type)
{
	switch (type) {
	case RESOLVER_A: return ns_t_a;
	case RESOLVER_TXT: return ns_t_txt;
	case RESOLVER_AAAA: return ns_t_aaaa;
	case RESOLVER_MX: return ns_t_mx;
	}
	abort(); /* not a resolver_type */
}

void resolver_query(struct resolver *r, const char *name, enum resolver_type type,
		    resolver_answer_fn *fn, void *arg, struct resolver_req **slot)
{
	struct resolver_req *req = xcalloc(1, sizeof(*req));

	req->slot = slot;
	req->fn = fn;
	req->arg = arg;
	req->type = type;
	*slot = req;
	ares_query(r->channel, name, ns_c_in, query_type(type), on_ares_answer, req);
	rearm_timer(r);
}

void resolver_cancel(struct resolver_req **slot)
{
	struct resolver_req *req = *slot;

	if (!req)
		return;
	req->fn = NULL;
	req->slot = NULL;
	*slot = NULL;
}

struct event_base *resolver_base(const struct resolver *r)
{
	return r->base;
}
