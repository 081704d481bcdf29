/* catalog: see catalog.h. The table is written for the person who gets the report: causes say
 * what happened without jargon, fixes say what to do next (never "contact your postmaster"
 * alone, which nobody can act on), and the admin notes carry the RFC terms and mxgate's own
 * settings and reply codes (docs/smtp.md, src/policy/engine.c).
 *
 * Order: class 2, then class 4, then class 5; inside a class by subject and detail. Every
 * subject of classes 4 and 5 has its generic X.Y.0 entry so that the fallback always lands on
 * the right subject; a test checks this. */
#include "dsn/catalog.h"

#include <stdio.h>
#include <string.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* RFC 3463 section 2: subject and detail are 1*3digit. */
#define DSN_PART_DIGITS_MAX 3

/* Shared sentences for the temporary codes: the gateway retries, so nobody acts yet. */
#define FIX_WAIT                                                                           \
	"Nothing yet: the mail system keeps trying to deliver the message and tells you if " \
	"it gives up. You don't need to send it again."

static const struct dsn_entry catalog[] = {
	/* ---- class 2: success ----------------------------------------------------------- */
	{ "2.0.0", "success",
	  "The message was accepted.",
	  "Nothing to do.",
	  "Generic success: the server accepted the command or the message.",
	  DSN_ACTOR_NOBODY },

	/* ---- class 4: temporary failures ------------------------------------------------ */
	{ "4.0.0", "temporary failure",
	  "The recipient's mail server had a temporary problem and couldn't take the message "
	  "right now.",
	  FIX_WAIT,
	  "A temporary failure without a more specific code; the remote server's reply says "
	  "more. Delivery is retried until the maximum queue lifetime runs out.",
	  DSN_ACTOR_NOBODY },
	{ "4.1.0", "temporary address problem",
	  "The recipient's mail server couldn't check the address right now.",
	  FIX_WAIT,
	  "Other or undefined address status, temporary (RFC 3463 X.1.0); see the remote reply.",
	  DSN_ACTOR_NOBODY },
	{ "4.2.0", "mailbox temporarily unavailable",
	  "The recipient's mailbox can't take messages at the moment.",
	  FIX_WAIT,
	  "Other or undefined mailbox status, temporary (X.2.0): the mailbox exists but the "
	  "server deferred delivery; see its reply.",
	  DSN_ACTOR_NOBODY },
	{ "4.2.2", "mailbox full",
	  "The recipient's mailbox is full, so it can't take new messages at the moment.",
	  FIX_WAIT " If it gives up, tell the recipient by other means (phone, another "
	  "address) that their mailbox is full.",
	  "The recipient's mailbox is over its storage quota (X.2.2) and the server treats this "
	  "as temporary. The recipient or their administrator must free space or raise the "
	  "quota before the message expires in the queue.",
	  DSN_ACTOR_NOBODY },
	{ "4.3.0", "temporary mail system problem",
	  "The recipient's mail system had a temporary problem and couldn't take the message.",
	  FIX_WAIT,
	  "Other or undefined mail system status, temporary (X.3.0); see the remote reply.",
	  DSN_ACTOR_NOBODY },
	{ "4.3.1", "mail system storage full",
	  "A mail server on the way was short of storage space and couldn't take the message "
	  "at the moment.",
	  FIX_WAIT,
	  "Insufficient system storage (X.3.1) at the server named in the reply. When mxgate "
	  "itself answers 452 4.3.1, the file system holding its queue (data_dir) is full.",
	  DSN_ACTOR_NOBODY },
	{ "4.4.0", "temporary network or routing problem",
	  "The message couldn't be passed on to the recipient's mail server yet because of a "
	  "network problem.",
	  FIX_WAIT,
	  "Other or undefined network or routing status, temporary (X.4.0); see the error.",
	  DSN_ACTOR_NOBODY },
	{ "4.4.1", "no answer from the recipient's mail server",
	  "The recipient's mail server didn't answer, so the message couldn't be handed over "
	  "yet.",
	  FIX_WAIT,
	  "Connections to the recipient's mail servers were refused or timed out (X.4.1). Check "
	  "that the hosts in the domain's MX records (or the tenant's route) accept connections "
	  "on port 25 from this gateway.",
	  DSN_ACTOR_NOBODY },
	{ "4.4.2", "connection dropped",
	  "The connection to the recipient's mail server broke off while the message was being "
	  "sent.",
	  FIX_WAIT,
	  "The connection was closed or timed out in the middle of the SMTP dialogue (X.4.2). "
	  "mxgate itself answers 421 4.4.2 when a client stays idle past command_timeout or "
	  "data_timeout.",
	  DSN_ACTOR_NOBODY },
	{ "4.4.3", "recipient check temporarily unavailable",
	  "The address couldn't be checked right now because a lookup service (the DNS or the "
	  "recipient directory) didn't answer.",
	  FIX_WAIT,
	  "Directory server failure (X.4.3): a DNS lookup failed temporarily (SERVFAIL or "
	  "timeout), or mxgate's recipient check against the tenant's server failed or timed "
	  "out. mxgate then answers 451 4.4.3, never 550, so no valid address is refused.",
	  DSN_ACTOR_NOBODY },
	{ "4.4.5", "mail system congested",
	  "The recipient's mail system is overloaded at the moment.",
	  FIX_WAIT,
	  "System congestion (X.4.5): the remote server limits connections or messages; "
	  "delivery is retried with backoff.",
	  DSN_ACTOR_NOBODY },
	{ "4.4.7", "delivery time expired",
	  "The message couldn't be delivered during the whole retry period: the recipient's "
	  "mail server couldn't be reached or kept putting the message off, so the gateway "
	  "gave up.",
	  "Send the message again later. If that fails too, tell the recipient by other means "
	  "that their mail server isn't receiving email; their email administrator needs to "
	  "fix it.",
	  "The message stayed in the queue for the maximum queue lifetime without a successful "
	  "delivery (X.4.7). The last error is shown; it says why the attempts failed.",
	  DSN_ACTOR_RECIPIENT_ADMIN },
	{ "4.5.0", "temporary protocol problem",
	  "The sending and the receiving mail servers had a temporary problem talking to each "
	  "other.",
	  FIX_WAIT,
	  "Other or undefined protocol status, temporary (X.5.0); see the remote reply.",
	  DSN_ACTOR_NOBODY },
	{ "4.5.3", "too many recipients for now",
	  "The message had more recipients than the receiving server takes in one go.",
	  "Nothing: the sending mail server passes on the remaining recipients in another "
	  "attempt by itself.",
	  "Too many recipients (X.5.3): mxgate answers 452 4.5.3 beyond max_recipients per "
	  "transaction; RFC 5321 clients send the remaining recipients in a new transaction.",
	  DSN_ACTOR_NOBODY },
	{ "4.6.0", "temporary content problem",
	  "The receiving server couldn't process the content of the message right now.",
	  FIX_WAIT,
	  "Other or undefined media error, temporary (X.6.0); see the remote reply.",
	  DSN_ACTOR_NOBODY },
	{ "4.7.0", "temporarily refused for security or policy",
	  "The receiving server turned the connection away for now for a security or policy "
	  "reason, for example because it had too many connections or errors.",
	  FIX_WAIT,
	  "Other security or policy status, temporary (X.7.0). mxgate answers 421 4.7.0 when "
	  "max_sessions is reached or a client makes more than max_errors errors.",
	  DSN_ACTOR_NOBODY },
	{ "4.7.1", "temporarily not authorized",
	  "The receiving server put the message off for a policy reason, for example "
	  "greylisting or a sending-rate limit.",
	  FIX_WAIT " Such messages usually get through on a later attempt.",
	  "Delivery not authorized, temporary (X.7.1): typically greylisting, a rate limit, or "
	  "a policy check that could not complete. A conforming sender retries.",
	  DSN_ACTOR_NOBODY },

	/* ---- class 5: permanent failures ------------------------------------------------ */
	{ "5.0.0", "permanent failure",
	  "The recipient's mail server refused the message and didn't say exactly why.",
	  "Read the server's reply in the section for email administrators. If it doesn't "
	  "help, forward this report to your email administrator. Sending the message again "
	  "unchanged won't work: it will be refused again.",
	  "A permanent failure without a more specific code; the remote server's reply is the "
	  "only explanation. Retrying won't help until the cause is fixed.",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.1.0", "address problem",
	  "There is a problem with an address of the message: the recipient's or your own.",
	  "Check the recipient's address for typing mistakes and send the message again. If it "
	  "is right, forward this report to your email administrator.",
	  "Other address status (X.1.0): the server refused an envelope address; see its reply.",
	  DSN_ACTOR_SENDER },
	{ "5.1.1", "bad destination mailbox address",
	  "The address doesn't exist: the recipient's mail server has no mailbox by that name.",
	  "Check the address for typing mistakes and send the message again. If you copied it "
	  "from an old message or your address book's suggestions, type it in full instead, or "
	  "ask the recipient for their current address by other means.",
	  "The recipient's domain exists and its mail server answered, but said this mailbox "
	  "does not exist (X.1.1, user unknown). Nothing is wrong on the sending side. mxgate "
	  "answers 550 5.1.1 at RCPT when recipient validation is on for the tenant.",
	  DSN_ACTOR_SENDER },
	{ "5.1.2", "bad destination domain",
	  "The part of the address after the @ (the domain) doesn't exist or doesn't receive "
	  "email.",
	  "Check the part after the @ for typing mistakes (for example exmaple.com instead of "
	  "example.com) and send the message again.",
	  "Bad destination system address (X.1.2): the recipient domain does not exist in the "
	  "DNS (NXDOMAIN) or has no way to receive mail.",
	  DSN_ACTOR_SENDER },
	{ "5.1.3", "bad destination address syntax",
	  "The recipient's address isn't written correctly: it has a space, a missing @, or "
	  "characters that aren't allowed in an address.",
	  "Correct the address and send the message again. Copy it exactly from the recipient's "
	  "signature or website rather than typing it from memory.",
	  "Bad destination mailbox address syntax (X.1.3, RFC 5321 section 4.1.2). mxgate answers "
	  "501 5.1.3 for malformed RCPT paths and local parts, domains or paths over 64, 255 or "
	  "256 octets.",
	  DSN_ACTOR_SENDER },
	{ "5.1.7", "bad sender address syntax",
	  "Your own address, as your mail system presented it, isn't written correctly, so the "
	  "message was refused.",
	  "Check the sender address set in your email program or in the device or application "
	  "that sent the message (a scanner, a website form). If it looks right, forward this "
	  "report to your email administrator.",
	  "Bad sender's mailbox address syntax (X.1.7): the MAIL FROM path failed syntax checks "
	  "(mxgate: 501 5.1.7). Often a device or application with a misconfigured sender.",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.1.8", "bad sender domain",
	  "The recipient's mail server didn't accept your address as the sender because its "
	  "domain (the part after the @) doesn't exist or can't receive replies.",
	  "Forward this report to your email administrator: the domain of your address must be "
	  "published in the DNS so that others can reply to it.",
	  "Bad sender's system address (X.1.8): the sender domain did not resolve (NXDOMAIN, or "
	  "no MX, A or AAAA records) at the receiving server, which refuses mail it could not "
	  "answer. Check the DNS of the sender domain.",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.1.10", "recipient domain accepts no email",
	  "The recipient's domain says publicly that it doesn't receive any email.",
	  "Reach the recipient another way, or ask them for an address that receives email.",
	  "Recipient address has null MX (X.1.10): the domain publishes MX 0 \".\" (RFC 7505).",
	  DSN_ACTOR_SENDER },
	{ "5.2.0", "mailbox unavailable",
	  "The recipient's mailbox can't take messages, for example because it is disabled or "
	  "over a limit.",
	  "Let the recipient know by other means and send the message again once they have "
	  "sorted it out.",
	  "Other or undefined mailbox status (X.2.0): the mailbox exists but the server refused "
	  "delivery; see its reply.",
	  DSN_ACTOR_RECIPIENT_ADMIN },
	{ "5.2.1", "mailbox disabled",
	  "The recipient's mailbox exists but is switched off and doesn't accept messages.",
	  "Reach the recipient by other means: they may have left the organisation or moved to "
	  "a new address.",
	  "Mailbox disabled, not accepting messages (X.2.1).",
	  DSN_ACTOR_RECIPIENT_ADMIN },
	{ "5.2.2", "mailbox full",
	  "The recipient's mailbox is full and can't take new messages.",
	  "Tell the recipient by other means (phone, another address) that their mailbox is "
	  "full, and send the message again once they have made room. A smaller message, "
	  "without large attachments, may get through sooner.",
	  "The recipient's mailbox is over its storage quota (X.2.2) and the server treats this "
	  "as permanent. Only the recipient or their administrator can free space or raise the "
	  "quota.",
	  DSN_ACTOR_RECIPIENT_ADMIN },
	{ "5.2.3", "message too large for the mailbox",
	  "The message is bigger than the recipient's mailbox accepts.",
	  "Share large files with a link instead of attaching them, or split them over several "
	  "messages, and send again.",
	  "Message length exceeds an administrative limit of the recipient's mailbox (X.2.3).",
	  DSN_ACTOR_SENDER },
	{ "5.3.0", "mail system problem",
	  "The recipient's mail system has a problem and couldn't accept the message.",
	  "Tell the recipient by other means so that their email administrator can fix it, and "
	  "send the message again later.",
	  "Other or undefined mail system status (X.3.0) at the destination; see its reply.",
	  DSN_ACTOR_RECIPIENT_ADMIN },
	{ "5.3.4", "message too big",
	  "The message is bigger than a mail server on the way accepts.",
	  "Make the message smaller: share large files with a link instead of attaching them, "
	  "or compress them, then send it again.",
	  "Message too big for system (X.3.4): over the SIZE limit (RFC 1870) of the server "
	  "named in the reply, or mxgate's max_message_size, or a text line longer than 1000 "
	  "octets (RFC 5321 section 4.5.3.1.6); mxgate answers 552 5.3.4.",
	  DSN_ACTOR_SENDER },
	{ "5.4.0", "routing problem",
	  "The message couldn't be routed to the recipient's mail server.",
	  "Check the part of the address after the @. If it is right, tell the recipient by "
	  "other means that their email administrator needs to fix their mail setup.",
	  "Other or undefined network or routing status (X.4.0); see the error.",
	  DSN_ACTOR_RECIPIENT_ADMIN },
	{ "5.4.4", "no mail server for the recipient's domain",
	  "No mail server could be found for the recipient's domain, so there was nowhere to "
	  "deliver the message.",
	  "Check the part of the address after the @ for typing mistakes. If it is right, the "
	  "recipient's email administrator needs to publish the domain's mail servers (MX "
	  "records); tell the recipient by other means.",
	  "Unable to route (X.4.4): the recipient domain has no MX and no usable A/AAAA "
	  "records, or its MX hosts do not resolve (RFC 5321 section 5.1).",
	  DSN_ACTOR_RECIPIENT_ADMIN },
	{ "5.4.6", "mail loop",
	  "The message was going round in circles between mail servers and was stopped.",
	  "Forward this report to the recipient's email administrator (or yours): the mail "
	  "servers for that domain pass messages back and forth to each other.",
	  "Routing loop detected (X.4.6): too many Received: headers, or the message came back "
	  "to a host that had already handled it. Check the MX records, forwarding rules and "
	  "the tenant's route.",
	  DSN_ACTOR_RECIPIENT_ADMIN },
	{ "5.5.0", "protocol error",
	  "The sending and the receiving mail servers didn't understand each other.",
	  "Forward this report to your email administrator.",
	  "Other or undefined protocol status (X.5.0): an SMTP command was refused; see the "
	  "reply.",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.5.1", "invalid command",
	  "The sending and the receiving mail servers didn't understand each other.",
	  "Forward this report to your email administrator.",
	  "Invalid command (X.5.1): not recognised, or not allowed at that point of the SMTP "
	  "dialogue.",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.5.2", "syntax error",
	  "The sending and the receiving mail servers didn't understand each other.",
	  "Forward this report to your email administrator.",
	  "Syntax error (X.5.2): a command was malformed, or a command line exceeded 512 octets "
	  "(RFC 5321 section 4.5.3.1.4; mxgate answers 500 5.5.2).",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.5.3", "too many recipients",
	  "The message had more recipients than the receiving server accepts for one message.",
	  "Send the message to fewer recipients at a time, or use a mailing list.",
	  "Too many recipients (X.5.3), refused permanently by the receiving server.",
	  DSN_ACTOR_SENDER },
	{ "5.5.4", "invalid command arguments",
	  "The sending and the receiving mail servers didn't understand each other.",
	  "Forward this report to your email administrator.",
	  "Invalid command arguments (X.5.4): a MAIL or RCPT parameter was unknown or invalid.",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.6.0", "content refused",
	  "The content of the message (its format or an attachment) was refused.",
	  "Remove unusual attachments or formatting and send the message again. If that doesn't "
	  "help, forward this report to your email administrator.",
	  "Other or undefined media error (X.6.0): the content was refused; see the reply.",
	  DSN_ACTOR_SENDER },
	{ "5.6.3", "8-bit content not supported",
	  "The message contains characters or data that the next mail server can't carry, and "
	  "the gateway doesn't change messages to make them fit.",
	  "Tell the recipient by other means that their mail server refused the message's "
	  "format. As a workaround, send it again as plain text.",
	  "Conversion required but not supported (X.6.3): the message has 8-bit content "
	  "(BODY=8BITMIME or raw 8-bit bytes) and the next hop did not offer 8BITMIME (RFC "
	  "6152). mxgate does not downgrade content.",
	  DSN_ACTOR_RECIPIENT_ADMIN },
	{ "5.6.7", "non-ASCII address not supported",
	  "An address of the message contains non-English (non-ASCII) characters, and a mail "
	  "server on the way doesn't support such addresses.",
	  "If the recipient has an address written only in plain Latin letters, send the "
	  "message to that one. Otherwise forward this report to your email administrator.",
	  "Non-ASCII addresses not permitted (X.6.7): an address needs SMTPUTF8 (RFC 6531), but "
	  "MAIL FROM did not ask for it (mxgate: 553 5.6.7) or the next hop does not offer it.",
	  DSN_ACTOR_SENDER },
	{ "5.6.11", "bare LF or CR in the message",
	  "The message was refused because its line endings were malformed, which mail servers "
	  "treat as a sign of an attack (SMTP smuggling).",
	  "Forward this report to your email administrator: the program or device that sent "
	  "the message must be fixed. The same message sent from a standard email program gets "
	  "through.",
	  "The message data contained a bare LF or a bare CR. mxgate accepts only CRLF line "
	  "ends and <CRLF>.<CRLF> as the end of data, so nothing can be smuggled past it, and "
	  "answers 550 5.6.11 after the data.",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.7.0", "refused for security or policy",
	  "The recipient's mail system refused the message for a security or policy reason, "
	  "for example because it requires an encrypted connection.",
	  "Forward this report to your email administrator; the server's reply quoted in it "
	  "names the rule. If it asks for STARTTLS or TLS, your mail server must encrypt its "
	  "connections to this recipient.",
	  "Other or undefined security or policy status (X.7.0). mxgate answers 530 5.7.0 when "
	  "a partner connector of the tenant requires TLS and the client did not use STARTTLS: "
	  "enable TLS on the sending server for this route.",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.7.1", "delivery not authorized",
	  "The recipient's mail system refused the message because of one of its rules: for "
	  "example the sending server isn't allowed to pass mail to that domain, or its address "
	  "is on a block list.",
	  "Forward this report to your email administrator. The server's reply quoted in it "
	  "names the rule that refused the message (relay denied, an IP Block list, or a DNS "
	  "block list) and a reference; with them the administrators can look up the exact "
	  "decision.",
	  "Delivery not authorized (X.7.1). mxgate's reply names the rule (relay, ip-block or "
	  "dnsbl) and a reference id; on the gateway, `mxgate explain IP` replays the decision "
	  "step by step. Relay denied: the domain is not served by the gateway and the client "
	  "is not an on-premises connector. IP Block list or DNS block list: the sending IP is "
	  "listed; get it delisted, or ask the recipient's administrator for an Allow entry.",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.7.5", "encryption failed",
	  "The message couldn't be sent because an encrypted connection to the recipient's mail "
	  "server, which is required for it, couldn't be set up.",
	  "Forward this report to your email administrator or the recipient's: one of the two "
	  "mail servers has a certificate or encryption setting problem.",
	  "Cryptographic failure (X.7.5): the TLS handshake failed or the certificate did not "
	  "verify on a route that requires TLS. Check certificates, host names and protocol "
	  "versions (mxgate requires TLS 1.2 or later).",
	  DSN_ACTOR_RECIPIENT_ADMIN },
	{ "5.7.23", "SPF check failed",
	  "The recipient's mail system couldn't confirm that the server that sent the message "
	  "may send email for your domain.",
	  "Forward this report to your email administrator: your domain's SPF record must list "
	  "the server that sent this message.",
	  "SPF validation failed (X.7.23, RFC 7372): the sending IP is not authorised by the "
	  "SPF record of the MAIL FROM domain.",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.7.25", "sending server has no reverse DNS",
	  "The recipient's mail system refused the message because the server that sent it "
	  "isn't properly named in the DNS.",
	  "Forward this report to your email administrator: the sending server's IP address "
	  "needs a reverse DNS (PTR) record that matches its name.",
	  "Reverse DNS validation failed (X.7.25, RFC 7372): no PTR record for the client IP, "
	  "or it does not resolve back to the same address.",
	  DSN_ACTOR_SENDER_ADMIN },
	{ "5.7.26", "sender authentication failed (DMARC)",
	  "The recipient's mail system couldn't confirm that the message really comes from "
	  "your domain, so it refused it as possibly forged.",
	  "Forward this report to your email administrator: your domain's SPF, DKIM and DMARC "
	  "records must cover the server that sent this message.",
	  "Multiple authentication checks failed (X.7.26, RFC 7372), usually DMARC: neither SPF "
	  "nor DKIM passed in alignment with the From: domain. Check that SPF includes the "
	  "sending server and that it signs with DKIM.",
	  DSN_ACTOR_SENDER_ADMIN },
};

static unsigned parse_part(const char **sp, int *ok)
{
	const char *s = *sp;
	unsigned v = 0, n = 0;

	while (*s >= '0' && *s <= '9' && n < DSN_PART_DIGITS_MAX + 1) {
		v = v * 10 + (unsigned)(*s - '0');
		s++;
		n++;
	}
	*ok = n >= 1 && n <= DSN_PART_DIGITS_MAX;
	*sp = s;
	return v;
}

int dsn_code_canon(const char *s, char canon[DSN_CODE_MAX + 1])
{
	unsigned subject, detail;
	char cls;
	int ok;

	if (!s || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return -1;
	cls = s[0];
	s += 2;
	subject = parse_part(&s, &ok);
	if (!ok || *s++ != '.')
		return -1;
	detail = parse_part(&s, &ok);
	if (!ok || *s != '\0')
		return -1;
	if (canon)
		snprintf(canon, DSN_CODE_MAX + 1, "%c.%u.%u", cls, subject, detail);
	return 0;
}

static const struct dsn_entry *find_exact(const char *canon)
{
	for (size_t i = 0; i < ARRAY_LEN(catalog); i++)
		if (strcmp(catalog[i].code, canon) == 0)
			return &catalog[i];
	return NULL;
}

const struct dsn_entry *dsn_lookup(const char *enhanced_code)
{
	char canon[DSN_CODE_MAX + 1], generic[DSN_CODE_MAX + 1];
	const struct dsn_entry *e;
	const char *dot;

	if (dsn_code_canon(enhanced_code, canon) < 0)
		return NULL;
	if ((e = find_exact(canon)))
		return e;
	dot = strrchr(canon, '.');
	snprintf(generic, sizeof(generic), "%.*s.0", (int)(dot - canon), canon);
	if ((e = find_exact(generic)))
		return e;
	snprintf(generic, sizeof(generic), "%c.0.0", canon[0]);
	return find_exact(generic); /* classes 2, 4 and 5 all have one: a test checks it */
}

const char *dsn_actor_text(enum dsn_actor actor)
{
	switch (actor) {
	case DSN_ACTOR_SENDER: return "you (the sender)";
	case DSN_ACTOR_RECIPIENT_ADMIN: return "the recipient's email administrator";
	case DSN_ACTOR_SENDER_ADMIN: return "your email administrator";
	case DSN_ACTOR_NOBODY: break;
	}
	return "nobody for now (the mail system keeps trying)";
}

void dsn_each(void (*fn)(const struct dsn_entry *e, void *arg), void *arg)
{
	for (size_t i = 0; i < ARRAY_LEN(catalog); i++)
		fn(&catalog[i], arg);
}
