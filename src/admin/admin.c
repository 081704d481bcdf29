/* admin: the command registry and the CLI front end (see admin.h).
 *
 * Every action is one row of the registry: its arguments, the options it accepts, its help
 * and its handler. Parsing, usage and help are generated from that table, so an action
 * cannot accept an option its help does not mention. Options may come before, between or
 * after the positional arguments; "--" ends them. */
#include "admin/admin.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin_private.h"
#include "config/config.h"
#include "util/xmalloc.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define USAGE_COL 34 /* where a summary starts in a family's action list */

struct opt_spec {
	const char *name; /* without "--" */
	const char *arg;  /* NULL: a flag */
	int repeat;
	const char *help;
};

static const struct opt_spec opt_specs[OPT_COUNT] = {
	[OPT_ROUTE] = { "route", "HOST:PORT", 0,
			"where the tenant's accepted mail is delivered; IPv6 as [ADDR]:PORT" },
	[OPT_TYPE] = { "type", "onprem|partner", 0,
		       "onprem: the tenant's own servers, may relay out through mxgate;\n"
		       "partner: a known partner's servers" },
	[OPT_IP] = { "ip", "CIDR", 1, "an address or range the connector's servers send from;\n"
				       "repeat for several" },
	[OPT_TLS_NAME] = { "tls-name", "NAME", 0,
			   "the host name in the servers' verified TLS certificate" },
	[OPT_REQUIRE_TLS] = { "require-tls", NULL, 0,
			      "partner only: reject its mail on sessions without TLS" },
	[OPT_COMMENT] = { "comment", "TEXT", 0, "why the entry exists (at most 200 bytes)" },
	[OPT_JSON] = { "json", NULL, 0, "print a JSON array instead of a table" },
	[OPT_RECIPIENT_CHECK] = { "recipient-check", "MODE", 0,
				  "off (the default): accept any recipient;\n"
				  "directory: refuse (550 5.1.1) recipients that are not in\n"
				  "the tenant's recipient directory (`mxgate recipient`);\n"
				  "probe: ask the tenant's server (MAIL FROM:<>, RCPT TO,\n"
				  "no DATA; answers cached): refused there (5xx) 550 5.1.1,\n"
				  "no answer within [policy] probe_timeout_ms 451 4.4.3" },
	[OPT_ROUTE_TLS] = { "route-tls", "MODE", 0,
			    "how mail is delivered to the tenant's route:\n"
			    "opportunistic (the default): STARTTLS when offered;\n"
			    "required: STARTTLS or no delivery (deferred, 4.7.x),\n"
			    "the certificate is not checked;\n"
			    "verify: as required, and the certificate must verify\n"
			    "against the system trust store and name the route host" },
};

struct family {
	const char *name;
	const char *help;
	enum ip_list list;
};

static const struct family families[] = {
	{ "tenant", "Tenants are the customer organisations mxgate accepts mail for.", 0 },
	{ "domain", "Domains are accepted for exactly one tenant; IDNs are stored as A-labels.", 0 },
	{ "connector", "Connectors identify a tenant's own (onprem) or partner servers by IP\n"
		       "range and/or verified TLS certificate name.", 0 },
	{ "allow", "A tenant's IP Allow list: matching clients skip DNSBL checks for the\n"
		   "tenant's recipients (the most specific Allow or Block entry wins).",
	  IP_LIST_ALLOW },
	{ "block", "A tenant's IP Block list: matching clients are rejected for the tenant's\n"
		   "recipients (the most specific Allow or Block entry wins; Block wins ties).",
	  IP_LIST_BLOCK },
	{ "recipient", "A tenant's recipient directory. After `mxgate tenant set TENANT\n"
		       "--recipient-check directory`, mail to an address that is not listed is\n"
		       "refused at RCPT (550 5.1.1). *@DOMAIN lists every address at DOMAIN.\n"
		       "Local parts match ignoring the case of ASCII letters.", 0 },
};

#define IP_ADD_HELP "Adds an address (a host entry, /32 or /128) or a CIDR range to the list.\n" \
		    "Host bits set in a CIDR are an error."

static const struct admin_cmd commands[] = {
	{ "tenant", "add", "NAME --route HOST:PORT", "add a tenant",
	  "Adds a tenant. NAME: 1-64 letters, digits, '.', '_', '-'.", { "NAME" }, 1, 1,
	  OPT_BIT(OPT_ROUTE), OPT_BIT(OPT_ROUTE), admin_tenant_add },
	{ "tenant", "remove", "NAME", "remove a tenant and everything it has",
	  "Removes a tenant together with its domains, connectors and IP list entries.",
	  { "NAME" }, 1, 1, 0, 0, admin_tenant_remove },
	{ "tenant", "set",
	  "NAME [--recipient-check off|directory|probe] [--route-tls opportunistic|required|verify]",
	  "change a tenant's settings",
	  "Changes a tenant's settings (at least one). --recipient-check directory refuses\n"
	  "mail to addresses that are not in the tenant's recipient directory; fill the\n"
	  "directory first (mxgate recipient add|import). --recipient-check probe asks the\n"
	  "tenant's server at each RCPT instead. --route-tls says whether delivery to the\n"
	  "tenant's route must be encrypted.", { "NAME" }, 1, 1,
	  OPT_BIT(OPT_RECIPIENT_CHECK) | OPT_BIT(OPT_ROUTE_TLS),
	  OPT_ANY_OF | OPT_BIT(OPT_RECIPIENT_CHECK) | OPT_BIT(OPT_ROUTE_TLS), admin_tenant_set },
	{ "tenant", "list", "[--json]", "list tenants",
	  "Lists tenants with their route and how many domains, connectors and entries they have.",
	  { NULL }, 0, 0, OPT_BIT(OPT_JSON), 0, admin_tenant_list },
	{ "domain", "add", "TENANT DOMAIN", "accept mail for a domain",
	  "Makes TENANT accept mail for DOMAIN. A domain belongs to at most one tenant.",
	  { "TENANT", "DOMAIN" }, 2, 2, 0, 0, admin_domain_add },
	{ "domain", "remove", "DOMAIN", "stop accepting mail for a domain",
	  "Removes DOMAIN from the tenant that has it.", { "DOMAIN" }, 1, 1, 0, 0,
	  admin_domain_remove },
	{ "domain", "list", "[TENANT] [--json]", "list domains",
	  "Lists accepted domains, of every tenant or of TENANT.", { "TENANT" }, 0, 1,
	  OPT_BIT(OPT_JSON), 0, admin_domain_list },
	{ "connector", "add",
	  "TENANT NAME --type onprem|partner [--ip CIDR]... [--tls-name NAME] [--require-tls]",
	  "add a connector",
	  "Adds a connector. It needs at least one --ip or a --tls-name to match any client.",
	  { "TENANT", "NAME" }, 2, 2,
	  OPT_BIT(OPT_TYPE) | OPT_BIT(OPT_IP) | OPT_BIT(OPT_TLS_NAME) | OPT_BIT(OPT_REQUIRE_TLS),
	  OPT_BIT(OPT_TYPE), admin_connector_add },
	{ "connector", "remove", "TENANT NAME", "remove a connector", "Removes a connector.",
	  { "TENANT", "NAME" }, 2, 2, 0, 0, admin_connector_remove },
	{ "connector", "list", "[TENANT] [--json]", "list connectors",
	  "Lists connectors, of every tenant or of TENANT.", { "TENANT" }, 0, 1,
	  OPT_BIT(OPT_JSON), 0, admin_connector_list },
	{ "allow", "add", "TENANT IP|CIDR [--comment TEXT]", "add an entry", IP_ADD_HELP,
	  { "TENANT", "IP|CIDR" }, 2, 2, OPT_BIT(OPT_COMMENT), 0, admin_ip_add },
	{ "allow", "remove", "TENANT IP|CIDR", "remove an entry", "Removes an entry.",
	  { "TENANT", "IP|CIDR" }, 2, 2, 0, 0, admin_ip_remove },
	{ "allow", "list", "TENANT [--json]", "list a tenant's entries",
	  "Lists the tenant's entries in address order.", { "TENANT" }, 1, 1, OPT_BIT(OPT_JSON),
	  0, admin_ip_list },
	{ "block", "add", "TENANT IP|CIDR [--comment TEXT]", "add an entry", IP_ADD_HELP,
	  { "TENANT", "IP|CIDR" }, 2, 2, OPT_BIT(OPT_COMMENT), 0, admin_ip_add },
	{ "block", "remove", "TENANT IP|CIDR", "remove an entry", "Removes an entry.",
	  { "TENANT", "IP|CIDR" }, 2, 2, 0, 0, admin_ip_remove },
	{ "block", "list", "TENANT [--json]", "list a tenant's entries",
	  "Lists the tenant's entries in address order.", { "TENANT" }, 1, 1, OPT_BIT(OPT_JSON),
	  0, admin_ip_list },
	{ "recipient", "add", "TENANT ADDRESS", "add an address",
	  "Adds ADDRESS (LOCAL@DOMAIN, or *@DOMAIN for every address at DOMAIN) to the\n"
	  "tenant's recipient directory. DOMAIN must be one of the tenant's domains.",
	  { "TENANT", "ADDRESS" }, 2, 2, 0, 0, admin_recipient_add },
	{ "recipient", "remove", "TENANT ADDRESS", "remove an address",
	  "Removes ADDRESS (matched ignoring the case of ASCII letters).",
	  { "TENANT", "ADDRESS" }, 2, 2, 0, 0, admin_recipient_remove },
	{ "recipient", "import", "TENANT FILE", "add every address of a file",
	  "Adds the addresses in FILE ('-' reads standard input), one per line; blank\n"
	  "lines and lines starting with '#' are skipped. All or nothing: one bad line\n"
	  "refuses the file, naming the line. Addresses already listed are skipped, so\n"
	  "importing a file again changes nothing.",
	  { "TENANT", "FILE" }, 2, 2, 0, 0, admin_recipient_import },
	{ "recipient", "list", "TENANT [--json]", "list a tenant's addresses",
	  "Prints the tenant's recipient directory, one address per line by domain (the\n"
	  "import format).", { "TENANT" }, 1, 1, OPT_BIT(OPT_JSON), 0, admin_recipient_list },
};

/* ---- lookup and usage ----------------------------------------------------------------- */

static const struct family *family_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(families); i++)
		if (strcmp(families[i].name, name) == 0)
			return &families[i];
	return NULL;
}

static const struct admin_cmd *cmd_find(const char *family, const char *action)
{
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		if (strcmp(commands[i].family, family) == 0 &&
		    strcmp(commands[i].action, action) == 0)
			return &commands[i];
	return NULL;
}

static int is_help(const char *arg)
{
	return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

static void family_usage(const struct family *f, FILE *out)
{
	fprintf(out, "usage: mxgate %s ACTION [ARGS]\n\n%s\n\nActions:\n", f->name, f->help);
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		const struct admin_cmd *c = &commands[i];
		if (strcmp(c->family, f->name) != 0)
			continue;
		int n = fprintf(out, "  %s %s", c->action, c->synopsis);
		/* a long synopsis gets its summary on the next line */
		fprintf(out, "%*s%s\n", n < USAGE_COL ? USAGE_COL - n : 0,
			n < USAGE_COL ? "" : "\n" "                                  ", c->summary);
	}
	fprintf(out, "\n`mxgate %s ACTION --help` describes one action.\n", f->name);
}

/* Prints an option's help, indenting its continuation lines. */
static void opt_usage(const struct opt_spec *o, FILE *out)
{
	char head[64];
	const char *h = o->help;

	snprintf(head, sizeof(head), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
	fprintf(out, "  %-22s ", head);
	while (*h) {
		size_t n = strcspn(h, "\n");
		fprintf(out, "%.*s\n", (int)n, h);
		h += n;
		if (*h == '\n' && *++h)
			fprintf(out, "  %-22s ", "");
	}
}

static void cmd_usage(const struct admin_cmd *c, FILE *out)
{
	fprintf(out, "usage: mxgate %s %s %s\n\n%s\n", c->family, c->action, c->synopsis, c->help);
	if (c->opts) {
		fprintf(out, "\nOptions:\n");
		for (unsigned o = 0; o < OPT_COUNT; o++)
			if (c->opts & OPT_BIT(o))
				opt_usage(&opt_specs[o], out);
	}
}

/* ---- arguments ------------------------------------------------------------------------ */

static int usage_error(const struct admin_cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Says what is wrong with the command line; the caller prints the usage after it. */
static int usage_error(const struct admin_cmd *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mxgate: %s %s: ", c->family, c->action);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

static int opt_find(const struct admin_cmd *c, const char *arg, size_t len)
{
	for (unsigned o = 0; o < OPT_COUNT; o++)
		if ((c->opts & OPT_BIT(o)) && strlen(opt_specs[o].name) == len &&
		    strncmp(opt_specs[o].name, arg, len) == 0)
			return (int)o;
	return -1;
}

/* Takes the option at argv[*i] (and its value, moving *i past it). Returns 0 or -1. */
static int parse_opt(const struct admin_cmd *c, int argc, char **argv, int *i,
		     struct admin_args *a)
{
	const char *arg = argv[*i];
	const char *eq = strchr(arg, '=');
	int o = -1;

	if (arg[1] == '-') /* only long options: "--name" or "--name=value" */
		o = opt_find(c, arg + 2, eq ? (size_t)(eq - (arg + 2)) : strlen(arg + 2));

	if (o < 0)
		return usage_error(c, "unknown option '%s'", arg);
	const struct opt_spec *spec = &opt_specs[o];
	const char *value = eq ? eq + 1 : "";
	if (!spec->arg && eq)
		return usage_error(c, "option --%s takes no value", spec->name);
	if (spec->arg && !eq) {
		if (*i + 1 >= argc)
			return usage_error(c, "option --%s needs a value", spec->name);
		value = argv[++*i];
	}
	if (a->opt[o] && !spec->repeat)
		return usage_error(c, "option --%s is given twice", spec->name);
	a->opt[o] = value;
	if (o == OPT_IP)
		a->ips[a->nips++] = value;
	return 0;
}

/* "missing --a A or --b B" for the options in bits that were not given. */
static int missing_options(const struct admin_cmd *c, unsigned bits)
{
	char need[256];
	size_t off = 0;

	need[0] = '\0';
	for (unsigned o = 0; o < OPT_COUNT; o++)
		if ((bits & OPT_BIT(o)) && off < sizeof(need))
			off += (size_t)snprintf(need + off, sizeof(need) - off, "%s--%s %s",
						off ? " or " : "", opt_specs[o].name, opt_specs[o].arg);
	return usage_error(c, "missing %s", need);
}

static int check_counts(const struct admin_cmd *c, const struct admin_args *a)
{
	unsigned given = 0;

	if (a->npos < c->min_pos)
		return usage_error(c, "missing %s", c->pos_names[a->npos]);
	for (unsigned o = 0; o < OPT_COUNT; o++)
		if (a->opt[o])
			given |= OPT_BIT(o);
	if (c->required & OPT_ANY_OF) {
		if (!(given & c->required))
			return missing_options(c, c->required & ~OPT_ANY_OF);
		return 0;
	}
	for (unsigned o = 0; o < OPT_COUNT; o++)
		if ((c->required & OPT_BIT(o)) && !(given & OPT_BIT(o)))
			return missing_options(c, OPT_BIT(o));
	return 0;
}

/* Fills a from the arguments after "FAMILY ACTION"; on error says why on stderr. */
static int parse_args(const struct admin_cmd *c, int argc, char **argv, struct admin_args *a)
{
	int opts_done = 0;

	a->ips = xcalloc((size_t)argc + 1, sizeof(*a->ips));
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i];
		if (!opts_done && strcmp(arg, "--") == 0) {
			opts_done = 1;
		} else if (!opts_done && arg[0] == '-' && arg[1] != '\0') {
			if (parse_opt(c, argc, argv, &i, a) < 0)
				return -1;
		} else if (a->npos >= c->max_pos) {
			return usage_error(c, "unexpected argument '%s'", arg);
		} else {
			a->pos[a->npos++] = arg;
		}
	}
	return check_counts(c, a);
}

/* Help anywhere before "--" wins over every other argument. */
static int wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	return 0;
}

/* ---- entry points --------------------------------------------------------------------- */

int admin_is_command(const char *name)
{
	return family_find(name) != NULL;
}

static int run(const struct config *cfg, struct admin_ctx *ctx)
{
	char err[STORE_ERR_MAX];
	int rc;

	ctx->st = store_open(cfg->data_dir, STORE_READ_WRITE, err, sizeof(err));
	if (!ctx->st) {
		fprintf(stderr, "mxgate: %s\n", err);
		return ADMIN_EXIT_FAIL;
	}
	rc = ctx->cmd->run(ctx);
	store_close(&ctx->st);
	return rc;
}

int admin_main(const struct config *cfg, int argc, char **argv)
{
	const struct family *f = argc > 0 ? family_find(argv[0]) : NULL;
	struct admin_ctx ctx;
	int rc;

	if (!f) {
		fprintf(stderr, "mxgate: unknown command '%s'\n", argc > 0 ? argv[0] : "");
		return ADMIN_EXIT_USAGE;
	}
	if (argc < 2 || is_help(argv[1])) {
		family_usage(f, argc < 2 ? stderr : stdout);
		return argc < 2 ? ADMIN_EXIT_USAGE : ADMIN_EXIT_OK;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.list = f->list;
	ctx.cmd = cmd_find(f->name, argv[1]);
	if (!ctx.cmd) {
		fprintf(stderr, "mxgate: %s: unknown action '%s'\n", f->name, argv[1]);
		family_usage(f, stderr);
		return ADMIN_EXIT_USAGE;
	}
	if (wants_help(argc - 2, argv + 2)) {
		cmd_usage(ctx.cmd, stdout);
		return ADMIN_EXIT_OK;
	}
	if (parse_args(ctx.cmd, argc - 2, argv + 2, &ctx.args) < 0) {
		cmd_usage(ctx.cmd, stderr);
		rc = ADMIN_EXIT_USAGE;
	} else {
		rc = run(cfg, &ctx);
	}
	free(ctx.args.ips);
	return rc;
}
