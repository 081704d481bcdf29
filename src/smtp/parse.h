/* parse: pure parsers for SMTP command lines (RFC 5321 section 4.1), no I/O, no state.
 *
 * Verbs are found in one table; MAIL/RCPT arguments are split into a path and ESMTP
 * parameters; paths are checked against the RFC 5321 grammar (Dot-string or Quoted-string
 * local part, domain or address literal, optional source route which is dropped). */
#ifndef MXG_PARSE_H
#define MXG_PARSE_H

#include <stddef.h>

/* RFC 5321 section 4.5.3.1 limits. */
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256
#define SMTP_PARAMS_MAX 16
#define SMTP_PARAM_KEY_MAX 32

enum smtp_verb {
	VERB_HELO, VERB_EHLO, VERB_MAIL, VERB_RCPT, VERB_DATA, VERB_RSET, VERB_NOOP,
	VERB_QUIT, VERB_HELP, VERB_VRFY, VERB_STARTTLS, VERB_UNKNOWN
};

/* Splits "VERB args" (case-insensitive verb, then one or more spaces or end of line). *args_r
 * points into line, after the spaces; "" when there are none. */
enum smtp_verb parse_verb(const char *line, const char **args_r);
const char *parse_verb_name(enum smtp_verb v);

struct mailpath {
	char addr[SMTP_PATH_MAX + 1];     /* local@domain as sent, domain lower-cased; "" for <> */
	char local[SMTP_LOCAL_MAX * 4 + 3]; /* as sent, quotes included */
	char domain[SMTP_DOMAIN_MAX + 1]; /* lower-cased, "[...]" for literals; "" without one */
	int is_null;      /* <> */
	int is_literal;   /* domain is an address literal */
	int quoted_local; /* local part is a Quoted-string */
	int has_utf8;     /* octets >= 0x80 anywhere: needs SMTPUTF8 */
	int had_route;    /* a source route was given (and dropped) */
};

struct esmtp_param {
	char key[SMTP_PARAM_KEY_MAX + 1]; /* upper-cased */
	const char *value;                /* NULL when the parameter has no '=' */
};

enum parse_err {
	PARSE_OK = 0,
	PARSE_ERR_SYNTAX,    /* 501 5.5.4 / 5.1.x: bad argument syntax */
	PARSE_ERR_ADDRESS,   /* 501 5.1.3 (RCPT) / 5.1.7 (MAIL): bad address syntax */
	PARSE_ERR_TOOLONG,   /* 501 5.1.3: address over the RFC 5321 limits */
	PARSE_ERR_PARAM,     /* 501 5.5.4: bad parameter syntax, too many parameters */
};

/* Parses the argument of MAIL ("FROM:<path> params") or RCPT ("TO:<path> params"). prefix is
 * "FROM:" or "TO:"; a space after the colon is tolerated. args is modified (the parameter
 * values point into it). allow_null accepts <>; allow_postmaster accepts <Postmaster> without
 * a domain (RFC 5321 4.5.1). On error *why names the problem for the reply. */
enum parse_err parse_mail_rcpt(char *args, const char *prefix, int allow_null, int allow_postmaster,
			       struct mailpath *path, struct esmtp_param *params, size_t *nparams,
			       const char **why);

/* Checks a HELO/EHLO argument: one word of printable ASCII, at most 255 octets. Deliberately
 * lenient (as Postfix and Exim are by default): many real senders announce bare host names,
 * addresses without brackets or worse, and the name decides nothing here; it is recorded. */
int parse_helo_valid(const char *arg);

/* RFC 3461 DSN parameters. Each returns 1 when the value is well formed. */
#define DSN_ENVID_MAX 100 /* RFC 3461 4.4 */
#define DSN_ORCPT_MAX 500 /* RFC 3461 4.2 */
/* xtext (RFC 3461 4): octets 33..126 except '+' and '=', or "+XX" with upper-case hex. */
int parse_xtext_valid(const char *v, size_t max);
/* RET=FULL or HDRS (any case). */
int parse_ret_valid(const char *v);
/* NOTIFY=NEVER, or a comma list of SUCCESS, FAILURE, DELAY (any case, each at most once). */
int parse_notify_valid(const char *v);
/* ORCPT=addr-type;xtext, addr-type an atom such as rfc822 or utf-8. */
int parse_orcpt_valid(const char *v);

/* Returns 1 for an RFC 5321 Domain (LDH labels; UTF-8 labels when utf8_ok). */
int parse_domain_valid(const char *d, size_t len, int utf8_ok);

#endif
