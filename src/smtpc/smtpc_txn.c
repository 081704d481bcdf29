/* smtpc_txn: one mail transaction over a ready client (see smtpc_send in smtpc.h): the checks
 * that need no server, MAIL / RCPT / DATA pipelined (RFC 2920) or in lock-step, the body read
 * with pread(2) and dot-stuffed, the final reply, RSET after a transaction that ended before
 * the final dot, and done(). A probe (smtpc_msg.rcpt_only) stops after the RCPT replies and
 * ends with QUIT instead.
 *
 * Reply matching: commands leave in the order MAIL, RCPT for each recipient not refused
 * locally (t->order), DATA; replies come back in that order, so one cursor (phase, t->cur)
 * names the command each reply answers, pipelined or not. */
#include "smtpc/smtpc_private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xmalloc.h"

enum txn_phase {
	T_MAIL,    /* waiting for the reply to MAIL */
	T_RCPT,    /* ... to RCPT order[cur] */
	T_DATA,    /* ... to DATA */
	T_BODY,    /* streaming the body */
	T_END,     /* final dot queued, waiting for the reply */
	T_DISCARD, /* 354 with nobody accepted (pipelined): "." sent, its reply is ignored */
	T_RSET,
	T_QUIT,    /* a probe's end: waiting for the reply to QUIT */
	T_DONE,    /* statuses final, done() due */
};

enum rcpt_state {
	RS_LOCAL,    /* final before anything was sent; no RCPT for it */
	RS_WAIT,     /* RCPT sent or to be sent, no reply yet */
	RS_ACCEPTED, /* 2xx to RCPT, waiting for the end of data */
	RS_FINAL,
};

struct smtpc_txn {
	smtpc_sent_fn *done;
	void *arg;
	size_t nrcpt;
	struct smtpc_status *st;  /* [nrcpt], what done() gets */
	unsigned char *rs;        /* [nrcpt] enum rcpt_state */
	char **rcpt_cmd;          /* [nrcpt] the RCPT lines, NULL for RS_LOCAL */
	size_t *order;            /* [nsent] indexes of the recipients sent, in order */
	size_t nsent, cur, accepted;
	char mail_cmd[SMTPC_CMD_MAX];
	size_t mail_len;
	enum txn_phase phase;
	int pipelined, mail_ok, unusable, end_armed;
	int rcpt_only; /* a probe: no DATA, QUIT at the end */
	int fd; /* our dup of the body's file */
	off_t off;
	uint64_t len, pos;
	struct smtpc_dot dot;
	char *chunk;   /* SMTPC_BODY_CHUNK read from the file */
	char *stuffed; /* 2 * SMTPC_BODY_CHUNK after dot-stuffing */
};

int smtpc_txn_finished(const struct smtpc_txn *t)
{
	return t->phase == T_DONE;
}

void smtpc_txn_free(struct smtpc_txn **tp)
{
	struct smtpc_txn *t = *tp;

	if (!t)
		return;
	*tp = NULL;
	if (t->fd >= 0)
		close(t->fd);
	for (size_t i = 0; i < t->nrcpt; i++)
		free(t->rcpt_cmd[i]);
	free(t->rcpt_cmd);
	free(t->st);
	free(t->rs);
	free(t->order);
	free(t->chunk);
	free(t->stuffed);
	free(t);
}

/* Gives every recipient in state `which` (or every one not yet final when which < 0) a status
 * the client decided. */
static void set_local(struct smtpc_txn *t, int which, int code, const char *enh,
		      enum smtpc_stage stage, const char *text)
{
	for (size_t i = 0; i < t->nrcpt; i++) {
		if (which >= 0 ? t->rs[i] != which : (t->rs[i] == RS_LOCAL || t->rs[i] == RS_FINAL))
			continue;
		smtpc_status_local(&t->st[i], code, enh, stage, text);
		t->rs[i] = t->rs[i] == RS_LOCAL ? RS_LOCAL : RS_FINAL;
	}
}

static void set_all_local(struct smtpc_txn *t, int code, const char *enh, const char *text)
{
	for (size_t i = 0; i < t->nrcpt; i++) {
		smtpc_status_local(&t->st[i], code, enh, SMTPC_STAGE_LOCAL, text);
		t->rs[i] = RS_LOCAL;
	}
}

/* The server's reply becomes the status of every accepted recipient. */
static void set_accepted(struct smtpc_txn *t, const struct smtpc_reply *r, enum smtpc_stage stage)
{
	for (size_t i = 0; i < t->nrcpt; i++) {
		if (t->rs[i] != RS_ACCEPTED)
			continue;
		smtpc_status_from_reply(&t->st[i], r, stage);
		t->rs[i] = RS_FINAL;
	}
}

static void log_result(const struct smtpc *c, const struct smtpc_txn *t)
{
	size_t n[6] = { 0 };

	for (size_t i = 0; i < t->nrcpt; i++)
		n[smtpc_status_class(&t->st[i])]++;
	if (t->rcpt_only) {
		log_info("qid=%s smtpc probe ip=%s rcpts=%zu accepted=%zu deferred=%zu refused=%zu "
			 "pipelined=%d", smtpc_log_id(c), c->ip, t->nrcpt, n[2], n[4], n[5],
			 t->pipelined);
		return;
	}
	log_info("qid=%s smtpc transaction ip=%s rcpts=%zu delivered=%zu deferred=%zu failed=%zu "
		 "pipelined=%d reusable=%d",
		 smtpc_log_id(c), c->ip, t->nrcpt, n[2], n[4], n[5], t->pipelined,
		 c->bev != NULL);
}

void smtpc_txn_deliver(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;
	struct smtpc_sent sent = { .rcpt = t->st, .nrcpt = t->nrcpt };

	/* detached first: done() may start the next transaction or free the client */
	c->txn = NULL;
	sent.reusable = smtpc_is_reusable(c);
	t->done(t->arg, c, &sent);
	smtpc_txn_free(&t);
}

static void finish(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;

	smtpc_disarm(c);
	/* a recipient without a final status here would be a bug; never report it delivered */
	set_local(t, -1, 421, "4.4.2", c->stage, "transaction ended without a final reply");
	t->phase = T_DONE;
	if (t->unusable)
		smtpc_close(c);
	log_result(c, t);
	smtpc_txn_deliver(c);
}

void smtpc_txn_abort(struct smtpc *c, const char *text)
{
	struct smtpc_txn *t = c->txn;

	set_local(t, -1, 421, "4.4.2", c->stage, text);
	t->unusable = 1;
	finish(c);
}

/* After a transaction that ended before the final dot: RSET, so that the next one starts
 * clean (RFC 5321 4.1.1.5); done() follows its reply. */
static void send_rset(struct smtpc *c)
{
	smtpc_write(c, "RSET\r\n", 6);
	c->txn->phase = T_RSET;
	c->stage = SMTPC_STAGE_RSET;
	smtpc_arm(c, c->to.rset_ms);
}

/* A probe's end: QUIT (RFC 5321 4.1.1.10 ends the transaction too); done() follows its reply
 * or the peer's close, and the connection is not used again. */
static void send_quit(struct smtpc *c)
{
	smtpc_write(c, "QUIT\r\n", 6);
	c->txn->phase = T_QUIT;
	c->txn->unusable = 1;
	c->stage = SMTPC_STAGE_RSET;
	smtpc_arm(c, c->to.quit_ms);
}

/* The end of a transaction that will not reach DATA. */
static void end_early(struct smtpc *c)
{
	if (c->txn->rcpt_only)
		send_quit(c);
	else
		send_rset(c);
}

static void send_data(struct smtpc *c)
{
	if (!c->txn->pipelined)
		smtpc_write(c, "DATA\r\n", 6);
	c->txn->phase = T_DATA;
	c->stage = SMTPC_STAGE_DATA;
	smtpc_arm(c, c->to.data_init_ms);
}

/* Next: the reply to the next RCPT, else to DATA (or RSET when nobody was accepted and DATA
 * was not pipelined). */
static void expect_rcpt(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;

	if (t->cur < t->nsent) {
		const char *cmd = t->rcpt_cmd[t->order[t->cur]];
		if (!t->pipelined)
			smtpc_write(c, cmd, strlen(cmd));
		t->phase = T_RCPT;
		c->stage = SMTPC_STAGE_RCPT;
		smtpc_arm(c, c->to.rcpt_ms);
	} else if (t->rcpt_only) {
		send_quit(c);
	} else if (t->pipelined || (t->mail_ok && t->accepted > 0)) {
		send_data(c);
	} else {
		send_rset(c);
	}
}

/* The file ended early or could not be read: the final dot must not go out (the server would
 * deliver a truncated message), so the connection is dropped mid-data and the server discards
 * what it got. Temporary: the file may be readable later, and it is our fault, not the peer's. */
static void body_failed(struct smtpc *c, const char *why)
{
	char text[SMTPC_TEXT_MAX];

	snprintf(text, sizeof(text), "cannot read the message body: %s", why);
	log_warn("qid=%s smtpc body-error ip=%s error=\"%s\"", smtpc_log_id(c), c->ip, why);
	set_local(c->txn, RS_ACCEPTED, 451, "4.3.0", SMTPC_STAGE_BODY, text);
	c->txn->unusable = 1;
	finish(c);
}

static ssize_t pread_full(int fd, char *buf, size_t len, off_t off)
{
	ssize_t n;

	do
		n = pread(fd, buf, len, off);
	while (n < 0 && errno == EINTR);
	return n;
}

/* Queues body until the output holds about SMTPC_BODY_HIGH_WATER, then the final dot. */
static void body_fill(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;

	while (t->phase == T_BODY && smtpc_output_len(c) < SMTPC_BODY_HIGH_WATER) {
		uint64_t left = t->len - t->pos;
		size_t want = left < SMTPC_BODY_CHUNK ? (size_t)left : SMTPC_BODY_CHUNK;
		ssize_t n;

		if (want == 0) {
			char end[SMTPC_DOT_END_MAX];
			smtpc_write(c, end, smtpc_dot_end(&t->dot, end));
			t->phase = T_END;
			break;
		}
		n = pread_full(t->fd, t->chunk, want, t->off + (off_t)t->pos);
		if (n <= 0) {
			body_failed(c, n < 0 ? strerror(errno) : "the file is shorter than its length");
			return;
		}
		smtpc_write(c, t->stuffed, smtpc_dot_stuff(&t->dot, t->chunk, (size_t)n, t->stuffed));
		t->pos += (uint64_t)n;
	}
	/* RFC 5321 4.5.3.2.5: the data block timeout runs while output waits to be sent */
	smtpc_arm(c, c->to.data_block_ms);
}

static void start_body(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;

	t->phase = T_BODY;
	c->stage = SMTPC_STAGE_BODY;
	smtpc_dot_init(&t->dot);
	t->chunk = xmalloc(SMTPC_BODY_CHUNK);
	t->stuffed = xmalloc(2 * SMTPC_BODY_CHUNK);
	body_fill(c);
}

void smtpc_txn_on_write(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;

	if (t->phase == T_BODY) {
		body_fill(c);
	} else if (t->phase == T_END && !t->end_armed) {
		if (smtpc_output_len(c) == 0) {
			/* RFC 5321 4.5.3.2.6: from the dot on, the server may take its time */
			t->end_armed = 1;
			smtpc_arm(c, c->to.data_end_ms);
		} else {
			smtpc_arm(c, c->to.data_block_ms);
		}
	}
}

void smtpc_txn_on_reply(struct smtpc *c)
{
	struct smtpc_txn *t = c->txn;
	const struct smtpc_reply *r = &c->reply;
	int ok = r->code / 100 == 2;

	switch (t->phase) {
	case T_MAIL:
		t->mail_ok = ok;
		if (!ok) {
			/* every recipient gets MAIL's reply; pipelined RCPT replies are then skipped */
			for (size_t k = 0; k < t->nsent; k++) {
				smtpc_status_from_reply(&t->st[t->order[k]], r, SMTPC_STAGE_MAIL);
				t->rs[t->order[k]] = RS_FINAL;
			}
		}
		t->cur = 0;
		if (ok || t->pipelined)
			expect_rcpt(c);
		else
			end_early(c);
		break;
	case T_RCPT: {
		size_t i = t->order[t->cur++];
		if (t->mail_ok) {
			smtpc_status_from_reply(&t->st[i], r, SMTPC_STAGE_RCPT);
			/* a probe's answer is the RCPT reply itself: final, whatever it is */
			t->rs[i] = ok && !t->rcpt_only ? RS_ACCEPTED : RS_FINAL;
			t->accepted += ok;
		}
		expect_rcpt(c);
		break;
	}
	case T_DATA:
		if (r->code == 354 && t->accepted > 0) {
			start_body(c);
		} else if (r->code == 354) {
			/* pipelined DATA accepted although no recipient was: end it empty at once */
			smtpc_write(c, ".\r\n", 3);
			t->phase = T_DISCARD;
			c->stage = SMTPC_STAGE_BODY;
			smtpc_arm(c, c->to.data_end_ms);
		} else {
			set_accepted(t, r, SMTPC_STAGE_DATA);
			send_rset(c);
		}
		break;
	case T_BODY:
		/* a reply before our final dot: the server gave up on the data; the stream cannot
		 * be resynchronised. A 2xx here would be a server accepting what it has not seen. */
		if (ok)
			set_local(t, RS_ACCEPTED, 421, "4.4.2", SMTPC_STAGE_BODY,
				  "premature success reply before the end of data");
		else
			set_accepted(t, r, SMTPC_STAGE_BODY);
		t->unusable = 1;
		finish(c);
		break;
	case T_END:
		set_accepted(t, r, SMTPC_STAGE_BODY);
		finish(c);
		break;
	case T_DISCARD:
		send_rset(c);
		break;
	case T_RSET:
		if (!ok)
			t->unusable = 1;
		finish(c);
		break;
	case T_QUIT:
		finish(c);
		break;
	case T_DONE:
		break;
	}
}

/* The checks that need no reply: the connection is sound, the addresses can go on the wire,
 * and the server has the extensions the message needs and room for its size. Returns 1 when
 * something is left to send. */
static int local_checks(struct smtpc *c, const struct smtpc_msg *m, struct smtpc_txn *t)
{
	const char *host = c->host_name ? c->host_name : "";
	char text[SMTPC_TEXT_MAX];
	uint64_t size = m->size ? m->size : m->body_len;

	if (!smtpc_is_reusable(c)) {
		snprintf(text, sizeof(text), "connection with %s[%s] is not usable", host, c->ip);
		set_all_local(t, 421, "4.4.2", text);
		return 0;
	}
	if (!smtpc_addr_ok(m->sender, 1)) {
		set_all_local(t, 553, "5.1.7", "the sender address cannot be sent over SMTP");
		return 0;
	}
	if (m->needs_8bitmime && !(c->ext & SMTPC_EXT_8BITMIME)) {
		snprintf(text, sizeof(text),
			 "the message has 8-bit content, %s[%s] does not offer 8BITMIME and "
			 "conversion is not supported",
			 host, c->ip);
		set_all_local(t, 554, "5.6.3", text);
		return 0;
	}
	if (m->needs_smtputf8 && !(c->ext & SMTPC_EXT_SMTPUTF8)) {
		snprintf(text, sizeof(text),
			 "the message needs SMTPUTF8 (non-ASCII addresses or headers), %s[%s] does not "
			 "offer it",
			 host, c->ip);
		set_all_local(t, 553, "5.6.7", text);
		return 0;
	}
	if ((c->ext & SMTPC_EXT_SIZE) && c->size_max > 0 && size > c->size_max) {
		snprintf(text, sizeof(text),
			 "message size %" PRIu64 " exceeds the size limit %" PRIu64 " of %s[%s]", size,
			 c->size_max, host, c->ip);
		set_all_local(t, 552, "5.3.4", text);
		return 0;
	}
	for (size_t i = 0; i < t->nrcpt; i++) {
		if (smtpc_addr_ok(m->rcpts[i].addr, 0)) {
			t->rs[i] = RS_WAIT;
			t->order[t->nsent++] = i;
		} else {
			smtpc_status_local(&t->st[i], 553, "5.1.3", SMTPC_STAGE_LOCAL,
					   "the recipient address cannot be sent over SMTP");
			t->rs[i] = RS_LOCAL;
		}
	}
	if (t->nsent > 0 && !m->rcpt_only &&
	    (t->fd = fcntl(m->body_fd, F_DUPFD_CLOEXEC, 0)) < 0) {
		snprintf(text, sizeof(text), "cannot read the message body: %s", strerror(errno));
		set_all_local(t, 451, "4.3.0", text);
		return 0;
	}
	return t->nsent > 0;
}

void smtpc_txn_start(struct smtpc *c, const struct smtpc_msg *m, smtpc_sent_fn *done, void *arg)
{
	struct smtpc_txn *t = xcalloc(1, sizeof(*t));
	size_t n = m->nrcpt ? m->nrcpt : 1;

	t->done = done;
	t->arg = arg;
	t->nrcpt = m->nrcpt;
	t->rcpt_only = m->rcpt_only;
	t->fd = -1;
	t->st = xcalloc(n, sizeof(*t->st));
	t->rs = xcalloc(n, sizeof(*t->rs));
	t->rcpt_cmd = xcalloc(n, sizeof(*t->rcpt_cmd));
	t->order = xcalloc(n, sizeof(*t->order));
	if (!local_checks(c, m, t)) {
		c->txn = t;
		t->phase = T_DONE;
		smtpc_defer(c); /* done() never runs inside smtpc_send */
		return;
	}
	c->txn = t;
	t->off = m->body_off;
	t->len = m->body_len;
	t->mail_len = smtpc_cmd_mail(t->mail_cmd, m, c->ext);
	for (size_t k = 0; k < t->nsent; k++) {
		char line[SMTPC_CMD_MAX];
		size_t len = smtpc_cmd_rcpt(line, &m->rcpts[t->order[k]], c->ext);
		t->rcpt_cmd[t->order[k]] = xstrndup(line, len);
	}
	t->pipelined = (c->ext & SMTPC_EXT_PIPELINING) != 0;
	smtpc_write(c, t->mail_cmd, t->mail_len);
	if (t->pipelined) {
		/* RFC 2920 3.1: MAIL, every RCPT and DATA in one write, DATA last (a probe sends
		 * no DATA: its QUIT follows the last RCPT reply) */
		for (size_t k = 0; k < t->nsent; k++)
			smtpc_write(c, t->rcpt_cmd[t->order[k]], strlen(t->rcpt_cmd[t->order[k]]));
		if (!t->rcpt_only)
			smtpc_write(c, "DATA\r\n", 6);
	}
	t->phase = T_MAIL;
	c->stage = SMTPC_STAGE_MAIL;
	smtpc_arm(c, c->to.mail_ms);
}
