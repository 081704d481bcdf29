/* iplist: `mxgate allow|block add|remove|list`, one set of handlers for both lists (the
 * family chooses the list through ctx->list). */
#include <stdio.h>

#include "admin/admin_private.h"

static const char *list_name(enum ip_list list)
{
	return list == IP_LIST_BLOCK ? "block" : "allow";
}

/* The entry as the store keeps it ("192.0.2.7" -> "192.0.2.7/32"). Only called after the
 * store accepted the text, so it parses. */
static const char *canonical(const char *in, char *out, size_t outsz)
{
	struct cidr c;

	if (cidr_parse(in, &c) != ADDR_OK)
		return in;
	return cidr_format(&c, out, outsz);
}

int admin_ip_add(struct admin_ctx *ctx)
{
	const char *tenant = ctx->args.pos[0], *cidr = ctx->args.pos[1];
	char err[STORE_ERR_MAX], text[ADDR_STR_MAX + 8];
	int rc = store_ip_add(ctx->st, tenant, ctx->list, cidr, ctx->args.opt[OPT_COMMENT], err,
			      sizeof(err));

	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	printf("%s added to the %s list of tenant %s\n", canonical(cidr, text, sizeof(text)),
	       list_name(ctx->list), tenant);
	return ADMIN_EXIT_OK;
}

int admin_ip_remove(struct admin_ctx *ctx)
{
	const char *tenant = ctx->args.pos[0], *cidr = ctx->args.pos[1];
	char err[STORE_ERR_MAX], text[ADDR_STR_MAX + 8];
	int rc = store_ip_remove(ctx->st, tenant, ctx->list, cidr, err, sizeof(err));

	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	printf("%s removed from the %s list of tenant %s\n", canonical(cidr, text, sizeof(text)),
	       list_name(ctx->list), tenant);
	return ADMIN_EXIT_OK;
}

static void ip_json(const struct store_ip_info *e, void *arg)
{
	char when[ADMIN_TIME_MAX];
	json_t *o = json_object();

	json_object_set_new(o, "cidr", json_string(e->cidr));
	json_object_set_new(o, "comment", json_string(e->comment));
	json_object_set_new(o, "created", json_string(admin_time_iso(e->created, when)));
	json_array_append_new(arg, o);
}

static void ip_row(const struct store_ip_info *e, void *arg)
{
	char when[ADMIN_TIME_MAX];

	admin_table_row(arg, (const char *[]){ e->cidr, admin_time_iso(e->created, when),
					       e->comment });
}

int admin_ip_list(struct admin_ctx *ctx)
{
	static const char *const headers[] = { "CIDR", "CREATED", "COMMENT" };
	const char *tenant = ctx->args.pos[0];
	char err[STORE_ERR_MAX];
	int rc;

	if (ctx->args.opt[OPT_JSON]) {
		json_t *out = json_array();
		rc = store_ip_each(ctx->st, tenant, ctx->list, ip_json, out, err, sizeof(err));
		if (rc == STORE_OK)
			return admin_json_print(out);
		json_decref(out);
		return admin_store_result(rc, err);
	}
	struct admin_table *t = admin_table_new(headers, 3);
	rc = store_ip_each(ctx->st, tenant, ctx->list, ip_row, t, err, sizeof(err));
	if (rc == STORE_OK)
		admin_table_print(t);
	admin_table_free(&t);
	return admin_store_result(rc, err);
}
