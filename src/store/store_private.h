/* store_private: what the files of the store module share (store.c: connection, schema and
 * transactions; validate.c: input checks; change.c: the changes; read.c: snapshot and views).
 * Nothing outside src/store includes this. */
#ifndef MXG_STORE_PRIVATE_H
#define MXG_STORE_PRIVATE_H

#include <sqlite3.h>
#include <stdint.h>

#include "store/store.h"

/* "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128" fits with room to spare. */
#define STORE_CIDR_MAX (ADDR_STR_MAX + 8)
/* How much of a rejected input an error message quotes. */
#define STORE_QUOTE_MAX 80

struct store {
	sqlite3 *db;
	sqlite3_stmt *generation_stmt; /* kept prepared: the server polls it */
	enum store_mode mode;
};

/* --- store.c ------------------------------------------------------------------------- */

/* Writes a sentence into err and returns STORE_REFUSED. */
int store_refuse(char *err, size_t esz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Writes "policy store error while WHAT: <sqlite message>" and returns STORE_FAILED. */
int store_fail(struct store *st, const char *what, char *err, size_t esz);

/* Prepares sql and binds one argument per character of types: 't' const char * (NULL binds
 * NULL), 'i' int64_t, 'b' const struct ip_addr * (16-byte blob). Returns STORE_OK or
 * STORE_FAILED. */
int store_stmt(struct store *st, sqlite3_stmt **s_r, const char *sql, char *err, size_t esz,
	       const char *types, ...);
/* Steps s to completion, finalizes it and returns STORE_OK or STORE_FAILED. */
int store_run(struct store *st, sqlite3_stmt *s, const char *what, char *err, size_t esz);

/* Runs fn inside BEGIN IMMEDIATE; when it returns STORE_OK bumps the generation and
 * commits, otherwise rolls back, so nothing of a refused change stays. */
typedef int (*store_tx_fn)(struct store *st, void *arg, char *err, size_t esz);
int store_change(struct store *st, store_tx_fn fn, void *arg, char *err, size_t esz);

/* Finds a tenant by name (case-insensitive). Returns 1 found (id and stored name set), 0 not
 * found, STORE_FAILED. */
int store_tenant_find(struct store *st, const char *name, int64_t *id_r,
		      char name_r[MODEL_NAME_MAX + 1], char *err, size_t esz);
/* As store_tenant_find, but a missing tenant is refused with "no tenant named NAME". */
int store_tenant_need(struct store *st, const char *name, int64_t *id_r,
		      char name_r[MODEL_NAME_MAX + 1], char *err, size_t esz);

/* --- validate.c ---------------------------------------------------------------------- */

/* Copies s into buf for an error message: at most STORE_QUOTE_MAX bytes, control bytes as
 * '?', "..." when cut. Returns buf. */
const char *store_quote(const char *s, char *buf, size_t bufsz);
/* what names the thing in the message ("tenant name", "connector name"). */
int store_check_name(const char *what, const char *name, char *err, size_t esz);
/* Normalizes HOST:PORT: host as a domain (A-label, lower case) or an IP literal (IPv6 in
 * brackets). */
int store_norm_route(const char *route, char out[MODEL_ROUTE_MAX + 1], char *err, size_t esz);
/* A certificate host name, normalized like a domain; wildcards are refused. */
int store_norm_tls_name(const char *name, char out[MODEL_TLS_NAME_MAX + 1], char *err,
			size_t esz);
/* Parses an address or CIDR; a bare address is a host prefix. out gets the canonical text. */
int store_norm_cidr(const char *in, struct cidr *c_r, char out[STORE_CIDR_MAX], char *err,
		    size_t esz);
int store_check_comment(const char *comment, char *err, size_t esz);
/* The first half of store_address_normalize: checks the whole address, writes the canonical
 * local part and points *domain_r at the domain as given (inside address), not yet
 * normalized. */
int store_address_split(const char *address, char local_r[MODEL_LOCAL_MAX + 1],
			const char **domain_r, char *err, size_t esz);

/* Text of the list names, as stored and shown: "allow", "block". NULL for other values. */
const char *store_list_name(enum ip_list list);

#endif
