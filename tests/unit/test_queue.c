/* Unit tests for queue: commit on a real libevent loop and background thread, retire into
 * pool/, reuse of spare files (refilled from pool/, kept after an abort, adopted at open),
 * queue_clean_tmp at start, and the bound on pool/.
 *
 * A spare may still hold an older message's bytes (a pool/ file, an aborted message, a dead
 * process's leftover): whatever a test reuses, the committed file must hold exactly the new
 * message, with no tail of the old one. Each test has its own mkdtemp data directory; every
 * wait on the loop is bounded, so a lost callback fails the test instead of hanging it. The
 * constants of queue.c that shape the behaviour under test are private: they are mirrored
 * here, and a change there shows up as a failure here, on purpose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "event/bgjob.h"
#include "queue/qfile.h"
#include "queue/queue.h"
#include "util/ids.h"

#define PATH_LEN 512
#define SLOT 1
#define SLOT_DIR "tmp/1"
/* A wait on the loop longer than this is a lost callback. */
#define WAIT_LIMIT_S 5.0
/* The loop wakes this often while waiting, so the deadline is checked even if nothing happens. */
#define TICK_US 10000
/* Mirrors of queue.c (QUEUE_STOCK_*, QUEUE_REFILL_PAUSE, QUEUE_POOL_*, QUEUE_RECYCLE_MAX). */
#define STOCK_MAX 256
#define STOCK_BATCH 128
#define REFILL_PAUSE 8
#define POOL_MAX 1024
#define POOL_RECOUNT 64
#define RECYCLE_MAX (256 * 1024)

struct fixture {
	char root[64]; /* the mkdtemp directory, used as data_dir */
	struct event_base *base;
	struct event *tick;
	struct bgjob_queue *bg;
	struct queue *q; /* NULL until queue_open (tests that prepare tmp/ first open it later) */
};

static const struct queue_rcpt rcpt = { "someone@example.test", "default", "127.0.0.1:2600", "" };

/* ---- fixture ------------------------------------------------------------------------------ */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Loop, background thread and data directory, without a queue. */
static int setup_unopened(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct timeval tv = { 0, TICK_US };

	if (!f)
		return -1;
	strcpy(f->root, "/tmp/mxg_test_queue.XXXXXX");
	if (!mkdtemp(f->root) || !(f->base = event_base_new()))
		return -1;
	/* without a pending event, EVLOOP_ONCE would return at once and the waits would spin */
	f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, NULL);
	if (!f->tick || event_add(f->tick, &tv) < 0)
		return -1;
	f->bg = bgjob_new(f->base);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	struct fixture *f;

	if (setup_unopened(state) < 0)
		return -1;
	f = *state;
	f->q = queue_open(f->root, SLOT, f->bg);
	return f->q ? 0 : -1;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	/* bgjob_free runs the last done() callbacks, which use the queue: it goes first */
	bgjob_free(&f->bg);
	queue_close(&f->q);
	event_free(f->tick);
	event_base_free(f->base);
	nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the loop until *flag is set; fails after WAIT_LIMIT_S. */
static void run_until(struct fixture *f, const int *flag)
{
	double deadline = now_s() + WAIT_LIMIT_S;

	while (!*flag && now_s() < deadline)
		event_base_loop(f->base, EVLOOP_ONCE);
	if (!*flag)
		fail_msg("callback did not run within %.0f s", WAIT_LIMIT_S);
}

/* Runs the loop until no background job (commit or refill) is left; fails after WAIT_LIMIT_S. */
static void run_until_idle(struct fixture *f)
{
	double deadline = now_s() + WAIT_LIMIT_S;

	while (bgjob_pending(f->bg) > 0 && now_s() < deadline)
		event_base_loop(f->base, EVLOOP_ONCE);
	if (bgjob_pending(f->bg) > 0)
		fail_msg("%u background jobs still pending after %.0f s", bgjob_pending(f->bg),
			 WAIT_LIMIT_S);
}

/* data_dir/queue/SUB/NAME, or data_dir/queue/SUB when name is NULL. */
static void qpath(const struct fixture *f, const char *sub, const char *name, char *out)
{
	if (name)
		snprintf(out, PATH_LEN, "%s/queue/%s/%s", f->root, sub, name);
	else
		snprintf(out, PATH_LEN, "%s/queue/%s", f->root, sub);
}

static int exists(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0;
}

static struct stat stat_of(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) < 0)
		fail_msg("stat %s failed", path);
	return sb;
}

/* Queue-id-named files in data_dir/queue/SUB of at least min_size bytes. */
static unsigned count_files(const struct fixture *f, const char *sub, off_t min_size)
{
	char dir[PATH_LEN], path[PATH_LEN];
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	qpath(f, sub, NULL, dir);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (!id_queue_valid(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n += stat_of(path).st_size >= min_size;
	}
	closedir(d);
	return n;
}

static void write_file(const char *path, size_t size)
{
	char buf[4096];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	memset(buf, 'x', sizeof(buf));
	for (size_t left = size; left > 0;) {
		size_t n = left < sizeof(buf) ? left : sizeof(buf);
		assert_int_equal(write(fd, buf, n), (ssize_t)n);
		left -= n;
	}
	close(fd);
}

/* A test's own queue-id names (upper-case hex, like id_queue's), distinct per n. */
static void test_qid(char out[QUEUE_ID_LEN + 1], unsigned n)
{
	snprintf(out, QUEUE_ID_LEN + 1, "%020X", n);
}

/* n names in data_dir/queue/SUB, from test_qid(first) on, all links to one file of 100 bytes:
 * only names are counted, and a link costs a fraction of a new inode (~1.5 ms each on ext4). */
static void link_files(const struct fixture *f, const char *sub, unsigned first, unsigned n)
{
	char seed[PATH_LEN], name[QUEUE_ID_LEN + 1], path[PATH_LEN];

	snprintf(seed, sizeof(seed), "%s/seed", f->root);
	if (!exists(seed))
		write_file(seed, 100);
	for (unsigned i = first; i < first + n; i++) {
		test_qid(name, i);
		qpath(f, sub, name, path);
		assert_int_equal(link(seed, path), 0);
	}
}

static void make_env(struct queue_envelope *env, const char *qid)
{
	*env = (struct queue_envelope){
		.qid = qid,
		.arrival = 1795814900,
		.sid = "bh49jv5eftia",
		.client_ip = "192.0.2.7",
		.helo = "mail.example.org",
		.tls = "",
		.mail_from = "alice@example.org",
		.mail_params = "",
		.rcpts = &rcpt,
		.nrcpt = 1,
	};
}

/* A body of len bytes (len >= 2) that qfile accepts: ends in CRLF; fill tells bodies apart. */
static char *make_body(size_t len, char fill)
{
	char *b = malloc(len);

	assert_non_null(b);
	for (size_t i = 0; i < len; i++)
		b[i] = i % 78 == 77 ? '\n' : (i % 78 == 76 ? '\r' : fill);
	b[len - 2] = '\r';
	b[len - 1] = '\n';
	return b;
}

struct commit_wait {
	int done;
	int status;
};

static void on_commit(void *arg, int status)
{
	struct commit_wait *w = arg;

	w->done = 1;
	w->status = status;
}

/* Begins a message under a new id (qid_r). */
static struct queue_msg *begin_msg(struct fixture *f, char qid_r[QUEUE_ID_LEN + 1])
{
	struct queue_envelope env;
	struct queue_msg *m;

	id_queue(qid_r);
	make_env(&env, qid_r);
	m = queue_msg_begin(f->q, &env);
	assert_non_null(m);
	return m;
}

/* Writes body, commits and waits for the callback and for any refill the begin started. */
static void finish_msg(struct fixture *f, struct queue_msg *m, const char *body, size_t len)
{
	struct commit_wait w = { 0, -1 };

	queue_msg_write(m, body, len);
	queue_msg_commit(&m, on_commit, &w);
	assert_null(m);
	run_until(f, &w.done);
	assert_int_equal(w.status, 0);
	run_until_idle(f);
}

/* One whole message under a new id (qid_r), committed. */
static void commit_msg(struct fixture *f, char qid_r[QUEUE_ID_LEN + 1], const char *body,
		       size_t len)
{
	finish_msg(f, begin_msg(f, qid_r), body, len);
}

/* The size a complete file of qid with a body of body_len bytes has. */
static size_t file_size(const char *qid, size_t body_len)
{
	struct queue_envelope env;
	char end[48];
	size_t elen;
	char *e;

	make_env(&env, qid);
	e = qfile_envelope(&env, &elen);
	free(e);
	return elen + body_len + qfile_end_record(end, sizeof(end), body_len);
}

/* incoming/qid is a complete, valid file of exactly this message: nothing before or after. */
static void check_committed(const struct fixture *f, const char *qid, const char *body,
			    size_t len)
{
	char path[PATH_LEN];
	struct qfile_view v;
	const char *why = NULL;
	size_t size = file_size(qid, len);
	char *buf = malloc(size + 1);
	int fd;

	assert_non_null(buf);
	qpath(f, "incoming", qid, path);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	/* one byte more than expected is asked for: a stale tail would show here */
	assert_int_equal(read(fd, buf, size + 1), (ssize_t)size);
	close(fd);
	if (qfile_parse(buf, size, &v, &why) < 0)
		fail_msg("%s does not parse: %s", qid, why);
	assert_string_equal(v.qid, qid);
	assert_int_equal(v.nrcpt, 1);
	assert_int_equal(v.body_len, len);
	assert_memory_equal(v.body, body, len);
	free(buf);
}

static struct queue_stats stats(const struct fixture *f)
{
	struct queue_stats st;

	queue_get_stats(f->q, &st);
	return st;
}

/* ---- commit and retire -------------------------------------------------------------------- */

/* A body bigger than the 64 KiB write buffer reaches incoming/ whole. The file keeps its
 * tmp/SLOT name: one inode with two links while the message is queued. */
static void test_commit(void **state)
{
	struct fixture *f = *state;
	size_t len = 150000;
	char *body = make_body(len, 'c');
	char qid[QUEUE_ID_LEN + 1], in[PATH_LEN], mine[PATH_LEN];

	commit_msg(f, qid, body, len);
	check_committed(f, qid, body, len);
	assert_int_equal(count_files(f, "incoming", 0), 1);
	assert_int_equal(count_files(f, SLOT_DIR, 0), 1);
	qpath(f, "incoming", qid, in);
	qpath(f, SLOT_DIR, qid, mine); /* a new file is named after its first message */
	assert_int_equal(stat_of(mine).st_ino, stat_of(in).st_ino);
	assert_int_equal(stat_of(in).st_nlink, 2);
	assert_int_equal(stats(f).committed, 1);
	assert_int_equal(stats(f).failed, 0);
	assert_int_equal(stats(f).spares_used, 0); /* nothing to reuse in a new data dir */
	free(body);
}

/* A committed message's file: retiring it removes its incoming/ name only, and the file is a
 * spare of its slot (one link), nothing in pool/. A file with one link (its writer's name is
 * gone) moves to pool/ (the same inode); one bigger than RECYCLE_MAX is removed. */
static void test_retire(void **state)
{
	struct fixture *f = *state;
	char *body = make_body(500, 'r');
	char mine[QUEUE_ID_LEN + 1], small[QUEUE_ID_LEN + 1], edge[QUEUE_ID_LEN + 1];
	char big[QUEUE_ID_LEN + 1], in[PATH_LEN], pool[PATH_LEN], slot[PATH_LEN];
	ino_t ino;

	commit_msg(f, mine, body, 500);
	qpath(f, "incoming", mine, in);
	qpath(f, SLOT_DIR, mine, slot);
	ino = stat_of(in).st_ino;
	queue_retire(f->q, mine, (uint64_t)stat_of(in).st_size, (unsigned)stat_of(in).st_nlink);
	assert_false(exists(in));
	assert_int_equal(stat_of(slot).st_ino, ino);
	assert_int_equal(stat_of(slot).st_nlink, 1);
	assert_int_equal(count_files(f, "pool", 0), 0);

	test_qid(small, 1);
	qpath(f, "incoming", small, in);
	qpath(f, "pool", small, pool);
	write_file(in, 500);
	ino = stat_of(in).st_ino;
	queue_retire(f->q, small, 500, 1);
	assert_false(exists(in));
	assert_int_equal(stat_of(pool).st_ino, ino);

	/* the size the caller gives decides; the limit itself is still recycled */
	test_qid(edge, 2);
	qpath(f, "incoming", edge, in);
	write_file(in, 500);
	queue_retire(f->q, edge, RECYCLE_MAX, 1);
	qpath(f, "pool", edge, pool);
	assert_true(exists(pool));

	test_qid(big, 3);
	qpath(f, "incoming", big, in);
	write_file(in, 500);
	queue_retire(f->q, big, RECYCLE_MAX + 1, 1);
	qpath(f, "pool", big, pool);
	assert_false(exists(in));
	assert_false(exists(pool));
	assert_int_equal(count_files(f, "incoming", 0), 0);
	free(body);
}

/* A queued message's file is never written: the next message finds its name still linked,
 * puts it back at the end of the stock and writes a new file; the queued message is intact.
 * Once that message is retired, its file is a later message's (the same inode). */
static void test_queued_file_is_not_reused(void **state)
{
	struct fixture *f = *state;
	char *body_a = make_body(3000, 'a'), *body_b = make_body(200, 'b');
	char *body_c = make_body(100, 'c');
	char a[QUEUE_ID_LEN + 1], b[QUEUE_ID_LEN + 1], c[QUEUE_ID_LEN + 1], path[PATH_LEN];
	ino_t ino_a;

	commit_msg(f, a, body_a, 3000);
	commit_msg(f, b, body_b, 200);
	assert_int_equal(stats(f).spares_busy, 1);
	assert_int_equal(stats(f).spares_used, 0);
	check_committed(f, a, body_a, 3000);
	qpath(f, SLOT_DIR, a, path);
	assert_int_equal(stat_of(path).st_nlink, 2);

	qpath(f, "incoming", a, path);
	ino_a = stat_of(path).st_ino;
	queue_retire(f->q, a, (uint64_t)stat_of(path).st_size, (unsigned)stat_of(path).st_nlink);
	commit_msg(f, c, body_c, 100);
	assert_int_equal(stats(f).spares_used, 1);
	qpath(f, "incoming", c, path);
	assert_int_equal(stat_of(path).st_ino, ino_a);
	check_committed(f, c, body_c, 100);
	check_committed(f, b, body_b, 200);
	free(body_a);
	free(body_b);
	free(body_c);
}

#define BACKLOG (STOCK_MAX + 4)

/* A backlog (nothing is delivered): the stock fills up with names of queued files, then the
 * names of new commits are dropped, so tmp/SLOT keeps at most STOCK_MAX names; no message is
 * touched. */
static void test_backlog_bounds_stock(void **state)
{
	struct fixture *f = *state;
	char (*qids)[QUEUE_ID_LEN + 1] = calloc(BACKLOG, sizeof(*qids));
	char *body = make_body(150, 'k');

	assert_non_null(qids);
	for (unsigned i = 0; i < BACKLOG; i++)
		commit_msg(f, qids[i], body, 150);
	assert_int_equal(stats(f).spares_used, 0);
	assert_true(stats(f).spares_busy >= BACKLOG - 1);
	assert_true(count_files(f, SLOT_DIR, 0) <= STOCK_MAX);
	assert_true(count_files(f, SLOT_DIR, 0) < BACKLOG);
	assert_int_equal(count_files(f, "incoming", 0), BACKLOG);
	for (unsigned i = 0; i < BACKLOG; i++)
		check_committed(f, qids[i], body, 150);
	free(body);
	free(qids);
}

/* ---- spares ------------------------------------------------------------------------------- */

/* Fewer than STOCK_BATCH: one refill claims them all (test_reuse_from_pool). */
#define REUSE_OLD 80
_Static_assert(REUSE_OLD < STOCK_BATCH, "test_reuse_from_pool needs one refill to take all");
#define REUSE_OLD_LEN 8000
#define REUSE_NEW_LEN 100

static int has_inode(const ino_t *inos, size_t n, ino_t ino)
{
	for (size_t i = 0; i < n; i++)
		if (inos[i] == ino)
			return 1;
	return 0;
}

/* Fills pool/ with REUSE_OLD files of one link (delivered messages whose writer's name was
 * gone), each longer than the new messages, and returns their inodes. */
static void fill_pool(struct fixture *f, ino_t inos[REUSE_OLD])
{
	char name[QUEUE_ID_LEN + 1], path[PATH_LEN];

	for (unsigned i = 0; i < REUSE_OLD; i++) {
		test_qid(name, i + 1);
		qpath(f, "incoming", name, path);
		write_file(path, REUSE_OLD_LEN);
		queue_retire(f->q, name, REUSE_OLD_LEN, 1);
		qpath(f, "pool", name, path);
		inos[i] = stat_of(path).st_ino;
	}
	assert_int_equal(count_files(f, "pool", 0), REUSE_OLD);
}

/* A new message written into a file from pool/ holds exactly its own, shorter, content, and
 * reuse starts when the stock says: the first begin finds the stock empty, submits a refill
 * (and still creates its own file: the stock is empty until the refill is done), the second
 * takes a spare. A refill that comes back short pauses the next REFILL_PAUSE refills: the
 * stock's low mark is then passed without a look at pool/. */
static void test_reuse_from_pool(void **state)
{
	struct fixture *f = *state;
	char *body = make_body(REUSE_NEW_LEN, 'n');
	char qid[QUEUE_ID_LEN + 1], path[PATH_LEN];
	ino_t inos[REUSE_OLD];
	int want = 2, n;

	fill_pool(f, inos);
	for (n = 1; n <= want + STOCK_BATCH; n++) {
		commit_msg(f, qid, body, REUSE_NEW_LEN);
		if (stats(f).spares_used > 0)
			break;
	}
	assert_int_equal(n, want);
	assert_int_equal(stats(f).spares_used, 1);
	assert_int_equal(stats(f).spares_claimed, REUSE_OLD);
	qpath(f, "incoming", qid, path);
	assert_true(has_inode(inos, REUSE_OLD, stat_of(path).st_ino));
	check_committed(f, qid, body, REUSE_NEW_LEN);
	/* the claimed files left pool/ for tmp/SLOT, beside the first message's own file */
	assert_int_equal(count_files(f, "pool", 0), 0);
	assert_int_equal(count_files(f, SLOT_DIR, 0), REUSE_OLD + 1);
	free(body);
}

/* A refill that comes back short (pool/ empty) pauses the next REFILL_PAUSE begins that find
 * the stock low: they do not look at pool/; the begin after them does. Each message here is
 * retired at once, so its file is the next one's and the stock stays low. */
static void test_refill_pause(void **state)
{
	struct fixture *f = *state;
	char *body = make_body(100, 'p');
	char qid[QUEUE_ID_LEN + 1], name[QUEUE_ID_LEN + 1], path[PATH_LEN];
	unsigned n;

	commit_msg(f, qid, body, 100); /* its refill found pool/ empty */
	qpath(f, "incoming", qid, path);
	queue_retire(f->q, qid, 100, 2);
	for (unsigned i = 0; i < 3; i++) {
		test_qid(name, i + 1);
		qpath(f, "incoming", name, path);
		write_file(path, 100);
		queue_retire(f->q, name, 100, 1);
	}
	for (n = 2; n <= REFILL_PAUSE + 3; n++) {
		commit_msg(f, qid, body, 100);
		queue_retire(f->q, qid, 100, 2);
		if (stats(f).spares_claimed > 0)
			break;
	}
	assert_int_equal(n, REFILL_PAUSE + 2);
	assert_int_equal(stats(f).spares_claimed, 3);
	assert_int_equal(count_files(f, "pool", 0), 0);
	free(body);
}

/* An aborted message's file stays in tmp/SLOT as a spare, and the next message is written into
 * it: shorter than what the aborted one had flushed, and committed without any of it. */
static void test_abort_keeps_spare(void **state)
{
	struct fixture *f = *state;
	size_t big = 100 * 1000, small = 200;
	char *body = make_body(big, 'a');
	char qid[QUEUE_ID_LEN + 1], qid2[QUEUE_ID_LEN + 1], path[PATH_LEN];
	struct queue_msg *m = begin_msg(f, qid);
	ino_t ino;

	queue_msg_write(m, body, big);
	qpath(f, SLOT_DIR, qid, path);
	assert_true(stat_of(path).st_size > (off_t)small); /* a full write buffer reached it */
	ino = stat_of(path).st_ino;
	queue_msg_abort(&m);
	assert_null(m);
	assert_int_equal(stat_of(path).st_ino, ino);
	run_until_idle(f); /* the refill the first begin started */
	free(body);

	body = make_body(small, 'b');
	commit_msg(f, qid2, body, small);
	assert_int_equal(stats(f).spares_used, 1);
	assert_int_equal(stat_of(path).st_nlink, 2); /* the spare's name, kept */
	qpath(f, "incoming", qid2, path);
	assert_int_equal(stat_of(path).st_ino, ino);
	check_committed(f, qid2, body, small);
	assert_int_equal(count_files(f, SLOT_DIR, 0), 1);
	free(body);
}

/* A message aborted after more than RECYCLE_MAX bytes is removed, not kept: a spare is small. */
static void test_abort_big_removes(void **state)
{
	struct fixture *f = *state;
	size_t big = RECYCLE_MAX + 100 * 1000;
	char *body = make_body(big, 'a');
	char qid[QUEUE_ID_LEN + 1], path[PATH_LEN];
	struct queue_msg *m = begin_msg(f, qid);

	queue_msg_write(m, body, big);
	qpath(f, SLOT_DIR, qid, path);
	assert_true(stat_of(path).st_size > RECYCLE_MAX);
	queue_msg_abort(&m);
	assert_false(exists(path));
	assert_int_equal(count_files(f, SLOT_DIR, 0), 0);
	run_until_idle(f);
	free(body);
}

/* data_dir/queue/SUB and its parents, as a previous run would have left them. */
static void make_dirs(const struct fixture *f, const char *sub)
{
	char path[PATH_LEN];

	snprintf(path, sizeof(path), "%s/queue", f->root);
	assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
	qpath(f, "tmp", NULL, path);
	assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
	qpath(f, sub, NULL, path);
	assert_true(mkdir(path, 0700) == 0 || errno == EEXIST);
}

#define ADOPT_FILES 4

/* Files a previous process left in tmp/SLOT (spares holding old bytes, or a message it was
 * writing when it died) are its spares: kept under the same inodes, and the next message is
 * written into one of them. Each holds more than that message, so whichever is taken, a tail of
 * it would show. */
static void test_open_adopts_leftovers(void **state)
{
	struct fixture *f = *state;
	char names[ADOPT_FILES][QUEUE_ID_LEN + 1], qid[QUEUE_ID_LEN + 1], path[PATH_LEN];
	char *body = make_body(300, 'd');
	ino_t inos[ADOPT_FILES];

	make_dirs(f, SLOT_DIR);
	for (unsigned i = 0; i < ADOPT_FILES; i++) {
		test_qid(names[i], i + 1);
		qpath(f, SLOT_DIR, names[i], path);
		write_file(path, 5000);
		inos[i] = stat_of(path).st_ino;
	}
	f->q = queue_open(f->root, SLOT, f->bg);
	assert_non_null(f->q);
	for (unsigned i = 0; i < ADOPT_FILES; i++) {
		qpath(f, SLOT_DIR, names[i], path);
		assert_int_equal(stat_of(path).st_ino, inos[i]);
	}
	commit_msg(f, qid, body, 300);
	assert_int_equal(stats(f).spares_used, 1);
	qpath(f, "incoming", qid, path);
	assert_true(has_inode(inos, ADOPT_FILES, stat_of(path).st_ino));
	check_committed(f, qid, body, 300);
	assert_int_equal(count_files(f, SLOT_DIR, 0), ADOPT_FILES);
	free(body);
}

#define SURPLUS 44

/* Leftovers are spares only within the bounds of spares: more than STOCK_MAX, or one bigger
 * than RECYCLE_MAX (a big message a dead process was writing), are removed. */
static void test_open_bounds_leftovers(void **state)
{
	struct fixture *f = *state;
	char name[QUEUE_ID_LEN + 1], big[PATH_LEN];

	make_dirs(f, SLOT_DIR);
	link_files(f, SLOT_DIR, 1, STOCK_MAX + SURPLUS);
	test_qid(name, STOCK_MAX + SURPLUS + 1);
	qpath(f, SLOT_DIR, name, big);
	write_file(big, RECYCLE_MAX + 1);
	f->q = queue_open(f->root, SLOT, f->bg);
	assert_non_null(f->q);
	assert_false(exists(big));
	assert_int_equal(count_files(f, SLOT_DIR, 0), STOCK_MAX);
	assert_int_equal(count_files(f, "pool", 0), 0);
}

/* ---- clean_tmp and the pool bound ---------------------------------------------------------- */

/* At start: a file directly in tmp/ (the layout before slot directories: a message never
 * finished) is removed and counted; the files of tmp/SLOT directories are the next process's
 * spares and are not touched at all, whatever they hold. */
static void test_clean_tmp(void **state)
{
	struct fixture *f = *state;
	char full[QUEUE_ID_LEN + 1], empty[QUEUE_ID_LEN + 1], legacy[QUEUE_ID_LEN + 1];
	char full_p[PATH_LEN], empty_p[PATH_LEN], legacy_p[PATH_LEN];
	/* an old mtime, so that any write or truncate would show */
	const struct timespec old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	unsigned removed = 99;

	make_dirs(f, "tmp/3");
	test_qid(full, 1);
	test_qid(empty, 2);
	test_qid(legacy, 3);
	qpath(f, "tmp/3", full, full_p);
	qpath(f, "tmp/3", empty, empty_p);
	qpath(f, "tmp", legacy, legacy_p);
	write_file(full_p, 5000);
	write_file(empty_p, 0);
	write_file(legacy_p, 100);
	assert_int_equal(utimensat(AT_FDCWD, full_p, old, 0), 0);
	assert_int_equal(utimensat(AT_FDCWD, empty_p, old, 0), 0);

	assert_int_equal(queue_clean_tmp(f->root, 4, &removed), 0);
	assert_int_equal(removed, 1);
	assert_false(exists(legacy_p));
	assert_int_equal(stat_of(full_p).st_size, 5000);
	assert_int_equal(stat_of(full_p).st_mtim.tv_sec, old[1].tv_sec);
	assert_int_equal(stat_of(empty_p).st_size, 0);
	assert_int_equal(stat_of(empty_p).st_mtim.tv_sec, old[1].tv_sec);
}

/* A previous run had more workers: the directories of slots that no process will have (>=
 * nslots) go, their spares into pool/ (a big one removed; a queued message's file, linked in
 * incoming/ too, keeps that name only); the others stay as they are. */
static void test_clean_tmp_unused_slots(void **state)
{
	struct fixture *f = *state;
	char name[QUEUE_ID_LEN + 1], kept[PATH_LEN], big[PATH_LEN], dir[PATH_LEN];
	char queued[PATH_LEN], in[PATH_LEN];
	unsigned removed = 99;

	make_dirs(f, "tmp/1");
	make_dirs(f, "tmp/6");
	make_dirs(f, "tmp/07"); /* not a slot's name: left alone */
	make_dirs(f, "incoming");
	link_files(f, "tmp/1", 1, 3);
	for (unsigned i = 10; i < 15; i++) {
		test_qid(name, i);
		qpath(f, "tmp/6", name, dir);
		write_file(dir, 100);
	}
	test_qid(name, 20);
	qpath(f, "tmp/6", name, big);
	write_file(big, RECYCLE_MAX + 1);
	test_qid(name, 21);
	qpath(f, "tmp/6", name, queued);
	qpath(f, "incoming", name, in);
	write_file(queued, 700);
	assert_int_equal(link(queued, in), 0);
	qpath(f, "tmp/1", NULL, kept);

	assert_int_equal(queue_clean_tmp(f->root, 6, &removed), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(count_files(f, "tmp/1", 0), 3);
	assert_int_equal(count_files(f, "pool", 0), 5);
	assert_int_equal(stat_of(in).st_nlink, 1);
	assert_int_equal(stat_of(in).st_size, 700);
	qpath(f, "tmp/6", NULL, dir);
	assert_false(exists(dir));
	qpath(f, "tmp/07", NULL, dir);
	assert_true(exists(dir));
	assert_true(exists(kept));
}

#define BOUND_EXTRA 6
#define TAKEN 10

/* Retires n files of 100 bytes from incoming/, named from first on. */
static void retire_new(struct fixture *f, unsigned first, unsigned n)
{
	char name[QUEUE_ID_LEN + 1];

	link_files(f, "incoming", first, n);
	for (unsigned i = first; i < first + n; i++) {
		test_qid(name, i);
		queue_retire(f->q, name, 100, 1); /* as if the writer's name were gone */
	}
}

/* pool/ stops at POOL_MAX files; what does not fit is removed, nothing stays in incoming/. */
static void test_pool_bound(void **state)
{
	struct fixture *f = *state;

	retire_new(f, 1, POOL_MAX + BOUND_EXTRA);
	assert_int_equal(count_files(f, "pool", 0), POOL_MAX);
	assert_int_equal(count_files(f, "incoming", 0), 0);
}

/* Workers take files out of pool/ unseen: once full, the estimate is counted again within
 * POOL_RECOUNT retirements, and the room they left is filled (to the bound, not past it). */
static void test_pool_recount(void **state)
{
	struct fixture *f = *state;
	char name[QUEUE_ID_LEN + 1], path[PATH_LEN];

	retire_new(f, 1, POOL_MAX + BOUND_EXTRA);
	for (unsigned i = 1; i <= TAKEN; i++) {
		test_qid(name, i);
		qpath(f, "pool", name, path);
		assert_int_equal(unlink(path), 0);
	}
	retire_new(f, POOL_MAX + BOUND_EXTRA + 1, POOL_RECOUNT + TAKEN);
	assert_int_equal(count_files(f, "pool", 0), POOL_MAX);
	assert_int_equal(count_files(f, "incoming", 0), 0);
}

/* A queue opened on a full pool/ knows it: what it retires is removed, the bound holds. */
static void test_pool_full_at_open(void **state)
{
	struct fixture *f = *state;

	make_dirs(f, "pool");
	link_files(f, "pool", 1, POOL_MAX);
	f->q = queue_open(f->root, SLOT, f->bg);
	assert_non_null(f->q);
	retire_new(f, POOL_MAX + 1, BOUND_EXTRA);
	assert_int_equal(count_files(f, "pool", 0), POOL_MAX);
	assert_int_equal(count_files(f, "incoming", 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retire, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queued_file_is_not_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backlog_bounds_stock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reuse_from_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refill_pause, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_keeps_spare, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_big_removes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_adopts_leftovers, setup_unopened, teardown),
		cmocka_unit_test_setup_teardown(test_open_bounds_leftovers, setup_unopened,
						teardown),
		cmocka_unit_test_setup_teardown(test_clean_tmp, setup_unopened, teardown),
		cmocka_unit_test_setup_teardown(test_clean_tmp_unused_slots, setup_unopened, teardown),
		cmocka_unit_test_setup_teardown(test_pool_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_recount, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_full_at_open, setup_unopened, teardown),
	};

	bgjob_global_init();
	return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
