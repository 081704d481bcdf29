/* Live tests for smtpc: the real client on a real libevent loop against a scripted SMTP server
 * running in this process on the same loop (127.0.0.1, port 0).
 *
 * The fake server follows a script of steps: the command it expects next (a prefix; NULL for
 * "a connection is accepted") and the reply it sends, with an action (collect DATA, stall,
 * close, start TLS). It records every command line with the number of the read in which it
 * arrived (so that a test can tell that MAIL, RCPT and DATA came in one batch) and the body
 * exactly as it came over the wire (dot-stuffed). A command that does not match the script is
 * an error the test checks.
 *
 * STARTTLS tests use a certificate made with the openssl command line tool in a temporary
 * directory; without the tool they are skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "event/tls.h"
#include "smtpc/smtpc.h"

int smtpc_live_tests(void);

#define WAIT_MS 4000     /* upper bound for anything a test waits for */
#define SHORT_MS 300     /* the timeouts the stall tests configure */
#define SLACK_MS 700     /* how much later than configured a timeout may fire */
#define MAX_CMDS 64
#define CMD_LEN 1200
#define MAX_RCPT 8
#define PATH_LEN 512

#define EHLO_FULL                                                                                \
	"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n" \
	"250-DSN\r\n250 ENHANCEDSTATUSCODES\r\n"
#define EHLO_LOCKSTEP "250-mx.test\r\n250-8BITMIME\r\n250 SIZE\r\n"
#define EHLO_BARE "250 mx.test\r\n"
#define EHLO_TLS "250-mx.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"

/* ---- the scripted server ---------------------------------------------------------------------- */

enum act {
	A_REPLY,      /* send the reply */
	A_DATA,       /* send the reply (354), then collect the body up to "." */
	A_DATA_CLOSE, /* send the reply (354), close when the first body bytes arrive */
	A_STALL,      /* send the reply (may be NULL), then read and ignore everything */
	A_CLOSE,      /* send the reply (may be NULL), then close */
	A_TLS,        /* send the reply (220), then TLS */
};

struct step {
	const char *expect; /* command prefix; NULL: a new connection */
	const char *reply;
	enum act act;
};

struct fake {
	struct event_base *base;
	struct evconnlistener *lst;
	uint16_t port;
	SSL_CTX *tls_ctx;
	const struct step *script;
	size_t nsteps, i;
	struct bufferevent *bev;
	int in_data, stalled, closing, close_in_data;
	unsigned reads, conns;
	int eofs;
	unsigned errors;
	char error[CMD_LEN];
	size_t ncmds;
	char cmds[MAX_CMDS][CMD_LEN];
	unsigned batch[MAX_CMDS];
	char *body;
	size_t body_len, body_cap;
};

static void fake_close(struct fake *f)
{
	if (f->bev) {
		bufferevent_free(f->bev);
		f->bev = NULL;
	}
	f->in_data = f->stalled = f->closing = f->close_in_data = 0;
}

static void fake_error(struct fake *f, const char *what, const char *line)
{
	f->errors++;
	snprintf(f->error, sizeof(f->error), "%s \"%s\"", what, line);
}

static void fake_read(struct bufferevent *bev, void *arg);

static void fake_write(struct bufferevent *bev, void *arg)
{
	struct fake *f = arg;

	if (f->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		fake_close(f);
}

static void fake_event(struct bufferevent *bev, short what, void *arg)
{
	struct fake *f = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		f->eofs++;
		fake_close(f);
	}
}

static void fake_setcb(struct fake *f)
{
	bufferevent_setcb(f->bev, fake_read, fake_write, fake_event, f);
	bufferevent_enable(f->bev, EV_READ | EV_WRITE);
}

/* Runs the current step: sends its reply and does its action. */
static void fake_step(struct fake *f)
{
	const struct step *s = &f->script[f->i++];

	if (s->reply)
		bufferevent_write(f->bev, s->reply, strlen(s->reply));
	switch (s->act) {
	case A_REPLY:
		break;
	case A_DATA:
		f->in_data = 1;
		break;
	case A_DATA_CLOSE:
		f->in_data = 1;
		f->close_in_data = 1;
		break;
	case A_STALL:
		f->stalled = 1;
		break;
	case A_CLOSE:
		f->closing = 1;
		if (evbuffer_get_length(bufferevent_get_output(f->bev)) == 0)
			fake_close(f);
		break;
	case A_TLS: {
		SSL *ssl = SSL_new(f->tls_ctx);
		struct bufferevent *tb = bufferevent_openssl_filter_new(
			f->base, f->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		assert_non_null(tb);
		f->bev = tb;
		fake_setcb(f);
		break;
	}
	}
}

static void fake_command(struct fake *f, const char *line)
{
	if (f->ncmds < MAX_CMDS) {
		snprintf(f->cmds[f->ncmds], CMD_LEN, "%s", line);
		f->batch[f->ncmds++] = f->reads;
	}
	if (f->i >= f->nsteps || !f->script[f->i].expect ||
	    strncmp(line, f->script[f->i].expect, strlen(f->script[f->i].expect)) != 0) {
		fake_error(f, "unexpected command", line);
		fake_close(f);
		return;
	}
	fake_step(f);
}

static void fake_read(struct bufferevent *bev, void *arg)
{
	struct fake *f = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	f->reads++;
	while (f->bev == bev) {
		size_t eol_len;
		struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
		size_t len;
		char *line;

		if (f->stalled) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return;
		}
		if (f->close_in_data && evbuffer_get_length(in) > 0) {
			fake_close(f);
			return;
		}
		if (eol.pos < 0)
			return;
		len = (size_t)eol.pos + eol_len;
		line = malloc(len + 1);
		evbuffer_remove(in, line, len);
		line[len] = '\0';
		if (f->in_data && strcmp(line, ".\r\n") != 0) {
			if (f->body_len + len + 1 > f->body_cap) {
				f->body_cap = 2 * (f->body_len + len + 1);
				f->body = realloc(f->body, f->body_cap);
			}
			memcpy(f->body + f->body_len, line, len + 1);
			f->body_len += len;
		} else {
			f->in_data = 0;
			line[len - 2] = '\0';
			fake_command(f, line);
		}
		free(line);
	}
}

static void fake_accept(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
			int salen, void *arg)
{
	struct fake *f = arg;

	fake_close(f);
	f->conns++;
	f->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	fake_setcb(f);
	if (f->i >= f->nsteps || f->script[f->i].expect) {
		fake_error(f, "unexpected connection", "");
		fake_close(f);
		return;
	}
	fake_step(f);
}

static void fake_start(struct fake *f, struct event_base *base, const struct step *script,
		       size_t nsteps)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);

	f->base = base;
	f->script = script;
	f->nsteps = nsteps;
	f->lst = evconnlistener_new_bind(base, fake_accept, f, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
					 16, (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(f->lst);
	getsockname(evconnlistener_get_fd(f->lst), (struct sockaddr *)&sin, &len);
	f->port = ntohs(sin.sin_port);
}

static void fake_stop(struct fake *f)
{
	fake_close(f);
	if (f->lst)
		evconnlistener_free(f->lst);
	free(f->body);
	memset(f, 0, sizeof(*f));
}

/* the index of the first command starting with prefix, or -1 */
static int fake_find(const struct fake *f, const char *prefix)
{
	for (size_t k = 0; k < f->ncmds; k++)
		if (strncmp(f->cmds[k], prefix, strlen(prefix)) == 0)
			return (int)k;
	return -1;
}

/* ---- the test fixture: a loop, a fake server, a client ---------------------------------------- */

struct tctx {
	struct event_base *base;
	struct fake srv;
	struct smtpc *c;
	struct smtpc_params p;
	int in_api; /* inside smtpc_connect / smtpc_send: a callback now would be re-entrant */
	unsigned reentered;
	int ready_called;
	struct smtpc_ready_info info;
	int done_called;
	size_t nrcpt;
	struct smtpc_status st[MAX_RCPT];
	int reusable;
	int free_in_ready, free_in_done;
	const struct smtpc_msg *chain; /* sent again from inside done() */
	int body_fd;
};

static struct {
	int have;
	char dir[PATH_LEN], cert[PATH_LEN], key[PATH_LEN];
} tls;

static int setup(void **state)
{
	struct tctx *t = calloc(1, sizeof(*t));

	t->base = event_base_new();
	smtpc_params_init(&t->p);
	t->p.helo_name = "client.test";
	t->p.host_name = "mx.test";
	t->p.log_id = "TESTQID";
	/* generous but finite: a hung test fails within WAIT_MS */
	t->p.timeouts.connect_ms = 2000;
	t->p.timeouts.greeting_ms = 2000;
	t->p.timeouts.ehlo_ms = 2000;
	t->p.timeouts.starttls_ms = 2000;
	t->p.timeouts.mail_ms = 2000;
	t->p.timeouts.rcpt_ms = 2000;
	t->p.timeouts.data_init_ms = 2000;
	t->p.timeouts.data_block_ms = 2000;
	t->p.timeouts.data_end_ms = 2000;
	t->p.timeouts.rset_ms = 2000;
	t->p.timeouts.quit_ms = 2000;
	t->body_fd = -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tctx *t = *state;

	smtpc_free(&t->c);
	if (t->p.ssl_ctx)
		SSL_CTX_free(t->p.ssl_ctx);
	if (t->srv.tls_ctx)
		SSL_CTX_free(t->srv.tls_ctx);
	fake_stop(&t->srv);
	if (t->body_fd >= 0)
		close(t->body_fd);
	event_base_free(t->base);
	free(t);
	return 0;
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	*(int *)arg = 1;
}

/* Runs the loop until *v reaches target or ms passed; returns whether it did. */
static int run_until(struct tctx *t, const int *v, int target, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
	int expired = 0;
	struct event *wd = evtimer_new(t->base, on_watchdog, &expired);

	evtimer_add(wd, &tv);
	while (*v < target && !expired)
		event_base_loop(t->base, EVLOOP_ONCE);
	event_free(wd);
	return *v >= target;
}

static void run_for(struct tctx *t, unsigned ms)
{
	static const int never = 0;
	run_until(t, &never, 1, ms);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void on_ready(void *arg, struct smtpc *c, const struct smtpc_ready_info *info)
{
	struct tctx *t = arg;

	if (t->in_api)
		t->reentered++;
	assert_ptr_equal(c, t->c);
	t->ready_called++;
	t->info = *info;
	if (t->free_in_ready || info->result != SMTPC_CONNECTED)
		smtpc_free(&t->c);
}

static void on_done(void *arg, struct smtpc *c, const struct smtpc_sent *sent)
{
	struct tctx *t = arg;

	if (t->in_api)
		t->reentered++;
	assert_ptr_equal(c, t->c);
	t->done_called++;
	t->nrcpt = sent->nrcpt;
	t->reusable = sent->reusable;
	for (size_t i = 0; i < sent->nrcpt && i < MAX_RCPT; i++)
		t->st[i] = sent->rcpt[i];
	if (t->free_in_done) {
		smtpc_free(&t->c);
	} else if (t->chain) {
		const struct smtpc_msg *m = t->chain;
		t->chain = NULL;
		smtpc_send(c, m, on_done, t);
	}
}

static void connect_addrs(struct tctx *t, const struct sockaddr *addrs[], size_t n)
{
	t->in_api = 1;
	t->c = smtpc_connect(t->base, &t->p, addrs, n, on_ready, t);
	t->in_api = 0;
	assert_non_null(t->c);
	assert_int_equal(t->ready_called, 0);
	assert_true(run_until(t, &t->ready_called, 1, WAIT_MS));
	assert_int_equal(t->reentered, 0);
}

static struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	return sin;
}

/* Starts the fake with script and connects to it. */
static void start(struct tctx *t, const struct step *script, size_t nsteps)
{
	struct sockaddr_in sin;
	const struct sockaddr *addrs[1];

	fake_start(&t->srv, t->base, script, nsteps);
	sin = loopback(t->srv.port);
	addrs[0] = (const struct sockaddr *)&sin;
	connect_addrs(t, addrs, 1);
}

static void start_ok(struct tctx *t, const struct step *script, size_t nsteps)
{
	start(t, script, nsteps);
	if (t->info.result != SMTPC_CONNECTED)
		fail_msg("not connected: %s %s", t->info.status.enh, t->info.status.text);
	assert_string_equal(t->info.ip, "127.0.0.1");
	assert_int_equal(t->info.port, t->srv.port);
	assert_string_equal(t->info.host, "mx.test");
}

/* Sends m and waits for done(); checks that done() did not run inside smtpc_send. */
static void send_msg(struct tctx *t, const struct smtpc_msg *m)
{
	int before = t->done_called;

	t->in_api = 1;
	smtpc_send(t->c, m, on_done, t);
	t->in_api = 0;
	assert_int_equal(t->done_called, before);
	assert_true(run_until(t, &t->done_called, before + 1, WAIT_MS));
	assert_int_equal(t->done_called, before + 1);
	assert_int_equal(t->reentered, 0);
}

static void assert_no_server_errors(const struct tctx *t)
{
	if (t->srv.errors)
		fail_msg("fake server: %s", t->srv.error);
}

/* QUITs and waits until the server saw the client close, which the client does when it frees
 * itself after the 221 (the script must answer QUIT). */
static void quit(struct tctx *t)
{
	int eofs = t->srv.eofs;

	smtpc_quit(&t->c);
	assert_null(t->c);
	assert_true(run_until(t, &t->srv.eofs, eofs + 1, WAIT_MS));
	assert_no_server_errors(t);
}


/* A body in an anonymous file. */
static int body_file(struct tctx *t, const char *body, size_t len)
{
	int fd = memfd_create("body", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, len), (ssize_t)len);
	if (t->body_fd >= 0)
		close(t->body_fd);
	t->body_fd = fd;
	return fd;
}

static const char body1[] = "Subject: test\r\n\r\nhello\r\n";

static struct smtpc_msg msg_for(struct tctx *t, const struct smtpc_rcpt *r, size_t n)
{
	struct smtpc_msg m = { .sender = "sender@client.test", .rcpts = r, .nrcpt = n };

	m.body_fd = body_file(t, body1, strlen(body1));
	m.body_len = strlen(body1);
	return m;
}

static void assert_status(const struct smtpc_status *st, int code, const char *enh,
			  enum smtpc_stage stage, const char *text)
{
	if (st->code != code || strcmp(st->enh, enh) != 0 || st->stage != stage ||
	    (text && strcmp(st->text, text) != 0))
		fail_msg("status %d %s stage %s \"%s\", want %d %s %s \"%s\"", st->code, st->enh,
			 smtpc_stage_name(st->stage), st->text, code, enh, smtpc_stage_name(stage),
			 text ? text : "*");
}

#define START_OK(t, script) start_ok((t), (script), sizeof(script) / sizeof((script)[0]))

/* ---- transactions -------------------------------------------------------------------------------- */

static const struct smtpc_rcpt two[] = { { .addr = "a@mx.test" }, { .addr = "b@mx.test" } };

static void test_pipelined_transaction(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO client.test", EHLO_FULL, A_REPLY },
		{ "MAIL FROM:<sender@client.test>", "250 2.1.0 Ok\r\n", A_REPLY },
		{ "RCPT TO:<a@mx.test>", "250 2.1.5 Ok\r\n", A_REPLY },
		{ "RCPT TO:<b@mx.test>", "250 2.1.5 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "250 2.0.0 Ok: queued as 42\r\n", A_REPLY },
		{ "QUIT", "221 2.0.0 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m;
	int mail, data;

	START_OK(t, script);
	assert_int_equal(t->info.ext, SMTPC_EXT_PIPELINING | SMTPC_EXT_SIZE | SMTPC_EXT_8BITMIME |
					      SMTPC_EXT_SMTPUTF8 | SMTPC_EXT_DSN |
					      SMTPC_EXT_ENHANCEDSTATUSCODES);
	assert_int_equal(t->info.size_max, 10000000);
	assert_int_equal(t->info.tls, 0);
	assert_true(smtpc_is_reusable(t->c));
	m = msg_for(t, two, 2);
	m.needs_8bitmime = 1;
	send_msg(t, &m);
	assert_no_server_errors(t);
	/* MAIL, both RCPTs and DATA arrived in one read: one write (RFC 2920) */
	mail = fake_find(&t->srv, "MAIL");
	data = fake_find(&t->srv, "DATA");
	assert_true(mail >= 0 && data == mail + 3);
	assert_int_equal(t->srv.batch[mail], t->srv.batch[data]);
	assert_int_equal(t->srv.batch[mail + 1], t->srv.batch[mail]);
	assert_string_equal(t->srv.cmds[mail], "MAIL FROM:<sender@client.test> SIZE=24 BODY=8BITMIME");
	assert_string_equal(t->srv.body, body1);
	assert_int_equal(t->nrcpt, 2);
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_BODY, "Ok: queued as 42");
	assert_status(&t->st[1], 250, "2.0.0", SMTPC_STAGE_BODY, "Ok: queued as 42");
	assert_int_equal(t->st[0].local, 0);
	assert_true(t->reusable);
	quit(t);
	assert_no_server_errors(t);
	assert_int_equal(t->srv.i, 8);
}

static void test_lockstep_transaction(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO client.test", EHLO_LOCKSTEP, A_REPLY },
		{ "MAIL FROM:<sender@client.test> SIZE=24", "250 Ok\r\n", A_REPLY },
		{ "RCPT TO:<a@mx.test>", "250 Ok\r\n", A_REPLY },
		{ "RCPT TO:<b@mx.test>", "250 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "250 queued\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m;
	int mail;

	START_OK(t, script);
	m = msg_for(t, two, 2);
	send_msg(t, &m);
	assert_no_server_errors(t);
	mail = fake_find(&t->srv, "MAIL");
	/* one command per read: each waited for its reply */
	for (int k = mail; k < mail + 3; k++)
		assert_true(t->srv.batch[k] < t->srv.batch[k + 1]);
	/* no enhanced code from the server: derived from the reply code */
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_BODY, "queued");
	assert_status(&t->st[1], 250, "2.0.0", SMTPC_STAGE_BODY, "queued");
	quit(t);
}

static const struct smtpc_rcpt three[] = {
	{ .addr = "ok@mx.test" }, { .addr = "busy@mx.test" }, { .addr = "unknown@mx.test" }
};

static void test_rcpt_mix(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 2.1.0 Ok\r\n", A_REPLY },
		{ "RCPT TO:<ok@", "250 2.1.5 Ok\r\n", A_REPLY },
		{ "RCPT TO:<busy@", "450 4.2.1 Mailbox busy, try later\r\n", A_REPLY },
		{ "RCPT TO:<unknown@", "550-No such user\r\n550 here, really\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "250 2.0.0 queued\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, three, 3);
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_BODY, "queued");
	assert_status(&t->st[1], 450, "4.2.1", SMTPC_STAGE_RCPT, "Mailbox busy, try later");
	assert_status(&t->st[2], 550, "5.0.0", SMTPC_STAGE_RCPT, "No such user\nhere, really");
	assert_int_equal(smtpc_status_class(&t->st[1]), 4);
	assert_int_equal(smtpc_status_class(&t->st[2]), 5);
	assert_true(t->reusable);
	quit(t);
}

static void test_no_rcpt_accepted_lockstep(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_LOCKSTEP, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "550 5.1.1 unknown\r\n", A_REPLY },
		{ "RCPT", "451 4.3.0 later\r\n", A_REPLY },
		{ "RSET", "250 2.0.0 Ok\r\n", A_REPLY }, /* DATA here fails the script */
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, two, 2);
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_int_equal(fake_find(&t->srv, "DATA"), -1);
	assert_true(fake_find(&t->srv, "RSET") > 0);
	assert_status(&t->st[0], 550, "5.1.1", SMTPC_STAGE_RCPT, "unknown");
	assert_status(&t->st[1], 451, "4.3.0", SMTPC_STAGE_RCPT, "later");
	assert_true(t->reusable);
	quit(t);
}

static void test_no_rcpt_accepted_pipelined(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "550 5.1.1 unknown\r\n", A_REPLY },
		{ "RCPT", "550 5.1.1 unknown too\r\n", A_REPLY },
		{ "DATA", "554 5.5.1 no valid recipients\r\n", A_REPLY },
		{ "RSET", "250 2.0.0 Ok\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, two, 2);
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_status(&t->st[0], 550, "5.1.1", SMTPC_STAGE_RCPT, "unknown");
	assert_status(&t->st[1], 550, "5.1.1", SMTPC_STAGE_RCPT, "unknown too");
	assert_true(t->reusable);
	quit(t);
}

/* A pipelined MAIL refused: every recipient gets its reply, the RCPT and DATA replies are read
 * and ignored, RSET follows. */
static void test_mail_refused_pipelined(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "553 5.7.1 sender rejected\r\n", A_REPLY },
		{ "RCPT", "503 5.5.1 need MAIL\r\n", A_REPLY },
		{ "RCPT", "503 5.5.1 need MAIL\r\n", A_REPLY },
		{ "DATA", "503 5.5.1 need RCPT\r\n", A_REPLY },
		{ "RSET", "250 2.0.0 Ok\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, two, 2);
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_status(&t->st[0], 553, "5.7.1", SMTPC_STAGE_MAIL, "sender rejected");
	assert_status(&t->st[1], 553, "5.7.1", SMTPC_STAGE_MAIL, "sender rejected");
	assert_true(t->reusable);
	quit(t);
}

/* ---- recipient probes (smtpc_msg.rcpt_only) ------------------------------------------------- */

static const struct smtpc_rcpt probe_rcpts[] = { { .addr = "known@mx.test" },
						 { .addr = "unknown@mx.test" } };

static struct smtpc_msg probe_msg(size_t n)
{
	struct smtpc_msg m = { .sender = "", .rcpts = probe_rcpts, .nrcpt = n, .body_fd = -1,
			       .rcpt_only = 1 };

	return m;
}

/* Pipelined: MAIL and the RCPTs in one write, no DATA ever; QUIT after the last RCPT reply,
 * done() after its 221; each status is its RCPT reply (a 2xx too), the client is spent. */
static void test_probe_pipelined(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO client.test", EHLO_FULL, A_REPLY },
		{ "MAIL FROM:<> SIZE=0", "250 2.1.0 Ok\r\n", A_REPLY },
		{ "RCPT TO:<known@mx.test>", "250 2.1.5 Ok\r\n", A_REPLY },
		{ "RCPT TO:<unknown@mx.test>", "550 5.1.1 no such user\r\n", A_REPLY },
		{ "QUIT", "221 2.0.0 Bye\r\n", A_REPLY }, /* DATA here fails the script */
	};
	struct smtpc_msg m = probe_msg(2);
	int mail;

	START_OK(t, script);
	send_msg(t, &m);
	assert_no_server_errors(t);
	mail = fake_find(&t->srv, "MAIL");
	assert_true(mail >= 0);
	assert_int_equal(t->srv.batch[mail + 2], t->srv.batch[mail]);
	assert_int_equal(fake_find(&t->srv, "DATA"), -1);
	assert_int_equal(fake_find(&t->srv, "QUIT"), mail + 3);
	assert_int_equal(t->nrcpt, 2);
	assert_status(&t->st[0], 250, "2.1.5", SMTPC_STAGE_RCPT, "Ok");
	assert_status(&t->st[1], 550, "5.1.1", SMTPC_STAGE_RCPT, "no such user");
	assert_int_equal(t->st[0].local, 0);
	assert_false(t->reusable);
	assert_false(smtpc_is_reusable(t->c));
	smtpc_free(&t->c);
	assert_int_equal(t->srv.i, 6);
}

static void test_probe_lockstep(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_LOCKSTEP, A_REPLY },
		{ "MAIL FROM:<>", "250 Ok\r\n", A_REPLY },
		{ "RCPT TO:<known@mx.test>", "451 4.3.0 try later\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m = probe_msg(1);
	int mail;

	START_OK(t, script);
	send_msg(t, &m);
	assert_no_server_errors(t);
	mail = fake_find(&t->srv, "MAIL");
	assert_true(t->srv.batch[mail] < t->srv.batch[mail + 1]);
	assert_status(&t->st[0], 451, "4.3.0", SMTPC_STAGE_RCPT, "try later");
	assert_false(t->reusable);
	smtpc_free(&t->c);
}

/* MAIL FROM:<> refused in lock-step: no RCPT goes out, the status is MAIL's, QUIT ends it. */
static void test_probe_mail_refused(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_LOCKSTEP, A_REPLY },
		{ "MAIL FROM:<>", "550 5.7.1 no null sender here\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m = probe_msg(1);

	START_OK(t, script);
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_int_equal(fake_find(&t->srv, "RCPT"), -1);
	assert_status(&t->st[0], 550, "5.7.1", SMTPC_STAGE_MAIL, "no null sender here");
	assert_false(t->reusable);
	smtpc_free(&t->c);
}

/* The server closes instead of answering QUIT: the RCPT answers stand. */
static void test_probe_close_at_quit(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "QUIT", NULL, A_CLOSE },
	};
	struct smtpc_msg m = probe_msg(1);

	START_OK(t, script);
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_RCPT, "Ok");
	assert_false(t->reusable);
	smtpc_free(&t->c);
}

static void test_data_final_rejected(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "550 5.1.1 unknown\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "554 5.6.0 content rejected\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY }, /* no RSET: the final reply ended it */
	};
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, three, 3);
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_status(&t->st[0], 554, "5.6.0", SMTPC_STAGE_BODY, "content rejected");
	assert_status(&t->st[1], 554, "5.6.0", SMTPC_STAGE_BODY, "content rejected");
	assert_status(&t->st[2], 550, "5.1.1", SMTPC_STAGE_RCPT, "unknown");
	assert_true(t->reusable);
	quit(t);
}

/* ---- what is decided without the server --------------------------------------------------------- */

static const struct step script_plain_then_quit[] = {
	{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
	{ "EHLO", "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", A_REPLY },
	{ "QUIT", "221 Bye\r\n", A_REPLY },
};

static void test_8bitmime_missing(void **state)
{
	struct tctx *t = *state;
	struct smtpc_msg m;

	START_OK(t, script_plain_then_quit);
	m = msg_for(t, two, 2);
	m.needs_8bitmime = 1;
	send_msg(t, &m);
	assert_status(&t->st[0], 554, "5.6.3", SMTPC_STAGE_LOCAL, NULL);
	assert_status(&t->st[1], 554, "5.6.3", SMTPC_STAGE_LOCAL, NULL);
	assert_int_equal(t->st[0].local, 1);
	assert_true(t->reusable);
	assert_int_equal(fake_find(&t->srv, "MAIL"), -1);
	quit(t);
	assert_no_server_errors(t);
}

static void test_smtputf8_missing(void **state)
{
	struct tctx *t = *state;
	struct smtpc_msg m;

	START_OK(t, script_plain_then_quit);
	m = msg_for(t, two, 2);
	m.needs_smtputf8 = 1;
	send_msg(t, &m);
	assert_status(&t->st[0], 553, "5.6.7", SMTPC_STAGE_LOCAL, NULL);
	assert_int_equal(fake_find(&t->srv, "MAIL"), -1);
	quit(t);
	assert_no_server_errors(t);
}

static void test_size_exceeded(void **state)
{
	struct tctx *t = *state;
	struct smtpc_msg m;

	START_OK(t, script_plain_then_quit);
	assert_int_equal(t->info.size_max, 1000);
	m = msg_for(t, two, 2);
	m.size = 5000;
	send_msg(t, &m);
	assert_status(&t->st[0], 552, "5.3.4", SMTPC_STAGE_LOCAL, NULL);
	assert_status(&t->st[1], 552, "5.3.4", SMTPC_STAGE_LOCAL, NULL);
	assert_int_equal(smtpc_status_class(&t->st[0]), 5);
	assert_int_equal(fake_find(&t->srv, "MAIL"), -1);
	quit(t);
	assert_no_server_errors(t);
}

/* A recipient that cannot go on the wire fails alone; a command injection never leaves. */
static void test_bad_recipient_address(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT TO:<b@mx.test>", "250 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "250 2.0.0 queued\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	static const struct smtpc_rcpt r[] = { { .addr = "a@mx.test>\r\nRSET" }, { .addr = "b@mx.test" } };
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, r, 2);
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_status(&t->st[0], 553, "5.1.3", SMTPC_STAGE_LOCAL, NULL);
	assert_status(&t->st[1], 250, "2.0.0", SMTPC_STAGE_BODY, "queued");
	quit(t);
}

/* ---- parameters ------------------------------------------------------------------------------------- */

static const struct smtpc_rcpt dsn_rcpt[] = {
	{ .addr = "a@mx.test", .notify = SMTPC_NOTIFY_SUCCESS | SMTPC_NOTIFY_FAILURE,
	  .orcpt = "rfc822;a+40mx.test" },
};

static void test_dsn_offered(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "250 2.0.0 queued\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, dsn_rcpt, 1);
	m.ret = SMTPC_RET_HDRS;
	m.envid = "QID+2B1";
	m.needs_smtputf8 = 1;
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_string_equal(t->srv.cmds[fake_find(&t->srv, "MAIL")],
			    "MAIL FROM:<sender@client.test> SIZE=24 SMTPUTF8 RET=HDRS ENVID=QID+2B1");
	assert_string_equal(t->srv.cmds[fake_find(&t->srv, "RCPT")],
			    "RCPT TO:<a@mx.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40mx.test");
	quit(t);
}

static void test_dsn_not_offered(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_BARE, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "250 2.0.0 queued\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	assert_int_equal(t->info.ext, 0);
	m = msg_for(t, dsn_rcpt, 1);
	m.ret = SMTPC_RET_FULL;
	m.envid = "QID";
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_string_equal(t->srv.cmds[fake_find(&t->srv, "MAIL")], "MAIL FROM:<sender@client.test>");
	assert_string_equal(t->srv.cmds[fake_find(&t->srv, "RCPT")], "RCPT TO:<a@mx.test>");
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_BODY, "queued");
	quit(t);
}

/* ---- the body ---------------------------------------------------------------------------------------- */

/* The reference: dot-stuff in one go, end with CRLF . CRLF. */
static char *stuffed_ref(const char *in, size_t len, size_t *out_len)
{
	char *out = malloc(2 * len + 6);
	size_t o = 0;
	int bol = 1;

	for (size_t i = 0; i < len; i++) {
		if (bol && in[i] == '.')
			out[o++] = '.';
		out[o++] = in[i];
		bol = in[i] == '\n';
	}
	if (len < 2 || in[len - 2] != '\r' || in[len - 1] != '\n') {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	out[o] = '\0';
	*out_len = o;
	return out;
}

static const struct step script_one_message[] = {
	{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
	{ "EHLO", EHLO_FULL, A_REPLY },
	{ "MAIL", "250 Ok\r\n", A_REPLY },
	{ "RCPT", "250 Ok\r\n", A_REPLY },
	{ "DATA", "354 go ahead\r\n", A_DATA },
	{ ".", "250 2.0.0 queued\r\n", A_REPLY },
	{ "QUIT", "221 Bye\r\n", A_REPLY },
};

static void test_dot_stuffing_small(void **state)
{
	struct tctx *t = *state;
	static const char body[] = ".hidden\r\n..two\r\nmid.dle\r\n.\r\n\r\n.\r\nend";
	struct smtpc_msg m;

	START_OK(t, script_one_message);
	m = msg_for(t, two, 1);
	m.body_fd = body_file(t, body, strlen(body));
	m.body_len = strlen(body);
	send_msg(t, &m);
	assert_no_server_errors(t);
	/* the server saw "." only at the end: everything else came stuffed */
	assert_string_equal(t->srv.body, "..hidden\r\n...two\r\nmid.dle\r\n..\r\n\r\n..\r\nend\r\n");
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_BODY, "queued");
	quit(t);
}

/* A body several chunks and watermarks long, with line starts and dots on chunk boundaries,
 * read from an offset into the file. */
static void test_dot_stuffing_large(void **state)
{
	struct tctx *t = *state;
	size_t len = 700 * 1024 + 17, off = 1000, want_len;
	char *file = malloc(off + len);
	char *want;
	struct smtpc_msg m;

	memset(file, 'J', off);
	for (size_t i = 0; i < len; i++) {
		size_t k = i % 97;
		file[off + i] = k == 95 ? '\r' : k == 96 ? '\n' : k == 0 || k == 1 ? '.' : 'a' + k % 26;
	}
	/* a line start exactly at the chunk boundary (64 KiB) */
	memcpy(file + off + 65536 - 2, "\r\n.", 3);
	START_OK(t, script_one_message);
	m = msg_for(t, two, 1);
	m.body_fd = body_file(t, file, off + len);
	m.body_off = (off_t)off;
	m.body_len = len;
	send_msg(t, &m);
	assert_no_server_errors(t);
	want = stuffed_ref(file + off, len, &want_len);
	assert_int_equal(t->srv.body_len, want_len);
	assert_memory_equal(t->srv.body, want, want_len);
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_BODY, "queued");
	free(want);
	free(file);
	quit(t);
}

/* A file shorter than body_len: no final dot goes out, the connection is dropped, 4.3.0. */
static void test_body_short_file(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, two, 1);
	m.body_len = 100000;
	send_msg(t, &m);
	assert_status(&t->st[0], 451, "4.3.0", SMTPC_STAGE_BODY, NULL);
	assert_false(t->reusable);
	assert_false(smtpc_is_reusable(t->c));
	assert_true(t->srv.in_data || !t->srv.bev); /* never saw the end of data */
	assert_no_server_errors(t);
}

/* ---- connection failures --------------------------------------------------------------------------- */

/* A port where nothing listens: bound, never listened on, closed. */
static uint16_t dead_port(void)
{
	struct sockaddr_in sin = loopback(0);
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	return ntohs(sin.sin_port);
}

static void test_connection_refused(void **state)
{
	struct tctx *t = *state;
	struct sockaddr_in sin = loopback(dead_port());
	const struct sockaddr *addrs[] = { (const struct sockaddr *)&sin };

	connect_addrs(t, addrs, 1);
	assert_int_equal(t->info.result, SMTPC_ERR_CONNECT);
	assert_string_equal(t->info.status.enh, "4.4.1");
	assert_int_equal(t->info.status.local, 1);
	assert_int_equal(t->info.status.stage, SMTPC_STAGE_CONNECT);
	assert_non_null(strstr(t->info.status.text, "refused"));
	assert_string_equal(t->info.ip, "127.0.0.1");
	assert_null(t->c); /* freed in on_ready */
}

static void test_no_addresses(void **state)
{
	struct tctx *t = *state;

	connect_addrs(t, NULL, 0);
	assert_int_equal(t->info.result, SMTPC_ERR_CONNECT);
	assert_string_equal(t->info.status.enh, "4.4.4");
}

/* The first address refuses, the second answers: the client ends up on the second. */
static void test_next_address(void **state)
{
	struct tctx *t = *state;
	struct sockaddr_in dead = loopback(dead_port()), good;
	const struct sockaddr *addrs[2];

	fake_start(&t->srv, t->base, script_plain_then_quit, 3);
	good = loopback(t->srv.port);
	addrs[0] = (const struct sockaddr *)&dead;
	addrs[1] = (const struct sockaddr *)&good;
	connect_addrs(t, addrs, 2);
	assert_int_equal(t->info.result, SMTPC_CONNECTED);
	assert_int_equal(t->info.port, t->srv.port);
	quit(t);
	assert_no_server_errors(t);
}

static void test_greeting_stall(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = { { NULL, NULL, A_STALL } };
	long t0 = now_ms(), took;

	t->p.timeouts.greeting_ms = SHORT_MS;
	fake_start(&t->srv, t->base, script, 1);
	{
		struct sockaddr_in sin = loopback(t->srv.port);
		const struct sockaddr *addrs[] = { (const struct sockaddr *)&sin };
		connect_addrs(t, addrs, 1);
	}
	took = now_ms() - t0;
	assert_int_equal(t->info.result, SMTPC_ERR_LOST);
	assert_string_equal(t->info.status.enh, "4.4.2");
	assert_int_equal(t->info.status.stage, SMTPC_STAGE_GREETING);
	assert_non_null(strstr(t->info.status.text, "timeout"));
	assert_true(took >= SHORT_MS - 10 && took < SHORT_MS + SLACK_MS);
}

static void test_greeting_refused(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = { { NULL, "554 5.7.1 go away\r\n", A_STALL } };

	start(t, script, 1);
	assert_int_equal(t->info.result, SMTPC_ERR_REFUSED);
	/* the server's reply, kept; its class turned temporary for the host */
	assert_int_equal(t->info.status.code, 554);
	assert_string_equal(t->info.status.enh, "4.7.1");
	assert_string_equal(t->info.status.text, "go away");
	assert_int_equal(t->info.status.local, 0);
}

static void test_ehlo_falls_back_to_helo(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test old SMTP\r\n", A_REPLY },
		{ "EHLO client.test", "502 5.5.1 what?\r\n", A_REPLY },
		{ "HELO client.test", "250 mx.test\r\n", A_REPLY },
		{ "MAIL FROM:<sender@client.test>", "250 Ok\r\n", A_REPLY }, /* no parameters */
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "250 queued\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	assert_int_equal(t->info.ext, 0);
	m = msg_for(t, two, 1);
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_string_equal(t->srv.cmds[fake_find(&t->srv, "MAIL")], "MAIL FROM:<sender@client.test>");
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_BODY, "queued");
	quit(t);
}

static void test_mail_stall_timeout(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_LOCKSTEP, A_REPLY },
		{ "MAIL", NULL, A_STALL },
	};
	struct smtpc_msg m;
	long t0, took;

	t->p.timeouts.mail_ms = SHORT_MS;
	START_OK(t, script);
	m = msg_for(t, two, 2);
	t0 = now_ms();
	send_msg(t, &m);
	took = now_ms() - t0;
	assert_status(&t->st[0], 421, "4.4.2", SMTPC_STAGE_MAIL, NULL);
	assert_status(&t->st[1], 421, "4.4.2", SMTPC_STAGE_MAIL, NULL);
	assert_non_null(strstr(t->st[0].text, "timeout"));
	assert_true(took >= SHORT_MS - 10 && took < SHORT_MS + SLACK_MS);
	assert_false(t->reusable);
	/* a client that is not reusable answers the next message at once with 4.4.2 */
	send_msg(t, &m);
	assert_status(&t->st[0], 421, "4.4.2", SMTPC_STAGE_LOCAL, NULL);
	assert_no_server_errors(t);
}

/* The final reply stalls: data_end_ms applies after the dot. */
static void test_final_reply_stall(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", NULL, A_STALL },
	};
	struct smtpc_msg m;
	long t0, took;

	t->p.timeouts.data_end_ms = SHORT_MS;
	START_OK(t, script);
	m = msg_for(t, two, 1);
	t0 = now_ms();
	send_msg(t, &m);
	took = now_ms() - t0;
	assert_status(&t->st[0], 421, "4.4.2", SMTPC_STAGE_BODY, NULL);
	assert_true(took >= SHORT_MS - 10 && took < SHORT_MS + SLACK_MS);
	assert_no_server_errors(t);
}

static void test_close_mid_data(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "550 5.1.1 unknown\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA_CLOSE },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, three, 3);
	send_msg(t, &m);
	assert_no_server_errors(t);
	assert_status(&t->st[0], 421, "4.4.2", SMTPC_STAGE_BODY, NULL);
	assert_status(&t->st[1], 421, "4.4.2", SMTPC_STAGE_BODY, NULL);
	assert_status(&t->st[2], 550, "5.1.1", SMTPC_STAGE_RCPT, "unknown");
	assert_non_null(strstr(t->st[0].text, "lost connection with mx.test[127.0.0.1]"));
	assert_false(t->reusable);
}

/* A server that sends endless bytes without a line end, or endless continuation lines, is cut
 * off at SMTPC_REPLY_MAX. */
static void test_endless_reply(void **state)
{
	struct tctx *t = *state;
	size_t n = SMTPC_REPLY_MAX + 4096;
	char *flood = malloc(n + 1);
	struct step script[] = { { NULL, flood, A_STALL } };

	memset(flood, 'z', n);
	flood[n] = '\0';
	memcpy(flood, "220 ", 4);
	start(t, script, 1);
	assert_int_equal(t->info.result, SMTPC_ERR_LOST);
	assert_non_null(strstr(t->info.status.text, "too long"));
	free(flood);
}

static void test_endless_multiline_reply(void **state)
{
	struct tctx *t = *state;
	static const char line[] = "220-0123456789012345678901234567890123456789\r\n";
	size_t nlines = SMTPC_REPLY_MAX / (sizeof(line) - 1) + 10;
	char *flood = malloc(nlines * (sizeof(line) - 1) + 1);
	struct step script[] = { { NULL, flood, A_STALL } };

	for (size_t i = 0; i < nlines; i++)
		memcpy(flood + i * (sizeof(line) - 1), line, sizeof(line));
	start(t, script, 1);
	assert_int_equal(t->info.result, SMTPC_ERR_LOST);
	assert_non_null(strstr(t->info.status.text, "too long"));
	free(flood);
}

/* ---- reuse ------------------------------------------------------------------------------------------ */

static void test_reuse_two_messages(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT TO:<a@", "250 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "250 2.0.0 first\r\n", A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT TO:<b@", "250 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "250 2.0.0 second\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m1, m2;

	START_OK(t, script);
	m1 = msg_for(t, &two[0], 1);
	m2 = m1;
	m2.rcpts = &two[1];
	t->chain = &m2; /* sent from inside the first done() */
	send_msg(t, &m1);
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_BODY, "first");
	assert_true(run_until(t, &t->done_called, 2, WAIT_MS));
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_BODY, "second");
	assert_no_server_errors(t);
	assert_int_equal(t->srv.conns, 1);
	quit(t);
}

/* After a transaction that failed part-way (MAIL refused), RSET, then the next one. */
static void test_reuse_after_failure(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_LOCKSTEP, A_REPLY },
		{ "MAIL", "451 4.3.0 try later\r\n", A_REPLY },
		{ "RSET", "250 Ok\r\n", A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "250 2.0.0 queued\r\n", A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, two, 1);
	send_msg(t, &m);
	assert_status(&t->st[0], 451, "4.3.0", SMTPC_STAGE_MAIL, "try later");
	assert_true(t->reusable);
	send_msg(t, &m);
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_BODY, "queued");
	assert_no_server_errors(t);
	quit(t);
}

/* An idle connection the server closes (421, then EOF) is not reusable any more. */
static void test_idle_server_close(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", "250 mx.test\r\n421 4.4.2 idle timeout\r\n", A_CLOSE },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	for (long end = now_ms() + WAIT_MS; smtpc_is_reusable(t->c) && now_ms() < end;)
		run_for(t, 10);
	assert_false(smtpc_is_reusable(t->c));
	m = msg_for(t, two, 1);
	send_msg(t, &m);
	assert_status(&t->st[0], 421, "4.4.2", SMTPC_STAGE_LOCAL, NULL);
}

/* ---- free and quit ------------------------------------------------------------------------------------ */

static void test_free_in_flight(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", NULL, A_STALL },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, two, 2);
	smtpc_send(t->c, &m, on_done, t);
	for (long end = now_ms() + WAIT_MS; t->srv.i < 4 && now_ms() < end;)
		run_for(t, 5);
	assert_int_equal(t->srv.i, 4);
	run_for(t, 20); /* the MAIL reply reaches the client */
	smtpc_free(&t->c);
	assert_null(t->c);
	run_for(t, 200);
	assert_int_equal(t->done_called, 0);
}

/* Freed while done() is still deferred (a local failure): done() never runs. */
static void test_free_before_deferred_done(void **state)
{
	struct tctx *t = *state;
	struct smtpc_msg m;

	START_OK(t, script_plain_then_quit);
	m = msg_for(t, two, 1);
	m.needs_8bitmime = 1;
	smtpc_send(t->c, &m, on_done, t);
	smtpc_free(&t->c);
	run_for(t, 100);
	assert_int_equal(t->done_called, 0);
}

static void test_free_inside_callbacks(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO", EHLO_FULL, A_REPLY },
		{ "MAIL", "250 Ok\r\n", A_REPLY },
		{ "RCPT", "250 Ok\r\n", A_REPLY },
		{ "DATA", "354 go ahead\r\n", A_DATA },
		{ ".", "250 2.0.0 queued\r\n250 2.0.0 junk that follows\r\n", A_REPLY },
	};
	struct smtpc_msg m;

	START_OK(t, script);
	m = msg_for(t, two, 1);
	t->free_in_done = 1;
	send_msg(t, &m);
	assert_null(t->c);
	run_for(t, 50);
	assert_int_equal(t->done_called, 1);
}

static void test_free_inside_ready(void **state)
{
	struct tctx *t = *state;

	t->free_in_ready = 1;
	start(t, script_plain_then_quit, 3);
	assert_int_equal(t->info.result, SMTPC_CONNECTED);
	assert_null(t->c);
	run_for(t, 50);
}

static void test_free_while_connecting(void **state)
{
	struct tctx *t = *state;
	struct sockaddr_in sin = loopback(dead_port());
	const struct sockaddr *addrs[] = { (const struct sockaddr *)&sin };

	t->c = smtpc_connect(t->base, &t->p, addrs, 1, on_ready, t);
	smtpc_free(&t->c);
	run_for(t, 50);
	assert_int_equal(t->ready_called, 0);
}

/* ---- STARTTLS ------------------------------------------------------------------------------------------- */

static SSL_CTX *client_ctx(int trust_test_cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	assert_non_null(ctx);
	if (trust_test_cert)
		assert_int_equal(SSL_CTX_load_verify_locations(ctx, tls.cert, NULL), 1);
	return ctx;
}

static void server_tls(struct tctx *t)
{
	char err[512];

	if (!tls.have)
		skip();
	t->srv.tls_ctx = tls_server_ctx_new(tls.cert, tls.key, err, sizeof(err));
	if (!t->srv.tls_ctx)
		fail_msg("%s", err);
}

static const struct step script_tls_message[] = {
	{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
	{ "EHLO client.test", EHLO_TLS, A_REPLY },
	{ "STARTTLS", "220 2.0.0 ready\r\n", A_TLS },
	{ "EHLO client.test", EHLO_FULL, A_REPLY },
	{ "MAIL", "250 Ok\r\n", A_REPLY },
	{ "RCPT", "250 Ok\r\n", A_REPLY },
	{ "DATA", "354 go ahead\r\n", A_DATA },
	{ ".", "250 2.0.0 queued over TLS\r\n", A_REPLY },
	{ "QUIT", "221 Bye\r\n", A_REPLY },
};

static const struct step script_tls_quit[] = {
	{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
	{ "EHLO client.test", EHLO_TLS, A_REPLY },
	{ "STARTTLS", "220 2.0.0 ready\r\n", A_TLS },
	{ "EHLO client.test", EHLO_FULL, A_REPLY },
	{ "QUIT", "221 Bye\r\n", A_REPLY },
};

static void test_starttls_opportunistic(void **state)
{
	struct tctx *t = *state;
	struct smtpc_msg m;

	server_tls(t);
	t->p.tls = SMTPC_TLS_OPPORTUNISTIC;
	t->p.ssl_ctx = client_ctx(0);
	START_OK(t, script_tls_message);
	assert_true(t->info.tls);
	assert_false(t->info.tls_verified);
	assert_non_null(strstr(t->info.tls_summary, "TLS"));
	/* the extensions are the second EHLO's */
	assert_true(t->info.ext & SMTPC_EXT_DSN);
	assert_false(t->info.ext & SMTPC_EXT_STARTTLS);
	m = msg_for(t, two, 1);
	send_msg(t, &m);
	assert_status(&t->st[0], 250, "2.0.0", SMTPC_STAGE_BODY, "queued over TLS");
	assert_string_equal(t->srv.body, body1);
	quit(t);
	assert_no_server_errors(t);
}

static void test_starttls_required_verified(void **state)
{
	struct tctx *t = *state;

	server_tls(t);
	t->p.tls = SMTPC_TLS_REQUIRED;
	t->p.tls_verify = 1;
	t->p.tls_name = "mx.test";
	t->p.ssl_ctx = client_ctx(1);
	START_OK(t, script_tls_quit);
	assert_true(t->info.tls);
	assert_true(t->info.tls_verified);
	quit(t);
	assert_no_server_errors(t);
}

static void test_starttls_required_wrong_name(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO client.test", EHLO_TLS, A_REPLY },
		{ "STARTTLS", "220 2.0.0 ready\r\n", A_TLS },
	};

	server_tls(t);
	t->p.tls = SMTPC_TLS_REQUIRED;
	t->p.tls_verify = 1;
	t->p.tls_name = "other.test";
	t->p.ssl_ctx = client_ctx(1);
	start(t, script, 3);
	assert_int_equal(t->info.result, SMTPC_ERR_TLS);
	assert_string_equal(t->info.status.enh, "4.7.5");
	assert_non_null(strstr(t->info.status.text, "verif"));
	assert_no_server_errors(t);
}

static void test_starttls_required_not_offered(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO client.test", EHLO_FULL, A_REPLY },
	};

	t->p.tls = SMTPC_TLS_REQUIRED;
	t->p.ssl_ctx = SSL_CTX_new(TLS_client_method());
	start(t, script, 2);
	assert_int_equal(t->info.result, SMTPC_ERR_TLS);
	assert_string_equal(t->info.status.enh, "4.7.4");
	assert_non_null(strstr(t->info.status.text, "not offered"));
	assert_int_equal(fake_find(&t->srv, "MAIL"), -1);
	assert_no_server_errors(t);
}

/* Opportunistic: the handshake fails (the server hangs up after its 220), the client comes
 * back in plain text and does not try STARTTLS again. */
static void test_starttls_opportunistic_fallback(void **state)
{
	struct tctx *t = *state;
	static const struct step script[] = {
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO client.test", EHLO_TLS, A_REPLY },
		{ "STARTTLS", "220 2.0.0 ready\r\n", A_CLOSE },
		{ NULL, "220 mx.test ESMTP\r\n", A_REPLY },
		{ "EHLO client.test", EHLO_TLS, A_REPLY },
		{ "QUIT", "221 Bye\r\n", A_REPLY },
	};

	t->p.tls = SMTPC_TLS_OPPORTUNISTIC;
	t->p.ssl_ctx = SSL_CTX_new(TLS_client_method());
	START_OK(t, script);
	assert_false(t->info.tls);
	assert_int_equal(t->srv.conns, 2);
	quit(t);
	assert_no_server_errors(t);
}

static int tls_setup(void **state)
{
	char cmd[4 * PATH_LEN];

	(void)state;
	snprintf(tls.dir, sizeof(tls.dir), "/tmp/smtpc-test-XXXXXX");
	if (!mkdtemp(tls.dir))
		return 0;
	snprintf(tls.cert, sizeof(tls.cert), "%s/cert.pem", tls.dir);
	snprintf(tls.key, sizeof(tls.key), "%s/key.pem", tls.dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-days 2 -subj /CN=mx.test -addext subjectAltName=DNS:mx.test "
		 "-keyout %s -out %s >/dev/null 2>&1",
		 tls.key, tls.cert);
	tls.have = system(cmd) == 0;
	if (!tls.have)
		fprintf(stderr, "openssl CLI failed: the STARTTLS tests are skipped\n");
	return 0;
}

static int tls_teardown(void **state)
{
	(void)state;
	unlink(tls.cert);
	unlink(tls.key);
	rmdir(tls.dir);
	return 0;
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int smtpc_live_tests(void)
{
	const struct CMUnitTest tests[] = {
		T(test_pipelined_transaction),
		T(test_lockstep_transaction),
		T(test_rcpt_mix),
		T(test_no_rcpt_accepted_lockstep),
		T(test_no_rcpt_accepted_pipelined),
		T(test_mail_refused_pipelined),
		T(test_probe_pipelined),
		T(test_probe_lockstep),
		T(test_probe_mail_refused),
		T(test_probe_close_at_quit),
		T(test_data_final_rejected),
		T(test_8bitmime_missing),
		T(test_smtputf8_missing),
		T(test_size_exceeded),
		T(test_bad_recipient_address),
		T(test_dsn_offered),
		T(test_dsn_not_offered),
		T(test_dot_stuffing_small),
		T(test_dot_stuffing_large),
		T(test_body_short_file),
		T(test_connection_refused),
		T(test_no_addresses),
		T(test_next_address),
		T(test_greeting_stall),
		T(test_greeting_refused),
		T(test_ehlo_falls_back_to_helo),
		T(test_mail_stall_timeout),
		T(test_final_reply_stall),
		T(test_close_mid_data),
		T(test_endless_reply),
		T(test_endless_multiline_reply),
		T(test_reuse_two_messages),
		T(test_reuse_after_failure),
		T(test_idle_server_close),
		T(test_free_in_flight),
		T(test_free_before_deferred_done),
		T(test_free_inside_callbacks),
		T(test_free_inside_ready),
		T(test_free_while_connecting),
		T(test_starttls_opportunistic),
		T(test_starttls_required_verified),
		T(test_starttls_required_wrong_name),
		T(test_starttls_required_not_offered),
		T(test_starttls_opportunistic_fallback),
	};

	return cmocka_run_group_tests_name("smtpc_live", tests, tls_setup, tls_teardown);
}
