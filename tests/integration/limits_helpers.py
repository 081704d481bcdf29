"""Helpers for the abuse-limit, privilege and reload tests (test_abuse_limits.py,
test_privileges.py, test_reload.py).

- `proxied(srv, ip)` opens a connection to srv's PROXY listener presenting `ip` (v1 header)
  and reads nothing; `greeted(srv, ip)` also reads the 220; `refused(srv, ip)` expects the
  421 4.7.0 of a per-client limit instead of a greeting, then the close.
- `read_line(c)` reads one reply line (for a greeting sent in two parts).
- `process_tree(pid)` lists a process and its descendants from /proc; `proc_ids(pid)` reads
  the Uid/Gid lines of one of them.
- `ehlo_size(srv)` is the SIZE value a new session is offered.
- `start_with_greet_pause(srv)` starts a server whose greeting is paused (greet_pause_ms).

Every wait is bounded: sockets have timeouts, polls have deadlines.
"""
import os
import time
from pathlib import Path

from conftest import HOSTNAME, IO_TIMEOUT, ConnectionClosed, RawSMTP, wait_until
from policy_helpers import proxy_v1

RELEASE_TIMEOUT = 5.0        # seconds for a closed session to leave the shared per-client count


# ---- clients ------------------------------------------------------------------------------

def proxied(srv, ip, *, port=None, host="127.0.0.1", extra=b""):
    """A RawSMTP on srv's PROXY listener (or `port`) that has sent a v1 header for `ip`, and
    `extra` in the same write."""
    c = RawSMTP(port or srv.proxy_port, host=host)
    try:
        c.send(proxy_v1(ip) + extra)
    except BaseException:
        c.close()
        raise
    return c


def greeted(srv, ip, **kw):
    """A session presenting `ip` that got its 220 greeting."""
    c = proxied(srv, ip, **kw)
    try:
        c.greeting()
    except BaseException:
        c.close()
        raise
    return c


def try_greeted(srv, ip, **kw):
    """A greeted session, or None when the server answered something else or closed."""
    c = proxied(srv, ip, **kw)
    try:
        if c.reply().code == 220:
            return c
    except (ConnectionClosed, OSError):
        pass
    c.close()
    return None


def greeted_eventually(srv, ip, timeout=RELEASE_TIMEOUT, **kw):
    """Opens sessions for `ip` until one is greeted (a closed session may take a moment to
    leave the shared count); fails after `timeout` seconds."""
    got = []
    wait_until(lambda: got.append(try_greeted(srv, ip, **kw)) or got[-1], timeout, interval=0.1)
    assert got and got[-1], f"no session for {ip} was greeted within {timeout}s"
    return got[-1]


def refused(srv, ip, **kw):
    """Expects the 421 4.7.0 of a per-client limit right after the PROXY header (no greeting),
    then the close; returns the reply."""
    with proxied(srv, ip, **kw) as c:
        r = c.reply()
        assert (r.code, r.enhanced) == (421, "4.7.0"), r
        assert len(r.lines) == 1, f"a multi-line reply (a greeting?): {r}"
        assert c.read_until_closed() == b"", "nothing may follow the 421"
    return r


def quit_session(c):
    """QUIT (221 expected) and close."""
    try:
        r = c.cmd("QUIT")
        assert r.code == 221, r
    finally:
        c.close()


def read_line(c, timeout=IO_TIMEOUT):
    """One CRLF-terminated line from a RawSMTP, without the CRLF (ConnectionClosed if the
    server closes first)."""
    deadline = time.monotonic() + timeout
    while b"\r\n" not in c.buf:
        c._recv(deadline)
    line, _, c.buf = c.buf.partition(b"\r\n")
    return line


def ehlo_size(srv, port=None):
    """The SIZE value announced to a new session on the plain listener."""
    with RawSMTP(port or srv.port) as c:
        c.greeting()
        r = c.ehlo()
        c.cmd("QUIT")
    sizes = [ln.split()[1] for ln in r.lines if ln.startswith("SIZE ")]
    assert len(sizes) == 1, r
    return int(sizes[0])


def limit_message(text):
    """What a 421 4.7.0 limit reply says after the enhanced code."""
    return f"{HOSTNAME} {text}"


# ---- processes ----------------------------------------------------------------------------

def _status(pid):
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _field(status, name):
    for line in status.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].split()
    return []


def process_tree(pid):
    """[pid, descendants...] that are alive now (zombies excluded)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _status(entry)
        if st is None or _field(st, "State")[:1] == ["Z"]:
            continue
        ppid = _field(st, "PPid")
        if ppid:
            children.setdefault(int(ppid[0]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if _status(p) is not None:
            out.append(p)
        todo.extend(children.get(p, []))
    return out


def proc_ids(pid):
    """{'uid': [real, effective, saved, fs], 'gid': [...], 'groups': [...], 'name': str} of a
    live process, or None when it is gone."""
    st = _status(pid)
    if st is None:
        return None
    return {"uid": [int(x) for x in _field(st, "Uid")],
            "gid": [int(x) for x in _field(st, "Gid")],
            "groups": [int(x) for x in _field(st, "Groups")],
            "name": " ".join(_field(st, "Name"))}


# ---- servers ------------------------------------------------------------------------------

def start_with_greet_pause(srv):
    """srv.start() for a server with greet_pause_ms set. Its readiness probe reads the first
    greeting line and sends QUIT at once (during the pause: a pregreet client from 127.0.0.1,
    closed either way), so the start does not depend on what follows a paused greeting, which
    the tests check themselves."""
    def ready():
        try:
            with RawSMTP(srv.port, timeout=3) as c:
                if not read_line(c).startswith(b"220"):
                    return False
                c.send(b"QUIT\r\n")
                c.read_until_closed(3)
            return True
        except (OSError, ConnectionClosed, AssertionError):
            return False

    srv._accepts = ready
    return srv.start()
