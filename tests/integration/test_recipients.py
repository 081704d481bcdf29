"""Recipient validation (docs/policy-precedence.md rule 3a) through the real binary.

The CLI: `mxgate tenant set TENANT --recipient-check off|directory` and `mxgate recipient
add|remove|import|list` with good input (one line on stdout, the list shows the change, the
store's generation moves by one) and bad input (exit 2, a sentence naming the problem -- for an
import the file and line -- and nothing changed, generation included).

A running server: an unknown recipient of a tenant that checks is refused at RCPT with
550 5.1.1 naming the address and the domain, never the tenant's route; a listed one (in any
ASCII case), one under a catch-all and postmaster are accepted; a tenant that does not check
accepts anything; and a change reaches new sessions within a second.
"""
import sqlite3

import pytest

from admin_helpers import EXIT_FAIL, EXIT_OK, EXIT_USAGE, Admin
from conftest import wait_until
from policy_helpers import admin_run, assert_accept, assert_reject, rcpt_reply, wait_for_reply

ROUTE_HOST = "backend.acme-internal.example"
ROUTE = f"{ROUTE_HOST}:2525"
BUECHER = "b\u00fccher.example"          # bücher.example
BUECHER_A = "xn--bcher-kva.example"
RELOAD_WITHIN = 1.0                       # seconds, with the default reload_interval_ms (500)


# ---- the CLI ------------------------------------------------------------------------------

@pytest.fixture
def adm(tmp_path):
    """acme (acme.example, bücher.example), beta (beta.example), empty (no domain)."""
    a = Admin(tmp_path)
    a.ok("tenant", "add", "acme", "--route", ROUTE)
    a.ok("domain", "add", "acme", "acme.example")
    a.ok("domain", "add", "acme", BUECHER)
    a.ok("tenant", "add", "beta", "--route", "10.0.0.6:25")
    a.ok("domain", "add", "beta", "beta.example")
    a.ok("tenant", "add", "empty", "--route", "10.0.0.7:25")
    return a


def checks(adm):
    """{tenant: recipient_check} as stored (`tenant list` does not show it yet)."""
    con = sqlite3.connect(f"file:{adm.data_dir / 'policy.db'}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT name, recipient_check FROM tenants"))
    finally:
        con.close()


def addresses(adm, tenant="acme"):
    out = adm.ok("recipient", "list", tenant)
    return out.splitlines()


def rstate(adm):
    """Everything recipient validation keeps, plus the generation."""
    return (adm.generation(), checks(adm),
            {t: adm.json("recipient", "list", t) for t in ("acme", "beta", "empty")})


def refused(adm, *args, message, stdin=None):
    """Exit 2, one 'mxgate: ' sentence containing message, nothing on stdout, nothing changed."""
    before = rstate(adm)
    res = run_input(adm, args, stdin) if stdin is not None else adm.run(*args)
    assert res.returncode == EXIT_USAGE, f"{args}: exit {res.returncode}\n{res.stderr}"
    assert res.stdout == ""
    assert res.stderr.startswith("mxgate: "), res.stderr
    assert message in res.stderr, f"{args}: {res.stderr!r} lacks {message!r}"
    assert rstate(adm) == before, f"{args} changed the store"
    return res.stderr


def run_input(adm, args, data):
    """Runs a command with bytes on its standard input."""
    import subprocess
    from admin_helpers import MXGATE_BIN, RUN_TIMEOUT, SANITIZER_MARKERS
    res = subprocess.run([MXGATE_BIN, "-c", str(adm.conf), *args], input=data,
                         capture_output=True, timeout=RUN_TIMEOUT, env=adm.env)
    res.stdout = res.stdout.decode("utf-8", "replace")
    res.stderr = res.stderr.decode("utf-8", "replace")
    for marker in SANITIZER_MARKERS:
        assert marker not in res.stderr, f"{args}: sanitizer report:\n{res.stderr}"
    return res


def test_help(adm):
    out = adm.ok("recipient", "--help")
    assert out.startswith("usage: mxgate recipient ACTION")
    for action in ("add TENANT ADDRESS", "remove TENANT ADDRESS", "import TENANT FILE",
                   "list TENANT [--json]"):
        assert f"  {action} " in out, out
    out = adm.ok("tenant", "set", "--help")
    assert "--recipient-check MODE" in out and "probe: ask the tenant's server" in out
    assert "  set NAME [--recipient-check off|directory|probe]" in adm.ok("tenant", "--help")
    assert "one bad line" in adm.ok("recipient", "import", "--help")


@pytest.mark.parametrize("args, message", [
    (["tenant", "set", "acme"], "missing --recipient-check MODE"),
    (["tenant", "set", "--recipient-check", "off"], "missing NAME"),
    (["tenant", "set", "acme", "--recipient-check"], "--recipient-check needs a value"),
    (["tenant", "set", "acme", "--recipient-check", "off", "--recipient-check", "off"],
     "given twice"),
    (["recipient", "add", "acme"], "missing ADDRESS"),
    (["recipient", "remove"], "missing TENANT"),
    (["recipient", "import", "acme"], "missing FILE"),
    (["recipient", "list"], "missing TENANT"),
    (["recipient", "list", "acme", "beta"], "unexpected argument 'beta'"),
    (["recipient", "frob"], "unknown action 'frob'"),
])
def test_usage_errors(adm, args, message):
    adm.usage_error(*args, message=message)


def test_tenant_set(adm):
    assert checks(adm) == {"acme": "off", "beta": "off", "empty": "off"}
    g = adm.generation()
    adm.ok("recipient", "add", "acme", "bob@acme.example")
    adm.ok("recipient", "add", "acme", f"*@{BUECHER}")
    assert adm.ok("tenant", "set", "ACME", "--recipient-check", "directory") == \
        "tenant ACME: recipient check directory\n"
    assert checks(adm)["acme"] == "directory"
    assert adm.generation() == g + 3
    assert adm.ok("tenant", "set", "acme", "--recipient-check=off") == \
        "tenant acme: recipient check off\n"
    assert checks(adm)["acme"] == "off"
    assert adm.generation() == g + 4


def test_tenant_set_warns_about_empty_domains(adm):
    adm.ok("recipient", "add", "acme", "bob@acme.example")
    res = adm.run("tenant", "set", "acme", "--recipient-check", "directory")
    assert res.returncode == EXIT_OK
    assert res.stdout == "tenant acme: recipient check directory\n"
    assert "warning" in res.stderr and f"no address at {BUECHER_A}" in res.stderr
    assert "acme.example " not in res.stderr.replace(BUECHER_A, "")
    # a tenant without domains has nothing to warn about
    res = adm.run("tenant", "set", "empty", "--recipient-check", "directory")
    assert res.returncode == EXIT_OK and res.stderr == ""


@pytest.mark.parametrize("args, message", [
    (["tenant", "set", "acme", "--recipient-check", "on"],
     "'on' is not one of off, directory, probe"),
    (["tenant", "set", "acme", "--recipient-check", "Directory"], "is not one of"),
    (["tenant", "set", "nobody", "--recipient-check", "off"], "no tenant named nobody"),
])
def test_tenant_set_refused(adm, args, message):
    refused(adm, *args, message=message)


def test_add_list_remove(adm):
    g = adm.generation()
    assert adm.ok("recipient", "add", "acme", "Bob@ACME.Example") == \
        "Bob@acme.example added to the recipient directory of tenant acme\n"
    assert adm.ok("recipient", "add", "acme", '"john doe"@acme.example') == \
        '"john doe"@acme.example added to the recipient directory of tenant acme\n'
    assert adm.ok("recipient", "add", "acme", f"j\u00f6rg@{BUECHER}") == \
        f"j\u00f6rg@{BUECHER_A} added to the recipient directory of tenant acme\n"
    assert adm.ok("recipient", "add", "acme", f"*@{BUECHER}") == \
        f"*@{BUECHER_A} added to the recipient directory of tenant acme\n"
    adm.ok("recipient", "add", "beta", "bob@beta.example")
    assert adm.generation() == g + 5
    assert addresses(adm) == ["Bob@acme.example", '"john doe"@acme.example',
                              f"*@{BUECHER_A}", f"j\u00f6rg@{BUECHER_A}"]
    rows = adm.json("recipient", "list", "acme")
    assert [set(r) for r in rows] == [{"address", "local", "domain", "created"}] * 4
    assert rows[1]["local"] == "john doe" and rows[1]["domain"] == "acme.example"
    assert rows[2]["local"] == "*"
    assert addresses(adm, "beta") == ["bob@beta.example"]
    assert addresses(adm, "empty") == []
    assert adm.json("recipient", "list", "empty") == []

    assert adm.ok("recipient", "remove", "acme", "BOB@acme.example") == \
        "BOB@acme.example removed from the recipient directory of tenant acme\n"
    adm.ok("recipient", "remove", "acme", '"John Doe"@acme.example')
    adm.ok("recipient", "remove", "acme", f"*@{BUECHER_A}")
    assert addresses(adm) == [f"j\u00f6rg@{BUECHER_A}"]
    assert adm.generation() == g + 8


@pytest.mark.parametrize("args, message", [
    (["recipient", "add", "acme", "bob@ACME.example"],
     "bob@acme.example is already in the recipient directory of tenant acme"),
    (["recipient", "add", "acme", "x@beta.example"],
     "domain beta.example belongs to tenant beta, not to tenant acme"),
    (["recipient", "add", "acme", "x@other.example"],
     f"domain other.example is not one of tenant acme's domains (acme.example, {BUECHER_A})"),
    (["recipient", "add", "empty", "x@other.example"], "tenant empty has no domains"),
    (["recipient", "add", "nobody", "x@acme.example"], "no tenant named nobody"),
    (["recipient", "add", "acme", "bob"], "'bob' is not an email address: it has no '@'"),
    (["recipient", "add", "acme", "bob@"], "no domain after the '@'"),
    (["recipient", "add", "acme", "bo*b@acme.example"], "only a whole local part '*'"),
    (["recipient", "add", "acme", "a%b@acme.example"], "has %, ! or @ in its local part"),
    (["recipient", "add", "acme", "a..b@acme.example"], "leading, trailing or doubled dot"),
    (["recipient", "add", "acme", "a b@acme.example"], "contains ' '"),
    (["recipient", "add", "acme", "bob@[192.0.2.1]"], "contains '['"),
    (["recipient", "add", "acme", "x" * 65 + "@acme.example"], "the limit is 64"),
    (["recipient", "add", "acme", b"\xffbob@acme.example"], "not valid UTF-8"),
    (["recipient", "remove", "acme", "carol@acme.example"],
     "carol@acme.example is not in the recipient directory of tenant acme"),
    (["recipient", "remove", "beta", "bob@acme.example"],
     "not in the recipient directory of tenant beta"),
    (["recipient", "list", "nobody"], "no tenant named nobody"),
])
def test_bad_input_changes_nothing(adm, args, message):
    adm.ok("recipient", "add", "acme", "bob@acme.example")
    refused(adm, *args, message=message)


# ---- import -------------------------------------------------------------------------------

def test_import_file(adm, tmp_path):
    adm.ok("recipient", "add", "acme", "alice@acme.example")
    f = tmp_path / "users.txt"
    f.write_bytes(b"\xef\xbb\xbf# exported from the directory\r\n"
                  b"\r\n"
                  b"  carol@acme.example  \r\n"
                  b"ALICE@acme.example\n"
                  b"\t# indented comment\n"
                  b"dave@acme.example\n"
                  b"carol@acme.example\n"
                  b"*@b\xc3\xbccher.example\n"
                  b"erin@acme.example")                 # no newline at the end
    g = adm.generation()
    out = adm.ok("recipient", "import", "acme", str(f))
    assert out == ("4 addresses added to the recipient directory of tenant acme "
                   "(2 already there); recipient check off\n"), out
    assert adm.generation() == g + 1
    assert addresses(adm) == ["alice@acme.example", "carol@acme.example", "dave@acme.example",
                              "erin@acme.example", f"*@{BUECHER_A}"]
    # the same file again changes no address
    assert adm.ok("recipient", "import", "acme", str(f)).startswith("0 addresses added")


def test_import_stdin_and_round_trip(adm):
    res = run_input(adm, ["recipient", "import", "acme", "-"],
                    b"a@acme.example\n\"x y\"@acme.example\nb@acme.example\n")
    assert res.returncode == EXIT_OK, res.stderr
    assert res.stdout.startswith("3 addresses added")
    listed = adm.ok("recipient", "list", "acme")
    assert listed == 'a@acme.example\nb@acme.example\n"x y"@acme.example\n'
    # `recipient list` prints the import format: importing it into beta's twin works
    adm.ok("tenant", "add", "twin", "--route", "10.0.0.8:25")
    adm.ok("domain", "remove", "acme.example")
    adm.ok("domain", "add", "twin", "acme.example")
    assert addresses(adm) == []          # the domain's addresses left with it
    res = run_input(adm, ["recipient", "import", "twin", "-"], listed.encode())
    assert res.returncode == EXIT_OK, res.stderr
    assert adm.ok("recipient", "list", "twin") == listed


def test_import_all_or_nothing(adm, tmp_path):
    adm.ok("recipient", "add", "acme", "alice@acme.example")
    f = tmp_path / "bad.txt"
    f.write_text("# header\n"
                 "carol@acme.example\n"
                 "\n"
                 "dave@acme.example\n"
                 "not-an-address\n"
                 "erin@acme.example\n"
                 "x@beta.example\n")
    err = refused(adm, "recipient", "import", "acme", str(f),
                  message=f"{f} line 5: 'not-an-address' is not an email address")
    assert "(and 1 more bad line); nothing was imported" in err
    f.write_text("carol@acme.example\nx@beta.example\n")
    refused(adm, "recipient", "import", "acme", str(f),
            message=f"{f} line 2: address x@beta.example: domain beta.example belongs to tenant "
                    "beta, not to tenant acme; nothing was imported")
    refused(adm, "recipient", "import", "acme", "-", stdin=b"ok@acme.example\nbad@\n",
            message="standard input line 2: address 'bad@' has no domain")
    assert addresses(adm) == ["alice@acme.example"]


@pytest.mark.parametrize("data, message", [
    (b"a@acme.example\nb\x00@acme.example\n", "line 2 contains a NUL byte"),
    (b"a@acme.example\n" + b"x" * 2000 + b"@acme.example\n", "line 2 is longer than 1024 bytes"),
    (b"a@acme.example\n\xff@acme.example\n", "is not valid UTF-8 text"),
])
def test_import_unreadable_lines(adm, data, message):
    refused(adm, "recipient", "import", "acme", "-", stdin=data, message=message)


def test_import_missing_file_and_tenant(adm, tmp_path):
    refused(adm, "recipient", "import", "acme", str(tmp_path / "nope.txt"),
            message="cannot open")
    f = tmp_path / "u.txt"
    f.write_text("a@acme.example\n")
    refused(adm, "recipient", "import", "nobody", str(f), message="no tenant named nobody")


def test_import_empty_file_is_not_a_change(adm, tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("# nothing yet\n\n")
    g = adm.generation()
    assert adm.ok("recipient", "import", "acme", str(f)) == \
        f"no addresses in {f}; nothing changed\n"
    assert adm.generation() == g


def test_tenant_remove_takes_the_directory(adm):
    adm.ok("recipient", "add", "acme", "bob@acme.example")
    adm.ok("recipient", "add", "beta", "bob@beta.example")
    adm.ok("tenant", "remove", "acme")
    assert addresses(adm, "beta") == ["bob@beta.example"]
    adm.ok("tenant", "add", "acme", "--route", ROUTE)
    assert addresses(adm) == []


# ---- through a running server ---------------------------------------------------------------

TENANTS = {
    "acme": (ROUTE, ["acme.example", "catchall.example"]),
    "beta": ("127.0.0.1:2600", ["beta.example"]),
}


@pytest.fixture
def srv(mxgate_factory):
    """acme checks its directory (bob, "john doe", *@catchall.example); beta does not."""
    s = mxgate_factory(tenants=TENANTS, start=False)
    s.provision()
    s.admin("recipient", "add", "acme", "Bob@acme.example")
    s.admin("recipient", "add", "acme", '"john doe"@acme.example')
    s.admin("recipient", "add", "acme", "*@catchall.example")
    s.admin("tenant", "set", "acme", "--recipient-check", "directory")
    return s.start()


def reject_unknown(srv, rcpt, domain):
    r = rcpt_reply(srv, None, rcpt)
    assert_reject(srv, r, "127.0.0.1", enh="5.1.1", rule="recipient-unknown",
                  texts=[f"Recipient address rejected: {rcpt} does not exist at {domain}"],
                  absent=[ROUTE_HOST, "acme-internal", "2525"])
    return r


def test_server_unknown_recipient_refused(srv):
    reject_unknown(srv, "nobody@acme.example", "acme.example")
    line = srv.wait_for_log(r"[^\n]*rule=recipient-unknown[^\n]*").group(0)
    assert 'list="recipient directory of tenant acme"' in line, line


def test_server_known_recipients_accepted(srv):
    for rcpt in ("Bob@acme.example", "bob@acme.example", "BOB@ACME.EXAMPLE",
                 '"bob"@acme.example', '"John Doe"@acme.example', "anyone@catchall.example",
                 "postmaster@acme.example"):
        assert_accept(rcpt_reply(srv, None, rcpt))


def test_server_check_off_tenant_accepts_anything(srv):
    assert_accept(rcpt_reply(srv, None, "whoever@beta.example"))


def test_server_mixed_transaction(srv):
    """Per recipient: one refused, the others accepted, and the message is queued for them."""
    from policy_helpers import deliver
    replies, q = deliver(srv, None, ["bob@acme.example", "nobody@acme.example",
                                     "x@beta.example"])
    assert [r.code for r in replies] == [250, 550, 250]
    assert [r["rcpt"] for r in q.recipients] == ["bob@acme.example", "x@beta.example"]


def test_server_picks_up_changes(srv):
    reject_unknown(srv, "carol@acme.example", "acme.example")
    srv.admin("recipient", "add", "acme", "carol@acme.example")
    r, waited = wait_for_reply(srv, None, "carol@acme.example", lambda r: r.code == 250)
    assert_accept(r)
    assert waited <= RELOAD_WITHIN, f"the addition took {waited:.2f}s to reach new sessions"

    srv.admin("recipient", "remove", "acme", "carol@acme.example")
    r, waited = wait_for_reply(srv, None, "carol@acme.example", lambda r: r.code == 550)
    assert r.enhanced == "5.1.1", r
    assert waited <= RELOAD_WITHIN, f"the removal took {waited:.2f}s to reach new sessions"

    srv.admin("tenant", "set", "acme", "--recipient-check", "off")
    r, waited = wait_for_reply(srv, None, "nobody@acme.example", lambda r: r.code == 250)
    assert_accept(r)
    assert waited <= RELOAD_WITHIN, f"check off took {waited:.2f}s to reach new sessions"


def test_explain_shows_the_directory(srv):
    res = admin_run(srv, "explain", "192.0.2.1", "--rcpt", "nobody@acme.example")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "is not in the recipient directory of tenant acme" in res.stdout
    assert "550 5.1.1 Recipient address rejected: nobody@acme.example does not exist at " \
           "acme.example" in res.stdout
    res = admin_run(srv, "explain", "192.0.2.1", "--rcpt", "bob@acme.example")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "is in the recipient directory of tenant acme" in res.stdout
