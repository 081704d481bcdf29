"""Abuse limits: per-client sessions and connection rate (shared by every worker, IPv6 per
prefix, limit_exempt), per-session messages, bytes and junk commands, deadlines against slow
clients, and the pregreet check (greet_pause_ms).

Per-client limits do not apply to limit_exempt (default 127.0.0.0/8 and ::1): the tests present
documentation addresses through the PROXY listener. No DNSBL is configured: the limits do not
depend on the policy."""
import re
import smtplib
import time

import pytest

from conftest import (CLIENT_HELO, HOSTNAME, ConnectionClosed, RawSMTP, ipv6_loopback_works,
                      queued_id, run_mxgate, wait_until)
from limits_helpers import (greeted, greeted_eventually, limit_message, proxied, quit_session,
                            read_line, refused, start_with_greet_pause)

TIMEOUT_REPLY = f"{HOSTNAME} Error: timeout exceeded, closing"
PREGREET_REPLY = (b"554 5.5.1 " + HOSTNAME.encode()
                  + b" Protocol error: the client talked before the greeting\r\n")


def sessions_text(ip, n):
    return limit_message(f"Too many concurrent sessions from {ip} (limit {n}), try again later")


def rate_text(ip, count, n):
    return limit_message(f"Too many connections from {ip} ({count} in the last minute, "
                         f"limit {n}), try again later")


def transaction(c, body=b"Subject: limits\r\n\r\nx\r\n"):
    """MAIL, RCPT, DATA on a greeted, EHLO'd session; returns the queue id."""
    assert c.cmd("MAIL FROM:<a@client.example>").code == 250
    assert c.cmd("RCPT TO:<x@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(body + b".\r\n")
    return queued_id(c.reply())


def test_show_config_lists_the_limits_with_their_defaults():
    out = run_mxgate("show-config").stdout
    for key, default in [("max_sessions_per_ip", "50"), ("max_connect_rate", "300"),
                         ("limit_exempt", "127.0.0.0/8 ::1"), ("limit_ipv6_prefix", "64"),
                         ("max_messages", "1000"), ("max_session_bytes", "1G"),
                         ("max_junk_commands", "100"), ("greet_pause_ms", "0"),
                         ("pregreet_reject", "yes")]:
        assert re.search(rf"^server\.{key}\t{re.escape(default)}\t", out, re.M), key


# ----------------------------------------------------------------------------------------
# Concurrent sessions per client address


def test_sessions_per_ip(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"max_sessions_per_ip": 3})
    ip = "192.0.2.10"
    held = [greeted(srv, ip) for _ in range(3)]
    try:
        r = refused(srv, ip)
        assert r.message == sessions_text(ip, 3), r
        line = srv.wait_for_log(rf"smtp limit ip={re.escape(ip)} limit=max_sessions_per_ip "
                                r"sessions=\d+ per_minute=\d+").group(0)
        assert "sessions=4 " in line, line
        other = greeted(srv, "192.0.2.11")
        other.ehlo()
        quit_session(other)

        quit_session(held.pop(0))
        held.append(greeted_eventually(srv, ip))    # the closed one made room
        held[-1].ehlo()
        assert refused(srv, ip).message == sessions_text(ip, 3), "room for one only"
    finally:
        for c in held:
            c.close()


def _worker_of_port(srv, port):
    """The worker that logged `smtp connect ... port=PORT` (the peer is the proxy, 127.0.0.1)."""
    m = srv.wait_for_log(rf"worker=(\d+) sid=\S+ smtp connect ip=127\.0\.0\.1 port={port} ")
    return int(m.group(1))


def test_sessions_per_ip_is_counted_across_workers(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"workers": 2, "max_sessions_per_ip": 2})
    ip = "192.0.2.12"
    mixed_rounds = 0
    for _ in range(8):
        held = [greeted_eventually(srv, ip) for _ in range(2)]
        try:
            with proxied(srv, ip) as c:
                refused_port = c.sock.getsockname()[1]
                r = c.reply()
                assert (r.code, r.enhanced) == (421, "4.7.0"), \
                    f"third concurrent session of {ip} with 2 workers: {r}"
                assert r.message == sessions_text(ip, 2), r
                assert c.read_until_closed() == b""
            workers = {_worker_of_port(srv, h.sock.getsockname()[1]) for h in held}
            if workers - {_worker_of_port(srv, refused_port)}:
                mixed_rounds += 1          # refused by a worker that holds fewer than 2
        finally:
            for h in held:
                quit_session(h)
    # every round spreads over the two workers with probability 3/4: a round where the refusing
    # worker held at most one of the two proves the count is shared
    assert mixed_rounds, "the connections never spread over both workers"


# ----------------------------------------------------------------------------------------
# Connection rate, limit_exempt


def test_connect_rate(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"max_connect_rate": 5})
    ip = "192.0.2.20"
    for _ in range(5):
        quit_session(greeted(srv, ip))
    r = refused(srv, ip)
    assert r.message == rate_text(ip, 6, 5), r
    srv.wait_for_log(rf"smtp limit ip={re.escape(ip)} limit=max_connect_rate sessions=\d+ "
                     r"per_minute=6\b")
    quit_session(greeted(srv, "192.0.2.21"))          # another address has its own count
    r = refused(srv, ip)
    assert "Too many connections from 192.0.2.20 (" in r.message, r


def test_loopback_is_exempt_by_default(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"max_connect_rate": 2, "max_sessions_per_ip": 1})
    held = [greeted(srv, "127.0.0.5") for _ in range(4)]      # presented loopback: exempt
    for c in held:
        quit_session(c)
    c = greeted(srv, "192.0.2.22")
    try:
        assert refused(srv, "192.0.2.22").message == sessions_text("192.0.2.22", 1)
    finally:
        quit_session(c)


def test_limit_exempt_in_the_file_replaces_the_default(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"max_connect_rate": 3, "max_sessions_per_ip": 2,
                                               "limit_exempt": "192.0.2.0/24"})
    held = [greeted(srv, "192.0.2.9") for _ in range(4)]       # exempt: 4 at once
    for c in held:
        quit_session(c)
    quit_session(greeted(srv, "192.0.2.9"))                     # and 5 within the minute
    for ip in ("198.51.100.9", "127.0.0.5"):                    # loopback no longer exempt
        held = [greeted(srv, ip) for _ in range(2)]
        try:
            assert refused(srv, ip).message == sessions_text(ip, 2)
        finally:
            for c in held:
                quit_session(c)
    for ip in ("198.51.100.9", "127.0.0.5"):
        r = refused(srv, ip)                  # the 4th within the minute (or still 2 open)
        assert r.message in (rate_text(ip, 4, 3), sessions_text(ip, 2)), r
    assert "ip=192.0.2.9 limit=" not in srv.log_text()


# ----------------------------------------------------------------------------------------
# IPv6: one count per prefix


def test_ipv6_clients_are_counted_per_64(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"max_sessions_per_ip": 1})
    first = greeted(srv, "2001:db8:1:2::1")
    try:
        r = refused(srv, "2001:db8:1:2::ffff")              # same /64
        assert r.message == sessions_text("2001:db8:1:2::ffff", 1), r
        srv.wait_for_log(r"smtp limit ip=2001:db8:1:2::ffff limit=max_sessions_per_ip ")
        quit_session(greeted(srv, "2001:db8:1:3::1"))        # the next /64
    finally:
        first.close()


@pytest.mark.skipif(not ipv6_loopback_works(), reason="no IPv6 loopback")
def test_ipv6_count_is_shared_by_the_listeners(mxgate_factory):
    srv = mxgate_factory(proxy=True, ipv6_proxy=True, proxy_from="127.0.0.1/32 ::1/128",
                         settings={"max_sessions_per_ip": 1})
    first = greeted(srv, "2001:db8:1:2::1")
    try:
        r = refused(srv, "2001:db8:1:2::2", port=srv.ipv6_proxy_port, host="::1")
        assert r.message == sessions_text("2001:db8:1:2::2", 1), r
        quit_session(greeted(srv, "2001:db8:1:3::1", port=srv.ipv6_proxy_port, host="::1"))
    finally:
        first.close()


def test_limit_ipv6_prefix_128_counts_each_address(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"max_sessions_per_ip": 1,
                                               "limit_ipv6_prefix": 128})
    held = [greeted(srv, "2001:db8:1:2::1"), greeted(srv, "2001:db8:1:2::ffff")]
    try:
        refused(srv, "2001:db8:1:2::1")
    finally:
        for c in held:
            c.close()


# ----------------------------------------------------------------------------------------
# Per-session limits: messages, bytes, junk commands


def test_max_messages(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"max_messages": 2})
    with greeted(srv, "192.0.2.30") as c:
        c.ehlo()
        qids = [transaction(c), transaction(c)]
        r = c.cmd("MAIL FROM:<a@client.example>")
        assert (r.code, r.enhanced) == (451, "4.7.1"), r
        assert r.message == ("Too many messages in this session (limit 2); "
                             "send the rest in a new session"), r
        assert c.cmd("RSET").code == 250
        assert c.cmd("MAIL FROM:<a@client.example>").code == 451, "RSET does not reset it"
        assert c.cmd("QUIT").code == 221
    srv.wait_for_log(r"smtp limit ip=192\.0\.2\.30 limit=max_messages ")
    with greeted(srv, "192.0.2.30") as c:
        c.ehlo()
        qids.append(transaction(c))
        quit_session(c)
    assert sorted(q.name for q in srv.queued()) == sorted(qids)


def _session_bytes_closed(c, r):
    assert (r.code, r.enhanced) == (421, "4.7.0"), r
    assert r.message == limit_message("Too much data in this session (limit 20000 bytes), "
                                      "closing"), r
    assert c.read_until_closed() == b""


def test_max_session_bytes_lets_the_message_under_way_finish(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"max_session_bytes": 20000})
    line = b"y" * 98 + b"\r\n"
    with greeted(srv, "192.0.2.31") as c:
        c.ehlo()
        small = transaction(c, b"Subject: small\r\n\r\n" + line * 50)       # ~5 KB
        assert c.cmd("NOOP").code == 250, "under the budget"
        big = transaction(c, b"Subject: big\r\n\r\n" + line * 200)         # ~20 KB: over it
        _session_bytes_closed(c, c.cmd("MAIL FROM:<a@client.example>"))
    srv.wait_for_log(r"smtp limit ip=192\.0\.2\.31 limit=max_session_bytes ")
    assert sorted(q.name for q in srv.queued()) == sorted([small, big])


def test_max_session_bytes_counts_commands(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"max_session_bytes": 20000})
    name = ".".join(["a" * 63] * 4)                            # 255 octets, a valid EHLO
    cmd = f"EHLO {name}"
    per_line = len(cmd) + 2
    ok = 0
    with greeted(srv, "192.0.2.32") as c:
        for _ in range(20000 // per_line + 5):
            r = c.cmd(cmd)
            if r.code != 250:
                break
            ok += 1
        _session_bytes_closed(c, r)
    assert 20000 // per_line - 1 <= ok <= 20000 // per_line + 1, (ok, per_line)


@pytest.mark.parametrize("junk, last", [
    (["NOOP", "RSET", "VRFY postmaster"], "HELP"),
    (["HELP", "HELP", "HELP"], "NOOP"),
    (["VRFY x", "NOOP", "NOOP"], "RSET"),
    (["RSET", "RSET", "NOOP"], "VRFY x"),
], ids=["ends-with-help", "ends-with-noop", "ends-with-rset", "ends-with-vrfy"])
def test_max_junk_commands(mxgate_factory, junk, last):
    srv = mxgate_factory(proxy=True, settings={"max_junk_commands": 3})
    with greeted(srv, "192.0.2.33") as c:
        c.ehlo()
        for i, cmd in enumerate(junk):
            r = c.cmd(cmd)
            assert r.code in (214, 250, 252), f"{cmd}: {r}"
            if i == 0:                       # commands that move mail do not count
                c.ehlo()
                assert c.cmd("MAIL FROM:<a@client.example>").code == 250
                assert c.cmd("RCPT TO:<x@example.test>").code == 250
        r = c.cmd(last)
        assert (r.code, r.enhanced) == (421, "4.7.0"), r
        assert r.message == limit_message("Too many commands that move no mail (limit 3), "
                                          "closing"), r
        assert c.read_until_closed() == b""
    srv.wait_for_log(r"smtp limit ip=192\.0\.2\.33 limit=max_junk_commands ")


# ----------------------------------------------------------------------------------------
# Deadlines against slow clients


def _trickle(c, data, every, step=1):
    """Sends `data` `step` bytes every `every` seconds until the server answers or closes;
    returns (reply, seconds from the start)."""
    started = time.monotonic()
    for i in range(0, len(data), step):
        try:
            c.send(data[i:i + step])
        except OSError:
            break
        try:
            if not c.nothing_more(every):
                break
        except ConnectionClosed:
            break
    r = c.reply(timeout=3)
    return r, time.monotonic() - started


def test_command_timeout_is_a_deadline_for_the_whole_line(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"command_timeout": 2})
    with greeted(srv, "192.0.2.40") as c:
        r, elapsed = _trickle(c, b"EHLO x\r\n", 0.5)
        assert (r.code, r.enhanced) == (421, "4.4.2"), r
        assert r.message == TIMEOUT_REPLY, r
        assert 1.5 <= elapsed <= 4.0, elapsed
        assert c.read_until_closed(2) == b""


def test_each_command_renews_the_deadline(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"command_timeout": 2})
    with greeted(srv, "192.0.2.41") as c:
        started = time.monotonic()
        while time.monotonic() - started < 5:
            assert c.nothing_more(1.5), f"the server spoke after {time.monotonic() - started}s"
            c.ehlo()
        assert c.cmd("QUIT").code == 221


def _open_data(c):
    c.ehlo()
    assert c.cmd("MAIL FROM:<a@client.example>").code == 250
    assert c.cmd("RCPT TO:<x@example.test>").code == 250
    assert c.cmd("DATA").code == 354


def test_data_timeout_cuts_a_trickle(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"data_timeout": 2, "command_timeout": 30})
    with greeted(srv, "192.0.2.42") as c:
        _open_data(c)
        body = b"Subject: trickle\r\n\r\n" + b"x" * 200 + b"\r\n"
        r, elapsed = _trickle(c, body, 0.5, step=5)
        assert (r.code, r.enhanced) == (421, "4.4.2"), r
        assert r.message == TIMEOUT_REPLY, r
        assert 1.5 <= elapsed <= 4.0, elapsed
        assert c.read_until_closed(2) == b""
    assert srv.queued() == []
    assert srv.tmp_files() == []


def test_data_timeout_is_renewed_per_64k(mxgate_factory):
    srv = mxgate_factory(proxy=True, settings={"data_timeout": 2, "command_timeout": 30})
    chunk = (b"z" * 76 + b"\r\n") * 900                    # 70 200 octets
    with greeted(srv, "192.0.2.43") as c:
        _open_data(c)
        c.send(b"Subject: steady\r\n\r\n")
        started = time.monotonic()
        while time.monotonic() - started < 5:
            c.send(chunk)
            assert c.nothing_more(1.0), f"cut after {time.monotonic() - started:.1f}s"
        c.send(b".\r\n")
        qid = queued_id(c.reply(timeout=10))
        assert c.cmd("QUIT").code == 221
    assert len(srv.queue_file(qid).message) >= 5 * len(chunk)


# ----------------------------------------------------------------------------------------
# Pregreet


FIRST_LINE = f"220-{HOSTNAME} ESMTP mxgate".encode()
FINAL_LINE = f"220 {HOSTNAME} ESMTP mxgate".encode()


def paused_server(mxgate_factory, **settings):
    srv = mxgate_factory(proxy=True, start=False, settings={"greet_pause_ms": 1000, **settings})
    return start_with_greet_pause(srv)


def pregreet_lines(srv, ip, action=r"\w+"):
    return re.findall(rf"smtp pregreet ip={re.escape(ip)} [^\n]*action={action}\b",
                      srv.log_text())


def test_greet_pause_sends_the_greeting_in_two_parts(mxgate_factory):
    srv = paused_server(mxgate_factory)
    with proxied(srv, "192.0.2.50") as c:
        started = time.monotonic()
        assert read_line(c) == FIRST_LINE
        assert c.nothing_more(0.6), f"the rest came early: {c.buf!r}"
        assert read_line(c, timeout=3) == FINAL_LINE
        assert 0.8 <= time.monotonic() - started <= 3.0
        c.ehlo()
        assert c.cmd("QUIT").code == 221
    assert not pregreet_lines(srv, "192.0.2.50")


@pytest.mark.parametrize("proxy", [False, True], ids=["plain", "proxy"])
def test_client_talking_during_the_pause_is_rejected(mxgate_factory, proxy):
    srv = paused_server(mxgate_factory)
    ip = "192.0.2.51" if proxy else "127.0.0.1"
    before = len(pregreet_lines(srv, ip, "reject"))      # the start's probe is one too
    c = proxied(srv, ip) if proxy else RawSMTP(srv.port)
    with c:
        assert read_line(c) == FIRST_LINE
        c.send(b"EHLO x\r\n")
        data = c.read_until_closed(4)
    assert data == PREGREET_REPLY, data
    assert wait_until(lambda: len(pregreet_lines(srv, ip, "reject")) == before + 1, 5), \
        srv.log_text()[-2000:]
    assert srv.queued() == []


def test_pregreet_reject_no_only_logs(mxgate_factory):
    srv = paused_server(mxgate_factory, pregreet_reject="no")
    with proxied(srv, "192.0.2.52") as c:
        assert read_line(c) == FIRST_LINE
        c.send(b"EHLO x\r\n")
        assert read_line(c, timeout=3) == FINAL_LINE
        r = c.reply()
        assert r.code == 250, r
        qid = transaction(c)
        assert c.cmd("QUIT").code == 221
    assert wait_until(lambda: pregreet_lines(srv, "192.0.2.52", "log"), 5)
    assert srv.queue_file(qid).get("client") == "192.0.2.52"


def test_bytes_behind_the_proxy_header_are_pregreet(mxgate_factory):
    srv = mxgate_factory(proxy=True)                          # greet_pause_ms = 0
    with proxied(srv, "192.0.2.53", extra=f"EHLO {CLIENT_HELO}\r\n".encode()) as c:
        assert c.read_until_closed() == PREGREET_REPLY
    assert wait_until(lambda: pregreet_lines(srv, "192.0.2.53", "reject"), 5)
    with greeted(srv, "192.0.2.54") as c:                     # one that waits is fine
        c.ehlo()
        assert c.cmd("QUIT").code == 221
    assert not pregreet_lines(srv, "192.0.2.54")


def test_smtplib_copes_with_the_paused_greeting(mxgate_factory):
    srv = paused_server(mxgate_factory)
    before = len(pregreet_lines(srv, "127.0.0.1"))
    with smtplib.SMTP(srv.host, srv.port, local_hostname=CLIENT_HELO, timeout=5) as s:
        code, _ = s.ehlo()
        assert code == 250
        refused_rcpts = s.sendmail("a@client.example", ["x@example.test"],
                                   b"Subject: smtplib\r\n\r\nhello\r\n")
        assert refused_rcpts == {}
    assert len(srv.queued()) == 1
    assert len(pregreet_lines(srv, "127.0.0.1")) == before
