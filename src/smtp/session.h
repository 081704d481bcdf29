/* session: one SMTP conversation, from accept (and PROXY header) to close. */
#ifndef MXG_SESSION_H
#define MXG_SESSION_H

#include <sys/socket.h>

struct server;

/* Starts a session on an accepted socket (takes fd). expect_proxy: the listener is marked
 * 'proxy', so a PROXY header must come first, and only from a proxy_from peer. */
void session_start(struct server *srv, int fd, const struct sockaddr *peer, int expect_proxy);

/* Shutdown: every open session gets "421 4.3.2" and is closed. */
void session_close_all(struct server *srv);

#endif
