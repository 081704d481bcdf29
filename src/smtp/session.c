/* session: life cycle and input loop of one SMTP session.
 *
 * The loop (session_run) takes one unit of input at a time: the PROXY header, a command line,
 * or a block of DATA. A command whose answer comes later (policy verdict, queue commit) sets
 * `busy`; input then stays buffered, and the completion sends its reply and resumes the loop,
 * so pipelined replies always leave in command order. A session is freed only when it is
 * closed, outside the loop and with no asynchronous step holding a reference to it. */
#include "smtp/session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event/conn.h"
#include "event/iptable.h"
#include "event/proxy_proto.h"
#include "queue/queue.h"
#include "smtp/reply.h"
#include "smtp/server.h"
#include "smtp/session_private.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* Room for the largest block the datastream can return: a conn_peek block plus 2. */
#define SESSION_DATA_CHUNK (64 * 1024)
/* Seconds a proxy_from peer has to send its PROXY header. */
#define PROXY_HEADER_TIMEOUT 10
/* Message data renews the data_timeout deadline once per this many bytes: a client sending
 * at least this much per data_timeout is never cut, one trickling bytes is cut in time. */
#define DATA_PROGRESS_BYTES (64 * 1024)

static void session_run(struct session *s);
static void session_client_known(struct session *s);
static int greet_step(struct session *s);
static void greet_done(struct session *s);

static void session_destroy(struct session *s)
{
	struct server *srv = s->srv;

	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	queue_msg_abort(&s->msg);
	if (s->client_slot != IPTABLE_UNTRACKED)
		iptable_disconnect(srv->clients, srv->slot, s->client_slot);
	policy_session_free(&s->ps);
	conn_free_after_flush(&s->conn);
	free(s->rcpts);
	free(s);
	server_session_ended(srv);
}

static void session_maybe_free(struct session *s)
{
	if (s->dead && !s->running && s->refs == 0)
		session_destroy(s);
}

void session_hold(struct session *s)
{
	s->refs++;
}

void session_release(struct session *s)
{
	s->refs--;
	session_maybe_free(s);
}

void session_close(struct session *s, const char *reason)
{
	if (s->dead)
		return;
	s->dead = 1;
	log_info("sid=%s smtp disconnect ip=%s messages=%u errors=%u reason=%s", s->sid, s->ip_str,
		 s->messages, s->errors, reason);
	if (s->conn)
		conn_pause_read(s->conn);
}

void session_reply(struct session *s, int code, const char *enh, const char *fmt, ...)
{
	char text[SMTP_REPLY_LINE_MAX * 2], out[SMTP_REPLY_LINE_MAX * 3];
	va_list ap;

	if (s->dead || !s->conn)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	conn_write(s->conn, out, reply_format(out, sizeof(out), code, enh, text));
}

void session_reply_reject(struct session *s, int code, const char *enh, const char *rule,
			  const char *list, const char *entry, const char *text)
{
	char ref[SHORT_ID_LEN + 1], elist[ENGINE_FIELD_MAX * 4], eentry[ENGINE_FIELD_MAX * 4];
	char etext[SMTP_REPLY_LINE_MAX * 4];

	id_short(ref);
	/* the text may quote client bytes (addresses, TXT records): escaped like every field */
	log_info("sid=%s smtp reject ref=%s ip=%s code=%d enh=%s rule=%s list=\"%s\" entry=\"%s\" "
		 "text=\"%s\"", s->sid, ref, s->ip_str, code, enh, rule,
		 log_escape(elist, sizeof(elist), list ? list : "", list ? strlen(list) : 0),
		 log_escape(eentry, sizeof(eentry), entry ? entry : "", entry ? strlen(entry) : 0),
		 log_escape(etext, sizeof(etext), text, strlen(text)));
	char full[SMTP_REPLY_LINE_MAX * 2];
	reply_reject_text(full, sizeof(full), text, s->ip_str, s->srv->cfg->hostname, ref);
	session_reply(s, code, enh, "%s", full);
}

int session_count_error(struct session *s)
{
	if (++s->errors < s->srv->cfg->max_errors)
		return 0;
	session_reply(s, 421, "4.7.0", "%s Too many errors (%u) in this session, closing",
		      s->srv->cfg->hostname, s->errors);
	session_close(s, "too-many-errors");
	return 1;
}

int session_count_junk(struct session *s)
{
	if (++s->junk <= s->srv->cfg->max_junk_commands)
		return 0;
	log_info("sid=%s smtp limit ip=%s limit=max_junk_commands value=%u", s->sid, s->ip_str,
		 s->junk);
	session_reply(s, 421, "4.7.0", "%s Too many commands that move no mail (limit %u), closing",
		      s->srv->cfg->hostname, s->srv->cfg->max_junk_commands);
	session_close(s, "max-junk-commands");
	return 1;
}

/* Bytes the client sent; beyond max_session_bytes the session ends before the next command
 * (a message under way finishes first: max_message_size bounds it). Returns 1 if closed. */
static int session_over_bytes(struct session *s)
{
	if (s->bytes_in <= s->srv->cfg->max_session_bytes)
		return 0;
	log_info("sid=%s smtp limit ip=%s limit=max_session_bytes value=%llu", s->sid, s->ip_str,
		 (unsigned long long)s->bytes_in);
	session_reply(s, 421, "4.7.0", "%s Too much data in this session (limit %llu bytes), closing",
		      s->srv->cfg->hostname, (unsigned long long)s->srv->cfg->max_session_bytes);
	session_close(s, "max-session-bytes");
	return 1;
}

void session_reset_transaction(struct session *s)
{
	s->has_from = 0;
	s->mail_params[0] = '\0';
	s->smtputf8 = s->body8bit = 0;
	s->nrcpt = 0;
	s->rcpt_attempts = 0;
	queue_msg_abort(&s->msg);
}

void session_resume(struct session *s)
{
	s->busy = 0;
	if (!s->running && !s->dead)
		session_run(s);
}

/* PROXY header: the address it carries replaces the peer's for every later decision. */
static int proxy_step(struct session *s)
{
	size_t have = conn_input_len(s->conn), want = have < PROXY_V2_MAX ? have : PROXY_V2_MAX;
	struct proxy_result pr;
	const char *why = "";
	char peer[ADDR_STR_MAX];

	if (have == 0)
		return 0;
	enum proxy_status st = proxy_parse(conn_pullup(s->conn, want), want, &pr, &why);
	if (st == PROXY_NEED_MORE && have < PROXY_V2_MAX)
		return 0;
	if (st != PROXY_OK) {
		log_warn("sid=%s smtp proxy-error peer=%s reason=\"%s\"", s->sid, s->ip_str,
			 st == PROXY_NEED_MORE ? "header too long" : why);
		session_close(s, "bad-proxy-header");
		return 0;
	}
	conn_drain(s->conn, pr.header_len);
	snprintf(peer, sizeof(peer), "%s", s->ip_str);
	if (!pr.local) {
		s->ip = pr.src;
		s->port = pr.src_port;
		ip_format(&s->ip, s->ip_str);
	}
	log_info("sid=%s smtp proxy ip=%s port=%u via=%s version=%d%s", s->sid, s->ip_str, s->port,
		 peer, pr.version, pr.local ? " local=yes" : "");
	session_client_known(s);
	return 1;
}

static int command_step(struct session *s)
{
	char line[SMTP_CMD_LINE_MAX + 1];
	size_t len;
	int crlf;

	if (s->skipping_line) {
		/* the rest of an over-long line, arriving later: it must never run as a command */
		if (conn_input_len(s->conn) == 0)
			return 0;
		s->skipping_line = !conn_skip_line(s->conn);
		return 1;
	}
	switch (conn_read_line(s->conn, SMTP_CMD_LINE_MAX, line, sizeof(line), &len, &crlf)) {
	case CONN_LINE_AGAIN:
		return 0;
	case CONN_LINE_TOOLONG:
		s->bytes_in += SMTP_CMD_LINE_MAX;
		if (session_over_bytes(s))
			return 1;
		s->skipping_line = !conn_skip_line(s->conn);
		session_reply(s, 500, "5.5.2", "Line too long (limit %d octets)", SMTP_CMD_LINE_MAX);
		session_count_error(s);
		return 1;
	case CONN_LINE_OK:
		break;
	}
	/* the next command has command_timeout from now, however slowly it trickles in */
	conn_set_timeout(s->conn, s->srv->cfg->command_timeout);
	s->bytes_in += len + (crlf ? 2 : 1);
	if (session_over_bytes(s))
		return 1;
	if (memchr(line, '\0', len) || memchr(line, '\r', len)) {
		session_reply(s, 500, "5.5.2", "Invalid character in command");
		session_count_error(s);
		return 1;
	}
	commands_dispatch(s, line, len);
	return 1;
}

static const char *data_error(unsigned flags, int *code_r, const char **enh_r)
{
	if (flags & (DS_BARE_LF | DS_BARE_CR)) {
		*code_r = 550;
		*enh_r = "5.6.11";
		return flags & DS_BARE_LF ? "Message rejected: bare LF in message data; lines must end "
					    "with CRLF and end of data is only <CRLF>.<CRLF>"
					  : "Message rejected: bare CR in message data; lines must end "
					    "with CRLF and end of data is only <CRLF>.<CRLF>";
	}
	*code_r = 552;
	*enh_r = "5.3.4";
	return flags & DS_TOO_BIG ? "Message rejected: size exceeds the limit"
				  : "Message rejected: a line exceeds 1000 octets (RFC 5321 4.5.3.1.6)";
}

static void data_committed(void *arg, int status)
{
	struct session *s = arg;

	if (status == 0) {
		char from[SMTP_PATH_MAX * 4 + 1];
		s->messages++;
		log_info("sid=%s smtp queued qid=%s ip=%s from=<%s> nrcpt=%u size=%llu", s->sid, s->qid,
			 s->ip_str, log_escape(from, sizeof(from), s->from.addr, strlen(s->from.addr)),
			 s->nrcpt, (unsigned long long)s->ds.size);
		session_reply(s, 250, "2.0.0", "Ok: queued as %s", s->qid);
	} else {
		log_warn("sid=%s smtp queue-error qid=%s error=\"%s\"", s->sid, s->qid, strerror(status));
		session_reply(s, 452, "4.3.1", "Insufficient system storage, try again later");
	}
	session_reset_transaction(s);
	s->busy = 0;
	if (!s->dead && !s->running)
		session_run(s);
	session_release(s);
}

static void data_finish(struct session *s)
{
	int code, err;
	const char *enh;

	s->state = SESS_COMMAND;
	conn_set_timeout(s->conn, s->srv->cfg->command_timeout);
	if (s->ds.flags) {
		const char *why = data_error(s->ds.flags, &code, &enh);
		session_reply_reject(s, code, enh, "data", NULL, NULL, why);
		session_reset_transaction(s);
		return;
	}
	if ((err = queue_msg_error(s->msg)) != 0) {
		log_warn("sid=%s smtp queue-error qid=%s error=\"%s\"", s->sid, s->qid, strerror(err));
		session_reply(s, 452, "4.3.1", "Insufficient system storage, try again later");
		session_reset_transaction(s);
		return;
	}
	s->busy = 1;
	session_hold(s);
	queue_msg_commit(&s->msg, data_committed, s);
}

static int data_step(struct session *s)
{
	char out[SESSION_DATA_CHUNK + 2];
	size_t len, used, outlen;
	const char *in = conn_peek(s->conn, &len);

	if (len == 0)
		return 0;
	if (len > SESSION_DATA_CHUNK)
		len = SESSION_DATA_CHUNK;
	enum ds_result r = ds_feed(&s->ds, in, len, &used, out, &outlen);
	if (outlen && s->msg)
		queue_msg_write(s->msg, out, outlen);
	conn_drain(s->conn, used);
	s->bytes_in += used;
	s->data_since_timeout += used;
	if (s->data_since_timeout >= DATA_PROGRESS_BYTES) {
		s->data_since_timeout = 0;
		conn_set_timeout(s->conn, s->srv->cfg->data_timeout);
	}
	if (r == DS_END)
		data_finish(s);
	return 1;
}

static void session_run(struct session *s)
{
	s->running = 1;
	while (!s->dead && !s->busy) {
		int progressed;
		switch (s->state) {
		case SESS_PROXY: progressed = proxy_step(s); break;
		case SESS_GREET: progressed = greet_step(s); break;
		case SESS_DATA: progressed = data_step(s); break;
		default: progressed = command_step(s); break;
		}
		if (!progressed)
			break;
	}
	s->running = 0;
}

static void on_conn_event(struct conn *c, enum conn_event ev, void *arg)
{
	struct session *s = arg;
	(void)c;

	switch (ev) {
	case CONN_EV_READ:
		if (!s->running)
			session_run(s);
		break;
	case CONN_EV_TIMEOUT:
		if (s->state == SESS_GREET) { /* the pause is over */
			greet_done(s);
			if (!s->running)
				session_run(s);
			break;
		}
		if (s->state != SESS_PROXY)
			session_reply(s, 421, "4.4.2", "%s Error: timeout exceeded, closing",
				      s->srv->cfg->hostname);
		session_close(s, s->state == SESS_DATA ? "data-timeout" : "timeout");
		break;
	case CONN_EV_EOF:
		session_close(s, s->state == SESS_DATA ? "eof-in-data" : "eof");
		break;
	case CONN_EV_ERROR:
		session_close(s, "io-error");
		break;
	}
	session_maybe_free(s);
}

/* One X-Mxgate-Verdict header per tenant among the recipients: the verdict, the rule and why
 * (docs/policy-precedence.md). Values are policy-made (names, CIDRs, list names), no client
 * bytes except the address, which the parser limited to the address grammar. */
static void write_verdicts(struct session *s)
{
	char hdr[1024];

	for (unsigned i = 0; i < s->nrcpt; i++) {
		const struct session_rcpt *r = &s->rcpts[i];
		unsigned k;
		for (k = 0; k < i && strcmp(s->rcpts[k].tenant, r->tenant) != 0; k++)
			;
		if (k < i)
			continue; /* one header per tenant */
		int n = snprintf(hdr, sizeof(hdr),
				 "X-Mxgate-Verdict: tenant=%s; action=accept; reason=%s; rule=%s;\r\n"
				 "\tclient=[%s]; dnsbl=%s",
				 r->tenant, r->reason, r->rule, s->ip_str, r->dnsbl);
		if (r->list[0] && n > 0 && (size_t)n < sizeof(hdr))
			n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "; list=\"%s\"", r->list);
		if (r->entry[0] && n > 0 && (size_t)n < sizeof(hdr))
			n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "; entry=\"%s\"", r->entry);
		if (n > 0 && (size_t)n < sizeof(hdr))
			n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "; gateway=%s\r\n",
				      s->srv->cfg->hostname);
		queue_msg_write(s->msg, hdr, strlen(hdr));
	}
}

/* RFC 5321 4.4 trace header: who connected (PROXY address), what it said in HELO, the TLS
 * state, our queue id; "for" only with a single recipient, so Bcc lists do not leak. */
static void write_received(struct session *s, const char *tls)
{
	char hdr[2048], date[64];
	time_t now = time(NULL);
	struct tm tm;
	const char *proto = s->smtputf8 ? (s->tls ? "UTF8SMTPS" : "UTF8SMTP")
					: s->esmtp ? (s->tls ? "ESMTPS" : "ESMTP")
						   : (s->tls ? "SMTPS" : "SMTP");
	int n;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	/* RFC 5321 4.1.3: an IPv6 address literal is written [IPv6:...] */
	n = snprintf(hdr, sizeof(hdr),
		     "Received: from %s ([%s%s])\r\n\tby %s (mxgate) with %s id %s\r\n\t(%s%s)\r\n",
		     s->helo, ip_is_v4(&s->ip) ? "" : "IPv6:", s->ip_str, s->srv->cfg->hostname, proto,
		     s->qid, tls[0] ? "tls=" : "no TLS", tls);
	if (s->nrcpt == 1)
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "\tfor <%s>; %s\r\n", s->rcpts[0].addr,
			      date);
	else
		n += snprintf(hdr + n, sizeof(hdr) - (size_t)n, "\t; %s\r\n", date);
	queue_msg_write(s->msg, hdr, strlen(hdr));
	write_verdicts(s);
}

int session_begin_data(struct session *s)
{
	struct queue_rcpt rcpts_stack[16], *rcpts = rcpts_stack;
	struct queue_envelope env;
	char tls[128];

	if (s->nrcpt > 16)
		rcpts = xcalloc(s->nrcpt, sizeof(*rcpts));
	for (unsigned i = 0; i < s->nrcpt; i++) {
		rcpts[i].addr = s->rcpts[i].addr;
		rcpts[i].tenant = s->rcpts[i].tenant;
		rcpts[i].route = s->rcpts[i].route;
		rcpts[i].params = s->rcpts[i].params;
	}
	id_queue(s->qid);
	env = (struct queue_envelope){
		.qid = s->qid, .arrival = time(NULL), .sid = s->sid, .client_ip = s->ip_str,
		.helo = s->helo, .tls = conn_tls_summary(s->conn, tls, sizeof(tls)),
		.mail_from = s->from.addr, .mail_params = s->mail_params,
		.rcpts = rcpts, .nrcpt = s->nrcpt,
	};
	s->msg = queue_msg_begin(s->srv->queue, &env);
	int err = s->msg ? 0 : errno;
	if (rcpts != rcpts_stack)
		free(rcpts);
	if (err)
		return err;
	write_received(s, env.tls);
	ds_init(&s->ds, s->srv->cfg->max_message_size);
	s->data_since_timeout = 0;
	s->state = SESS_DATA;
	conn_set_timeout(s->conn, s->srv->cfg->data_timeout);
	return 0;
}

void session_policy_client(struct session *s, struct policy_client *cl)
{
	if (s->tls && !s->tls_names_known) {
		/* the handshake is over once a command arrives over TLS */
		s->ntls_names = conn_tls_peer_names(s->conn, s->tls_names, ENGINE_TLS_NAMES_MAX);
		for (size_t i = 0; i < s->ntls_names; i++)
			s->tls_name_ptrs[i] = s->tls_names[i];
		s->tls_names_known = 1;
		if (s->ntls_names)
			log_info("sid=%s smtp tls-client-cert ip=%s name=%s verified=yes", s->sid,
				 s->ip_str, s->tls_names[0]);
	}
	memset(cl, 0, sizeof(*cl));
	cl->ip = s->ip;
	cl->ip_str = s->ip_str;
	cl->tls = s->tls;
	cl->tls_names = s->tls_name_ptrs;
	cl->ntls_names = s->ntls_names;
	cl->sid = s->sid;
}

static int cidr_list_contains(const struct cidr_list *l, const struct ip_addr *ip)
{
	for (unsigned i = 0; i < l->n; i++)
		if (cidr_contains(&l->v[i], ip))
			return 1;
	return 0;
}

/* Per-client limits, counted in the table every worker shares. Returns 0 when the client may
 * go on; otherwise it has its 421 and the session is closed. */
static int session_admit(struct session *s)
{
	const struct config *cfg = s->srv->cfg;
	struct iptable_count n;
	struct ip_addr key;
	const char *limit = NULL;

	if (!s->srv->clients || cidr_list_contains(&cfg->limit_exempt, &s->ip))
		return 0;
	iptable_key(&s->ip, cfg->limit_ipv6_prefix, &key);
	s->client_slot = iptable_connect(s->srv->clients, s->srv->slot, &key, time(NULL), &n);
	if (cfg->max_sessions_per_ip && n.sessions > cfg->max_sessions_per_ip) {
		limit = "max_sessions_per_ip";
		session_reply(s, 421, "4.7.0", "%s Too many concurrent sessions from %s (limit %u), "
			      "try again later", cfg->hostname, s->ip_str, cfg->max_sessions_per_ip);
	} else if (cfg->max_connect_rate && n.per_minute > cfg->max_connect_rate) {
		limit = "max_connect_rate";
		session_reply(s, 421, "4.7.0", "%s Too many connections from %s (%u in the last "
			      "minute, limit %u), try again later", cfg->hostname, s->ip_str,
			      n.per_minute, cfg->max_connect_rate);
	}
	if (!n.tracked)
		log_info("sid=%s smtp limit ip=%s untracked=yes (the per-client table has no room)",
			 s->sid, s->ip_str);
	if (!limit)
		return 0;
	log_info("sid=%s smtp limit ip=%s limit=%s sessions=%u per_minute=%u", s->sid, s->ip_str,
		 limit, n.sessions, n.per_minute);
	session_close(s, limit);
	return -1;
}

/* The client sent bytes before the greeting was complete. Returns 1 if the session closed. */
static int session_pregreet(struct session *s)
{
	s->pregreet = 1;
	log_info("sid=%s smtp pregreet ip=%s bytes=%zu action=%s", s->sid, s->ip_str,
		 conn_input_len(s->conn), s->srv->cfg->pregreet_reject ? "reject" : "log");
	if (!s->srv->cfg->pregreet_reject)
		return 0;
	session_reply(s, 554, "5.5.1", "%s Protocol error: the client talked before the greeting",
		      s->srv->cfg->hostname);
	session_close(s, "pregreet");
	return 1;
}

static void greet_done(struct session *s)
{
	s->state = SESS_COMMAND;
	conn_set_timeout(s->conn, s->srv->cfg->command_timeout);
	commands_greet(s);
}

/* Waiting out greet_pause_ms: input now is pregreet; it waits (bounded by the input buffer's
 * high-water mark) until the greeting is complete. */
static int greet_step(struct session *s)
{
	if (!s->pregreet && conn_input_len(s->conn) > 0)
		session_pregreet(s);
	return 0;
}

/* The client address is final (after the PROXY header, if any): apply the per-client limits,
 * start the policy session, whose DNSBL lookups then run while the client says EHLO and MAIL
 * (or while the greeting pauses), and greet. */
static void session_client_known(struct session *s)
{
	struct policy_client cl;

	if (session_admit(s) < 0)
		return;
	session_policy_client(s, &cl);
	s->ps = policy_session_new(s->srv->policy, &cl);
	/* behind a PROXY header, bytes in the same read came before any greeting */
	if (conn_input_len(s->conn) > 0 && session_pregreet(s))
		return;
	if (s->srv->cfg->greet_pause_ms && !s->pregreet) {
		commands_greet_first(s);
		s->state = SESS_GREET;
		conn_set_timeout_ms(s->conn, s->srv->cfg->greet_pause_ms);
		return;
	}
	greet_done(s);
}

void session_start(struct server *srv, int fd, const struct sockaddr *peer, int expect_proxy)
{
	struct session *s = xcalloc(1, sizeof(*s));

	s->srv = srv;
	s->client_slot = IPTABLE_UNTRACKED;
	srv->nsessions++;
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	id_short(s->sid);
	if (ip_from_sockaddr(peer, &s->ip, &s->port) < 0)
		memset(&s->ip, 0, sizeof(s->ip));
	ip_format(&s->ip, s->ip_str);
	s->conn = conn_new(srv->base, fd, on_conn_event, s);
	if (!s->conn) {
		session_destroy(s);
		return;
	}
	log_info("sid=%s smtp connect ip=%s port=%u sessions=%u", s->sid, s->ip_str, s->port,
		 srv->nsessions);
	if (srv->nsessions > srv->max_sessions) {
		session_reply(s, 421, "4.7.0", "%s Too many concurrent sessions, try again later",
			      srv->cfg->hostname);
		session_close(s, "max-sessions");
		session_maybe_free(s);
		return;
	}
	if (expect_proxy) {
		if (!cidr_list_contains(&srv->cfg->proxy_from, &s->ip)) {
			log_warn("sid=%s smtp proxy-refused peer=%s reason=\"not in proxy_from\"", s->sid,
				 s->ip_str);
			session_close(s, "proxy-untrusted");
			session_maybe_free(s);
			return;
		}
		s->state = SESS_PROXY;
		conn_set_timeout(s->conn, PROXY_HEADER_TIMEOUT);
		return;
	}
	session_client_known(s);
}

void session_close_all(struct server *srv)
{
	struct session *s = srv->sessions, *next;

	for (; s; s = next) {
		next = s->next;
		if (s->dead)
			continue;
		session_reply(s, 421, "4.3.2", "%s Service shutting down, try again later",
			      srv->cfg->hostname);
		session_close(s, "shutdown");
		session_maybe_free(s);
	}
}
