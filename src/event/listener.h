/* listener: listening sockets and the accept loop.
 *
 * Sockets are bound by the master before it forks, one per worker and address, all with
 * SO_REUSEPORT, so the kernel spreads new connections over the workers and a later privilege
 * drop does not stop a worker from having its port. */
#ifndef MXG_LISTENER_H
#define MXG_LISTENER_H

#include <stdint.h>
#include <sys/socket.h>

struct event_base;
struct listener;

/* Binds and listens on host:port (numeric IPv4/IPv6 or a name); returns a non-blocking fd or -1
 * with errno set. */
int listener_bind(const char *host, uint16_t port);

typedef void listener_accept_cb(int fd, const struct sockaddr *peer, socklen_t len,
				const struct sockaddr *local, int tag, void *arg);
/* Accepts on fd from the loop; calls cb with each new non-blocking socket. tag is passed back
 * (the index of the listen spec). */
struct listener *listener_new(struct event_base *base, int fd, int tag, listener_accept_cb *cb,
			      void *arg);
void listener_free(struct listener **l);
void listener_pause(struct listener *l);
void listener_resume(struct listener *l);

#endif
