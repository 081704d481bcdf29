"""`mxgate queue list|show|retry|hold|release|delete` against a running server, and against a
stopped one (the request is recorded in the state log and applied at the next start).

Each test runs mxgate in front of a Downstream it controls (see delivery_helpers.py): the
downstream defers first, so the message stays queued while the commands act on it."""
import re
import time

from conftest import QID_RE, wait_until
from delivery_helpers import (SENDER, SENDER_DOMAIN, dns, env, queue_cli,  # noqa: F401
                              queue_contents, queue_entry, queue_list, queue_show, read_state,
                              submit, wait_queue_empty)

ISO_RE = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"
DEFER = (451, "4.7.1 <{rcpt}>: Greylisted, come back later")


def deferred(srv, qid, timeout=5):
    """Waits until the message's first attempt is recorded; returns its list entry."""
    entry = wait_until(lambda: (lambda m: m if m and m["attempts"] >= 1 else None)(
        queue_entry(srv, qid)), timeout)
    assert entry, f"{qid} not deferred within {timeout}s: {read_state(srv, qid)!r}"
    return entry


def ok(res):
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


# --------------------------------------------------------------------------------------------
# list and show


def test_list_and_show(env):
    e = env(retry_first=60, retry_max=120)
    acme = e["acme"]
    acme.defer(None, *DEFER)
    acme.accept("dave@acme.example")
    qid = submit(e.srv, SENDER, ["bob@acme.example", "dave@acme.example"])
    entry = deferred(e.srv, qid)
    assert entry["id"] == qid and QID_RE.match(entry["id"])
    assert entry["state"] == "deferred"
    assert entry["sender"] == SENDER
    assert entry["attempts"] == 1
    assert re.match(ISO_RE, entry["next_attempt"]) and re.match(ISO_RE, entry["arrival"])
    assert entry["next_attempt"] > entry["arrival"]
    assert entry["size"] > 0
    bob, dave = entry["recipients"]
    assert bob["address"] == "bob@acme.example" and bob["status"] == "deferred"
    assert bob["dsn"] == "4.7.1" and "Greylisted" in bob["reply"]
    assert bob["tenant"] == "acme" and bob["route"] == acme.address
    assert bob["remote"] == acme.host
    assert dave["status"] == "delivered" and dave["dsn"] == "2.0.0"
    # show: the same plus the session's details
    shown = queue_show(e.srv, qid)
    for key in ("id", "state", "sender", "attempts", "next_attempt", "recipients"):
        assert shown[key] == entry[key], key
    assert shown["client"] and shown["helo"] == "client.example"
    # the text forms
    text = ok(queue_cli(e.srv, "list"))
    assert qid in text and "deferred" in text and "1 message queued" in text
    text = ok(queue_cli(e.srv, "show", qid))
    assert "bob@acme.example" in text and "4.7.1" in text and "Greylisted" in text
    assert "attempts 1" in text
    # only one message delivered (dave), the rest waits
    assert [m.rcpts for m in acme.snapshot()] == [["dave@acme.example"]]


def test_list_empty_queue(env):
    e = env()
    assert queue_list(e.srv) == []
    assert "0 messages queued" in ok(queue_cli(e.srv, "list"))


# --------------------------------------------------------------------------------------------
# hold and release


def test_hold_then_release(env):
    e = env(retry_first=1, retry_max=1)
    acme = e["acme"]
    acme.defer(None, *DEFER)
    qid = submit(e.srv, SENDER, ["bob@acme.example"])
    deferred(e.srv, qid)
    assert "hold requested" in ok(queue_cli(e.srv, "hold", qid))
    time.sleep(0.5)                      # an attempt in flight when the hold came may end
    acme.accept()
    offered = acme.rcpt_count("bob@acme.example")
    time.sleep(3.0)                      # three retry periods: none while held
    assert acme.rcpt_count("bob@acme.example") == offered, "a held message was attempted"
    assert acme.snapshot() == []
    entry = queue_entry(e.srv, qid)
    assert entry["state"] == "held"
    assert "held" in ok(queue_cli(e.srv, "list"))
    t0 = time.monotonic()
    assert "release requested" in ok(queue_cli(e.srv, "release", qid))
    [msg] = acme.wait_for(1, timeout=20)
    assert time.monotonic() - t0 < 20, "release did not act (the next retry is minutes away)"
    assert msg.rcpts == ["bob@acme.example"]
    wait_queue_empty(e.srv)


# --------------------------------------------------------------------------------------------
# retry


def test_retry_id_forces_an_attempt(env):
    e = env(retry_first=300, retry_max=600)
    acme = e["acme"]
    acme.accept_after(1, "bob@acme.example", *DEFER)
    qid = submit(e.srv, SENDER, ["bob@acme.example"])
    entry = deferred(e.srv, qid)
    assert entry["next_attempt"] > entry["arrival"]
    time.sleep(0.5)
    assert acme.snapshot() == []
    t0 = time.monotonic()
    assert "retry requested" in ok(queue_cli(e.srv, "retry", qid))
    # retry_first is 300 s: delivery well before that is the retry request acting
    [msg] = acme.wait_for(1, timeout=20)
    assert time.monotonic() - t0 < 20, "retry did not act at once"
    assert msg.rcpts == ["bob@acme.example"]
    wait_queue_empty(e.srv)


def test_retry_all(env):
    e = env(retry_first=300, retry_max=600)
    acme = e["acme"]
    acme.accept_after(1, "bob@acme.example", *DEFER)
    acme.accept_after(1, "carol@acme.example", *DEFER)
    q1 = submit(e.srv, SENDER, ["bob@acme.example"])
    q2 = submit(e.srv, SENDER, ["carol@acme.example"])
    deferred(e.srv, q1)
    deferred(e.srv, q2)
    out = ok(queue_cli(e.srv, "retry"))
    assert "retry requested for 2 messages" in out
    msgs = acme.wait_for(2, timeout=5)
    assert sorted(m.rcpts[0] for m in msgs) == ["bob@acme.example", "carol@acme.example"]
    wait_queue_empty(e.srv)


# --------------------------------------------------------------------------------------------
# delete


def test_delete_removes_without_report(env):
    e = env(retry_first=1, retry_max=1)
    acme, home = e["acme"], e[SENDER_DOMAIN]
    acme.defer(None, *DEFER)
    qid = submit(e.srv, SENDER, ["bob@acme.example"])
    deferred(e.srv, qid)
    assert "delete requested" in ok(queue_cli(e.srv, "delete", qid))
    wait_queue_empty(e.srv, timeout=5)
    e.srv.wait_for_log(rf"qid={qid} qmgr deleted by the administrator")
    acme.accept()
    time.sleep(1.5)
    assert home.snapshot() == [] and acme.snapshot() == []
    assert f"qid={qid} qmgr report" not in e.srv.log_text()
    assert queue_cli(e.srv, "show", qid).returncode == 2


# --------------------------------------------------------------------------------------------
# usage


def test_bad_arguments_and_help(env):
    e = env()
    missing = "0" * 20
    for args in (("show", missing), ("hold", missing), ("release", missing),
                 ("delete", missing), ("retry", missing), ("hold", "not-a-queue-id"),
                 ("hold", "../../etc/passwd"), ("show", ""), ("hold",), ("frobnicate",), (),
                 ("list", "extra"), ("list", "--bogus")):
        res = queue_cli(e.srv, *args)
        assert res.returncode == 2, (args, res.returncode, res.stdout, res.stderr)
        assert res.stderr, args
    for args in (("--help",), ("list", "--help"), ("-h",)):
        res = queue_cli(e.srv, *args)
        assert res.returncode == 0, (args, res.stderr)
        assert "usage: mxgate" in res.stdout and "queue list" in res.stdout


# --------------------------------------------------------------------------------------------
# a stopped server: recorded now, applied at the next start


def test_requests_while_stopped_apply_at_next_start(env):
    e = env(retry_first=300, retry_max=600)
    acme, home = e["acme"], e[SENDER_DOMAIN]
    acme.defer(None, *DEFER)
    q_retry = submit(e.srv, SENDER, ["r@acme.example"])
    q_delete = submit(e.srv, SENDER, ["d@acme.example"])
    q_hold = submit(e.srv, SENDER, ["h@acme.example"])
    for q in (q_retry, q_delete, q_hold):
        deferred(e.srv, q)
    assert e.srv.stop() == []
    assert not (e.srv.data_dir / "qmgr.pid").exists()
    # the commands work on the files alone
    entries = {m["id"]: m for m in queue_list(e.srv)}
    assert set(entries) == {q_retry, q_delete, q_hold}
    for word, q in (("retry", q_retry), ("delete", q_delete), ("hold", q_hold)):
        assert f"{word} requested" in ok(queue_cli(e.srv, word, q))
    assert queue_entry(e.srv, q_hold)["state"] == "held"
    assert queue_entry(e.srv, q_delete)["state"] == "deleting"
    acme.accept()
    e.srv.start()
    # retry: delivered at once, although its next attempt is minutes away
    [msg] = acme.wait_for(1, timeout=5)
    assert msg.rcpts == ["r@acme.example"]
    # delete: gone, no report
    ok_gone = wait_until(lambda: q_delete not in queue_contents(e.srv)[0], 5)
    assert ok_gone
    # hold: stays, not attempted
    time.sleep(1.0)
    assert acme.rcpt_count("h@acme.example") == 1
    assert queue_entry(e.srv, q_hold)["state"] == "held"
    assert [m.rcpts for m in acme.snapshot()] == [["r@acme.example"]]
    # and a release of the held one, with the server running again
    ok(queue_cli(e.srv, "release", q_hold))
    ok(queue_cli(e.srv, "retry", q_hold))
    acme.wait_for(2, timeout=5)
    wait_queue_empty(e.srv)
    assert home.snapshot() == []
