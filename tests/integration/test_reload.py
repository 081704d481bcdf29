"""Reload: SIGHUP to the master reads the configuration file again. New workers serve new
sessions with the new values while the old ones finish theirs; an invalid file changes nothing;
listen changes wait for a restart; nothing is lost and nothing crashes."""
import os
import re
import signal
import time

import pytest

from conftest import RawSMTP, free_port, queued_id, send_message, wait_until
from limits_helpers import ehlo_size, process_tree, read_line

RELOAD_TIMEOUT = 5.0          # seconds for a SIGHUP to be logged as handled
APPLY_TIMEOUT = 5.0           # seconds for new sessions to see the new values
OLD_EXIT_TIMEOUT = 5.0        # seconds for an old worker without sessions to exit
MB = 1024 * 1024
CRASH_RE = re.compile(r"worker \d+ pid=\d+ exited[^\n]*")


# ---- the configuration file ---------------------------------------------------------------

def set_server_key(srv, key, value):
    """Sets `key = value` in [server] of srv's file (replacing the line, else adding one)."""
    lines = srv.conf_path.read_text().splitlines()
    rx = re.compile(rf"^{re.escape(key)}\s*=")
    for i, line in enumerate(lines):
        if rx.match(line):
            lines[i] = f"{key} = {value}"
            break
    else:
        lines.insert(lines.index("[server]") + 1, f"{key} = {value}")
    srv.conf_path.write_text("\n".join(lines) + "\n")


def add_server_line(srv, text):
    """Adds a raw line right after [server]; returns its line number (1-based)."""
    lines = srv.conf_path.read_text().splitlines()
    at = lines.index("[server]") + 1
    lines.insert(at, text)
    srv.conf_path.write_text("\n".join(lines) + "\n")
    return at + 1


def remove_line(srv, text):
    lines = srv.conf_path.read_text().splitlines()
    lines.remove(text)
    srv.conf_path.write_text("\n".join(lines) + "\n")


# ---- signals and the log ------------------------------------------------------------------

def loaded_re(srv):
    return re.compile(rf"reload: configuration {re.escape(str(srv.conf_path))} loaded")


def invalid_re(srv):
    return re.compile(rf"reload: configuration {re.escape(str(srv.conf_path))} is invalid; "
                      r"the running one stays in force")


REFUSED_RE = re.compile(r"reload refused: workers of the previous reload are still finishing")


def count(srv, rx):
    return len(rx.findall(srv.log_text()))


def sighup(srv):
    os.kill(srv.proc.pid, signal.SIGHUP)


def reload(srv):
    """SIGHUP and wait for `reload: configuration ... loaded`."""
    before = count(srv, loaded_re(srv))
    sighup(srv)
    assert wait_until(lambda: count(srv, loaded_re(srv)) > before, RELOAD_TIMEOUT), \
        f"no reload logged; log:\n{srv.log_text()[-3000:]}"


def workers_of(srv):
    """Pids of the master's descendants (workers and the queue manager)."""
    return set(process_tree(srv.proc.pid)) - {srv.proc.pid}


def assert_no_crash(srv):
    assert srv.proc.poll() is None, "the master is gone"
    crashes = CRASH_RE.findall(srv.log_text())
    assert not crashes, crashes


def wait_for_size(srv, size):
    seen = []
    ok = wait_until(lambda: seen.append(ehlo_size(srv)) or seen[-1] == size, APPLY_TIMEOUT,
                    interval=0.2)
    assert ok, f"new sessions still see SIZE {seen[-1]}, not {size}"


def open_transaction(srv):
    """A session that has MAIL and RCPT accepted, waiting for DATA."""
    c = RawSMTP(srv.port)
    c.greeting()
    c.ehlo()
    assert c.cmd("MAIL FROM:<old@client.example>").code == 250
    assert c.cmd("RCPT TO:<x@example.test>").code == 250
    return c


def finish_transaction(c):
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: across a reload\r\n\r\nx\r\n.\r\n")
    qid = queued_id(c.reply())
    assert c.cmd("QUIT").code == 221
    c.close()
    return qid


def send(srv):
    return queued_id(send_message(srv.port, b"Subject: reload\r\n\r\nx\r\n"))


# ---- tests --------------------------------------------------------------------------------


def test_new_sessions_see_new_values_old_session_finishes(mxgate_factory):
    srv = mxgate_factory()
    qids = [send(srv)]
    old = open_transaction(srv)
    before = workers_of(srv)
    set_server_key(srv, "max_message_size", "10M")
    reload(srv)
    srv.wait_for_log(r"reload: starting new workers; the old ones finish their sessions")
    wait_for_size(srv, 10 * MB)
    qids.append(send(srv))
    qids.append(finish_transaction(old))              # the old worker finishes its session
    assert wait_until(lambda: not before & workers_of(srv), OLD_EXIT_TIMEOUT), \
        f"old processes still alive: {before & workers_of(srv)}"
    assert workers_of(srv), "no workers after the reload"
    qids.append(send(srv))
    assert sorted(p.name for p in srv.queued()) == sorted(qids)
    assert_no_crash(srv)


def _probe_greet_pause(srv):
    """True when a new session's greeting starts with '220-' (greet_pause_ms in force); the
    session then quits during the pause, so it ends whatever the server does next."""
    with RawSMTP(srv.port) as c:
        first = read_line(c)
        if not first.startswith(b"220-"):
            c.cmd("QUIT")
            return False
        c.send(b"QUIT\r\n")
        c.read_until_closed()
        return True


def _probe_max_recipients(srv):
    """True when the third RCPT of a new session gets 452 4.5.3 (max_recipients = 2)."""
    with RawSMTP(srv.port) as c:
        c.greeting()
        c.ehlo()
        assert c.cmd("MAIL FROM:<a@client.example>").code == 250
        codes = [c.cmd(f"RCPT TO:<r{i}@example.test>").code for i in range(3)]
        c.cmd("QUIT")
    return codes == [250, 250, 452]


@pytest.mark.parametrize("key, value, probe", [
    ("greet_pause_ms", 1000, _probe_greet_pause),
    ("max_recipients", 2, _probe_max_recipients),
], ids=["greet_pause_ms", "max_recipients"])
def test_reloaded_value_reaches_new_sessions(mxgate_factory, key, value, probe):
    srv = mxgate_factory()
    assert not probe(srv)
    set_server_key(srv, key, value)
    reload(srv)
    assert wait_until(lambda: probe(srv), APPLY_TIMEOUT, interval=0.2), \
        f"{key} = {value} not in force for new sessions"
    assert_no_crash(srv)


@pytest.mark.parametrize("bad", ["frobnicate = 1", "max_recipients = lots"],
                         ids=["unknown-key", "bad-value"])
def test_invalid_file_keeps_the_running_configuration(mxgate_factory, bad):
    srv = mxgate_factory()
    pids = workers_of(srv)
    set_server_key(srv, "max_message_size", "10M")
    lineno = add_server_line(srv, bad)
    sighup(srv)
    srv.wait_for_log(invalid_re(srv).pattern, timeout=RELOAD_TIMEOUT)
    srv.wait_for_log(rf"reload: {re.escape(str(srv.conf_path))}:{lineno}: ")
    assert count(srv, loaded_re(srv)) == 0
    assert "reload: starting new workers" not in srv.log_text()
    time.sleep(0.5)                                   # nothing restarts, even a moment later
    assert workers_of(srv) == pids
    assert ehlo_size(srv) == 25 * MB, "the old values stay in force"
    qids = [send(srv)]

    remove_line(srv, bad)                             # fixed: the next SIGHUP works
    reload(srv)
    wait_for_size(srv, 10 * MB)
    qids.append(send(srv))
    assert sorted(p.name for p in srv.queued()) == sorted(qids)
    assert_no_crash(srv)


def test_listen_change_waits_for_a_restart(mxgate_factory):
    srv = mxgate_factory()
    new_port = free_port()
    text = srv.conf_path.read_text()
    srv.conf_path.write_text(text.replace(f"listen = 127.0.0.1:{srv.port}\n",
                                          f"listen = 127.0.0.1:{new_port}\n"))
    sighup(srv)
    srv.wait_for_log(r"reload: listen changes need a restart; keeping the old listeners",
                     timeout=RELOAD_TIMEOUT)
    time.sleep(0.5)
    qid = send(srv)                                   # the old port still serves
    assert srv.queue_file(qid)
    with pytest.raises(ConnectionRefusedError):
        RawSMTP(new_port, timeout=2).close()
    assert_no_crash(srv)


def test_second_reload_while_old_workers_finish(mxgate_factory):
    srv = mxgate_factory()
    old = open_transaction(srv)                       # keeps a first-generation worker busy
    set_server_key(srv, "max_message_size", "10M")
    reload(srv)
    loaded = count(srv, loaded_re(srv))
    set_server_key(srv, "max_message_size", "5M")
    sighup(srv)
    assert wait_until(lambda: count(srv, REFUSED_RE) or count(srv, loaded_re(srv)) > loaded,
                      RELOAD_TIMEOUT), f"second SIGHUP not handled:\n{srv.log_text()[-3000:]}"
    qids = [send(srv)]                                # serving either way
    qids.append(finish_transaction(old))
    # once the old generation is gone a reload is accepted (again, if it was refused)
    deadline = time.monotonic() + 3 * RELOAD_TIMEOUT
    while ehlo_size(srv) != 5 * MB:
        assert time.monotonic() < deadline, f"5M never in force:\n{srv.log_text()[-3000:]}"
        if count(srv, REFUSED_RE) and count(srv, loaded_re(srv)) == loaded:
            time.sleep(0.5)
            sighup(srv)
        time.sleep(0.3)
    qids.append(send(srv))
    assert sorted(p.name for p in srv.queued()) == sorted(qids)
    assert_no_crash(srv)
