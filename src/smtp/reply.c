/* reply: see reply.h. */
#include "smtp/reply.h"

#include <stdio.h>
#include <string.h>

static size_t put_line(char *buf, size_t bufsz, size_t off, int code, char sep, const char *enh,
		       const char *text, size_t tlen)
{
	int n;

	if (off >= bufsz)
		return off;
	if (enh)
		n = snprintf(buf + off, bufsz - off, "%03d%c%s %.*s\r\n", code, sep, enh, (int)tlen, text);
	else
		n = snprintf(buf + off, bufsz - off, "%03d%c%.*s\r\n", code, sep, (int)tlen, text);
	if (n < 0)
		return off;
	return (size_t)n < bufsz - off ? off + (size_t)n : bufsz - 1;
}

size_t reply_format(char *buf, size_t bufsz, int code, const char *enh, const char *text)
{
	/* room per line for the text: 512 minus "550-5.7.1 " and CRLF */
	const size_t room = SMTP_REPLY_LINE_MAX - 4 - (enh ? strlen(enh) + 1 : 0) - 2;
	size_t len = strlen(text), off = 0;

	buf[0] = '\0';
	while (len > room) {
		/* split at the last space that fits, else hard */
		size_t cut = room;
		while (cut > room / 2 && text[cut] != ' ')
			cut--;
		if (text[cut] != ' ')
			cut = room;
		off = put_line(buf, bufsz, off, code, '-', enh, text, cut);
		text += cut;
		len -= cut;
		while (*text == ' ') {
			text++;
			len--;
		}
	}
	return put_line(buf, bufsz, off, code, ' ', enh, text, len);
}

size_t reply_format_lines(char *buf, size_t bufsz, int code, const char *enh,
			  const char *const *lines, size_t n)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		off = put_line(buf, bufsz, off, code, i + 1 < n ? '-' : ' ', enh, lines[i],
			       strlen(lines[i]));
	return off;
}

void reply_reject_text(char *out, size_t outsz, const char *text, const char *client_ip,
		       const char *hostname, const char *ref)
{
	snprintf(out, outsz, "%s (client [%s], %s, ref %s)", text, client_ip, hostname, ref);
}
