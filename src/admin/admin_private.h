/* admin_private: what the files of the admin module share. admin.c holds the one command
 * registry and the CLI front end (arguments, usage, dispatch); output.c the text table,
 * JSON and time helpers; tenant.c, domain.c, connector.c, iplist.c and recipient.c one
 * family each (recipient.c also has `tenant set`).
 * Handlers see parsed arguments and an open store, never argv. */
#ifndef MXG_ADMIN_PRIVATE_H
#define MXG_ADMIN_PRIVATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

enum { ADMIN_EXIT_OK = 0, ADMIN_EXIT_FAIL = 1, ADMIN_EXIT_USAGE = 2 };

#define ADMIN_MAX_POS 2  /* positional arguments of any action */
#define ADMIN_TIME_MAX 32 /* "2024-05-01T12:00:00Z" */

/* Every option of every action; each action allows a subset (struct admin_cmd.opts). */
enum admin_opt {
	OPT_ROUTE,
	OPT_TYPE,
	OPT_IP,
	OPT_TLS_NAME,
	OPT_REQUIRE_TLS,
	OPT_COMMENT,
	OPT_JSON,
	OPT_RECIPIENT_CHECK,
	OPT_ROUTE_TLS,
	OPT_COUNT
};
#define OPT_BIT(o) (1u << (o))
/* In struct admin_cmd.required: the options are alternatives, one of them is enough. */
#define OPT_ANY_OF (1u << 31)

struct admin_args {
	const char *pos[ADMIN_MAX_POS];
	size_t npos;
	const char *opt[OPT_COUNT]; /* the value, "" for a flag; NULL when not given */
	const char **ips;           /* every --ip in order (the one repeatable option) */
	size_t nips;
};

struct admin_cmd;

struct admin_ctx {
	const struct admin_cmd *cmd;
	struct admin_args args;
	struct store *st;
	enum ip_list list; /* the allow and block families */
};

struct admin_cmd {
	const char *family;
	const char *action;
	const char *synopsis; /* after "mxgate FAMILY ACTION" */
	const char *summary;  /* one line for the family usage */
	const char *help;     /* what the action does, for its own usage */
	const char *pos_names[ADMIN_MAX_POS];
	unsigned min_pos, max_pos;
	unsigned opts;     /* OPT_BITs allowed */
	unsigned required; /* OPT_BITs that must be given; with OPT_ANY_OF, at least one of them */
	int (*run)(struct admin_ctx *ctx);
};

/* --- handlers: each returns an exit code ---------------------------------------------- */
int admin_tenant_add(struct admin_ctx *ctx);
int admin_tenant_remove(struct admin_ctx *ctx);
int admin_tenant_list(struct admin_ctx *ctx);
int admin_domain_add(struct admin_ctx *ctx);
int admin_domain_remove(struct admin_ctx *ctx);
int admin_domain_list(struct admin_ctx *ctx);
int admin_connector_add(struct admin_ctx *ctx);
int admin_connector_remove(struct admin_ctx *ctx);
int admin_connector_list(struct admin_ctx *ctx);
int admin_ip_add(struct admin_ctx *ctx);
int admin_ip_remove(struct admin_ctx *ctx);
int admin_ip_list(struct admin_ctx *ctx);
int admin_tenant_set(struct admin_ctx *ctx);
int admin_recipient_add(struct admin_ctx *ctx);
int admin_recipient_remove(struct admin_ctx *ctx);
int admin_recipient_import(struct admin_ctx *ctx);
int admin_recipient_list(struct admin_ctx *ctx);

/* --- output.c ------------------------------------------------------------------------- */

/* Prints "mxgate: ERR" on stderr for a store result and returns its exit code (0 for
 * STORE_OK, which prints nothing). */
int admin_store_result(int rc, const char *err);
/* Writes t as ISO 8601 UTC into out and returns out. */
const char *admin_time_iso(int64_t t, char out[ADMIN_TIME_MAX]);
/* "1 domain", "2 domains". Returns out. */
const char *admin_count(unsigned n, const char *one, const char *many, char *out, size_t outsz);
/* Prints v (an array) indented on stdout with a final newline, then releases it. */
int admin_json_print(json_t *v);

/* A text table: columns padded to their widest cell, two spaces apart, header first; the
 * last column is not padded, so a free-text column (a comment) goes last. */
struct admin_table;
struct admin_table *admin_table_new(const char *const *headers, size_t ncols);
/* Copies ncols cells. */
void admin_table_row(struct admin_table *t, const char *const *cells);
void admin_table_print(const struct admin_table *t); /* on stdout */
void admin_table_free(struct admin_table **t);

#endif
