/* privs: see privs.h. */
#include "util/privs.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Open descriptors nftw may use while walking data_dir. */
#define OWN_TREE_FDS 16

int privs_lookup(const char *name, struct privs_user *u, char *err, size_t errsz)
{
	struct passwd *pw;

	errno = 0;
	if (!(pw = getpwnam(name))) {
		snprintf(err, errsz, "user '%s' does not exist: create it (make run does: useradd "
			 "--system --no-create-home --shell /usr/sbin/nologin %s) or set [server] user",
			 name, name);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errsz, "[server] user '%s' is root: the gateway never runs as root", name);
		return -1;
	}
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	snprintf(u->name, sizeof(u->name), "%s", name);
	return 0;
}

/* nftw passes no user pointer: the walk's owner lives here for its duration. */
static const struct privs_user *walk_user;
static int walk_errno;

static int own_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type == FTW_SL || type == FTW_SLN)
		return 0; /* a link is never followed nor given away */
	if ((st->st_uid != walk_user->uid || st->st_gid != walk_user->gid) &&
	    lchown(path, walk_user->uid, walk_user->gid) < 0) {
		walk_errno = errno;
		return 1;
	}
	if ((st->st_mode & 077) && chmod(path, st->st_mode & 07700) < 0) {
		walk_errno = errno;
		return 1;
	}
	return 0;
}

int privs_own_tree(const char *dir, const struct privs_user *u, char *err, size_t errsz)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errsz, "cannot create data_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	walk_user = u;
	walk_errno = 0;
	if (nftw(dir, own_one, OWN_TREE_FDS, FTW_PHYS | FTW_MOUNT) != 0) {
		snprintf(err, errsz, "cannot give %s to user %s: %s", dir, u->name,
			 strerror(walk_errno ? walk_errno : errno));
		return -1;
	}
	return 0;
}

int privs_drop(const struct privs_user *u, char *err, size_t errsz)
{
	if (setgroups(0, NULL) < 0 || setgid(u->gid) < 0 || setuid(u->uid) < 0) {
		snprintf(err, errsz, "cannot become user %s: %s", u->name, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		snprintf(err, errsz, "still able to become root after dropping to %s", u->name);
		return -1;
	}
	return 0;
}

int privs_become_owner(const char *dir, char *err, size_t errsz)
{
	struct stat st;
	struct passwd *pw;

	if (geteuid() != 0 || stat(dir, &st) < 0 || st.st_uid == 0)
		return 0;
	struct privs_user u = { .uid = st.st_uid, .gid = st.st_gid };
	pw = getpwuid(st.st_uid);
	snprintf(u.name, sizeof(u.name), "%s", pw ? pw->pw_name : "owner of data_dir");
	return privs_drop(&u, err, errsz);
}
