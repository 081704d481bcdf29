/* fuzz_datastream: the DATA byte stream of src/smtp/datastream.h (ds_init, ds_feed).
 *
 * Input: a header, then the bytes a client sends after "354".
 *   byte 0        max_size: 0xff unlimited, else the byte squared (0..64516)
 *   byte 1        k = byte & 15, the number of chunk-size bytes that follow
 *   bytes 2..k+1  chunk sizes, used in turn until the stream is fed (0: an empty feed)
 * The stream is fed twice, in those chunks and whole, each chunk an exact-size heap copy
 * with an out buffer of exactly len + 2 (the room the header promises), and checked against
 * a reference written differently (lookahead over the whole stream, no state machine):
 * both feeds and the reference must agree on the end, bytes consumed, flags, size and output.
 * Per call: consumed <= len, DS_MORE takes everything, DS_END takes at least one byte, no
 * output once a flag is set, flags never clear; overall: output <= input, output <= max. */
#include "fuzz.h"
#include "smtp/datastream.h"

#define HDR_FIXED 2
#define CUTS_MASK 0x0f

struct run {
	int ended;
	size_t consumed;
	unsigned flags;
	uint64_t size;
	char *out; /* the message as written to the queue */
	size_t outlen;
};

static uint64_t max_size_of(uint8_t b)
{
	return b == 0xff ? UINT64_MAX : (uint64_t)b * b;
}

/* One ds_feed call on exact-size buffers, with the per-call contract checked. */
static enum ds_result feed_once(struct datastream *ds, const uint8_t *in, size_t len,
				struct run *r)
{
	char *chunk = fuzz_dup(in, len);
	char *out = malloc(len + 2);
	size_t used = (size_t)-1, outlen = (size_t)-1;
	unsigned flags_before = ds->flags;
	uint64_t size_before = ds->size;

	if (!out)
		abort();
	enum ds_result res = ds_feed(ds, chunk, len, &used, out, &outlen);
	FUZZ_CHECK(res == DS_MORE || res == DS_END);
	FUZZ_CHECK(used <= len);
	FUZZ_CHECK(res == DS_END ? used >= 1 : used == len);
	/* one pending CR (or ".\r") from the call before may come out with this call's bytes */
	FUZZ_CHECK(outlen <= used + 1 && outlen <= len + 2);
	FUZZ_CHECK((ds->flags & flags_before) == flags_before);
	FUZZ_CHECK(flags_before == 0 || outlen == 0);
	FUZZ_CHECK(ds->size >= size_before && ds->size - size_before >= outlen);
	FUZZ_CHECK(ds->size - size_before <= used + 1);
	memcpy(r->out + r->outlen, out, outlen);
	r->outlen += outlen;
	r->consumed += used;
	free(out);
	free(chunk);
	return res;
}

static void run_feeds(const uint8_t *in, size_t len, const uint8_t *cuts, size_t ncuts,
		      uint64_t max_size, struct run *r)
{
	struct datastream ds;
	size_t off = 0, ci = 0;

	memset(r, 0, sizeof(*r));
	r->out = malloc(len + 1);
	if (!r->out)
		abort();
	ds_init(&ds, max_size);
	if (len == 0)
		FUZZ_CHECK(feed_once(&ds, in, 0, r) == DS_MORE && r->consumed == 0);
	while (off < len) {
		size_t n = ncuts ? cuts[ci++ % ncuts] : len - off;
		if (n > len - off)
			n = len - off;
		size_t before = r->consumed;
		enum ds_result res = feed_once(&ds, in + off, n, r);
		FUZZ_CHECK(n == 0 || r->consumed > before); /* progress */
		off += n;
		if (res == DS_END) {
			r->ended = 1;
			break;
		}
	}
	FUZZ_CHECK(r->consumed <= len && r->outlen <= r->consumed);
	FUZZ_CHECK(r->outlen <= max_size);
	FUZZ_CHECK(r->outlen <= ds.size);
	FUZZ_CHECK(!!(ds.flags & DS_TOO_BIG) == (ds.size > max_size));
	r->flags = ds.flags;
	r->size = ds.size;
}

/* ---- the reference ------------------------------------------------------------------------ */

struct ref {
	struct run r;
	uint64_t max_size;
	size_t line;
};

static void ref_emit(struct ref *f, const char *b, size_t n)
{
	f->line += n;
	if (f->line > SMTP_TEXT_LINE_MAX)
		f->r.flags |= DS_LINE_TOO_LONG;
	f->r.size += n;
	if (f->r.size > f->max_size)
		f->r.flags |= DS_TOO_BIG;
	if (f->r.flags)
		return;
	memcpy(f->r.out + f->r.outlen, b, n);
	f->r.outlen += n;
}

/* RFC 5321 4.1.1.4 read with lookahead: the first <CRLF>.<CRLF> ends the data (the stream
 * starts just after a CRLF); a dot opening a line is dropped; a CR not followed by LF, or an
 * LF not preceded by CR, flags the message (and is no line end); bytes whose meaning depends
 * on what has not arrived yet (a final CR, a final dot opening a line) stay pending. */
static void reference(const uint8_t *in, size_t n, struct ref *f)
{
	size_t i = 0;
	int bol = 1;

	while (i < n) {
		if (bol && in[i] == '.') {
			if (i + 1 >= n)
				break;
			f->line++; /* the stuffed dot counts toward the line */
			if (in[i + 1] == '\r') {
				if (i + 2 >= n)
					break;
				if (in[i + 2] == '\n') {
					f->r.ended = 1;
					f->r.consumed = i + 3;
					return;
				}
				f->r.flags |= DS_BARE_CR;
				ref_emit(f, "\r", 1);
				i += 2;
			} else {
				i += 1;
			}
			bol = 0;
			continue;
		}
		if (in[i] == '\r') {
			if (i + 1 >= n)
				break;
			if (in[i + 1] == '\n') {
				ref_emit(f, "\r\n", 2);
				f->line = 0;
				bol = 1;
				i += 2;
				continue;
			}
			f->r.flags |= DS_BARE_CR;
			ref_emit(f, "\r", 1);
		} else if (in[i] == '\n') {
			f->r.flags |= DS_BARE_LF;
			f->line = 0;
		} else {
			ref_emit(f, (const char *)&in[i], 1);
		}
		bol = 0;
		i++;
	}
	f->r.consumed = n;
}

static void check_same(const struct run *a, const struct run *b)
{
	FUZZ_CHECK(a->ended == b->ended);
	FUZZ_CHECK(a->consumed == b->consumed);
	FUZZ_CHECK(a->flags == b->flags);
	FUZZ_CHECK(a->size == b->size);
	FUZZ_CHECK(a->outlen == b->outlen);
	FUZZ_CHECK(a->outlen == 0 || memcmp(a->out, b->out, a->outlen) == 0);
}

/* A clean message is lines of CRLF, none longer than the limit (its stuffed dot aside). */
static void check_clean(const struct run *r)
{
	size_t line = 0;

	if (r->flags)
		return;
	for (size_t i = 0; i < r->outlen; i++) {
		line++;
		FUZZ_CHECK(line <= SMTP_TEXT_LINE_MAX);
		if (r->out[i] == '\n') {
			FUZZ_CHECK(i > 0 && r->out[i - 1] == '\r');
			line = 0;
		} else if (r->out[i] == '\r') {
			FUZZ_CHECK(i + 1 == r->outlen || r->out[i + 1] == '\n');
		}
	}
	if (r->ended)
		FUZZ_CHECK(r->outlen == 0 || (r->outlen >= 2 && r->out[r->outlen - 1] == '\n'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR_FIXED)
		return 0;
	uint64_t max_size = max_size_of(data[0]);
	size_t ncuts = data[1] & CUTS_MASK;
	if (size < HDR_FIXED + ncuts)
		return 0;
	const uint8_t *cuts = data + HDR_FIXED;
	const uint8_t *in = cuts + ncuts;
	size_t len = size - HDR_FIXED - ncuts;
	size_t nonzero = 0;

	for (size_t i = 0; i < ncuts; i++)
		nonzero += cuts[i] != 0;
	if (nonzero == 0)
		ncuts = 0; /* only empty feeds would never get through */

	struct run chunked, whole;
	struct ref ref = { .max_size = max_size };
	run_feeds(in, len, cuts, ncuts, max_size, &chunked);
	run_feeds(in, len, NULL, 0, max_size, &whole);
	ref.r.out = malloc(len + 1);
	if (!ref.r.out)
		abort();
	reference(in, len, &ref);
	check_same(&chunked, &whole);
	check_same(&whole, &ref.r);
	check_clean(&whole);
	free(chunked.out);
	free(whole.out);
	free(ref.r.out);
	return 0;
}
