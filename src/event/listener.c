/* listener: see listener.h. */
#include "event/listener.h"

#include <errno.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xmalloc.h"

#define LISTEN_BACKLOG 1024

struct listener {
	struct evconnlistener *ev;
	int tag;
	listener_accept_cb *cb;
	void *arg;
};

int listener_bind(const char *host, uint16_t port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res;
	char portstr[8];
	int fd, one = 1, rc;

	snprintf(portstr, sizeof(portstr), "%u", port);
	if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	rc = errno;
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	errno = rc;
	return -1;
}

static void on_accept(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *peer,
		      int len, void *arg)
{
	struct listener *l = arg;
	struct sockaddr_storage local;
	socklen_t llen = sizeof(local);

	(void)ev;
	if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
		memset(&local, 0, sizeof(local));
	l->cb(fd, peer, (socklen_t)len, (struct sockaddr *)&local, l->tag, l->arg);
}

static void on_accept_error(struct evconnlistener *ev, void *arg)
{
	(void)ev;
	(void)arg;
	/* EMFILE and friends: the listener keeps going; the next accept may succeed. */
	log_warn("listener accept error: %s", strerror(errno));
}

struct listener *listener_new(struct event_base *base, int fd, int tag, listener_accept_cb *cb,
			      void *arg)
{
	struct listener *l = xcalloc(1, sizeof(*l));

	l->tag = tag;
	l->cb = cb;
	l->arg = arg;
	l->ev = evconnlistener_new(base, on_accept, l, LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (!l->ev) {
		free(l);
		return NULL;
	}
	evconnlistener_set_error_cb(l->ev, on_accept_error);
	return l;
}

void listener_free(struct listener **lp)
{
	if (!*lp)
		return;
	evconnlistener_free((*lp)->ev);
	free(*lp);
	*lp = NULL;
}

void listener_pause(struct listener *l)
{
	evconnlistener_disable(l->ev);
}

void listener_resume(struct listener *l)
{
	evconnlistener_enable(l->ev);
}
