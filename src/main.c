/* mxgate: one binary, subcommands. `serve` runs the gateway; more come with the policy,
 * queue and admin layers. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"
#include "admin/inspect.h"
#include "admin/ndr_cmd.h"
#include "admin/queue_cmd.h"
#include "config/config.h"
#include "event/listener.h"
#include "event/workers.h"
#include "queue/queue.h"
#include "smtp/server.h"
#include "store/store.h"
#include "util/log.h"
#include "util/xmalloc.h"

#define EXIT_USAGE 2

static const char *global_config;

static void usage_main(FILE *out)
{
	fprintf(out,
		"usage: mxgate [-c FILE] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  serve          run the SMTP gateway in the foreground\n"
		"  check-config   load the configuration, report problems, exit 0 when it is valid\n"
		"  show-config    print the configuration keys with their defaults and meaning\n"
		"  version        print the version\n"
		"  explain IP     replay the policy decision for a client, step by step\n"
		"  lint           warn about risky policy settings, each with the fix\n"
		"  ndr CODE       explain a status code: cause, who acts, how to fix it\n"
		"  queue list|show|retry|hold|release|delete   the delivery queue\n"
		"  tenant|domain|connector|allow|block|recipient ACTION ...\n"
		"                 manage the policy store (`mxgate tenant --help`)\n"
		"\n"
		"Options:\n"
		"  -c FILE        configuration file (default: $MXGATE_CONFIG, ./mxgate.conf,\n"
		"                 /etc/mxgate/mxgate.conf, else the embedded default)\n"
		"  -h, --help     this help; `mxgate COMMAND --help` for a command's own\n");
}

/* Parses the options every command takes (-c, --help); returns 1 when help was printed. */
static int common_opts(int argc, char **argv, const char *usage, const char **pidfile_r)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	optind = 0; /* 0, not 1: makes GNU getopt start over after an earlier parse */
	while ((ch = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': global_config = optarg; break;
		case 'h': printf("%s", usage); return 1;
		case 'p': *pidfile_r = optarg; break;
		default: fprintf(stderr, "%s", usage); exit(EXIT_USAGE);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mxgate: unexpected argument '%s'\n%s", argv[optind], usage);
		exit(EXIT_USAGE);
	}
	return 0;
}

static void load_config(struct config *cfg)
{
	static char errs[CONFIG_ERRORS_MAX];
	const char *path = config_find(global_config);

	if (config_load(path, cfg, errs, sizeof(errs)) < 0) {
		fprintf(stderr, "%smxgate: configuration %s is invalid, not starting\n", errs,
			path ? path : "(embedded default)");
		exit(1);
	}
}

static int cmd_check_config(int argc, char **argv)
{
	struct config *cfg;
	const char *unused = NULL;

	if (common_opts(argc, argv, "usage: mxgate [-c FILE] check-config\n", &unused))
		return 0;
	cfg = xcalloc(1, sizeof(*cfg));
	load_config(cfg);
	printf("%s: ok\n", cfg->source);
	free(cfg);
	return 0;
}

static int cmd_show_config(int argc, char **argv)
{
	const char *unused = NULL;

	if (common_opts(argc, argv, "usage: mxgate show-config\n", &unused))
		return 0;
	config_dump_keys(stdout);
	printf("\n# embedded default configuration:\n%s", config_embedded_default);
	return 0;
}

static void prepare_data_dir(const struct config *cfg)
{
	char err[STORE_ERR_MAX];
	unsigned removed;
	struct store *st;

	if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST)
		fatal("cannot create data_dir %s: %m", cfg->data_dir);
	/* create or migrate the policy store once, before workers open it */
	if (!(st = store_open(cfg->data_dir, STORE_READ_WRITE, err, sizeof(err))))
		fatal("policy store: %s", err);
	store_close(&st);
	if (queue_clean_tmp(cfg->data_dir, &removed) < 0)
		fatal("cannot prepare the queue under %s: %m", cfg->data_dir);
	if (removed)
		log_info("queue: removed %u incomplete messages from a previous run", removed);
}

static int *bind_all(const struct config *cfg, unsigned nworkers)
{
	int *fds = xcalloc(nworkers * cfg->nlisten, sizeof(*fds));

	for (unsigned w = 0; w < nworkers; w++)
		for (unsigned i = 0; i < cfg->nlisten; i++) {
			const struct listen_spec *ls = &cfg->listen[i];
			fds[w * cfg->nlisten + i] = listener_bind(ls->host, ls->port);
			if (fds[w * cfg->nlisten + i] < 0)
				fatal("cannot listen on %s:%u: %m", ls->host, ls->port);
		}
	return fds;
}

static void write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (!f)
		fatal("cannot write pid file %s: %m", path);
	fprintf(f, "%d\n", (int)getpid());
	fclose(f);
}

static int cmd_serve(int argc, char **argv)
{
	static const char usage[] =
		"usage: mxgate [-c FILE] serve [--pidfile FILE]\n"
		"Runs the gateway in the foreground; SIGTERM or SIGINT stops it.\n";
	struct config *cfg;
	struct server_setup setup;
	const char *pidfile = NULL;
	int rc;

	if (common_opts(argc, argv, usage, &pidfile))
		return 0;
	cfg = xcalloc(1, sizeof(*cfg));
	load_config(cfg);
	log_init("mxgate", cfg->log_syslog, cfg->log_debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (cfg->tls_cert[0] && access(cfg->tls_cert, R_OK) < 0) {
		if (global_config || config_find(NULL))
			fatal("tls_cert %s: %m", cfg->tls_cert);
		log_warn("tls_cert %s not found: STARTTLS is not offered (make run creates one)",
			 cfg->tls_cert);
	}
	prepare_data_dir(cfg);
	setup.cfg = cfg;
	setup.nworkers = cfg->workers ? cfg->workers : workers_ncpu();
	setup.fds = bind_all(cfg, setup.nworkers);
	if (pidfile)
		write_pidfile(pidfile);
	for (unsigned i = 0; i < cfg->nlisten; i++)
		log_info("listening on %s:%u%s", cfg->listen[i].host, cfg->listen[i].port,
			 cfg->listen[i].proxy ? " proxy" : "");
	log_info("mxgate starting config=%s workers=%u data_dir=%s", cfg->source, setup.nworkers,
		 cfg->data_dir);
	rc = workers_run(setup.nworkers + 1, server_worker_main, &setup); /* + the queue manager */
	log_info("mxgate stopped");
	free(setup.fds);
	free(cfg);
	return rc;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "serve", cmd_serve },
	{ "check-config", cmd_check_config },
	{ "show-config", cmd_show_config },
	{ "ndr", ndr_cmd_main },
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	log_init("mxgate", 0, LOG_LVL_INFO);
	while ((ch = getopt_long(argc, argv, "+c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'V': printf("mxgate %s\n", MXGATE_VERSION); return 0;
		case 'c': global_config = optarg; break;
		case 'h': usage_main(stdout); return 0;
		default: usage_main(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage_main(stderr);
		return EXIT_USAGE;
	}
	const char *cmd = argv[optind];
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage_main(stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("mxgate %s\n", MXGATE_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].run(argc - optind, argv + optind);
	if (admin_is_command(cmd) || !strcmp(cmd, "explain") || !strcmp(cmd, "lint") ||
	    !strcmp(cmd, "queue")) {
		struct config *cfg = xcalloc(1, sizeof(*cfg));
		load_config(cfg);
		int rc = !strcmp(cmd, "explain") ? inspect_explain_main(cfg, argc - optind, argv + optind)
			 : !strcmp(cmd, "lint")  ? inspect_lint_main(cfg, argc - optind, argv + optind)
			 : !strcmp(cmd, "queue") ? queue_cmd_main(cfg, argc - optind, argv + optind)
						 : admin_main(cfg, argc - optind, argv + optind);
		free(cfg);
		return rc;
	}
	fprintf(stderr, "mxgate: unknown command '%s'\n", cmd);
	usage_main(stderr);
	return EXIT_USAGE;
}
