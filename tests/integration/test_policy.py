"""The policy engine end to end: a real `mxgate serve`, a real rbldnsd on loopback, clients
presented at chosen addresses through the PROXY listener.

Covers every row of docs/policy-precedence.md (relay, ip-block with longest prefix and ties,
partner-tls, ip-allow / onprem-connector over the DNSBLs, dnsbl with TXT, URL, weights and a
keyed zone, default accept), recipients of two tenants in one transaction, the founding case
(with explain, lint and the admin CLI), DNSBL failure modes (error codes, REFUSED, slow and
dead resolvers, unhealthy zones), policy reloads under an open session, and IPv6.

Most rows share one server per module (`srv`), each test with client addresses of its own so
that the per-worker DNSBL cache and the shared store never couple two tests. Tests that change
the policy or need another [policy] section start their own server.
"""
import json
import time

import pytest

from conftest import HOSTNAME, ROUTE, tls_client_context, wait_until
from policy_helpers import (RELOAD_BOUND, Client, admin_run, assert_accept, assert_reject, deliver,
                            dnsbl_section, policy_config, policy_server, rcpt_reply,
                            verdicts_by_tenant, wait_for_reply, zen_section)
from rbldnsd_helper import FakeDns, Rbldnsd, free_udp_port, query_name, rbldnsd_available

pytestmark = pytest.mark.skipif(not rbldnsd_available(), reason="rbldnsd is not installed")

TENANTS = {
    "acme": ("127.0.0.1:2601", ["acme.example"]),
    "beta": ("127.0.0.1:2602", ["beta.example"]),
    "default": (ROUTE, ["example.test"]),
}
BOB, CAROL, DAVE = "bob@acme.example", "carol@beta.example", "dave@example.test"
ACME_SENDER = "alice@acme.example"
FOREIGN = "u@victim.example"

# Client addresses of the shared server, one purpose each.
STRANGER = "192.0.2.10"
ONPREM = "203.0.113.5"            # onprem connector hq of acme (203.0.113.0/28)
ONPREM_LISTED = "203.0.113.6"     # same connector, listed on ZEN
PARTNER = "203.0.113.70"          # partner connector partner1 of acme (203.0.113.64/28)
SECURE = "203.0.113.130"          # partner connector secure of acme, --require-tls
ONPREM_BLOCKED = "203.0.113.7"    # on connector hq and on acme's Block list
SECURE_ALLOWED = "203.0.113.131"  # on connector secure and on acme's Allow list
SECURE_LISTED = "203.0.113.132"   # on connector secure, listed on ZEN
ALLOWED = "192.0.2.20"            # acme Allow 192.0.2.20/32
BLOCKED = "192.0.2.30"            # acme Block 192.0.2.30/32
TIE = "192.0.2.50"                # acme Allow and Block 192.0.2.48/29
ALLOWED_LISTED = "192.0.2.60"     # acme Allow, listed on ZEN
ZEN_ONLY = "192.0.2.70"           # listed on ZEN only, with TXT
DQS_ONLY = "192.0.2.71"           # listed on the keyed zone only
HALF_BOTH = "192.0.2.80"          # weight 1 + weight 1 = threshold 2
HALF_ONE = "192.0.2.81"           # weight 1 < threshold
ZEN_AND_DNSWL = "192.0.2.82"      # 2 - 2 = 0
CLEAN = "192.0.2.90"
TWO_TENANTS = "192.0.2.100"       # beta Block
BETA_FRIEND = "192.0.2.101"       # beta Allow, listed on ZEN
V6_BLOCKED = "2001:db8::25"       # acme Block 2001:db8::/48
V6_LISTED = "2001:db8:1::7"       # listed on ZEN (nibble query)

SETUP = [
    ("connector", "add", "acme", "hq", "--type", "onprem", "--ip", "203.0.113.0/28"),
    ("connector", "add", "acme", "partner1", "--type", "partner", "--ip", "203.0.113.64/28"),
    ("connector", "add", "acme", "secure", "--type", "partner", "--ip", "203.0.113.128/28",
     "--require-tls"),
    ("allow", "add", "acme", ALLOWED, "--comment", "friendly"),
    ("block", "add", "acme", BLOCKED, "--comment", "spam source"),
    ("block", "add", "acme", "100.64.0.0/16", "--comment", "wide block"),
    ("allow", "add", "acme", "100.64.1.0/24", "--comment", "partner net"),
    ("block", "add", "acme", "100.64.1.7/32", "--comment", "bad host"),
    ("allow", "add", "acme", "192.0.2.48/29", "--comment", "tie allow"),
    ("block", "add", "acme", "192.0.2.48/29", "--comment", "tie block"),
    ("allow", "add", "acme", ALLOWED_LISTED, "--comment", "listed friend"),
    ("block", "add", "beta", TWO_TENANTS, "--comment", "beta says no"),
    ("allow", "add", "beta", BETA_FRIEND, "--comment", "beta friend"),
    ("block", "add", "acme", "2001:db8::/48", "--comment", "v6 net"),
    ("block", "add", "acme", ONPREM_BLOCKED, "--comment", "compromised"),
    ("allow", "add", "acme", SECURE_ALLOWED, "--comment", "secure friend"),
]

ZONES = ["zen.test", "secretkey123.zen.test", "halfa.test", "halfb.test", "dnswl.test",
         "bad.test", "nohealth.test", "all.test", "founding.test"]


@pytest.fixture(scope="module")
def rbl():
    with Rbldnsd(zones=ZONES, autoreload=False) as r:
        for ip in (ALLOWED_LISTED, ONPREM_LISTED, ZEN_AND_DNSWL, BETA_FRIEND, SECURE_LISTED):
            r.list("zen.test", ip)
        r.list("zen.test", ZEN_ONLY, code="127.0.0.4", txt="Listed for spam from $")
        r.list("zen.test", V6_LISTED, code="127.0.0.3", txt="v6 listed $")
        r.list("secretkey123.zen.test", DQS_ONLY, txt="DQS listing $")
        r.list("halfa.test", HALF_BOTH)
        r.list("halfa.test", HALF_ONE)
        r.list("halfb.test", HALF_BOTH)
        r.list("dnswl.test", ZEN_AND_DNSWL)
        # failure-mode zones, used by servers of their own
        for ip in ("192.0.2.111", "192.0.2.112", "192.0.2.113", "192.0.2.114", "192.0.2.115",
                   "192.0.2.119"):
            r.list("bad.test", ip)
        r.clear("nohealth.test", test_entries=False)
        r.list("nohealth.test", "192.0.2.120")
        r.list_everything("all.test")
        r.list("founding.test", "198.51.100.25", code="127.0.0.2", txt="Founding listing $")
        r.reload()
        yield r


def main_sections(resolver):
    return (policy_config(resolver, threshold=2)
            + zen_section(weight=2)
            + dnsbl_section("dqs", "secretkey123.zen.test", display_name="Test DQS",
                            display_zone="zen.test", weight=2, txt=True)
            + dnsbl_section("halfa", "halfa.test", display_name="Half A", weight=1)
            + dnsbl_section("halfb", "halfb.test", display_name="Half B", weight=1)
            + dnsbl_section("dnswl", "dnswl.test", display_name="Test DNSWL", weight=-2))


@pytest.fixture(scope="module")
def srv(rbl, tmp_path_factory, tls_files, mxgate_bin):
    with policy_server(tmp_path_factory.mktemp("policy"), tenants=TENANTS, setup=SETUP,
                       proxy=True, tls_files=tls_files,
                       extra_sections=main_sections(rbl.resolver)) as s:
        yield s


# ---- rule 1: relay ----------------------------------------------------------------------------

def test_relay_denied_without_connector(srv):
    r = rcpt_reply(srv, STRANGER, FOREIGN, sender=ACME_SENDER)
    assert_reject(srv, r, STRANGER, rule="relay", texts=[
        "Unable to relay: victim.example is not a domain this gateway serves, and client "
        f"[{STRANGER}] is not an on-premises connector of any tenant"])


def test_relay_allowed_for_onprem_connector_with_tenant_sender(srv):
    replies, q = deliver(srv, ONPREM, [FOREIGN], sender=ACME_SENDER)
    assert_accept(replies[0])
    assert q.recipients == [{"rcpt": FOREIGN, "rcpt-tenant": "acme", "rcpt-route": "mx"}]
    v = verdicts_by_tenant(q)["acme"]
    assert v["reason"] == "onprem-relay" and v["rule"] == "onprem-relay", v
    assert v["action"] == "accept" and v["client"] == f"[{ONPREM}]", v
    assert v["list"] == "onprem connector hq" and v["gateway"] == HOSTNAME, v
    assert len(q.verdicts) == 1


def test_relay_sender_domain_is_case_insensitive(srv):
    with Client(srv, ONPREM) as c:
        c.mail("Alice@ACME.Example")
        assert_accept(c.rcpt("u2@victim.example"))
        c.quit()


def test_relay_denied_for_onprem_connector_with_foreign_sender(srv):
    r = rcpt_reply(srv, ONPREM, FOREIGN, sender="mallory@foreign.example")
    assert_reject(srv, r, ONPREM, rule="relay", texts=[
        f"Unable to relay to victim.example: client [{ONPREM}] is on-premises connector hq of "
        "tenant acme, but the sender domain foreign.example is not one of that tenant's domains"])


def test_relay_denied_for_onprem_connector_with_null_sender(srv):
    with Client(srv, ONPREM) as c:
        c.mail("")
        r = c.rcpt(FOREIGN)
    assert_reject(srv, r, ONPREM, rule="relay",
                  texts=["connector hq of tenant acme", "sender domain (null sender)"])


def test_partner_connector_never_relays(srv):
    r = rcpt_reply(srv, PARTNER, FOREIGN, sender=ACME_SENDER)
    assert_reject(srv, r, PARTNER, rule="relay",
                  texts=["Unable to relay: victim.example is not a domain this gateway serves"])
    # the same client is an ordinary sender for the tenant's own domain
    assert_accept(rcpt_reply(srv, PARTNER, BOB))


def test_allow_entry_never_opens_relay(srv):
    r = rcpt_reply(srv, ALLOWED, FOREIGN, sender=ACME_SENDER)
    assert_reject(srv, r, ALLOWED, rule="relay", texts=["Unable to relay", "victim.example"])


# ---- rule 2: IP Allow and Block lists ---------------------------------------------------------

def test_block_list_rejects_naming_list_and_entry(srv):
    r = rcpt_reply(srv, BLOCKED, BOB)
    _, line = assert_reject(srv, r, BLOCKED, rule="ip-block", texts=[
        f"Service unavailable; client [{BLOCKED}] blocked by acme.example using its IP Block "
        "list (entry 192.0.2.30/32 (spam source))"])
    assert 'list="IP Block list of tenant acme"' in line, line
    assert 'entry="192.0.2.30/32 (spam source)"' in line, line


@pytest.mark.parametrize("ip, action, entry", [
    ("100.64.2.1", "reject", "100.64.0.0/16 (wide block)"),
    ("100.64.1.1", "accept", "100.64.1.0/24 (partner net)"),
    ("100.64.1.7", "reject", "100.64.1.7/32 (bad host)"),
])
def test_longest_prefix_wins(srv, ip, action, entry):
    if action == "reject":
        assert_reject(srv, rcpt_reply(srv, ip, BOB), ip, rule="ip-block",
                      texts=["IP Block list", f"(entry {entry})"])
        return
    replies, q = deliver(srv, ip, [BOB])
    assert_accept(replies[0])
    v = verdicts_by_tenant(q)["acme"]
    assert (v["reason"], v["rule"], v["entry"]) == ("allow-list", "ip-allow", entry), v


def test_exact_tie_block_wins(srv):
    assert_reject(srv, rcpt_reply(srv, TIE, BOB), TIE, rule="ip-block",
                  texts=["IP Block list (entry 192.0.2.48/29 (tie block))"])


# ---- rule 3: partner connector requiring TLS --------------------------------------------------

def test_partner_require_tls_without_tls(srv):
    r = rcpt_reply(srv, SECURE, BOB)
    _, line = assert_reject(srv, r, SECURE, code=530, enh="5.7.0", rule="partner-tls", texts=[
        "Must issue a STARTTLS command first: partner connector secure of tenant acme requires "
        "TLS"])
    assert 'list="partner connector secure"' in line
    # the connector belongs to acme: another tenant's recipients are not affected
    assert_accept(rcpt_reply(srv, SECURE, CAROL))


def test_partner_require_tls_after_starttls(srv):
    with Client(srv, SECURE) as c:
        assert c.cmd("STARTTLS").code == 220
        c.starttls(tls_client_context())
        c.ehlo()
        c.mail()
        assert_accept(c.rcpt(BOB))
        q = srv.queue_file(c.data())
        c.quit()
    v = verdicts_by_tenant(q)["acme"]
    assert v["reason"] == "dnsbl-clean" and v["rule"] == "default", v


def tls_rcpt(srv, ip, rcpt):
    """RCPT reply in a session that did STARTTLS first."""
    with Client(srv, ip) as c:
        assert c.cmd("STARTTLS").code == 220
        c.starttls(tls_client_context())
        c.ehlo()
        c.mail()
        r = c.rcpt(rcpt)
        c.quit()
        return r


def test_block_before_onprem_connector(srv):
    """Rule 2 runs before rule 4: a Block entry rejects a client on an onprem connector."""
    assert_reject(srv, rcpt_reply(srv, ONPREM_BLOCKED, BOB), ONPREM_BLOCKED, rule="ip-block",
                  texts=[f"(entry {ONPREM_BLOCKED}/32 (compromised))"])


def test_partner_tls_before_allow_entry(srv):
    """Rule 3 runs before rule 4: an Allow entry does not excuse a missing STARTTLS."""
    assert_reject(srv, rcpt_reply(srv, SECURE_ALLOWED, BOB), SECURE_ALLOWED, code=530,
                  enh="5.7.0", rule="partner-tls", texts=["partner connector secure"])
    assert_accept(tls_rcpt(srv, SECURE_ALLOWED, BOB))


def test_partner_connector_does_not_skip_dnsbl(srv):
    """Only Allow entries and onprem connectors skip the DNSBLs (rule 4), not a partner."""
    assert_reject(srv, tls_rcpt(srv, SECURE_LISTED, BOB), SECURE_LISTED, rule="dnsbl",
                  texts=["blocked using Test ZEN"])


# ---- rule 4: Allow and onprem connector over the DNSBLs ---------------------------------------

def test_allow_entry_accepts_despite_dnsbl_listing(srv):
    replies, q = deliver(srv, ALLOWED_LISTED, [BOB])
    assert_accept(replies[0])
    v = verdicts_by_tenant(q)["acme"]
    assert v["reason"] == "allow-list" and v["rule"] == "ip-allow", v
    assert v["dnsbl"] == "listed:zen", v
    assert v["list"] == "IP Allow list of tenant acme", v
    assert v["entry"] == f"{ALLOWED_LISTED}/32 (listed friend)", v


def test_onprem_connector_accepts_despite_dnsbl_listing(srv):
    replies, q = deliver(srv, ONPREM_LISTED, [BOB])
    assert_accept(replies[0])
    v = verdicts_by_tenant(q)["acme"]
    assert v["reason"] == "onprem-connector" and v["rule"] == "onprem-connector", v
    assert v["dnsbl"] == "listed:zen" and v["list"] == "onprem connector hq", v
    # for another tenant the connector is nobody: the listing rejects
    assert_reject(srv, rcpt_reply(srv, ONPREM_LISTED, CAROL), ONPREM_LISTED, rule="dnsbl",
                  texts=["blocked using Test ZEN"])


# ---- rule 5: DNSBL score ----------------------------------------------------------------------

def test_dnsbl_listing_rejects_naming_the_list(srv):
    r = rcpt_reply(srv, ZEN_ONLY, BOB)
    _, line = assert_reject(srv, r, ZEN_ONLY, rule="dnsbl", texts=[
        f"Service unavailable; client [{ZEN_ONLY}] blocked using Test ZEN "
        f"(Listed for spam from {ZEN_ONLY}); see https://lookup.test/?ip={ZEN_ONLY}"],
        absent=["zen.test", "{ip}"])
    assert 'list="Test ZEN"' in line, line
    assert "zen.test" not in line, line


def test_keyed_zone_never_shows_its_key(srv):
    r = rcpt_reply(srv, DQS_ONLY, BOB)
    _, line = assert_reject(srv, r, DQS_ONLY, rule="dnsbl",
                            texts=[f"blocked using Test DQS (DQS listing {DQS_ONLY})"],
                            absent=["secretkey123"])
    assert "secretkey123" not in line
    # an error answer of the same list is logged too, and must not show the key either
    assert "secretkey123" not in srv.log_text()


def test_keyed_zone_not_shown_by_explain(srv):
    for args in ([DQS_ONLY, "--rcpt", BOB], [DQS_ONLY, "--rcpt", BOB, "--json"]):
        res = admin_run(srv, "explain", *args)
        assert res.returncode == 1, res.stdout + res.stderr
        assert "Test DQS" in res.stdout
        assert "secretkey123" not in res.stdout + res.stderr, res.stdout + res.stderr


def test_not_listed_is_accepted_dnsbl_clean(srv):
    replies, q = deliver(srv, CLEAN, [BOB])
    assert_accept(replies[0])
    v = verdicts_by_tenant(q)["acme"]
    assert (v["reason"], v["rule"], v["dnsbl"]) == ("dnsbl-clean", "default", "clean"), v


def test_two_lists_reach_the_threshold_together(srv):
    r = rcpt_reply(srv, HALF_BOTH, BOB)
    assert_reject(srv, r, HALF_BOTH, rule="dnsbl",
                  texts=[f"client [{HALF_BOTH}] blocked using Half A, Half B"])


def test_one_list_below_the_threshold_is_accepted(srv):
    replies, q = deliver(srv, HALF_ONE, [BOB])
    assert_accept(replies[0])
    assert verdicts_by_tenant(q)["acme"]["dnsbl"] == "listed:halfa"


def test_negative_weight_list_lowers_the_score(srv):
    replies, q = deliver(srv, ZEN_AND_DNSWL, [BOB])
    assert_accept(replies[0])
    v = verdicts_by_tenant(q)["acme"]
    assert v["rule"] == "default", v
    assert set(v["dnsbl"].split(",")) == {"listed:zen", "listed:dnswl"}, v


# ---- recipients of several tenants ------------------------------------------------------------

def test_two_tenants_get_independent_verdicts(srv):
    alice = "alice@acme.example"
    replies, q = deliver(srv, TWO_TENANTS, [BOB, CAROL, alice, DAVE])
    assert_accept(replies[0])
    assert_reject(srv, replies[1], TWO_TENANTS, rule="ip-block",
                  texts=["blocked by beta.example using its IP Block list "
                         "(entry 192.0.2.100/32 (beta says no))"])
    assert_accept(replies[2])
    assert_accept(replies[3])
    assert [r["rcpt"] for r in q.recipients] == [BOB, alice, DAVE]
    assert [r["rcpt-tenant"] for r in q.recipients] == ["acme", "acme", "default"]
    assert [r["rcpt-route"] for r in q.recipients] == ["127.0.0.1:2601", "127.0.0.1:2601", ROUTE]
    assert CAROL.encode() not in q.body
    assert len(q.verdicts) == 2, q.verdicts
    assert set(verdicts_by_tenant(q)) == {"acme", "default"}


def test_allow_entry_of_one_tenant_does_not_help_another(srv):
    replies, q = deliver(srv, BETA_FRIEND, [CAROL, BOB])
    assert_accept(replies[0])
    assert_reject(srv, replies[1], BETA_FRIEND, rule="dnsbl", texts=["blocked using Test ZEN"])
    assert [r["rcpt"] for r in q.recipients] == [CAROL]
    v = verdicts_by_tenant(q)
    assert list(v) == ["beta"] and v["beta"]["reason"] == "allow-list", v


# ---- IPv6 -------------------------------------------------------------------------------------

def test_ipv6_block_range(srv):
    r = rcpt_reply(srv, V6_BLOCKED, BOB)
    assert_reject(srv, r, V6_BLOCKED, rule="ip-block",
                  texts=["IP Block list (entry 2001:db8::/48 (v6 net))"])


def test_ipv6_dnsbl_listing(srv, rbl):
    r = rcpt_reply(srv, V6_LISTED, BOB)
    assert_reject(srv, r, V6_LISTED, rule="dnsbl", texts=[
        f"blocked using Test ZEN (v6 listed {V6_LISTED}); see https://lookup.test/?ip={V6_LISTED}"])


# ---- the founding case ------------------------------------------------------------------------

FOUNDING_IP = "198.51.100.25"


def founding_server(tmp_path_factory, rbl):
    return policy_server(
        tmp_path_factory.mktemp("founding"), proxy=True,
        tenants={"acme": ("127.0.0.1:2601", ["acme.example"])},
        setup=[("connector", "add", "acme", "relay1", "--type", "onprem", "--ip",
                "198.51.100.0/24"),
               ("allow", "add", "acme", FOUNDING_IP, "--comment", "partner relay")],
        extra_sections=policy_config(rbl.resolver) + zen_section(zone="founding.test"))


def test_founding_case(rbl, tmp_path_factory, mxgate_bin):
    with founding_server(tmp_path_factory, rbl) as srv:
        # on connector + Allow list + listed: accepted, and the header shows the listing
        replies, q = deliver(srv, FOUNDING_IP, [BOB])
        assert_accept(replies[0])
        v = verdicts_by_tenant(q)["acme"]
        assert (v["reason"], v["rule"], v["dnsbl"]) == ("allow-list", "ip-allow", "listed:zen"), v
        assert v["entry"] == f"{FOUNDING_IP}/32 (partner relay)", v

        res = admin_run(srv, "lint")
        assert res.returncode == 1, res.stdout + res.stderr
        assert res.stdout.count("warning [connector-allow-overlap] tenant acme: onprem "
                                "connector relay1 range 198.51.100.0/24 overlaps IP Allow "
                                f"entry {FOUNDING_IP}/32") == 1, res.stdout

        res = admin_run(srv, "explain", FOUNDING_IP, "--rcpt", BOB)
        assert res.returncode == 0, res.stdout + res.stderr
        out = res.stdout
        assert "onprem connector relay1 of tenant acme matches by IP range 198.51.100.0/24" in out
        assert (f'Allow list entry {FOUNDING_IP}/32 "partner relay" matches '
                "<- most specific (wins)") in out, out
        assert f'Test ZEN: listed 127.0.0.2 "Founding listing {FOUNDING_IP}"' in out, out
        assert "accept by rule ip-allow" in out, out
        assert out.rstrip().endswith("reply: 250 2.1.5 Ok"), out

        # without the Allow entry the onprem connector still accepts (rule 4) ...
        srv.admin("allow", "remove", "acme", FOUNDING_IP)
        last = []

        def reason():
            replies, q = deliver(srv, FOUNDING_IP, [BOB])
            assert_accept(replies[0])
            last[:] = [verdicts_by_tenant(q)["acme"]]
            return last[0]["reason"] == "onprem-connector"

        assert wait_until(reason, RELOAD_BOUND), last
        assert last[0]["dnsbl"] == "listed:zen" and last[0]["list"] == "onprem connector relay1"
        # ... and without both the reply names the list
        srv.admin("connector", "remove", "acme", "relay1")
        r, waited = wait_for_reply(srv, FOUNDING_IP, BOB, lambda r: r.code == 550)
        assert_reject(srv, r, FOUNDING_IP, rule="dnsbl", texts=[
            f"Service unavailable; client [{FOUNDING_IP}] blocked using Test ZEN (Founding "
            f"listing {FOUNDING_IP}); see https://lookup.test/?ip={FOUNDING_IP}"])
        assert waited < 1.0 + 0.5, waited


def test_founding_case_lint_warns_connector_listed(rbl, tmp_path_factory, mxgate_bin):
    with founding_server(tmp_path_factory, rbl) as srv:
        res = admin_run(srv, "lint", "--json")
        assert res.returncode == 1, res.stderr
        checks = [f["check"] for f in json.loads(res.stdout)]
        assert "connector-allow-overlap" in checks, checks
        assert "connector-listed" in checks, checks


# ---- DNSBL failure modes ----------------------------------------------------------------------

ERR_CASES = {   # client -> FakeDns rule for its query name in bad.test
    "192.0.2.111": dict(mode="answer", ip="127.255.255.254"),
    "192.0.2.112": dict(mode="answer", ip="10.1.2.3"),
    "192.0.2.113": dict(mode="refused"),
    "192.0.2.114": dict(mode="answer", ip="127.0.0.1"),
}
SLOW = "192.0.2.115"
HOSTILE_TXT = "192.0.2.117"  # listed, TXT with CR LF and a fake reply line
SLOW_PIPELINED = "192.0.2.118"
SLOW_GONE = "192.0.2.122"
BAD_LISTED = "192.0.2.119"   # listed for real on bad.test: the list is live in this server
FAIL_TIMEOUT_MS = 500


@pytest.fixture(scope="module")
def fake(rbl):
    with FakeDns(upstream=rbl.address) as f:
        for ip, rule in ERR_CASES.items():
            f.set_zone(query_name(ip, "bad.test"), **rule)
        for ip in (SLOW, SLOW_PIPELINED, SLOW_GONE):
            f.set_zone(query_name(ip, "bad.test"), mode="forward", delay=3.0)
        f.set_zone(query_name(HOSTILE_TXT, "bad.test"), mode="answer", ip="127.0.0.2",
                   txt="evil\\013\\010250 2.1.5 Ok\\013\\010")
        yield f


@pytest.fixture(scope="module")
def fail_srv(fake, tmp_path_factory, mxgate_bin):
    with policy_server(tmp_path_factory.mktemp("dnsfail"), tenants=TENANTS, proxy=True,
                       extra_sections=policy_config(fake.resolver, timeout_ms=FAIL_TIMEOUT_MS)
                       + dnsbl_section("bad", "bad.test", display_name="Bad List", txt=True)) as s:
        yield s


def test_failure_server_list_is_live(fail_srv):
    assert_reject(fail_srv, rcpt_reply(fail_srv, BAD_LISTED, BOB), BAD_LISTED, rule="dnsbl",
                  texts=["blocked using Bad List"])


@pytest.mark.parametrize("ip", sorted(ERR_CASES))
def test_list_error_answers_are_never_a_listing(fail_srv, ip):
    replies, q = deliver(fail_srv, ip, [BOB])
    assert_accept(replies[0])
    v = verdicts_by_tenant(q)["acme"]
    assert v["dnsbl"] == "error:bad" and v["reason"] == "dnsbl-clean", v
    fail_srv.wait_for_log(rf'dnsbl answer list=bad zone="Bad List" ip={ip} state=list-error ')


def test_slow_dnsbl_fails_open_within_the_timeout(fail_srv):
    with Client(fail_srv, SLOW) as c:
        c.mail()
        r = c.rcpt(BOB, timeout=3.0)
        waited = time.monotonic() - c.t_connect
        assert_accept(r)
        q = fail_srv.queue_file(c.data())
        c.quit()
    assert FAIL_TIMEOUT_MS / 1000 * 0.9 <= waited <= 1.5, waited
    v = verdicts_by_tenant(q)["acme"]
    assert v["reason"] == "dnsbl-timeout" and "timeout:bad" in v["dnsbl"], v
    fail_srv.wait_for_log(rf"policy dnsbl-timeout ip={SLOW} dnsbl=timeout:bad")


def test_hostile_txt_cannot_add_reply_lines(fail_srv):
    with Client(fail_srv, HOSTILE_TXT) as c:
        c.mail()
        r = c.rcpt(BOB)
        assert_reject(fail_srv, r, HOSTILE_TXT, rule="dnsbl",
                      texts=["blocked using Bad List (evil250 2.1.5 Ok)"])
        assert len(r.lines) == 1 and b"\r" not in r.raw[:-2] and b"\n" not in r.raw[:-2], r
        assert c.nothing_more(0.3), c.buf
        assert c.cmd("NOOP").code == 250


def test_pipelined_rcpts_wait_for_a_slow_dnsbl_in_order(fail_srv):
    with Client(fail_srv, SLOW_PIPELINED) as c:
        c.send(f"MAIL FROM:<s@client.example>\r\nRCPT TO:<{BOB}>\r\nRCPT TO:<{CAROL}>\r\n"
               f"RCPT TO:<{FOREIGN}>\r\nRCPT TO:<{DAVE}>\r\nNOOP\r\n")
        replies = c.replies(6, timeout=3.0)
        waited = time.monotonic() - c.t_connect
        assert [r.code for r in replies] == [250, 250, 250, 550, 250, 250], replies
        assert_reject(fail_srv, replies[3], SLOW_PIPELINED, rule="relay",
                      texts=["Unable to relay: victim.example is not a domain this gateway"])
        q = fail_srv.queue_file(c.data())
        c.quit()
    assert waited <= 1.5, waited
    assert [r["rcpt"] for r in q.recipients] == [BOB, CAROL, DAVE]
    assert {t: v["reason"] for t, v in verdicts_by_tenant(q).items()} == {
        "acme": "dnsbl-timeout", "beta": "dnsbl-timeout", "default": "dnsbl-timeout"}


def test_client_gone_while_rcpt_waits_for_dnsbl(fail_srv):
    """The verdict arrives (at the deadline) for a session that no longer exists: the server
    must drop it (ASan checks at teardown) and go on serving."""
    with Client(fail_srv, SLOW_GONE) as c:
        c.mail()
        c.send(f"RCPT TO:<{BOB}>\r\nRCPT TO:<{CAROL}>\r\n")
    fail_srv.wait_for_log(rf"smtp disconnect ip={SLOW_GONE} ")
    time.sleep(FAIL_TIMEOUT_MS / 1000 + 0.3)   # past the deadline of the abandoned lookup
    assert fail_srv.proc.poll() is None
    assert_accept(rcpt_reply(fail_srv, CLEAN, BOB))


def test_resolver_down_fails_open(tmp_path_factory, mxgate_bin):
    dead = f"127.0.0.1:{free_udp_port()}"
    with policy_server(tmp_path_factory.mktemp("deadres"), tenants=TENANTS, proxy=True,
                       extra_sections=policy_config(dead, timeout_ms=1000) + zen_section()) as s:
        with Client(s, "192.0.2.116") as c:
            c.mail()
            r = c.rcpt(BOB, timeout=3.0)
            waited = time.monotonic() - c.t_connect
            assert_accept(r)
            q = s.queue_file(c.data())
            c.quit()
        assert waited <= 1.5, waited
        v = verdicts_by_tenant(q)["acme"]
        assert v["dnsbl"] in ("error:zen", "timeout:zen"), v
        assert v["reason"] in ("dnsbl-clean", "dnsbl-timeout"), v


@pytest.fixture(scope="module")
def unhealthy_srv(rbl, tmp_path_factory, mxgate_bin):
    # every tenant gets an entry: lint on a tenant without any is a bug of its own
    # (test_policy_cli.py::test_lint_tenant_without_entries)
    setup = [("block", "add", t, "192.0.2.250", "--comment", "lint workaround") for t in TENANTS]
    with policy_server(tmp_path_factory.mktemp("unhealthy"), tenants=TENANTS, proxy=True,
                       setup=setup,
                       extra_sections=policy_config(rbl.resolver)
                       + dnsbl_section("nohealth", "nohealth.test", display_name="No Test Entry")
                       + dnsbl_section("all", "all.test", display_name="Lists All")
                       + dnsbl_section("deadkey", "secretkey789.nohealth.test",
                                       display_name="Dead Keyed", display_zone="nohealth.test")
                       ) as s:
        s.wait_for_log(r'dnsbl zone-unhealthy list=nohealth zone="No Test Entry" '
                       r'why="test entry 127.0.0.2 not listed: NXDOMAIN"')
        s.wait_for_log(r'dnsbl zone-unhealthy list=all zone="Lists All" '
                       r'why="127.0.0.1 listed: the list answers for everything"')
        s.wait_for_log(r'dnsbl zone-unhealthy list=deadkey zone="nohealth.test" ')
        yield s


@pytest.mark.parametrize("ip, listed_on", [("192.0.2.120", "nohealth"),
                                           ("192.0.2.121", "all")])
def test_unhealthy_zone_is_out_of_decisions(unhealthy_srv, rbl, ip, listed_on):
    replies, q = deliver(unhealthy_srv, ip, [BOB])
    assert_accept(replies[0])
    v = verdicts_by_tenant(q)["acme"]
    assert v["dnsbl"] == "clean" and v["reason"] == "dnsbl-clean", v


def test_unhealthy_zones_in_lint(unhealthy_srv):
    res = admin_run(unhealthy_srv, "lint", "--json")
    assert res.returncode == 1, res.stderr
    found = [(f["check"], f["subject"]) for f in json.loads(res.stdout)]
    assert sorted(found) == [("dnsbl-zone-unhealthy", "DNSBL all (Lists All)"),
                             ("dnsbl-zone-unhealthy", "DNSBL deadkey (nohealth.test)"),
                             ("dnsbl-zone-unhealthy", "DNSBL nohealth (No Test Entry)")], found
    text = admin_run(unhealthy_srv, "lint")
    for out in (res.stdout, res.stderr, text.stdout, text.stderr, unhealthy_srv.log_text()):
        assert "secretkey789" not in out, out


# ---- reload under an open session -------------------------------------------------------------

@pytest.fixture
def reload_srv(mxgate_factory):
    return mxgate_factory(proxy=True, tenants=TENANTS, extra_sections=(
        "[policy]\nreload_interval_ms = 200\n"))


def test_block_add_reaches_new_sessions_not_open_ones(reload_srv):
    srv, ip = reload_srv, "192.0.2.130"
    with Client(srv, ip) as old:
        srv.admin("block", "add", "acme", ip, "--comment", "added live")
        t0 = time.monotonic()
        r, _ = wait_for_reply(srv, ip, BOB, lambda r: r.code != 250)
        waited = time.monotonic() - t0
        assert_reject(srv, r, ip, rule="ip-block",
                      texts=[f"IP Block list (entry {ip}/32 (added live))"])
        assert waited <= 1.0, f"the block took {waited:.2f} s to reach new sessions"
        srv.wait_for_log(r"policy reloaded generation=\d+ tenants=3")
        # the session that was open keeps the snapshot it started with
        old.mail()
        assert_accept(old.rcpt(BOB))
        q = srv.queue_file(old.data())
        old.quit()
    assert verdicts_by_tenant(q)["acme"]["reason"] == "no-dnsbl"


def test_allow_remove_reaches_new_sessions_not_open_ones(mxgate_factory):
    ip = "192.0.2.140"
    srv = mxgate_factory(proxy=True, tenants=TENANTS,
                         extra_sections="[policy]\nreload_interval_ms = 200\n", start=False)
    srv.provision()
    srv.admin("block", "add", "acme", "192.0.2.128/25", "--comment", "range")
    srv.admin("allow", "add", "acme", ip, "--comment", "exception")
    srv.start()
    assert_accept(rcpt_reply(srv, ip, BOB))
    with Client(srv, ip) as old:
        srv.admin("allow", "remove", "acme", ip)
        t0 = time.monotonic()
        r, _ = wait_for_reply(srv, ip, BOB, lambda r: r.code != 250)
        waited = time.monotonic() - t0
        assert_reject(srv, r, ip, rule="ip-block",
                      texts=["IP Block list (entry 192.0.2.128/25 (range))"])
        assert waited <= 1.0, waited
        old.mail()
        replies = old.rcpt(BOB)
        assert_accept(replies)
        q = srv.queue_file(old.data())
        old.quit()
    v = verdicts_by_tenant(q)["acme"]
    assert (v["reason"], v["entry"]) == ("allow-list", f"{ip}/32 (exception)"), v
    srv.wait_for_log(r"policy reloaded generation=")
