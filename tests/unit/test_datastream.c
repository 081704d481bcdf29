/* Unit tests for datastream: end of data, dot-unstuffing, smuggling variants, line and size
 * limits.
 *
 * Every case is fed three ways -- whole, one byte at a time, and split in two at every byte
 * boundary -- and all of them must give the same result: end or not, bytes consumed, bytes
 * out, flags. Each chunk is a heap copy of exactly its length, and the out buffer has exactly
 * the room the header asks for (len + 2), so AddressSanitizer sees any overrun. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/datastream.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define NO_LIMIT UINT64_MAX

struct ds_run {
	int ended;
	size_t consumed; /* total over all chunks */
	char *out;
	size_t outlen;
	unsigned flags;
};

static void run_free(struct ds_run *r)
{
	free(r->out);
	r->out = NULL;
}

/* Feeds in[0..len) in chunks whose lengths are cuts[0..ncuts) (summing to len, or less: the
 * rest then goes in one last chunk); stops feeding at DS_END. */
static void feed_chunks(const char *in, size_t len, const size_t *cuts, size_t ncuts,
			uint64_t max_size, struct ds_run *r)
{
	struct datastream ds;
	size_t off = 0, ci = 0;

	memset(r, 0, sizeof(*r));
	r->out = malloc(len + 3);
	assert_non_null(r->out);
	ds_init(&ds, max_size);
	while (off < len) {
		size_t n = ci < ncuts ? cuts[ci++] : len - off;
		if (n == 0)
			continue;
		char *chunk = malloc(n);
		char *out = malloc(n + 2);
		size_t used = (size_t)-1, outlen = (size_t)-1;
		enum ds_result res;

		assert_non_null(chunk);
		assert_non_null(out);
		memcpy(chunk, in + off, n);
		res = ds_feed(&ds, chunk, n, &used, out, &outlen);
		assert_true(used <= n);
		assert_true(outlen <= n + 2);
		memcpy(r->out + r->outlen, out, outlen);
		r->outlen += outlen;
		r->consumed += used;
		off += n;
		free(chunk);
		free(out);
		if (res == DS_END) {
			assert_true(used >= 1);
			r->ended = 1;
			break;
		}
		/* DS_MORE always takes the whole chunk. */
		assert_int_equal(used, n);
	}
	r->flags = ds.flags;
	r->out[r->outlen] = '\0';
}

static void feed_whole(const char *in, size_t len, uint64_t max_size, struct ds_run *r)
{
	feed_chunks(in, len, NULL, 0, max_size, r);
}

static const char *flag_text(unsigned f, char *buf, size_t sz)
{
	snprintf(buf, sz, "%s%s%s%s%s", f & DS_BARE_LF ? "BARE_LF " : "",
		 f & DS_BARE_CR ? "BARE_CR " : "", f & DS_LINE_TOO_LONG ? "LINE_TOO_LONG " : "",
		 f & DS_TOO_BIG ? "TOO_BIG " : "", f ? "" : "none");
	return buf;
}

static void expect_same(const char *name, const char *how, const struct ds_run *got,
			const struct ds_run *want)
{
	char a[64], b[64];

	if (got->ended != want->ended)
		fail_msg("%s (%s): ended %d, want %d", name, how, got->ended, want->ended);
	if (got->consumed != want->consumed)
		fail_msg("%s (%s): consumed %zu, want %zu", name, how, got->consumed, want->consumed);
	if (got->flags != want->flags)
		fail_msg("%s (%s): flags %s, want %s", name, how, flag_text(got->flags, a, sizeof(a)),
			 flag_text(want->flags, b, sizeof(b)));
	if (got->outlen != want->outlen || memcmp(got->out, want->out, got->outlen) != 0)
		fail_msg("%s (%s): out \"%s\" (%zu), want \"%s\" (%zu)", name, how, got->out,
			 got->outlen, want->out, want->outlen);
}

/* Runs in whole, in 1-byte chunks and in every 2-way split, and compares each with want. */
static void check_all_splits(const char *name, const char *in, size_t len, uint64_t max_size,
			     const struct ds_run *want)
{
	struct ds_run r;
	size_t *ones = malloc((len ? len : 1) * sizeof(*ones));
	char how[64];

	assert_non_null(ones);
	feed_whole(in, len, max_size, &r);
	expect_same(name, "whole", &r, want);
	run_free(&r);

	for (size_t i = 0; i < len; i++)
		ones[i] = 1;
	feed_chunks(in, len, ones, len, max_size, &r);
	expect_same(name, "1-byte chunks", &r, want);
	run_free(&r);
	free(ones);

	for (size_t k = 0; k <= len; k++) {
		size_t cuts[2] = { k, len - k };
		feed_chunks(in, len, cuts, 2, max_size, &r);
		snprintf(how, sizeof(how), "split at %zu", k);
		expect_same(name, how, &r, want);
		run_free(&r);
	}
}

/* ---- the table --------------------------------------------------------------------------- */

#define SMUGGLED "MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@x.example>\r\nDATA\r\n"
#define REST "QUIT\r\n"

struct ds_case {
	const char *name;
	const char *in;
	int ended;
	const char *rest; /* the unconsumed tail of in (when ended) */
	const char *out;
	unsigned flags;
};

static const struct ds_case ds_cases[] = {
	/* Plain ends. */
	{ "one line", "hello\r\n.\r\n", 1, "", "hello\r\n", 0 },
	{ "two lines", "a\r\nb\r\n.\r\n", 1, "", "a\r\nb\r\n", 0 },
	{ "empty message", ".\r\n", 1, "", "", 0 },
	{ "empty message, then a command", ".\r\nMAIL FROM:<a@b.example>\r\n", 1,
	  "MAIL FROM:<a@b.example>\r\n", "", 0 },
	{ "bytes after the end", "a\r\n.\r\n" REST, 1, REST, "a\r\n", 0 },
	{ "pipelined data after the end", "a\r\n.\r\n.\r\n", 1, ".\r\n", "a\r\n", 0 },
	{ "one empty line", "\r\n.\r\n", 1, "", "\r\n", 0 },
	{ "empty lines", "\r\n\r\n\r\n.\r\n", 1, "", "\r\n\r\n\r\n", 0 },
	{ "headers and body", "Subject: x\r\n\r\nbody\r\n.\r\n", 1, "", "Subject: x\r\n\r\nbody\r\n",
	  0 },
	{ "binary octets", "\x01\x7f\x80\xff\r\n.\r\n", 1, "", "\x01\x7f\x80\xff\r\n", 0 },
	/* Not ended yet. */
	{ "nothing", "", 0, NULL, "", 0 },
	{ "line without end", "a\r\n", 0, NULL, "a\r\n", 0 },
	{ "dot pending", "a\r\n.", 0, NULL, "a\r\n", 0 },
	{ "dot CR pending", "a\r\n.\r", 0, NULL, "a\r\n", 0 },
	{ "CR pending", "a\r", 0, NULL, "a", 0 },
	{ "text without CRLF", "abc", 0, NULL, "abc", 0 },
	{ "dot then text", ".x", 0, NULL, "x", 0 },
	/* Dot-unstuffing. */
	{ "stuffed dot", "..x\r\n.\r\n", 1, "", ".x\r\n", 0 },
	{ "stuffed two dots", "...\r\n.\r\n", 1, "", "..\r\n", 0 },
	{ "stuffed lone dot", "..\r\n.\r\n", 1, "", ".\r\n", 0 },
	{ "dot then text at start", ".x\r\n.\r\n", 1, "", "x\r\n", 0 },
	{ "dot then space", ". \r\n.\r\n", 1, "", " \r\n", 0 },
	{ "stuffed dot on later line", "a\r\n..b\r\n.\r\n", 1, "", "a\r\n.b\r\n", 0 },
	{ "stuffed dot line, then end", "a\r\n..\r\n.\r\n", 1, "", "a\r\n.\r\n", 0 },
	{ "dot mid-line kept", "a.b\r\na.\r\n.\r\n", 1, "", "a.b\r\na.\r\n", 0 },
	{ "dot after text is no end", "a.\r\n.\r\n", 1, "", "a.\r\n", 0 },
	/* Smuggling: a fake end, a smuggled transaction, then the real end. The fake end must not
	 * end the data, and the message is flagged; output stops at the flag. */
	{ "LF.LF", "a\n.\n" SMUGGLED "\r\n.\r\n" REST, 1, REST, "a", DS_BARE_LF },
	{ "LF.CRLF", "a\n.\r\n" SMUGGLED "\r\n.\r\n" REST, 1, REST, "a", DS_BARE_LF },
	{ "CR.CR", "a\r.\r" SMUGGLED "\r\n.\r\n" REST, 1, REST, "a", DS_BARE_CR },
	{ "CR.CRLF", "a\r.\r\n" SMUGGLED "\r\n.\r\n" REST, 1, REST, "a", DS_BARE_CR },
	{ "CRLF.LF", "a\r\n.\n" SMUGGLED "\r\n.\r\n" REST, 1, REST, "a\r\n", DS_BARE_LF },
	{ "CRLF.CR", "a\r\n.\r" SMUGGLED "\r\n.\r\n" REST, 1, REST, "a\r\n", DS_BARE_CR },
	{ "LF.CR", "a\n.\r" SMUGGLED "\r\n.\r\n" REST, 1, REST, "a", DS_BARE_LF | DS_BARE_CR },
	{ "CRLF.CRCRLF", "a\r\n.\r\r\n" SMUGGLED "\r\n.\r\n" REST, 1, REST, "a\r\n", DS_BARE_CR },
	{ "LF.LF at start", ".\n" SMUGGLED "\r\n.\r\n" REST, 1, REST, "", DS_BARE_LF },
	{ "dot CR at start", ".\r" SMUGGLED "\r\n.\r\n" REST, 1, REST, "", DS_BARE_CR },
	{ "LF at start", "\n.\n" SMUGGLED "\r\n.\r\n" REST, 1, REST, "", DS_BARE_LF },
	{ "CR at start", "\r.\r\n" SMUGGLED "\r\n.\r\n" REST, 1, REST, "", DS_BARE_CR },
	{ "LF.LF not ended", "a\n.\n" SMUGGLED, 0, NULL, "a", DS_BARE_LF },
	{ "CR.CRLF not ended", "a\r.\r\n" SMUGGLED, 0, NULL, "a", DS_BARE_CR },
	{ "CRLF.LF not ended", "a\r\n.\n" SMUGGLED, 0, NULL, "a\r\n", DS_BARE_LF },
	{ "bare LF mid-line", "ab\ncd\r\n.\r\n", 1, "", "ab", DS_BARE_LF },
	{ "bare CR mid-line", "ab\rcd\r\n.\r\n", 1, "", "ab", DS_BARE_CR },
	{ "bare LF after CRLF", "ab\r\n\ncd\r\n.\r\n", 1, "", "ab\r\n", DS_BARE_LF },
	{ "bare LF then dot line", "ab\n.\r\n\r\n.\r\n", 1, "", "ab", DS_BARE_LF },
	{ "CR CR LF", "ab\r\r\ncd\r\n.\r\n", 1, "", "ab", DS_BARE_CR },
	/* "\r\r\n.\r\n": the second CR and the LF form a real CRLF, so this is a real end. */
	{ "CR then real end", "ab\r\r\n.\r\n" REST, 1, REST, "ab", DS_BARE_CR },
	{ "LF CR LF", "ab\n\r\n.\r\n" REST, 1, REST, "ab", DS_BARE_LF },
	{ "bare LF only", "\n", 0, NULL, "", DS_BARE_LF },
};

static void test_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(ds_cases); i++) {
		const struct ds_case *c = &ds_cases[i];
		size_t len = strlen(c->in);
		struct ds_run want = {
			.ended = c->ended,
			.consumed = c->ended ? len - strlen(c->rest) : len,
			.out = (char *)c->out,
			.outlen = strlen(c->out),
			.flags = c->flags,
		};

		check_all_splits(c->name, c->in, len, NO_LIMIT, &want);
	}
}

/* A NUL octet is message data like any other. */
static void test_nul_octet(void **state)
{
	static const char in[] = "a\0b\r\n.\r\n";
	struct ds_run want = { 1, sizeof(in) - 1, (char *)"a\0b\r\n", 5, 0 };

	(void)state;
	check_all_splits("NUL octet", in, sizeof(in) - 1, NO_LIMIT, &want);
}

/* The stream keeps its state across calls: a fake end followed by more data only ends at the
 * real CRLF.CRLF, however many calls later. */
static void test_ends_only_at_real_end(void **state)
{
	static const char *const fakes[] = { "\n.\n", "\n.\r\n", "\r.\r", "\r.\r\n",
					     "\r\n.\n", "\r\n.\r", "\n.\r" };
	char out[64];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(fakes); i++) {
		struct datastream ds;
		size_t used, outlen;

		ds_init(&ds, NO_LIMIT);
		assert_int_equal(ds_feed(&ds, "x", 1, &used, out, &outlen), DS_MORE);
		if (ds_feed(&ds, fakes[i], strlen(fakes[i]), &used, out, &outlen) != DS_MORE)
			fail_msg("fake end %zu ended the data", i);
		assert_int_equal(used, strlen(fakes[i]));
		/* Whatever follows the fake end is data: flagged, never output. */
		assert_int_equal(ds_feed(&ds, "y\r\n", 3, &used, out, &outlen), DS_MORE);
		assert_int_equal(used, 3);
		assert_int_equal(outlen, 0);
		if (!(ds.flags & (DS_BARE_LF | DS_BARE_CR)))
			fail_msg("fake end %zu: not flagged", i);
		assert_int_equal(ds_feed(&ds, ".\r\nz", 4, &used, out, &outlen), DS_END);
		assert_int_equal(used, 3);
		assert_int_equal(outlen, 0);
	}
}

/* ---- line length ------------------------------------------------------------------------- */

/* Builds prefix + n × 'x' + CRLF + ".\r\n" on the heap. */
static char *line_of(const char *prefix, size_t n, size_t *len_r)
{
	size_t p = strlen(prefix);
	char *s = malloc(p + n + 6);

	assert_non_null(s);
	memcpy(s, prefix, p);
	memset(s + p, 'x', n);
	memcpy(s + p + n, "\r\n.\r\n", 6);
	*len_r = p + n + 5;
	return s;
}

static void check_line(const char *name, const char *prefix, size_t n, const char *out_prefix,
		       size_t out_x, int crlf_out, unsigned flags)
{
	size_t len, olen = strlen(out_prefix);
	char *in = line_of(prefix, n, &len);
	char *want_out = malloc(olen + out_x + 3);
	struct ds_run want;

	assert_non_null(want_out);
	memcpy(want_out, out_prefix, olen);
	memset(want_out + olen, 'x', out_x);
	memcpy(want_out + olen + out_x, crlf_out ? "\r\n" : "", crlf_out ? 3 : 1);
	want = (struct ds_run){ 1, len, want_out, strlen(want_out), flags };
	check_all_splits(name, in, len, NO_LIMIT, &want);
	free(want_out);
	free(in);
}

static void test_line_length(void **state)
{
	(void)state;
	/* 998 octets + CRLF = 1000: the limit. */
	check_line("998", "", 998, "", 998, 1, 0);
	check_line("999", "", 999, "", 999, 0, DS_LINE_TOO_LONG);
	check_line("1000", "", 1000, "", 1000, 0, DS_LINE_TOO_LONG);
	check_line("1001", "", 1001, "", 1000, 0, DS_LINE_TOO_LONG);
	/* On a later line too, and the count restarts after each CRLF. */
	check_line("998 after a line", "abc\r\n", 998, "abc\r\n", 998, 1, 0);
	check_line("999 after a line", "abc\r\n", 999, "abc\r\n", 999, 0, DS_LINE_TOO_LONG);
	check_line("short line then 998", "abc\r\n", 995, "abc\r\n", 995, 1, 0);
	/* The stuffed dot is part of the line on the wire. */
	check_line("stuffed 997", ".", 997, "", 997, 1, 0);
	check_line("stuffed 998", ".", 998, "", 998, 0, DS_LINE_TOO_LONG);
	check_line("stuffed dot-dot 997", "..", 996, ".", 996, 1, 0);
}

static void test_many_lines_at_limit(void **state)
{
	const size_t nlines = 5, line = 998;
	size_t len = nlines * (line + 2) + 3;
	char *in = malloc(len + 1);
	struct ds_run want;

	(void)state;
	assert_non_null(in);
	for (size_t i = 0; i < nlines; i++) {
		memset(in + i * (line + 2), 'y', line);
		memcpy(in + i * (line + 2) + line, "\r\n", 2);
	}
	memcpy(in + nlines * (line + 2), ".\r\n", 4);
	want = (struct ds_run){ 1, len, in, len - 3, 0 };
	check_all_splits("5 lines of 998", in, len, NO_LIMIT, &want);
	free(in);
}

/* ---- max_size ---------------------------------------------------------------------------- */

struct size_case {
	const char *in;
	uint64_t max;
	const char *out;
	unsigned flags;
};

static const struct size_case size_cases[] = {
	{ "abc\r\n.\r\n", 5, "abc\r\n", 0 },
	{ "abc\r\n.\r\n", 6, "abc\r\n", 0 },
	{ "abc\r\n.\r\n", 4, "abc", DS_TOO_BIG },
	{ "abc\r\n.\r\n", 3, "abc", DS_TOO_BIG },
	{ "abc\r\n.\r\n", 2, "ab", DS_TOO_BIG },
	{ "abc\r\n.\r\n", 0, "", DS_TOO_BIG },
	{ ".\r\n", 0, "", 0 },
	{ "\r\n.\r\n", 1, "", DS_TOO_BIG },
	{ "\r\n.\r\n", 2, "\r\n", 0 },
	/* The size is that of the unstuffed message. */
	{ "..\r\n.\r\n", 3, ".\r\n", 0 },
	{ "...\r\n.\r\n", 3, "..", DS_TOO_BIG },
	{ "ab\r\ncd\r\n.\r\n", 6, "ab\r\ncd", DS_TOO_BIG },
	{ "ab\r\ncd\r\n.\r\n", 8, "ab\r\ncd\r\n", 0 },
	/* Flags add up; output has stopped at the first. */
	{ "abc\nd\r\n.\r\n", 2, "ab", DS_TOO_BIG | DS_BARE_LF },
};

static void test_max_size(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(size_cases); i++) {
		const struct size_case *c = &size_cases[i];
		char name[64];
		struct ds_run want = { 1, strlen(c->in), (char *)c->out, strlen(c->out), c->flags };

		snprintf(name, sizeof(name), "size row %zu (max %llu)", i, (unsigned long long)c->max);
		check_all_splits(name, c->in, strlen(c->in), c->max, &want);
	}
}

/* Once a flag is set, nothing more comes out, whatever follows; the data still ends. */
static void test_no_output_after_flag(void **state)
{
	static const char *const tails[] = { "more text\r\n", "..stuffed\r\n", "\r\n\r\n",
					     "\n\r\r\n", "x" };
	char out[64];

	(void)state;
	for (unsigned which = 0; which < 3; which++) {
		for (size_t t = 0; t < ARRAY_LEN(tails); t++) {
			struct datastream ds;
			size_t used, outlen;

			ds_init(&ds, which == 2 ? 1 : NO_LIMIT);
			if (which == 0)
				ds_feed(&ds, "a\nb", 3, &used, out, &outlen);
			else if (which == 1)
				ds_feed(&ds, "a\rb", 3, &used, out, &outlen);
			else
				ds_feed(&ds, "ab", 2, &used, out, &outlen);
			assert_int_not_equal(ds.flags, 0);
			assert_int_equal(ds_feed(&ds, tails[t], strlen(tails[t]), &used, out, &outlen),
					 DS_MORE);
			assert_int_equal(outlen, 0);
			assert_int_equal(ds_feed(&ds, "\r\n.\r\n", 5, &used, out, &outlen), DS_END);
			assert_int_equal(outlen, 0);
			assert_int_equal(used, 5);
		}
	}
}

/* ds_init resets everything, and the out buffer needs at most len + 2 octets: a CR held from
 * the previous call comes out with the LF of this one. */
static void test_held_cr_room(void **state)
{
	struct datastream ds;
	char *out = malloc(3);
	size_t used, outlen;

	(void)state;
	assert_non_null(out);
	ds_init(&ds, 1000);
	assert_int_equal(ds.flags, 0);
	assert_int_equal(ds.size, 0);
	assert_int_equal(ds.line_len, 0);
	assert_int_equal(ds.max_size, 1000);
	assert_int_equal(ds_feed(&ds, "\r", 1, &used, out, &outlen), DS_MORE);
	assert_int_equal(outlen, 0);
	assert_int_equal(ds_feed(&ds, "\n", 1, &used, out, &outlen), DS_MORE);
	assert_int_equal(outlen, 2);
	assert_memory_equal(out, "\r\n", 2);
	assert_int_equal(ds.size, 2);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_nul_octet),
		cmocka_unit_test(test_ends_only_at_real_end),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_many_lines_at_limit),
		cmocka_unit_test(test_max_size),
		cmocka_unit_test(test_no_output_after_flag),
		cmocka_unit_test(test_held_cr_room),
	};

	return cmocka_run_group_tests_name("datastream", tests, NULL, NULL);
}
