/* xmalloc: allocators that abort on failure instead of returning NULL. */
#ifndef MXG_XMALLOC_H
#define MXG_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
