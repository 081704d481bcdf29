"""Test DNSBLs for integration tests: a real rbldnsd, and a scriptable DNS server in front of it.

Rbldnsd -- Debian's /usr/sbin/rbldnsd on 127.0.0.1:<free UDP port>, foreground, serving zones
from data files in a private temporary directory. Every zone has an ip4set dataset, an ip6trie
dataset (ip6trie rather than ip6tset: it can hold single /128 entries with their own code and
TXT, which the RFC 5782 IPv6 test points need) and a small generic dataset that rbldnsd serves
as the TXT record ``mxgate-generation.<zone>``, used to know when a reload has taken effect.

    from rbldnsd_helper import Rbldnsd, FakeDns, query_name

    with Rbldnsd(zones=["bl.test", "dead.test"]) as rbl:   # started, zones served
        rbl.resolver                  # "127.0.0.1:PORT" -- the value for [policy] resolver
        rbl.host, rbl.port            # ("127.0.0.1", PORT)
        rbl.add_zone("dnswl.test", test_entries=False)     # restarts on the same port if running
        rbl.list("bl.test", "192.0.2.10")                  # A 127.0.0.2, no TXT
        rbl.list("bl.test", "192.0.2.11", code="127.0.0.4", txt="Listed: see https://x/?$")
        rbl.list("bl.test", "2001:db8::/32", code="127.0.0.3")  # CIDRs, IPv6 too
        rbl.set_txt("bl.test", "192.0.2.10", "Spam source $")   # TXT for an existing entry
        rbl.unlist("bl.test", "192.0.2.10")
        rbl.list_everything("bl.test", code="127.0.0.2")   # a "dead list" answering for all
        rbl.clear("bl.test", test_entries=True)            # back to only the test entries
        rbl.reload()                  # write the files, SIGHUP, wait until served (implicit
                                      # after every change above unless autoreload=False)
        rbl.stop()                    # also done on leaving the with block

  * Zones: ``Rbldnsd(zones=[...], ttl=300, negative_ttl=120, autoreload=True)``. Each zone has
    an SOA (so NXDOMAIN answers carry a negative TTL of ``negative_ttl``) and its entries get
    TTL ``ttl``. ``test_entries=True`` (default) lists the RFC 5782 test points 127.0.0.2 and
    ::FFFF:7F00:2 (code 127.0.0.2, TXT "RFC 5782 test entry"); 127.0.0.1 and ::FFFF:7F00:1 are
    never listed unless list_everything() is used. A zone without test entries fails mxgate's
    zone health probe.
  * TXT texts are rbldnsd templates: ``$`` becomes the listed address, ``$$`` a dollar sign.
    ``txt=None`` means no TXT record for the entry.
  * Codes are IPv4 addresses; any value is accepted, so error answers such as 127.255.255.254
    or 10.1.2.3 can be served by a real rbldnsd as well.
  * Names outside the served zones get REFUSED from rbldnsd.

FakeDns -- a tiny UDP DNS server in a thread (dnspython) on 127.0.0.1:<free port> that
forwards to an upstream (normally the Rbldnsd) after a delay, or answers by itself. Rules are
chosen per zone suffix; the longest matching suffix wins, else the default rule.

    with FakeDns(upstream=rbl.address) as fake:            # default: forward, no delay
        fake.resolver                                      # "127.0.0.1:PORT"
        fake.set_default(mode="forward", delay=0.05)       # every list answers in 50 ms
        fake.set_zone("slow.test", mode="forward", delay=5.0)
        fake.set_zone("dead.test", mode="drop")            # never answers
        fake.set_zone("refusing.test", mode="refused")     # rcode REFUSED
        fake.set_zone("broken.test", mode="servfail")      # rcode SERVFAIL
        fake.set_zone("gone.test", mode="nxdomain")        # rcode NXDOMAIN for everything
        fake.set_zone("dqs.test", mode="answer", ip="127.255.255.254")  # fixed A answer
        fake.set_zone("hijack.test", mode="answer", ip="10.1.2.3", txt="ad")  # and TXT
        fake.set_zone("junk.test", mode="malformed")       # a packet that is not DNS
        fake.queries                                       # [(qname, qtype), ...] received
        fake.clear_queries()

    Modes: forward | drop | refused | servfail | nxdomain | answer | malformed. ``delay`` (s)
    applies to every mode but drop. FakeDns(upstream=None) works for the modes that do not
    forward.

query_name(ip, zone) -> the DNSBL query name ("4.3.2.1.zone", or 32 IPv6 nibbles + zone).
"""

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset

RBLDNSD = "/usr/sbin/rbldnsd"
LOOPBACK = "127.0.0.1"
GENERATION_LABEL = "mxgate-generation"
TEST_ENTRY_TXT = "RFC 5782 test entry"
TEST_ENTRIES = ("127.0.0.2", "::ffff:7f00:2")
DEFAULT_CODE = "127.0.0.2"
START_TIMEOUT = 10.0
RELOAD_TIMEOUT = 10.0
POLL_INTERVAL = 0.05
QUERY_TIMEOUT = 0.5


def rbldnsd_available():
    """True when rbldnsd is installed (tests skip otherwise)."""
    return os.access(RBLDNSD, os.X_OK)


def query_name(ip, zone):
    """The DNSBL query name for ip in zone (RFC 5782 2.1 / 2.4)."""
    addr = ipaddress.ip_address(ip)
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.version == 4:
        labels = reversed(str(addr).split("."))
    else:
        labels = reversed(addr.exploded.replace(":", ""))
    return ".".join(labels) + "." + zone


def free_udp_port():
    """A loopback UDP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def udp_query(host, port, name, rdtype="A", timeout=QUERY_TIMEOUT):
    """One UDP query; returns the dnspython response or None on timeout."""
    try:
        return dns.query.udp(dns.message.make_query(name, rdtype), host, port=port,
                             timeout=timeout)
    except (dns.exception.Timeout, OSError):
        return None


class _Zone:
    def __init__(self, name, test_entries):
        self.name = name
        self.entries = {}  # network text -> (code, txt or None)
        self.everything = None  # code when the zone lists every address
        if test_entries:
            self.add_test_entries()

    def add_test_entries(self):
        for ip in TEST_ENTRIES:
            self.entries[str(ipaddress.ip_network(ip))] = (DEFAULT_CODE, TEST_ENTRY_TXT)


def _entry_line(net, code, txt):
    value = ":%s:%s" % (code, txt if txt is not None else "")
    return "%s %s\n" % (net, value)


class Rbldnsd:
    """A real rbldnsd on a free loopback port; see the module docstring."""

    def __init__(self, zones=("bl.test",), ttl=300, negative_ttl=120, autoreload=True):
        if not rbldnsd_available():
            raise RuntimeError("rbldnsd is not installed (Debian package rbldnsd)")
        self.host = LOOPBACK
        self.port = None
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.autoreload = autoreload
        self.generation = 0
        self.dir = None
        self.proc = None
        self._mtime = int(time.time()) - 100000
        self._zones = {}
        for z in zones:
            self._zones[z] = _Zone(z, True)

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
        if self.proc:
            return
        if not self._zones:
            raise ValueError("rbldnsd needs at least one zone")
        if self.dir is None:
            self.dir = tempfile.mkdtemp(prefix="mxg-rbldnsd-")
            os.chmod(self.dir, 0o755)  # rbldnsd reads the files as user rbldns
        self._write_all()
        last_err = None
        for _ in range(3):  # the free port may be taken between probe and bind
            port = self.port or free_udp_port()
            try:
                self._spawn(port)
                self.port = port
                self._wait_generation(START_TIMEOUT)
                return
            except RuntimeError as e:
                last_err = e
                self._kill()
                if self.port:  # a restart must keep its port
                    break
        raise RuntimeError("rbldnsd did not start: %s\n%s" % (last_err, self.log()))

    def stop(self):
        self._kill()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def log(self):
        """What rbldnsd printed (start-up, zone loads, errors)."""
        try:
            with open(os.path.join(self.dir, "rbldnsd.log")) as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def _spawn(self, port):
        args = [RBLDNSD, "-n", "-b", "%s/%d" % (self.host, port), "-w", self.dir, "-c", "1",
                "-t", "%d" % self.ttl]
        for z in self._zones:
            args += ["%s:ip4set:%s.v4" % (z, z), "%s:ip6trie:%s.v6" % (z, z),
                     "%s:generic:%s.gen" % (z, z)]
        logf = open(os.path.join(self.dir, "rbldnsd.log"), "ab")
        try:
            self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        finally:
            logf.close()

    def _kill(self):
        if not self.proc:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    # --- zone contents --------------------------------------------------------------------

    def add_zone(self, zone, test_entries=True):
        """Serves one more zone (restarts rbldnsd on the same port when running)."""
        self._zones[zone] = _Zone(zone, test_entries)
        if self.proc:
            self._kill()
            self.start()

    def list(self, zone, ip, code=DEFAULT_CODE, txt=None):
        """Lists an address or CIDR with the A answer code and an optional TXT template."""
        net = str(ipaddress.ip_network(ip, strict=True))
        self._zones[zone].entries[net] = (code, txt)
        self._changed()

    def set_txt(self, zone, ip, txt):
        """Sets (or with None removes) the TXT template of a listed entry."""
        net = str(ipaddress.ip_network(ip, strict=True))
        code, _ = self._zones[zone].entries[net]
        self._zones[zone].entries[net] = (code, txt)
        self._changed()

    def unlist(self, zone, ip):
        net = str(ipaddress.ip_network(ip, strict=True))
        self._zones[zone].entries.pop(net, None)
        self._changed()

    def list_everything(self, zone, code=DEFAULT_CODE, txt=None):
        """Makes the zone answer code for every address, 127.0.0.1 included (a dead list)."""
        self._zones[zone].everything = (code, txt)
        self._changed()

    def clear(self, zone, test_entries=True):
        """Removes every entry (keeps the RFC 5782 test points when test_entries)."""
        z = self._zones[zone]
        z.entries = {}
        z.everything = None
        if test_entries:
            z.add_test_entries()
        self._changed()

    def reload(self):
        """Writes every zone file, signals rbldnsd and waits until the new data is served."""
        self._write_all()
        if self.proc:
            self.proc.send_signal(signal.SIGHUP)
            self._wait_generation(RELOAD_TIMEOUT)

    def _changed(self):
        if self.autoreload and self.proc:
            self.reload()

    # --- files ----------------------------------------------------------------------------

    def _write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.chmod(path + ".tmp", 0o644)
        # rbldnsd notices a change by the mtime in whole seconds: make every write distinct.
        self._mtime += 1
        os.utime(path + ".tmp", (self._mtime, self._mtime))
        os.replace(path + ".tmp", path)

    def _write_all(self):
        self.generation += 1
        for z in self._zones.values():
            v4 = ["$SOA 0 ns.%s. hostmaster.%s. 0 2h 2h 1w %d\n"
                  % (z.name, z.name, self.negative_ttl)]
            v6 = []
            for net, (code, txt) in sorted(z.entries.items()):
                target = v6 if ":" in net else v4
                target.append(_entry_line(net, code, txt))
            if z.everything:
                code, txt = z.everything
                v4 += [_entry_line(n, code, txt) for n in ("0.0.0.0/1", "128.0.0.0/1")]
                v6 += [_entry_line(n, code, txt) for n in ("::/1", "8000::/1")]
            self._write(z.name + ".v4", "".join(v4))
            self._write(z.name + ".v6", "".join(v6))
            self._write(z.name + ".gen", '%s TXT "%d"\n' % (GENERATION_LABEL, self.generation))

    def _wait_generation(self, timeout):
        want = str(self.generation)
        deadline = time.monotonic() + timeout
        pending = set(self._zones)
        while time.monotonic() < deadline:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError("rbldnsd exited with %d" % self.proc.returncode)
            for z in list(pending):
                r = udp_query(self.host, self.port, "%s.%s" % (GENERATION_LABEL, z), "TXT")
                if r is not None and any(
                        b"".join(rd.strings).decode() == want
                        for rrset in r.answer for rd in rrset):
                    pending.discard(z)
            if not pending:
                return
            time.sleep(POLL_INTERVAL)
        raise RuntimeError("rbldnsd did not serve generation %s of %s in time"
                           % (want, ", ".join(sorted(pending))))


class _Rule:
    MODES = ("forward", "drop", "refused", "servfail", "nxdomain", "answer", "malformed")

    def __init__(self, mode="forward", delay=0.0, ip=None, txt=None, ttl=300):
        if mode not in self.MODES:
            raise ValueError("unknown FakeDns mode %r" % mode)
        if mode == "answer" and ip is None:
            raise ValueError("mode 'answer' needs ip=")
        self.mode, self.delay, self.ip, self.txt, self.ttl = mode, delay, ip, txt, ttl


class FakeDns:
    """A scriptable UDP DNS server in a thread; see the module docstring."""

    def __init__(self, upstream=None, mode="forward", delay=0.0, ip=None, txt=None):
        self.upstream = upstream
        self.host = LOOPBACK
        self.port = None
        self.queries = []
        self._default = _Rule(mode, delay, ip, txt)
        self._zones = {}
        self._lock = threading.Lock()
        self._timers = set()
        self._sock = None
        self._thread = None
        self._stopping = threading.Event()

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

    def set_default(self, mode="forward", delay=0.0, ip=None, txt=None):
        with self._lock:
            self._default = _Rule(mode, delay, ip, txt)

    def set_zone(self, zone, mode="forward", delay=0.0, ip=None, txt=None):
        with self._lock:
            self._zones[zone.lower().rstrip(".")] = _Rule(mode, delay, ip, txt)

    def clear_zone(self, zone):
        with self._lock:
            self._zones.pop(zone.lower().rstrip("."), None)

    def clear_queries(self):
        with self._lock:
            self.queries = []

    def start(self):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((self.host, 0))
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="FakeDns", daemon=True)
        self._thread.start()

    def stop(self):
        self._stopping.set()
        if self._thread:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            timers, self._timers = self._timers, set()
        for t in timers:
            t.cancel()
        if self._sock:
            self._sock.close()
            self._sock = None

    # --- serving --------------------------------------------------------------------------

    def _rule_for(self, qname):
        name = qname.lower().rstrip(".")
        best, best_len = self._default, -1
        for zone, rule in self._zones.items():
            if (name == zone or name.endswith("." + zone)) and len(zone) > best_len:
                best, best_len = rule, len(zone)
        return best

    def _serve(self):
        while not self._stopping.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                msg = dns.message.from_wire(data)
                q = msg.question[0]
            except Exception:  # not DNS: ignore, like a real server would
                continue
            qname = q.name.to_text()
            with self._lock:
                self.queries.append((qname.rstrip("."), dns.rdatatype.to_text(q.rdtype)))
                rule = self._rule_for(qname)
            if rule.mode == "drop":
                continue
            if rule.delay > 0:
                t = threading.Timer(rule.delay, self._reply, (msg, peer, rule))
                t.daemon = True
                with self._lock:
                    self._timers.add(t)
                t.start()
            else:
                self._reply(msg, peer, rule)

    def _reply(self, msg, peer, rule):
        with self._lock:
            self._timers = {t for t in self._timers if t.is_alive()}
        wire = self._answer(msg, rule)
        if wire is None or self._stopping.is_set():
            return
        try:
            self._sock.sendto(wire, peer)
        except (OSError, AttributeError):
            pass  # stopped meanwhile

    def _answer(self, msg, rule):
        if rule.mode == "forward":
            if self.upstream is None:
                return None
            r = udp_query(self.upstream[0], self.upstream[1], msg.question[0].name,
                          msg.question[0].rdtype, timeout=2.0)
            if r is None:
                return None
            r.id = msg.id
            return r.to_wire()
        if rule.mode == "malformed":
            return msg.to_wire()[:5]
        r = dns.message.make_response(msg)
        r.flags |= dns.flags.RA
        if rule.mode in ("refused", "servfail", "nxdomain"):
            r.set_rcode({"refused": dns.rcode.REFUSED, "servfail": dns.rcode.SERVFAIL,
                         "nxdomain": dns.rcode.NXDOMAIN}[rule.mode])
            return r.to_wire()
        q = msg.question[0]
        if q.rdtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(q.name, rule.ttl, "IN", "A", rule.ip))
        elif q.rdtype == dns.rdatatype.TXT and rule.txt is not None:
            r.answer.append(dns.rrset.from_text(q.name, rule.ttl, "IN", "TXT",
                                                '"%s"' % rule.txt.replace('"', '\\"')))
        return r.to_wire()
