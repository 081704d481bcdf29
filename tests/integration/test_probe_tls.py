"""Recipient probes (`--recipient-check probe`) and route TLS (`--route-tls`) through the real
binary, against a downstream SMTP server the test runs (aiosmtpd) on its own loopback address.

Probe (docs/policy-precedence.md rule 3a): at RCPT mxgate asks the tenant's server with
MAIL FROM:<> and RCPT TO (then QUIT, never DATA). Known there: 250. Refused there: 550 5.1.1
saying the address does not exist at its domain. Backend down, stalled past probe_timeout_ms,
4xx, or refusing the null sender: 451 4.4.3, never a 550, within the timeout plus slack. No
reply text ever names the backend's address or port. Definite answers are cached per worker:
a second RCPT for the same address (in any ASCII case) does not reach the backend again;
failed ones are not cached. Pipelined RCPTs get their replies in order.

Route TLS (docs/delivery.md): with `--route-tls required` and a downstream without STARTTLS the
message stays deferred (4.7.4 in `mxgate queue list`), and is delivered over TLS once the
downstream offers STARTTLS; `verify` refuses a self-signed certificate (4.7.5); opportunistic
(the default) delivers in plain text to a server without STARTTLS. The mode travels in the
queue file's rcpt-route ("HOST:PORT tls=required").
"""
import asyncio
import json
import random
import socket
import ssl
import subprocess
import time

import pytest
from aiosmtpd.controller import Controller

from admin_helpers import EXIT_USAGE, Admin
from conftest import IO_TIMEOUT, run_mxgate, wait_until
from policy_helpers import Client, assert_accept, assert_reject, rcpt_reply

DOMAIN = "acme.example"
KNOWN = ("bob@acme.example", "carol@acme.example")
PROBE_TIMEOUT_MS = 1000
SLACK = 1.5                  # seconds beyond probe_timeout_ms (ASan, a loaded machine)
DELIVERY = ("[delivery]\nretry_first = 1\nretry_max = 1\nconnect_timeout = 2\n"
            "smtp_timeout = 5\ndata_timeout = 10\ndelay_warning = 0\n")


def backend_address():
    """A loopback address other than 127.0.0.1 (the client's), and a port free on it."""
    for _ in range(50):
        host = "127.%d.%d.%d" % (random.randint(1, 250), random.randint(0, 255),
                                 random.randint(2, 250))
        with socket.socket() as s:
            try:
                s.bind((host, 0))
            except OSError:
                continue
            return host, s.getsockname()[1]
    raise RuntimeError("no free loopback address")


# ---- the downstream server -------------------------------------------------------------------

class Handler:
    def __init__(self, backend):
        self.backend = backend

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.backend.log.append(("MAIL", address))
        if address == "<>" and not self.backend.accept_null_sender:
            return "550 5.7.1 <>: null sender not accepted here"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        b = self.backend
        b.log.append(("RCPT", address))
        if b.stall:
            await asyncio.sleep(b.stall)
        if address.lower() in b.deferred:
            return "450 4.2.0 mailbox busy, try later"
        if b.accept_all or address.lower() in b.known:
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 Ok"
        return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address

    async def handle_QUIT(self, server, session, envelope):
        self.backend.log.append(("QUIT", None))
        return "221 2.0.0 Bye"

    async def handle_DATA(self, server, session, envelope):
        self.backend.log.append(("DATA", envelope.mail_from))
        self.backend.messages.append({
            "from": envelope.mail_from, "rcpts": list(envelope.rcpt_tos),
            "data": envelope.content, "tls": session.ssl is not None,
        })
        return "250 2.0.0 Ok: delivered"


class Backend:
    """The tenant's server (aiosmtpd, which takes MAIL FROM:<> as "<>"): knows `known`, refuses
    others with 550 5.1.1, answers 450 for `deferred`, stalls every RCPT `stall` seconds,
    offers STARTTLS with `tls_context`, refuses the null sender unless accept_null_sender."""

    def __init__(self, host, port, *, known=KNOWN, deferred=(), stall=0, tls_context=None,
                 accept_null_sender=True, accept_all=False):
        self.host, self.port = host, port
        self.known = {a.lower() for a in known}
        self.deferred = {a.lower() for a in deferred}
        self.stall = stall
        self.accept_null_sender = accept_null_sender
        self.accept_all = accept_all
        self.log = []          # ("MAIL"|"RCPT"|"DATA"|"QUIT", address) in arrival order
        self.messages = []
        kw = {}
        if tls_context is not None:
            kw["tls_context"] = tls_context
        self.controller = Controller(Handler(self), hostname=host, port=port,
                                     server_hostname="backend.test", ready_timeout=10, **kw)
        self.controller.start()

    def stop(self):
        self.controller.stop()

    def rcpts(self, address=None):
        return [a for k, a in self.log if k == "RCPT" and (address is None or a == address)]


def server_tls_context(tls_files):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(tls_files[0]), str(tls_files[1]))
    return ctx


@pytest.fixture
def backends():
    started = []

    def start(*args, **kw):
        b = Backend(*args, **kw)
        started.append(b)
        return b

    yield start
    for b in started:
        try:
            b.stop()
        except Exception:   # already stopped by the test
            pass


def start_gateway(mxgate_factory, route, *, check=None, route_tls=None, extra=""):
    """A server with tenant acme (acme.example) routed to `route`."""
    srv = mxgate_factory(tenants={"acme": (route, [DOMAIN])}, start=False,
                         extra_sections=f"[policy]\nprobe_timeout_ms = {PROBE_TIMEOUT_MS}\n"
                                        + DELIVERY + extra)
    srv.provision()
    args = []
    if check:
        args += ["--recipient-check", check]
    if route_tls:
        args += ["--route-tls", route_tls]
    if args:
        srv.admin("tenant", "set", "acme", *args)
    return srv.start()


@pytest.fixture
def probe_setup(mxgate_factory, backends):
    """(server, backend): acme checks recipients by probe; the backend knows KNOWN."""
    host, port = backend_address()
    backend = backends(host, port)
    srv = start_gateway(mxgate_factory, f"{host}:{port}", check="probe")
    return srv, backend


def backend_absent(backend):
    """What no reply to the client may contain."""
    return [backend.host, f":{backend.port}", str(backend.port), "backend.test"]


def probe_log_lines(srv, rcpt=None):
    return [ln for ln in srv.log_text().splitlines()
            if " policy probe " in ln and (rcpt is None or f"rcpt=<{rcpt}>" in ln)]


# ---- the CLI ------------------------------------------------------------------------------------

def test_cli_settings(tmp_path):
    adm = Admin(tmp_path)
    adm.ok("tenant", "add", "acme", "--route", "mx.acme.example:25")
    adm.ok("tenant", "add", "beta", "--route", "10.0.0.6:25")
    g = adm.generation()
    assert adm.ok("tenant", "set", "acme", "--route-tls", "required") == \
        "tenant acme: route TLS required\n"
    assert adm.generation() == g + 1
    # both at once: one change, one line each (and a warning: beta's route is an IP address,
    # which a certificate rarely names)
    res = adm.run("tenant", "set", "beta", "--recipient-check=probe", "--route-tls=verify")
    assert res.returncode == 0, res.stderr
    assert res.stdout == "tenant beta: recipient check probe\ntenant beta: route TLS verify\n"
    assert "warning: the route of tenant beta is an IP address (10.0.0.6:25)" in res.stderr
    assert adm.generation() == g + 2
    tenants = {t["name"]: t for t in adm.json("tenant", "list")}
    assert tenants["acme"]["route_tls"] == "required"
    assert tenants["beta"]["route_tls"] == "verify"
    assert tenants["acme"]["route"] == "mx.acme.example:25"   # the route itself unchanged
    text = adm.ok("tenant", "list").splitlines()
    assert text[0].split()[:3] == ["TENANT", "ROUTE", "ROUTE-TLS"]
    assert text[1].split()[:3] == ["acme", "mx.acme.example:25", "required"]
    assert text[2].split()[:3] == ["beta", "10.0.0.6:25", "verify"]
    # a route with a host name gets no warning
    assert adm.ok("tenant", "set", "acme", "--route-tls", "verify") == \
        "tenant acme: route TLS verify\n"
    assert adm.ok("tenant", "set", "acme", "--route-tls", "opportunistic") == \
        "tenant acme: route TLS opportunistic\n"
    assert {t["name"]: t["route_tls"] for t in adm.json("tenant", "list")}["acme"] == \
        "opportunistic"


@pytest.mark.parametrize("args, message", [
    (["tenant", "set", "acme"], "missing --recipient-check MODE or --route-tls MODE"),
    (["tenant", "set", "acme", "--route-tls"], "--route-tls needs a value"),
    (["tenant", "set", "acme", "--route-tls", "required", "--route-tls", "verify"],
     "given twice"),
])
def test_cli_usage_errors(tmp_path, args, message):
    adm = Admin(tmp_path)
    adm.ok("tenant", "add", "acme", "--route", "10.0.0.5:25")
    adm.usage_error(*args, message=message)


@pytest.mark.parametrize("args, message", [
    (["--route-tls", "Required"], "route TLS 'Required' is not one of opportunistic, required, "
                                  "verify"),
    (["--route-tls", "on"], "'on' is not one of"),
    (["--recipient-check", "probe", "--route-tls", "yes"], "'yes' is not one of"),
])
def test_cli_refused(tmp_path, args, message):
    adm = Admin(tmp_path)
    adm.ok("tenant", "add", "acme", "--route", "10.0.0.5:25")
    g = adm.generation()
    res = adm.run("tenant", "set", "acme", *args)
    assert res.returncode == EXIT_USAGE, res.stderr
    assert message in res.stderr, res.stderr
    assert adm.generation() == g
    t = adm.json("tenant", "list")[0]
    assert t["route_tls"] == "opportunistic"


def test_cli_help(tmp_path):
    adm = Admin(tmp_path)
    out = adm.ok("tenant", "set", "--help")
    assert "--route-tls MODE" in out and "verify" in out and "system trust store" in out
    assert "probe: ask the tenant's server" in out and "451 4.4.3" in out


# ---- probes -----------------------------------------------------------------------------------

def test_probe_known_recipient_accepted(probe_setup):
    srv, backend = probe_setup
    assert_accept(rcpt_reply(srv, None, "bob@acme.example"))
    # the backend saw a probe: null sender, the address, QUIT, and no DATA
    assert wait_until(lambda: ("QUIT", None) in backend.log, IO_TIMEOUT)
    assert backend.log == [("MAIL", "<>"), ("RCPT", "bob@acme.example"), ("QUIT", None)]
    line = srv.wait_for_log(r"[^\n]* policy probe [^\n]*rcpt=<bob@acme.example>[^\n]*").group(0)
    assert " result=accepted code=250 " in line, line
    assert " tenant=acme " in line, line


def test_probe_unknown_recipient_refused(probe_setup):
    srv, backend = probe_setup
    r = rcpt_reply(srv, None, "nobody@acme.example")
    _, line = assert_reject(
        srv, r, "127.0.0.1", enh="5.1.1", rule="recipient-unknown",
        texts=["Recipient address rejected: nobody@acme.example does not exist at acme.example"],
        absent=backend_absent(backend) + ["User unknown"])
    assert 'list="recipient probe of tenant acme"' in line, line
    assert "550 5.1.1" in line, line            # the backend's reply, in the log only
    probe = probe_log_lines(srv, "nobody@acme.example")
    assert len(probe) == 1 and " result=refused code=550 " in probe[0], probe


def test_probe_backend_down(mxgate_factory):
    host, port = backend_address()                 # nobody listens there
    srv = start_gateway(mxgate_factory, f"{host}:{port}", check="probe")
    absent = [host, str(port)]
    for _ in range(2):
        t0 = time.monotonic()
        r = rcpt_reply(srv, None, "bob@acme.example")
        assert time.monotonic() - t0 < PROBE_TIMEOUT_MS / 1000 + SLACK
        assert_reject(srv, r, "127.0.0.1", code=451, enh="4.4.3", rule="recipient-probe",
                      texts=["Recipient address bob@acme.example cannot be verified at "
                             "acme.example right now; try again later"], absent=absent)
    # a failed probe is not cached: both RCPTs asked
    wait_until(lambda: len(probe_log_lines(srv, "bob@acme.example")) == 2, IO_TIMEOUT)
    lines = probe_log_lines(srv, "bob@acme.example")
    assert len(lines) == 2 and all(" result=failed code=0 " in ln for ln in lines), lines


def test_probe_stall_times_out(mxgate_factory, backends):
    host, port = backend_address()
    backend = backends(host, port, stall=PROBE_TIMEOUT_MS / 1000 + 3)
    srv = start_gateway(mxgate_factory, f"{host}:{port}", check="probe")
    with Client(srv) as c:
        c.mail()
        t0 = time.monotonic()
        r = c.rcpt("bob@acme.example", timeout=PROBE_TIMEOUT_MS / 1000 + SLACK + 2)
        elapsed = time.monotonic() - t0
        c.quit()
    assert_reject(srv, r, "127.0.0.1", code=451, enh="4.4.3", rule="recipient-probe",
                  absent=backend_absent(backend))
    assert PROBE_TIMEOUT_MS / 1000 * 0.9 <= elapsed <= PROBE_TIMEOUT_MS / 1000 + SLACK, elapsed
    assert backend.rcpts() == ["bob@acme.example"]   # it was asked, it did not answer in time
    line = srv.wait_for_log(r"[^\n]* policy probe [^\n]*result=failed[^\n]*").group(0)
    assert "no answer within" in line, line


def test_probe_answers_cached(probe_setup):
    srv, backend = probe_setup
    assert_accept(rcpt_reply(srv, None, "bob@acme.example"))
    assert rcpt_reply(srv, None, "nobody@acme.example").code == 550
    assert len(backend.rcpts()) == 2
    # again, in new sessions and in another case: answered from the cache
    assert_accept(rcpt_reply(srv, None, "bob@acme.example"))
    assert_accept(rcpt_reply(srv, None, "BOB@Acme.Example"))
    r = rcpt_reply(srv, None, "nobody@acme.example")
    assert r.code == 550 and r.enhanced == "5.1.1", r
    assert len(backend.rcpts()) == 2, backend.log
    assert len(probe_log_lines(srv)) == 2
    # another address is asked
    assert_accept(rcpt_reply(srv, None, "carol@acme.example"))
    assert backend.rcpts()[-1] == "carol@acme.example"


def test_probe_4xx_is_not_a_refusal(mxgate_factory, backends):
    host, port = backend_address()
    backend = backends(host, port, deferred=["busy@acme.example"])
    srv = start_gateway(mxgate_factory, f"{host}:{port}", check="probe")
    for n in (1, 2):
        r = rcpt_reply(srv, None, "busy@acme.example")
        assert_reject(srv, r, "127.0.0.1", code=451, enh="4.4.3", rule="recipient-probe",
                      absent=backend_absent(backend) + ["mailbox busy"])
        assert len(backend.rcpts("busy@acme.example")) == n   # not cached
    line = probe_log_lines(srv, "busy@acme.example")[0]
    assert " result=failed code=450 " in line, line


def test_probe_null_sender_refused_is_not_a_refusal(mxgate_factory, backends):
    """A backend that refuses MAIL FROM:<> says nothing about the address: 451, not 550."""
    host, port = backend_address()
    backend = backends(host, port, accept_null_sender=False)
    srv = start_gateway(mxgate_factory, f"{host}:{port}", check="probe")
    r = rcpt_reply(srv, None, "nobody@acme.example")
    assert_reject(srv, r, "127.0.0.1", code=451, enh="4.4.3", rule="recipient-probe",
                  absent=backend_absent(backend))
    assert backend.rcpts() == []
    line = probe_log_lines(srv, "nobody@acme.example")[0]
    assert " result=failed " in line and "MAIL refused" in line, line


def test_probe_pipelined_replies_in_order(probe_setup):
    srv, backend = probe_setup
    with Client(srv) as c:
        c.mail()
        c.send(b"RCPT TO:<bob@acme.example>\r\nRCPT TO:<nobody@acme.example>\r\n"
               b"RCPT TO:<carol@acme.example>\r\nRCPT TO:<postmaster@acme.example>\r\n"
               b"RCPT TO:<bob@acme.example>\r\nNOOP\r\n")
        replies = c.replies(6)
        c.quit()
    assert [r.code for r in replies] == [250, 550, 250, 250, 250, 250], replies
    assert replies[4].message == "Ok (duplicate recipient)"
    # postmaster is never probed (always accepted), nor is a duplicate
    assert backend.rcpts() == ["bob@acme.example", "nobody@acme.example",
                               "carol@acme.example"]


def test_probe_client_gone_while_waiting(mxgate_factory, backends):
    """The session closes while its probe is out: no reply, no crash, no callback into a freed
    session (ASan watches); the probe still ends, and the server goes on working."""
    host, port = backend_address()
    backend = backends(host, port, stall=0.7)
    srv = start_gateway(mxgate_factory, f"{host}:{port}", check="probe")
    c = Client(srv)
    c.mail()
    c.send(b"RCPT TO:<bob@acme.example>\r\n")
    assert wait_until(lambda: backend.rcpts(), IO_TIMEOUT)
    c.close()
    srv.wait_for_log(r"policy probe [^\n]*rcpt=<bob@acme.example>[^\n]*result=accepted",
                     timeout=IO_TIMEOUT)
    # the answer of the abandoned probe is cached all the same: the backend is not asked again
    assert_accept(rcpt_reply(srv, None, "bob@acme.example"))
    assert backend.rcpts() == ["bob@acme.example"]


def test_probe_shared_between_sessions(mxgate_factory, backends):
    """Two sessions asking for the same address at once share one probe."""
    host, port = backend_address()
    backend = backends(host, port, stall=0.5)
    srv = start_gateway(mxgate_factory, f"{host}:{port}", check="probe")
    with Client(srv) as a, Client(srv) as b:
        a.mail()
        b.mail()
        a.send(b"RCPT TO:<bob@acme.example>\r\n")
        assert wait_until(lambda: backend.rcpts(), IO_TIMEOUT)
        b.send(b"RCPT TO:<bob@acme.example>\r\n")
        assert_accept(a.reply())
        assert_accept(b.reply())
        a.quit()
        b.quit()
    assert backend.rcpts() == ["bob@acme.example"]
    lines = probe_log_lines(srv, "bob@acme.example")
    assert len(lines) == 1 and " waiters=2" in lines[0], lines


def test_probe_queues_the_accepted_recipient(probe_setup):
    """A probed and accepted recipient is queued like any other, and only it."""
    srv, backend = probe_setup
    with Client(srv) as c:
        c.mail()
        assert c.rcpt("bob@acme.example").code == 250
        assert c.rcpt("nobody@acme.example").code == 550
        q = srv.queue_file(c.data())
        c.quit()
    assert q.all("rcpt") == ["bob@acme.example"]
    assert q.get("rcpt-route") == f"{backend.host}:{backend.port}"


# ---- route TLS ---------------------------------------------------------------------------------

def send_one(srv, rcpt="bob@acme.example", token="route-tls"):
    with Client(srv) as c:
        c.mail("sender@client.example")
        assert c.rcpt(rcpt).code == 250
        qid = c.data(f"Subject: {token}\r\n\r\n{token}\r\n".encode())
        c.quit()
    return qid


def queue_list(srv):
    res = run_mxgate("-c", str(srv.conf_path), "queue", "list", "--json", cwd=srv.workdir)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def rcpt_state(srv, qid):
    """The first recipient of qid in `queue list --json`, None once the message is gone."""
    for m in queue_list(srv):
        if m["id"] == qid:
            return m["recipients"][0]
    return None


def test_route_tls_required_defers_until_starttls(mxgate_factory, backends, tls_files):
    host, port = backend_address()
    plain = backends(host, port, accept_all=True)
    srv = start_gateway(mxgate_factory, f"{host}:{port}", route_tls="required")
    qid = send_one(srv)
    assert srv.queue_file(qid).get("rcpt-route") == f"{host}:{port} tls=required"
    # the downstream does not offer STARTTLS: deferred with 4.7.4, nothing delivered
    st = wait_until(lambda: (s := rcpt_state(srv, qid)) and s["status"] == "deferred" and s,
                    15)
    assert st, queue_list(srv)
    assert st["dsn"].startswith("4.7."), st
    assert st["route"] == f"{host}:{port} tls=required"
    time.sleep(1.5)   # a retry or two, still not delivered
    assert plain.messages == []
    assert rcpt_state(srv, qid)["status"] == "deferred"
    # the downstream learns STARTTLS: the next retry delivers, encrypted
    plain.stop()
    tls = backends(host, port, accept_all=True, tls_context=server_tls_context(tls_files))
    assert wait_until(lambda: tls.messages, 20), queue_list(srv)
    assert tls.messages[0]["tls"] is True
    assert b"route-tls" in tls.messages[0]["data"]
    assert wait_until(lambda: rcpt_state(srv, qid) is None, 10), queue_list(srv)


def test_route_tls_opportunistic_delivers_plain(mxgate_factory, backends):
    host, port = backend_address()
    plain = backends(host, port, accept_all=True)
    srv = start_gateway(mxgate_factory, f"{host}:{port}")
    qid = send_one(srv, token="opportunistic")
    assert srv.queue_file(qid).get("rcpt-route") == f"{host}:{port}"
    assert wait_until(lambda: plain.messages, 15), queue_list(srv)
    assert plain.messages[0]["tls"] is False
    assert wait_until(lambda: rcpt_state(srv, qid) is None, 10), queue_list(srv)


def test_route_tls_opportunistic_uses_starttls_when_offered(mxgate_factory, backends,
                                                            tls_files):
    host, port = backend_address()
    tls = backends(host, port, accept_all=True, tls_context=server_tls_context(tls_files))
    srv = start_gateway(mxgate_factory, f"{host}:{port}")
    send_one(srv, token="opportunistic-tls")
    assert wait_until(lambda: tls.messages, 15)
    assert tls.messages[0]["tls"] is True


def test_route_tls_verify_refuses_self_signed(mxgate_factory, backends, tls_files):
    host, port = backend_address()
    tls = backends(host, port, accept_all=True, tls_context=server_tls_context(tls_files))
    srv = start_gateway(mxgate_factory, f"{host}:{port}", route_tls="verify")
    qid = send_one(srv, token="verify")
    assert srv.queue_file(qid).get("rcpt-route") == f"{host}:{port} tls=verify"
    st = wait_until(lambda: (s := rcpt_state(srv, qid)) and s["status"] == "deferred" and s,
                    15)
    assert st, queue_list(srv)
    assert st["dsn"] == "4.7.5", st
    assert tls.messages == []


def test_route_tls_verify_delivers_to_a_trusted_certificate(mxgate_factory, backends,
                                                             tmp_path, monkeypatch):
    """verify checks the chain against the trust store (here SSL_CERT_FILE, which OpenSSL's
    default paths honour) and the route's host: a certificate issued to the route's address
    passes, and the message goes out encrypted."""
    host, port = backend_address()
    cert, key = tmp_path / "backend.pem", tmp_path / "backend.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=backend", "-addext", f"subjectAltName=IP:{host}",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tls = backends(host, port, accept_all=True,
                   tls_context=server_tls_context((cert, key)))
    srv = start_gateway(mxgate_factory, f"{host}:{port}", route_tls="verify")
    qid = send_one(srv, token="verified")
    assert wait_until(lambda: tls.messages, 15), queue_list(srv)
    assert tls.messages[0]["tls"] is True
    assert wait_until(lambda: rcpt_state(srv, qid) is None, 10), queue_list(srv)
    line = srv.wait_for_log(r"[^\n]*qmgr connected dest=[^\n]*tls=verify[^\n]*").group(0)
    assert " verified=yes" in line, line


def test_route_tls_required_probe_needs_tls_too(mxgate_factory, backends):
    """The probe reaches the tenant's server the way delivery does: with TLS required and no
    STARTTLS there, it fails (451), never a 550."""
    host, port = backend_address()
    backend = backends(host, port)
    srv = start_gateway(mxgate_factory, f"{host}:{port}", check="probe", route_tls="required")
    r = rcpt_reply(srv, None, "nobody@acme.example")
    assert_reject(srv, r, "127.0.0.1", code=451, enh="4.4.3", rule="recipient-probe",
                  absent=backend_absent(backend))
    assert backend.rcpts() == []
    line = probe_log_lines(srv, "nobody@acme.example")[0]
    assert " result=failed " in line and "4.7.4" in line, line


def test_route_tls_required_probe_over_starttls(mxgate_factory, backends, tls_files):
    host, port = backend_address()
    backend = backends(host, port, tls_context=server_tls_context(tls_files))
    srv = start_gateway(mxgate_factory, f"{host}:{port}", check="probe", route_tls="required")
    assert_accept(rcpt_reply(srv, None, "bob@acme.example"))
    assert rcpt_reply(srv, None, "nobody@acme.example").code == 550
    assert backend.rcpts() == ["bob@acme.example", "nobody@acme.example"]
