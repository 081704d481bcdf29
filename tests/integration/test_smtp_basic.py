"""The SMTP dialogue: greeting, EHLO, complete transactions (smtplib, swaks, raw socket),
pipelining, simple verbs, and relay refusal for every address form that could sneak a foreign
destination past the domain check."""
import re
import signal
import subprocess

import pytest

from conftest import (CLIENT_HELO, HOSTNAME, ROUTE, ConnectionClosed, ipv6_loopback_works,
                      queued_id, smtplib_reply)

EXTENSIONS = ["PIPELINING", "SIZE 26214400", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"]


def test_greeting_names_host_and_software(mxgate):
    with mxgate.raw() as c:
        r = c.reply()
    assert r.code == 220
    assert r.lines == [f"{HOSTNAME} ESMTP mxgate"]


def test_ehlo_lists_extensions_without_starttls(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        r = c.cmd("EHLO client.example")
    assert r.code == 250
    assert r.lines[0] == f"{HOSTNAME} Hello [127.0.0.1]"
    missing = [ext for ext in EXTENSIONS if ext not in r.lines[1:]]
    assert not missing, f"missing {missing} in {r.lines}"
    assert "STARTTLS" not in r.lines


def test_ehlo_size_follows_max_message_size(mxgate_factory):
    srv = mxgate_factory(settings={"max_message_size": "64K"})
    with srv.smtp() as s:
        code, _ = s.ehlo()
        assert code == 250
        assert s.esmtp_features["size"] == str(64 * 1024)


def test_helo_gets_plain_250_without_extensions(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        r = c.cmd("HELO client.example")
    assert (r.code, r.lines) == (250, [HOSTNAME])


def test_full_transaction_with_smtplib(mxgate):
    with mxgate.smtp() as s:
        code, _ = s.ehlo()
        assert code == 250
        for ext in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8"):
            assert s.has_extn(ext), ext
        assert not s.has_extn("starttls")
        assert s.mail("alice@client.example") == (250, b"2.1.0 Ok")
        assert s.rcpt("someone@example.test") == (250, b"2.1.5 Ok")
        code, msg = s.docmd("DATA")
        assert code == 354, msg
        s.send(b"Subject: smtplib\r\n\r\nHello from smtplib.\r\n.\r\n")
        qid = queued_id(smtplib_reply(*s.getreply()))
        code, msg = s.quit()
        assert code == 221 and msg.startswith(b"2.0.0 "), msg
    q = mxgate.queue_file(qid)
    assert q.get("from") == "alice@client.example"
    assert q.message == b"Subject: smtplib\r\n\r\nHello from smtplib.\r\n"


def test_sendmail_with_smtplib_sends_size_parameter(mxgate):
    msg = b"Subject: sendmail\r\n\r\nbody\r\n"
    with mxgate.smtp() as s:
        refused = s.sendmail("alice@client.example", ["someone@example.test"], msg)
        assert refused == {}
    (q,) = mxgate.queued_messages()
    assert q.get("mail-params") == f"SIZE={len(msg)}"
    assert q.message == msg


def test_full_transaction_with_swaks(mxgate):
    out = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{mxgate.port}", "--to", "someone@example.test",
         "--from", "sender@client.example", "--helo", CLIENT_HELO, "--timeout", "10",
         "--header", "Subject: swaks test"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"<-  220 {HOSTNAME} ESMTP mxgate" in out.stdout
    m = re.search(r"<-  250 2\.0\.0 Ok: queued as ([0-9A-F]{20})\n", out.stdout)
    assert m, out.stdout
    assert "<-  221 2.0.0" in out.stdout
    q = mxgate.queue_file(m.group(1))
    assert q.recipients[0]["rcpt"] == "someone@example.test"
    assert b"Subject: swaks test\r\n" in q.message


def test_quit_replies_221_and_closes(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        r = c.cmd("QUIT")
        assert (r.code, r.enhanced) == (221, "2.0.0")
        assert HOSTNAME in r.message
        assert c.read_until_closed() == b""


def test_simple_verbs(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        r = c.cmd("VRFY x")
        assert (r.code, r.enhanced) == (252, "2.5.0")
        r = c.cmd("HELP")
        assert (r.code, r.enhanced) == (214, "2.0.0")
        r = c.cmd("NOOP")
        assert (r.code, r.enhanced) == (250, "2.0.0")
        r = c.cmd("noop")
        assert (r.code, r.enhanced) == (250, "2.0.0"), "verbs are case-insensitive"


def test_rset_forgets_the_transaction(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        r = c.cmd("RSET")
        assert (r.code, r.enhanced) == (250, "2.0.0")
        r = c.cmd("RCPT TO:<x@example.test>")
        assert (r.code, r.enhanced) == (503, "5.5.1")
        r = c.cmd("DATA")
        assert (r.code, r.enhanced) == (503, "5.5.1")
        # a new transaction after RSET works
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback")
def test_ipv6_listener(mxgate_factory):
    srv = mxgate_factory(ipv6=True)
    with srv.raw(srv.ipv6_port, host="::1") as c:
        c.greeting()
        assert c.ehlo().lines[0] == f"{HOSTNAME} Hello [::1]"
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        r = c.cmd("RCPT TO:<x@other.example>")
        assert r.code == 550 and "client [::1]" in r.message, r
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: v6\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
    assert srv.queue_file(qid).get("client") == "::1"


# ----------------------------------------------------------------------------------------
# Pipelining (RFC 2920)


def test_pipelined_transaction_replies_in_order(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        c.send(b"MAIL FROM:<a@client.example>\r\n"
               b"RCPT TO:<x@example.test>\r\n"
               b"RCPT TO:<y@other.example>\r\n"
               b"DATA\r\n")
        rs = c.replies(4)
        assert [(r.code, r.enhanced) for r in rs] == [
            (250, "2.1.0"), (250, "2.1.5"), (550, "5.7.1"), (354, None)], rs
        assert "Unable to relay" in rs[2].message
        c.send(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        qid = queued_id(c.reply())
        assert c.reply().code == 221
    q = mxgate.queue_file(qid)
    assert [r["rcpt"] for r in q.recipients] == ["x@example.test"]


def test_pipelined_group_with_rset_keeps_order(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        c.send(b"MAIL FROM:<a@client.example>\r\nRCPT TO:<x@example.test>\r\nRSET\r\n"
               b"NOOP\r\nRCPT TO:<x@example.test>\r\nHELP\r\n")
        rs = c.replies(6)
    assert [(r.code, r.enhanced) for r in rs] == [
        (250, "2.1.0"), (250, "2.1.5"), (250, "2.0.0"), (250, "2.0.0"), (503, "5.5.1"),
        (214, "2.0.0")]


# ----------------------------------------------------------------------------------------
# Relay refusal: never an open relay


def test_relay_refusal_names_domain_client_host_and_ref(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        r = c.cmd("RCPT TO:<victim@other.example>")
    assert (r.code, r.enhanced) == (550, "5.7.1")
    text = r.message
    assert "Unable to relay" in text
    assert "other.example" in text
    assert "client [127.0.0.1]" in text
    assert HOSTNAME in text
    m = re.search(r"\bref ([a-z2-9]{12})\b", text)
    assert m, text
    mxgate.wait_for_log(rf"smtp reject ref={m.group(1)} ")


@pytest.mark.parametrize("rcpt, code, enhanced", [
    ("victim@other.example", 550, "5.7.1"),
    ("u%other.example@example.test", 550, "5.7.1"),        # percent hack
    ("other.example!u@example.test", 550, "5.7.1"),        # bang path
    ('"u@other.example"@example.test', 550, "5.7.1"),      # quoted @ in the local part
    ("@example.test:u@other.example", 550, "5.7.1"),       # source route: final address decides
    ("@a.example,@example.test:u@other.example", 550, "5.7.1"),
    ("u@example.test.", 501, "5.1.3"),                     # trailing dot
    ("u@[127.0.0.1]", 550, "5.7.1"),                       # address literal
    ("u@[IPv6:::1]", 550, "5.7.1"),
    ("u@sub.example.test", 550, "5.7.1"),                  # subdomain is another domain
    ("u@example.test.other.example", 550, "5.7.1"),
    ("U@EXAMPLE.TEST", 250, "2.1.5"),                      # domains are case-insensitive
    ("@other.example:u@example.test", 250, "2.1.5"),       # route dropped, final is ours
], ids=lambda v: v if isinstance(v, str) else None)
def test_recipient_forms(mxgate, rcpt, code, enhanced):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        r = c.cmd(f"RCPT TO:<{rcpt}>")
        assert (r.code, r.enhanced) == (code, enhanced), r
        if code == 550:
            assert "Unable to relay" in r.message
        r = c.cmd("DATA")
        if code != 250:
            assert (r.code, r.enhanced) == (554, "5.5.1"), "no recipient, no DATA"
            return
        assert r.code == 354
        c.send(b"Subject: rcpt\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
    expected = {"U@EXAMPLE.TEST": "U@example.test",
                "@other.example:u@example.test": "u@example.test"}[rcpt]
    q = mxgate.queue_file(qid)
    assert q.recipients == [{"rcpt": expected, "rcpt-tenant": "default", "rcpt-route": ROUTE}]


def queue_postmaster(srv):
    """RCPT TO:<postmaster> then a message; returns the RCPT reply and the queue id (or None)."""
    with srv.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        r = c.cmd("RCPT TO:<postmaster>")
        if r.code != 250:
            return r, None
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: to postmaster\r\n\r\nx\r\n.\r\n")
        return r, queued_id(c.reply())


def test_postmaster_of_a_served_host_name(mxgate_factory):
    srv = mxgate_factory(tenants={"default": (ROUTE, ["example.test"]),
                                  "gateway": ("127.0.0.1:2601", [HOSTNAME])})
    r, qid = queue_postmaster(srv)
    assert (r.code, r.enhanced) == (250, "2.1.5"), r
    assert srv.queue_file(qid).recipients == [
        {"rcpt": "postmaster", "rcpt-tenant": "gateway", "rcpt-route": "127.0.0.1:2601"}]


def test_postmaster_without_domain_goes_to_the_configured_address(mxgate_factory):
    """RFC 5321 4.5.1: <postmaster> is accepted, as the [server] postmaster address."""
    srv = mxgate_factory(settings={"postmaster": "hostmaster@example.test"})
    r, qid = queue_postmaster(srv)
    assert (r.code, r.enhanced) == (250, "2.1.5"), r
    assert srv.queue_file(qid).recipients[0]["rcpt"] == "hostmaster@example.test"


def test_refused_recipients_do_not_open_a_transaction(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        for rcpt in ("a@other.example", "b%other.example@example.test", "c@[192.0.2.1]"):
            assert c.cmd(f"RCPT TO:<{rcpt}>").code == 550
        r = c.cmd("DATA")
        assert (r.code, r.enhanced) == (554, "5.5.1")
    assert mxgate.queued() == []


# ----------------------------------------------------------------------------------------
# Shutdown


def test_sigterm_lets_an_open_session_finish(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        mxgate.proc.send_signal(signal.SIGTERM)
        mxgate.wait_for_log(r"worker stopping signal=15 sessions=1")
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: during shutdown\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
        with mxgate.raw() as late:            # no new session is started any more
            assert late.nothing_more(0.5)
    mxgate.proc.wait(timeout=5)               # exits as soon as the last session is gone
    assert mxgate.proc.returncode == 0
    assert mxgate.queue_file(qid).message == b"Subject: during shutdown\r\n\r\nx\r\n"


def test_quit_during_shutdown_gets_221(mxgate):
    mxgate.sanitizer_report_expected = True      # asserted here, not in the fixture
    with mxgate.raw() as c:
        c.greeting()
        mxgate.proc.send_signal(signal.SIGTERM)
        mxgate.wait_for_log(r"worker stopping signal=15 sessions=1")
        try:
            r = c.cmd("QUIT")
        except ConnectionClosed:
            r = None
    mxgate.proc.wait(timeout=5)
    assert r is not None and (r.code, r.enhanced) == (221, "2.0.0"), "221 lost"
    assert mxgate.sanitizer_reports() == []


def test_sigterm_with_a_session_left_open_exits_cleanly(mxgate):
    mxgate.sanitizer_report_expected = True      # asserted here, not in the fixture
    with mxgate.raw(timeout=20) as c:
        c.greeting()
        mxgate.proc.send_signal(signal.SIGTERM)
        mxgate.proc.wait(timeout=15)             # 10 s grace, then the worker gives up
        c.read_until_closed(2)                    # the worker is gone: closed
    assert mxgate.sanitizer_reports() == []
