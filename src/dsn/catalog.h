/* catalog: the one table of RFC 3463 enhanced status codes, in words people can act on.
 *
 * Each entry says what happened (cause, for the sender), what to do about it (fix), what it
 * means for an email administrator (admin), and who has to act. SMTP replies, non-delivery
 * reports (dsn/ndr.h), `mxgate explain` and `mxgate ndr CODE` all read this table, so a
 * status code is described the same way everywhere.
 *
 * Codes are "class.subject.detail" (RFC 3463 section 2): class 2, 4 or 5, subject and detail
 * 0-999 written without leading zeros. Lookups fall back from an unknown detail to the
 * subject's generic entry (5.7.99 -> 5.7.0) and from there to the class's (5.9.1 -> 5.0.0). */
#ifndef MXG_DSN_CATALOG_H
#define MXG_DSN_CATALOG_H

/* Longest well-formed code: "5.999.999". */
#define DSN_CODE_MAX 9

/* Who has to do something so that the mail gets through. */
enum dsn_actor {
	DSN_ACTOR_NOBODY,          /* nothing to do, or wait: the gateway keeps trying */
	DSN_ACTOR_SENDER,          /* the person who sent the message */
	DSN_ACTOR_RECIPIENT_ADMIN, /* the email administrator of the recipient's domain */
	DSN_ACTOR_SENDER_ADMIN,    /* the email administrator of the sender's domain */
};

struct dsn_entry {
	const char *code;  /* canonical "5.1.1" */
	const char *title; /* short, lower case: "bad destination mailbox address" */
	const char *cause; /* one or two sentences a non-technical sender understands */
	const char *fix;   /* what the sender (or whoever acts) should do */
	const char *admin; /* what it means for an email administrator */
	enum dsn_actor actor;
};

/* Parses an enhanced status code and writes its canonical form ("5.01.1" -> "5.1.1") to
 * canon (DSN_CODE_MAX + 1 bytes) when canon is not NULL. Returns 0, or -1 when s is not a
 * well-formed code of class 2, 4 or 5. */
int dsn_code_canon(const char *s, char canon[DSN_CODE_MAX + 1]);

/* Returns the entry for the code, else the subject's generic entry, else the class's: never
 * NULL for a well-formed code. Returns NULL when the code is malformed. Whether the entry is
 * an exact match shows in strcmp(entry->code, canonical code). The entries are static. */
const struct dsn_entry *dsn_lookup(const char *enhanced_code);

/* Who acts, in words for the sender: "you (the sender)", "the recipient's email
 * administrator", ... Static string. */
const char *dsn_actor_text(enum dsn_actor actor);

/* Calls fn for every entry in table order (for docs and tests). */
void dsn_each(void (*fn)(const struct dsn_entry *e, void *arg), void *arg);

#endif
