/* fuzz_qfile: the queue file reader of src/queue/qfile.h (qfile_parse, qfile_env_read,
 * qfile_env_free, qfile_unescape; qfile_escape and qfile_envelope for the way back).
 *
 * Input: a queue file (docs/queue-format.md), as the delivery side reads it from disk. It is
 * parsed by qfile_parse and by qfile_env_read, each on its own exact-size heap copy (neither
 * may read past len: the file has no terminator): both must agree, every pointer must lie in
 * the buffer, the body must end where the END record starts. A file that reads back is
 * written again with qfile_envelope and must read back to the same envelope. The input as a
 * string also goes through qfile_unescape (never longer) and qfile_escape (one field of one
 * line, undone by qfile_unescape), with a full and a short output buffer. */
#include "fuzz.h"
#include "queue/qfile.h"

#define END_RECORD_MAX 32
#define ESCAPE_SMALL 7

static int in_buf(const char *p, const char *buf, size_t len)
{
	return p >= buf && p < buf + len;
}

static void check_view(const struct qfile_view *v, const char *buf, size_t len)
{
	FUZZ_CHECK(in_buf(v->qid, buf, len) && in_buf(v->from, buf, len));
	FUZZ_CHECK(!v->client || in_buf(v->client, buf, len));
	FUZZ_CHECK(!v->helo || in_buf(v->helo, buf, len));
	FUZZ_CHECK(!v->tls || in_buf(v->tls, buf, len));
	FUZZ_CHECK(v->nrcpt >= 1);
	FUZZ_CHECK(v->body >= buf && v->body <= buf + len);
	FUZZ_CHECK(v->body_len <= (uint64_t)(buf + len - v->body));
	/* the END record follows the body at once */
	FUZZ_CHECK(!strncmp(v->body + v->body_len, "end ", 4));
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* "" and "<>" are both the null sender; "" and "-" both mean no TLS. */
static int same_value(const char *a, const char *b, const char *empty)
{
	if (!strcmp(a, empty))
		a = "";
	if (!strcmp(b, empty))
		b = "";
	return !strcmp(a, b);
}

/* Writes env back as qfile_envelope does for the queue, and reads it again. */
static void check_rewrite(const struct qfile_env *env)
{
	struct queue_rcpt *rcpts = calloc(env->nrcpt, sizeof(*rcpts));
	struct queue_envelope qe = {
		.qid = env->v.qid, .arrival = (time_t)env->arrival, .sid = "",
		.client_ip = or_empty(env->v.client), .helo = or_empty(env->v.helo),
		.tls = or_empty(env->v.tls), .mail_from = env->v.from,
		.mail_params = env->mail_params, .rcpts = rcpts, .nrcpt = env->nrcpt,
	};
	char end[END_RECORD_MAX];
	size_t hlen, elen;

	if (!rcpts)
		abort();
	for (size_t i = 0; i < env->nrcpt; i++)
		rcpts[i] = (struct queue_rcpt){ env->rcpts[i].addr, env->rcpts[i].tenant,
						env->rcpts[i].route, env->rcpts[i].params };
	char *head = qfile_envelope(&qe, &hlen);
	elen = qfile_end_record(end, sizeof(end), env->v.body_len);
	FUZZ_CHECK(elen > 0);
	size_t len = hlen + (size_t)env->v.body_len + elen;
	char *file = malloc(len);
	if (!file)
		abort();
	memcpy(file, head, hlen);
	memcpy(file + hlen, env->v.body, (size_t)env->v.body_len);
	memcpy(file + hlen + env->v.body_len, end, elen);

	struct qfile_env again;
	const char *why = NULL;
	FUZZ_CHECK(qfile_env_read(file, len, &again, &why) == 0);
	FUZZ_CHECK(!strcmp(again.v.qid, env->v.qid));
	FUZZ_CHECK(again.arrival == env->arrival);
	FUZZ_CHECK(same_value(again.v.from, env->v.from, "<>"));
	FUZZ_CHECK(same_value(again.v.tls, or_empty(env->v.tls), "-"));
	FUZZ_CHECK(!strcmp(again.v.client, or_empty(env->v.client)));
	FUZZ_CHECK(!strcmp(again.v.helo, or_empty(env->v.helo)));
	FUZZ_CHECK(!strcmp(again.mail_params, env->mail_params));
	FUZZ_CHECK(again.nrcpt == env->nrcpt && again.v.body_len == env->v.body_len);
	FUZZ_CHECK(!memcmp(again.v.body, env->v.body, (size_t)env->v.body_len));
	for (size_t i = 0; i < env->nrcpt; i++) {
		FUZZ_CHECK(!strcmp(again.rcpts[i].addr, env->rcpts[i].addr));
		FUZZ_CHECK(!strcmp(again.rcpts[i].tenant, env->rcpts[i].tenant));
		FUZZ_CHECK(!strcmp(again.rcpts[i].route, env->rcpts[i].route));
		FUZZ_CHECK(!strcmp(again.rcpts[i].params, env->rcpts[i].params));
	}
	qfile_env_free(&again);
	free(file);
	free(head);
	free(rcpts);
}

static void fuzz_file(const uint8_t *data, size_t size)
{
	char *b1 = fuzz_dup(data, size), *b2 = fuzz_dup(data, size);
	struct qfile_view v;
	struct qfile_env env;
	const char *why1 = NULL, *why2 = NULL;
	int rc1 = qfile_parse(b1, size, &v, &why1);
	int rc2 = qfile_env_read(b2, size, &env, &why2);

	FUZZ_CHECK(rc1 == rc2 && (rc1 == 0 || rc1 == -1));
	if (rc1 < 0) {
		FUZZ_CHECK(why1 && why2 && !strcmp(why1, why2));
		FUZZ_CHECK(env.rcpts == NULL);
	} else {
		check_view(&v, b1, size);
		check_view(&env.v, b2, size);
		FUZZ_CHECK(env.v.nrcpt == v.nrcpt && env.nrcpt == v.nrcpt);
		FUZZ_CHECK(env.v.body - b2 == v.body - b1 && env.v.body_len == v.body_len);
		FUZZ_CHECK(in_buf(env.mail_params, b2, size) || !strcmp(env.mail_params, ""));
		for (size_t i = 0; i < env.nrcpt; i++) {
			const struct qfile_rcpt *r = &env.rcpts[i];
			FUZZ_CHECK(in_buf(r->addr, b2, size));
			FUZZ_CHECK(in_buf(r->tenant, b2, size) || !strcmp(r->tenant, ""));
			FUZZ_CHECK(in_buf(r->route, b2, size) || !strcmp(r->route, ""));
			FUZZ_CHECK(in_buf(r->params, b2, size) || !strcmp(r->params, ""));
		}
		check_rewrite(&env);
	}
	qfile_env_free(&env);
	FUZZ_CHECK(env.rcpts == NULL);
	free(b1);
	free(b2);
}

static void fuzz_escapes(const uint8_t *data, size_t size)
{
	char *s = fuzz_strdup(data, size);
	size_t n = strlen(s);
	char *u = fuzz_strdup(s, n);
	size_t big = 3 * n + 5;
	char *e = malloc(big), *small = malloc(ESCAPE_SMALL);

	if (!e || !small)
		abort();
	qfile_unescape(u);
	FUZZ_CHECK(strlen(u) <= n);

	size_t elen = qfile_escape(e, big, s);
	FUZZ_CHECK(elen == strlen(e) && elen < big);
	for (size_t i = 0; i < elen; i++) /* one field of one line */
		FUZZ_CHECK((unsigned char)e[i] > ' ' && (unsigned char)e[i] != 0x7f);
	qfile_unescape(e);
	FUZZ_CHECK(!strcmp(e, s));

	elen = qfile_escape(small, ESCAPE_SMALL, s);
	FUZZ_CHECK(elen == strlen(small) && elen < ESCAPE_SMALL);
	free(small);
	free(e);
	free(u);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_file(data, size);
	fuzz_escapes(data, size);
	return 0;
}
