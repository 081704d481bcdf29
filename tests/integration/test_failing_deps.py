"""Failing dependencies (docs/failure-modes.md): the resolver, the DNSBLs, the downstream
servers, the spool's disk and the policy store each fail in turn under a real `mxgate serve`.

For each failure the test shows the documented behaviour (codes, log lines, the verdict header,
the admin CLI's exit status) and keeps the books with a `Ledger`: every message that got a 250
is in the queue or arrived downstream byte for byte, nothing that was refused is stored, and
nothing half-written is left in queue/tmp.
"""
import os
import re
import subprocess
import threading
import time
from urllib.parse import unquote

import pytest

from conftest import (ROUTE, RawSMTP, free_port, run_mxgate, sanitizer_env, wait_until,
                      MXGATE_BIN)
from delivery_helpers import (Downstream, loopback_hosts, queue_entry, read_state,
                              state_records, wait_queue_empty)
from faults_helpers import (FaultProxy, GarbageDns, Ledger, bump_generation, checkpoint,
                            copy_store, corrupt_page, fill, generation, hold_write_lock,
                            restore_page, tmpfs)
from policy_helpers import (Client, admin_run, assert_accept, assert_reject,
                            dnsbl_section, policy_config, policy_server, rcpt_reply,
                            verdicts_by_tenant, wait_for_reply, zen_section)
from rbldnsd_helper import FakeDns, Rbldnsd, free_udp_port, query_name, rbldnsd_available
from unbound_helper import Unbound, unbound_available
from unbound_helper import free_port as free_udp_tcp_port

needs_rbldnsd = pytest.mark.skipif(not rbldnsd_available(), reason="rbldnsd is not installed")

BOB = "bob@acme.example"
TENANTS = {"acme": ("127.0.0.1:2601", ["acme.example"]), "default": (ROUTE, ["example.test"])}
SLACK = 1.0                 # seconds a reply may take beyond a deadline (ASan, a shared host)


def body(tag, size=0):
    """A message of about `size` bytes (long lines: cheap for the Python test servers), with a
    line that needs dot-stuffing."""
    text = f"Subject: {tag}\r\nMessage-ID: <{tag}.{time.time_ns()}@client.example>\r\n\r\n"
    line = (f"{tag} line of the message body " * 40)[:900] + "\r\n"
    return (text + line * (size // len(line) + 1)).encode() + b".dot at a line start\r\n"


def delivery_config(resolver="127.0.0.1:9", *, mx_port=25, smtp_timeout=3, data_timeout=2,
                    extra=""):
    """[delivery] with short timers (retries after 1 s, then every 2 s) and [policy]."""
    return (f"[delivery]\nretry_first = 1\nretry_max = 2\nmax_lifetime = 300\n"
            f"delay_warning = 0\nconnect_timeout = 2\nsmtp_timeout = {smtp_timeout}\n"
            f"data_timeout = {data_timeout}\nmx_port = {mx_port}\n"
            f"[policy]\nresolver = {resolver}\nreload_interval_ms = 200\n" + extra)


def last_rcpt_record(srv, qid, idx=0):
    """The last state-log record of recipient idx, fields unescaped (src/queue/qstate.h)."""
    recs = [r for r in state_records(srv, qid) if r[:2] == ["rcpt", str(idx)]]
    return [unquote(f) for f in recs[-1]] if recs else None


def wait_deferred(srv, qid, enh_prefix, timeout):
    """Waits until the state log of qid says recipient 0 is deferred with enh_prefix."""
    ok = wait_until(lambda: (r := last_rcpt_record(srv, qid)) and r[2] == "deferred"
                    and r[5].startswith(enh_prefix), timeout)
    assert ok, f"{qid}: no deferral {enh_prefix} within {timeout}s: {read_state(srv, qid)!r}"
    return last_rcpt_record(srv, qid)


def accepted_through(srv, ip, tag, ledger):
    """One message for BOB from client ip, which must be accepted (a failing list never
    rejects). Returns how long RCPT waited from the connection, and the acme tenant's verdict
    header of the queued message."""
    with Client(srv, ip) as c:
        c.mail()
        r = c.rcpt(BOB, timeout=5)
        waited = time.monotonic() - c.t_connect
        assert_accept(r)
        assert ledger.data(c, body(tag)).code == 250
        c.quit()
    (qid,) = ledger.acked
    return waited, verdicts_by_tenant(srv.queue_file(qid))["acme"]


# ============================================================================================
# 1. The resolver is unreachable


@needs_rbldnsd
@pytest.mark.parametrize("how", ["closed-port", "drops-everything"])
def test_resolver_unreachable_dnsbl_fails_open(mxgate_factory, how):
    """No resolver: RCPT is decided within dnsbl_timeout_ms without the lists, the mail is
    accepted, and the log and the verdict header say why."""
    fake = None
    if how == "closed-port":
        resolver = f"127.0.0.1:{free_udp_port()}"
    else:
        fake = FakeDns(mode="drop")
        fake.start()
        resolver = fake.resolver
    try:
        srv = mxgate_factory(tenants=TENANTS, proxy=True,
                             extra_sections=policy_config(resolver, timeout_ms=700)
                             + zen_section())
        ledger = Ledger()
        waited, v = accepted_through(srv, "192.0.2.11", "resolver-down", ledger)
        assert waited <= 0.7 + SLACK, f"RCPT answered after {waited:.2f} s"
        if how == "closed-port":
            # ICMP port unreachable: the resolver error comes at once, before the deadline
            assert (v["dnsbl"], v["reason"]) == ("error:zen", "dnsbl-clean"), v
            srv.wait_for_log(r'dnsbl answer list=zen zone="Test ZEN" ip=192\.0\.2\.11 '
                             r'state=resolver-error ms=\d+ detail="resolver error '
                             r'ARES_ECONNREFUSED: ')
        else:
            assert waited >= 0.7 * 0.9, f"RCPT answered before the deadline ({waited:.2f} s)"
            assert (v["dnsbl"], v["reason"]) == ("timeout:zen", "dnsbl-timeout"), v
            srv.wait_for_log(r"policy dnsbl-timeout ip=192\.0\.2\.11 dnsbl=timeout:zen "
                             r"\(deciding without the missing answers\)")
            srv.wait_for_log(r'dnsbl answer list=zen zone="Test ZEN" ip=192\.0\.2\.11 '
                             r'state=timeout ms=\d+ detail="no answer within 700 ms"')
        ledger.check(srv)
    finally:
        if fake:
            fake.stop()


def test_resolver_unreachable_mx_delivery_defers_then_delivers(mxgate_factory):
    """Relay by MX with the resolver down: 4.4.3, kept, retried; delivered once DNS answers."""
    if not unbound_available():                 # installs it where it can, as delivery tests do
        pytest.skip("unbound is not installed")
    port = free_udp_tcp_port()
    (host,) = loopback_hosts(1)
    remote = Downstream(host, name="remote")
    srv = mxgate_factory(tenants={"acme": ("127.0.0.1:2601", ["acme.example"])}, start=False,
                         extra_sections=delivery_config(f"127.0.0.1:{port}",
                                                        mx_port=remote.port))
    srv.provision()
    srv.admin("connector", "add", "acme", "hq", "--type", "onprem", "--ip", "127.0.0.1/32")
    srv.start()
    dns = Unbound()
    try:
        ledger = Ledger()
        msg = body("by-mx")
        r = ledger.submit(srv.port, msg, sender="alice@acme.example", rcpts=["u@remote.test"])
        assert r.code == 250, r
        (qid,) = ledger.acked
        rec = wait_deferred(srv, qid, "4.4.3", timeout=8)
        assert "ARES_ECONNREFUSED" in rec[7], rec
        srv.wait_for_log(rf"qid={qid} qmgr deferred rcpt=<u@remote\.test> dsn=4\.4\.3 ")
        assert (srv.queue_dir / qid).exists(), "a deferred message must stay queued"
        entry = queue_entry(srv, qid)
        assert entry["state"] == "deferred" and entry["recipients"][0]["dsn"] == "4.4.3", entry
        ledger.check(srv, [remote])
        # the resolver comes back on the same address
        dns.port = port
        dns.set("remote.test", "MX", ["10 mx.remote.test."])
        dns.set("mx.remote.test", "A", [host])
        dns.start()
        remote.wait_for(1, timeout=10)
        wait_queue_empty(srv)
        ledger.check(srv, [remote])
        assert len(remote.snapshot()) == 1
    finally:
        dns.stop()
        remote.close()


# ============================================================================================
# 2. A DNSBL times out


@pytest.fixture(scope="module")
def rbl():
    if not rbldnsd_available():
        pytest.skip("rbldnsd is not installed")
    with Rbldnsd(zones=["bad.test", "slow.test"], autoreload=False) as r:
        r.list("bad.test", "192.0.2.99", txt="Really listed $")
        r.reload()
        yield r


@needs_rbldnsd
@pytest.mark.parametrize("how", ["drop", "late"])
def test_dnsbl_timeout_rcpt_within_the_deadline(mxgate_factory, rbl, how):
    """A list that never answers, or answers too late: RCPT at the deadline (counted from the
    connect), later RCPTs at once, accepted, logged, not cached; a late answer is dropped."""
    ip = "192.0.2.21"
    with FakeDns(upstream=rbl.address) as fake:
        if how == "drop":
            fake.set_zone("slow.test", mode="drop")
        else:
            fake.set_zone("slow.test", mode="forward", delay=1.5)   # answers after the deadline
        srv = mxgate_factory(tenants=TENANTS, proxy=True,
                             extra_sections=policy_config(fake.resolver, timeout_ms=600)
                             + dnsbl_section("slow", "slow.test", display_name="Slow List"))
        ledger = Ledger()
        with Client(srv, ip) as c:
            c.mail()
            r = c.rcpt(BOB, timeout=5)
            waited = time.monotonic() - c.t_connect
            assert_accept(r)
            assert 0.6 * 0.9 <= waited <= 0.6 + SLACK, waited
            t = time.monotonic()
            assert_accept(c.rcpt("carol@acme.example"))       # past the deadline: at once
            assert time.monotonic() - t < 0.5
            assert ledger.data(c, body("slow-dnsbl")).code == 250
            if how == "late":
                time.sleep(1.2)                 # the answer arrives for a query long decided
            assert c.cmd("NOOP").code == 250
            c.quit()
        (qid,) = ledger.acked
        v = verdicts_by_tenant(srv.queue_file(qid))["acme"]
        assert (v["dnsbl"], v["reason"]) == ("timeout:slow", "dnsbl-timeout"), v
        srv.wait_for_log(rf"policy dnsbl-timeout ip={re.escape(ip)} dnsbl=timeout:slow ")
        srv.wait_for_log(rf'dnsbl answer list=slow zone="Slow List" ip={re.escape(ip)} '
                         r'state=timeout ms=\d+ detail="no answer within 600 ms"')
        # a timeout is not cached: the next session asks again
        before = sum(1 for q in fake.queries if q[0] == query_name(ip, "slow.test"))
        assert_accept(rcpt_reply(srv, ip, BOB))
        after = sum(1 for q in fake.queries if q[0] == query_name(ip, "slow.test"))
        assert after > before, fake.queries
        assert srv.proc.poll() is None
        ledger.check(srv)


# ============================================================================================
# 3. A DNSBL answers garbage or refuses


GARBAGE = {   # client -> (how the list answers for it, the state it must get, what the log says)
    "192.0.2.31": (dict(mode="answer", ip="10.1.2.3"), "list-error", "answer outside 127"),
    "192.0.2.32": (dict(mode="answer", ip="127.0.0.1"), "list-error", "127.0.0.1 is never"),
    "192.0.2.33": (dict(mode="answer", ip="127.255.255.254"), "list-error", "refused the query"),
    "192.0.2.34": (dict(mode="answer", ip="127.255.255.252"), "list-error", "typo in zone"),
    "192.0.2.35": (dict(mode="answer", ip="127.255.255.255"), "list-error", "over query quota"),
    "192.0.2.36": (dict(mode="answer", ip="127.0.0.255"), "list-error", "dnswl.org"),
    "192.0.2.37": (dict(mode="answer", ip="127.0.0.12"), "list-error", "code not configured"),
    "192.0.2.38": (dict(mode="refused"), "list-error", "REFUSED"),
    "192.0.2.39": (dict(mode="servfail"), "resolver-error", "ARES_ESERVFAIL"),
    "192.0.2.40": (dict(mode="malformed"), "timeout", "no answer within"),
    "192.0.2.41": (dict(raw="truncated-rr"), "resolver-error", "ARES_EBADRESP"),
    "192.0.2.42": (dict(raw="bad-rdlength"), "not-listed", None),
    "192.0.2.43": (dict(raw="other-name"), "not-listed", None),
    "192.0.2.44": (dict(raw="multi", ips=["127.0.0.2", "127.255.255.254"]), "list-error",
                   "refused the query"),
    "192.0.2.45": (dict(raw="multi", ips=["127.0.0.3", "10.0.0.1"]), "list-error",
                   "answer outside 127"),
    "192.0.2.46": (dict(raw="tc"), "resolver-error", "ARES_ECONNREFUSED"),
    "192.0.2.47": (dict(raw="junk-body"), "timeout", "no answer within"),
}
LISTED = "192.0.2.99"        # listed for real on bad.test: the list is live
GARBAGE_TIMEOUT_MS = 700


@pytest.fixture(scope="module")
def garbage_srv(rbl, tmp_path_factory, mxgate_bin):
    with GarbageDns(upstream=rbl.address) as fake:
        for ip, (rule, _, _) in GARBAGE.items():
            zone = query_name(ip, "bad.test")
            if "raw" in rule:
                fake.set_raw(zone, rule["raw"], **({"ips": rule["ips"]} if "ips" in rule else {}))
            else:
                fake.set_zone(zone, **rule)
        with policy_server(tmp_path_factory.mktemp("garbage"), tenants=TENANTS, proxy=True,
                           extra_sections=policy_config(fake.resolver, threshold=1,
                                                        timeout_ms=GARBAGE_TIMEOUT_MS)
                           + dnsbl_section("bad", "bad.test", display_name="Bad List",
                                           weight=1)) as s:
            s.fake = fake
            yield s


def test_garbage_list_is_live(garbage_srv):
    assert_reject(garbage_srv, rcpt_reply(garbage_srv, LISTED, BOB), LISTED, rule="dnsbl",
                  texts=["blocked using Bad List"])


@pytest.mark.parametrize("ip", sorted(GARBAGE))
def test_garbage_or_refusal_is_never_a_listing(garbage_srv, ip):
    """Each broken answer of GARBAGE: accepted (a listing would reject: threshold 1), the
    state and detail in the log, an error never cached."""
    srv = garbage_srv
    _, state, detail = GARBAGE[ip]
    ledger = Ledger()
    waited, v = accepted_through(srv, ip, "garbage", ledger)
    assert waited <= GARBAGE_TIMEOUT_MS / 1000 + SLACK, waited
    tag = {"list-error": "error:bad", "resolver-error": "error:bad", "timeout": "timeout:bad",
           "not-listed": "clean"}[state]
    assert v["dnsbl"] == tag and v["reason"] in ("dnsbl-clean", "dnsbl-timeout"), v
    if detail:
        line = srv.wait_for_log(rf'dnsbl answer list=bad zone="Bad List" ip={re.escape(ip)} '
                                rf'state={state} ms=\d+ detail="[^"\n]*').group(0)
        assert detail in line, line
        # an error is never cached: the next session asks the list again
        name = query_name(ip, "bad.test")
        before = sum(1 for q in srv.fake.queries if q[0] == name)
        assert_accept(rcpt_reply(srv, ip, BOB))
        assert sum(1 for q in srv.fake.queries if q[0] == name) > before
    ledger.check(srv, shared=True)


# ============================================================================================
# 4. The downstream server fails


@pytest.fixture
def relay(mxgate_factory):
    """mxgate delivering acme.example to a FaultProxy in front of a Downstream."""
    made = []

    def make(small_buffers=False, data_dir=None, **timers):
        proxy_host, ds_host = loopback_hosts(2)
        ds = Downstream(ds_host, name="acme")
        proxy = FaultProxy(proxy_host, free_port(proxy_host), ds.host, ds.port,
                           small_buffers=small_buffers)
        made.extend([ds, proxy])
        srv = mxgate_factory(tenants={"acme": (proxy.address, ["acme.example"])},
                             extra_sections=delivery_config(**timers), data_dir=data_dir,
                             settings={"max_message_size": "30M"})
        return srv, proxy, ds

    yield make
    for x in made:
        x.close()


def test_downstream_down_deferred_then_delivered(relay):
    """Connection refused: 4.4.1, kept, delivered once the server listens again."""
    srv, proxy, ds = relay()
    proxy.down()
    ledger = Ledger()
    msg = body("down")
    assert ledger.submit(srv.port, msg, rcpts=[BOB]).code == 250
    (qid,) = ledger.acked
    rec = wait_deferred(srv, qid, "4.4.1", timeout=6)
    assert rec[7] == f"connect to {proxy.host}[{proxy.host}]:{proxy.port}: Connection refused", rec
    ledger.check(srv, [ds])
    proxy.up()
    ds.wait_for(1, timeout=10)
    wait_queue_empty(srv)
    ledger.check(srv, [ds])


@pytest.mark.parametrize("size, timeout_key", [(3_000, "data_timeout"),
                                               (6_000_000, "smtp_timeout")])
def test_downstream_stalls_mid_data_deferred_then_delivered(relay, size, timeout_key):
    """The next hop reads part of the body and goes silent. A small body is all sent, so
    mxgate waits for the reply to the final dot ([delivery] data_timeout = 2 s); a large one
    cannot be sent, so mxgate waits for its writes to progress (smtp_timeout = 3 s; then
    data_timeout is long enough for the retry to hand the slow test server 6 MB)."""
    small = timeout_key == "data_timeout"
    srv, proxy, ds = relay(small_buffers=True, smtp_timeout=3, data_timeout=2 if small else 10)
    proxy.set_mode("stall", after=1_000)
    ledger = Ledger()
    msg = body("stall", size)
    assert ledger.submit(srv.port, msg, rcpts=[BOB]).code == 250
    (qid,) = ledger.acked
    ok = wait_until(lambda: proxy.faults, 8)
    assert ok, "the proxy never saw the body"
    t_stall = proxy.faults[0][1]
    rec = wait_deferred(srv, qid, "4.4.2", timeout=10)
    took = time.monotonic() - t_stall
    limit = 2 if small else 3
    assert limit - 0.5 <= took <= limit + 2.5, \
        f"deferred {took:.1f} s after the stall ({timeout_key} = {limit} s)"
    assert rec[7] == f"timeout with {proxy.host}[{proxy.host}] while sending the message body", rec
    srv.wait_for_log(rf"qid={qid} qmgr deferred rcpt=<{BOB}> dsn=4\.4\.2 ")
    ledger.check(srv, [ds])
    assert ds.snapshot() == []
    proxy.set_mode("pass")
    ds.wait_for(1, timeout=15)
    wait_queue_empty(srv, timeout=15)
    ledger.check(srv, [ds])
    assert len(ds.snapshot()) == 1


@pytest.mark.parametrize("how", ["close", "reset"])
def test_downstream_closes_mid_data_deferred_then_delivered(relay, how):
    """The connection closed (FIN) or reset (RST) after part of the body: 4.4.2 at once, named
    "lost connection" either way, delivered on the retry (the partial transaction never counts
    as delivered)."""
    srv, proxy, ds = relay()
    proxy.set_mode(how, after=2_000)
    ledger = Ledger()
    msg = body(how, 50_000)
    assert ledger.submit(srv.port, msg, rcpts=[BOB]).code == 250
    (qid,) = ledger.acked
    rec = wait_deferred(srv, qid, "4.4.2", timeout=6)
    assert rec[7].startswith(f"lost connection with {proxy.host}[{proxy.host}] while sending the "
                             "message body"), rec
    ledger.check(srv, [ds])
    proxy.set_mode("pass")
    ds.wait_for(1, timeout=10)
    wait_queue_empty(srv)
    ledger.check(srv, [ds])
    assert len(ds.snapshot()) == 1


# ============================================================================================
# 5. The spool's disk is full


def test_disk_full_452_session_usable_then_accepted(tmp_path, mxgate_factory):
    """452 4.3.1 after the dot while the spool is full, the session goes on, nothing partial
    stays; the same session's next message is accepted once there is room."""
    with tmpfs(tmp_path / "spool", "400k") as mnt:
        srv = mxgate_factory(data_dir=mnt / "data")
        ledger = Ledger()
        filler = fill(mnt)
        try:
            with RawSMTP(srv.port) as c:
                c.greeting()
                c.ehlo()
                for i in range(2):
                    r = ledger.send(c, body(f"full{i}", 20_000))
                    assert (r.code, r.enhanced) == (452, "4.3.1"), r
                    assert c.cmd("NOOP").code == 250, "the session goes on"
                    assert srv.tmp_files() == [] and srv.queued() == []
                srv.wait_for_log(r"queue commit failed: No space left on device|"
                                 r"smtp queue-error error=No space left on device")
                filler.unlink()                      # room again, same session
                r = ledger.send(c, body("fits", 20_000))
                assert r.code == 250, r
                assert c.cmd("QUIT").code == 221
        finally:
            if filler.exists():
                filler.unlink()
        assert len(ledger.acked) == 1 and len(ledger.refused) == 2
        ledger.check(srv)
        srv.stop()


def test_disk_full_queue_manager_keeps_the_message(tmp_path, relay):
    """The queue manager cannot write a state log: it says so, keeps the message and tries
    again; delivered once the next hop answers, whatever the disk."""
    with tmpfs(tmp_path / "spool", "400k") as mnt:
        srv, proxy, ds = relay(data_dir=mnt / "data", smtp_timeout=3)
        proxy.set_mode("stall")               # holds the first attempt for smtp_timeout
        ledger = Ledger()
        assert ledger.submit(srv.port, body("qmgr-full"), rcpts=[BOB]).code == 250
        (qid,) = ledger.acked
        assert wait_until(lambda: proxy.faults, 6), "no delivery attempt"
        filler = fill(mnt)                    # the attempt ends on a full disk
        try:
            srv.wait_for_log(rf"qid={qid} qmgr cannot record delivery state: "
                             r"No space left on device", timeout=8)
            assert (srv.queue_dir / qid).exists(), "the message must stay queued"
            ledger.check(srv, [ds])
        finally:
            filler.unlink()
        proxy.set_mode("pass")
        ds.wait_for(1, timeout=10)
        wait_queue_empty(srv)
        ledger.check(srv, [ds])
        srv.stop()                            # before the tmpfs goes


def test_disk_full_state_log_keeps_whole_records(tmp_path, mxgate_factory):
    """A request appended to a message's state log on a full disk fails whole: no torn record
    is left for the next record to run into (here: a failed `hold` that a later `retry` would
    have turned into a hold)."""
    with tmpfs(tmp_path / "spool", "400k") as mnt:
        srv = mxgate_factory(data_dir=mnt / "data")      # [delivery] hold = yes: nothing moves
        ledger = Ledger()
        assert ledger.submit(srv.port, body("state-log")).code == 250
        (qid,) = ledger.acked
        state = srv.data_dir / "queue" / "state" / qid
        page = os.statvfs(mnt).f_bsize
        log = b"MXGS 1\n"
        while len(log) < page - 5:                       # unknown records: skipped by readers
            log += b"pad " + b"x" * min(60, page - 5 - len(log) - 5) + b"\n"
        state.write_bytes(log)
        owner = state.parent.stat()                      # whoever mxgate runs as
        os.chown(state, owner.st_uid, owner.st_gid)
        assert len(log) == page - 5                      # "hold " fits, the rest does not
        filler = fill(mnt)
        try:
            res = run_mxgate("-c", str(srv.conf_path), "queue", "hold", qid)
            assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
            assert res.stderr == (f"mxgate: queue: cannot record hold for {qid}: "
                                  "No space left on device\n"), res.stderr
            assert state.read_bytes() == log, "a failed append left part of its record"
        finally:
            filler.unlink()
        res = run_mxgate("-c", str(srv.conf_path), "queue", "retry", qid)
        assert res.returncode == 0, res.stderr
        assert queue_entry(srv, qid)["state"] == "active", queue_entry(srv, qid)
        ledger.check(srv)
        srv.stop()


# ============================================================================================
# 6. The policy store is locked or damaged


def store_of(srv):
    return srv.data_dir / "policy.db"


def test_store_locked_server_serves_admin_waits_then_fails(mxgate_factory):
    """Another process holds the store's write lock: serve starts and serves, reading
    commands work, a change waits for the busy timeout and fails clearly, changing nothing;
    after the lock, changes go through and reach new sessions."""
    ip = "192.0.2.60"
    srv = mxgate_factory(tenants=TENANTS, proxy=True, start=False,
                         extra_sections="[policy]\nreload_interval_ms = 200\n")
    srv.provision()
    db = store_of(srv)
    gen0 = generation(db)
    with hold_write_lock(db):
        srv.start()                    # serve starts while another process holds the lock
        assert_accept(rcpt_reply(srv, ip, BOB))
        res = admin_run(srv, "tenant", "list")       # reading needs no lock
        assert res.returncode == 0 and "acme" in res.stdout, res.stderr
        t = time.monotonic()
        res = admin_run(srv, "block", "add", "acme", ip, "--comment", "while locked")
        took = time.monotonic() - t
        assert res.returncode == 1, (res.returncode, res.stdout, res.stderr)
        assert res.stdout == ""
        assert res.stderr == ("mxgate: the policy store is locked by another process "
                              "(starting a change); try again\n"), res.stderr
        assert 1.8 <= took <= 6, f"gave up after {took:.1f} s (busy timeout 2 s)"
        assert_accept(rcpt_reply(srv, ip, BOB))
    assert generation(db) == gen0, "the refused change changed the store"
    # a command that starts while the lock is held waits for it (up to 2 s) and succeeds
    lock_held = threading.Event()

    def hold_briefly():
        with hold_write_lock(db):
            lock_held.set()
            time.sleep(0.8)

    th = threading.Thread(target=hold_briefly)
    th.start()
    assert lock_held.wait(5)
    srv.admin("block", "add", "acme", ip, "--comment", "after the lock")
    th.join(5)
    r, _ = wait_for_reply(srv, ip, BOB, lambda r: r.code != 250)
    assert_reject(srv, r, ip, rule="ip-block", texts=[f"entry {ip}/32 (after the lock)"])


def decisions(srv):
    """The replies that show which policy a server uses: acme's block entry, its domain, and
    relay refused."""
    return {
        "blocked": rcpt_reply(srv, "192.0.2.70", BOB).code,
        "acme": rcpt_reply(srv, "192.0.2.71", BOB).code,
        "relay": rcpt_reply(srv, "192.0.2.71", "u@victim.example").code,
        "default": rcpt_reply(srv, "192.0.2.71", "x@example.test").code,
    }


def test_store_damaged_while_serving_keeps_the_last_snapshot(mxgate_factory, tmp_path):
    """Pages of policy.db overwritten under a running server: it keeps deciding with the
    snapshot it has, logs the damage once, and picks the store up again once repaired."""
    srv = mxgate_factory(tenants=TENANTS, proxy=True, start=False,
                         extra_sections="[policy]\nreload_interval_ms = 200\n")
    srv.provision()
    srv.admin("block", "add", "acme", "192.0.2.70", "--comment", "known bad")
    srv.start()
    db = store_of(srv)
    good = decisions(srv)
    assert good == {"blocked": 550, "acme": 250, "relay": 550, "default": 250}, good
    backup = tmp_path / "backup.db"
    copy_store(db, backup)
    gen_before = generation(db)
    # the page with the generation counter: the server cannot even tell whether to reload
    checkpoint(db)
    saved = corrupt_page(db, "meta")
    srv.wait_for_log(r'policy reload-failed generation=0 error="policy store error while '
                     r'reading the generation: database disk image is malformed" '
                     rf"\(keeping generation {gen_before}\)")
    assert decisions(srv) == good
    restore_page(db, saved)
    srv.wait_for_log(rf"policy store readable again generation={gen_before}")
    # a table's page, found by the reload that a change triggers
    checkpoint(db)
    corrupt_page(db, "domains")
    gen = bump_generation(db)           # a change: the server reloads and finds the damage
    line = srv.wait_for_log(rf"policy reload-failed generation={gen} error=\"[^\"]*\" "
                            rf"\(keeping generation {gen_before}\)").group(0)
    assert "database disk image is malformed" in line, line
    assert decisions(srv) == good
    time.sleep(1.0)                     # several polls: one line, not one per poll
    assert srv.log_text().count("policy reload-failed") == 2, srv.log_text()[-2000:]
    assert srv.proc.poll() is None
    # the admin CLI says what is wrong
    res = admin_run(srv, "domain", "list")
    assert res.returncode == 1 and "database disk image is malformed" in res.stderr, res.stderr
    # repaired from the backup, through SQLite (the running server keeps its file open)
    copy_store(backup, db)              # the backup's generation is the one being served
    again = f"policy store readable again generation={gen_before}"
    assert wait_until(lambda: srv.log_text().count(again) == 2, 5), srv.log_text()[-2000:]
    srv.admin("block", "remove", "acme", "192.0.2.70")
    r, _ = wait_for_reply(srv, "192.0.2.70", BOB, lambda r: r.code == 250)
    assert_accept(r)
    assert decisions(srv)["acme"] == 250


@pytest.mark.parametrize("damage", ["header", "tenants-page"])
def test_store_damaged_at_start_serve_refuses(mxgate_factory, damage):
    """A damaged store at start: serve exits non-zero naming the problem, accepts nothing."""
    srv = mxgate_factory(tenants=TENANTS, start=False)
    srv.provision()
    db = store_of(srv)
    checkpoint(db)
    if damage == "header":
        with open(db, "r+b") as f:
            f.write(os.urandom(100))
    else:
        corrupt_page(db, "tenants")
    res = subprocess.run([MXGATE_BIN, "-c", str(srv.conf_path), "serve"], cwd=srv.workdir,
                         env=sanitizer_env(), stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=30)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    if damage == "header":
        assert f"policy store: {db}: " in out and "file is not a database" in out, out
    else:
        assert "policy store error while reading tenants: database disk image is malformed" \
            in out, out
    for m in ("ERROR: AddressSanitizer", "runtime error:"):
        assert m not in out, out
    res = admin_run(srv, "tenant", "list")
    assert res.returncode == 1 and res.stderr.startswith("mxgate: "), res.stderr
