/* smtpc: the outbound SMTP client the delivery layer drives. One struct smtpc is one connection
 * to one next hop, carrying one transaction at a time, on the caller's libevent loop, never
 * blocking (the message body is read with pread(2) from a local file).
 *
 * Life of a client:
 *   smtpc_connect()  tries the addresses in order, reads the greeting, EHLO (HELO after a 5xx),
 *                    STARTTLS per the TLS mode, EHLO again, then ready() once, on a later loop
 *                    turn, saying connected or why not.
 *   smtpc_send()     one transaction; done() once per call, on a later loop turn at the
 *                    earliest, with one status per recipient. May be called again from done().
 *   smtpc_quit()     QUIT, then the client frees itself once the reply came (bounded).
 *   smtpc_free()     aborts at once.
 *
 * Ownership: the caller owns the client from smtpc_connect() until smtpc_quit() or smtpc_free(),
 * which it must call exactly once, also after a failed connect (from inside ready() or done() is
 * allowed). No callback runs after either, and none runs from inside a call into this module.
 * Everything the parameters and messages point to is copied: nothing needs to outlive the call.
 * The process must ignore SIGPIPE (the server does): a peer that closes while we write must not
 * kill the worker.
 *
 * Statuses (RFC 3463) the client decides itself, without a reply from the server:
 *   4.4.1  no answer from host: connection refused, unreachable, or connect timeout
 *   4.4.2  bad connection: timeout waiting for a reply, connection lost or broken, a reply that
 *          violates the protocol (including one over SMTPC_REPLY_MAX octets)
 *   4.4.4  unable to route: no address to try
 *   4.7.4  TLS required but not offered, or STARTTLS refused by the server
 *   4.7.5  TLS handshake or certificate verification failed (TLS required)
 *   4.3.0  the message body could not be read locally; nothing was delivered
 *   5.6.3  the message needs 8BITMIME, the server lacks it (no downgrade conversion)
 *   5.6.7  the message needs SMTPUTF8, the server lacks it (RFC 6531 3.5)
 *   5.3.4  the message is larger than the server's SIZE (RFC 1870)
 *   5.1.7  / 5.1.3  the sender / a recipient cannot be sent (control bytes, spaces, brackets
 *          or longer than SMTPC_ADDR_MAX): a caller's bug caught before it reaches the wire
 * Every status carries an SMTP code too; for local ones it is the code a server would have used
 * (421, 451, 552, 553, 554, 501) and `local` is set, so Diagnostic-Code can be left out. */
#ifndef MXG_SMTPC_H
#define MXG_SMTPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct smtpc;
struct event_base;
typedef struct ssl_ctx_st SSL_CTX;

/* Longest reply accepted, all lines together; more fails the connection (4.4.2). Lines longer
 * than RFC 5321's 512 octets are accepted below this. */
#define SMTPC_REPLY_MAX (64 * 1024)
/* Room for a status text: the reply's text lines joined with '\n', cut at this length. */
#define SMTPC_TEXT_MAX 1024
#define SMTPC_ENH_MAX 12 /* "5.123.456" and NUL */
#define SMTPC_ADDR_MAX 256 /* RFC 5321 4.5.3.1.3: a path, brackets included */
#define SMTPC_HOST_MAX 256
#define SMTPC_IP_MAX 46 /* INET6_ADDRSTRLEN */
#define SMTPC_TLS_SUMMARY_MAX 128

/* Extensions the server announced in its last EHLO reply (after STARTTLS: the second one). */
enum smtpc_ext {
	SMTPC_EXT_PIPELINING = 1 << 0,
	SMTPC_EXT_SIZE = 1 << 1,
	SMTPC_EXT_8BITMIME = 1 << 2,
	SMTPC_EXT_SMTPUTF8 = 1 << 3,
	SMTPC_EXT_DSN = 1 << 4,
	SMTPC_EXT_STARTTLS = 1 << 5,
	SMTPC_EXT_ENHANCEDSTATUSCODES = 1 << 6,
};

enum smtpc_tls_mode {
	SMTPC_TLS_NONE,          /* never STARTTLS */
	SMTPC_TLS_OPPORTUNISTIC, /* STARTTLS when offered, no verification; plain text otherwise,
				  * and after a failed handshake on a new connection in plain text */
	SMTPC_TLS_REQUIRED,      /* STARTTLS or fail (4.7.4 / 4.7.5) */
};

/* Timeouts in milliseconds; 0 takes the default. Defaults: RFC 5321 4.5.3.2 where it names one,
 * else Postfix's. */
struct smtpc_timeouts {
	unsigned connect_ms;    /* per address: 30 s */
	unsigned greeting_ms;   /* the 220: 5 min */
	unsigned ehlo_ms;       /* EHLO / HELO: 5 min */
	unsigned starttls_ms;   /* the STARTTLS reply, then the handshake: 5 min */
	unsigned mail_ms;       /* 5 min */
	unsigned rcpt_ms;       /* 5 min */
	unsigned data_init_ms;  /* the 354: 2 min */
	unsigned data_block_ms; /* no progress writing the body: 3 min */
	unsigned data_end_ms;   /* the reply after the final dot: 10 min */
	unsigned rset_ms;       /* 20 s */
	unsigned quit_ms;       /* lingering for the 221 after QUIT: 10 s */
};

struct smtpc_params {
	const char *helo_name;     /* our name in EHLO/HELO; required */
	const char *host_name;     /* the next hop's name, for ready() and logs; may be NULL */
	const char *log_id;        /* first field of our log lines (a queue id); may be NULL */
	enum smtpc_tls_mode tls;
	SSL_CTX *ssl_ctx;          /* a client context (TLS_client_method), referenced, not copied;
				    * NULL: opportunistic acts as NONE, required fails (4.7.5) */
	const char *tls_name;      /* SNI, and the name checked when verifying; may be NULL */
	int tls_verify;            /* with REQUIRED: verify the chain (the context's trust store)
				    * and tls_name (falls back to host_name) */
	struct smtpc_timeouts timeouts;
};

/* Fills p with the defaults: no TLS, every timeout at its default. */
void smtpc_params_init(struct smtpc_params *p);

/* The command a status answers, or the phase that failed. */
enum smtpc_stage {
	SMTPC_STAGE_CONNECT,
	SMTPC_STAGE_GREETING,
	SMTPC_STAGE_EHLO,
	SMTPC_STAGE_STARTTLS,
	SMTPC_STAGE_TLS,      /* the handshake */
	SMTPC_STAGE_MAIL,
	SMTPC_STAGE_RCPT,
	SMTPC_STAGE_DATA,     /* the reply to DATA */
	SMTPC_STAGE_BODY,     /* sending the body, and the reply after the final dot */
	SMTPC_STAGE_RSET,
	SMTPC_STAGE_LOCAL,    /* decided before anything was sent */
};

struct smtpc_status {
	char enh[SMTPC_ENH_MAX];   /* RFC 3463 code that decides: 2 delivered, 4 retry, 5 failed.
				    * The server's enhanced code when it sent one of the reply's
				    * class, else "C.0.0" from its reply code, else the client's */
	int code;                  /* the server's reply code, or the one a server would have used */
	int local;                 /* 1: decided by the client, no reply involved */
	enum smtpc_stage stage;
	char text[SMTPC_TEXT_MAX]; /* the server's text verbatim (lines joined with '\n', codes
				    * removed), or the client's explanation */
};

/* 2, 4 or 5: the class of s->enh. */
int smtpc_status_class(const struct smtpc_status *s);
const char *smtpc_stage_name(enum smtpc_stage stage);

/* ---- connect ----------------------------------------------------------------------------- */

enum smtpc_result {
	SMTPC_CONNECTED,
	SMTPC_ERR_CONNECT,     /* 4.4.1 / 4.4.4 */
	SMTPC_ERR_LOST,        /* 4.4.2: timeout, connection closed or protocol error */
	SMTPC_ERR_REFUSED,     /* greeting, EHLO or HELO answered other than 2xx: the server's
				* reply, its class turned to 4 (another host or a later try may do) */
	SMTPC_ERR_TLS,         /* 4.7.4 / 4.7.5 */
};

struct smtpc_ready_info {
	enum smtpc_result result;
	struct smtpc_status status;        /* why not; "2.0.0" when connected */
	char host[SMTPC_HOST_MAX];         /* params.host_name, "" without */
	char ip[SMTPC_IP_MAX];             /* the address reached (or the last one tried), "" without */
	uint16_t port;
	unsigned ext;                      /* enum smtpc_ext bits */
	uint64_t size_max;                 /* SIZE's number, 0 = none announced */
	int tls;                           /* the session is encrypted */
	int tls_verified;                  /* the chain and name were verified */
	char tls_summary[SMTPC_TLS_SUMMARY_MAX]; /* "TLSv1.3:TLS_AES_256_GCM_SHA384:256" or "" */
};

/* info is valid during the call only. On failure, free the client (from here is fine). */
typedef void smtpc_ready_fn(void *arg, struct smtpc *c, const struct smtpc_ready_info *info);

/* Starts connecting to addrs[0..naddrs) (AF_INET or AF_INET6, port set), in order, the next
 * one after a failure at any step before ready (connect, greeting, EHLO, TLS); the reported
 * failure is the last address's. Never returns NULL and never calls ready before returning. */
struct smtpc *smtpc_connect(struct event_base *base, const struct smtpc_params *p,
			    const struct sockaddr *addrs[], size_t naddrs, smtpc_ready_fn *ready,
			    void *arg);

/* ---- transactions ------------------------------------------------------------------------ */

enum smtpc_ret { SMTPC_RET_NONE, SMTPC_RET_FULL, SMTPC_RET_HDRS };
enum smtpc_notify {
	SMTPC_NOTIFY_NEVER = 1 << 0, /* alone */
	SMTPC_NOTIFY_SUCCESS = 1 << 1,
	SMTPC_NOTIFY_FAILURE = 1 << 2,
	SMTPC_NOTIFY_DELAY = 1 << 3,
};

struct smtpc_rcpt {
	const char *addr;  /* "user@domain", no brackets */
	unsigned notify;   /* enum smtpc_notify bits, 0 = not given */
	const char *orcpt; /* "rfc822;xtext" as received (RFC 3461 4.2), NULL = not given */
};

struct smtpc_msg {
	const char *sender;            /* "user@domain", "" for the null sender */
	const struct smtpc_rcpt *rcpts;
	size_t nrcpt;                  /* at least 1 */
	enum smtpc_ret ret;            /* DSN RET */
	const char *envid;             /* DSN ENVID as xtext, NULL = not given */
	int needs_8bitmime;
	int needs_smtputf8;
	uint64_t size;                 /* for SIZE; 0 = body_len */
	int body_fd;                   /* dup()ed: the caller may close it after smtpc_send */
	off_t body_off;
	uint64_t body_len;             /* dot-unstuffed, CRLF line ends, without the final dot */
	int rcpt_only;                 /* a recipient probe: MAIL and RCPT, never DATA (no body:
					* body_fd is not used), then QUIT; each recipient's status
					* is the reply to its RCPT (or to MAIL when that failed),
					* and the client is not reusable afterwards */
};

struct smtpc_sent {
	const struct smtpc_status *rcpt; /* one per recipient, in the order of smtpc_msg.rcpts */
	size_t nrcpt;
	int reusable;                    /* the client can carry another transaction */
};

/* sent is valid during the call only. */
typedef void smtpc_sent_fn(void *arg, struct smtpc *c, const struct smtpc_sent *sent);

/* Sends one message. Call only after a successful ready and when no transaction is running
 * (else abort: a bug). Parameters go out only for extensions the server announced: SIZE=,
 * BODY=8BITMIME, SMTPUTF8, RET, ENVID, NOTIFY, ORCPT. With PIPELINING, MAIL, every RCPT and DATA
 * leave in one write (RFC 2920); otherwise one command per reply. The reply to RCPT is the
 * recipient's status; the reply after the final dot is every accepted recipient's. A transaction
 * that ends before the final dot while the connection is sound (MAIL refused, no recipient
 * accepted, DATA refused) is followed by RSET before done(), so that done() finds the client
 * idle and clean. A timeout or a lost connection gives every recipient without a final status
 * 4.4.2, and the client is then not reusable; sending on such a client gives 4.4.2 at once. */
void smtpc_send(struct smtpc *c, const struct smtpc_msg *m, smtpc_sent_fn *done, void *arg);

/* Extensions of the connected server (enum smtpc_ext bits), 0 before ready. */
unsigned smtpc_extensions(const struct smtpc *c);
/* 1 when the client can carry a transaction now: connected, idle, connection sound. */
int smtpc_is_reusable(const struct smtpc *c);

/* ---- end ---------------------------------------------------------------------------------- */

/* When idle and sound: sends QUIT, then frees itself after the reply, the peer's close or
 * timeouts.quit_ms, on the loop (keep it running). Otherwise the same as smtpc_free().
 * Clears *c; NULL is fine. No callback runs after it. */
void smtpc_quit(struct smtpc **c);
/* Closes the connection at once, drops any transaction without calling its done(), frees.
 * Clears *c; NULL is fine. */
void smtpc_free(struct smtpc **c);

#endif
