/* Unit tests for parse: verbs, MAIL/RCPT paths and ESMTP parameters, HELO and domain checks.
 *
 * The MAIL/RCPT table states, for each argument string, the result code and, on success, every
 * field of struct mailpath. Inputs are copied into heap buffers of exactly their size so that
 * AddressSanitizer catches a read past the terminating NUL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/parse.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static char *dup_exact(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	assert_non_null(p);
	memcpy(p, s, n);
	return p;
}

/* ---- parse_verb -------------------------------------------------------------------------- */

struct verb_case {
	const char *line;
	enum smtp_verb verb;
	const char *args; /* expected *args_r text for known verbs */
};

static const struct verb_case verb_cases[] = {
	{ "HELO mx.example", VERB_HELO, "mx.example" },
	{ "EHLO mx.example", VERB_EHLO, "mx.example" },
	{ "MAIL FROM:<a@b.example>", VERB_MAIL, "FROM:<a@b.example>" },
	{ "RCPT TO:<a@b.example>", VERB_RCPT, "TO:<a@b.example>" },
	{ "DATA", VERB_DATA, "" },
	{ "RSET", VERB_RSET, "" },
	{ "NOOP", VERB_NOOP, "" },
	{ "QUIT", VERB_QUIT, "" },
	{ "HELP", VERB_HELP, "" },
	{ "VRFY postmaster", VERB_VRFY, "postmaster" },
	{ "STARTTLS", VERB_STARTTLS, "" },
	/* Case-insensitive. */
	{ "helo x", VERB_HELO, "x" },
	{ "eHlO x", VERB_EHLO, "x" },
	{ "mail FROM:<>", VERB_MAIL, "FROM:<>" },
	{ "Rcpt TO:<a@b>", VERB_RCPT, "TO:<a@b>" },
	{ "data", VERB_DATA, "" },
	{ "rset", VERB_RSET, "" },
	{ "nOoP", VERB_NOOP, "" },
	{ "quit", VERB_QUIT, "" },
	{ "help", VERB_HELP, "" },
	{ "vrfy x", VERB_VRFY, "x" },
	{ "StartTLS", VERB_STARTTLS, "" },
	/* Spaces: one or more are skipped; args may be empty after them. */
	{ "MAIL  FROM:<a@b>", VERB_MAIL, "FROM:<a@b>" },
	{ "NOOP    ", VERB_NOOP, "" },
	{ "NOOP a b  c", VERB_NOOP, "a b  c" },
	{ "HELO ", VERB_HELO, "" },
	{ "DATA x", VERB_DATA, "x" },
	/* Unknown: longer, shorter, other separators, empty. */
	{ "MAILX", VERB_UNKNOWN, NULL },
	{ "MAILX FROM:<a@b>", VERB_UNKNOWN, NULL },
	{ "MAI", VERB_UNKNOWN, NULL },
	{ "MAIL:FROM", VERB_UNKNOWN, NULL },
	{ "MAIL\tFROM:<a@b>", VERB_UNKNOWN, NULL },
	{ "STARTTLSX", VERB_UNKNOWN, NULL },
	{ "START", VERB_UNKNOWN, NULL },
	{ "EHLOO x", VERB_UNKNOWN, NULL },
	{ " HELO x", VERB_UNKNOWN, NULL },
	{ "", VERB_UNKNOWN, NULL },
	{ "XYZZY", VERB_UNKNOWN, NULL },
	{ "HEL\xc3\x96 x", VERB_UNKNOWN, NULL },
	{ "BDAT 10 LAST", VERB_UNKNOWN, NULL },
	{ "AUTH PLAIN", VERB_UNKNOWN, NULL },
};

static void test_parse_verb(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(verb_cases); i++) {
		const struct verb_case *c = &verb_cases[i];
		char *line = dup_exact(c->line);
		size_t n = strlen(line);
		const char *args = NULL;
		enum smtp_verb v = parse_verb(line, &args);

		if (v != c->verb)
			fail_msg("parse_verb(\"%s\") = %s, want %s", c->line, parse_verb_name(v),
				 parse_verb_name(c->verb));
		/* args always points into the line, at most at its NUL. */
		if (args == NULL || args < line || args > line + n)
			fail_msg("parse_verb(\"%s\"): args outside the line", c->line);
		if (c->args && strcmp(args, c->args) != 0)
			fail_msg("parse_verb(\"%s\"): args \"%s\", want \"%s\"", c->line, args, c->args);
		/* The args of a known verb start after the spaces. */
		if (c->verb != VERB_UNKNOWN && args > line && args[-1] != ' ' && *args != '\0')
			fail_msg("parse_verb(\"%s\"): args not after a space", c->line);
		free(line);
	}
}

static void test_parse_verb_name(void **state)
{
	static const struct {
		enum smtp_verb v;
		const char *name;
	} names[] = {
		{ VERB_HELO, "HELO" }, { VERB_EHLO, "EHLO" }, { VERB_MAIL, "MAIL" },
		{ VERB_RCPT, "RCPT" }, { VERB_DATA, "DATA" }, { VERB_RSET, "RSET" },
		{ VERB_NOOP, "NOOP" }, { VERB_QUIT, "QUIT" }, { VERB_HELP, "HELP" },
		{ VERB_VRFY, "VRFY" }, { VERB_STARTTLS, "STARTTLS" }, { VERB_UNKNOWN, "UNKNOWN" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		const char *args;

		assert_string_equal(parse_verb_name(names[i].v), names[i].name);
		/* Round trip: each name parses back to its verb. */
		if (names[i].v != VERB_UNKNOWN)
			assert_int_equal(parse_verb(names[i].name, &args), names[i].v);
	}
}

/* ---- parse_mail_rcpt --------------------------------------------------------------------- */

#define F_NULL 1
#define F_LITERAL 2
#define F_QUOTED 4
#define F_UTF8 8
#define F_ROUTE 16

#define MAIL "FROM:"
#define RCPT "TO:"

struct mr_case {
	const char *args;
	const char *prefix;
	int allow_null, allow_postmaster;
	enum parse_err rc;
	/* on PARSE_OK: */
	const char *addr, *local, *domain;
	int flags;
	size_t nparams;
};

/* Expected results: OK(addr, local, domain, flags, nparams) or ERR(code). */
#define OK(a, l, d, f, n) PARSE_OK, a, l, d, f, n
#define ERR(e) e, NULL, NULL, NULL, 0, 0

#define L64 "llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll"
#define L63 "lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll"
#define D63 "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define D64 D63 "d"
/* 63+1+63+1+61 = 189: with a 64-octet local part and '@' the path is 254 octets. */
#define D189 D63 "." D63 "." "ddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define D190 D63 "." D63 "." "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
/* 4 * 63 + 3 = 255 octets: the longest domain the grammar allows. */
#define D252 D63 "." D63 "." D63 "." "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define D253 D252 "d"
#define D255 D63 "." D63 "." D63 "." D63

static const struct mr_case mr_cases[] = {
	/* Plain paths. */
	{ "FROM:<a@b.example>", MAIL, 1, 0, OK("a@b.example", "a", "b.example", 0, 0) },
	{ "FROM: <a@b.example>", MAIL, 1, 0, OK("a@b.example", "a", "b.example", 0, 0) },
	{ "from:<a@b.example>", MAIL, 1, 0, OK("a@b.example", "a", "b.example", 0, 0) },
	{ "TO:<a@b.example>", RCPT, 0, 1, OK("a@b.example", "a", "b.example", 0, 0) },
	{ "to: <a@b.example>", RCPT, 0, 0, OK("a@b.example", "a", "b.example", 0, 0) },
	{ "FROM:<User.Name@Example.COM>", MAIL, 1, 0,
	  OK("User.Name@example.com", "User.Name", "example.com", 0, 0) },
	{ "TO:<MiXeD@MX.Sub.EXAMPLE>", RCPT, 0, 0,
	  OK("MiXeD@mx.sub.example", "MiXeD", "mx.sub.example", 0, 0) },
	{ "FROM:<a!#$%&'*+-/=?^_`{|}~z@x.example>", MAIL, 1, 0,
	  OK("a!#$%&'*+-/=?^_`{|}~z@x.example", "a!#$%&'*+-/=?^_`{|}~z", "x.example", 0, 0) },
	{ "TO:<first.middle.last@x.example>", RCPT, 0, 0,
	  OK("first.middle.last@x.example", "first.middle.last", "x.example", 0, 0) },
	{ "TO:<u@123.example>", RCPT, 0, 0, OK("u@123.example", "u", "123.example", 0, 0) },
	{ "TO:<u@a-b.c-d.example>", RCPT, 0, 0, OK("u@a-b.c-d.example", "u", "a-b.c-d.example", 0, 0) },
	{ "TO:<u@localhost>", RCPT, 0, 0, OK("u@localhost", "u", "localhost", 0, 0) },
	{ "TO:<u@xn--bcher-kva.example>", RCPT, 0, 0,
	  OK("u@xn--bcher-kva.example", "u", "xn--bcher-kva.example", 0, 0) },
	/* Null sender. */
	{ "FROM:<>", MAIL, 1, 0, OK("", "", "", F_NULL, 0) },
	{ "FROM: <>", MAIL, 1, 0, OK("", "", "", F_NULL, 0) },
	{ "FROM:<> SIZE=10", MAIL, 1, 0, OK("", "", "", F_NULL, 1) },
	{ "FROM:<>", MAIL, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<>", RCPT, 0, 1, ERR(PARSE_ERR_ADDRESS) },
	{ "FROM:<>x", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	/* <Postmaster> without a domain, only when allowed. */
	{ "TO:<Postmaster>", RCPT, 0, 1, OK("Postmaster", "Postmaster", "", 0, 0) },
	{ "TO:<postmaster>", RCPT, 0, 1, OK("postmaster", "postmaster", "", 0, 0) },
	{ "TO:<POSTMASTER> NOTIFY=NEVER", RCPT, 0, 1, OK("POSTMASTER", "POSTMASTER", "", 0, 1) },
	{ "TO:<Postmaster>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "FROM:<Postmaster>", MAIL, 1, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<Postmaster@Example.NET>", RCPT, 0, 1,
	  OK("Postmaster@example.net", "Postmaster", "example.net", 0, 0) },
	{ "TO:<Postmasterx>", RCPT, 0, 1, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<Postmaster >", RCPT, 0, 1, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<postmaster@>", RCPT, 0, 1, ERR(PARSE_ERR_ADDRESS) },
	/* Source routes are dropped. */
	{ "TO:<@a.example,@b.example:u@c.example>", RCPT, 0, 0,
	  OK("u@c.example", "u", "c.example", F_ROUTE, 0) },
	{ "TO:<@a.example:u@c.example>", RCPT, 0, 0, OK("u@c.example", "u", "c.example", F_ROUTE, 0) },
	{ "FROM:<@A.EXAMPLE,@b.example,@c.example:U@D.Example>", MAIL, 1, 0,
	  OK("U@d.example", "U", "d.example", F_ROUTE, 0) },
	{ "TO:<@a.example,u@c.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<@:u@c.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<@a..example:u@c.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<@a.example@b.example:u@c.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<@a.example,b.example:u@c.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<@a.example:>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<@a.example> X=:", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<@example.com>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	/* Quoted local parts, kept as sent with their quotes. */
	{ "FROM:<\"john doe\"@example.com>", MAIL, 1, 0,
	  OK("\"john doe\"@example.com", "\"john doe\"", "example.com", F_QUOTED, 0) },
	{ "FROM:<\"a\\\"b\"@x.example>", MAIL, 1, 0,
	  OK("\"a\\\"b\"@x.example", "\"a\\\"b\"", "x.example", F_QUOTED, 0) },
	{ "FROM:<\"a\\\\b\"@x.example>", MAIL, 1, 0,
	  OK("\"a\\\\b\"@x.example", "\"a\\\\b\"", "x.example", F_QUOTED, 0) },
	{ "TO:<\"a>b@c\"@x.example>", RCPT, 0, 0,
	  OK("\"a>b@c\"@x.example", "\"a>b@c\"", "x.example", F_QUOTED, 0) },
	{ "TO:<\"\"@x.example>", RCPT, 0, 0, OK("\"\"@x.example", "\"\"", "x.example", F_QUOTED, 0) },
	{ "TO:<\"a..b.\"@x.example>", RCPT, 0, 0,
	  OK("\"a..b.\"@x.example", "\"a..b.\"", "x.example", F_QUOTED, 0) },
	{ "TO:<\"unterminated@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<\"a\x01b\"@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<\"a\\\x01\"@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<\"a\x7f\"@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<\"ab\\", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<\"quoted\">", RCPT, 0, 1, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<\"a\"b@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	/* UTF-8 anywhere needs SMTPUTF8. */
	{ "FROM:<j\xc3\xb6rg@example.com>", MAIL, 1, 0,
	  OK("j\xc3\xb6rg@example.com", "j\xc3\xb6rg", "example.com", F_UTF8, 0) },
	{ "TO:<u@b\xc3\xbc"
	  "cher.example>",
	  RCPT, 0, 0, OK("u@b\xc3\xbc"
			 "cher.example",
			 "u", "b\xc3\xbc"
			      "cher.example",
			 F_UTF8, 0) },
	{ "TO:<\"\xc3\xb6\"@x.example>", RCPT, 0, 0,
	  OK("\"\xc3\xb6\"@x.example", "\"\xc3\xb6\"", "x.example", F_QUOTED | F_UTF8, 0) },
	{ "TO:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>", RCPT,
	  0, 0,
	  OK("\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
	     "\xe7\x94\xa8\xe6\x88\xb7", "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", F_UTF8,
	     0) },
	/* Address literals. */
	{ "TO:<u@[192.0.2.1]>", RCPT, 0, 0, OK("u@[192.0.2.1]", "u", "[192.0.2.1]", F_LITERAL, 0) },
	{ "TO:<u@[IPv6:2001:db8::1]>", RCPT, 0, 0,
	  OK("u@[ipv6:2001:db8::1]", "u", "[ipv6:2001:db8::1]", F_LITERAL, 0) },
	{ "TO:<u@[ipv6:2001:DB8::A]>", RCPT, 0, 0,
	  OK("u@[ipv6:2001:db8::a]", "u", "[ipv6:2001:db8::a]", F_LITERAL, 0) },
	{ "TO:<u@[IPv6:::1]>", RCPT, 0, 0, OK("u@[ipv6:::1]", "u", "[ipv6:::1]", F_LITERAL, 0) },
	{ "TO:<u@[IPv6:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]>", RCPT, 0, 0,
	  OK("u@[ipv6:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]", "u",
	     "[ipv6:ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]", F_LITERAL, 0) },
	{ "TO:<u@[999.1.1.1]>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@[foo]>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@[192.0.2]>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@[2001:db8::1]>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@[IPv6:192.0.2.1]>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@[IPv6:2001:db8::g]>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@[]>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@[192.0.2.1>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@[192.0.2.1].example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@[tag:content]>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	/* Bad domains. */
	{ "TO:<u@example.com.>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@.example.com>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@example..com>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@-example.com>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@example-.com>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@ex_ample.com>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@exa mple.com>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@a@b.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@" D64 ".example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<u@" D63 ".example>", RCPT, 0, 0,
	  OK("u@" D63 ".example", "u", D63 ".example", 0, 0) },
	/* Bad local parts. */
	{ "TO:<u>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<a..b@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<.a@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<a.@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<a b@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<a(b)@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<a,b@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<a\\b@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	/* Length limits: local 64, path 256 with the brackets. */
	{ "TO:<" L64 "@x.example>", RCPT, 0, 0, OK(L64 "@x.example", L64, "x.example", 0, 0) },
	{ "TO:<" L64 "l@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_TOOLONG) },
	{ "TO:<\"" L63 "\"@x.example>", RCPT, 0, 0, ERR(PARSE_ERR_TOOLONG) },
	{ "TO:<" L64 "@" D189 ">", RCPT, 0, 0, OK(L64 "@" D189, L64, D189, 0, 0) },
	{ "TO:<" L64 "@" D190 ">", RCPT, 0, 0, ERR(PARSE_ERR_TOOLONG) },
	{ "TO:<u@" D252 ">", RCPT, 0, 0, OK("u@" D252, "u", D252, 0, 0) },
	{ "TO:<u@" D253 ">", RCPT, 0, 0, ERR(PARSE_ERR_TOOLONG) },
	{ "TO:<u@" D255 ">", RCPT, 0, 0, ERR(PARSE_ERR_TOOLONG) },
	{ "TO:<u@" D255 "d>", RCPT, 0, 0, ERR(PARSE_ERR_TOOLONG) },
	/* Brackets, prefix and what follows the path. */
	{ "FROM:<a@b.example", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "FROM:<a@b.example SIZE=1", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "FROM:<a@b.example>x", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "FROM:<a@b.example>>", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "FROM:<a@b.example>\tSIZE=1", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "FROM:a@b.example", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "FROM:  <a@b.example>", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "FROM :<a@b.example>", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "FROM<a@b.example>", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "TO:<a@b.example>", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "FROM:<a@b.example>", RCPT, 0, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	{ "FROM:", MAIL, 1, 0, ERR(PARSE_ERR_SYNTAX) },
	/* Parameters. */
	{ "FROM:<a@b.example> SIZE=100 BODY=8BITMIME SMTPUTF8", MAIL, 1, 0,
	  OK("a@b.example", "a", "b.example", 0, 3) },
	{ "FROM:<a@b.example>   ", MAIL, 1, 0, OK("a@b.example", "a", "b.example", 0, 0) },
	{ "FROM:<a@b.example>  SIZE=100   BODY=7BIT  ", MAIL, 1, 0,
	  OK("a@b.example", "a", "b.example", 0, 2) },
	{ "TO:<a@b.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b@b.example", RCPT, 0, 0,
	  OK("a@b.example", "a", "b.example", 0, 2) },
	{ "FROM:<a@b.example> SIZE=", MAIL, 1, 0, ERR(PARSE_ERR_PARAM) },
	{ "FROM:<a@b.example> =1", MAIL, 1, 0, ERR(PARSE_ERR_PARAM) },
	{ "FROM:<a@b.example> -X=1", MAIL, 1, 0, ERR(PARSE_ERR_PARAM) },
	{ "FROM:<a@b.example> X_Y=1", MAIL, 1, 0, ERR(PARSE_ERR_PARAM) },
	{ "FROM:<a@b.example> SIZE=1=2", MAIL, 1, 0, ERR(PARSE_ERR_PARAM) },
	{ "FROM:<a@b.example> X=a\x01", MAIL, 1, 0, ERR(PARSE_ERR_PARAM) },
	{ "FROM:<a@b.example> X\x01", MAIL, 1, 0, ERR(PARSE_ERR_PARAM) },
	{ "FROM:<a@b.example> X=a\x7f", MAIL, 1, 0, ERR(PARSE_ERR_PARAM) },
	{ "FROM:<a@b.example> X=a\tb", MAIL, 1, 0, ERR(PARSE_ERR_PARAM) },
	{ "FROM:<a@b.example> SIZE=1 BAD_KEY", MAIL, 1, 0, ERR(PARSE_ERR_PARAM) },
};

static const char *err_name(enum parse_err e)
{
	switch (e) {
	case PARSE_OK:
		return "OK";
	case PARSE_ERR_SYNTAX:
		return "SYNTAX";
	case PARSE_ERR_ADDRESS:
		return "ADDRESS";
	case PARSE_ERR_TOOLONG:
		return "TOOLONG";
	case PARSE_ERR_PARAM:
		return "PARAM";
	}
	return "?";
}

static void expect_str(size_t row, const char *args, const char *what, const char *got,
		       const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("row %zu \"%s\": %s is \"%s\", want \"%s\"", row, args, what, got, want);
}

static void expect_flag(size_t row, const char *args, const char *what, int got, int want)
{
	if (got != want)
		fail_msg("row %zu \"%s\": %s is %d, want %d", row, args, what, got, want);
}

static void test_parse_mail_rcpt_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(mr_cases); i++) {
		const struct mr_case *c = &mr_cases[i];
		char *args = dup_exact(c->args);
		struct mailpath path;
		struct esmtp_param params[SMTP_PARAMS_MAX];
		size_t nparams = 99;
		const char *why = NULL;
		enum parse_err rc;

		rc = parse_mail_rcpt(args, c->prefix, c->allow_null, c->allow_postmaster, &path, params,
				     &nparams, &why);
		if (rc != c->rc)
			fail_msg("row %zu \"%s\": %s (%s), want %s", i, c->args, err_name(rc),
				 why ? why : "-", err_name(c->rc));
		if (rc != PARSE_OK) {
			if (why == NULL || why[0] == '\0')
				fail_msg("row %zu \"%s\": no reason given", i, c->args);
			if (rc != PARSE_ERR_PARAM)
				expect_flag(i, c->args, "nparams", (int)nparams, 0);
			free(args);
			continue;
		}
		expect_str(i, c->args, "addr", path.addr, c->addr);
		expect_str(i, c->args, "local", path.local, c->local);
		expect_str(i, c->args, "domain", path.domain, c->domain);
		expect_flag(i, c->args, "is_null", path.is_null, !!(c->flags & F_NULL));
		expect_flag(i, c->args, "is_literal", path.is_literal, !!(c->flags & F_LITERAL));
		expect_flag(i, c->args, "quoted_local", path.quoted_local, !!(c->flags & F_QUOTED));
		expect_flag(i, c->args, "has_utf8", path.has_utf8, !!(c->flags & F_UTF8));
		expect_flag(i, c->args, "had_route", path.had_route, !!(c->flags & F_ROUTE));
		expect_flag(i, c->args, "nparams", (int)nparams, (int)c->nparams);
		free(args);
	}
}

/* A source route the RFC 5321 grammar refuses but the parser accepts (see the report). */
static const struct mr_case mr_bug_cases[] = {
	/* A-d-l = At-domain *( "," At-domain ): a comma must be followed by another At-domain. */
	{ "TO:<@a.example,:u@c.example>", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
};

static void test_parse_mail_rcpt_route_grammar(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(mr_bug_cases); i++) {
		const struct mr_case *c = &mr_bug_cases[i];
		char *args = dup_exact(c->args);
		struct mailpath path;
		struct esmtp_param params[SMTP_PARAMS_MAX];
		size_t nparams;
		const char *why = NULL;
		enum parse_err rc;

		rc = parse_mail_rcpt(args, c->prefix, c->allow_null, c->allow_postmaster, &path, params,
				     &nparams, &why);
		(void)rc;
		if (rc != c->rc)
			fail_msg("\"%s\": %s, want %s", c->args, err_name(rc), err_name(c->rc));
		free(args);
	}
}

/* A local part that runs into the end of the line (no '@', no '>'). Each argument is a heap
 * copy of exactly its length: the parser must stop at the NUL. */
static const struct mr_case mr_end_of_line_cases[] = {
	{ "FROM:<", MAIL, 1, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<abc", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<a.b.", RCPT, 0, 1, ERR(PARSE_ERR_ADDRESS) },
	{ "TO:<@a.example:u", RCPT, 0, 0, ERR(PARSE_ERR_ADDRESS) },
};

static void test_parse_mail_rcpt_end_of_line(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(mr_end_of_line_cases); i++) {
		const struct mr_case *c = &mr_end_of_line_cases[i];
		char *args = dup_exact(c->args);

		struct mailpath path;
		struct esmtp_param params[SMTP_PARAMS_MAX];
		size_t nparams;
		const char *why = NULL;
		enum parse_err rc = parse_mail_rcpt(args, c->prefix, c->allow_null,
						    c->allow_postmaster, &path, params, &nparams, &why);
		if (rc != c->rc)
			fail_msg("\"%s\": %s, want %s", c->args, err_name(rc), err_name(c->rc));
		free(args);
	}
}

/* The table's length macros are what their names say. */
static void test_parse_mail_rcpt_table_inputs(void **state)
{
	(void)state;
	assert_true(ARRAY_LEN(mr_cases) >= 50);
	assert_int_equal(strlen(L63), 63);
	assert_int_equal(strlen(L64), SMTP_LOCAL_MAX);
	assert_int_equal(strlen(D63), 63);
	assert_int_equal(strlen(D64), 64);
	assert_int_equal(strlen(D189), 189);
	assert_int_equal(strlen(D190), 190);
	assert_int_equal(strlen(D252), 252);
	assert_int_equal(strlen(D253), 253);
	assert_int_equal(strlen(D255), SMTP_DOMAIN_MAX);
	/* 64 + '@' + 189 + "<>" is the whole 256-octet path. */
	assert_int_equal(SMTP_LOCAL_MAX + 1 + 189 + 2, SMTP_PATH_MAX);
}

/* Parameter keys are upper-cased, values are pointers into args, NULL without '='. */
static void test_params_values(void **state)
{
	char *args = dup_exact("FROM:<a@b.example> size=100 Body=8bitmime SMTPUTF8 "
			       "x-Vendor-Opt=a+2Bb ret=HDRS ENVID=QQ314159");
	struct mailpath path;
	struct esmtp_param params[SMTP_PARAMS_MAX];
	size_t nparams = 0, len = strlen(args);
	const char *why = NULL;
	static const struct {
		const char *key, *value;
	} want[] = {
		{ "SIZE", "100" },	   { "BODY", "8bitmime" }, { "SMTPUTF8", NULL },
		{ "X-VENDOR-OPT", "a+2Bb" }, { "RET", "HDRS" },	   { "ENVID", "QQ314159" },
	};

	(void)state;
	assert_int_equal(parse_mail_rcpt(args, "FROM:", 1, 0, &path, params, &nparams, &why),
			 PARSE_OK);
	assert_int_equal(nparams, ARRAY_LEN(want));
	for (size_t i = 0; i < ARRAY_LEN(want); i++) {
		assert_string_equal(params[i].key, want[i].key);
		if (want[i].value == NULL) {
			assert_null(params[i].value);
			continue;
		}
		assert_non_null(params[i].value);
		assert_string_equal(params[i].value, want[i].value);
		assert_true(params[i].value > args && params[i].value < args + len);
	}
	assert_string_equal(path.addr, "a@b.example");
	free(args);
}

/* SMTP_PARAMS_MAX parameters are fine, one more is PARSE_ERR_PARAM; keys up to 32 octets. */
static void test_params_limits(void **state)
{
	char line[1024];
	struct mailpath path;
	struct esmtp_param params[SMTP_PARAMS_MAX + 1];
	size_t nparams;
	const char *why;
	char *args;
	int n;

	(void)state;
	for (int count = SMTP_PARAMS_MAX - 1; count <= SMTP_PARAMS_MAX + 2; count++) {
		n = snprintf(line, sizeof(line), "FROM:<a@b.example>");
		for (int k = 0; k < count; k++)
			n += snprintf(line + n, sizeof(line) - (size_t)n, " P%d=%d", k, k);
		args = dup_exact(line);
		why = NULL;
		nparams = 0;
		enum parse_err rc = parse_mail_rcpt(args, "FROM:", 1, 0, &path, params, &nparams, &why);
		if (count <= SMTP_PARAMS_MAX) {
			if (rc != PARSE_OK || nparams != (size_t)count)
				fail_msg("%d params: %s, nparams %zu", count, err_name(rc), nparams);
			char last[8];
			snprintf(last, sizeof(last), "P%d", count - 1);
			assert_string_equal(params[count - 1].key, last);
		} else {
			if (rc != PARSE_ERR_PARAM)
				fail_msg("%d params: %s, want PARAM", count, err_name(rc));
			assert_non_null(why);
			/* Never writes beyond SMTP_PARAMS_MAX entries. */
			assert_true(nparams <= SMTP_PARAMS_MAX);
		}
		free(args);
	}

	/* Key of exactly SMTP_PARAM_KEY_MAX octets, then one more. */
	char key[SMTP_PARAM_KEY_MAX + 2];
	memset(key, 'K', sizeof(key) - 1);
	key[SMTP_PARAM_KEY_MAX] = '\0';
	snprintf(line, sizeof(line), "FROM:<a@b.example> %s=1", key);
	args = dup_exact(line);
	assert_int_equal(parse_mail_rcpt(args, "FROM:", 1, 0, &path, params, &nparams, &why),
			 PARSE_OK);
	assert_int_equal(nparams, 1);
	assert_string_equal(params[0].key, key);
	free(args);
	key[SMTP_PARAM_KEY_MAX] = 'K';
	key[SMTP_PARAM_KEY_MAX + 1] = '\0';
	snprintf(line, sizeof(line), "FROM:<a@b.example> %s=1", key);
	args = dup_exact(line);
	assert_int_equal(parse_mail_rcpt(args, "FROM:", 1, 0, &path, params, &nparams, &why),
			 PARSE_ERR_PARAM);
	free(args);
}

/* ---- parse_helo_valid -------------------------------------------------------------------- */

struct helo_case {
	const char *arg;
	int valid;
};

static const struct helo_case helo_cases[] = {
	{ "mx.example.com", 1 },
	{ "localhost", 1 },
	{ "a", 1 },
	{ "MX.EXAMPLE.COM", 1 },
	{ "xn--bcher-kva.example", 1 },
	{ "[192.0.2.1]", 1 },
	{ "[IPv6:2001:db8::1]", 1 },
	{ D255, 1 },
	{ "", 0 },
	{ "mx.example.com extra", 0 },
	{ "mx example", 0 },
	{ " mx.example", 0 },
	{ "mx.example ", 0 },
	{ "mx.example\t", 0 },
	{ "mx\r.example", 0 },
	{ "mx.example\x7f", 0 },
	{ "mx\x01.example", 0 },
	{ D255 "d", 0 },
};

static void test_parse_helo_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(helo_cases); i++) {
		char *arg = dup_exact(helo_cases[i].arg);
		int got = parse_helo_valid(arg);

		if (got != helo_cases[i].valid)
			fail_msg("parse_helo_valid(\"%s\") = %d, want %d", helo_cases[i].arg, got,
				 helo_cases[i].valid);
		free(arg);
	}
}

/* parse.h promises "a domain or address literal": these are neither. */
/* The documented leniency: any one printable word is taken (and recorded), as real senders
 * announce names that are not valid domains. */
static const struct helo_case helo_contract_cases[] = {
	{ "bad..example", 1 },
	{ "-bad.example", 1 },
	{ "bad-.example", 1 },
	{ "[999.1.1.1]", 1 },
	{ "[foo]", 1 },
	{ "[IPv6:192.0.2.1]", 1 },
	{ "ex@mple.com", 1 },
	{ "<mx.example>", 1 },
	{ "two words", 0 },
	{ "tab\there", 0 },
};

static void test_parse_helo_contract(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(helo_contract_cases); i++) {
		char *arg = dup_exact(helo_contract_cases[i].arg);
		int got = parse_helo_valid(arg);

		(void)got;
		if (got != helo_contract_cases[i].valid)
			fail_msg("parse_helo_valid(\"%s\") = %d, want %d", helo_contract_cases[i].arg,
				 got, helo_contract_cases[i].valid);
		free(arg);
	}
}

/* ---- RFC 3461 DSN parameters ----------------------------------------------------------- */

struct dsn_case {
	int (*fn)(const char *);
	const char *v;
	int valid;
};

static int xtext_envid(const char *v)
{
	return parse_xtext_valid(v, DSN_ENVID_MAX);
}

static const struct dsn_case dsn_cases[] = {
	{ parse_ret_valid, "FULL", 1 },
	{ parse_ret_valid, "hdrs", 1 },
	{ parse_ret_valid, "HEADERS", 0 },
	{ parse_ret_valid, "", 0 },
	{ parse_notify_valid, "NEVER", 1 },
	{ parse_notify_valid, "never", 1 },
	{ parse_notify_valid, "SUCCESS", 1 },
	{ parse_notify_valid, "SUCCESS,FAILURE,DELAY", 1 },
	{ parse_notify_valid, "delay,failure", 1 },
	{ parse_notify_valid, "NEVER,FAILURE", 0 },
	{ parse_notify_valid, "FAILURE,FAILURE", 0 },
	{ parse_notify_valid, "FAILURE,", 0 },
	{ parse_notify_valid, ",FAILURE", 0 },
	{ parse_notify_valid, "SOMETIMES", 0 },
	{ parse_notify_valid, "", 0 },
	{ parse_orcpt_valid, "rfc822;bob@example.test", 1 },
	{ parse_orcpt_valid, "rfc822;bob+2Bx@example.test", 1 },
	{ parse_orcpt_valid, "utf-8;bob@example.test", 1 },
	{ parse_orcpt_valid, "rfc822;", 0 },
	{ parse_orcpt_valid, ";bob@example.test", 0 },
	{ parse_orcpt_valid, "rfc822bob@example.test", 0 },
	{ parse_orcpt_valid, "rfc822;bob=x@example.test", 0 },
	{ parse_orcpt_valid, "rfc822;bob+2@example.test", 0 },
	{ parse_orcpt_valid, "rfc822;bob+2b@example.test", 0 },
	{ parse_orcpt_valid, "rf c822;bob@example.test", 0 },
	{ xtext_envid, "QQ314159", 1 },
	{ xtext_envid, "a+2Bb", 1 },
	{ xtext_envid, "a+", 0 },
	{ xtext_envid, "a+4", 0 },
	{ xtext_envid, "a b", 0 },
	{ xtext_envid, "a=b", 0 },
	{ xtext_envid, "", 0 },
	{ xtext_envid, "\x80", 0 },
};

static void test_dsn_params(void **state)
{
	char longid[DSN_ENVID_MAX + 2];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(dsn_cases); i++) {
		char *v = dup_exact(dsn_cases[i].v);
		if (dsn_cases[i].fn(v) != dsn_cases[i].valid)
			fail_msg("case %zu \"%s\": want %d", i, dsn_cases[i].v, dsn_cases[i].valid);
		free(v);
	}
	memset(longid, 'x', sizeof(longid) - 1);
	longid[DSN_ENVID_MAX] = '\0';
	assert_int_equal(parse_xtext_valid(longid, DSN_ENVID_MAX), 1);
	longid[DSN_ENVID_MAX] = 'x';
	longid[DSN_ENVID_MAX + 1] = '\0';
	assert_int_equal(parse_xtext_valid(longid, DSN_ENVID_MAX), 0);
}

/* ---- parse_domain_valid ------------------------------------------------------------------ */

struct domain_case {
	const char *d;
	size_t len; /* 0: strlen(d) */
	int utf8_ok;
	int valid;
};

static const struct domain_case domain_cases[] = {
	{ "example.com", 0, 0, 1 },
	{ "a", 0, 0, 1 },
	{ "A.EXAMPLE", 0, 0, 1 },
	{ "a-b.example", 0, 0, 1 },
	{ "a--b.example", 0, 0, 1 },
	{ "123.456", 0, 0, 1 },
	{ "0", 0, 0, 1 },
	{ D63 ".example", 0, 0, 1 },
	{ D255, 0, 0, 1 },
	{ "b\xc3\xbc"
	  "cher.example",
	  0, 1, 1 },
	{ "b\xc3\xbc"
	  "cher.example",
	  0, 0, 0 },
	{ "\xc3\xbc", 0, 1, 1 },
	{ "", 0, 0, 0 },
	{ ".", 0, 0, 0 },
	{ "example.com.", 0, 0, 0 },
	{ ".example.com", 0, 0, 0 },
	{ "example..com", 0, 0, 0 },
	{ "-example.com", 0, 0, 0 },
	{ "example-.com", 0, 0, 0 },
	{ "a.-b", 0, 0, 0 },
	{ "a-.b", 0, 0, 0 },
	{ "-", 0, 0, 0 },
	{ "ex_ample.com", 0, 0, 0 },
	{ "ex ample.com", 0, 0, 0 },
	{ "example.com\x01", 0, 0, 0 },
	{ "[192.0.2.1]", 0, 0, 0 },
	{ "a@b", 0, 0, 0 },
	{ D64 ".example", 0, 0, 0 },
	{ D255 "d", 0, 0, 0 },
	/* Only len octets count. */
	{ "example.com", 7, 0, 1 },
	{ "example.", 7, 0, 1 },
	{ "a..b", 1, 0, 1 },
	{ "a-", 1, 0, 1 },
	{ "ab-", 3, 0, 0 },
};

static void test_parse_domain_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(domain_cases); i++) {
		const struct domain_case *c = &domain_cases[i];
		size_t len = c->len ? c->len : strlen(c->d);
		/* Exactly len octets, no NUL: the function must not look further. */
		char *d = malloc(len ? len : 1);
		int got;

		assert_non_null(d);
		memcpy(d, c->d, len);
		got = parse_domain_valid(d, len, c->utf8_ok);
		if (got != c->valid)
			fail_msg("parse_domain_valid(\"%.*s\", %zu, %d) = %d, want %d", (int)len, c->d,
				 len, c->utf8_ok, got, c->valid);
		free(d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_verb),
		cmocka_unit_test(test_parse_verb_name),
		cmocka_unit_test(test_parse_mail_rcpt_table),
		cmocka_unit_test(test_parse_mail_rcpt_route_grammar),
		cmocka_unit_test(test_parse_mail_rcpt_end_of_line),
		cmocka_unit_test(test_parse_mail_rcpt_table_inputs),
		cmocka_unit_test(test_params_values),
		cmocka_unit_test(test_params_limits),
		cmocka_unit_test(test_parse_helo_valid),
		cmocka_unit_test(test_parse_helo_contract),
		cmocka_unit_test(test_dsn_params),
		cmocka_unit_test(test_parse_domain_valid),
	};

	return cmocka_run_group_tests_name("parse", tests, NULL, NULL);
}
