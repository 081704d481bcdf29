/* privs: running as the unprivileged mxgate user.
 *
 * `serve` started as root binds its ports and reads its TLS key, gives data_dir to the
 * configured user, then drops root for good (privs_drop); it refuses to run as root. Admin
 * commands started as root act as the owner of data_dir, so that every file in it stays that
 * user's (privs_become_owner). */
#ifndef MXG_PRIVS_H
#define MXG_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

#define PRIVS_ERR_MAX 512

struct privs_user {
	uid_t uid;
	gid_t gid;
	char name[64];
};

/* Looks up a user that may run the gateway (exists, not uid 0). 0 or -1 with the reason. */
int privs_lookup(const char *name, struct privs_user *u, char *err, size_t errsz);
/* Creates dir (0700) if missing and makes it and everything under it belong to u, with
 * group and other permissions removed. 0 or -1 with the reason. */
int privs_own_tree(const char *dir, const struct privs_user *u, char *err, size_t errsz);
/* Becomes u for good (groups, gid, uid) and checks that root cannot come back. */
int privs_drop(const struct privs_user *u, char *err, size_t errsz);
/* Root running an admin command: becomes the owner of dir when it exists and is not root's.
 * Returns 0 (also when nothing was to be done) or -1 with the reason. */
int privs_become_owner(const char *dir, char *err, size_t errsz);

#endif
