"""Helpers for the policy integration tests (test_policy.py, test_policy_cli.py, test_relay.py).

- `policy_server(...)` starts one `mxgate serve` for a whole module (the `mxgate_factory`
  fixture is per test); it provisions a policy store with the admin CLI before the start, and
  at the end stops the server and fails on a sanitizer report, as the factory does.
- `Client` presents any client address through the PROXY listener (a v1 text header).
- `assert_reject` checks what every policy rejection must carry (docs/policy-precedence.md):
  the codes, the client IP in brackets, the gateway's host name, "ref" + 12 characters, and a
  log line `smtp reject ref=<ref> ... rule=<rule>` with the same reference.
- `policy_config` / `dnsbl_section` write the [policy] and [dnsbl NAME] sections.
- `verdict_fields` parses an X-Mxgate-Verdict header into a dict.

Every wait is bounded: sockets have timeouts, polls have deadlines.
"""
import contextlib
import re
import time

from conftest import (CLIENT_HELO, HOSTNAME, IO_TIMEOUT, ConnectionClosed, MxGate, RawSMTP,
                      queued_id, run_mxgate, wait_until)

REF_RE = re.compile(r"ref ([a-z2-9]{12})\)$")
RELOAD_BOUND = 2.0           # seconds a policy change may take to reach new sessions (1 s + slack)
DEFAULT_SENDER = "sender@client.example"


# ---- configuration ------------------------------------------------------------------------

def policy_config(resolver, *, threshold=1, timeout_ms=1000, reload_ms=200, cache_min_ttl=None):
    """A [policy] section pointing the DNSBLs at `resolver` ("127.0.0.1:PORT")."""
    lines = ["[policy]", f"resolver = {resolver}", f"dnsbl_threshold = {threshold}",
             f"dnsbl_timeout_ms = {timeout_ms}", "dnsbl_health_interval = 0",
             f"reload_interval_ms = {reload_ms}"]
    if cache_min_ttl is not None:
        lines.append(f"dnsbl_cache_min_ttl = {cache_min_ttl}")
    return "\n".join(lines) + "\n"


def dnsbl_section(name, zone, *, display_name=None, codes="127.0.0.2-127.0.0.11", weight=None,
                  txt=False, url=None, display_zone=None, ipv6=None):
    lines = [f"[dnsbl {name}]", f"zone = {zone}", f"codes = {codes}"]
    if display_name:
        lines.append(f"display_name = {display_name}")
    if weight is not None:
        lines.append(f"weight = {weight}")
    if txt:
        lines.append("txt = yes")
    if url:
        lines.append(f"url = {url}")
    if display_zone:
        lines.append(f"display_zone = {display_zone}")
    if ipv6 is not None:
        lines.append(f"ipv6 = {'yes' if ipv6 else 'no'}")
    return "\n".join(lines) + "\n"


ZEN_URL = "https://lookup.test/?ip={ip}"


def zen_section(zone="zen.test", **kw):
    """The list most tests use: 'Test ZEN' with TXT and a lookup URL."""
    kw.setdefault("display_name", "Test ZEN")
    kw.setdefault("txt", True)
    kw.setdefault("url", ZEN_URL)
    return dnsbl_section("zen", zone, **kw)


# ---- a server per module ------------------------------------------------------------------

@contextlib.contextmanager
def policy_server(workdir, *, setup=(), tls_files=None, start=True, **kw):
    """Yields a started MxGate whose store was provisioned (tenants) and then given the admin
    commands in `setup` (tuples of arguments) before the start; stops it at the end and raises
    if it did not stop cleanly or left a sanitizer report."""
    srv = MxGate(workdir, tls_files=tls_files, **kw)
    srv.provision()
    for args in setup:
        srv.admin(*args)
    if start:
        srv.start()
    try:
        yield srv
    finally:
        problems = srv.stop() if srv.proc else []
        found = srv.sanitizer_reports()
        if found:
            problems.append(f"sanitizer report ({', '.join(found)}):\n{srv.log_text()[-6000:]}")
        if problems:
            raise AssertionError(f"{srv.workdir}: " + "\n".join(problems))


def admin_run(srv, *args):
    """An admin command that may fail: returns the CompletedProcess."""
    return run_mxgate("-c", str(srv.conf_path), *args, cwd=srv.workdir)


# ---- clients ------------------------------------------------------------------------------

def proxy_v1(ip, dst=None, sport=40000, dport=25):
    v6 = ":" in ip
    dst = dst or ("::1" if v6 else "127.0.0.1")
    return f"PROXY {'TCP6' if v6 else 'TCP4'} {ip} {dst} {sport} {dport}\r\n".encode()


class Client(RawSMTP):
    """A session presenting client address `ip` through srv's PROXY listener (or a direct
    session from 127.0.0.1 with ip=None), greeted and EHLO'd."""

    def __init__(self, srv, ip=None, *, ehlo=True, helo=CLIENT_HELO, source=None):
        super().__init__(srv.proxy_port if ip else srv.port, source=source)
        self.ip = ip or "127.0.0.1"
        self.t_connect = time.monotonic()
        try:
            if ip:
                self.send(proxy_v1(ip))
            self.greeting()
            if ehlo:
                self.ehlo(helo)
        except BaseException:
            self.close()
            raise

    def mail(self, sender=DEFAULT_SENDER):
        r = self.cmd(f"MAIL FROM:<{sender}>")
        assert r.code == 250, r
        return r

    def rcpt(self, rcpt, timeout=None):
        return self.cmd(f"RCPT TO:<{rcpt}>", timeout=timeout)

    def data(self, body=b"Subject: policy test\r\n\r\nhello\r\n"):
        """DATA + body + final dot; returns the queue id of the 250 reply."""
        r = self.cmd("DATA")
        assert r.code == 354, r
        self.send(body + b".\r\n")
        return queued_id(self.reply())

    def quit(self):
        """QUIT without caring for the reply (over TLS the 221 is lost: a known bug of its own,
        tested in test_starttls.py)."""
        try:
            self.cmd("QUIT")
        except (OSError, ConnectionClosed):
            pass
        self.close()


def rcpt_reply(srv, ip, rcpt, sender=DEFAULT_SENDER):
    """One session: MAIL, one RCPT; returns the RCPT reply."""
    with Client(srv, ip) as c:
        c.mail(sender)
        r = c.rcpt(rcpt)
        c.quit()
        return r


def deliver(srv, ip, rcpts, sender=DEFAULT_SENDER):
    """One session: MAIL, every RCPT (replies returned), DATA when one was accepted.
    Returns (replies, queue file or None)."""
    with Client(srv, ip) as c:
        c.mail(sender)
        replies = [c.rcpt(r) for r in rcpts]
        q = srv.queue_file(c.data()) if any(r.code == 250 for r in replies) else None
        c.quit()
        return replies, q


# ---- assertions ---------------------------------------------------------------------------

def assert_accept(reply):
    assert reply.code == 250 and reply.enhanced == "2.1.5", reply
    assert reply.message == "Ok", reply
    return reply


def assert_reject(srv, reply, ip, *, code=550, enh="5.7.1", rule, texts=(), absent=()):
    """The reply is a policy rejection with everything docs/policy-precedence.md promises;
    `texts` must appear in its message, `absent` must not. Returns (ref, log line)."""
    assert reply.code == code and reply.enhanced == enh, reply
    msg = reply.message
    assert f"[{ip}]" in msg, msg
    assert f", {HOSTNAME}, ref " in msg, msg
    m = REF_RE.search(msg)
    assert m, f"no 'ref' + 12 characters at the end of {msg!r}"
    ref = m.group(1)
    for t in texts:
        assert t in msg, f"{t!r} not in {msg!r}"
    for t in absent:
        assert t not in msg, f"{t!r} in {msg!r}"
    line = srv.wait_for_log(rf"[^\n]*smtp reject ref={ref} [^\n]*", timeout=IO_TIMEOUT).group(0)
    assert f" rule={rule} " in line, line
    assert f" ip={ip} " in line, line
    assert f" code={code} enh={enh} " in line, line
    return ref, line


def verdict_fields(header):
    """'X-Mxgate-Verdict: k=v; k=v;\\r\\n\\tk=v' -> {k: v} (quotes removed)."""
    assert header.startswith("X-Mxgate-Verdict: "), header
    text = re.sub(r"\r\n[ \t]+", " ", header[len("X-Mxgate-Verdict: "):]).strip()
    out = {}
    for part in re.split(r";\s*", text):
        if part:
            k, _, v = part.partition("=")
            out[k] = v[1:-1] if v.startswith('"') and v.endswith('"') else v
    return out


def verdicts_by_tenant(q):
    return {f["tenant"]: f for f in (verdict_fields(h) for h in q.verdicts)}


def wait_for_reply(srv, ip, rcpt, predicate, timeout=RELOAD_BOUND):
    """Opens new sessions until predicate(reply) holds or timeout passes; returns
    (reply, seconds waited)."""
    t0 = time.monotonic()
    last = []

    def probe():
        last[:] = [rcpt_reply(srv, ip, rcpt)]
        return predicate(last[0])

    wait_until(probe, timeout, interval=0.05)
    return last[0], time.monotonic() - t0
