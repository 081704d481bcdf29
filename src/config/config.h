/* config: the one table of configuration keys, read from an INI file with inih.
 *
 * Every key has a type, a default and bounds in config.c's table; unknown sections and keys,
 * and values out of bounds, are errors reported as "file:line: ..." and the load fails. */
#ifndef MXG_CONFIG_H
#define MXG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/addr.h"

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_CIDRS 64
#define CONFIG_HOST_MAX 256
#define CONFIG_PATH_MAX 1024
#define CONFIG_ERRORS_MAX 4096

/* A repeatable CIDR key: later lines add to earlier ones; the first line in a file replaces
 * the key's default. */
struct cidr_list {
	struct cidr v[CONFIG_MAX_CIDRS];
	unsigned n;
	int is_default;
};

struct listen_spec {
	char host[CONFIG_HOST_MAX];
	uint16_t port;
	int proxy; /* expects a PROXY protocol header from a proxy_from address */
};

#define CONFIG_MAX_DNSBL 16
#define CONFIG_MAX_DNSBL_CODES 16
#define CONFIG_NAME_MAX 64

/* An inclusive range of DNSBL answer addresses (IPv4, host byte order). */
struct code_range {
	uint32_t lo, hi;
};

/* One [dnsbl NAME] section: a DNS blocklist (or, with a negative weight, a DNS allow list). */
struct dnsbl_config {
	char name[CONFIG_NAME_MAX];         /* section name, used in logs and explain */
	char display_name[CONFIG_HOST_MAX]; /* shown in replies: "Spamhaus ZEN" */
	char zone[CONFIG_HOST_MAX];         /* queried zone; may contain a secret key (DQS) */
	char display_zone[CONFIG_HOST_MAX]; /* shown instead of zone; "" = display_name only */
	struct code_range codes[CONFIG_MAX_DNSBL_CODES]; /* answers that count as listed */
	unsigned ncodes;
	int weight;            /* added to the score when listed; negative: allow list */
	int fetch_txt;         /* fetch the TXT record for the reply */
	char url[CONFIG_HOST_MAX]; /* lookup URL template, "{ip}" replaced; "" = none */
	int ipv6;              /* also query IPv6 clients (nibble format) */
};

struct config {
	char source[CONFIG_PATH_MAX]; /* file path, or "(embedded default)" */

	/* [server] */
	char hostname[CONFIG_HOST_MAX];
	struct listen_spec listen[CONFIG_MAX_LISTEN];
	unsigned nlisten;
	struct cidr_list proxy_from;
	char data_dir[CONFIG_PATH_MAX];
	unsigned workers; /* 0 = one per core */
	unsigned max_sessions;
	uint64_t max_message_size;
	unsigned max_recipients;
	unsigned max_errors;
	unsigned command_timeout; /* seconds */
	unsigned data_timeout;    /* seconds, per block of DATA read */
	char tls_cert[CONFIG_PATH_MAX];
	char tls_key[CONFIG_PATH_MAX];
	char tls_client_ca[CONFIG_PATH_MAX];
	char postmaster[CONFIG_HOST_MAX]; /* where RCPT TO:<postmaster> goes; "" = host name */
	char user[CONFIG_NAME_MAX];       /* serve started as root runs as this user */

	/* [server] limits against abuse (0 = no limit where the table says so) */
	unsigned max_sessions_per_ip;     /* concurrent sessions of one client */
	unsigned max_connect_rate;        /* new connections per client per minute */
	struct cidr_list limit_exempt;    /* clients the per-IP limits do not apply to */
	unsigned limit_ipv6_prefix;       /* IPv6 clients counted per prefix of this length */
	unsigned max_messages;            /* messages per session */
	uint64_t max_session_bytes;       /* bytes a client may send in one session */
	unsigned max_junk_commands;       /* NOOP, RSET, VRFY, HELP per session */
	unsigned greet_pause_ms;          /* "220-" first, the rest after this pause */
	int pregreet_reject;              /* a client talking before the greeting gets 554 */

	/* [log] */
	int log_syslog;
	int log_debug;

	/* [policy] */
	char resolver[CONFIG_HOST_MAX]; /* "HOST:PORT" or "" for /etc/resolv.conf */
	int dnsbl_threshold;
	unsigned dnsbl_timeout_ms;
	unsigned dnsbl_cache_min_ttl, dnsbl_cache_max_ttl; /* seconds */
	unsigned dnsbl_health_interval;                    /* seconds, 0 = no probes */
	unsigned reload_interval_ms;
	unsigned probe_timeout_ms; /* a recipient probe of a tenant's server, start to answer */

	struct dnsbl_config dnsbl[CONFIG_MAX_DNSBL];
	unsigned ndnsbl;

	/* [delivery] */
	unsigned retry_first, retry_max;   /* seconds: first retry delay, cap of the doubling */
	unsigned max_lifetime;             /* seconds in the queue before giving up (4.4.7) */
	unsigned delay_warning;            /* seconds before a delay report; 0 = none */
	unsigned dest_concurrency;         /* connections per destination */
	unsigned mx_port;                  /* port of MX hosts (25; tests use others) */
	unsigned connect_timeout;          /* seconds */
	unsigned smtp_timeout;             /* seconds per command reply (RFC 5321: 5 min) */
	unsigned data_timeout_out;         /* seconds for the reply to the final dot (10 min) */
	int delivery_hold;                 /* deliver nothing: everything stays queued */
};

/* The configuration `mxgate serve` runs on when no file is found: loopback, ./var.
 * Shown by `mxgate show-config`. */
extern const char config_embedded_default[];

/* Loads path (or the embedded default when path is NULL) into *cfg. On failure returns -1 and
 * writes every problem, one per line, into errbuf. */
int config_load(const char *path, struct config *cfg, char *errbuf, size_t errsz);

/* Chooses the file: explicit, else $MXGATE_CONFIG, else ./mxgate.conf, else
 * /etc/mxgate/mxgate.conf; returns NULL when none exists (use the embedded default). */
const char *config_find(const char *explicit_path);

/* Writes every key of the table with its default and description (for docs and a test that
 * keeps etc/mxgate.conf.example in step with the table). */
void config_dump_keys(FILE *out);

#endif
