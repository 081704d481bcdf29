/* trace: see trace.h. */
#include "policy/trace.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/xmalloc.h"

struct trace {
	struct trace_step *steps;
	size_t n, cap;
};

struct trace *trace_new(void)
{
	return xcalloc(1, sizeof(struct trace));
}

void trace_free(struct trace **tp)
{
	if (!*tp)
		return;
	free((*tp)->steps);
	free(*tp);
	*tp = NULL;
}

void trace_add(struct trace *t, const char *category, const char *fmt, ...)
{
	va_list ap;

	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 16;
		t->steps = xrealloc(t->steps, t->cap * sizeof(*t->steps));
	}
	struct trace_step *s = &t->steps[t->n++];
	snprintf(s->category, sizeof(s->category), "%s", category);
	va_start(ap, fmt);
	vsnprintf(s->text, sizeof(s->text), fmt, ap);
	va_end(ap);
}

size_t trace_count(const struct trace *t)
{
	return t->n;
}

const struct trace_step *trace_at(const struct trace *t, size_t i)
{
	return i < t->n ? &t->steps[i] : NULL;
}
