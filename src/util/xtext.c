/* xtext: see xtext.h. */
#include "util/xtext.h"

#include <string.h>

#include "util/strutil.h"

static int upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

int xtext_valid(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			if (i + 2 >= n || !upper_hex(s[i + 1]) || !upper_hex(s[i + 2]))
				return 0;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return 0;
		}
	}
	return 1;
}

size_t xtext_decode(const char *in, char *out, size_t outsz)
{
	size_t o = 0;

	if (outsz == 0)
		return 0;
	for (; *in && o + 1 < outsz; in++) {
		if (in[0] == '+' && upper_hex(in[1]) && upper_hex(in[2])) {
			out[o++] = (char)(str_hexval(in[1]) << 4 | str_hexval(in[2])); /* valid: upper_hex */
			in += 2;
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
	return o;
}
