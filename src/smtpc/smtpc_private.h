/* smtpc_private: what smtpc.c (connection, session set-up, I/O, life cycle) and smtpc_txn.c
 * (one mail transaction) share. Nothing outside src/smtpc/ includes this. */
#ifndef MXG_SMTPC_PRIVATE_H
#define MXG_SMTPC_PRIVATE_H

#include <sys/socket.h>

#include "smtpc/smtpc.h"
#include "smtpc/smtpc_proto.h"

/* While streaming a body the output is refilled, up to about SMTPC_BODY_HIGH_WATER, whenever it
 * drains to SMTPC_BODY_LOW_WATER: the socket never runs dry, memory stays bounded. */
#define SMTPC_BODY_LOW_WATER (64 * 1024)
#define SMTPC_BODY_HIGH_WATER (256 * 1024)
/* The body is read from its file in chunks of this size. */
#define SMTPC_BODY_CHUNK (64 * 1024)

struct bufferevent;
struct event;
struct smtpc_txn;

enum smtpc_state {
	SMTPC_S_START,      /* the first connect runs on the next loop turn */
	SMTPC_S_CONNECTING, /* non-blocking connect() in progress */
	SMTPC_S_GREETING,
	SMTPC_S_EHLO,
	SMTPC_S_HELO,
	SMTPC_S_STARTTLS,   /* waiting for the 220 to STARTTLS */
	SMTPC_S_HANDSHAKE,
	SMTPC_S_READY,      /* session up: idle, or the transaction in c->txn */
	SMTPC_S_QUIT,       /* QUIT sent, lingering for the reply; the owner is gone */
	SMTPC_S_CLOSED,     /* no connection: connect failed or the connection broke */
};

struct smtpc {
	struct event_base *base;
	/* One reference for the owner (dropped by smtpc_free, or by the end of the QUIT linger)
	 * and one for each libevent callback of ours on the stack, so that the owner can free
	 * the client from inside ready() or done() and the code below still finds it. */
	unsigned refs;
	int owner_gone;
	enum smtpc_state state;
	enum smtpc_stage stage; /* what the client is waiting for: names failures */
	int was_ready;          /* ready() said connected once */

	/* copies of the parameters */
	char *helo_name, *host_name, *log_id, *tls_name;
	enum smtpc_tls_mode tls_mode;
	int tls_verify;
	SSL_CTX *ssl_ctx; /* a reference of our own */
	struct smtpc_timeouts to;

	struct sockaddr_storage *addrs;
	socklen_t *addrlens;
	size_t naddrs, addr_i;
	int plain_retry; /* the current address again without TLS (opportunistic fallback) */

	int fd;                   /* ours during connect(), then the bufferevent's (-1) */
	struct event *connect_ev; /* writable during the non-blocking connect */
	struct bufferevent *bev;
	struct event *timer;      /* the one timeout of the current step */
	struct event *defer;      /* runs work queued for the next loop turn */
	struct smtpc_reply reply; /* the reply being read */

	unsigned ext;
	uint64_t size_max;
	int tls, tls_verified;
	char ip[SMTPC_IP_MAX];
	uint16_t port;
	struct smtpc_status last_error; /* the current address's failure, for ready() */
	enum smtpc_result last_result;

	smtpc_ready_fn *ready;
	void *ready_arg;
	struct smtpc_txn *txn; /* the transaction in progress, NULL when idle */
};

/* The log id: params.log_id or "-". */
const char *smtpc_log_id(const struct smtpc *c);
void smtpc_write(struct smtpc *c, const char *buf, size_t len);
size_t smtpc_output_len(const struct smtpc *c);
/* Arms the step's timeout (ms); replaces the previous one. */
void smtpc_arm(struct smtpc *c, unsigned ms);
void smtpc_disarm(struct smtpc *c);
/* Queues smtpc_txn_deliver for the next loop turn (never from inside the caller's call). */
void smtpc_defer(struct smtpc *c);
/* Closes the connection; the client stays, in SMTPC_S_CLOSED, not reusable. */
void smtpc_close(struct smtpc *c);
/* "lost connection with HOST[IP] while sending the message body" and the like. */
void smtpc_describe(const struct smtpc *c, const char *what, char *buf, size_t bufsz);

/* smtpc_txn.c */
/* Creates c->txn for m and either starts it or, when it is decided without the server,
 * leaves it finished and defers its done(). */
void smtpc_txn_start(struct smtpc *c, const struct smtpc_msg *m, smtpc_sent_fn *done, void *arg);
/* A complete reply (c->reply) arrived while c->txn runs. */
void smtpc_txn_on_reply(struct smtpc *c);
/* The output drained to its low watermark: more body, or the final timeout. */
void smtpc_txn_on_write(struct smtpc *c);
/* The connection failed (timeout, EOF, error, bad reply) under the transaction: every
 * recipient without a final status gets 4.4.2 with text, and done() runs. */
void smtpc_txn_abort(struct smtpc *c, const char *text);
/* Calls done() for a finished transaction (from the defer event). */
void smtpc_txn_deliver(struct smtpc *c);
int smtpc_txn_finished(const struct smtpc_txn *t);
/* Frees without calling done() (smtpc_free). */
void smtpc_txn_free(struct smtpc_txn **t);

#endif
