"""Delivery end to end: mxgate between SMTP clients and downstream servers the test controls.

Each test starts its own `mxgate serve` (short retry timers), one or more `Downstream` SMTP
servers on random 127.x.y.z addresses sharing one port (the tenants' routes and the MX hosts:
`mx_port` is that port), and points mxgate's resolver at a real unbound (one per module) that
holds the MX and A records of the test domains. Reports (RFC 3464) to outside senders go by MX
of the sender's domain, so they arrive at the sender domain's downstream and are parsed there
with Python's email package and flufl.bounce.
"""
import email
import email.policy
import email.utils
import random
import re
import time

import pytest

from conftest import HOSTNAME, split_trace_headers, wait_until
from delivery_helpers import (SENDER, SENDER_DOMAIN, catalog, dns, env,  # noqa: F401
                              loopback_hosts, make_body, normalised, parse_report,
                              queue_contents, queue_entry, read_state, state_records, submit,
                              wait_queue_empty)

DATE_RE = r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$"


# --------------------------------------------------------------------------------------------
# 1. delivery to a tenant's route


def test_delivered_byte_identical_and_removed(env):
    e = env()
    acme = e["acme"]
    acme.slow(1.5)                     # keeps the queue file around while we read it
    body = make_body(to="bob@acme.example",
                     text="line one\r\n.leading dot\r\n..two dots\r\n\tTab \r\n" + "x" * 900
                     + "\r\n")
    qid = submit(e.srv, SENDER, ["bob@acme.example"], body)
    queued = e.srv.queue_file(qid)
    assert queued.message == body
    [msg] = acme.wait_for(1, timeout=10)
    assert msg.data == queued.body, "the downstream got other bytes than the queue file holds"
    received, verdicts, rest = split_trace_headers(msg.data)
    assert received.startswith(b"Received: ") and qid.encode() in received
    assert len(verdicts) == 1 and rest == body
    assert msg.mail_from == SENDER and msg.rcpts == ["bob@acme.example"]
    assert msg.helo == HOSTNAME
    wait_queue_empty(e.srv)
    log = e.srv.wait_for_log(rf"qid={qid} qmgr delivered rcpt=<bob@acme.example> dsn=2\.0\.0 "
                             rf"remote={re.escape(acme.host)}")
    assert log
    e.srv.wait_for_log(rf"qid={qid} qmgr removed")
    time.sleep(0.5)
    assert len(acme.snapshot()) == 1, "delivered more than once"
    assert e[SENDER_DOMAIN].snapshot() == [], "a report for a delivered message"



# --------------------------------------------------------------------------------------------
# 2. deferral, then success


def test_deferred_twice_then_delivered_once(env):
    e = env(retry_first=1, retry_max=2)
    acme = e["acme"]
    acme.accept_after(2, "bob@acme.example", 451, "4.3.0 <{rcpt}>: greylisted, come back later")
    qid = submit(e.srv, SENDER, ["bob@acme.example"])
    acme.wait_rcpts("bob@acme.example", 1, timeout=5)
    # between the attempts the queue shows the message deferred, with the downstream's reply
    entry = wait_until(lambda: (lambda m: m if m and m["attempts"] >= 1 else None)(
        queue_entry(e.srv, qid)), 3)
    assert entry, f"no deferred entry for {qid}: {read_state(e.srv, qid)!r}"
    assert entry["state"] == "deferred"
    assert entry["sender"] == SENDER
    [r] = entry["recipients"]
    assert r["address"] == "bob@acme.example" and r["status"] == "deferred"
    assert r["dsn"] == "4.3.0" and "greylisted" in r["reply"]
    assert entry["next_attempt"] != "-"
    [msg] = acme.wait_for(1, timeout=10)
    assert msg.rcpts == ["bob@acme.example"]
    wait_queue_empty(e.srv)
    assert acme.rcpt_count("bob@acme.example") == 3
    assert e.srv.log_text().count(f"qid={qid} qmgr deferred rcpt=<bob@acme.example>") == 2
    e.srv.wait_for_log(rf"qid={qid} qmgr delivered rcpt=<bob@acme.example>")
    time.sleep(0.5)
    assert len(acme.snapshot()) == 1
    assert e[SENDER_DOMAIN].snapshot() == []


# --------------------------------------------------------------------------------------------
# 3. permanent failure: a report to the sender, by MX of the sender's domain

REJECT_TEXT = "5.1.1 <bob@acme.example>: Recipient address rejected: User unknown"


def flufl_failed(data):
    from flufl.bounce import scan_message
    return scan_message(email.message_from_bytes(data, policy=email.policy.compat32))


@pytest.mark.parametrize("variant", ["hdrs-envid-orcpt", "full-plain"])
def test_permanent_failure_report(env, variant):
    e = env()
    acme, home = e["acme"], e[SENDER_DOMAIN]
    acme.reject("bob@acme.example", 550, REJECT_TEXT)
    with_dsn = variant == "hdrs-envid-orcpt"
    body = make_body(to="bob@acme.example", subject="Quarterly report",
                     text="Hello Bob,\r\nthe body text\r\n")
    t0 = time.time()
    qid = submit(e.srv, SENDER, ["bob@acme.example"], body,
                 mail_params="ENVID=QR+2B2026-42" if with_dsn else "RET=FULL",
                 rcpt_params={"bob@acme.example": "ORCPT=rfc822;Bob+40Acme.example"}
                 if with_dsn else None)
    [ndr] = home.wait_for(1, timeout=10)
    assert ndr.mail_from == "", "a report goes from the null sender"
    assert ndr.rcpts == [SENDER]
    rep = parse_report(ndr.data)
    msg = rep.msg
    assert msg["Auto-Submitted"] == "auto-replied"
    assert str(msg["To"]) == f"<{SENDER}>" or SENDER in str(msg["To"])
    assert msg["From"].addresses[0].username.upper() == "MAILER-DAEMON"
    assert str(msg["Subject"]) == "Undeliverable: Quarterly report"
    assert msg["In-Reply-To"] == re.search(rb"Message-ID: (<[^>]+>)", body).group(1).decode()
    assert not msg.defects and all(not p.defects for p in msg.walk())
    # per message
    pm = rep.per_message
    assert pm["Reporting-MTA"] == f"dns; {HOSTNAME}"
    assert re.match(DATE_RE, pm["Arrival-Date"]), pm
    arrival = email.utils.parsedate_to_datetime(pm["Arrival-Date"]).timestamp()
    assert t0 - 2 <= arrival <= time.time() + 1
    if with_dsn:
        assert pm["Original-Envelope-Id"] == "QR+2026-42"
    else:
        assert "Original-Envelope-Id" not in pm
    # per recipient
    [pr] = rep.per_recipient
    assert pr["Final-Recipient"] == "rfc822; bob@acme.example"
    assert pr["Action"] == "failed"
    assert pr["Status"] == "5.1.1"
    assert pr["Remote-MTA"].startswith("dns; ") and acme.host in pr["Remote-MTA"]
    assert pr["Diagnostic-Code"].startswith("smtp;")
    assert "<bob@acme.example>: Recipient address rejected: User unknown" in pr["Diagnostic-Code"]
    assert re.match(DATE_RE, pr["Last-Attempt-Date"]), pr
    assert "Will-Retry-Until" not in pr
    if with_dsn:
        assert pr["Original-Recipient"] == "rfc822; Bob@Acme.example"
    else:
        assert "Original-Recipient" not in pr
    # the human part: what, to whom, the code, the cause and the fix from the catalog
    human = normalised(rep.human)
    entry = catalog("5.1.1")
    assert "bob@acme.example" in human and "couldn't be delivered" in human
    assert "5.1.1" in human
    assert entry["cause"] in human, entry["cause"]
    assert entry["fix"] in human, entry["fix"]
    assert "How to fix it" in human
    assert HOSTNAME in human and qid in human
    assert "Recipient address rejected: User unknown" in human
    # the original: its headers, or all of it with RET=FULL
    if with_dsn:
        assert rep.returned.get_content_type() == "text/rfc822-headers"
        returned = rep.returned.get_content()
        assert "Subject: Quarterly report" in returned and "Hello Bob" not in returned
    else:
        assert rep.returned.get_content_type() == "message/rfc822"
        inner = rep.returned.get_payload()[0]
        assert inner["Subject"] == "Quarterly report"
        assert "the body text" in inner.get_content()
    # what mailing-list software makes of it
    assert flufl_failed(ndr.data) == ({b"Bob@Acme.example"} if with_dsn
                                      else {b"bob@acme.example"})
    # the original went only after the report was queued; the report itself is delivered and
    # removed too
    log = e.srv.log_text()
    m = re.search(rf"qid={qid} qmgr report failure queued as ([0-9A-F]{{20}}) to <{SENDER}>", log)
    assert m, log[-3000:]
    ndr_qid = m.group(1)
    assert log.index(m.group(0)) < log.index(f"qid={qid} qmgr removed")
    e.srv.wait_for_log(rf"qid={ndr_qid} qmgr delivered rcpt=<{SENDER}>")
    wait_queue_empty(e.srv)
    assert acme.snapshot() == []
    time.sleep(0.5)
    assert len(home.snapshot()) == 1, "one report per message"


def test_report_quotes_the_remote_reply_verbatim(env):
    e = env()
    e["acme"].reject("bob@acme.example", 550, REJECT_TEXT)
    submit(e.srv, SENDER, ["bob@acme.example"])
    [ndr] = e[SENDER_DOMAIN].wait_for(1, timeout=10)
    rep = parse_report(ndr.data)
    # RFC 3464 2.3.6: the SMTP diagnostic is the reply, code included (as in the golden files)
    assert rep.per_recipient[0]["Diagnostic-Code"] == f"smtp; 550 {REJECT_TEXT}"
    assert f"550 {REJECT_TEXT}" in normalised(rep.human)


# --------------------------------------------------------------------------------------------
# 4. expiry


def test_expired_recipient_fails_with_4_4_7(env):
    e = env(retry_first=1, retry_max=2, max_lifetime=6, delay_warning=0)
    acme, home = e["acme"], e[SENDER_DOMAIN]
    acme.defer(None, 451, "4.3.0 Temporary lookup failure")
    t0 = time.monotonic()
    qid = submit(e.srv, SENDER, ["bob@acme.example"])
    [ndr] = home.wait_for(1, timeout=15)
    elapsed = time.monotonic() - t0
    assert elapsed >= 5.0, f"gave up after {elapsed:.1f}s, max_lifetime is 6"
    assert acme.rcpt_count("bob@acme.example") >= 3, "retried meanwhile"
    rep = parse_report(ndr.data)
    [pr] = rep.per_recipient
    assert pr["Action"] == "failed"
    assert pr["Status"] == "4.4.7"
    assert pr["Final-Recipient"] == "rfc822; bob@acme.example"
    assert "451 4.3.0 Temporary lookup failure" in pr["Diagnostic-Code"]
    assert str(rep.msg["Subject"]).startswith("Undeliverable: ")
    human = normalised(rep.human)
    assert catalog("4.4.7")["cause"] in human
    assert catalog("4.4.7")["fix"] in human
    assert flufl_failed(ndr.data) == {b"bob@acme.example"}
    e.srv.wait_for_log(rf"qid={qid} qmgr expired rcpt=<bob@acme.example> dsn=4\.4\.7")
    wait_queue_empty(e.srv)
    time.sleep(0.5)
    assert len(home.snapshot()) == 1 and acme.snapshot() == []


# --------------------------------------------------------------------------------------------
# 5. delay warning


def test_delay_warning_once_then_delivered(env):
    e = env(retry_first=1, retry_max=2, max_lifetime=20, delay_warning=2)
    acme, home = e["acme"], e[SENDER_DOMAIN]
    acme.defer(None, 452, "4.2.2 Mailbox over quota, try later")
    qid = submit(e.srv, SENDER, ["bob@acme.example"])
    [warn] = home.wait_for(1, timeout=8)
    arrival_entry = queue_entry(e.srv, qid)
    assert arrival_entry and arrival_entry["recipients"][0]["status"] == "deferred", \
        "the message stays queued after the warning"
    rep = parse_report(warn.data)
    assert warn.mail_from == "" and warn.rcpts == [SENDER]
    assert str(rep.msg["Subject"]).startswith("Delayed: ")
    [pr] = rep.per_recipient
    assert pr["Action"] == "delayed"
    assert pr["Status"] == "4.2.2"
    assert re.match(DATE_RE, pr["Will-Retry-Until"]), pr
    until = email.utils.parsedate_to_datetime(pr["Will-Retry-Until"]).timestamp()
    arrival = email.utils.parsedate_to_datetime(rep.per_message["Arrival-Date"]).timestamp()
    assert until - arrival == 20, (pr["Will-Retry-Until"], rep.per_message["Arrival-Date"])
    assert flufl_failed(warn.data) == set(), "a warning is no failure"
    # more attempts, still one warning
    n = acme.rcpt_count("bob@acme.example")
    acme.wait_rcpts("bob@acme.example", n + 2, timeout=8)
    assert len(home.snapshot()) == 1
    acme.accept()
    [msg] = acme.wait_for(1, timeout=6)
    wait_queue_empty(e.srv)
    time.sleep(1.0)
    assert len(home.snapshot()) == 1, "no report after the delivery"


# --------------------------------------------------------------------------------------------
# 6. the null sender never gets a report


def test_null_sender_failure_sends_no_report(env):
    e = env()
    acme, home = e["acme"], e[SENDER_DOMAIN]
    acme.reject(None, 550, "5.7.1 Rejected by policy")
    qid = submit(e.srv, "", ["bob@acme.example"], make_body(sender="MAILER-DAEMON@sender.test"))
    e.srv.wait_for_log(rf"qid={qid} qmgr failed rcpt=<bob@acme.example> dsn=5\.7\.1")
    wait_queue_empty(e.srv)
    time.sleep(1.0)
    log = e.srv.log_text()
    assert f"qid={qid} qmgr report" not in log
    assert home.snapshot() == [] and acme.snapshot() == []
    assert queue_contents(e.srv) == ([], [])


# --------------------------------------------------------------------------------------------
# 7. DSN parameters


def test_notify_never_sends_no_report(env):
    e = env()
    acme, home = e["acme"], e[SENDER_DOMAIN]
    acme.reject("bob@acme.example", 550, REJECT_TEXT)
    qid = submit(e.srv, SENDER, ["bob@acme.example"],
                 rcpt_params={"bob@acme.example": "NOTIFY=NEVER"})
    e.srv.wait_for_log(rf"qid={qid} qmgr failed rcpt=<bob@acme.example>")
    wait_queue_empty(e.srv)
    time.sleep(1.0)
    assert home.snapshot() == []
    # passed on to the downstream, which offers DSN
    [(_, rcpt, params, code, _)] = acme.rcpt_log
    assert rcpt == "bob@acme.example" and code == 550 and params.get("NOTIFY") == "NEVER"


def test_notify_delay_only_gets_no_failure_report(env):
    """NOTIFY=DELAY: the sender asked for delay warnings only, so no report on failure."""
    e = env()
    e["acme"].reject("bob@acme.example", 550, REJECT_TEXT)
    qid = submit(e.srv, SENDER, ["bob@acme.example"],
                 rcpt_params={"bob@acme.example": "NOTIFY=DELAY"})
    e.srv.wait_for_log(rf"qid={qid} qmgr failed rcpt=<bob@acme.example>")
    wait_queue_empty(e.srv)
    time.sleep(1.0)
    assert e[SENDER_DOMAIN].snapshot() == []


def test_dsn_parameters_passed_on(env):
    e = env()
    acme, home = e["acme"], e[SENDER_DOMAIN]
    submit(e.srv, SENDER, ["bob@acme.example", "carol@acme.example"],
           mail_params="RET=FULL ENVID=Env+2BId-7",
           rcpt_params={"bob@acme.example": "NOTIFY=SUCCESS,FAILURE,DELAY "
                                            "ORCPT=rfc822;Bob+40Acme.example",
                        "carol@acme.example": "NOTIFY=FAILURE"})
    [msg] = acme.wait_for(1, timeout=10)
    assert msg.mail_params.get("RET") == "FULL"
    assert msg.mail_params.get("ENVID") == "Env+2BId-7"
    assert msg.rcpts == ["bob@acme.example", "carol@acme.example"]
    bob = msg.rcpt_params["bob@acme.example"]
    assert set(bob["NOTIFY"].split(",")) == {"SUCCESS", "FAILURE", "DELAY"}
    assert bob["ORCPT"] == "rfc822;Bob+40Acme.example"
    carol = msg.rcpt_params["carol@acme.example"]
    assert carol == {"NOTIFY": "FAILURE"}, "no ORCPT invented"
    wait_queue_empty(e.srv)
    time.sleep(0.5)
    # the next hop offers DSN: success reports are its business
    assert home.snapshot() == []


def test_dsn_parameters_not_sent_without_dsn(env):
    e = env(dsn=False)
    acme = e["acme"]
    submit(e.srv, SENDER, ["bob@acme.example"], mail_params="RET=HDRS ENVID=abc",
           rcpt_params={"bob@acme.example": "NOTIFY=FAILURE ORCPT=rfc822;bob+40acme.example"})
    [msg] = acme.wait_for(1, timeout=10)
    assert "RET" not in msg.mail_params and "ENVID" not in msg.mail_params
    assert msg.rcpt_params["bob@acme.example"] == {}
    wait_queue_empty(e.srv)


# --------------------------------------------------------------------------------------------
# 8. relay from an onprem connector, by MX

ONPREM_IP = "198.51.100.10"


def test_onprem_relay_delivered_by_mx(env):
    e = env(mx_domains=(SENDER_DOMAIN, "remote.test"), proxy=True,
            setup=[("connector", "add", "acme", "hq", "--type", "onprem",
                    "--ip", "198.51.100.0/24")])
    remote = e["remote.test"]
    remote.slow(1.0)
    qid = submit(e.srv, "user@acme.example", ["x@remote.test"],
                 make_body(sender="user@acme.example", to="x@remote.test"), proxy_ip=ONPREM_IP)
    qf = e.srv.queue_file(qid)
    assert qf.recipients[0]["rcpt-route"] == "mx"
    [msg] = remote.wait_for(1, timeout=10)
    assert msg.mail_from == "user@acme.example" and msg.rcpts == ["x@remote.test"]
    assert msg.data == qf.body
    assert msg.server == f"{remote.host}:{e.port}"
    e.srv.wait_for_log(rf"qid={qid} qmgr delivered rcpt=<x@remote.test> dsn=2\.0\.0 "
                       rf"remote=mx\.remote\.test")
    wait_queue_empty(e.srv)
    assert e["acme"].snapshot() == []


# --------------------------------------------------------------------------------------------
# 9. recipients of two tenants in one message


def test_two_tenants_each_to_its_route_report_lists_only_the_failed(env):
    e = env(tenants=("acme", "beta"))
    acme, beta, home = e["acme"], e["beta"], e[SENDER_DOMAIN]
    beta.reject("erin@beta.example", 550, "5.1.1 <erin@beta.example>: no such mailbox")
    rcpts = ["bob@acme.example", "carol@beta.example", "erin@beta.example",
             "dave@acme.example"]
    qid = submit(e.srv, SENDER, rcpts)
    [a] = acme.wait_for(1, timeout=10)
    [b] = beta.wait_for(1, timeout=10)
    assert a.rcpts == ["bob@acme.example", "dave@acme.example"]
    assert b.rcpts == ["carol@beta.example"]
    assert not any(r[1].endswith("@beta.example") for r in acme.rcpt_log)
    assert not any(r[1].endswith("@acme.example") for r in beta.rcpt_log)
    [ndr] = home.wait_for(1, timeout=10)
    rep = parse_report(ndr.data)
    assert [p["Final-Recipient"] for p in rep.per_recipient] == ["rfc822; erin@beta.example"]
    assert rep.per_recipient[0]["Action"] == "failed"
    assert flufl_failed(ndr.data) == {b"erin@beta.example"}
    human = rep.human
    for ok in ("bob@acme.example", "carol@beta.example", "dave@acme.example"):
        assert f"Your message to {ok}" not in human
    wait_queue_empty(e.srv)
    time.sleep(0.5)
    assert len(acme.snapshot()) == 1 and len(beta.snapshot()) == 1 and len(home.snapshot()) == 1
    assert f"qid={qid} qmgr removed" in e.srv.log_text()


# --------------------------------------------------------------------------------------------
# 10. downstream down, then up; slow downstream; connections


def test_downstream_down_then_up(env):
    e = env(retry_first=1, retry_max=2)
    acme = e["acme"]
    acme.stop()
    qid = submit(e.srv, SENDER, ["bob@acme.example"])
    queued = e.srv.queue_file(qid)
    ok = wait_until(lambda: "rcpt 0 deferred" in read_state(e.srv, qid), 5)
    assert ok, read_state(e.srv, qid)
    rec = next(r for r in reversed(state_records(e.srv, qid)) if r[:2] == ["rcpt", "0"])
    assert rec[2] == "deferred" and rec[5] == "4.4.1", rec
    entry = queue_entry(e.srv, qid)
    assert entry["state"] == "deferred" and entry["recipients"][0]["dsn"] == "4.4.1"
    acme.start()
    [msg] = acme.wait_for(1, timeout=8)
    assert msg.data == queued.body
    wait_queue_empty(e.srv)
    assert e[SENDER_DOMAIN].snapshot() == []


def test_slow_downstream_times_out_then_delivered(env):
    e = env(retry_first=1, retry_max=2, data_timeout=2)
    acme = e["acme"]
    acme.slow(4)
    qid = submit(e.srv, SENDER, ["bob@acme.example"])
    ok = wait_until(lambda: "rcpt 0 deferred" in read_state(e.srv, qid), 6)
    assert ok, f"no deferral after the data timeout: {read_state(e.srv, qid)!r}"
    rec = next(r for r in reversed(state_records(e.srv, qid)) if r[:2] == ["rcpt", "0"])
    assert rec[5].startswith("4.4."), rec
    acme.slow(0)
    wait_queue_empty(e.srv, timeout=10)
    e.srv.wait_for_log(rf"qid={qid} qmgr delivered")
    # the late 250 of the first attempt was lost: a duplicate is allowed, a loss is not
    assert 1 <= len(acme.snapshot()) <= 2


def test_connection_reused_and_concurrency_limited(env):
    e = env(concurrency=2)
    acme = e["acme"]
    acme.slow(0.5)
    qids = [submit(e.srv, SENDER, [f"u{i}@acme.example"]) for i in range(6)]
    msgs = acme.wait_for(6, timeout=15)
    assert sorted(m.rcpts[0] for m in msgs) == sorted(f"u{i}@acme.example" for i in range(6))
    assert acme.max_active <= 2, f"{acme.max_active} connections at once, concurrency is 2"
    assert acme.connections <= 3, f"{acme.connections} connections for 6 messages: no reuse"
    wait_queue_empty(e.srv)
    assert len(qids) == 6


def test_8bit_message_to_server_without_8bitmime_fails_5_6_3(env):
    e = env()
    acme = e["acme"]
    acme.extensions.remove("8BITMIME")
    body = make_body(to="bob@acme.example", text="Gr\u00fc\u00dfe\r\n").replace(
        b"us-ascii", b"utf-8")
    assert "Grüße".encode() in body
    qid = submit(e.srv, SENDER, ["bob@acme.example"], body, mail_params="BODY=8BITMIME")
    [ndr] = e[SENDER_DOMAIN].wait_for(1, timeout=10)
    rep = parse_report(ndr.data)
    assert rep.per_recipient[0]["Status"] == "5.6.3"
    assert rep.per_recipient[0]["Action"] == "failed"
    assert acme.snapshot() == []
    e.srv.wait_for_log(rf"qid={qid} qmgr failed rcpt=<bob@acme.example> dsn=5\.6\.3")
    wait_queue_empty(e.srv)


def test_expired_report_diagnostic_is_the_last_reply(env):
    e = env(retry_first=1, retry_max=1, max_lifetime=2, delay_warning=0)
    e["acme"].defer(None, 451, "4.3.0 Temporary lookup failure")
    submit(e.srv, SENDER, ["bob@acme.example"])
    [ndr] = e[SENDER_DOMAIN].wait_for(1, timeout=10)
    [pr] = parse_report(ndr.data).per_recipient
    assert pr["Status"] == "4.4.7"
    # as tests/unit/golden/ndr-expired.eml: the last reply, verbatim, as the smtp diagnostic
    assert pr["Diagnostic-Code"] == "smtp; 451 4.3.0 Temporary lookup failure"


# --------------------------------------------------------------------------------------------
# more outcomes: one report for several failures, rejection after DATA, no ESMTP niceties


def test_one_report_covers_failed_and_expired_recipients(env):
    e = env(retry_first=1, retry_max=1, max_lifetime=3, delay_warning=0)
    acme, home = e["acme"], e[SENDER_DOMAIN]
    acme.reject("bob@acme.example", 550, REJECT_TEXT)
    acme.defer("carol@acme.example", 451, "4.4.5 Insufficient system storage")
    qid = submit(e.srv, SENDER, ["bob@acme.example", "carol@acme.example"])
    e.srv.wait_for_log(rf"qid={qid} qmgr failed rcpt=<bob@acme.example>")
    time.sleep(1.0)
    assert home.snapshot() == [], "reported before every recipient was final"
    [ndr] = home.wait_for(1, timeout=8)
    rep = parse_report(ndr.data)
    got = {p["Final-Recipient"]: (p["Action"], p["Status"]) for p in rep.per_recipient}
    assert got == {"rfc822; bob@acme.example": ("failed", "5.1.1"),
                   "rfc822; carol@acme.example": ("failed", "4.4.7")}
    human = normalised(rep.human)
    assert catalog("5.1.1")["fix"] in human and catalog("4.4.7")["fix"] in human
    assert flufl_failed(ndr.data) == {b"bob@acme.example", b"carol@acme.example"}
    wait_queue_empty(e.srv)
    time.sleep(0.5)
    assert len(home.snapshot()) == 1


def test_rejected_after_data_fails_every_recipient(env):
    e = env()
    acme, home = e["acme"], e[SENDER_DOMAIN]
    acme.data_reply(554, "5.7.1 Message rejected as spam")
    submit(e.srv, SENDER, ["bob@acme.example", "carol@acme.example"])
    [ndr] = home.wait_for(1, timeout=10)
    rep = parse_report(ndr.data)
    assert sorted(p["Final-Recipient"] for p in rep.per_recipient) == [
        "rfc822; bob@acme.example", "rfc822; carol@acme.example"]
    assert {p["Status"] for p in rep.per_recipient} == {"5.7.1"}
    assert all("Message rejected as spam" in p["Diagnostic-Code"] for p in rep.per_recipient)
    wait_queue_empty(e.srv)


def test_deferred_after_data_then_delivered(env):
    e = env(retry_first=1, retry_max=1)
    acme = e["acme"]
    acme.data_reply(451, "4.3.0 Queue file write error")
    qid = submit(e.srv, SENDER, ["bob@acme.example"])
    ok = wait_until(lambda: "rcpt 0 deferred" in read_state(e.srv, qid), 5)
    assert ok, read_state(e.srv, qid)
    acme.data_reply(None)
    [msg] = acme.wait_for(1, timeout=6)
    wait_queue_empty(e.srv)
    assert e[SENDER_DOMAIN].snapshot() == []


def test_plain_smtp_downstream_without_extensions(env):
    e = env(dsn=False)
    acme = e["acme"]
    acme.extensions.clear()                   # no PIPELINING, SIZE, 8BITMIME, DSN
    rcpts = ["a@acme.example", "b@acme.example", "c@acme.example"]
    submit(e.srv, SENDER, rcpts, mail_params="RET=FULL",
           rcpt_params={"a@acme.example": "NOTIFY=SUCCESS"})
    [msg] = acme.wait_for(1, timeout=10)
    assert msg.rcpts == rcpts
    assert msg.mail_params == {} and all(p == {} for p in msg.rcpt_params.values())
    wait_queue_empty(e.srv)


def test_message_over_the_downstream_size_fails_5_3_4(env):
    e = env()
    acme = e["acme"]
    acme.extensions[acme.extensions.index("SIZE 52428800")] = "SIZE 1000"
    body = make_body(to="bob@acme.example", text=("y" * 70 + "\r\n") * 30)   # > 2000 bytes
    qid = submit(e.srv, SENDER, ["bob@acme.example"], body)
    [ndr] = e[SENDER_DOMAIN].wait_for(1, timeout=10)
    rep = parse_report(ndr.data)
    assert rep.per_recipient[0]["Status"] == "5.3.4"
    assert catalog("5.3.4")["fix"] in normalised(rep.human)
    assert acme.snapshot() == [] and acme.rcpt_log == []
    e.srv.wait_for_log(rf"qid={qid} qmgr failed rcpt=<bob@acme.example> dsn=5\.3\.4")


def test_report_to_a_tenant_sender_goes_to_the_tenant_route(env, dns):  # noqa: F811
    """An onprem user's relayed message bounces: the report is mail for a tenant's domain, so
    it goes to the tenant's route like any mail for that domain, not to whatever the MX of
    the domain names (for a gateway, usually the gateway itself)."""
    dns.add_zone("example.")
    e = env(mx_domains=(SENDER_DOMAIN, "remote.test", "acme.example"), proxy=True,
            setup=[("connector", "add", "acme", "hq", "--type", "onprem",
                    "--ip", "198.51.100.0/24")])
    e["remote.test"].reject(None, 550, "5.1.1 <{rcpt}>: no such user")
    submit(e.srv, "user@acme.example", ["x@remote.test"],
           make_body(sender="user@acme.example", to="x@remote.test"), proxy_ip=ONPREM_IP)
    route, mx = e["acme"], e["acme.example"]
    arrived = wait_until(lambda: route.snapshot() or mx.snapshot(), 10)
    assert arrived, "no report anywhere"
    assert mx.snapshot() == [], "the report went to the MX host of the tenant's domain"
    [ndr] = route.snapshot()
    assert ndr.mail_from == "" and ndr.rcpts == ["user@acme.example"]
    assert parse_report(ndr.data).per_recipient[0]["Status"] == "5.1.1"


def test_large_8bit_message_byte_identical(env):
    e = env()
    acme = e["acme"]
    rnd = random.Random(4)
    lines = []
    for i in range(40_000):                  # ~3 MB of 8-bit text, some lines starting with "."
        n = rnd.randint(0, 120)
        text = bytes(rnd.choice(b"abcdefghij .,\xc3\xa4\xc3\xb6\xe2\x82\xac") for _ in range(n))
        lines.append((b"." if i % 97 == 0 else b"") + text)
    body = make_body(to="bob@acme.example").replace(b"us-ascii", b"utf-8") + \
        b"\r\n".join(lines) + b"\r\n"
    qid = submit(e.srv, SENDER, ["bob@acme.example"], body, mail_params="BODY=8BITMIME")
    [msg] = acme.wait_for(1, timeout=20)
    assert split_trace_headers(msg.data)[2] == body
    assert msg.mail_params.get("BODY") == "8BITMIME"
    assert int(msg.mail_params["SIZE"]) >= len(body)
    wait_queue_empty(e.srv)
    assert qid in msg.data.split(b"\r\n\r\n", 1)[0].decode()


def test_retry_goes_only_to_recipients_not_yet_delivered(env):
    e = env(tenants=("acme", "beta"), retry_first=1, retry_max=1)
    acme, beta = e["acme"], e["beta"]
    beta.stop()
    qid = submit(e.srv, SENDER, ["bob@acme.example", "carol@beta.example"])
    [a] = acme.wait_for(1, timeout=10)
    assert a.rcpts == ["bob@acme.example"]
    ok = wait_until(lambda: "rcpt 1 deferred" in read_state(e.srv, qid), 5)
    assert ok, read_state(e.srv, qid)
    entry = queue_entry(e.srv, qid)
    assert [r["status"] for r in entry["recipients"]] == ["delivered", "deferred"]
    beta.start()
    [b] = beta.wait_for(1, timeout=8)
    assert b.rcpts == ["carol@beta.example"]
    wait_queue_empty(e.srv)
    assert len(acme.snapshot()) == 1, "the delivered recipient got the message again"
    assert acme.rcpt_count("bob@acme.example") == 1


def test_report_to_an_unresolvable_sender_is_dropped(env):
    """The report itself cannot be delivered (the sender's domain does not exist): it fails
    for good, and as it comes from the null sender nothing reports on it (no loop)."""
    e = env()
    e["acme"].reject(None, 550, REJECT_TEXT)
    qid = submit(e.srv, "ghost@nxdomain.test", ["bob@acme.example"],
                 make_body(sender="ghost@nxdomain.test", to="bob@acme.example"))
    m = e.srv.wait_for_log(rf"qid={qid} qmgr report failure queued as ([0-9A-F]{{20}})")
    ndr = m.group(1)
    e.srv.wait_for_log(rf"qid={ndr} qmgr failed rcpt=<ghost@nxdomain\.test> dsn=5\.1\.2")
    wait_queue_empty(e.srv)
    time.sleep(0.5)
    assert f"qid={ndr} qmgr report" not in e.srv.log_text()
    assert e[SENDER_DOMAIN].snapshot() == []


def test_notify_failure_only_gets_no_delay_warning(env):
    e = env(retry_first=1, retry_max=1, max_lifetime=30, delay_warning=1)
    acme, home = e["acme"], e[SENDER_DOMAIN]
    acme.defer(None, 451, "4.3.0 later")
    submit(e.srv, SENDER, ["bob@acme.example", "carol@acme.example"],
           rcpt_params={"bob@acme.example": "NOTIFY=FAILURE", "carol@acme.example": "NOTIFY=NEVER"})
    acme.wait_rcpts("bob@acme.example", 3, timeout=6)
    time.sleep(0.3)
    assert home.snapshot() == [], "a delay warning the sender did not ask for"
    acme.accept()
    acme.wait_for(1, timeout=5)
    wait_queue_empty(e.srv)
    assert home.snapshot() == []


def test_stale_idle_connection_does_not_defer_the_next_message(env):
    e = env(retry_first=30, retry_max=60)
    acme = e["acme"]
    submit(e.srv, SENDER, ["a@acme.example"])
    acme.wait_for(1, timeout=10)
    time.sleep(0.3)
    acme.stop()                               # the downstream restarts: idle connections die
    acme.start()
    time.sleep(0.3)
    qid = submit(e.srv, SENDER, ["b@acme.example"])
    acme.wait_for(2, timeout=3)
    assert "deferred" not in read_state(e.srv, qid)


# --------------------------------------------------------------------------------------------
# Spare files: a delivered message's file is reused (docs/queue-format.md)

SPARE_MESSAGES = 150
SPARE_SIZES = (9_000, 120, 3_000, 40)      # cycled: a reused file is often longer than its new message
QUEUE_STATS_RE = r"queue committed=(\d+) failed=(\d+) batches=\d+ spares_used=(\d+) spares_claimed=(\d+)"


def test_delivered_files_are_reused_and_none_is_lost(env):
    """A committed file keeps its name in the worker's queue/tmp/SLOT; once the queue manager
    has delivered the message and removed its incoming/ name, the worker writes a new message
    over it (the first messages find no spare and create files). Every message arrives exactly
    as sent, never with a tail of what its file held before; and every file ever created is
    accounted for at the end: a spare in queue/tmp/SLOT or in pool/, none left in incoming/."""
    e = env()
    acme = e["acme"]
    sent = {}
    for i in range(SPARE_MESSAGES):
        size = SPARE_SIZES[i % len(SPARE_SIZES)]
        body = make_body(to="bob@acme.example",
                         text=("y" * 78 + "\r\n") * (size // 80) + "z" * (size % 80) + "\r\n")
        sent[submit(e.srv, SENDER, ["bob@acme.example"], body)] = body
    acme.wait_for(SPARE_MESSAGES, timeout=30)
    wait_queue_empty(e.srv)
    for m in acme.snapshot():
        received, _, original = split_trace_headers(m.data)
        qid = re.search(rb"id ([0-9A-F]{20})", received).group(1).decode()
        assert original == sent.pop(qid), f"{qid} arrived with other bytes than were sent"
    assert sent == {}
    pool = sorted((e.srv.data_dir / "queue" / "pool").iterdir())
    spares = e.srv.spare_files()
    assert e.srv.stop() == []
    committed, failed, used, claimed = map(int, re.search(QUEUE_STATS_RE, e.srv.log_text()).groups())
    assert (committed, failed) == (SPARE_MESSAGES, 0)
    assert used > 0, (used, claimed)
    assert all(p.stat().st_nlink == 1 for p in spares), "a delivered file still has its incoming/ name"
    assert len(pool) + len(spares) == committed - used, \
        f"{len(pool)} in pool/ + {len(spares)} spares, {committed - used} files created"
    assert e.srv.queued() == [] and e.srv.tmp_files() == []


# --------------------------------------------------------------------------------------------
# MX: preference order and fallback, implicit MX, temporary DNS failure


def test_mx_fallback_to_the_next_preference(env, dns):  # noqa: F811
    e = env()
    home = e[SENDER_DOMAIN]
    dead = loopback_hosts(1)[0]                      # nothing listens there: refused
    with dns.batch():
        dns.set(SENDER_DOMAIN, "MX", [f"10 mx-dead.{SENDER_DOMAIN}.", f"20 mx.{SENDER_DOMAIN}."])
        dns.set(f"mx-dead.{SENDER_DOMAIN}", "A", [dead])
    e["acme"].reject(None, 550, REJECT_TEXT)
    qid = submit(e.srv, SENDER, ["bob@acme.example"])
    [ndr] = home.wait_for(1, timeout=10)
    assert ndr.rcpts == [SENDER]
    wait_queue_empty(e.srv)
    assert qid


def test_implicit_mx_uses_the_domain_address(env, dns):  # noqa: F811
    e = env(mx_domains=(SENDER_DOMAIN, "bare.test"))
    bare = e["bare.test"]
    with dns.batch():
        dns.remove("bare.test", "MX")
        dns.set("bare.test", "A", [bare.host])
    e["acme"].reject(None, 550, REJECT_TEXT)
    submit(e.srv, "someone@bare.test", ["bob@acme.example"],
           make_body(sender="someone@bare.test", to="bob@acme.example"))
    [ndr] = bare.wait_for(1, timeout=10)
    assert ndr.rcpts == ["someone@bare.test"] and ndr.mail_from == ""
    wait_queue_empty(e.srv)


def test_dns_failure_defers_the_report_then_delivers(env, dns):  # noqa: F811
    e = env(retry_first=1, retry_max=1)
    home = e[SENDER_DOMAIN]
    e["acme"].reject(None, 550, REJECT_TEXT)
    with dns.batch():                  # local data would still be answered: remove it
        dns.remove(SENDER_DOMAIN, "MX")
        dns.servfail(SENDER_DOMAIN)
    try:
        qid = submit(e.srv, SENDER, ["bob@acme.example"])
        m = e.srv.wait_for_log(rf"qid={qid} qmgr report failure queued as ([0-9A-F]{{20}})")
        ndr_qid = m.group(1)
        e.srv.wait_for_log(rf"qid={ndr_qid} qmgr deferred rcpt=<{SENDER}> dsn=4\.4\.3", 8)
        assert queue_entry(e.srv, ndr_qid)["recipients"][0]["status"] == "deferred"
    finally:
        with dns.batch():
            dns.clear_special(SENDER_DOMAIN)
            dns.set(SENDER_DOMAIN, "MX", [f"10 mx.{SENDER_DOMAIN}."])
    [ndr] = home.wait_for(1, timeout=8)
    assert parse_report(ndr.data).per_recipient[0]["Status"] == "5.1.1"
    wait_queue_empty(e.srv)
