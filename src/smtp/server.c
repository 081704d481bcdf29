/* server: one worker process: event loop, listeners, and the shared context of its sessions. */
#include "smtp/server.h"

#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "delivery/delivery.h"
#include "event/bgjob.h"
#include "event/conn.h"
#include "event/listener.h"
#include "event/tls.h"
#include "policy/policy.h"
#include "queue/queue.h"
#include "smtp/session.h"
#include "util/log.h"

/* On SIGTERM a worker stops accepting and gives open sessions this long to finish. */
#define SHUTDOWN_GRACE_SECONDS 10
/* Then the last replies get up to 50 x 20 ms to reach the clients. */
#define SHUTDOWN_DRAIN_POLL_MS 20
#define SHUTDOWN_DRAIN_POLLS 50

struct worker {
	struct server srv;
	struct event *sigterm, *sigint, *grace;
};

static void on_accept(int fd, const struct sockaddr *peer, socklen_t len,
		      const struct sockaddr *local, int tag, void *arg)
{
	struct server *srv = arg;

	(void)len;
	(void)local;
	if (srv->stopping) {
		close(fd);
		return;
	}
	session_start(srv, fd, peer, srv->cfg->listen[tag].proxy);
}

/* Stopping and no session left: wait (bounded) for the last replies to leave, then exit. */
static void on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	struct timeval tick = { 0, SHUTDOWN_DRAIN_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	if (conn_lingering_count() == 0 || ++srv->drain_polls > SHUTDOWN_DRAIN_POLLS) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	event_base_once(srv->base, -1, EV_TIMEOUT, on_drain, srv, &tick);
}

static void maybe_exit(struct server *srv)
{
	if (srv->stopping && srv->nsessions == 0 && !srv->draining) {
		srv->draining = 1;
		on_drain(-1, 0, srv);
	}
}

void server_session_ended(struct server *srv)
{
	srv->nsessions--;
	maybe_exit(srv);
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	(void)fd;
	(void)what;
	log_info("worker shutdown: %u sessions still open after %ds, closing them", srv->nsessions,
		 SHUTDOWN_GRACE_SECONDS);
	session_close_all(srv); /* the last one to go calls maybe_exit */
	maybe_exit(srv);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;
	struct server *srv = &w->srv;
	struct timeval grace = { .tv_sec = SHUTDOWN_GRACE_SECONDS };

	(void)what;
	if (srv->stopping)
		return;
	log_info("worker stopping signal=%d sessions=%u", (int)sig, srv->nsessions);
	srv->stopping = 1;
	for (unsigned i = 0; i < srv->nlisteners; i++)
		listener_free(&srv->listeners[i]);
	w->grace = evtimer_new(srv->base, on_grace_over, srv);
	evtimer_add(w->grace, &grace);
	maybe_exit(srv);
}

int server_tls_setup(const struct config *cfg, SSL_CTX **ctx, char *err, size_t errsz)
{
	*ctx = NULL;
	if (!cfg->tls_cert[0] || access(cfg->tls_cert, R_OK) < 0)
		return 0; /* serve refuses a configured file that is missing; the default may be */
	*ctx = tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, err, errsz);
	if (!*ctx)
		return -1;
	if (cfg->tls_client_ca[0] && tls_ctx_add_client_ca(*ctx, cfg->tls_client_ca, err, errsz) < 0) {
		tls_ctx_free(ctx);
		return -1;
	}
	return 0;
}

static void worker_setup(struct worker *w, unsigned index, const struct server_setup *setup)
{
	struct server *srv = &w->srv;
	const struct config *cfg = setup->cfg;
	char err[512];

	srv->cfg = cfg;
	srv->base = event_base_new();
	if (!srv->base)
		fatal("cannot create the event loop");
	srv->bg = bgjob_new(srv->base);
	srv->queue = queue_open(cfg->data_dir, srv->slot, srv->bg);
	if (!srv->queue)
		fatal("cannot open the queue under %s: %m", cfg->data_dir);
	srv->policy = policy_new(srv->base, cfg, err, sizeof(err));
	if (!srv->policy)
		fatal("policy: %s", err);
	srv->tls = setup->tls;
	srv->clients = setup->clients;
	srv->max_sessions = (cfg->max_sessions + setup->nworkers - 1) / setup->nworkers;
	for (unsigned i = 0; i < cfg->nlisten; i++) {
		int fd = setup->fds[index * cfg->nlisten + i];
		srv->listeners[i] = listener_new(srv->base, fd, (int)i, on_accept, srv);
		if (!srv->listeners[i])
			fatal("cannot listen on %s:%u", cfg->listen[i].host, cfg->listen[i].port);
		srv->nlisteners++;
	}
	/* other workers' sockets stay with them */
	for (unsigned k = 0; k < setup->nworkers * cfg->nlisten; k++)
		if (k / cfg->nlisten != index)
			close(setup->fds[k]);
	w->sigterm = evsignal_new(srv->base, SIGTERM, on_stop_signal, w);
	w->sigint = evsignal_new(srv->base, SIGINT, on_stop_signal, w);
	evsignal_add(w->sigterm, NULL);
	evsignal_add(w->sigint, NULL);
}

/* How the queue did in this process: batches per commit show the group commit at work, spares
 * used per commit the reuse of queue files (docs/queue-format.md). */
static void log_queue_stats(const struct queue *q)
{
	struct queue_stats st;

	queue_get_stats(q, &st);
	log_info("queue committed=%llu failed=%llu batches=%llu spares_used=%llu "
		 "spares_claimed=%llu spares_busy=%llu", (unsigned long long)st.committed,
		 (unsigned long long)st.failed, (unsigned long long)st.batches,
		 (unsigned long long)st.spares_used, (unsigned long long)st.spares_claimed,
		 (unsigned long long)st.spares_busy);
}

static void worker_teardown(struct worker *w)
{
	struct server *srv = &w->srv;

	for (unsigned i = 0; i < srv->nlisteners; i++)
		listener_free(&srv->listeners[i]);
	bgjob_free(&srv->bg); /* commits in flight finish; their sessions are gone or replied */
	log_queue_stats(srv->queue);
	queue_close(&srv->queue);
	policy_free(&srv->policy);
	srv->tls = NULL; /* the master's */
	event_free(w->sigterm);
	event_free(w->sigint);
	if (w->grace)
		event_free(w->grace);
	event_base_free(srv->base);
}

int server_worker_main(unsigned index, unsigned slot, void *arg)
{
	const struct server_setup *setup = arg;
	struct worker w;

	if (index == setup->nworkers) {
		/* the process after the SMTP workers delivers: it needs no listener */
		for (unsigned k = 0; k < setup->nworkers * setup->cfg->nlisten; k++)
			close(setup->fds[k]);
		return qmgr_main(setup->cfg, slot);
	}
	memset(&w, 0, sizeof(w));
	signal(SIGPIPE, SIG_IGN);
	bgjob_global_init();
	w.srv.slot = slot;
	worker_setup(&w, index, arg);
	log_info("worker started listeners=%u max_sessions=%u tls=%s", w.srv.nlisteners,
		 w.srv.max_sessions, w.srv.tls ? "yes" : "no");
	event_base_dispatch(w.srv.base);
	worker_teardown(&w);
	log_info("worker stopped");
	return 0;
}
