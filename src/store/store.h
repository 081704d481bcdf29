/* store: the policy store, an SQLite database at data_dir/policy.db.
 *
 * The schema is versioned (PRAGMA user_version) and migrated forward on open. Every change goes
 * through one of the functions below, in one transaction that also bumps the generation
 * counter, so a running server notices it (store_generation) and reloads a snapshot. Input is
 * validated here, whatever the front end: on error nothing changes and errbuf says why in a
 * sentence an admin can act on. */
#ifndef MXG_STORE_H
#define MXG_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "policy/model.h"

struct store;

#define STORE_FILE "policy.db"
#define STORE_ERR_MAX 512

enum store_mode { STORE_READ_WRITE, STORE_READ_ONLY };

/* Opens (creating data_dir and the database, and migrating, in read-write mode)
 * data_dir/policy.db. Read-only mode needs an existing store at the current schema version.
 * Returns NULL with a reason in errbuf. A store is used by one thread at a time. */
struct store *store_open(const char *data_dir, enum store_mode mode, char *errbuf, size_t errsz);
void store_close(struct store **st);

/* A counter bumped by every committed change; cheap. Returns 0 on error. */
uint64_t store_generation(struct store *st);
/* The same with the reason of an error (a damaged or unreadable store): STORE_OK and *gen_r,
 * or STORE_FAILED with errbuf set and *gen_r 0. */
int store_generation_read(struct store *st, uint64_t *gen_r, char *errbuf, size_t errsz);
/* Reads everything into a new snapshot (see model.h). NULL with errbuf on error. */
struct model_snapshot *store_load(struct store *st, char *errbuf, size_t errsz);

/* Results of the changes and the read views below. A refusal is the caller's to fix (bad
 * input, a duplicate, a name that does not exist); a failure is the store's (I/O, lock
 * timeout, corruption). The front ends map them to exit codes 2 and 1. */
enum { STORE_OK = 0, STORE_REFUSED = -1, STORE_FAILED = -2 };

/* Changes. All return STORE_OK, or STORE_REFUSED / STORE_FAILED with errbuf set and nothing
 * changed. Names (tenants, connectors): 1..64 of [A-Za-z0-9._-], unique case-insensitively;
 * routes HOST:PORT; domains are stored in A-label form, lower case; CIDRs must not have host
 * bits set and are stored canonical (cidr_format), a bare address as /32 or /128. */
int store_tenant_add(struct store *st, const char *name, const char *route, char *err, size_t esz);
int store_tenant_remove(struct store *st, const char *name, char *err, size_t esz);
int store_domain_add(struct store *st, const char *tenant, const char *domain, char *err, size_t esz);
int store_domain_remove(struct store *st, const char *domain, char *err, size_t esz);
int store_connector_add(struct store *st, const char *tenant, const char *name,
			enum connector_type type, const char *const *cidrs, size_t ncidrs,
			const char *tls_name, int require_tls, char *err, size_t esz);
int store_connector_remove(struct store *st, const char *tenant, const char *name, char *err,
			   size_t esz);
int store_ip_add(struct store *st, const char *tenant, enum ip_list list, const char *cidr,
		 const char *comment, char *err, size_t esz);
int store_ip_remove(struct store *st, const char *tenant, enum ip_list list, const char *cidr,
		    char *err, size_t esz);

/* Converts a domain (U-labels or A-labels, any case) to the form the store keeps: A-label,
 * lower case, LDH, no trailing dot. Returns STORE_OK or STORE_REFUSED with a sentence. */
int store_domain_normalize(const char *domain, char out[MODEL_DOMAIN_MAX + 1], char *err,
			   size_t esz);

/* --- recipient validation (docs/policy-precedence.md, rule 3a) ------------------------
 * A tenant's directory holds addresses at the tenant's own domains. The domain is stored like
 * domains (A-label, lower case); the local part as given (a quoted-string without its quotes
 * and backslashes), unique and matched ignoring the case of ASCII letters only (UTF-8 local
 * parts match exactly). "*@DOMAIN" is DOMAIN's catch-all: every local part there is known.
 * Removing a domain from its tenant removes the domain's addresses; removing the tenant,
 * all of them. */

/* Room for an address as store_address_format writes it (a quoted local part doubles at
 * most, plus quotes, '@' and the domain). */
#define STORE_ADDRESS_MAX (2 * MODEL_LOCAL_MAX + 3 + MODEL_DOMAIN_MAX)

/* Parses "off" / "directory" / "probe" (exact, lower case). */
int store_recipient_check_parse(const char *text, enum recipient_check *check_r, char *err,
				size_t esz);
int store_tenant_set_recipient_check(struct store *st, const char *tenant,
				     enum recipient_check check, char *err, size_t esz);

/* Parses "opportunistic" / "required" / "verify" (exact, lower case), see enum route_tls. */
int store_route_tls_parse(const char *text, enum route_tls *tls_r, char *err, size_t esz);
int store_tenant_set_route_tls(struct store *st, const char *tenant, enum route_tls tls,
			       char *err, size_t esz);

/* What `mxgate tenant set` changes: each setting whose set_ flag is 1, all in one change
 * (one generation). A value outside its enum, or nothing to set, is refused. */
struct store_tenant_settings {
	int set_recipient_check;
	enum recipient_check recipient_check;
	int set_route_tls;
	enum route_tls route_tls;
};
int store_tenant_set(struct store *st, const char *tenant,
		     const struct store_tenant_settings *settings, char *err, size_t esz);
/* Splits and checks an address the way the directory keeps it: local (canonical, see above;
 * MODEL_RCPT_WILDCARD for a catch-all) and domain (normalized). STORE_OK or STORE_REFUSED. */
int store_address_normalize(const char *address, char local_r[MODEL_LOCAL_MAX + 1],
			    char domain_r[MODEL_DOMAIN_MAX + 1], char *err, size_t esz);
/* Writes local@domain into out (STORE_ADDRESS_MAX + 1 bytes fit any), quoting a local part
 * that is not a dot-atom, so the result reads back through store_address_normalize.
 * Returns out. */
const char *store_address_format(const char *local, const char *domain, char *out,
				 size_t outsz);
/* Adding an address already there (ignoring ASCII case) and removing one that is not are
 * refused. */
int store_recipient_add(struct store *st, const char *tenant, const char *address, char *err,
			size_t esz);
int store_recipient_remove(struct store *st, const char *tenant, const char *address,
			   char *err, size_t esz);

/* One address of an import and where it came from (for messages). */
struct store_import_line {
	const char *text;
	size_t line;
};

struct store_import_result {
	size_t added;   /* new in the directory */
	size_t present; /* already there, or given twice */
};

/* Adds every address, all or nothing, in one change: one that is not valid, or not at one of
 * the tenant's domains, refuses the whole import with "SOURCE line N: why" (the first bad line,
 * and how many more there are). Addresses already in the directory are counted, not refused,
 * so importing the same file again changes nothing. */
int store_recipient_import(struct store *st, const char *tenant, const char *source,
			   const struct store_import_line *lines, size_t nlines,
			   struct store_import_result *res_r, char *err, size_t esz);

/* --- read views for the admin front ends ---------------------------------------------
 * They carry what a snapshot leaves out (creation times, counts) in a stable order. Each
 * calls fn once per row; the row's pointers are valid during the call only. tenant NULL
 * means every tenant; a tenant that does not exist is STORE_REFUSED. */
struct store_tenant_info {
	const char *name;
	const char *route;
	unsigned ndomains, nconnectors, nallow, nblock;
	enum recipient_check recipient_check;
	unsigned long nrecipients; /* directory entries, catch-alls included */
	enum route_tls route_tls;
};

struct store_domain_info {
	const char *domain;
	const char *tenant;
};

struct store_connector_info {
	const char *tenant;
	const char *name;
	enum connector_type type;
	const char *tls_name; /* "" = none */
	int require_tls;
	const char *const *ranges; /* canonical CIDRs, in address order */
	size_t nranges;
};

struct store_ip_info {
	const char *tenant;
	enum ip_list list;
	const char *cidr; /* canonical */
	const char *comment;
	int64_t created; /* seconds since the epoch */
};

/* Ordered by tenant name. */
int store_tenant_each(struct store *st, const char *tenant,
		      void (*fn)(const struct store_tenant_info *t, void *arg), void *arg,
		      char *err, size_t esz);
/* Ordered by domain. */
int store_domain_each(struct store *st, const char *tenant,
		      void (*fn)(const struct store_domain_info *d, void *arg), void *arg,
		      char *err, size_t esz);
/* Ordered by tenant name, then connector name. */
int store_connector_each(struct store *st, const char *tenant,
			 void (*fn)(const struct store_connector_info *c, void *arg), void *arg,
			 char *err, size_t esz);
/* One list of one tenant (tenant required), in address order. */
int store_ip_each(struct store *st, const char *tenant, enum ip_list list,
		  void (*fn)(const struct store_ip_info *e, void *arg), void *arg, char *err,
		  size_t esz);

struct store_recipient_info {
	const char *tenant;
	const char *address; /* as store_address_format writes it */
	const char *local;   /* canonical; MODEL_RCPT_WILDCARD for a catch-all */
	const char *domain;
	int64_t created;
};

/* One tenant's directory (tenant required), ordered by domain, then local part. */
int store_recipient_each(struct store *st, const char *tenant,
			 void (*fn)(const struct store_recipient_info *r, void *arg), void *arg,
			 char *err, size_t esz);

struct store_recipient_domain {
	const char *domain;
	unsigned long count; /* entries at the domain, its catch-all included */
	int catchall;        /* the domain has "*@domain" */
};

/* Each of one tenant's domains with the size of its directory, ordered by domain. */
int store_recipient_domains(struct store *st, const char *tenant,
			    void (*fn)(const struct store_recipient_domain *d, void *arg),
			    void *arg, char *err, size_t esz);

#endif
