/* Unit tests for qfile: the queue file format. A golden envelope, round trips of envelope +
 * body + END record through qfile_parse, every truncation refused, malformed files refused
 * with the right reason, and the %XX escaping of values.
 *
 * Files are parsed from heap copies of exactly their length (qfile_parse modifies its buffer
 * and must not read past len). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "queue/qfile.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const struct queue_rcpt rcpts[] = {
	{ "someone@example.test", "default", "127.0.0.1:2600", "NOTIFY=FAILURE" },
	{ "other@example.test", "default", "127.0.0.1:2600", "" },
};

static const struct queue_envelope golden_env = {
	.qid = "6B09F5F4D0122013C501",
	.arrival = 1795814900,
	.sid = "bh49jv5eftia",
	.client_ip = "192.0.2.7",
	.helo = "mail.example.org",
	.tls = "TLSv1.3:TLS_AES_256_GCM_SHA384:256",
	.mail_from = "alice@example.org",
	.mail_params = "BODY=8BITMIME SMTPUTF8",
	.rcpts = rcpts,
	.nrcpt = 2,
};

static const char golden_text[] = "MXGQ 1\n"
				  "id 6B09F5F4D0122013C501\n"
				  "arrival 1795814900\n"
				  "session bh49jv5eftia\n"
				  "client 192.0.2.7\n"
				  "helo mail.example.org\n"
				  "tls TLSv1.3:TLS_AES_256_GCM_SHA384:256\n"
				  "from alice@example.org\n"
				  "mail-params BODY=8BITMIME%20SMTPUTF8\n"
				  "rcpt someone@example.test\n"
				  "rcpt-tenant default\n"
				  "rcpt-route 127.0.0.1:2600\n"
				  "rcpt-params NOTIFY=FAILURE\n"
				  "rcpt other@example.test\n"
				  "rcpt-tenant default\n"
				  "rcpt-route 127.0.0.1:2600\n"
				  "body\n";

/* envelope + body + END record, malloc'd with exactly *len_r bytes. */
static char *build_file(const struct queue_envelope *env, const char *body, size_t body_len,
			size_t *len_r)
{
	size_t elen, rlen;
	char *envelope = qfile_envelope(env, &elen);
	char end[48];
	char *file;

	assert_non_null(envelope);
	rlen = qfile_end_record(end, sizeof(end), body_len);
	assert_true(rlen > 0);
	file = malloc(elen + body_len + rlen);
	assert_non_null(file);
	memcpy(file, envelope, elen);
	if (body_len)
		memcpy(file + elen, body, body_len);
	memcpy(file + elen + body_len, end, rlen);
	free(envelope);
	*len_r = elen + body_len + rlen;
	return file;
}

/* Parses a private copy of exactly len bytes. */
static int parse_copy(const char *file, size_t len, struct qfile_view *v, const char **why,
		      char **copy_r)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	if (len)
		memcpy(copy, file, len);
	rc = qfile_parse(copy, len, v, why);
	if (copy_r)
		*copy_r = copy;
	else
		free(copy);
	return rc;
}

/* ---- envelope ---------------------------------------------------------------------------- */

static void test_envelope_golden(void **state)
{
	size_t len = 0;
	char *e;

	(void)state;
	e = qfile_envelope(&golden_env, &len);
	assert_int_equal(len, sizeof(golden_text) - 1);
	assert_memory_equal(e, golden_text, len);
	free(e);
}

static void test_envelope_null_sender_no_tls(void **state)
{
	static const struct queue_rcpt r[] = { { "a@example.test", "t1", "[::1]:25", "" } };
	static const char want[] = "MXGQ 1\n"
				   "id 0000000000000000AB01\n"
				   "arrival 0\n"
				   "session s1\n"
				   "client 2001:db8::1\n"
				   "helo [IPv6:2001:db8::1]\n"
				   "tls -\n"
				   "from <>\n"
				   "rcpt a@example.test\n"
				   "rcpt-tenant t1\n"
				   "rcpt-route [::1]:25\n"
				   "body\n";
	struct queue_envelope env = {
		.qid = "0000000000000000AB01",
		.arrival = 0,
		.sid = "s1",
		.client_ip = "2001:db8::1",
		.helo = "[IPv6:2001:db8::1]",
		.tls = "",
		.mail_from = "",
		.mail_params = "",
		.rcpts = r,
		.nrcpt = 1,
	};
	size_t len = 0;
	char *e = qfile_envelope(&env, &len);

	(void)state;
	assert_int_equal(len, sizeof(want) - 1);
	assert_memory_equal(e, want, len);
	free(e);
}

/* Client-controlled values cannot add records: controls and spaces are escaped. */
static void test_envelope_escapes_values(void **state)
{
	static const struct queue_rcpt r[] = {
		{ "a@example.test\nrcpt evil@x", "t", "h:1", "X=1\r\nrcpt y" },
	};
	struct queue_envelope env = golden_env;
	struct qfile_view v;
	const char *why = NULL;
	size_t len;
	char *file, *copy;

	(void)state;
	env.helo = "evil\nrcpt injected@example.test\nx %41";
	env.mail_from = "a b@example.org";
	env.rcpts = r;
	env.nrcpt = 1;
	file = build_file(&env, "x\r\n", 3, &len);
	assert_non_null(strstr(file, "\nhelo evil%0Arcpt%20injected@example.test%0Ax%20%2541\n"));
	assert_non_null(strstr(file, "\nrcpt a@example.test%0Arcpt%20evil@x\n"));
	assert_non_null(strstr(file, "\nrcpt-params X=1%0D%0Arcpt%20y\n"));
	assert_int_equal(parse_copy(file, len, &v, &why, &copy), 0);
	assert_int_equal(v.nrcpt, 1);
	assert_string_equal(v.helo, "evil%0Arcpt%20injected@example.test%0Ax%20%2541");
	assert_string_equal(v.from, "a%20b@example.org");
	free(copy);
	free(file);
}

/* ---- round trips ------------------------------------------------------------------------- */

struct body_case {
	const char *name;
	const char *body;
};

static const struct body_case body_cases[] = {
	{ "empty", "" },
	{ "one line", "Subject: hello\r\n" },
	{ "headers and body", "Received: from x\r\nSubject: hi\r\n\r\nHello.\r\n" },
	{ "empty lines", "\r\n\r\n\r\n" },
	{ "looks like records", "body\r\nrcpt evil@x\r\nend 5\r\nMXGQ 1\r\n" },
	{ "END-like lines", "end 0\r\nend 12\r\n" },
	{ "binary", "\x01\x7f\x80\xff\r\n" },
};

/* Builds golden_env + body + END, parses it; on success checks every field. Returns the
 * qfile_parse result; *why_r gets the reason on failure. */
static int round_trip(const char *name, const char *body, size_t body_len, const char **why_r)
{
	struct qfile_view v;
	const char *why = NULL;
	size_t len;
	char *file = build_file(&golden_env, body, body_len, &len), *copy;
	int rc = parse_copy(file, len, &v, &why, &copy);

	*why_r = why;
	if (rc == 0) {
		assert_string_equal(v.qid, "6B09F5F4D0122013C501");
		assert_string_equal(v.client, "192.0.2.7");
		assert_string_equal(v.helo, "mail.example.org");
		assert_string_equal(v.tls, "TLSv1.3:TLS_AES_256_GCM_SHA384:256");
		assert_string_equal(v.from, "alice@example.org");
		assert_int_equal(v.nrcpt, 2);
		if (v.body_len != body_len)
			fail_msg("%s: body_len %llu, want %zu", name, (unsigned long long)v.body_len,
				 body_len);
		assert_non_null(v.body);
		assert_true(v.body >= copy && v.body + body_len <= copy + len);
		if (body_len && memcmp(v.body, body, body_len) != 0)
			fail_msg("%s: body differs", name);
	}
	free(copy);
	free(file);
	return rc;
}

static void check_round_trip(const char *name, const char *body, size_t body_len)
{
	const char *why;

	if (round_trip(name, body, body_len, &why) != 0)
		fail_msg("%s: qfile_parse failed: %s", name, why ? why : "?");
}

static void test_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(body_cases); i++)
		check_round_trip(body_cases[i].name, body_cases[i].body, strlen(body_cases[i].body));
}

static void test_round_trip_big_body(void **state)
{
	const size_t n = 100000;
	char *body = malloc(n);

	(void)state;
	assert_non_null(body);
	for (size_t i = 0; i < n; i++)
		body[i] = i % 80 == 78 ? '\r' : i % 80 == 79 ? '\n' : (char)('a' + i % 26);
	check_round_trip("100 kB", body, n);
	free(body);
}

/* SMTP DATA may carry NUL octets (datastream passes them through); the file must still be
 * readable, or an accepted message could never be delivered. */
static void test_round_trip_nul_in_body(void **state)
{
	static const char body[] = "a\0b\r\n";
	const char *why;
	int rc = round_trip("NUL in body", body, sizeof(body) - 1, &why);

	(void)state;
	(void)rc;
	if (rc != 0)
		fail_msg("qfile_parse failed: %s", why ? why : "?");
}

/* qfile.h: the END record follows the body directly, and every body the session writes ends
 * in CRLF (the Received header at least). A body without a final LF therefore cannot be told
 * from a damaged file, and is refused rather than misread. */
static void test_body_without_final_lf_refused(void **state)
{
	const char *why = NULL;
	int rc = round_trip("no final LF", "abc", 3, &why);

	(void)state;
	assert_int_equal(rc, -1);
	assert_non_null(why);
}

/* ---- truncation and damage --------------------------------------------------------------- */

static void test_every_prefix_fails(void **state)
{
	static const char *const bodies[] = { "", "Subject: x\r\n\r\nbody\r\n",
					      "end 3\r\nend 0\r\n" };

	(void)state;
	for (size_t b = 0; b < ARRAY_LEN(bodies); b++) {
		size_t len;
		char *file = build_file(&golden_env, bodies[b], strlen(bodies[b]), &len);
		struct qfile_view v;
		const char *why;

		assert_int_equal(parse_copy(file, len, &v, &why, NULL), 0);
		for (size_t n = 0; n < len; n++) {
			why = NULL;
			if (parse_copy(file, n, &v, &why, NULL) != -1)
				fail_msg("body %zu: a prefix of %zu of %zu bytes parsed", b, n, len);
			assert_non_null(why);
		}
		free(file);
	}
}

static void test_body_length_mismatch(void **state)
{
	static const char body[] = "Subject: x\r\n\r\nbody\r\n";
	const size_t blen = sizeof(body) - 1;
	size_t elen;
	char *envelope = qfile_envelope(&golden_env, &elen);

	(void)state;
	for (int delta = -3; delta <= 3; delta++) {
		char end[48], *file;
		size_t rlen = qfile_end_record(end, sizeof(end), (uint64_t)((long)blen + delta));
		struct qfile_view v;
		const char *why = NULL;
		int rc;

		file = malloc(elen + blen + rlen);
		assert_non_null(file);
		memcpy(file, envelope, elen);
		memcpy(file + elen, body, blen);
		memcpy(file + elen + blen, end, rlen);
		rc = parse_copy(file, elen + blen + rlen, &v, &why, NULL);
		if (delta == 0) {
			assert_int_equal(rc, 0);
		} else {
			if (rc != -1)
				fail_msg("END off by %d accepted", delta);
			assert_string_equal(why, "body length does not match the END record");
		}
		free(file);
	}
	free(envelope);
}

struct bad_case {
	const char *name;
	const char *file;
	const char *why;
};

#define MAGIC "MXGQ 1\n"
#define MIN_ENV "id Q1\nfrom a@b.example\nrcpt c@d.example\n"
#define BODY_END "body\nx\r\nend 3\n"

#define MISSING_END "missing END record (incomplete file)"

static const struct bad_case bad_cases[] = {
	{ "minimal is fine", MAGIC MIN_ENV BODY_END, NULL },
	{ "all known records", MAGIC "id Q1\narrival 1\nsession s\nclient c\nhelo h\ntls -\n"
				     "from <>\nmail-params P\nrcpt r\nrcpt-tenant t\n"
				     "rcpt-route h:1\nrcpt-params X\n" BODY_END,
	  NULL },
	{ "empty file", "", "bad magic" },
	{ "magic only", MAGIC, MISSING_END },
	{ "version 2", "MXGQ 2\n" MIN_ENV BODY_END, "bad magic" },
	{ "lower-case magic", "mxgq 1\n" MIN_ENV BODY_END, "bad magic" },
	{ "no magic", MIN_ENV BODY_END, "bad magic" },
	{ "unknown record", MAGIC MIN_ENV "x-unknown 1\n" BODY_END, "unknown record" },
	{ "unknown record first", MAGIC "color red\n" MIN_ENV BODY_END, "unknown record" },
	{ "record upper case", MAGIC "ID Q1\nfrom a\nrcpt r\n" BODY_END, "unknown record" },
	{ "record without value", MAGIC MIN_ENV "helo\n" BODY_END, "record without value" },
	{ "empty line", MAGIC MIN_ENV "\n" BODY_END, "record without value" },
	{ "no recipient", MAGIC "id Q1\nfrom a@b.example\n" BODY_END, "envelope incomplete" },
	{ "no id", MAGIC "from a@b.example\nrcpt c@d.example\n" BODY_END, "envelope incomplete" },
	{ "no from", MAGIC "id Q1\nrcpt c@d.example\n" BODY_END, "envelope incomplete" },
	{ "no body record", MAGIC MIN_ENV "end 0\n", "envelope incomplete" },
	{ "END not a number", MAGIC MIN_ENV "body\nx\r\nend x\n", MISSING_END },
	{ "END negative", MAGIC MIN_ENV "body\nend -0\n", MISSING_END },
	{ "END plus sign", MAGIC MIN_ENV "body\nx\r\nend +3\n", MISSING_END },
	{ "END two spaces", MAGIC MIN_ENV "body\nx\r\nend  3\n", MISSING_END },
	{ "END trailing space", MAGIC MIN_ENV "body\nx\r\nend 3 \n", MISSING_END },
	{ "END upper case", MAGIC MIN_ENV "body\nx\r\nEND 3\n", MISSING_END },
	{ "END without number", MAGIC MIN_ENV "body\nx\r\nend\n", MISSING_END },
	{ "END without LF", MAGIC MIN_ENV "body\nx\r\nend 3", MISSING_END },
	{ "END then empty line", MAGIC MIN_ENV "body\nx\r\nend 3\n\n", MISSING_END },
	{ "END then text", MAGIC MIN_ENV "body\nx\r\nend 3\nx", MISSING_END },
	{ "END twice", MAGIC MIN_ENV "body\nx\r\nend 3\nend 3\n",
	  "body length does not match the END record" },
	{ "END with CR", MAGIC MIN_ENV "body\nx\r\nend 3\r\n", MISSING_END },
};

static void test_malformed(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct qfile_view v;
		const char *why = NULL;
		int rc = parse_copy(c->file, strlen(c->file), &v, &why, NULL);

		if (c->why == NULL) {
			if (rc != 0)
				fail_msg("%s: refused (%s)", c->name, why ? why : "?");
			continue;
		}
		if (rc != -1)
			fail_msg("%s: accepted", c->name);
		if (why == NULL || strcmp(why, c->why) != 0)
			fail_msg("%s: why \"%s\", want \"%s\"", c->name, why ? why : "(null)", c->why);
	}
}

/* Only the rcpt-* records docs/queue-format.md names are known. */
static void test_unknown_rcpt_record(void **state)
{
	static const char file[] = MAGIC MIN_ENV "rcpt-bogus 1\n" BODY_END;
	struct qfile_view v;
	const char *why = NULL;
	int rc = parse_copy(file, sizeof(file) - 1, &v, &why, NULL);

	(void)state;
	(void)rc;
	assert_int_equal(rc, -1);
	assert_string_equal(why, "unknown record");
}

/* A raw NUL inside a record (found by fuzz/fuzz_qfile.c): qfile_parse saw "from a" and one
 * recipient, while qfile_env_read's walk over the NUL-separated records took "rcpt" after the
 * NUL for a recipient of its own and wrote past the array sized by qfile_parse. */
/* Only "%" and two hex digits is an escape; sscanf("%2x") took "%+f", "% 1" and "%-1" too. */
static void test_unescape_strict(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "a%41b", "aAb" },   { "%4a%4A", "JJ" },  { "%+f", "%+f" },  { "% 1", "% 1" },
		{ "%-1", "%-1" },     { "%4", "%4" },      { "%", "%" },      { "%zz%41", "%zzA" },
		{ "%%41", "%A" },     { "x%0", "x%0" },    { "%0g", "%0g" },
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		qfile_unescape(buf);
		assert_string_equal(buf, cases[i].out);
	}
}

static void test_nul_in_record(void **state)
{
	static const char file[] = MAGIC "id Q1\nfrom a\0rcpt\0x\nrcpt c@d.example\n" BODY_END;
	static const char in_key[] = MAGIC MIN_ENV "rcpt\0-tenant t\n" BODY_END;
	static const char after_body[] = MAGIC MIN_ENV "body\0rcpt\0x\nx\r\nend 3\n";
	const char *const files[] = { file, in_key, after_body };
	const size_t lens[] = { sizeof(file) - 1, sizeof(in_key) - 1, sizeof(after_body) - 1 };

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(files); i++) {
		struct qfile_view v;
		struct qfile_env env;
		const char *why = NULL;
		char *copy = malloc(lens[i]);

		assert_int_equal(parse_copy(files[i], lens[i], &v, &why, NULL), -1);
		assert_string_equal(why, "NUL byte in a record");
		assert_non_null(copy);
		memcpy(copy, files[i], lens[i]);
		why = NULL;
		assert_int_equal(qfile_env_read(copy, lens[i], &env, &why), -1);
		assert_string_equal(why, "NUL byte in a record");
		assert_null(env.rcpts);
		qfile_env_free(&env);
		free(copy);
	}
}

/* ---- END record -------------------------------------------------------------------------- */

static void test_end_record(void **state)
{
	char buf[48];

	(void)state;
	assert_int_equal(qfile_end_record(buf, sizeof(buf), 431), 8);
	assert_string_equal(buf, "end 431\n");
	assert_int_equal(qfile_end_record(buf, sizeof(buf), 0), 6);
	assert_string_equal(buf, "end 0\n");
	assert_int_equal(qfile_end_record(buf, sizeof(buf), UINT64_MAX), 25);
	assert_string_equal(buf, "end 18446744073709551615\n");
	/* Exactly enough room (with the NUL), then one octet less: 0, nothing usable. */
	assert_int_equal(qfile_end_record(buf, 9, 431), 8);
	assert_int_equal(qfile_end_record(buf, 8, 431), 0);
	assert_int_equal(qfile_end_record(buf, 1, 431), 0);
}

/* ---- qfile_escape ------------------------------------------------------------------------ */

struct esc_case {
	const char *in, *out;
};

static const struct esc_case esc_cases[] = {
	{ "", "" },
	{ "abc", "abc" },
	{ "a@b.example", "a@b.example" },
	{ "a b", "a%20b" },
	{ " ", "%20" },
	{ "100%", "100%25" },
	{ "%41", "%2541" },
	{ "\t\r\n", "%09%0D%0A" },
	{ "\x01\x1f", "%01%1F" },
	{ "\x7f", "%7F" },
	{ "!~", "!~" },
	{ "<>[]:;=+", "<>[]:;=+" },
	{ "\xc3\xa9\xff\x80", "\xc3\xa9\xff\x80" },
	{ "BODY=8BITMIME SMTPUTF8", "BODY=8BITMIME%20SMTPUTF8" },
};

static void test_escape(void **state)
{
	char buf[128];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(esc_cases); i++) {
		size_t n = qfile_escape(buf, sizeof(buf), esc_cases[i].in);

		if (strcmp(buf, esc_cases[i].out) != 0)
			fail_msg("qfile_escape(row %zu) = \"%s\", want \"%s\"", i, buf, esc_cases[i].out);
		assert_int_equal(n, strlen(esc_cases[i].out));
	}
}

/* Every octet 1..255 is either kept or escaped as %XX with upper-case hex. */
static void test_escape_every_octet(void **state)
{
	(void)state;
	for (unsigned c = 1; c < 256; c++) {
		char in[2] = { (char)c, 0 }, out[8], want[8];

		if (c <= 0x20 || c == '%' || c == 0x7f)
			snprintf(want, sizeof(want), "%%%02X", c);
		else
			snprintf(want, sizeof(want), "%c", (char)c);
		qfile_escape(out, sizeof(out), in);
		if (strcmp(out, want) != 0)
			fail_msg("octet 0x%02x: \"%s\", want \"%s\"", c, out, want);
	}
}

/* A small buffer truncates at an escape boundary, NUL-terminated, never beyond dstsz. */
static void test_escape_small_buffer(void **state)
{
	static const char in[] = "a b%c\x01" "d";
	static const char full[] = "a%20b%25c%01d";

	(void)state;
	for (size_t sz = 1; sz <= sizeof(full) + 4; sz++) {
		char *buf = malloc(sz);
		size_t n;

		assert_non_null(buf);
		n = qfile_escape(buf, sz, in);
		assert_true(n < sz);
		assert_int_equal(strlen(buf), n);
		assert_memory_equal(buf, full, n);
		/* Never half an escape. */
		if (n > 0)
			assert_true(buf[n - 1] != '%' && (n < 2 || buf[n - 2] != '%'));
		free(buf);
	}
	{
		char buf[sizeof(full) + 4];
		assert_int_equal(qfile_escape(buf, sizeof(buf), in), strlen(full));
		assert_string_equal(buf, full);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_envelope_golden),
		cmocka_unit_test(test_envelope_null_sender_no_tls),
		cmocka_unit_test(test_envelope_escapes_values),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_round_trip_big_body),
		cmocka_unit_test(test_round_trip_nul_in_body),
		cmocka_unit_test(test_body_without_final_lf_refused),
		cmocka_unit_test(test_every_prefix_fails),
		cmocka_unit_test(test_body_length_mismatch),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_unknown_rcpt_record),
		cmocka_unit_test(test_nul_in_record),
		cmocka_unit_test(test_unescape_strict),
		cmocka_unit_test(test_end_record),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_every_octet),
		cmocka_unit_test(test_escape_small_buffer),
	};

	return cmocka_run_group_tests_name("qfile", tests, NULL, NULL);
}
