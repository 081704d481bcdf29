"""mxgate is never an open relay: the classic relay tricks against the full server.

One server for the module: tenant "default" serves example.test (and tenant "idn" serves
bücher.example, stored as xn--bcher-kva.example); the clients are presented through the PROXY
listener and have no onprem connector. Each attempt runs in a session of its own, offers the
foreign recipient, then a local one (ok@example.test) and DATA, and checks that the foreign
recipient got no 250 and that the queued message holds only the local recipient -- so a
recipient that slipped through would show up in the queue file, not just in a reply code.

Besides the address forms (percent hack, bang paths, source routes, quoted local parts,
double @, address literals, trailing dots, case, IDN), the clients that are trusted for
something else -- on the tenant's Allow list, on a partner connector, on a DNS allow list --
must not relay either, and a PROXY header from a peer outside proxy_from claiming an onprem
connector's address is closed before a single SMTP byte.
"""
import pytest

from conftest import RawSMTP
from policy_helpers import (Client, assert_reject, dnsbl_section, policy_config, policy_server,
                            proxy_v1)
from rbldnsd_helper import Rbldnsd, rbldnsd_available

pytestmark = pytest.mark.skipif(not rbldnsd_available(), reason="rbldnsd is not installed")

TENANTS = {"default": ("127.0.0.1:2600", ["example.test"]),
           "idn": ("127.0.0.1:2604", ["bücher.example"])}
LOCAL = "ok@example.test"
STRANGER = "192.0.2.200"
ALLOWED = "192.0.2.201"       # on the tenant's IP Allow list
PARTNER = "192.0.2.202"       # on a partner connector of the tenant
DNSWL = "192.0.2.203"         # listed on a negative-weight DNSBL (a DNS allow list)
ONPREM = "192.0.2.210"        # onprem connector of the tenant: only ever claimed, see below
SENDER = "s@client.example"
TENANT_SENDER = "alice@example.test"

SETUP = [
    ("allow", "add", "default", ALLOWED, "--comment", "friend"),
    ("connector", "add", "default", "partner1", "--type", "partner", "--ip", PARTNER),
    ("connector", "add", "default", "hq", "--type", "onprem", "--ip", ONPREM),
]

RELAY = (550, "5.7.1")
SYNTAX = (501, "5.1.3")

# (id, RCPT TO: argument, expected (code, enhanced code)), from a stranger with SENDER
ADDRESS_CASES = [
    ("plain", "<u@victim.example>", RELAY),
    ("percent", "<u%victim.example@example.test>", RELAY),
    ("percent-nested", "<u%victim.example%relay.example@example.test>", RELAY),
    ("percent-uppercase", "<U%VICTIM.EXAMPLE@EXAMPLE.TEST>", RELAY),
    ("percent-idn-domain", "<u%victim.example@xn--bcher-kva.example>", RELAY),
    ("bang", "<victim.example!u@example.test>", RELAY),
    ("bang-nested", "<example.test!victim.example!u@example.test>", RELAY),
    ("bang-no-domain", "<example.test!victim.example!u>", SYNTAX),
    ("source-route", "<@example.test:u@victim.example>", RELAY),
    ("source-route-two-hops", "<@example.test,@x.example:u@victim.example>", RELAY),
    ("source-route-percent", "<@example.test:u%victim.example@example.test>", RELAY),
    ("source-route-literal", "<@[127.0.0.1]:u@victim.example>", SYNTAX),
    ("quoted-at", '<"u@victim.example"@example.test>', RELAY),
    ("quoted-escaped-at", '<"u\\@victim.example"@example.test>', RELAY),
    ("quoted-percent", '<"u%victim.example"@example.test>', RELAY),
    ("quoted-bang", '<"victim.example!u"@example.test>', RELAY),
    ("quoted-plain-foreign", '<"u"@victim.example>', RELAY),
    ("unquoted-escaped-at", "<u\\@victim.example@example.test>", SYNTAX),
    ("double-at", "<u@victim.example@example.test>", SYNTAX),
    ("double-at-reversed", "<u@example.test@victim.example>", SYNTAX),
    ("percent-in-domain", "<u@victim.example%example.test>", SYNTAX),
    ("literal-v4", "<u@[127.0.0.1]>", RELAY),
    ("literal-v4-public", "<u@[192.0.2.1]>", RELAY),
    ("literal-v6", "<u@[IPv6:::1]>", RELAY),
    ("literal-percent", "<u%victim.example@[127.0.0.1]>", RELAY),
    ("literal-quoted-at", '<"u@victim.example"@[IPv6:::1]>', RELAY),
    ("literal-hostname", "<u@[mx.test.example]>", SYNTAX),
    ("trailing-dot-served", "<u@example.test.>", SYNTAX),
    ("trailing-dot-foreign", "<u@victim.example.>", SYNTAX),
    ("uppercase", "<U@VICTIM.EXAMPLE>", RELAY),
    ("subdomain-of-served", "<u@sub.example.test>", RELAY),
    ("served-as-prefix", "<u@example.test.victim.example>", RELAY),
    ("served-as-suffix", "<u@notexample.test>", RELAY),
    ("postmaster-foreign", "<postmaster@victim.example>", RELAY),
    ("postmaster-bare", "<postmaster>", RELAY),     # the gateway's host name: no tenant
    ("punycode-other", "<u@xn--vctim-wqa.example>", RELAY),
    ("no-brackets", "u@victim.example", (501, "5.5.4")),
]


@pytest.fixture(scope="module")
def rbl():
    with Rbldnsd(zones=["dnswl.test"], autoreload=False) as r:
        r.list("dnswl.test", DNSWL, code="127.0.10.2")
        r.reload()
        yield r


@pytest.fixture(scope="module")
def srv(rbl, tmp_path_factory, mxgate_bin):
    sections = (policy_config(rbl.resolver)
                + dnsbl_section("dnswl", "dnswl.test", display_name="Test DNSWL",
                                codes="127.0.0.2-127.0.254.3", weight=-1))
    with policy_server(tmp_path_factory.mktemp("relay"), tenants=TENANTS, setup=SETUP,
                       proxy=True, extra_sections=sections) as s:
        yield s


def queued_foreign(srv, needle):
    """Recipients of any queued message that contain `needle` (case-insensitive)."""
    return [r["rcpt"] for q in srv.queued_messages() for r in q.recipients
            if needle.lower() in r["rcpt"].lower()]


def attempt(srv, ip, rcpt_arg, sender=SENDER, mail_params=""):
    """Offers rcpt_arg, then LOCAL, then DATA; returns (reply to rcpt_arg, queue file)."""
    with Client(srv, ip) as c:
        r = c.cmd(f"MAIL FROM:<{sender}>{mail_params}")
        assert r.code == 250, r
        foreign = c.cmd(f"RCPT TO:{rcpt_arg}")
        local = c.cmd(f"RCPT TO:<{LOCAL}>")
        assert (local.code, local.enhanced) == (250, "2.1.5"), local
        q = srv.queue_file(c.data())
        c.quit()
    assert [r["rcpt"] for r in q.recipients] == [LOCAL], q.recipients
    return foreign, q


def check_refused(srv, ip, reply, expected):
    assert reply.code != 250, reply
    assert (reply.code, reply.enhanced) == expected, reply
    if expected == RELAY:
        assert_reject(srv, reply, ip, rule="relay", texts=["Unable to relay"])


@pytest.mark.parametrize("rcpt_arg, expected",
                         [pytest.param(a, e, id=i) for i, a, e in ADDRESS_CASES])
def test_address_tricks(srv, rcpt_arg, expected):
    reply, _ = attempt(srv, STRANGER, rcpt_arg)
    check_refused(srv, STRANGER, reply, expected)


@pytest.mark.parametrize("sender, label", [
    ("", "null sender"),
    (TENANT_SENDER, "sender in the served domain"),
    ("postmaster@example.test", "postmaster of the served domain"),
])
def test_senders_do_not_open_relay(srv, sender, label):
    reply, _ = attempt(srv, STRANGER, "<u@victim.example>", sender=sender)
    check_refused(srv, STRANGER, reply, RELAY)


@pytest.mark.parametrize("rcpt_arg, expected", [
    ("<u@vïctim.example>", RELAY),
    ("<u%vïctim.example@example.test>", RELAY),
    ("<ü@victim.example>", RELAY),
])
def test_utf8_forms(srv, rcpt_arg, expected):
    reply, _ = attempt(srv, STRANGER, rcpt_arg, mail_params=" SMTPUTF8")
    check_refused(srv, STRANGER, reply, expected)


def test_utf8_without_smtputf8(srv):
    reply, _ = attempt(srv, STRANGER, "<u@vïctim.example>")
    check_refused(srv, STRANGER, reply, (553, "5.6.7"))


@pytest.mark.parametrize("ip", [ALLOWED, PARTNER, DNSWL], ids=["allow-list", "partner-connector",
                                                               "dns-allow-list"])
@pytest.mark.parametrize("rcpt_arg", ["<u@victim.example>", "<u%victim.example@example.test>",
                                      "<@example.test:u@victim.example>"],
                         ids=["plain", "percent", "source-route"])
def test_trusted_clients_do_not_relay(srv, ip, rcpt_arg):
    reply, q = attempt(srv, ip, rcpt_arg, sender=TENANT_SENDER)
    check_refused(srv, ip, reply, RELAY)


def test_trusted_clients_are_trusted_for_local_mail(srv):
    """The reason the three clients above are interesting: each is trusted for something."""
    for ip, reason in [(ALLOWED, "allow-list"), (PARTNER, "dnsbl-clean"),
                       (DNSWL, "dnsbl-clean")]:
        with Client(srv, ip) as c:
            c.mail()
            assert c.rcpt(LOCAL).code == 250
            q = srv.queue_file(c.data())
            c.quit()
        assert f"reason={reason};" in q.verdicts[0], q.verdicts
    assert "dnsbl=listed:dnswl" in q.verdicts[0], q.verdicts


def test_untrusted_proxy_peer_claiming_onprem_address(srv):
    needle = "proxyclaim.example"
    header = proxy_v1(ONPREM)
    commands = (f"EHLO x\r\nMAIL FROM:<{TENANT_SENDER}>\r\nRCPT TO:<u@{needle}>\r\nDATA\r\n"
                "Subject: relayed\r\n\r\nx\r\n.\r\nQUIT\r\n").encode()
    # 127.0.0.2 is a loopback address outside proxy_from (127.0.0.1/32)
    with RawSMTP(srv.proxy_port, source=("127.0.0.2", 0)) as c:
        c.send(header + commands)
        assert c.read_until_closed() == b""
    srv.wait_for_log(r"smtp proxy-refused peer=127\.0\.0\.2 ")
    assert queued_foreign(srv, needle) == []
    # control: the same claim from a trusted peer is an onprem connector, which may relay
    # for the tenant's senders -- so the refusal above is what kept the mail out
    with Client(srv, ONPREM) as c:
        c.mail(TENANT_SENDER)
        r = c.rcpt(f"u@{needle}")
        assert (r.code, r.enhanced) == (250, "2.1.5"), r
        assert c.cmd("RSET").code == 250
        c.quit()
    assert queued_foreign(srv, needle) == []


def test_no_foreign_recipient_was_ever_queued(srv):
    """After every attempt above (module order): nothing for a foreign domain in the queue."""
    for needle in ("victim", "vïctim", "xn--vctim", "relay.example", "x.example", "[",
                   "sub.example.test", "notexample", "mx.test.example"):
        assert queued_foreign(srv, needle) == [], needle


# ---- IDN: the served domain in both forms ------------------------------------------------------

def test_idn_served_domain_in_a_label_form(srv):
    with Client(srv, STRANGER) as c:
        c.mail()
        r = c.rcpt("u@xn--bcher-kva.example")
        assert (r.code, r.enhanced) == (250, "2.1.5"), r
        q = srv.queue_file(c.data())
        c.quit()
    assert q.recipients == [{"rcpt": "u@xn--bcher-kva.example", "rcpt-tenant": "idn",
                             "rcpt-route": "127.0.0.1:2604"}]


def test_idn_served_domain_in_u_label_form(srv):
    with Client(srv, STRANGER) as c:
        r = c.cmd(f"MAIL FROM:<{SENDER}> SMTPUTF8")
        assert r.code == 250, r
        r = c.rcpt("u@bücher.example")
        c.quit()
    assert (r.code, r.enhanced) == (250, "2.1.5"), r
