"""The unbound test DNS server of unbound_helper works as the delivery tests will rely on it.

Queried with dnspython only: MX with two preferences, A and AAAA, NXDOMAIN and NODATA with
the SOA negative TTL, the null MX, SERVFAIL / REFUSED / dropped names, replacing and removing
data (restart on the same port), extra zones, batches, and a clean stop. The C module that
reads these answers (src/dns/destination.c) is tested against unbound by
tests/unit/test_destination.c.
"""
import os
import time

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from unbound_helper import Unbound, udp_query, unbound_available

pytestmark = pytest.mark.skipif(not unbound_available(), reason="unbound is not installed")

RESTART_BOUND = 5.0  # seconds: a change restarts unbound well within this


@pytest.fixture(scope="module")
def ub():
    with Unbound(negative_ttl=45) as u:
        with u.batch():
            u.mx("mx2.test", (10, "a.mx2.test"), (20, "b.mx2.test"), (20, "c.mx2.test"))
            u.addresses("a.mx2.test", "127.0.0.1", "::1")
            u.a("b.mx2.test", "127.0.0.2")
            u.aaaa("c.mx2.test", "2001:db8::c")
            u.a("nomx.test", "127.0.0.5")
            u.null_mx("nullmx.test")
        yield u


def ask(server, name, rdtype="A", timeout=1.0):
    return udp_query(server.host, server.port, name, rdtype, timeout=timeout)


def records(resp, rdtype):
    t = dns.rdatatype.from_text(rdtype)
    return sorted(rd.to_text() for rrset in resp.answer if rrset.rdtype == t for rd in rrset)


def soa_minimum(resp):
    return [rd.minimum for rrset in resp.authority if rrset.rdtype == dns.rdatatype.SOA
            for rd in rrset]


def test_address_format(ub):
    assert ub.host == "127.0.0.1"
    assert ub.resolver == "127.0.0.1:%d" % ub.port
    assert ub.address == ("127.0.0.1", ub.port)


def test_mx_two_preferences(ub):
    r = ask(ub, "mx2.test", "MX")
    assert r.rcode() == dns.rcode.NOERROR
    assert records(r, "MX") == ["10 a.mx2.test.", "20 b.mx2.test.", "20 c.mx2.test."]


def test_a_and_aaaa(ub):
    assert records(ask(ub, "a.mx2.test", "A"), "A") == ["127.0.0.1"]
    assert records(ask(ub, "a.mx2.test", "AAAA"), "AAAA") == ["::1"]
    assert records(ask(ub, "c.mx2.test", "AAAA"), "AAAA") == ["2001:db8::c"]
    # TCP is served on the same port.
    r = dns.query.tcp(dns.message.make_query("b.mx2.test", "A"), ub.host, port=ub.port,
                      timeout=1.0)
    assert records(r, "A") == ["127.0.0.2"]


def test_case_and_trailing_dot(ub):
    assert records(ask(ub, "A.MX2.Test.", "A"), "A") == ["127.0.0.1"]


def test_nxdomain(ub):
    r = ask(ub, "nosuch.test", "MX")
    assert r.rcode() == dns.rcode.NXDOMAIN
    assert soa_minimum(r) == [45]


def test_nodata(ub):
    """A name with an A record but no MX: the implicit MX case of RFC 5321 5.1."""
    r = ask(ub, "nomx.test", "MX")
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []
    assert soa_minimum(r) == [45]
    assert records(ask(ub, "c.mx2.test", "A"), "A") == []


def test_null_mx(ub):
    r = ask(ub, "nullmx.test", "MX")
    assert r.rcode() == dns.rcode.NOERROR
    assert records(r, "MX") == ["0 ."]


def test_outside_zones_refused(ub):
    assert ask(ub, "example.com", "A").rcode() == dns.rcode.REFUSED


def test_failure_modes():
    with Unbound() as u:
        with u.batch():
            u.servfail("broken.test")
            u.refuse("refused.test")
            u.drop("blackhole.test")
            u.a("ok.test", "192.0.2.1")
        t0 = time.monotonic()
        assert ask(u, "x.broken.test", "MX").rcode() == dns.rcode.SERVFAIL
        assert ask(u, "broken.test", "A").rcode() == dns.rcode.SERVFAIL
        assert time.monotonic() - t0 < 3.0  # at once, not after unbound's retries
        assert ask(u, "refused.test", "A").rcode() == dns.rcode.REFUSED
        assert ask(u, "blackhole.test", "A", timeout=0.3) is None
        assert records(ask(u, "ok.test"), "A") == ["192.0.2.1"]
        u.clear_special("broken.test")
        assert ask(u, "broken.test", "A").rcode() == dns.rcode.NXDOMAIN


def test_replace_remove_and_restart_keeps_port():
    with Unbound() as u:
        port = u.port
        u.a("h.test", "192.0.2.1")
        assert records(ask(u, "h.test"), "A") == ["192.0.2.1"]
        t0 = time.monotonic()
        u.set("h.test", "A", ["192.0.2.7", "192.0.2.8"])
        assert time.monotonic() - t0 < RESTART_BOUND
        assert u.port == port
        assert records(ask(u, "h.test"), "A") == ["192.0.2.7", "192.0.2.8"]
        u.aaaa("h.test", "2001:db8::7")
        u.remove("h.test", "A")
        assert records(ask(u, "h.test"), "A") == []
        assert records(ask(u, "h.test", "AAAA"), "AAAA") == ["2001:db8::7"]
        u.remove("h.test")
        assert ask(u, "h.test", "AAAA").rcode() == dns.rcode.NXDOMAIN
        u.null_mx("d.test")
        u.mx("d.test", (5, "mx.d.test"))  # added beside the null MX, as a misconfiguration
        assert records(ask(u, "d.test", "MX"), "MX") == ["0 .", "5 mx.d.test."]
        u.null_mx("d.test")  # replaces the RRset again
        assert records(ask(u, "d.test", "MX"), "MX") == ["0 ."]


def test_batch_and_autoreload_off():
    with Unbound(autoreload=False) as u:
        gen = u.generation
        u.a("late.test", "192.0.2.9")
        assert ask(u, "late.test").rcode() == dns.rcode.NXDOMAIN  # not applied yet
        u.reload()
        assert u.generation == gen + 1
        assert records(ask(u, "late.test"), "A") == ["192.0.2.9"]
    with Unbound() as u:
        gen = u.generation
        with u.batch():
            for i in range(5):
                u.a("b%d.test" % i, "192.0.2.%d" % (i + 1))
        assert u.generation == gen + 1  # one restart for the whole batch
        assert records(ask(u, "b4.test"), "A") == ["192.0.2.5"]


def test_extra_zone_and_name_checks():
    with Unbound(zones=["test", "example.org."]) as u:
        u.mx("example.org", (10, "mx.example.org"))
        u.a("mx.example.org", "192.0.2.10")
        assert records(ask(u, "example.org", "MX"), "MX") == ["10 mx.example.org."]
        assert ask(u, "nosuch.example.org").rcode() == dns.rcode.NXDOMAIN
        with pytest.raises(ValueError):
            u.a("mx.example.net", "192.0.2.1")
        u.add_zone("example.net")
        u.a("mx.example.net", "192.0.2.11")
        assert records(ask(u, "mx.example.net"), "A") == ["192.0.2.11"]
        # TXT with quotes and spaces passes through the configuration intact.
        u.record("t.example.org", "TXT", '"v=spf1 -all" "second"')
        r = ask(u, "t.example.org", "TXT")
        assert [b"".join(rd.strings) for rrset in r.answer for rd in rrset] == \
            [b"v=spf1 -allsecond"]


def test_stop_is_clean():
    u = Unbound()
    u.start()
    proc, d = u.proc, u.dir
    assert records(ask(u, "%s.test" % "mxgate-generation", "TXT"), "TXT")
    u.stop()
    assert proc.poll() is not None
    assert u.dir is None and d is not None
    assert not os.path.exists(d)
    u.stop()  # idempotent
