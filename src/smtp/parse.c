/* parse: see parse.h. Grammar references are to RFC 5321 section 4.1.2. */
#include "smtp/parse.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "util/addr.h"
#include "util/xtext.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", VERB_HELO }, { "EHLO", VERB_EHLO }, { "MAIL", VERB_MAIL }, { "RCPT", VERB_RCPT },
	{ "DATA", VERB_DATA }, { "RSET", VERB_RSET }, { "NOOP", VERB_NOOP }, { "QUIT", VERB_QUIT },
	{ "HELP", VERB_HELP }, { "VRFY", VERB_VRFY }, { "STARTTLS", VERB_STARTTLS },
};

enum smtp_verb parse_verb(const char *line, const char **args_r)
{
	size_t n = strcspn(line, " ");

	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) == n && strncasecmp(line, verbs[i].name, n) == 0) {
			const char *a = line + n;
			while (*a == ' ')
				a++;
			*args_r = a;
			return verbs[i].verb;
		}
	}
	*args_r = line + n;
	return VERB_UNKNOWN;
}

const char *parse_verb_name(enum smtp_verb v)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == v)
			return verbs[i].name;
	return "UNKNOWN";
}

/* RFC 5322 atext; octets >= 0x80 are let through here and flagged as UTF-8 by the caller. */
static int is_atext(unsigned char c)
{
	/* c != 0: strchr() would find the terminator of its own set */
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL) || c >= 0x80;
}

static int is_letdig(unsigned char c)
{
	return isalnum(c) || c >= 0x80;
}

int parse_domain_valid(const char *d, size_t len, int utf8_ok)
{
	size_t label = 0;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return 0;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)d[i] : '.';
		if (c == '.') {
			/* empty label: leading, doubled or trailing dot ("victim.example.") */
			if (label == 0 || label > 63 || d[i - 1] == '-')
				return 0;
			label = 0;
		} else if (c >= 0x80 ? utf8_ok : (is_letdig(c) || (c == '-' && label > 0))) {
			label++;
		} else {
			return 0;
		}
	}
	return 1;
}

/* Address literal: "[" ( IPv4 / "IPv6:" IPv6 ) "]"; general literals are not accepted. */
static int literal_valid(const char *d, size_t len)
{
	char buf[ADDR_STR_MAX + 8];
	struct ip_addr ip;

	if (len < 3 || d[0] != '[' || d[len - 1] != ']' || len - 2 >= sizeof(buf))
		return 0;
	memcpy(buf, d + 1, len - 2);
	buf[len - 2] = '\0';
	if (strncasecmp(buf, "IPv6:", 5) == 0)
		return strchr(buf + 5, ':') && ip_parse(buf + 5, &ip) == 0;
	return strchr(buf, ':') == NULL && ip_parse(buf, &ip) == 0;
}

/* Scans a Local-part at s; returns its length or 0 when invalid. */
static size_t scan_local(const char *s, int *quoted_r, int *utf8_r)
{
	size_t i = 0;

	*quoted_r = s[0] == '"';
	if (*quoted_r) {
		for (i = 1; s[i] && s[i] != '"'; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\\') {
				c = (unsigned char)s[++i];
				if (c < 32 || c == 127)
					return 0;
			} else if (c < 32 || c == 127) {
				return 0;
			}
			if (c >= 0x80)
				*utf8_r = 1;
		}
		return s[i] == '"' ? i + 1 : 0;
	}
	for (;;) { /* Dot-string: Atom *("." Atom) */
		size_t start = i;
		while (is_atext((unsigned char)s[i])) {
			if ((unsigned char)s[i] >= 0x80)
				*utf8_r = 1;
			i++;
		}
		if (i == start)
			return 0;
		if (s[i] != '.')
			return i;
		i++;
	}
}

/* Skips an A-d-l source route "@a,@b:" at *sp (RFC 5321 says receivers SHOULD ignore it). */
static int skip_route(const char **sp, int *had_route)
{
	const char *s = *sp;

	if (*s != '@')
		return 1;
	const char *colon = strchr(s, ':');
	const char *close = strchr(s, '>');
	if (!colon || (close && colon > close))
		return 0;
	for (const char *p = s; p < colon;) {
		if (*p != '@')
			return 0;
		size_t n = strcspn(p + 1, ",:");
		if (!parse_domain_valid(p + 1, n, 1))
			return 0;
		p += 1 + n;
		if (*p == ',' && ++p >= colon)
			return 0; /* "@a," with nothing after the comma */
	}
	*had_route = 1;
	*sp = colon + 1;
	return 1;
}

static enum parse_err parse_path(const char **sp, int allow_null, int allow_postmaster,
				 struct mailpath *path, const char **why)
{
	const char *s = *sp;
	size_t llen, dlen;

	memset(path, 0, sizeof(*path));
	if (*s != '<') {
		*why = "address must be enclosed in <>";
		return PARSE_ERR_SYNTAX;
	}
	s++;
	if (*s == '>') {
		if (!allow_null) {
			*why = "empty address not allowed here";
			return PARSE_ERR_ADDRESS;
		}
		path->is_null = 1;
		*sp = s + 1;
		return PARSE_OK;
	}
	if (!skip_route(&s, &path->had_route)) {
		*why = "bad source route";
		return PARSE_ERR_ADDRESS;
	}
	if (allow_postmaster && strncasecmp(s, "postmaster>", 11) == 0) {
		memcpy(path->local, s, 10);
		memcpy(path->addr, s, 10);
		*sp = s + 11;
		return PARSE_OK;
	}
	llen = scan_local(s, &path->quoted_local, &path->has_utf8);
	if (llen == 0 || s[llen] != '@') {
		*why = "bad local part or missing @domain";
		return PARSE_ERR_ADDRESS;
	}
	const char *d = s + llen + 1;
	dlen = strcspn(d, ">");
	if (d[dlen] != '>') {
		*why = "missing closing >";
		return PARSE_ERR_SYNTAX;
	}
	if (llen > SMTP_LOCAL_MAX || dlen > SMTP_DOMAIN_MAX || llen + 1 + dlen > SMTP_PATH_MAX - 2) {
		*why = "address too long";
		return PARSE_ERR_TOOLONG;
	}
	path->is_literal = d[0] == '[';
	if (path->is_literal ? !literal_valid(d, dlen) : !parse_domain_valid(d, dlen, 1)) {
		*why = "bad domain";
		return PARSE_ERR_ADDRESS;
	}
	for (size_t i = 0; i < dlen; i++)
		if ((unsigned char)d[i] >= 0x80)
			path->has_utf8 = 1;
	memcpy(path->local, s, llen);
	memcpy(path->domain, d, dlen);
	for (char *p = path->domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	memcpy(path->addr, s, llen);
	path->addr[llen] = '@';
	memcpy(path->addr + llen + 1, path->domain, dlen + 1);
	*sp = d + dlen + 1;
	return PARSE_OK;
}

/* esmtp-param = esmtp-keyword ["=" esmtp-value]; keyword = ALPHA/DIGIT *(ALPHA/DIGIT/"-");
 * value = 1*(%d33-60 / %d62-126). */
static int param_split(char *tok, struct esmtp_param *p)
{
	char *eq = strchr(tok, '=');
	size_t klen = eq ? (size_t)(eq - tok) : strlen(tok);

	if (klen == 0 || klen > SMTP_PARAM_KEY_MAX || !isalnum((unsigned char)tok[0]))
		return -1;
	for (size_t i = 0; i < klen; i++) {
		if (!isalnum((unsigned char)tok[i]) && tok[i] != '-')
			return -1;
		p->key[i] = (char)toupper((unsigned char)tok[i]);
	}
	p->key[klen] = '\0';
	p->value = NULL;
	if (!eq)
		return 0;
	if (eq[1] == '\0')
		return -1;
	for (char *v = eq + 1; *v; v++)
		if ((unsigned char)*v < 33 || (unsigned char)*v > 126 || *v == '=')
			return -1;
	p->value = eq + 1;
	return 0;
}

enum parse_err parse_mail_rcpt(char *args, const char *prefix, int allow_null, int allow_postmaster,
			       struct mailpath *path, struct esmtp_param *params, size_t *nparams,
			       const char **why)
{
	size_t plen = strlen(prefix);
	const char *s = args;
	enum parse_err rc;

	*nparams = 0;
	if (strncasecmp(s, prefix, plen) != 0) {
		*why = prefix[0] == 'F' ? "syntax is MAIL FROM:<address>" : "syntax is RCPT TO:<address>";
		return PARSE_ERR_SYNTAX;
	}
	s += plen;
	if (*s == ' ')
		s++;
	if ((rc = parse_path(&s, allow_null, allow_postmaster, path, why)) != PARSE_OK)
		return rc;
	if (*s != '\0' && *s != ' ') {
		*why = "garbage after the address";
		return PARSE_ERR_SYNTAX;
	}
	char *p = args + (s - args);
	while (*p == ' ')
		p++;
	while (*p) {
		char *end = strchr(p, ' ');
		if (end)
			*end = '\0';
		if (*nparams >= SMTP_PARAMS_MAX || param_split(p, &params[*nparams]) < 0) {
			*why = *nparams >= SMTP_PARAMS_MAX ? "too many parameters" : "bad parameter syntax";
			return PARSE_ERR_PARAM;
		}
		(*nparams)++;
		if (!end)
			break;
		p = end + 1;
		while (*p == ' ')
			p++;
	}
	return PARSE_OK;
}

int parse_helo_valid(const char *arg)
{
	size_t n = strlen(arg);

	if (n == 0 || n > SMTP_DOMAIN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)arg[i] <= 32 || (unsigned char)arg[i] == 127)
			return 0;
	return 1;
}

int parse_xtext_valid(const char *v, size_t max)
{
	return xtext_valid(v, max);
}

int parse_ret_valid(const char *v)
{
	return strcasecmp(v, "FULL") == 0 || strcasecmp(v, "HDRS") == 0;
}

int parse_notify_valid(const char *v)
{
	static const char *const words[] = { "SUCCESS", "FAILURE", "DELAY" };
	unsigned seen = 0;
	const char *p = v;

	if (strcasecmp(v, "NEVER") == 0)
		return 1;
	while (*p) {
		size_t n = strcspn(p, ","), k;
		for (k = 0; k < 3; k++)
			if (strlen(words[k]) == n && strncasecmp(p, words[k], n) == 0)
				break;
		if (k == 3 || (seen & (1u << k)))
			return 0; /* unknown keyword, NEVER in a list, or a repeat */
		seen |= 1u << k;
		p += n;
		if (*p == ',' && *++p == '\0')
			return 0;
	}
	return seen != 0;
}

int parse_orcpt_valid(const char *v)
{
	const char *semi = strchr(v, ';');

	if (!semi || semi == v || strlen(v) > DSN_ORCPT_MAX)
		return 0;
	for (const char *p = v; p < semi; p++)
		if (!isalnum((unsigned char)*p) && *p != '-')
			return 0;
	return parse_xtext_valid(semi + 1, DSN_ORCPT_MAX);
}
