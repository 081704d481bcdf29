/* validate: the store's input checks, pure functions with no database access.
 *
 * Every refusal is one sentence that quotes the input and says what would be accepted, so an
 * admin can fix the command without reading the source. Domains go through libidn2 (UTS #46,
 * non-transitional, NFC input) so that "bücher.example" and "xn--bcher-kva.example" are the
 * same stored domain. */
#include <idn2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store/store_private.h"

#define LABEL_MAX 63
/* Bytes of raw input accepted before conversion: far beyond any valid name, so the only
 * purpose is to keep libidn2 away from megabytes of junk. */
#define DOMAIN_INPUT_MAX 1024
#define HOST_MAX MODEL_DOMAIN_MAX

static int is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

static int is_ldh(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

static int is_ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 0;
	return 1;
}

const char *store_quote(const char *s, char *buf, size_t bufsz)
{
	size_t n = 0, len = strlen(s);
	size_t max = bufsz - 4 < STORE_QUOTE_MAX ? bufsz - 4 : STORE_QUOTE_MAX;

	for (; n < len && n < max; n++)
		buf[n] = is_ctl((unsigned char)s[n]) ? '?' : s[n];
	buf[n] = '\0';
	if (n < len)
		strcpy(buf + n, "...");
	return buf;
}

int store_check_name(const char *what, const char *name, char *err, size_t esz)
{
	char q[STORE_QUOTE_MAX + 4];
	size_t len = strlen(name);

	if (len == 0)
		return store_refuse(err, esz, "the %s must not be empty", what);
	if (len > MODEL_NAME_MAX)
		return store_refuse(err, esz, "%s '%s' is longer than %d characters", what,
				    store_quote(name, q, sizeof(q)), MODEL_NAME_MAX);
	size_t bad = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				  "0123456789._-");
	if (bad < len)
		return store_refuse(err, esz,
				    "%s '%s' contains '%c'; use only letters, digits, '.', '_' "
				    "and '-'",
				    what, store_quote(name, q, sizeof(q)),
				    is_ctl((unsigned char)name[bad]) || (unsigned char)name[bad] >= 0x80
					    ? '?' : name[bad]);
	return STORE_OK;
}

/* ---- host names ----------------------------------------------------------------------- */

/* Checks the shape every host name must have before and after conversion: no trailing dot,
 * no empty label, and (when max_label is not 0) labels of at most max_label bytes. */
static int check_dots(const char *what, const char *shown, const char *d, size_t max_label,
		      char *err, size_t esz)
{
	size_t len = strlen(d);

	if (len > 0 && d[len - 1] == '.')
		return store_refuse(err, esz, "%s '%s' must not end with a dot", what, shown);
	for (const char *label = d;; label++) {
		size_t n = strcspn(label, ".");
		if (n == 0)
			return store_refuse(err, esz, "%s '%s' has an empty label (\"..\" or a "
						      "leading dot)", what, shown);
		if (max_label && n > max_label)
			return store_refuse(err, esz,
					    "%s '%s' has a label longer than %d characters", what,
					    shown, LABEL_MAX);
		label += n;
		if (*label == '\0')
			return STORE_OK;
	}
}

/* Checks an ASCII, lower-case name: LDH labels without a hyphen at either end, the whole at
 * most 253 bytes, and a last label that is not all digits (that is an IP address). */
static int check_ldh(const char *what, const char *shown, const char *d, char *err, size_t esz)
{
	int rc = check_dots(what, shown, d, LABEL_MAX, err, esz);

	if (rc != STORE_OK)
		return rc;
	if (strlen(d) > HOST_MAX)
		return store_refuse(err, esz, "%s '%s' is %zu characters long in A-label form; the "
					      "limit is %d", what, shown, strlen(d), HOST_MAX);
	for (const char *p = d; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c != '.' && !is_ldh(c))
			return store_refuse(err, esz, "%s '%s' contains '%c'; a domain name has "
						      "only letters, digits, '-' and dots",
					    what, shown, c < 0x80 ? c : '?');
		if (c == '-' && (p == d || p[-1] == '.' || p[1] == '.' || p[1] == '\0'))
			return store_refuse(err, esz, "%s '%s' has a label that starts or ends "
						      "with '-'", what, shown);
	}
	const char *last = strrchr(d, '.');
	last = last ? last + 1 : d;
	if (strspn(last, "0123456789") == strlen(last))
		return store_refuse(err, esz, "%s '%s' looks like an IP address, not a domain "
					      "name", what, shown);
	return STORE_OK;
}

static int idn_refusal(const char *what, const char *shown, int rc, char *err, size_t esz)
{
	switch (rc) {
	case IDN2_TOO_BIG_LABEL:
	case IDN2_PUNYCODE_BIG_OUTPUT:
		return store_refuse(err, esz, "%s '%s' has a label longer than %d characters in "
					      "A-label form", what, shown, LABEL_MAX);
	case IDN2_TOO_BIG_DOMAIN:
		return store_refuse(err, esz, "%s '%s' is longer than %d characters in A-label "
					      "form", what, shown, HOST_MAX);
	default:
		return store_refuse(err, esz, "%s '%s' is not a valid domain name (%s)", what, shown,
				    idn2_strerror(rc));
	}
}

/* The one path from user input to a stored host name; what names it in messages. */
static int norm_host(const char *what, const char *in, char *out, size_t outsz, char *err,
		     size_t esz)
{
	char shown[STORE_QUOTE_MAX + 4];
	char *alabel = NULL;
	int rc;

	store_quote(in, shown, sizeof(shown));
	if (*in == '\0')
		return store_refuse(err, esz, "the %s must not be empty", what);
	if (strlen(in) > DOMAIN_INPUT_MAX)
		return store_refuse(err, esz, "%s '%s' is longer than %d characters", what, shown,
				    HOST_MAX);
	for (const char *p = in; *p; p++)
		if (is_ctl((unsigned char)*p) || *p == ' ')
			return store_refuse(err, esz, "%s '%s' contains a space or control "
						      "character", what, shown);
	/* ASCII input gets our own messages before libidn2's more generic ones. */
	if (is_ascii(in)) {
		char lower[DOMAIN_INPUT_MAX + 1];
		size_t i;
		for (i = 0; in[i]; i++)
			lower[i] = (char)(in[i] >= 'A' && in[i] <= 'Z' ? in[i] + 32 : in[i]);
		lower[i] = '\0';
		if ((rc = check_ldh(what, shown, lower, err, esz)) != STORE_OK)
			return rc;
	} else if ((rc = check_dots(what, shown, in, 0, err, esz)) != STORE_OK) {
		/* U-label lengths in bytes say nothing about their A-label lengths. */
		return rc;
	}
	rc = idn2_to_ascii_8z(in, &alabel, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
	if (rc != IDN2_OK)
		return idn_refusal(what, shown, rc, err, esz);
	rc = check_ldh(what, shown, alabel, err, esz);
	if (rc == STORE_OK && strlen(alabel) >= outsz)
		rc = store_refuse(err, esz, "%s '%s' is too long", what, shown);
	if (rc == STORE_OK)
		strcpy(out, alabel);
	idn2_free(alabel);
	return rc;
}

int store_domain_normalize(const char *domain, char out[MODEL_DOMAIN_MAX + 1], char *err,
			   size_t esz)
{
	return norm_host("domain", domain, out, MODEL_DOMAIN_MAX + 1, err, esz);
}

int store_norm_tls_name(const char *name, char out[MODEL_TLS_NAME_MAX + 1], char *err,
			size_t esz)
{
	char q[STORE_QUOTE_MAX + 4];

	if (strchr(name, '*'))
		return store_refuse(err, esz, "TLS name '%s' is a wildcard; give the exact host "
					      "name the partner's certificate is issued to",
				    store_quote(name, q, sizeof(q)));
	return norm_host("TLS name", name, out, MODEL_TLS_NAME_MAX + 1, err, esz);
}

/* ---- routes --------------------------------------------------------------------------- */

/* Says what is wrong with a route hostport_split refused. */
static int route_syntax(const char *route, const char *shown, char *err, size_t esz)
{
	const char *colon = strrchr(route, ':');
	const char *close = strchr(route, ']');

	if (route[0] == '[' && !close)
		return store_refuse(err, esz, "route '%s' has an unclosed '['", shown);
	if (!colon || (route[0] == '[' && colon < close))
		return store_refuse(err, esz, "route '%s' has no port; write HOST:PORT, e.g. "
					      "mx.example.com:25", shown);
	if (route[0] != '[' && memchr(route, ':', (size_t)(colon - route)))
		return store_refuse(err, esz, "route '%s' has an IPv6 address without brackets; "
					      "write [ADDRESS]:PORT, e.g. [2001:db8::1]:25", shown);
	if (colon == route || (route[0] == '[' && colon == route + 2))
		return store_refuse(err, esz, "route '%s' has no host; write HOST:PORT", shown);
	return store_refuse(err, esz, "route '%s' has port '%s'; the port must be a number from "
				      "1 to 65535", shown, colon + 1);
}

int store_norm_route(const char *route, char out[MODEL_ROUTE_MAX + 1], char *err, size_t esz)
{
	char shown[STORE_QUOTE_MAX + 4], host[MODEL_ROUTE_MAX + 1], name[HOST_MAX + 1];
	struct ip_addr ip;
	uint16_t port;
	int rc;

	store_quote(route, shown, sizeof(shown));
	if (*route == '\0')
		return store_refuse(err, esz, "the route must not be empty; write HOST:PORT, e.g. "
					      "mx.example.com:25");
	if (strlen(route) > MODEL_ROUTE_MAX)
		return store_refuse(err, esz, "route '%s' is longer than %d characters", shown,
				    MODEL_ROUTE_MAX);
	const char *colon = strrchr(route, ':');
	/* hostport_split takes what strtoul takes ("+25", " 25"); a route is written plainly. */
	if (hostport_split(route, host, sizeof(host), &port) < 0 ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return route_syntax(route, shown, err, esz);
	if (route[0] == '[' && (ip_parse(host, &ip) < 0 || strchr(host, ':') == NULL))
		return store_refuse(err, esz, "route '%s': brackets are only for IPv6 addresses",
				    shown);
	if (ip_parse(host, &ip) == 0) {
		/* ::ffff:a.b.c.d is an IPv4 address and written as one */
		snprintf(out, MODEL_ROUTE_MAX + 1, ip_is_v4(&ip) ? "%s:%u" : "[%s]:%u",
			 ip_format(&ip, host), port);
		return STORE_OK;
	}
	if ((rc = norm_host("route host", host, name, sizeof(name), err, esz)) != STORE_OK)
		return rc;
	snprintf(out, MODEL_ROUTE_MAX + 1, "%s:%u", name, port);
	return STORE_OK;
}

/* ---- addresses and comments ----------------------------------------------------------- */

int store_norm_cidr(const char *in, struct cidr *c_r, char out[STORE_CIDR_MAX], char *err,
		    size_t esz)
{
	char q[STORE_QUOTE_MAX + 4];
	int rc = cidr_parse(in, c_r);

	if (rc == ADDR_ERR_HOSTBITS) {
		char fixed[STORE_CIDR_MAX];
		struct cidr c = *c_r;
		for (unsigned bit = c.prefix; bit < 128; bit++)
			c.net.b[bit / 8] &= (uint8_t) ~(0x80u >> (bit % 8));
		return store_refuse(err, esz, "%s has host bits set; did you mean %s?",
				    store_quote(in, q, sizeof(q)),
				    cidr_format(&c, fixed, sizeof(fixed)));
	}
	if (rc != ADDR_OK)
		return store_refuse(err, esz, "'%s' is not an IP address or CIDR range (e.g. "
					      "192.0.2.0/24 or 2001:db8::/32)",
				    store_quote(in, q, sizeof(q)));
	cidr_format(c_r, out, STORE_CIDR_MAX);
	return STORE_OK;
}

/* Length of the UTF-8 sequence at s, or 0 when it is malformed, overlong, a surrogate, above
 * U+10FFFF or a C1 control (U+0080..U+009F). */
static size_t utf8_seq(const unsigned char *s)
{
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		return (s[1] & 0xc0) == 0x80 && !(s[0] == 0xc2 && s[1] < 0xa0) ? 2 : 0;
	if (s[0] >= 0xe0 && s[0] <= 0xef) {
		unsigned lo = s[0] == 0xe0 ? 0xa0 : 0x80, hi = s[0] == 0xed ? 0x9f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		unsigned lo = s[0] == 0xf0 ? 0x90 : 0x80, hi = s[0] == 0xf4 ? 0x8f : 0xbf;
		return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 &&
				       (s[3] & 0xc0) == 0x80
			       ? 4
			       : 0;
	}
	return 0;
}

int store_check_comment(const char *comment, char *err, size_t esz)
{
	size_t len = strlen(comment);

	if (len > MODEL_COMMENT_MAX)
		return store_refuse(err, esz, "the comment is %zu bytes long; the limit is %d", len,
				    MODEL_COMMENT_MAX);
	for (const unsigned char *p = (const unsigned char *)comment; *p;) {
		if (is_ctl(*p))
			return store_refuse(err, esz, "the comment must not contain control "
						      "characters (tabs, newlines, escapes)");
		size_t n = utf8_seq(p);
		if (n == 0)
			return store_refuse(err, esz, "the comment is not valid UTF-8 text (or "
						      "contains a control character)");
		p += n;
	}
	return STORE_OK;
}

const char *store_list_name(enum ip_list list)
{
	switch (list) {
	case IP_LIST_ALLOW: return "allow";
	case IP_LIST_BLOCK: return "block";
	}
	return NULL;
}

/* ---- recipient addresses -------------------------------------------------------------- */

int store_recipient_check_parse(const char *text, enum recipient_check *check_r, char *err,
				size_t esz)
{
	char q[STORE_QUOTE_MAX + 4];

	if (strcmp(text, "off") == 0) {
		*check_r = RCPT_CHECK_OFF;
		return STORE_OK;
	}
	if (strcmp(text, "directory") == 0) {
		*check_r = RCPT_CHECK_DIRECTORY;
		return STORE_OK;
	}
	if (strcmp(text, "probe") == 0) {
		*check_r = RCPT_CHECK_PROBE;
		return STORE_OK;
	}
	return store_refuse(err, esz, "recipient check '%s' is not one of off, directory, probe",
			    store_quote(text, q, sizeof(q)));
}

int store_route_tls_parse(const char *text, enum route_tls *tls_r, char *err, size_t esz)
{
	char q[STORE_QUOTE_MAX + 4];

	if (model_route_tls_parse(text, tls_r) == 0)
		return STORE_OK;
	return store_refuse(err, esz, "route TLS '%s' is not one of opportunistic, required, "
				      "verify", store_quote(text, q, sizeof(q)));
}

/* RFC 5322 atext, plus any octet of a UTF-8 sequence (RFC 6531), checked separately. */
static int is_atext(unsigned char c)
{
	return c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static int utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		size_t n = utf8_seq(p);
		if (n == 0 || n > (size_t)(end - p))
			return 0;
		p += n;
	}
	return 1;
}

/* A Dot-string: atoms of atext joined by single dots (s need not be NUL-terminated). */
static int is_dot_string(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' ? s[i + 1] == '.' : !is_atext(c))
			return 0;
	}
	return 1;
}

/* Unquotes a Quoted-string local part (RFC 5321 Quoted-string, RFC 6531 UTF-8 allowed). */
static int unquote_local(const char *in, size_t len, const char *shown, char *out, char *err,
			 size_t esz)
{
	size_t n = 0;

	if (len < 2 || in[len - 1] != '"')
		return store_refuse(err, esz, "address '%s' has a local part with an unclosed "
					      "quote", shown);
	for (size_t i = 1; i + 1 < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '\\') {
			c = (unsigned char)in[++i];
			if (i + 1 >= len || c < 0x20 || c > 0x7e)
				return store_refuse(err, esz, "address '%s' has a bad backslash escape "
							      "in its quoted local part", shown);
		} else if (c == '"') {
			return store_refuse(err, esz, "address '%s' has a quote inside its quoted local "
						      "part; write it as \\\"", shown);
		} else if (c < 0x20 || c == 0x7f) {
			return store_refuse(err, esz, "address '%s' contains a control character",
					    shown);
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return STORE_OK;
}

/* Checks the local part as given and writes its canonical form into out. */
static int norm_local(const char *in, size_t len, const char *shown, char out[MODEL_LOCAL_MAX + 1],
		      char *err, size_t esz)
{
	int rc;

	if (len == 0)
		return store_refuse(err, esz, "address '%s' has no local part before the '@'", shown);
	if (len > MODEL_LOCAL_MAX)
		return store_refuse(err, esz, "address '%s' has a local part of %zu octets; the "
					      "limit is %d", shown, len, MODEL_LOCAL_MAX);
	if (!utf8_valid(in, len))
		return store_refuse(err, esz, "address '%s' is not valid UTF-8 text", shown);
	if (memchr(in, '@', len))
		return store_refuse(err, esz, "address '%s' has %%, ! or @ in its local part; mxgate "
					      "refuses such recipients at RCPT (they route mail "
					      "onward), so the directory cannot hold one", shown);
	if (in[0] == '"') {
		if ((rc = unquote_local(in, len, shown, out, err, esz)) != STORE_OK)
			return rc;
		if (out[0] == '\0')
			return store_refuse(err, esz, "address '%s' has an empty local part", shown);
	} else {
		for (size_t i = 0; i < len; i++) {
			unsigned char c = (unsigned char)in[i];
			if (c != '.' && !is_atext(c))
				return store_refuse(err, esz, "address '%s' contains '%c' in its local "
							      "part; quote the local part if the "
							      "mailbox really has it", shown,
						    is_ctl(c) ? '?' : c);
		}
		if (!is_dot_string(in, len))
			return store_refuse(err, esz, "address '%s' has a local part with a leading, "
						      "trailing or doubled dot", shown);
		memcpy(out, in, len);
		out[len] = '\0';
	}
	if (strchr(out, '*') && strcmp(out, MODEL_RCPT_WILDCARD) != 0)
		return store_refuse(err, esz, "address '%s': only a whole local part '*' is a "
					      "wildcard (*@DOMAIN, every address at DOMAIN); patterns "
					      "are not supported", shown);
	if (strpbrk(out, "%!"))
		return store_refuse(err, esz, "address '%s' has %%, ! or @ in its local part; mxgate "
					      "refuses such recipients at RCPT (they route mail "
					      "onward), so the directory cannot hold one", shown);
	return STORE_OK;
}

int store_address_split(const char *address, char local_r[MODEL_LOCAL_MAX + 1],
			const char **domain_r, char *err, size_t esz)
{
	char shown[STORE_QUOTE_MAX + 4];
	const char *at = strrchr(address, '@');
	int rc;

	store_quote(address, shown, sizeof(shown));
	if (*address == '\0')
		return store_refuse(err, esz, "the address must not be empty");
	if (strlen(address) > DOMAIN_INPUT_MAX)
		return store_refuse(err, esz, "address '%s' is longer than %d characters", shown,
				    DOMAIN_INPUT_MAX);
	if (!at)
		return store_refuse(err, esz, "'%s' is not an email address: it has no '@'; write "
					      "LOCAL@DOMAIN, or *@DOMAIN for every address at DOMAIN",
				    shown);
	if (at[1] == '\0')
		return store_refuse(err, esz, "address '%s' has no domain after the '@'", shown);
	if ((rc = norm_local(address, (size_t)(at - address), shown, local_r, err, esz)) !=
	    STORE_OK)
		return rc;
	*domain_r = at + 1;
	return STORE_OK;
}

int store_address_normalize(const char *address, char local_r[MODEL_LOCAL_MAX + 1],
			    char domain_r[MODEL_DOMAIN_MAX + 1], char *err, size_t esz)
{
	const char *domain;
	int rc = store_address_split(address, local_r, &domain, err, esz);

	if (rc != STORE_OK)
		return rc;
	return norm_host("domain", domain, domain_r, MODEL_DOMAIN_MAX + 1, err, esz);
}

const char *store_address_format(const char *local, const char *domain, char *out,
				 size_t outsz)
{
	size_t n = 0;

	if (outsz == 0)
		return out;
	if (strcmp(local, MODEL_RCPT_WILDCARD) == 0 || is_dot_string(local, strlen(local))) {
		snprintf(out, outsz, "%s@%s", local, domain);
		return out;
	}
	out[n++] = '"';
	for (; *local && n + 3 < outsz; local++) {
		if (*local == '"' || *local == '\\')
			out[n++] = '\\';
		out[n++] = *local;
	}
	snprintf(out + n, outsz - n, "\"@%s", domain);
	return out;
}
