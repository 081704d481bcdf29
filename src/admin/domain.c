/* domain: `mxgate domain add|remove|list`. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "admin/admin_private.h"

int admin_domain_add(struct admin_ctx *ctx)
{
	char err[STORE_ERR_MAX], alabel[MODEL_DOMAIN_MAX + 1];
	const char *tenant = ctx->args.pos[0], *domain = ctx->args.pos[1];
	int rc = store_domain_normalize(domain, alabel, err, sizeof(err));

	if (rc == STORE_OK)
		rc = store_domain_add(ctx->st, tenant, domain, err, sizeof(err));
	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	/* An IDN is shown both ways, so the admin sees what mxgate will match. */
	if (strcasecmp(alabel, domain) != 0)
		printf("domain %s (%s) added to tenant %s\n", alabel, domain, tenant);
	else
		printf("domain %s added to tenant %s\n", alabel, tenant);
	return ADMIN_EXIT_OK;
}

struct owner {
	const char *domain;
	char tenant[MODEL_NAME_MAX + 1];
};

static void find_owner(const struct store_domain_info *d, void *arg)
{
	struct owner *o = arg;

	if (strcmp(d->domain, o->domain) == 0)
		snprintf(o->tenant, sizeof(o->tenant), "%s", d->tenant);
}

int admin_domain_remove(struct admin_ctx *ctx)
{
	char err[STORE_ERR_MAX], alabel[MODEL_DOMAIN_MAX + 1];
	struct owner o = { .domain = alabel };
	int rc = store_domain_normalize(ctx->args.pos[0], alabel, err, sizeof(err));

	/* Only for the message; the removal itself finds the domain on its own. */
	if (rc == STORE_OK)
		rc = store_domain_each(ctx->st, NULL, find_owner, &o, err, sizeof(err));
	if (rc == STORE_OK)
		rc = store_domain_remove(ctx->st, alabel, err, sizeof(err));
	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	printf("domain %s removed from tenant %s\n", alabel, o.tenant);
	return ADMIN_EXIT_OK;
}

static void domain_json(const struct store_domain_info *d, void *arg)
{
	json_t *o = json_object();

	json_object_set_new(o, "domain", json_string(d->domain));
	json_object_set_new(o, "tenant", json_string(d->tenant));
	json_array_append_new(arg, o);
}

static void domain_row(const struct store_domain_info *d, void *arg)
{
	admin_table_row(arg, (const char *[]){ d->domain, d->tenant });
}

int admin_domain_list(struct admin_ctx *ctx)
{
	static const char *const headers[] = { "DOMAIN", "TENANT" };
	const char *tenant = ctx->args.npos ? ctx->args.pos[0] : NULL;
	char err[STORE_ERR_MAX];
	int rc;

	if (ctx->args.opt[OPT_JSON]) {
		json_t *out = json_array();
		rc = store_domain_each(ctx->st, tenant, domain_json, out, err, sizeof(err));
		if (rc == STORE_OK)
			return admin_json_print(out);
		json_decref(out);
		return admin_store_result(rc, err);
	}
	struct admin_table *t = admin_table_new(headers, 2);
	rc = store_domain_each(ctx->st, tenant, domain_row, t, err, sizeof(err));
	if (rc == STORE_OK)
		admin_table_print(t);
	admin_table_free(&t);
	return admin_store_result(rc, err);
}
