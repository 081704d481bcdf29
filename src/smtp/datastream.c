/* datastream: see datastream.h. A five-state machine; inside a line the run of ordinary bytes
 * up to the next CR or LF is found with memchr and copied at once. It was one byte at a time,
 * and then the first entry of the SMTP workers' profile (docs/performance.md). */
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

/* Counts n more octets of the line and of the message; sets the flag of a limit passed. */
static void count(struct datastream *ds, size_t n)
{
	ds->line_len += n;
	if (ds->line_len > SMTP_TEXT_LINE_MAX)
		ds->flags |= DS_LINE_TOO_LONG;
	ds->size += n;
	if (ds->size > ds->max_size)
		ds->flags |= DS_TOO_BIG;
}

/* n octets as one piece (a CRLF stays whole): all written, or none once a flag is set. */
static void emit(struct sink *k, const char *bytes, size_t n)
{
	count(k->ds, n);
	if (k->ds->flags)
		return;
	memcpy(k->out + k->n, bytes, n);
	k->n += n;
}

/* A run of ordinary bytes: writes exactly the prefix that emitting them one by one would write
 * (the bytes before the first one past a limit), sets the same flags. */
static void emit_run(struct sink *k, const char *bytes, size_t n)
{
	struct datastream *ds = k->ds;
	size_t fit = n;

	if (!ds->flags) {
		if (ds->line_len + fit > SMTP_TEXT_LINE_MAX)
			fit = SMTP_TEXT_LINE_MAX - ds->line_len; /* no flag: line_len <= the max */
		if (ds->size + fit > ds->max_size)
			fit = (size_t)(ds->max_size - ds->size);
		memcpy(k->out + k->n, bytes, fit);
		k->n += fit;
	}
	count(ds, n);
}

/* The end of the run of ordinary bytes (neither CR nor LF) that starts at in[i]. */
static size_t text_run_end(const char *in, size_t i, size_t len)
{
	const char *cr = memchr(in + i, '\r', len - i);
	size_t stop = cr ? (size_t)(cr - in) : len;
	const char *lf = memchr(in + i, '\n', stop - i);

	return lf ? (size_t)(lf - in) : stop;
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
		case ST_TEXT:
			if (c == '.' && ds->state == ST_BOL) {
				ds->state = ST_DOT;
			} else if (c == '\r' || c == '\n') {
				text_byte(&k, c);
			} else {
				size_t end = text_run_end(in, i, len);
				emit_run(&k, in + i, end - i);
				ds->state = ST_TEXT;
				i = end - 1;
			}
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
