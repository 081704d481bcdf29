/* fuzz_smtp_command: the SMTP command line parsers of src/smtp/parse.h.
 *
 * Input: one mode byte, then a command line as the session hands it to the parsers (without
 * its CRLF; a NUL ends it early, as it does for the session). Mode bits:
 *   0x01  prefix FROM: (else TO:) when the verb is neither MAIL nor RCPT
 *   0x02  allow_null        0x04  allow_postmaster        0x08  UTF-8 labels allowed
 *   0xf0  the xtext length limit: 0 -> DSN_ENVID_MAX, 1 -> DSN_ORCPT_MAX, else 7 * n
 * The line goes through parse_verb, its argument through parse_mail_rcpt (each call on its own
 * exact-size heap copy), and the parameters found through the DSN checks, as commands.c does;
 * the whole line also goes through every value check on its own. An accepted path must parse
 * again to the same result when written back as <addr>. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "smtp/parse.h"

#define MODE_FROM 0x01
#define MODE_NULL 0x02
#define MODE_POSTMASTER 0x04
#define MODE_UTF8 0x08
/* "SUCCESS,FAILURE,DELAY": the longest NOTIFY value with each keyword once. */
#define NOTIFY_TEXT_MAX 21

struct mode {
	const char *prefix;
	int allow_null, allow_postmaster, utf8;
	size_t xtext_max;
};

static struct mode mode_of(uint8_t m, enum smtp_verb verb)
{
	struct mode md = {
		.allow_null = !!(m & MODE_NULL),
		.allow_postmaster = !!(m & MODE_POSTMASTER),
		.utf8 = !!(m & MODE_UTF8),
	};
	unsigned x = m >> 4;

	if (verb == VERB_MAIL || verb == VERB_RCPT)
		md.prefix = verb == VERB_MAIL ? "FROM:" : "TO:";
	else
		md.prefix = (m & MODE_FROM) ? "FROM:" : "TO:";
	md.xtext_max = x == 0 ? DSN_ENVID_MAX : x == 1 ? DSN_ORCPT_MAX : 7 * (size_t)x;
	return md;
}

static int any_high(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

/* What every accepted domain must look like, checked without the parser's own loop. */
static void check_domain_shape(const char *d, size_t len, int utf8)
{
	size_t label = 0;

	FUZZ_CHECK(len >= 1 && len <= SMTP_DOMAIN_MAX);
	FUZZ_CHECK(d[0] != '.' && d[0] != '-' && d[len - 1] != '.' && d[len - 1] != '-');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		FUZZ_CHECK(c != '\0');
		FUZZ_CHECK(utf8 || c < 0x80);
		if (c == '.') {
			FUZZ_CHECK(label > 0 && d[i - 1] != '-' && d[i + 1] != '-');
			label = 0;
		} else {
			FUZZ_CHECK(isalnum(c) || c == '-' || c >= 0x80);
			FUZZ_CHECK(++label <= 63);
		}
	}
}

static void check_params(const struct esmtp_param *params, size_t n, const char *buf,
			 size_t bufsz, const struct mode *md)
{
	FUZZ_CHECK(n <= SMTP_PARAMS_MAX);
	for (size_t i = 0; i < n; i++) {
		const struct esmtp_param *p = &params[i];
		size_t klen = strnlen(p->key, sizeof(p->key));
		FUZZ_CHECK(klen >= 1 && klen <= SMTP_PARAM_KEY_MAX);
		for (size_t k = 0; k < klen; k++)
			FUZZ_CHECK(isdigit((unsigned char)p->key[k]) || isupper((unsigned char)p->key[k]) ||
				   (k > 0 && p->key[k] == '-'));
		if (!p->value)
			continue;
		FUZZ_CHECK(p->value > buf && p->value < buf + bufsz);
		FUZZ_CHECK(p->value[0] != '\0');
		for (const char *v = p->value; *v; v++)
			FUZZ_CHECK((unsigned char)*v >= 33 && (unsigned char)*v <= 126 && *v != '=');
		/* the DSN checks commands.c runs on these values */
		if (!strcmp(p->key, "RET"))
			(void)parse_ret_valid(p->value);
		else if (!strcmp(p->key, "ENVID") || !strcmp(p->key, "ORCPT"))
			(void)(p->key[0] == 'E' ? parse_xtext_valid(p->value, md->xtext_max)
						: parse_orcpt_valid(p->value));
		else if (!strcmp(p->key, "NOTIFY"))
			(void)parse_notify_valid(p->value);
	}
}

static void check_path(const struct mailpath *path, const struct mode *md)
{
	size_t alen = strnlen(path->addr, sizeof(path->addr));
	size_t dlen = strnlen(path->domain, sizeof(path->domain));

	FUZZ_CHECK(alen < sizeof(path->addr));
	FUZZ_CHECK(strnlen(path->local, sizeof(path->local)) < sizeof(path->local));
	FUZZ_CHECK(dlen < sizeof(path->domain));
	FUZZ_CHECK(path->has_utf8 == any_high(path->addr));
	if (path->is_null) {
		FUZZ_CHECK(md->allow_null && alen == 0 && !path->had_route);
		return;
	}
	if (dlen == 0) { /* <Postmaster>, the only address without a domain */
		FUZZ_CHECK(md->allow_postmaster && strcasecmp(path->addr, "postmaster") == 0);
		return;
	}
	FUZZ_CHECK(alen <= SMTP_PATH_MAX - 2);
	FUZZ_CHECK(alen > dlen + 1 && path->addr[alen - dlen - 1] == '@');
	FUZZ_CHECK(strcmp(path->addr + alen - dlen, path->domain) == 0);
	FUZZ_CHECK(strncmp(path->addr, path->local, alen - dlen - 1) == 0);
	FUZZ_CHECK(strlen(path->local) == alen - dlen - 1 && alen - dlen - 1 <= SMTP_LOCAL_MAX);
	for (const char *d = path->domain; *d; d++)
		FUZZ_CHECK(!isupper((unsigned char)*d));
	FUZZ_CHECK(path->is_literal == (path->domain[0] == '['));
	if (!path->is_literal)
		check_domain_shape(path->domain, dlen, 1);
}

/* <addr> as parsed must parse again to the same path (the source route is gone by then). */
static void check_reparse(const struct mailpath *path, const struct mode *md)
{
	size_t plen = strlen(md->prefix), alen = strlen(path->addr);
	char *again = malloc(plen + alen + 3);
	struct esmtp_param params[SMTP_PARAMS_MAX];
	struct mailpath p2;
	size_t n2;
	const char *why = NULL;

	if (!again)
		abort();
	memcpy(again, md->prefix, plen);
	again[plen] = '<';
	memcpy(again + plen + 1, path->addr, alen);
	memcpy(again + plen + 1 + alen, ">", 2);
	enum parse_err e = parse_mail_rcpt(again, md->prefix, md->allow_null, md->allow_postmaster,
					   &p2, params, &n2, &why);
	FUZZ_CHECK(e == PARSE_OK && n2 == 0);
	FUZZ_CHECK(strcmp(p2.addr, path->addr) == 0 && strcmp(p2.local, path->local) == 0);
	FUZZ_CHECK(strcmp(p2.domain, path->domain) == 0);
	FUZZ_CHECK(p2.is_null == path->is_null && p2.is_literal == path->is_literal);
	FUZZ_CHECK(p2.quoted_local == path->quoted_local && p2.has_utf8 == path->has_utf8);
	FUZZ_CHECK(!p2.had_route);
	free(again);
}

static void fuzz_mail_rcpt(const char *args, const struct mode *md)
{
	size_t n = strlen(args);
	char *buf = fuzz_strdup(args, n);
	struct esmtp_param params[SMTP_PARAMS_MAX];
	struct mailpath path;
	size_t nparams = (size_t)-1;
	const char *why = NULL;
	enum parse_err e = parse_mail_rcpt(buf, md->prefix, md->allow_null, md->allow_postmaster,
					   &path, params, &nparams, &why);

	FUZZ_CHECK(e >= PARSE_OK && e <= PARSE_ERR_PARAM);
	FUZZ_CHECK(nparams <= SMTP_PARAMS_MAX);
	if (e != PARSE_OK) {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
	} else {
		check_path(&path, md);
		check_params(params, nparams, buf, n + 1, md);
		check_reparse(&path, md);
	}
	free(buf);
}

static void fuzz_values(const char *v, const struct mode *md)
{
	size_t n = strlen(v);

	if (parse_helo_valid(v)) {
		FUZZ_CHECK(n >= 1 && n <= SMTP_DOMAIN_MAX);
		for (size_t i = 0; i < n; i++)
			FUZZ_CHECK((unsigned char)v[i] > 32 && (unsigned char)v[i] != 127);
	}
	if (parse_xtext_valid(v, md->xtext_max)) {
		FUZZ_CHECK(n >= 1 && n <= md->xtext_max);
		FUZZ_CHECK(strchr(v, '=') == NULL);
	}
	if (parse_ret_valid(v))
		FUZZ_CHECK(strcasecmp(v, "FULL") == 0 || strcasecmp(v, "HDRS") == 0);
	if (parse_notify_valid(v)) {
		FUZZ_CHECK(strcasecmp(v, "NEVER") == 0 || n <= NOTIFY_TEXT_MAX);
		FUZZ_CHECK(v[0] != ',' && v[n - 1] != ',' && strstr(v, ",,") == NULL);
	}
	if (parse_orcpt_valid(v)) {
		const char *semi = strchr(v, ';');
		FUZZ_CHECK(semi && semi > v && n <= DSN_ORCPT_MAX);
		FUZZ_CHECK(parse_xtext_valid(semi + 1, DSN_ORCPT_MAX));
	}
	if (parse_domain_valid(v, n, md->utf8))
		check_domain_shape(v, n, md->utf8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t m = data[0];
	char *line = fuzz_strdup(data + 1, size - 1);
	const char *args = NULL;
	enum smtp_verb verb = parse_verb(line, &args);
	size_t len = strlen(line);

	FUZZ_CHECK(verb >= VERB_HELO && verb <= VERB_UNKNOWN);
	FUZZ_CHECK(args >= line && args <= line + len);
	FUZZ_CHECK(parse_verb_name(verb) != NULL);
	if (verb != VERB_UNKNOWN)
		FUZZ_CHECK(strncasecmp(line, parse_verb_name(verb), strlen(parse_verb_name(verb))) == 0);

	struct mode md = mode_of(m, verb);
	fuzz_mail_rcpt(args, &md);
	/* args ends where line does: both are exact-size strings for the value checks */
	fuzz_values(args, &md);
	fuzz_values(line, &md);
	free(line);
	return 0;
}
