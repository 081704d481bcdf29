"""Command syntax, sequence errors and every limit with its reply (docs/smtp.md "Limits")."""
import socket
import time

import pytest

from conftest import ConnectionClosed, queued_id, send_message

# ----------------------------------------------------------------------------------------
# Command lines


def test_command_line_over_512_octets_is_refused_and_session_continues(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        r = c.cmd("NOOP " + "a" * 600)
        assert (r.code, r.enhanced) == (500, "5.5.2"), r
        r = c.cmd("NOOP")
        assert (r.code, r.enhanced) == (250, "2.0.0")


def test_command_line_of_exactly_512_octets_is_accepted(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        line = b"NOOP " + b"a" * 505            # + CRLF = 512 octets
        c.send(line + b"\r\n")
        assert c.reply().code == 250
        c.send(line + b"a\r\n")                 # 513 octets
        assert c.reply().code == 500


def test_overlong_line_does_not_run_as_a_command(mxgate):
    # The part after the limit is discarded through the line end, not executed.
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        c.send(b"NOOP " + b"a" * 600 + b"RSET\r\nHELP\r\n")
        rs = c.replies(2)
        assert [(r.code, r.enhanced) for r in rs] == [(500, "5.5.2"), (214, "2.0.0")]


def test_overlong_line_split_across_segments_does_not_run_its_tail(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        c.send(b"NOOP " + b"a" * 600)      # over the limit, no line end yet
        time.sleep(0.3)                    # the server reads (and drops) this part first
        c.send(b"HELP\r\nNOOP\r\n")         # "HELP" is still the same over-long line
        rs = [c.reply(), c.reply()]
        assert [(r.code, r.enhanced) for r in rs] == [(500, "5.5.2"), (250, "2.0.0")], rs


def test_unknown_command(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        r = c.cmd("FROB x")
        assert (r.code, r.enhanced) == (500, "5.5.2")


def test_nul_in_command_is_refused(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        r = c.cmd(b"NOOP a\x00b")
        assert (r.code, r.enhanced) == (500, "5.5.2")


# ----------------------------------------------------------------------------------------
# Sequence and argument errors


def test_mail_before_helo(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        r = c.cmd("MAIL FROM:<a@client.example>")
        assert (r.code, r.enhanced) == (503, "5.5.1")


def test_rcpt_before_mail(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        r = c.cmd("RCPT TO:<x@example.test>")
        assert (r.code, r.enhanced) == (503, "5.5.1")


def test_data_without_recipients(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        r = c.cmd("DATA")
        assert (r.code, r.enhanced) == (503, "5.5.1"), "DATA without MAIL"
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        r = c.cmd("DATA")
        assert r.code in (554, 503) and r.enhanced == "5.5.1", r


def test_nested_mail(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        r = c.cmd("MAIL FROM:<b@client.example>")
        assert (r.code, r.enhanced) == (503, "5.5.1")


@pytest.mark.parametrize("arg", ["FROM:a@client.example", "FROM:", "FROM:<a@client.example",
                                 "TO:<a@client.example>", "FROM:<a@@client.example>"])
def test_mail_syntax_errors(mxgate, arg):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        r = c.cmd(f"MAIL {arg}")
        assert r.code == 501, r
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250, "no transaction was opened"


def test_null_sender_is_accepted(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        r = c.cmd("MAIL FROM:<>")
        assert (r.code, r.enhanced) == (250, "2.1.0")


def test_unknown_mail_parameter(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@client.example> FROB=1")
        assert (r.code, r.enhanced) == (555, "5.5.4")


def test_mail_parameters_need_ehlo(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        assert c.cmd("HELO client.example").code == 250
        r = c.cmd("MAIL FROM:<a@client.example> BODY=8BITMIME")
        assert (r.code, r.enhanced) == (555, "5.5.4")


def test_data_with_argument(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        r = c.cmd("DATA now")
        assert (r.code, r.enhanced) == (501, "5.5.4")


def test_ehlo_resets_the_transaction(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        c.ehlo()
        r = c.cmd("DATA")
        assert (r.code, r.enhanced) == (503, "5.5.1"), r


@pytest.mark.parametrize("cmd, code, enhanced", [
    ("MAIL FROM:<" + "l" * 64 + "@client.example>", 250, "2.1.0"),
    ("MAIL FROM:<" + "l" * 65 + "@client.example>", 501, "5.1.7"),
    ("RCPT TO:<" + "l" * 64 + "@example.test>", 250, "2.1.5"),
    ("RCPT TO:<" + "l" * 65 + "@example.test>", 501, "5.1.3"),
    ("RCPT TO:<x@" + "a" * 64 + ".example.test>", 501, "5.1.3"),        # label over 63
    ("RCPT TO:<x@example..test>", 501, "5.1.3"),
    ("RCPT TO:<x@example.test> FROB=1", 555, "5.5.4"),
    ("RCPT TO:x@example.test", 501, "5.5.4"),
], ids=["mail-local-64", "mail-local-65", "rcpt-local-64", "rcpt-local-65", "label-64",
        "empty-label", "rcpt-param", "no-brackets"])
def test_address_limits_and_syntax(mxgate, cmd, code, enhanced):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        if cmd.startswith("RCPT"):
            assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        r = c.cmd(cmd)
        assert (r.code, r.enhanced) == (code, enhanced), r


def test_rcpt_attempts_are_bounded(mxgate_factory):
    # refused recipients count too: 2 x max_recipients attempts per transaction
    srv = mxgate_factory(settings={"max_recipients": 3})
    with srv.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        for i in range(6):
            assert c.cmd(f"RCPT TO:<probe{i}@other.example>").code == 550
        r = c.cmd("RCPT TO:<x@example.test>")
        assert (r.code, r.enhanced) == (452, "4.5.3"), r
        assert c.cmd("RSET").code == 250
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250, "RSET starts a new count"


# ----------------------------------------------------------------------------------------
# Sizes


def test_mail_size_parameter_over_the_limit(mxgate_factory):
    srv = mxgate_factory(settings={"max_message_size": "64K"})
    with srv.raw() as c:
        c.greeting()
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@client.example> SIZE=65537")
        assert (r.code, r.enhanced) == (552, "5.3.4")
        r = c.cmd("MAIL FROM:<a@client.example> SIZE=65536")
        assert (r.code, r.enhanced) == (250, "2.1.0")


def _lines_body(total):
    """A message of about `total` octets in 78-character lines."""
    line = b"x" * 76 + b"\r\n"
    return b"Subject: big\r\n\r\n" + line * (total // len(line))


def test_message_over_max_size_is_refused_after_the_dot(mxgate_factory):
    srv = mxgate_factory(settings={"max_message_size": "64K"})
    with srv.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(_lines_body(100 * 1024))
        assert c.nothing_more(0.3), "no reply before the final dot"
        c.send(b".\r\n")
        r = c.reply()
        assert (r.code, r.enhanced) == (552, "5.3.4"), r
        assert c.cmd("NOOP").code == 250, "the session goes on"
    assert srv.queued() == []
    assert srv.tmp_files() == []


def test_message_under_max_size_is_accepted(mxgate_factory):
    srv = mxgate_factory(settings={"max_message_size": "64K"})
    body = _lines_body(60 * 1024)
    qid = queued_id(send_message(srv.port, body))
    assert srv.queue_file(qid).message == body


def test_text_line_of_1001_octets_is_refused(mxgate):
    body = b"Subject: long line\r\n\r\n" + b"y" * 999 + b"\r\n"
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(body + b".\r\n")
        r = c.reply()
        assert (r.code, r.enhanced) == (552, "5.3.4"), r
    assert mxgate.queued() == []


def test_text_line_of_1000_octets_is_accepted(mxgate):
    body = b"Subject: long line\r\n\r\n" + b"y" * 998 + b"\r\n"
    qid = queued_id(send_message(mxgate.port, body))
    assert mxgate.queue_file(qid).message == body


# ----------------------------------------------------------------------------------------
# Recipients, errors, sessions


def test_max_recipients(mxgate_factory):
    srv = mxgate_factory(settings={"max_recipients": 3})
    with srv.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        for i in range(3):
            assert c.cmd(f"RCPT TO:<r{i}@example.test>").code == 250
        r = c.cmd("RCPT TO:<r3@example.test>")
        assert (r.code, r.enhanced) == (452, "4.5.3"), r
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: three\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
    rcpts = [r["rcpt"] for r in srv.queue_file(qid).recipients]
    assert rcpts == ["r0@example.test", "r1@example.test", "r2@example.test"]


def test_max_errors_closes_with_421(mxgate_factory):
    srv = mxgate_factory(settings={"max_errors": 3})
    with srv.raw() as c:
        c.greeting()
        assert c.cmd("FROB1").code == 500
        assert c.cmd("FROB2").code == 500
        assert c.cmd("NOOP").code == 250, "two errors do not close the session"
        assert c.cmd("FROB3").code == 500
        r = c.reply()
        assert (r.code, r.enhanced) == (421, "4.7.0"), r
        assert c.read_until_closed() == b""


def test_vrfy_without_argument_is_a_syntax_error(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        r = c.cmd("VRFY")
        assert (r.code, r.enhanced) == (501, "5.5.4")


def test_non_ascii_sender_needs_smtputf8(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        r = c.cmd("MAIL FROM:<jörg@client.example>".encode())
        assert (r.code, r.enhanced) == (553, "5.6.7"), r
        r = c.cmd("MAIL FROM:<jörg@client.example> SMTPUTF8".encode())
        assert (r.code, r.enhanced) == (250, "2.1.0"), r
        r = c.cmd("RCPT TO:<ümlaut@example.test>".encode())
        assert (r.code, r.enhanced) == (250, "2.1.5"), r
        assert c.cmd("DATA").code == 354
        c.send("Subject: utf8\r\n\r\nGrüße\r\n.\r\n".encode())
        qid = queued_id(c.reply())
    q = mxgate.queue_file(qid)
    assert q.get("from") == "jörg@client.example"
    assert q.recipients[0]["rcpt"] == "ümlaut@example.test"
    assert q.get("mail-params") == "SMTPUTF8"
    assert " with UTF8SMTP id " in q.received


def test_non_ascii_recipient_needs_smtputf8(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        r = c.cmd("RCPT TO:<ümlaut@example.test>".encode())
        assert (r.code, r.enhanced) == (553, "5.6.7"), r


def test_max_sessions(mxgate_factory):
    srv = mxgate_factory(settings={"max_sessions": 2})
    first, second = srv.raw(), srv.raw()
    try:
        first.greeting()
        second.greeting()
        with srv.raw() as third:
            r = third.reply()
            assert (r.code, r.enhanced) == (421, "4.7.0"), r
            assert third.read_until_closed() == b""
    finally:
        first.close()
        second.close()

    def greeted():
        with srv.raw() as c:
            return c.reply().code == 220
    deadline = time.monotonic() + 5
    while not greeted():
        assert time.monotonic() < deadline, "sessions are not released after close"
        time.sleep(0.1)


# ----------------------------------------------------------------------------------------
# Timeouts


def test_command_timeout(mxgate_factory):
    srv = mxgate_factory(settings={"command_timeout": 2})
    with srv.raw() as c:
        c.greeting()
        started = time.monotonic()
        r = c.reply(timeout=6)
        elapsed = time.monotonic() - started
        assert (r.code, r.enhanced) == (421, "4.4.2"), r
        assert 1.5 <= elapsed <= 4.0, elapsed
        assert c.read_until_closed(2) == b""


def test_command_timeout_is_per_command(mxgate_factory):
    srv = mxgate_factory(settings={"command_timeout": 2})
    with srv.raw() as c:
        c.greeting()
        for _ in range(2):                      # 2.4 s in all, each gap under the timeout
            time.sleep(1.2)
            assert c.cmd("NOOP").code == 250
        r = c.reply(timeout=6)
        assert (r.code, r.enhanced) == (421, "4.4.2")


def test_data_timeout(mxgate_factory):
    srv = mxgate_factory(settings={"data_timeout": 2, "command_timeout": 30})
    with srv.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: stalled\r\n\r\nhalf a mess")
        started = time.monotonic()
        r = c.reply(timeout=6)
        elapsed = time.monotonic() - started
        assert (r.code, r.enhanced) == (421, "4.4.2"), r
        assert 1.5 <= elapsed <= 4.0, elapsed
        try:
            assert c.read_until_closed(2) == b""
        except (ConnectionClosed, socket.timeout):
            pytest.fail("connection not closed after the data timeout")
    assert srv.queued() == []
    assert srv.tmp_files() == []
