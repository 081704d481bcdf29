/* smtpc_proto: the pure parts of the SMTP client, no I/O, no libevent, each testable alone:
 * the reply parser (RFC 5321 4.2, enhanced codes RFC 2034/3463), EHLO keyword lines, the
 * dot-stuffer for DATA (RFC 5321 4.5.2) and the builders of MAIL and RCPT command lines.
 * Internal to src/smtpc/ (and its unit test); the delivery layer uses smtpc.h. */
#ifndef MXG_SMTPC_PROTO_H
#define MXG_SMTPC_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "smtpc/smtpc.h"

/* ---- replies ------------------------------------------------------------------------------ */

enum smtpc_reply_rc {
	SMTPC_REPLY_MORE = 0,      /* a continuation line "DDD-": feed the next line */
	SMTPC_REPLY_DONE = 1,      /* the last line "DDD " or "DDD": the reply is complete */
	SMTPC_REPLY_ESYNTAX = -1,  /* not a reply line (code out of range, bad separator, NUL) */
	SMTPC_REPLY_EMIXED = -2,   /* a line's code differs from the first line's */
	SMTPC_REPLY_ETOOLONG = -3, /* the reply has grown over SMTPC_REPLY_MAX octets */
};

/* One reply being parsed, line by line. After DONE: code, enh (or ""), text. */
struct smtpc_reply {
	int code;
	char enh[SMTPC_ENH_MAX]; /* the first enhanced code found on a line, "" without */
	size_t nlines;
	size_t size;             /* octets so far, each line counted with CRLF */
	size_t text_len;
	char text[SMTPC_TEXT_MAX]; /* line texts without code and enhanced code, '\n' between;
				    * cut (on a byte boundary) when longer */
	/* the text of the line just fed (after code and enhanced code), valid until the next
	 * feed: EHLO keywords are read from here */
	const char *line_text;
	size_t line_len;
};

void smtpc_reply_init(struct smtpc_reply *r);
/* Feeds one line without its line end. Errors are final: init again before reuse. */
enum smtpc_reply_rc smtpc_reply_feed(struct smtpc_reply *r, const char *line, size_t len);
/* Parses one reply from buf (lines ended by CRLF or LF). Returns the rc of the last line fed:
 * DONE with *used_r the octets the reply took, MORE when buf ends before the last line, or an
 * error. */
enum smtpc_reply_rc smtpc_reply_parse(const char *buf, size_t len, struct smtpc_reply *r,
				      size_t *used_r);

/* Fills st from a complete reply: the reply's enhanced code, else "C.0.0" from its code. */
void smtpc_status_from_reply(struct smtpc_status *st, const struct smtpc_reply *r,
			     enum smtpc_stage stage);
/* Fills st with a status the client decided (local = 1). */
void smtpc_status_local(struct smtpc_status *st, int code, const char *enh,
			enum smtpc_stage stage, const char *text);

/* ---- EHLO --------------------------------------------------------------------------------- */

/* Reads one EHLO keyword line (the text of any line but the first): sets the enum smtpc_ext bit
 * it names in *ext and, for "SIZE n", *size_max (0 when SIZE carries no number). Keywords are
 * case-insensitive; unknown ones are ignored. */
void smtpc_ehlo_line(const char *text, size_t len, unsigned *ext, uint64_t *size_max);

/* ---- DATA --------------------------------------------------------------------------------- */

/* Dot-stuffing state across chunks of one body. */
struct smtpc_dot {
	int bol;     /* the next byte starts a line */
	int crlf;    /* the bytes so far end with CRLF (or there are none) */
	int last_cr; /* the last byte was CR */
};

void smtpc_dot_init(struct smtpc_dot *d);
/* Copies in[0..len) to out, doubling a '.' that starts a line (a line starts after any LF,
 * so that a bare LF cannot hide a dot from the server either). out holds 2 * len octets.
 * Returns the octets written. */
size_t smtpc_dot_stuff(struct smtpc_dot *d, const char *in, size_t len, char *out);
/* Writes the end of data: CRLF when the body did not end with one, then ".\r\n". out holds
 * SMTPC_DOT_END_MAX octets. Returns the octets written. */
#define SMTPC_DOT_END_MAX 5
size_t smtpc_dot_end(const struct smtpc_dot *d, char *out);

/* ---- commands ----------------------------------------------------------------------------- */

/* Longest command line built: RCPT with an address, NOTIFY and a 500-octet ORCPT (RFC 3461
 * raises RFC 5321's 512 by that much). */
#define SMTPC_CMD_MAX 1024

/* 1 when addr can go between angle brackets: at most SMTPC_ADDR_MAX - 2 octets, no control
 * bytes, DEL, '<' or '>'. "" is the null sender (is_sender) and never a valid recipient. */
int smtpc_addr_ok(const char *addr, int is_sender);
/* 1 for xtext (RFC 3461 4) of 1..max octets: '!'..'~' except '+' and '=', or "+XX" in hex. */
int smtpc_xtext_ok(const char *s, size_t max);

/* Builds "MAIL FROM:<sender>" with SIZE=, BODY=8BITMIME, SMTPUTF8, RET=, ENVID= as the message
 * needs and ext (enum smtpc_ext bits) allows, and CRLF, into buf (SMTPC_CMD_MAX). An ENVID that
 * is not valid xtext of at most 100 octets is left out. The sender must pass smtpc_addr_ok().
 * Returns the length. */
size_t smtpc_cmd_mail(char *buf, const struct smtpc_msg *m, unsigned ext);
/* Builds "RCPT TO:<addr>" with NOTIFY= and ORCPT= when ext has DSN, and CRLF. An ORCPT that is
 * not "type;xtext" of at most 500 octets is left out. Returns the length. */
size_t smtpc_cmd_rcpt(char *buf, const struct smtpc_rcpt *r, unsigned ext);

#endif
