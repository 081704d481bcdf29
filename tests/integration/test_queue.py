"""The hand-off to the queue (docs/queue-format.md): the file a 250 stands for, its records and
body, durability across SIGKILL, many messages at once, and 452 4.3.1 when the spool cannot be
written."""
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import (CLIENT_HELO, HOSTNAME, ROUTE, parse_queue_file, queued_id, send_message)

DATE_RE = r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000"


def open_data(c, sender="alice@client.example", rcpts=("someone@example.test",)):
    c.greeting()
    c.ehlo()
    assert c.cmd(f"MAIL FROM:<{sender}>").code == 250
    for rcpt in rcpts:
        assert c.cmd(f"RCPT TO:<{rcpt}>").code == 250
    assert c.cmd("DATA").code == 354


# ----------------------------------------------------------------------------------------
# The file


def test_queue_file_exists_when_250_is_sent(mxgate):
    wire = (b"From: alice@client.example\r\nSubject: queue\r\n\r\n"
            b"line one\r\n..leading dot\r\n\tTab and trailing space \r\nlast\r\n")
    with mxgate.raw() as c:
        open_data(c, rcpts=("someone@example.test", "other@example.test"))
        c.send(wire + b".\r\n")
        qid = queued_id(c.reply())
        # checked before anything else is sent: the 250 stands for a complete file
        assert (mxgate.queue_dir / qid).is_file()
        assert mxgate.tmp_files() == []
        raw = (mxgate.queue_dir / qid).read_bytes()
    assert raw.startswith(b"MXGQ 1\nid " + qid.encode() + b"\n")
    q = parse_queue_file(mxgate.queue_dir / qid)
    assert q.keys == ["id", "arrival", "session", "client", "helo", "tls", "from",
                      "rcpt", "rcpt-tenant", "rcpt-route", "rcpt", "rcpt-tenant", "rcpt-route"]
    assert q.qid == qid
    assert abs(int(q.get("arrival")) - time.time()) < 120
    assert re.fullmatch(r"[a-z2-9]{12}", q.get("session"))
    assert q.get("client") == "127.0.0.1"
    assert q.get("helo") == CLIENT_HELO
    assert q.get("tls") == "-"
    assert q.get("from") == "alice@client.example"
    assert q.recipients == [
        {"rcpt": "someone@example.test", "rcpt-tenant": "default", "rcpt-route": ROUTE},
        {"rcpt": "other@example.test", "rcpt-tenant": "default", "rcpt-route": ROUTE},
    ]
    # two recipients: no "for <...>" (it would leak Bcc recipients)
    assert re.fullmatch(rf"Received: from {CLIENT_HELO} \(\[127\.0\.0\.1\]\)\r\n"
                        rf"\tby {HOSTNAME} \(mxgate\) with ESMTP id {qid}\r\n"
                        rf"\t\(no TLS\)\r\n"
                        rf"\t; {DATE_RE}\r\n", q.received), q.received
    (verdict,) = q.verdicts                   # one tenant: one verdict header
    assert verdict.startswith("X-Mxgate-Verdict: tenant=default; action=accept; "), verdict
    assert "client=[127.0.0.1]" in verdict and f"gateway={HOSTNAME}\r\n" in verdict
    assert q.message == wire.replace(b"\r\n..leading", b"\r\n.leading")
    assert raw.endswith(b"\nend %d\n" % len(q.body))
    mxgate.wait_for_log(rf"smtp queued qid={qid} ip=127\.0\.0\.1 from=<alice@client\.example> "
                        rf"nrcpt=2 size={len(q.message)}")


def test_null_sender_and_single_recipient(mxgate):
    with mxgate.raw() as c:
        open_data(c, sender="")
        c.send(b"Subject: bounce\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
    q = mxgate.queue_file(qid)
    assert q.get("from") == "<>"
    assert re.fullmatch(rf"Received: from {CLIENT_HELO} \(\[127\.0\.0\.1\]\)\r\n"
                        rf"\tby {HOSTNAME} \(mxgate\) with ESMTP id {qid}\r\n"
                        rf"\t\(no TLS\)\r\n"
                        rf"\tfor <someone@example\.test>; {DATE_RE}\r\n", q.received), q.received


def test_recipients_of_two_tenants(mxgate_factory):
    srv = mxgate_factory(tenants={"acme": ("127.0.0.1:2601", ["acme.example"]),
                                  "beta": ("[::1]:2602", ["beta.example"])})
    with srv.raw() as c:
        open_data(c, rcpts=("a1@acme.example", "b1@beta.example", "a2@acme.example"))
        c.send(b"Subject: two tenants\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
    q = srv.queue_file(qid)
    assert q.recipients == [
        {"rcpt": "a1@acme.example", "rcpt-tenant": "acme", "rcpt-route": "127.0.0.1:2601"},
        {"rcpt": "b1@beta.example", "rcpt-tenant": "beta", "rcpt-route": "[::1]:2602"},
        {"rcpt": "a2@acme.example", "rcpt-tenant": "acme", "rcpt-route": "127.0.0.1:2601"},
    ]
    assert [v.split(";")[0] for v in q.verdicts] == ["X-Mxgate-Verdict: tenant=acme",
                                                     "X-Mxgate-Verdict: tenant=beta"]
    assert q.message == b"Subject: two tenants\r\n\r\nx\r\n"


def test_mail_params_are_recorded(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example> BODY=8BITMIME SIZE=100").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send("Subject: 8bit\r\n\r\nçà\r\n.\r\n".encode())
        qid = queued_id(c.reply())
    q = mxgate.queue_file(qid)
    assert q.get("mail-params") == "BODY=8BITMIME SIZE=100"
    assert q.keys.index("mail-params") == q.keys.index("from") + 1
    assert q.message == "Subject: 8bit\r\n\r\nçà\r\n".encode()


def test_many_recipients_and_duplicates(mxgate):
    rcpts = [f"r{i:02d}@example.test" for i in range(20)]
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        for rcpt in rcpts:
            assert c.cmd(f"RCPT TO:<{rcpt}>").code == 250
        r = c.cmd(f"RCPT TO:<{rcpts[3]}>")
        assert (r.code, r.enhanced) == (250, "2.1.5")
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: many\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
    q = mxgate.queue_file(qid)
    assert [r["rcpt"] for r in q.recipients] == rcpts, "one record per distinct recipient"
    assert all(r["rcpt-route"] == ROUTE for r in q.recipients)


def test_helo_with_special_characters_is_escaped(mxgate):
    with mxgate.raw() as c:
        c.greeting()
        c.ehlo("odd%name")
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        assert c.cmd("RCPT TO:<x@example.test>").code == 250
        assert c.cmd("DATA").code == 354
        c.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
        qid = queued_id(c.reply())
    raw = (mxgate.queue_dir / qid).read_bytes()
    assert b"\nhelo odd%25name\n" in raw
    assert mxgate.queue_file(qid).get("helo") == "odd%name"


def test_parser_refuses_truncated_files(mxgate, tmp_path):
    # guards the parser the durability tests rely on
    qid = queued_id(send_message(mxgate.port, b"Subject: t\r\n\r\nbody\r\n"))
    raw = (mxgate.queue_dir / qid).read_bytes()
    for cut in (len(raw) - 1, len(raw) - 8, len(raw) // 2):
        bad = tmp_path / f"cut{cut}"
        bad.write_bytes(raw[:cut])
        with pytest.raises(AssertionError):
            parse_queue_file(bad)


# ----------------------------------------------------------------------------------------
# Durability


def test_file_is_complete_after_sigkill_right_after_250(mxgate_factory):
    srv = mxgate_factory()
    body = b"Subject: durable\r\n\r\n" + b"0123456789\r\n" * 8000    # over one 64 KiB write
    with srv.raw() as c:
        open_data(c)
        c.send(body + b".\r\n")
        qid = queued_id(c.reply())
        srv.kill_all()                       # master and workers, no chance to clean up
    q = parse_queue_file(srv.queue_dir / qid)
    assert q.message == body
    assert srv.tmp_files() == []
    # a restart keeps it
    srv2 = mxgate_factory(data_dir=srv.data_dir)
    assert [p.name for p in srv2.queued()] == [qid]


def test_crash_during_data_leaves_nothing_in_incoming(mxgate_factory):
    srv = mxgate_factory()
    with srv.raw() as c:
        open_data(c)
        c.send(b"Subject: partial\r\n\r\n" + (b"p" * 78 + b"\r\n") * 1000)  # past 64 KiB: on disk
        assert c.nothing_more(0.3)
        partial = [p for p in srv.spare_files() if p.stat().st_size >= 64 * 1024]
        assert len(partial) == 1
        srv.kill_all()
    assert srv.queued() == []
    srv2 = mxgate_factory(data_dir=srv.data_dir)
    assert srv2.queued() == [] and srv2.tmp_files() == []
    # the half-written file is a spare now: a short message that reuses it is exactly itself,
    # nothing of the 80 KB before it
    spare_ino = partial[0].stat().st_ino
    body = b"Subject: after the crash\r\n\r\nshort\r\n"
    sent = [queued_id(send_message(srv2.port, body)) for _ in range(4)]
    for qid in sent:
        assert srv2.queue_file(qid).message == body
    # a committed file keeps its tmp/SLOT name: the spare's inode is now one of the messages
    assert spare_ino in {p.stat().st_ino for p in srv2.queued()}, "the spare was not reused"


def test_forty_messages_sequential_and_concurrent(mxgate):
    def one(i):
        body = f"Subject: message {i}\r\n\r\nbody of {i}\r\n".encode()
        return queued_id(send_message(mxgate.port, body)), body

    sent = [one(i) for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        sent += list(pool.map(one, range(20, 40), timeout=60))
    ids = [qid for qid, _ in sent]
    assert len(set(ids)) == 40
    assert sorted(p.name for p in mxgate.queued()) == sorted(ids)
    for qid, body in sent:
        assert mxgate.queue_file(qid).message == body
    assert mxgate.tmp_files() == []


def test_workers_serve_concurrent_connections(mxgate_factory):
    srv = mxgate_factory(settings={"workers": 2})
    log = srv.log_text()
    assert "worker=0 worker started" in log and "worker=1 worker started" in log

    def one(i):
        return queued_id(send_message(srv.port, f"Subject: w{i}\r\n\r\nx\r\n".encode()))

    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(one, range(20), timeout=60))
    assert len(set(ids)) == 20
    assert sorted(p.name for p in srv.queued()) == sorted(ids)
    workers = set(re.findall(r"worker=(\d) sid=\S+ smtp queued", srv.log_text()))
    assert workers <= {"0", "1"} and workers, workers


# ----------------------------------------------------------------------------------------
# Write errors: 452 4.3.1, nothing half-written left behind


def test_unwritable_spool_gives_452_at_data(mxgate):
    away = mxgate.tmp_dir.with_name("tmp.away")
    os.rename(mxgate.tmp_dir, away)
    mxgate.tmp_dir.write_text("not a directory\n")     # chmod does not stop root
    try:
        with mxgate.raw() as c:
            c.greeting()
            c.ehlo()
            assert c.cmd("MAIL FROM:<a@client.example>").code == 250
            assert c.cmd("RCPT TO:<x@example.test>").code == 250
            r = c.cmd("DATA")
            assert (r.code, r.enhanced) == (452, "4.3.1"), r
            assert c.cmd("NOOP").code == 250, "the session goes on"
            r = c.cmd("DATA")
            assert r.code == 503, "the failed transaction was reset"
    finally:
        mxgate.tmp_dir.unlink()
        os.rename(away, mxgate.tmp_dir)
    assert mxgate.queued() == []
    mxgate.wait_for_log(r"smtp queue-error error=")
    # once the spool is back, mail flows again
    queued_id(send_message(mxgate.port, b"Subject: after\r\n\r\nx\r\n"))


def test_commit_failure_gives_452_after_the_dot(mxgate):
    away = mxgate.queue_dir.with_name("incoming.away")
    os.rename(mxgate.queue_dir, away)
    mxgate.queue_dir.write_text("not a directory\n")   # the final rename must fail
    try:
        with mxgate.raw() as c:
            open_data(c)
            c.send(b"Subject: lost\r\n\r\nx\r\n.\r\n")
            r = c.reply()
            assert (r.code, r.enhanced) == (452, "4.3.1"), r
        assert mxgate.tmp_files() == []
        assert list(away.iterdir()) == []
    finally:
        mxgate.queue_dir.unlink()
        os.rename(away, mxgate.queue_dir)
    assert mxgate.queued() == []


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 200 KiB tmpfs; skipped where mounting is not allowed. Unmounted after the server
    (this fixture must be requested before mxgate_factory)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"cannot mount tmpfs: {e}")
    if res.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {res.stderr.strip()}")
    yield mnt
    if subprocess.run(["umount", str(mnt)], capture_output=True, timeout=10).returncode != 0:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=10)


def test_full_disk_gives_452_after_the_dot(small_tmpfs, mxgate_factory):
    srv = mxgate_factory(data_dir=small_tmpfs / "data")
    filler = small_tmpfs / "filler"
    room = shutil.disk_usage(small_tmpfs).free - 40 * 1024     # leave about 40 KiB free
    assert room > 0, "the policy store alone fills the tmpfs"
    filler.write_bytes(b"\0" * room)
    free = shutil.disk_usage(small_tmpfs).free
    assert free < 100 * 1024, free
    line = b"f" * 76 + b"\r\n"
    body = b"Subject: too big for the disk\r\n\r\n" + line * (300 * 1024 // len(line))
    with srv.raw() as c:
        open_data(c)
        c.send(body + b".\r\n")
        r = c.reply(timeout=15)
        assert (r.code, r.enhanced) == (452, "4.3.1"), r
        assert c.cmd("NOOP").code == 250
    assert srv.tmp_files() == []
    assert srv.queued() == []
    # room again: the next message is accepted
    filler.unlink()
    queued_id(send_message(srv.port, b"Subject: fits\r\n\r\nx\r\n"))
