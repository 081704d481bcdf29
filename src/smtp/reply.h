/* reply: every SMTP reply leaves through here (style rule 7).
 *
 * A reply is a code, an RFC 3463 enhanced code (after the greeting always: ENHANCEDSTATUSCODES
 * promises it), a text, CRLF. Rejections that policy decided carry a reference id that is also in
 * the log line of that decision, and the gateway's host name (see session_reply_reject). */
#ifndef MXG_REPLY_H
#define MXG_REPLY_H

#include <stddef.h>

/* Longest reply line we send: RFC 5321 4.5.3.1.5 allows 512 octets including CRLF. */
#define SMTP_REPLY_LINE_MAX 512

/* Formats "CODE ENH TEXT\r\n" (enh may be NULL: greeting only). Text longer than a line is
 * split into continuation lines "CODE-ENH ...". Returns the length written into buf. */
size_t reply_format(char *buf, size_t bufsz, int code, const char *enh, const char *text);

/* Formats a multi-line reply from lines[0..n): "CODE-..." for all but the last. */
size_t reply_format_lines(char *buf, size_t bufsz, int code, const char *enh,
			  const char *const *lines, size_t n);

/* The text of a rejection a rule decided: "TEXT (client [IP], HOST, ref REF)". The same
 * function serves the session and `mxgate explain`, so explain shows the exact reply. */
void reply_reject_text(char *out, size_t outsz, const char *text, const char *client_ip,
		       const char *hostname, const char *ref);

#endif
