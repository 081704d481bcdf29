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

/* --- read views for the admin front ends ---------------------------------------------
 * They carry what a snapshot leaves out (creation times, counts) in a stable order. Each
 * calls fn once per row; the row's pointers are valid during the call only. tenant NULL
 * means every tenant; a tenant that does not exist is STORE_REFUSED. */
struct store_tenant_info {
	const char *name;
	const char *route;
	unsigned ndomains, nconnectors, nallow, nblock;
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

#endif
