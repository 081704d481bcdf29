/* ids: unique, time-ordered identifiers for sessions, queue entries and reject references. */
#ifndef MXG_IDS_H
#define MXG_IDS_H

#include <stddef.h>

/* Queue ids: 20 upper-case hex digits (seconds, microseconds, pid, sequence). Unique across the
 * worker processes of one host; sorting them sorts by arrival time. */
#define QUEUE_ID_LEN 20
/* Session ids and reject references: 12 lower-case base32 characters. */
#define SHORT_ID_LEN 12

void id_queue(char out[QUEUE_ID_LEN + 1]);
void id_short(char out[SHORT_ID_LEN + 1]);
/* Returns 1 when s is a well-formed queue id (used before building paths from it). */
int id_queue_valid(const char *s);

#endif
