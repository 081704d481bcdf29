/* conn: one client connection as seen by protocol code, over a libevent bufferevent and, after
 * STARTTLS, OpenSSL. Protocol code (smtp/) never includes libevent; it gets one callback with
 * an event code and uses the verbs below.
 *
 * Ownership: the creator owns the conn and ends it with conn_free() or conn_free_after_flush();
 * the callback is never called after either. Freeing from inside the callback is allowed. */
#ifndef MXG_CONN_H
#define MXG_CONN_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct event_base;
typedef struct ssl_ctx_st SSL_CTX;

enum conn_event {
	CONN_EV_READ,    /* new input is buffered */
	CONN_EV_TIMEOUT, /* no input (or no output progress) within the timeout */
	CONN_EV_EOF,     /* the peer closed its side */
	CONN_EV_ERROR,   /* socket or TLS error; the connection is unusable */
};

typedef void conn_cb(struct conn *c, enum conn_event ev, void *arg);

/* Wraps an accepted, non-blocking socket; takes ownership of fd. */
struct conn *conn_new(struct event_base *base, int fd, conn_cb *cb, void *arg);
void conn_free(struct conn **c);
/* Stops reading, lets buffered output drain (bounded by the last timeout), then frees itself. */
void conn_free_after_flush(struct conn **c);

/* Connections of this process still flushing their last reply after conn_free_after_flush. */
unsigned conn_lingering_count(void);

/* Sets the timeouts (0 = none): input must arrive within this time from now, however it
 * trickles in (a deadline, renewed only by calling this again), and each write must make
 * progress within it. CONN_EV_TIMEOUT when either runs out. */
void conn_set_timeout(struct conn *c, unsigned seconds);
void conn_set_timeout_ms(struct conn *c, unsigned ms);
void conn_pause_read(struct conn *c);
void conn_resume_read(struct conn *c);

enum conn_line {
	CONN_LINE_AGAIN = 0,  /* no complete line yet */
	CONN_LINE_OK = 1,     /* one line copied, terminator removed */
	CONN_LINE_TOOLONG = 2 /* more than maxlen bytes without LF (nothing consumed) */
};
/* Copies the next line, up to and including LF, of at most maxlen bytes (terminator included)
 * into buf without its CRLF or LF, NUL-terminated; *len_r is its length, *crlf_r tells whether
 * it ended in CRLF. bufsz must exceed maxlen. */
enum conn_line conn_read_line(struct conn *c, size_t maxlen, char *buf, size_t bufsz,
			      size_t *len_r, int *crlf_r);
/* Discards input up to and including the next LF; returns 1 if an LF was found. */
int conn_skip_line(struct conn *c);
size_t conn_input_len(const struct conn *c);
/* Returns a pointer to the first contiguous block of input (its length in *len_r, 0 when empty);
 * valid until the next call on c. */
const char *conn_peek(struct conn *c, size_t *len_r);
/* Makes the first n bytes contiguous (n <= input length) and returns them. */
const uint8_t *conn_pullup(struct conn *c, size_t n);
void conn_drain(struct conn *c, size_t n);
/* Discards all buffered input: what a client pipelined behind STARTTLS must never be executed. */
void conn_discard_input(struct conn *c);

void conn_write(struct conn *c, const void *buf, size_t len);
size_t conn_output_len(const struct conn *c);

/* Starts a server-side TLS handshake over the connection, after discarding buffered input.
 * Output written before the call (the 220 reply) still goes out in clear text first.
 * Returns 0, or -1 when TLS cannot be set up (the connection should be closed). */
int conn_starttls(struct conn *c, SSL_CTX *ctx);
int conn_is_tls(const struct conn *c);
/* "TLSv1.3:TLS_AES_256_GCM_SHA384:256" or "" without TLS; valid while c lives. */
const char *conn_tls_summary(struct conn *c, char *buf, size_t bufsz);

/* Names of the client's certificate when its chain verified (subjectAltName DNS names, else
 * the subject CN), at most max, each copied into names[i] (size CONN_TLS_NAME_MAX). Returns
 * the count; 0 without TLS, without a certificate, or when the chain did not verify. */
#define CONN_TLS_NAME_MAX 256
size_t conn_tls_peer_names(struct conn *c, char (*names)[CONN_TLS_NAME_MAX], size_t max);

#endif
