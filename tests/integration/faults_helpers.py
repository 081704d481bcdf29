"""Helpers for test_failing_deps.py: dependencies that fail, and the books that show nothing
acknowledged was lost.

- `Ledger`: every message a client sent and what it was told. `check(srv, downstreams)` asserts
  the promise of docs/queue-format.md and docs/delivery.md: each message answered 250 is in
  queue/incoming (complete, the bytes the client sent) or arrived at a downstream with exactly
  those bytes behind mxgate's trace headers; nothing else is in incoming/, nothing in tmp/.
- `FaultProxy`: a TCP proxy on a tenant's route in front of a `Downstream` that injects the
  downstream's failures: down (connection refused), stalling mid-DATA (reads part of the body,
  then reads nothing more and says nothing), closing mid-DATA. `pass` forwards untouched.
- `GarbageDns`: FakeDns (rbldnsd_helper) with answers broken on the wire: truncated records,
  a bad record length, records for another name, several A records, the TC bit, garbage after
  a valid header.
- `tmpfs(...)`: a small tmpfs mounted for a test (skipped where mounting is not allowed).
- `hold_write_lock(db)`, `corrupt_page(db, table)`, `bump_generation(db)`, `copy_store(...)`:
  the policy store (SQLite, WAL) locked by another process, damaged on disk, changed behind
  the admin CLI's back, backed up and restored.

Every wait is bounded: sockets have timeouts, threads are joined with deadlines.
"""
import contextlib
import os
import re
import selectors
import socket
import sqlite3
import struct
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dns.rrset
import pytest

from conftest import (CLIENT_HELO, ConnectionClosed, RawSMTP, parse_queue_file,
                      split_trace_headers)
from rbldnsd_helper import FakeDns

JOIN_TIMEOUT = 5.0
QID_IN_RECEIVED = re.compile(rb"with E?SMTP id ([0-9A-F]{20})")


# --------------------------------------------------------------------------------------------
# The books


def dot_stuff(body):
    return re.sub(rb"(^|\r\n)\.", rb"\1..", body)


class Ledger:
    """Messages sent through the front door and the reply each got."""

    def __init__(self):
        self.acked = {}      # qid -> message bytes as the client meant them (unstuffed)
        self.refused = []    # (reply, message bytes): told 4xx/5xx, must not be queued

    def send(self, c, body, sender="sender@client.example", rcpts=("someone@example.test",),
             timeout=None):
        """One transaction on an open, EHLO'd RawSMTP; returns the reply to the final dot (or
        to DATA when DATA is refused). Records the outcome."""
        r = c.cmd(f"MAIL FROM:<{sender}>")
        assert r.code == 250, r
        for rcpt in rcpts:
            r = c.cmd(f"RCPT TO:<{rcpt}>", timeout=timeout)
            assert r.code == 250, f"RCPT {rcpt}: {r}"
        return self.data(c, body, timeout)

    def data(self, c, body, timeout=None):
        """DATA, the body (dot-stuffed) and the final dot; records and returns the reply."""
        r = c.cmd("DATA")
        if r.code != 354:
            self.refused.append((r, body))
            return r
        c.send(dot_stuff(body) + (b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"))
        r = c.reply(timeout=timeout or 15)
        self.note(r, body)
        return r

    def note(self, reply, body):
        if reply.code == 250:
            m = re.search(r"queued as ([0-9A-F]{20})$", reply.lines[0])
            assert m, reply
            self.acked[m.group(1)] = body
        else:
            self.refused.append((reply, body))

    def submit(self, port, body, **kw):
        """A whole session: greeting, EHLO, one transaction, QUIT. Returns the final reply."""
        with RawSMTP(port) as c:
            c.greeting()
            c.ehlo(CLIENT_HELO)
            r = self.send(c, body, **kw)
            with contextlib.suppress(OSError, ConnectionClosed):
                c.cmd("QUIT")
            return r

    def check(self, srv, downstreams=(), shared=False):
        """Nothing acknowledged lost, nothing unacknowledged stored, nothing half-written.
        `shared`: the server also holds other tests' messages (only this ledger's are
        checked, and nothing of tmp/)."""
        arrived = {}
        for ds in downstreams:
            for msg in ds.snapshot():
                received, _, rest = split_trace_headers(msg.data)
                m = QID_IN_RECEIVED.search(received)
                assert m, f"a message without mxgate's Received header at {ds}: {received!r}"
                arrived.setdefault(m.group(1).decode(), []).append(rest)
        queued = {p.name: p for p in srv.queued()}
        for qid, body in self.acked.items():
            if qid in queued:
                assert parse_queue_file(queued[qid]).message == body, f"{qid}: other bytes queued"
            else:
                assert qid in arrived, f"{qid} was answered 250 and is neither queued nor delivered"
            for rest in arrived.get(qid, []):
                assert rest == body, f"{qid}: the downstream got other bytes than were sent"
        if shared:
            return
        stray = set(queued) - set(self.acked)
        assert not stray, f"queued without a 250: {sorted(stray)}"
        stray = set(arrived) - set(self.acked)
        assert not stray, f"delivered without a 250: {sorted(stray)}"
        assert srv.tmp_files() == [], f"half-written files left in queue/tmp: {srv.tmp_files()}"


# --------------------------------------------------------------------------------------------
# A downstream that fails


class FaultProxy:
    """Listens on host:port and forwards each connection to `upstream` (host, port).

        proxy = FaultProxy(host, port, downstream.host, downstream.port)
        proxy.set_mode("stall", after=2000)    # the next connections stall after 2000 body bytes
        proxy.set_mode("close", after=2000)    # ... close the client's connection instead
        proxy.set_mode("reset", after=2000)    # ... reset it (RST, not FIN)
        proxy.set_mode("pass")
        proxy.down(); proxy.up()               # refused / listening again on the same port
        proxy.faults                           # [(mode, monotonic time)] of faults injected

    A stalled connection reads nothing more from the client and sends nothing to it; it stays
    open until the client closes it or the proxy is closed. `small_buffers` makes the kernel
    keep little on the proxy's side of the connections accepted while the mode is not `pass`,
    so a client that sends a large body blocks in its writes instead of handing it all to the
    kernel."""

    def __init__(self, host, port, up_host, up_port, small_buffers=False):
        self.host, self.port, self.upstream = host, port, (up_host, up_port)
        self.small_buffers = small_buffers
        self.mode, self.after = "pass", 0
        self.faults = []
        self.connections = 0
        self._lock = threading.Lock()
        self._listener = None
        self._stopping = threading.Event()
        self._threads = []
        self._socks = set()
        self.up()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def set_mode(self, mode, after=0):
        assert mode in ("pass", "stall", "close", "reset"), mode
        with self._lock:
            self.mode, self.after = mode, after
        self._set_rcvbuf()

    def _set_rcvbuf(self):
        # small only for the connections that are to fail: those that pass go at full speed
        if self.small_buffers and self._listener:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                      4096 if self.mode != "pass" else 1 << 20)

    def up(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(16)
        s.settimeout(0.1)
        self._listener = s
        self._set_rcvbuf()
        t = threading.Thread(target=self._accept, args=(s,), daemon=True, name="fault-proxy")
        t.start()
        self._threads.append(t)

    def down(self):
        s, self._listener = self._listener, None
        if s:
            s.close()

    def close(self):
        self._stopping.set()
        self.down()
        with self._lock:
            socks, self._socks = list(self._socks), set()
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()
        for t in self._threads:
            t.join(JOIN_TIMEOUT)

    def _accept(self, listener):
        while not self._stopping.is_set() and self._listener is listener:
            try:
                client, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                mode, after = self.mode, self.after
                self.connections += 1
                self._socks.add(client)
            t = threading.Thread(target=self._serve, args=(client, mode, after), daemon=True)
            t.start()
            self._threads.append(t)

    def _serve(self, client, mode, after):
        try:
            up = socket.create_connection(self.upstream, timeout=JOIN_TIMEOUT)
        except OSError:
            client.close()
            return
        with self._lock:
            self._socks.add(up)
        sel = selectors.DefaultSelector()
        sel.register(client, selectors.EVENT_READ, up)
        sel.register(up, selectors.EVENT_READ, client)
        head, body = b"", None          # client bytes before DATA, body bytes after it
        try:
            while not self._stopping.is_set():
                for key, _ in sel.select(timeout=0.1):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    if key.fileobj is client:
                        if body is None:
                            head += data
                            m = re.search(rb"(?:^|\r\n)DATA\r\n", head, re.I)
                            if m:
                                body = len(head) - m.end()
                        else:
                            body += len(data)
                        if mode != "pass" and body is not None and body >= after:
                            key.data.sendall(data[:max(0, len(data) - (body - after))])
                            self._fault(mode, client, up, sel)
                            return
                    key.data.sendall(data)
        except OSError:
            pass
        finally:
            sel.close()
            for s in (client, up):
                if mode == "stall" and s is client:
                    continue           # left open, silent; closed by close()
                with contextlib.suppress(OSError):
                    s.close()

    def _fault(self, mode, client, up, sel):
        with self._lock:
            self.faults.append((mode, time.monotonic()))
        up.close()
        if mode == "reset":
            # linger 0: close() sends RST, so the client's next read or write fails
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        if mode in ("close", "reset"):
            client.close()


# --------------------------------------------------------------------------------------------
# DNS answers broken on the wire


class GarbageDns(FakeDns):
    """FakeDns with more ways to answer a zone (`set_raw(zone, kind, ...)`):

        truncated-rr    NOERROR, ANCOUNT 1, the packet cut inside the A record (127.0.0.2)
        bad-rdlength    an A record whose rdata is 3 bytes long
        other-name      A 127.0.0.2 for a name that is not the question's
        multi           several A records at once (ips=[...])
        tc              the TC bit set over an A 127.0.0.2 answer (the client retries over TCP,
                        where nothing listens)
        junk-body       a valid header echoing the id, then random bytes
    """

    KINDS = ("truncated-rr", "bad-rdlength", "other-name", "multi", "tc", "junk-body")

    def set_raw(self, zone, kind, ips=("127.0.0.2",), delay=0.0):
        assert kind in self.KINDS, kind
        with self._lock:
            self._zones[zone.lower().rstrip(".")] = SimpleNamespace(
                mode="raw", kind=kind, ips=list(ips), delay=delay)

    def _answer(self, msg, rule):
        if rule.mode != "raw":
            return super()._answer(msg, rule)
        q = msg.question[0]
        r = dns.message.make_response(msg)
        r.flags |= dns.flags.RA
        if rule.kind == "junk-body":
            return msg.to_wire()[:2] + b"\x81\x80" + os.urandom(60)
        owner = q.name
        if rule.kind == "other-name":
            owner = dns.name.from_text("elsewhere.invalid")
        if q.rdtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(owner, 300, "IN", "A",
                                                *(rule.ips if rule.kind == "multi"
                                                  else rule.ips[:1])))
        if rule.kind == "tc":
            r.flags |= dns.flags.TC
        wire = r.to_wire()
        if q.rdtype != dns.rdatatype.A:
            return wire
        if rule.kind == "truncated-rr":
            return wire[:-3]
        if rule.kind == "bad-rdlength":
            # the last RR is the A record: rdlength 4 -> 3, one rdata byte dropped
            assert wire[-6:-4] == b"\x00\x04"
            return wire[:-6] + b"\x00\x03" + wire[-4:-1]
        return wire


# --------------------------------------------------------------------------------------------
# The spool on a small file system


@contextlib.contextmanager
def tmpfs(path, size="300k"):
    """Mounts a tmpfs of `size` at path (created); skips the test where that is not allowed.
    Unmounts at the end (lazily when something still holds it)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    try:
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"cannot mount tmpfs: {e}")
    if res.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {res.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True,
                          timeout=10).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=10)


def fill(path, leave=0):
    """Fills the file system holding path up to `leave` free bytes with a file in path; returns
    the file (remove it to give the room back)."""
    filler = Path(path) / "filler"
    room = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize - leave
    with open(filler, "ab") as f:
        while room > 0:
            chunk = min(room, 1 << 16)
            try:
                f.write(b"\0" * chunk)
                f.flush()
            except OSError:
                break
            room -= chunk
    return filler


# --------------------------------------------------------------------------------------------
# The policy store (SQLite in WAL mode)


@contextlib.contextmanager
def hold_write_lock(db):
    """Another process's write transaction on the store (BEGIN EXCLUSIVE, which in WAL mode
    locks out writers; readers go on), held for the block."""
    con = sqlite3.connect(str(db), isolation_level=None, timeout=5)
    try:
        con.execute("BEGIN EXCLUSIVE")
        con.execute("UPDATE meta SET value = value WHERE key = 'generation'")
        yield con
        con.execute("ROLLBACK")
    finally:
        con.close()


def bump_generation(db):
    """A change committed by another writer (as the admin CLI's would be): generation + 1."""
    con = sqlite3.connect(str(db), isolation_level=None, timeout=5)
    try:
        con.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
        return con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
    finally:
        con.close()


def generation(db):
    """The store's generation counter, read as another process would."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
    finally:
        con.close()


def copy_store(src, dst):
    """Copies the database src into dst through SQLite's backup API: how a backup is taken,
    and how one is restored into a live store (`sqlite3 DST ".restore SRC"`)."""
    with contextlib.closing(sqlite3.connect(str(src), timeout=5)) as s, \
            contextlib.closing(sqlite3.connect(str(dst), timeout=5)) as d:
        s.backup(d)


def checkpoint(db):
    """Moves everything from the WAL into the database file, so that damage done to the file
    is what a reader sees."""
    con = sqlite3.connect(str(db), isolation_level=None, timeout=5)
    try:
        busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "the checkpoint could not complete"
    finally:
        con.close()


def root_pages(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        size = con.execute("PRAGMA page_size").fetchone()[0]
        return size, dict(con.execute("SELECT name, rootpage FROM sqlite_master"))
    finally:
        con.close()


def corrupt_page(db, table, how="random"):
    """Overwrites the root page of `table` in the database file (random bytes or zeros).
    Returns (offset, original bytes) for `restore_page`."""
    size, roots = root_pages(db)
    off = (roots[table] - 1) * size
    with open(db, "r+b") as f:
        f.seek(off)
        original = f.read(size)
        f.seek(off)
        f.write(os.urandom(size) if how == "random" else bytes(size))
        f.flush()
        os.fsync(f.fileno())
    return off, original


def restore_page(db, saved):
    off, original = saved
    with open(db, "r+b") as f:
        f.seek(off)
        f.write(original)
        f.flush()
        os.fsync(f.fileno())
