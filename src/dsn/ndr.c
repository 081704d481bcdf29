/* ndr: see ndr.h. The report is built part by part into growable buffers; the boundary is
 * chosen last, once every part's bytes are known, so that it provably occurs in none of them.
 *
 * Everything that came from outside (the original message, addresses, ENVID, ORCPT, the
 * remote server's reply) is untrusted: it is sanitised before it lands in a header or a
 * delivery-status field (no control characters, so no field or header injection), made valid
 * UTF-8 before it lands in the human part, and every output line is kept within the 998
 * octets of RFC 5322 section 2.1.1. */
#include "dsn/ndr.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dsn/catalog.h"
#include "dsn/mailtext.h"
#include "util/xmalloc.h"

#define HEADLINE_RCPTS_MAX 5 /* more recipients in one group are counted, not listed */
#define MSGID_MAX 250       /* longest Message-ID we echo in In-Reply-To */
#define ENVID_MAX 100       /* RFC 3461 section 4.4 */
#define ADDR_MAX 256        /* RFC 5321 section 4.5.3.1.3 (path) */
#define MTA_NAME_MAX 253
#define BOUNDARY_PREFIX "=_ndr_"

static const char product[] = "mxgate";

/* ---- dates -------------------------------------------------------------------------- */

static void utc(time_t t, struct tm *tm)
{
	if (!gmtime_r(&t, tm)) {
		memset(tm, 0, sizeof(*tm));
		tm->tm_mday = 1;
		tm->tm_year = 70;
		tm->tm_wday = 4;
	}
}

char *ndr_format_date(time_t t, char out[NDR_DATE_MAX])
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	utc(t, &tm);
	snprintf(out, NDR_DATE_MAX, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
		 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
	return out;
}

/* "2026-11-27 10:15:01 UTC", for people. */
static char *human_date(time_t t, char out[NDR_DATE_MAX])
{
	struct tm tm;

	utc(t, &tm);
	snprintf(out, NDR_DATE_MAX, "%04d-%02d-%02d %02d:%02d:%02d UTC", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	return out;
}

/* ---- the original message ----------------------------------------------------------- */

/* Length of the header section: up to the first empty line, or everything. */
static size_t header_section_len(const char *m, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (m[i] == '\n')
			return i;
		if (m[i] == '\r' && i + 1 < n && m[i + 1] == '\n')
			return i;
		const char *nl = memchr(m + i, '\n', n - i);
		if (!nl)
			return n;
		i = (size_t)(nl - m) + 1;
	}
	return n;
}

/* Finds the first header field called name and appends its unfolded value (line ends
 * removed, leading white space trimmed) to out. Returns 1 when found. */
static int header_get(const char *h, size_t n, const char *name, struct mt_buf *out)
{
	size_t nlen = strlen(name), i = 0;

	while (i < n) {
		const char *line = h + i, *nl = memchr(line, '\n', n - i);
		size_t llen = nl ? (size_t)(nl - line) + 1 : n - i;
		size_t k = nlen;

		i += llen;
		if (llen <= nlen || strncasecmp(line, name, nlen) != 0)
			continue;
		while (k < llen && (line[k] == ' ' || line[k] == '\t'))
			k++;
		if (k >= llen || line[k] != ':')
			continue;
		k++;
		for (;;) {
			for (; k < llen; k++)
				if (line[k] != '\r' && line[k] != '\n')
					mt_putc(out, line[k]);
			if (i >= n || (h[i] != ' ' && h[i] != '\t'))
				break;
			line = h + i;
			nl = memchr(line, '\n', n - i);
			llen = nl ? (size_t)(nl - line) + 1 : n - i;
			i += llen;
			k = 0;
		}
		return 1;
	}
	return 0;
}

/* The original's Message-ID as "<...>" when it is a well-formed msg-id, else "". */
static void extract_msgid(const char *h, size_t n, char out[MSGID_MAX + 1])
{
	struct mt_buf v = { 0 };
	const char *s, *gt;

	out[0] = '\0';
	if (header_get(h, n, "Message-ID", &v)) {
		s = mt_skip_ws(mt_str(&v));
		gt = strchr(s, '>');
		if (s[0] == '<' && gt && (size_t)(gt - s) + 1 <= MSGID_MAX &&
		    memchr(s, '@', (size_t)(gt - s))) {
			int ok = 1;
			for (const char *p = s + 1; p < gt; p++)
				if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '<')
					ok = 0;
			if (ok)
				snprintf(out, MSGID_MAX + 1, "%.*s", (int)(gt - s) + 1, s);
		}
	}
	mt_free(&v);
}

/* Whether the whole message can be returned unchanged: no NUL, no bare CR, and lines within
 * the limit. (mxgate refuses bare CR and LF at DATA; LF line ends are tolerated here and
 * written as CRLF.) */
static int message_intact(const char *m, size_t n)
{
	size_t linelen = 0;

	for (size_t i = 0; i < n; i++) {
		if (m[i] == '\0' || (m[i] == '\r' && (i + 1 >= n || m[i + 1] != '\n')))
			return 0;
		if (m[i] == '\n') {
			linelen = 0;
		} else if (m[i] != '\r' && ++linelen > MAX_LINE_OCTETS) {
			return 0;
		}
	}
	return 1;
}

/* Appends m with CRLF line ends (and a final CRLF). With repair set, NUL and bare CR become
 * spaces and over-long lines are folded with CRLF TAB (header sections only). */
static void put_lines(struct mt_buf *b, const char *m, size_t n, int repair)
{
	size_t i = 0;

	while (i < n) {
		const char *nl = memchr(m + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - m) : n, len;

		len = end - i;
		if (len && m[i + len - 1] == '\r')
			len--;
		if (!repair) {
			mt_put(b, m + i, len);
		} else {
			size_t col = 0;
			for (size_t k = 0; k < len; k++, col++) {
				char c = m[i + k];
				if (col >= SPLIT_OCTETS) {
					mt_puts(b, "\r\n\t");
					col = 1;
				}
				mt_putc(b, c == '\0' || c == '\r' ? ' ' : c);
			}
		}
		mt_puts(b, "\r\n");
		i = end + 1;
	}
}

/* ---- input checks ------------------------------------------------------------------- */

static int valid_token(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	if (n == 0 || n > NDR_TOKEN_MAX)
		return 0;
	return strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int valid_mta(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > MTA_NAME_MAX)
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int valid_addr(const char *a)
{
	size_t n = a ? strlen(a) : 0;

	return n > 0 && n <= ADDR_MAX && !mt_has_control(a) && !strpbrk(a, "<>");
}

static const char *check_rcpt(const struct ndr_input *in, const struct ndr_rcpt *r,
			      char canon[DSN_CODE_MAX + 1])
{
	if (!valid_addr(r->rcpt))
		return "a recipient address is missing, too long, or has control characters";
	if (dsn_code_canon(r->status, canon) < 0 || canon[0] == '2')
		return "a recipient status is not an RFC 3463 code of class 4 or 5";
	if (r->action == NDR_ACTION_DELAYED && canon[0] != '4')
		return "a delayed recipient needs a class 4 status";
	if (r->action != NDR_ACTION_DELAYED && r->action != NDR_ACTION_FAILED)
		return "a recipient action is neither failed nor delayed";
	if (in->kind == NDR_DELAY && r->action != NDR_ACTION_DELAYED)
		return "a delay warning can only report delayed recipients";
	return NULL;
}

static const char *check_input(const struct ndr_input *in, char (*canon)[DSN_CODE_MAX + 1])
{
	int failed = 0;

	if (!in->sender || !in->sender[0])
		return "the original came from the null sender: no report may be sent for it "
		       "(RFC 3461 section 6.2, RFC 5321 section 4.5.5)";
	if (!valid_addr(in->sender))
		return "the sender address is too long or has control characters";
	if (!valid_mta(in->reporting_mta))
		return "the reporting MTA name is missing or not a host name";
	if (!valid_token(in->token))
		return "the report token is missing or has characters other than [A-Za-z0-9._-]";
	if (in->kind != NDR_FAILURE && in->kind != NDR_DELAY)
		return "unknown report kind";
	if (in->msg_len && !in->msg)
		return "the original message is missing";
	for (size_t i = 0; i < in->nrcpts; i++) {
		const char *err = check_rcpt(in, &in->rcpts[i], canon[i]);
		if (err)
			return err;
		failed |= in->rcpts[i].action == NDR_ACTION_FAILED;
	}
	if (in->kind == NDR_FAILURE && !failed)
		return "a failure report needs at least one failed recipient";
	return NULL;
}

/* ---- the report --------------------------------------------------------------------- */

struct ndr_ctx {
	const struct ndr_input *in;
	char (*canon)[DSN_CODE_MAX + 1]; /* canonical status per recipient */
	size_t *group;                   /* group index per recipient */
	size_t ngroups;
	size_t hdr_len;        /* the original's header section */
	struct mt_buf subject;   /* raw, unfolded; empty when absent */
	struct mt_buf date;      /* raw Date: value, unfolded */
	char msgid[MSGID_MAX + 1];
	int full;              /* returning the whole message */
	int full_refused;      /* RET=FULL asked, but the message cannot be returned intact */
};

/* Recipients with the same action and status share one section of the human part. */
static void make_groups(struct ndr_ctx *c)
{
	const struct ndr_input *in = c->in;

	c->group = xcalloc(in->nrcpts, sizeof(*c->group));
	for (size_t i = 0; i < in->nrcpts; i++) {
		size_t j;
		for (j = 0; j < i; j++)
			if (in->rcpts[j].action == in->rcpts[i].action &&
			    strcmp(c->canon[j], c->canon[i]) == 0)
				break;
		c->group[i] = j < i ? c->group[j] : c->ngroups++;
	}
}

/* The catalog entry that explains a recipient to people: a failed recipient with a class 4
 * status was given up on when the queue lifetime ran out, which is what 4.4.7 says. */
static const struct dsn_entry *text_entry(const char *canon, enum ndr_action action)
{
	if (action == NDR_ACTION_FAILED && canon[0] == '4')
		return dsn_lookup("4.4.7");
	return dsn_lookup(canon);
}

static void put_display_str(struct mt_buf *b, const char *s)
{
	mt_put_display(b, s, strlen(s), 0);
}

/* "a", "a and b", "a, b and c", or "N recipients" beyond HEADLINE_RCPTS_MAX. */
static void put_rcpt_list(struct mt_buf *b, const struct ndr_ctx *c, size_t g)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < c->in->nrcpts; i++)
		n += c->group[i] == g;
	if (n > HEADLINE_RCPTS_MAX) {
		mt_printf(b, "%zu recipients", n);
		return;
	}
	for (size_t i = 0; i < c->in->nrcpts; i++) {
		if (c->group[i] != g)
			continue;
		if (k)
			mt_puts(b, k + 1 == n ? " and " : ", ");
		put_display_str(b, c->in->rcpts[i].rcpt);
		k++;
	}
}

static void human_remote(struct mt_buf *b, const struct ndr_rcpt *r)
{
	struct mt_buf t = { 0 };

	if (r->remote_mta) {
		put_display_str(&t, r->remote_mta);
		if (r->remote_ip) {
			mt_puts(&t, " [");
			put_display_str(&t, r->remote_ip);
			mt_puts(&t, "]");
		}
		if (r->remote_reply)
			mt_puts(&t, " replied:");
		mt_put_label(b, "Remote server:", mt_str(&t));
	} else if (r->remote_reply) {
		mt_put_label(b, "Remote reply:", "");
	}
	if (r->remote_reply) {
		const char *p = r->remote_reply;
		while (*p) {
			size_t n = strcspn(p, "\r\n");
			if (n)
				mt_put_verbatim(b, p, n);
			p += n;
			p += strspn(p, "\r\n");
		}
	}
	if (r->detail) {
		mt_free(&t);
		put_display_str(&t, r->detail);
		mt_put_label(b, "Error:", mt_str(&t));
	}
	mt_free(&t);
}

static void human_admin(struct mt_buf *b, const struct ndr_ctx *c, size_t g, size_t first)
{
	const struct ndr_input *in = c->in;
	const struct dsn_entry *e = dsn_lookup(c->canon[first]);
	char d[NDR_DATE_MAX];
	struct mt_buf t = { 0 };

	mt_puts(b, "More information for email administrators\r\n");
	mt_printf(&t, "%s (%s)", c->canon[first], e->title);
	if (in->rcpts[first].action == NDR_ACTION_FAILED && c->canon[first][0] == '4' &&
	    strcmp(c->canon[first], "4.4.7") != 0)
		mt_puts(&t, "; the last error when the queue lifetime ran out");
	mt_put_label(b, "Status code:", mt_str(&t));
	mt_put_label(b, "What it means:", e->admin);
	for (size_t i = first; i < in->nrcpts; i++) {
		const struct ndr_rcpt *r = &in->rcpts[i];
		if (c->group[i] != g)
			continue;
		mt_free(&t);
		put_display_str(&t, r->rcpt);
		mt_put_label(b, "Recipient:", mt_str(&t));
		human_remote(b, r);
		if (r->last_attempt)
			mt_put_label(b, "Last attempt:", human_date(r->last_attempt, d));
		if (r->action == NDR_ACTION_DELAYED && in->retry_until)
			mt_put_label(b, "Will retry until:", human_date(in->retry_until, d));
	}
	mt_free(&t);
	mt_printf(&t, "%s (%s), which accepted the message and tried to deliver it.",
		  in->reporting_mta, product);
	mt_put_label(b, "Reported by:", mt_str(&t));
	if (in->queue_id) {
		mt_free(&t);
		mt_puts(&t, "queue id ");
		put_display_str(&t, in->queue_id);
		mt_put_label(b, "Reference:", mt_str(&t));
	}
	mt_free(&t);
}

static void human_group(struct mt_buf *b, const struct ndr_ctx *c, size_t g)
{
	const struct ndr_input *in = c->in;
	size_t first = 0;
	const struct dsn_entry *e;
	struct mt_buf t = { 0 };
	char d[NDR_DATE_MAX];
	int delayed;

	while (c->group[first] != g)
		first++;
	delayed = in->rcpts[first].action == NDR_ACTION_DELAYED;
	e = text_entry(c->canon[first], in->rcpts[first].action);
	mt_puts(&t, "Your message to ");
	put_rcpt_list(&t, c, g);
	mt_puts(&t, delayed ? " hasn't been delivered yet." : " couldn't be delivered.");
	mt_put_wrapped(b, "", 0, mt_str(&t));
	mt_puts(b, "\r\n");
	mt_put_wrapped(b, "  ", PARA_INDENT, e->cause);
	mt_puts(b, "\r\n");
	mt_free(&t);
	mt_printf(&t, "Who has to act: %s.", dsn_actor_text(e->actor));
	mt_put_wrapped(b, "", 0, mt_str(&t));
	mt_puts(b, "\r\n");
	mt_puts(b, "How to fix it\r\n");
	mt_free(&t);
	mt_puts(&t, e->fix);
	if (delayed && in->retry_until)
		mt_printf(&t, " It keeps trying until %s.", human_date(in->retry_until, d));
	mt_put_wrapped(b, "  ", PARA_INDENT, mt_str(&t));
	mt_puts(b, "\r\n");
	human_admin(b, c, g, first);
	mt_puts(b, "\r\n");
	mt_free(&t);
}

static void human_original(struct mt_buf *b, const struct ndr_ctx *c)
{
	const struct ndr_input *in = c->in;
	struct mt_buf t = { 0 };
	char d[NDR_DATE_MAX];

	mt_puts(b, "Original message\r\n");
	if (c->date.len) {
		mt_put_display(&t, mt_str(&c->date), c->date.len, 0);
		mt_put_label(b, "Sent:", mt_skip_ws(mt_str(&t)));
		mt_free(&t);
	}
	mt_printf(&t, "%s by %s", human_date(in->arrival, d), in->reporting_mta);
	mt_put_label(b, "Accepted:", mt_str(&t));
	mt_free(&t);
	put_display_str(&t, in->sender);
	mt_put_label(b, "From:", mt_str(&t));
	mt_free(&t);
	for (size_t i = 0; i < in->nrcpts; i++) {
		if (i)
			mt_puts(&t, ", ");
		put_display_str(&t, in->rcpts[i].rcpt);
	}
	mt_put_label(b, "To:", mt_str(&t));
	mt_free(&t);
	if (c->subject.len)
		mt_put_header_display(&t, mt_str(&c->subject), c->subject.len);
	mt_put_label(b, "Subject:", t.len && *mt_skip_ws(mt_str(&t)) ? mt_skip_ws(mt_str(&t)) : "(none)");
	mt_free(&t);
	if (in->envid) {
		put_display_str(&t, in->envid);
		mt_put_label(b, "Envelope id:", mt_str(&t));
		mt_free(&t);
	}
	mt_put_label(b, "Attached:",
		  c->full ? "the whole message."
		  : c->full_refused
			  ? "its header section only. The whole message was asked for, but it "
			    "can't be returned unchanged (a line longer than 998 octets, a NUL or "
			    "a bare CR)."
			  : "its header section.");
}

static void build_human(struct mt_buf *b, const struct ndr_ctx *c)
{
	for (size_t g = 0; g < c->ngroups; g++) {
		if (g)
			mt_puts(b, "------------------------------------------------------------"
				   "------------\r\n\r\n");
		human_group(b, c, g);
	}
	human_original(b, c);
}

/* An address in a delivery-status field: "rfc822; addr" when it is ASCII, else RFC 6533's
 * "utf-8; " with every character other than QCHAR written as \x{HEX}. */
static void put_dsn_addr(struct mt_buf *b, const char *type, const char *addr)
{
	const unsigned char *s = (const unsigned char *)addr;
	size_t n = strlen(addr);

	if (!mt_has_8bit(addr, n)) {
		mt_printf(b, "%s; ", type);
		mt_put_ascii(b, addr, n);
		return;
	}
	mt_puts(b, "utf-8; ");
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len = mt_utf8_seq(s + i, n - i, &cp);
		if (len == 0) {
			cp = 0xfffd;
			len = 1;
		}
		if (cp > 0x20 && cp < 0x7f && cp != '+' && cp != '=' && cp != '\\')
			mt_putc(b, (char)cp);
		else
			mt_printf(b, "\\x{%X}", (unsigned)cp);
		i += len;
	}
}

static void put_field(struct mt_buf *b, const char *name, struct mt_buf *value)
{
	mt_put_folded(b, name, mt_str(value));
	mt_free(value);
}

static void status_orcpt(struct mt_buf *b, const char *orcpt)
{
	struct mt_buf v = { 0 };
	const char *semi = strchr(orcpt, ';');
	char type[32] = "rfc822";
	const char *addr = orcpt;

	if (semi) {
		size_t tlen = (size_t)(semi - orcpt);
		if (tlen && tlen < sizeof(type) &&
		    strspn(orcpt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") ==
			    tlen)
			snprintf(type, sizeof(type), "%.*s", (int)tlen, orcpt);
		addr = mt_skip_ws(semi + 1);
	}
	if (!*addr)
		return;
	put_dsn_addr(&v, type, addr);
	put_field(b, "Original-Recipient", &v);
}

/* The smtp diagnostic: the reply's lines joined by spaces (RFC 3464 section 2.3.6). */
static void status_diag(struct mt_buf *b, const struct ndr_rcpt *r)
{
	struct mt_buf v = { 0 };
	const char *p = r->remote_reply;

	if (p) {
		mt_puts(&v, "smtp;");
		while (*p) {
			size_t n = strcspn(p, "\r\n");
			if (n) {
				mt_putc(&v, ' ');
				mt_put_ascii(&v, p, n);
			}
			p += n;
			p += strspn(p, "\r\n");
		}
	} else if (r->detail) {
		mt_puts(&v, "X-mxgate; ");
		mt_put_ascii(&v, r->detail, strlen(r->detail));
	} else {
		return;
	}
	put_field(b, "Diagnostic-Code", &v);
}

static void build_status(struct mt_buf *b, const struct ndr_ctx *c)
{
	const struct ndr_input *in = c->in;
	struct mt_buf v = { 0 };
	char d[NDR_DATE_MAX];

	if (in->envid) {
		size_t n = strlen(in->envid);
		mt_put_ascii(&v, in->envid, n < ENVID_MAX ? n : ENVID_MAX);
		put_field(b, "Original-Envelope-Id", &v);
	}
	mt_printf(b, "Reporting-MTA: dns; %s\r\n", in->reporting_mta);
	mt_printf(b, "Arrival-Date: %s\r\n", ndr_format_date(in->arrival, d));
	if (in->queue_id) {
		mt_put_ascii(&v, in->queue_id, strlen(in->queue_id));
		put_field(b, "X-Mxgate-Queue-ID", &v);
	}
	for (size_t i = 0; i < in->nrcpts; i++) {
		const struct ndr_rcpt *r = &in->rcpts[i];
		mt_puts(b, "\r\n");
		if (r->orcpt)
			status_orcpt(b, r->orcpt);
		put_dsn_addr(&v, "rfc822", r->rcpt);
		put_field(b, "Final-Recipient", &v);
		mt_printf(b, "Action: %s\r\n",
			  r->action == NDR_ACTION_DELAYED ? "delayed" : "failed");
		mt_printf(b, "Status: %s\r\n", c->canon[i]);
		if (r->remote_mta) {
			mt_puts(&v, "dns; ");
			mt_put_ascii(&v, r->remote_mta, strlen(r->remote_mta));
			put_field(b, "Remote-MTA", &v);
		}
		status_diag(b, r);
		if (r->last_attempt)
			mt_printf(b, "Last-Attempt-Date: %s\r\n", ndr_format_date(r->last_attempt, d));
		if (r->action == NDR_ACTION_DELAYED && in->retry_until)
			mt_printf(b, "Will-Retry-Until: %s\r\n", ndr_format_date(in->retry_until, d));
	}
}

/* The Subject: "Undeliverable: " or "Delayed: " and the original subject: kept as it is
 * when ASCII (encoded words included), else decoded and re-encoded as UTF-8 words. */
static void put_subject(struct mt_buf *b, const struct ndr_ctx *c)
{
	struct mt_buf v = { 0 }, disp = { 0 };
	const char *raw = mt_skip_ws(mt_str(&c->subject));

	mt_puts(&v, c->in->kind == NDR_DELAY ? "Delayed: " : "Undeliverable: ");
	if (!*raw) {
		mt_puts(&v, "(no subject)");
	} else if (!mt_has_8bit(raw, strlen(raw))) {
		mt_put_ascii(&v, raw, strlen(raw));
	} else {
		mt_put_header_display(&disp, raw, strlen(raw));
		mt_put_encoded_words(&v, mt_str(&disp), disp.len);
	}
	put_field(b, "Subject", &v);
	mt_free(&disp);
}

static int parts_contain(struct mt_buf *parts, size_t nparts, const char *s)
{
	for (size_t i = 0; i < nparts; i++)
		if (parts[i].len && memmem(parts[i].p, parts[i].len, s, strlen(s)))
			return 1;
	return 0;
}

/* A boundary that occurs in no part (RFC 2046 section 5.1.1). Each occurrence of the base in
 * the content rules out at most one of the fixed-width suffixes, so the loop ends after at
 * most (occurrences + 1) tries. */
static void choose_boundary(const struct ndr_ctx *c, struct mt_buf *parts, size_t nparts,
			    char *out, size_t outsz)
{
	snprintf(out, outsz, BOUNDARY_PREFIX "%s", c->in->token);
	for (uint32_t n = 0; parts_contain(parts, nparts, out); n++)
		snprintf(out, outsz, BOUNDARY_PREFIX "%s.%08x", c->in->token, n);
}

static void build_headers(struct mt_buf *b, const struct ndr_ctx *c, const char *boundary,
			  int eightbit)
{
	const struct ndr_input *in = c->in;
	struct mt_buf v = { 0 };
	char d[NDR_DATE_MAX];
	struct tm tm;

	mt_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", in->reporting_mta);
	mt_printf(&v, "<%s>", in->sender);
	put_field(b, "To", &v);
	put_subject(b, c);
	mt_printf(b, "Date: %s\r\n", ndr_format_date(in->now, d));
	utc(in->now, &tm);
	mt_printf(b, "Message-ID: <%04d%02d%02d%02d%02d%02d.%s@%s>\r\n", tm.tm_year + 1900,
		  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, in->token,
		  in->reporting_mta);
	if (c->msgid[0]) {
		mt_printf(b, "In-Reply-To: %s\r\n", c->msgid);
		mt_printf(b, "References: %s\r\n", c->msgid);
	}
	mt_puts(b, "Auto-Submitted: auto-replied\r\n");
	mt_puts(b, "MIME-Version: 1.0\r\n");
	mt_printf(&v, "multipart/report; report-type=delivery-status; boundary=\"%s\"", boundary);
	put_field(b, "Content-Type", &v);
	if (eightbit)
		mt_puts(b, "Content-Transfer-Encoding: 8bit\r\n");
	mt_puts(b, "\r\n");
}

static const char *cte(const struct mt_buf *part)
{
	return mt_has_8bit(mt_str(part), part->len) ? "8bit" : "7bit";
}

static char *assemble(const struct ndr_ctx *c, struct mt_buf *parts, size_t *len_r,
		      unsigned *flags_r)
{
	char boundary[sizeof(BOUNDARY_PREFIX) + NDR_TOKEN_MAX + 16];
	const char *orig_type = c->full ? "message/rfc822" : "text/rfc822-headers";
	struct mt_buf out = { 0 };
	unsigned flags = 0;

	choose_boundary(c, parts, 3, boundary, sizeof(boundary));
	for (size_t i = 0; i < 3; i++)
		if (mt_has_8bit(mt_str(&parts[i]), parts[i].len))
			flags |= NDR_NEEDS_8BITMIME;
	if (mt_has_8bit(c->in->sender, strlen(c->in->sender)))
		flags |= NDR_NEEDS_SMTPUTF8 | NDR_NEEDS_8BITMIME;
	build_headers(&out, c, boundary, (flags & NDR_NEEDS_8BITMIME) != 0);
	mt_puts(&out, "This is a delivery status notification in MIME format.\r\n");
	mt_printf(&out, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		  "Content-Transfer-Encoding: %s\r\n\r\n", boundary, cte(&parts[0]));
	mt_put(&out, mt_str(&parts[0]), parts[0].len);
	mt_printf(&out, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
	mt_put(&out, mt_str(&parts[1]), parts[1].len);
	mt_printf(&out, "\r\n--%s\r\nContent-Type: %s\r\n", boundary, orig_type);
	if (mt_has_8bit(mt_str(&parts[2]), parts[2].len))
		mt_puts(&out, "Content-Transfer-Encoding: 8bit\r\n");
	mt_puts(&out, "\r\n");
	mt_put(&out, mt_str(&parts[2]), parts[2].len);
	mt_printf(&out, "\r\n--%s--\r\n", boundary);
	*len_r = out.len;
	if (flags_r)
		*flags_r = flags;
	return out.p;
}

char *ndr_build(const struct ndr_input *in, size_t *len_r, unsigned *flags_r,
		const char **err_r)
{
	struct ndr_ctx c = { .in = in };
	struct mt_buf parts[3] = { { 0 }, { 0 }, { 0 } };
	const char *err;
	char *out;

	*len_r = 0;
	if (in->nrcpts == 0 || in->nrcpts > NDR_RCPTS_MAX || !in->rcpts) {
		*err_r = "a report needs at least one recipient and at most NDR_RCPTS_MAX";
		return NULL;
	}
	c.canon = xcalloc(in->nrcpts, sizeof(*c.canon));
	if ((err = check_input(in, c.canon))) {
		free(c.canon);
		*err_r = err;
		return NULL;
	}
	make_groups(&c);
	c.hdr_len = header_section_len(in->msg_len ? in->msg : "", in->msg_len);
	header_get(in->msg, c.hdr_len, "Subject", &c.subject);
	header_get(in->msg, c.hdr_len, "Date", &c.date);
	extract_msgid(in->msg, c.hdr_len, c.msgid);
	c.full = in->ret == NDR_RET_FULL && message_intact(in->msg, in->msg_len);
	c.full_refused = in->ret == NDR_RET_FULL && !c.full;

	build_human(&parts[0], &c);
	build_status(&parts[1], &c);
	if (c.full)
		put_lines(&parts[2], in->msg, in->msg_len, 0);
	else
		put_lines(&parts[2], in->msg, c.hdr_len, 1);
	out = assemble(&c, parts, len_r, flags_r);

	for (size_t i = 0; i < 3; i++)
		mt_free(&parts[i]);
	mt_free(&c.subject);
	mt_free(&c.date);
	free(c.group);
	free(c.canon);
	*err_r = NULL;
	return out;
}
