/* session internals shared by session.c (life cycle, input loop, DATA) and commands.c (the
 * verb table and handlers). Nothing outside smtp/ includes this. */
#ifndef MXG_SESSION_PRIVATE_H
#define MXG_SESSION_PRIVATE_H

#include <stdint.h>

#include "event/conn.h"
#include "policy/policy.h"
#include "smtp/datastream.h"
#include "smtp/parse.h"
#include "util/addr.h"
#include "util/ids.h"

struct server;
struct queue_msg;

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets including CRLF. */
#define SMTP_CMD_LINE_MAX 512
#define SMTP_HELO_MAX 255
#define SMTP_RCPT_PARAMS_MAX 512

enum session_state {
	SESS_PROXY,   /* waiting for the PROXY header */
	SESS_GREET,   /* "220-" sent, the rest after greet_pause_ms */
	SESS_COMMAND, /* reading commands */
	SESS_DATA,    /* reading message data */
};

struct session_rcpt {
	char addr[SMTP_PATH_MAX + 1];
	char tenant[POLICY_NAME_MAX];
	char route[POLICY_ROUTE_MAX];
	char params[SMTP_RCPT_PARAMS_MAX];
	/* why it was accepted, for the verdict header */
	const char *rule, *reason;
	char list[ENGINE_FIELD_MAX];
	char entry[ENGINE_FIELD_MAX];
	char dnsbl[ENGINE_FIELD_MAX];
};

struct session {
	struct server *srv;
	struct session *prev, *next; /* the server's list, for closing at shutdown */
	struct conn *conn;
	struct policy_session *ps; /* snapshot + DNSBL lookups, from connect (after PROXY) on */
	char sid[SHORT_ID_LEN + 1];
	struct ip_addr ip;
	char ip_str[ADDR_STR_MAX];
	uint16_t port;
	enum session_state state;

	/* session-level, reset by STARTTLS (RFC 3207 4.2) */
	char helo[SMTP_HELO_MAX + 1];
	int esmtp;
	int tls;
	int tls_names_known; /* tls_names read from the certificate after the handshake */
	size_t ntls_names;
	char tls_names[ENGINE_TLS_NAMES_MAX][CONN_TLS_NAME_MAX];
	const char *tls_name_ptrs[ENGINE_TLS_NAMES_MAX];
	unsigned errors;
	unsigned messages;
	unsigned junk;         /* NOOP, RSET, VRFY, HELP */
	uint64_t bytes_in;     /* everything the client sent, against max_session_bytes */
	int client_slot;       /* handle in the server's per-client table, or IPTABLE_UNTRACKED */
	int pregreet;          /* the client talked before the greeting */

	/* transaction, reset by RSET, HELO/EHLO and the end of DATA */
	int has_from;
	struct mailpath from;
	char mail_params[SMTP_CMD_LINE_MAX];
	int smtputf8, body8bit;
	struct session_rcpt *rcpts;
	unsigned nrcpt, rcpt_cap;
	unsigned rcpt_attempts;

	/* DATA */
	struct queue_msg *msg;
	char qid[QUEUE_ID_LEN + 1];
	struct datastream ds;
	uint64_t data_since_timeout; /* DATA bytes since the deadline was last renewed */

	/* RCPT waiting for its policy verdict */
	struct mailpath pending_rcpt;
	char pending_params[SMTP_RCPT_PARAMS_MAX];

	int skipping_line; /* discarding the rest of an over-long command line */
	int busy;    /* an asynchronous step (policy, commit) is under way: read no input */
	int running; /* inside session_run(): completions must not re-enter it */
	int dead;    /* closed; freed once nothing refers to it */
	unsigned refs;
};

/* The one place replies are written (see reply.h): code, enhanced code, text. */
void session_reply(struct session *s, int code, const char *enh, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* A rejection decided by a rule: adds the client IP, host name and a reference to the text and
 * logs "smtp reject" with the same reference. */
void session_reply_reject(struct session *s, int code, const char *enh, const char *rule,
			  const char *list, const char *entry, const char *text);
/* Counts a protocol error; after max_errors replies 421 4.7.0 and closes. Returns 1 if closed. */
int session_count_error(struct session *s);
/* Counts a NOOP, RSET, VRFY or HELP; after max_junk_commands replies 421 4.7.0 and closes.
 * Returns 1 if closed. */
int session_count_junk(struct session *s);
void session_close(struct session *s, const char *reason);
void session_reset_transaction(struct session *s);
/* Resumes the input loop after an asynchronous step completed; the caller holds a reference
 * (session_hold) and drops it afterwards. */
void session_resume(struct session *s);
/* Enters DATA: creates the queue file; returns 0 or an errno. */
int session_begin_data(struct session *s);
void session_hold(struct session *s);
void session_release(struct session *s);

/* Fills the policy view of the client (address, TLS). */
void session_policy_client(struct session *s, struct policy_client *cl);

/* commands.c: runs one command line. */
void commands_dispatch(struct session *s, char *line, size_t len);
/* commands.c: the greeting at session start (after the PROXY header, if any). */
void commands_greet(struct session *s);
/* commands.c: "220-" alone, when the greeting pauses (greet_pause_ms). */
void commands_greet_first(struct session *s);

#endif
