"""PROXY protocol v1/v2 listeners: the address in the header becomes the client address for the
queue file, the Received: header, the log and policy; anything that is not a valid header from a
proxy_from peer is closed without a single SMTP byte."""
import socket
import struct
import time

import pytest

from conftest import CLIENT_HELO, HOSTNAME, ipv6_loopback_works, queued_id

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_PROXY, V2_LOCAL = 0x1, 0x0


def proxy_v1(src, dst="127.0.0.1", sport=40000, dport=25):
    family = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode()


def proxy_v2(src=None, dst=None, sport=40000, dport=25, command=V2_PROXY, family=None,
             tlvs=b""):
    """A v2 header; without src it carries no address (fam UNSPEC, e.g. for LOCAL)."""
    if src is None:
        fam, addr = 0x00, b""
    elif ":" in src:
        fam = 0x21
        addr = socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
    else:
        fam = 0x11
        addr = socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst)
    if src is not None:
        addr += struct.pack("!HH", sport, dport)
    body = addr + tlvs
    return V2_SIGNATURE + struct.pack("!BBH", 0x20 | command, family or fam, len(body)) + body


def transaction_after_header(srv, header, port=None, host="127.0.0.1", split=False,
                             with_ehlo=False, source=None):
    """Sends a PROXY header, runs one transaction, returns the queue file."""
    with srv.raw(port or srv.proxy_port, host=host, source=source) as c:
        assert c.nothing_more(0.2), "no greeting before the PROXY header"
        if split:
            c.send(header[:7])
            time.sleep(0.1)
            c.send(header[7:])
        elif with_ehlo:
            c.send(header + f"EHLO {CLIENT_HELO}\r\n".encode())
        else:
            c.send(header)
        c.greeting()
        if with_ehlo:
            assert c.reply().code == 250
        else:
            c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: proxied\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
        assert c.cmd("QUIT").code == 221
    return srv.queue_file(qid)


def assert_client(q, ip):
    assert q.get("client") == ip
    literals = [f"[{ip}]"] + ([f"[IPv6:{ip}]"] if ":" in ip else [])   # RFC 5321 4.1.3
    assert any(q.received.startswith(f"Received: from {CLIENT_HELO} ({lit})\r\n"
                                     f"\tby {HOSTNAME} (mxgate) with ESMTP id {q.qid}\r\n")
               for lit in literals), q.received


@pytest.fixture
def proxy_mxgate(mxgate_factory):
    return mxgate_factory(proxy=True)


def test_v1_tcp4_header_sets_the_client(proxy_mxgate):
    q = transaction_after_header(proxy_mxgate, proxy_v1("192.0.2.7"))
    assert_client(q, "192.0.2.7")
    proxy_mxgate.wait_for_log(r"smtp proxy ip=192\.0\.2\.7 port=40000 via=127\.0\.0\.1 version=1")


@pytest.mark.parametrize("header, ip", [
    (proxy_v1("2001:db8::7", "::1"), "2001:db8::7"),
    (proxy_v2("192.0.2.7", "127.0.0.1"), "192.0.2.7"),
    (proxy_v2("2001:db8::7", "::1"), "2001:db8::7"),
    (proxy_v2("192.0.2.8", "127.0.0.1", tlvs=b"\x04\x00\x03abc"), "192.0.2.8"),  # TLV skipped
    (proxy_v2("192.0.2.9", "127.0.0.1", tlvs=b"\x04\x03\xf1" + b"a" * 1009), "192.0.2.9"),
], ids=["v1-tcp6", "v2-tcp4", "v2-tcp6", "v2-tlv", "v2-largest"])
def test_header_forms(proxy_mxgate, header, ip):
    q = transaction_after_header(proxy_mxgate, header)
    assert_client(q, ip)
    proxy_mxgate.wait_for_log(rf"smtp proxy ip={ip} ")


def test_header_split_over_segments(proxy_mxgate):
    assert_client(transaction_after_header(proxy_mxgate, proxy_v1("192.0.2.7"), split=True),
                  "192.0.2.7")


def test_header_and_ehlo_in_one_write_is_pregreet(proxy_mxgate):
    """Bytes that arrive with the header were sent before any greeting could reach the client:
    a pregreet client, refused by default (docs/smtp.md)."""
    with proxy_mxgate.raw(proxy_mxgate.proxy_port) as c:
        c.send(proxy_v2("192.0.2.9", "127.0.0.1") + f"EHLO {CLIENT_HELO}\r\n".encode())
        r = c.reply()
        assert (r.code, r.enhanced) == (554, "5.5.1"), r
        assert "talked before the greeting" in r.text
        c.read_until_closed()
    proxy_mxgate.wait_for_log(r"smtp pregreet ip=192\.0\.2\.9 bytes=\d+ action=reject")
    assert not proxy_mxgate.queued()


def test_header_and_ehlo_in_one_write_only_logged(mxgate_factory):
    """With pregreet_reject = no, nothing the client sent is lost: the EHLO is answered after
    the greeting."""
    srv = mxgate_factory(proxy=True, settings={"pregreet_reject": "no"})
    assert_client(transaction_after_header(srv, proxy_v2("192.0.2.9", "127.0.0.1"),
                                           with_ehlo=True), "192.0.2.9")
    srv.wait_for_log(r"smtp pregreet ip=192\.0\.2\.9 bytes=\d+ action=log")


@pytest.mark.parametrize("header", [proxy_v2(command=V2_LOCAL), b"PROXY UNKNOWN\r\n"],
                         ids=["v2-local", "v1-unknown"])
def test_header_without_address_keeps_the_peer(proxy_mxgate, header):
    assert_client(transaction_after_header(proxy_mxgate, header), "127.0.0.1")


@pytest.mark.parametrize("data", [
    b"PROXY TCP4 192.0.2.999 127.0.0.1 40000 25\r\n",
    b"PROXY TCP4 192.0.2.7 127.0.0.1 40000\r\n",
    b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 25\n",
    b"PROXY TCP6 192.0.2.7 127.0.0.1 40000 25\r\n",
    b"PROXY SCTP 192.0.2.7 127.0.0.1 40000 25\r\n",
    b"EHLO client.example\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    V2_SIGNATURE + b"\x31\x11\x00\x0c" + bytes(12),             # version 3
    V2_SIGNATURE + b"\x21\x12\x00\x0c" + bytes(12),             # UDP over IPv4
    V2_SIGNATURE + b"\x21\x11\x00\x04" + bytes(4),              # address block too short
    V2_SIGNATURE + b"\x21\x11\xff\xff",                         # longer than we accept
    proxy_v2("192.0.2.9", "127.0.0.1", tlvs=b"\x04\x03\xf2" + b"a" * 1010),  # 1 byte over
], ids=["v1-bad-addr", "v1-missing-port", "v1-bare-lf", "v1-tcp6-with-v4", "v1-bad-proto",
        "plain-smtp", "http", "tls-hello", "v2-version", "v2-udp", "v2-short", "v2-huge",
        "v2-too-long"])
def test_bad_header_is_closed_without_reply(proxy_mxgate, data):
    with proxy_mxgate.raw(proxy_mxgate.proxy_port) as c:
        c.send(data)
        assert c.read_until_closed(3) == b"", "no SMTP byte may be sent"
    proxy_mxgate.wait_for_log(r"smtp proxy-error peer=127\.0\.0\.1 ")
    assert "smtp proxy ip=" not in proxy_mxgate.log_text()


def test_silent_client_gets_no_greeting_and_is_closed(proxy_mxgate):
    # A plain SMTP client waits for a greeting; the PROXY listener waits for a header (10 s).
    with proxy_mxgate.raw(proxy_mxgate.proxy_port, timeout=14) as c:
        assert c.nothing_more(1.0)
        assert c.read_until_closed(13) == b""


def test_untrusted_peer_is_closed_without_greeting(mxgate_factory):
    srv = mxgate_factory(proxy=True, proxy_from="127.0.0.2/32")
    with srv.raw(srv.proxy_port) as c:
        c.send(proxy_v1("192.0.2.7"))
        assert c.read_until_closed(3) == b""
    srv.wait_for_log(r"smtp proxy-refused peer=127\.0\.0\.1 ")
    # the same header from the trusted 127.0.0.2 is honoured
    q = transaction_after_header(srv, proxy_v1("192.0.2.7"), source=("127.0.0.2", 0))
    assert_client(q, "192.0.2.7")


def test_plain_listener_ignores_proxy_headers(proxy_mxgate):
    with proxy_mxgate.raw() as c:
        c.greeting()
        r = c.cmd(proxy_v1("192.0.2.7").rstrip(b"\r\n"))
        assert (r.code, r.enhanced) == (500, "5.5.2"), r
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
    assert proxy_mxgate.queue_file(qid).get("client") == "127.0.0.1"


def test_relay_through_proxy_is_refused_for_the_proxied_client(proxy_mxgate):
    with proxy_mxgate.raw(proxy_mxgate.proxy_port) as c:
        c.send(proxy_v1("203.0.113.9"))
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        r = c.cmd("RCPT TO:<victim@other.example>")
    assert (r.code, r.enhanced) == (550, "5.7.1"), r
    assert "client [203.0.113.9]" in r.message
    assert "Unable to relay" in r.message


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback")
@pytest.mark.parametrize("header, ip", [
    (proxy_v1("192.0.2.7", "127.0.0.1"), "192.0.2.7"),
    (proxy_v2("2001:db8::7", "::1"), "2001:db8::7"),
], ids=["v1-tcp4", "v2-tcp6"])
def test_ipv6_proxy_listener(mxgate_factory, header, ip):
    srv = mxgate_factory(ipv6_proxy=True, proxy_from="::1/128")
    q = transaction_after_header(srv, header, port=srv.ipv6_proxy_port, host="::1")
    assert_client(q, ip)
    srv.wait_for_log(rf"smtp proxy ip={ip} port=40000 via=::1 ")
