/* xtext: RFC 3461 section 4 encoding of DSN values (ENVID, ORCPT): octets 33..126 except '+'
 * and '=' as themselves, anything else as "+XX" (upper-case hex). */
#ifndef MXG_XTEXT_H
#define MXG_XTEXT_H

#include <stddef.h>

/* 1 when s is 1..max octets of well-formed xtext. */
int xtext_valid(const char *s, size_t max);
/* Decodes into out (always NUL-terminated, cut at outsz - 1); returns the length. */
size_t xtext_decode(const char *in, char *out, size_t outsz);

#endif
