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

enum key_type { K_STR, K_UINT, K_SIZE, K_BOOL, K_LISTEN, K_CIDRS, K_DOMAIN, K_HOSTPORT };

struct key_def {
	const char *section;
	const char *name;
	enum key_type type;
	size_t offset;
	uint64_t min, max;
	const char *dflt; /* parsed like a file value; NULL = empty / zero */
	const char *help;
};

#define OFF(f) offsetof(struct config, f)
#define U32 4294967295ULL

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
	  "seconds to wait for a command (RFC 5321 4.5.3.2.7: 5 minutes)" },
	{ "server", "data_timeout", K_UINT, OFF(data_timeout), 1, 3600, "180",
	  "seconds to wait for each block of DATA (RFC 5321 4.5.3.2.5: 3 minutes)" },
	{ "server", "tls_cert", K_STR, OFF(tls_cert), 1, CONFIG_PATH_MAX - 1, NULL,
	  "PEM certificate chain for STARTTLS; STARTTLS is offered only when set with tls_key" },
	{ "server", "tls_key", K_STR, OFF(tls_key), 1, CONFIG_PATH_MAX - 1, NULL,
	  "PEM private key for tls_cert" },
	{ "log", "syslog", K_BOOL, OFF(log_syslog), 0, 1, "no",
	  "log to syslog (facility mail) instead of stderr" },
	{ "log", "debug", K_BOOL, OFF(log_debug), 0, 1, "no", "log debug lines too" },
	{ "accept", "domain", K_DOMAIN, OFF(accept_domains), 0, 0, NULL,
	  "interim: a domain whose recipients are accepted (repeatable) until tenants exist" },
	{ "accept", "route", K_HOSTPORT, OFF(accept_route), 0, 0, NULL,
	  "interim: HOST:PORT that accepted mail is routed to (recorded in the queue file)" },
};

#define NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

const char config_embedded_default[] =
	"# mxgate embedded default: loopback only, queue under ./var, one demo domain.\n"
	"[server]\n"
	"hostname = mxgate.localhost\n"
	"listen = 127.0.0.1:2525\n"
	"data_dir = ./var\n"
	"workers = 1\n"
	"tls_cert = ./var/tls/cert.pem\n"
	"tls_key = ./var/tls/key.pem\n"
	"[accept]\n"
	"domain = example.test\n"
	"route = 127.0.0.1:2600\n";

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

static int set_cidrs(struct config *cfg, const char *v)
{
	char buf[4096];
	char *save = NULL;

	if (strlen(v) >= sizeof(buf))
		return -1;
	strcpy(buf, v);
	for (char *t = strtok_r(buf, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
		if (cfg->nproxy_from >= CONFIG_MAX_PROXY_FROM ||
		    cidr_parse(t, &cfg->proxy_from[cfg->nproxy_from]) != ADDR_OK)
			return -1;
		cfg->nproxy_from++;
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

static int set_value(struct config *cfg, const struct key_def *k, const char *v)
{
	void *field = (char *)cfg + k->offset;
	uint64_t n;

	switch (k->type) {
	case K_STR:
		if (strlen(v) < k->min || strlen(v) > k->max)
			return -1;
		strcpy((char *)field, v);
		return 0;
	case K_UINT:
		if (str_to_u64(v, k->min, k->max, &n) < 0)
			return -1;
		*(unsigned *)field = (unsigned)n;
		return 0;
	case K_SIZE:
		if (str_to_size(v, k->min, k->max, &n) < 0)
			return -1;
		*(uint64_t *)field = n;
		return 0;
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
		return set_cidrs(cfg, v);
	case K_DOMAIN:
		if (!domain_valid(v) || cfg->naccept_domains >= CONFIG_MAX_ACCEPT_DOMAINS)
			return -1;
		str_lower(strcpy(cfg->accept_domains[cfg->naccept_domains++], v));
		return 0;
	case K_HOSTPORT: {
		char host[CONFIG_HOST_MAX];
		uint16_t port;
		if (hostport_split(v, host, sizeof(host), &port) < 0 || strlen(v) >= CONFIG_HOST_MAX)
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
	case K_SIZE: return "a size such as 25M";
	case K_BOOL: return "yes or no";
	case K_LISTEN: return "ADDR:PORT [proxy]";
	case K_CIDRS: return "IP or CIDR without host bits";
	case K_DOMAIN: return "a domain name";
	case K_HOSTPORT: return "HOST:PORT";
	}
	return "?";
}

static const struct key_def *key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(config_keys[i].section, section) && !strcmp(config_keys[i].name, name))
			return &config_keys[i];
	return NULL;
}

static int section_known(const char *section)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(config_keys[i].section, section))
			return 1;
	return 0;
}

static int on_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_ctx *p = user;
	const struct key_def *k;
	char msg[256];

	if (name == NULL) { /* inih reports each new section with name == NULL when enabled */
		if (!section_known(section))
			perr(p, "unknown section [%s]", section);
		return 1;
	}
	if (!section_known(section)) {
		perr(p, "key '%s' in unknown section [%s]", name, section);
		return 1;
	}
	k = key_find(section, name);
	if (!k) {
		perr(p, "unknown key '%s' in [%s]", name, section);
		return 1;
	}
	if (set_value(p->cfg, k, value) < 0) {
		snprintf(msg, sizeof(msg), "%s.%s: expected %s", section, name, type_hint(k->type));
		if (k->type == K_UINT || k->type == K_SIZE)
			snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), " in %llu..%llu",
				 (unsigned long long)k->min, (unsigned long long)k->max);
		perr(p, "bad value '%s' for %s", value, msg);
	}
	return 1;
}

static char *read_line(char *buf, int size, void *stream)
{
	struct parse_ctx *p = stream;

	if (p->fp) {
		if (!fgets(buf, size, p->fp))
			return NULL;
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
	return buf;
}

static void apply_defaults(struct config *cfg)
{
	struct parse_ctx dummy = { .cfg = cfg };

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NKEYS; i++)
		if (config_keys[i].dflt && set_value(cfg, &config_keys[i], config_keys[i].dflt) < 0)
			abort(); /* a default outside its own bounds is a bug in the table */
	if (gethostname(cfg->hostname, sizeof(cfg->hostname) - 1) < 0 || !cfg->hostname[0])
		strcpy(cfg->hostname, "localhost");
	(void)dummy;
}

static void check_whole(struct parse_ctx *p)
{
	struct config *cfg = p->cfg;

	p->line = 0;
	if (cfg->nlisten == 0)
		perr(p, "[server] needs at least one 'listen'");
	if (!!cfg->tls_cert[0] != !!cfg->tls_key[0])
		perr(p, "tls_cert and tls_key go together");
	for (unsigned i = 0; i < cfg->nlisten; i++)
		if (cfg->listen[i].proxy && cfg->nproxy_from == 0)
			perr(p, "listen %s is marked proxy but proxy_from is empty", cfg->listen[i].host);
	if (cfg->naccept_domains > 0 && !cfg->accept_route[0])
		perr(p, "[accept] domains need a route = HOST:PORT");
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

void config_dump_keys(FILE *out)
{
	for (size_t i = 0; i < NKEYS; i++)
		fprintf(out, "%s.%s\t%s\t%s\n", config_keys[i].section, config_keys[i].name,
			config_keys[i].dflt ? config_keys[i].dflt : "", config_keys[i].help);
}
