/* trace: the steps of one decision, recorded only when someone will read them (explain, the
 * debug log). Engine code calls TRACE(), which costs one NULL test when tracing is off. */
#ifndef MXG_TRACE_H
#define MXG_TRACE_H

#include <stddef.h>

#define TRACE_TEXT_MAX 512

struct trace_step {
	char category[16]; /* "tenant", "connector", "ip-list", "dnsbl", "decision" */
	char text[TRACE_TEXT_MAX];
};

struct trace;

struct trace *trace_new(void);
void trace_free(struct trace **t);
void trace_add(struct trace *t, const char *category, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
size_t trace_count(const struct trace *t);
const struct trace_step *trace_at(const struct trace *t, size_t i);

#define TRACE(t, ...)                           \
	do {                                        \
		if (t)                                  \
			trace_add((t), __VA_ARGS__);        \
	} while (0)

#endif
