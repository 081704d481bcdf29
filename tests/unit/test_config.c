/* Unit tests for config: defaults from the key table, every key set from a file, bad values,
 * unknown keys and sections reported as "FILE:LINE: ...", the whole-config checks, the
 * embedded default, and etc/mxgate.conf.example kept in step with config_dump_keys.
 *
 * Each case writes a temporary file (mkstemp in /tmp), loads it and removes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ERRSZ CONFIG_ERRORS_MAX
#define LISTEN "[server]\nlisten = 127.0.0.1:25\n"

#ifndef MXG_SOURCE_ROOT
#define MXG_SOURCE_ROOT "."
#endif

/* The config is large; each test gets a fresh heap copy. */
struct fixture {
	struct config *cfg;
	char err[ERRSZ];
	char path[64];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->cfg = calloc(1, sizeof(*f->cfg));
	if (!f->cfg) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	free(f->cfg);
	free(f);
	return 0;
}

/* Writes text to a new temporary file, loads it, removes it. f->path keeps the name for the
 * expected error texts. */
static int load_text(struct fixture *f, const char *text)
{
	int fd, rc;
	size_t len = strlen(text);

	snprintf(f->path, sizeof(f->path), "/tmp/mxg-test-config-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	memset(f->err, 'Z', sizeof(f->err));
	rc = config_load(f->path, f->cfg, f->err, sizeof(f->err));
	assert_int_equal(unlink(f->path), 0);
	/* The error text is always a string. */
	assert_non_null(memchr(f->err, '\0', sizeof(f->err)));
	return rc;
}

/* load_text with a length: the text may hold NUL bytes. */
static int load_bytes(struct fixture *f, const char *text, size_t len)
{
	int fd, rc;

	snprintf(f->path, sizeof(f->path), "/tmp/mxg-test-config-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	rc = config_load(f->path, f->cfg, f->err, sizeof(f->err));
	assert_int_equal(unlink(f->path), 0);
	return rc;
}

static void load_ok(struct fixture *f, const char *text)
{
	if (load_text(f, text) != 0)
		fail_msg("config refused:\n%s\nerrors:\n%s", text, f->err);
	assert_string_equal(f->err, "");
}

/* Expects a failed load whose error text is exactly "PATH:LINE: msg\n" (line 0: "PATH: "). */
static void load_fails_with(struct fixture *f, const char *text, unsigned line, const char *msg)
{
	char want[1024];

	if (load_text(f, text) != -1)
		fail_msg("config accepted:\n%s", text);
	if (line)
		snprintf(want, sizeof(want), "%s:%u: %s\n", f->path, line, msg);
	else
		snprintf(want, sizeof(want), "%s: %s\n", f->path, msg);
	if (strcmp(f->err, want) != 0)
		fail_msg("config:\n%s\nerrors:\n%s\nwant:\n%s", text, f->err, want);
}

/* ---- defaults ---------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct fixture *f = *state;
	struct config *c = f->cfg;
	char host[CONFIG_HOST_MAX] = "";

	load_ok(f, LISTEN);
	assert_string_equal(c->source, f->path);
	assert_int_equal(c->nlisten, 1);
	assert_int_equal(c->workers, 0);
	assert_int_equal(c->max_sessions, 2000);
	assert_int_equal(c->max_message_size, 26214400);
	assert_int_equal(c->max_recipients, 100);
	assert_int_equal(c->max_errors, 10);
	assert_int_equal(c->command_timeout, 300);
	assert_int_equal(c->data_timeout, 180);
	assert_string_equal(c->data_dir, "/var/lib/mxgate");
	assert_string_equal(c->tls_cert, "");
	assert_string_equal(c->tls_key, "");
	assert_string_equal(c->tls_client_ca, "");
	assert_int_equal(c->log_syslog, 0);
	assert_int_equal(c->log_debug, 0);
	assert_int_equal(c->proxy_from.n, 0);
	assert_string_equal(c->user, "mxgate");
	assert_int_equal(c->max_sessions_per_ip, 50);
	assert_int_equal(c->max_connect_rate, 300);
	assert_int_equal(c->limit_exempt.n, 2);
	assert_int_equal(c->limit_ipv6_prefix, 64);
	assert_int_equal(c->max_messages, 1000);
	assert_int_equal(c->max_session_bytes, 1ULL << 30);
	assert_int_equal(c->max_junk_commands, 100);
	assert_int_equal(c->greet_pause_ms, 0);
	assert_int_equal(c->pregreet_reject, 1);
	assert_string_equal(c->resolver, "");
	assert_int_equal(c->dnsbl_threshold, 1);
	assert_int_equal(c->dnsbl_timeout_ms, 2000);
	assert_int_equal(c->dnsbl_cache_min_ttl, 60);
	assert_int_equal(c->dnsbl_cache_max_ttl, 3600);
	assert_int_equal(c->dnsbl_health_interval, 300);
	assert_int_equal(c->reload_interval_ms, 500);
	assert_int_equal(c->probe_timeout_ms, 3000);
	assert_int_equal(c->ndnsbl, 0);
	assert_int_equal(c->retry_first, 300);
	assert_int_equal(c->retry_max, 3600);
	assert_int_equal(c->max_lifetime, 432000);
	assert_int_equal(c->delay_warning, 14400);
	assert_int_equal(c->dest_concurrency, 10);
	assert_int_equal(c->mx_port, 25);
	assert_int_equal(c->connect_timeout, 30);
	assert_int_equal(c->smtp_timeout, 300);
	assert_int_equal(c->data_timeout_out, 600);
	/* hostname defaults to the system's host name, lower-cased. */
	if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
		strcpy(host, "localhost");
	for (char *p = host; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	assert_string_equal(c->hostname, host);
}

/* A file that sets something does not inherit anything from an earlier load. */
static void test_reload_starts_from_defaults(void **state)
{
	struct fixture *f = *state;

	load_ok(f, LISTEN "listen = 127.0.0.2:25\nworkers = 9\nproxy_from = 10.0.0.0/8\n"
		       "[policy]\nresolver = 127.0.0.1:53\n[dnsbl a]\nzone = a.example\n");
	assert_int_equal(f->cfg->nlisten, 2);
	assert_int_equal(f->cfg->ndnsbl, 1);
	load_ok(f, LISTEN);
	assert_int_equal(f->cfg->nlisten, 1);
	assert_int_equal(f->cfg->workers, 0);
	assert_int_equal(f->cfg->proxy_from.n, 0);
	assert_string_equal(f->cfg->resolver, "");
	assert_int_equal(f->cfg->ndnsbl, 0);
}

/* ---- every key settable ------------------------------------------------------------------ */

enum vt { V_STR, V_UINT, V_U64, V_INT };

struct set_case {
	const char *section, *key, *value;
	const char *extra; /* more lines for the same section, or NULL */
	enum vt type;
	size_t off;
	const char *s;
	uint64_t n;
};

#define CF(field) offsetof(struct config, field)
#define S(sec, key, val, field, want) { sec, key, val, NULL, V_STR, CF(field), want, 0 }
#define U(sec, key, val, field, want) { sec, key, val, NULL, V_UINT, CF(field), NULL, want }
#define Z(sec, key, val, field, want) { sec, key, val, NULL, V_U64, CF(field), NULL, want }
#define B(sec, key, val, field, want) { sec, key, val, NULL, V_INT, CF(field), NULL, want }

static const struct set_case set_cases[] = {
	S("server", "hostname", "mx.example.net", hostname, "mx.example.net"),
	/* Lower-cased: it is also the domain of <postmaster>. */
	S("server", "hostname", "MX.Example.NET", hostname, "mx.example.net"),
	S("server", "data_dir", "/srv/mxgate", data_dir, "/srv/mxgate"),
	S("server", "data_dir", "./var", data_dir, "./var"),
	U("server", "workers", "8", workers, 8),
	U("server", "workers", "0", workers, 0),
	U("server", "workers", "64", workers, 64),
	U("server", "max_sessions", "1", max_sessions, 1),
	U("server", "max_sessions", "1000000", max_sessions, 1000000),
	Z("server", "max_message_size", "10K", max_message_size, 10240),
	Z("server", "max_message_size", "10k", max_message_size, 10240),
	Z("server", "max_message_size", "2M", max_message_size, 2097152),
	Z("server", "max_message_size", "2m", max_message_size, 2097152),
	Z("server", "max_message_size", "1G", max_message_size, 1073741824),
	Z("server", "max_message_size", "2g", max_message_size, 2147483648ULL),
	Z("server", "max_message_size", "2048M", max_message_size, 2147483648ULL),
	Z("server", "max_message_size", "1024", max_message_size, 1024),
	Z("server", "max_message_size", "1k", max_message_size, 1024),
	Z("server", "max_message_size", "26214400", max_message_size, 26214400),
	Z("server", "max_message_size", "2147483648", max_message_size, 2147483648ULL),
	U("server", "max_recipients", "1", max_recipients, 1),
	U("server", "max_recipients", "1000", max_recipients, 1000),
	U("server", "max_recipients", "100000", max_recipients, 100000),
	U("server", "max_errors", "1", max_errors, 1),
	U("server", "max_errors", "1000", max_errors, 1000),
	U("server", "command_timeout", "1", command_timeout, 1),
	U("server", "command_timeout", "3600", command_timeout, 3600),
	U("server", "data_timeout", "1", data_timeout, 1),
	U("server", "data_timeout", "600", data_timeout, 600),
	U("server", "data_timeout", "3600", data_timeout, 3600),
	{ "server", "tls_cert", "/etc/mxgate/cert.pem", "tls_key = /etc/mxgate/key.pem\n", V_STR,
	  CF(tls_cert), "/etc/mxgate/cert.pem", 0 },
	{ "server", "tls_key", "/etc/mxgate/key.pem", "tls_cert = /etc/mxgate/cert.pem\n", V_STR,
	  CF(tls_key), "/etc/mxgate/key.pem", 0 },
	S("server", "tls_client_ca", "/etc/mxgate/clients.pem", tls_client_ca,
	  "/etc/mxgate/clients.pem"),
	B("log", "syslog", "yes", log_syslog, 1),
	B("log", "syslog", "true", log_syslog, 1),
	B("log", "syslog", "1", log_syslog, 1),
	B("log", "syslog", "no", log_syslog, 0),
	B("log", "syslog", "false", log_syslog, 0),
	B("log", "syslog", "0", log_syslog, 0),
	B("log", "debug", "yes", log_debug, 1),
	B("log", "debug", "true", log_debug, 1),
	B("log", "debug", "1", log_debug, 1),
	B("log", "debug", "no", log_debug, 0),
	B("log", "debug", "false", log_debug, 0),
	B("log", "debug", "0", log_debug, 0),
	S("policy", "resolver", "127.0.0.1:53", resolver, "127.0.0.1:53"),
	S("policy", "resolver", "[::1]:5353", resolver, "[::1]:5353"),
	S("policy", "resolver", "", resolver, ""),
	B("policy", "dnsbl_threshold", "1", dnsbl_threshold, 1),
	B("policy", "dnsbl_threshold", "1000", dnsbl_threshold, 1000),
	U("policy", "dnsbl_timeout_ms", "10", dnsbl_timeout_ms, 10),
	U("policy", "dnsbl_timeout_ms", "60000", dnsbl_timeout_ms, 60000),
	U("policy", "dnsbl_cache_min_ttl", "0", dnsbl_cache_min_ttl, 0),
	U("policy", "dnsbl_cache_min_ttl", "3600", dnsbl_cache_min_ttl, 3600),
	{ "policy", "dnsbl_cache_max_ttl", "86400", "dnsbl_cache_min_ttl = 86400\n", V_UINT,
	  CF(dnsbl_cache_max_ttl), NULL, 86400 },
	{ "policy", "dnsbl_cache_max_ttl", "1", "dnsbl_cache_min_ttl = 0\n", V_UINT,
	  CF(dnsbl_cache_max_ttl), NULL, 1 },
	U("policy", "dnsbl_health_interval", "0", dnsbl_health_interval, 0),
	U("policy", "dnsbl_health_interval", "86400", dnsbl_health_interval, 86400),
	U("policy", "reload_interval_ms", "50", reload_interval_ms, 50),
	U("policy", "reload_interval_ms", "60000", reload_interval_ms, 60000),
	U("policy", "probe_timeout_ms", "100", probe_timeout_ms, 100),
	U("policy", "probe_timeout_ms", "60000", probe_timeout_ms, 60000),
	S("server", "postmaster", "pm@example.test", postmaster, "pm@example.test"),
	S("server", "user", "_mxgate", user, "_mxgate"),
	U("server", "max_sessions_per_ip", "0", max_sessions_per_ip, 0),
	U("server", "max_sessions_per_ip", "10", max_sessions_per_ip, 10),
	U("server", "max_connect_rate", "0", max_connect_rate, 0),
	U("server", "max_connect_rate", "1000000", max_connect_rate, 1000000),
	U("server", "limit_ipv6_prefix", "128", limit_ipv6_prefix, 128),
	U("server", "limit_ipv6_prefix", "32", limit_ipv6_prefix, 32),
	U("server", "max_messages", "1", max_messages, 1),
	Z("server", "max_session_bytes", "100M", max_session_bytes, 104857600),
	U("server", "max_junk_commands", "5", max_junk_commands, 5),
	U("server", "greet_pause_ms", "6000", greet_pause_ms, 6000),
	B("server", "pregreet_reject", "no", pregreet_reject, 0),
	B("delivery", "hold", "yes", delivery_hold, 1),
	U("delivery", "retry_first", "1", retry_first, 1),
	U("delivery", "retry_max", "86400", retry_max, 86400),
	U("delivery", "max_lifetime", "2592000", max_lifetime, 2592000),
	U("delivery", "delay_warning", "0", delay_warning, 0),
	U("delivery", "concurrency", "1000", dest_concurrency, 1000),
	U("delivery", "mx_port", "2525", mx_port, 2525),
	U("delivery", "connect_timeout", "600", connect_timeout, 600),
	U("delivery", "smtp_timeout", "1", smtp_timeout, 1),
	U("delivery", "data_timeout", "3600", data_timeout_out, 3600),
};

static void test_every_key_settable(void **state)
{
	struct fixture *f = *state;
	char text[1024];

	for (size_t i = 0; i < ARRAY_LEN(set_cases); i++) {
		const struct set_case *c = &set_cases[i];
		const char *field = (const char *)f->cfg + c->off;

		snprintf(text, sizeof(text), LISTEN "[%s]\n%s = %s\n%s", c->section, c->key, c->value,
			 c->extra ? c->extra : "");
		load_ok(f, text);
		switch (c->type) {
		case V_STR:
			if (strcmp(field, c->s) != 0)
				fail_msg("%s.%s = %s: got \"%s\", want \"%s\"", c->section, c->key,
					 c->value, field, c->s);
			break;
		case V_UINT:
			if (*(const unsigned *)(const void *)field != c->n)
				fail_msg("%s.%s = %s: got %u, want %llu", c->section, c->key, c->value,
					 *(const unsigned *)(const void *)field, (unsigned long long)c->n);
			break;
		case V_U64:
			if (*(const uint64_t *)(const void *)field != c->n)
				fail_msg("%s.%s = %s: got %llu, want %llu", c->section, c->key, c->value,
					 (unsigned long long)*(const uint64_t *)(const void *)field,
					 (unsigned long long)c->n);
			break;
		case V_INT:
			if ((uint64_t)*(const int *)(const void *)field != c->n)
				fail_msg("%s.%s = %s: got %d, want %llu", c->section, c->key, c->value,
					 *(const int *)(const void *)field, (unsigned long long)c->n);
			break;
		}
	}
}

/* White space around '=' and ';' comments are the INI syntax, not part of values. */
static void test_ini_syntax(void **state)
{
	struct fixture *f = *state;

	load_ok(f, "# comment\n; comment\n\n[server]\n  listen=127.0.0.1:25  \n"
		   "workers\t=\t3 ; three\nmax_errors : 7\n");
	assert_int_equal(f->cfg->workers, 3);
	assert_int_equal(f->cfg->max_errors, 7);
	assert_int_equal(f->cfg->nlisten, 1);
	assert_string_equal(f->cfg->listen[0].host, "127.0.0.1");
	/* The last value of a scalar key wins. */
	load_ok(f, LISTEN "workers = 1\nworkers = 2\n");
	assert_int_equal(f->cfg->workers, 2);
}

/* ---- bad values -------------------------------------------------------------------------- */

struct bad_case {
	const char *section, *key, *value;
	const char *hint;
};

#define H_UINT(lo, hi) "a whole number in " #lo ".." #hi
#define H_SIZE "a size such as 25M in 1024..2147483648"
#define H_BOOL "yes or no"
#define H_LISTEN "ADDR:PORT [proxy]"
#define H_CIDRS "IP or CIDR without host bits"
#define H_ZONE "a DNS zone name"
#define H_CODES "127.x.y.z or ranges 127.0.0.2-127.0.0.11, comma separated"
#define H_HOSTPORT "HOST:PORT"
#define H_STR "a string"

static const struct bad_case bad_cases[] = {
	{ "server", "workers", "65", H_UINT(0, 64) },
	{ "server", "workers", "-1", H_UINT(0, 64) },
	{ "server", "workers", "", H_UINT(0, 64) },
	{ "server", "workers", "1.5", H_UINT(0, 64) },
	{ "server", "workers", "0x10", H_UINT(0, 64) },
	{ "server", "workers", "+4", H_UINT(0, 64) },
	{ "server", "workers", "4 cores", H_UINT(0, 64) },
	{ "server", "workers", "99999999999999999999999", H_UINT(0, 64) },
	{ "server", "max_sessions", "0", H_UINT(1, 1000000) },
	{ "server", "max_sessions", "1000001", H_UINT(1, 1000000) },
	{ "server", "max_message_size", "1023", H_SIZE },
	{ "server", "max_message_size", "0", H_SIZE },
	{ "server", "max_message_size", "3G", H_SIZE },
	{ "server", "max_message_size", "2049M", H_SIZE },
	{ "server", "max_message_size", "2147483649", H_SIZE },
	{ "server", "max_message_size", "25MB", H_SIZE },
	{ "server", "max_message_size", "1T", H_SIZE },
	{ "server", "max_message_size", "M", H_SIZE },
	{ "server", "max_message_size", "-1M", H_SIZE },
	{ "server", "max_message_size", "10 K", H_SIZE },
	{ "server", "max_message_size", "17179869184G", H_SIZE },
	{ "server", "max_message_size", "", H_SIZE },
	{ "server", "max_recipients", "0", H_UINT(1, 100000) },
	{ "server", "max_recipients", "100001", H_UINT(1, 100000) },
	{ "server", "max_errors", "0", H_UINT(1, 1000) },
	{ "server", "max_errors", "1001", H_UINT(1, 1000) },
	{ "server", "command_timeout", "0", H_UINT(1, 3600) },
	{ "server", "command_timeout", "3601", H_UINT(1, 3600) },
	{ "server", "command_timeout", "5m", H_UINT(1, 3600) },
	{ "server", "data_timeout", "0", H_UINT(1, 3600) },
	{ "server", "data_timeout", "3601", H_UINT(1, 3600) },
	{ "server", "hostname", "", H_STR },
	{ "server", "data_dir", "", H_STR },
	{ "server", "tls_cert", "", H_STR },
	{ "log", "syslog", "Yes", H_BOOL },
	{ "log", "syslog", "on", H_BOOL },
	{ "log", "syslog", "2", H_BOOL },
	{ "log", "syslog", "TRUE", H_BOOL },
	{ "log", "syslog", "", H_BOOL },
	{ "log", "debug", "enable", H_BOOL },
	{ "server", "listen", "127.0.0.1", H_LISTEN },
	{ "server", "listen", "127.0.0.1:0", H_LISTEN },
	{ "server", "listen", "127.0.0.1:65536", H_LISTEN },
	{ "server", "listen", "::1:25", H_LISTEN },
	{ "server", "listen", ":25", H_LISTEN },
	{ "server", "listen", "127.0.0.1:smtp", H_LISTEN },
	{ "server", "listen", "127.0.0.1:25 proxyx", H_LISTEN },
	{ "server", "listen", "127.0.0.1:25 PROXY", H_LISTEN },
	{ "server", "listen", "127.0.0.1:25 proxy extra", H_LISTEN },
	{ "server", "listen", "", H_LISTEN },
	{ "server", "proxy_from", "10.0.0.1/8", H_CIDRS },
	{ "server", "proxy_from", "192.0.2.0/24, 10.0.0.1/8", H_CIDRS },
	{ "server", "proxy_from", "2001:db8::1/32", H_CIDRS },
	{ "server", "proxy_from", "10.0.0.0/33", H_CIDRS },
	{ "server", "proxy_from", "bogus", H_CIDRS },
	{ "server", "proxy_from", "10.0.0.0/8;192.0.2.0/24", H_CIDRS },
	{ "server", "tls_client_ca", "", H_STR },
	{ "server", "user", "", H_STR },
	{ "server", "limit_ipv6_prefix", "31", H_UINT(32, 128) },
	{ "server", "limit_ipv6_prefix", "129", H_UINT(32, 128) },
	{ "server", "max_messages", "0", H_UINT(1, 1000000) },
	{ "server", "greet_pause_ms", "30001", H_UINT(0, 30000) },
	{ "server", "limit_exempt", "10.0.0.1/8", H_CIDRS },
	{ "policy", "resolver", "127.0.0.1", H_HOSTPORT },
	{ "policy", "resolver", "::1:53", H_HOSTPORT },
	{ "policy", "resolver", "127.0.0.1:0", H_HOSTPORT },
	{ "policy", "dnsbl_threshold", "0", H_UINT(1, 1000) },
	{ "policy", "dnsbl_threshold", "1001", H_UINT(1, 1000) },
	{ "policy", "dnsbl_threshold", "-1", H_UINT(1, 1000) },
	{ "policy", "dnsbl_threshold", "1.5", H_UINT(1, 1000) },
	{ "policy", "dnsbl_timeout_ms", "9", H_UINT(10, 60000) },
	{ "policy", "dnsbl_timeout_ms", "60001", H_UINT(10, 60000) },
	{ "policy", "dnsbl_cache_min_ttl", "86401", H_UINT(0, 86400) },
	{ "policy", "dnsbl_cache_max_ttl", "0", H_UINT(1, 86400) },
	{ "policy", "dnsbl_health_interval", "86401", H_UINT(0, 86400) },
	{ "policy", "reload_interval_ms", "49", H_UINT(50, 60000) },
	{ "policy", "reload_interval_ms", "60001", H_UINT(50, 60000) },
	{ "policy", "probe_timeout_ms", "99", H_UINT(100, 60000) },
	{ "policy", "probe_timeout_ms", "60001", H_UINT(100, 60000) },
	{ "policy", "probe_timeout_ms", "3s", H_UINT(100, 60000) },
	{ "delivery", "retry_first", "0", H_UINT(1, 86400) },
	{ "delivery", "mx_port", "65536", H_UINT(1, 65535) },
	{ "delivery", "concurrency", "0", H_UINT(1, 1000) },
};

static void test_bad_values(void **state)
{
	struct fixture *f = *state;
	char text[1024], msg[512];

	for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];

		/* The bad line is line 5. */
		snprintf(text, sizeof(text), LISTEN "# the next line is wrong\n[%s]\n%s = %s\n",
			 c->section, c->key, c->value);
		snprintf(msg, sizeof(msg), "bad value '%s' for %s.%s: expected %s", c->value,
			 c->section, c->key, c->hint);
		load_fails_with(f, text, 5, msg);
	}
}

/* ---- listen and proxy_from --------------------------------------------------------------- */

static void test_listen(void **state)
{
	struct fixture *f = *state;
	const struct config *c = f->cfg;

	load_ok(f, LISTEN);
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].host, "127.0.0.1");
	assert_int_equal(c->listen[0].port, 25);
	assert_int_equal(c->listen[0].proxy, 0);

	load_ok(f, "[server]\nproxy_from = 127.0.0.1\nlisten = [::1]:25 proxy\n"
		   "listen = 0.0.0.0:2525\nlisten = [2001:db8::1]:587\tproxy\n"
		   "listen = mx.example:65535\n");
	assert_int_equal(c->nlisten, 4);
	assert_string_equal(c->listen[0].host, "::1");
	assert_int_equal(c->listen[0].port, 25);
	assert_int_equal(c->listen[0].proxy, 1);
	assert_string_equal(c->listen[1].host, "0.0.0.0");
	assert_int_equal(c->listen[1].port, 2525);
	assert_int_equal(c->listen[1].proxy, 0);
	assert_string_equal(c->listen[2].host, "2001:db8::1");
	assert_int_equal(c->listen[2].port, 587);
	assert_int_equal(c->listen[2].proxy, 1);
	assert_string_equal(c->listen[3].host, "mx.example");
	assert_int_equal(c->listen[3].port, 65535);
}

/* CONFIG_MAX_LISTEN listeners fit; one more is an error on its line. */
static void test_listen_limit(void **state)
{
	struct fixture *f = *state;
	char text[4096];
	size_t n = 0;

	n += (size_t)snprintf(text + n, sizeof(text) - n, "[server]\n");
	for (int i = 0; i < CONFIG_MAX_LISTEN; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "listen = 127.0.0.1:%d\n", 1000 + i);
	load_ok(f, text);
	assert_int_equal(f->cfg->nlisten, CONFIG_MAX_LISTEN);
	assert_int_equal(f->cfg->listen[CONFIG_MAX_LISTEN - 1].port, 1000 + CONFIG_MAX_LISTEN - 1);
	snprintf(text + n, sizeof(text) - n, "listen = 127.0.0.1:9999\n");
	load_fails_with(f, text, CONFIG_MAX_LISTEN + 2,
			"bad value '127.0.0.1:9999' for server.listen: expected " H_LISTEN);
}

static void test_proxy_from(void **state)
{
	struct fixture *f = *state;
	const struct config *c = f->cfg;
	static const char *const want[] = { "10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32",
					    "127.0.0.1/32", "::1/128", "172.16.0.0/12" };
	char text[ADDR_STR_MAX + 4];

	load_ok(f, LISTEN "proxy_from = 10.0.0.0/8, 192.0.2.1 2001:db8::/32\n"
			  "proxy_from = 127.0.0.1/32,::1\n"
			  "proxy_from = ,, 172.16.0.0/12 ,\t\n");
	assert_int_equal(c->proxy_from.n, ARRAY_LEN(want));
	for (size_t i = 0; i < ARRAY_LEN(want); i++)
		assert_string_equal(cidr_format(&c->proxy_from.v[i], text, sizeof(text)), want[i]);

	/* Host bits set are an error, not a silent widening. */
	load_fails_with(f, LISTEN "proxy_from = 192.0.2.1/24\n", 3,
			"bad value '192.0.2.1/24' for server.proxy_from: expected " H_CIDRS);
}

/* A NUL byte inside a line is an error of that line; it used to make the line look over-long,
 * and the next line was swallowed (silently after a comment). Found by fuzz_config. */
static void test_nul_in_line(void **state)
{
	struct fixture *f = *state;
	static const char text[] = LISTEN "# comment\0 tail\nfrobnicate = 1\n";
	char want[1024];

	assert_int_equal(load_bytes(f, text, sizeof(text) - 1), -1);
	snprintf(want, sizeof(want), "%s:3: NUL byte in line\n%s:4: unknown key 'frobnicate' in "
		 "[server]\n", f->path, f->path);
	assert_string_equal(f->err, want);
}

/* A list key with a default: the file's first line replaces the default, later lines add. */
static void test_limit_exempt(void **state)
{
	struct fixture *f = *state;
	const struct config *c = f->cfg;
	char text[ADDR_STR_MAX + 4];

	load_ok(f, LISTEN);
	assert_int_equal(c->limit_exempt.n, 2);
	assert_string_equal(cidr_format(&c->limit_exempt.v[0], text, sizeof(text)), "127.0.0.0/8");
	assert_string_equal(cidr_format(&c->limit_exempt.v[1], text, sizeof(text)), "::1/128");
	load_ok(f, LISTEN "limit_exempt = 192.0.2.0/24\nlimit_exempt = 2001:db8::/32\n");
	assert_int_equal(c->limit_exempt.n, 2);
	assert_string_equal(cidr_format(&c->limit_exempt.v[0], text, sizeof(text)), "192.0.2.0/24");
	assert_string_equal(cidr_format(&c->limit_exempt.v[1], text, sizeof(text)),
			    "2001:db8::/32");
	/* an empty value removes the default: nobody is exempt */
	load_ok(f, LISTEN "limit_exempt =\n");
	assert_int_equal(c->limit_exempt.n, 0);
}

static void test_proxy_from_limit(void **state)
{
	struct fixture *f = *state;
	char text[8192];
	size_t n = 0;

	n += (size_t)snprintf(text + n, sizeof(text) - n, LISTEN);
	for (int i = 0; i < CONFIG_MAX_CIDRS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "proxy_from = 10.0.%d.0/24\n", i);
	load_ok(f, text);
	assert_int_equal(f->cfg->proxy_from.n, CONFIG_MAX_CIDRS);
	snprintf(text + n, sizeof(text) - n, "proxy_from = 10.1.0.0/24\n");
	load_fails_with(f, text, CONFIG_MAX_CIDRS + 3,
			"bad value '10.1.0.0/24' for server.proxy_from: expected " H_CIDRS);
}

/* ---- [dnsbl NAME] ------------------------------------------------------------------------ */

#define IP4(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static void test_dnsbl_sections(void **state)
{
	struct fixture *f = *state;
	const struct config *c = f->cfg;
	const struct dnsbl_config *d;

	load_ok(f, LISTEN "[dnsbl zen]\ndisplay_name = Spamhaus ZEN\nzone = Zen.Spamhaus.ORG\n"
			  "codes = 127.0.0.2-127.0.0.11\nweight = 2\nurl = https://x.example/{ip}\n"
			  "[dnsbl dqs]\nzone = KEY123.zen.dq.spamhaus.net\n"
			  "display_zone = zen.dq.spamhaus.net\ncodes = 127.0.0.2, 127.0.0.10-127.0.0.14\n"
			  "txt = yes\nipv6 = no\n"
			  "[dnsbl allow-list.v2_x]\nzone = list.dnswl.org\nweight = -1000\n");
	assert_int_equal(c->ndnsbl, 3);

	d = &c->dnsbl[0];
	assert_string_equal(d->name, "zen");
	assert_string_equal(d->display_name, "Spamhaus ZEN");
	assert_string_equal(d->zone, "zen.spamhaus.org");
	assert_string_equal(d->display_zone, "");
	assert_int_equal(d->ncodes, 1);
	assert_int_equal(d->codes[0].lo, IP4(127, 0, 0, 2));
	assert_int_equal(d->codes[0].hi, IP4(127, 0, 0, 11));
	assert_int_equal(d->weight, 2);
	assert_int_equal(d->fetch_txt, 0);
	assert_string_equal(d->url, "https://x.example/{ip}");
	assert_int_equal(d->ipv6, 1);

	d = &c->dnsbl[1];
	assert_string_equal(d->name, "dqs");
	assert_string_equal(d->display_name, "dqs"); /* defaults to the section name */
	assert_string_equal(d->zone, "key123.zen.dq.spamhaus.net");
	assert_string_equal(d->display_zone, "zen.dq.spamhaus.net");
	assert_int_equal(d->ncodes, 2);
	assert_int_equal(d->codes[0].lo, IP4(127, 0, 0, 2));
	assert_int_equal(d->codes[0].hi, IP4(127, 0, 0, 2));
	assert_int_equal(d->codes[1].lo, IP4(127, 0, 0, 10));
	assert_int_equal(d->codes[1].hi, IP4(127, 0, 0, 14));
	assert_int_equal(d->weight, 1);
	assert_int_equal(d->fetch_txt, 1);
	assert_int_equal(d->ipv6, 0);

	/* Defaults of a section that only names its zone. */
	d = &c->dnsbl[2];
	assert_string_equal(d->name, "allow-list.v2_x");
	assert_int_equal(d->weight, -1000);
	assert_int_equal(d->ncodes, 1);
	assert_int_equal(d->codes[0].lo, IP4(127, 0, 0, 2));
	assert_int_equal(d->codes[0].hi, IP4(127, 0, 0, 254));
	assert_int_equal(d->ipv6, 1);
	assert_int_equal(d->fetch_txt, 0);
	assert_string_equal(d->url, "");

	/* A section may come back later: same entry. */
	load_ok(f, LISTEN "[dnsbl a]\nzone = a.example\n[log]\ndebug = yes\n[dnsbl a]\nweight = 3\n");
	assert_int_equal(c->ndnsbl, 1);
	assert_string_equal(c->dnsbl[0].zone, "a.example");
	assert_int_equal(c->dnsbl[0].weight, 3);
}

static const struct bad_case dnsbl_bad_cases[] = {
	{ "dnsbl x", "zone", "", H_ZONE },
	{ "dnsbl x", "zone", "bad_zone.example", H_ZONE },
	{ "dnsbl x", "zone", "a..example", H_ZONE },
	{ "dnsbl x", "display_zone", "-x.example", H_ZONE },
	{ "dnsbl x", "display_name", "", H_STR },
	{ "dnsbl x", "url", "", H_STR },
	{ "dnsbl x", "codes", "", H_CODES },
	{ "dnsbl x", "codes", "10.0.0.2", H_CODES },
	{ "dnsbl x", "codes", "127.0.0.2-128.0.0.1", H_CODES },
	{ "dnsbl x", "codes", "127.0.0.5-127.0.0.2", H_CODES },
	{ "dnsbl x", "codes", "::1", H_CODES },
	{ "dnsbl x", "codes", "127.0.0.2-", H_CODES },
	{ "dnsbl x", "codes", "127.0.0.2;127.0.0.3", H_CODES },
	{ "dnsbl x", "weight", "1001", H_UINT(-1000, 1000) },
	{ "dnsbl x", "weight", "-1001", H_UINT(-1000, 1000) },
	{ "dnsbl x", "weight", "+1", H_UINT(-1000, 1000) },
	{ "dnsbl x", "weight", "--1", H_UINT(-1000, 1000) },
	{ "dnsbl x", "txt", "maybe", H_BOOL },
	{ "dnsbl x", "ipv6", "Yes", H_BOOL },
};

static void test_dnsbl_bad_values(void **state)
{
	struct fixture *f = *state;
	char text[1024], msg[512];

	for (size_t i = 0; i < ARRAY_LEN(dnsbl_bad_cases); i++) {
		const struct bad_case *c = &dnsbl_bad_cases[i];

		snprintf(text, sizeof(text), LISTEN "[%s]\nzone = z.example\n%s = %s\n", c->section,
			 c->key, c->value);
		snprintf(msg, sizeof(msg), "bad value '%s' for %s.%s: expected %s", c->value,
			 c->section, c->key, c->hint);
		load_fails_with(f, text, 5, msg);
	}
}

static void test_dnsbl_names_and_limits(void **state)
{
	struct fixture *f = *state;
	char text[4096];
	size_t n = 0;

	load_fails_with(f, LISTEN "[dnsbl Zen]\nzone = z.example\n", 4,
			"bad or too many [dnsbl NAME] sections: [dnsbl Zen] (names: a-z 0-9 _ - ., at "
			"most 16)");
	load_fails_with(f, LISTEN "[dnsbl a b]\nzone = z.example\n", 4,
			"bad or too many [dnsbl NAME] sections: [dnsbl a b] (names: a-z 0-9 _ - ., at "
			"most 16)");
	load_fails_with(f, LISTEN "[dnsbl]\nzone = z.example\n", 3, "unknown section [dnsbl]");
	load_fails_with(f, LISTEN "[dnsbl zen]\nzone = z.example\nlisten = 1.2.3.4:25\n", 5,
			"unknown key 'listen' in [dnsbl zen]");

	n += (size_t)snprintf(text + n, sizeof(text) - n, LISTEN);
	for (int i = 0; i < CONFIG_MAX_DNSBL; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "[dnsbl l%d]\nzone = l%d.example\n",
				      i, i);
	load_ok(f, text);
	assert_int_equal(f->cfg->ndnsbl, CONFIG_MAX_DNSBL);
	assert_string_equal(f->cfg->dnsbl[CONFIG_MAX_DNSBL - 1].name, "l15");
	snprintf(text + n, sizeof(text) - n, "[dnsbl one-more]\nzone = x.example\n");
	load_fails_with(f, text, 2 + 2 * CONFIG_MAX_DNSBL + 2,
			"bad or too many [dnsbl NAME] sections: [dnsbl one-more] (names: a-z 0-9 _ - "
			"., at most 16)");
}

/* inih keeps 49 octets of a section name and cut longer ones silently: two [dnsbl NAME]
 * sections that differed only past the cut became one list, the first one's zone lost (found
 * writing fuzz/fuzz_config.c; its seed regress-long-dnsbl-section). Now refused. */
static void test_long_section_name(void **state)
{
	struct fixture *f = *state;
	char name[64], text[512];

	memset(name, 'a', 43); /* "dnsbl " and 43 octets: 49, the longest inih keeps whole */
	name[43] = '\0';
	snprintf(text, sizeof(text), LISTEN "[dnsbl %s]\nzone = z.example\n", name);
	load_ok(f, text);
	assert_int_equal(f->cfg->ndnsbl, 1);
	assert_string_equal(f->cfg->dnsbl[0].name, name);
	snprintf(text, sizeof(text), LISTEN "[dnsbl %sb]\nzone = z.example\n", name);
	load_fails_with(f, text, 3, "section name longer than 49 octets");
	snprintf(text, sizeof(text), LISTEN "[dnsbl %sone]\nzone = one.example\n[dnsbl %stwo]\n"
		 "zone = two.example\n", name, name);
	assert_int_equal(load_text(f, text), -1);
	assert_non_null(strstr(f->err, ":3: section name longer than 49 octets\n"));
	assert_non_null(strstr(f->err, ":5: section name longer than 49 octets\n"));
}

/* ---- unknown keys and sections, syntax, line numbers ------------------------------------- */

struct line_case {
	const char *text;
	unsigned line;
	const char *msg;
};

static const struct line_case line_cases[] = {
	{ LISTEN "bogus = 1\n", 3, "unknown key 'bogus' in [server]" },
	{ LISTEN "\n# a comment\n\n; another\nlisten_on = 1.2.3.4:25\n", 7,
	  "unknown key 'listen_on' in [server]" },
	{ LISTEN "Workers = 1\n", 3, "unknown key 'Workers' in [server]" },
	{ LISTEN "[log]\nworkers = 1\n", 4, "unknown key 'workers' in [log]" },
	{ LISTEN "[bogus]\nkey = 1\n", 3, "unknown section [bogus]" },
	{ LISTEN "[Server]\nworkers = 1\n", 3, "unknown section [Server]" },
	{ "workers = 1\n" LISTEN, 1, "key 'workers' outside any section" },
	{ LISTEN "garbage line\n", 3, "syntax error (expected [section] or key = value)" },
	{ LISTEN "[unterminated\nworkers = 1\n", 3, "syntax error (expected [section] or key = value)" },
	{ "\n\n\n\n\n\n\n\n\n" LISTEN "max_errors = x\n", 12,
	  "bad value 'x' for server.max_errors: expected " H_UINT(1, 1000) },
};

static void test_unknown_and_line_numbers(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < ARRAY_LEN(line_cases); i++)
		load_fails_with(f, line_cases[i].text, line_cases[i].line, line_cases[i].msg);
}

/* Every problem is reported, each with its own line, in file order. */
static void test_several_errors(void **state)
{
	struct fixture *f = *state;
	char want[1024];

	assert_int_equal(load_text(f, LISTEN "bogus = 1\nworkers = 99\n[nope]\nx = 1\n"
					     "[log]\ndebug = maybe\n"),
			 -1);
	snprintf(want, sizeof(want),
		 "%s:3: unknown key 'bogus' in [server]\n"
		 "%s:4: bad value '99' for server.workers: expected " H_UINT(0, 64) "\n"
		 "%s:5: unknown section [nope]\n"
		 "%s:8: bad value 'maybe' for log.debug: expected " H_BOOL "\n",
		 f->path, f->path, f->path, f->path);
	assert_string_equal(f->err, want);
}

/* config.h: "unknown sections and keys ... are errors". A section without keys too. */
static void test_unknown_empty_section(void **state)
{
	struct fixture *f = *state;
	int rc = load_text(f, LISTEN "[bogus]\n");

	(void)rc;
	load_fails_with(f, LISTEN "[bogus]\n", 3, "unknown section [bogus]");
}

/* Lines up to the INI reader's buffer (200 octets with the NUL in Debian's inih) work. */
static void test_line_at_reader_limit(void **state)
{
	struct fixture *f = *state;
	char text[512], dir[188];

	memset(dir, 'd', sizeof(dir) - 1);
	dir[0] = '/';
	dir[sizeof(dir) - 1] = '\0';
	/* "data_dir = " + 187 = 198 octets, 199 with the LF. */
	snprintf(text, sizeof(text), LISTEN "data_dir = %s\nbogus = 1\n", dir);
	load_fails_with(f, text, 4, "unknown key 'bogus' in [server]");
	assert_string_equal(f->cfg->data_dir, dir);
}

/* A longer line must neither let its tail in as a line of its own (a comment must stay a
 * comment) nor shift the line numbers of what follows. "# " + 197 octets is where a
 * 200-octet reader cuts; the tail there reads "listen = 0.0.0.0:26". */
static void test_long_lines(void **state)
{
	struct fixture *f = *state;
	char text[1024], comment[300], want[160];
	int rc;

	memset(comment, 'c', sizeof(comment));
	memcpy(comment, "# ", 2);
	strcpy(comment + 199, "listen = 0.0.0.0:26");

	snprintf(text, sizeof(text), LISTEN "%s\nbogus = 1\n", comment);
	rc = load_text(f, text);
	assert_int_equal(rc, -1);
	snprintf(want, sizeof(want), "%s:4: unknown key 'bogus' in [server]\n", f->path);
	if (strstr(f->err, want) == NULL)
		fail_msg("errors:\n%s\nwant a line:\n%s", f->err, want);
	assert_int_equal(f->cfg->nlisten, 1);

	/* Without the other error: refused on line 3, or loaded without the tail. */
	snprintf(text, sizeof(text), LISTEN "%s\n", comment);
	rc = load_text(f, text);
	if (rc == 0)
		assert_int_equal(f->cfg->nlisten, 1);
	else
		assert_non_null(strstr(f->err, ":3: "));
	(void)rc;
}

/* ---- whole-config checks ----------------------------------------------------------------- */

struct whole_case {
	const char *text;
	const char *msgs; /* "PATH: " is put before each '\n'-separated message */
};

static const struct whole_case whole_cases[] = {
	{ "[server]\nworkers = 1\n", "[server] needs at least one 'listen'" },
	{ "", "[server] needs at least one 'listen'" },
	{ LISTEN "tls_cert = /c.pem\n", "tls_cert and tls_key go together" },
	{ LISTEN "tls_key = /k.pem\n", "tls_cert and tls_key go together" },
	{ LISTEN "listen = 127.0.0.1:26 proxy\n",
	  "listen 127.0.0.1 is marked proxy but proxy_from is empty" },
	{ LISTEN "[dnsbl zen]\nweight = 2\n", "[dnsbl zen] needs a zone" },
	{ LISTEN "[dnsbl zen]\nzone = z.example\nweight = 0\n",
	  "[dnsbl zen] weight 0 would never count; remove the section instead" },
	{ LISTEN "[policy]\ndnsbl_cache_min_ttl = 61\ndnsbl_cache_max_ttl = 60\n",
	  "dnsbl_cache_min_ttl exceeds dnsbl_cache_max_ttl" },
	{ "[server]\ntls_cert = /c.pem\n[dnsbl a]\nweight = 0\n",
	  "[server] needs at least one 'listen'\ntls_cert and tls_key go together\n"
	  "[dnsbl a] needs a zone\n[dnsbl a] weight 0 would never count; remove the section instead" },
};

static void test_whole_checks(void **state)
{
	struct fixture *f = *state;
	char want[2048];

	for (size_t i = 0; i < ARRAY_LEN(whole_cases); i++) {
		const char *m = whole_cases[i].msgs;
		size_t n = 0;

		if (load_text(f, whole_cases[i].text) != -1)
			fail_msg("row %zu accepted", i);
		/* No line numbers: these are about the file as a whole. */
		while (*m) {
			size_t len = strcspn(m, "\n");
			n += (size_t)snprintf(want + n, sizeof(want) - n, "%s: %.*s\n", f->path,
					      (int)len, m);
			m += len + (m[len] == '\n');
		}
		if (strcmp(f->err, want) != 0)
			fail_msg("row %zu: errors:\n%s\nwant:\n%s", i, f->err, want);
	}
}

static void test_whole_checks_pass(void **state)
{
	struct fixture *f = *state;

	/* A proxy listener with proxy_from is fine, and so is min_ttl == max_ttl. */
	load_ok(f, LISTEN "[policy]\ndnsbl_cache_min_ttl = 60\ndnsbl_cache_max_ttl = 60\n");
	load_ok(f, "[server]\nlisten = 127.0.0.1:25 proxy\nproxy_from = 127.0.0.1\n");
	load_ok(f, LISTEN "tls_cert = /c.pem\ntls_key = /k.pem\n");
	/* With errors on lines, the whole-config checks are not added on top. */
	load_fails_with(f, "[server]\nbogus = 1\n", 2, "unknown key 'bogus' in [server]");
}

/* ---- files ------------------------------------------------------------------------------- */

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	static const char path[] = "/nonexistent-mxgate-test/mxgate.conf";

	assert_int_equal(config_load(path, f->cfg, f->err, sizeof(f->err)), -1);
	assert_string_equal(f->err, "/nonexistent-mxgate-test/mxgate.conf: cannot open: "
				    "No such file or directory\n");
}

/* A small error buffer truncates and stays a string; size 0 writes nothing. */
static void test_small_errbuf(void **state)
{
	struct fixture *f = *state;
	static const char text[] = LISTEN "bogus_key_with_a_long_name = 1\nanother_bad_key = 2\n";
	char path[] = "/tmp/mxg-test-config-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	for (size_t sz = 1; sz <= 200; sz += 7) {
		char *err = malloc(sz);
		assert_non_null(err);
		assert_int_equal(config_load(path, f->cfg, err, sz), -1);
		assert_true(strlen(err) < sz);
		free(err);
	}
	{
		char one = 'Z';
		assert_int_equal(config_load(path, f->cfg, &one, 0), -1);
		assert_int_equal(one, 'Z');
	}
	unlink(path);
}

static void test_embedded_default(void **state)
{
	struct fixture *f = *state;
	const struct config *c = f->cfg;

	memset(f->err, 'Z', sizeof(f->err));
	if (config_load(NULL, f->cfg, f->err, sizeof(f->err)) != 0)
		fail_msg("embedded default refused:\n%s", f->err);
	assert_string_equal(f->err, "");
	assert_string_equal(c->source, "(embedded default)");
	assert_string_equal(c->hostname, "mxgate.localhost");
	assert_int_equal(c->nlisten, 1);
	assert_string_equal(c->listen[0].host, "127.0.0.1");
	assert_int_equal(c->listen[0].port, 2525);
	assert_int_equal(c->listen[0].proxy, 0);
	assert_string_equal(c->data_dir, "./var");
	assert_int_equal(c->workers, 1);
	assert_string_equal(c->tls_cert, "./var/tls/cert.pem");
	assert_string_equal(c->tls_key, "./var/tls/key.pem");
	assert_int_equal(c->proxy_from.n, 0);
	assert_int_equal(c->ndnsbl, 0);
	/* Everything else keeps its table default. */
	assert_int_equal(c->max_recipients, 100);
	assert_int_equal(c->max_message_size, 26214400);
	assert_int_equal(c->command_timeout, 300);
}

/* The embedded default text, written to a file, loads to the same result. */
static void test_embedded_default_as_file(void **state)
{
	struct fixture *f = *state;
	struct config *from_null = calloc(1, sizeof(*from_null));
	char err[256];

	assert_non_null(from_null);
	assert_int_equal(config_load(NULL, from_null, err, sizeof(err)), 0);
	load_ok(f, config_embedded_default);
	assert_string_equal(f->cfg->hostname, from_null->hostname);
	assert_int_equal(f->cfg->nlisten, from_null->nlisten);
	assert_string_equal(f->cfg->listen[0].host, from_null->listen[0].host);
	assert_int_equal(f->cfg->listen[0].port, from_null->listen[0].port);
	assert_string_equal(f->cfg->data_dir, from_null->data_dir);
	assert_int_equal(f->cfg->workers, from_null->workers);
	assert_string_equal(f->cfg->tls_cert, from_null->tls_cert);
	free(from_null);
}

static void test_config_find(void **state)
{
	(void)state;
	assert_string_equal(config_find("/some/explicit.conf"), "/some/explicit.conf");
	assert_int_equal(setenv("MXGATE_CONFIG", "/from/env.conf", 1), 0);
	assert_string_equal(config_find(NULL), "/from/env.conf");
	assert_string_equal(config_find("/explicit/wins.conf"), "/explicit/wins.conf");
	assert_int_equal(unsetenv("MXGATE_CONFIG"), 0);
}

/* ---- config_dump_keys and the example file ----------------------------------------------- */

/* config_dump_keys output in a malloc'd string. */
static char *dump_keys(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);

	assert_non_null(mem);
	config_dump_keys(mem);
	assert_int_equal(fclose(mem), 0);
	assert_non_null(buf);
	return buf;
}

/* Returns the dump line for "section.key", or NULL. */
static const char *dump_find(const char *dump, const char *qualified)
{
	size_t n = strlen(qualified);

	for (const char *p = dump; *p;) {
		if (strncmp(p, qualified, n) == 0 && p[n] == '\t')
			return p;
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	return NULL;
}

static void test_dump_keys(void **state)
{
	static const char *const rows[] = {
		"server.hostname\t\t",
		"server.listen\t\t",
		"server.proxy_from\t\t",
		"server.data_dir\t/var/lib/mxgate\t",
		"server.workers\t0\t",
		"server.max_sessions\t2000\t",
		"server.max_message_size\t25M\t",
		"server.max_recipients\t100\t",
		"server.max_errors\t10\t",
		"server.command_timeout\t300\t",
		"server.data_timeout\t180\t",
		"server.tls_cert\t\t",
		"server.tls_key\t\t",
		"log.syslog\tno\t",
		"log.debug\tno\t",
		"server.tls_client_ca\t\t",
		"policy.resolver\t\t",
		"policy.dnsbl_threshold\t1\t",
		"policy.dnsbl_timeout_ms\t2000\t",
		"policy.dnsbl_cache_min_ttl\t60\t",
		"policy.dnsbl_cache_max_ttl\t3600\t",
		"policy.dnsbl_health_interval\t300\t",
		"policy.reload_interval_ms\t500\t",
		"policy.probe_timeout_ms\t3000\t",
		"delivery.retry_first\t300\t",
		"delivery.max_lifetime\t432000\t",
		"delivery.mx_port\t25\t",
		"dnsbl NAME.zone\t\t",
		"dnsbl NAME.display_name\t\t",
		"dnsbl NAME.display_zone\t\t",
		"dnsbl NAME.codes\t127.0.0.2-127.0.0.254\t",
		"dnsbl NAME.weight\t1\t",
		"dnsbl NAME.txt\tno\t",
		"dnsbl NAME.url\t\t",
		"dnsbl NAME.ipv6\tyes\t",
	};
	char *dump = dump_keys();

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		char key[64];
		const char *line;

		snprintf(key, sizeof(key), "%.*s", (int)strcspn(rows[i], "\t"), rows[i]);
		line = dump_find(dump, key);
		if (line == NULL || strncmp(line, rows[i], strlen(rows[i])) != 0)
			fail_msg("dump has no line starting \"%s\"", rows[i]);
	}
	/* Every line is "key\tdefault\thelp" with a non-empty help. */
	for (const char *p = dump; *p;) {
		const char *nl = strchr(p, '\n');
		const char *t1 = memchr(p, '\t', (size_t)(nl - p));
		const char *t2 = t1 ? memchr(t1 + 1, '\t', (size_t)(nl - t1 - 1)) : NULL;

		assert_non_null(nl);
		if (!t1 || !t2 || t2 + 1 >= nl || !memchr(p, '.', (size_t)(t1 - p)))
			fail_msg("bad dump line: %.*s", (int)(nl - p), p);
		p = nl + 1;
	}
	/* Every key the settable table uses is in the dump. */
	for (size_t i = 0; i < ARRAY_LEN(set_cases); i++) {
		char key[64];
		snprintf(key, sizeof(key), "%s.%s", set_cases[i].section, set_cases[i].key);
		if (!dump_find(dump, key))
			fail_msg("%s is not in config_dump_keys", key);
	}
	free(dump);
}

/* Keys whose setting is tested by their own test functions rather than set_cases. */
static const char *const tested_elsewhere[] = {
	"server.listen",	  "server.proxy_from",	    "dnsbl NAME.zone",
	"server.limit_exempt",
	"dnsbl NAME.display_name", "dnsbl NAME.display_zone", "dnsbl NAME.codes",
	"dnsbl NAME.weight",	  "dnsbl NAME.txt",	    "dnsbl NAME.url",
	"dnsbl NAME.ipv6",
};

/* "Every key settable": each key of the table has a test that sets it. A new key needs a row
 * in set_cases (or its own test). */
static void test_every_key_has_a_test(void **state)
{
	char *dump = dump_keys();

	(void)state;
	for (const char *p = dump; *p;) {
		size_t klen = strcspn(p, "\t");
		int found = 0;

		for (size_t i = 0; i < ARRAY_LEN(set_cases) && !found; i++) {
			size_t sl = strlen(set_cases[i].section);
			found = klen == sl + 1 + strlen(set_cases[i].key) &&
				strncmp(p, set_cases[i].section, sl) == 0 && p[sl] == '.' &&
				strncmp(p + sl + 1, set_cases[i].key, klen - sl - 1) == 0;
		}
		for (size_t i = 0; i < ARRAY_LEN(tested_elsewhere) && !found; i++)
			found = strlen(tested_elsewhere[i]) == klen &&
				strncmp(p, tested_elsewhere[i], klen) == 0;
		if (!found)
			fail_msg("config key %.*s has no test that sets it", (int)klen, p);
		p = strchr(p, '\n') + 1;
	}
	free(dump);
}

/* Every key in etc/mxgate.conf.example, set or commented out as "#key = value" (also under a
 * commented-out "#[section]"), is a key of the table; and the example loads. */
static void test_example_keys_in_dump(void **state)
{
	struct fixture *f = *state;
	static const char path[] = MXG_SOURCE_ROOT "/etc/mxgate.conf.example";
	FILE *fp = fopen(path, "r");
	char line[1024], section[128] = "";
	unsigned lineno = 0, nkeys = 0;
	char *dump;

	if (!fp) {
		print_message("%s is missing: skipped\n", path);
		skip();
	}
	dump = dump_keys();
	while (fgets(line, sizeof(line), fp)) {
		char *p = line, name[128], qualified[300];
		size_t n;

		lineno++;
		if (*p == '#' || *p == ';')
			p++; /* "#key = value" is a key shown commented out; "# text" is prose */
		if (*p == '[') {
			n = strcspn(p + 1, "]");
			snprintf(section, sizeof(section), "%.*s", (int)n, p + 1);
			/* "[dnsbl zen]" is an instance of the table's "[dnsbl NAME]". */
			if (strchr(section, ' '))
				strcpy(strchr(section, ' ') + 1, "NAME");
			continue;
		}
		n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_");
		if (n == 0 || n >= sizeof(name) || p[n + strspn(p + n, " \t")] != '=')
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)n, p);
		snprintf(qualified, sizeof(qualified), "%s.%s", section, name);
		if (!dump_find(dump, qualified))
			fail_msg("%s:%u: key %s is not in config_dump_keys", path, lineno, qualified);
		nkeys++;
	}
	fclose(fp);
	free(dump);
	assert_true(nkeys > 0);
	if (config_load(path, f->cfg, f->err, sizeof(f->err)) != 0)
		fail_msg("the example does not load:\n%s", f->err);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_reload_starts_from_defaults),
		T(test_every_key_settable),
		T(test_ini_syntax),
		T(test_bad_values),
		T(test_listen),
		T(test_listen_limit),
		T(test_proxy_from),
		T(test_proxy_from_limit),
		T(test_limit_exempt),
		T(test_nul_in_line),
		T(test_dnsbl_sections),
		T(test_dnsbl_bad_values),
		T(test_dnsbl_names_and_limits),
		T(test_long_section_name),
		T(test_unknown_and_line_numbers),
		T(test_several_errors),
		T(test_unknown_empty_section),
		T(test_line_at_reader_limit),
		T(test_long_lines),
		T(test_whole_checks),
		T(test_whole_checks_pass),
		T(test_missing_file),
		T(test_small_errbuf),
		T(test_embedded_default),
		T(test_embedded_default_as_file),
		T(test_config_find),
		T(test_dump_keys),
		T(test_every_key_has_a_test),
		T(test_example_keys_in_dump),
	};
#undef T

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
