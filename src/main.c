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
#include "event/iptable.h"
#include "event/listener.h"
#include "event/tls.h"
#include "event/workers.h"
#include "queue/queue.h"
#include "smtp/server.h"
#include "store/store.h"
#include "util/log.h"
#include "util/privs.h"
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

/* Root: data_dir becomes the user's, then root is dropped for good. Not root: runs as is. */
static void become_unprivileged(const struct config *cfg)
{
	char err[PRIVS_ERR_MAX];
	struct privs_user u;

	if (geteuid() != 0) {
		log_info("running as uid %d (not root: [server] user does not apply)", (int)geteuid());
		return;
	}
	if (privs_lookup(cfg->user, &u, err, sizeof(err)) < 0 ||
	    privs_own_tree(cfg->data_dir, &u, err, sizeof(err)) < 0 ||
	    privs_drop(&u, err, sizeof(err)) < 0)
		fatal("%s", err);
	log_info("running as user %s (uid %d)", u.name, (int)u.uid);
}

/* nprocs: the worker processes workers_run will start (their slots' directories stay). */
static void prepare_data_dir(const struct config *cfg, unsigned nprocs)
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
	if (queue_clean_tmp(cfg->data_dir, workers_nslots(nprocs), &removed) < 0)
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

/* What the running server keeps across reloads: the sockets are bound, data_dir and the user
 * are fixed, and so is the number of workers the sockets were made for. */
static void reload_keeps(const struct config *old, struct config *cfg)
{
	if (old->nlisten != cfg->nlisten ||
	    memcmp(old->listen, cfg->listen, sizeof(old->listen[0]) * old->nlisten) != 0) {
		log_warn("reload: listen changes need a restart; keeping the old listeners");
		memcpy(cfg->listen, old->listen, sizeof(cfg->listen));
		cfg->nlisten = old->nlisten;
	}
	if (strcmp(old->data_dir, cfg->data_dir) || strcmp(old->user, cfg->user) ||
	    old->workers != cfg->workers) {
		log_warn("reload: data_dir, user and workers changes need a restart; keeping the old");
		memcpy(cfg->data_dir, old->data_dir, sizeof(cfg->data_dir));
		memcpy(cfg->user, old->user, sizeof(cfg->user));
		cfg->workers = old->workers;
	}
}

/* SIGHUP in the master: the configuration is read again from where it came from. An invalid
 * file changes nothing: the error is logged and the running configuration stays. */
static int serve_reload(void *arg)
{
	static char errs[CONFIG_ERRORS_MAX];
	struct server_setup *setup = arg;
	const struct config *old = setup->cfg;
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	const char *path = strcmp(old->source, "(embedded default)") ? old->source : NULL;
	char err[512];
	SSL_CTX *tls = setup->tls;

	if (config_load(path, cfg, errs, sizeof(errs)) < 0) {
		for (char *line = strtok(errs, "\n"); line; line = strtok(NULL, "\n"))
			log_err("reload: %s", line);
		log_err("reload: configuration %s is invalid; the running one stays in force",
			path ? path : "(embedded default)");
		free(cfg);
		return -1;
	}
	reload_keeps(old, cfg);
	if (strcmp(old->tls_cert, cfg->tls_cert) || strcmp(old->tls_key, cfg->tls_key) ||
	    strcmp(old->tls_client_ca, cfg->tls_client_ca)) {
		if (server_tls_setup(cfg, &tls, err, sizeof(err)) < 0) {
			log_err("reload: TLS: %s; the running configuration stays in force", err);
			free(cfg);
			return -1;
		}
	}
	if (tls != setup->tls)
		tls_ctx_free(&setup->tls); /* the running workers have their own copy (fork) */
	setup->tls = tls;
	setup->cfg = cfg;
	free((void *)old);
	log_info("reload: configuration %s loaded", cfg->source);
	return 0;
}

static void serve_worker_exited(unsigned slot, void *arg)
{
	struct server_setup *setup = arg;

	if (setup->clients)
		iptable_forget_column(setup->clients, slot);
}

static int cmd_serve(int argc, char **argv)
{
	static const char usage[] =
		"usage: mxgate [-c FILE] serve [--pidfile FILE]\n"
		"Runs the gateway in the foreground; SIGTERM or SIGINT stops it, SIGHUP reloads\n"
		"the configuration (an invalid file is logged and changes nothing).\n"
		"Started as root, it binds its ports, then runs as [server] user.\n";
	static const struct workers_hooks hooks = {
		.main = server_worker_main,
		.exited = serve_worker_exited,
		.reload = serve_reload,
		.nsingle = 1, /* the queue manager */
	};
	struct config *cfg;
	struct server_setup setup;
	const char *pidfile = NULL;
	char err[512];
	int rc;

	if (common_opts(argc, argv, usage, &pidfile))
		return 0;
	umask(077);
	cfg = xcalloc(1, sizeof(*cfg));
	load_config(cfg);
	log_init("mxgate", cfg->log_syslog, cfg->log_debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (cfg->tls_cert[0] && access(cfg->tls_cert, R_OK) < 0) {
		if (global_config || config_find(NULL))
			fatal("tls_cert %s: %m", cfg->tls_cert);
		log_warn("tls_cert %s not found: STARTTLS is not offered (make run creates one)",
			 cfg->tls_cert);
	}
	memset(&setup, 0, sizeof(setup));
	setup.cfg = cfg;
	setup.nworkers = cfg->workers ? cfg->workers : workers_ncpu();
	/* while still root: the ports, the TLS key, the pid file */
	setup.fds = bind_all(cfg, setup.nworkers);
	if (server_tls_setup(cfg, &setup.tls, err, sizeof(err)) < 0)
		fatal("%s", err);
	if (pidfile)
		write_pidfile(pidfile);
	become_unprivileged(cfg);
	prepare_data_dir(cfg, setup.nworkers + 1);
	if (cfg->max_sessions_per_ip || cfg->max_connect_rate) {
		/* a column per process slot: the workers, the queue manager, their reload successors */
		setup.clients = iptable_create(cfg->max_sessions, workers_nslots(setup.nworkers + 1));
		if (!setup.clients)
			fatal("cannot create the per-client table: %m");
	}
	for (unsigned i = 0; i < cfg->nlisten; i++)
		log_info("listening on %s:%u%s", cfg->listen[i].host, cfg->listen[i].port,
			 cfg->listen[i].proxy ? " proxy" : "");
	log_info("mxgate starting config=%s workers=%u data_dir=%s", cfg->source, setup.nworkers,
		 cfg->data_dir);
	rc = workers_run(setup.nworkers + 1, &hooks, &setup); /* + the queue manager */
	log_info("mxgate stopped");
	iptable_destroy(&setup.clients);
	tls_ctx_free(&setup.tls);
	free(setup.fds);
	free((void *)setup.cfg);
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
		char err[PRIVS_ERR_MAX];
		load_config(cfg);
		/* root acts as the owner of data_dir, so every file there stays the gateway's */
		umask(077);
		if (privs_become_owner(cfg->data_dir, err, sizeof(err)) < 0) {
			fprintf(stderr, "mxgate: %s\n", err);
			free(cfg);
			return 1;
		}
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
