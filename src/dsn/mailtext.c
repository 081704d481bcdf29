/* mailtext: see mailtext.h. */
#include "dsn/mailtext.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/strutil.h"
#include "util/xmalloc.h"

/* ---- growable buffer ---------------------------------------------------------------- */


static void sb_reserve(struct mt_buf *b, size_t add)
{
	size_t need = b->len + add + 1;

	if (need <= b->cap)
		return;
	b->cap = b->cap ? b->cap : 256;
	while (b->cap < need)
		b->cap *= 2;
	b->p = xrealloc(b->p, b->cap);
}

void mt_put(struct mt_buf *b, const void *s, size_t n)
{
	sb_reserve(b, n);
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void mt_puts(struct mt_buf *b, const char *s)
{
	mt_put(b, s, strlen(s));
}

void mt_putc(struct mt_buf *b, char c)
{
	mt_put(b, &c, 1);
}

static void sb_spaces(struct mt_buf *b, size_t n)
{
	while (n--)
		mt_putc(b, ' ');
}

void mt_printf(struct mt_buf *b, const char *fmt, ...)
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

void mt_free(struct mt_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* The buffer's text, "" when nothing was written yet. */
const char *mt_str(const struct mt_buf *b)
{
	return b->p ? b->p : "";
}

int mt_has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

/* ---- text sanitising ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when there is none:
 * overlong forms, surrogates and code points beyond U+10FFFF are invalid. */
size_t mt_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp_r)
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
static void put_latin1(struct mt_buf *b, unsigned char c)
{
	char u[2] = { (char)(0xc0 | (c >> 6)), (char)(0x80 | (c & 0x3f)) };

	mt_put(b, u, 2);
}

/* Appends s as valid UTF-8 without control characters, for the human part: control
 * characters (C0, DEL, C1) become spaces; bytes that are not valid UTF-8 are read as
 * Latin-1, the most common legacy charset; with latin1 set, every byte is. */
void mt_put_display(struct mt_buf *b, const char *str, size_t n, int latin1)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t len = latin1 ? 0 : mt_utf8_seq(s + i, n - i, &cp);

		if (len == 0 && s[i] >= 0x80) { /* a Latin-1 byte */
			if (s[i] < 0xa0)
				mt_putc(b, ' ');
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
			mt_putc(b, ' ');
		else
			mt_put(b, s + i, len);
		i += len;
	}
}

/* Appends s as printable ASCII, for header and delivery-status fields: white space becomes
 * a space, other control and 8-bit bytes '?', so nothing can end or add a field. */
void mt_put_ascii(struct mt_buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		mt_putc(b, c == '\t' ? ' ' : (c < 0x20 || c >= 0x7f) ? '?' : (char)c);
	}
}

int mt_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return 1;
	return 0;
}

/* ---- RFC 2047 ----------------------------------------------------------------------- */

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

static int decode_b(const char *s, size_t n, struct mt_buf *out)
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
			mt_putc(out, (char)((acc >> bits) & 0xff));
		}
	}
	return 0;
}

static int decode_q(const char *s, size_t n, struct mt_buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '_') {
			mt_putc(out, ' ');
		} else if (s[i] == '=') {
			int hi, lo;
			if (i + 2 >= n)
				return -1;
			hi = str_hexval((unsigned char)s[i + 1]);
			lo = str_hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			mt_putc(out, (char)(hi * 16 + lo));
			i += 2;
		} else {
			mt_putc(out, s[i]);
		}
	}
	return 0;
}

/* Decodes one encoded word "=?charset?B|Q?text?=" at s (n bytes available) for display;
 * returns its length, or 0 when it is not one or its charset is not one we can convert
 * (UTF-8, US-ASCII, ISO-8859-1): such words are shown as they are. */
static size_t decode_word(const char *s, size_t n, struct mt_buf *out)
{
	const char *cs, *q1, *q2, *end;
	struct mt_buf raw = { 0 };
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
		mt_put_display(out, mt_str(&raw), raw.len, latin1);
	mt_free(&raw);
	return rc == 0 ? (size_t)(end + 2 - s) : 0;
}

/* Decodes a whole token made of encoded words only; returns 1, or 0 (nothing appended). */
static int decode_token(const char *s, size_t n, struct mt_buf *out)
{
	struct mt_buf tmp = { 0 };
	size_t off = 0, len;

	while (off < n && (len = decode_word(s + off, n - off, &tmp)) > 0)
		off += len;
	if (off == n && n > 0)
		mt_put(out, mt_str(&tmp), tmp.len);
	mt_free(&tmp);
	return off == n && n > 0;
}

/* An unstructured header value (unfolded) as people should read it: encoded words decoded
 * where we can, white space between adjacent encoded words dropped (RFC 2047 section 6.2),
 * raw 8-bit text taken as UTF-8 (RFC 6532) or else Latin-1. */
void mt_put_header_display(struct mt_buf *out, const char *s, size_t n)
{
	size_t i = 0;
	int prev_encoded = 0;

	while (i < n) {
		size_t ws = i, tok;
		struct mt_buf word = { 0 };
		int encoded;

		while (i < n && (s[i] == ' ' || s[i] == '\t'))
			i++;
		tok = i;
		while (i < n && s[i] != ' ' && s[i] != '\t')
			i++;
		encoded = tok < i && decode_token(s + tok, i - tok, &word);
		if (!(encoded && prev_encoded))
			mt_put_display(out, s + ws, tok - ws, 0);
		if (encoded)
			mt_put(out, mt_str(&word), word.len);
		else
			mt_put_display(out, s + tok, i - tok, 0);
		mt_free(&word);
		prev_encoded = encoded;
	}
}

static void put_base64(struct mt_buf *b, const unsigned char *s, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		mt_putc(b, tab[(v >> 18) & 63]);
		mt_putc(b, tab[(v >> 12) & 63]);
		mt_putc(b, i + 1 < n ? tab[(v >> 6) & 63] : '=');
		mt_putc(b, i + 2 < n ? tab[v & 63] : '=');
	}
}

/* Appends valid UTF-8 text as RFC 2047 "B" encoded words separated by spaces, each at most
 * EW_CHUNK bytes of text and never splitting a character. */
void mt_put_encoded_words(struct mt_buf *b, const char *s, size_t n)
{
	size_t off = 0;

	while (off < n) {
		size_t len = n - off < EW_CHUNK ? n - off : EW_CHUNK;
		while (off + len < n && ((unsigned char)s[off + len] & 0xc0) == 0x80)
			len--; /* back to a character boundary */
		if (off)
			mt_putc(b, ' ');
		mt_puts(b, "=?utf-8?B?");
		put_base64(b, (const unsigned char *)s + off, len);
		mt_puts(b, "?=");
		off += len;
	}
}

/* ---- header folding and paragraph wrapping ------------------------------------------ */

const char *mt_skip_ws(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/* Writes "Name: value" CRLF, folding before white space so that lines stay within
 * FOLD_WIDTH where a break is possible. Folding only inserts CRLF, so unfolding gives the
 * value back unchanged (RFC 5322 section 2.2.3). A run without white space longer than a
 * line allows (only from pathological input) is cut with CRLF SP to keep the hard limit. */
void mt_put_folded(struct mt_buf *b, const char *name, const char *value)
{
	size_t col = strlen(name) + 2, n = strlen(value);
	const char *p = mt_skip_ws(value), *end;
	int content = 0; /* the current line holds part of the value */

	while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
		n--;
	end = value + n;
	mt_printf(b, "%s: ", name);
	while (p < end) {
		const char *q = p;
		while (q < end && (*q == ' ' || *q == '\t'))
			q++;
		while (q < end && *q != ' ' && *q != '\t')
			q++;
		if (content && col + (size_t)(q - p) > FOLD_WIDTH) {
			mt_puts(b, "\r\n"); /* p is at white space: the break is a fold */
			col = 0;
		}
		while (col + (size_t)(q - p) > MAX_LINE_OCTETS) {
			size_t room = SPLIT_OCTETS > col ? SPLIT_OCTETS - col : 0;
			mt_put(b, p, room);
			mt_puts(b, "\r\n ");
			p += room;
			col = 1;
		}
		mt_put(b, p, (size_t)(q - p));
		col += (size_t)(q - p);
		content = 1;
		p = q;
	}
	mt_puts(b, "\r\n");
}

static size_t utf8_chars(const char *s, size_t n)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

struct line {
	struct mt_buf *b;
	size_t col;    /* characters on the current line */
	size_t octets; /* octets on the current line */
	size_t indent; /* of continuation lines */
};

static void line_break(struct line *l)
{
	mt_puts(l->b, "\r\n");
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
		mt_put(l->b, w, room);
		w += room;
		n -= room;
		line_break(l); /* leaves room for far more than one character */
	}
	mt_put(l->b, w, n);
	l->col += utf8_chars(w, n);
	l->octets += n;
}

/* Writes prefix, then text (valid UTF-8 without control characters) wrapped at WRAP_WIDTH
 * with continuation lines indented by indent spaces, then CRLF. */
void mt_put_wrapped(struct mt_buf *b, const char *prefix, size_t indent, const char *text)
{
	struct line l = { b, strlen(prefix), strlen(prefix), indent };
	size_t plen = strlen(prefix);
	int first = 1;

	if (!*mt_skip_ws(text)) { /* a label without text: no trailing white space */
		while (plen && prefix[plen - 1] == ' ')
			plen--;
		mt_put(b, prefix, plen);
		mt_puts(b, "\r\n");
		return;
	}
	mt_puts(b, prefix);
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
	mt_puts(b, "\r\n");
}

/* "  Label:" padded to LABEL_COL, then the wrapped text. */
void mt_put_label(struct mt_buf *b, const char *label, const char *text)
{
	char prefix[LABEL_COL + 1];

	snprintf(prefix, sizeof(prefix), "%*s%-*s", PARA_INDENT, "", LABEL_COL - PARA_INDENT,
		 label);
	mt_put_wrapped(b, prefix, LABEL_COL, text);
}

/* One line shown verbatim at LABEL_COL (a line of the remote server's reply): only made
 * displayable and cut when it would break the line limit, never re-wrapped. */
void mt_put_verbatim(struct mt_buf *b, const char *s, size_t n)
{
	struct mt_buf d = { 0 };
	struct line l = { b, LABEL_COL, LABEL_COL, LABEL_COL };

	mt_put_display(&d, s, n, 0);
	sb_spaces(b, LABEL_COL);
	line_word(&l, mt_str(&d), d.len);
	mt_puts(b, "\r\n");
	mt_free(&d);
}

