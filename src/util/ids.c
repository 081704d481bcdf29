/* ids: see ids.h. The pid keeps ids of concurrent workers apart; the sequence keeps ids of one
 * worker apart within one microsecond. */
#include "util/ids.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "util/pid.h"

static unsigned id_seq;

void id_queue(char out[QUEUE_ID_LEN + 1])
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	snprintf(out, QUEUE_ID_LEN + 1, "%08lX%05lX%05X%02X", (unsigned long)tv.tv_sec & 0xffffffffUL,
		 (unsigned long)tv.tv_usec & 0xfffffUL, (unsigned)pid_self() & 0xfffffu, id_seq++ & 0xffu);
}

void id_short(char out[SHORT_ID_LEN + 1])
{
	static const char alphabet[] = "abcdefghijkmnpqrstuvwxyz23456789";
	struct timeval tv;
	uint64_t v;

	gettimeofday(&tv, NULL);
	/* 60 bits: 24 of time (s, wraps every 194 days), 20 of microseconds, 8 of pid, 8 of sequence. */
	v = ((uint64_t)tv.tv_sec & 0xffffffu) << 36 | ((uint64_t)tv.tv_usec & 0xfffffu) << 16 |
	    ((uint64_t)pid_self() & 0xffu) << 8 | (id_seq++ & 0xffu);
	for (int i = SHORT_ID_LEN - 1; i >= 0; i--) {
		out[i] = alphabet[v & 31];
		v >>= 5;
	}
	out[SHORT_ID_LEN] = '\0';
}

int id_queue_valid(const char *s)
{
	if (strlen(s) != QUEUE_ID_LEN)
		return 0;
	return strspn(s, "0123456789ABCDEF") == QUEUE_ID_LEN;
}
