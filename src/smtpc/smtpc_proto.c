/* smtpc_proto: see smtpc_proto.h. Pure functions: no I/O, no allocation, no globals. */
#include "smtpc/smtpc_proto.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/xtext.h"

/* RFC 3461 4.4 and 4.2. */
#define SMTPC_ENVID_MAX 100
#define SMTPC_ORCPT_MAX 500

/* ---- replies ------------------------------------------------------------------------------ */

void smtpc_reply_init(struct smtpc_reply *r)
{
	r->code = 0;
	r->enh[0] = '\0';
	r->nlines = 0;
	r->size = 0;
	r->text_len = 0;
	r->text[0] = '\0';
	r->line_text = "";
	r->line_len = 0;
}

static int is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 4.2). Returns the code or -1. */
static int reply_code(const char *s)
{
	if (s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '5' || !is_digit(s[2]))
		return -1;
	return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
}

/* 1*3DIGIT at s (at most len octets); returns the count of digits, 0 when none or more than 3. */
static size_t digits_1_3(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && n < 4 && is_digit(s[n]))
		n++;
	return n >= 1 && n <= 3 ? n : 0;
}

/* An enhanced code "class.subject.detail" at the start of s, followed by SP or the end, whose
 * class is the reply code's (RFC 2034 3; a mismatching one is text, as RFC 3463 2 does not let
 * it override the reply). Returns its length without the SP, 0 when there is none. */
static size_t enhanced_code(const char *s, size_t len, int code)
{
	size_t i = 0, n;

	if (len < 5 || s[0] != '0' + code / 100 || s[1] != '.')
		return 0;
	i = 2;
	if (!(n = digits_1_3(s + i, len - i)))
		return 0;
	i += n;
	if (i >= len || s[i] != '.')
		return 0;
	i++;
	if (!(n = digits_1_3(s + i, len - i)))
		return 0;
	i += n;
	if (i < len && s[i] != ' ')
		return 0;
	return i < SMTPC_ENH_MAX ? i : 0;
}

static void text_append(struct smtpc_reply *r, const char *s, size_t len)
{
	size_t room;

	if (r->nlines > 0 && r->text_len + 1 < sizeof(r->text))
		r->text[r->text_len++] = '\n';
	room = sizeof(r->text) - 1 - r->text_len;
	if (len > room)
		len = room;
	memcpy(r->text + r->text_len, s, len);
	r->text_len += len;
	r->text[r->text_len] = '\0';
}

enum smtpc_reply_rc smtpc_reply_feed(struct smtpc_reply *r, const char *line, size_t len)
{
	const char *text;
	size_t tlen, elen;
	int code, last;

	r->size += len + 2;
	if (r->size > SMTPC_REPLY_MAX)
		return SMTPC_REPLY_ETOOLONG;
	if (len < 3 || memchr(line, '\0', len) || (code = reply_code(line)) < 0)
		return SMTPC_REPLY_ESYNTAX;
	if (len > 3 && line[3] != ' ' && line[3] != '-')
		return SMTPC_REPLY_ESYNTAX;
	if (r->nlines > 0 && code != r->code)
		return SMTPC_REPLY_EMIXED;
	r->code = code;
	last = len == 3 || line[3] == ' ';
	text = len > 4 ? line + 4 : "";
	tlen = len > 4 ? len - 4 : 0;
	if ((elen = enhanced_code(text, tlen, code)) > 0) {
		if (r->enh[0] == '\0') {
			memcpy(r->enh, text, elen);
			r->enh[elen] = '\0';
		}
		text += elen < tlen ? elen + 1 : elen;
		tlen -= elen < tlen ? elen + 1 : elen;
	}
	text_append(r, text, tlen);
	r->line_text = text;
	r->line_len = tlen;
	r->nlines++;
	return last ? SMTPC_REPLY_DONE : SMTPC_REPLY_MORE;
}

enum smtpc_reply_rc smtpc_reply_parse(const char *buf, size_t len, struct smtpc_reply *r,
				      size_t *used_r)
{
	size_t pos = 0;

	smtpc_reply_init(r);
	*used_r = 0;
	while (pos < len) {
		const char *lf = memchr(buf + pos, '\n', len - pos);
		size_t end, llen;
		enum smtpc_reply_rc rc;

		if (!lf)
			break;
		end = (size_t)(lf - buf);
		llen = end - pos;
		if (llen > 0 && buf[end - 1] == '\r')
			llen--;
		rc = smtpc_reply_feed(r, buf + pos, llen);
		pos = end + 1;
		if (rc != SMTPC_REPLY_MORE) {
			*used_r = pos;
			return rc;
		}
	}
	return SMTPC_REPLY_MORE;
}

void smtpc_status_from_reply(struct smtpc_status *st, const struct smtpc_reply *r,
			     enum smtpc_stage stage)
{
	if (r->enh[0])
		memcpy(st->enh, r->enh, sizeof(st->enh));
	else
		snprintf(st->enh, sizeof(st->enh), "%d.0.0", r->code / 100);
	st->code = r->code;
	st->local = 0;
	st->stage = stage;
	memcpy(st->text, r->text, r->text_len + 1);
}

void smtpc_status_local(struct smtpc_status *st, int code, const char *enh,
			enum smtpc_stage stage, const char *text)
{
	snprintf(st->enh, sizeof(st->enh), "%s", enh);
	st->code = code;
	st->local = 1;
	st->stage = stage;
	snprintf(st->text, sizeof(st->text), "%s", text);
}

/* ---- EHLO --------------------------------------------------------------------------------- */

static const struct {
	const char *keyword;
	unsigned bit;
} ehlo_keywords[] = {
	{ "PIPELINING", SMTPC_EXT_PIPELINING },
	{ "SIZE", SMTPC_EXT_SIZE },
	{ "8BITMIME", SMTPC_EXT_8BITMIME },
	{ "SMTPUTF8", SMTPC_EXT_SMTPUTF8 },
	{ "DSN", SMTPC_EXT_DSN },
	{ "STARTTLS", SMTPC_EXT_STARTTLS },
	{ "ENHANCEDSTATUSCODES", SMTPC_EXT_ENHANCEDSTATUSCODES },
};

/* "SIZE" [SP number]: the number, 0 when absent or not a number, saturated on overflow. */
static uint64_t size_param(const char *s, size_t len)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < len && s[i] == ' ')
		i++;
	if (i == len || !is_digit(s[i]))
		return 0;
	for (; i < len && is_digit(s[i]); i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return UINT64_MAX;
		v = v * 10 + d;
	}
	return i == len || s[i] == ' ' ? v : 0;
}

void smtpc_ehlo_line(const char *text, size_t len, unsigned *ext, uint64_t *size_max)
{
	const char *sp = memchr(text, ' ', len);
	size_t klen = sp ? (size_t)(sp - text) : len;

	for (size_t i = 0; i < sizeof(ehlo_keywords) / sizeof(ehlo_keywords[0]); i++) {
		if (strlen(ehlo_keywords[i].keyword) != klen ||
		    strncasecmp(text, ehlo_keywords[i].keyword, klen) != 0)
			continue;
		*ext |= ehlo_keywords[i].bit;
		if (ehlo_keywords[i].bit == SMTPC_EXT_SIZE)
			*size_max = size_param(text + klen, len - klen);
		return;
	}
}

/* ---- DATA --------------------------------------------------------------------------------- */

void smtpc_dot_init(struct smtpc_dot *d)
{
	d->bol = 1;
	d->crlf = 1;
	d->last_cr = 0;
}

size_t smtpc_dot_stuff(struct smtpc_dot *d, const char *in, size_t len, char *out)
{
	size_t i = 0, o = 0;

	while (i < len) {
		const char *lf;
		size_t end;

		if (d->bol && in[i] == '.')
			out[o++] = '.';
		lf = memchr(in + i, '\n', len - i);
		end = lf ? (size_t)(lf - in) + 1 : len;
		memcpy(out + o, in + i, end - i);
		o += end - i;
		d->bol = lf != NULL;
		i = end;
	}
	if (len > 0) {
		int prev_cr = len >= 2 ? in[len - 2] == '\r' : d->last_cr;
		d->crlf = in[len - 1] == '\n' && prev_cr;
		d->last_cr = in[len - 1] == '\r';
	}
	return o;
}

size_t smtpc_dot_end(const struct smtpc_dot *d, char *out)
{
	size_t o = 0;

	if (!d->crlf) {
		memcpy(out, "\r\n", 2);
		o = 2;
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

/* ---- commands ----------------------------------------------------------------------------- */

int smtpc_addr_ok(const char *addr, int is_sender)
{
	size_t len = strlen(addr);

	if (len == 0)
		return is_sender;
	if (len > SMTPC_ADDR_MAX - 2)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)addr[i];
		if (ch < 0x20 || ch == 0x7f || ch == '<' || ch == '>')
			return 0;
	}
	return 1;
}

int smtpc_xtext_ok(const char *s, size_t max)
{
	return xtext_valid(s, max);
}

/* "addr-type;xtext", addr-type an atom of letters, digits and '-' (rfc822, utf-8). */
static int orcpt_ok(const char *s)
{
	const char *semi = strchr(s, ';');

	if (!semi || semi == s || strlen(s) > SMTPC_ORCPT_MAX)
		return 0;
	for (const char *p = s; p < semi; p++)
		if (!is_digit(*p) && !(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    *p != '-')
			return 0;
	return smtpc_xtext_ok(semi + 1, SMTPC_ORCPT_MAX);
}

/* Appends a formatted piece; the builders' inputs are bounded so that SMTPC_CMD_MAX holds
 * them all, and snprintf's bound keeps it safe regardless. */
static size_t put(char *buf, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static size_t put(char *buf, size_t off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (off >= SMTPC_CMD_MAX - 1)
		return off;
	va_start(ap, fmt);
	n = vsnprintf(buf + off, SMTPC_CMD_MAX - off, fmt, ap);
	va_end(ap);
	if (n < 0)
		return off;
	return off + (size_t)n < SMTPC_CMD_MAX ? off + (size_t)n : SMTPC_CMD_MAX - 1;
}

size_t smtpc_cmd_mail(char *buf, const struct smtpc_msg *m, unsigned ext)
{
	size_t off = put(buf, 0, "MAIL FROM:<%s>", m->sender);

	if (ext & SMTPC_EXT_SIZE)
		off = put(buf, off, " SIZE=%" PRIu64, m->size ? m->size : m->body_len);
	if (m->needs_8bitmime && (ext & SMTPC_EXT_8BITMIME))
		off = put(buf, off, " BODY=8BITMIME");
	if (m->needs_smtputf8 && (ext & SMTPC_EXT_SMTPUTF8))
		off = put(buf, off, " SMTPUTF8");
	if (ext & SMTPC_EXT_DSN) {
		if (m->ret == SMTPC_RET_FULL || m->ret == SMTPC_RET_HDRS)
			off = put(buf, off, " RET=%s", m->ret == SMTPC_RET_FULL ? "FULL" : "HDRS");
		if (m->envid && smtpc_xtext_ok(m->envid, SMTPC_ENVID_MAX))
			off = put(buf, off, " ENVID=%s", m->envid);
	}
	return put(buf, off, "\r\n");
}

size_t smtpc_cmd_rcpt(char *buf, const struct smtpc_rcpt *r, unsigned ext)
{
	size_t off = put(buf, 0, "RCPT TO:<%s>", r->addr);

	if ((ext & SMTPC_EXT_DSN) && r->notify) {
		if (r->notify & SMTPC_NOTIFY_NEVER) {
			off = put(buf, off, " NOTIFY=NEVER");
		} else {
			static const struct {
				unsigned bit;
				const char *name;
			} kinds[] = { { SMTPC_NOTIFY_SUCCESS, "SUCCESS" },
				      { SMTPC_NOTIFY_FAILURE, "FAILURE" },
				      { SMTPC_NOTIFY_DELAY, "DELAY" } };
			char sep = '=';
			off = put(buf, off, " NOTIFY");
			for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
				if (!(r->notify & kinds[i].bit))
					continue;
				off = put(buf, off, "%c%s", sep, kinds[i].name);
				sep = ',';
			}
			if (sep == '=') /* no known bit: drop the dangling keyword */
				off -= strlen(" NOTIFY");
		}
	}
	if ((ext & SMTPC_EXT_DSN) && r->orcpt && orcpt_ok(r->orcpt))
		off = put(buf, off, " ORCPT=%s", r->orcpt);
	return put(buf, off, "\r\n");
}
