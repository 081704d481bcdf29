/* queue: see queue.h.
 *
 * Group commit: while one batch is being synced on the background thread, newly committed
 * messages collect in `pending`; when the batch is done they all go in the next one. Under
 * load a batch holds every message that finished DATA during the previous sync, so the cost
 * of the directory fsync is shared and throughput does not collapse to one sync per message. */
#include "queue/queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "event/bgjob.h"
#include "queue/qfile.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* Message bytes are written in blocks of this size: few syscalls per message, bounded memory
 * per session. */
#define QUEUE_WRITE_BUFFER (64 * 1024)
/* Room left in a path for "/" and a queue id after the queue directory. */
#define QUEUE_DIR_MAX (PATH_MAX - 64)

struct queue {
	char tmp_dir[QUEUE_DIR_MAX];
	char in_dir[QUEUE_DIR_MAX];
	int in_dirfd;
	struct bgjob_queue *bg;
	struct queue_msg *pending, **pending_tail;
	int inflight;
	struct queue_stats stats;
};

struct queue_msg {
	struct queue *q;
	int fd;
	int err;
	char qid[QUEUE_ID_LEN + 1];
	uint64_t body_len;
	size_t blen;
	char *buf;
	queue_commit_fn *done;
	void *arg;
	struct queue_msg *next;
};

struct batch {
	struct queue *q;
	struct queue_msg *msgs;
};

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, mode) < 0 && errno != EEXIST ? -1 : 0;
}

struct queue *queue_open(const char *data_dir, struct bgjob_queue *bg)
{
	struct queue *q = xcalloc(1, sizeof(*q));

	snprintf(q->tmp_dir, sizeof(q->tmp_dir), "%s/queue/tmp", data_dir);
	snprintf(q->in_dir, sizeof(q->in_dir), "%s/queue/incoming", data_dir);
	if (mkdir_p(q->tmp_dir, 0700) < 0 || mkdir_p(q->in_dir, 0700) < 0)
		goto fail;
	q->in_dirfd = open(q->in_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->in_dirfd < 0)
		goto fail;
	q->bg = bg;
	q->pending_tail = &q->pending;
	return q;
fail:;
	int e = errno;
	free(q);
	errno = e;
	return NULL;
}

void queue_close(struct queue **qp)
{
	struct queue *q = *qp;

	if (!q)
		return;
	close(q->in_dirfd);
	free(q);
	*qp = NULL;
}

static void tmp_path(const struct queue *q, const char *qid, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", q->tmp_dir, qid);
}

static void msg_flush(struct queue_msg *m)
{
	size_t off = 0;

	while (!m->err && off < m->blen) {
		ssize_t n = write(m->fd, m->buf + off, m->blen - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			m->err = n < 0 ? errno : EIO;
		else
			off += (size_t)n;
	}
	m->blen = 0;
}

struct queue_msg *queue_msg_begin(struct queue *q, const struct queue_envelope *env)
{
	char path[PATH_MAX];
	struct queue_msg *m;
	size_t elen;
	char *env_rec;

	tmp_path(q, env->qid, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	m = xcalloc(1, sizeof(*m));
	m->q = q;
	m->fd = fd;
	snprintf(m->qid, sizeof(m->qid), "%s", env->qid);
	m->buf = xmalloc(QUEUE_WRITE_BUFFER);
	env_rec = qfile_envelope(env, &elen);
	queue_msg_write(m, env_rec, elen);
	m->body_len = 0; /* the envelope is not body */
	free(env_rec);
	return m;
}

void queue_msg_write(struct queue_msg *m, const void *buf, size_t len)
{
	const char *p = buf;

	m->body_len += len;
	while (len > 0 && !m->err) {
		size_t n = QUEUE_WRITE_BUFFER - m->blen;
		if (n > len)
			n = len;
		memcpy(m->buf + m->blen, p, n);
		m->blen += n;
		p += n;
		len -= n;
		if (m->blen == QUEUE_WRITE_BUFFER)
			msg_flush(m);
	}
}

int queue_msg_error(const struct queue_msg *m)
{
	return m->err;
}

static void msg_free(struct queue_msg *m)
{
	free(m->buf);
	free(m);
}

void queue_msg_abort(struct queue_msg **mp)
{
	struct queue_msg *m = *mp;
	char path[PATH_MAX];

	if (!m)
		return;
	close(m->fd);
	tmp_path(m->q, m->qid, path, sizeof(path));
	unlink(path);
	msg_free(m);
	*mp = NULL;
}

/* Background thread: make each file durable, move it into incoming/, sync the directory once.
 *
 * Writeback of every file in the batch is started first, so the disk sees all of it at once;
 * the first fdatasync then commits the journal transaction that holds every file's new size,
 * and the ones after it mostly find their data already on disk. One sync per batch, not per
 * message, is what keeps throughput from collapsing to the disk's fsync rate. */
static void batch_work(void *arg)
{
	struct batch *b = arg;
	struct queue *q = b->q;
	char from[PATH_MAX], to[PATH_MAX];
	int renamed = 0;

	for (struct queue_msg *m = b->msgs; m; m = m->next)
		if (!m->err)
			sync_file_range(m->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	for (struct queue_msg *m = b->msgs; m; m = m->next) {
		if (!m->err && fdatasync(m->fd) < 0)
			m->err = errno;
		if (close(m->fd) < 0 && !m->err)
			m->err = errno;
		m->fd = -1;
		tmp_path(q, m->qid, from, sizeof(from));
		snprintf(to, sizeof(to), "%s/%s", q->in_dir, m->qid);
		if (!m->err && rename(from, to) < 0)
			m->err = errno;
		if (m->err)
			unlink(from);
		else
			renamed++;
	}
	if (renamed && fsync(q->in_dirfd) < 0) {
		int e = errno;
		/* The renames may not survive a crash: withdraw them rather than acknowledge. */
		for (struct queue_msg *m = b->msgs; m; m = m->next) {
			if (m->err)
				continue;
			snprintf(to, sizeof(to), "%s/%s", q->in_dir, m->qid);
			unlink(to);
			m->err = e;
		}
	}
}

static void batch_start(struct queue *q);

static void batch_done(void *arg)
{
	struct batch *b = arg;
	struct queue *q = b->q;
	struct queue_msg *m = b->msgs, *next;

	q->stats.batches++;
	for (; m; m = next) {
		next = m->next;
		if (m->err) {
			q->stats.failed++;
			log_warn("qid=%s queue commit failed: %s", m->qid, strerror(m->err));
		} else {
			q->stats.committed++;
			q->stats.fsyncs++;
		}
		m->done(m->arg, m->err);
		msg_free(m);
	}
	free(b);
	q->inflight = 0;
	if (q->pending)
		batch_start(q);
}

static void batch_start(struct queue *q)
{
	struct batch *b = xmalloc(sizeof(*b));

	b->q = q;
	b->msgs = q->pending;
	q->pending = NULL;
	q->pending_tail = &q->pending;
	q->inflight = 1;
	bgjob_submit(q->bg, batch_work, batch_done, b);
}

void queue_msg_commit(struct queue_msg **mp, queue_commit_fn *done, void *arg)
{
	struct queue_msg *m = *mp;
	struct queue *q = m->q;
	char end[48];
	uint64_t body_len = m->body_len;

	*mp = NULL;
	queue_msg_write(m, end, qfile_end_record(end, sizeof(end), body_len));
	msg_flush(m);
	m->done = done;
	m->arg = arg;
	m->next = NULL;
	*q->pending_tail = m;
	q->pending_tail = &m->next;
	if (!q->inflight)
		batch_start(q);
}

void queue_get_stats(const struct queue *q, struct queue_stats *st)
{
	*st = q->stats;
}

int queue_clean_tmp(const char *data_dir, unsigned *removed_r)
{
	char dir[QUEUE_DIR_MAX], path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d;

	*removed_r = 0;
	snprintf(dir, sizeof(dir), "%s/queue/tmp", data_dir);
	if (mkdir_p(dir, 0700) < 0 || !(d = opendir(dir)))
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (!id_queue_valid(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) == 0)
			(*removed_r)++;
	}
	closedir(d);
	return 0;
}
