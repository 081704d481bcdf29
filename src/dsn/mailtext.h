/* mailtext: text for generated mail (reports): a growable buffer, RFC 2047 encoded words in
 * and out, header folding, paragraph wrapping, and sanitising of untrusted bytes so that no
 * input can add a header line or a field. Used by ndr.c; pure, no I/O. */
#ifndef MXG_MAILTEXT_H
#define MXG_MAILTEXT_H

#include <stddef.h>
#include <stdint.h>

#define MAX_LINE_OCTETS 998 /* RFC 5322 section 2.1.1, without the CRLF */
#define SPLIT_OCTETS 900    /* where an over-long line is cut, with room for an indent */
#define FOLD_WIDTH 78       /* header lines are folded at white space beyond this */
#define WRAP_WIDTH 76       /* human-part paragraphs are wrapped at this many characters */
#define LABEL_COL 20        /* "  Will retry until: " */
#define PARA_INDENT 2
#define EW_CHUNK 45         /* bytes per RFC 2047 encoded word: 60 base64 characters, so
			       "=?utf-8?B?...?=" stays within 75 (RFC 2047 section 2) */

struct mt_buf {
	char *p;
	size_t len, cap;
};

void mt_put(struct mt_buf *b, const void *s, size_t n);
void mt_puts(struct mt_buf *b, const char *s);
void mt_putc(struct mt_buf *b, char c);
void mt_printf(struct mt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mt_free(struct mt_buf *b);
const char *mt_str(const struct mt_buf *b);
int mt_has_8bit(const char *s, size_t n);
size_t mt_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp_r);
void mt_put_display(struct mt_buf *b, const char *str, size_t n, int latin1);
void mt_put_ascii(struct mt_buf *b, const char *s, size_t n);
int mt_has_control(const char *s);
void mt_put_header_display(struct mt_buf *out, const char *s, size_t n);
void mt_put_encoded_words(struct mt_buf *b, const char *s, size_t n);
const char *mt_skip_ws(const char *s);
void mt_put_folded(struct mt_buf *b, const char *name, const char *value);
void mt_put_wrapped(struct mt_buf *b, const char *prefix, size_t indent, const char *text);
void mt_put_label(struct mt_buf *b, const char *label, const char *text);
void mt_put_verbatim(struct mt_buf *b, const char *s, size_t n);

#endif
