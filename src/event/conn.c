/* conn: see conn.h. The only code besides listener.c and workers.c that knows bufferevents. */
#include "event/conn.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/xmalloc.h"

/* Output queued beyond this pauses reading (a client that pipelines without reading replies
 * cannot make us buffer without bound). */
#define CONN_OUTPUT_HIGH_WATER (256 * 1024)
/* Input buffered beyond this stops reading from the socket until the protocol consumes it. */
#define CONN_INPUT_HIGH_WATER (256 * 1024)
/* Upper bound on lingering to flush the last reply before a close. */
#define CONN_LINGER_SECONDS 10

/* While lingering over TLS, how often to look whether the last bytes reached the socket. */
#define CONN_LINGER_POLL_MS 20

struct conn {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *linger_poll; /* TLS only: the filter's callbacks cannot see the socket drain */
	struct timeval linger_deadline;
	conn_cb *cb;
	void *arg;
	unsigned timeout_ms;
	struct timeval read_deadline; /* input must arrive before this; set by conn_set_timeout */
	int tls;
	int lingering;
	int user_paused;  /* conn_pause_read() */
	int output_full;  /* output above CONN_OUTPUT_HIGH_WATER */
};

static void conn_update_read(struct conn *c)
{
	if (c->user_paused || c->output_full || c->lingering)
		bufferevent_disable(c->bev, EV_READ);
	else
		bufferevent_enable(c->bev, EV_READ);
}

static void conn_apply_timeout(struct conn *c, const struct timeval *rd);

/* Input arrived: bufferevent would grant the full timeout again, but the deadline stays where
 * conn_set_timeout put it, so a client trickling bytes cannot stretch it. */
static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct timeval now, left;
	(void)bev;

	if (c->timeout_ms) {
		event_base_gettimeofday_cached(c->base, &now);
		evutil_timersub(&c->read_deadline, &now, &left);
		if (left.tv_sec < 0 || (left.tv_sec == 0 && left.tv_usec < 1000))
			left = (struct timeval){ 0, 1000 };
		conn_apply_timeout(c, &left);
	}
	c->cb(c, CONN_EV_READ, c->arg);
}

/* Connections still flushing their last reply, so a stopping worker can wait for them. */
static unsigned conn_lingering;

unsigned conn_lingering_count(void)
{
	return conn_lingering;
}

static void conn_destroy(struct conn *c)
{
	if (c->lingering)
		conn_lingering--;
	if (c->linger_poll)
		event_free(c->linger_poll);
	if (c->bev)
		bufferevent_free(c->bev);
	free(c);
}

/* Bytes not yet handed to the kernel: with TLS, both the clear text the filter still holds and
 * the records waiting in the socket bufferevent below it. */
static size_t unsent(struct conn *c)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(c->bev));
	struct bufferevent *under = c->tls ? bufferevent_get_underlying(c->bev) : NULL;

	if (under)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

static void on_linger_poll(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct timeval now;
	struct timeval tick = { 0, CONN_LINGER_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	event_base_gettimeofday_cached(c->base, &now);
	if (unsent(c) == 0 || evutil_timercmp(&now, &c->linger_deadline, >)) {
		conn_destroy(c);
		return;
	}
	evtimer_add(c->linger_poll, &tick);
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->lingering) {
		if (!c->tls && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			conn_destroy(c); /* with TLS the poll decides: bytes may still sit below */
		return;
	}
	/* output drained: reading may go on */
	if (c->output_full) {
		c->output_full = 0;
		conn_update_read(c);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	(void)bev;

	if (c->lingering) {
		conn_destroy(c);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		c->cb(c, CONN_EV_TIMEOUT, c->arg);
	else if (what & BEV_EVENT_EOF)
		c->cb(c, CONN_EV_EOF, c->arg);
	else if (what & BEV_EVENT_ERROR)
		c->cb(c, CONN_EV_ERROR, c->arg);
}

/* rd: the read timeout (NULL: the full one); writes always get the full one. */
static void conn_apply_timeout(struct conn *c, const struct timeval *rd)
{
	struct timeval tv = { c->timeout_ms / 1000, (c->timeout_ms % 1000) * 1000 };
	bufferevent_set_timeouts(c->bev, c->timeout_ms ? (rd ? rd : &tv) : NULL,
				 c->timeout_ms ? &tv : NULL);
}

struct conn *conn_new(struct event_base *base, int fd, conn_cb *cb, void *arg)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->base = base;
	c->cb = cb;
	c->arg = arg;
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return NULL;
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_READ, 0, CONN_INPUT_HIGH_WATER);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	return c;
}

void conn_free(struct conn **cp)
{
	if (!*cp)
		return;
	conn_destroy(*cp);
	*cp = NULL;
}

void conn_free_after_flush(struct conn **cp)
{
	struct conn *c = *cp;

	if (!c)
		return;
	*cp = NULL;
	if (unsent(c) == 0) {
		conn_destroy(c);
		return;
	}
	c->lingering = 1;
	conn_lingering++;
	conn_update_read(c);
	if (c->timeout_ms == 0 || c->timeout_ms > CONN_LINGER_SECONDS * 1000) {
		c->timeout_ms = CONN_LINGER_SECONDS * 1000;
		conn_apply_timeout(c, NULL);
	}
	if (c->tls) {
		struct timeval now, limit = { CONN_LINGER_SECONDS, 0 };
		event_base_gettimeofday_cached(c->base, &now);
		evutil_timeradd(&now, &limit, &c->linger_deadline);
		c->linger_poll = evtimer_new(c->base, on_linger_poll, c);
		on_linger_poll(-1, 0, c);
	}
}

void conn_set_timeout_ms(struct conn *c, unsigned ms)
{
	struct timeval now, tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_gettimeofday_cached(c->base, &now);
	evutil_timeradd(&now, &tv, &c->read_deadline);
	c->timeout_ms = ms;
	conn_apply_timeout(c, NULL);
	/* a read timeout that fired disabled reading; a new deadline means the session goes on */
	if (!(bufferevent_get_enabled(c->bev) & EV_READ))
		conn_update_read(c);
}

void conn_set_timeout(struct conn *c, unsigned seconds)
{
	conn_set_timeout_ms(c, seconds * 1000);
}

void conn_pause_read(struct conn *c)
{
	c->user_paused = 1;
	conn_update_read(c);
}

void conn_resume_read(struct conn *c)
{
	c->user_paused = 0;
	conn_update_read(c);
}

enum conn_line conn_read_line(struct conn *c, size_t maxlen, char *buf, size_t bufsz,
			      size_t *len_r, int *crlf_r)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);
	size_t len;

	if (lf.pos < 0) {
		size_t have = evbuffer_get_length(in);
		return have >= maxlen ? CONN_LINE_TOOLONG : CONN_LINE_AGAIN;
	}
	len = (size_t)lf.pos + 1;
	if (len > maxlen || len >= bufsz)
		return CONN_LINE_TOOLONG;
	evbuffer_remove(in, buf, len);
	len--; /* LF */
	*crlf_r = len > 0 && buf[len - 1] == '\r';
	if (*crlf_r)
		len--;
	buf[len] = '\0';
	*len_r = len;
	return CONN_LINE_OK;
}

int conn_skip_line(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer_ptr lf = evbuffer_search(in, "\n", 1, NULL);

	if (lf.pos < 0) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return 0;
	}
	evbuffer_drain(in, (size_t)lf.pos + 1);
	return 1;
}

size_t conn_input_len(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_input(c->bev));
}

const char *conn_peek(struct conn *c, size_t *len_r)
{
	struct evbuffer_iovec v;

	if (evbuffer_peek(bufferevent_get_input(c->bev), -1, NULL, &v, 1) < 1) {
		*len_r = 0;
		return NULL;
	}
	*len_r = v.iov_len;
	return v.iov_base;
}

const uint8_t *conn_pullup(struct conn *c, size_t n)
{
	return evbuffer_pullup(bufferevent_get_input(c->bev), (ev_ssize_t)n);
}

void conn_drain(struct conn *c, size_t n)
{
	evbuffer_drain(bufferevent_get_input(c->bev), n);
}

void conn_discard_input(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
}

void conn_write(struct conn *c, const void *buf, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add(out, buf, len);
	if (!c->output_full && evbuffer_get_length(out) >= CONN_OUTPUT_HIGH_WATER) {
		c->output_full = 1;
		conn_update_read(c);
	}
}

size_t conn_output_len(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

int conn_starttls(struct conn *c, SSL_CTX *ctx)
{
	struct bufferevent *tls;
	SSL *ssl;

	conn_discard_input(c);
	ssl = SSL_new(ctx);
	if (!ssl)
		return -1;
	tls = bufferevent_openssl_filter_new(c->base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (!tls) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	c->bev = tls;
	c->tls = 1;
	bufferevent_setcb(tls, on_read, on_write, on_event, c);
	bufferevent_setwatermark(tls, EV_READ, 0, CONN_INPUT_HIGH_WATER);
	bufferevent_enable(tls, EV_READ | EV_WRITE);
	conn_update_read(c);
	conn_set_timeout_ms(c, c->timeout_ms);
	return 0;
}

int conn_is_tls(const struct conn *c)
{
	return c->tls;
}

const char *conn_tls_summary(struct conn *c, char *buf, size_t bufsz)
{
	SSL *ssl;
	int bits = 0;

	if (!c->tls || !(ssl = bufferevent_openssl_get_ssl(c->bev))) {
		snprintf(buf, bufsz, "%s", "");
		return buf;
	}
	SSL_get_cipher_bits(ssl, &bits);
	snprintf(buf, bufsz, "%s:%s:%d", SSL_get_version(ssl), SSL_get_cipher_name(ssl), bits);
	return buf;
}

static size_t san_names(X509 *cert, char (*names)[CONN_TLS_NAME_MAX], size_t max)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	size_t n = 0;

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens) && n < max; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_DNS)
			continue;
		const unsigned char *data = ASN1_STRING_get0_data(g->d.dNSName);
		int len = ASN1_STRING_length(g->d.dNSName);
		/* an embedded NUL would let "good.example\0.evil" pass as good.example */
		if (len <= 0 || len >= CONN_TLS_NAME_MAX || memchr(data, 0, (size_t)len))
			continue;
		memcpy(names[n], data, (size_t)len);
		names[n++][len] = '\0';
	}
	GENERAL_NAMES_free(gens);
	return n;
}

size_t conn_tls_peer_names(struct conn *c, char (*names)[CONN_TLS_NAME_MAX], size_t max)
{
	SSL *ssl;
	X509 *cert;
	size_t n;

	if (!c->tls || max == 0 || !(ssl = bufferevent_openssl_get_ssl(c->bev)))
		return 0;
	if (SSL_get_verify_result(ssl) != X509_V_OK || !(cert = SSL_get1_peer_certificate(ssl)))
		return 0;
	n = san_names(cert, names, max);
	if (n == 0) {
		int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName,
						    names[0], CONN_TLS_NAME_MAX);
		n = len > 0 && (size_t)len == strlen(names[0]) ? 1 : 0;
	}
	X509_free(cert);
	return n;
}
