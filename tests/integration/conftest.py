"""Fixtures and helpers for the mxgate integration tests.

Every test runs a real `mxgate serve` (the ASan+UBSan build by default) on loopback ports picked
at run time, talks to it with smtplib, swaks or a raw socket, and reads the queue files it writes.

- `mxgate_factory(...)` writes a config, provisions the policy store with the admin CLI (by
  default tenant "default" serving example.test, routed to 127.0.0.1:2600), starts the server
  and returns an `MxGate` handle; at teardown the server gets SIGTERM (SIGKILL after a bound)
  and the test fails if its log shows an AddressSanitizer, LeakSanitizer or UBSan report.
- `mxgate` is a server with the default config.
- `RawSMTP` is a socket client that reads complete SMTP replies; `parse_queue_file` reads the
  queue format of docs/queue-format.md and refuses incomplete files.

Nothing here loops without a bound: each wait has a deadline and each socket a timeout.
"""
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MXGATE_BIN = os.environ.get("MXGATE_BIN") or str(REPO_ROOT / "build-asan" / "mxgate")

HOSTNAME = "mx.test.example"
ACCEPTED_DOMAIN = "example.test"
ROUTE = "127.0.0.1:2600"
DEFAULT_TENANTS = {"default": (ROUTE, [ACCEPTED_DOMAIN])}   # name: (route, domains)
STORE_FILE = "policy.db"                                     # under data_dir (src/store)
CLIENT_HELO = "client.example"

IO_TIMEOUT = 5.0         # seconds for any single socket operation
START_TIMEOUT = 20.0     # seconds for a server to come up (ASan start-up is slow)
STOP_TIMEOUT = 15.0      # seconds after SIGTERM (the worker grace period is 10 s)

SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

QUEUED_RE = re.compile(r"^Ok: queued as ([0-9A-F]{20})$")
QID_RE = re.compile(r"^[0-9A-F]{20}$")


def sanitizer_env():
    env = dict(os.environ)
    env.update(SANITIZER_ENV)
    return env


def free_port(host="127.0.0.1"):
    """A TCP port that was free a moment ago (bind port 0, read it, close)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_loopback_works():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def wait_until(predicate, timeout, interval=0.05):
    """Polls predicate() until it returns a true value or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# SMTP replies and a raw client


class ConnectionClosed(Exception):
    """The server closed the connection; `data` holds the bytes received before the close."""

    def __init__(self, data=b""):
        super().__init__(f"connection closed by the server after {data!r}")
        self.data = data


@dataclass
class Reply:
    code: int
    lines: list          # text of each line after "NNN-" / "NNN "
    raw: bytes

    @property
    def text(self):
        return "\n".join(self.lines)

    @property
    def message(self):
        """All lines joined by spaces, without the enhanced code each line repeats."""
        enh = self.enhanced
        return " ".join(ln[len(enh) + 1:] if enh and ln.startswith(enh + " ") else ln
                        for ln in self.lines)

    @property
    def enhanced(self):
        """The RFC 3463 code of the first line ("5.7.1"), or None."""
        m = re.match(r"^([245]\.\d{1,3}\.\d{1,3})(?: |$)", self.lines[0])
        return m.group(1) if m else None

    def __str__(self):
        return self.raw.decode("utf-8", "replace").strip()


_REPLY_LINE_RE = re.compile(rb"^(\d{3})([ -]?)(.*)$", re.S)


def _split_reply(buf):
    """Returns (Reply, rest) when buf starts with a complete reply, else (None, buf)."""
    pos, code, lines = 0, None, []
    while True:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            return None, buf
        line = buf[pos:end]
        m = _REPLY_LINE_RE.match(line)
        assert m, f"malformed reply line {line!r} in {buf!r}"
        assert code is None or int(m.group(1)) == code, f"code changes inside a reply: {buf!r}"
        code = int(m.group(1))
        lines.append(m.group(3).decode("utf-8", "replace"))
        pos = end + 2
        if m.group(2) != b"-":
            return Reply(code, lines, buf[:pos]), buf[pos:]


class RawSMTP:
    """A line-level SMTP client over a plain socket (optionally upgraded to TLS).

    Sends exactly the bytes it is given, so tests control pipelining and line ends."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=IO_TIMEOUT):
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=source)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _recv(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no complete reply in time; have %r" % self.buf)
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""                     # a close, with or without TLS close_notify
        if not data:
            raise ConnectionClosed(self.buf)
        self.buf += data

    def reply(self, timeout=None):
        """Reads one complete (possibly multi-line) reply."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            r, rest = _split_reply(self.buf)
            if r is not None:
                self.buf = rest
                return r
            self._recv(deadline)

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        """Sends one command line (CRLF added) and reads its reply."""
        self.send(line.encode() + b"\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.reply(timeout)

    def greeting(self):
        r = self.reply()
        assert r.code == 220, r
        return r

    def ehlo(self, name=CLIENT_HELO):
        r = self.cmd(f"EHLO {name}")
        assert r.code == 250, r
        return r

    def nothing_more(self, wait=0.5):
        """True when no byte (and no close) arrives within `wait` seconds."""
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return True
        except ConnectionResetError:
            data = b""
        if data:
            self.buf += data
            return False
        raise ConnectionClosed(self.buf)

    def read_until_closed(self, timeout=None):
        """Returns every byte received until the server closes; fails on timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            try:
                self._recv(deadline)
            except ConnectionClosed:
                data, self.buf = self.buf, b""
                return data

    def starttls(self, context=None, server_hostname=HOSTNAME):
        """Wraps the socket in TLS (after the client got 220 to STARTTLS)."""
        assert self.buf == b"", f"plaintext bytes left before the TLS handshake: {self.buf!r}"
        self.sock = (context or tls_client_context()).wrap_socket(
            self.sock, server_hostname=server_hostname)
        return self.sock


def tls_client_context():
    """Client context without verification (the server certificate is self-signed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def queued_id(reply):
    """The queue id of a `250 2.0.0 Ok: queued as ID` reply; fails on anything else."""
    assert reply.code == 250 and reply.enhanced == "2.0.0", reply
    m = QUEUED_RE.match(reply.lines[0][len("2.0.0 "):])
    assert m, f"not a queued reply: {reply}"
    return m.group(1)


def smtplib_reply(code, msg):
    """Turns smtplib's (code, bytes) into a Reply."""
    lines = msg.decode("utf-8", "replace").split("\n")
    return Reply(code, lines, msg)


def end_of_data(body):
    """What to send after `body` so the message is exactly `body` (CRLF-terminated)."""
    if body.endswith(b"\r\n.\r\n"):
        return b""
    return b".\r\n" if body.endswith(b"\r\n") else b"\r\n.\r\n"


def send_message(port, body, sender="sender@client.example", rcpts=("someone@example.test",),
                 helo=CLIENT_HELO, host="127.0.0.1"):
    """One complete transaction over a raw socket; returns the reply to the final dot.

    `body` is sent as is (the caller does any dot-stuffing), then ".CRLF" when it ends with
    CRLF, else "CRLF.CRLF"; a body already ending in CRLF.CRLF is sent unchanged."""
    if isinstance(body, str):
        body = body.encode()
    with RawSMTP(port, host=host) as c:
        c.greeting()
        c.ehlo(helo)
        r = c.cmd(f"MAIL FROM:<{sender}>")
        assert r.code == 250, r
        for rcpt in rcpts:
            r = c.cmd(f"RCPT TO:<{rcpt}>")
            assert r.code == 250, r
        r = c.cmd("DATA")
        assert r.code == 354, r
        c.send(body + end_of_data(body))
        final = c.reply()
        r = c.cmd("QUIT")
        assert r.code == 221, r
        return final


# --------------------------------------------------------------------------------------------
# Queue files (docs/queue-format.md)


@dataclass
class QueueFile:
    path: Path
    records: list        # [(key, value)] of the envelope, in file order, values unescaped
    body: bytes          # everything between "body\n" and the END record
    end: int             # N of the "end N" record

    def get(self, key):
        values = self.all(key)
        assert len(values) == 1, f"{key}: expected one record, have {values} in {self.path}"
        return values[0]

    def all(self, key):
        return [v for k, v in self.records if k == key]

    @property
    def keys(self):
        return [k for k, _ in self.records]

    @property
    def qid(self):
        return self.get("id")

    @property
    def recipients(self):
        """[{'rcpt':…, 'rcpt-tenant':…, 'rcpt-route':…, ['rcpt-params']}] in file order."""
        out = []
        for k, v in self.records:
            if k == "rcpt":
                out.append({"rcpt": v})
            elif k.startswith("rcpt-"):
                assert out, f"{k} before any rcpt record in {self.path}"
                out[-1][k] = v
        return out

    @property
    def received(self):
        """The Received: header mxgate put first (with its folding, CRLF line ends)."""
        return split_trace_headers(self.body)[0].decode()

    @property
    def verdicts(self):
        """The X-Mxgate-Verdict headers that follow it, one per tenant."""
        return [h.decode() for h in split_trace_headers(self.body)[1]]

    @property
    def message(self):
        """The body without mxgate's headers, i.e. the message as the client sent it."""
        return split_trace_headers(self.body)[2]


def _unescape(value):
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), value)


def parse_queue_file(path):
    """Parses one queue file; an AssertionError names what makes it invalid or incomplete."""
    path = Path(path)
    data = path.read_bytes()
    assert data.startswith(b"MXGQ 1\n"), f"{path}: bad magic {data[:16]!r}"
    pos, records = len(b"MXGQ 1\n"), []
    while True:
        nl = data.find(b"\n", pos)
        assert nl >= 0, f"{path}: no body record"
        line = data[pos:nl]
        pos = nl + 1
        if line == b"body":
            break
        key, sep, value = line.partition(b" ")
        assert sep and key and re.fullmatch(rb"[a-z][a-z-]*", key), f"{path}: bad record {line!r}"
        records.append((key.decode(), _unescape(value).decode("utf-8")))
    rest = data[pos:]
    assert rest.endswith(b"\n"), f"{path}: does not end with a complete END record"
    last_nl = rest.rfind(b"\n", 0, len(rest) - 1)
    end_line, body = rest[last_nl + 1:-1], rest[:last_nl + 1]
    m = re.fullmatch(rb"end (\d+)", end_line)
    assert m, f"{path}: last line is {end_line!r}, not an END record"
    end = int(m.group(1))
    assert end == len(body), f"{path}: END says {end} body bytes, body has {len(body)}"
    return QueueFile(path, records, body, end)


def _split_header(data):
    """(first header field with its continuation lines and CRLF, rest)."""
    pos = 0
    while True:
        nl = data.find(b"\r\n", pos)
        assert nl >= 0, f"unterminated header in {data[:300]!r}"
        pos = nl + 2
        if data[pos:pos + 1] not in (b"\t", b" "):
            return data[:pos], data[pos:]


def split_trace_headers(body):
    """Splits a body into (Received: header, [X-Mxgate-Verdict: headers], message)."""
    assert body.startswith(b"Received: "), f"body does not start with Received: {body[:80]!r}"
    received, rest = _split_header(body)
    verdicts = []
    while rest.startswith(b"X-Mxgate-Verdict: "):
        header, rest = _split_header(rest)
        verdicts.append(header)
    return received, verdicts, rest


# --------------------------------------------------------------------------------------------
# The server


def make_traversable(path):
    """`serve` started as root runs as user mxgate (and admin commands as the owner of
    data_dir): let that user pass through pytest's 0700 temporary directories to its files."""
    if os.geteuid() != 0:
        return
    p = Path(path).resolve()
    for d in (p, *p.parents):
        if d == Path("/"):
            break
        mode = d.stat().st_mode
        if not mode & 0o001:
            os.chmod(d, (mode & 0o7777) | 0o011)   # search only: nothing becomes listable


@pytest.fixture(autouse=True)
def _traversable_tmp_path(request):
    if "tmp_path" in request.fixturenames:
        make_traversable(request.getfixturevalue("tmp_path"))


class MxGate:
    """One `mxgate serve` process with its own config, data_dir and log file."""

    def __init__(self, workdir, *, settings=None, extra_server_lines=(), extra_sections="",
                 tls_files=None, proxy=False, proxy_from="127.0.0.1/32", ipv6=False,
                 ipv6_proxy=False, data_dir=None, tenants=None, store_template=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        make_traversable(self.workdir)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proxy_port = free_port() if proxy else None
        self.ipv6_port = free_port("::1") if ipv6 else None
        self.ipv6_proxy_port = free_port("::1") if ipv6_proxy else None
        self.data_dir = Path(data_dir) if data_dir else self.workdir / "data"
        self.conf_path = self.workdir / "mxgate.conf"
        self.log_path = self.workdir / "mxgate.log"
        self.proc = None
        self.killed = False
        self.sanitizer_report_expected = False   # set by tests that assert on it themselves
        self.tenants = DEFAULT_TENANTS if tenants is None else tenants
        self.store_template = store_template if tenants is None else None

        server = {
            "hostname": HOSTNAME,
            "data_dir": str(self.data_dir),
            "workers": 1,
            "max_sessions": 2000,
            "max_message_size": "25M",
            "max_recipients": 100,
            "max_errors": 10,
            "command_timeout": 300,
            "data_timeout": 180,
        }
        server.update(settings or {})
        self.settings = server
        lines = ["[server]", f"listen = 127.0.0.1:{self.port}"]
        if proxy:
            lines.append(f"listen = 127.0.0.1:{self.proxy_port} proxy")
        if ipv6:
            lines.append(f"listen = [::1]:{self.ipv6_port}")
        if ipv6_proxy:
            lines.append(f"listen = [::1]:{self.ipv6_proxy_port} proxy")
        if proxy or ipv6_proxy:
            lines.append(f"proxy_from = {proxy_from}")
        if tls_files:
            lines += [f"tls_cert = {tls_files[0]}", f"tls_key = {tls_files[1]}"]
        lines += [f"{k} = {v}" for k, v in server.items()]
        lines += list(extra_server_lines)
        lines += ["[log]", "debug = no"]
        if "[delivery]" not in extra_sections:
            # Front-door tests look at queue files after the 250: nothing may deliver them away,
            # whatever happens to listen on the routes' ports on this machine.
            extra_sections += "\n[delivery]\nhold = yes\n"
        self.conf_path.write_text("\n".join(lines) + "\n" + extra_sections)

    # -- paths and files

    @property
    def queue_dir(self):
        return self.data_dir / "queue" / "incoming"

    @property
    def tmp_dir(self):
        return self.data_dir / "queue" / "tmp"

    def queued(self):
        """Paths of the files in queue/incoming, sorted by name (= arrival)."""
        if not self.queue_dir.is_dir():
            return []
        return sorted(p for p in self.queue_dir.iterdir())

    def queued_messages(self):
        return [parse_queue_file(p) for p in self.queued()]

    def queue_file(self, qid):
        assert QID_RE.match(qid), qid
        return parse_queue_file(self.queue_dir / qid)

    def tmp_files(self):
        """Files directly in queue/tmp: a message nothing will finish or reuse (each process
        writes in its own queue/tmp/SLOT, where what it leaves are spares: spare_files)."""
        if not self.tmp_dir.is_dir():
            return []
        return sorted(p for p in self.tmp_dir.iterdir() if not p.is_dir())

    def spare_files(self):
        """Files in the slot directories queue/tmp/SLOT: messages being written and spare
        files kept for reuse (docs/queue-format.md)."""
        if not self.tmp_dir.is_dir():
            return []
        return sorted(p for d in self.tmp_dir.iterdir() if d.is_dir() for p in d.iterdir())

    def log_text(self):
        return self.log_path.read_bytes().decode("utf-8", "replace") if self.log_path.exists() else ""

    def wait_for_log(self, pattern, timeout=5.0):
        """Waits for a regex in the log; returns the match or fails."""
        rx = re.compile(pattern)
        m = wait_until(lambda: rx.search(self.log_text()), timeout)
        assert m, f"log line /{pattern}/ not seen within {timeout}s; log:\n{self.log_text()[-3000:]}"
        return m

    # -- clients

    def raw(self, port=None, **kw):
        return RawSMTP(port or self.port, **kw)

    def smtp(self, **kw):
        """A connected smtplib.SMTP (greeting read)."""
        return smtplib.SMTP(self.host, self.port, local_hostname=CLIENT_HELO,
                            timeout=IO_TIMEOUT, **kw)

    # -- life cycle

    def admin(self, *args):
        """Runs an admin command (`mxgate -c CONF tenant add ...`); fails unless it exits 0."""
        res = run_mxgate("-c", str(self.conf_path), *args, cwd=self.workdir)
        assert res.returncode == 0, f"mxgate {' '.join(args)}: {res.stdout}{res.stderr}"
        return res.stdout

    def provision(self):
        """Creates the tenants and their domains in the policy store under data_dir."""
        for name, (route, domains) in self.tenants.items():
            self.admin("tenant", "add", name, "--route", route)
            for domain in domains:
                self.admin("domain", "add", name, domain)

    def start(self):
        store = self.data_dir / STORE_FILE
        if not store.exists():
            if self.store_template:
                self.data_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.store_template, store)
            else:
                self.provision()
        self.log_file = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [MXGATE_BIN, "-c", str(self.conf_path), "serve"], cwd=self.workdir,
            stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=self.log_file,
            env=sanitizer_env(), start_new_session=True)
        workers = int(self.settings["workers"])
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mxgate exited with {self.proc.returncode} at start; "
                                     f"log:\n{self.log_text()}")
            if self.log_text().count("worker started") >= workers and self._accepts():
                return self
            time.sleep(0.05)
        raise AssertionError(f"mxgate did not come up within {START_TIMEOUT}s; "
                             f"log:\n{self.log_text()}")

    def _accepts(self):
        """One complete greeting + QUIT on the plain listener."""
        try:
            with RawSMTP(self.port, timeout=2) as c:
                c.greeting()
                c.cmd("QUIT")
                c.read_until_closed(2)
            return True
        except (OSError, ConnectionClosed, AssertionError):
            return False

    def kill_all(self):
        """SIGKILL to master and workers (the process group), as a crash or power cut."""
        self.killed = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=STOP_TIMEOUT)

    def stop(self):
        """SIGTERM, bounded wait, SIGKILL. Returns a list of problems (empty when clean)."""
        problems = []
        if self.proc is None:
            return problems
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                problems.append(f"mxgate did not exit within {STOP_TIMEOUT}s of SIGTERM")
        try:   # workers left behind, if any
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(timeout=STOP_TIMEOUT)
        if not self.killed and self.proc.returncode != 0 and not problems:
            problems.append(f"mxgate exited with status {self.proc.returncode}")
        self.log_file.close()
        return problems

    def sanitizer_reports(self):
        log = self.log_text()
        return [m for m in SANITIZER_MARKERS if m in log]


@pytest.fixture(scope="session")
def mxgate_bin():
    if not os.access(MXGATE_BIN, os.X_OK):
        pytest.exit(f"mxgate binary {MXGATE_BIN} not found: run `make asan` or set MXGATE_BIN",
                    returncode=2)
    return MXGATE_BIN


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """A self-signed certificate and key for mx.test.example, made once per session."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={HOSTNAME}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="session")
def default_store(tmp_path_factory, mxgate_bin):
    """A policy store with DEFAULT_TENANTS, provisioned once and copied into each data_dir."""
    srv = MxGate(tmp_path_factory.mktemp("store"))
    srv.provision()
    extra = [p.name for p in srv.data_dir.iterdir() if p.name != STORE_FILE]
    assert not extra, f"the store is more than one file now: {extra}"
    return srv.data_dir / STORE_FILE


@pytest.fixture
def mxgate_factory(tmp_path, mxgate_bin, tls_files, default_store):
    """Starts servers: `mxgate_factory(settings={...}, tls=True, proxy=True, ...)`.

    settings       [server] keys overriding the defaults (e.g. {"max_errors": 3})
    extra_server_lines, extra_sections   raw config lines appended as given
    tls            add tls_cert/tls_key (a session-wide self-signed certificate)
    proxy          add a PROXY listener (srv.proxy_port) and proxy_from
    ipv6           add a plain listener on [::1] (srv.ipv6_port)
    ipv6_proxy     add a PROXY listener on [::1] (srv.ipv6_proxy_port)
    data_dir       use this data_dir instead of a fresh one (kept store: no provisioning)
    tenants        {name: (route, [domains])} for the policy store (default: DEFAULT_TENANTS)
    start          False to get the handle without starting it
    """
    servers = []

    def start(*, tls=False, start=True, **kw):
        srv = MxGate(tmp_path / f"mxgate{len(servers)}", tls_files=tls_files if tls else None,
                     store_template=default_store, **kw)
        servers.append(srv)
        return srv.start() if start else srv

    yield start

    problems = []
    for srv in servers:
        for p in srv.stop():
            problems.append(f"{srv.workdir.name}: {p}")
        if srv.sanitizer_report_expected:
            continue
        found = srv.sanitizer_reports()
        if found:
            problems.append(f"{srv.workdir.name}: sanitizer report ({', '.join(found)}) in "
                            f"{srv.log_path}:\n{srv.log_text()[-6000:]}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def mxgate(mxgate_factory):
    """A server with the default configuration (no TLS, no PROXY listener)."""
    return mxgate_factory()


def run_mxgate(*args, cwd=None, timeout=30):
    """Runs the mxgate CLI with the sanitizer environment; returns CompletedProcess (text)."""
    return subprocess.run([MXGATE_BIN, *args], cwd=cwd, env=sanitizer_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)
