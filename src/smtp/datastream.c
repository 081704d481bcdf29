/* datastream: see datastream.h. One byte at a time through a five-state machine; the common
 * case (inside a line, no CR) copies runs with memchr-free scanning kept simple on purpose. */
#include "smtp/datastream.h"

#include <string.h>

enum ds_state {
	ST_BOL,    /* at the start of a line that followed CRLF */
	ST_TEXT,   /* inside a line, or after a bare LF (which starts no line) */
	ST_CR,     /* CR seen inside a line */
	ST_DOT,    /* "." at the start of a line */
	ST_DOT_CR, /* ".\r" at the start of a line */
};

void ds_init(struct datastream *ds, uint64_t max_size)
{
	memset(ds, 0, sizeof(*ds));
	ds->state = ST_BOL;
	ds->max_size = max_size;
}

struct sink {
	struct datastream *ds;
	char *out;
	size_t n;
};

static void emit(struct sink *k, const char *bytes, size_t n)
{
	struct datastream *ds = k->ds;

	ds->line_len += n;
	if (ds->line_len > SMTP_TEXT_LINE_MAX)
		ds->flags |= DS_LINE_TOO_LONG;
	ds->size += n;
	if (ds->size > ds->max_size)
		ds->flags |= DS_TOO_BIG;
	if (ds->flags)
		return;
	memcpy(k->out + k->n, bytes, n);
	k->n += n;
}

static void text_byte(struct sink *k, char c)
{
	struct datastream *ds = k->ds;

	if (c == '\r') {
		ds->state = ST_CR;
	} else if (c == '\n') {
		ds->flags |= DS_BARE_LF;
		ds->state = ST_TEXT;
		ds->line_len = 0;
	} else {
		emit(k, &c, 1);
		ds->state = ST_TEXT;
	}
}

enum ds_result ds_feed(struct datastream *ds, const char *in, size_t len, size_t *consumed_r,
		       char *out, size_t *outlen_r)
{
	struct sink k = { .ds = ds, .out = out };
	size_t i;

	for (i = 0; i < len; i++) {
		char c = in[i];
		switch (ds->state) {
		case ST_BOL:
			if (c == '.')
				ds->state = ST_DOT;
			else
				text_byte(&k, c);
			break;
		case ST_TEXT:
			text_byte(&k, c);
			break;
		case ST_CR:
			if (c == '\n') {
				emit(&k, "\r\n", 2);
				ds->state = ST_BOL;
				ds->line_len = 0;
			} else {
				ds->flags |= DS_BARE_CR;
				emit(&k, "\r", 1);
				text_byte(&k, c);
			}
			break;
		case ST_DOT:
			ds->line_len++; /* the stuffed dot counts toward the line on the wire */
			if (c == '\r') {
				ds->state = ST_DOT_CR;
			} else {
				/* "\r\n.\n" is the <CRLF>.<LF> smuggling variant: text_byte flags it */
				text_byte(&k, c);
			}
			break;
		case ST_DOT_CR:
			if (c == '\n') {
				*consumed_r = i + 1;
				*outlen_r = k.n;
				return DS_END;
			}
			ds->flags |= DS_BARE_CR; /* ".\r" followed by anything else */
			emit(&k, "\r", 1);
			text_byte(&k, c);
			break;
		}
	}
	*consumed_r = i;
	*outlen_r = k.n;
	return DS_MORE;
}
