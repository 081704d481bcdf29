"""The DNSBL test servers of rbldnsd_helper work as the policy tests will rely on them.

Queried with dnspython only: listings with codes and TXT templates, not-listed answers with
their negative TTL, the RFC 5782 test points (IPv4 and IPv6 nibbles), reloads after changes,
zones that fail the health probe, and every FakeDns mode (delay, drop, rcodes, fixed
answers, malformed packets, per-zone rules, concurrency). The C module itself is exercised
against rbldnsd by tests/unit/test_dnsbl_live.c and end to end through mxgate later.
"""
import os
import socket
import threading
import time

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from rbldnsd_helper import FakeDns, Rbldnsd, query_name, rbldnsd_available, udp_query

pytestmark = pytest.mark.skipif(not rbldnsd_available(), reason="rbldnsd is not installed")

SLOW = 0.3
FAST_BOUND = 0.25  # a loopback answer without delay comes well within this


@pytest.fixture(scope="module")
def rbl():
    with Rbldnsd(zones=["bl.test", "dead.test", "all.test"]) as r:
        r.clear("dead.test", test_entries=False)
        r.list_everything("all.test")
        yield r


@pytest.fixture
def fake(rbl):
    with FakeDns(upstream=rbl.address) as f:
        yield f


def ask(server, ip, zone, rdtype="A", timeout=1.0):
    host, port = server.address
    return udp_query(host, port, query_name(ip, zone), rdtype, timeout=timeout)


def a_records(resp):
    return sorted(rd.address for rrset in resp.answer if rrset.rdtype == dns.rdatatype.A
                  for rd in rrset)


def txt_records(resp):
    return [b"".join(rd.strings).decode() for rrset in resp.answer
            if rrset.rdtype == dns.rdatatype.TXT for rd in rrset]


# ---- query names -------------------------------------------------------------------------------

@pytest.mark.parametrize("ip, name", [
    ("192.0.2.1", "1.2.0.192.bl.test"),
    ("127.0.0.2", "2.0.0.127.bl.test"),
    ("::ffff:192.0.2.1", "1.2.0.192.bl.test"),
    ("2001:db8::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test"),
    ("2001:db8:1:2:3:4:567:89ab",
     "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test"),
])
def test_query_name(ip, name):
    assert query_name(ip, "bl.test") == name


# ---- rbldnsd -----------------------------------------------------------------------------------

def test_test_entries(rbl):
    r = ask(rbl, "127.0.0.2", "bl.test")
    assert r.rcode() == dns.rcode.NOERROR and a_records(r) == ["127.0.0.2"]
    assert ask(rbl, "127.0.0.1", "bl.test").rcode() == dns.rcode.NXDOMAIN
    r = ask(rbl, "::ffff:7f00:2", "bl.test")  # asked as IPv4 (mapped)
    assert a_records(r) == ["127.0.0.2"]
    # The RFC 5782 IPv6 test point asked in nibble form.
    host, port = rbl.address
    v6 = ".".join(reversed("00000000000000000000ffff7f000002")) + ".bl.test"
    assert a_records(udp_query(host, port, v6)) == ["127.0.0.2"]
    v6_one = ".".join(reversed("00000000000000000000ffff7f000001")) + ".bl.test"
    assert udp_query(host, port, v6_one).rcode() == dns.rcode.NXDOMAIN


def test_listed_with_code_and_txt(rbl):
    rbl.list("bl.test", "192.0.2.10", code="127.0.0.4", txt="Listed $ see https://bl.test/?$")
    r = ask(rbl, "192.0.2.10", "bl.test")
    assert a_records(r) == ["127.0.0.4"]
    assert r.answer[0].ttl == rbl.ttl
    r = ask(rbl, "192.0.2.10", "bl.test", "TXT")
    assert txt_records(r) == ["Listed 192.0.2.10 see https://bl.test/?192.0.2.10"]
    rbl.set_txt("bl.test", "192.0.2.10", "Costs $$5")
    assert txt_records(ask(rbl, "192.0.2.10", "bl.test", "TXT")) == ["Costs $5"]
    rbl.set_txt("bl.test", "192.0.2.10", None)
    r = ask(rbl, "192.0.2.10", "bl.test", "TXT")
    assert r.rcode() == dns.rcode.NOERROR and txt_records(r) == []


def test_not_listed_has_negative_ttl(rbl):
    r = ask(rbl, "192.0.2.99", "bl.test")
    assert r.rcode() == dns.rcode.NXDOMAIN
    soa = [rrset for rrset in r.authority if rrset.rdtype == dns.rdatatype.SOA]
    assert soa and soa[0][0].minimum == rbl.negative_ttl


def test_cidr_and_ipv6(rbl):
    rbl.list("bl.test", "198.51.100.0/24", code="127.0.0.3")
    rbl.list("bl.test", "2001:db8:1::/48", code="127.0.0.5", txt="v6 $")
    assert a_records(ask(rbl, "198.51.100.77", "bl.test")) == ["127.0.0.3"]
    assert ask(rbl, "198.51.101.1", "bl.test").rcode() == dns.rcode.NXDOMAIN
    assert a_records(ask(rbl, "2001:db8:1::5", "bl.test")) == ["127.0.0.5"]
    assert txt_records(ask(rbl, "2001:db8:1::5", "bl.test", "TXT")) == ["v6 2001:db8:1::5"]
    assert ask(rbl, "2001:db8:2::5", "bl.test").rcode() == dns.rcode.NXDOMAIN


def test_unlist_and_reload(rbl):
    rbl.list("bl.test", "203.0.113.5")
    assert a_records(ask(rbl, "203.0.113.5", "bl.test")) == ["127.0.0.2"]
    rbl.unlist("bl.test", "203.0.113.5")
    assert ask(rbl, "203.0.113.5", "bl.test").rcode() == dns.rcode.NXDOMAIN


def test_error_codes_can_be_served(rbl):
    rbl.list("bl.test", "203.0.113.6", code="127.255.255.254")
    rbl.list("bl.test", "203.0.113.7", code="10.1.2.3")
    assert a_records(ask(rbl, "203.0.113.6", "bl.test")) == ["127.255.255.254"]
    assert a_records(ask(rbl, "203.0.113.7", "bl.test")) == ["10.1.2.3"]


def test_zones_failing_health(rbl):
    # Without its test entry (what mxgate's probe flags as "not listed: NXDOMAIN").
    assert ask(rbl, "127.0.0.2", "dead.test").rcode() == dns.rcode.NXDOMAIN
    # A zone that answers for everything, 127.0.0.1 included.
    assert a_records(ask(rbl, "127.0.0.1", "all.test")) == ["127.0.0.2"]
    assert a_records(ask(rbl, "2001:db8::77", "all.test")) == ["127.0.0.2"]


def test_unserved_zone_is_refused(rbl):
    assert ask(rbl, "192.0.2.1", "other.test").rcode() == dns.rcode.REFUSED


def test_add_zone_keeps_port(rbl):
    port = rbl.port
    rbl.add_zone("late.test")
    assert rbl.port == port
    assert a_records(ask(rbl, "127.0.0.2", "late.test")) == ["127.0.0.2"]
    assert a_records(ask(rbl, "127.0.0.2", "bl.test")) == ["127.0.0.2"]  # others kept


def test_stop_cleans_up():
    r = Rbldnsd(zones=["tmp.test"])
    r.start()
    proc, d = r.proc, r.dir
    assert a_records(ask(r, "127.0.0.2", "tmp.test")) == ["127.0.0.2"]
    r.stop()
    assert proc.poll() is not None
    assert not os.path.exists(d)


# ---- FakeDns -----------------------------------------------------------------------------------

def timed(fn):
    t = time.monotonic()
    result = fn()
    return result, time.monotonic() - t


def test_fake_forwards(rbl, fake):
    r, took = timed(lambda: ask(fake, "127.0.0.2", "bl.test"))
    assert a_records(r) == ["127.0.0.2"] and took < FAST_BOUND
    assert ask(fake, "192.0.2.99", "bl.test").rcode() == dns.rcode.NXDOMAIN
    assert fake.queries[-1] == ("99.2.0.192.bl.test", "A")


def test_fake_slow(fake):
    fake.set_zone("bl.test", mode="forward", delay=SLOW)
    r, took = timed(lambda: ask(fake, "127.0.0.2", "bl.test"))
    assert a_records(r) == ["127.0.0.2"]
    assert SLOW <= took < SLOW + FAST_BOUND
    # Other zones keep the default rule.
    r, took = timed(lambda: ask(fake, "127.0.0.2", "dead.test"))
    assert r.rcode() == dns.rcode.NXDOMAIN and took < FAST_BOUND


def test_fake_concurrent_delays(fake):
    """Three lists answering in 50 ms each take ~50 ms together when asked in parallel."""
    fake.set_default(mode="forward", delay=0.05)
    results = []

    def one(zone):
        results.append(ask(fake, "127.0.0.2", zone))

    threads = [threading.Thread(target=one, args=(z,)) for z in ("bl.test", "all.test", "bl.test")]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert time.monotonic() - t < 0.05 * 3
    assert all(a_records(r) == ["127.0.0.2"] for r in results)


def test_fake_drop(fake):
    fake.set_zone("bl.test", mode="drop")
    assert ask(fake, "127.0.0.2", "bl.test", timeout=0.3) is None
    assert fake.queries == [("2.0.0.127.bl.test", "A")]


@pytest.mark.parametrize("mode, rcode", [
    ("refused", dns.rcode.REFUSED),
    ("servfail", dns.rcode.SERVFAIL),
    ("nxdomain", dns.rcode.NXDOMAIN),
])
def test_fake_rcodes(fake, mode, rcode):
    fake.set_zone("bl.test", mode=mode)
    assert ask(fake, "127.0.0.2", "bl.test").rcode() == rcode


@pytest.mark.parametrize("ip", ["127.255.255.254", "127.255.255.252", "10.1.2.3", "127.0.0.1"])
def test_fake_fixed_answers(fake, ip):
    fake.set_zone("bl.test", mode="answer", ip=ip, txt="fixed reason")
    assert a_records(ask(fake, "192.0.2.1", "bl.test")) == [ip]
    assert a_records(ask(fake, "127.0.0.1", "bl.test")) == [ip]
    assert txt_records(ask(fake, "192.0.2.1", "bl.test", "TXT")) == ["fixed reason"]


def test_fake_answer_with_delay_and_without_upstream():
    with FakeDns(mode="answer", ip="127.0.0.2", delay=SLOW) as f:
        r, took = timed(lambda: ask(f, "192.0.2.1", "any.test"))
        assert a_records(r) == ["127.0.0.2"] and took >= SLOW


def test_fake_malformed(fake):
    fake.set_zone("bl.test", mode="malformed")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1.0)
        s.sendto(dns.message.make_query(query_name("127.0.0.2", "bl.test"), "A").to_wire(),
                 fake.address)
        data = s.recv(512)
    assert len(data) < 12  # not even a DNS header


def test_fake_longest_suffix_wins(fake):
    fake.set_zone("test", mode="refused")
    fake.set_zone("bl.test", mode="forward")
    assert a_records(ask(fake, "127.0.0.2", "bl.test")) == ["127.0.0.2"]
    assert ask(fake, "127.0.0.2", "all.test").rcode() == dns.rcode.REFUSED
    fake.clear_zone("test")
    assert a_records(ask(fake, "127.0.0.2", "all.test")) == ["127.0.0.2"]
