/* ndr: builds non-delivery reports and delay warnings (RFC 3464 delivery status
 * notifications in an RFC 3462 multipart/report), as complete RFC 5322 messages.
 *
 * Pure: no I/O, no clock, no randomness. The caller passes the time ("now") and a unique
 * token for the report's Message-ID, so the same input always gives the same bytes (the unit
 * tests compare against golden files).
 *
 * The report has three parts:
 *   1. text/plain: for the sender, per group of recipients with the same outcome and status:
 *      what happened, the cause, who has to act, "How to fix it" and "More information for
 *      email administrators" (status code, its meaning, the remote server's reply verbatim),
 *      from the status-code catalog (dsn/catalog.h); then the original message's details;
 *   2. message/delivery-status (RFC 3464 section 2): per-message and per-recipient fields;
 *   3. text/rfc822-headers (the original header section) or, for RET=FULL, message/rfc822.
 *
 * What the caller (the queue manager) decides, not this module (RFC 3461 section 6):
 *   - never ask for a report on a message from the null sender (no bounce loops): the
 *     builder refuses it (returns NULL) as a last line of defence;
 *   - which recipients to include: NOTIFY=NEVER means none, NOTIFY without FAILURE (DELAY)
 *     means the recipient is left out of failure reports (delay warnings);
 *   - sending the result from the null sender (MAIL FROM:<>) to in->sender, with BODY=8BITMIME
 *     or SMTPUTF8 when the returned flags say so. */
#ifndef MXG_DSN_NDR_H
#define MXG_DSN_NDR_H

#include <stddef.h>
#include <time.h>

enum ndr_kind {
	NDR_FAILURE, /* "Undeliverable: ...": at least one recipient failed */
	NDR_DELAY,   /* "Delayed: ...": a warning, every recipient is still being retried */
};

enum ndr_ret {
	NDR_RET_HDRS, /* return the original header section (RET=HDRS or no RET) */
	NDR_RET_FULL, /* return the whole original message (RET=FULL) */
};

enum ndr_action {
	NDR_ACTION_FAILED,  /* permanent failure, or the queue lifetime ran out (then 4.4.7) */
	NDR_ACTION_DELAYED, /* still being retried (needs a class 4 status) */
};

struct ndr_rcpt {
	const char *orcpt;        /* ORCPT as "addr-type;address", xtext already decoded, e.g.
				     "rfc822;bob@acme.example"; NULL when none was given */
	const char *rcpt;         /* final recipient address (the RCPT TO path, no <>) */
	enum ndr_action action;
	const char *status;       /* RFC 3463 code of class 4 or 5. An expired recipient is
				     failed with 4.4.7 and the last reply in remote_reply. */
	const char *remote_mta;   /* host name of the server that answered; NULL when none */
	const char *remote_ip;    /* its address, for the human part; NULL when unknown */
	const char *remote_reply; /* the remote server's reply verbatim; lines of a multi-line
				     reply separated by CRLF or LF; NULL when there was none */
	const char *detail;       /* mxgate's own words when there is no reply, e.g. "connect
				     to 192.0.2.25:25: connection refused"; NULL when none */
	time_t last_attempt;      /* 0 when never attempted */
};

struct ndr_input {
	enum ndr_kind kind;
	const char *reporting_mta; /* this gateway's host name (DNS name characters only) */
	const char *queue_id;      /* the original's queue id, for reference; NULL when none */
	const char *envid;         /* ENVID of the original, xtext decoded; NULL when none */
	const char *sender;        /* the original envelope sender; NULL or "" (the null
				      sender) is refused */
	time_t arrival;            /* when the gateway accepted the original */
	time_t retry_until;        /* NDR_DELAY: when the gateway gives up (Will-Retry-Until) */
	enum ndr_ret ret;
	const char *msg;           /* the original message as queued (header section, blank
				      line, body); not NUL-terminated; may be NULL when msg_len 0 */
	size_t msg_len;
	const struct ndr_rcpt *rcpts;
	size_t nrcpts;             /* 1 .. NDR_RCPTS_MAX */
	time_t now;                /* Date: of the report */
	const char *token;         /* unique per report, [A-Za-z0-9._-]{1,NDR_TOKEN_MAX}: in the
				      Message-ID <YYYYMMDDhhmmss.TOKEN@reporting_mta> and the
				      boundary (which RFC 2046 limits to 70 characters) */
};

#define NDR_RCPTS_MAX 1000
#define NDR_TOKEN_MAX 48

/* Flags returned with a report: what the SMTP transaction sending it must declare. */
#define NDR_NEEDS_8BITMIME 0x1u /* 8-bit bytes in a part: send with BODY=8BITMIME */
#define NDR_NEEDS_SMTPUTF8 0x2u /* a non-ASCII address in a header: send with SMTPUTF8 */

/* Builds the report. Returns the message (CRLF line ends, every line at most 998 octets,
 * NUL-terminated for convenience; the caller frees it) and its length in *len_r, and the
 * NDR_NEEDS_* flags in *flags_r when flags_r is not NULL. Returns NULL with a static reason
 * in *err_r when the input is unusable: the null sender, no recipients, a malformed status
 * code, an action that does not fit the kind or the status class, a malformed reporting MTA
 * or token, or a control character in an address. */
char *ndr_build(const struct ndr_input *in, size_t *len_r, unsigned *flags_r,
		const char **err_r);

/* Formats t as an RFC 5322 date-time in UTC ("Fri, 27 Nov 2026 10:15:02 +0000"), independent
 * of the locale and TZ. Returns out. */
#define NDR_DATE_MAX 32
char *ndr_format_date(time_t t, char out[NDR_DATE_MAX]);

#endif
