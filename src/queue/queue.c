/* queue: see queue.h.
 *
 * Spare files: creating and deleting an inode per message was the most expensive thing a
 * worker did (docs/performance.md: on ext4 inode allocation scans past every inode freed in the
 * last minute), so queue files are reused. A slot's files live in tmp/SLOT/ and a commit links
 * the file into incoming/ under the message's id, keeping its name in tmp/SLOT/: while the
 * message is queued the file has two links, and when the queue manager is done it removes
 * its incoming/ name, which frees nothing and leaves a spare, a file of tmp/SLOT/ with one
 * link. The slot's stock is a ring of its names, each committed name going to the back, so
 * by the time it comes round again its message is normally delivered; one found still linked
 * goes to the back again. A name that finds the stock full at its commit is removed (the
 * message keeps its incoming/ one): a backlog does not grow tmp/SLOT/ past the stock's
 * bound. A file whose writer's name is gone goes to pool/ when delivered, and a slot whose
 * stock runs low claims from pool/ on its background thread (a rename into its own
 * directory). A new message overwrites a spare from its start and cuts what is left of the old
 * content before the sync: the file keeps its blocks, so a message of similar size allocates
 * and frees nothing. A spare is never read as a message: only incoming/ is.
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
/* A slot claims spares from pool/ when its stock falls below QUEUE_STOCK_LOW, up to this many
 * at a time; it keeps at most QUEUE_STOCK_MAX (more left by a previous process are removed).
 * The low mark is above the messages a worker has in flight at 100 sessions, so that a burst
 * does not empty the stock before the refill is back. */
#define QUEUE_STOCK_LOW 64
#define QUEUE_STOCK_BATCH 128
#define QUEUE_STOCK_MAX 256
/* After a refill that found pool/ short, this many new files are created before the next try:
 * while pool/ is empty, one directory read per few messages, not per message. Kept short: a
 * new file costs far more than a directory read (docs/performance.md). */
#define QUEUE_REFILL_PAUSE 8
/* Names of queued files (still linked in incoming/) a new message looks past before it takes
 * a new file: each costs an open and a stat; the stock grows instead. */
#define QUEUE_BUSY_PROBES 2
/* pool/ holds at most this many files, each at most QUEUE_RECYCLE_MAX bytes (bigger ones are
 * removed): a bound on the disk that spares keep, 256 MiB at worst, ~5 MiB for 5 KB mail. Its
 * size is counted again after QUEUE_POOL_RECOUNT retirements once the estimate is at the bound
 * (workers take files out unseen). */
#define QUEUE_POOL_MAX 1024
#define QUEUE_RECYCLE_MAX (256 * 1024)
#define QUEUE_POOL_RECOUNT 64

typedef char spare_name[QUEUE_ID_LEN + 1];

struct queue {
	char slot_dir[QUEUE_DIR_MAX]; /* tmp/SLOT: this process's files, written or spare */
	char in_dir[QUEUE_DIR_MAX];
	char pool_dir[QUEUE_DIR_MAX];
	int in_dirfd;
	struct bgjob_queue *bg;
	struct queue_msg *pending, **pending_tail;
	int inflight;
	spare_name *stock; /* a ring: nstock names from stock_head on */
	size_t stock_head, nstock;
	int refilling;
	unsigned refill_pause;
	/* queue_retire's estimate of pool/'s size; background thread only */
	unsigned pool_files, retired_since_count;
	struct queue_stats stats;
};

struct queue_msg {
	struct queue *q;
	int fd;
	int err;
	char qid[QUEUE_ID_LEN + 1];
	spare_name name;   /* the file's name in slot_dir, kept after the commit links it */
	off_t spare_size;  /* what the reused file held before: cut to file_len at commit */
	uint64_t file_len; /* bytes written */
	uint64_t body_len;
	size_t blen;
	char *buf;
	int linked;        /* the commit linked it into incoming/ (it may have been withdrawn) */
	queue_commit_fn *done;
	void *arg;
	struct queue_msg *next;
};

struct batch {
	struct queue *q;
	struct queue_msg *msgs;
};

struct refill {
	struct queue *q;
	size_t want, got;
	spare_name names[QUEUE_STOCK_BATCH];
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

static unsigned count_files(const char *dir)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += id_queue_valid(de->d_name);
	closedir(d);
	return n;
}

/* Appends a name to the stock; -1 when it is full. */
static int stock_push(struct queue *q, const char *name)
{
	if (q->nstock >= QUEUE_STOCK_MAX)
		return -1;
	memcpy(q->stock[(q->stock_head + q->nstock++) % QUEUE_STOCK_MAX], name, sizeof(spare_name));
	return 0;
}

/* Takes the name at the front of a stock that is not empty. */
static void stock_pop(struct queue *q, char *name)
{
	memcpy(name, q->stock[q->stock_head], sizeof(spare_name));
	q->stock_head = (q->stock_head + 1) % QUEUE_STOCK_MAX;
	q->nstock--;
}

/* Takes the spares a previous process in this slot left (one may be a message half written when
 * it died: a spare like the others) within the bounds of spares: at most QUEUE_STOCK_MAX of at
 * most QUEUE_RECYCLE_MAX bytes; removes the rest. Runs before the loop. */
static void stock_adopt(struct queue *q)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	DIR *d = opendir(q->slot_dir);

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (!id_queue_valid(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", q->slot_dir, de->d_name);
		/* a name still linked in incoming/ is taken too: msg_open looks before writing */
		if (!(stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size <= QUEUE_RECYCLE_MAX &&
		      stock_push(q, de->d_name) == 0))
			unlink(path);
	}
	closedir(d);
}

struct queue *queue_open(const char *data_dir, unsigned slot, struct bgjob_queue *bg)
{
	struct queue *q = xcalloc(1, sizeof(*q));

	snprintf(q->slot_dir, sizeof(q->slot_dir), "%s/queue/tmp/%u", data_dir, slot);
	snprintf(q->in_dir, sizeof(q->in_dir), "%s/queue/incoming", data_dir);
	snprintf(q->pool_dir, sizeof(q->pool_dir), "%s/queue/pool", data_dir);
	if (mkdir_p(q->slot_dir, 0700) < 0 || mkdir_p(q->in_dir, 0700) < 0 ||
	    mkdir_p(q->pool_dir, 0700) < 0)
		goto fail;
	q->in_dirfd = open(q->in_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->in_dirfd < 0)
		goto fail;
	q->bg = bg;
	q->pending_tail = &q->pending;
	q->stock = xcalloc(QUEUE_STOCK_MAX, sizeof(*q->stock));
	stock_adopt(q);
	q->pool_files = count_files(q->pool_dir);
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
	free(q->stock);
	free(q);
	*qp = NULL;
}

static void slot_path(const struct queue *q, const char *name, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", q->slot_dir, name);
}

/* Background thread: claim spares from pool/. Another worker may take a file first (its
 * rename wins, ours finds nothing): that name is skipped. */
static void refill_work(void *arg)
{
	struct refill *r = arg;
	char from[PATH_MAX], to[PATH_MAX];
	struct dirent *de;
	DIR *d = opendir(r->q->pool_dir);

	if (!d)
		return;
	while (r->got < r->want && (de = readdir(d)) != NULL) {
		if (!id_queue_valid(de->d_name))
			continue;
		snprintf(from, sizeof(from), "%s/%s", r->q->pool_dir, de->d_name);
		slot_path(r->q, de->d_name, to, sizeof(to));
		if (rename(from, to) < 0)
			continue;
		memcpy(r->names[r->got++], de->d_name, sizeof(spare_name));
	}
	closedir(d);
}

static void refill_done(void *arg)
{
	struct refill *r = arg;
	struct queue *q = r->q;

	/* names that find no room (aborts filled the stock meanwhile) stay in slot_dir, unused
	 * until the next process in this slot adopts them */
	for (size_t i = 0; i < r->got && stock_push(q, r->names[i]) == 0; i++)
		;
	q->stats.spares_claimed += r->got;
	if (r->got < r->want)
		q->refill_pause = QUEUE_REFILL_PAUSE;
	q->refilling = 0;
	free(r);
}

static void stock_refill(struct queue *q)
{
	struct refill *r;

	if (q->refilling || q->nstock >= QUEUE_STOCK_LOW)
		return;
	if (q->refill_pause > 0) {
		q->refill_pause--;
		return;
	}
	r = xcalloc(1, sizeof(*r));
	r->q = q;
	r->want = QUEUE_STOCK_BATCH;
	if (r->want > QUEUE_STOCK_MAX - q->nstock)
		r->want = QUEUE_STOCK_MAX - q->nstock;
	q->refilling = 1;
	bgjob_submit(q->bg, refill_work, refill_done, r);
}

/* The file for a new message: a spare when there is one (no inode allocated), else a new file
 * named after the message. Only a file with one link is a spare: two mean its message is
 * still in incoming/, and writing it would destroy a queued message. At most
 * QUEUE_BUSY_PROBES such names are looked at per message: the stock grows instead (the new
 * file joins it), until its front is usually delivered. */
static int msg_open(struct queue *q, struct queue_msg *m)
{
	char path[PATH_MAX];
	struct stat sb;
	unsigned busy = 0;
	size_t probes = q->nstock;
	int fd;

	while (probes-- > 0 && busy < QUEUE_BUSY_PROBES) {
		stock_pop(q, m->name);
		slot_path(q, m->name, path, sizeof(path));
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone: forgotten */
		int known = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
		if (known && sb.st_nlink == 1) {
			m->spare_size = sb.st_size;
			q->stats.spares_used++;
			stock_refill(q);
			return fd;
		}
		close(fd);
		if (known) {
			/* queued: to the back (there is room: it was just taken out) */
			stock_push(q, m->name);
			q->stats.spares_busy++;
			busy++;
		}
	}
	stock_refill(q);
	memcpy(m->name, m->qid, sizeof(spare_name));
	slot_path(q, m->name, path, sizeof(path));
	return open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
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
	m->file_len += off;
	m->blen = 0;
}

struct queue_msg *queue_msg_begin(struct queue *q, const struct queue_envelope *env)
{
	struct queue_msg *m = xcalloc(1, sizeof(*m));
	size_t elen;
	char *env_rec;

	m->q = q;
	snprintf(m->qid, sizeof(m->qid), "%s", env->qid);
	m->fd = msg_open(q, m);
	if (m->fd < 0) {
		int e = errno;
		free(m);
		errno = e;
		return NULL;
	}
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
	if (m->file_len <= QUEUE_RECYCLE_MAX && m->spare_size <= QUEUE_RECYCLE_MAX &&
	    stock_push(m->q, m->name) == 0) {
		/* a spare again */
	} else {
		slot_path(m->q, m->name, path, sizeof(path));
		unlink(path);
	}
	msg_free(m);
	*mp = NULL;
}

/* Background thread: make each file durable, link it into incoming/ (its tmp/SLOT name stays),
 * sync the directory once.
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
	int linked = 0;

	for (struct queue_msg *m = b->msgs; m; m = m->next) {
		off_t len = (off_t)m->file_len;
		if (!m->err && m->spare_size > len && ftruncate(m->fd, len) < 0)
			m->err = errno;
		if (!m->err)
			sync_file_range(m->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	}
	for (struct queue_msg *m = b->msgs; m; m = m->next) {
		if (!m->err && fdatasync(m->fd) < 0)
			m->err = errno;
		if (close(m->fd) < 0 && !m->err)
			m->err = errno;
		m->fd = -1;
		slot_path(q, m->name, from, sizeof(from));
		snprintf(to, sizeof(to), "%s/%s", q->in_dir, m->qid);
		if (!m->err && link(from, to) < 0)
			m->err = errno;
		if (m->err)
			unlink(from);
		else
			linked = m->linked = 1;
	}
	if (linked && fsync(q->in_dirfd) < 0) {
		int e = errno;
		/* The links may not survive a crash: withdraw them rather than acknowledge (the
		 * files are spares again). */
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

/* A committed file's name goes to the back of the stock: a spare once its message is
 * delivered. With the stock full, or for a file too big to keep as a spare, the name goes (the
 * message keeps its incoming/ one). */
static void stock_return(struct queue *q, const char *name, uint64_t file_len)
{
	char path[PATH_MAX];

	if (file_len <= QUEUE_RECYCLE_MAX && stock_push(q, name) == 0)
		return;
	slot_path(q, name, path, sizeof(path));
	unlink(path);
}

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
		if (m->linked)
			stock_return(q, m->name, m->file_len);
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

/* Whether pool/ takes one more file. The count is an estimate (workers take files out unseen),
 * so it is counted again when it says full, once per QUEUE_POOL_RECOUNT retirements. */
static int pool_has_room(struct queue *q)
{
	if (q->pool_files < QUEUE_POOL_MAX)
		return 1;
	if (++q->retired_since_count >= QUEUE_POOL_RECOUNT) {
		q->retired_since_count = 0;
		q->pool_files = count_files(q->pool_dir);
	}
	return q->pool_files < QUEUE_POOL_MAX;
}

/* A file no process keeps: into pool/ under the same name when keep says it fits there,
 * else removed. */
static void pool_put(const char *path, const char *pool_dir, const char *name, int keep,
		     unsigned *pool_files)
{
	char to[PATH_MAX];

	snprintf(to, sizeof(to), "%s/%s", pool_dir, name);
	if (keep && rename(path, to) == 0)
		(*pool_files)++;
	else
		unlink(path);
}

void queue_retire(struct queue *q, const char *qid, uint64_t size, unsigned links)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", q->in_dir, qid);
	/* the writer's tmp/SLOT name holds the file too: removing ours leaves it a spare there */
	if (links > 1) {
		unlink(path);
		return;
	}
	pool_put(path, q->pool_dir, qid, size <= QUEUE_RECYCLE_MAX && pool_has_room(q),
		 &q->pool_files);
}

/* A slot number as a directory name: decimal digits only, no leading zero. */
static int slot_dir_name(const char *name, unsigned *slot_r)
{
	char *end;
	unsigned long v;

	if (name[0] < '0' || name[0] > '9' || (name[0] == '0' && name[1]))
		return 0;
	errno = 0;
	v = strtoul(name, &end, 10);
	if (*end || errno || v > UINT_MAX)
		return 0;
	*slot_r = (unsigned)v;
	return 1;
}

/* The directory of a slot no process will have: its spares go to pool/ while it has room (the
 * bounds of queue_retire), the rest is removed, then the directory. */
static void slot_dir_retire(const char *dir, const char *pool_dir, unsigned *pool_files)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat sb;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		/* a file with two links is a queued message: only this name of it goes */
		pool_put(path, pool_dir, de->d_name,
			 id_queue_valid(de->d_name) && *pool_files < QUEUE_POOL_MAX &&
			 lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_nlink == 1 &&
			 sb.st_size <= QUEUE_RECYCLE_MAX, pool_files);
	}
	closedir(d);
	rmdir(dir);
}

int queue_clean_tmp(const char *data_dir, unsigned nslots, unsigned *removed_r)
{
	char dir[QUEUE_DIR_MAX], pool_dir[QUEUE_DIR_MAX], path[PATH_MAX + 256];
	struct dirent *de;
	struct stat sb;
	unsigned slot, pool_files;
	DIR *d;

	*removed_r = 0;
	snprintf(dir, sizeof(dir), "%s/queue/tmp", data_dir);
	snprintf(pool_dir, sizeof(pool_dir), "%s/queue/pool", data_dir);
	if (mkdir_p(dir, 0700) < 0 || mkdir_p(pool_dir, 0700) < 0 || !(d = opendir(dir)))
		return -1;
	pool_files = count_files(pool_dir);
	while ((de = readdir(d)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &sb) < 0)
			continue;
		/* a file directly in tmp/ is a message of the layout before slot directories, never
		 * finished; tmp/SLOT/ holds spares (whatever they hold: nothing reads them) */
		if (S_ISREG(sb.st_mode) && id_queue_valid(de->d_name) && unlink(path) == 0)
			(*removed_r)++;
		else if (S_ISDIR(sb.st_mode) && slot_dir_name(de->d_name, &slot) && slot >= nslots)
			slot_dir_retire(path, pool_dir, &pool_files);
	}
	closedir(d);
	return 0;
}
