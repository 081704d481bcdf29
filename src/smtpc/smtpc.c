/* smtpc: see smtpc.h. This file holds the connection (non-blocking connect over a list of
 * addresses, bufferevent I/O, reading replies with bounded buffers, STARTTLS), the session
 * set-up (greeting, EHLO/HELO) and the life cycle (references, deferred work, QUIT linger).
 * smtpc_txn.c runs the mail transactions; smtpc_proto.c holds the pure parsers. */
#include "smtpc/smtpc_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xmalloc.h"

/* Defaults of struct smtpc_timeouts: RFC 5321 4.5.3.2 for the greeting and the transaction,
 * Postfix's smtp_*_timeout for what the RFC leaves open. */
#define SMTPC_DEF_CONNECT_MS (30 * 1000)
#define SMTPC_DEF_GREETING_MS (5 * 60 * 1000)
#define SMTPC_DEF_EHLO_MS (5 * 60 * 1000)
#define SMTPC_DEF_STARTTLS_MS (5 * 60 * 1000)
#define SMTPC_DEF_MAIL_MS (5 * 60 * 1000)
#define SMTPC_DEF_RCPT_MS (5 * 60 * 1000)
#define SMTPC_DEF_DATA_INIT_MS (2 * 60 * 1000)
#define SMTPC_DEF_DATA_BLOCK_MS (3 * 60 * 1000)
#define SMTPC_DEF_DATA_END_MS (10 * 60 * 1000)
#define SMTPC_DEF_RSET_MS (20 * 1000)
#define SMTPC_DEF_QUIT_MS (10 * 1000)

/* Input buffered beyond this stops reading from the socket; one reply line must fit, so a
 * server that sends endless bytes without a line end is caught at SMTPC_REPLY_MAX. */
#define SMTPC_INPUT_HIGH_WATER (SMTPC_REPLY_MAX + 2)
/* What the EHLO name falls back to when the configured one cannot go on the wire. */
#define SMTPC_HELO_FALLBACK "localhost.localdomain"

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void attempt_start(struct smtpc *c);

/* ---- small helpers ------------------------------------------------------------------------- */

void smtpc_params_init(struct smtpc_params *p)
{
	memset(p, 0, sizeof(*p));
	p->tls = SMTPC_TLS_NONE;
}

static void timeouts_default(struct smtpc_timeouts *t)
{
#define SMTPC_DEF(field, value) \
	if (t->field == 0)      \
	t->field = (value)
	SMTPC_DEF(connect_ms, SMTPC_DEF_CONNECT_MS);
	SMTPC_DEF(greeting_ms, SMTPC_DEF_GREETING_MS);
	SMTPC_DEF(ehlo_ms, SMTPC_DEF_EHLO_MS);
	SMTPC_DEF(starttls_ms, SMTPC_DEF_STARTTLS_MS);
	SMTPC_DEF(mail_ms, SMTPC_DEF_MAIL_MS);
	SMTPC_DEF(rcpt_ms, SMTPC_DEF_RCPT_MS);
	SMTPC_DEF(data_init_ms, SMTPC_DEF_DATA_INIT_MS);
	SMTPC_DEF(data_block_ms, SMTPC_DEF_DATA_BLOCK_MS);
	SMTPC_DEF(data_end_ms, SMTPC_DEF_DATA_END_MS);
	SMTPC_DEF(rset_ms, SMTPC_DEF_RSET_MS);
	SMTPC_DEF(quit_ms, SMTPC_DEF_QUIT_MS);
#undef SMTPC_DEF
}

int smtpc_status_class(const struct smtpc_status *s)
{
	return s->enh[0] == '2' ? 2 : s->enh[0] == '5' ? 5 : 4;
}

const char *smtpc_stage_name(enum smtpc_stage stage)
{
	static const char *const names[] = {
		[SMTPC_STAGE_CONNECT] = "connect", [SMTPC_STAGE_GREETING] = "greeting",
		[SMTPC_STAGE_EHLO] = "EHLO",       [SMTPC_STAGE_STARTTLS] = "STARTTLS",
		[SMTPC_STAGE_TLS] = "TLS",         [SMTPC_STAGE_MAIL] = "MAIL",
		[SMTPC_STAGE_RCPT] = "RCPT",       [SMTPC_STAGE_DATA] = "DATA",
		[SMTPC_STAGE_BODY] = "BODY",       [SMTPC_STAGE_RSET] = "RSET",
		[SMTPC_STAGE_LOCAL] = "local",
	};
	return (unsigned)stage < sizeof(names) / sizeof(names[0]) ? names[stage] : "?";
}

const char *smtpc_log_id(const struct smtpc *c)
{
	return c->log_id ? c->log_id : "-";
}

void smtpc_describe(const struct smtpc *c, const char *what, char *buf, size_t bufsz)
{
	static const char *const where[] = {
		[SMTPC_STAGE_CONNECT] = "while connecting",
		[SMTPC_STAGE_GREETING] = "while receiving the initial greeting",
		[SMTPC_STAGE_EHLO] = "after EHLO",
		[SMTPC_STAGE_STARTTLS] = "after STARTTLS",
		[SMTPC_STAGE_TLS] = "during the TLS handshake",
		[SMTPC_STAGE_MAIL] = "after MAIL FROM",
		[SMTPC_STAGE_RCPT] = "after RCPT TO",
		[SMTPC_STAGE_DATA] = "after DATA",
		[SMTPC_STAGE_BODY] = "while sending the message body",
		[SMTPC_STAGE_RSET] = "after RSET",
		[SMTPC_STAGE_LOCAL] = "while idle",
	};
	snprintf(buf, bufsz, "%s with %s[%s] %s", what, c->host_name ? c->host_name : "", c->ip,
		 (unsigned)c->stage < sizeof(where) / sizeof(where[0]) ? where[c->stage] : "");
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* A name that can go on the EHLO line: 1..255 octets, no space or control byte. */
static int helo_name_ok(const char *s)
{
	size_t len = s ? strlen(s) : 0;

	if (len == 0 || len >= SMTPC_HOST_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7f)
			return 0;
	return 1;
}

static int is_ip_literal(const char *name)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* ---- references and teardown --------------------------------------------------------------- */

static void hold(struct smtpc *c)
{
	c->refs++;
}

static void close_io(struct smtpc *c)
{
	if (c->connect_ev) {
		event_free(c->connect_ev);
		c->connect_ev = NULL;
	}
	if (c->bev) {
		bufferevent_free(c->bev); /* and with it the socket, SSL, the plain one under TLS */
		c->bev = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	if (c->timer)
		evtimer_del(c->timer);
}

static void destroy(struct smtpc *c)
{
	close_io(c);
	smtpc_txn_free(&c->txn);
	if (c->timer)
		event_free(c->timer);
	if (c->defer)
		event_free(c->defer);
	SSL_CTX_free(c->ssl_ctx);
	free(c->helo_name);
	free(c->host_name);
	free(c->log_id);
	free(c->tls_name);
	free(c->addrs);
	free(c->addrlens);
	free(c);
}

static void release(struct smtpc *c)
{
	if (--c->refs == 0)
		destroy(c);
}

void smtpc_close(struct smtpc *c)
{
	close_io(c);
	c->state = SMTPC_S_CLOSED;
}

/* ---- I/O helpers ---------------------------------------------------------------------------- */

void smtpc_write(struct smtpc *c, const char *buf, size_t len)
{
	if (c->bev)
		bufferevent_write(c->bev, buf, len);
}

size_t smtpc_output_len(const struct smtpc *c)
{
	return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

void smtpc_arm(struct smtpc *c, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evtimer_add(c->timer, &tv);
}

void smtpc_disarm(struct smtpc *c)
{
	evtimer_del(c->timer);
}

void smtpc_defer(struct smtpc *c)
{
	event_active(c->defer, EV_TIMEOUT, 0);
}

/* Callbacks are deferred (BEV_OPT_DEFER_CALLBACKS): a write into a TLS bufferevent may run
 * OpenSSL, and its callbacks, inside bufferevent_write(), i.e. inside smtpc_send(). */
static void setup_bev(struct smtpc *c)
{
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, SMTPC_INPUT_HIGH_WATER);
	bufferevent_setwatermark(c->bev, EV_WRITE, SMTPC_BODY_LOW_WATER, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void set_peer(struct smtpc *c, const struct sockaddr *sa)
{
	const void *a = NULL;

	c->ip[0] = '\0';
	c->port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		a = &in->sin_addr;
		c->port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		a = &in6->sin6_addr;
		c->port = ntohs(in6->sin6_port);
	}
	if (a && !inet_ntop(sa->sa_family, a, c->ip, sizeof(c->ip)))
		c->ip[0] = '\0';
}

/* ---- connect: addresses in order ------------------------------------------------------------ */

static void fill_info(const struct smtpc *c, struct smtpc_ready_info *info)
{
	memset(info, 0, sizeof(*info));
	snprintf(info->host, sizeof(info->host), "%s", c->host_name ? c->host_name : "");
	snprintf(info->ip, sizeof(info->ip), "%s", c->ip);
	info->port = c->port;
	info->ext = c->ext;
	info->size_max = c->size_max;
	info->tls = c->tls;
	info->tls_verified = c->tls_verified;
	if (c->tls && c->bev) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		int bits = 0;
		if (ssl) {
			SSL_get_cipher_bits(ssl, &bits);
			snprintf(info->tls_summary, sizeof(info->tls_summary), "%s:%s:%d",
				 SSL_get_version(ssl), SSL_get_cipher_name(ssl), bits);
		}
	}
}

static void record_failure(struct smtpc *c, enum smtpc_result result, int code, const char *enh,
			   const char *text)
{
	c->last_result = result;
	smtpc_status_local(&c->last_error, code, enh, c->stage, text);
}

/* Every address failed: ready() with the last address's failure. */
static void report_failure(struct smtpc *c)
{
	struct smtpc_ready_info info;

	if (c->naddrs == 0)
		record_failure(c, SMTPC_ERR_CONNECT, 421, "4.4.4", "no address to try");
	smtpc_close(c);
	fill_info(c, &info);
	info.result = c->last_result;
	info.status = c->last_error;
	c->ready(c->ready_arg, c, &info);
}

static void log_attempt_failed(const struct smtpc *c)
{
	char esc[SMTPC_TEXT_MAX];

	log_info("qid=%s smtpc attempt-failed host=%s ip=%s port=%u stage=%s status=%s text=\"%s\"",
		 smtpc_log_id(c), c->host_name ? c->host_name : "-", c->ip, c->port,
		 smtpc_stage_name(c->last_error.stage), c->last_error.enh,
		 log_escape(esc, sizeof(esc), c->last_error.text, strlen(c->last_error.text)));
}

/* The current address failed (c->last_error says how): on to the next one, or report. */
static void attempt_failed(struct smtpc *c, int same_address_again)
{
	log_attempt_failed(c);
	close_io(c);
	if (!same_address_again) {
		c->addr_i++;
		c->plain_retry = 0;
	}
	attempt_start(c);
}

static void connected(struct smtpc *c)
{
	/* from here the bufferevent owns the socket: libevent may still hold it in its
	 * changelist after we let go, so only it may close it */
	c->bev = bufferevent_socket_new(c->base, c->fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!c->bev) {
		record_failure(c, SMTPC_ERR_CONNECT, 421, "4.4.1", "cannot set up the connection");
		attempt_failed(c, 0);
		return;
	}
	c->fd = -1;
	setup_bev(c);
	c->state = SMTPC_S_GREETING;
	c->stage = SMTPC_STAGE_GREETING;
	smtpc_reply_init(&c->reply);
	smtpc_arm(c, c->to.greeting_ms);
}

static void connect_error(struct smtpc *c, const char *why)
{
	char text[SMTPC_TEXT_MAX];

	snprintf(text, sizeof(text), "connect to %s[%s]:%u: %s", c->host_name ? c->host_name : "",
		 c->ip, c->port, why);
	record_failure(c, SMTPC_ERR_CONNECT, 421, "4.4.1", text);
}

static void on_connect_ready(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	hold(c);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	event_free(c->connect_ev);
	c->connect_ev = NULL;
	if (err) {
		connect_error(c, strerror(err));
		attempt_failed(c, 0);
	} else {
		connected(c);
	}
	release(c);
}

/* Connects to addrs[addr_i], skipping addresses that fail at once; reports when none is left. */
static void attempt_start(struct smtpc *c)
{
	for (; c->addr_i < c->naddrs; c->addr_i++, c->plain_retry = 0) {
		const struct sockaddr *sa = (const struct sockaddr *)&c->addrs[c->addr_i];
		int fd;

		set_peer(c, sa);
		c->stage = SMTPC_STAGE_CONNECT;
		c->tls = c->tls_verified = 0;
		c->ext = 0;
		c->size_max = 0;
		if (c->addrlens[c->addr_i] == 0) {
			connect_error(c, "unsupported address family");
			log_attempt_failed(c);
			continue;
		}
		fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			connect_error(c, strerror(errno));
			log_attempt_failed(c);
			continue;
		}
		if (connect(fd, sa, c->addrlens[c->addr_i]) == 0) {
			c->fd = fd;
			connected(c);
			return;
		}
		if (errno == EINPROGRESS) {
			c->fd = fd;
			c->connect_ev = event_new(c->base, fd, EV_WRITE, on_connect_ready, c);
			event_add(c->connect_ev, NULL);
			c->state = SMTPC_S_CONNECTING;
			smtpc_arm(c, c->to.connect_ms);
			return;
		}
		connect_error(c, strerror(errno));
		close(fd);
		log_attempt_failed(c);
	}
	report_failure(c);
}

/* ---- session set-up ------------------------------------------------------------------------- */

static void send_ehlo(struct smtpc *c, int helo)
{
	char buf[SMTPC_HOST_MAX + 8];
	int n = snprintf(buf, sizeof(buf), "%s %s\r\n", helo ? "HELO" : "EHLO", c->helo_name);

	c->ext = 0;
	c->size_max = 0;
	smtpc_write(c, buf, (size_t)n);
	c->state = helo ? SMTPC_S_HELO : SMTPC_S_EHLO;
	c->stage = SMTPC_STAGE_EHLO;
	smtpc_arm(c, c->to.ehlo_ms);
}

static void session_ready(struct smtpc *c)
{
	struct smtpc_ready_info info;

	smtpc_disarm(c);
	c->state = SMTPC_S_READY;
	c->stage = SMTPC_STAGE_LOCAL;
	c->was_ready = 1;
	fill_info(c, &info);
	info.result = SMTPC_CONNECTED;
	smtpc_status_local(&info.status, 250, "2.0.0", SMTPC_STAGE_EHLO, "connected");
	log_info("qid=%s smtpc connected host=%s ip=%s port=%u tls=%s verified=%s ext=0x%x",
		 smtpc_log_id(c), c->host_name ? c->host_name : "-", c->ip, c->port,
		 info.tls ? info.tls_summary : "-", c->tls_verified ? "yes" : "no", c->ext);
	c->ready(c->ready_arg, c, &info);
}

/* The server answered the greeting, EHLO or HELO with other than success. Another address or a
 * later attempt may fare better, so the status is always temporary: the server's enhanced code
 * (or "C.0.0") with its class turned to 4, its code and text kept. */
static void refused(struct smtpc *c)
{
	smtpc_status_from_reply(&c->last_error, &c->reply, c->stage);
	c->last_error.enh[0] = '4';
	c->last_result = SMTPC_ERR_REFUSED;
	/* a polite QUIT (RFC 5321 3.1) before the close, best effort, never waited for */
	if (c->bev && !c->tls)
		(void)send((int)bufferevent_getfd(c->bev), "QUIT\r\n", 6, MSG_NOSIGNAL | MSG_DONTWAIT);
	attempt_failed(c, 0);
}

/* TLS is required and cannot be had on this address (not offered, refused, failed, no
 * context); enh 4.7.4 or 4.7.5. Under OPPORTUNISTIC, a failed handshake instead retries the
 * address in plain text, once. */
static void tls_failed(struct smtpc *c, const char *enh, const char *text)
{
	if (c->tls_mode == SMTPC_TLS_OPPORTUNISTIC && !c->plain_retry) {
		log_info("qid=%s smtpc tls-fallback host=%s ip=%s port=%u reason=\"%s\"",
			 smtpc_log_id(c), c->host_name ? c->host_name : "-", c->ip, c->port, text);
		close_io(c);
		c->plain_retry = 1;
		attempt_start(c);
		return;
	}
	record_failure(c, SMTPC_ERR_TLS, 421, enh, text);
	attempt_failed(c, 0);
}

static void start_tls(struct smtpc *c)
{
	const char *name = c->tls_name ? c->tls_name : c->host_name;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct bufferevent *tb;
	SSL *ssl = SSL_new(c->ssl_ctx);

	if (!ssl) {
		tls_failed(c, "4.7.5", "cannot create a TLS session");
		return;
	}
	if (name && !is_ip_literal(name))
		SSL_set_tlsext_host_name(ssl, name);
	if (c->tls_mode == SMTPC_TLS_REQUIRED && c->tls_verify) {
		if (!name || !SSL_set1_host(ssl, name)) {
			SSL_free(ssl);
			tls_failed(c, "4.7.5", "no name to verify the server certificate against");
			return;
		}
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	}
	/* Whatever came after the 220 answers nothing we sent: it is dropped, never to be read
	 * as a reply inside TLS (response injection). */
	if (evbuffer_get_length(in) > 0) {
		log_warn("qid=%s smtpc starttls-discard ip=%s bytes=%zu", smtpc_log_id(c), c->ip,
			 evbuffer_get_length(in));
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	/* a filter over the plain bufferevent, which it owns (and frees with the socket) */
	tb = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
					    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!tb) {
		/* allocation only; who owns what after the failure is libevent's guess */
		log_err("qid=%s smtpc cannot create a TLS bufferevent", smtpc_log_id(c));
		abort();
	}
	c->bev = tb;
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	setup_bev(c);
	c->state = SMTPC_S_HANDSHAKE;
	c->stage = SMTPC_STAGE_TLS;
	smtpc_arm(c, c->to.starttls_ms);
}

static void tls_handshake_failed(struct smtpc *c, const char *what)
{
	char text[SMTPC_TEXT_MAX], reason[256] = "";
	SSL *ssl = c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	unsigned long err = c->bev ? bufferevent_get_openssl_error(c->bev) : 0;
	long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

	if (c->tls_mode == SMTPC_TLS_REQUIRED && c->tls_verify && vr != X509_V_OK)
		snprintf(reason, sizeof(reason), "certificate verification failed: %s",
			 X509_verify_cert_error_string(vr));
	else if (err)
		ERR_error_string_n(err, reason, sizeof(reason));
	ERR_clear_error();
	smtpc_describe(c, what, text, sizeof(text));
	if (reason[0])
		snprintf(text + strlen(text), sizeof(text) - strlen(text), ": %s", reason);
	tls_failed(c, "4.7.5", text);
}

static void tls_done(struct smtpc *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

	c->tls = 1;
	c->tls_verified = c->tls_mode == SMTPC_TLS_REQUIRED && c->tls_verify && ssl &&
			  SSL_get_verify_result(ssl) == X509_V_OK;
	smtpc_reply_init(&c->reply);
	send_ehlo(c, 0); /* RFC 3207 4.2: forget what the server said before TLS */
}

static void after_ehlo(struct smtpc *c)
{
	char text[SMTPC_TEXT_MAX];

	if (!c->tls && c->tls_mode != SMTPC_TLS_NONE && !c->plain_retry) {
		if ((c->ext & SMTPC_EXT_STARTTLS) && c->ssl_ctx) {
			smtpc_write(c, "STARTTLS\r\n", 10);
			c->state = SMTPC_S_STARTTLS;
			c->stage = SMTPC_STAGE_STARTTLS;
			smtpc_arm(c, c->to.starttls_ms);
			return;
		}
		if (c->tls_mode == SMTPC_TLS_REQUIRED) {
			if (!c->ssl_ctx)
				snprintf(text, sizeof(text), "TLS is required, but no TLS client context is "
							     "configured");
			else
				snprintf(text, sizeof(text), "TLS is required, but was not offered by %s[%s]",
					 c->host_name ? c->host_name : "", c->ip);
			tls_failed(c, c->ssl_ctx ? "4.7.4" : "4.7.5", text);
			return;
		}
	}
	session_ready(c);
}

static void starttls_refused(struct smtpc *c)
{
	if (c->tls_mode != SMTPC_TLS_REQUIRED) {
		session_ready(c); /* opportunistic: on in plain text, the EHLO state still holds */
		return;
	}
	smtpc_status_from_reply(&c->last_error, &c->reply, SMTPC_STAGE_STARTTLS);
	snprintf(c->last_error.enh, sizeof(c->last_error.enh), "4.7.4");
	c->last_result = SMTPC_ERR_TLS;
	attempt_failed(c, 0);
}

/* ---- failures after the connect ------------------------------------------------------------- */

/* The connection broke (what: "lost connection", "timeout", "protocol error"; detail may be
 * NULL). Before ready: this address failed. In a transaction: the transaction ends with 4.4.2.
 * Idle: the client is closed and not reusable. Lingering after QUIT: the end. */
static void conn_failed(struct smtpc *c, const char *what, const char *detail)
{
	char text[SMTPC_TEXT_MAX];

	smtpc_describe(c, what, text, sizeof(text));
	if (detail)
		snprintf(text + strlen(text), sizeof(text) - strlen(text), ": %s", detail);
	switch (c->state) {
	case SMTPC_S_GREETING:
	case SMTPC_S_EHLO:
	case SMTPC_S_HELO:
	case SMTPC_S_STARTTLS:
		record_failure(c, SMTPC_ERR_LOST, 421, "4.4.2", text);
		attempt_failed(c, 0);
		break;
	case SMTPC_S_HANDSHAKE:
		tls_handshake_failed(c, what);
		break;
	case SMTPC_S_READY:
		if (c->txn && !smtpc_txn_finished(c->txn)) {
			smtpc_txn_abort(c, text);
		} else {
			log_info("qid=%s smtpc closed ip=%s reason=\"%s\"", smtpc_log_id(c), c->ip, what);
			smtpc_close(c);
		}
		break;
	case SMTPC_S_QUIT:
		smtpc_close(c);
		release(c); /* the owner's reference, kept for the linger */
		break;
	default:
		break;
	}
}

static void on_reply(struct smtpc *c)
{
	const struct smtpc_reply *r = &c->reply;

	switch (c->state) {
	case SMTPC_S_GREETING:
		if (r->code == 220)
			send_ehlo(c, 0);
		else
			refused(c);
		break;
	case SMTPC_S_EHLO:
		if (r->code == 250)
			after_ehlo(c);
		else if (r->code / 100 == 5)
			send_ehlo(c, 1); /* RFC 5321 3.2: a server without EHLO */
		else
			refused(c);
		break;
	case SMTPC_S_HELO:
		if (r->code == 250)
			after_ehlo(c);
		else
			refused(c);
		break;
	case SMTPC_S_STARTTLS:
		if (r->code == 220)
			start_tls(c);
		else
			starttls_refused(c);
		break;
	case SMTPC_S_READY:
		if (c->txn && !smtpc_txn_finished(c->txn)) {
			smtpc_txn_on_reply(c);
		} else {
			/* typically "421 idle timeout": the server is gone for us */
			char esc[SMTPC_TEXT_MAX];
			log_info("qid=%s smtpc unsolicited-reply ip=%s code=%d text=\"%s\"",
				 smtpc_log_id(c), c->ip, r->code,
				 log_escape(esc, sizeof(esc), r->text, r->text_len));
			smtpc_close(c);
		}
		break;
	case SMTPC_S_QUIT:
		smtpc_close(c);
		release(c); /* the owner's reference, kept for the linger */
		break;
	default:
		break;
	}
}

/* Reads complete lines into c->reply and acts on each complete reply. Stops when the
 * bufferevent changed (STARTTLS, close) under it. */
static void read_replies(struct smtpc *c, struct bufferevent *bev)
{
	while (c->bev == bev) {
		struct evbuffer *in = bufferevent_get_input(bev);
		size_t eol_len = 0, len;
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
		enum smtpc_reply_rc rc;
		const char *line;

		if (eol.pos < 0) {
			if (evbuffer_get_length(in) > SMTPC_REPLY_MAX)
				conn_failed(c, "protocol error", "reply line too long");
			return;
		}
		len = (size_t)eol.pos;
		if (len > SMTPC_REPLY_MAX) {
			conn_failed(c, "protocol error", "reply line too long");
			return;
		}
		line = (const char *)evbuffer_pullup(in, (ev_ssize_t)(len + eol_len));
		rc = smtpc_reply_feed(&c->reply, line, len);
		if (rc >= 0 && c->state == SMTPC_S_EHLO && c->reply.nlines > 1)
			smtpc_ehlo_line(c->reply.line_text, c->reply.line_len, &c->ext, &c->size_max);
		evbuffer_drain(in, len + eol_len);
		if (rc < 0) {
			conn_failed(c, "protocol error",
				    rc == SMTPC_REPLY_ETOOLONG ? "reply too long"
				    : rc == SMTPC_REPLY_EMIXED ? "reply codes differ between lines"
							       : "malformed reply");
			return;
		}
		if (rc == SMTPC_REPLY_DONE) {
			on_reply(c);
			smtpc_reply_init(&c->reply);
		}
	}
}

/* ---- libevent callbacks: each holds a reference while it runs ------------------------------- */

static void on_read(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	hold(c);
	read_replies(c, bev);
	release(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct smtpc *c = arg;

	hold(c);
	if (c->bev == bev && c->state == SMTPC_S_READY && c->txn && !smtpc_txn_finished(c->txn))
		smtpc_txn_on_write(c);
	release(c);
}

/* The errno of the failed read or write (libevent keeps it for the event callback), else the
 * socket's pending error; 0 when neither says. */
static int socket_error(struct bufferevent *bev)
{
	int err = EVUTIL_SOCKET_ERROR();
	socklen_t len = sizeof(err);
	int fd = (int)bufferevent_getfd(bev);

	if (err != 0 && err != EAGAIN && err != EINTR)
		return err;
	err = 0;
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return 0;
	return err;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc *c = arg;

	hold(c);
	if (c->bev != bev) {
		/* stale: the bufferevent was replaced or freed */
	} else if (what & BEV_EVENT_CONNECTED) {
		if (c->state == SMTPC_S_HANDSHAKE)
			tls_done(c);
	} else if (what & BEV_EVENT_EOF) {
		conn_failed(c, "lost connection", NULL);
	} else if (what & BEV_EVENT_ERROR) {
		int err = socket_error(bev);
		/* A reset or a write into a closed socket is the peer going away, like EOF: which of
		 * the three we see depends only on timing (was the FIN read before our write?). */
		int gone = err == ECONNRESET || err == EPIPE || err == ECONNABORTED;
		conn_failed(c, gone ? "lost connection" : "connection error", err ? strerror(err) : NULL);
	}
	release(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	hold(c);
	if (c->state == SMTPC_S_CONNECTING) {
		connect_error(c, "connection timed out");
		attempt_failed(c, 0);
	} else {
		conn_failed(c, "timeout", NULL);
	}
	release(c);
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc *c = arg;

	hold(c);
	if (c->state == SMTPC_S_START)
		attempt_start(c);
	else if (c->txn && smtpc_txn_finished(c->txn))
		smtpc_txn_deliver(c);
	release(c);
}

/* ---- public ---------------------------------------------------------------------------------- */

struct smtpc *smtpc_connect(struct event_base *base, const struct smtpc_params *p,
			    const struct sockaddr *addrs[], size_t naddrs, smtpc_ready_fn *ready,
			    void *arg)
{
	struct smtpc *c = xcalloc(1, sizeof(*c));

	c->base = base;
	c->refs = 1;
	c->fd = -1;
	c->state = SMTPC_S_START;
	c->stage = SMTPC_STAGE_CONNECT;
	c->log_id = dup_or_null(p->log_id);
	if (helo_name_ok(p->helo_name)) {
		c->helo_name = xstrdup(p->helo_name);
	} else {
		log_warn("qid=%s smtpc bad-helo-name using=%s", smtpc_log_id(c), SMTPC_HELO_FALLBACK);
		c->helo_name = xstrdup(SMTPC_HELO_FALLBACK);
	}
	c->host_name = p->host_name && p->host_name[0] ? xstrndup(p->host_name, SMTPC_HOST_MAX - 1)
						       : NULL;
	c->tls_name = p->tls_name && p->tls_name[0] ? xstrdup(p->tls_name) : NULL;
	c->tls_mode = p->tls;
	c->tls_verify = p->tls_verify;
	if (p->ssl_ctx && p->tls != SMTPC_TLS_NONE && SSL_CTX_up_ref(p->ssl_ctx) == 1)
		c->ssl_ctx = p->ssl_ctx;
	c->to = p->timeouts;
	timeouts_default(&c->to);
	c->naddrs = naddrs;
	c->addrs = xcalloc(naddrs ? naddrs : 1, sizeof(*c->addrs));
	c->addrlens = xcalloc(naddrs ? naddrs : 1, sizeof(*c->addrlens));
	for (size_t i = 0; i < naddrs; i++) {
		socklen_t len = addrs[i]->sa_family == AF_INET    ? sizeof(struct sockaddr_in)
				: addrs[i]->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
								  : 0;
		memcpy(&c->addrs[i], addrs[i], len);
		c->addrs[i].ss_family = addrs[i]->sa_family;
		c->addrlens[i] = len;
	}
	c->ready = ready;
	c->ready_arg = arg;
	c->timer = evtimer_new(base, on_timer, c);
	c->defer = event_new(base, -1, 0, on_defer, c);
	if (!c->timer || !c->defer) {
		log_err("smtpc: cannot create events");
		abort();
	}
	smtpc_defer(c); /* ready() never runs inside this call */
	return c;
}

void smtpc_send(struct smtpc *c, const struct smtpc_msg *m, smtpc_sent_fn *done, void *arg)
{
	if (!c->was_ready || c->txn || c->owner_gone) {
		log_err("smtpc_send: the client is not idle (was_ready=%d busy=%d) - a bug",
			c->was_ready, c->txn != NULL);
		abort();
	}
	smtpc_txn_start(c, m, done, arg);
}

unsigned smtpc_extensions(const struct smtpc *c)
{
	return c->was_ready ? c->ext : 0;
}

int smtpc_is_reusable(const struct smtpc *c)
{
	return c->state == SMTPC_S_READY && !c->txn && c->bev != NULL;
}

static void client_abort(struct smtpc *c)
{
	c->owner_gone = 1;
	c->ready = NULL;
	smtpc_close(c);
	event_del(c->defer);
	smtpc_txn_free(&c->txn);
	release(c);
}

void smtpc_quit(struct smtpc **cp)
{
	struct smtpc *c = *cp;

	if (!c)
		return;
	*cp = NULL;
	if (!smtpc_is_reusable(c)) {
		client_abort(c);
		return;
	}
	/* the owner's reference now belongs to the linger; conn_failed or on_reply drop it */
	c->owner_gone = 1;
	c->ready = NULL;
	event_del(c->defer);
	smtpc_write(c, "QUIT\r\n", 6);
	c->state = SMTPC_S_QUIT;
	smtpc_reply_init(&c->reply);
	smtpc_arm(c, c->to.quit_ms);
}

void smtpc_free(struct smtpc **cp)
{
	struct smtpc *c = *cp;

	if (!c)
		return;
	*cp = NULL;
	client_abort(c);
}
