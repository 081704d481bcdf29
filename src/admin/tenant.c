/* tenant: `mxgate tenant add|remove|list` (`tenant set` is in recipient.c). */
#include <stdio.h>
#include <string.h>

#include "admin/admin_private.h"

/* A copy of one tenant's row, taken before a change reports on it. */
struct tenant_copy {
	int found;
	char name[MODEL_NAME_MAX + 1];
	char route[MODEL_ROUTE_MAX + 1];
	struct store_tenant_info info; /* counts only; the strings are the copies above */
};

static void copy_tenant(const struct store_tenant_info *t, void *arg)
{
	struct tenant_copy *c = arg;

	c->found = 1;
	c->info = *t;
	snprintf(c->name, sizeof(c->name), "%s", t->name);
	snprintf(c->route, sizeof(c->route), "%s", t->route);
}

int admin_tenant_add(struct admin_ctx *ctx)
{
	struct tenant_copy c = { 0 };
	char err[STORE_ERR_MAX];
	const char *name = ctx->args.pos[0];
	int rc = store_tenant_add(ctx->st, name, ctx->args.opt[OPT_ROUTE], err, sizeof(err));

	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	/* Report the route as stored (normalized), which may differ from what was typed. */
	store_tenant_each(ctx->st, name, copy_tenant, &c, err, sizeof(err));
	printf("tenant %s added (route %s)\n", name, c.found ? c.route : ctx->args.opt[OPT_ROUTE]);
	return ADMIN_EXIT_OK;
}

int admin_tenant_remove(struct admin_ctx *ctx)
{
	struct tenant_copy c = { 0 };
	char err[STORE_ERR_MAX], d[32], k[32], a[32], b[32];
	int rc = store_tenant_each(ctx->st, ctx->args.pos[0], copy_tenant, &c, err, sizeof(err));

	if (rc == STORE_OK)
		rc = store_tenant_remove(ctx->st, ctx->args.pos[0], err, sizeof(err));
	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	printf("tenant %s removed with its %s, %s, %s and %s\n", c.name,
	       admin_count(c.info.ndomains, "domain", "domains", d, sizeof(d)),
	       admin_count(c.info.nconnectors, "connector", "connectors", k, sizeof(k)),
	       admin_count(c.info.nallow, "allow list entry", "allow list entries", a, sizeof(a)),
	       admin_count(c.info.nblock, "block list entry", "block list entries", b, sizeof(b)));
	return ADMIN_EXIT_OK;
}

/* ---- list ----------------------------------------------------------------------------- */

static void tenant_json(const struct store_tenant_info *t, void *arg)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(t->name));
	json_object_set_new(o, "route", json_string(t->route));
	json_object_set_new(o, "route_tls", json_string(model_route_tls_name(t->route_tls)));
	json_object_set_new(o, "domains", json_array());
	json_object_set_new(o, "connectors", json_integer(t->nconnectors));
	json_object_set_new(o, "allow", json_integer(t->nallow));
	json_object_set_new(o, "block", json_integer(t->nblock));
	/* keyed by name so that the domains can find their tenant */
	json_object_set_new(arg, t->name, o);
}

static void domain_json(const struct store_domain_info *d, void *arg)
{
	json_t *tenant = json_object_get(arg, d->tenant);

	if (tenant)
		json_array_append_new(json_object_get(tenant, "domains"), json_string(d->domain));
}

static int list_json(struct admin_ctx *ctx)
{
	json_t *by_name = json_object(), *out = json_array(), *o;
	char err[STORE_ERR_MAX];
	const char *name;
	int rc = store_tenant_each(ctx->st, NULL, tenant_json, by_name, err, sizeof(err));

	if (rc == STORE_OK)
		rc = store_domain_each(ctx->st, NULL, domain_json, by_name, err, sizeof(err));
	json_object_foreach(by_name, name, o)
		json_array_append(out, o);
	json_decref(by_name);
	if (rc != STORE_OK) {
		json_decref(out);
		return admin_store_result(rc, err);
	}
	return admin_json_print(out);
}

static void tenant_row(const struct store_tenant_info *t, void *arg)
{
	char d[16], c[16], a[16], b[16];

	snprintf(d, sizeof(d), "%u", t->ndomains);
	snprintf(c, sizeof(c), "%u", t->nconnectors);
	snprintf(a, sizeof(a), "%u", t->nallow);
	snprintf(b, sizeof(b), "%u", t->nblock);
	admin_table_row(arg, (const char *[]){ t->name, t->route, model_route_tls_name(t->route_tls),
					       d, c, a, b });
}

int admin_tenant_list(struct admin_ctx *ctx)
{
	static const char *const headers[] = { "TENANT", "ROUTE", "ROUTE-TLS", "DOMAINS",
					       "CONNECTORS", "ALLOW", "BLOCK" };
	struct admin_table *t;
	char err[STORE_ERR_MAX];
	int rc;

	if (ctx->args.opt[OPT_JSON])
		return list_json(ctx);
	t = admin_table_new(headers, sizeof(headers) / sizeof(headers[0]));
	rc = store_tenant_each(ctx->st, NULL, tenant_row, t, err, sizeof(err));
	if (rc == STORE_OK)
		admin_table_print(t);
	admin_table_free(&t);
	return admin_store_result(rc, err);
}
