/* Unit tests for reply: the one place replies are built. Single lines, with and without an
 * enhanced code, long texts split into "CODE-ENH" continuation lines of at most 512 octets
 * (RFC 5321 4.5.3.1.5), and multi-line replies from a list of lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/reply.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BIG 8192

/* ---- single line ------------------------------------------------------------------------- */

struct line_case {
	int code;
	const char *enh, *text, *want;
};

static const struct line_case line_cases[] = {
	{ 250, "2.0.0", "Ok", "250 2.0.0 Ok\r\n" },
	{ 250, "2.1.0", "Sender <a@b.example> ok", "250 2.1.0 Sender <a@b.example> ok\r\n" },
	{ 550, "5.7.1", "Unable to relay", "550 5.7.1 Unable to relay\r\n" },
	{ 421, "4.7.0", "mx.example closing", "421 4.7.0 mx.example closing\r\n" },
	{ 220, NULL, "mx.example ESMTP mxgate", "220 mx.example ESMTP mxgate\r\n" },
	{ 221, NULL, "Bye", "221 Bye\r\n" },
	{ 354, NULL, "End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>\r\n" },
	{ 250, "2.0.0", "", "250 2.0.0 \r\n" },
	{ 250, NULL, "", "250 \r\n" },
	/* Text with % is text, not a format. */
	{ 550, "5.7.1", "100% %s %n", "550 5.7.1 100% %s %n\r\n" },
};

static void test_single_line(void **state)
{
	char buf[1024];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(line_cases); i++) {
		const struct line_case *c = &line_cases[i];
		size_t n;

		memset(buf, 'Z', sizeof(buf));
		n = reply_format(buf, sizeof(buf), c->code, c->enh, c->text);
		if (strcmp(buf, c->want) != 0)
			fail_msg("row %zu: \"%s\", want \"%s\"", i, buf, c->want);
		assert_int_equal(n, strlen(c->want));
	}
}

/* ---- long texts -------------------------------------------------------------------------- */

/* Splits buf into CRLF lines; checks each is at most 512 octets with CRLF, starts with
 * "CODE-ENH " except the last "CODE ENH ", and returns the texts joined with single spaces
 * (which is the original text when it was split at single spaces). */
static size_t check_lines(const char *buf, size_t len, int code, const char *enh, char *joined,
			  size_t *nlines_r)
{
	char head_more[32], head_last[32];
	size_t hlen, off = 0, j = 0, nlines = 0;

	snprintf(head_more, sizeof(head_more), "%03d-%s%s", code, enh ? enh : "", enh ? " " : "");
	snprintf(head_last, sizeof(head_last), "%03d %s%s", code, enh ? enh : "", enh ? " " : "");
	hlen = strlen(head_more);
	assert_int_equal(strlen(buf), len);
	while (off < len) {
		const char *crlf = strstr(buf + off, "\r\n");
		size_t llen;
		int last;

		assert_non_null(crlf);
		llen = (size_t)(crlf - (buf + off)) + 2;
		if (llen > SMTP_REPLY_LINE_MAX)
			fail_msg("line %zu is %zu octets", nlines, llen);
		last = off + llen == len;
		if (strncmp(buf + off, last ? head_last : head_more, hlen) != 0)
			fail_msg("line %zu starts \"%.*s\", want \"%s\"", nlines, (int)hlen, buf + off,
				 last ? head_last : head_more);
		/* No CR or LF inside a line. */
		for (size_t k = off; k < off + llen - 2; k++)
			assert_true(buf[k] != '\r' && buf[k] != '\n');
		if (j)
			joined[j++] = ' ';
		memcpy(joined + j, buf + off + hlen, llen - 2 - hlen);
		j += llen - 2 - hlen;
		off += llen;
		nlines++;
	}
	joined[j] = '\0';
	*nlines_r = nlines;
	return j;
}

/* "word0000 word0001 ...": n words of 8 octets separated by single spaces. */
static char *words(size_t n)
{
	char *s = malloc(n * 9 + 1);

	assert_non_null(s);
	s[0] = '\0';
	for (size_t i = 0; i < n; i++)
		sprintf(s + i * 9, "%sword%04zu", i ? " " : "", i);
	return s;
}

static void test_long_text_split_at_spaces(void **state)
{
	static const struct {
		int code;
		const char *enh;
	} heads[] = { { 550, "5.7.1" }, { 451, "4.3.0" }, { 554, "5.7.26" }, { 220, NULL } };
	static char buf[BIG], joined[BIG];

	(void)state;
	for (size_t h = 0; h < ARRAY_LEN(heads); h++) {
		for (size_t nw = 50; nw <= 400; nw += 7) {
			char *text = words(nw);
			size_t nlines, len = strlen(text);
			size_t n = reply_format(buf, sizeof(buf), heads[h].code, heads[h].enh, text);

			check_lines(buf, n, heads[h].code, heads[h].enh, joined, &nlines);
			if (strcmp(joined, text) != 0)
				fail_msg("%zu words: text changed by the split", nw);
			/* One line when the text fits; otherwise each line but the last is full to
			 * within one word. */
			size_t room = SMTP_REPLY_LINE_MAX - 4 -
				      (heads[h].enh ? strlen(heads[h].enh) + 1 : 0) - 2;
			if ((len <= room) != (nlines == 1))
				fail_msg("%zu words (%zu octets, room %zu): %zu lines", nw, len, room,
					 nlines);
			for (const char *p = buf; p < buf + n;) {
				const char *crlf = strstr(p, "\r\n");
				size_t llen = (size_t)(crlf - p) + 2;
				if (crlf + 2 < buf + n && llen + 9 <= SMTP_REPLY_LINE_MAX)
					fail_msg("%zu words: a line of %zu octets could hold one more word",
						 nw, llen);
				p = crlf + 2;
			}
			free(text);
		}
	}
}

/* 512 - "550 5.7.1 " - CRLF = 500 octets of text fit one line; 501 do not. */
static void test_long_text_edges(void **state)
{
	static char text[2048], buf[BIG], joined[BIG];
	size_t n, nlines;

	(void)state;
	memset(text, 'x', 500);
	text[500] = '\0';
	n = reply_format(buf, sizeof(buf), 550, "5.7.1", text);
	assert_int_equal(n, SMTP_REPLY_LINE_MAX);
	assert_memory_equal(buf, "550 5.7.1 xxx", 13);
	assert_memory_equal(buf + 510, "\r\n", 3);

	/* 501 octets without a space: a hard cut after 500. */
	memset(text, 'x', 501);
	text[501] = '\0';
	n = reply_format(buf, sizeof(buf), 550, "5.7.1", text);
	assert_int_equal(n, SMTP_REPLY_LINE_MAX + 13);
	assert_memory_equal(buf, "550-5.7.1 xxx", 13);
	assert_memory_equal(buf + 510, "\r\n550 5.7.1 x\r\n", 16);

	/* 1200 octets without a space: 500 + 500 + 200. */
	memset(text, 'x', 1200);
	text[1200] = '\0';
	n = reply_format(buf, sizeof(buf), 550, "5.7.1", text);
	assert_int_equal(n, 512 + 512 + 212);
	check_lines(buf, n, 550, "5.7.1", joined, &nlines);
	assert_int_equal(nlines, 3);
	assert_memory_equal(buf + 1024, "550 5.7.1 x", 11);

	/* A space right after the 500th octet: cut there, the space is dropped. */
	memset(text, 'a', 500);
	strcpy(text + 500, " bcd");
	n = reply_format(buf, sizeof(buf), 550, "5.7.1", text);
	assert_int_equal(n, 512 + 15);
	assert_string_equal(buf + 512, "550 5.7.1 bcd\r\n");
	assert_memory_equal(buf + 500, "aaaaaaaaaa\r\n", 12);

	/* Two long words: cut at the space between them. */
	memset(text, 'a', 300);
	text[300] = ' ';
	memset(text + 301, 'b', 300);
	text[601] = '\0';
	n = reply_format(buf, sizeof(buf), 550, "5.7.1", text);
	check_lines(buf, n, 550, "5.7.1", joined, &nlines);
	assert_int_equal(nlines, 2);
	assert_string_equal(joined, text);
	assert_int_equal(n, 10 + 300 + 2 + 10 + 300 + 2);

	/* The only space is in the first half: a hard cut at 500 rather than a short line. */
	memset(text, 'a', 100);
	text[100] = ' ';
	memset(text + 101, 'b', 900);
	text[1001] = '\0';
	n = reply_format(buf, sizeof(buf), 550, "5.7.1", text);
	check_lines(buf, n, 550, "5.7.1", joined, &nlines);
	assert_int_equal(nlines, 3);
	assert_int_equal(n, 512 + 512 + 10 + 1 + 2);
	assert_memory_equal(buf + 10, text, 500);

	/* Without an enhanced code the line holds 506 octets of text. */
	memset(text, 'g', 507);
	text[507] = '\0';
	n = reply_format(buf, sizeof(buf), 220, NULL, text);
	assert_int_equal(n, 512 + 7);
	assert_memory_equal(buf, "220-ggg", 7);
	assert_string_equal(buf + 512, "220 g\r\n");

	/* Several spaces at a cut are all dropped. */
	memset(text, 'a', 500);
	strcpy(text + 500, "   z");
	n = reply_format(buf, sizeof(buf), 550, "5.7.1", text);
	assert_string_equal(buf + 512, "550 5.7.1 z\r\n");
}

/* A buffer too small truncates, stays NUL-terminated, and never overflows. */
static void test_small_buffer(void **state)
{
	static const char want[] = "550 5.7.1 Unable to relay\r\n";

	(void)state;
	for (size_t sz = 1; sz <= sizeof(want) + 2; sz++) {
		char *buf = malloc(sz);
		size_t n;

		assert_non_null(buf);
		n = reply_format(buf, sz, 550, "5.7.1", "Unable to relay");
		assert_true(n < sz);
		assert_int_equal(strlen(buf), n);
		assert_memory_equal(buf, want, n);
		free(buf);
	}
}

/* ---- reply_format_lines ------------------------------------------------------------------ */

static void test_format_lines(void **state)
{
	static const char *const ehlo[] = { "mx.example Hello", "PIPELINING", "SIZE 26214400",
					    "8BITMIME", "ENHANCEDSTATUSCODES" };
	static const char *const two[] = { "first", "second" };
	static const char *const one[] = { "only" };
	char buf[1024];
	size_t n;

	(void)state;
	n = reply_format_lines(buf, sizeof(buf), 250, NULL, ehlo, ARRAY_LEN(ehlo));
	assert_string_equal(buf, "250-mx.example Hello\r\n"
				 "250-PIPELINING\r\n"
				 "250-SIZE 26214400\r\n"
				 "250-8BITMIME\r\n"
				 "250 ENHANCEDSTATUSCODES\r\n");
	assert_int_equal(n, strlen(buf));

	n = reply_format_lines(buf, sizeof(buf), 550, "5.7.1", two, 2);
	assert_string_equal(buf, "550-5.7.1 first\r\n550 5.7.1 second\r\n");
	assert_int_equal(n, strlen(buf));

	n = reply_format_lines(buf, sizeof(buf), 214, NULL, one, 1);
	assert_string_equal(buf, "214 only\r\n");
	assert_int_equal(n, 10);

	memset(buf, 'Z', sizeof(buf));
	n = reply_format_lines(buf, sizeof(buf), 250, NULL, one, 0);
	assert_int_equal(n, 0);
	assert_string_equal(buf, "");
}

static void test_format_lines_small_buffer(void **state)
{
	static const char *const lines[] = { "alpha", "beta", "gamma" };
	static const char want[] = "250-alpha\r\n250-beta\r\n250 gamma\r\n";

	(void)state;
	for (size_t sz = 1; sz <= sizeof(want) + 2; sz++) {
		char *buf = malloc(sz);
		size_t n;

		assert_non_null(buf);
		n = reply_format_lines(buf, sz, 250, NULL, lines, ARRAY_LEN(lines));
		assert_true(n < sz);
		assert_int_equal(strlen(buf), n);
		assert_memory_equal(buf, want, n);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_line),
		cmocka_unit_test(test_long_text_split_at_spaces),
		cmocka_unit_test(test_long_text_edges),
		cmocka_unit_test(test_small_buffer),
		cmocka_unit_test(test_format_lines),
		cmocka_unit_test(test_format_lines_small_buffer),
	};

	return cmocka_run_group_tests_name("reply", tests, NULL, NULL);
}
