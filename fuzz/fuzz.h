/* fuzz: what every libFuzzer target here shares (fuzz/README.md).
 *
 * Inputs are copied into heap buffers of exactly the size a parser is allowed to read, so that
 * AddressSanitizer reports a read one byte too far; invariants that must hold whatever the
 * input are checked with FUZZ_CHECK, which aborts (libFuzzer keeps the input as a crash). */
#ifndef MXG_FUZZ_H
#define MXG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The libFuzzer entry point, declared for -Wmissing-prototypes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void fuzz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
	abort();
}

#define FUZZ_CHECK(cond)                                          \
	do {                                                      \
		if (!(cond))                                      \
			fuzz_fail(__FILE__, __LINE__, #cond);     \
	} while (0)

/* A malloc'd copy of p[0..n) with nothing after it: reading p[n] is an ASan report. */
static inline char *fuzz_dup(const void *p, size_t n)
{
	char *b = malloc(n ? n : 1);

	if (!b)
		abort();
	if (n)
		memcpy(b, p, n);
	return b;
}

/* A malloc'd NUL-terminated copy of p[0..n): exactly n + 1 bytes. */
static inline char *fuzz_strdup(const void *p, size_t n)
{
	char *b = malloc(n + 1);

	if (!b)
		abort();
	memcpy(b, p, n);
	b[n] = '\0';
	return b;
}

/* Whether s has its NUL within the first size bytes. */
static inline int fuzz_terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

#endif
