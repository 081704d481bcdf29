"""Helpers for the delivery integration tests (test_delivery.py, test_queue_cmd.py,
test_crash.py).

- `Downstream`: an SMTP server the test controls, on 127.0.0.x:PORT in a background thread
  (asyncio). It is a small hand-written server, not aiosmtpd: Debian's aiosmtpd 1.4 neither
  advertises DSN (nor PIPELINING) nor accepts the DSN parameters (RET/ENVID on MAIL and
  NOTIFY/ORCPT on RCPT get "555 ... parameters not recognized"), and it upper-cases the
  parameters it passes on (ENVID and ORCPT are case-sensitive xtext), while these tests need
  a DSN-capable next hop and every ESMTP parameter as sent. What it does:
    * EHLO with PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8 and (by default)
      DSN; commands are handled strictly in order, so pipelined groups work;
    * per-recipient rules at RCPT: accept, defer (4xx), reject (5xx), accept after N
      deferrals, with the code and text the test chooses (multi-line when the text has "\\n");
      a reply to the final dot the test chooses (`data_reply`);
    * "down": `stop()` closes the listener and every open connection, `start()` listens again
      on the same address and port;
    * "slow": `slow(seconds)` waits before replying to the final dot;
    * a record of every message it accepted (`messages`: envelope, ESMTP parameters, exact
      bytes after dot-unstuffing) and of every RCPT it answered (`rcpt_log`); `wait_for(n)`.
- `loopback_hosts(n)` and `free_port_on(hosts)`: distinct 127.x.y.z addresses and one port free
  on all of them (the MX hosts of a test share `mx_port`), random so that parallel runs do not
  collide.
- `delivery_sections(...)`: the [delivery] and [policy] config text with short timers.
- `submit(...)`: one SMTP transaction with any MAIL/RCPT parameters; returns the queue id.
- `parse_report(...)`: an RFC 3464 report split into its parts and fields.
- `queue_cli(...)`, `queue_list(...)`, `queue_show(...)`: `mxgate queue` through the binary.
- `wait_queue_empty(...)`: incoming/ and state/ both empty.

Every wait is bounded: sockets have timeouts, polls have deadlines.
"""
import asyncio
import email
import email.policy
import json
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import pytest

from conftest import (CLIENT_HELO, ConnectionClosed, RawSMTP, queued_id, run_mxgate,
                      wait_until)
from unbound_helper import Unbound, unbound_available

IDLE_TIMEOUT = 30.0        # a downstream connection silent this long is closed
MAX_MESSAGE = 64 << 20     # the downstream refuses (552) more than this in one DATA
LINE_LIMIT = 1 << 20       # longest line the downstream reads
THREAD_TIMEOUT = 10.0      # for calls into the downstream's loop


# --------------------------------------------------------------------------------------------
# Addresses and ports


def loopback_hosts(n):
    """n distinct random loopback addresses 127.X.Y.Z (Z in 2..250), never 127.0.0.1."""
    out = []
    while len(out) < n:
        host = "127.%d.%d.%d" % (random.randint(1, 250), random.randint(0, 255),
                                 random.randint(2, 250))
        if host not in out:
            out.append(host)
    return out


def free_port_on(hosts, tries=100):
    """A TCP port free on every host a moment ago."""
    for _ in range(tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        ok = True
        for h in hosts:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError(f"no port free on all of {hosts}")


# --------------------------------------------------------------------------------------------
# The downstream server


@dataclass
class Rule:
    kind: str                 # "accept" | "defer" | "reject" | "accept_after"
    code: int = 250
    text: str = "2.1.5 Ok"
    times: int = 0            # accept_after: deferrals before accepting


@dataclass
class Received:
    """One message the downstream accepted (250 to the final dot)."""
    mail_from: str
    mail_params: dict         # KEY (upper case) -> value as sent (None for a bare keyword)
    rcpts: list               # accepted recipients, in order
    rcpt_params: dict         # recipient -> {KEY: value}
    data: bytes               # the message after dot-unstuffing, CRLF line ends as sent
    helo: str
    peer: tuple
    server: str               # "HOST:PORT" of the downstream
    when: float = field(default_factory=time.time)


def _parse_path(arg, keyword):
    """'FROM:<a@b> K=V K2' -> ('a@b', {'K': 'V', 'K2': None}); None on a syntax error."""
    m = re.match(r"^%s\s*<([^>]*)>(.*)$" % keyword, arg, re.I)
    if not m:
        return None
    params = {}
    for p in m.group(2).split():
        k, eq, v = p.partition("=")
        params[k.upper()] = v if eq else None
    return m.group(1), params


def _reply_bytes(code, text):
    lines = text.split("\n") if text else [""]
    out = []
    for i, ln in enumerate(lines):
        sep = " " if i == len(lines) - 1 else "-"
        out.append(f"{code}{sep}{ln}".rstrip() + "\r\n")
    return "".join(out).encode()


class Downstream:
    """A controllable SMTP server on host:port (see the module docstring).

        ds = Downstream(host="127.3.4.5", port=2525, name="tenant", dsn=True,
                        extensions=None)    # None: BASE_EXTENSIONS (+ DSN when dsn)
        ds.reject("bob@acme.example", 550, "5.1.1 <bob@acme.example>: no such user")
        ds.defer(None, 451, "4.3.0 try later")       # None: every other recipient
        ds.accept_after(2, "carol@acme.example")
        ds.slow(1.5); ds.stop(); ds.start()
        msgs = ds.wait_for(1, timeout=10)
    """

    BASE_EXTENSIONS = ("PIPELINING", "SIZE 52428800", "8BITMIME", "ENHANCEDSTATUSCODES",
                       "SMTPUTF8")

    def __init__(self, host=None, port=None, *, name="downstream", dsn=True, extensions=None,
                 start=True):
        self.host = host or loopback_hosts(1)[0]
        self.port = port or free_port_on([self.host])
        self.name = name
        self.extensions = list(self.BASE_EXTENSIONS if extensions is None else extensions)
        if dsn:
            self.extensions.append("DSN")
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._rules = {}                 # address (lower) -> Rule; None -> default
        self._default = Rule("accept")
        self._seen = {}                  # address (lower) -> RCPTs answered
        self._data_reply = None          # (code, text) to the final dot, None = 250
        self._data_delay = 0.0
        self.messages = []
        self.rcpt_log = []               # (mail_from, rcpt, params, code, text)
        self.transactions = 0            # MAIL commands answered 250
        self.connections = 0             # accepted so far
        self.active = 0                  # open now
        self.max_active = 0              # most open at once
        self.errors = []                 # exceptions in connection handlers
        self._server = None
        self._writers = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"downstream-{name}")
        self._thread.start()
        if start:
            self.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"<Downstream {self.name} {self.address}>"

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    # -- behaviour

    def _set(self, addr, rule):
        with self._lock:
            if addr is None:
                self._default = rule
            else:
                self._rules[addr.lower()] = rule

    def accept(self, addr=None):
        self._set(addr, Rule("accept"))

    def defer(self, addr=None, code=451, text="4.3.0 Temporary failure, try again later"):
        assert 400 <= code < 500
        self._set(addr, Rule("defer", code, text))

    def reject(self, addr=None, code=550, text="5.1.1 Recipient address rejected: User unknown"):
        assert 500 <= code < 600
        self._set(addr, Rule("reject", code, text))

    def accept_after(self, n, addr=None, code=451, text="4.3.0 Not yet, try again later"):
        """Defers the first n RCPTs of the address (counted from now), then accepts."""
        with self._lock:
            key = addr.lower() if addr else None
            self._seen[key] = 0
        self._set(addr, Rule("accept_after", code, text, n))

    def data_reply(self, code=None, text=""):
        """The reply to the final dot (None: 250 and the message is recorded)."""
        with self._lock:
            self._data_reply = (code, text) if code else None

    def slow(self, seconds):
        """Waits this long before replying to the final dot (0: no wait)."""
        with self._lock:
            self._data_delay = float(seconds)

    def rcpt_count(self, addr):
        with self._lock:
            return sum(1 for e in self.rcpt_log if e[1].lower() == addr.lower())

    def _decide(self, rcpt):
        with self._lock:
            key = rcpt.lower()
            rule = self._rules.get(key)
            counter = key
            if rule is None:
                rule, counter = self._default, None
            if rule.kind == "accept":
                return 250, "2.1.5 Ok"
            if rule.kind in ("defer", "reject"):
                return rule.code, rule.text.replace("{rcpt}", rcpt)
            seen = self._seen.get(counter, 0)
            self._seen[counter] = seen + 1
            if seen < rule.times:
                return rule.code, rule.text.replace("{rcpt}", rcpt)
            return 250, "2.1.5 Ok"

    # -- life cycle ("down" and "up")

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(THREAD_TIMEOUT)

    async def _start(self):
        self._server = await asyncio.start_server(self._handle, self.host, self.port,
                                                  reuse_address=True, limit=LINE_LIMIT)

    async def _stop(self):
        if self._server:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    def start(self):
        """Listens (again) on the same address and port."""
        deadline = time.monotonic() + 5
        while True:
            try:
                self._call(self._start())
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self):
        """Stops listening and drops every open connection (the server is "down")."""
        self._call(self._stop())

    async def _shutdown(self):
        await self._stop()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self):
        if self._loop.is_closed():
            return
        try:
            self._call(self._shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(THREAD_TIMEOUT)
            if not self._thread.is_alive():
                self._loop.close()

    # -- records

    def wait_for(self, n, timeout=10.0):
        """Waits until at least n messages arrived; returns them (all so far). Fails on
        timeout, naming what did arrive."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.name}: {len(self.messages)} of {n} messages within {timeout}s; "
                        f"RCPTs answered: {self.rcpt_log[-10:]}")
                self._cond.wait(left)
            return list(self.messages)

    def wait_rcpts(self, addr, n, timeout=10.0):
        """Waits until the address was offered in RCPT n times (any answer)."""
        ok = wait_until(lambda: self.rcpt_count(addr) >= n, timeout)
        assert ok, f"{self.name}: <{addr}> offered {self.rcpt_count(addr)} times, wanted {n}"

    def snapshot(self):
        with self._lock:
            return list(self.messages)

    # -- the SMTP session

    async def _handle(self, reader, writer):
        self._writers.add(writer)
        with self._lock:
            self.connections += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        peer = writer.get_extra_info("peername")
        helo, mail_from, mail_params, rcpts, rcpt_params = "", None, {}, [], {}

        async def send(code, text):
            writer.write(_reply_bytes(code, text))
            await writer.drain()

        try:
            await send(220, f"{self.name}.downstream.test ESMTP test server")
            while True:
                line = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
                if not line:
                    break
                cmdline = line.rstrip(b"\r\n").decode("utf-8", "replace")
                verb, _, arg = cmdline.partition(" ")
                verb = verb.upper()
                if verb == "EHLO":
                    helo = arg
                    await send(250, "\n".join([f"{self.name}.downstream.test"] +
                                               self.extensions))
                elif verb == "HELO":
                    helo = arg
                    await send(250, f"{self.name}.downstream.test")
                elif verb == "MAIL":
                    p = _parse_path(arg, "FROM:")
                    if p is None:
                        await send(501, "5.5.4 Syntax: MAIL FROM:<address>")
                    elif mail_from is not None:
                        await send(503, "5.5.1 Error: nested MAIL command")
                    else:
                        mail_from, mail_params = p
                        rcpts, rcpt_params = [], {}
                        with self._lock:
                            self.transactions += 1
                        await send(250, "2.1.0 Ok")
                elif verb == "RCPT":
                    p = _parse_path(arg, "TO:")
                    if mail_from is None:
                        await send(503, "5.5.1 Error: need MAIL command")
                    elif p is None:
                        await send(501, "5.5.4 Syntax: RCPT TO:<address>")
                    else:
                        rcpt, params = p
                        code, text = self._decide(rcpt)
                        with self._lock:
                            self.rcpt_log.append((mail_from, rcpt, params, code, text))
                        if code == 250:
                            rcpts.append(rcpt)
                            rcpt_params[rcpt] = params
                        await send(code, text)
                elif verb == "DATA":
                    if mail_from is None or not rcpts:
                        await send(554 if mail_from is not None else 503,
                                   "5.5.1 Error: no valid recipients")
                        continue
                    await send(354, "End data with <CR><LF>.<CR><LF>")
                    chunks, size, too_big = [], 0, False
                    while True:
                        dl = await asyncio.wait_for(reader.readline(), IDLE_TIMEOUT)
                        if not dl:
                            raise ConnectionError("closed during DATA")
                        if dl == b".\r\n":
                            break
                        if dl.startswith(b"."):
                            dl = dl[1:]
                        size += len(dl)
                        if size > MAX_MESSAGE:
                            too_big = True
                        else:
                            chunks.append(dl)
                    with self._lock:
                        delay, custom = self._data_delay, self._data_reply
                    if delay:
                        await asyncio.sleep(delay)
                    if too_big:
                        await send(552, "5.3.4 Message too big")
                    elif custom:
                        await send(*custom)
                    else:
                        msg = Received(mail_from, mail_params, rcpts, rcpt_params,
                                       b"".join(chunks), helo, peer, self.address)
                        with self._cond:
                            self.messages.append(msg)
                            self._cond.notify_all()
                        await send(250, "2.0.0 Ok: queued")
                    mail_from, mail_params, rcpts, rcpt_params = None, {}, [], {}
                elif verb == "RSET":
                    mail_from, mail_params, rcpts, rcpt_params = None, {}, [], {}
                    await send(250, "2.0.0 Ok")
                elif verb == "NOOP":
                    await send(250, "2.0.0 Ok")
                elif verb == "QUIT":
                    await send(221, "2.0.0 Bye")
                    break
                else:
                    await send(502, "5.5.2 Error: command not recognized")
        except (ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        except Exception as e:  # noqa: BLE001 -- recorded for the test to see
            self.errors.append(repr(e))
        finally:
            self._writers.discard(writer)
            with self._lock:
                self.active -= 1
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass


# --------------------------------------------------------------------------------------------
# DNS (a real unbound) and the configuration


@pytest.fixture(scope="module")
def dns():
    """A real unbound serving the zone "test." for the whole module."""
    if not unbound_available():
        pytest.skip("unbound is not installed")
    with Unbound() as server:
        yield server


SENDER_DOMAIN = "sender.test"
SENDER = f"alice@{SENDER_DOMAIN}"


class Env:
    """mxgate + downstreams: `ds[name]` per tenant ("acme" serves acme.example) and per MX
    domain (its MX host mx.DOMAIN points to that downstream)."""

    def __init__(self, srv, ds, port):
        self.srv, self.ds, self.port = srv, ds, port

    def __getitem__(self, name):
        return self.ds[name]


@pytest.fixture
def env(mxgate_factory, dns):  # noqa: F811 -- dns is the fixture above
    """`env(tenants=("acme",), mx_domains=("sender.test",), proxy=False, dsn=True, setup=(),
    settings=None, **timers)` starts one Downstream per tenant (its route) and per MX domain
    (mx.DOMAIN in unbound points at it), all on one port that is also `mx_port`, runs the
    admin commands in `setup` after provisioning, and starts mxgate with
    delivery_sections(**timers) and [server] `settings`. Returns an Env."""
    made = []

    def make(*, tenants=("acme",), mx_domains=(SENDER_DOMAIN,), proxy=False, dsn=True,
             setup=(), settings=None, **timers):
        hosts = loopback_hosts(len(tenants) + len(mx_domains))
        port = free_port_on(hosts)
        ds = {}
        for name, host in zip(list(tenants) + list(mx_domains), hosts):
            ds[name] = Downstream(host, port, name=name.split(".")[0], dsn=dsn)
            made.append(ds[name])
        with dns.batch():
            for d in mx_domains:
                dns.set(d, "MX", [f"10 mx.{d}."])
                dns.set(f"mx.{d}", "A", [ds[d].host])
        srv = mxgate_factory(
            tenants={t: (ds[t].address, [f"{t}.example"]) for t in tenants},
            extra_sections=delivery_sections(dns.resolver, mx_port=port, **timers),
            proxy=proxy, settings=settings, start=False)
        if setup:
            srv.provision()
            for args in setup:
                srv.admin(*args)
        srv.start()
        return Env(srv, ds, port)

    yield make
    for d in made:
        d.close()


def delivery_sections(resolver, *, retry_first=1, retry_max=2, max_lifetime=60,
                      delay_warning=0, concurrency=10, mx_port=25, connect_timeout=2,
                      smtp_timeout=5, data_timeout=10, extra=""):
    """[delivery] with short timers and [policy] pointing the resolver at `resolver`."""
    return (f"[delivery]\nretry_first = {retry_first}\nretry_max = {retry_max}\n"
            f"max_lifetime = {max_lifetime}\ndelay_warning = {delay_warning}\n"
            f"concurrency = {concurrency}\nmx_port = {mx_port}\n"
            f"connect_timeout = {connect_timeout}\nsmtp_timeout = {smtp_timeout}\n"
            f"data_timeout = {data_timeout}\n"
            f"[policy]\nresolver = {resolver}\ndnsbl_threshold = 1\n" + extra)


# --------------------------------------------------------------------------------------------
# Submitting mail


def make_body(subject="delivery test", token=None, sender="sender@sender.test",
              to="someone@example.test", extra_headers=(), text="Hello.\r\n"):
    token = token or "%016x" % random.getrandbits(64)
    hdrs = [f"From: <{sender}>", f"To: <{to}>", f"Subject: {subject}",
            f"Message-ID: <{token}@sender.test>", "Date: Fri, 27 Nov 2026 10:14:57 +0000",
            "MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii"]
    hdrs += list(extra_headers)
    return ("\r\n".join(hdrs) + "\r\n\r\n" + text + f"token {token}\r\n").encode()


def dot_stuff(body):
    """RFC 5321 4.5.2: a line starting with "." gets one more."""
    return re.sub(rb"(^|\r\n)\.", rb"\1..", body)


def submit(srv, sender, rcpts, body=None, *, mail_params="", rcpt_params=None, port=None,
           proxy_ip=None):
    """One transaction; returns the queue id. `rcpt_params` maps a recipient to its parameter
    text ("NOTIFY=NEVER ORCPT=rfc822;x@y"). With proxy_ip the session goes through srv's PROXY
    listener presenting that client address."""
    from policy_helpers import proxy_v1
    body = body if body is not None else make_body(sender=sender or "x@y.test", to=rcpts[0])
    rcpt_params = rcpt_params or {}
    with RawSMTP(port or (srv.proxy_port if proxy_ip else srv.port)) as c:
        if proxy_ip:
            c.send(proxy_v1(proxy_ip))
        c.greeting()
        c.ehlo(CLIENT_HELO)
        r = c.cmd(f"MAIL FROM:<{sender}>" + (f" {mail_params}" if mail_params else ""))
        assert r.code == 250, r
        for rcpt in rcpts:
            p = rcpt_params.get(rcpt, "")
            r = c.cmd(f"RCPT TO:<{rcpt}>" + (f" {p}" if p else ""))
            assert r.code == 250, f"RCPT {rcpt}: {r}"
        r = c.cmd("DATA")
        assert r.code == 354, r
        c.send(dot_stuff(body) + (b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"))
        qid = queued_id(c.reply())
        try:
            c.cmd("QUIT")
        except (OSError, ConnectionClosed):
            pass
        return qid


# --------------------------------------------------------------------------------------------
# The queue


def state_dir(srv):
    return srv.data_dir / "queue" / "state"


def queue_contents(srv):
    """(names in incoming/, names in state/)."""
    inc = sorted(p.name for p in srv.queue_dir.iterdir()) if srv.queue_dir.is_dir() else []
    sd = state_dir(srv)
    st = sorted(p.name for p in sd.iterdir()) if sd.is_dir() else []
    return inc, st


def wait_queue_empty(srv, timeout=10.0):
    ok = wait_until(lambda: queue_contents(srv) == ([], []), timeout)
    assert ok, (f"queue not empty after {timeout}s: {queue_contents(srv)}; log tail:\n"
                f"{srv.log_text()[-3000:]}")


def read_state(srv, qid):
    p = state_dir(srv) / qid
    return p.read_text() if p.exists() else ""


def state_records(srv, qid):
    """The records of the state log (after the magic line), each split at spaces."""
    return [ln.split(" ") for ln in read_state(srv, qid).splitlines()[1:]]


def queue_cli(srv, *args, timeout=30):
    """`mxgate -c CONF queue ARGS...` (CompletedProcess, any exit status)."""
    return run_mxgate("-c", str(srv.conf_path), "queue", *args, cwd=srv.workdir,
                      timeout=timeout)


def queue_list(srv):
    res = queue_cli(srv, "list", "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def queue_show(srv, qid):
    res = queue_cli(srv, "show", qid, "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def queue_entry(srv, qid):
    """The `queue list --json` entry of qid, or None."""
    return next((m for m in queue_list(srv) if m["id"] == qid), None)


# --------------------------------------------------------------------------------------------
# Reports (RFC 3464 in RFC 3462 multipart/report)


@dataclass
class Report:
    msg: email.message.EmailMessage
    human: str
    per_message: dict
    per_recipient: list       # [dict]
    returned: email.message.Message  # the third part
    raw: bytes


def _unfold(value):
    return " ".join(str(value).split())


def parse_report(data):
    """Parses a report as delivered; asserts the RFC 3462/3464 structure."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert msg.get_param("report-type") == "delivery-status"
    parts = list(msg.iter_parts())
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    assert parts[0].get_content_type() == "text/plain"
    assert parts[1].get_content_type() == "message/delivery-status"
    human = parts[0].get_content()
    blocks = parts[1].get_payload()
    assert len(blocks) >= 2, f"delivery-status without recipient groups: {blocks!r}"
    fields = [{k: _unfold(v) for k, v in b.items()} for b in blocks]
    return Report(msg, human, fields[0], fields[1:], parts[2], data)


def catalog(code):
    """`mxgate ndr CODE` as {"title", "cause", "who", "fix"} (whitespace normalised)."""
    res = run_mxgate("ndr", code)
    assert res.returncode == 0, res.stdout + res.stderr
    first, _, rest = res.stdout.partition("\n")
    out = {"title": first.split("  ", 1)[1].strip()}
    names = {"Cause:": "cause", "Who acts:": "who", "How to fix:": "fix", "For admins:": "admin"}
    key = None
    for ln in rest.splitlines():
        for label, k in names.items():
            if ln.startswith(label):
                key, ln = k, ln[len(label):]
                out[key] = ""
                break
        if key:
            out[key] = (out[key] + " " + ln.strip()).strip()
    return out


def normalised(text):
    """Whitespace runs (line wrapping, indentation) as single spaces."""
    return " ".join(text.split())
