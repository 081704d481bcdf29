/* qfile: the on-disk format of one queue file (docs/queue-format.md). Pure: buffers in and
 * out, no I/O, so the format can be tested and fuzzed on its own. */
#ifndef MXG_QFILE_H
#define MXG_QFILE_H

#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

#define QFILE_MAGIC "MXGQ 1\n"
#define QFILE_MAX_RCPTS 100000

/* Returns the envelope records up to and including "body\n" (malloc'd, *len_r bytes). */
char *qfile_envelope(const struct queue_envelope *env, size_t *len_r);
/* Writes the END record that must close every file, "end LEN\n", appended right after the
 * body (which always ends in CRLF: the Received header at least); returns its length. */
size_t qfile_end_record(char *buf, size_t bufsz, uint64_t body_len);

/* A parsed file; strings point into the caller's buffer, which parse modifies. */
struct qfile_view {
	const char *qid, *client, *helo, *tls, *from;
	size_t nrcpt;
	const char *body;
	uint64_t body_len;
};
/* Checks a whole file: magic, known records, at least one recipient, body and END record
 * whose length matches. Returns 0 or -1 with *why set. A file cut short anywhere fails. */
int qfile_parse(char *buf, size_t len, struct qfile_view *v, const char **why);

/* The whole envelope of a valid file, for delivery. Strings point into the caller's buffer
 * (unescaped in place); rcpts is allocated: release with qfile_env_free. */
struct qfile_rcpt {
	const char *addr, *tenant, *route, *params; /* params "" when none */
};
struct qfile_env {
	struct qfile_view v;
	const char *mail_params; /* "" when none */
	int64_t arrival;
	struct qfile_rcpt *rcpts;
	size_t nrcpt;
};
int qfile_env_read(char *buf, size_t len, struct qfile_env *env, const char **why);
void qfile_env_free(struct qfile_env *env);

/* Undoes qfile_escape in place. */
void qfile_unescape(char *s);

/* %XX-escapes controls, space, '%' and DEL so each value stays one field of one line. */
size_t qfile_escape(char *dst, size_t dstsz, const char *src);

#endif
