/* bench_queue_commit: what making a message durable costs, per message, on a given disk.
 *
 * docs/performance.md puts ~40 % of an SMTP worker's CPU in the queue's durability work (an
 * fdatasync per file, two renames, a share of a directory fsync). This program measures that
 * path alone, without SMTP, against the alternative the document names for the next step, so
 * the decision rests on numbers from the disk it will run on:
 *
 *   queue    the real queue module (src/queue, its background thread, a libevent loop): rounds
 *            of --batch messages begun, written and committed together (a group commit, as
 *            --batch sessions finishing DATA at once), then each retired as the queue
 *            manager does after delivery (its incoming/ name removed: the file is a spare of
 *            the slot again), so that the next rounds reuse spare files;
 *   segment  the same messages (the same queue-file bytes) appended to one file with one
 *            fdatasync per round: no file, rename or directory sync per message. A sketch of
 *            the design, not an implementation: no reader, no compaction.
 *
 * Times are the process's CPU time (CLOCK_PROCESS_CPUTIME_ID: every thread, user + system)
 * and wall time per message; the retirement is timed on its own (it is the queue manager's
 * cost, not the worker's). Output: human lines, then one machine line per mode:
 *   RESULT mode cpu_us_per_msg wall_us_per_msg retire_cpu_us_per_msg
 *
 *   bench_queue_commit --dir DIR [--messages N] [--batch N] [--size BYTES]
 *
 * DIR must be on the disk to measure (not tmpfs) and is filled with a data directory that is
 * removed afterwards. Never a test. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench_util.h"
#include "event/bgjob.h"
#include "queue/qfile.h"
#include "queue/queue.h"
#include "util/ids.h"

#define BATCH_MAX 1024
#define WAIT_LIMIT_S 60.0 /* a round not committed by then is a lost callback */

struct opts {
	const char *dir;
	unsigned messages, batch;
	size_t size;
};

struct times {
	double cpu, wall;
};

static double clock_s(clockid_t id)
{
	return bench_clock_ns(id) / 1e9;
}

static struct times now(void)
{
	return (struct times){ clock_s(CLOCK_PROCESS_CPUTIME_ID), clock_s(CLOCK_MONOTONIC) };
}

static const struct queue_rcpt bench_rcpt = { "someone@example.test", "bench",
					       "127.0.0.1:2525", "" };

static struct queue_envelope envelope(const char *qid)
{
	return (struct queue_envelope){
		.qid = qid, .arrival = time(NULL), .sid = "benchsession", .client_ip = "127.0.0.1",
		.helo = "client.example", .tls = "", .mail_from = "sender@example.org",
		.mail_params = "", .rcpts = &bench_rcpt, .nrcpt = 1,
	};
}

/* The message text: header-like lines of 78 characters, as in the benchmark's 5 KB mail. */
static char *make_body(size_t size)
{
	char *b = malloc(size);

	for (size_t i = 0; i < size; i++)
		b[i] = (i % 80 == 78) ? '\r' : (i % 80 == 79) ? '\n' : (char)('a' + i % 26);
	if (size >= 2)
		memcpy(b + size - 2, "\r\n", 2);
	return b;
}

static void on_commit(void *arg, int status)
{
	int *pending = arg;

	if (status) {
		fprintf(stderr, "bench_queue_commit: commit failed: %s\n", strerror(status));
		exit(1);
	}
	(*pending)--;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

static void run_queue(const struct opts *o, const char *body, struct times *t, double *retire_cpu,
		      struct queue_stats *st)
{
	char qids[BATCH_MAX][QUEUE_ID_LEN + 1];
	/* an event always pending, so that the loop sleeps instead of returning at once */
	const struct timeval tick = { 1, 0 };
	struct event_base *base;
	struct bgjob_queue *bg;
	struct event *ev;
	struct queue *q;
	struct times t0;

	bgjob_global_init();
	base = event_base_new();
	bg = bgjob_new(base);
	ev = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	event_add(ev, &tick);
	if (!base || !bg || !(q = queue_open(o->dir, 0, bg))) {
		fprintf(stderr, "bench_queue_commit: cannot open the queue in %s: %s\n", o->dir,
			strerror(errno));
		exit(1);
	}
	*retire_cpu = 0;
	t0 = now();
	for (unsigned done = 0; done < o->messages; done += o->batch) {
		int pending = (int)o->batch;
		for (unsigned i = 0; i < o->batch; i++) {
			id_queue(qids[i]);
			struct queue_envelope env = envelope(qids[i]);
			struct queue_msg *m = queue_msg_begin(q, &env);
			if (!m) {
				fprintf(stderr, "bench_queue_commit: begin: %s\n", strerror(errno));
				exit(1);
			}
			queue_msg_write(m, body, o->size);
			queue_msg_commit(&m, on_commit, &pending);
		}
		double deadline = clock_s(CLOCK_MONOTONIC) + WAIT_LIMIT_S;
		while (pending > 0 && clock_s(CLOCK_MONOTONIC) < deadline)
			event_base_loop(base, EVLOOP_ONCE);
		if (pending > 0) {
			fprintf(stderr, "bench_queue_commit: a round did not commit in %.0f s\n",
				WAIT_LIMIT_S);
			exit(1);
		}
		double r0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
		for (unsigned i = 0; i < o->batch; i++)
			queue_retire(q, qids[i], o->size + 512, 2); /* the writer kept its name */
		*retire_cpu += clock_s(CLOCK_PROCESS_CPUTIME_ID) - r0;
	}
	struct times t1 = now();
	t->cpu = t1.cpu - t0.cpu - *retire_cpu;
	t->wall = t1.wall - t0.wall;
	bgjob_free(&bg);
	queue_get_stats(q, st);
	queue_close(&q);
	event_free(ev);
	event_base_free(base);
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "bench_queue_commit: write: %s\n", strerror(errno));
			exit(1);
		}
		p += n;
		len -= (size_t)n;
	}
}

static void run_segment(const struct opts *o, const char *body, struct times *t)
{
	char path[4096], qid[QUEUE_ID_LEN + 1], end[48];
	struct times t0;
	int fd;

	snprintf(path, sizeof(path), "%s/segment", o->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "bench_queue_commit: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	t0 = now();
	for (unsigned done = 0; done < o->messages; done += o->batch) {
		for (unsigned i = 0; i < o->batch; i++) {
			size_t elen;
			id_queue(qid);
			struct queue_envelope env = envelope(qid);
			char *rec = qfile_envelope(&env, &elen);
			write_all(fd, rec, elen);
			write_all(fd, body, o->size);
			write_all(fd, end, qfile_end_record(end, sizeof(end), o->size));
			free(rec);
		}
		if (fdatasync(fd) < 0) {
			fprintf(stderr, "bench_queue_commit: fdatasync: %s\n", strerror(errno));
			exit(1);
		}
	}
	struct times t1 = now();
	t->cpu = t1.cpu - t0.cpu;
	t->wall = t1.wall - t0.wall;
	close(fd);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ NULL, 5000, 20, 5120 };
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--dir"))
			o->dir = argv[i + 1];
		else if (!strcmp(argv[i], "--messages"))
			o->messages = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--batch"))
			o->batch = (unsigned)strtoul(argv[i + 1], NULL, 10);
		else if (!strcmp(argv[i], "--size"))
			o->size = strtoul(argv[i + 1], NULL, 10);
		else
			return -1;
	}
	if (argc % 2 == 0 || !o->dir || o->batch == 0 || o->batch > BATCH_MAX ||
	    o->messages < o->batch || o->size < 2 || o->size > 1024 * 1024)
		return -1;
	o->messages -= o->messages % o->batch;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct times tq, ts;
	struct queue_stats st;
	double retire;
	char data[4096];
	char *body;

	if (parse_opts(argc, argv, &o) < 0) {
		fprintf(stderr, "usage: bench_queue_commit --dir DIR [--messages N] [--batch N 1..%d]"
				" [--size BYTES]\n", BATCH_MAX);
		return 2;
	}
	snprintf(data, sizeof(data), "%s/bench-queue-commit.XXXXXX", o.dir);
	if (!mkdtemp(data)) {
		fprintf(stderr, "bench_queue_commit: %s: %s\n", data, strerror(errno));
		return 1;
	}
	o.dir = data;
	body = make_body(o.size);
	run_queue(&o, body, &tq, &retire, &st);
	run_segment(&o, body, &ts);
	printf("%u messages of %zu bytes in rounds of %u, in %s\n", o.messages, o.size, o.batch,
	       data);
	printf("queue (file per message, spares): %.1f us CPU, %.1f us wall per message; "
	       "retire %.1f us CPU; %llu of %llu messages written into a spare, %llu batches\n",
	       tq.cpu / o.messages * 1e6, tq.wall / o.messages * 1e6, retire / o.messages * 1e6,
	       (unsigned long long)st.spares_used, (unsigned long long)st.committed,
	       (unsigned long long)st.batches);
	printf("segment (append, 1 fdatasync per round): %.1f us CPU, %.1f us wall per message\n",
	       ts.cpu / o.messages * 1e6, ts.wall / o.messages * 1e6);
	printf("RESULT queue %.1f %.1f %.1f\n", tq.cpu / o.messages * 1e6,
	       tq.wall / o.messages * 1e6, retire / o.messages * 1e6);
	printf("RESULT segment %.1f %.1f 0\n", ts.cpu / o.messages * 1e6,
	       ts.wall / o.messages * 1e6);
	nftw(data, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(body);
	return 0;
}
