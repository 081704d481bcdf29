/* strutil: small string helpers with explicit bounds. */
#ifndef MXG_STRUTIL_H
#define MXG_STRUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Case-insensitive ASCII prefix test: returns 1 when s starts with prefix. */
int str_casestarts(const char *s, const char *prefix);
/* Lower-cases ASCII letters in place; returns s. */
char *str_lower(char *s);
/* Parses a decimal unsigned integer within [min, max]; returns 0 or -1. */
int str_to_u64(const char *s, uint64_t min, uint64_t max, uint64_t *v_r);
/* Parses a size with an optional k/K, m/M or g/G suffix (powers of 1024). */
int str_to_size(const char *s, uint64_t min, uint64_t max, uint64_t *v_r);
/* Trims ASCII white space at both ends in place; returns the start. */
char *str_trim(char *s);
/* The value of one hex digit (either case), or -1. */
int str_hexval(int c);

#endif
