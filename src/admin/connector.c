/* connector: `mxgate connector add|remove|list`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "admin/admin_private.h"
#include "util/xmalloc.h"

static const char *type_name(enum connector_type type)
{
	return type == CONNECTOR_PARTNER ? "partner" : "onprem";
}

/* "a,b,c", or "-" for none; the caller frees it. */
static char *join_ranges(const struct store_connector_info *c)
{
	size_t len = 2;
	char *out;

	for (size_t i = 0; i < c->nranges; i++)
		len += strlen(c->ranges[i]) + 1;
	out = xmalloc(len);
	strcpy(out, c->nranges ? "" : "-");
	for (size_t i = 0; i < c->nranges; i++) {
		if (i)
			strcat(out, ",");
		strcat(out, c->ranges[i]);
	}
	return out;
}

/* Prints the success line from the connector as stored (canonical ranges and name). */
struct added {
	const char *name;
	int printed;
};

static void print_added(const struct store_connector_info *c, void *arg)
{
	struct added *a = arg;
	char *ranges;

	if (a->printed || strcasecmp(c->name, a->name) != 0)
		return;
	ranges = join_ranges(c);
	printf("connector %s added to tenant %s (%s; ranges %s; TLS name %s%s)\n", c->name,
	       c->tenant, type_name(c->type), ranges, *c->tls_name ? c->tls_name : "-",
	       c->require_tls ? "; TLS required" : "");
	free(ranges);
	a->printed = 1;
}

int admin_connector_add(struct admin_ctx *ctx)
{
	const struct admin_args *a = &ctx->args;
	const char *type = a->opt[OPT_TYPE];
	struct added added = { .name = a->pos[1] };
	char err[STORE_ERR_MAX];
	enum connector_type t;
	int rc;

	if (strcmp(type, "onprem") == 0) {
		t = CONNECTOR_ONPREM;
	} else if (strcmp(type, "partner") == 0) {
		t = CONNECTOR_PARTNER;
	} else {
		fprintf(stderr, "mxgate: connector type '%s' is not onprem or partner\n", type);
		return ADMIN_EXIT_USAGE;
	}
	rc = store_connector_add(ctx->st, a->pos[0], a->pos[1], t, a->ips, a->nips,
				 a->opt[OPT_TLS_NAME], a->opt[OPT_REQUIRE_TLS] != NULL, err,
				 sizeof(err));
	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	store_connector_each(ctx->st, a->pos[0], print_added, &added, err, sizeof(err));
	if (!added.printed)
		printf("connector %s added to tenant %s\n", a->pos[1], a->pos[0]);
	return ADMIN_EXIT_OK;
}

int admin_connector_remove(struct admin_ctx *ctx)
{
	char err[STORE_ERR_MAX];
	int rc = store_connector_remove(ctx->st, ctx->args.pos[0], ctx->args.pos[1], err,
					sizeof(err));

	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	printf("connector %s removed from tenant %s\n", ctx->args.pos[1], ctx->args.pos[0]);
	return ADMIN_EXIT_OK;
}

static void connector_json(const struct store_connector_info *c, void *arg)
{
	json_t *o = json_object(), *ranges = json_array();

	for (size_t i = 0; i < c->nranges; i++)
		json_array_append_new(ranges, json_string(c->ranges[i]));
	json_object_set_new(o, "tenant", json_string(c->tenant));
	json_object_set_new(o, "name", json_string(c->name));
	json_object_set_new(o, "type", json_string(type_name(c->type)));
	json_object_set_new(o, "ranges", ranges);
	json_object_set_new(o, "tls_name", *c->tls_name ? json_string(c->tls_name) : json_null());
	json_object_set_new(o, "require_tls", json_boolean(c->require_tls));
	json_array_append_new(arg, o);
}

static void connector_row(const struct store_connector_info *c, void *arg)
{
	char *ranges = join_ranges(c);

	admin_table_row(arg, (const char *[]){ c->tenant, c->name, type_name(c->type),
					       *c->tls_name ? c->tls_name : "-",
					       c->require_tls ? "yes" : "no", ranges });
	free(ranges);
}

int admin_connector_list(struct admin_ctx *ctx)
{
	static const char *const headers[] = { "TENANT",      "CONNECTOR", "TYPE",
					       "TLS-NAME",    "REQUIRE-TLS", "RANGES" };
	const char *tenant = ctx->args.npos ? ctx->args.pos[0] : NULL;
	char err[STORE_ERR_MAX];
	int rc;

	if (ctx->args.opt[OPT_JSON]) {
		json_t *out = json_array();
		rc = store_connector_each(ctx->st, tenant, connector_json, out, err, sizeof(err));
		if (rc == STORE_OK)
			return admin_json_print(out);
		json_decref(out);
		return admin_store_result(rc, err);
	}
	struct admin_table *t = admin_table_new(headers, 6);
	rc = store_connector_each(ctx->st, tenant, connector_row, t, err, sizeof(err));
	if (rc == STORE_OK)
		admin_table_print(t);
	admin_table_free(&t);
	return admin_store_result(rc, err);
}
