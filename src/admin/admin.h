/* admin: the policy administration commands (tenant, domain, connector, allow, block), one
 * registry with a CLI front end now and an HTTP one later.
 *
 * Exit codes: 0 done, 2 bad input or a refused change (nothing changed), 1 environment
 * failure (cannot open the store). */
#ifndef MXG_ADMIN_H
#define MXG_ADMIN_H

struct config;

/* Returns 1 when name is one of the admin command families. */
int admin_is_command(const char *name);
/* Runs "FAMILY ACTION ARGS..." (argv[0] is the family) against cfg->data_dir's store and
 * returns the exit code. Prints results on stdout, errors on stderr. */
int admin_main(const struct config *cfg, int argc, char **argv);

#endif
