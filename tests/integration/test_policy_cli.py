"""`mxgate explain` and `mxgate lint` against a real policy store and a real rbldnsd.

explain: exit codes (0 accept, 1 reject, 2 usage), the printed steps and reply, --json, and
the reply it predicts is the reply `serve` sends for the same client and recipient (up to the
reference, which is new for every decision). lint: a clean policy gives "0 warnings" and exit
0; each check fires exactly once on a policy crafted to trip it (and not on its look-alike);
--json is a list of {check, subject, problem, fix}.
"""
import json
import re

import pytest

from conftest import HOSTNAME
from policy_helpers import (Client, admin_run, dnsbl_section, policy_config, policy_server,
                            zen_section)
from rbldnsd_helper import Rbldnsd, rbldnsd_available

pytestmark = pytest.mark.skipif(not rbldnsd_available(), reason="rbldnsd is not installed")

EXIT_ACCEPT, EXIT_REJECT, EXIT_USAGE = 0, 1, 2
TENANTS = {"acme": ("127.0.0.1:2601", ["acme.example"]),
           "beta": ("127.0.0.1:2602", ["beta.example"])}
BOB, CAROL = "bob@acme.example", "carol@beta.example"
REF = re.compile(r"ref [a-z2-9]{12}\)")

ALLOWED = "192.0.2.20"
BLOCKED = "192.0.2.30"
LISTED = "192.0.2.70"
CLEAN = "192.0.2.90"
ONPREM = "203.0.113.5"
SECURE = "203.0.113.130"
CONN_LISTED = "203.0.113.99"    # listed; put on a connector by one crafted policy
ALLOW_LISTED = "192.0.2.61"     # listed; put on the Allow list by one crafted policy

SETUP = [
    ("connector", "add", "acme", "hq", "--type", "onprem", "--ip", "203.0.113.0/28"),
    ("connector", "add", "acme", "secure", "--type", "partner", "--ip", "203.0.113.128/28",
     "--require-tls"),
    ("allow", "add", "acme", ALLOWED, "--comment", "friendly"),
    ("block", "add", "acme", BLOCKED, "--comment", "spam source"),
    # every tenant has an entry: lint on a tenant without any is a bug of its own
    # (test_lint_tenant_without_entries)
    ("block", "add", "beta", "192.0.2.250", "--comment", "beta block"),
]


@pytest.fixture(scope="module")
def rbl():
    with Rbldnsd(zones=["zen.test", "nohealth.test"], autoreload=False) as r:
        r.list("zen.test", LISTED, code="127.0.0.4", txt="Listed for spam from $")
        r.list("zen.test", CONN_LISTED)
        r.list("zen.test", ALLOW_LISTED)
        r.clear("nohealth.test", test_entries=False)
        r.reload()
        yield r


@pytest.fixture(scope="module")
def srv(rbl, tmp_path_factory, mxgate_bin):
    with policy_server(tmp_path_factory.mktemp("cli"), tenants=TENANTS, setup=SETUP,
                       proxy=True,
                       extra_sections=policy_config(rbl.resolver) + zen_section()) as s:
        yield s


def explain(srv, *args):
    return admin_run(srv, "explain", *args)


# ---- explain ----------------------------------------------------------------------------------

def test_explain_accept_exits_0(srv):
    res = explain(srv, CLEAN, "--rcpt", BOB)
    assert res.returncode == EXIT_ACCEPT, res.stdout + res.stderr
    out = res.stdout
    assert out.startswith(f"mxgate explain {CLEAN} (policy generation "), out
    assert "\nrecipient <bob@acme.example>\n" in out
    assert f"client [{CLEAN}], no TLS" in out
    assert "Test ZEN: not-listed (weight 1, " in out, out
    assert "domain acme.example belongs to tenant acme (route 127.0.0.1:2601)" in out
    assert f"no Allow or Block entry of tenant acme contains {CLEAN}" in out
    assert "accept by rule default" in out
    assert out.endswith("  reply: 250 2.1.5 Ok\n"), out
    assert res.stderr == ""


def test_explain_reject_exits_1(srv):
    res = explain(srv, BLOCKED, "--rcpt", BOB)
    assert res.returncode == EXIT_REJECT, res.stdout + res.stderr
    out = res.stdout
    assert 'Block list entry 192.0.2.30/32 "spam source" matches <- most specific (wins)' in out
    m = re.search(r"  reply: (550 5\.7\.1 .*)\n$", out)
    assert m, out
    assert strip_ref(m.group(1)) == (
        f"550 5.7.1 Service unavailable; client [{BLOCKED}] blocked by acme.example using its "
        f"IP Block list (entry 192.0.2.30/32 (spam source)) (client [{BLOCKED}], {HOSTNAME}, "
        "ref -)"), m.group(1)


def test_explain_dnsbl_listing_shows_the_answer(srv):
    res = explain(srv, LISTED, "--rcpt", BOB)
    assert res.returncode == EXIT_REJECT, res.stdout + res.stderr
    assert f'Test ZEN: listed 127.0.0.4 "Listed for spam from {LISTED}" (weight 1, ' in res.stdout
    assert "score 1, threshold 1" in res.stdout
    assert (f"blocked using Test ZEN (Listed for spam from {LISTED}); see "
            f"https://lookup.test/?ip={LISTED}") in res.stdout
    assert "zen.test" not in res.stdout


def test_explain_worst_recipient_sets_the_exit_code(srv):
    res = explain(srv, BLOCKED, "--rcpt", CAROL, "--rcpt", BOB)
    assert res.returncode == EXIT_REJECT
    replies = re.findall(r"  reply: (\d{3}) ", res.stdout)
    assert replies == ["250", "550"], res.stdout


def test_explain_without_rcpt_covers_every_tenant(srv):
    res = explain(srv, BLOCKED)
    assert res.returncode == EXIT_REJECT
    assert re.findall(r"\nrecipient <([^>]+)>\n", res.stdout) == [
        "postmaster@acme.example", "postmaster@beta.example"], res.stdout


def test_explain_tls_satisfies_partner_connector(srv):
    res = explain(srv, SECURE, "--rcpt", BOB)
    assert res.returncode == EXIT_REJECT
    assert ("partner connector secure of tenant acme matches by IP range 203.0.113.128/28 "
            "(requires TLS)") in res.stdout
    assert "reply: 530 5.7.0 Must issue a STARTTLS command first: partner connector secure " \
           "of tenant acme requires TLS" in res.stdout
    res = explain(srv, SECURE, "--rcpt", BOB, "--tls")
    assert res.returncode == EXIT_ACCEPT, res.stdout
    assert f"client [{SECURE}], TLS" in res.stdout


def test_explain_json(srv):
    res = explain(srv, LISTED, "--rcpt", BOB, "--rcpt", CAROL, "--rcpt", "x@victim.example",
                  "--json")
    assert res.returncode == EXIT_REJECT, res.stderr
    doc = json.loads(res.stdout)
    assert doc["client"] == LISTED and doc["tls"] is False
    assert isinstance(doc["generation"], int)
    zen = [d for d in doc["dnsbl"] if d["list"] == "zen"]
    assert len(zen) == 1 and zen[0]["state"] == "listed" and zen[0]["display"] == "Test ZEN"
    assert zen[0]["healthy"] is True and zen[0]["weight"] == 1
    rc = doc["recipients"]
    assert [r["rcpt"] for r in rc] == [BOB, CAROL, "x@victim.example"]
    assert [r["action"] for r in rc] == ["reject", "reject", "reject"]
    assert [r["rule"] for r in rc] == ["dnsbl", "dnsbl", "relay"]
    assert [r["tenant"] for r in rc] == ["acme", "beta", None]
    for r in rc:
        assert r["reply"].startswith("550 5.7.1 ") and REF.search(r["reply"]), r
        assert r["steps"] and all(set(s) == {"step", "text"} for s in r["steps"]), r
        assert r["steps"][-1]["step"] == "decision", r
    assert rc[0]["list"] == "Test ZEN" and rc[0]["score"] == 1
    steps = [s["step"] for s in rc[0]["steps"]]
    assert steps[:2] == ["client", "dnsbl"] and "tenant" in steps and "ip-list" in steps


def test_explain_json_accept(srv):
    res = explain(srv, ALLOWED, "--rcpt", BOB, "--json")
    assert res.returncode == EXIT_ACCEPT
    (r,) = json.loads(res.stdout)["recipients"]
    assert (r["action"], r["rule"], r["reason"], r["reply"]) == (
        "accept", "ip-allow", "allow-list", "250 2.1.5 Ok\n"), r
    assert r["entry"] == f"{ALLOWED}/32 (friendly)" and r["list"] == "IP Allow list of tenant acme"


@pytest.mark.parametrize("args", [
    ["1.2.3.x"], ["300.1.2.3"], ["2001:db8::g"], ["192.0.2.0/24"], [""], [],
    [CLEAN, CLEAN], [CLEAN, "--rcpt", "nobody"], [CLEAN, "--bogus"], ["--rcpt", BOB],
])
def test_explain_bad_input_exits_2(srv, args):
    res = explain(srv, *args)
    assert res.returncode == EXIT_USAGE, res.stdout + res.stderr
    assert res.stdout == ""
    assert res.stderr.startswith("mxgate: ") or "usage: mxgate" in res.stderr, res.stderr


def strip_ref(text):
    return REF.sub("ref -)", text.replace("\r\n", "\n"))


@pytest.mark.parametrize("ip, rcpt, sender", [
    (BLOCKED, BOB, "s@client.example"),
    (LISTED, BOB, "s@client.example"),
    (LISTED, CAROL, "s@client.example"),
    ("192.0.2.91", "u@victim.example", "s@client.example"),
    (ONPREM, "u@victim.example", "mallory@foreign.example"),
    (ONPREM, "u@victim.example", "alice@acme.example"),
    (SECURE, BOB, "s@client.example"),
    (ALLOWED, BOB, "s@client.example"),
    (CLEAN, CAROL, "s@client.example"),
    ("2001:db8::25", BOB, "s@client.example"),
])
def test_explain_predicts_the_serve_reply(srv, ip, rcpt, sender):
    res = explain(srv, ip, "--rcpt", rcpt, "--sender", sender)
    assert res.returncode in (EXIT_ACCEPT, EXIT_REJECT), res.stderr
    predicted = re.search(r"\n  reply: (.*)\Z", res.stdout, re.S).group(1)
    with Client(srv, ip) as c:
        c.mail(sender)
        served = c.rcpt(rcpt)
        c.quit()
    assert strip_ref(served.raw.decode()) == strip_ref(predicted)
    assert res.returncode == (EXIT_ACCEPT if served.code == 250 else EXIT_REJECT)


# ---- lint -------------------------------------------------------------------------------------

BASE = [
    ("connector", "add", "acme", "hq", "--type", "onprem", "--ip", "203.0.113.0/28"),
    ("allow", "add", "acme", ALLOWED, "--comment", "friendly"),
    ("block", "add", "acme", BLOCKED),
]


def lint_store(tmp_path, rbl, extra=(), sections=None, tenants=None):
    """A store with the clean BASE policy plus `extra` commands (no server needed)."""
    return policy_server(tmp_path / "lint", tenants=tenants or {"acme": TENANTS["acme"]},
                         setup=list(BASE) + list(extra), start=False,
                         extra_sections=sections or policy_config(rbl.resolver) + zen_section())


def lint(srv, *args):
    return admin_run(srv, "lint", *args)


def test_lint_clean_policy(tmp_path, rbl, mxgate_bin):
    with lint_store(tmp_path, rbl) as s:
        res = lint(s)
        assert (res.returncode, res.stdout) == (0, "0 warnings\n"), res.stdout + res.stderr
        res = lint(s, "--json")
        assert res.returncode == 0 and json.loads(res.stdout) == [], res.stdout + res.stderr


def test_lint_private_wide_allow_is_fine(tmp_path, rbl, mxgate_bin):
    extra = [("allow", "add", "acme", "10.0.0.0/8"), ("allow", "add", "acme", "fd00::/8")]
    with lint_store(tmp_path, rbl, extra) as s:
        res = lint(s)
        assert (res.returncode, res.stdout) == (0, "0 warnings\n"), res.stdout + res.stderr


LINT_CASES = {
    "connector-allow-overlap": dict(extra=[("allow", "add", "acme", "203.0.113.3")],
                                    subject="tenant acme", problem="range 203.0.113.0/28 "
                                    "overlaps IP Allow entry 203.0.113.3/32"),
    "allow-range-wide": dict(extra=[("allow", "add", "acme", "8.0.0.0/16")],
                             subject="tenant acme", problem="IP Allow entry 8.0.0.0/16 is "
                             "wider than /24 in public address space"),
    "allow-range-wide-v6": dict(check="allow-range-wide",
                                extra=[("allow", "add", "acme", "2a00:1450::/32")],
                                subject="tenant acme", problem="2a00:1450::/32 is wider than /48"),
    "allow-block-same": dict(extra=[("allow", "add", "acme", "192.0.2.40"),
                                    ("block", "add", "acme", "192.0.2.40")],
                             subject="tenant acme", problem="192.0.2.40/32 is on both the IP "
                             "Allow and the IP Block list; Block wins the tie"),
    "tenant-no-domain": dict(tenants={"acme": TENANTS["acme"], "empty": ("127.0.0.1:2603", [])},
                             extra=[("block", "add", "empty", "192.0.2.251")],
                             subject="tenant empty", problem="no accepted domain"),
    "connector-two-tenants": dict(
        tenants=TENANTS,
        extra=[("block", "add", "beta", "192.0.2.251"),
               ("connector", "add", "beta", "shared", "--type", "onprem", "--ip",
                "203.0.113.8/29")],
        subject="tenants acme and beta", problem="connector hq (203.0.113.0/28) of acme and "
        "connector shared (203.0.113.8/29) of beta cover the same addresses"),
    "connector-listed": dict(extra=[("connector", "add", "acme", "edge", "--type", "partner",
                                     "--ip", CONN_LISTED)],
                             subject=f"connector edge of tenant acme ({CONN_LISTED}/32)",
                             problem=f"{CONN_LISTED} is listed on Test ZEN right now "
                             "(127.0.0.2)"),
    "allow-listed": dict(extra=[("allow", "add", "acme", ALLOW_LISTED)],
                         subject=f"IP Allow entry {ALLOW_LISTED}/32 of tenant acme",
                         problem=f"{ALLOW_LISTED} is listed on Test ZEN right now (127.0.0.2)"),
    "dnsbl-zone-unhealthy": dict(dead_zone=True, subject="DNSBL nohealth (No Test Entry)",
                                 problem="fails the RFC 5782 test: test entry 127.0.0.2 not "
                                 "listed: NXDOMAIN"),
}


@pytest.mark.parametrize("case", sorted(LINT_CASES))
def test_lint_check_fires_once(tmp_path, rbl, mxgate_bin, case):
    spec = LINT_CASES[case]
    check = spec.get("check", case)
    sections = None
    if spec.get("dead_zone"):
        sections = (policy_config(rbl.resolver) + zen_section()
                    + dnsbl_section("nohealth", "nohealth.test", display_name="No Test Entry"))
    with lint_store(tmp_path, rbl, spec.get("extra", ()), sections, spec.get("tenants")) as s:
        res = lint(s, "--json")
        assert res.returncode == 1, res.stdout + res.stderr
        findings = json.loads(res.stdout)
        assert [f["check"] for f in findings] == [check], findings
        (f,) = findings
        assert f["subject"] == spec["subject"], f
        assert spec["problem"] in f["problem"], f
        assert f["fix"], f
        res = lint(s)
        assert res.returncode == 1
        assert res.stdout.count("warning [") == 1, res.stdout
        assert res.stdout.startswith(f"warning [{check}] {spec['subject']}: "), res.stdout
        assert "\n  fix: " in res.stdout and res.stdout.endswith("\n1 warning\n"), res.stdout


def test_lint_json_shape(tmp_path, rbl, mxgate_bin):
    extra = [("allow", "add", "acme", "203.0.113.3"), ("allow", "add", "acme", "8.0.0.0/16"),
             ("allow", "add", "acme", ALLOW_LISTED)]
    with lint_store(tmp_path, rbl, extra) as s:
        res = lint(s, "--json")
        assert res.returncode == 1
        findings = json.loads(res.stdout)
        assert isinstance(findings, list) and len(findings) == 3, findings
        for f in findings:
            assert set(f) == {"check", "subject", "problem", "fix"}, f
            assert all(isinstance(v, str) and v for v in f.values()), f
        assert sorted(f["check"] for f in findings) == [
            "allow-listed", "allow-range-wide", "connector-allow-overlap"]
        text = lint(s).stdout
        assert text.endswith("\n3 warnings\n"), text


def test_lint_bad_argument_exits_2(tmp_path, rbl, mxgate_bin):
    with lint_store(tmp_path, rbl) as s:
        res = lint(s, "--bogus")
        assert res.returncode == EXIT_USAGE and res.stdout == ""
        assert "usage: mxgate [-c FILE] lint [--json]" in res.stderr


def test_lint_tenant_without_entries(tmp_path, rbl, mxgate_bin):
    with policy_server(tmp_path / "bare", tenants={"acme": TENANTS["acme"]}, start=False,
                       extra_sections=policy_config(rbl.resolver) + zen_section()) as s:
        res = lint(s)
        assert "runtime error" not in res.stderr, res.stderr
        assert (res.returncode, res.stdout) == (0, "0 warnings\n"), res.stdout + res.stderr
