"""A real DNS server for integration tests: Debian's unbound serving local test zones.

Unbound runs in the foreground as our own process (``unbound -d -c CONF``) on
127.0.0.1:<free port, UDP and TCP>, with a generated configuration in a private temporary
directory: no chroot, no privilege drop, no pidfile, no syslog, no remote control, no trust
anchor, iterator module only. The system service is never started or enabled. Every served
zone is ``local-zone: ZONE static`` with an SOA, so a name without data answers NXDOMAIN and a
name without the asked type answers NOERROR with no records (NODATA), both with the SOA
negative TTL. Names outside every served zone answer REFUSED (``local-zone: "." refuse``), so
unbound never queries the Internet.

    from unbound_helper import Unbound, unbound_available

    with Unbound() as dns:                      # zone "test." served and answering
        dns.resolver                            # "127.0.0.1:PORT" (mxgate's resolver key)
        dns.host, dns.port, dns.address         # "127.0.0.1", PORT, ("127.0.0.1", PORT)
        dns.mx("example.test", (10, "mx1.example.test"), (20, "mx2.example.test"))
        dns.a("mx1.example.test", "127.0.0.1", "127.0.0.2")   # adds A records
        dns.aaaa("mx1.example.test", "::1")                   # adds AAAA records
        dns.addresses("mx2.example.test", "127.0.0.3", "::1") # A or AAAA by family
        dns.null_mx("nomail.test")              # the single record "0 ." (RFC 7505)
        dns.record("x.test", "TXT", '"some text"')  # any type, rdata as in a zone file
        dns.set("example.test", "MX", ["10 a.test.", "20 b.test."])  # replaces the RRset
        dns.remove("example.test", "MX")        # one RRset; remove(name) drops every type
        dns.servfail("broken.test")             # the name and all below it: SERVFAIL
        dns.refuse("refused.test")              # ... REFUSED
        dns.drop("blackhole.test")              # ... no answer at all (client timeout)
        dns.add_zone("example.org")             # one more static zone beside "test."
        with dns.batch():                       # several changes, one restart
            dns.a("h1.test", "127.0.0.1")
            dns.a("h2.test", "127.0.0.2")
        dns.reload()                            # restart on the same port, wait until served
        dns.log()                               # what unbound printed
        dns.stop()                              # also done on leaving the with block

  * ``Unbound(zones=("test.",), ttl=300, negative_ttl=60, autoreload=True)``: ``ttl`` is the
    TTL of every record, ``negative_ttl`` the SOA minimum (RFC 2308). With ``autoreload``
    each change above restarts unbound on the same port and waits until the new data is
    served (bounded by RELOAD_TIMEOUT; a restart takes a few tens of milliseconds); with
    ``autoreload=False`` or inside ``batch()``, changes wait for ``reload()`` (or the end
    of the batch).
  * Names may be given with or without the trailing dot and in any case. A name must be in
    a served zone (ValueError otherwise); ``servfail``/``refuse``/``drop`` take any name.
  * Readiness: the TXT record ``mxgate-generation.<first zone>`` holds a counter bumped on
    every (re)start; start and reload wait until it is served.
  * ``unbound_available(install=True)`` installs the Debian package when it is missing and
    we are root (apt-get, with service start-up disabled through policy-rc.d); tests skip
    when it returns False. ``udp_query(host, port, name, rdtype)`` is one dnspython query
    (None on timeout).
"""

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time

import dns.exception
import dns.message
import dns.query

UNBOUND = "/usr/sbin/unbound"
LOOPBACK = "127.0.0.1"
GENERATION_LABEL = "mxgate-generation"
START_TIMEOUT = 10.0
RELOAD_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
INSTALL_TIMEOUT = 600
POLL_INTERVAL = 0.02
QUERY_TIMEOUT = 0.5
SPAWN_TRIES = 3
POLICY_RC_D = "/usr/sbin/policy-rc.d"


def unbound_available(install=True):
    """True when unbound is installed; installs it first when missing, allowed and root."""
    if os.access(UNBOUND, os.X_OK):
        return True
    if not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    _apt_install("unbound")
    return os.access(UNBOUND, os.X_OK)


def _apt_install(package):
    # policy-rc.d exit 101 keeps the package's service from being started on install; a
    # policy-rc.d already present (containers have one) is left alone.
    own_policy = not os.path.exists(POLICY_RC_D)
    if own_policy:
        with open(POLICY_RC_D, "w") as f:
            f.write("#!/bin/sh\nexit 101\n")
        os.chmod(POLICY_RC_D, 0o755)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    try:
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=INSTALL_TIMEOUT).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=INSTALL_TIMEOUT)
            subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=INSTALL_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        pass
    finally:
        if own_policy:
            os.unlink(POLICY_RC_D)


def free_port(host=LOOPBACK):
    """A loopback port free for both UDP and TCP a moment ago."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind((host, 0))
            port = t.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((host, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free loopback port for UDP and TCP")


def udp_query(host, port, name, rdtype="A", timeout=QUERY_TIMEOUT):
    """One UDP query; returns the dnspython response or None on timeout."""
    try:
        return dns.query.udp(dns.message.make_query(name, rdtype), host, port=port,
                             timeout=timeout)
    except (dns.exception.Timeout, OSError):
        return None


def _fqdn(name):
    name = name.strip().lower()
    return name if name.endswith(".") else name + "."


def _in_zone(name, zone):
    return name == zone or name.endswith("." + zone)


class Unbound:
    """A real unbound on a free loopback port; see the module docstring."""

    def __init__(self, zones=("test.",), ttl=300, negative_ttl=60, autoreload=True):
        if not unbound_available():
            raise RuntimeError("unbound is not installed (Debian package unbound)")
        self.host = LOOPBACK
        self.port = None
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.autoreload = autoreload
        self.generation = 0
        self.dir = None
        self.proc = None
        self._zones = [_fqdn(z) for z in zones]
        if not self._zones or "." in self._zones:
            raise ValueError("unbound needs at least one zone below the root")
        self._rrsets = {}   # (name, TYPE) -> [rdata text, ...], in insertion order
        self._special = {}  # name -> "servfail" | "refuse" | "drop"
        self._batch = 0

    # --- life cycle -----------------------------------------------------------------------

    @property
    def address(self):
        return (self.host, self.port)

    @property
    def resolver(self):
        return "%s:%d" % (self.host, self.port)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        """Writes the configuration, starts unbound and waits until it serves the data."""
        if self.proc:
            return
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="mxg-unbound-")
        last_err = None
        for _ in range(SPAWN_TRIES):  # a fresh port may be taken between probe and bind
            port = self.port or free_port(self.host)
            self.generation += 1
            self._write_conf(port)
            try:
                self._spawn()
                self._wait_generation(port, START_TIMEOUT)
                self.port = port
                return
            except RuntimeError as e:
                last_err = e
                self._kill()
        raise RuntimeError("unbound did not start: %s\n%s" % (last_err, self.log()))

    def stop(self):
        """Stops unbound and removes its directory (idempotent)."""
        self._kill()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def reload(self):
        """Restarts unbound on the same port with the current data and waits until served."""
        if not self.proc:
            return
        self._kill()
        self.start()

    @contextlib.contextmanager
    def batch(self):
        """Changes inside the block are applied by one reload at its end."""
        self._batch += 1
        try:
            yield self
        finally:
            self._batch -= 1
        self._changed()

    def log(self):
        """What unbound printed (start-up, errors)."""
        try:
            with open(os.path.join(self.dir, "unbound.log")) as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def _spawn(self):
        logf = open(os.path.join(self.dir, "unbound.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [UNBOUND, "-d", "-c", os.path.join(self.dir, "unbound.conf")],
                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            logf.close()

    def _kill(self):
        if not self.proc:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def _wait_generation(self, port, timeout):
        want = str(self.generation)
        name = "%s.%s" % (GENERATION_LABEL, self._zones[0])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("unbound exited with %d" % self.proc.returncode)
            r = udp_query(self.host, port, name, "TXT", timeout=0.2)
            if r is not None and any(b"".join(rd.strings).decode() == want
                                     for rrset in r.answer for rd in rrset):
                return
            time.sleep(POLL_INTERVAL)
        raise RuntimeError("unbound did not serve generation %s in time" % want)

    # --- data -----------------------------------------------------------------------------

    def add_zone(self, zone):
        """Serves one more static zone (its names then answer NXDOMAIN unless given data)."""
        zone = _fqdn(zone)
        if zone == ".":
            raise ValueError("the root cannot be a test zone")
        if zone not in self._zones:
            self._zones.append(zone)
        self._changed()

    def record(self, name, rdtype, rdata):
        """Adds one record; rdata as in a zone file ("10 mx.test.", "192.0.2.1", '"txt"')."""
        name = self._check_name(name)
        if "\n" in rdata or ('"' in rdata and "'" in rdata):
            raise ValueError("rdata with a newline or both kinds of quote: %r" % rdata)
        self._rrsets.setdefault((name, rdtype.upper()), []).append(rdata)
        self._changed()

    def set(self, name, rdtype, rdatas):
        """Replaces the RRset of (name, type) with rdatas (an empty list removes it)."""
        with self.batch():
            self.remove(name, rdtype)
            for rd in rdatas:
                self.record(name, rdtype, rd)

    def remove(self, name, rdtype=None):
        """Removes the RRset of (name, type), or every RRset of name when rdtype is None."""
        name = _fqdn(name)
        for key in list(self._rrsets):
            if key[0] == name and (rdtype is None or key[1] == rdtype.upper()):
                del self._rrsets[key]
        self._changed()

    def mx(self, domain, *pairs):
        """Adds MX records, each pair (preference, exchange)."""
        with self.batch():
            for pref, host in pairs:
                self.record(domain, "MX", "%d %s" % (pref, _fqdn(host)))

    def null_mx(self, domain):
        """Makes domain's MX RRset the single null MX "0 ." (RFC 7505)."""
        self.set(domain, "MX", ["0 ."])

    def a(self, name, *ips):
        with self.batch():
            for ip in ips:
                self.record(name, "A", ip)

    def aaaa(self, name, *ips):
        with self.batch():
            for ip in ips:
                self.record(name, "AAAA", ip)

    def addresses(self, name, *ips):
        """Adds A or AAAA records, by the family of each address."""
        with self.batch():
            for ip in ips:
                self.record(name, "AAAA" if ":" in ip else "A", ip)

    def servfail(self, name):
        """Queries for name and below answer SERVFAIL at once."""
        self._set_special(name, "servfail")

    def refuse(self, name):
        """Queries for name and below answer REFUSED."""
        self._set_special(name, "refuse")

    def drop(self, name):
        """Queries for name and below get no answer (the client times out)."""
        self._set_special(name, "drop")

    def clear_special(self, name):
        self._special.pop(_fqdn(name), None)
        self._changed()

    def _set_special(self, name, what):
        self._special[_fqdn(name)] = what
        self._changed()

    def _check_name(self, name):
        name = _fqdn(name)
        if not any(_in_zone(name, z) for z in self._zones):
            raise ValueError("%s is in no served zone (%s)" % (name, ", ".join(self._zones)))
        return name

    def _changed(self):
        if self.autoreload and not self._batch and self.proc:
            self.reload()

    # --- configuration --------------------------------------------------------------------

    def _write_conf(self, port):
        lines = [
            "server:",
            "  interface: %s@%d" % (self.host, port),
            "  do-daemonize: no",
            '  chroot: ""',
            '  username: ""',
            '  pidfile: ""',
            '  directory: "%s"' % self.dir,
            "  use-syslog: no",
            '  logfile: ""',
            "  verbosity: 1",
            "  num-threads: 1",
            "  do-ip6: no",
            '  module-config: "iterator"',
            # The SERVFAIL stubs point at 127.0.0.1, which must stay unqueried: that is what
            # makes unbound fail at once instead of after its retry timeouts.
            "  do-not-query-localhost: yes",
            '  local-zone: "." refuse',
        ]
        for z in self._zones:
            lines.append('  local-zone: "%s" static' % z)
            lines.append('  local-data: "%s %d IN SOA ns.%s hostmaster.%s 1 3600 600 86400 %d"'
                         % (z, self.ttl, z, z, self.negative_ttl))
        lines.append('  local-data: \'%s.%s 0 IN TXT "%d"\''
                     % (GENERATION_LABEL, self._zones[0], self.generation))
        for (name, rdtype), rdatas in self._rrsets.items():
            for rd in rdatas:
                rr = "%s %d IN %s %s" % (name, self.ttl, rdtype, rd)
                lines.append("  local-data: '%s'" % rr if '"' in rr else
                             '  local-data: "%s"' % rr)
        stubs = []
        for name, what in sorted(self._special.items()):
            if what == "servfail":
                lines.append('  local-zone: "%s" transparent' % name)
                stubs += ["stub-zone:", '  name: "%s"' % name, "  stub-addr: 127.0.0.1"]
            elif what == "refuse":
                lines.append('  local-zone: "%s" refuse' % name)
            else:
                lines.append('  local-zone: "%s" deny' % name)
        lines += stubs
        lines += ["remote-control:", "  control-enable: no", ""]
        with open(os.path.join(self.dir, "unbound.conf"), "w") as f:
            f.write("\n".join(lines))
