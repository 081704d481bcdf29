/* ndr_cmd: `mxgate ndr CODE`, the status-code catalog (dsn/catalog.h) for people: what an
 * enhanced status code means, who has to act and how to fix it. Needs no configuration. */
#ifndef MXG_NDR_CMD_H
#define MXG_NDR_CMD_H

#include <stdio.h>

/* Exit codes: the entry was found; only the generic entry of its subject or class was
 * (the code is well-formed but not in the catalog); usage error or malformed code. */
#define NDR_CMD_EXIT_OK 0
#define NDR_CMD_EXIT_FALLBACK 1
#define NDR_CMD_EXIT_USAGE 2

/* argv[0] is "ndr", argv[1] the code ("5.7.1"); -h/--help prints the usage. Writes the entry
 * to out and usage errors to err; returns one of the NDR_CMD_EXIT_* codes. */
int ndr_cmd_run(int argc, char **argv, FILE *out, FILE *err);

/* ndr_cmd_run on stdout and stderr, for main.c's command table. */
int ndr_cmd_main(int argc, char **argv);

#endif
