/* qstate: the delivery state of one queued message, an append-only log beside the queue file
 * (queue/state/ID). The queue file itself never changes after its 250.
 *
 * Records, one per line, "KEY field...", fields %XX-escaped as in qfile:
 *   MXGS 1                                   magic
 *   rcpt IDX delivered TIME CODE ENH REMOTE TEXT
 *   rcpt IDX deferred  TIME CODE ENH REMOTE TEXT
 *   rcpt IDX failed    TIME CODE ENH REMOTE TEXT
 *   attempt TIME NEXT                        an attempt ended; next one not before NEXT
 *   warned TIME                              the delay warning was sent
 *   reported QID                             the NDR was queued as QID
 *   hold TIME | release TIME | retry TIME | delete TIME     admin requests
 * The last record about a recipient wins. A torn last line (crash mid-append) is ignored:
 * what it recorded is redone, so a recipient may get a message twice, never none. */
#ifndef MXG_QSTATE_H
#define MXG_QSTATE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define QSTATE_MAGIC "MXGS 1\n"
#define QSTATE_TEXT_MAX 512
#define QSTATE_REMOTE_MAX 256

enum rcpt_status { RCPT_PENDING = 0, RCPT_DEFERRED, RCPT_DELIVERED, RCPT_FAILED };

struct qstate_rcpt {
	enum rcpt_status status;
	time_t when;
	int code;
	char enhanced[16];
	char remote[QSTATE_REMOTE_MAX];
	char text[QSTATE_TEXT_MAX];
};

struct qstate {
	struct qstate_rcpt *rcpts;
	size_t nrcpt;
	unsigned attempts;
	time_t next_attempt; /* 0: as soon as possible */
	time_t last_attempt;
	time_t warned;       /* 0: no delay warning sent */
	int held;
	int deleted;
	int retry_now;
	char reported[32];   /* NDR queue id, "" when none */
};

/* Reads path (missing file = fresh state) for a message of nrcpt recipients. Returns 0, or -1
 * with errno for I/O errors. Unknown or torn records are skipped. */
int qstate_load(const char *path, size_t nrcpt, struct qstate *st);
/* Parses a state log held in memory (the same rules). */
void qstate_parse(const char *buf, size_t len, size_t nrcpt, struct qstate *st);
void qstate_free(struct qstate *st);

/* Append records and fdatasync; a new log starts with the magic. Each returns 0, or -1 with
 * errno and the log as it was (no torn record). They block: call them from a background thread
 * or a command-line tool, never on an event loop. qstate_append takes whole records, each
 * ending in '\n' (several at once: one write, one sync). */
int qstate_append(const char *path, const char *rec, size_t len);
int qstate_append_rcpt(const char *path, size_t idx, const struct qstate_rcpt *r);
int qstate_append_attempt(const char *path, time_t when, time_t next);
int qstate_append_word(const char *path, const char *word, const char *arg);

/* Formats the records into buf for a batched append (the delivery layer writes one attempt's
 * worth at once). Returns the length written (0 when buf is too small). */
size_t qstate_format_rcpt(char *buf, size_t bufsz, size_t idx, const struct qstate_rcpt *r);

/* 1 when every recipient is delivered or failed. */
int qstate_all_final(const struct qstate *st);
const char *qstate_status_name(enum rcpt_status s);

#endif
