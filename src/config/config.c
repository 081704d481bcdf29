/* config: see config.h.
 *
 * Debian's inih is built without line numbers in the handler, so we feed it through our own
 * line reader (ini_parse_stream) and count lines there: the handler runs while the reader's
 * count still names the line it is handling. */
#include "config/config.h"

#include <ini.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/strutil.h"

enum key_type {
	K_STR, K_UINT, K_INT, K_SIZE, K_BOOL, K_LISTEN, K_CIDRS, K_HOSTPORT, K_ZONE, K_CODES
};

struct key_def {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	int64_t min, max; /* K_STR: length; K_UINT, K_INT, K_SIZE: value */
	const char *dflt; /* parsed like a file value; NULL = empty / zero */
	const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct key_def config_keys[] = {
	{ "server", "hostname", K_STR, OFF(hostname), 1, CONFIG_HOST_MAX - 1, NULL,
	  "name in the greeting, Received: headers and replies (default: the system host name)" },
	{ "server", "listen", K_LISTEN, OFF(listen), 0, 0, NULL,
	  "ADDR:PORT [proxy]; repeatable; 'proxy' expects a PROXY v1/v2 header from proxy_from" },
	{ "server", "proxy_from", K_CIDRS, OFF(proxy_from), 0, 0, NULL,
	  "CIDRs allowed to send PROXY headers; repeatable, or several separated by spaces/commas" },
	{ "server", "data_dir", K_STR, OFF(data_dir), 1, CONFIG_PATH_MAX - 1, "/var/lib/mxgate",
	  "directory for the queue and the policy store" },
	{ "server", "workers", K_UINT, OFF(workers), 0, 64, "0",
	  "worker processes sharing the listeners (SO_REUSEPORT); 0 = one per core" },
	{ "server", "max_sessions", K_UINT, OFF(max_sessions), 1, 1000000, "2000",
	  "concurrent SMTP sessions in all workers; more get 421 4.7.0" },
	{ "server", "max_message_size", K_SIZE, OFF(max_message_size), 1024, 1ULL << 31, "25M",
	  "largest message accepted, announced in SIZE; larger get 552 5.3.4" },
	{ "server", "max_recipients", K_UINT, OFF(max_recipients), 1, 100000, "100",
	  "recipients per message; more get 452 4.5.3 (RFC 5321 asks for at least 100)" },
	{ "server", "max_errors", K_UINT, OFF(max_errors), 1, 1000, "10",
	  "syntax and protocol errors per session before 421 4.7.0 and close" },
	{ "server", "command_timeout", K_UINT, OFF(command_timeout), 1, 3600, "300",
	  "seconds for a whole command line to arrive (RFC 5321 4.5.3.2.7: 5 minutes); a client "
	  "trickling bytes gains nothing" },
	{ "server", "data_timeout", K_UINT, OFF(data_timeout), 1, 3600, "180",
	  "seconds allowed for each 64 KiB of message data (RFC 5321 4.5.3.2.5: 3 minutes)" },
	{ "server", "user", K_STR, OFF(user), 1, CONFIG_NAME_MAX - 1, "mxgate",
	  "serve started as root binds its ports, then runs as this user (root is refused)" },
	{ "server", "max_sessions_per_ip", K_UINT, OFF(max_sessions_per_ip), 0, 1000000, "50",
	  "concurrent sessions of one client address; more get 421 4.7.0; 0 = no limit" },
	{ "server", "max_connect_rate", K_UINT, OFF(max_connect_rate), 0, 1000000, "300",
	  "new connections per client address per minute; more get 421 4.7.0; 0 = no limit" },
	{ "server", "limit_exempt", K_CIDRS, OFF(limit_exempt), 0, 0, "127.0.0.0/8 ::1",
	  "clients the per-address limits do not apply to; the first line replaces the default" },
	{ "server", "limit_ipv6_prefix", K_UINT, OFF(limit_ipv6_prefix), 32, 128, "64",
	  "IPv6 clients are counted per prefix of this length (one host usually owns a /64)" },
	{ "server", "max_messages", K_UINT, OFF(max_messages), 1, 1000000, "1000",
	  "messages per session; MAIL after that gets 451 4.7.1" },
	{ "server", "max_session_bytes", K_SIZE, OFF(max_session_bytes), 1024, 1ULL << 40, "1G",
	  "bytes a client may send in one session; beyond that 421 4.7.0 before the next command" },
	{ "server", "max_junk_commands", K_UINT, OFF(max_junk_commands), 1, 100000, "100",
	  "NOOP, RSET, VRFY and HELP per session before 421 4.7.0" },
	{ "server", "greet_pause_ms", K_UINT, OFF(greet_pause_ms), 0, 30000, "0",
	  "send '220-' first and the rest of the greeting after this pause; a client that talks "
	  "in between is a pregreet client; 0 = greet at once" },
	{ "server", "pregreet_reject", K_BOOL, OFF(pregreet_reject), 0, 1, "yes",
	  "reject a client that talks before the greeting with 554 5.5.1 (no: only log it)" },
	{ "server", "tls_cert", K_STR, OFF(tls_cert), 1, CONFIG_PATH_MAX - 1, NULL,
	  "PEM certificate chain for STARTTLS; STARTTLS is offered only when set with tls_key" },
	{ "server", "tls_key", K_STR, OFF(tls_key), 1, CONFIG_PATH_MAX - 1, NULL,
	  "PEM private key for tls_cert" },
	{ "server", "tls_client_ca", K_STR, OFF(tls_client_ca), 1, CONFIG_PATH_MAX - 1, NULL,
	  "PEM CA certificates trusted for client certificates (besides the system store); "
	  "connectors match only names of a chain that verified" },
	{ "delivery", "retry_first", K_UINT, OFF(retry_first), 1, 86400, "300",
	  "seconds before the first retry of a deferred recipient; doubles per attempt" },
	{ "delivery", "retry_max", K_UINT, OFF(retry_max), 1, 86400, "3600",
	  "the longest wait between two attempts" },
	{ "delivery", "max_lifetime", K_UINT, OFF(max_lifetime), 1, 30 * 86400, "432000",
	  "seconds a message may stay queued before it fails with 4.4.7 (default 5 days)" },
	{ "delivery", "delay_warning", K_UINT, OFF(delay_warning), 0, 30 * 86400, "14400",
	  "seconds after which the sender gets one delay report (0 = never)" },
	{ "delivery", "concurrency", K_UINT, OFF(dest_concurrency), 1, 1000, "10",
	  "parallel connections to one destination (route or MX domain)" },
	{ "delivery", "mx_port", K_UINT, OFF(mx_port), 1, 65535, "25",
	  "port of the hosts found by MX lookup (25; tests point it elsewhere)" },
	{ "delivery", "connect_timeout", K_UINT, OFF(connect_timeout), 1, 600, "30",
	  "seconds to connect to one address and read its greeting" },
	{ "delivery", "smtp_timeout", K_UINT, OFF(smtp_timeout), 1, 3600, "300",
	  "seconds to wait for each reply (RFC 5321 4.5.3.2: 5 minutes)" },
	{ "delivery", "data_timeout", K_UINT, OFF(data_timeout_out), 1, 3600, "600",
	  "seconds to wait for the reply to the final dot (RFC 5321 4.5.3.2.6: 10 minutes)" },
	{ "server", "postmaster", K_STR, OFF(postmaster), 3, CONFIG_HOST_MAX - 1, NULL,
	  "address that RCPT TO:<postmaster> (no domain, RFC 5321 4.5.1) is delivered to; "
	  "default: postmaster of the host name, accepted only if a tenant serves it" },
	{ "delivery", "hold", K_BOOL, OFF(delivery_hold), 0, 1, "no",
	  "yes: accept and queue, deliver nothing (maintenance); `mxgate queue list` shows the queue" },
	{ "log", "syslog", K_BOOL, OFF(log_syslog), 0, 1, "no",
	  "log to syslog (facility mail) instead of stderr" },
	{ "log", "debug", K_BOOL, OFF(log_debug), 0, 1, "no", "log debug lines too" },
	{ "policy", "resolver", K_HOSTPORT, OFF(resolver), 0, 0, NULL,
	  "DNS resolver for DNSBL lookups as HOST:PORT; empty = the servers in /etc/resolv.conf" },
	{ "policy", "dnsbl_threshold", K_INT, OFF(dnsbl_threshold), 1, 1000, "1",
	  "a client whose summed DNSBL weights reach this is rejected" },
	{ "policy", "dnsbl_timeout_ms", K_UINT, OFF(dnsbl_timeout_ms), 10, 60000, "2000",
	  "how long a RCPT waits for DNSBL answers before deciding without them (fail open)" },
	{ "policy", "dnsbl_cache_min_ttl", K_UINT, OFF(dnsbl_cache_min_ttl), 0, 86400, "60",
	  "DNSBL answers are cached at least this many seconds" },
	{ "policy", "dnsbl_cache_max_ttl", K_UINT, OFF(dnsbl_cache_max_ttl), 1, 86400, "3600",
	  "and at most this many seconds, whatever their TTL" },
	{ "policy", "dnsbl_health_interval", K_UINT, OFF(dnsbl_health_interval), 0, 86400, "300",
	  "seconds between RFC 5782 health probes of each zone (0 = probe only at start)" },
	{ "policy", "reload_interval_ms", K_UINT, OFF(reload_interval_ms), 50, 60000, "500",
	  "how often workers look for policy changes in the store" },
	{ "policy", "probe_timeout_ms", K_UINT, OFF(probe_timeout_ms), 100, 60000, "3000",
	  "how long a RCPT waits for a recipient probe of the tenant's server (recipient check "
	  "probe); past it the reply is 451 4.4.3" },
};

#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

#define DOFF(f) offsetof(struct dnsbl_config, f)
#define DNSBL_SECTION "dnsbl "

/* Keys of a [dnsbl NAME] section; offsets are into struct dnsbl_config. */
static const struct key_def dnsbl_keys[] = {
	{ "dnsbl NAME", "zone", K_ZONE, DOFF(zone), 0, 0, NULL,
	  "DNS zone to query, e.g. zen.spamhaus.org (may contain an access key)" },
	{ "dnsbl NAME", "display_name", K_STR, DOFF(display_name), 1, CONFIG_HOST_MAX - 1, NULL,
	  "name shown in replies and logs (default: the section name)" },
	{ "dnsbl NAME", "display_zone", K_ZONE, DOFF(display_zone), 0, 0, NULL,
	  "zone shown instead of `zone`, for zones that contain a secret key" },
	{ "dnsbl NAME", "codes", K_CODES, DOFF(codes), 0, 0, "127.0.0.2-127.0.0.254",
	  "answers that count as listed: addresses or ranges in 127.0.0.0/8, comma separated" },
	{ "dnsbl NAME", "weight", K_INT, DOFF(weight), -1000, 1000, "1",
	  "score added when listed (-1000..1000); negative makes a DNS allow list" },
	{ "dnsbl NAME", "txt", K_BOOL, DOFF(fetch_txt), 0, 1, "no",
	  "fetch the TXT record and quote it in the reply" },
	{ "dnsbl NAME", "url", K_STR, DOFF(url), 1, CONFIG_HOST_MAX - 1, NULL,
	  "lookup URL for the reply; {ip} is replaced by the client address" },
	{ "dnsbl NAME", "ipv6", K_BOOL, DOFF(ipv6), 0, 1, "yes",
	  "query IPv6 clients too (nibble format)" },
};

#define NDNSBL_KEYS (sizeof(dnsbl_keys) / sizeof(dnsbl_keys[0]))

const char config_embedded_default[] =
	"# mxgate embedded default: loopback only, queue and policy store under ./var.\n"
	"[server]\n"
	"hostname = mxgate.localhost\n"
	"listen = 127.0.0.1:2525\n"
	"data_dir = ./var\n"
	"workers = 1\n"
	"tls_cert = ./var/tls/cert.pem\n"
	"tls_key = ./var/tls/key.pem\n";

struct parse_ctx {
	struct config *cfg;
	const char *file;
	unsigned line;
	int errors;
	char *err;
	size_t errsz, errlen;
	/* string-stream state for the embedded default */
	const char *str;
	FILE *fp;
};

static void perr(struct parse_ctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void perr(struct parse_ctx *p, const char *fmt, ...)
{
	va_list ap;
	int n;

	p->errors++;
	if (p->errlen + 1 >= p->errsz)
		return;
	if (p->line)
		n = snprintf(p->err + p->errlen, p->errsz - p->errlen, "%s:%u: ", p->file, p->line);
	else
		n = snprintf(p->err + p->errlen, p->errsz - p->errlen, "%s: ", p->file);
	if (n > 0 && (size_t)n < p->errsz - p->errlen)
		p->errlen += (size_t)n;
	va_start(ap, fmt);
	n = vsnprintf(p->err + p->errlen, p->errsz - p->errlen, fmt, ap);
	va_end(ap);
	if (n > 0 && (size_t)n < p->errsz - p->errlen)
		p->errlen += (size_t)n;
	if (p->errlen + 1 < p->errsz) {
		p->err[p->errlen++] = '\n';
		p->err[p->errlen] = '\0';
	}
}

static int set_listen(struct config *cfg, const char *v)
{
	char buf[CONFIG_HOST_MAX + 32];
	struct listen_spec *ls;

	if (cfg->nlisten >= CONFIG_MAX_LISTEN || strlen(v) >= sizeof(buf))
		return -1;
	strcpy(buf, v);
	char *save = NULL, *addr = strtok_r(buf, " \t", &save), *opt = strtok_r(NULL, " \t", &save);
	ls = &cfg->listen[cfg->nlisten];
	memset(ls, 0, sizeof(*ls));
	if (!addr || hostport_split(addr, ls->host, sizeof(ls->host), &ls->port) < 0)
		return -1;
	if (opt) {
		if (strcmp(opt, "proxy") != 0 || strtok_r(NULL, " \t", &save))
			return -1;
		ls->proxy = 1;
	}
	cfg->nlisten++;
	return 0;
}

static int set_cidrs(struct cidr_list *l, const char *v, int is_default)
{
	char buf[4096];
	char *save = NULL;

	if (strlen(v) >= sizeof(buf))
		return -1;
	strcpy(buf, v);
	if (l->is_default && !is_default)
		l->n = 0;
	l->is_default = is_default;
	for (char *t = strtok_r(buf, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		if (l->n >= CONFIG_MAX_CIDRS || cidr_parse(t, &l->v[l->n]) != ADDR_OK)
			return -1;
		l->n++;
	}
	return 0;
}

/* A domain as RFC 5321 allows it in an address: labels of letters, digits and hyphens. */
static int domain_valid(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		char c = d[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || d[i - 1] == '-')
				return 0;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			   (c == '-' && label > 0)) {
			label++;
		} else {
			return 0;
		}
	}
	return 1;
}

/* "127.0.0.2-127.0.0.11, 127.0.0.20": ranges of answers inside 127.0.0.0/8. */
static int set_codes(struct dnsbl_config *d, const char *v)
{
	char buf[1024];
	char *save = NULL;

	if (strlen(v) >= sizeof(buf))
		return -1;
	strcpy(buf, v);
	d->ncodes = 0;
	for (char *t = strtok_r(buf, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		char *dash = strchr(t, '-');
		struct ip_addr lo, hi;
		if (dash)
			*dash = '\0';
		if (d->ncodes >= CONFIG_MAX_DNSBL_CODES || ip_parse(t, &lo) < 0 ||
		    ip_parse(dash ? dash + 1 : t, &hi) < 0 || !ip_is_v4(&lo) || !ip_is_v4(&hi))
			return -1;
		uint32_t a = (uint32_t)lo.b[12] << 24 | (uint32_t)lo.b[13] << 16 | lo.b[14] << 8 | lo.b[15];
		uint32_t b = (uint32_t)hi.b[12] << 24 | (uint32_t)hi.b[13] << 16 | hi.b[14] << 8 | hi.b[15];
		if (lo.b[12] != 127 || hi.b[12] != 127 || a > b)
			return -1;
		d->codes[d->ncodes++] = (struct code_range){ a, b };
	}
	return d->ncodes ? 0 : -1;
}

static int set_number(void *field, const struct key_def *k, const char *v)
{
	uint64_t n;

	switch (k->type) {
	case K_UINT:
		if (str_to_u64(v, (uint64_t)k->min, (uint64_t)k->max, &n) < 0)
			return -1;
		*(unsigned *)field = (unsigned)n;
		return 0;
	case K_INT: {
		int neg = v[0] == '-';
		if (str_to_u64(v + neg, 0, 1000000, &n) < 0)
			return -1;
		int64_t x = neg ? -(int64_t)n : (int64_t)n;
		if (x < k->min || x > k->max)
			return -1;
		*(int *)field = (int)x;
		return 0;
	}
	case K_SIZE:
		if (str_to_size(v, (uint64_t)k->min, (uint64_t)k->max, &n) < 0)
			return -1;
		*(uint64_t *)field = n;
		return 0;
	default:
		return -1;
	}
}

/* Set while the table's defaults are applied: a list key's first value from a file replaces
 * its default instead of adding to it. */
static int applying_defaults;

/* Sets one key. base is the struct the key's offset points into: the config itself, or one
 * of its dnsbl entries. */
static int set_value(struct config *cfg, void *base, const struct key_def *k, const char *v)
{
	void *field = (char *)base + k->offset;

	switch (k->type) {
	case K_STR:
		if ((int64_t)strlen(v) < k->min || (int64_t)strlen(v) > k->max)
			return -1;
		strcpy((char *)field, v);
		return 0;
	case K_UINT:
	case K_INT:
	case K_SIZE:
		return set_number(field, k, v);
	case K_BOOL:
		if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
			*(int *)field = 1;
		else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
			*(int *)field = 0;
		else
			return -1;
		return 0;
	case K_LISTEN:
		return set_listen(cfg, v);
	case K_CIDRS:
		return set_cidrs(field, v, applying_defaults);
	case K_ZONE:
		if (!domain_valid(v))
			return -1;
		str_lower(strcpy((char *)field, v));
		return 0;
	case K_CODES:
		return set_codes(base, v);
	case K_HOSTPORT: {
		char host[CONFIG_HOST_MAX];
		uint16_t port;
		if (v[0] == '\0') {
			((char *)field)[0] = '\0';
			return 0;
		}
		if (strlen(v) >= CONFIG_HOST_MAX || hostport_split(v, host, sizeof(host), &port) < 0)
			return -1;
		strcpy((char *)field, v);
		return 0;
	}
	}
	return -1;
}

static const char *type_hint(enum key_type t)
{
	switch (t) {
	case K_STR: return "a string";
	case K_UINT: return "a whole number";
	case K_INT: return "a whole number";
	case K_ZONE: return "a DNS zone name";
	case K_CODES: return "127.x.y.z or ranges 127.0.0.2-127.0.0.11, comma separated";
	case K_SIZE: return "a size such as 25M";
	case K_BOOL: return "yes or no";
	case K_LISTEN: return "ADDR:PORT [proxy]";
	case K_CIDRS: return "IP or CIDR without host bits";
	case K_HOSTPORT: return "HOST:PORT";
	}
	return "?";
}

static const struct key_def *key_find(const struct key_def *table, size_t n, const char *section,
				      const char *name)
{
	for (size_t i = 0; i < n; i++)
		if ((!section || !strcmp(table[i].section, section)) && !strcmp(table[i].name, name))
			return &table[i];
	return NULL;
}

static void dnsbl_defaults(struct config *cfg, struct dnsbl_config *d)
{
	for (size_t i = 0; i < NDNSBL_KEYS; i++)
		if (dnsbl_keys[i].dflt && set_value(cfg, d, &dnsbl_keys[i], dnsbl_keys[i].dflt) < 0)
			abort(); /* a default outside its own bounds is a bug in the table */
}

/* The entry for [dnsbl NAME], created with defaults on first sight; NULL for a bad name. */
static struct dnsbl_config *dnsbl_section(struct config *cfg, const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= CONFIG_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyz"
						       "0123456789_-.") != len)
		return NULL;
	for (unsigned i = 0; i < cfg->ndnsbl; i++)
		if (!strcmp(cfg->dnsbl[i].name, name))
			return &cfg->dnsbl[i];
	if (cfg->ndnsbl >= CONFIG_MAX_DNSBL)
		return NULL;
	struct dnsbl_config *d = &cfg->dnsbl[cfg->ndnsbl++];
	memset(d, 0, sizeof(*d));
	strcpy(d->name, name);
	dnsbl_defaults(cfg, d);
	return d;
}

static int section_known(const char *section)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(config_keys[i].section, section))
			return 1;
	return 0;
}

static void report_bad_value(struct parse_ctx *p, const char *section, const struct key_def *k,
			     const char *value)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s.%s: expected %s", section, k->name, type_hint(k->type));
	if (k->type == K_UINT || k->type == K_SIZE || k->type == K_INT)
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), " in %lld..%lld",
			 (long long)k->min, (long long)k->max);
	perr(p, "bad value '%s' for %s", value, msg);
}

static int on_dnsbl_entry(struct parse_ctx *p, const char *section, const char *name,
			  const char *value)
{
	struct dnsbl_config *d = dnsbl_section(p->cfg, section + strlen(DNSBL_SECTION));
	const struct key_def *k = key_find(dnsbl_keys, NDNSBL_KEYS, NULL, name);

	if (!d)
		perr(p, "bad or too many [dnsbl NAME] sections: [%s] (names: a-z 0-9 _ - ., at most %d)",
		     section, CONFIG_MAX_DNSBL);
	else if (!k)
		perr(p, "unknown key '%s' in [%s]", name, section);
	else if (set_value(p->cfg, d, k, value) < 0)
		report_bad_value(p, section, k, value);
	return 1;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *p = user;
	const struct key_def *k;

	if (!strncmp(section, DNSBL_SECTION, strlen(DNSBL_SECTION)))
		return on_dnsbl_entry(p, section, name, value);
	if (section[0] == '\0')
		perr(p, "key '%s' outside any section", name);
	if (!section_known(section))
		return 1; /* a named one was reported once, at its section line */
	k = key_find(config_keys, NKEYS, section, name);
	if (!k)
		perr(p, "unknown key '%s' in [%s]", name, section);
	else if (set_value(p->cfg, p->cfg, k, value) < 0)
		report_bad_value(p, section, k, value);
	return 1;
}

/* A physical line longer than inih's buffer reaches us in pieces; the rest of it is consumed
 * here so that it can never be parsed as a line of its own. A long comment is fine; any other
 * long line is an error. */
static void skip_long_line(struct parse_ctx *p, char *buf, int size)
{
	int c;
	char *t = buf;

	while (*t == ' ' || *t == '\t')
		t++;
	if (*t != '#' && *t != ';')
		perr(p, "line longer than %d octets", size - 2);
	while ((c = fgetc(p->fp)) != EOF && c != '\n')
		;
	strcpy(buf, "\n");
}

/* inih keeps the section name in a buffer of its own (ini.c MAX_SECTION: 50 with the NUL) and
 * cuts a longer one silently: two [dnsbl NAME] sections that differ past it would merge. */
#define INI_SECTION_MAX 49

/* Sections are checked here because Debian's inih does not report a section without keys. */
static void check_section_line(struct parse_ctx *p, const char *buf)
{
	const char *t = buf, *close;
	char name[CONFIG_HOST_MAX];

	while (*t == ' ' || *t == '\t')
		t++;
	if (*t != '[' || !(close = strchr(t, ']')))
		return;
	if ((size_t)(close - t - 1) > INI_SECTION_MAX) {
		perr(p, "section name longer than %d octets", INI_SECTION_MAX);
		return;
	}
	memcpy(name, t + 1, (size_t)(close - t - 1));
	name[close - t - 1] = '\0';
	if (!section_known(name) && strncmp(name, DNSBL_SECTION, strlen(DNSBL_SECTION)) != 0)
		perr(p, "unknown section [%s]", name);
}

static char *read_line(char *buf, int size, void *stream)
{
	struct parse_ctx *p = stream;

	if (p->fp) {
		memset(buf, 0, (size_t)size); /* so that a NUL inside the line can be told apart */
		if (!fgets(buf, size, p->fp))
			return NULL;
		p->line++;
		const char *nl = memchr(buf, '\n', (size_t)size - 1);
		if (nl && nl > buf + strlen(buf)) {
			/* the line ends after a NUL: not a long line (that would eat the next one) */
			perr(p, "NUL byte in line");
			strcpy(buf, "\n");
		} else if (!nl && !feof(p->fp)) {
			skip_long_line(p, buf, size);
		}
		check_section_line(p, buf);
		return buf;
	} else {
		if (*p->str == '\0')
			return NULL;
		const char *nl = strchr(p->str, '\n');
		size_t len = nl ? (size_t)(nl - p->str + 1) : strlen(p->str);
		if (len >= (size_t)size)
			len = (size_t)size - 1;
		memcpy(buf, p->str, len);
		buf[len] = '\0';
		p->str += len;
	}
	p->line++;
	check_section_line(p, buf);
	return buf;
}

static void apply_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	applying_defaults = 1;
	for (size_t i = 0; i < NKEYS; i++)
		if (config_keys[i].dflt && set_value(cfg, cfg, &config_keys[i], config_keys[i].dflt) < 0)
			abort(); /* a default outside its own bounds is a bug in the table */
	applying_defaults = 0;
	if (gethostname(cfg->hostname, sizeof(cfg->hostname) - 1) < 0 || !cfg->hostname[0])
		strcpy(cfg->hostname, "localhost");
}

static void check_whole(struct parse_ctx *p)
{
	struct config *cfg = p->cfg;

	p->line = 0;
	str_lower(cfg->hostname); /* also the domain of <postmaster> */
	if (cfg->nlisten == 0)
		perr(p, "[server] needs at least one 'listen'");
	if (cfg->postmaster[0] && (!strchr(cfg->postmaster, '@') || strchr(cfg->postmaster, ' ')))
		perr(p, "postmaster must be an address user@domain");
	if (!!cfg->tls_cert[0] != !!cfg->tls_key[0])
		perr(p, "tls_cert and tls_key go together");
	for (unsigned i = 0; i < cfg->nlisten; i++)
		if (cfg->listen[i].proxy && cfg->proxy_from.n == 0)
			perr(p, "listen %s is marked proxy but proxy_from is empty", cfg->listen[i].host);
	for (unsigned i = 0; i < cfg->ndnsbl; i++) {
		struct dnsbl_config *d = &cfg->dnsbl[i];
		if (!d->zone[0])
			perr(p, "[dnsbl %s] needs a zone", d->name);
		if (d->weight == 0)
			perr(p, "[dnsbl %s] weight 0 would never count; remove the section instead", d->name);
		if (!d->display_name[0]) /* name is shorter than display_name */
			memcpy(d->display_name, d->name, strlen(d->name) + 1);
	}
	if (cfg->retry_first > cfg->retry_max)
		perr(p, "retry_first exceeds retry_max");
	if (cfg->dnsbl_cache_min_ttl > cfg->dnsbl_cache_max_ttl)
		perr(p, "dnsbl_cache_min_ttl exceeds dnsbl_cache_max_ttl");
}

int config_load(const char *path, struct config *cfg, char *errbuf, size_t errsz)
{
	struct parse_ctx p = { .cfg = cfg, .err = errbuf, .errsz = errsz };

	if (errsz)
		errbuf[0] = '\0';
	apply_defaults(cfg);
	if (path) {
		p.fp = fopen(path, "r");
		p.file = path;
		if (!p.fp) {
			snprintf(errbuf, errsz, "%s: cannot open: %m\n", path);
			return -1;
		}
		snprintf(cfg->source, sizeof(cfg->source), "%s", path);
	} else {
		p.str = config_embedded_default;
		p.file = "(embedded default)";
		snprintf(cfg->source, sizeof(cfg->source), "%s", p.file);
	}
	int rc = ini_parse_stream(read_line, &p, on_entry, &p);
	if (p.fp)
		fclose(p.fp);
	if (rc > 0) {
		p.line = (unsigned)rc;
		perr(&p, "syntax error (expected [section] or key = value)");
	} else if (rc < 0) {
		perr(&p, "cannot read the file");
	}
	if (p.errors == 0)
		check_whole(&p);
	return p.errors ? -1 : 0;
}

const char *config_find(const char *explicit_path)
{
	static const char *const candidates[] = { "./mxgate.conf", "/etc/mxgate/mxgate.conf" };
	const char *env = getenv("MXGATE_CONFIG");

	if (explicit_path)
		return explicit_path;
	if (env && *env)
		return env;
	for (size_t i = 0; i < 2; i++)
		if (access(candidates[i], F_OK) == 0)
			return candidates[i];
	return NULL;
}

static void dump_table(FILE *out, const struct key_def *t, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s.%s\t%s\t%s\n", t[i].section, t[i].name, t[i].dflt ? t[i].dflt : "",
			t[i].help);
}

void config_dump_keys(FILE *out)
{
	dump_table(out, config_keys, NKEYS);
	dump_table(out, dnsbl_keys, NDNSBL_KEYS);
}
