/* datastream: the DATA phase as a pure byte-stream state machine (RFC 5321 4.1.1.4, 4.5.2).
 *
 * Input: raw bytes after "354", in chunks of any size. Output: the message with the
 * transparency dots removed. The only end of data is <CRLF>.<CRLF> (the CRLF before the dot
 * may be the one that ended the DATA command). A bare CR or bare LF anywhere is never a line
 * end: it marks the message as rejected, and the stream still runs to the real <CRLF>.<CRLF>,
 * so a message smuggled behind "\n.\n" or "\r.\r\n" stays inside the rejected data. */
#ifndef MXG_DATASTREAM_H
#define MXG_DATASTREAM_H

#include <stddef.h>
#include <stdint.h>

/* RFC 5321 4.5.3.1.6: a text line is at most 1000 octets including CRLF. */
#define SMTP_TEXT_LINE_MAX 1000

enum ds_flag {
	DS_BARE_LF = 1 << 0,
	DS_BARE_CR = 1 << 1,
	DS_LINE_TOO_LONG = 1 << 2,
	DS_TOO_BIG = 1 << 3,
};

struct datastream {
	int state;
	unsigned flags;     /* enum ds_flag; once set, output stops */
	size_t line_len;    /* octets in the current line so far, CRLF included */
	uint64_t size;      /* octets of message output so far */
	uint64_t max_size;  /* DS_TOO_BIG beyond this */
};

void ds_init(struct datastream *ds, uint64_t max_size);

enum ds_result { DS_MORE, DS_END };

/* Consumes in[0..len); stops right after the end-of-data sequence. *consumed_r tells how much
 * was used; the message bytes go to out (room for len + 2 octets), their count to *outlen_r.
 * Nothing is written to out once any flag is set. */
enum ds_result ds_feed(struct datastream *ds, const char *in, size_t len, size_t *consumed_r,
		       char *out, size_t *outlen_r);

#endif
