/* queue_cmd: see queue_cmd.h. */
#include "admin/queue_cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "delivery/delivery.h"
#include "queue/qfile.h"
#include "queue/qstate.h"
#include "util/ids.h"
#include "util/xmalloc.h"

#define EXIT_USAGE 2
/* Queue files larger than this are listed from their envelope only. */
#define QCMD_FILE_MAX (64u * 1024 * 1024)

static const char usage[] =
	"usage: mxgate [-c FILE] queue list [--json]\n"
	"       mxgate [-c FILE] queue show ID [--json]\n"
	"       mxgate [-c FILE] queue retry [ID]     (no ID: every message)\n"
	"       mxgate [-c FILE] queue hold ID | release ID | delete ID\n"
	"Works against a running server (the queue manager is told at once) or a stopped one\n"
	"(the request waits for its next start). delete sends no report to the sender.\n";

struct qmsg {
	char id[QUEUE_ID_LEN + 1];
	char *buf;
	size_t len;
	struct qfile_env env;
	struct qstate st;
};

static void paths(const struct config *cfg, const char *id, char *q, char *s, size_t sz)
{
	snprintf(q, sz, "%s/queue/incoming/%s", cfg->data_dir, id);
	snprintf(s, sz, "%s/queue/state/%s", cfg->data_dir, id);
}

static int load(const struct config *cfg, const char *id, struct qmsg *m)
{
	char qp[PATH_MAX], sp[PATH_MAX];
	const char *why = NULL;
	struct stat sb;
	int fd;

	memset(m, 0, sizeof(*m));
	snprintf(m->id, sizeof(m->id), "%s", id);
	paths(cfg, id, qp, sp, sizeof(qp));
	if ((fd = open(qp, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size > QCMD_FILE_MAX) {
		close(fd);
		return -1;
	}
	m->len = (size_t)sb.st_size;
	m->buf = xmalloc(m->len + 1);
	ssize_t n = pread(fd, m->buf, m->len, 0);
	close(fd);
	if (n != (ssize_t)m->len || qfile_env_read(m->buf, m->len, &m->env, &why) < 0 ||
	    qstate_load(sp, m->env.nrcpt, &m->st) < 0) {
		free(m->buf);
		qfile_env_free(&m->env);
		return -1;
	}
	return 0;
}

static void unload(struct qmsg *m)
{
	qfile_env_free(&m->env);
	qstate_free(&m->st);
	free(m->buf);
}

static const char *iso(time_t t, char *buf, size_t sz)
{
	struct tm tm;

	if (t == 0) {
		snprintf(buf, sz, "-");
		return buf;
	}
	gmtime_r(&t, &tm);
	strftime(buf, sz, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static const char *msg_state(const struct qmsg *m)
{
	return m->st.deleted ? "deleting" : m->st.held ? "held" : m->st.attempts ? "deferred" : "active";
}

static json_t *msg_json(const struct qmsg *m, int full)
{
	char t1[32], t2[32];
	json_t *rc = json_array();

	for (size_t i = 0; i < m->env.nrcpt; i++) {
		const struct qstate_rcpt *r = &m->st.rcpts[i];
		json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "address", m->env.rcpts[i].addr, "tenant",
				      m->env.rcpts[i].tenant, "route", m->env.rcpts[i].route, "status",
				      qstate_status_name(r->status));
		if (r->status != RCPT_PENDING) {
			json_object_set_new(o, "dsn", json_string(r->enhanced));
			json_object_set_new(o, "remote", json_string(r->remote));
			json_object_set_new(o, "reply", json_string(r->text));
		}
		json_array_append_new(rc, o);
	}
	json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:i,s:s,s:s,s:o}", "id", m->id, "state", msg_state(m),
			      "sender", m->env.v.from, "size", (json_int_t)m->env.v.body_len,
			      "attempts", (int)m->st.attempts, "arrival",
			      iso((time_t)m->env.arrival, t1, sizeof(t1)), "next_attempt",
			      iso(m->st.next_attempt, t2, sizeof(t2)), "recipients", rc);
	if (full) {
		json_object_set_new(o, "client", json_string(m->env.v.client));
		json_object_set_new(o, "helo", json_string(m->env.v.helo));
		json_object_set_new(o, "tls", json_string(m->env.v.tls));
	}
	return o;
}

static void msg_text(const struct qmsg *m, int full)
{
	char t1[32], t2[32];

	printf("%s  %-8s  %8llu  %s  next %s  <%s>\n", m->id, msg_state(m),
	       (unsigned long long)m->env.v.body_len, iso((time_t)m->env.arrival, t1, sizeof(t1)),
	       iso(m->st.next_attempt, t2, sizeof(t2)), m->env.v.from);
	if (full)
		printf("  client %s  helo %s  tls %s  attempts %u\n", m->env.v.client, m->env.v.helo,
		       m->env.v.tls, m->st.attempts);
	for (size_t i = 0; i < m->env.nrcpt; i++) {
		const struct qstate_rcpt *r = &m->st.rcpts[i];
		printf("    %-9s <%s> tenant %s route %s", qstate_status_name(r->status),
		       m->env.rcpts[i].addr, m->env.rcpts[i].tenant, m->env.rcpts[i].route);
		if (r->status != RCPT_PENDING)
			printf("  %s %s: %d %s", r->enhanced, r->remote, r->code, r->text);
		printf("\n");
	}
}

static int id_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Queue ids in incoming/, sorted (= by arrival); *n_r is their count. */
static char **list_ids(const struct config *cfg, size_t *n_r)
{
	char dir[PATH_MAX];
	char **ids = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/queue/incoming", cfg->data_dir);
	*n_r = 0;
	if (!(d = opendir(dir)))
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (!id_queue_valid(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			ids = xrealloc(ids, cap * sizeof(*ids));
		}
		ids[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n)
		qsort(ids, n, sizeof(*ids), id_cmp);
	*n_r = n;
	return ids;
}

static int cmd_list(const struct config *cfg, int json)
{
	size_t n;
	char **ids = list_ids(cfg, &n);
	json_t *a = json ? json_array() : NULL;
	size_t shown = 0;

	for (size_t i = 0; i < n; i++) {
		struct qmsg m;
		if (load(cfg, ids[i], &m) == 0) {
			if (a)
				json_array_append_new(a, msg_json(&m, 0));
			else
				msg_text(&m, 0);
			shown++;
			unload(&m);
		}
		free(ids[i]);
	}
	free(ids);
	if (a) {
		json_dumpf(a, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(a);
	} else {
		printf("%zu message%s queued\n", shown, shown == 1 ? "" : "s");
	}
	return 0;
}

static int cmd_show(const struct config *cfg, const char *id, int json)
{
	struct qmsg m;

	if (load(cfg, id, &m) < 0) {
		fprintf(stderr, "mxgate: queue: no message %s in the queue\n", id);
		return EXIT_USAGE;
	}
	if (json) {
		json_t *o = msg_json(&m, 1);
		json_dumpf(o, stdout, JSON_INDENT(2));
		printf("\n");
		json_decref(o);
	} else {
		msg_text(&m, 1);
	}
	unload(&m);
	return 0;
}

/* Tells a running queue manager to look at the state logs again. */
static void poke(const struct config *cfg)
{
	char path[PATH_MAX];
	FILE *f;
	int pid = 0;

	snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, QMGR_PID_FILE);
	if (!(f = fopen(path, "r")))
		return;
	if (fscanf(f, "%d", &pid) != 1 || pid <= 1 || kill(pid, SIGUSR1) < 0)
		printf("(the queue manager is not running: the request applies at its next start)\n");
	fclose(f);
}

static int request(const struct config *cfg, const char *word, const char *id)
{
	char qp[PATH_MAX], sp[PATH_MAX], now[24];

	paths(cfg, id, qp, sp, sizeof(qp));
	if (!id_queue_valid(id) || access(qp, F_OK) < 0) {
		fprintf(stderr, "mxgate: queue: no message %s in the queue\n", id);
		return EXIT_USAGE;
	}
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	if (qstate_append_word(sp, word, now) < 0) {
		fprintf(stderr, "mxgate: queue: cannot record %s for %s: %s\n", word, id, strerror(errno));
		return 1;
	}
	printf("%s: %s requested\n", id, word);
	return 0;
}

static int cmd_retry_all(const struct config *cfg)
{
	size_t n, done = 0;
	char **ids = list_ids(cfg, &n);
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		char qp[PATH_MAX], sp[PATH_MAX];
		paths(cfg, ids[i], qp, sp, sizeof(qp));
		if (qstate_append_word(sp, "retry", "0") == 0)
			done++;
		else
			rc = 1;
		free(ids[i]);
	}
	free(ids);
	printf("retry requested for %zu message%s\n", done, done == 1 ? "" : "s");
	return rc;
}

int queue_cmd_main(const struct config *cfg, int argc, char **argv)
{
	int json = 0, nargs = 0;
	const char *args[3] = { 0 };
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("%s", usage);
			return 0;
		} else if (argv[i][0] == '-' || nargs == 3) {
			fprintf(stderr, "mxgate: queue: unexpected argument '%s'\n%s", argv[i], usage);
			return EXIT_USAGE;
		} else
			args[nargs++] = argv[i];
	}
	const char *action = args[0] ? args[0] : "";
	if (!strcmp(action, "list") && nargs == 1)
		return cmd_list(cfg, json);
	if (!strcmp(action, "show") && nargs == 2)
		return cmd_show(cfg, args[1], json);
	if (!strcmp(action, "retry") && nargs <= 2) {
		rc = nargs == 2 ? request(cfg, "retry", args[1]) : cmd_retry_all(cfg);
	} else if ((!strcmp(action, "hold") || !strcmp(action, "release") ||
		    !strcmp(action, "delete")) && nargs == 2) {
		rc = request(cfg, action, args[1]);
	} else {
		fprintf(stderr, "mxgate: queue: %s\n%s", action[0] ? "bad arguments" : "missing action",
			usage);
		return EXIT_USAGE;
	}
	if (rc == 0)
		poke(cfg);
	return rc;
}
