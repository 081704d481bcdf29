/* Unit tests for smtpc, the outbound SMTP client.
 *
 * This file: the pure parts (src/smtpc/smtpc_proto.c): the reply parser as a table of valid and
 * invalid replies, EHLO keyword lines, dot-stuffing across chunk boundaries, the MAIL and RCPT
 * builders. test_smtpc_live.c (same executable) runs the client against a scripted SMTP server
 * inside this process; main() below runs both groups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <signal.h>

#include "smtpc/smtpc_proto.h"
#include "util/log.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* defined in test_smtpc_live.c */
int smtpc_live_tests(void);

/* ---- reply parser table --------------------------------------------------------------------- */

struct reply_case {
	const char *in;
	enum smtpc_reply_rc rc;
	int code;
	const char *enh, *text;
	size_t used; /* octets consumed on DONE; (size_t)-1: all of in */
};

#define ALL ((size_t)-1)

static const struct reply_case reply_cases[] = {
	/* single lines */
	{ "250 OK\r\n", SMTPC_REPLY_DONE, 250, "", "OK", ALL },
	{ "250 2.1.0 Sender ok\r\n", SMTPC_REPLY_DONE, 250, "2.1.0", "Sender ok", ALL },
	{ "421 4.4.2 mx.example closing\r\n", SMTPC_REPLY_DONE, 421, "4.4.2", "mx.example closing", ALL },
	{ "250\r\n", SMTPC_REPLY_DONE, 250, "", "", ALL },
	{ "250 \r\n", SMTPC_REPLY_DONE, 250, "", "", ALL },
	{ "550 5.7.1\r\n", SMTPC_REPLY_DONE, 550, "5.7.1", "", ALL },
	{ "450 4.2.0 Greylisted\n", SMTPC_REPLY_DONE, 450, "4.2.0", "Greylisted", ALL },
	{ "554 5.123.456 big numbers\r\n", SMTPC_REPLY_DONE, 554, "5.123.456", "big numbers", ALL },
	{ "250 ok  two  spaces \r\n", SMTPC_REPLY_DONE, 250, "", "ok  two  spaces ", ALL },
	/* multi-line */
	{ "250-first\r\n250-second\r\n250 third\r\n", SMTPC_REPLY_DONE, 250, "", "first\nsecond\nthird",
	  ALL },
	{ "550-5.1.1 No such user\r\n550 5.1.1 here\r\n", SMTPC_REPLY_DONE, 550, "5.1.1",
	  "No such user\nhere", ALL },
	{ "250-mx.example\r\n250-2.0.0 mid\r\n250 end\r\n", SMTPC_REPLY_DONE, 250, "2.0.0",
	  "mx.example\nmid\nend", ALL },
	{ "250-\r\n250 x\r\n", SMTPC_REPLY_DONE, 250, "", "\nx", ALL },
	{ "220 one\r\n250 next reply\r\n", SMTPC_REPLY_DONE, 220, "", "one", 9 },
	/* enhanced codes that are not: wrong class, short, long parts, no space after */
	{ "550 4.7.1 class mismatch\r\n", SMTPC_REPLY_DONE, 550, "", "4.7.1 class mismatch", ALL },
	{ "250 2.0 short\r\n", SMTPC_REPLY_DONE, 250, "", "2.0 short", ALL },
	{ "250 2.1234.0 x\r\n", SMTPC_REPLY_DONE, 250, "", "2.1234.0 x", ALL },
	{ "554 5.7.1234 x\r\n", SMTPC_REPLY_DONE, 554, "", "5.7.1234 x", ALL },
	{ "250 2.0.0.0 x\r\n", SMTPC_REPLY_DONE, 250, "", "2.0.0.0 x", ALL },
	{ "250 2.0.0x\r\n", SMTPC_REPLY_DONE, 250, "", "2.0.0x", ALL },
	{ "250 2..0 x\r\n", SMTPC_REPLY_DONE, 250, "", "2..0 x", ALL },
	/* incomplete */
	{ "250-only a continuation\r\n", SMTPC_REPLY_MORE, 250, "", "only a continuation", 0 },
	{ "250 no line end", SMTPC_REPLY_MORE, 0, "", "", 0 },
	{ "", SMTPC_REPLY_MORE, 0, "", "", 0 },
	/* bad */
	{ "250-a\r\n251 b\r\n", SMTPC_REPLY_EMIXED, 0, NULL, NULL, ALL },
	{ "250-a\r\n550 b\r\n", SMTPC_REPLY_EMIXED, 0, NULL, NULL, ALL },
	{ "25\r\n", SMTPC_REPLY_ESYNTAX, 0, NULL, NULL, ALL },
	{ "2500 x\r\n", SMTPC_REPLY_ESYNTAX, 0, NULL, NULL, ALL },
	{ "250_x\r\n", SMTPC_REPLY_ESYNTAX, 0, NULL, NULL, ALL },
	{ "650 x\r\n", SMTPC_REPLY_ESYNTAX, 0, NULL, NULL, ALL },
	{ "160 x\r\n", SMTPC_REPLY_ESYNTAX, 0, NULL, NULL, ALL },
	{ "260 x\r\n", SMTPC_REPLY_ESYNTAX, 0, NULL, NULL, ALL },
	{ "abc x\r\n", SMTPC_REPLY_ESYNTAX, 0, NULL, NULL, ALL },
	{ " 250 x\r\n", SMTPC_REPLY_ESYNTAX, 0, NULL, NULL, ALL },
	{ "\r\n", SMTPC_REPLY_ESYNTAX, 0, NULL, NULL, ALL },
	{ "250-ok\r\nhello\r\n", SMTPC_REPLY_ESYNTAX, 0, NULL, NULL, ALL },
};

static void test_reply_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(reply_cases); i++) {
		const struct reply_case *rc = &reply_cases[i];
		struct smtpc_reply r;
		size_t used = 99;
		enum smtpc_reply_rc got = smtpc_reply_parse(rc->in, strlen(rc->in), &r, &used);

		if (got != rc->rc)
			fail_msg("row %zu \"%s\": rc %d, want %d", i, rc->in, got, rc->rc);
		if (rc->rc < 0)
			continue;
		if (rc->rc == SMTPC_REPLY_DONE) {
			assert_int_equal(r.code, rc->code);
			if (used != (rc->used == ALL ? strlen(rc->in) : rc->used))
				fail_msg("row %zu: used %zu", i, used);
		} else {
			assert_int_equal(used, 0);
		}
		if (rc->code && r.code != rc->code)
			fail_msg("row %zu: code %d", i, r.code);
		if (strcmp(r.enh, rc->enh) != 0)
			fail_msg("row %zu: enh \"%s\", want \"%s\"", i, r.enh, rc->enh);
		if (strcmp(r.text, rc->text) != 0)
			fail_msg("row %zu: text \"%s\", want \"%s\"", i, r.text, rc->text);
		assert_int_equal(r.text_len, strlen(r.text));
	}
}

static void test_reply_nul(void **state)
{
	static const char line[] = "250 a\0b";
	struct smtpc_reply r;

	(void)state;
	smtpc_reply_init(&r);
	assert_int_equal(smtpc_reply_feed(&r, line, sizeof(line) - 1), SMTPC_REPLY_ESYNTAX);
}

/* Lines over RFC 5321's 512 octets are read; the text is kept up to SMTPC_TEXT_MAX - 1. */
static void test_reply_long_line(void **state)
{
	size_t len = 4000;
	char *buf = malloc(len + 3);
	struct smtpc_reply r;
	size_t used;

	(void)state;
	memcpy(buf, "550 5.1.1 ", 10);
	memset(buf + 10, 'x', len - 10);
	memcpy(buf + len, "\r\n", 3);
	assert_int_equal(smtpc_reply_parse(buf, len + 2, &r, &used), SMTPC_REPLY_DONE);
	assert_string_equal(r.enh, "5.1.1");
	assert_int_equal(r.text_len, SMTPC_TEXT_MAX - 1);
	assert_int_equal(strlen(r.text), SMTPC_TEXT_MAX - 1);
	free(buf);
}

/* The whole reply is bounded: one huge line, or endless continuation lines. */
static void test_reply_overlong(void **state)
{
	size_t len = SMTPC_REPLY_MAX + 10;
	char *buf = malloc(len + 3);
	struct smtpc_reply r;
	size_t used, n = 0;
	enum smtpc_reply_rc rc = SMTPC_REPLY_MORE;

	(void)state;
	memcpy(buf, "250 ", 4);
	memset(buf + 4, 'y', len - 4);
	memcpy(buf + len, "\r\n", 3);
	assert_int_equal(smtpc_reply_parse(buf, len + 2, &r, &used), SMTPC_REPLY_ETOOLONG);
	free(buf);

	smtpc_reply_init(&r);
	while (rc == SMTPC_REPLY_MORE && n++ < 100000)
		rc = smtpc_reply_feed(&r, "250-0123456789012345678901234567890123456789", 44);
	assert_int_equal(rc, SMTPC_REPLY_ETOOLONG);
	assert_true(n * 46 > SMTPC_REPLY_MAX);
	assert_true(n * 46 < SMTPC_REPLY_MAX + 100);
}

static void test_status_from_reply(void **state)
{
	struct smtpc_reply r;
	struct smtpc_status st;
	size_t used;

	(void)state;
	smtpc_reply_parse("451 try later\r\n", 15, &r, &used);
	smtpc_status_from_reply(&st, &r, SMTPC_STAGE_RCPT);
	assert_string_equal(st.enh, "4.0.0");
	assert_int_equal(st.code, 451);
	assert_int_equal(st.local, 0);
	assert_int_equal(st.stage, SMTPC_STAGE_RCPT);
	assert_string_equal(st.text, "try later");
	assert_int_equal(smtpc_status_class(&st), 4);
	smtpc_reply_parse("550 5.1.1 no\r\n", 14, &r, &used);
	smtpc_status_from_reply(&st, &r, SMTPC_STAGE_RCPT);
	assert_string_equal(st.enh, "5.1.1");
	assert_int_equal(smtpc_status_class(&st), 5);
	smtpc_status_local(&st, 552, "5.3.4", SMTPC_STAGE_LOCAL, "too big");
	assert_int_equal(st.local, 1);
	assert_int_equal(smtpc_status_class(&st), 5);
	assert_string_equal(smtpc_stage_name(SMTPC_STAGE_DATA), "DATA");
}

/* ---- EHLO ------------------------------------------------------------------------------------ */

struct ehlo_case {
	const char *line;
	unsigned ext;
	uint64_t size;
};

static const struct ehlo_case ehlo_cases[] = {
	{ "PIPELINING", SMTPC_EXT_PIPELINING, 0 },
	{ "pipelining", SMTPC_EXT_PIPELINING, 0 },
	{ "SIZE 10240000", SMTPC_EXT_SIZE, 10240000 },
	{ "SIZE", SMTPC_EXT_SIZE, 0 },
	{ "SIZE 0", SMTPC_EXT_SIZE, 0 },
	{ "SIZE abc", SMTPC_EXT_SIZE, 0 },
	{ "SIZE 12x", SMTPC_EXT_SIZE, 0 },
	{ "SIZE 99999999999999999999999", SMTPC_EXT_SIZE, UINT64_MAX },
	{ "8BITMIME", SMTPC_EXT_8BITMIME, 0 },
	{ "SMTPUTF8", SMTPC_EXT_SMTPUTF8, 0 },
	{ "DSN", SMTPC_EXT_DSN, 0 },
	{ "STARTTLS", SMTPC_EXT_STARTTLS, 0 },
	{ "ENHANCEDSTATUSCODES", SMTPC_EXT_ENHANCEDSTATUSCODES, 0 },
	{ "AUTH PLAIN LOGIN", 0, 0 },
	{ "DSNX", 0, 0 },
	{ "8BITMIMEX", 0, 0 },
	{ "", 0, 0 },
};

static void test_ehlo_lines(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(ehlo_cases); i++) {
		unsigned ext = 0;
		uint64_t size = 7;

		smtpc_ehlo_line(ehlo_cases[i].line, strlen(ehlo_cases[i].line), &ext, &size);
		if (ext != ehlo_cases[i].ext)
			fail_msg("row %zu \"%s\": ext 0x%x", i, ehlo_cases[i].line, ext);
		if (ehlo_cases[i].ext == SMTPC_EXT_SIZE && size != ehlo_cases[i].size)
			fail_msg("row %zu: size %llu", i, (unsigned long long)size);
	}
}

/* ---- dot-stuffing ---------------------------------------------------------------------------- */

/* Stuffs in, fed in chunks of `chunk` octets, and ends it; returns a malloc'd string. */
static char *stuff(const char *in, size_t chunk)
{
	size_t len = strlen(in), o = 0;
	char *out = malloc(2 * len + SMTPC_DOT_END_MAX + 1);
	struct smtpc_dot d;

	smtpc_dot_init(&d);
	for (size_t i = 0; i < len; i += chunk) {
		size_t n = len - i < chunk ? len - i : chunk;
		o += smtpc_dot_stuff(&d, in + i, n, out + o);
	}
	o += smtpc_dot_end(&d, out + o);
	out[o] = '\0';
	return out;
}

struct dot_case {
	const char *in, *want;
};

static const struct dot_case dot_cases[] = {
	{ "", ".\r\n" },
	{ "a\r\n", "a\r\n.\r\n" },
	{ "a", "a\r\n.\r\n" },
	{ ".\r\n", "..\r\n.\r\n" },
	{ ".a\r\n..b\r\nc.d\r\n", "..a\r\n...b\r\nc.d\r\n.\r\n" },
	{ "x\r\n.\r\n", "x\r\n..\r\n.\r\n" },
	{ "x\r\n.", "x\r\n..\r\n.\r\n" },
	{ "x\n.y\r\n", "x\n..y\r\n.\r\n" }, /* a bare LF still starts a line for the dot */
	{ "x\r", "x\r\r\n.\r\n" },
	{ "x\n", "x\n\r\n.\r\n" },
	{ "\r\n\r\n.", "\r\n\r\n..\r\n.\r\n" },
};

static void test_dot_stuffing(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(dot_cases); i++) {
		/* every chunk size, so that a line start falls on every chunk boundary */
		for (size_t chunk = 1; chunk <= strlen(dot_cases[i].in) + 1; chunk++) {
			char *got = stuff(dot_cases[i].in, chunk);
			if (strcmp(got, dot_cases[i].want) != 0)
				fail_msg("row %zu chunk %zu: got \"%s\"", i, chunk, got);
			free(got);
		}
	}
}

/* ---- commands -------------------------------------------------------------------------------- */

static void test_addr_ok(void **state)
{
	char longaddr[SMTPC_ADDR_MAX + 2];

	(void)state;
	assert_true(smtpc_addr_ok("a@b.example", 0));
	assert_true(smtpc_addr_ok("", 1));
	assert_false(smtpc_addr_ok("", 0));
	assert_true(smtpc_addr_ok("\"john doe\"@b.example", 0));
	assert_true(smtpc_addr_ok("j\xc3\xbcrgen@b.example", 0));
	assert_false(smtpc_addr_ok("a@b\r\nRCPT TO:<x@y>", 0));
	assert_false(smtpc_addr_ok("a@b> NOTIFY=NEVER", 0));
	assert_false(smtpc_addr_ok("<a@b>", 0));
	assert_false(smtpc_addr_ok("a\x7f@b", 0));
	memset(longaddr, 'a', sizeof(longaddr) - 1);
	longaddr[sizeof(longaddr) - 1] = '\0';
	assert_false(smtpc_addr_ok(longaddr, 0));
	longaddr[SMTPC_ADDR_MAX - 2] = '\0';
	assert_true(smtpc_addr_ok(longaddr, 0));

	assert_true(smtpc_xtext_ok("abc+2Bdef", 100));
	assert_false(smtpc_xtext_ok("abc+2bdef", 100));
	assert_false(smtpc_xtext_ok("abc+2", 100));
	assert_false(smtpc_xtext_ok("a=b", 100));
	assert_false(smtpc_xtext_ok("a b", 100));
	assert_false(smtpc_xtext_ok("", 100));
	assert_false(smtpc_xtext_ok("abcd", 3));
}

static void test_cmd_mail(void **state)
{
	struct smtpc_msg m = { .sender = "a@b.example", .body_len = 1234 };
	unsigned all = SMTPC_EXT_SIZE | SMTPC_EXT_8BITMIME | SMTPC_EXT_SMTPUTF8 | SMTPC_EXT_DSN;
	char buf[SMTPC_CMD_MAX];

	(void)state;
	assert_int_equal(smtpc_cmd_mail(buf, &m, 0), strlen("MAIL FROM:<a@b.example>\r\n"));
	assert_string_equal(buf, "MAIL FROM:<a@b.example>\r\n");
	smtpc_cmd_mail(buf, &m, all);
	assert_string_equal(buf, "MAIL FROM:<a@b.example> SIZE=1234\r\n");
	m.size = 99;
	m.needs_8bitmime = 1;
	m.needs_smtputf8 = 1;
	m.ret = SMTPC_RET_HDRS;
	m.envid = "q+2B1";
	smtpc_cmd_mail(buf, &m, all);
	assert_string_equal(buf, "MAIL FROM:<a@b.example> SIZE=99 BODY=8BITMIME SMTPUTF8 RET=HDRS "
				 "ENVID=q+2B1\r\n");
	/* DSN parameters only to a server with DSN */
	smtpc_cmd_mail(buf, &m, all & ~SMTPC_EXT_DSN);
	assert_string_equal(buf, "MAIL FROM:<a@b.example> SIZE=99 BODY=8BITMIME SMTPUTF8\r\n");
	/* an ENVID that is not xtext is left out */
	m.envid = "bad envid";
	m.ret = SMTPC_RET_FULL;
	m.sender = "";
	smtpc_cmd_mail(buf, &m, SMTPC_EXT_DSN);
	assert_string_equal(buf, "MAIL FROM:<> RET=FULL\r\n");
}

static void test_cmd_rcpt(void **state)
{
	struct smtpc_rcpt r = { .addr = "u@d.example" };
	char buf[SMTPC_CMD_MAX];

	(void)state;
	smtpc_cmd_rcpt(buf, &r, SMTPC_EXT_DSN);
	assert_string_equal(buf, "RCPT TO:<u@d.example>\r\n");
	r.notify = SMTPC_NOTIFY_SUCCESS | SMTPC_NOTIFY_DELAY;
	r.orcpt = "rfc822;u+40d.example";
	smtpc_cmd_rcpt(buf, &r, SMTPC_EXT_DSN);
	assert_string_equal(buf, "RCPT TO:<u@d.example> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u+40d.example\r\n");
	smtpc_cmd_rcpt(buf, &r, SMTPC_EXT_PIPELINING);
	assert_string_equal(buf, "RCPT TO:<u@d.example>\r\n");
	r.notify = SMTPC_NOTIFY_NEVER | SMTPC_NOTIFY_FAILURE;
	r.orcpt = "rfc822;u@d.example"; /* '@' is fine in xtext; '=' or space is not */
	smtpc_cmd_rcpt(buf, &r, SMTPC_EXT_DSN);
	assert_string_equal(buf, "RCPT TO:<u@d.example> NOTIFY=NEVER ORCPT=rfc822;u@d.example\r\n");
	r.orcpt = "no-semicolon";
	r.notify = 1u << 7; /* no known bit */
	smtpc_cmd_rcpt(buf, &r, SMTPC_EXT_DSN);
	assert_string_equal(buf, "RCPT TO:<u@d.example>\r\n");
	r.orcpt = "rfc 822;x";
	smtpc_cmd_rcpt(buf, &r, SMTPC_EXT_DSN);
	assert_string_equal(buf, "RCPT TO:<u@d.example>\r\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_table),
		cmocka_unit_test(test_reply_nul),
		cmocka_unit_test(test_reply_long_line),
		cmocka_unit_test(test_reply_overlong),
		cmocka_unit_test(test_status_from_reply),
		cmocka_unit_test(test_ehlo_lines),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_addr_ok),
		cmocka_unit_test(test_cmd_mail),
		cmocka_unit_test(test_cmd_rcpt),
	};
	int failed;

	signal(SIGPIPE, SIG_IGN);
	log_init("test_smtpc", 0, LOG_LVL_WARN);
	failed = cmocka_run_group_tests_name("smtpc_proto", tests, NULL, NULL);
	return failed + smtpc_live_tests();
}
