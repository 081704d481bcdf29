/* inspect: `mxgate explain` and `mxgate lint`, the two commands that show an admin why the
 * policy decides what it decides. Both read the policy store and run live DNSBL lookups. */
#ifndef MXG_INSPECT_H
#define MXG_INSPECT_H

struct config;

/* argv[0] is "explain"; exit 0 accept, 1 reject, 3 temporary failure, 2 usage. */
int inspect_explain_main(const struct config *cfg, int argc, char **argv);
/* argv[0] is "lint"; exit 0 clean, 1 warnings, 2 usage. */
int inspect_lint_main(const struct config *cfg, int argc, char **argv);

#endif
