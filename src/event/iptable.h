/* iptable: per-client counters shared by every worker process (Postfix's anvil, without a
 * server): concurrent sessions and new connections per minute of each client address.
 *
 * The master creates the table in shared memory before it forks; each process is a "column"
 * and counts its own sessions, so that when a process dies the master can drop its sessions
 * with iptable_forget_column() without touching anyone else's. Memory is fixed at creation:
 * 8-way buckets, slots with no sessions are reused oldest first; when a bucket holds only
 * clients with live sessions, a new client is not tracked (the limits then fail open). */
#ifndef MXG_IPTABLE_H
#define MXG_IPTABLE_H

#include <time.h>

#include "util/addr.h"

struct iptable;

/* Room for at least `clients` addresses, counted in `columns` processes. NULL on failure. */
struct iptable *iptable_create(unsigned clients, unsigned columns);
void iptable_destroy(struct iptable **t);

/* What a new connection of a client finds, itself included. */
struct iptable_count {
	unsigned sessions;     /* concurrent sessions, all columns */
	unsigned per_minute;   /* connections in the last 60 s (sliding window estimate) */
	int tracked;           /* 0: the table had no room; the counts are 0 */
};

#define IPTABLE_UNTRACKED (-1)

/* Counts a new connection (key: ip, already reduced to the prefix that is counted) in column
 * col at time now. Returns a handle for iptable_disconnect, or IPTABLE_UNTRACKED. */
int iptable_connect(struct iptable *t, unsigned col, const struct ip_addr *ip, time_t now,
		    struct iptable_count *count_r);
/* The session that iptable_connect() counted has ended. */
void iptable_disconnect(struct iptable *t, unsigned col, int handle);
/* The process using column col is gone: its sessions no longer count. */
void iptable_forget_column(struct iptable *t, unsigned col);

/* ip reduced to the counted prefix: IPv4 whole, IPv6 to its first v6_prefix bits. */
void iptable_key(const struct ip_addr *ip, unsigned v6_prefix, struct ip_addr *key_r);

#endif
