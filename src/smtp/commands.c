/* commands: the SMTP verb table and one handler per verb (RFC 5321 section 4.1.1).
 *
 * Replies after the greeting carry RFC 3463 codes, except the HELO/EHLO response and 354,
 * where RFC 2034 puts none. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event/conn.h"
#include "policy/policy.h"
#include "queue/queue.h"
#include "store/store.h"
#include "smtp/reply.h"
#include "smtp/server.h"
#include "smtp/session_private.h"
#include "util/log.h"
#include "util/strutil.h"
#include "util/xmalloc.h"

/* Upper bound on RCPT commands per transaction, accepted or not, so a client cannot probe
 * addresses without end in one transaction (recipients accepted are bounded separately). */
#define SMTP_RCPT_ATTEMPTS_FACTOR 2

typedef void cmd_handler(struct session *s, char *args);

enum cmd_flags {
	CMD_NEEDS_HELO = 1 << 0, /* 503 before HELO/EHLO */
	CMD_NO_ARGS = 1 << 1,    /* 501 when arguments are given */
	CMD_JUNK = 1 << 2,       /* moves no mail: counted against max_junk_commands */
};

struct cmd_def {
	enum smtp_verb verb;
	cmd_handler *handler;
	unsigned flags;
};

static const char *host(const struct session *s)
{
	return s->srv->cfg->hostname;
}

void commands_greet(struct session *s)
{
	session_reply(s, 220, NULL, "%s ESMTP mxgate", host(s));
}

/* The first line of a multi-line greeting: a client that answers it instead of waiting for
 * the last line talks before the greeting (postscreen's trick). */
void commands_greet_first(struct session *s)
{
	char line[SMTP_REPLY_LINE_MAX];
	int n = snprintf(line, sizeof(line), "220-%s ESMTP mxgate\r\n", host(s));

	if (!s->dead && n > 0 && (size_t)n < sizeof(line))
		conn_write(s->conn, line, (size_t)n);
}

static void do_helo(struct session *s, char *args, int esmtp)
{
	if (!parse_helo_valid(args)) {
		session_reply(s, 501, "5.5.4", "Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
		session_count_error(s);
		return;
	}
	session_reset_transaction(s);
	snprintf(s->helo, sizeof(s->helo), "%s", args);
	s->esmtp = esmtp;
	if (!esmtp) {
		session_reply(s, 250, NULL, "%s", host(s));
		return;
	}
	char greet[SMTP_REPLY_LINE_MAX], size[48], out[1024];
	const char *lines[10];
	size_t n = 0;
	snprintf(greet, sizeof(greet), "%s Hello [%s]", host(s), s->ip_str);
	snprintf(size, sizeof(size), "SIZE %llu", (unsigned long long)s->srv->cfg->max_message_size);
	lines[n++] = greet;
	lines[n++] = "PIPELINING";
	lines[n++] = size;
	lines[n++] = "8BITMIME";
	lines[n++] = "ENHANCEDSTATUSCODES";
	lines[n++] = "SMTPUTF8";
	lines[n++] = "DSN";
	if (s->srv->tls && !s->tls)
		lines[n++] = "STARTTLS";
	conn_write(s->conn, out, reply_format_lines(out, sizeof(out), 250, NULL, lines, n));
}

static void cmd_helo(struct session *s, char *args)
{
	do_helo(s, args, 0);
}

static void cmd_ehlo(struct session *s, char *args)
{
	do_helo(s, args, 1);
}

/* Replies to a path parse error; MAIL uses 5.1.7 (bad sender), RCPT 5.1.3 (bad recipient). */
static void reply_parse_error(struct session *s, enum parse_err e, const char *why, int is_mail)
{
	const char *enh = e == PARSE_ERR_ADDRESS || e == PARSE_ERR_TOOLONG
				  ? (is_mail ? "5.1.7" : "5.1.3")
				  : "5.5.4";
	session_reply(s, 501, enh, "Syntax error: %s", why);
	session_count_error(s);
}

/* Returns 1 when p[i]'s keyword already appeared before it. */
static int param_seen(const struct esmtp_param *p, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (!strcmp(p[k].key, p[i].key))
			return 1;
	return 0;
}

/* RCPT parameters: NOTIFY and ORCPT (RFC 3461), kept as received for the queue file. */
static int rcpt_params(struct session *s, const struct esmtp_param *p, size_t n)
{
	size_t off = 0;

	s->pending_params[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int ok = p[i].value && !param_seen(p, i) &&
			 ((!strcmp(p[i].key, "NOTIFY") && parse_notify_valid(p[i].value)) ||
			  (!strcmp(p[i].key, "ORCPT") && parse_orcpt_valid(p[i].value)));
		if (!s->esmtp || (strcmp(p[i].key, "NOTIFY") && strcmp(p[i].key, "ORCPT"))) {
			session_reply(s, 555, "5.5.4", "Unsupported parameter %s", p[i].key);
			return -1;
		}
		if (!ok) {
			session_reply(s, 501, "5.5.4", "Bad or repeated %s parameter (RFC 3461)", p[i].key);
			return -1;
		}
		off += (size_t)snprintf(s->pending_params + off, sizeof(s->pending_params) - off,
					"%s%s=%s", off ? " " : "", p[i].key, p[i].value);
		if (off >= sizeof(s->pending_params))
			off = sizeof(s->pending_params) - 1;
	}
	return 0;
}

/* MAIL parameters: SIZE, BODY, SMTPUTF8, RET, ENVID (RFC 1870, 6152, 6531, 3461). Returns 0
 * or replies. */
static int mail_params(struct session *s, const struct esmtp_param *p, size_t n)
{
	size_t off = 0;

	for (size_t i = 0; i < n; i++) {
		if (!s->esmtp) {
			session_reply(s, 555, "5.5.4", "Parameters need EHLO");
			return -1;
		}
		if (!strcmp(p[i].key, "SIZE") && p[i].value) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(p[i].value, &end, 10);
			if (*end || errno || p[i].value[0] < '0' || p[i].value[0] > '9') {
				session_reply(s, 501, "5.5.4", "Bad SIZE value");
				return -1;
			}
			if (v > s->srv->cfg->max_message_size) {
				session_reply(s, 552, "5.3.4", "Message size exceeds the limit of %llu octets",
					      (unsigned long long)s->srv->cfg->max_message_size);
				return -1;
			}
		} else if (!strcmp(p[i].key, "BODY") && p[i].value) {
			if (!strcasecmp(p[i].value, "8BITMIME"))
				s->body8bit = 1;
			else if (strcasecmp(p[i].value, "7BIT")) {
				session_reply(s, 501, "5.5.4", "BODY must be 7BIT or 8BITMIME");
				return -1;
			}
		} else if (!strcmp(p[i].key, "SMTPUTF8") && !p[i].value) {
			s->smtputf8 = 1;
		} else if (!strcmp(p[i].key, "RET") || !strcmp(p[i].key, "ENVID")) {
			int ret = p[i].key[0] == 'R';
			if (!p[i].value || param_seen(p, i) ||
			    !(ret ? parse_ret_valid(p[i].value)
				  : parse_xtext_valid(p[i].value, DSN_ENVID_MAX))) {
				session_reply(s, 501, "5.5.4", "Bad or repeated %s parameter (RFC 3461)",
					      p[i].key);
				return -1;
			}
		} else {
			session_reply(s, 555, "5.5.4", "Unsupported parameter %s", p[i].key);
			return -1;
		}
		off += (size_t)snprintf(s->mail_params + off, sizeof(s->mail_params) - off, "%s%s%s%s",
					off ? " " : "", p[i].key, p[i].value ? "=" : "",
					p[i].value ? p[i].value : "");
		if (off >= sizeof(s->mail_params))
			off = sizeof(s->mail_params) - 1;
	}
	return 0;
}

static void cmd_mail(struct session *s, char *args)
{
	struct esmtp_param params[SMTP_PARAMS_MAX];
	size_t nparams;
	const char *why;
	enum parse_err e;

	if (s->has_from) {
		session_reply(s, 503, "5.5.1", "Nested MAIL command");
		session_count_error(s);
		return;
	}
	if (s->messages >= s->srv->cfg->max_messages) {
		log_info("sid=%s smtp limit ip=%s limit=max_messages value=%u", s->sid, s->ip_str,
			 s->messages);
		session_reply(s, 451, "4.7.1", "Too many messages in this session (limit %u); send the "
			      "rest in a new session", s->srv->cfg->max_messages);
		session_count_error(s);
		return;
	}
	e = parse_mail_rcpt(args, "FROM:", 1, 0, &s->from, params, &nparams, &why);
	if (e != PARSE_OK) {
		reply_parse_error(s, e, why, 1);
		return;
	}
	s->smtputf8 = s->body8bit = 0;
	s->mail_params[0] = '\0';
	if (mail_params(s, params, nparams) < 0) {
		session_count_error(s);
		return;
	}
	if (s->from.has_utf8 && !s->smtputf8) {
		session_reply(s, 553, "5.6.7", "Non-ASCII sender address needs the SMTPUTF8 parameter");
		session_count_error(s);
		return;
	}
	s->has_from = 1;
	session_reply(s, 250, "2.1.0", "Ok");
}

static int rcpt_seen(const struct session *s, const char *addr)
{
	for (unsigned i = 0; i < s->nrcpt; i++)
		if (!strcmp(s->rcpts[i].addr, addr))
			return 1;
	return 0;
}

static void rcpt_verdict(void *arg, const struct policy_verdict *v)
{
	struct session *s = arg;

	if (v->action == POLICY_ACCEPT) {
		if (s->nrcpt == s->rcpt_cap) {
			s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
			s->rcpts = xrealloc(s->rcpts, s->rcpt_cap * sizeof(*s->rcpts));
		}
		struct session_rcpt *r = &s->rcpts[s->nrcpt++];
		snprintf(r->addr, sizeof(r->addr), "%s", s->pending_rcpt.addr);
		snprintf(r->tenant, sizeof(r->tenant), "%s", v->tenant);
		snprintf(r->route, sizeof(r->route), "%s", v->route);
		snprintf(r->params, sizeof(r->params), "%s", s->pending_params);
		r->rule = v->rule;
		r->reason = v->reason;
		memcpy(r->list, v->list, sizeof(r->list));
		memcpy(r->entry, v->entry, sizeof(r->entry));
		memcpy(r->dnsbl, v->dnsbl, sizeof(r->dnsbl));
		log_info("sid=%s smtp rcpt-accept ip=%s rcpt=<%s> tenant=%s rule=%s reason=%s dnsbl=%s",
			 s->sid, s->ip_str, s->pending_rcpt.addr, v->tenant, v->rule, v->reason,
			 v->dnsbl);
		session_reply(s, 250, "2.1.5", "Ok");
	} else {
		session_reply_reject(s, v->code, v->enhanced, v->rule, v->list, v->entry, v->text);
		/* unknown recipients count as errors: probing a directory ends in 421 */
		if (!strcmp(v->enhanced, "5.1.1"))
			session_count_error(s);
	}
	session_resume(s);
	session_release(s);
}

/* A local part that routes elsewhere (percent hack, bang path, quoted '@') would let a
 * downstream server that still honours these relay for us: refused outright. */
static int local_part_routes(const struct mailpath *p)
{
	return strpbrk(p->local, "%!@") != NULL;
}

/* Tenants' domains are stored in A-label form: a U-label domain (SMTPUTF8) is converted
 * before the lookup, with the same function the store uses. Returns 0, or -1 after a reply. */
static int rcpt_domain_to_alabel(struct session *s)
{
	char alabel[MODEL_DOMAIN_MAX + 1], err[256];

	if (store_domain_normalize(s->pending_rcpt.domain, alabel, err, sizeof(err)) != 0) {
		session_reply(s, 501, "5.1.3", "Bad recipient domain: %s", err);
		session_count_error(s);
		return -1;
	}
	snprintf(s->pending_rcpt.domain, sizeof(s->pending_rcpt.domain), "%s", alabel);
	return 0;
}

/* RFC 5321 4.5.1: <postmaster> without a domain must reach someone; the gateway has no
 * mailbox, so it stands for the configured address, decided like any recipient. */
static void postmaster_rewrite(struct session *s, const char *to)
{
	struct mailpath *p = &s->pending_rcpt;
	const char *at = strrchr(to, '@');

	snprintf(p->addr, sizeof(p->addr), "%s", to);
	snprintf(p->local, sizeof(p->local), "%.*s", (int)(at - to), to);
	snprintf(p->domain, sizeof(p->domain), "%s", at + 1);
	str_lower(p->domain);
}

static void cmd_rcpt(struct session *s, char *args)
{
	struct esmtp_param params[SMTP_PARAMS_MAX];
	size_t nparams;
	const char *why;
	enum parse_err e;
	const struct config *cfg = s->srv->cfg;

	if (!s->has_from) {
		session_reply(s, 503, "5.5.1", "Need MAIL before RCPT");
		session_count_error(s);
		return;
	}
	if (s->nrcpt >= cfg->max_recipients ||
	    s->rcpt_attempts >= cfg->max_recipients * SMTP_RCPT_ATTEMPTS_FACTOR) {
		session_reply(s, 452, "4.5.3", "Too many recipients (limit %u per message)",
			      cfg->max_recipients);
		return;
	}
	s->rcpt_attempts++;
	e = parse_mail_rcpt(args, "TO:", 0, 1, &s->pending_rcpt, params, &nparams, &why);
	if (e != PARSE_OK) {
		reply_parse_error(s, e, why, 0);
		return;
	}
	if (rcpt_params(s, params, nparams) < 0) {
		session_count_error(s);
		return;
	}
	if (s->pending_rcpt.has_utf8 && !s->smtputf8) {
		session_reply(s, 553, "5.6.7", "Non-ASCII recipient address needs SMTPUTF8 in MAIL");
		return;
	}
	if (local_part_routes(&s->pending_rcpt)) {
		session_reply_reject(s, 550, "5.7.1", "relay", "address syntax", NULL,
				     "Unable to relay: routing characters (% ! @) in the local part "
				     "are not accepted");
		return;
	}
	if (rcpt_seen(s, s->pending_rcpt.addr)) {
		session_reply(s, 250, "2.1.5", "Ok (duplicate recipient)");
		return;
	}
	if (!s->pending_rcpt.domain[0] && cfg->postmaster[0])
		postmaster_rewrite(s, cfg->postmaster);
	if (s->pending_rcpt.has_utf8 && !s->pending_rcpt.is_literal && s->pending_rcpt.domain[0] &&
	    rcpt_domain_to_alabel(s) < 0)
		return;
	struct policy_client cl;
	session_policy_client(s, &cl);
	s->busy = 1;
	session_hold(s);
	/* <postmaster> without a domain (RFC 5321 4.5.1) is the postmaster of the gateway's own
	 * host name: accepted when a tenant serves that domain, refused like any relay otherwise */
	policy_check_rcpt(s->ps, &cl, s->from.domain, s->pending_rcpt.addr,
			  s->pending_rcpt.domain[0] ? s->pending_rcpt.domain : cfg->hostname,
			  rcpt_verdict, s);
}

static void cmd_data(struct session *s, char *args)
{
	int err;

	(void)args;
	if (!s->has_from) {
		session_reply(s, 503, "5.5.1", "Need MAIL command");
		session_count_error(s);
		return;
	}
	if (s->nrcpt == 0) {
		session_reply(s, 554, "5.5.1", "No valid recipients");
		return;
	}
	if ((err = session_begin_data(s)) != 0) {
		log_warn("sid=%s smtp queue-error error=\"%s\"", s->sid, strerror(err));
		session_reply(s, 452, "4.3.1", "Insufficient system storage, try again later");
		session_reset_transaction(s);
		return;
	}
	session_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

static void cmd_rset(struct session *s, char *args)
{
	(void)args;
	session_reset_transaction(s);
	session_reply(s, 250, "2.0.0", "Ok");
}

static void cmd_noop(struct session *s, char *args)
{
	(void)args;
	session_reply(s, 250, "2.0.0", "Ok");
}

static void cmd_quit(struct session *s, char *args)
{
	(void)args;
	session_reply(s, 221, "2.0.0", "%s closing connection", host(s));
	session_close(s, "quit");
}

static void cmd_help(struct session *s, char *args)
{
	(void)args;
	session_reply(s, 214, "2.0.0",
		      "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY STARTTLS");
}

static void cmd_vrfy(struct session *s, char *args)
{
	if (!*args) {
		session_reply(s, 501, "5.5.4", "Syntax: VRFY address");
		session_count_error(s);
		return;
	}
	/* RFC 5321 3.5.3: 252 without saying whether the user exists (no enumeration). */
	session_reply(s, 252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_starttls(struct session *s, char *args)
{
	(void)args;
	if (!s->srv->tls) {
		session_reply(s, 502, "5.5.1", "STARTTLS not available");
		session_count_error(s);
		return;
	}
	if (s->tls) {
		session_reply(s, 503, "5.5.1", "TLS already active");
		session_count_error(s);
		return;
	}
	session_reply(s, 220, "2.0.0", "Ready to start TLS");
	/* conn_starttls discards whatever the client pipelined behind STARTTLS (RFC 3207 4.2
	 * and CVE-2011-0411): it must never run as if it had come over TLS. */
	if (conn_starttls(s->conn, s->srv->tls) < 0) {
		log_warn("sid=%s smtp tls-error reason=\"cannot start TLS\"", s->sid);
		session_close(s, "tls-setup-failed");
		return;
	}
	s->tls = 1;
	/* RFC 3207 4.2: forget everything learned before TLS, the client starts with EHLO. */
	s->helo[0] = '\0';
	s->esmtp = 0;
	session_reset_transaction(s);
	log_info("sid=%s smtp starttls ip=%s", s->sid, s->ip_str);
}

static const struct cmd_def cmd_table[] = {
	{ VERB_HELO, cmd_helo, 0 },
	{ VERB_EHLO, cmd_ehlo, 0 },
	{ VERB_MAIL, cmd_mail, CMD_NEEDS_HELO },
	{ VERB_RCPT, cmd_rcpt, CMD_NEEDS_HELO },
	{ VERB_DATA, cmd_data, CMD_NEEDS_HELO | CMD_NO_ARGS },
	{ VERB_RSET, cmd_rset, CMD_NO_ARGS | CMD_JUNK },
	{ VERB_NOOP, cmd_noop, CMD_JUNK },
	{ VERB_QUIT, cmd_quit, CMD_NO_ARGS },
	{ VERB_HELP, cmd_help, CMD_JUNK },
	{ VERB_VRFY, cmd_vrfy, CMD_JUNK },
	{ VERB_STARTTLS, cmd_starttls, CMD_NEEDS_HELO | CMD_NO_ARGS },
};

void commands_dispatch(struct session *s, char *line, size_t len)
{
	char *args;
	enum smtp_verb verb = parse_verb(line, (const char **)&args);

	(void)len;
	for (size_t i = 0; i < sizeof(cmd_table) / sizeof(cmd_table[0]); i++) {
		const struct cmd_def *c = &cmd_table[i];
		if (c->verb != verb)
			continue;
		if ((c->flags & CMD_NEEDS_HELO) && !s->helo[0]) {
			session_reply(s, 503, "5.5.1", "Send HELO/EHLO first");
			session_count_error(s);
			return;
		}
		if ((c->flags & CMD_JUNK) && session_count_junk(s))
			return;
		if ((c->flags & CMD_NO_ARGS) && *args) {
			session_reply(s, 501, "5.5.4", "Syntax: %s takes no arguments",
				      parse_verb_name(verb));
			session_count_error(s);
			return;
		}
		c->handler(s, args);
		return;
	}
	session_reply(s, 500, "5.5.2", "Command unrecognized");
	session_count_error(s);
}
