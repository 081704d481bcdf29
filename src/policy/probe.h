/* probe: recipient probes of a tenant's own server (recipient check "probe",
 * docs/policy-precedence.md rule 3a), one service per worker, on the worker's loop.
 *
 * A probe resolves the route's host, connects with smtpc (STARTTLS as the route's TLS mode
 * says), sends EHLO, MAIL FROM:<> and RCPT TO:<address>, then QUIT: never DATA. The reply to
 * RCPT is the answer: 2xx accepted, 5xx refused; anything else (4xx, MAIL refused, no
 * connection, TLS failure, no answer within [policy] probe_timeout_ms) is a failed probe, which
 * the engine turns into 451 4.4.3, never a 550. Definite answers are cached (probe_cache.h);
 * failed ones are not. Every probe is logged at info with the address and the server's reply
 * code; the server's name and reply go to the log and the trace only, never into a reply to
 * the client.
 *
 * Concurrent checks of the same address at the same tenant share one probe; at most
 * PROBE_MAX_INFLIGHT probes run at once per worker, a check beyond that fails at once (the
 * tenant's server is not flooded by a dictionary attack). */
#ifndef MXG_POLICY_PROBE_H
#define MXG_POLICY_PROBE_H

#include "policy/engine.h"

struct config;
struct event_base;
struct probe;
struct probe_req;

#define PROBE_MAX_INFLIGHT 64
/* DNS for the route's host: first try's timeout and tries (c-ares doubles per round); the
 * probe's own deadline bounds the whole anyway. */
#define PROBE_DNS_TIMEOUT_MS 1000
#define PROBE_DNS_TRIES 2

/* What to probe. Everything is copied. */
struct probe_target {
	const char *tenant; /* the tenant's name */
	const char *route;  /* its route spec: "HOST:PORT" or "HOST:PORT tls=required|verify" */
	const char *rcpt;   /* the address as the client sent it, without brackets */
	const char *log_id; /* the asking session's id, first field of the log line; may be NULL */
};

/* answer is valid during the call only. */
typedef void probe_done_fn(void *arg, const struct engine_probe *answer);

/* The resolver (cfg->resolver) and the client TLS context are made at the first probe, so a
 * worker whose tenants never probe pays nothing. Never NULL. */
struct probe *probe_new(struct event_base *base, const struct config *cfg);
/* Ends every probe in flight without calling any done(); callers must have cancelled theirs
 * or be gone. Clears *p; NULL is fine. */
void probe_free(struct probe **p);

/* Either answers at once, returning 1 with *answer_r filled: from the cache, or failed when no
 * probe can be made (too many in flight, a route that does not parse, no resolver). Or starts
 * (or joins) a probe, returning 0 with *req_r set: done(arg, answer) then runs exactly once, on
 * a later loop turn, unless probe_cancel(req_r) comes first. */
int probe_check(struct probe *p, const struct probe_target *t, struct engine_probe *answer_r,
		probe_done_fn *done, void *arg, struct probe_req **req_r);
/* Forgets a pending check: its done() never runs. The probe itself goes on (its answer is
 * still cached). Clears *req; NULL is fine. */
void probe_cancel(struct probe_req **req);

/* Probes in flight (for tests and logs). */
unsigned probe_inflight(const struct probe *p);

#endif
