"""STARTTLS (RFC 3207): offer, handshake, state reset, the TLS record in the queue file, and the
plaintext-injection attack (CVE-2011-0411): commands pipelined behind STARTTLS are discarded."""
import socket
import ssl

import pytest

from conftest import CLIENT_HELO, HOSTNAME, queued_id, tls_client_context


@pytest.fixture
def tls_mxgate(mxgate_factory):
    return mxgate_factory(tls=True)


def start_tls(c):
    """EHLO, STARTTLS, handshake on a RawSMTP; returns the SSL socket."""
    c.greeting()
    assert "STARTTLS" in c.ehlo().lines
    r = c.cmd("STARTTLS")
    assert (r.code, r.enhanced) == (220, "2.0.0"), r
    return c.starttls()


def test_ehlo_offers_starttls_when_configured(tls_mxgate):
    with tls_mxgate.raw() as c:
        c.greeting()
        r = c.ehlo()
    assert r.lines.count("STARTTLS") == 1


def test_starttls_not_configured(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        r = c.cmd("STARTTLS")
        assert (r.code, r.enhanced) == (502, "5.5.1")
        assert c.cmd("NOOP").code == 250


def test_starttls_needs_ehlo_and_no_argument(tls_mxgate):
    with tls_mxgate.raw() as c:
        c.greeting()
        r = c.cmd("STARTTLS")
        assert (r.code, r.enhanced) == (503, "5.5.1")
        c.ehlo()
        r = c.cmd("STARTTLS now")
        assert (r.code, r.enhanced) == (501, "5.5.4")


def test_handshake_resets_state_and_hides_starttls(tls_mxgate):
    with tls_mxgate.raw() as c:
        tls = start_tls(c)
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        # RFC 3207 4.2: the client must start over with EHLO
        r = c.cmd("MAIL FROM:<a@client.example>")
        assert (r.code, r.enhanced) == (503, "5.5.1"), r
        r = c.ehlo()
        assert r.lines[0] == f"{HOSTNAME} Hello [127.0.0.1]"
        assert "STARTTLS" not in r.lines
        assert "PIPELINING" in r.lines
        r = c.cmd("STARTTLS")
        assert (r.code, r.enhanced) == (503, "5.5.1"), "TLS is already active"


def test_transaction_before_starttls_is_forgotten(tls_mxgate):
    with tls_mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("STARTTLS").code == 220
        c.starttls()
        c.ehlo()
        r = c.cmd("DATA")
        assert (r.code, r.enhanced) == (503, "5.5.1"), r
        r = c.cmd("RCPT TO:<x@example.test>")
        assert (r.code, r.enhanced) == (503, "5.5.1"), r


def test_transaction_over_tls_is_recorded(tls_mxgate):
    with tls_mxgate.raw() as c:
        tls = start_tls(c)
        c.ehlo("tls-client.example")
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: over TLS\r\n\r\nsecret\r\n.\r\n")
        qid = queued_id(c.reply())
        cipher, _, bits = tls.cipher()
        expected_tls = f"{tls.version()}:{cipher}:{bits}"
    q = tls_mxgate.queue_file(qid)
    assert q.get("tls") == expected_tls
    assert q.get("helo") == "tls-client.example"
    assert q.received.startswith("Received: from tls-client.example ([127.0.0.1])\r\n"
                                 f"\tby {HOSTNAME} (mxgate) with ESMTPS id {qid}\r\n"
                                 f"\t(tls={expected_tls})\r\n"), q.received
    assert q.message == b"Subject: over TLS\r\n\r\nsecret\r\n"
    tls_mxgate.wait_for_log(r"smtp starttls ip=127\.0\.0\.1")


def test_smtplib_starttls_then_sendmail(tls_mxgate):
    with tls_mxgate.smtp() as s:
        s.ehlo()
        assert s.has_extn("starttls")
        code, msg = s.starttls(context=tls_client_context())
        assert (code, msg) == (220, b"2.0.0 Ready to start TLS")
        s.ehlo()
        assert not s.has_extn("starttls")
        assert s.sendmail("a@client.example", ["x@example.test"],
                          b"Subject: smtplib tls\r\n\r\nhi\r\n") == {}
        s.close()    # no QUIT: a stop right after it races the TLS linger (shutdown bug)
    (q,) = tls_mxgate.queued_messages()
    assert q.get("tls").startswith("TLSv1.")


@pytest.mark.parametrize("pipelined", [
    b"RSET\r\n",
    b"MAIL FROM:<a@b.example>\r\n",
    b"EHLO injected.example\r\nMAIL FROM:<a@b.example>\r\n",
], ids=["rset", "mail", "ehlo+mail"])
def test_commands_pipelined_behind_starttls_are_discarded(tls_mxgate, pipelined):
    with tls_mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        c.send(b"STARTTLS\r\n" + pipelined)          # one write: arrives with STARTTLS
        r = c.reply()
        assert (r.code, r.enhanced) == (220, "2.0.0"), r
        c.starttls()                                 # fails if a plaintext reply followed
        r = c.cmd("HELP")
        assert (r.code, r.enhanced) == (214, "2.0.0"), \
            f"first reply over TLS answers a pipelined plaintext command: {r}"
        r = c.cmd("MAIL FROM:<a@client.example>")
        assert (r.code, r.enhanced) == (503, "5.5.1"), "an injected EHLO was not executed"


# The last reply before a close used to be lost over TLS (fixed in d648cb3). Each test also
# waits for the server's close: it comes once the reply has reached the socket.

def test_quit_over_tls_gets_221(tls_mxgate):
    with tls_mxgate.raw() as c:
        start_tls(c)
        c.ehlo()
        r = c.cmd("QUIT")
        assert (r.code, r.enhanced) == (221, "2.0.0")
        assert c.read_until_closed() == b""


def test_max_errors_over_tls_gets_421(mxgate_factory):
    srv = mxgate_factory(tls=True, settings={"max_errors": 2})
    with srv.raw() as c:
        start_tls(c)
        assert c.cmd("FROB1").code == 500
        assert c.cmd("FROB2").code == 500
        r = c.reply()
        assert (r.code, r.enhanced) == (421, "4.7.0")
        assert c.read_until_closed() == b""


def test_helo_name_used_after_tls_is_the_new_one(tls_mxgate):
    with tls_mxgate.raw() as c:
        c.greeting()
        c.ehlo("before-tls.example")
        assert c.cmd("STARTTLS").code == 220
        c.starttls()
        c.ehlo(CLIENT_HELO)
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: helo\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
    assert tls_mxgate.queue_file(qid).get("helo") == CLIENT_HELO


def test_tls_1_2_is_accepted(tls_mxgate):
    ctx = tls_client_context()
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with tls_mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("STARTTLS").code == 220
        tls = c.starttls(ctx)
        assert tls.version() == "TLSv1.2"
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: tls12\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
    assert tls_mxgate.queue_file(qid).get("tls").startswith("TLSv1.2:")


def test_silent_client_after_starttls_is_disconnected(mxgate_factory):
    # The 421 cannot reach a client that never starts the handshake; the connection must still
    # be closed, within command_timeout plus the linger bound (CONN_LINGER_SECONDS = 10 s).
    # Before d648cb3 it stayed open for good, in CLOSE-WAIT even after the client left.
    srv = mxgate_factory(tls=True, settings={"command_timeout": 2})
    with srv.raw(timeout=20) as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("STARTTLS").code == 220
        srv.wait_for_log(r"smtp disconnect .* reason=timeout", timeout=5)
        try:
            c.read_until_closed(12)
        except socket.timeout:
            pytest.fail("connection still open 12 s after the session timed out")
