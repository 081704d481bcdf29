/* qstate: see qstate.h. */
#include "queue/qstate.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/qfile.h"
#include "util/xmalloc.h"

/* A state log larger than this is damaged or hostile: read no more of it. */
#define QSTATE_FILE_MAX (16 * 1024 * 1024)

static const char *const status_names[] = { "pending", "deferred", "delivered", "failed" };

const char *qstate_status_name(enum rcpt_status s)
{
	return s <= RCPT_FAILED ? status_names[s] : "?";
}

static int status_from(const char *w, enum rcpt_status *s)
{
	for (int i = RCPT_DEFERRED; i <= RCPT_FAILED; i++)
		if (!strcmp(w, status_names[i])) {
			*s = (enum rcpt_status)i;
			return 0;
		}
	return -1;
}

/* "rcpt IDX STATUS TIME CODE ENH REMOTE TEXT" */
static void parse_rcpt(char *args, struct qstate *st)
{
	char *f[7], *save = NULL;
	size_t n = 0;
	struct qstate_rcpt r;

	for (char *t = strtok_r(args, " ", &save); t && n < 7; t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	if (n != 7)
		return;
	unsigned long idx = strtoul(f[0], NULL, 10);
	if (idx >= st->nrcpt || status_from(f[1], &r.status) < 0)
		return;
	r.when = (time_t)strtoll(f[2], NULL, 10);
	r.code = atoi(f[3]);
	qfile_unescape(f[4]);
	qfile_unescape(f[5]);
	qfile_unescape(f[6]);
	snprintf(r.enhanced, sizeof(r.enhanced), "%s", f[4]);
	snprintf(r.remote, sizeof(r.remote), "%s", f[5]);
	snprintf(r.text, sizeof(r.text), "%s", f[6]);
	st->rcpts[idx] = r;
}

static void parse_line(char *line, struct qstate *st)
{
	char *sp = strchr(line, ' ');
	char *args = sp ? sp + 1 : line + strlen(line);

	if (sp)
		*sp = '\0';
	if (!strcmp(line, "rcpt")) {
		parse_rcpt(args, st);
	} else if (!strcmp(line, "attempt")) {
		long long when = 0, next = 0;
		if (sscanf(args, "%lld %lld", &when, &next) == 2) {
			st->attempts++;
			st->last_attempt = (time_t)when;
			st->next_attempt = (time_t)next;
			st->retry_now = 0;
		}
	} else if (!strcmp(line, "warned")) {
		st->warned = (time_t)strtoll(args, NULL, 10);
	} else if (!strcmp(line, "reported")) {
		snprintf(st->reported, sizeof(st->reported), "%s", args);
	} else if (!strcmp(line, "hold")) {
		st->held = 1;
	} else if (!strcmp(line, "release")) {
		st->held = 0;
	} else if (!strcmp(line, "retry")) {
		st->retry_now = 1;
	} else if (!strcmp(line, "delete")) {
		st->deleted = 1;
	}
}

void qstate_parse(const char *buf, size_t len, size_t nrcpt, struct qstate *st)
{
	char *copy = xmalloc(len + 1), *p = copy, *end = copy + len;

	memset(st, 0, sizeof(*st));
	st->nrcpt = nrcpt;
	st->rcpts = xcalloc(nrcpt ? nrcpt : 1, sizeof(*st->rcpts));
	memcpy(copy, buf, len);
	copy[len] = '\0';
	if (len >= sizeof(QSTATE_MAGIC) - 1 && !memcmp(copy, QSTATE_MAGIC, sizeof(QSTATE_MAGIC) - 1))
		p += sizeof(QSTATE_MAGIC) - 1;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break; /* torn last line: ignored */
		*nl = '\0';
		parse_line(p, st);
		p = nl + 1;
	}
	free(copy);
}

int qstate_load(const char *path, size_t nrcpt, struct qstate *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	char *buf;
	ssize_t n;

	if (fd < 0) {
		if (errno != ENOENT)
			return -1;
		qstate_parse("", 0, nrcpt, st);
		return 0;
	}
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return -1;
	}
	size_t len = (size_t)sb.st_size < QSTATE_FILE_MAX ? (size_t)sb.st_size : QSTATE_FILE_MAX;
	buf = xmalloc(len + 1);
	n = pread(fd, buf, len, 0);
	close(fd);
	if (n < 0) {
		free(buf);
		return -1;
	}
	qstate_parse(buf, (size_t)n, nrcpt, st);
	free(buf);
	return 0;
}

void qstate_free(struct qstate *st)
{
	free(st->rcpts);
	st->rcpts = NULL;
}

size_t qstate_format_rcpt(char *buf, size_t bufsz, size_t idx, const struct qstate_rcpt *r)
{
	char enh[48], remote[QSTATE_REMOTE_MAX * 3], text[QSTATE_TEXT_MAX * 3];

	qfile_escape(enh, sizeof(enh), r->enhanced[0] ? r->enhanced : "-");
	qfile_escape(remote, sizeof(remote), r->remote[0] ? r->remote : "-");
	qfile_escape(text, sizeof(text), r->text[0] ? r->text : "-");
	int n = snprintf(buf, bufsz, "rcpt %zu %s %" PRId64 " %d %s %s %s\n", idx,
			 qstate_status_name(r->status), (int64_t)r->when, r->code, enh, remote, text);
	return n > 0 && (size_t)n < bufsz ? (size_t)n : 0;
}

/* Writes all of buf or fails with errno: a short write (a full disk) is retried, and the
 * retry says why it cannot go on. */
static int write_full(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Takes a failed append back to the log's old size, keeping the append's errno: a torn record
 * would swallow the next one appended after it (read under the torn record's key, or not at
 * all). Should even this fail, the torn record stays, as after a crash. */
static void take_back(int fd, off_t size)
{
	int e = errno;

	if (ftruncate(fd, size) < 0 && e == 0)
		e = errno;
	errno = e;
}

int qstate_append(const char *path, const char *rec, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	struct stat sb;
	int rc = -1;

	if (fd < 0)
		return -1;
	if (fstat(fd, &sb) == 0) {
		rc = 0;
		if (sb.st_size == 0 && write_full(fd, QSTATE_MAGIC, sizeof(QSTATE_MAGIC) - 1) < 0)
			rc = -1;
		if (rc == 0 && write_full(fd, rec, len) < 0)
			rc = -1;
		if (rc == 0 && fdatasync(fd) < 0)
			rc = -1;
		if (rc < 0)
			take_back(fd, sb.st_size);
	}
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

int qstate_append_rcpt(const char *path, size_t idx, const struct qstate_rcpt *r)
{
	char rec[QSTATE_TEXT_MAX * 4 + QSTATE_REMOTE_MAX * 3 + 128];
	size_t n = qstate_format_rcpt(rec, sizeof(rec), idx, r);

	if (n == 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return qstate_append(path, rec, n);
}

int qstate_append_attempt(const char *path, time_t when, time_t next)
{
	char rec[80];
	int n = snprintf(rec, sizeof(rec), "attempt %" PRId64 " %" PRId64 "\n", (int64_t)when,
			 (int64_t)next);
	return qstate_append(path, rec, (size_t)n);
}

int qstate_append_word(const char *path, const char *word, const char *arg)
{
	char rec[160];
	int n = snprintf(rec, sizeof(rec), "%s %s\n", word, arg);

	if (n <= 0 || (size_t)n >= sizeof(rec)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return qstate_append(path, rec, (size_t)n);
}

int qstate_all_final(const struct qstate *st)
{
	for (size_t i = 0; i < st->nrcpt; i++)
		if (st->rcpts[i].status != RCPT_DELIVERED && st->rcpts[i].status != RCPT_FAILED)
			return 0;
	return 1;
}
