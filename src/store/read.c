/* read: the store's readers (see store.h). store_load() builds a policy snapshot from one
 * read transaction, so the snapshot and its generation always agree; the *_each views serve
 * the admin lists in a stable order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_private.h"
#include "util/xmalloc.h"

/* ---- snapshot ------------------------------------------------------------------------- */

typedef int (*load_row_fn)(struct model_builder *b, sqlite3_stmt *s);

static const char *col_text(sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);

	return t ? (const char *)t : "";
}

/* The model indexes by 32-bit ids; SQLite hands them out from 1 upwards. */
static int col_id(sqlite3_stmt *s, int col, uint32_t *id_r)
{
	int64_t v = sqlite3_column_int64(s, col);

	if (v < 1 || v >= UINT32_MAX)
		return -1;
	*id_r = (uint32_t)v;
	return 0;
}

static int col_cidr(sqlite3_stmt *s, int col, struct cidr *c_r)
{
	int64_t prefix = sqlite3_column_int64(s, col + 1);

	if (sqlite3_column_bytes(s, col) != 16 || prefix < 0 || prefix > 128)
		return -1;
	memcpy(c_r->net.b, sqlite3_column_blob(s, col), 16);
	c_r->prefix = (uint8_t)prefix;
	return 0;
}

static int col_list(sqlite3_stmt *s, int col, enum ip_list *list_r)
{
	const char *t = col_text(s, col);

	*list_r = strcmp(t, "block") == 0 ? IP_LIST_BLOCK : IP_LIST_ALLOW;
	return strcmp(t, "allow") == 0 || strcmp(t, "block") == 0 ? 0 : -1;
}

/* The stored text of a recipient check; -1 for one this mxgate does not know. */
static int col_check(sqlite3_stmt *s, int col, enum recipient_check *check_r)
{
	const char *t = col_text(s, col);

	if (strcmp(t, "off") == 0)
		*check_r = RCPT_CHECK_OFF;
	else if (strcmp(t, "directory") == 0)
		*check_r = RCPT_CHECK_DIRECTORY;
	else if (strcmp(t, "probe") == 0)
		*check_r = RCPT_CHECK_PROBE;
	else
		return -1;
	return 0;
}

/* The stored text of a route TLS mode; -1 for one this mxgate does not know. */
static int col_route_tls(sqlite3_stmt *s, int col, enum route_tls *tls_r)
{
	return model_route_tls_parse(col_text(s, col), tls_r);
}

static int load_tenant(struct model_builder *b, sqlite3_stmt *s)
{
	enum recipient_check check;
	enum route_tls tls;
	uint32_t id;

	if (col_id(s, 0, &id) < 0 || col_check(s, 3, &check) < 0 ||
	    col_route_tls(s, 4, &tls) < 0 ||
	    model_add_tenant(b, id, col_text(s, 1), col_text(s, 2)) < 0)
		return -1;
	if (check != RCPT_CHECK_OFF && model_set_recipient_check(b, id, check) < 0)
		return -1;
	return tls == ROUTE_TLS_OPPORTUNISTIC ? 0 : model_set_route_tls(b, id, tls);
}

static int load_recipient(struct model_builder *b, sqlite3_stmt *s)
{
	uint32_t tid;

	if (col_id(s, 0, &tid) < 0)
		return -1;
	return model_add_recipient(b, tid, col_text(s, 1), col_text(s, 2));
}

static int load_domain(struct model_builder *b, sqlite3_stmt *s)
{
	uint32_t tid;

	if (col_id(s, 0, &tid) < 0)
		return -1;
	return model_add_domain(b, tid, col_text(s, 1));
}

static int load_connector(struct model_builder *b, sqlite3_stmt *s)
{
	enum connector_type type = strcmp(col_text(s, 3), "partner") == 0 ? CONNECTOR_PARTNER
									   : CONNECTOR_ONPREM;
	uint32_t id, tid;

	if (col_id(s, 0, &id) < 0 || col_id(s, 1, &tid) < 0)
		return -1;
	return model_add_connector(b, id, tid, col_text(s, 2), type, col_text(s, 4),
				   sqlite3_column_int(s, 5));
}

static int load_range(struct model_builder *b, sqlite3_stmt *s)
{
	struct cidr range;
	uint32_t cid;

	if (col_id(s, 0, &cid) < 0 || col_cidr(s, 1, &range) < 0)
		return -1;
	return model_add_connector_range(b, cid, &range);
}

static int load_entry(struct model_builder *b, sqlite3_stmt *s)
{
	enum ip_list list;
	struct cidr net;
	uint32_t tid;

	if (col_id(s, 0, &tid) < 0 || col_list(s, 1, &list) < 0 || col_cidr(s, 2, &net) < 0)
		return -1;
	return model_add_ip_entry(b, tid, list, &net, col_text(s, 4));
}

static const struct {
	const char *what;
	const char *sql;
	load_row_fn fn;
} loaders[] = {
	{ "tenants", "SELECT id, name, route, recipient_check, route_tls FROM tenants", load_tenant },
	{ "domains", "SELECT tenant_id, domain FROM domains", load_domain },
	{ "connectors", "SELECT id, tenant_id, name, type, tls_name, require_tls FROM connectors",
	  load_connector },
	{ "connector ranges", "SELECT connector_id, net, prefix FROM connector_ranges",
	  load_range },
	{ "IP list entries", "SELECT tenant_id, list, net, prefix, comment FROM ip_entries",
	  load_entry },
	/* in key order, so one domain's entries come together (the builder shares its text) */
	{ "recipients", "SELECT tenant_id, domain, local FROM recipients", load_recipient },
};

static int load_rows(struct store *st, struct model_builder *b, size_t i, char *err, size_t esz)
{
	char what[64];
	sqlite3_stmt *s;
	int rc;

	snprintf(what, sizeof(what), "reading %s", loaders[i].what);
	if (store_stmt(st, &s, loaders[i].sql, err, esz, "") != STORE_OK)
		return STORE_FAILED;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (loaders[i].fn(b, s) < 0) {
			snprintf(err, esz, "the policy store is inconsistent: a row of %s does not "
					   "fit the policy model", loaders[i].what);
			sqlite3_finalize(s);
			return STORE_FAILED;
		}
	}
	if (rc != SQLITE_DONE)
		rc = store_fail(st, what, err, esz);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? STORE_OK : STORE_FAILED;
}

static int load_all(struct store *st, struct model_builder *b, uint64_t *gen_r, char *err,
		    size_t esz)
{
	for (size_t i = 0; i < sizeof(loaders) / sizeof(loaders[0]); i++)
		if (load_rows(st, b, i, err, esz) != STORE_OK)
			return STORE_FAILED;
	return store_generation_read(st, gen_r, err, esz);
}

struct model_snapshot *store_load(struct store *st, char *errbuf, size_t errsz)
{
	struct model_builder *b;
	sqlite3_stmt *s;
	uint64_t gen = 0;
	int rc;

	/* One read transaction: a change committed meanwhile is either all in or all out. */
	if (store_stmt(st, &s, "BEGIN", errbuf, errsz, "") != STORE_OK ||
	    store_run(st, s, "starting to read", errbuf, errsz) != STORE_OK)
		return NULL;
	b = model_builder_new();
	rc = load_all(st, b, &gen, errbuf, errsz);
	sqlite3_exec(st->db, rc == STORE_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
	if (rc != STORE_OK) {
		model_builder_free(&b);
		return NULL;
	}
	return model_builder_finish(&b, gen);
}

/* ---- views ---------------------------------------------------------------------------- */

/* Refuses a tenant filter that names no tenant; NULL passes. */
static int check_filter(struct store *st, const char *tenant, char *err, size_t esz)
{
	char name[MODEL_NAME_MAX + 1];
	int64_t id;

	return tenant ? store_tenant_need(st, tenant, &id, name, err, esz) : STORE_OK;
}

/* Steps s to the end, calling row for each row; finalizes s. */
static int each_row(struct store *st, sqlite3_stmt *s, void (*row)(sqlite3_stmt *s, void *ctx),
		    void *ctx, const char *what, char *err, size_t esz)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		row(s, ctx);
	if (rc != SQLITE_DONE)
		store_fail(st, what, err, esz);
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? STORE_OK : STORE_FAILED;
}

/* The caller's callback, typed per view. */
union each_fn {
	void (*tenant)(const struct store_tenant_info *t, void *arg);
	void (*domain)(const struct store_domain_info *d, void *arg);
	void (*connector)(const struct store_connector_info *c, void *arg);
	void (*ip)(const struct store_ip_info *e, void *arg);
	void (*recipient)(const struct store_recipient_info *r, void *arg);
	void (*rcpt_domain)(const struct store_recipient_domain *d, void *arg);
};

struct each_ctx {
	union each_fn fn;
	void *arg;
	sqlite3_stmt *ranges; /* connectors: their ranges, reset per connector */
	enum ip_list list;
};

static void tenant_row(sqlite3_stmt *s, void *ctx)
{
	const struct each_ctx *c = ctx;
	struct store_tenant_info t = {
		.name = col_text(s, 0),
		.route = col_text(s, 1),
		.ndomains = (unsigned)sqlite3_column_int(s, 2),
		.nconnectors = (unsigned)sqlite3_column_int(s, 3),
		.nallow = (unsigned)sqlite3_column_int(s, 4),
		.nblock = (unsigned)sqlite3_column_int(s, 5),
		.nrecipients = (unsigned long)sqlite3_column_int64(s, 7),
	};

	/* the schema's CHECKs make unknown values impossible */
	if (col_check(s, 6, &t.recipient_check) < 0)
		t.recipient_check = RCPT_CHECK_OFF;
	if (col_route_tls(s, 8, &t.route_tls) < 0)
		t.route_tls = ROUTE_TLS_OPPORTUNISTIC;
	c->fn.tenant(&t, c->arg);
}

int store_tenant_each(struct store *st, const char *tenant,
		      void (*fn)(const struct store_tenant_info *t, void *arg), void *arg,
		      char *err, size_t esz)
{
	struct each_ctx c = { .fn.tenant = fn, .arg = arg };
	sqlite3_stmt *s;
	int rc = check_filter(st, tenant, err, esz);

	if (rc != STORE_OK)
		return rc;
	if (store_stmt(st, &s,
		       "SELECT t.name, t.route,"
		       " (SELECT count(*) FROM domains WHERE tenant_id = t.id),"
		       " (SELECT count(*) FROM connectors WHERE tenant_id = t.id),"
		       " (SELECT count(*) FROM ip_entries WHERE tenant_id = t.id AND list = 'allow'),"
		       " (SELECT count(*) FROM ip_entries WHERE tenant_id = t.id AND list = 'block'),"
		       " t.recipient_check,"
		       " (SELECT count(*) FROM recipients WHERE tenant_id = t.id),"
		       " t.route_tls"
		       " FROM tenants t WHERE ?1 IS NULL OR t.name = ?1 ORDER BY t.name",
		       err, esz, "t", tenant) != STORE_OK)
		return STORE_FAILED;
	return each_row(st, s, tenant_row, &c, "listing tenants", err, esz);
}

static void domain_row(sqlite3_stmt *s, void *ctx)
{
	const struct each_ctx *c = ctx;
	struct store_domain_info d = { .domain = col_text(s, 0), .tenant = col_text(s, 1) };

	c->fn.domain(&d, c->arg);
}

int store_domain_each(struct store *st, const char *tenant,
		      void (*fn)(const struct store_domain_info *d, void *arg), void *arg,
		      char *err, size_t esz)
{
	struct each_ctx c = { .fn.domain = fn, .arg = arg };
	sqlite3_stmt *s;
	int rc = check_filter(st, tenant, err, esz);

	if (rc != STORE_OK)
		return rc;
	if (store_stmt(st, &s,
		       "SELECT d.domain, t.name FROM domains d JOIN tenants t ON t.id = d.tenant_id"
		       " WHERE ?1 IS NULL OR t.name = ?1 ORDER BY d.domain",
		       err, esz, "t", tenant) != STORE_OK)
		return STORE_FAILED;
	return each_row(st, s, domain_row, &c, "listing domains", err, esz);
}

/* Reads one connector's ranges through the statement kept in c; the caller frees them. */
static char **connector_ranges(struct each_ctx *c, int64_t id, size_t *n_r)
{
	char **v = NULL;
	size_t n = 0;

	sqlite3_reset(c->ranges);
	sqlite3_bind_int64(c->ranges, 1, id);
	while (sqlite3_step(c->ranges) == SQLITE_ROW) {
		v = xrealloc(v, (n + 1) * sizeof(*v));
		v[n++] = xstrdup(col_text(c->ranges, 0));
	}
	*n_r = n;
	return v;
}

static void connector_row(sqlite3_stmt *s, void *ctx)
{
	struct each_ctx *c = ctx;
	struct store_connector_info ci = {
		.tenant = col_text(s, 1),
		.name = col_text(s, 2),
		.type = strcmp(col_text(s, 3), "partner") == 0 ? CONNECTOR_PARTNER : CONNECTOR_ONPREM,
		.tls_name = col_text(s, 4),
		.require_tls = sqlite3_column_int(s, 5),
	};
	char **ranges = connector_ranges(c, sqlite3_column_int64(s, 0), &ci.nranges);

	ci.ranges = (const char *const *)ranges;
	c->fn.connector(&ci, c->arg);
	for (size_t i = 0; i < ci.nranges; i++)
		free(ranges[i]);
	free(ranges);
}

int store_connector_each(struct store *st, const char *tenant,
			 void (*fn)(const struct store_connector_info *c, void *arg), void *arg,
			 char *err, size_t esz)
{
	struct each_ctx c = { .fn.connector = fn, .arg = arg };
	sqlite3_stmt *s;
	int rc = check_filter(st, tenant, err, esz);

	if (rc != STORE_OK)
		return rc;
	if (store_stmt(st, &c.ranges, "SELECT cidr FROM connector_ranges WHERE connector_id = ?"
				      " ORDER BY net, prefix", err, esz, "") != STORE_OK)
		return STORE_FAILED;
	rc = store_stmt(st, &s,
			"SELECT c.id, t.name, c.name, c.type, c.tls_name, c.require_tls"
			" FROM connectors c JOIN tenants t ON t.id = c.tenant_id"
			" WHERE ?1 IS NULL OR t.name = ?1 ORDER BY t.name, c.name",
			err, esz, "t", tenant);
	if (rc == STORE_OK)
		rc = each_row(st, s, connector_row, &c, "listing connectors", err, esz);
	sqlite3_finalize(c.ranges);
	return rc;
}

static void ip_row(sqlite3_stmt *s, void *ctx)
{
	const struct each_ctx *c = ctx;
	struct store_ip_info e = {
		.tenant = col_text(s, 3),
		.list = c->list,
		.cidr = col_text(s, 0),
		.comment = col_text(s, 1),
		.created = sqlite3_column_int64(s, 2),
	};

	c->fn.ip(&e, c->arg);
}

int store_ip_each(struct store *st, const char *tenant, enum ip_list list,
		  void (*fn)(const struct store_ip_info *e, void *arg), void *arg, char *err,
		  size_t esz)
{
	struct each_ctx c = { .fn.ip = fn, .arg = arg, .list = list };
	char name[MODEL_NAME_MAX + 1];
	sqlite3_stmt *s;
	int64_t tid;
	int rc;

	if (!store_list_name(list))
		return store_refuse(err, esz, "the IP list must be allow or block");
	if ((rc = store_tenant_need(st, tenant, &tid, name, err, esz)) != STORE_OK)
		return rc;
	if (store_stmt(st, &s,
		       "SELECT e.cidr, e.comment, e.created, t.name FROM ip_entries e"
		       " JOIN tenants t ON t.id = e.tenant_id"
		       " WHERE e.tenant_id = ? AND e.list = ? ORDER BY e.net, e.prefix",
		       err, esz, "it", tid, store_list_name(list)) != STORE_OK)
		return STORE_FAILED;
	return each_row(st, s, ip_row, &c, "listing IP entries", err, esz);
}

static void recipient_row(sqlite3_stmt *s, void *ctx)
{
	const struct each_ctx *c = ctx;
	char address[STORE_ADDRESS_MAX + 1];
	struct store_recipient_info r = {
		.tenant = col_text(s, 0),
		.domain = col_text(s, 1),
		.local = col_text(s, 2),
		.created = sqlite3_column_int64(s, 3),
	};

	r.address = store_address_format(r.local, r.domain, address, sizeof(address));
	c->fn.recipient(&r, c->arg);
}

int store_recipient_each(struct store *st, const char *tenant,
			 void (*fn)(const struct store_recipient_info *r, void *arg), void *arg,
			 char *err, size_t esz)
{
	struct each_ctx c = { .fn.recipient = fn, .arg = arg };
	char name[MODEL_NAME_MAX + 1];
	sqlite3_stmt *s;
	int64_t tid;
	int rc;

	if ((rc = store_tenant_need(st, tenant, &tid, name, err, esz)) != STORE_OK)
		return rc;
	/* the primary key's order: domain, then local part ignoring ASCII case */
	if (store_stmt(st, &s,
		       "SELECT t.name, r.domain, r.local, r.created FROM recipients r"
		       " JOIN tenants t ON t.id = r.tenant_id"
		       " WHERE r.tenant_id = ? ORDER BY r.domain, r.local",
		       err, esz, "i", tid) != STORE_OK)
		return STORE_FAILED;
	return each_row(st, s, recipient_row, &c, "listing recipients", err, esz);
}

static void rcpt_domain_row(sqlite3_stmt *s, void *ctx)
{
	const struct each_ctx *c = ctx;
	struct store_recipient_domain d = {
		.domain = col_text(s, 0),
		.count = (unsigned long)sqlite3_column_int64(s, 1),
		.catchall = sqlite3_column_int(s, 2),
	};

	c->fn.rcpt_domain(&d, c->arg);
}

int store_recipient_domains(struct store *st, const char *tenant,
			    void (*fn)(const struct store_recipient_domain *d, void *arg),
			    void *arg, char *err, size_t esz)
{
	struct each_ctx c = { .fn.rcpt_domain = fn, .arg = arg };
	char name[MODEL_NAME_MAX + 1];
	sqlite3_stmt *s;
	int64_t tid;
	int rc;

	if ((rc = store_tenant_need(st, tenant, &tid, name, err, esz)) != STORE_OK)
		return rc;
	if (store_stmt(st, &s,
		       "SELECT d.domain,"
		       " (SELECT count(*) FROM recipients r WHERE r.tenant_id = d.tenant_id"
		       "  AND r.domain = d.domain),"
		       " EXISTS (SELECT 1 FROM recipients r WHERE r.tenant_id = d.tenant_id"
		       "  AND r.domain = d.domain AND r.local = '" MODEL_RCPT_WILDCARD "')"
		       " FROM domains d WHERE d.tenant_id = ? ORDER BY d.domain",
		       err, esz, "i", tid) != STORE_OK)
		return STORE_FAILED;
	return each_row(st, s, rcpt_domain_row, &c, "counting recipients", err, esz);
}
