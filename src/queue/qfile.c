/* qfile: see qfile.h. */
#include "queue/qfile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/strutil.h"
#include "util/xmalloc.h"

size_t qfile_escape(char *dst, size_t dstsz, const char *src)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *src && o + 4 < dstsz; src++) {
		unsigned char c = (unsigned char)*src;
		if (c <= ' ' || c == '%' || c == 0x7f) {
			dst[o++] = '%';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else {
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
	return o;
}

struct out {
	char *buf;
	size_t len, cap;
};

static void out_add(struct out *o, const char *key, const char *value)
{
	size_t need = strlen(key) + 3 * strlen(value) + 3;

	if (o->len + need + 1 > o->cap) {
		o->cap = (o->cap + need) * 2;
		o->buf = xrealloc(o->buf, o->cap);
	}
	memcpy(o->buf + o->len, key, strlen(key));
	o->len += strlen(key);
	o->buf[o->len++] = ' ';
	o->len += qfile_escape(o->buf + o->len, o->cap - o->len, value);
	o->buf[o->len++] = '\n';
}

char *qfile_envelope(const struct queue_envelope *env, size_t *len_r)
{
	struct out o = { .cap = 1024 };
	char arrival[24];

	o.buf = xmalloc(o.cap);
	memcpy(o.buf, QFILE_MAGIC, sizeof(QFILE_MAGIC) - 1);
	o.len = sizeof(QFILE_MAGIC) - 1;
	snprintf(arrival, sizeof(arrival), "%" PRId64, (int64_t)env->arrival);
	out_add(&o, "id", env->qid);
	out_add(&o, "arrival", arrival);
	out_add(&o, "session", env->sid);
	out_add(&o, "client", env->client_ip);
	out_add(&o, "helo", env->helo);
	out_add(&o, "tls", env->tls[0] ? env->tls : "-");
	out_add(&o, "from", env->mail_from[0] ? env->mail_from : "<>");
	if (env->mail_params[0])
		out_add(&o, "mail-params", env->mail_params);
	for (size_t i = 0; i < env->nrcpt; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		out_add(&o, "rcpt", r->addr);
		out_add(&o, "rcpt-tenant", r->tenant);
		out_add(&o, "rcpt-route", r->route);
		if (r->params[0])
			out_add(&o, "rcpt-params", r->params);
	}
	out_add(&o, "body", "");
	o.len--; /* "body \n" -> "body\n" */
	o.buf[o.len - 1] = '\n';
	*len_r = o.len;
	return o.buf;
}

size_t qfile_end_record(char *buf, size_t bufsz, uint64_t body_len)
{
	int n = snprintf(buf, bufsz, "end %" PRIu64 "\n", body_len);
	return n > 0 && (size_t)n < bufsz ? (size_t)n : 0;
}

/* Splits the next line off *p (NUL-terminating it); returns NULL at the end of the region. */
static char *next_line(char **p, char *end)
{
	char *line = *p, *nl;

	if (line >= end || !(nl = memchr(line, '\n', (size_t)(end - line))))
		return NULL;
	*nl = '\0';
	*p = nl + 1;
	return line;
}

static int parse_end(char *buf, size_t len, uint64_t *body_len_r, size_t *end_off_r)
{
	char *last;
	char *endp;

	if (len < 6 || buf[len - 1] != '\n')
		return -1;
	buf[len - 1] = '\0';
	/* memrchr, not strrchr: the body may hold NUL bytes */
	last = memrchr(buf, '\n', len - 1);
	if (!last || strncmp(last + 1, "end ", 4) != 0)
		return -1;
	*body_len_r = strtoull(last + 5, &endp, 10);
	if (*endp != '\0' || last[5] < '0' || last[5] > '9')
		return -1;
	*end_off_r = (size_t)(last + 1 - buf);
	return 0;
}

int qfile_parse(char *buf, size_t len, struct qfile_view *v, const char **why)
{
	size_t end_off;
	char *p = buf, *line;

	memset(v, 0, sizeof(*v));
	if (len < sizeof(QFILE_MAGIC) - 1 || memcmp(buf, QFILE_MAGIC, sizeof(QFILE_MAGIC) - 1)) {
		*why = "bad magic";
		return -1;
	}
	if (parse_end(buf, len, &v->body_len, &end_off) < 0) {
		*why = "missing END record (incomplete file)";
		return -1;
	}
	char *end = buf + end_off;
	p += sizeof(QFILE_MAGIC) - 1;
	while ((line = next_line(&p, end)) != NULL) {
		char *val = strchr(line, ' ');
		/* Records are text (qfile_escape writes a NUL as %00). A NUL would hide the rest of
		 * its line here, and make qfile_env_read, which walks the records as NUL-separated
		 * strings, take that rest for records of its own. */
		if (memchr(line, '\0', (size_t)(p - 1 - line))) {
			*why = "NUL byte in a record";
			return -1;
		}
		if (strcmp(line, "body") == 0)
			break;
		if (!val) {
			*why = "record without value";
			return -1;
		}
		*val++ = '\0';
		if (!strcmp(line, "id")) v->qid = val;
		else if (!strcmp(line, "client")) v->client = val;
		else if (!strcmp(line, "helo")) v->helo = val;
		else if (!strcmp(line, "tls")) v->tls = val;
		else if (!strcmp(line, "from")) v->from = val;
		else if (!strcmp(line, "rcpt")) v->nrcpt++;
		else if (!strcmp(line, "arrival") || !strcmp(line, "session") ||
			 !strcmp(line, "mail-params") || !strcmp(line, "rcpt-tenant") ||
			 !strcmp(line, "rcpt-route") || !strcmp(line, "rcpt-params"))
			continue;
		else {
			*why = "unknown record";
			return -1;
		}
	}
	if (!line || !v->qid || !v->from || v->nrcpt == 0) {
		*why = "envelope incomplete";
		return -1;
	}
	/* the body runs from here to the END record */
	if ((uint64_t)(end - p) != v->body_len) {
		*why = "body length does not match the END record";
		return -1;
	}
	v->body = p;
	return 0;
}

/* Exactly "%" and two hex digits is an escape (sscanf's %2x would also take "%+f" or "% 1"). */
void qfile_unescape(char *s)
{
	char *o = s;

	for (char *p = s; *p; p++) {
		int hi = *p == '%' ? str_hexval(p[1]) : -1, lo = hi >= 0 ? str_hexval(p[2]) : -1;
		if (lo >= 0) {
			*o++ = (char)(hi << 4 | lo);
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

/* Second pass over a file qfile_parse accepted: collect the recipients and their records. */
int qfile_env_read(char *buf, size_t len, struct qfile_env *env, const char **why)
{
	char *p, *line, *end;
	struct qfile_rcpt *cur = NULL;

	memset(env, 0, sizeof(*env));
	if (qfile_parse(buf, len, &env->v, why) < 0)
		return -1;
	env->mail_params = "";
	env->rcpts = xcalloc(env->v.nrcpt, sizeof(*env->rcpts));
	p = buf + sizeof(QFILE_MAGIC) - 1;
	end = (char *)env->v.body;
	/* qfile_parse turned each record "key value\n" into "key\0value\0" */
	while (p < end) {
		line = p;
		if (!strcmp(line, "body"))
			break;
		char *val = line + strlen(line) + 1;
		p = val + strlen(val) + 1;
		qfile_unescape(val);
		if (!strcmp(line, "rcpt")) {
			cur = &env->rcpts[env->nrcpt++];
			*cur = (struct qfile_rcpt){ val, "", "", "" };
		} else if (cur && !strcmp(line, "rcpt-tenant")) {
			cur->tenant = val;
		} else if (cur && !strcmp(line, "rcpt-route")) {
			cur->route = val;
		} else if (cur && !strcmp(line, "rcpt-params")) {
			cur->params = val;
		} else if (!strcmp(line, "mail-params")) {
			env->mail_params = val;
		} else if (!strcmp(line, "arrival")) {
			env->arrival = strtoll(val, NULL, 10);
		}
	}
	return 0;
}

void qfile_env_free(struct qfile_env *env)
{
	free(env->rcpts);
	env->rcpts = NULL;
}
