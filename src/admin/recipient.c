/* recipient: `mxgate recipient add|remove|import|list`, a tenant's recipient directory, and
 * `mxgate tenant set`, the tenant's settings (how its recipients are checked, and how its
 * route is reached over TLS). docs/policy-precedence.md rule 3a says how a running
 * server uses both; the store validates every address. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_private.h"
#include "util/addr.h"
#include "util/xmalloc.h"

/* Bytes of one import line before trimming: far beyond any address (64 + 1 + 253 octets,
 * IDN U-labels a little more), so the only purpose is to stop at a file that is not a list. */
#define IMPORT_LINE_MAX 1024
#define UTF8_BOM "\xef\xbb\xbf"

/* ---- tenant set ----------------------------------------------------------------------- */

/* Warns about each of the tenant's domains that would refuse all its mail. */
static void warn_empty_domain(const struct store_recipient_domain *d, void *arg)
{
	if (d->count == 0)
		fprintf(stderr, "mxgate: warning: tenant %s has no address at %s in its recipient "
				"directory: all mail to %s but postmaster is refused (550 5.1.1) "
				"until you add some (mxgate recipient add|import), or *@%s\n",
			(const char *)arg, d->domain, d->domain, d->domain);
}

static void tenant_route(const struct store_tenant_info *t, void *arg)
{
	snprintf(arg, MODEL_ROUTE_MAX + 1, "%s", t->route);
}

/* verify checks the certificate against the route's host: an IP literal needs a certificate
 * issued to that address, which few are. */
static void warn_verify_ip(struct admin_ctx *ctx, const char *tenant)
{
	char route[MODEL_ROUTE_MAX + 1] = "", host[MODEL_ROUTE_MAX + 1], err[STORE_ERR_MAX];
	struct ip_addr ip;
	uint16_t port;

	store_tenant_each(ctx->st, tenant, tenant_route, route, err, sizeof(err));
	if (hostport_split(route, host, sizeof(host), &port) == 0 && ip_parse(host, &ip) == 0)
		fprintf(stderr, "mxgate: warning: the route of tenant %s is an IP address (%s): with "
				"--route-tls verify its server's certificate must be issued to that "
				"address, or delivery stays deferred (4.7.5)\n", tenant, route);
}

/* Fills settings from the options given; STORE_OK or a refusal in err. */
static int settings_from_args(const struct admin_ctx *ctx, struct store_tenant_settings *set,
			      char *err, size_t esz)
{
	const char *check = ctx->args.opt[OPT_RECIPIENT_CHECK], *tls = ctx->args.opt[OPT_ROUTE_TLS];
	int rc = STORE_OK;

	memset(set, 0, sizeof(*set));
	if (check) {
		set->set_recipient_check = 1;
		rc = store_recipient_check_parse(check, &set->recipient_check, err, esz);
	}
	if (rc == STORE_OK && tls) {
		set->set_route_tls = 1;
		rc = store_route_tls_parse(tls, &set->route_tls, err, esz);
	}
	return rc;
}

int admin_tenant_set(struct admin_ctx *ctx)
{
	const char *tenant = ctx->args.pos[0];
	struct store_tenant_settings set;
	char err[STORE_ERR_MAX];
	int rc = settings_from_args(ctx, &set, err, sizeof(err));

	if (rc == STORE_OK)
		rc = store_tenant_set(ctx->st, tenant, &set, err, sizeof(err));
	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	if (set.set_recipient_check)
		printf("tenant %s: recipient check %s\n", tenant,
		       model_recipient_check_name(set.recipient_check));
	if (set.set_route_tls)
		printf("tenant %s: route TLS %s\n", tenant, model_route_tls_name(set.route_tls));
	if (set.set_recipient_check && set.recipient_check == RCPT_CHECK_DIRECTORY)
		store_recipient_domains(ctx->st, tenant, warn_empty_domain, (void *)tenant, err,
					sizeof(err));
	if (set.set_route_tls && set.route_tls == ROUTE_TLS_VERIFY)
		warn_verify_ip(ctx, tenant);
	return ADMIN_EXIT_OK;
}

/* ---- add and remove ------------------------------------------------------------------- */

/* The address as the store keeps it (IDN domain as A-label), for the message. Only called
 * after the store accepted it. */
static const char *stored_form(const char *address, char out[STORE_ADDRESS_MAX + 1])
{
	char local[MODEL_LOCAL_MAX + 1], domain[MODEL_DOMAIN_MAX + 1], err[STORE_ERR_MAX];

	if (store_address_normalize(address, local, domain, err, sizeof(err)) != STORE_OK)
		return address;
	return store_address_format(local, domain, out, STORE_ADDRESS_MAX + 1);
}

int admin_recipient_add(struct admin_ctx *ctx)
{
	const char *tenant = ctx->args.pos[0], *address = ctx->args.pos[1];
	char err[STORE_ERR_MAX], shown[STORE_ADDRESS_MAX + 1];
	int rc = store_recipient_add(ctx->st, tenant, address, err, sizeof(err));

	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	printf("%s added to the recipient directory of tenant %s\n", stored_form(address, shown),
	       tenant);
	return ADMIN_EXIT_OK;
}

int admin_recipient_remove(struct admin_ctx *ctx)
{
	const char *tenant = ctx->args.pos[0], *address = ctx->args.pos[1];
	char err[STORE_ERR_MAX], shown[STORE_ADDRESS_MAX + 1];
	int rc = store_recipient_remove(ctx->st, tenant, address, err, sizeof(err));

	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	printf("%s removed from the recipient directory of tenant %s\n",
	       stored_form(address, shown), tenant);
	return ADMIN_EXIT_OK;
}

/* ---- import --------------------------------------------------------------------------- */

/* The addresses of a file: their text in one block (offsets until reading ends, because the
 * block moves as it grows), then the store's view of them. */
struct import_file {
	const char *name;
	char *text;
	size_t len, cap;
	struct store_import_line *lines; /* .text holds an offset while reading */
	size_t n, ncap;
};

static void import_take(struct import_file *f, char *line, size_t len, size_t lineno)
{
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' || line[len - 1] == '\r'))
		len--;
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	if (len == 0 || line[0] == '#')
		return;
	if (f->cap - f->len < len + 1) {
		f->cap = f->cap ? f->cap * 2 : 65536;
		while (f->cap - f->len < len + 1)
			f->cap *= 2;
		f->text = xrealloc(f->text, f->cap);
	}
	if (f->n == f->ncap) {
		f->ncap = f->ncap ? f->ncap * 2 : 1024;
		f->lines = xrealloc(f->lines, f->ncap * sizeof(*f->lines));
	}
	f->lines[f->n++] = (struct store_import_line){ (const char *)(uintptr_t)f->len, lineno };
	memcpy(f->text + f->len, line, len);
	f->text[f->len + len] = '\0';
	f->len += len + 1;
}

/* Reads every line of in. Returns an exit code; says why on stderr when it is not 0. */
static int import_read(struct import_file *f, FILE *in)
{
	char line[IMPORT_LINE_MAX + 1];
	size_t len = 0, lineno = 1;
	int c;

	for (;;) {
		c = getc_unlocked(in);
		if (c == EOF || c == '\n') {
			/* skips a UTF-8 byte order mark, as some spreadsheet exports write one */
			size_t bom = lineno == 1 && len >= 3 && memcmp(line, UTF8_BOM, 3) == 0 ? 3 : 0;
			import_take(f, line + bom, len - bom, lineno);
			if (c == EOF)
				break;
			lineno++;
			len = 0;
		} else if (c == '\0') {
			fprintf(stderr, "mxgate: %s line %zu contains a NUL byte; nothing was "
					"imported\n", f->name, lineno);
			return ADMIN_EXIT_USAGE;
		} else if (len == IMPORT_LINE_MAX) {
			fprintf(stderr, "mxgate: %s line %zu is longer than %d bytes; nothing was "
					"imported\n", f->name, lineno, IMPORT_LINE_MAX);
			return ADMIN_EXIT_USAGE;
		} else {
			line[len++] = (char)c;
		}
	}
	if (ferror(in)) {
		fprintf(stderr, "mxgate: cannot read %s: %s; nothing was imported\n", f->name,
			strerror(errno));
		return ADMIN_EXIT_FAIL;
	}
	for (size_t i = 0; i < f->n; i++)
		f->lines[i].text = f->text + (uintptr_t)f->lines[i].text;
	return ADMIN_EXIT_OK;
}

static void tenant_check(const struct store_tenant_info *t, void *arg)
{
	*(enum recipient_check *)arg = t->recipient_check;
}

static int import_store(struct admin_ctx *ctx, const struct import_file *f)
{
	const char *tenant = ctx->args.pos[0];
	enum recipient_check check = RCPT_CHECK_OFF;
	struct store_import_result res;
	char err[STORE_ERR_MAX];
	int rc;

	if (f->n == 0) {
		/* not a change: nothing to reload */
		rc = store_tenant_each(ctx->st, tenant, tenant_check, &check, err, sizeof(err));
		if (rc == STORE_OK)
			printf("no addresses in %s; nothing changed\n", f->name);
		return admin_store_result(rc, err);
	}
	rc = store_recipient_import(ctx->st, tenant, f->name, f->lines, f->n, &res, err,
				    sizeof(err));
	if (rc == STORE_OK)
		rc = store_tenant_each(ctx->st, tenant, tenant_check, &check, err, sizeof(err));
	if (rc != STORE_OK)
		return admin_store_result(rc, err);
	printf("%zu address%s added to the recipient directory of tenant %s (%zu already there); "
	       "recipient check %s\n", res.added, res.added == 1 ? "" : "es", tenant, res.present,
	       model_recipient_check_name(check));
	return ADMIN_EXIT_OK;
}

int admin_recipient_import(struct admin_ctx *ctx)
{
	const char *path = ctx->args.pos[1];
	struct import_file f = { .name = strcmp(path, "-") == 0 ? "standard input" : path };
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	int rc;

	if (!in) {
		fprintf(stderr, "mxgate: cannot open %s: %s\n", path, strerror(errno));
		return ADMIN_EXIT_USAGE;
	}
	rc = import_read(&f, in);
	if (in != stdin)
		fclose(in);
	if (rc == ADMIN_EXIT_OK)
		rc = import_store(ctx, &f);
	free(f.text);
	free(f.lines);
	return rc;
}

/* ---- list ----------------------------------------------------------------------------- */

static void recipient_json(const struct store_recipient_info *r, void *arg)
{
	char when[ADMIN_TIME_MAX];
	json_t *o = json_object();

	json_object_set_new(o, "address", json_string(r->address));
	json_object_set_new(o, "local", json_string(r->local));
	json_object_set_new(o, "domain", json_string(r->domain));
	json_object_set_new(o, "created", json_string(admin_time_iso(r->created, when)));
	json_array_append_new(arg, o);
}

static void recipient_line(const struct store_recipient_info *r, void *arg)
{
	(void)arg;
	puts(r->address);
}

int admin_recipient_list(struct admin_ctx *ctx)
{
	const char *tenant = ctx->args.pos[0];
	char err[STORE_ERR_MAX];
	int rc;

	if (ctx->args.opt[OPT_JSON]) {
		json_t *out = json_array();
		rc = store_recipient_each(ctx->st, tenant, recipient_json, out, err, sizeof(err));
		if (rc == STORE_OK)
			return admin_json_print(out);
		json_decref(out);
		return admin_store_result(rc, err);
	}
	/* One address per line, no header: the import format, so list and import round-trip. */
	rc = store_recipient_each(ctx->st, tenant, recipient_line, NULL, err, sizeof(err));
	return admin_store_result(rc, err);
}
