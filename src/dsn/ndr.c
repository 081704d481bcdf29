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
#include "util/xmalloc.h"

#define MAX_LINE_OCTETS 998 /* RFC 5322 section 2.1.1, without the CRLF */
#define SPLIT_OCTETS 900    /* where an over-long line is cut, with room for an indent */
#define FOLD_WIDTH 78       /* header lines are folded at white space beyond this */
#define WRAP_WIDTH 76       /* human-part paragraphs are wrapped at this many characters */
#define LABEL_COL 20        /* "  Will retry until: " */
#define PARA_INDENT 2
#define HEADLINE_RCPTS_MAX 5 /* more recipients in one group are counted, not listed */
#define EW_CHUNK 45         /* bytes per RFC 2047 encoded word: 60 base64 characters, so
			       "=?utf-8?B?...?=" stays within 75 (RFC 2047 section 2) */
#define MSGID_MAX 250       /* longest Message-ID we echo in In-Reply-To */
#define ENVID_MAX 100       /* RFC 3461 section 4.4 */
#define ADDR_MAX 256        /* RFC 5321 section 4.5.3.1.3 (path) */
#define MTA_NAME_MAX 253
#define BOUNDARY_PREFIX "=_ndr_"

static const char product[] = "mxgate";

/* ---- growable buffer ---------------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_reserve(struct sbuf *b, size_t add)
{
	size_t need = b->len + add + 1;

	if (need <= b->cap)
		return;
	b->cap = b->cap ? b->cap : 256;
	while (b->cap < need)
		b->cap *= 2;
	b->p = xrealloc(b->p, b->cap);
}

static void sb_put(struct sbuf *b, const void *s, size_t n)
{
	sb_reserve(b, n);
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_putc(struct sbuf *b, char c)
{
	sb_put(b, &c, 1);
}

static void sb_spaces(struct sbuf *b, size_t n)
{
	while (n--)
		sb_putc(b, ' ');
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	sb_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void sb_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* The buffer's text, "" when nothing was written yet. */
static const char *sb_str(const struct sbuf *b)
{
	return b->p ? b->p : "";
}

static int has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

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

/* ---- text sanitising ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when there is none:
 * overlong forms, surrogates and code points beyond U+10FFFF are invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp_r)
{
	size_t len;
	uint32_t cp, min;

	if (s[0] < 0x80) {
		*cp_r = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1fu, min = 0x80;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0fu, min = 0x800;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07u, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*cp_r = cp;
	return len;
}

/* A Latin-1 byte (0xa0-0xff) as UTF-8. */
static void put_latin1(struct sbuf *b, unsigned char c)
{
	char u[2] = { (char)(0xc0 | (c >> 6)), (char)(0x80 | (c & 0x3f)) };

	sb_put(b, u, 2);
}

/* Appends s as valid UTF-8 without control characters, for the human part: control
 * characters (C0, DEL, C1) become spaces; bytes that are not valid UTF-8 are read as
 * Latin-1, the most common legacy charset; with latin1 set, every byte is. */
static void put_display(struct sbuf *b, const char *str, size_t n, int latin1)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t len = latin1 ? 0 : utf8_seq(s + i, n - i, &cp);

		if (len == 0 && s[i] >= 0x80) { /* a Latin-1 byte */
			if (s[i] < 0xa0)
				sb_putc(b, ' ');
			else
				put_latin1(b, s[i]);
			i++;
			continue;
		}
		if (len == 0) {
			cp = s[i];
			len = 1;
		}
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0))
			sb_putc(b, ' ');
		else
			sb_put(b, s + i, len);
		i += len;
	}
}

/* Appends s as printable ASCII, for header and delivery-status fields: white space becomes
 * a space, other control and 8-bit bytes '?', so nothing can end or add a field. */
static void put_ascii(struct sbuf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		sb_putc(b, c == '\t' ? ' ' : (c < 0x20 || c >= 0x7f) ? '?' : (char)c);
	}
}

static int has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 1;
	return 0;
}

/* ---- RFC 2047 ----------------------------------------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static int decode_b(const char *s, size_t n, struct sbuf *out)
{
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		int v = s[i] == '=' ? -2 : b64val((unsigned char)s[i]);
		if (v == -2)
			break;
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			sb_putc(out, (char)((acc >> bits) & 0xff));
		}
	}
	return 0;
}

static int decode_q(const char *s, size_t n, struct sbuf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '_') {
			sb_putc(out, ' ');
		} else if (s[i] == '=') {
			int hi, lo;
			if (i + 2 >= n)
				return -1;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			sb_putc(out, (char)(hi * 16 + lo));
			i += 2;
		} else {
			sb_putc(out, s[i]);
		}
	}
	return 0;
}

/* Decodes one encoded word "=?charset?B|Q?text?=" at s (n bytes available) for display;
 * returns its length, or 0 when it is not one or its charset is not one we can convert
 * (UTF-8, US-ASCII, ISO-8859-1): such words are shown as they are. */
static size_t decode_word(const char *s, size_t n, struct sbuf *out)
{
	const char *cs, *q1, *q2, *end;
	struct sbuf raw = { 0 };
	size_t cslen;
	int latin1, rc;

	if (n < 8 || s[0] != '=' || s[1] != '?')
		return 0;
	cs = s + 2;
	if (!(q1 = memchr(cs, '?', n - 2)) || (size_t)(q1 - s) + 3 >= n || q1[2] != '?')
		return 0;
	q2 = q1 + 2;
	if (!(end = memchr(q2 + 1, '?', n - (size_t)(q2 + 1 - s))) || (size_t)(end - s) + 1 >= n ||
	    end[1] != '=')
		return 0;
	cslen = (size_t)(q1 - cs);
	if (memchr(cs, '*', cslen)) /* RFC 2231 language suffix */
		cslen = (size_t)((const char *)memchr(cs, '*', cslen) - cs);
	if ((cslen == 5 && !strncasecmp(cs, "utf-8", 5)) ||
	    (cslen == 8 && !strncasecmp(cs, "us-ascii", 8)))
		latin1 = 0;
	else if ((cslen == 10 && !strncasecmp(cs, "iso-8859-1", 10)) ||
		 (cslen == 6 && !strncasecmp(cs, "latin1", 6)))
		latin1 = 1;
	else
		return 0;
	if (q1[1] == 'B' || q1[1] == 'b')
		rc = decode_b(q2 + 1, (size_t)(end - q2 - 1), &raw);
	else if (q1[1] == 'Q' || q1[1] == 'q')
		rc = decode_q(q2 + 1, (size_t)(end - q2 - 1), &raw);
	else
		rc = -1;
	if (rc == 0)
		put_display(out, sb_str(&raw), raw.len, latin1);
	sb_free(&raw);
	return rc == 0 ? (size_t)(end + 2 - s) : 0;
}

/* Decodes a whole token made of encoded words only; returns 1, or 0 (nothing appended). */
static int decode_token(const char *s, size_t n, struct sbuf *out)
{
	struct sbuf tmp = { 0 };
	size_t off = 0, len;

	while (off < n && (len = decode_word(s + off, n - off, &tmp)) > 0)
		off += len;
	if (off == n && n > 0)
		sb_put(out, sb_str(&tmp), tmp.len);
	sb_free(&tmp);
	return off == n && n > 0;
}

/* An unstructured header value (unfolded) as people should read it: encoded words decoded
 * where we can, white space between adjacent encoded words dropped (RFC 2047 section 6.2),
 * raw 8-bit text taken as UTF-8 (RFC 6532) or else Latin-1. */
static void put_header_display(struct sbuf *out, const char *s, size_t n)
{
	size_t i = 0;
	int prev_encoded = 0;

	while (i < n) {
		size_t ws = i, tok;
		struct sbuf word = { 0 };
		int encoded;

		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		tok = i;
		while (i < n && s[i] != ' ' && s[i] != '\t')
			i++;
		encoded = tok < i && decode_token(s + tok, i - tok, &word);
		if (!(encoded && prev_encoded))
			put_display(out, s + ws, tok - ws, 0);
		if (encoded)
			sb_put(out, sb_str(&word), word.len);
		else
			put_display(out, s + tok, i - tok, 0);
		sb_free(&word);
		prev_encoded = encoded;
	}
}

static void put_base64(struct sbuf *b, const unsigned char *s, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		sb_putc(b, tab[(v >> 18) & 63]);
		sb_putc(b, tab[(v >> 12) & 63]);
		sb_putc(b, i + 1 < n ? tab[(v >> 6) & 63] : '=');
		sb_putc(b, i + 2 < n ? tab[v & 63] : '=');
	}
}

/* Appends valid UTF-8 text as RFC 2047 "B" encoded words separated by spaces, each at most
 * EW_CHUNK bytes of text and never splitting a character. */
static void put_encoded_words(struct sbuf *b, const char *s, size_t n)
{
	size_t off = 0;

	while (off < n) {
		size_t len = n - off < EW_CHUNK ? n - off : EW_CHUNK;
		while (off + len < n && ((unsigned char)s[off + len] & 0xc0) == 0x80)
			len--; /* back to a character boundary */
		if (off)
			sb_putc(b, ' ');
		sb_puts(b, "=?utf-8?B?");
		put_base64(b, (const unsigned char *)s + off, len);
		sb_puts(b, "?=");
		off += len;
	}
}

/* ---- header folding and paragraph wrapping ------------------------------------------ */

static const char *skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Writes "Name: value" CRLF, folding before white space so that lines stay within
 * FOLD_WIDTH where a break is possible. Folding only inserts CRLF, so unfolding gives the
 * value back unchanged (RFC 5322 section 2.2.3). A run without white space longer than a
 * line allows (only from pathological input) is cut with CRLF SP to keep the hard limit. */
static void put_folded(struct sbuf *b, const char *name, const char *value)
{
	size_t col = strlen(name) + 2, n = strlen(value);
	const char *p = skip_ws(value), *end;
	int content = 0; /* the current line holds part of the value */

	while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	end = value + n;
	sb_printf(b, "%s: ", name);
	while (p < end) {
		const char *q = p;
		while (q < end && (*q == ' ' || *q == '\t'))
			q++;
		while (q < end && *q != ' ' && *q != '\t')
			q++;
		if (content && col + (size_t)(q - p) > FOLD_WIDTH) {
			sb_puts(b, "\r\n"); /* p is at white space: the break is a fold */
			col = 0;
		}
		while (col + (size_t)(q - p) > MAX_LINE_OCTETS) {
			size_t room = SPLIT_OCTETS > col ? SPLIT_OCTETS - col : 0;
			sb_put(b, p, room);
			sb_puts(b, "\r\n ");
			p += room;
			col = 1;
		}
		sb_put(b, p, (size_t)(q - p));
		col += (size_t)(q - p);
		content = 1;
		p = q;
	}
	sb_puts(b, "\r\n");
}

static size_t utf8_chars(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

struct line {
	struct sbuf *b;
	size_t col;    /* characters on the current line */
	size_t octets; /* octets on the current line */
	size_t indent; /* of continuation lines */
};

static void line_break(struct line *l)
{
	sb_puts(l->b, "\r\n");
	sb_spaces(l->b, l->indent);
	l->col = l->octets = l->indent;
}

/* Appends a word, cut at character boundaries when it cannot fit even on a line alone. */
static void line_word(struct line *l, const char *w, size_t n)
{
	while (l->octets + n > SPLIT_OCTETS) {
		size_t room = SPLIT_OCTETS > l->octets ? SPLIT_OCTETS - l->octets : 0;
		while (room > 0 && ((unsigned char)w[room] & 0xc0) == 0x80)
			room--;
		sb_put(l->b, w, room);
		w += room;
		n -= room;
		line_break(l); /* leaves room for far more than one character */
	}
	sb_put(l->b, w, n);
	l->col += utf8_chars(w, n);
	l->octets += n;
}

/* Writes prefix, then text (valid UTF-8 without control characters) wrapped at WRAP_WIDTH
 * with continuation lines indented by indent spaces, then CRLF. */
static void put_wrapped(struct sbuf *b, const char *prefix, size_t indent, const char *text)
{
	struct line l = { b, strlen(prefix), strlen(prefix), indent };
	size_t plen = strlen(prefix);
	int first = 1;

	if (!*skip_ws(text)) { /* a label without text: no trailing white space */
		while (plen && prefix[plen - 1] == ' ')
			plen--;
		sb_put(b, prefix, plen);
		sb_puts(b, "\r\n");
		return;
	}
	sb_puts(b, prefix);
	for (const char *p = text; *p;) {
		size_t n, chars;

		while (*p == ' ')
			p++;
		n = strcspn(p, " ");
		if (n == 0)
			break;
		chars = utf8_chars(p, n);
		if (!first && l.col + 1 + chars > WRAP_WIDTH)
			line_break(&l);
		else if (!first)
			line_word(&l, " ", 1);
		line_word(&l, p, n);
		first = 0;
		p += n;
	}
	sb_puts(b, "\r\n");
}

/* "  Label:" padded to LABEL_COL, then the wrapped text. */
static void put_label(struct sbuf *b, const char *label, const char *text)
{
	char prefix[LABEL_COL + 1];

	snprintf(prefix, sizeof(prefix), "%*s%-*s", PARA_INDENT, "", LABEL_COL - PARA_INDENT,
		 label);
	put_wrapped(b, prefix, LABEL_COL, text);
}

/* One line shown verbatim at LABEL_COL (a line of the remote server's reply): only made
 * displayable and cut when it would break the line limit, never re-wrapped. */
static void put_verbatim(struct sbuf *b, const char *s, size_t n)
{
	struct sbuf d = { 0 };
	struct line l = { b, LABEL_COL, LABEL_COL, LABEL_COL };

	put_display(&d, s, n, 0);
	sb_spaces(b, LABEL_COL);
	line_word(&l, sb_str(&d), d.len);
	sb_puts(b, "\r\n");
	sb_free(&d);
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
static int header_get(const char *h, size_t n, const char *name, struct sbuf *out)
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
					sb_putc(out, line[k]);
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
	struct sbuf v = { 0 };
	const char *s, *gt;

	out[0] = '\0';
	if (header_get(h, n, "Message-ID", &v)) {
		s = skip_ws(sb_str(&v));
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
	sb_free(&v);
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
static void put_lines(struct sbuf *b, const char *m, size_t n, int repair)
{
	size_t i = 0;

	while (i < n) {
		const char *nl = memchr(m + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - m) : n, len;

		len = end - i;
		if (len && m[i + len - 1] == '\r')
			len--;
		if (!repair) {
			sb_put(b, m + i, len);
		} else {
			size_t col = 0;
			for (size_t k = 0; k < len; k++, col++) {
				char c = m[i + k];
				if (col >= SPLIT_OCTETS) {
					sb_puts(b, "\r\n\t");
					col = 1;
				}
				sb_putc(b, c == '\0' || c == '\r' ? ' ' : c);
			}
		}
		sb_puts(b, "\r\n");
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

	return n > 0 && n <= ADDR_MAX && !has_control(a) && !strpbrk(a, "<>");
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
	struct sbuf subject;   /* raw, unfolded; empty when absent */
	struct sbuf date;      /* raw Date: value, unfolded */
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

static void put_display_str(struct sbuf *b, const char *s)
{
	put_display(b, s, strlen(s), 0);
}

/* "a", "a and b", "a, b and c", or "N recipients" beyond HEADLINE_RCPTS_MAX. */
static void put_rcpt_list(struct sbuf *b, const struct ndr_ctx *c, size_t g)
{
	size_t n = 0, k = 0;

	for (size_t i = 0; i < c->in->nrcpts; i++)
		n += c->group[i] == g;
	if (n > HEADLINE_RCPTS_MAX) {
		sb_printf(b, "%zu recipients", n);
		return;
	}
	for (size_t i = 0; i < c->in->nrcpts; i++) {
		if (c->group[i] != g)
			continue;
		if (k)
			sb_puts(b, k + 1 == n ? " and " : ", ");
		put_display_str(b, c->in->rcpts[i].rcpt);
		k++;
	}
}

static void human_remote(struct sbuf *b, const struct ndr_rcpt *r)
{
	struct sbuf t = { 0 };

	if (r->remote_mta) {
		put_display_str(&t, r->remote_mta);
		if (r->remote_ip) {
			sb_puts(&t, " [");
			put_display_str(&t, r->remote_ip);
			sb_puts(&t, "]");
		}
		if (r->remote_reply)
			sb_puts(&t, " replied:");
		put_label(b, "Remote server:", sb_str(&t));
	} else if (r->remote_reply) {
		put_label(b, "Remote reply:", "");
	}
	if (r->remote_reply) {
		const char *p = r->remote_reply;
		while (*p) {
			size_t n = strcspn(p, "\r\n");
			if (n)
				put_verbatim(b, p, n);
			p += n;
			p += strspn(p, "\r\n");
		}
	}
	if (r->detail) {
		sb_free(&t);
		put_display_str(&t, r->detail);
		put_label(b, "Error:", sb_str(&t));
	}
	sb_free(&t);
}

static void human_admin(struct sbuf *b, const struct ndr_ctx *c, size_t g, size_t first)
{
	const struct ndr_input *in = c->in;
	const struct dsn_entry *e = dsn_lookup(c->canon[first]);
	char d[NDR_DATE_MAX];
	struct sbuf t = { 0 };

	sb_puts(b, "More information for email administrators\r\n");
	sb_printf(&t, "%s (%s)", c->canon[first], e->title);
	if (in->rcpts[first].action == NDR_ACTION_FAILED && c->canon[first][0] == '4' &&
	    strcmp(c->canon[first], "4.4.7") != 0)
		sb_puts(&t, "; the last error when the queue lifetime ran out");
	put_label(b, "Status code:", sb_str(&t));
	put_label(b, "What it means:", e->admin);
	for (size_t i = first; i < in->nrcpts; i++) {
		const struct ndr_rcpt *r = &in->rcpts[i];
		if (c->group[i] != g)
			continue;
		sb_free(&t);
		put_display_str(&t, r->rcpt);
		put_label(b, "Recipient:", sb_str(&t));
		human_remote(b, r);
		if (r->last_attempt)
			put_label(b, "Last attempt:", human_date(r->last_attempt, d));
		if (r->action == NDR_ACTION_DELAYED && in->retry_until)
			put_label(b, "Will retry until:", human_date(in->retry_until, d));
	}
	sb_free(&t);
	sb_printf(&t, "%s (%s), which accepted the message and tried to deliver it.",
		  in->reporting_mta, product);
	put_label(b, "Reported by:", sb_str(&t));
	if (in->queue_id) {
		sb_free(&t);
		sb_puts(&t, "queue id ");
		put_display_str(&t, in->queue_id);
		put_label(b, "Reference:", sb_str(&t));
	}
	sb_free(&t);
}

static void human_group(struct sbuf *b, const struct ndr_ctx *c, size_t g)
{
	const struct ndr_input *in = c->in;
	size_t first = 0;
	const struct dsn_entry *e;
	struct sbuf t = { 0 };
	char d[NDR_DATE_MAX];
	int delayed;

	while (c->group[first] != g)
		first++;
	delayed = in->rcpts[first].action == NDR_ACTION_DELAYED;
	e = text_entry(c->canon[first], in->rcpts[first].action);
	sb_puts(&t, "Your message to ");
	put_rcpt_list(&t, c, g);
	sb_puts(&t, delayed ? " hasn't been delivered yet." : " couldn't be delivered.");
	put_wrapped(b, "", 0, sb_str(&t));
	sb_puts(b, "\r\n");
	put_wrapped(b, "  ", PARA_INDENT, e->cause);
	sb_puts(b, "\r\n");
	sb_free(&t);
	sb_printf(&t, "Who has to act: %s.", dsn_actor_text(e->actor));
	put_wrapped(b, "", 0, sb_str(&t));
	sb_puts(b, "\r\n");
	sb_puts(b, "How to fix it\r\n");
	sb_free(&t);
	sb_puts(&t, e->fix);
	if (delayed && in->retry_until)
		sb_printf(&t, " It keeps trying until %s.", human_date(in->retry_until, d));
	put_wrapped(b, "  ", PARA_INDENT, sb_str(&t));
	sb_puts(b, "\r\n");
	human_admin(b, c, g, first);
	sb_puts(b, "\r\n");
	sb_free(&t);
}

static void human_original(struct sbuf *b, const struct ndr_ctx *c)
{
	const struct ndr_input *in = c->in;
	struct sbuf t = { 0 };
	char d[NDR_DATE_MAX];

	sb_puts(b, "Original message\r\n");
	if (c->date.len) {
		put_display(&t, sb_str(&c->date), c->date.len, 0);
		put_label(b, "Sent:", skip_ws(sb_str(&t)));
		sb_free(&t);
	}
	sb_printf(&t, "%s by %s", human_date(in->arrival, d), in->reporting_mta);
	put_label(b, "Accepted:", sb_str(&t));
	sb_free(&t);
	put_display_str(&t, in->sender);
	put_label(b, "From:", sb_str(&t));
	sb_free(&t);
	for (size_t i = 0; i < in->nrcpts; i++) {
		if (i)
			sb_puts(&t, ", ");
		put_display_str(&t, in->rcpts[i].rcpt);
	}
	put_label(b, "To:", sb_str(&t));
	sb_free(&t);
	if (c->subject.len)
		put_header_display(&t, sb_str(&c->subject), c->subject.len);
	put_label(b, "Subject:", t.len && *skip_ws(sb_str(&t)) ? skip_ws(sb_str(&t)) : "(none)");
	sb_free(&t);
	if (in->envid) {
		put_display_str(&t, in->envid);
		put_label(b, "Envelope id:", sb_str(&t));
		sb_free(&t);
	}
	put_label(b, "Attached:",
		  c->full ? "the whole message."
		  : c->full_refused
			  ? "its header section only. The whole message was asked for, but it "
			    "can't be returned unchanged (a line longer than 998 octets, a NUL or "
			    "a bare CR)."
			  : "its header section.");
}

static void build_human(struct sbuf *b, const struct ndr_ctx *c)
{
	for (size_t g = 0; g < c->ngroups; g++) {
		if (g)
			sb_puts(b, "------------------------------------------------------------"
				   "------------\r\n\r\n");
		human_group(b, c, g);
	}
	human_original(b, c);
}

/* An address in a delivery-status field: "rfc822; addr" when it is ASCII, else RFC 6533's
 * "utf-8; " with every character other than QCHAR written as \x{HEX}. */
static void put_dsn_addr(struct sbuf *b, const char *type, const char *addr)
{
	const unsigned char *s = (const unsigned char *)addr;
	size_t n = strlen(addr);

	if (!has_8bit(addr, n)) {
		sb_printf(b, "%s; ", type);
		put_ascii(b, addr, n);
		return;
	}
	sb_puts(b, "utf-8; ");
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len = utf8_seq(s + i, n - i, &cp);
		if (len == 0) {
			cp = 0xfffd;
			len = 1;
		}
		if (cp > 0x20 && cp < 0x7f && cp != '+' && cp != '=' && cp != '\\')
			sb_putc(b, (char)cp);
		else
			sb_printf(b, "\\x{%X}", (unsigned)cp);
		i += len;
	}
}

static void put_field(struct sbuf *b, const char *name, struct sbuf *value)
{
	put_folded(b, name, sb_str(value));
	sb_free(value);
}

static void status_orcpt(struct sbuf *b, const char *orcpt)
{
	struct sbuf v = { 0 };
	const char *semi = strchr(orcpt, ';');
	char type[32] = "rfc822";
	const char *addr = orcpt;

	if (semi) {
		size_t tlen = (size_t)(semi - orcpt);
		if (tlen && tlen < sizeof(type) &&
		    strspn(orcpt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") ==
			    tlen)
			snprintf(type, sizeof(type), "%.*s", (int)tlen, orcpt);
		addr = skip_ws(semi + 1);
	}
	if (!*addr)
		return;
	put_dsn_addr(&v, type, addr);
	put_field(b, "Original-Recipient", &v);
}

/* The smtp diagnostic: the reply's lines joined by spaces (RFC 3464 section 2.3.6). */
static void status_diag(struct sbuf *b, const struct ndr_rcpt *r)
{
	struct sbuf v = { 0 };
	const char *p = r->remote_reply;

	if (p) {
		sb_puts(&v, "smtp;");
		while (*p) {
			size_t n = strcspn(p, "\r\n");
			if (n) {
				sb_putc(&v, ' ');
				put_ascii(&v, p, n);
			}
			p += n;
			p += strspn(p, "\r\n");
		}
	} else if (r->detail) {
		sb_puts(&v, "X-mxgate; ");
		put_ascii(&v, r->detail, strlen(r->detail));
	} else {
		return;
	}
	put_field(b, "Diagnostic-Code", &v);
}

static void build_status(struct sbuf *b, const struct ndr_ctx *c)
{
	const struct ndr_input *in = c->in;
	struct sbuf v = { 0 };
	char d[NDR_DATE_MAX];

	if (in->envid) {
		size_t n = strlen(in->envid);
		put_ascii(&v, in->envid, n < ENVID_MAX ? n : ENVID_MAX);
		put_field(b, "Original-Envelope-Id", &v);
	}
	sb_printf(b, "Reporting-MTA: dns; %s\r\n", in->reporting_mta);
	sb_printf(b, "Arrival-Date: %s\r\n", ndr_format_date(in->arrival, d));
	if (in->queue_id) {
		put_ascii(&v, in->queue_id, strlen(in->queue_id));
		put_field(b, "X-Mxgate-Queue-ID", &v);
	}
	for (size_t i = 0; i < in->nrcpts; i++) {
		const struct ndr_rcpt *r = &in->rcpts[i];
		sb_puts(b, "\r\n");
		if (r->orcpt)
			status_orcpt(b, r->orcpt);
		put_dsn_addr(&v, "rfc822", r->rcpt);
		put_field(b, "Final-Recipient", &v);
		sb_printf(b, "Action: %s\r\n",
			  r->action == NDR_ACTION_DELAYED ? "delayed" : "failed");
		sb_printf(b, "Status: %s\r\n", c->canon[i]);
		if (r->remote_mta) {
			sb_puts(&v, "dns; ");
			put_ascii(&v, r->remote_mta, strlen(r->remote_mta));
			put_field(b, "Remote-MTA", &v);
		}
		status_diag(b, r);
		if (r->last_attempt)
			sb_printf(b, "Last-Attempt-Date: %s\r\n", ndr_format_date(r->last_attempt, d));
		if (r->action == NDR_ACTION_DELAYED && in->retry_until)
			sb_printf(b, "Will-Retry-Until: %s\r\n", ndr_format_date(in->retry_until, d));
	}
}

/* The Subject: "Undeliverable: " or "Delayed: " and the original subject: kept as it is
 * when ASCII (encoded words included), else decoded and re-encoded as UTF-8 words. */
static void put_subject(struct sbuf *b, const struct ndr_ctx *c)
{
	struct sbuf v = { 0 }, disp = { 0 };
	const char *raw = skip_ws(sb_str(&c->subject));

	sb_puts(&v, c->in->kind == NDR_DELAY ? "Delayed: " : "Undeliverable: ");
	if (!*raw) {
		sb_puts(&v, "(no subject)");
	} else if (!has_8bit(raw, strlen(raw))) {
		put_ascii(&v, raw, strlen(raw));
	} else {
		put_header_display(&disp, raw, strlen(raw));
		put_encoded_words(&v, sb_str(&disp), disp.len);
	}
	put_field(b, "Subject", &v);
	sb_free(&disp);
}

static int parts_contain(struct sbuf *parts, size_t nparts, const char *s)
{
	for (size_t i = 0; i < nparts; i++)
		if (parts[i].len && memmem(parts[i].p, parts[i].len, s, strlen(s)))
			return 1;
	return 0;
}

/* A boundary that occurs in no part (RFC 2046 section 5.1.1). Each occurrence of the base in
 * the content rules out at most one of the fixed-width suffixes, so the loop ends after at
 * most (occurrences + 1) tries. */
static void choose_boundary(const struct ndr_ctx *c, struct sbuf *parts, size_t nparts,
			    char *out, size_t outsz)
{
	snprintf(out, outsz, BOUNDARY_PREFIX "%s", c->in->token);
	for (uint32_t n = 0; parts_contain(parts, nparts, out); n++)
		snprintf(out, outsz, BOUNDARY_PREFIX "%s.%08x", c->in->token, n);
}

static void build_headers(struct sbuf *b, const struct ndr_ctx *c, const char *boundary,
			  int eightbit)
{
	const struct ndr_input *in = c->in;
	struct sbuf v = { 0 };
	char d[NDR_DATE_MAX];
	struct tm tm;

	sb_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", in->reporting_mta);
	sb_printf(&v, "<%s>", in->sender);
	put_field(b, "To", &v);
	put_subject(b, c);
	sb_printf(b, "Date: %s\r\n", ndr_format_date(in->now, d));
	utc(in->now, &tm);
	sb_printf(b, "Message-ID: <%04d%02d%02d%02d%02d%02d.%s@%s>\r\n", tm.tm_year + 1900,
		  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, in->token,
		  in->reporting_mta);
	if (c->msgid[0]) {
		sb_printf(b, "In-Reply-To: %s\r\n", c->msgid);
		sb_printf(b, "References: %s\r\n", c->msgid);
	}
	sb_puts(b, "Auto-Submitted: auto-replied\r\n");
	sb_puts(b, "MIME-Version: 1.0\r\n");
	sb_printf(&v, "multipart/report; report-type=delivery-status; boundary=\"%s\"", boundary);
	put_field(b, "Content-Type", &v);
	if (eightbit)
		sb_puts(b, "Content-Transfer-Encoding: 8bit\r\n");
	sb_puts(b, "\r\n");
}

static const char *cte(const struct sbuf *part)
{
	return has_8bit(sb_str(part), part->len) ? "8bit" : "7bit";
}

static char *assemble(const struct ndr_ctx *c, struct sbuf *parts, size_t *len_r,
		      unsigned *flags_r)
{
	char boundary[sizeof(BOUNDARY_PREFIX) + NDR_TOKEN_MAX + 16];
	const char *orig_type = c->full ? "message/rfc822" : "text/rfc822-headers";
	struct sbuf out = { 0 };
	unsigned flags = 0;

	choose_boundary(c, parts, 3, boundary, sizeof(boundary));
	for (size_t i = 0; i < 3; i++)
		if (has_8bit(sb_str(&parts[i]), parts[i].len))
			flags |= NDR_NEEDS_8BITMIME;
	if (has_8bit(c->in->sender, strlen(c->in->sender)))
		flags |= NDR_NEEDS_SMTPUTF8 | NDR_NEEDS_8BITMIME;
	build_headers(&out, c, boundary, (flags & NDR_NEEDS_8BITMIME) != 0);
	sb_puts(&out, "This is a delivery status notification in MIME format.\r\n");
	sb_printf(&out, "\r\n--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		  "Content-Transfer-Encoding: %s\r\n\r\n", boundary, cte(&parts[0]));
	sb_put(&out, sb_str(&parts[0]), parts[0].len);
	sb_printf(&out, "\r\n--%s\r\nContent-Type: message/delivery-status\r\n\r\n", boundary);
	sb_put(&out, sb_str(&parts[1]), parts[1].len);
	sb_printf(&out, "\r\n--%s\r\nContent-Type: %s\r\n", boundary, orig_type);
	if (has_8bit(sb_str(&parts[2]), parts[2].len))
		sb_puts(&out, "Content-Transfer-Encoding: 8bit\r\n");
	sb_puts(&out, "\r\n");
	sb_put(&out, sb_str(&parts[2]), parts[2].len);
	sb_printf(&out, "\r\n--%s--\r\n", boundary);
	*len_r = out.len;
	if (flags_r)
		*flags_r = flags;
	return out.p;
}

char *ndr_build(const struct ndr_input *in, size_t *len_r, unsigned *flags_r,
		const char **err_r)
{
	struct ndr_ctx c = { .in = in };
	struct sbuf parts[3] = { { 0 }, { 0 }, { 0 } };
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
		sb_free(&parts[i]);
	sb_free(&c.subject);
	sb_free(&c.date);
	free(c.group);
	free(c.canon);
	*err_r = NULL;
	return out;
}
