/* Unit tests for dsn: the status-code catalog (lookups, fallbacks, the table's own shape),
 * `mxgate ndr CODE`, and the NDR builder.
 *
 * NDRs are compared byte for byte with golden files in tests/unit/golden/ndr-*.eml; the
 * builder gets its clock and token as inputs, so the output is deterministic. After an
 * intended change of the report, regenerate them and review the diff:
 *
 *     MXG_UPDATE_GOLDEN=1 meson test -C build-asan dsn
 *     git diff tests/unit/golden/
 *
 * On a mismatch the test writes what it built to ndr-NAME.eml.actual in its working
 * directory, so `diff` shows the change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/ndr_cmd.h"
#include "dsn/catalog.h"
#include "dsn/ndr.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define GOLDEN_DIR MXG_SOURCE_ROOT "/tests/unit/golden/"
#define GOLDEN_MAX (1 << 20)

/* 2026-11-27 10:14:58 UTC, the arrival time of every test original. */
#define T_ARRIVAL ((time_t)1795774498)
#define FIVE_DAYS ((time_t)5 * 24 * 3600)

/* ---- catalog ------------------------------------------------------------------------ */

/* Every code the catalog must describe itself (issue 4 and docs/smtp.md). */
static const char *const required_codes[] = {
	"2.0.0", "4.0.0", "5.0.0", "4.2.2", "5.2.2", "5.1.1", "5.1.2", "5.1.3", "5.1.7",
	"5.1.8", "4.3.1", "5.3.4", "4.4.1", "4.4.2", "4.4.3", "5.4.4", "4.4.7", "5.4.6",
	"5.5.0", "5.5.1", "5.5.2", "5.5.4", "4.5.3", "5.6.3", "5.6.7", "5.6.11", "5.7.0",
	"5.7.1", "4.7.0", "4.7.1", "5.7.5", "5.7.26",
};

static void test_catalog_required(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(required_codes); i++) {
		const struct dsn_entry *e = dsn_lookup(required_codes[i]);
		if (!e || strcmp(e->code, required_codes[i]) != 0)
			fail_msg("%s: no entry of its own", required_codes[i]);
	}
}

struct fallback_case {
	const char *in, *want;
};

static const struct fallback_case fallbacks[] = {
	{ "5.7.99", "5.7.0" },  { "5.7.999", "5.7.0" }, { "4.7.12", "4.7.0" },
	{ "5.1.99", "5.1.0" },  { "4.1.1", "4.1.0" },   { "5.9.1", "5.0.0" },
	{ "4.8.0", "4.0.0" },   { "5.999.999", "5.0.0" }, { "2.1.5", "2.0.0" },
	{ "2.6.0", "2.0.0" },   { "5.01.1", "5.1.1" },  { "5.001.001", "5.1.1" },
	{ "5.6.011", "5.6.11" },
};

static void test_catalog_fallback(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(fallbacks); i++) {
		const struct dsn_entry *e = dsn_lookup(fallbacks[i].in);
		if (!e || strcmp(e->code, fallbacks[i].want) != 0)
			fail_msg("%s -> %s, want %s", fallbacks[i].in, e ? e->code : "NULL",
				 fallbacks[i].want);
	}
}

static void test_catalog_malformed(void **state)
{
	static const char *const bad[] = {
		"", "5", "5.", "5.1", "5.1.", "3.1.1", "1.0.0", "6.0.0", "5.1.1.", "5.1.1.1",
		"5.1000.1", "5.1.1000", "5.a.1", " 5.1.1", "5.1.1 ", "5..1", "5.1..1", "55.1.1",
		"5,1,1", "5.-1.1", "5.+1.1", "x.1.1", "5.1.1\n",
	};
	char canon[DSN_CODE_MAX + 1];

	(void)state;
	assert_null(dsn_lookup(NULL));
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		if (dsn_lookup(bad[i]) || dsn_code_canon(bad[i], canon) == 0)
			fail_msg("\"%s\" accepted", bad[i]);
	}
	assert_int_equal(dsn_code_canon("4.04.007", canon), 0);
	assert_string_equal(canon, "4.4.7");
	assert_int_equal(dsn_code_canon("5.0.0", NULL), 0);
}

struct shape {
	const struct dsn_entry *seen[256];
	size_t n;
};

/* Every entry: canonical, unique, all texts present, sentences end with a full stop, and a
 * cause short enough for "one or two sentences". */
static void check_entry(const struct dsn_entry *e, void *arg)
{
	struct shape *sh = arg;
	char canon[DSN_CODE_MAX + 1];

	if (dsn_code_canon(e->code, canon) < 0 || strcmp(canon, e->code) != 0)
		fail_msg("%s: not a canonical code", e->code);
	for (size_t i = 0; i < sh->n; i++)
		if (strcmp(sh->seen[i]->code, e->code) == 0)
			fail_msg("%s: twice in the table", e->code);
	assert_true(sh->n < ARRAY_LEN(sh->seen));
	sh->seen[sh->n++] = e;
	if (!e->title[0] || !e->cause[0] || !e->fix[0] || !e->admin[0])
		fail_msg("%s: a text is empty", e->code);
	if (e->title[0] >= 'A' && e->title[0] <= 'Z' && e->title[1] >= 'a' && e->title[1] <= 'z')
		fail_msg("%s: title should start in lower case (it follows the code)", e->code);
	if (e->cause[strlen(e->cause) - 1] != '.' || e->fix[strlen(e->fix) - 1] != '.' ||
	    e->admin[strlen(e->admin) - 1] != '.')
		fail_msg("%s: a text does not end with a full stop", e->code);
	if (strlen(e->cause) > 240)
		fail_msg("%s: cause longer than two short sentences", e->code);
	if (e->code[0] == '5' && e->actor == DSN_ACTOR_NOBODY)
		fail_msg("%s: a permanent failure needs someone to act", e->code);
	if (strstr(e->fix, "postmaster"))
		fail_msg("%s: \"contact the postmaster\" is advice nobody can act on", e->code);
}

static void test_catalog_shape(void **state)
{
	struct shape sh = { .n = 0 };
	char code[DSN_CODE_MAX + 1];

	(void)state;
	dsn_each(check_entry, &sh);
	/* The fallback always lands on the right subject: every X.Y.0 of classes 4 and 5. */
	for (int cls = 4; cls <= 5; cls++)
		for (int subj = 0; subj <= 7; subj++) {
			snprintf(code, sizeof(code), "%d.%d.0", cls, subj);
			const struct dsn_entry *e = dsn_lookup(code);
			if (strcmp(e->code, code) != 0)
				fail_msg("%s: generic entry missing", code);
		}
	assert_string_equal(dsn_lookup("2.0.0")->code, "2.0.0");
	/* 5.7.1's fix points at the rule and reference in the reply; its note at explain. */
	assert_non_null(strstr(dsn_lookup("5.7.1")->fix, "reference"));
	assert_non_null(strstr(dsn_lookup("5.7.1")->admin, "mxgate explain"));
	assert_string_equal(dsn_actor_text(DSN_ACTOR_SENDER), "you (the sender)");
}

/* ---- mxgate ndr CODE ---------------------------------------------------------------- */

struct cmd_result {
	int rc;
	char *out, *err;
};

static struct cmd_result run_cmd(int argc, const char *a1, const char *a2)
{
	char *argv[] = { (char *)"ndr", (char *)a1, (char *)a2, NULL };
	struct cmd_result r;
	size_t olen, elen;
	FILE *out = open_memstream(&r.out, &olen);
	FILE *err = open_memstream(&r.err, &elen);

	assert_non_null(out);
	assert_non_null(err);
	r.rc = ndr_cmd_run(argc, argv, out, err);
	fclose(out);
	fclose(err);
	return r;
}

static void free_cmd(struct cmd_result *r)
{
	free(r->out);
	free(r->err);
}

static void test_ndr_cmd(void **state)
{
	struct cmd_result r;

	(void)state;
	r = run_cmd(2, "5.7.1", NULL);
	assert_int_equal(r.rc, NDR_CMD_EXIT_OK);
	assert_true(strncmp(r.out, "5.7.1  delivery not authorized\n", 31) == 0);
	assert_non_null(strstr(r.out, "Cause:"));
	assert_non_null(strstr(r.out, "How to fix:"));
	assert_non_null(strstr(r.out, "Who acts:     your email administrator"));
	assert_non_null(strstr(r.out, "mxgate explain"));
	assert_string_equal(r.err, "");
	for (const char *p = r.out; *p;) { /* wrapped for a terminal */
		size_t n = strcspn(p, "\n");
		if (n > 76)
			fail_msg("line of %zu characters: %.*s", n, (int)n, p);
		p += n + (p[n] == '\n');
	}
	free_cmd(&r);

	r = run_cmd(2, "5.7.99", NULL);
	assert_int_equal(r.rc, NDR_CMD_EXIT_FALLBACK);
	assert_non_null(strstr(r.out, "5.7.99: unknown code; the generic entry for its subject"));
	assert_non_null(strstr(r.out, "\n5.7.0  "));
	free_cmd(&r);

	r = run_cmd(2, "5.9.9", NULL);
	assert_int_equal(r.rc, NDR_CMD_EXIT_FALLBACK);
	assert_non_null(strstr(r.out, "generic entry for its class"));
	free_cmd(&r);

	r = run_cmd(2, "2.0.0", NULL);
	assert_int_equal(r.rc, NDR_CMD_EXIT_OK);
	assert_non_null(strstr(r.out, "Who acts:     nobody."));
	free_cmd(&r);

	r = run_cmd(2, "5.7", NULL);
	assert_int_equal(r.rc, NDR_CMD_EXIT_USAGE);
	assert_string_equal(r.out, "");
	assert_non_null(strstr(r.err, "'5.7' is not an enhanced status code"));
	assert_non_null(strstr(r.err, "usage: mxgate ndr CODE"));
	free_cmd(&r);

	r = run_cmd(1, NULL, NULL);
	assert_int_equal(r.rc, NDR_CMD_EXIT_USAGE);
	assert_non_null(strstr(r.err, "missing CODE"));
	free_cmd(&r);

	r = run_cmd(3, "5.1.1", "5.1.2");
	assert_int_equal(r.rc, NDR_CMD_EXIT_USAGE);
	free_cmd(&r);

	r = run_cmd(2, "--help", NULL);
	assert_int_equal(r.rc, NDR_CMD_EXIT_OK);
	assert_non_null(strstr(r.out, "usage: mxgate ndr CODE"));
	free_cmd(&r);
}

/* ---- NDR: shared checks ------------------------------------------------------------- */

/* Every report: CRLF only, lines within 998 octets, header section ASCII (unless SMTPUTF8
 * is flagged), 8-bit bytes only when flagged, no NUL. */
static void check_wellformed(const char *m, size_t len, unsigned flags)
{
	size_t line = 0, hdr_end = 0;
	const char *blank = strstr(m, "\r\n\r\n");

	assert_int_equal(strlen(m), len);
	assert_non_null(blank);
	hdr_end = (size_t)(blank - m);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)m[i];
		if (c == '\n' && (i == 0 || m[i - 1] != '\r'))
			fail_msg("bare LF at %zu", i);
		if (c == '\r' && (i + 1 >= len || m[i + 1] != '\n'))
			fail_msg("bare CR at %zu", i);
		if (c >= 0x80 && !(flags & NDR_NEEDS_8BITMIME))
			fail_msg("8-bit byte at %zu without NDR_NEEDS_8BITMIME", i);
		if (c >= 0x80 && i < hdr_end && !(flags & NDR_NEEDS_SMTPUTF8))
			fail_msg("8-bit byte in the header at %zu without SMTPUTF8", i);
		if (c == '\n')
			line = 0;
		else if (c != '\r' && ++line > 998)
			fail_msg("line longer than 998 octets at %zu", i);
	}
	assert_true(len >= 2 && m[len - 2] == '\r' && m[len - 1] == '\n');
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		fail_msg("cannot write %s", path);
}

/* Compares with tests/unit/golden/NAME, or rewrites it when MXG_UPDATE_GOLDEN=1. */
static void check_golden(const char *name, const char *data, size_t len)
{
	char path[512], actual[256];
	const char *upd = getenv("MXG_UPDATE_GOLDEN");
	char *want = malloc(GOLDEN_MAX);
	size_t wlen, line = 1, i;
	FILE *f;

	assert_non_null(want);
	snprintf(path, sizeof(path), GOLDEN_DIR "%s", name);
	if (upd && strcmp(upd, "1") == 0) {
		write_file(path, data, len);
		print_message("updated %s\n", path);
		free(want);
		return;
	}
	if (!(f = fopen(path, "rb"))) {
		free(want);
		fail_msg("%s missing: run with MXG_UPDATE_GOLDEN=1 to create it", path);
	}
	wlen = fread(want, 1, GOLDEN_MAX, f);
	fclose(f);
	if (wlen == len && memcmp(want, data, len) == 0) {
		free(want);
		return;
	}
	for (i = 0; i < len && i < wlen && want[i] == data[i]; i++)
		line += data[i] == '\n';
	snprintf(actual, sizeof(actual), "%s.actual", name);
	write_file(actual, data, len);
	free(want);
	fail_msg("%s differs from the built report at line %zu (byte %zu); built report in "
		 "%s; MXG_UPDATE_GOLDEN=1 regenerates the golden files",
		 name, line, i, actual);
}

static char *build_ok(const struct ndr_input *in, size_t *len_r, unsigned *flags_r)
{
	const char *err = "unset";
	char *m = ndr_build(in, len_r, flags_r, &err);

	if (!m)
		fail_msg("ndr_build failed: %s", err);
	assert_null(err);
	check_wellformed(m, *len_r, *flags_r);
	return m;
}

static void check_build_golden(const char *name, const struct ndr_input *in, unsigned want_flags)
{
	size_t len, len2;
	unsigned flags, flags2;
	char *m = build_ok(in, &len, &flags), *again;

	assert_int_equal(flags, want_flags);
	again = build_ok(in, &len2, &flags2); /* deterministic */
	assert_int_equal(len, len2);
	assert_memory_equal(m, again, len);
	check_golden(name, m, len);
	free(again);
	free(m);
}

/* The original of most cases: like the reference example, CRLF line ends. */
static const char original[] =
	"Received: from mail.sender.example (mail.sender.example [198.51.100.20])\r\n"
	"\tby mx1.gateway.example (mxgate) with ESMTPS id 7F3A2C\r\n"
	"\tfor <bob@acme.example>; Fri, 27 Nov 2026 10:14:58 +0000\r\n"
	"From: Alice <alice@sender.example>\r\n"
	"To: Bob <bob@acme.example>, Carol <carol@partner.example>\r\n"
	"Subject: Quarterly report\r\n"
	"Date: Fri, 27 Nov 2026 10:14:57 +0000\r\n"
	"Message-ID: <original-123@sender.example>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=us-ascii\r\n"
	"\r\n"
	"Hello Bob, hello Carol,\r\n"
	"\r\n"
	"the quarterly report is below.\r\n"
	"-- \r\n"
	"Alice\r\n";

static struct ndr_input base_input(enum ndr_kind kind, const struct ndr_rcpt *rcpts, size_t n)
{
	struct ndr_input in = {
		.kind = kind,
		.reporting_mta = "mx1.gateway.example",
		.queue_id = "0192F3A2C7D1E5B60001",
		.sender = "alice@sender.example",
		.arrival = T_ARRIVAL,
		.ret = NDR_RET_HDRS,
		.msg = original,
		.msg_len = sizeof(original) - 1,
		.rcpts = rcpts,
		.nrcpts = n,
		.now = T_ARRIVAL + 4,
		.token = "0192F3A2C7D1E5B60002",
	};
	return in;
}

/* ---- NDR: golden files -------------------------------------------------------------- */

/* Two failed recipients with different causes: an unknown mailbox, and a DNSBL refusal by
 * another mxgate whose multi-line reply names the list and a reference. */
static const struct ndr_rcpt two_causes[] = {
	{
		.orcpt = "rfc822;bob@acme.example",
		.rcpt = "bob@acme.example",
		.action = NDR_ACTION_FAILED,
		.status = "5.1.1",
		.remote_mta = "mail.acme.example",
		.remote_ip = "192.0.2.25",
		.remote_reply = "550 5.1.1 <bob@acme.example>: Recipient address rejected: User "
				"unknown in virtual mailbox table",
		.last_attempt = T_ARRIVAL + 3,
	},
	{
		.orcpt = "rfc822;Carol.Jones@partner.example",
		.rcpt = "carol@partner.example",
		.action = NDR_ACTION_FAILED,
		.status = "5.7.1",
		.remote_mta = "mx.partner.example",
		.remote_ip = "203.0.113.9",
		.remote_reply = "550-5.7.1 Service unavailable; client [198.51.100.7] blocked using "
				"Spamhaus ZEN (listed); see https://check.spamhaus.example/"
				"lookup?ip=198.51.100.7\r\n"
				"550 5.7.1 mx.partner.example ref=k3v9q2m8x4tz",
		.last_attempt = T_ARRIVAL + 4,
	},
};

static void test_golden_two_causes(void **state)
{
	struct ndr_input in = base_input(NDR_FAILURE, two_causes, ARRAY_LEN(two_causes));

	(void)state;
	in.envid = "QR-2026-11-27-0042";
	check_build_golden("ndr-two-causes.eml", &in, 0);
}

static void test_golden_delay(void **state)
{
	static const struct ndr_rcpt r[] = { {
		.rcpt = "bob@acme.example",
		.action = NDR_ACTION_DELAYED,
		.status = "4.4.1",
		.remote_mta = "mail.acme.example",
		.remote_ip = "192.0.2.25",
		.detail = "connect to mail.acme.example[192.0.2.25]:25: connection timed out",
		.last_attempt = T_ARRIVAL + 4 * 3600,
	} };
	struct ndr_input in = base_input(NDR_DELAY, r, 1);

	(void)state;
	in.retry_until = T_ARRIVAL + FIVE_DAYS;
	in.now = T_ARRIVAL + 4 * 3600 + 5;
	check_build_golden("ndr-delay.eml", &in, 0);
}

static void test_golden_ret_full(void **state)
{
	static const struct ndr_rcpt r[] = { {
		.rcpt = "bob@acme.example",
		.action = NDR_ACTION_FAILED,
		.status = "5.2.2",
		.remote_mta = "mail.acme.example",
		.remote_reply = "552 5.2.2 <bob@acme.example>: mailbox full (quota exceeded)",
		.last_attempt = T_ARRIVAL + 2,
	} };
	struct ndr_input in = base_input(NDR_FAILURE, r, 1);

	(void)state;
	in.ret = NDR_RET_FULL;
	check_build_golden("ndr-ret-full.eml", &in, 0);
}

/* No Message-ID (so no In-Reply-To/References), no Subject, LF line ends, and a failure
 * without any remote server: the recipient domain has no mail server. */
static void test_golden_no_msgid(void **state)
{
	static const char orig[] = "From: alice@sender.example\n"
				   "To: dave@nowhere.example\n"
				   "Date: Fri, 27 Nov 2026 10:14:57 +0000\n"
				   "\n"
				   "no subject, no id\n";
	static const struct ndr_rcpt r[] = { {
		.rcpt = "dave@nowhere.example",
		.action = NDR_ACTION_FAILED,
		.status = "5.4.4",
		.detail = "no MX and no A or AAAA records for nowhere.example",
		.last_attempt = T_ARRIVAL + 1,
	} };
	struct ndr_input in = base_input(NDR_FAILURE, r, 1);

	(void)state;
	in.msg = orig;
	in.msg_len = sizeof(orig) - 1;
	in.queue_id = NULL;
	check_build_golden("ndr-no-msgid.eml", &in, 0);
}

/* A raw UTF-8 subject (RFC 6532): encoded as RFC 2047 words in the report's Subject, shown
 * as UTF-8 in the 8-bit human part; the returned headers are 8-bit too. */
static void test_golden_utf8_subject(void **state)
{
	static const char orig[] =
		"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <juergen@sender.example>\r\n"
		"To: bob@acme.example\r\n"
		"Subject: \xc3\x9c" "berweisung f\xc3\xbcr M\xc3\xa4rz \xe2\x80\x94 Rechnung "
		"\xe2\x84\x96" "42 und ein sehr langer Betreff, der gefaltet werden muss\r\n"
		"Date: Fri, 27 Nov 2026 10:14:57 +0000\r\n"
		"Message-ID: <utf8-1@sender.example>\r\n"
		"\r\n"
		"Hallo.\r\n";
	static const struct ndr_rcpt r[] = { {
		.rcpt = "bob@acme.example",
		.action = NDR_ACTION_FAILED,
		.status = "5.3.4",
		.remote_mta = "mail.acme.example",
		.remote_reply = "552 5.3.4 Message size exceeds fixed maximum message size",
		.last_attempt = T_ARRIVAL + 2,
	} };
	struct ndr_input in = base_input(NDR_FAILURE, r, 1);

	(void)state;
	in.msg = orig;
	in.msg_len = sizeof(orig) - 1;
	in.sender = "juergen@sender.example";
	check_build_golden("ndr-utf8-subject.eml", &in, NDR_NEEDS_8BITMIME);
}

/* Expiry: failed with 4.4.7 after the queue lifetime, the last reply kept. */
static void test_golden_expired(void **state)
{
	static const struct ndr_rcpt r[] = { {
		.orcpt = "rfc822;bob@acme.example",
		.rcpt = "bob@acme.example",
		.action = NDR_ACTION_FAILED,
		.status = "4.4.7",
		.remote_mta = "mail.acme.example",
		.remote_ip = "192.0.2.25",
		.remote_reply = "451 4.3.0 Temporary lookup failure",
		.last_attempt = T_ARRIVAL + FIVE_DAYS - 600,
	} };
	struct ndr_input in = base_input(NDR_FAILURE, r, 1);

	(void)state;
	in.now = T_ARRIVAL + FIVE_DAYS + 1;
	check_build_golden("ndr-expired.eml", &in, 0);
}

/* ---- NDR: behaviour ----------------------------------------------------------------- */

static const struct ndr_rcpt one_failed[] = { {
	.rcpt = "bob@acme.example",
	.action = NDR_ACTION_FAILED,
	.status = "5.1.1",
	.remote_mta = "mail.acme.example",
	.remote_reply = "550 5.1.1 unknown",
} };

static void expect_refused(const struct ndr_input *in, const char *why_part)
{
	const char *err = NULL;
	size_t len = 99;
	char *m = ndr_build(in, &len, NULL, &err);

	if (m)
		fail_msg("built a report, want refusal containing \"%s\"", why_part);
	assert_non_null(err);
	if (!strstr(err, why_part))
		fail_msg("reason \"%s\", want \"%s\"", err, why_part);
	assert_int_equal(len, 0);
}

static void test_refusals(void **state)
{
	struct ndr_input in = base_input(NDR_FAILURE, one_failed, 1);
	struct ndr_rcpt r = one_failed[0];

	(void)state;
	in.sender = "";
	expect_refused(&in, "null sender");
	in.sender = NULL;
	expect_refused(&in, "null sender");
	in = base_input(NDR_FAILURE, one_failed, 0);
	expect_refused(&in, "recipient");
	in = base_input(NDR_FAILURE, one_failed, NDR_RCPTS_MAX + 1);
	expect_refused(&in, "recipient");
	in = base_input(NDR_FAILURE, &r, 1);
	in.token = "has space";
	expect_refused(&in, "token");
	in.token = "0123456789012345678901234567890123456789012345678"; /* 49 */
	expect_refused(&in, "token");
	in = base_input(NDR_FAILURE, &r, 1);
	in.reporting_mta = "mx1.example>\r\nBcc: x@y";
	expect_refused(&in, "reporting MTA");
	in = base_input(NDR_FAILURE, &r, 1);
	in.sender = "alice@sender.example\r\nBcc: victim@example";
	expect_refused(&in, "sender");

	in = base_input(NDR_FAILURE, &r, 1);
	r.status = "5.1";
	expect_refused(&in, "status");
	r.status = "2.0.0";
	expect_refused(&in, "status");
	r.status = "5.1.1";
	r.rcpt = "bob@acme.example\nX: y";
	expect_refused(&in, "recipient address");
	r.rcpt = "";
	expect_refused(&in, "recipient address");
	r.rcpt = "bob@acme.example";
	r.action = NDR_ACTION_DELAYED;
	expect_refused(&in, "class 4"); /* delayed with 5.1.1 */
	r.status = "4.4.1";
	expect_refused(&in, "at least one failed"); /* failure report, nothing failed */
	in.kind = NDR_DELAY;
	r.status = "5.1.1";
	r.action = NDR_ACTION_FAILED;
	expect_refused(&in, "only report delayed");
}

/* A message that contains the natural boundary (and its first alternative) gets another. */
static void test_boundary_collision(void **state)
{
	static const char orig[] = "Subject: boundary games\r\n"
				   "X-A: --=_ndr_TOK\r\n"
				   "X-B: --=_ndr_TOK.00000000\r\n"
				   "\r\n"
				   "body\r\n";
	struct ndr_input in = base_input(NDR_FAILURE, one_failed, 1);
	size_t len;
	unsigned flags;
	char *m;

	(void)state;
	in.msg = orig;
	in.msg_len = sizeof(orig) - 1;
	in.token = "TOK";
	m = build_ok(&in, &len, &flags);
	assert_non_null(strstr(m, "boundary=\"=_ndr_TOK.00000001\""));
	assert_non_null(strstr(m, "\r\n--=_ndr_TOK.00000001--\r\n"));
	free(m);
}

/* RET=FULL of a message that cannot be returned unchanged: its headers, and the human part
 * says why. */
static void test_ret_full_refused(void **state)
{
	char *orig = malloc(3000);
	struct ndr_input in = base_input(NDR_FAILURE, one_failed, 1);
	size_t len, n;
	unsigned flags;
	char *m;

	(void)state;
	assert_non_null(orig);
	n = (size_t)snprintf(orig, 3000, "Subject: long line\r\n\r\n");
	memset(orig + n, 'x', 1500);
	memcpy(orig + n + 1500, "\r\n", 2);
	in.msg = orig;
	in.msg_len = n + 1502;
	in.ret = NDR_RET_FULL;
	m = build_ok(&in, &len, &flags);
	assert_non_null(strstr(m, "Content-Type: text/rfc822-headers\r\n"));
	assert_null(strstr(m, "message/rfc822"));
	assert_non_null(strstr(m, "header section only"));
	assert_null(strstr(m, "xxxxxxxx"));
	free(m);
	free(orig);
}

/* Whatever the sender or the remote server put into a field cannot add a field. */
static void test_no_injection(void **state)
{
	static const char orig[] = "Subject: hi\r\n"
				   "Message-ID: <a@b>\r\n\tX-Evil: folded\r\n"
				   "\r\n";
	static const struct ndr_rcpt r[] = { {
		.orcpt = "rfc822;bob@acme.example\r\nAction: delivered",
		.rcpt = "bob@acme.example",
		.action = NDR_ACTION_FAILED,
		.status = "5.1.1",
		.remote_mta = "mail.acme.example\r\nStatus: 2.0.0",
		.remote_reply = "550 5.1.1 no\r\nAction: delivered\r\n\r\nFinal-Recipient: rfc822; x@y",
		.detail = NULL,
	} };
	struct ndr_input in = base_input(NDR_FAILURE, r, 1);
	size_t len;
	unsigned flags;
	char *m;

	(void)state;
	in.msg = orig;
	in.msg_len = sizeof(orig) - 1;
	in.envid = "id\r\nReporting-MTA: dns; evil.example";
	m = build_ok(&in, &len, &flags);
	assert_null(strstr(m, "\r\nAction: delivered"));
	assert_null(strstr(m, "\r\nStatus: 2.0.0"));
	assert_null(strstr(m, "\r\nReporting-MTA: dns; evil"));
	assert_null(strstr(m, "\r\nFinal-Recipient: rfc822; x@y"));
	assert_non_null(strstr(m, "Original-Recipient: rfc822; bob@acme.example??Action: "
				  "delivered\r\n"));
	assert_non_null(strstr(m, "Diagnostic-Code: smtp; 550 5.1.1 no Action: delivered"));
	assert_non_null(strstr(m, "Original-Envelope-Id: id??Reporting-MTA: dns; evil.example"));
	assert_non_null(strstr(m, "In-Reply-To: <a@b>\r\n"));
	free(m);
}

/* Encoded words are decoded for the human part; an ASCII subject is kept as it is in the
 * Subject header; a folded subject is unfolded and refolded. */
static void test_subject_handling(void **state)
{
	static const char orig[] =
		"Subject: =?UTF-8?B?w5xiZXJ3ZWlzdW5n?= =?iso-8859-1?q?f=FCr_M=E4rz?=\r\n"
		" plain =?koi8-r?b?8NLJ18XU?=\r\n"
		"\r\n";
	struct ndr_input in = base_input(NDR_FAILURE, one_failed, 1);
	size_t len;
	unsigned flags;
	char *m;

	(void)state;
	in.msg = orig;
	in.msg_len = sizeof(orig) - 1;
	m = build_ok(&in, &len, &flags);
	assert_non_null(strstr(m, "Subject: Undeliverable: =?UTF-8?B?w5xiZXJ3ZWlzdW5n?=\r\n"
				  " =?iso-8859-1?q?f=FCr_M=E4rz?= plain =?koi8-r?b?8NLJ18XU?=\r\n"));
	assert_non_null(strstr(m, "  Subject:          \xc3\x9c" "berweisungf\xc3\xbcr M\xc3\xa4rz "
				  "plain =?koi8-r?b?8NLJ18XU?=\r\n"));
	assert_int_equal(flags, NDR_NEEDS_8BITMIME);
	free(m);
}

/* A non-ASCII recipient: RFC 6533 utf-8 address type in the delivery-status part; a
 * non-ASCII sender needs SMTPUTF8 for the To: header. */
static void test_utf8_addresses(void **state)
{
	static const struct ndr_rcpt r[] = { {
		.rcpt = "j\xc3\xbcrgen+x@m\xc3\xbcller.example",
		.action = NDR_ACTION_FAILED,
		.status = "5.1.1",
	} };
	struct ndr_input in = base_input(NDR_FAILURE, r, 1);
	size_t len;
	unsigned flags;
	char *m;

	(void)state;
	in.sender = "\xc3\xa5sa@sender.example";
	m = build_ok(&in, &len, &flags);
	assert_int_equal(flags, NDR_NEEDS_8BITMIME | NDR_NEEDS_SMTPUTF8);
	assert_non_null(
		strstr(m, "Final-Recipient: utf-8; j\\x{FC}rgen\\x{2B}x@m\\x{FC}ller.example\r\n"));
	assert_non_null(strstr(m, "To: <\xc3\xa5sa@sender.example>\r\n"));
	free(m);
}

static void test_format_date(void **state)
{
	char d[NDR_DATE_MAX];

	(void)state;
	assert_string_equal(ndr_format_date(T_ARRIVAL, d), "Fri, 27 Nov 2026 10:14:58 +0000");
	assert_string_equal(ndr_format_date(0, d), "Thu, 01 Jan 1970 00:00:00 +0000");
	assert_string_equal(ndr_format_date((time_t)951782400, d), "Tue, 29 Feb 2000 00:00:00 +0000");
}

/* Many recipients and long texts: still within the line limits (checked by build_ok). */
static void test_many_and_long(void **state)
{
	enum { N = 40 };
	static struct ndr_rcpt r[N];
	static char addrs[N][64];
	char *reply = malloc(4000), *subject = malloc(5000);
	struct ndr_input in;
	size_t len, n;
	unsigned flags;
	char *m;

	(void)state;
	assert_non_null(reply);
	assert_non_null(subject);
	memset(reply, 'r', 3000); /* one "word" of 3000 octets */
	reply[3000] = '\0';
	for (size_t i = 0; i < N; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "user%zu@acme.example", i);
		r[i] = (struct ndr_rcpt){ .rcpt = addrs[i], .action = NDR_ACTION_FAILED,
					  .status = i % 2 ? "5.1.1" : "5.2.2",
					  .remote_mta = "mail.acme.example",
					  .remote_reply = reply };
	}
	n = (size_t)snprintf(subject, 5000, "Subject: ");
	for (size_t i = 0; i < 300; i++)
		n += (size_t)snprintf(subject + n, 5000 - n, "word%zu ", i);
	memset(subject + n, 's', 1200);
	memcpy(subject + n + 1200, "\r\n\r\nbody\r\n", 10);
	in = base_input(NDR_FAILURE, r, N);
	in.msg = subject;
	in.msg_len = n + 1210;
	m = build_ok(&in, &len, &flags);
	assert_non_null(strstr(m, "Your message to 20 recipients couldn't be delivered."));
	free(m);
	free(reply);
	free(subject);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_catalog_required),
		cmocka_unit_test(test_catalog_fallback),
		cmocka_unit_test(test_catalog_malformed),
		cmocka_unit_test(test_catalog_shape),
		cmocka_unit_test(test_ndr_cmd),
		cmocka_unit_test(test_golden_two_causes),
		cmocka_unit_test(test_golden_delay),
		cmocka_unit_test(test_golden_ret_full),
		cmocka_unit_test(test_golden_no_msgid),
		cmocka_unit_test(test_golden_utf8_subject),
		cmocka_unit_test(test_golden_expired),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_boundary_collision),
		cmocka_unit_test(test_ret_full_refused),
		cmocka_unit_test(test_no_injection),
		cmocka_unit_test(test_subject_handling),
		cmocka_unit_test(test_utf8_addresses),
		cmocka_unit_test(test_format_date),
		cmocka_unit_test(test_many_and_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
