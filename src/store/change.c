/* change: the store's changes (see store.h). Each validates its input first, outside any
 * transaction, then runs its checks against existing rows and its writes in one
 * store_change() transaction, so a refusal found half-way leaves nothing behind and the
 * generation moves exactly once per change that happened. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/store_private.h"
#include "util/xmalloc.h"

static int64_t now(void)
{
	return (int64_t)time(NULL);
}

/* Runs a query that returns at most one text column; 1 when a row came (text copied into
 * out), 0 when none, STORE_FAILED. */
static int query_text(struct store *st, sqlite3_stmt *s, char *out, size_t outsz,
		      const char *what, char *err, size_t esz)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(s, 0);
		snprintf(out, outsz, "%s", t ? (const char *)t : "");
		rc = 1;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = store_fail(st, what, err, esz);
	}
	sqlite3_finalize(s);
	return rc;
}

/* Runs a DELETE and reports how many rows went, or STORE_FAILED. */
static int delete_rows(struct store *st, sqlite3_stmt *s, const char *what, char *err,
		       size_t esz)
{
	if (store_run(st, s, what, err, esz) != STORE_OK)
		return STORE_FAILED;
	return sqlite3_changes(st->db);
}

/* ---- tenants -------------------------------------------------------------------------- */

struct tenant_args {
	const char *name;
	char route[MODEL_ROUTE_MAX + 1];
};

static int tenant_add_tx(struct store *st, void *arg, char *err, size_t esz)
{
	const struct tenant_args *a = arg;
	char existing[MODEL_NAME_MAX + 1];
	sqlite3_stmt *s;
	int64_t id;
	int rc = store_tenant_find(st, a->name, &id, existing, err, esz);

	if (rc == 1)
		return store_refuse(err, esz, "tenant %s already exists", existing);
	if (rc != 0)
		return rc;
	if (store_stmt(st, &s, "INSERT INTO tenants (name, route, created) VALUES (?, ?, ?)", err,
		       esz, "tti", a->name, a->route, now()) != STORE_OK)
		return STORE_FAILED;
	return store_run(st, s, "adding the tenant", err, esz);
}

int store_tenant_add(struct store *st, const char *name, const char *route, char *err, size_t esz)
{
	struct tenant_args a = { .name = name };
	int rc;

	if ((rc = store_check_name("tenant name", name, err, esz)) != STORE_OK ||
	    (rc = store_norm_route(route, a.route, err, esz)) != STORE_OK)
		return rc;
	return store_change(st, tenant_add_tx, &a, err, esz);
}

static int tenant_remove_tx(struct store *st, void *arg, char *err, size_t esz)
{
	char stored[MODEL_NAME_MAX + 1];
	sqlite3_stmt *s;
	int64_t id;
	int rc = store_tenant_need(st, arg, &id, stored, err, esz);

	if (rc != STORE_OK)
		return rc;
	/* Domains, connectors (and their ranges) and IP list entries go by ON DELETE CASCADE. */
	if (store_stmt(st, &s, "DELETE FROM tenants WHERE id = ?", err, esz, "i", id) != STORE_OK)
		return STORE_FAILED;
	return store_run(st, s, "removing the tenant", err, esz);
}

int store_tenant_remove(struct store *st, const char *name, char *err, size_t esz)
{
	return store_change(st, tenant_remove_tx, (void *)name, err, esz);
}

/* ---- domains -------------------------------------------------------------------------- */

struct domain_args {
	const char *tenant;
	char domain[MODEL_DOMAIN_MAX + 1];
};

static int domain_add_tx(struct store *st, void *arg, char *err, size_t esz)
{
	const struct domain_args *a = arg;
	char tenant[MODEL_NAME_MAX + 1], owner[MODEL_NAME_MAX + 1];
	sqlite3_stmt *s;
	int64_t id;
	int rc = store_tenant_need(st, a->tenant, &id, tenant, err, esz);

	if (rc != STORE_OK)
		return rc;
	if (store_stmt(st, &s, "SELECT t.name FROM domains d JOIN tenants t ON t.id = d.tenant_id "
			       "WHERE d.domain = ?", err, esz, "t", a->domain) != STORE_OK)
		return STORE_FAILED;
	rc = query_text(st, s, owner, sizeof(owner), "looking up the domain", err, esz);
	if (rc == 1 && strcasecmp(owner, tenant) == 0)
		return store_refuse(err, esz, "tenant %s already has domain %s", tenant, a->domain);
	if (rc == 1)
		return store_refuse(err, esz, "domain %s already belongs to tenant %s; a domain "
					      "belongs to at most one tenant, remove it there first",
				    a->domain, owner);
	if (rc != 0)
		return rc;
	if (store_stmt(st, &s, "INSERT INTO domains (domain, tenant_id, created) VALUES (?, ?, ?)",
		       err, esz, "tii", a->domain, id, now()) != STORE_OK)
		return STORE_FAILED;
	return store_run(st, s, "adding the domain", err, esz);
}

int store_domain_add(struct store *st, const char *tenant, const char *domain, char *err, size_t esz)
{
	struct domain_args a = { .tenant = tenant };
	int rc = store_domain_normalize(domain, a.domain, err, esz);

	if (rc != STORE_OK)
		return rc;
	return store_change(st, domain_add_tx, &a, err, esz);
}

static int domain_remove_tx(struct store *st, void *arg, char *err, size_t esz)
{
	const struct domain_args *a = arg;
	sqlite3_stmt *s;
	int n;

	if (store_stmt(st, &s, "DELETE FROM domains WHERE domain = ?", err, esz, "t", a->domain) !=
	    STORE_OK)
		return STORE_FAILED;
	n = delete_rows(st, s, "removing the domain", err, esz);
	if (n == 0)
		return store_refuse(err, esz, "no tenant has domain %s", a->domain);
	return n < 0 ? n : STORE_OK;
}

int store_domain_remove(struct store *st, const char *domain, char *err, size_t esz)
{
	struct domain_args a = { .tenant = NULL };
	int rc = store_domain_normalize(domain, a.domain, err, esz);

	if (rc != STORE_OK)
		return rc;
	return store_change(st, domain_remove_tx, &a, err, esz);
}

/* ---- connectors ----------------------------------------------------------------------- */

struct connector_args {
	const char *tenant;
	const char *name;
	enum connector_type type;
	char tls_name[MODEL_TLS_NAME_MAX + 1];
	int require_tls;
	struct cidr *ranges;
	char (*texts)[STORE_CIDR_MAX];
	size_t nranges;
};

static int connector_ranges_tx(struct store *st, const struct connector_args *a, int64_t id,
			       char *err, size_t esz)
{
	sqlite3_stmt *s;

	for (size_t i = 0; i < a->nranges; i++) {
		if (store_stmt(st, &s, "INSERT INTO connector_ranges (connector_id, cidr, net, "
				       "prefix) VALUES (?, ?, ?, ?)", err, esz, "itbi", id,
			       a->texts[i], &a->ranges[i].net, (int64_t)a->ranges[i].prefix) !=
			    STORE_OK ||
		    store_run(st, s, "adding a connector range", err, esz) != STORE_OK)
			return STORE_FAILED;
	}
	return STORE_OK;
}

static int connector_add_tx(struct store *st, void *arg, char *err, size_t esz)
{
	const struct connector_args *a = arg;
	char tenant[MODEL_NAME_MAX + 1], existing[MODEL_NAME_MAX + 1];
	sqlite3_stmt *s;
	int64_t tid;
	int rc = store_tenant_need(st, a->tenant, &tid, tenant, err, esz);

	if (rc != STORE_OK)
		return rc;
	if (store_stmt(st, &s, "SELECT name FROM connectors WHERE tenant_id = ? AND name = ?", err,
		       esz, "it", tid, a->name) != STORE_OK)
		return STORE_FAILED;
	rc = query_text(st, s, existing, sizeof(existing), "looking up the connector", err, esz);
	if (rc == 1)
		return store_refuse(err, esz, "tenant %s already has a connector named %s", tenant,
				    existing);
	if (rc != 0)
		return rc;
	if (store_stmt(st, &s, "INSERT INTO connectors (tenant_id, name, type, tls_name, "
			       "require_tls, created) VALUES (?, ?, ?, ?, ?, ?)", err, esz, "itttii",
		       tid, a->name, a->type == CONNECTOR_PARTNER ? "partner" : "onprem",
		       a->tls_name, (int64_t)a->require_tls, now()) != STORE_OK ||
	    store_run(st, s, "adding the connector", err, esz) != STORE_OK)
		return STORE_FAILED;
	return connector_ranges_tx(st, a, sqlite3_last_insert_rowid(st->db), err, esz);
}

/* Checks what makes a connector meaningful, before any database access. */
static int connector_check(struct connector_args *a, const char *tls_name, char *err,
			   size_t esz)
{
	int rc;

	if ((rc = store_check_name("connector name", a->name, err, esz)) != STORE_OK)
		return rc;
	if (a->type != CONNECTOR_ONPREM && a->type != CONNECTOR_PARTNER)
		return store_refuse(err, esz, "the connector type must be onprem or partner");
	if (a->require_tls && a->type != CONNECTOR_PARTNER)
		return store_refuse(err, esz, "require-tls applies only to partner connectors; "
					      "an onprem connector's servers are the tenant's own");
	if (a->nranges == 0 && (!tls_name || !*tls_name))
		return store_refuse(err, esz, "connector %s needs at least one IP range or a TLS "
					      "name, otherwise no client can match it", a->name);
	if (tls_name && *tls_name)
		return store_norm_tls_name(tls_name, a->tls_name, err, esz);
	return STORE_OK;
}

/* Parses the ranges into a; refuses a bad one and one given twice (after canonicalizing). */
static int connector_parse_ranges(struct connector_args *a, const char *const *cidrs, char *err,
				  size_t esz)
{
	for (size_t i = 0; i < a->nranges; i++) {
		int rc = store_norm_cidr(cidrs[i], &a->ranges[i], a->texts[i], err, esz);
		if (rc != STORE_OK)
			return rc;
		for (size_t j = 0; j < i; j++)
			if (strcmp(a->texts[i], a->texts[j]) == 0)
				return store_refuse(err, esz, "range %s is given twice", a->texts[i]);
	}
	return STORE_OK;
}

int store_connector_add(struct store *st, const char *tenant, const char *name,
			enum connector_type type, const char *const *cidrs, size_t ncidrs,
			const char *tls_name, int require_tls, char *err, size_t esz)
{
	struct connector_args a = { .tenant = tenant, .name = name, .type = type,
				    .require_tls = require_tls ? 1 : 0, .nranges = ncidrs };
	int rc;

	a.ranges = xcalloc(ncidrs ? ncidrs : 1, sizeof(*a.ranges));
	a.texts = xcalloc(ncidrs ? ncidrs : 1, sizeof(*a.texts));
	rc = connector_check(&a, tls_name, err, esz);
	if (rc == STORE_OK)
		rc = connector_parse_ranges(&a, cidrs, err, esz);
	if (rc == STORE_OK)
		rc = store_change(st, connector_add_tx, &a, err, esz);
	free(a.ranges);
	free(a.texts);
	return rc;
}

static int connector_remove_tx(struct store *st, void *arg, char *err, size_t esz)
{
	const struct connector_args *a = arg;
	char tenant[MODEL_NAME_MAX + 1], q[STORE_QUOTE_MAX + 4];
	sqlite3_stmt *s;
	int64_t tid;
	int rc = store_tenant_need(st, a->tenant, &tid, tenant, err, esz);

	if (rc != STORE_OK)
		return rc;
	if (store_stmt(st, &s, "DELETE FROM connectors WHERE tenant_id = ? AND name = ?", err, esz,
		       "it", tid, a->name) != STORE_OK)
		return STORE_FAILED;
	rc = delete_rows(st, s, "removing the connector", err, esz);
	if (rc == 0)
		return store_refuse(err, esz, "tenant %s has no connector named %s", tenant,
				    store_quote(a->name, q, sizeof(q)));
	return rc < 0 ? rc : STORE_OK;
}

int store_connector_remove(struct store *st, const char *tenant, const char *name, char *err,
			   size_t esz)
{
	struct connector_args a = { .tenant = tenant, .name = name };

	return store_change(st, connector_remove_tx, &a, err, esz);
}

/* ---- IP Allow and Block lists --------------------------------------------------------- */

struct ip_args {
	const char *tenant;
	enum ip_list list;
	struct cidr net;
	char text[STORE_CIDR_MAX];
	const char *comment;
};

static int ip_add_tx(struct store *st, void *arg, char *err, size_t esz)
{
	const struct ip_args *a = arg;
	const char *list = store_list_name(a->list);
	char tenant[MODEL_NAME_MAX + 1], found[8];
	sqlite3_stmt *s;
	int64_t tid;
	int rc = store_tenant_need(st, a->tenant, &tid, tenant, err, esz);

	if (rc != STORE_OK)
		return rc;
	if (store_stmt(st, &s, "SELECT list FROM ip_entries WHERE tenant_id = ? AND list = ? AND "
			       "cidr = ?", err, esz, "itt", tid, list, a->text) != STORE_OK)
		return STORE_FAILED;
	rc = query_text(st, s, found, sizeof(found), "looking up the entry", err, esz);
	if (rc == 1)
		return store_refuse(err, esz, "%s is already on the %s list of tenant %s", a->text,
				    list, tenant);
	if (rc != 0)
		return rc;
	if (store_stmt(st, &s, "INSERT INTO ip_entries (tenant_id, list, cidr, net, prefix, "
			       "comment, created) VALUES (?, ?, ?, ?, ?, ?, ?)", err, esz, "ittbiti",
		       tid, list, a->text, &a->net.net, (int64_t)a->net.prefix, a->comment,
		       now()) != STORE_OK)
		return STORE_FAILED;
	return store_run(st, s, "adding the entry", err, esz);
}

/* Validation shared by add and remove. */
static int ip_check(struct ip_args *a, const char *cidr, char *err, size_t esz)
{
	if (!store_list_name(a->list))
		return store_refuse(err, esz, "the IP list must be allow or block");
	return store_norm_cidr(cidr, &a->net, a->text, err, esz);
}

int store_ip_add(struct store *st, const char *tenant, enum ip_list list, const char *cidr,
		 const char *comment, char *err, size_t esz)
{
	struct ip_args a = { .tenant = tenant, .list = list, .comment = comment ? comment : "" };
	int rc;

	if ((rc = ip_check(&a, cidr, err, esz)) != STORE_OK ||
	    (rc = store_check_comment(a.comment, err, esz)) != STORE_OK)
		return rc;
	return store_change(st, ip_add_tx, &a, err, esz);
}

static int ip_remove_tx(struct store *st, void *arg, char *err, size_t esz)
{
	const struct ip_args *a = arg;
	const char *list = store_list_name(a->list);
	char tenant[MODEL_NAME_MAX + 1];
	sqlite3_stmt *s;
	int64_t tid;
	int rc = store_tenant_need(st, a->tenant, &tid, tenant, err, esz);

	if (rc != STORE_OK)
		return rc;
	if (store_stmt(st, &s, "DELETE FROM ip_entries WHERE tenant_id = ? AND list = ? AND "
			       "cidr = ?", err, esz, "itt", tid, list, a->text) != STORE_OK)
		return STORE_FAILED;
	rc = delete_rows(st, s, "removing the entry", err, esz);
	if (rc == 0)
		return store_refuse(err, esz, "%s is not on the %s list of tenant %s", a->text, list,
				    tenant);
	return rc < 0 ? rc : STORE_OK;
}

int store_ip_remove(struct store *st, const char *tenant, enum ip_list list, const char *cidr,
		    char *err, size_t esz)
{
	struct ip_args a = { .tenant = tenant, .list = list };
	int rc = ip_check(&a, cidr, err, esz);

	if (rc != STORE_OK)
		return rc;
	return store_change(st, ip_remove_tx, &a, err, esz);
}

/* ---- recipient validation ------------------------------------------------------------- */

struct settings_args {
	const char *tenant;
	struct store_tenant_settings set;
};

static int settings_tx(struct store *st, void *arg, char *err, size_t esz)
{
	const struct settings_args *a = arg;
	const char *check = model_recipient_check_name(a->set.recipient_check);
	const char *tls = model_route_tls_name(a->set.route_tls);
	char tenant[MODEL_NAME_MAX + 1];
	sqlite3_stmt *s;
	int64_t tid;
	int rc = store_tenant_need(st, a->tenant, &tid, tenant, err, esz);

	if (rc != STORE_OK)
		return rc;
	/* NULL leaves a column as it is */
	if (store_stmt(st, &s, "UPDATE tenants SET recipient_check = coalesce(?, recipient_check),"
			       " route_tls = coalesce(?, route_tls) WHERE id = ?", err, esz, "tti",
		       a->set.set_recipient_check ? check : NULL, a->set.set_route_tls ? tls : NULL,
		       tid) != STORE_OK)
		return STORE_FAILED;
	return store_run(st, s, "changing the tenant's settings", err, esz);
}

int store_tenant_set(struct store *st, const char *tenant,
		     const struct store_tenant_settings *settings, char *err, size_t esz)
{
	struct settings_args a = { tenant, *settings };

	if (!a.set.set_recipient_check && !a.set.set_route_tls)
		return store_refuse(err, esz, "nothing to set: give a recipient check or a route TLS "
					      "mode");
	if (a.set.set_recipient_check && !model_recipient_check_name(a.set.recipient_check))
		return store_refuse(err, esz, "the recipient check must be off, directory or probe");
	if (a.set.set_route_tls && !model_route_tls_name(a.set.route_tls))
		return store_refuse(err, esz, "the route TLS must be opportunistic, required or "
					      "verify");
	return store_change(st, settings_tx, &a, err, esz);
}

int store_tenant_set_recipient_check(struct store *st, const char *tenant,
				     enum recipient_check check, char *err, size_t esz)
{
	struct store_tenant_settings a = { .set_recipient_check = 1, .recipient_check = check };

	return store_tenant_set(st, tenant, &a, err, esz);
}

int store_tenant_set_route_tls(struct store *st, const char *tenant, enum route_tls tls,
			       char *err, size_t esz)
{
	struct store_tenant_settings a = { .set_route_tls = 1, .route_tls = tls };

	return store_tenant_set(st, tenant, &a, err, esz);
}

/* A tenant's domains, read once per change: an import checks every line against them. */
struct tenant_domains {
	char (*v)[MODEL_DOMAIN_MAX + 1];
	size_t n;
};

static int tenant_domains_read(struct store *st, int64_t tid, struct tenant_domains *d,
			       char *err, size_t esz)
{
	sqlite3_stmt *s;
	int rc;

	if (store_stmt(st, &s, "SELECT domain FROM domains WHERE tenant_id = ? ORDER BY domain",
		       err, esz, "i", tid) != STORE_OK)
		return STORE_FAILED;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		d->v = xrealloc(d->v, (d->n + 1) * sizeof(*d->v));
		snprintf(d->v[d->n++], sizeof(d->v[0]), "%s", (const char *)sqlite3_column_text(s, 0));
	}
	if (rc != SQLITE_DONE)
		store_fail(st, "reading the tenant's domains", err, esz);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? STORE_OK : STORE_FAILED;
}

static int domain_cmp(const void *key, const void *elem)
{
	return strcmp(key, elem);
}

/* The domains are in strcmp order (ORDER BY domain, BINARY collation). */
static int tenant_domains_has(const struct tenant_domains *d, const char *domain)
{
	return d->n && bsearch(domain, d->v, d->n, sizeof(*d->v), domain_cmp) != NULL;
}

/* Refuses an address whose domain is not the tenant's, saying whose it is or what the
 * tenant's are. */
static int domain_not_tenants(struct store *st, const char *tenant,
			      const struct tenant_domains *d, const char *address,
			      const char *domain, char *err, size_t esz)
{
	char owner[MODEL_NAME_MAX + 1], q[STORE_QUOTE_MAX + 4], list[160] = "";
	sqlite3_stmt *s;
	int rc;

	if (store_stmt(st, &s, "SELECT t.name FROM domains d JOIN tenants t ON t.id = d.tenant_id "
			       "WHERE d.domain = ?", err, esz, "t", domain) != STORE_OK)
		return STORE_FAILED;
	rc = query_text(st, s, owner, sizeof(owner), "looking up the domain", err, esz);
	if (rc < 0)
		return STORE_FAILED;
	store_quote(address, q, sizeof(q));
	if (rc == 1)
		return store_refuse(err, esz, "address %s: domain %s belongs to tenant %s, not to "
					      "tenant %s", q, domain, owner, tenant);
	for (size_t i = 0, off = 0; i < d->n && off < sizeof(list); i++) {
		int n = snprintf(list + off, sizeof(list) - off, "%s%s", i ? ", " : "", d->v[i]);
		off += n > 0 ? (size_t)n : 0;
	}
	if (d->n == 0)
		return store_refuse(err, esz, "address %s: tenant %s has no domains; add the domain "
					      "first (mxgate domain add %s %s)", q, tenant, tenant,
				    domain);
	return store_refuse(err, esz, "address %s: domain %s is not one of tenant %s's domains "
				      "(%s)", q, domain, tenant, list);
}

struct rcpt_args {
	const char *tenant;
	const char *address;
	char local[MODEL_LOCAL_MAX + 1];
	char domain[MODEL_DOMAIN_MAX + 1];
};

static int rcpt_add_tx(struct store *st, void *arg, char *err, size_t esz)
{
	const struct rcpt_args *a = arg;
	char tenant[MODEL_NAME_MAX + 1], found[MODEL_LOCAL_MAX + 1], shown[STORE_ADDRESS_MAX + 1];
	struct tenant_domains d = { 0 };
	sqlite3_stmt *s;
	int64_t tid;
	int rc = store_tenant_need(st, a->tenant, &tid, tenant, err, esz);

	if (rc == STORE_OK)
		rc = tenant_domains_read(st, tid, &d, err, esz);
	if (rc == STORE_OK && !tenant_domains_has(&d, a->domain))
		rc = domain_not_tenants(st, tenant, &d, a->address, a->domain, err, esz);
	free(d.v);
	if (rc != STORE_OK)
		return rc;
	if (store_stmt(st, &s, "SELECT local FROM recipients WHERE tenant_id = ? AND domain = ? "
			       "AND local = ?", err, esz, "itt", tid, a->domain, a->local) != STORE_OK)
		return STORE_FAILED;
	rc = query_text(st, s, found, sizeof(found), "looking up the address", err, esz);
	if (rc == 1)
		return store_refuse(err, esz, "%s is already in the recipient directory of tenant %s",
				    store_address_format(found, a->domain, shown, sizeof(shown)),
				    tenant);
	if (rc != 0)
		return rc;
	if (store_stmt(st, &s, "INSERT INTO recipients (tenant_id, domain, local, created) "
			       "VALUES (?, ?, ?, ?)", err, esz, "itti", tid, a->domain, a->local,
		       now()) != STORE_OK)
		return STORE_FAILED;
	return store_run(st, s, "adding the address", err, esz);
}

int store_recipient_add(struct store *st, const char *tenant, const char *address, char *err,
			size_t esz)
{
	struct rcpt_args a = { .tenant = tenant, .address = address };
	int rc = store_address_normalize(address, a.local, a.domain, err, esz);

	if (rc != STORE_OK)
		return rc;
	return store_change(st, rcpt_add_tx, &a, err, esz);
}

static int rcpt_remove_tx(struct store *st, void *arg, char *err, size_t esz)
{
	const struct rcpt_args *a = arg;
	char tenant[MODEL_NAME_MAX + 1], shown[STORE_ADDRESS_MAX + 1];
	sqlite3_stmt *s;
	int64_t tid;
	int rc = store_tenant_need(st, a->tenant, &tid, tenant, err, esz);

	if (rc != STORE_OK)
		return rc;
	if (store_stmt(st, &s, "DELETE FROM recipients WHERE tenant_id = ? AND domain = ? AND "
			       "local = ?", err, esz, "itt", tid, a->domain, a->local) != STORE_OK)
		return STORE_FAILED;
	rc = delete_rows(st, s, "removing the address", err, esz);
	if (rc == 0)
		return store_refuse(err, esz, "%s is not in the recipient directory of tenant %s",
				    store_address_format(a->local, a->domain, shown, sizeof(shown)),
				    tenant);
	return rc < 0 ? rc : STORE_OK;
}

int store_recipient_remove(struct store *st, const char *tenant, const char *address,
			   char *err, size_t esz)
{
	struct rcpt_args a = { .tenant = tenant, .address = address };
	int rc = store_address_normalize(address, a.local, a.domain, err, esz);

	if (rc != STORE_OK)
		return rc;
	return store_change(st, rcpt_remove_tx, &a, err, esz);
}

/* ---- import --------------------------------------------------------------------------- */

struct import_args {
	const char *tenant;
	const char *source;
	const struct store_import_line *lines;
	size_t nlines;
	struct store_import_result res;
	int64_t created;
	/* the first refusal and how many lines were bad */
	char first[STORE_ERR_MAX];
	size_t first_line, nbad;
};

/* Normalizes one line. Domains seen before are not converted again: an import names a
 * tenant's few domains over and over, and the IDN conversion is the costly part. */
#define IMPORT_DOMAIN_CACHE 16

struct import_cursor {
	struct {
		char raw[MODEL_DOMAIN_MAX + 1]; /* as given */
		char norm[MODEL_DOMAIN_MAX + 1];
	} seen[IMPORT_DOMAIN_CACHE];
	size_t nseen, next; /* next: the slot to reuse when full */
	char local[MODEL_LOCAL_MAX + 1];
	const char *domain; /* normalized, into seen[] */
};

static int import_norm(struct import_cursor *c, const char *text, char *err, size_t esz)
{
	const char *raw;
	int rc = store_address_split(text, c->local, &raw, err, esz);

	if (rc != STORE_OK)
		return rc;
	for (size_t i = 0; i < c->nseen; i++) {
		if (strcmp(c->seen[i].raw, raw) == 0) {
			c->domain = c->seen[i].norm;
			return STORE_OK;
		}
	}
	size_t slot = c->nseen < IMPORT_DOMAIN_CACHE ? c->nseen++ : c->next++ % IMPORT_DOMAIN_CACHE;
	if ((rc = store_domain_normalize(raw, c->seen[slot].norm, err, esz)) != STORE_OK ||
	    strlen(raw) >= sizeof(c->seen[slot].raw)) {
		c->seen[slot].raw[0] = '\0'; /* matches no domain: split refuses empty ones */
		c->domain = c->seen[slot].norm;
		return rc;
	}
	strcpy(c->seen[slot].raw, raw);
	c->domain = c->seen[slot].norm;
	return STORE_OK;
}

/* Records a bad line; only the first one's sentence is kept. */
static void import_bad(struct import_args *a, size_t line, const char *why)
{
	if (a->nbad++ == 0) {
		a->first_line = line;
		snprintf(a->first, sizeof(a->first), "%s", why);
	}
}

/* Inserts one normalized address; counts it as added or already there. */
static int import_insert(struct store *st, struct import_args *a, sqlite3_stmt *ins,
			 int64_t tid, const struct import_cursor *c, char *err, size_t esz)
{
	sqlite3_reset(ins);
	if (sqlite3_bind_int64(ins, 1, tid) != SQLITE_OK ||
	    sqlite3_bind_text(ins, 2, c->domain, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_text(ins, 3, c->local, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(ins, 4, a->created) != SQLITE_OK || sqlite3_step(ins) != SQLITE_DONE)
		return store_fail(st, "importing the addresses", err, esz);
	if (sqlite3_changes(st->db) == 1)
		a->res.added++;
	else
		a->res.present++;
	return STORE_OK;
}

static int import_rows(struct store *st, struct import_args *a, int64_t tid, const char *tenant,
		       const struct tenant_domains *d, sqlite3_stmt *ins, char *err, size_t esz)
{
	struct import_cursor *c = xcalloc(1, sizeof(*c));
	char why[STORE_ERR_MAX];
	int rc = STORE_OK;

	for (size_t i = 0; i < a->nlines && rc == STORE_OK; i++) {
		const struct store_import_line *l = &a->lines[i];
		if (import_norm(c, l->text, why, sizeof(why)) != STORE_OK) {
			import_bad(a, l->line, why);
		} else if (!tenant_domains_has(d, c->domain)) {
			/* the sentence (a query) only for the first bad line: it alone is shown */
			if (a->nbad == 0)
				rc = domain_not_tenants(st, tenant, d, l->text, c->domain, why,
							sizeof(why));
			if (rc == STORE_FAILED)
				snprintf(err, esz, "%s", why);
			else
				rc = STORE_OK;
			import_bad(a, l->line, why);
		} else if (a->nbad == 0) { /* after a bad line, only look for more bad lines */
			rc = import_insert(st, a, ins, tid, c, err, esz);
		}
	}
	free(c);
	return rc;
}

static int import_tx(struct store *st, void *arg, char *err, size_t esz)
{
	struct import_args *a = arg;
	char tenant[MODEL_NAME_MAX + 1];
	struct tenant_domains d = { 0 };
	sqlite3_stmt *ins = NULL;
	int64_t tid;
	int rc = store_tenant_need(st, a->tenant, &tid, tenant, err, esz);

	if (rc == STORE_OK)
		rc = tenant_domains_read(st, tid, &d, err, esz);
	if (rc == STORE_OK)
		rc = store_stmt(st, &ins, "INSERT OR IGNORE INTO recipients (tenant_id, domain, "
					  "local, created) VALUES (?, ?, ?, ?)", err, esz, "");
	if (rc == STORE_OK)
		rc = import_rows(st, a, tid, tenant, &d, ins, err, esz);
	sqlite3_finalize(ins);
	free(d.v);
	if (rc == STORE_OK && a->nbad > 1)
		rc = store_refuse(err, esz, "%s line %zu: %s (and %zu more bad line%s); nothing was "
					    "imported", a->source, a->first_line, a->first,
				  a->nbad - 1, a->nbad == 2 ? "" : "s");
	else if (rc == STORE_OK && a->nbad == 1)
		rc = store_refuse(err, esz, "%s line %zu: %s; nothing was imported", a->source,
				  a->first_line, a->first);
	return rc;
}

int store_recipient_import(struct store *st, const char *tenant, const char *source,
			   const struct store_import_line *lines, size_t nlines,
			   struct store_import_result *res_r, char *err, size_t esz)
{
	struct import_args *a = xcalloc(1, sizeof(*a));
	int rc;

	a->tenant = tenant;
	a->source = source ? source : "input";
	a->lines = lines;
	a->nlines = nlines;
	a->created = now();
	rc = store_change(st, import_tx, a, err, esz);
	if (res_r)
		*res_r = rc == STORE_OK ? a->res : (struct store_import_result){ 0 };
	free(a);
	return rc;
}
