/* store: the connection to data_dir/policy.db, its schema and forward migrations, and the
 * transaction every change runs in (see store.h).
 *
 * The schema version is PRAGMA user_version; migrations[i] takes version i to i + 1, and
 * all pending ones run in one IMMEDIATE transaction on open, so two processes starting at
 * once cannot both migrate and a failed migration leaves the old schema intact. WAL lets
 * `serve` read snapshots while an admin command writes. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_private.h"
#include "util/xmalloc.h"

/* How long a change waits for another writer (an admin command, a migration) to finish. */
#define STORE_BUSY_TIMEOUT_MS 2000
#define STORE_DIR_MODE 0750

/* Every generation starts at 1, so that store_generation's 0 can mean "error". */
static const char *const migrations[] = {
	/* 0 -> 1: the initial schema. CIDRs are kept as canonical text (what admins type and
	 * see, and the uniqueness key) and as network bytes + prefix (address order, and a
	 * load that needs no parsing). */
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"INSERT INTO meta (key, value) VALUES ('generation', 1);"
	"CREATE TABLE tenants ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
	"  route TEXT NOT NULL,"
	"  created INTEGER NOT NULL"
	");"
	"CREATE TABLE domains ("
	"  domain TEXT PRIMARY KEY,"
	"  tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"
	"  created INTEGER NOT NULL"
	");"
	"CREATE INDEX domains_by_tenant ON domains (tenant_id);"
	"CREATE TABLE connectors ("
	"  id INTEGER PRIMARY KEY,"
	"  tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"
	"  name TEXT NOT NULL COLLATE NOCASE,"
	"  type TEXT NOT NULL CHECK (type IN ('onprem', 'partner')),"
	"  tls_name TEXT NOT NULL DEFAULT '',"
	"  require_tls INTEGER NOT NULL DEFAULT 0 CHECK (require_tls IN (0, 1)),"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (tenant_id, name)"
	");"
	"CREATE TABLE connector_ranges ("
	"  connector_id INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,"
	"  cidr TEXT NOT NULL,"
	"  net BLOB NOT NULL CHECK (length(net) = 16),"
	"  prefix INTEGER NOT NULL CHECK (prefix BETWEEN 0 AND 128),"
	"  PRIMARY KEY (connector_id, cidr)"
	") WITHOUT ROWID;"
	"CREATE TABLE ip_entries ("
	"  id INTEGER PRIMARY KEY,"
	"  tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"
	"  list TEXT NOT NULL CHECK (list IN ('allow', 'block')),"
	"  cidr TEXT NOT NULL,"
	"  net BLOB NOT NULL CHECK (length(net) = 16),"
	"  prefix INTEGER NOT NULL CHECK (prefix BETWEEN 0 AND 128),"
	"  comment TEXT NOT NULL DEFAULT '',"
	"  created INTEGER NOT NULL,"
	"  UNIQUE (tenant_id, list, cidr)"
	");",
	/* 1 -> 2: recipient validation. A tenant's check ('probe': an SMTP RCPT probe of the
	 * tenant's server) and its directory: the local part
	 * as given (a quoted-string unquoted), unique and matched ignoring ASCII case (NOCASE
	 * folds ASCII only, as the model does), '*' for a domain's catch-all. The domain must
	 * be one of the tenant's (checked on insert); removing it removes its addresses. */
	"ALTER TABLE tenants ADD COLUMN recipient_check TEXT NOT NULL DEFAULT 'off'"
	"  CHECK (recipient_check IN ('off', 'directory', 'probe'));"
	"CREATE TABLE recipients ("
	"  tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,"
	"  domain TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,"
	"  local TEXT NOT NULL COLLATE NOCASE,"
	"  created INTEGER NOT NULL,"
	"  PRIMARY KEY (tenant_id, domain, local)"
	") WITHOUT ROWID;"
	"CREATE INDEX recipients_by_domain ON recipients (domain);",
	/* 2 -> 3: how the queue manager uses TLS to a tenant's route (enum route_tls); every
	 * existing tenant keeps what it had, opportunistic STARTTLS. (Parenthesized: one
	 * statement over two lines, not two array elements missing a comma; clang asks.) */
	("ALTER TABLE tenants ADD COLUMN route_tls TEXT NOT NULL DEFAULT 'opportunistic'"
	 "  CHECK (route_tls IN ('opportunistic', 'required', 'verify'));"),
};

#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

/* ---- errors and statements ------------------------------------------------------------ */

int store_refuse(char *err, size_t esz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, esz, fmt, ap);
	va_end(ap);
	return STORE_REFUSED;
}

int store_fail(struct store *st, const char *what, char *err, size_t esz)
{
	int code = sqlite3_extended_errcode(st->db);

	if ((code & 0xff) == SQLITE_BUSY)
		snprintf(err, esz, "the policy store is locked by another process (%s); try again",
			 what);
	else
		snprintf(err, esz, "policy store error while %s: %s", what, sqlite3_errmsg(st->db));
	/* A damaged page stays in the cache for as long as nobody writes to the store; drop the
	 * unused pages so that the next read sees the file as it is then (repaired, perhaps). */
	sqlite3_db_release_memory(st->db);
	return STORE_FAILED;
}

static int bind_args(sqlite3_stmt *s, const char *types, va_list ap)
{
	int rc = SQLITE_OK;

	for (int i = 1; rc == SQLITE_OK && types[i - 1]; i++) {
		switch (types[i - 1]) {
		case 't': rc = sqlite3_bind_text(s, i, va_arg(ap, const char *), -1, SQLITE_STATIC); break;
		case 'i': rc = sqlite3_bind_int64(s, i, va_arg(ap, int64_t)); break;
		case 'b':
			rc = sqlite3_bind_blob(s, i, va_arg(ap, const struct ip_addr *)->b, 16,
					       SQLITE_STATIC);
			break;
		default: abort(); /* a typo in a types string */
		}
	}
	return rc;
}

int store_stmt(struct store *st, sqlite3_stmt **s_r, const char *sql, char *err, size_t esz,
	       const char *types, ...)
{
	va_list ap;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, s_r, NULL) != SQLITE_OK) {
		*s_r = NULL;
		return store_fail(st, "preparing a query", err, esz);
	}
	va_start(ap, types);
	rc = bind_args(*s_r, types, ap);
	va_end(ap);
	if (rc != SQLITE_OK) {
		store_fail(st, "binding a query", err, esz);
		sqlite3_finalize(*s_r);
		*s_r = NULL;
		return STORE_FAILED;
	}
	return STORE_OK;
}

int store_run(struct store *st, sqlite3_stmt *s, const char *what, char *err, size_t esz)
{
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	if (rc != SQLITE_DONE) {
		store_fail(st, what, err, esz);
		sqlite3_finalize(s);
		return STORE_FAILED;
	}
	sqlite3_finalize(s);
	return STORE_OK;
}

static int exec(struct store *st, const char *sql, const char *what, char *err, size_t esz)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store_fail(st, what, err, esz);
	return STORE_OK;
}

/* ---- opening and migrating ------------------------------------------------------------ */

/* mkdir -p: the store's directory may be the first thing under a fresh data_dir. */
static int make_dirs(const char *dir, char *err, size_t esz)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path)) {
		snprintf(err, esz, "data_dir '%s' is empty or too long", dir);
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(path, STORE_DIR_MODE) < 0 && errno != EEXIST) {
			snprintf(err, esz, "cannot create data_dir %s: %s", path, strerror(errno));
			return -1;
		}
		*p = saved;
		if (saved == '\0')
			return 0;
	}
}

static int user_version(struct store *st, int *v_r, char *err, size_t esz)
{
	sqlite3_stmt *s;

	if (store_stmt(st, &s, "PRAGMA user_version", err, esz, "") != STORE_OK)
		return STORE_FAILED;
	if (sqlite3_step(s) != SQLITE_ROW) {
		store_fail(st, "reading the schema version", err, esz);
		sqlite3_finalize(s);
		return STORE_FAILED;
	}
	*v_r = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return STORE_OK;
}

static int check_version(int v, const char *path, char *err, size_t esz)
{
	if (v > SCHEMA_VERSION) {
		snprintf(err, esz, "policy store %s has schema version %d, newer than this mxgate "
				   "knows (%d); run the mxgate that wrote it", path, v, SCHEMA_VERSION);
		return STORE_FAILED;
	}
	return STORE_OK;
}

static int migrate_tx(struct store *st, const char *path, char *err, size_t esz)
{
	char sql[64];
	int v;

	if (user_version(st, &v, err, esz) != STORE_OK || check_version(v, path, err, esz))
		return STORE_FAILED;
	for (; v < SCHEMA_VERSION; v++) {
		snprintf(sql, sizeof(sql), "migrating to schema version %d", v + 1);
		if (exec(st, migrations[v], sql, err, esz) != STORE_OK)
			return STORE_FAILED;
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
		if (exec(st, sql, "setting the schema version", err, esz) != STORE_OK)
			return STORE_FAILED;
	}
	return STORE_OK;
}

/* Takes the write lock only when there is something to migrate: a store at the current version
 * opens with a read, so `serve`, its queue manager and the read-only commands start while an
 * admin command (or anything else) holds the write lock. migrate_tx reads the version again
 * under the lock, in case another process migrated meanwhile. */
static int migrate(struct store *st, const char *path, char *err, size_t esz)
{
	int v;

	if (user_version(st, &v, err, esz) != STORE_OK || check_version(v, path, err, esz))
		return STORE_FAILED;
	if (v == SCHEMA_VERSION)
		return STORE_OK;
	if (exec(st, "BEGIN IMMEDIATE", "starting the schema migration", err, esz) != STORE_OK)
		return STORE_FAILED;
	if (migrate_tx(st, path, err, esz) != STORE_OK ||
	    exec(st, "COMMIT", "committing the schema migration", err, esz) != STORE_OK) {
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return STORE_FAILED;
	}
	return STORE_OK;
}

/* A reader cannot migrate, so it accepts only the current schema. */
static int check_current(struct store *st, const char *path, char *err, size_t esz)
{
	int v;

	if (user_version(st, &v, err, esz) != STORE_OK || check_version(v, path, err, esz))
		return STORE_FAILED;
	if (v < SCHEMA_VERSION) {
		snprintf(err, esz, "policy store %s has schema version %d, this mxgate needs %d; "
				   "open it read-write once (any change command) to migrate it",
			 path, v, SCHEMA_VERSION);
		return STORE_FAILED;
	}
	return STORE_OK;
}

static int configure(struct store *st, const char *path, char *err, size_t esz)
{
	sqlite3_busy_timeout(st->db, STORE_BUSY_TIMEOUT_MS);
	if (exec(st, "PRAGMA foreign_keys = ON", "enabling foreign keys", err, esz) != STORE_OK)
		return STORE_FAILED;
	if (st->mode == STORE_READ_ONLY)
		return check_current(st, path, err, esz);
	/* Outside any transaction: SQLite cannot change the journal mode inside one. */
	if (exec(st, "PRAGMA journal_mode = WAL", "enabling WAL", err, esz) != STORE_OK)
		return STORE_FAILED;
	return migrate(st, path, err, esz);
}

struct store *store_open(const char *data_dir, enum store_mode mode, char *errbuf, size_t errsz)
{
	char path[PATH_MAX];
	struct store *st;
	/* NOMUTEX: a store is used by one thread at a time (store.h), so SQLite's per-call
	 * connection mutex is pure cost: 7% of a 100k-entry reload */
	int flags = SQLITE_OPEN_NOMUTEX | (mode == STORE_READ_ONLY
						   ? SQLITE_OPEN_READONLY
						   : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir, STORE_FILE) >= sizeof(path)) {
		snprintf(errbuf, errsz, "data_dir '%s' is too long", data_dir);
		return NULL;
	}
	if (mode == STORE_READ_WRITE && make_dirs(data_dir, errbuf, errsz) < 0)
		return NULL;
	if (mode == STORE_READ_ONLY && access(path, F_OK) < 0) {
		snprintf(errbuf, errsz, "no policy store at %s: %s", path, strerror(errno));
		return NULL;
	}
	st = xcalloc(1, sizeof(*st));
	st->mode = mode;
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		snprintf(errbuf, errsz, "cannot open policy store %s: %s", path,
			 st->db ? sqlite3_errmsg(st->db) : "out of memory");
		store_close(&st);
		return NULL;
	}
	if (configure(st, path, errbuf, errsz) != STORE_OK ||
	    store_stmt(st, &st->generation_stmt,
		       "SELECT value FROM meta WHERE key = 'generation'", errbuf, errsz,
		       "") != STORE_OK) {
		char why[STORE_ERR_MAX];

		snprintf(why, sizeof(why), "%s", errbuf);
		snprintf(errbuf, errsz, "%s: %s", path, why); /* which file, for the admin */
		store_close(&st);
		return NULL;
	}
	return st;
}

void store_close(struct store **stp)
{
	struct store *st = *stp;

	if (!st)
		return;
	sqlite3_finalize(st->generation_stmt);
	sqlite3_close(st->db);
	free(st);
	*stp = NULL;
}

/* ---- generation and changes ----------------------------------------------------------- */

int store_generation_read(struct store *st, uint64_t *gen_r, char *err, size_t esz)
{
	sqlite3_stmt *s = st->generation_stmt;
	int rc = sqlite3_step(s), ret = STORE_OK;

	*gen_r = 0;
	if (rc == SQLITE_ROW)
		*gen_r = (uint64_t)sqlite3_column_int64(s, 0);
	if (rc == SQLITE_DONE || (rc == SQLITE_ROW && *gen_r == 0))
		ret = store_refuse(err, esz, "the policy store is damaged: no generation counter");
	else if (rc != SQLITE_ROW)
		ret = store_fail(st, "reading the generation", err, esz); /* before the reset */
	sqlite3_reset(s);
	return ret == STORE_OK ? STORE_OK : STORE_FAILED;
}

uint64_t store_generation(struct store *st)
{
	char err[STORE_ERR_MAX];
	uint64_t gen;

	return store_generation_read(st, &gen, err, sizeof(err)) == STORE_OK ? gen : 0;
}

int store_change(struct store *st, store_tx_fn fn, void *arg, char *err, size_t esz)
{
	int rc;

	if (st->mode == STORE_READ_ONLY)
		return store_refuse(err, esz, "the policy store is open read-only");
	if (exec(st, "BEGIN IMMEDIATE", "starting a change", err, esz) != STORE_OK)
		return STORE_FAILED;
	rc = fn(st, arg, err, esz);
	if (rc == STORE_OK)
		rc = exec(st, "UPDATE meta SET value = value + 1 WHERE key = 'generation'",
			  "counting the change", err, esz);
	if (rc == STORE_OK)
		rc = exec(st, "COMMIT", "committing the change", err, esz);
	if (rc != STORE_OK)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int store_tenant_find(struct store *st, const char *name, int64_t *id_r,
		      char name_r[MODEL_NAME_MAX + 1], char *err, size_t esz)
{
	sqlite3_stmt *s;
	int rc;

	if (store_stmt(st, &s, "SELECT id, name FROM tenants WHERE name = ?", err, esz, "t",
		       name) != STORE_OK)
		return STORE_FAILED;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*id_r = sqlite3_column_int64(s, 0);
		snprintf(name_r, MODEL_NAME_MAX + 1, "%s", (const char *)sqlite3_column_text(s, 1));
		rc = 1;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = store_fail(st, "looking up a tenant", err, esz);
	}
	sqlite3_finalize(s);
	return rc;
}

int store_tenant_need(struct store *st, const char *name, int64_t *id_r,
		      char name_r[MODEL_NAME_MAX + 1], char *err, size_t esz)
{
	char q[STORE_QUOTE_MAX + 4];
	int rc = store_tenant_find(st, name, id_r, name_r, err, esz);

	if (rc == 0)
		return store_refuse(err, esz, "no tenant named %s", store_quote(name, q, sizeof(q)));
	return rc == 1 ? STORE_OK : rc;
}
