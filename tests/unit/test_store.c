/* Unit tests for store: opening and migrating (also from a schema 1 store), every change with
 * good and bad input, the generation counter (exactly +1 per change, unchanged by a refusal),
 * domain ownership and IDN conversion, the tenant cascade, the read views, store_load's
 * snapshot, a 100,000 entry load, and the recipient directory (check setting, address
 * syntax, add/remove/import, cascades, views, load). Each test runs in its own mkdtemp
 * directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <ftw.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <time.h>
#include <unistd.h>

#include "policy/model.h"
#include "store/store.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BULK_TENANTS 1000
#define BULK_PER_TENANT 100
#define SCHEMA_VERSION 3
#define BULK_RECIPIENTS 200000

struct fixture {
	char root[64];     /* the mkdtemp directory */
	char dir[96];      /* data_dir below it, created by store_open */
	struct store *st;
	char err[STORE_ERR_MAX];
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	strcpy(f->root, "/tmp/mxg_test_store.XXXXXX");
	if (!f || !mkdtemp(f->root))
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/var/data", f->root);
	f->st = store_open(f->dir, STORE_READ_WRITE, f->err, sizeof(f->err));
	if (!f->st) {
		fprintf(stderr, "store_open: %s\n", f->err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(&f->st);
	nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---- helpers -------------------------------------------------------------------------- */

/* A change that must succeed and move the generation by exactly one. */
#define CHANGE_OK(f, call)                                                                   \
	do {                                                                                 \
		uint64_t g0_ = store_generation((f)->st);                                    \
		int rc_ = (call);                                                            \
		if (rc_ != STORE_OK)                                                         \
			fail_msg("%s: %d %s", #call, rc_, (f)->err);                         \
		assert_int_equal(store_generation((f)->st), g0_ + 1);                        \
	} while (0)

/* A change that must be refused with a message containing want, generation unchanged. */
#define CHANGE_REFUSED(f, call, want)                                                        \
	do {                                                                                 \
		uint64_t g0_ = store_generation((f)->st);                                    \
		(f)->err[0] = '\0';                                                          \
		int rc_ = (call);                                                            \
		if (rc_ != STORE_REFUSED)                                                    \
			fail_msg("%s: expected a refusal, got %d", #call, rc_);              \
		if (!strstr((f)->err, (want)))                                               \
			fail_msg("%s: message '%s' lacks '%s'", #call, (f)->err, (want));    \
		assert_int_equal(store_generation((f)->st), g0_);                            \
	} while (0)

#define ERR(f) (f)->err, sizeof((f)->err)

static sqlite3 *raw_open(const struct fixture *f)
{
	char path[160];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/%s", f->dir, STORE_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 2000);
	return db;
}

static int64_t raw_int(const struct fixture *f, const char *sql)
{
	sqlite3 *db = raw_open(f);
	sqlite3_stmt *s;
	int64_t v = -1;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

static void add_tenant(struct fixture *f, const char *name)
{
	CHANGE_OK(f, store_tenant_add(f->st, name, "10.0.0.5:25", ERR(f)));
}

struct tenant_got {
	int n;
	char name[MODEL_NAME_MAX + 1], route[MODEL_ROUTE_MAX + 1];
	struct store_tenant_info info;
};

static void got_tenant(const struct store_tenant_info *t, void *arg)
{
	struct tenant_got *g = arg;

	g->n++;
	g->info = *t;
	snprintf(g->name, sizeof(g->name), "%s", t->name);
	snprintf(g->route, sizeof(g->route), "%s", t->route);
}

static struct tenant_got tenant_get(struct fixture *f, const char *name)
{
	struct tenant_got g = { 0 };

	assert_int_equal(store_tenant_each(f->st, name, got_tenant, &g, ERR(f)), STORE_OK);
	assert_int_equal(g.n, 1);
	return g;
}

/* ---- open and migrate ----------------------------------------------------------------- */

static void test_open_migrates(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db = raw_open(f);
	sqlite3_stmt *s;

	assert_int_equal(raw_int(f, "PRAGMA user_version"), SCHEMA_VERSION);
	assert_int_equal(raw_int(f, "SELECT value FROM meta WHERE key = 'generation'"), 1);
	assert_int_equal(store_generation(f->st), 1);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(db);
}

static void test_reopen_keeps_data(void **state)
{
	struct fixture *f = *state;

	add_tenant(f, "acme");
	CHANGE_OK(f, store_domain_add(f->st, "acme", "acme.example", ERR(f)));
	store_close(&f->st);
	assert_null(f->st);
	store_close(&f->st); /* NULL is fine */
	f->st = store_open(f->dir, STORE_READ_WRITE, ERR(f));
	assert_non_null(f->st);
	assert_int_equal(store_generation(f->st), 3);
	assert_int_equal(tenant_get(f, "acme").info.ndomains, 1);
	assert_int_equal(raw_int(f, "PRAGMA user_version"), SCHEMA_VERSION);
}

static void test_read_only(void **state)
{
	struct fixture *f = *state;
	char missing[160], err[STORE_ERR_MAX];
	struct store *ro;

	snprintf(missing, sizeof(missing), "%s/nowhere", f->root);
	assert_null(store_open(missing, STORE_READ_ONLY, err, sizeof(err)));
	assert_non_null(strstr(err, "no policy store"));
	assert_int_equal(access(missing, F_OK), -1); /* read-only creates nothing */

	add_tenant(f, "acme");
	ro = store_open(f->dir, STORE_READ_ONLY, err, sizeof(err));
	assert_non_null(ro);
	assert_int_equal(store_generation(ro), store_generation(f->st));
	assert_int_equal(store_tenant_add(ro, "other", "10.0.0.1:25", err, sizeof(err)),
			 STORE_REFUSED);
	assert_non_null(strstr(err, "read-only"));
	/* a write through the other handle is visible to the reader at once */
	add_tenant(f, "beta");
	assert_int_equal(store_generation(ro), store_generation(f->st));
	store_close(&ro);

	/* a reader alone, after the last writer closed (and SQLite removed the WAL files) */
	store_close(&f->st);
	ro = store_open(f->dir, STORE_READ_ONLY, err, sizeof(err));
	assert_non_null(ro);
	struct model_snapshot *s = store_load(ro, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(model_ntenants(s), 2);
	model_unref(&s);
	store_close(&ro);
	f->st = store_open(f->dir, STORE_READ_WRITE, ERR(f));
	assert_non_null(f->st);
}

static void test_newer_schema_refused(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db = raw_open(f);

	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	store_close(&f->st);
	f->st = store_open(f->dir, STORE_READ_WRITE, ERR(f));
	assert_null(f->st);
	assert_non_null(strstr(f->err, "newer than this mxgate"));
	assert_null(store_open(f->dir, STORE_READ_ONLY, ERR(f)));
	assert_non_null(strstr(f->err, "newer than this mxgate"));
}

static void test_open_failures(void **state)
{
	struct fixture *f = *state;
	char path[160], err[STORE_ERR_MAX];
	FILE *fp;

	/* data_dir is a regular file */
	snprintf(path, sizeof(path), "%s/file", f->root);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_null(store_open(path, STORE_READ_WRITE, err, sizeof(err)));
	assert_true(strlen(err) > 0);
	/* not a database */
	snprintf(path, sizeof(path), "%s/junk", f->root);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/junk/%s", f->root, STORE_FILE);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("this is not an SQLite database, not even close to one......................\n", fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/junk", f->root);
	assert_null(store_open(path, STORE_READ_WRITE, err, sizeof(err)));
	assert_non_null(strstr(err, "policy store"));
}

/* Another process holds the write lock: opening and reading go on (nothing to migrate takes
 * no lock), a change waits for the busy timeout and fails saying so, changing nothing. */
static void test_write_lock_held_elsewhere(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;
	struct store *st;
	struct model_snapshot *s;

	add_tenant(f, "acme");
	db = raw_open(f);
	assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	st = store_open(f->dir, STORE_READ_WRITE, ERR(f));
	if (!st)
		fail_msg("store_open: %s", f->err);
	s = store_load(st, ERR(f));
	assert_non_null(s);
	assert_int_equal(model_ntenants(s), 1);
	model_unref(&s);
	assert_int_equal(store_tenant_add(st, "beta", "10.0.0.6:25", ERR(f)), STORE_FAILED);
	assert_non_null(strstr(f->err, "locked by another process"));
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_generation(st), store_generation(f->st));
	store_close(&st);
}

/* A damaged page: the generation says why it cannot be read; after the page is repaired
 * behind SQLite's back, the same connection reads it again. */
static void test_damaged_generation_page(void **state)
{
	struct fixture *f = *state;
	char path[160], err[STORE_ERR_MAX];
	unsigned char page[4096], junk[4096];
	uint64_t gen = 7;
	int64_t root = raw_int(f, "SELECT rootpage FROM sqlite_master WHERE name = 'meta'");
	FILE *fp;

	add_tenant(f, "acme");
	assert_int_equal(raw_int(f, "PRAGMA page_size"), (int64_t)sizeof(page));
	store_close(&f->st); /* the last connection: the WAL goes into the file */
	f->st = store_open(f->dir, STORE_READ_WRITE, ERR(f));
	assert_non_null(f->st);
	snprintf(path, sizeof(path), "%s/%s", f->dir, STORE_FILE);
	fp = fopen(path, "r+b");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, (long)(root - 1) * (long)sizeof(page), SEEK_SET), 0);
	assert_int_equal(fread(page, 1, sizeof(page), fp), sizeof(page));
	memset(junk, 0xa5, sizeof(junk));
	assert_int_equal(fseek(fp, (long)(root - 1) * (long)sizeof(page), SEEK_SET), 0);
	assert_int_equal(fwrite(junk, 1, sizeof(junk), fp), sizeof(junk));
	fflush(fp);
	assert_int_equal(store_generation_read(f->st, &gen, err, sizeof(err)), STORE_FAILED);
	assert_int_equal(gen, 0);
	assert_non_null(strstr(err, "while reading the generation"));
	assert_int_equal(fseek(fp, (long)(root - 1) * (long)sizeof(page), SEEK_SET), 0);
	assert_int_equal(fwrite(page, 1, sizeof(page), fp), sizeof(page));
	fclose(fp);
	assert_int_equal(store_generation_read(f->st, &gen, err, sizeof(err)), STORE_OK);
	assert_int_equal(gen, 2);
}

/* ---- tenants -------------------------------------------------------------------------- */

static void test_tenant_add_remove(void **state)
{
	struct fixture *f = *state;

	add_tenant(f, "acme");
	add_tenant(f, "A.b_c-9");
	CHANGE_REFUSED(f, store_tenant_add(f->st, "acme", "10.0.0.5:25", ERR(f)),
		       "tenant acme already exists");
	CHANGE_REFUSED(f, store_tenant_add(f->st, "ACME", "10.0.0.5:25", ERR(f)),
		       "tenant acme already exists");
	assert_string_equal(tenant_get(f, "ACME").name, "acme"); /* lookups ignore case */
	CHANGE_OK(f, store_tenant_remove(f->st, "acme", ERR(f)));
	CHANGE_REFUSED(f, store_tenant_remove(f->st, "acme", ERR(f)), "no tenant named acme");
	CHANGE_REFUSED(f, store_tenant_remove(f->st, "", ERR(f)), "no tenant named");
	CHANGE_OK(f, store_tenant_remove(f->st, "a.B_C-9", ERR(f)));
	assert_int_equal(raw_int(f, "SELECT count(*) FROM tenants"), 0);
}

static void test_tenant_bad_names(void **state)
{
	static const struct {
		const char *name, *want;
	} cases[] = {
		{ "", "must not be empty" },
		{ "a b", "contains ' '" },
		{ "acme/x", "contains '/'" },
		{ "bücher", "contains '?'" },
		{ "tab\there", "contains '?'" },
		{ "a@b", "use only letters, digits" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "longer than 64" },
	};
	struct fixture *f = *state;

	add_tenant(f, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); /* 64 */
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		CHANGE_REFUSED(f, store_tenant_add(f->st, cases[i].name, "10.0.0.5:25", ERR(f)),
			       cases[i].want);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM tenants"), 1);
}

static void test_tenant_routes(void **state)
{
	static const struct {
		const char *in, *stored;
	} good[] = {
		{ "10.0.0.5:25", "10.0.0.5:25" },
		{ "Mail.Acme.Example:2525", "mail.acme.example:2525" },
		{ "localhost:1", "localhost:1" },
		{ "[2001:DB8::1]:25", "[2001:db8::1]:25" },
		{ "[::ffff:192.0.2.1]:25", "192.0.2.1:25" },
		{ "bücher.example:25", "xn--bcher-kva.example:25" },
		{ "mx.example:65535", "mx.example:65535" },
		{ "mx.example:0025", "mx.example:25" },
	};
	static const struct {
		const char *in, *want;
	} bad[] = {
		{ "", "must not be empty" },
		{ "mx.example", "has no port" },
		{ "mx.example:", "the port must be a number from 1 to 65535" },
		{ "mx.example:0", "the port must be a number from 1 to 65535" },
		{ "mx.example:65536", "the port must be a number from 1 to 65535" },
		{ "mx.example:+25", "the port must be a number" },
		{ "mx.example: 25", "the port must be a number" },
		{ "mx.example:smtp", "the port must be a number" },
		{ "2001:db8::1:25", "IPv6 address without brackets" },
		{ "[2001:db8::1]", "has no port" },
		{ "[2001:db8::1:25", "unclosed '['" },
		{ "[192.0.2.1]:25", "brackets are only for IPv6" },
		{ "[mx.example]:25", "brackets are only for IPv6" },
		{ ":25", "has no host" },
		{ "mx_1.example:25", "contains '_'" },
		{ "mx.example.:25", "must not end with a dot" },
		{ "mx..example:25", "empty label" },
		{ "-mx.example:25", "starts or ends with '-'" },
		{ "10.0.0:25", "looks like an IP address" },
	};
	struct fixture *f = *state;
	char name[16];

	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		snprintf(name, sizeof(name), "t%zu", i);
		CHANGE_OK(f, store_tenant_add(f->st, name, good[i].in, ERR(f)));
		if (strcmp(tenant_get(f, name).route, good[i].stored) != 0)
			fail_msg("route %s stored as %s, want %s", good[i].in,
				 tenant_get(f, name).route, good[i].stored);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		CHANGE_REFUSED(f, store_tenant_add(f->st, "x", bad[i].in, ERR(f)), bad[i].want);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM tenants WHERE name = 'x'"), 0);
}

/* ---- domains -------------------------------------------------------------------------- */

static void test_domain_add_remove(void **state)
{
	struct fixture *f = *state;

	add_tenant(f, "acme");
	add_tenant(f, "other");
	CHANGE_OK(f, store_domain_add(f->st, "acme", "Acme.Example", ERR(f)));
	CHANGE_OK(f, store_domain_add(f->st, "ACME", "bücher.example", ERR(f)));
	assert_int_equal(raw_int(f, "SELECT count(*) FROM domains WHERE domain IN "
				    "('acme.example', 'xn--bcher-kva.example')"), 2);
	/* one owner per domain, whatever form the name is given in */
	CHANGE_REFUSED(f, store_domain_add(f->st, "other", "acme.example", ERR(f)),
		       "domain acme.example already belongs to tenant acme");
	CHANGE_REFUSED(f, store_domain_add(f->st, "other", "xn--bcher-kva.example", ERR(f)),
		       "already belongs to tenant acme");
	CHANGE_REFUSED(f, store_domain_add(f->st, "other", "BÜCHER.example", ERR(f)),
		       "already belongs to tenant acme");
	CHANGE_REFUSED(f, store_domain_add(f->st, "acme", "ACME.example", ERR(f)),
		       "tenant acme already has domain acme.example");
	CHANGE_REFUSED(f, store_domain_add(f->st, "nobody", "new.example", ERR(f)),
		       "no tenant named nobody");
	/* removal takes either form */
	CHANGE_OK(f, store_domain_remove(f->st, "BÜCHER.EXAMPLE", ERR(f)));
	CHANGE_REFUSED(f, store_domain_remove(f->st, "xn--bcher-kva.example", ERR(f)),
		       "no tenant has domain xn--bcher-kva.example");
	CHANGE_REFUSED(f, store_domain_remove(f->st, "bad..example", ERR(f)), "empty label");
	CHANGE_OK(f, store_domain_add(f->st, "other", "bücher.example", ERR(f)));
	assert_int_equal(tenant_get(f, "other").info.ndomains, 1);
	assert_int_equal(tenant_get(f, "acme").info.ndomains, 1);
}

static void test_domain_normalize(void **state)
{
	static const struct {
		const char *in, *out;
	} good[] = {
		{ "bücher.example", "xn--bcher-kva.example" },
		{ "BÜCHER.EXAMPLE", "xn--bcher-kva.example" },
		{ "xn--bcher-kva.example", "xn--bcher-kva.example" },
		{ "Example.COM", "example.com" },
		{ "straße.de", "xn--strae-oqa.de" }, /* non-transitional: ß kept */
		{ "例え.テスト", "xn--r8jz45g.xn--zckzah" },
		{ "localhost", "localhost" },
		{ "a-b.c0", "a-b.c0" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example" },
	};
	static const struct {
		const char *in, *want;
	} bad[] = {
		{ "", "must not be empty" },
		{ "example.com.", "must not end with a dot" },
		{ "例え。テスト。", "must not end with a dot" },
		{ ".example.com", "empty label" },
		{ "a..example", "empty label" },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
		  "label longer than 63" },
		{ "äaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
		  "label longer than 63" },
		{ "foo_bar.example", "contains '_'" },
		{ "a@b.example", "contains '@'" },
		{ "a b.example", "space or control" },
		{ "a\nb.example", "space or control" },
		{ "-a.example", "starts or ends with '-'" },
		{ "a-.example", "starts or ends with '-'" },
		{ "xn--zz.example", "not a valid domain name" },
		{ "192.0.2.1", "looks like an IP address" },
		{ "*.example", "contains '*'" },
	};
	char out[MODEL_DOMAIN_MAX + 1], err[STORE_ERR_MAX], longname[300];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(good); i++) {
		if (store_domain_normalize(good[i].in, out, err, sizeof(err)) != STORE_OK)
			fail_msg("%s refused: %s", good[i].in, err);
		if (strcmp(out, good[i].out) != 0)
			fail_msg("%s -> %s, want %s", good[i].in, out, good[i].out);
	}
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		err[0] = '\0';
		if (store_domain_normalize(bad[i].in, out, err, sizeof(err)) != STORE_REFUSED)
			fail_msg("%s accepted as %s", bad[i].in, out);
		if (!strstr(err, bad[i].want))
			fail_msg("%s: message '%s' lacks '%s'", bad[i].in, err, bad[i].want);
	}
	/* 4 x 63 + 3 dots = 255 > 253; 253 exactly is fine */
	memset(longname, 'a', sizeof(longname));
	for (int i = 63; i < 255; i += 64)
		longname[i] = '.';
	longname[255] = '\0';
	assert_int_equal(store_domain_normalize(longname, out, err, sizeof(err)), STORE_REFUSED);
	assert_non_null(strstr(err, "the limit is 253"));
	longname[253] = '\0';
	assert_int_equal(store_domain_normalize(longname, out, err, sizeof(err)), STORE_OK);
	assert_int_equal(strlen(out), 253);
}

/* ---- connectors ----------------------------------------------------------------------- */

static void test_connector_add_remove(void **state)
{
	static const char *const two[] = { "192.0.2.0/24", "2001:DB8::/32" };
	static const char *const host[] = { "198.51.100.7" };
	struct fixture *f = *state;

	add_tenant(f, "acme");
	add_tenant(f, "other");
	CHANGE_OK(f, store_connector_add(f->st, "acme", "mail", CONNECTOR_ONPREM, two, 2, NULL, 0,
					 ERR(f)));
	CHANGE_OK(f, store_connector_add(f->st, "acme", "partner1", CONNECTOR_PARTNER, NULL, 0,
					 "MX.Partner.Example", 1, ERR(f)));
	CHANGE_OK(f, store_connector_add(f->st, "acme", "both", CONNECTOR_PARTNER, host, 1,
					 "mx.partner.example", 0, ERR(f)));
	/* the same name and ranges in another tenant: allowed (lint warns about the ranges) */
	CHANGE_OK(f, store_connector_add(f->st, "other", "mail", CONNECTOR_ONPREM, two, 2, "", 0,
					 ERR(f)));
	assert_int_equal(raw_int(f, "SELECT count(*) FROM connector_ranges"), 5);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM connector_ranges WHERE cidr IN "
				    "('192.0.2.0/24', '2001:db8::/32', '198.51.100.7/32')"), 5);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM connectors WHERE tls_name = "
				    "'mx.partner.example' AND type = 'partner'"), 2);
	assert_int_equal(raw_int(f, "SELECT require_tls FROM connectors WHERE name = 'partner1'"),
			 1);
	CHANGE_OK(f, store_connector_remove(f->st, "acme", "MAIL", ERR(f)));
	CHANGE_REFUSED(f, store_connector_remove(f->st, "acme", "mail", ERR(f)),
		       "tenant acme has no connector named mail");
	CHANGE_REFUSED(f, store_connector_remove(f->st, "nobody", "mail", ERR(f)),
		       "no tenant named nobody");
	assert_int_equal(raw_int(f, "SELECT count(*) FROM connector_ranges"), 3);
}

static void test_connector_bad(void **state)
{
	static const char *const hostbits[] = { "10.0.0.1/8" };
	static const char *const junk[] = { "10.0.0.0/33" };
	static const char *const twice[] = { "10.0.0.0/8", "::ffff:10.0.0.0/104" };
	static const char *const ok[] = { "10.0.0.0/8" };
	struct fixture *f = *state;

	add_tenant(f, "acme");
	CHANGE_OK(f, store_connector_add(f->st, "acme", "mail", CONNECTOR_ONPREM, ok, 1, NULL, 0,
					 ERR(f)));
	CHANGE_REFUSED(f, store_connector_add(f->st, "acme", "MAIL", CONNECTOR_ONPREM, ok, 1,
					      NULL, 0, ERR(f)),
		       "tenant acme already has a connector named mail");
	CHANGE_REFUSED(f, store_connector_add(f->st, "nobody", "x", CONNECTOR_ONPREM, ok, 1,
					      NULL, 0, ERR(f)),
		       "no tenant named nobody");
	CHANGE_REFUSED(f, store_connector_add(f->st, "acme", "x", CONNECTOR_ONPREM, hostbits, 1,
					      NULL, 0, ERR(f)),
		       "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?");
	CHANGE_REFUSED(f, store_connector_add(f->st, "acme", "x", CONNECTOR_ONPREM, junk, 1,
					      NULL, 0, ERR(f)),
		       "'10.0.0.0/33' is not an IP address or CIDR range");
	CHANGE_REFUSED(f, store_connector_add(f->st, "acme", "x", CONNECTOR_ONPREM, twice, 2,
					      NULL, 0, ERR(f)),
		       "range 10.0.0.0/8 is given twice");
	CHANGE_REFUSED(f, store_connector_add(f->st, "acme", "x", CONNECTOR_ONPREM, NULL, 0,
					      NULL, 0, ERR(f)),
		       "needs at least one IP range or a TLS name");
	CHANGE_REFUSED(f, store_connector_add(f->st, "acme", "x", CONNECTOR_PARTNER, NULL, 0, "",
					      0, ERR(f)),
		       "needs at least one IP range or a TLS name");
	CHANGE_REFUSED(f, store_connector_add(f->st, "acme", "x", CONNECTOR_ONPREM, ok, 1, NULL,
					      1, ERR(f)),
		       "require-tls applies only to partner connectors");
	CHANGE_REFUSED(f, store_connector_add(f->st, "acme", "x", CONNECTOR_PARTNER, NULL, 0,
					      "*.partner.example", 0, ERR(f)),
		       "is a wildcard");
	CHANGE_REFUSED(f, store_connector_add(f->st, "acme", "x", CONNECTOR_PARTNER, NULL, 0,
					      "mx.partner.example.", 0, ERR(f)),
		       "TLS name 'mx.partner.example.' must not end with a dot");
	CHANGE_REFUSED(f, store_connector_add(f->st, "acme", "bad name", CONNECTOR_ONPREM, ok, 1,
					      NULL, 0, ERR(f)),
		       "connector name 'bad name' contains ' '");
	CHANGE_REFUSED(f, store_connector_add(f->st, "acme", "x", (enum connector_type)7, ok, 1,
					      NULL, 0, ERR(f)),
		       "onprem or partner");
	assert_int_equal(raw_int(f, "SELECT count(*) FROM connectors"), 1);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM connector_ranges"), 1);
}

/* ---- IP lists ------------------------------------------------------------------------- */

static void test_ip_add_remove(void **state)
{
	struct fixture *f = *state;

	add_tenant(f, "acme");
	CHANGE_OK(f, store_ip_add(f->st, "acme", IP_LIST_ALLOW, "192.0.2.7", "our relay", ERR(f)));
	CHANGE_OK(f, store_ip_add(f->st, "acme", IP_LIST_ALLOW, "2001:db8::1", NULL, ERR(f)));
	CHANGE_OK(f, store_ip_add(f->st, "acme", IP_LIST_BLOCK, "198.51.100.0/24", "", ERR(f)));
	/* the same range on both lists is allowed: longest prefix, then Block, decides */
	CHANGE_OK(f, store_ip_add(f->st, "acme", IP_LIST_BLOCK, "192.0.2.7/32", "both", ERR(f)));
	CHANGE_OK(f, store_ip_add(f->st, "acme", IP_LIST_ALLOW, "0.0.0.0/0", "café ☕", ERR(f)));
	assert_int_equal(raw_int(f, "SELECT count(*) FROM ip_entries WHERE cidr IN "
				    "('192.0.2.7/32', '2001:db8::1/128')"), 3);
	CHANGE_REFUSED(f, store_ip_add(f->st, "acme", IP_LIST_ALLOW, "192.0.2.7/32", NULL, ERR(f)),
		       "192.0.2.7/32 is already on the allow list of tenant acme");
	CHANGE_REFUSED(f, store_ip_add(f->st, "ACME", IP_LIST_ALLOW, "::ffff:192.0.2.7", NULL,
				       ERR(f)),
		       "192.0.2.7/32 is already on the allow list of tenant acme");
	CHANGE_OK(f, store_ip_remove(f->st, "acme", IP_LIST_BLOCK, "192.0.2.7", ERR(f)));
	CHANGE_REFUSED(f, store_ip_remove(f->st, "acme", IP_LIST_BLOCK, "192.0.2.7", ERR(f)),
		       "192.0.2.7/32 is not on the block list of tenant acme");
	CHANGE_REFUSED(f, store_ip_remove(f->st, "acme", IP_LIST_BLOCK, "198.51.100.1/24", ERR(f)),
		       "198.51.100.1/24 has host bits set; did you mean 198.51.100.0/24?");
	CHANGE_REFUSED(f, store_ip_remove(f->st, "nobody", IP_LIST_BLOCK, "198.51.100.0/24",
					  ERR(f)),
		       "no tenant named nobody");
	assert_int_equal(tenant_get(f, "acme").info.nallow, 3);
	assert_int_equal(tenant_get(f, "acme").info.nblock, 1);
}

static void test_ip_bad(void **state)
{
	static const struct {
		const char *cidr, *comment, *want;
	} cases[] = {
		{ "10.0.0.1/8", NULL, "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?" },
		{ "2001:db8::1/32", NULL, "did you mean 2001:db8::/32?" },
		{ "10.0.0.0/33", NULL, "is not an IP address or CIDR range" },
		{ "10.0.0", NULL, "is not an IP address or CIDR range" },
		{ "", NULL, "is not an IP address or CIDR range" },
		{ "example.com", NULL, "is not an IP address or CIDR range" },
		{ "10.0.0.0/8", "line\nbreak", "control characters" },
		{ "10.0.0.0/8", "tab\there", "control characters" },
		{ "10.0.0.0/8", "bad \xff utf8", "not valid UTF-8" },
		{ "10.0.0.0/8", "overlong \xc0\xaf", "not valid UTF-8" },
		{ "10.0.0.0/8", "c1 \xc2\x85 control", "not valid UTF-8" },
		{ "10.0.0.0/8", "truncated \xe2\x98", "not valid UTF-8" },
	};
	struct fixture *f = *state;
	char longc[MODEL_COMMENT_MAX + 2];

	add_tenant(f, "acme");
	for (size_t i = 0; i < ARRAY_LEN(cases); i++)
		CHANGE_REFUSED(f, store_ip_add(f->st, "acme", IP_LIST_ALLOW, cases[i].cidr,
					       cases[i].comment, ERR(f)),
			       cases[i].want);
	memset(longc, 'x', sizeof(longc));
	longc[MODEL_COMMENT_MAX + 1] = '\0';
	CHANGE_REFUSED(f, store_ip_add(f->st, "acme", IP_LIST_BLOCK, "10.0.0.0/8", longc, ERR(f)),
		       "the limit is 200");
	longc[MODEL_COMMENT_MAX] = '\0';
	CHANGE_OK(f, store_ip_add(f->st, "acme", IP_LIST_BLOCK, "10.0.0.0/8", longc, ERR(f)));
	CHANGE_REFUSED(f, store_ip_add(f->st, "nobody", IP_LIST_BLOCK, "10.0.0.0/8", NULL, ERR(f)),
		       "no tenant named nobody");
	CHANGE_REFUSED(f, store_ip_add(f->st, "acme", (enum ip_list)3, "10.0.0.0/8", NULL, ERR(f)),
		       "allow or block");
	assert_int_equal(raw_int(f, "SELECT count(*) FROM ip_entries"), 1);
}

/* ---- cascade and views ---------------------------------------------------------------- */

static void fill_tenant(struct fixture *f, const char *name, const char *domain)
{
	static const char *const ranges[] = { "192.0.2.0/28", "2001:db8:1::/48" };

	add_tenant(f, name);
	CHANGE_OK(f, store_domain_add(f->st, name, domain, ERR(f)));
	CHANGE_OK(f, store_connector_add(f->st, name, "relay", CONNECTOR_ONPREM, ranges, 2, NULL,
					 0, ERR(f)));
	CHANGE_OK(f, store_ip_add(f->st, name, IP_LIST_ALLOW, "203.0.113.0/24", "a", ERR(f)));
	CHANGE_OK(f, store_ip_add(f->st, name, IP_LIST_BLOCK, "203.0.113.9", "b", ERR(f)));
}

static void test_tenant_remove_cascades(void **state)
{
	struct fixture *f = *state;

	fill_tenant(f, "acme", "acme.example");
	fill_tenant(f, "keep", "keep.example");
	CHANGE_OK(f, store_tenant_remove(f->st, "acme", ERR(f)));
	assert_int_equal(raw_int(f, "SELECT count(*) FROM tenants"), 1);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM domains"), 1);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM connectors"), 1);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM connector_ranges"), 2);
	assert_int_equal(raw_int(f, "SELECT count(*) FROM ip_entries"), 2);
	/* the domain is free for another tenant now */
	CHANGE_OK(f, store_domain_add(f->st, "keep", "acme.example", ERR(f)));
}

struct collect {
	char text[1024];
};

static void collect_domain(const struct store_domain_info *d, void *arg)
{
	struct collect *c = arg;
	size_t n = strlen(c->text);

	snprintf(c->text + n, sizeof(c->text) - n, "%s=%s ", d->domain, d->tenant);
}

static void collect_connector(const struct store_connector_info *ci, void *arg)
{
	struct collect *c = arg;
	size_t n = strlen(c->text);

	n += (size_t)snprintf(c->text + n, sizeof(c->text) - n, "%s/%s/%d/%s/%d:", ci->tenant,
			      ci->name, ci->type, ci->tls_name, ci->require_tls);
	for (size_t i = 0; i < ci->nranges; i++)
		n += (size_t)snprintf(c->text + n, sizeof(c->text) - n, "%s,", ci->ranges[i]);
	snprintf(c->text + n, sizeof(c->text) - n, " ");
}

static void collect_ip(const struct store_ip_info *e, void *arg)
{
	struct collect *c = arg;
	size_t n = strlen(c->text);
	int64_t now = (int64_t)time(NULL);

	assert_true(e->created > now - 60 && e->created <= now);
	snprintf(c->text + n, sizeof(c->text) - n, "%s(%s) ", e->cidr, e->comment);
}

static void test_views(void **state)
{
	static const char *const r[] = { "10.1.0.0/16", "10.0.0.0/16", "9.0.0.0/8" };
	struct fixture *f = *state;
	struct collect c = { "" };

	add_tenant(f, "zeta");
	add_tenant(f, "alpha");
	CHANGE_OK(f, store_domain_add(f->st, "zeta", "b.example", ERR(f)));
	CHANGE_OK(f, store_domain_add(f->st, "alpha", "c.example", ERR(f)));
	CHANGE_OK(f, store_domain_add(f->st, "zeta", "a.example", ERR(f)));
	assert_int_equal(store_domain_each(f->st, NULL, collect_domain, &c, ERR(f)), STORE_OK);
	assert_string_equal(c.text, "a.example=zeta b.example=zeta c.example=alpha ");
	c.text[0] = '\0';
	assert_int_equal(store_domain_each(f->st, "alpha", collect_domain, &c, ERR(f)), STORE_OK);
	assert_string_equal(c.text, "c.example=alpha ");
	assert_int_equal(store_domain_each(f->st, "nobody", collect_domain, &c, ERR(f)),
			 STORE_REFUSED);
	assert_non_null(strstr(f->err, "no tenant named nobody"));

	CHANGE_OK(f, store_connector_add(f->st, "zeta", "b", CONNECTOR_ONPREM, r, 3, NULL, 0,
					 ERR(f)));
	CHANGE_OK(f, store_connector_add(f->st, "zeta", "a", CONNECTOR_PARTNER, NULL, 0,
					 "mx.example", 1, ERR(f)));
	c.text[0] = '\0';
	assert_int_equal(store_connector_each(f->st, NULL, collect_connector, &c, ERR(f)),
			 STORE_OK);
	assert_string_equal(c.text, "zeta/a/1/mx.example/1: "
				    "zeta/b/0//0:9.0.0.0/8,10.0.0.0/16,10.1.0.0/16, ");
	assert_int_equal(store_connector_each(f->st, "nobody", collect_connector, &c, ERR(f)),
			 STORE_REFUSED);

	CHANGE_OK(f, store_ip_add(f->st, "alpha", IP_LIST_ALLOW, "10.0.0.128/25", "x", ERR(f)));
	CHANGE_OK(f, store_ip_add(f->st, "alpha", IP_LIST_ALLOW, "10.0.0.0/24", "y", ERR(f)));
	CHANGE_OK(f, store_ip_add(f->st, "alpha", IP_LIST_ALLOW, "9.9.9.9", "", ERR(f)));
	CHANGE_OK(f, store_ip_add(f->st, "alpha", IP_LIST_BLOCK, "1.1.1.1", "z", ERR(f)));
	c.text[0] = '\0';
	assert_int_equal(store_ip_each(f->st, "alpha", IP_LIST_ALLOW, collect_ip, &c, ERR(f)),
			 STORE_OK);
	assert_string_equal(c.text, "9.9.9.9/32() 10.0.0.0/24(y) 10.0.0.128/25(x) ");
	assert_int_equal(store_ip_each(f->st, "nobody", IP_LIST_ALLOW, collect_ip, &c, ERR(f)),
			 STORE_REFUSED);

	struct tenant_got g = tenant_get(f, "zeta");
	assert_string_equal(g.route, "10.0.0.5:25");
	assert_int_equal(g.info.ndomains, 2);
	assert_int_equal(g.info.nconnectors, 2);
	assert_int_equal(tenant_get(f, "alpha").info.nallow, 3);
	assert_int_equal(tenant_get(f, "alpha").info.nblock, 1);
	assert_int_equal(store_tenant_each(f->st, "nobody", got_tenant, &g, ERR(f)),
			 STORE_REFUSED);
}

/* ---- snapshot ------------------------------------------------------------------------- */

struct conn_hit {
	const struct model_connector *c;
	int n;
};

static void on_conn(const struct model_connector *c, const struct cidr *range, void *arg)
{
	struct conn_hit *h = arg;

	(void)range;
	if (h->n++ == 0)
		h->c = c;
}

static void on_tls(const struct model_connector *c, void *arg)
{
	on_conn(c, NULL, arg);
}

static void test_load_snapshot(void **state)
{
	static const char *const ranges[] = { "192.0.2.0/24" };
	struct fixture *f = *state;
	struct model_snapshot *s;
	const struct model_tenant *t;
	const struct model_ip_entry *e;
	struct conn_hit hit = { 0 };
	struct ip_addr ip;

	add_tenant(f, "acme");
	CHANGE_OK(f, store_domain_add(f->st, "acme", "bücher.example", ERR(f)));
	CHANGE_OK(f, store_connector_add(f->st, "acme", "relay", CONNECTOR_ONPREM, ranges, 1,
					 NULL, 0, ERR(f)));
	CHANGE_OK(f, store_connector_add(f->st, "acme", "p", CONNECTOR_PARTNER, NULL, 0,
					 "mx.partner.example", 1, ERR(f)));
	CHANGE_OK(f, store_ip_add(f->st, "acme", IP_LIST_ALLOW, "203.0.113.0/24", "net", ERR(f)));
	CHANGE_OK(f, store_ip_add(f->st, "acme", IP_LIST_BLOCK, "203.0.113.9", "host", ERR(f)));
	CHANGE_OK(f, store_ip_add(f->st, "acme", IP_LIST_BLOCK, "2001:db8::/32", "v6", ERR(f)));

	s = store_load(f->st, ERR(f));
	assert_non_null(s);
	assert_int_equal(model_generation(s), store_generation(f->st));
	assert_int_equal(model_ntenants(s), 1);
	t = model_tenant_by_name(s, "acme");
	assert_non_null(t);
	assert_string_equal(t->route, "10.0.0.5:25");
	assert_int_equal(t->ndomains, 1);
	assert_string_equal(t->domains[0], "xn--bcher-kva.example");
	assert_ptr_equal(model_tenant_for_domain(s, "xn--bcher-kva.example"), t);
	assert_int_equal(t->nconnectors, 2);
	assert_int_equal(t->nallow, 1);
	assert_int_equal(t->nblock, 2);

	assert_int_equal(ip_parse("203.0.113.9", &ip), 0);
	e = model_ip_lookup(s, t, &ip);
	assert_non_null(e);
	assert_int_equal(e->list, IP_LIST_BLOCK);
	assert_string_equal(e->comment, "host");
	assert_int_equal(ip_parse("203.0.113.10", &ip), 0);
	e = model_ip_lookup(s, t, &ip);
	assert_non_null(e);
	assert_int_equal(e->list, IP_LIST_ALLOW);
	assert_int_equal(ip_parse("2001:db8::25", &ip), 0);
	assert_non_null(model_ip_lookup(s, t, &ip));

	assert_int_equal(ip_parse("192.0.2.200", &ip), 0);
	model_connectors_matching_ip(s, &ip, on_conn, &hit);
	assert_int_equal(hit.n, 1);
	assert_string_equal(hit.c->name, "relay");
	assert_int_equal(hit.c->type, CONNECTOR_ONPREM);
	assert_ptr_equal(hit.c->tenant, t);
	memset(&hit, 0, sizeof(hit));
	model_connectors_matching_tls(s, "MX.partner.example", on_tls, &hit);
	assert_int_equal(hit.n, 1);
	assert_string_equal(hit.c->name, "p");
	assert_int_equal(hit.c->require_tls, 1);
	assert_int_equal(hit.c->type, CONNECTOR_PARTNER);
	model_unref(&s);
	assert_null(s);

	/* an empty store loads too */
	CHANGE_OK(f, store_tenant_remove(f->st, "acme", ERR(f)));
	s = store_load(f->st, ERR(f));
	assert_non_null(s);
	assert_int_equal(model_ntenants(s), 0);
	model_unref(&s);
}

/* 1,000 tenants x 100 entries inserted straight through SQLite in one transaction (the
 * store's own path is one transaction per change, which is the point of it, but slow for
 * a fixture). Prints the load time for the record; timing is asserted in bench/, not here. */
static void bulk_insert(struct fixture *f)
{
	sqlite3 *db = raw_open(f);
	sqlite3_stmt *tn, *en;
	char name[32], cidr[32];

	assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO tenants (id, name, route, created) "
						"VALUES (?, ?, '10.0.0.5:25', 0)", -1, &tn, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "INSERT INTO ip_entries (tenant_id, list, cidr, "
						"net, prefix, comment, created) VALUES "
						"(?, ?, ?, ?, 128, 'bulk', 0)", -1, &en, NULL),
			 SQLITE_OK);
	for (int t = 1; t <= BULK_TENANTS; t++) {
		snprintf(name, sizeof(name), "tenant%04d", t);
		sqlite3_bind_int(tn, 1, t);
		sqlite3_bind_text(tn, 2, name, -1, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(tn), SQLITE_DONE);
		sqlite3_reset(tn);
		for (int i = 0; i < BULK_PER_TENANT; i++) {
			struct ip_addr ip;
			snprintf(cidr, sizeof(cidr), "10.%d.%d.%d", t / 256, t % 256, i);
			assert_int_equal(ip_parse(cidr, &ip), 0);
			strcat(cidr, "/32");
			sqlite3_bind_int(en, 1, t);
			sqlite3_bind_text(en, 2, i % 2 ? "block" : "allow", -1, SQLITE_STATIC);
			sqlite3_bind_text(en, 3, cidr, -1, SQLITE_TRANSIENT);
			sqlite3_bind_blob(en, 4, ip.b, 16, SQLITE_TRANSIENT);
			assert_int_equal(sqlite3_step(en), SQLITE_DONE);
			sqlite3_reset(en);
		}
	}
	sqlite3_finalize(tn);
	sqlite3_finalize(en);
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_load_100k(void **state)
{
	struct fixture *f = *state;
	struct model_snapshot *s;
	const struct model_tenant *t;
	const struct model_ip_entry *e;
	struct timespec t0;
	struct ip_addr ip;

	bulk_insert(f);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s = store_load(f->st, ERR(f));
	printf("store_load: %d entries across %d tenants loaded in %.1f ms\n",
	       BULK_TENANTS * BULK_PER_TENANT, BULK_TENANTS, ms_since(&t0));
	if (!s)
		fail_msg("store_load: %s", f->err);
	assert_int_equal(model_ntenants(s), BULK_TENANTS);
	t = model_tenant_by_name(s, "tenant0777");
	assert_non_null(t);
	assert_int_equal(t->nallow + t->nblock, BULK_PER_TENANT);
	assert_int_equal(ip_parse("10.3.9.33", &ip), 0); /* 777 = 3 * 256 + 9 */
	e = model_ip_lookup(s, t, &ip);
	assert_non_null(e);
	assert_int_equal(e->list, IP_LIST_BLOCK);
	assert_ptr_equal(e->tenant, t);
	model_unref(&s);
}

/* ---- recipient validation ------------------------------------------------------------ */

/* The schema as version 1 shipped it, frozen here: migrations must take a real old store
 * forward, not one the current code wrote. */
static const char schema_v1[] =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	"INSERT INTO meta (key, value) VALUES ('generation', 1);"
	"CREATE TABLE tenants (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	"  route TEXT NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE domains (domain TEXT PRIMARY KEY,"
	"  tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"
	"  created INTEGER NOT NULL);"
	"CREATE INDEX domains_by_tenant ON domains (tenant_id);"
	"CREATE TABLE connectors (id INTEGER PRIMARY KEY,"
	"  tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL COLLATE NOCASE, type TEXT NOT NULL CHECK (type IN ('onprem', 'partner')),"
	"  tls_name TEXT NOT NULL DEFAULT '',"
	"  require_tls INTEGER NOT NULL DEFAULT 0 CHECK (require_tls IN (0, 1)),"
	"  created INTEGER NOT NULL, UNIQUE (tenant_id, name));"
	"CREATE TABLE connector_ranges ("
	"  connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,"
	"  cidr TEXT NOT NULL, net BLOB NOT NULL CHECK (length(net) = 16),"
	"  prefix INTEGER NOT NULL CHECK (prefix BETWEEN 0 AND 128),"
	"  PRIMARY KEY (connector_id, cidr)) WITHOUT ROWID;"
	"CREATE TABLE ip_entries (id INTEGER PRIMARY KEY,"
	"  tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"
	"  list TEXT NOT NULL CHECK (list IN ('allow', 'block')), cidr TEXT NOT NULL,"
	"  net BLOB NOT NULL CHECK (length(net) = 16),"
	"  prefix INTEGER NOT NULL CHECK (prefix BETWEEN 0 AND 128),"
	"  comment TEXT NOT NULL DEFAULT '', created INTEGER NOT NULL,"
	"  UNIQUE (tenant_id, list, cidr));"
	"INSERT INTO tenants (id, name, route, created) VALUES (1, 'old', '10.0.0.9:25', 1);"
	"INSERT INTO domains (domain, tenant_id, created) VALUES ('old.example', 1, 1);"
	"UPDATE meta SET value = 7 WHERE key = 'generation';"
	"PRAGMA user_version = 1;";

static void test_migrate_from_v1(void **state)
{
	struct fixture *f = *state;
	char dir[160], path[200];
	struct store *st;
	sqlite3 *db;

	snprintf(dir, sizeof(dir), "%s/v1", f->root);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, schema_v1, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	/* a reader cannot migrate and says so */
	assert_null(store_open(dir, STORE_READ_ONLY, ERR(f)));
	assert_non_null(strstr(f->err, "schema version 1"));
	st = store_open(dir, STORE_READ_WRITE, ERR(f));
	if (!st)
		fail_msg("store_open: %s", f->err);
	assert_int_equal(store_generation(st), 7); /* a migration is not a policy change */
	struct model_snapshot *s = store_load(st, ERR(f));
	assert_non_null(s);
	const struct model_tenant *t = model_tenant_by_name(s, "old");
	assert_non_null(t);
	assert_int_equal(t->recipient_check, RCPT_CHECK_OFF);
	assert_int_equal(t->route_tls, ROUTE_TLS_OPPORTUNISTIC);
	assert_int_equal(t->nrecipients, 0);
	assert_ptr_equal(model_tenant_for_domain(s, "old.example"), t);
	model_unref(&s);
	assert_int_equal(store_recipient_add(st, "old", "bob@old.example", ERR(f)), STORE_OK);
	assert_int_equal(store_tenant_set_recipient_check(st, "old", RCPT_CHECK_DIRECTORY, ERR(f)),
			 STORE_OK);
	assert_int_equal(store_generation(st), 9);
	store_close(&st);
	/* and the migrated store opens again as it is */
	st = store_open(dir, STORE_READ_ONLY, ERR(f));
	assert_non_null(st);
	s = store_load(st, ERR(f));
	assert_non_null(s);
	t = model_tenant_by_name(s, "old");
	assert_int_equal(t->recipient_check, RCPT_CHECK_DIRECTORY);
	assert_int_equal(model_recipient_known(s, t, "BOB", "old.example"), MODEL_RCPT_LISTED);
	model_unref(&s);
	store_close(&st);
}

/* Version 1 -> 2 as version 2 shipped it, frozen like schema_v1. */
static const char migration_v2[] =
	"ALTER TABLE tenants ADD COLUMN recipient_check TEXT NOT NULL DEFAULT 'off'"
	"  CHECK (recipient_check IN ('off', 'directory', 'probe'));"
	"CREATE TABLE recipients ("
	"  tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"
	"  domain TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,"
	"  local TEXT NOT NULL COLLATE NOCASE,"
	"  created INTEGER NOT NULL,"
	"  PRIMARY KEY (tenant_id, domain, local)"
	") WITHOUT ROWID;"
	"CREATE INDEX recipients_by_domain ON recipients (domain);"
	"UPDATE tenants SET recipient_check = 'directory' WHERE name = 'old';"
	"INSERT INTO recipients (tenant_id, domain, local, created) VALUES (1, 'old.example', "
	"  'bob', 1);"
	"PRAGMA user_version = 2;";

/* A version 2 store (recipient validation, no route TLS) keeps its settings and directory,
 * and every tenant's route TLS starts as opportunistic. */
static void test_migrate_from_v2(void **state)
{
	struct fixture *f = *state;
	char dir[160], path[200];
	struct store *st;
	sqlite3 *db;

	snprintf(dir, sizeof(dir), "%s/v2", f->root);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, schema_v1, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, migration_v2, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	assert_null(store_open(dir, STORE_READ_ONLY, ERR(f)));
	assert_non_null(strstr(f->err, "schema version 2"));
	st = store_open(dir, STORE_READ_WRITE, ERR(f));
	if (!st)
		fail_msg("store_open: %s", f->err);
	assert_int_equal(store_generation(st), 7);
	struct model_snapshot *s = store_load(st, ERR(f));
	assert_non_null(s);
	const struct model_tenant *t = model_tenant_by_name(s, "old");
	assert_int_equal(t->recipient_check, RCPT_CHECK_DIRECTORY);
	assert_int_equal(t->route_tls, ROUTE_TLS_OPPORTUNISTIC);
	assert_int_equal(model_recipient_known(s, t, "Bob", "old.example"), MODEL_RCPT_LISTED);
	model_unref(&s);
	assert_int_equal(store_tenant_set_route_tls(st, "old", ROUTE_TLS_VERIFY, ERR(f)), STORE_OK);
	assert_int_equal(store_generation(st), 8);
	store_close(&st);
	st = store_open(dir, STORE_READ_ONLY, ERR(f));
	assert_non_null(st);
	s = store_load(st, ERR(f));
	assert_non_null(s);
	assert_int_equal(model_tenant_by_name(s, "old")->route_tls, ROUTE_TLS_VERIFY);
	assert_int_equal(model_tenant_by_name(s, "old")->recipient_check, RCPT_CHECK_DIRECTORY);
	model_unref(&s);
	store_close(&st);
}

/* acme (acme.example, bücher.example), beta (beta.example), empty (no domains). */
static void rcpt_fixture(struct fixture *f)
{
	add_tenant(f, "acme");
	add_tenant(f, "beta");
	add_tenant(f, "empty");
	CHANGE_OK(f, store_domain_add(f->st, "acme", "acme.example", ERR(f)));
	CHANGE_OK(f, store_domain_add(f->st, "acme", "b\xc3\xbc" "cher.example", ERR(f)));
	CHANGE_OK(f, store_domain_add(f->st, "beta", "beta.example", ERR(f)));
}

static void test_recipient_check_setting(void **state)
{
	static const struct {
		const char *text;
		int rc;
		const char *msg;
	} rows[] = {
		{ "off", STORE_OK, NULL },
		{ "directory", STORE_OK, NULL },
		{ "probe", STORE_OK, NULL },
		{ "Directory", STORE_REFUSED, "is not one of off, directory, probe" },
		{ "", STORE_REFUSED, "is not one of off, directory, probe" },
		{ "on", STORE_REFUSED, "'on' is not one of off, directory, probe" },
	};
	struct fixture *f = *state;
	enum recipient_check check;

	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		f->err[0] = '\0';
		int rc = store_recipient_check_parse(rows[i].text, &check, ERR(f));
		if (rc != rows[i].rc || (rows[i].msg && !strstr(f->err, rows[i].msg)))
			fail_msg("'%s': %d '%s'", rows[i].text, rc, f->err);
	}
	assert_int_equal(store_recipient_check_parse("directory", &check, ERR(f)), STORE_OK);
	assert_int_equal(check, RCPT_CHECK_DIRECTORY);

	rcpt_fixture(f);
	assert_int_equal(tenant_get(f, "acme").info.recipient_check, RCPT_CHECK_OFF);
	CHANGE_OK(f, store_tenant_set_recipient_check(f->st, "ACME", RCPT_CHECK_DIRECTORY, ERR(f)));
	assert_int_equal(tenant_get(f, "acme").info.recipient_check, RCPT_CHECK_DIRECTORY);
	assert_int_equal(tenant_get(f, "beta").info.recipient_check, RCPT_CHECK_OFF);
	/* setting the same value again is a change like any other (idempotent) */
	CHANGE_OK(f, store_tenant_set_recipient_check(f->st, "acme", RCPT_CHECK_DIRECTORY, ERR(f)));
	CHANGE_OK(f, store_tenant_set_recipient_check(f->st, "acme", RCPT_CHECK_OFF, ERR(f)));
	assert_int_equal(tenant_get(f, "acme").info.recipient_check, RCPT_CHECK_OFF);
	CHANGE_REFUSED(f, store_tenant_set_recipient_check(f->st, "nobody", RCPT_CHECK_OFF, ERR(f)),
		       "no tenant named nobody");
	CHANGE_REFUSED(f, store_tenant_set_recipient_check(f->st, "acme", (enum recipient_check)9,
							    ERR(f)), "must be off, directory or probe");
	CHANGE_OK(f, store_tenant_set_recipient_check(f->st, "acme", RCPT_CHECK_PROBE, ERR(f)));
	assert_int_equal(tenant_get(f, "acme").info.recipient_check, RCPT_CHECK_PROBE);
	assert_int_equal(store_recipient_check_parse("probe", &check, ERR(f)), STORE_OK);
	assert_int_equal(check, RCPT_CHECK_PROBE);
	/* the schema refuses a value the code never writes */
	sqlite3 *db = raw_open(f);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE tenants SET recipient_check = 'on'", NULL,
					  NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_route_tls_setting(void **state)
{
	static const struct {
		const char *text;
		int rc;
		const char *msg;
	} rows[] = {
		{ "opportunistic", STORE_OK, NULL },
		{ "required", STORE_OK, NULL },
		{ "verify", STORE_OK, NULL },
		{ "Verify", STORE_REFUSED, "route TLS 'Verify' is not one of opportunistic, required, "
					   "verify" },
		{ "", STORE_REFUSED, "is not one of opportunistic, required, verify" },
		{ "yes", STORE_REFUSED, "'yes' is not one of" },
	};
	struct fixture *f = *state;
	struct model_snapshot *s;
	enum route_tls tls;

	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		f->err[0] = '\0';
		int rc = store_route_tls_parse(rows[i].text, &tls, ERR(f));
		if (rc != rows[i].rc || (rows[i].msg && !strstr(f->err, rows[i].msg)))
			fail_msg("'%s': %d '%s'", rows[i].text, rc, f->err);
	}
	assert_int_equal(store_route_tls_parse("verify", &tls, ERR(f)), STORE_OK);
	assert_int_equal(tls, ROUTE_TLS_VERIFY);

	rcpt_fixture(f);
	assert_int_equal(tenant_get(f, "acme").info.route_tls, ROUTE_TLS_OPPORTUNISTIC);
	uint64_t g = store_generation(f->st);
	CHANGE_OK(f, store_tenant_set_route_tls(f->st, "ACME", ROUTE_TLS_REQUIRED, ERR(f)));
	assert_int_equal(store_generation(f->st), g + 1);
	assert_int_equal(tenant_get(f, "acme").info.route_tls, ROUTE_TLS_REQUIRED);
	assert_int_equal(tenant_get(f, "beta").info.route_tls, ROUTE_TLS_OPPORTUNISTIC);
	/* the route itself is unchanged: the mode is its own column */
	assert_string_equal(tenant_get(f, "acme").route, "10.0.0.5:25");
	/* both settings in one change: one generation; each leaves the other alone */
	struct store_tenant_settings both = { .set_recipient_check = 1,
					      .recipient_check = RCPT_CHECK_PROBE,
					      .set_route_tls = 1, .route_tls = ROUTE_TLS_VERIFY };
	CHANGE_OK(f, store_tenant_set(f->st, "beta", &both, ERR(f)));
	assert_int_equal(store_generation(f->st), g + 2);
	assert_int_equal(tenant_get(f, "beta").info.route_tls, ROUTE_TLS_VERIFY);
	assert_int_equal(tenant_get(f, "beta").info.recipient_check, RCPT_CHECK_PROBE);
	CHANGE_OK(f, store_tenant_set_recipient_check(f->st, "beta", RCPT_CHECK_OFF, ERR(f)));
	assert_int_equal(tenant_get(f, "beta").info.route_tls, ROUTE_TLS_VERIFY);
	CHANGE_OK(f, store_tenant_set_route_tls(f->st, "acme", ROUTE_TLS_OPPORTUNISTIC, ERR(f)));
	assert_int_equal(tenant_get(f, "acme").info.route_tls, ROUTE_TLS_OPPORTUNISTIC);
	/* the snapshot carries it */
	s = store_load(f->st, ERR(f));
	assert_non_null(s);
	assert_int_equal(model_tenant_by_name(s, "beta")->route_tls, ROUTE_TLS_VERIFY);
	assert_int_equal(model_tenant_by_name(s, "beta")->recipient_check, RCPT_CHECK_OFF);
	assert_int_equal(model_tenant_by_name(s, "acme")->route_tls, ROUTE_TLS_OPPORTUNISTIC);
	model_unref(&s);
	/* refusals change nothing */
	struct store_tenant_settings none = { 0 };
	CHANGE_REFUSED(f, store_tenant_set(f->st, "acme", &none, ERR(f)), "nothing to set");
	CHANGE_REFUSED(f, store_tenant_set_route_tls(f->st, "acme", (enum route_tls)3, ERR(f)),
		       "must be opportunistic, required or verify");
	CHANGE_REFUSED(f, store_tenant_set_route_tls(f->st, "nobody", ROUTE_TLS_VERIFY, ERR(f)),
		       "no tenant named nobody");
	/* the schema refuses a value the code never writes */
	sqlite3 *db = raw_open(f);
	assert_int_not_equal(sqlite3_exec(db, "UPDATE tenants SET route_tls = 'on'", NULL, NULL,
					  NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_address_syntax(void **state)
{
	static const struct {
		const char *in;
		const char *local; /* NULL: refused */
		const char *domain_or_msg;
		const char *shown; /* store_address_format of the result */
	} rows[] = {
		{ "bob@acme.example", "bob", "acme.example", "bob@acme.example" },
		{ "Bob.Smith@ACME.Example", "Bob.Smith", "acme.example", "Bob.Smith@acme.example" },
		{ "first.last+tag@acme.example", "first.last+tag", "acme.example", NULL },
		{ "o'hara@acme.example", "o'hara", "acme.example", NULL },
		{ "*@acme.example", "*", "acme.example", "*@acme.example" },
		{ "\"*\"@acme.example", "*", "acme.example", "*@acme.example" },
		{ "\"bob\"@acme.example", "bob", "acme.example", "bob@acme.example" },
		{ "\"john doe\"@acme.example", "john doe", "acme.example", "\"john doe\"@acme.example" },
		{ "\"a\\\"b\\\\c\"@acme.example", "a\"b\\c", "acme.example",
		  "\"a\\\"b\\\\c\"@acme.example" },
		{ "\"a..b\"@acme.example", "a..b", "acme.example", "\"a..b\"@acme.example" },
		{ "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "j\xc3\xb6rg", "xn--bcher-kva.example",
		  "j\xc3\xb6rg@xn--bcher-kva.example" },
		{ "a@b@acme.example", NULL, "has %, ! or @ in its local part", NULL },
		{ "a%b@acme.example", NULL, "has %, ! or @", NULL },
		{ "a!b@acme.example", NULL, "has %, ! or @", NULL },
		{ "\"a@b\"@acme.example", NULL, "has %, ! or @", NULL },
		{ "bo*b@acme.example", NULL, "only a whole local part '*' is a wildcard", NULL },
		{ "*.*@acme.example", NULL, "only a whole local part '*'", NULL },
		{ "bob", NULL, "it has no '@'", NULL },
		{ "", NULL, "must not be empty", NULL },
		{ "@acme.example", NULL, "no local part", NULL },
		{ "bob@", NULL, "no domain after the '@'", NULL },
		{ "bob@acme..example", NULL, "empty label", NULL },
		{ "bob@[192.0.2.1]", NULL, "contains '['", NULL },
		{ "bob@192.0.2.1", NULL, "looks like an IP address", NULL },
		{ "bob smith@acme.example", NULL, "contains ' ' in its local part", NULL },
		{ "a..b@acme.example", NULL, "leading, trailing or doubled dot", NULL },
		{ ".a@acme.example", NULL, "leading, trailing or doubled dot", NULL },
		{ "a.@acme.example", NULL, "leading, trailing or doubled dot", NULL },
		{ "\"abc@acme.example", NULL, "unclosed quote", NULL },
		{ "\"a\"b\"@acme.example", NULL, "a quote inside its quoted local part", NULL },
		{ "\"\"@acme.example", NULL, "empty local part", NULL },
		{ "\"a\tb\"@acme.example", NULL, "control character", NULL },
		{ "a\xff@acme.example", NULL, "not valid UTF-8", NULL },
		{ "a\xc3@acme.example", NULL, "not valid UTF-8", NULL },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@acme.example", NULL,
		  "local part of 65 octets; the limit is 64", NULL },
	};
	char local[MODEL_LOCAL_MAX + 1], domain[MODEL_DOMAIN_MAX + 1], out[STORE_ADDRESS_MAX + 1];
	char err[STORE_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
		err[0] = '\0';
		int rc = store_address_normalize(rows[i].in, local, domain, err, sizeof(err));
		if (!rows[i].local) {
			if (rc != STORE_REFUSED || !strstr(err, rows[i].domain_or_msg))
				fail_msg("row %zu '%s': %d '%s', want a refusal with '%s'", i, rows[i].in,
					 rc, err, rows[i].domain_or_msg);
			continue;
		}
		if (rc != STORE_OK)
			fail_msg("row %zu '%s': refused: %s", i, rows[i].in, err);
		if (strcmp(local, rows[i].local) != 0 || strcmp(domain, rows[i].domain_or_msg) != 0)
			fail_msg("row %zu '%s': '%s' '%s'", i, rows[i].in, local, domain);
		store_address_format(local, domain, out, sizeof(out));
		if (rows[i].shown && strcmp(out, rows[i].shown) != 0)
			fail_msg("row %zu '%s': shown as '%s', want '%s'", i, rows[i].in, out,
				 rows[i].shown);
		/* the shown form reads back to the same address */
		char l2[MODEL_LOCAL_MAX + 1], d2[MODEL_DOMAIN_MAX + 1];
		if (store_address_normalize(out, l2, d2, err, sizeof(err)) != STORE_OK ||
		    strcmp(l2, local) != 0 || strcmp(d2, domain) != 0)
			fail_msg("row %zu: '%s' does not read back: %s", i, out, err);
	}
	/* the longest local part quoted doubles, and still fits */
	memset(local, '"', MODEL_LOCAL_MAX);
	local[MODEL_LOCAL_MAX] = '\0';
	memset(domain, 'd', MODEL_DOMAIN_MAX);
	domain[MODEL_DOMAIN_MAX] = '\0';
	store_address_format(local, domain, out, sizeof(out));
	assert_int_equal(strlen(out), STORE_ADDRESS_MAX);
}

struct rcpt_list {
	char text[4096];
	size_t n;
};

static void collect_recipient(const struct store_recipient_info *r, void *arg)
{
	struct rcpt_list *c = arg;
	size_t n = strlen(c->text);
	int64_t now = (int64_t)time(NULL);

	assert_true(r->created > now - 60 && r->created <= now);
	snprintf(c->text + n, sizeof(c->text) - n, "%s ", r->address);
	c->n++;
}

static struct rcpt_list rcpt_list(struct fixture *f, const char *tenant)
{
	struct rcpt_list c = { .n = 0 };

	assert_int_equal(store_recipient_each(f->st, tenant, collect_recipient, &c, ERR(f)),
			 STORE_OK);
	return c;
}

static void test_recipient_add_remove(void **state)
{
	struct fixture *f = *state;

	rcpt_fixture(f);
	CHANGE_OK(f, store_recipient_add(f->st, "acme", "Bob@ACME.example", ERR(f)));
	CHANGE_OK(f, store_recipient_add(f->st, "acme", "alice@acme.example", ERR(f)));
	CHANGE_OK(f, store_recipient_add(f->st, "Acme", "\"john doe\"@acme.example", ERR(f)));
	CHANGE_OK(f, store_recipient_add(f->st, "acme", "*@b\xc3\xbc" "cher.example", ERR(f)));
	CHANGE_OK(f, store_recipient_add(f->st, "acme", "bob@xn--bcher-kva.example", ERR(f)));
	CHANGE_OK(f, store_recipient_add(f->st, "beta", "bob@beta.example", ERR(f)));
	CHANGE_REFUSED(f, store_recipient_add(f->st, "acme", "BOB@acme.example", ERR(f)),
		       "Bob@acme.example is already in the recipient directory of tenant acme");
	CHANGE_REFUSED(f, store_recipient_add(f->st, "acme", "*@xn--bcher-kva.example", ERR(f)),
		       "*@xn--bcher-kva.example is already in the recipient directory");
	CHANGE_REFUSED(f, store_recipient_add(f->st, "acme", "x@beta.example", ERR(f)),
		       "domain beta.example belongs to tenant beta, not to tenant acme");
	CHANGE_REFUSED(f, store_recipient_add(f->st, "acme", "x@other.example", ERR(f)),
		       "domain other.example is not one of tenant acme's domains (acme.example, "
		       "xn--bcher-kva.example)");
	CHANGE_REFUSED(f, store_recipient_add(f->st, "acme", "x@sub.acme.example", ERR(f)),
		       "is not one of tenant acme's domains");
	CHANGE_REFUSED(f, store_recipient_add(f->st, "empty", "x@acme.example", ERR(f)),
		       "belongs to tenant acme");
	CHANGE_REFUSED(f, store_recipient_add(f->st, "empty", "x@other.example", ERR(f)),
		       "tenant empty has no domains");
	CHANGE_REFUSED(f, store_recipient_add(f->st, "nobody", "x@acme.example", ERR(f)),
		       "no tenant named nobody");
	CHANGE_REFUSED(f, store_recipient_add(f->st, "acme", "not an address", ERR(f)),
		       "no '@'");

	struct rcpt_list l = rcpt_list(f, "acme");
	assert_string_equal(l.text, "alice@acme.example Bob@acme.example \"john doe\"@acme.example "
				    "*@xn--bcher-kva.example bob@xn--bcher-kva.example ");
	assert_string_equal(rcpt_list(f, "beta").text, "bob@beta.example ");
	assert_string_equal(rcpt_list(f, "empty").text, "");
	assert_int_equal(tenant_get(f, "acme").info.nrecipients, 5);
	assert_int_equal(store_recipient_each(f->st, "nobody", collect_recipient, &l, ERR(f)),
			 STORE_REFUSED);

	/* removal matches like the server does: ASCII case ignored, quotes canonical */
	CHANGE_OK(f, store_recipient_remove(f->st, "acme", "bob@acme.example", ERR(f)));
	CHANGE_OK(f, store_recipient_remove(f->st, "acme", "\"John Doe\"@ACME.EXAMPLE", ERR(f)));
	CHANGE_OK(f, store_recipient_remove(f->st, "acme", "*@b\xc3\xbc" "cher.example", ERR(f)));
	CHANGE_REFUSED(f, store_recipient_remove(f->st, "acme", "bob@acme.example", ERR(f)),
		       "bob@acme.example is not in the recipient directory of tenant acme");
	CHANGE_REFUSED(f, store_recipient_remove(f->st, "acme", "bob@beta.example", ERR(f)),
		       "is not in the recipient directory of tenant acme");
	CHANGE_REFUSED(f, store_recipient_remove(f->st, "nobody", "bob@beta.example", ERR(f)),
		       "no tenant named nobody");
	CHANGE_REFUSED(f, store_recipient_remove(f->st, "acme", "bo*b@acme.example", ERR(f)),
		       "wildcard");
	assert_string_equal(rcpt_list(f, "acme").text,
			    "alice@acme.example bob@xn--bcher-kva.example ");
}

static void test_recipient_import(void **state)
{
	static const struct store_import_line good[] = {
		{ "carol@acme.example", 3 }, { "Alice@acme.example", 4 }, { "dave@acme.example", 5 },
		{ "CAROL@acme.example", 9 }, { "*@b\xc3\xbc" "cher.example", 10 },
		{ "x@B\xc3\xbc" "CHER.example", 11 },
	};
	static const struct store_import_line bad[] = {
		{ "erin@acme.example", 1 }, { "erin", 2 }, { "frank@acme.example", 3 },
		{ "x@beta.example", 7 }, { "a..b@acme.example", 8 },
	};
	static const struct store_import_line foreign[] = {
		{ "erin@acme.example", 1 }, { "x@beta.example", 12 },
	};
	struct fixture *f = *state;
	struct store_import_result res;

	rcpt_fixture(f);
	CHANGE_OK(f, store_recipient_add(f->st, "acme", "alice@acme.example", ERR(f)));
	CHANGE_OK(f, store_recipient_import(f->st, "acme", "users.txt", good, ARRAY_LEN(good), &res,
					    ERR(f)));
	assert_int_equal(res.added, 4);   /* carol, dave, the catch-all, x */
	assert_int_equal(res.present, 2); /* Alice already there, CAROL given twice */
	assert_string_equal(rcpt_list(f, "acme").text,
			    "alice@acme.example carol@acme.example dave@acme.example "
			    "*@xn--bcher-kva.example x@xn--bcher-kva.example ");
	/* again: nothing new, still one change */
	CHANGE_OK(f, store_recipient_import(f->st, "acme", "users.txt", good, ARRAY_LEN(good), &res,
					    ERR(f)));
	assert_int_equal(res.added, 0);
	assert_int_equal(res.present, ARRAY_LEN(good));

	/* all or nothing, naming the first bad line and counting the others */
	CHANGE_REFUSED(f, store_recipient_import(f->st, "acme", "bad.txt", bad, ARRAY_LEN(bad), &res,
						 ERR(f)),
		       "bad.txt line 2: 'erin' is not an email address");
	assert_non_null(strstr(f->err, "(and 2 more bad lines); nothing was imported"));
	assert_int_equal(res.added, 0);
	CHANGE_REFUSED(f, store_recipient_import(f->st, "acme", "f.txt", foreign, ARRAY_LEN(foreign),
						 &res, ERR(f)),
		       "f.txt line 12: address x@beta.example: domain beta.example belongs to "
		       "tenant beta");
	assert_null(strstr(f->err, "more bad"));
	assert_int_equal(tenant_get(f, "acme").info.nrecipients, 5);
	CHANGE_REFUSED(f, store_recipient_import(f->st, "nobody", "f.txt", good, 1, &res, ERR(f)),
		       "no tenant named nobody");
	/* an empty import is a (harmless) change */
	CHANGE_OK(f, store_recipient_import(f->st, "acme", NULL, good, 0, &res, ERR(f)));
	assert_int_equal(res.added + res.present, 0);
}

struct dom_counts {
	char text[256];
};

static void collect_rcpt_domain(const struct store_recipient_domain *d, void *arg)
{
	struct dom_counts *c = arg;
	size_t n = strlen(c->text);

	snprintf(c->text + n, sizeof(c->text) - n, "%s=%lu%s ", d->domain, d->count,
		 d->catchall ? "*" : "");
}

/* Removing a domain takes its addresses along (not the tenant's others); removing the tenant
 * takes all; the per-domain counts follow. */
static void test_recipient_cascades(void **state)
{
	struct fixture *f = *state;
	struct dom_counts c = { "" };

	rcpt_fixture(f);
	CHANGE_OK(f, store_recipient_add(f->st, "acme", "a@acme.example", ERR(f)));
	CHANGE_OK(f, store_recipient_add(f->st, "acme", "b@acme.example", ERR(f)));
	CHANGE_OK(f, store_recipient_add(f->st, "acme", "*@xn--bcher-kva.example", ERR(f)));
	CHANGE_OK(f, store_recipient_add(f->st, "beta", "a@beta.example", ERR(f)));
	assert_int_equal(store_recipient_domains(f->st, "acme", collect_rcpt_domain, &c, ERR(f)),
			 STORE_OK);
	assert_string_equal(c.text, "acme.example=2 xn--bcher-kva.example=1* ");
	assert_int_equal(store_recipient_domains(f->st, "nobody", collect_rcpt_domain, &c, ERR(f)),
			 STORE_REFUSED);

	CHANGE_OK(f, store_domain_remove(f->st, "acme.example", ERR(f)));
	assert_string_equal(rcpt_list(f, "acme").text, "*@xn--bcher-kva.example ");
	/* the domain comes back empty */
	CHANGE_OK(f, store_domain_add(f->st, "acme", "acme.example", ERR(f)));
	c.text[0] = '\0';
	assert_int_equal(store_recipient_domains(f->st, "acme", collect_rcpt_domain, &c, ERR(f)),
			 STORE_OK);
	assert_string_equal(c.text, "acme.example=0 xn--bcher-kva.example=1* ");

	CHANGE_OK(f, store_tenant_remove(f->st, "acme", ERR(f)));
	assert_int_equal(raw_int(f, "SELECT count(*) FROM recipients"), 1);
	assert_string_equal(rcpt_list(f, "beta").text, "a@beta.example ");
}

/* store_load carries the check and the directory into the snapshot. */
static void test_recipient_load(void **state)
{
	struct fixture *f = *state;
	struct model_snapshot *s;

	rcpt_fixture(f);
	CHANGE_OK(f, store_recipient_add(f->st, "acme", "Bob@acme.example", ERR(f)));
	CHANGE_OK(f, store_recipient_add(f->st, "acme", "\"john doe\"@acme.example", ERR(f)));
	CHANGE_OK(f, store_recipient_add(f->st, "acme", "*@b\xc3\xbc" "cher.example", ERR(f)));
	CHANGE_OK(f, store_recipient_add(f->st, "beta", "carol@beta.example", ERR(f)));
	CHANGE_OK(f, store_tenant_set_recipient_check(f->st, "acme", RCPT_CHECK_DIRECTORY, ERR(f)));
	s = store_load(f->st, ERR(f));
	assert_non_null(s);
	assert_int_equal(model_generation(s), store_generation(f->st));
	const struct model_tenant *acme = model_tenant_by_name(s, "acme");
	const struct model_tenant *beta = model_tenant_by_name(s, "beta");
	assert_int_equal(acme->recipient_check, RCPT_CHECK_DIRECTORY);
	assert_int_equal(beta->recipient_check, RCPT_CHECK_OFF);
	assert_int_equal(acme->nrecipients, 3);
	assert_int_equal(beta->nrecipients, 1);
	assert_int_equal(model_recipient_known(s, acme, "bob", "acme.example"), MODEL_RCPT_LISTED);
	assert_int_equal(model_recipient_known(s, acme, "JOHN DOE", "acme.example"),
			 MODEL_RCPT_LISTED);
	assert_int_equal(model_recipient_known(s, acme, "x", "xn--bcher-kva.example"),
			 MODEL_RCPT_CATCHALL);
	assert_int_equal(model_recipient_known(s, acme, "carol", "beta.example"),
			 MODEL_RCPT_UNKNOWN);
	assert_int_equal(model_recipient_known(s, beta, "carol", "beta.example"),
			 MODEL_RCPT_LISTED);
	model_unref(&s);

	/* 'probe' loads as such (the server then asks the tenant's server at RCPT) */
	sqlite3 *db = raw_open(f);
	assert_int_equal(sqlite3_exec(db, "UPDATE tenants SET recipient_check = 'probe' WHERE "
					  "name = 'beta'", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	s = store_load(f->st, ERR(f));
	assert_non_null(s);
	assert_int_equal(model_tenant_by_name(s, "beta")->recipient_check, RCPT_CHECK_PROBE);
	assert_int_equal(model_tenant_by_name(s, "acme")->recipient_check, RCPT_CHECK_DIRECTORY);
	assert_int_equal(tenant_get(f, "beta").info.recipient_check, RCPT_CHECK_PROBE);
	model_unref(&s);
}

/* BULK_RECIPIENTS addresses through one import, then a load: both timed (printed). */
static void test_recipient_import_bulk(void **state)
{
	struct fixture *f = *state;
	struct store_import_line *lines = calloc(BULK_RECIPIENTS, sizeof(*lines));
	char *text = calloc(BULK_RECIPIENTS, 32);
	struct store_import_result res;
	struct model_snapshot *s;
	struct timespec t0;

	assert_non_null(lines);
	assert_non_null(text);
	rcpt_fixture(f);
	for (size_t i = 0; i < BULK_RECIPIENTS; i++) {
		snprintf(text + i * 32, 32, "user%zu@%s", i, i % 2 ? "acme.example" : "b\xc3\xbc" "cher.example");
		lines[i] = (struct store_import_line){ text + i * 32, i + 1 };
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHANGE_OK(f, store_recipient_import(f->st, "acme", "bulk", lines, BULK_RECIPIENTS, &res,
					    ERR(f)));
	printf("store_recipient_import: %d addresses in %.1f ms\n", BULK_RECIPIENTS, ms_since(&t0));
	assert_int_equal(res.added, BULK_RECIPIENTS);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	s = store_load(f->st, ERR(f));
	printf("store_load: %d recipients in %.1f ms\n", BULK_RECIPIENTS, ms_since(&t0));
	assert_non_null(s);
	const struct model_tenant *acme = model_tenant_by_name(s, "acme");
	assert_int_equal(acme->nrecipients, BULK_RECIPIENTS);
	assert_int_equal(model_recipient_known(s, acme, "USER77", "acme.example"), MODEL_RCPT_LISTED);
	assert_int_equal(model_recipient_known(s, acme, "user77", "xn--bcher-kva.example"),
			 MODEL_RCPT_UNKNOWN);
	model_unref(&s);
	free(lines);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_migrates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_lock_held_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_generation_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenant_add_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenant_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenant_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_domain_add_remove, setup, teardown),
		cmocka_unit_test(test_domain_normalize),
		cmocka_unit_test_setup_teardown(test_connector_add_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connector_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ip_add_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ip_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tenant_remove_cascades, setup, teardown),
		cmocka_unit_test_setup_teardown(test_views, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_100k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_from_v2, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipient_check_setting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_tls_setting, setup, teardown),
		cmocka_unit_test(test_address_syntax),
		cmocka_unit_test_setup_teardown(test_recipient_add_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipient_import, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipient_cascades, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipient_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recipient_import_bulk, setup, teardown),
	};

	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
