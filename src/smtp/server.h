/* server: one worker's SMTP service: its event loop, listeners, shared per-worker context
 * (config, policy, queue, TLS) and the count of live sessions. */
#ifndef MXG_SERVER_H
#define MXG_SERVER_H

#include "config/config.h"

struct event_base;
struct policy;
struct queue;
struct bgjob_queue;
struct listener;
struct session;
struct iptable;
typedef struct ssl_ctx_st SSL_CTX;

/* What the master prepares before forking (as root, before it drops privileges): the config,
 * one listening fd per worker and listen spec (fds[worker * nlisten + i]), the TLS context
 * (its key read while still root; NULL = no STARTTLS) and the per-client table shared by all
 * workers (NULL when no per-client limit is set). A reload replaces cfg and tls. */
struct server_setup {
	const struct config *cfg;
	unsigned nworkers;
	int *fds;
	SSL_CTX *tls;
	struct iptable *clients;
};

/* Builds the TLS context the config asks for into *ctx (NULL when it asks for none). */
int server_tls_setup(const struct config *cfg, SSL_CTX **ctx, char *err, size_t errsz);

/* The context every session of a worker shares. Sessions only read it, except the counters. */
struct server {
	struct event_base *base;
	const struct config *cfg;
	struct policy *policy;
	struct queue *queue;
	struct bgjob_queue *bg;
	SSL_CTX *tls; /* NULL: STARTTLS not offered */
	struct iptable *clients; /* per-client counts of all workers; NULL: no per-client limit */
	unsigned slot;           /* this process's column in clients */
	struct listener *listeners[CONFIG_MAX_LISTEN];
	unsigned nlisteners;
	unsigned max_sessions; /* this worker's share of cfg->max_sessions */
	unsigned nsessions;
	struct session *sessions;
	int stopping;
	int draining;
	unsigned drain_polls;
};

/* Entry point for workers_run(); arg is a struct server_setup. Indexes 0..nworkers-1 are SMTP
 * workers; index nworkers is the queue manager (delivery). */
int server_worker_main(unsigned index, unsigned slot, void *arg);

/* Called by sessions when they end, so the server can resume accepting and finish a drain. */
void server_session_ended(struct server *srv);

#endif
