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
#define CONFIG_MAX_PROXY_FROM 64
#define CONFIG_MAX_ACCEPT_DOMAINS 256
#define CONFIG_HOST_MAX 256
#define CONFIG_PATH_MAX 1024
#define CONFIG_ERRORS_MAX 4096

struct listen_spec {
	char host[CONFIG_HOST_MAX];
	uint16_t port;
	int proxy; /* expects a PROXY protocol header from a proxy_from address */
};

struct config {
	char source[CONFIG_PATH_MAX]; /* file path, or "(embedded default)" */

	/* [server] */
	char hostname[CONFIG_HOST_MAX];
	struct listen_spec listen[CONFIG_MAX_LISTEN];
	unsigned nlisten;
	struct cidr proxy_from[CONFIG_MAX_PROXY_FROM];
	unsigned nproxy_from;
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

	/* [log] */
	int log_syslog;
	int log_debug;

	/* [accept]: interim list of accepted domains until the policy store replaces it. */
	char accept_domains[CONFIG_MAX_ACCEPT_DOMAINS][CONFIG_HOST_MAX];
	unsigned naccept_domains;
	char accept_route[CONFIG_HOST_MAX];
};

/* The configuration `mxgate serve` runs on when no file is found: loopback, ./var, a demo
 * domain. Shown by `mxgate config --default`. */
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
