"""The policy administration commands through the real binary: every command with good input
(one short line on stdout, the lists show the change) and with bad input (exit 2, a sentence
that names the problem, and every list -- and the store's generation -- unchanged); --json
output parses and has its keys; --help and usage errors behave like a CLI should."""
import json
import re

import pytest

from admin_helpers import EXIT_FAIL, EXIT_OK, EXIT_USAGE, Admin

FAMILIES = ["tenant", "domain", "connector", "allow", "block"]
ACTIONS = {
    "tenant": ["add", "remove", "list"],
    "domain": ["add", "remove", "list"],
    "connector": ["add", "remove", "list"],
    "allow": ["add", "remove", "list"],
    "block": ["add", "remove", "list"],
}
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def adm(tmp_path):
    return Admin(tmp_path)


@pytest.fixture
def acme(adm):
    """A store with tenants acme and beta; acme has a domain."""
    adm.ok("tenant", "add", "acme", "--route", "10.0.0.5:25")
    adm.ok("tenant", "add", "beta", "--route", "mx.beta.example:2525")
    adm.ok("domain", "add", "acme", "acme.example")
    return adm


# ---- help and usage ---------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_family_help(adm, family):
    res = adm.run(family, "--help")
    assert res.returncode == EXIT_OK
    assert res.stdout.startswith(f"usage: mxgate {family} ACTION")
    for action in ACTIONS[family]:
        assert f"  {action} " in res.stdout
    assert res.stderr == ""


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("action", ["add", "remove", "list"])
def test_action_help(adm, family, action):
    for flag in ("--help", "-h"):
        res = adm.run(family, action, flag)
        assert res.returncode == EXIT_OK, res.stderr
        assert res.stdout.startswith(f"usage: mxgate {family} {action}")
    # help wins over arguments that would be wrong
    assert adm.run(family, action, "x", "y", "z", "--bogus", "--help").returncode == EXIT_OK


def test_action_help_lists_options(adm):
    out = adm.ok("connector", "add", "--help")
    for opt in ("--type onprem|partner", "--ip CIDR", "--tls-name NAME", "--require-tls"):
        assert opt in out
    assert "--json" not in out
    assert "--json" in adm.ok("tenant", "list", "--help")
    assert "--comment TEXT" in adm.ok("block", "add", "--help")


def test_family_without_action(adm):
    res = adm.run("tenant")
    assert res.returncode == EXIT_USAGE
    assert res.stdout == ""
    assert "usage: mxgate tenant ACTION" in res.stderr


@pytest.mark.parametrize("args, message", [
    (["tenant", "frobnicate"], "unknown action 'frobnicate'"),
    (["tenant", "add"], "missing NAME"),
    (["tenant", "add", "acme2"], "missing --route HOST:PORT"),
    (["tenant", "add", "acme2", "--route"], "option --route needs a value"),
    (["tenant", "add", "acme2", "--route", "a:25", "--route", "b:25"], "--route is given twice"),
    (["tenant", "add", "acme2", "extra", "--route", "a:25"], "unexpected argument 'extra'"),
    (["tenant", "add", "acme2", "--route", "a:25", "--json"], "unknown option '--json'"),
    (["tenant", "add", "acme2", "--rout", "a:25"], "unknown option '--rout'"),
    (["tenant", "add", "acme2", "-r", "a:25"], "unknown option '-r'"),
    (["tenant", "remove"], "missing NAME"),
    (["tenant", "list", "acme"], "unexpected argument 'acme'"),
    (["tenant", "list", "--json=yes"], "option --json takes no value"),
    (["domain", "add", "acme"], "missing DOMAIN"),
    (["domain", "remove"], "missing DOMAIN"),
    (["domain", "list", "acme", "beta"], "unexpected argument 'beta'"),
    (["connector", "add", "acme", "relay", "--ip", "192.0.2.0/24"], "missing --type"),
    (["connector", "add", "acme", "--type", "onprem"], "missing NAME"),
    (["connector", "add", "acme", "r", "--type", "onprem", "--ip"], "--ip needs a value"),
    (["connector", "add", "acme", "r", "--type", "onprem", "--require-tls=1"],
     "--require-tls takes no value"),
    (["connector", "add", "acme", "r", "--type", "partner", "--tls-name", "a.example",
      "--tls-name", "b.example"], "option --tls-name is given twice"),
    (["connector", "remove", "acme"], "missing NAME"),
    (["allow", "add", "acme"], "missing IP|CIDR"),
    (["allow", "add", "acme", "192.0.2.1", "--comment"], "--comment needs a value"),
    (["allow", "remove", "acme", "192.0.2.1", "--comment", "x"], "unknown option '--comment'"),
    (["allow", "list"], "missing TENANT"),
    (["block", "list"], "missing TENANT"),
    (["block", "add", "acme", "192.0.2.1", "192.0.2.2"], "unexpected argument '192.0.2.2'"),
])
def test_usage_errors(acme, args, message):
    acme.usage_error(*args, message=message)


def test_options_anywhere_and_double_dash(adm):
    assert adm.ok("tenant", "add", "--route=10.0.0.5:25", "acme") == \
        "tenant acme added (route 10.0.0.5:25)\n"
    adm.ok("allow", "add", "acme", "--comment", "--not-an-option", "192.0.2.1")
    assert adm.json("allow", "list", "acme")[0]["comment"] == "--not-an-option"
    adm.ok("block", "add", "--", "acme", "192.0.2.2")
    assert [e["cidr"] for e in adm.json("block", "list", "acme")] == ["192.0.2.2/32"]


def test_cannot_open_store(tmp_path):
    (tmp_path / "file").write_text("not a directory\n")
    adm = Admin(tmp_path, data_dir=tmp_path / "file" / "data")
    for args in (["tenant", "list"], ["tenant", "add", "acme", "--route", "10.0.0.5:25"]):
        res = adm.run(*args)
        assert res.returncode == EXIT_FAIL, res.stderr
        assert res.stderr.startswith("mxgate: cannot create data_dir")
        assert res.stdout == ""


def test_store_created_on_first_use(adm):
    assert not adm.data_dir.exists()
    assert adm.ok("tenant", "list") == \
        "TENANT  ROUTE  ROUTE-TLS  DOMAINS  CONNECTORS  ALLOW  BLOCK\n"
    assert (adm.data_dir / "policy.db").exists()
    assert adm.json("tenant", "list") == []
    assert adm.json("domain", "list") == []
    assert adm.json("connector", "list") == []


# ---- tenants ----------------------------------------------------------------------------

def test_tenant_add_list_remove(adm):
    g0 = adm.generation()
    assert adm.ok("tenant", "add", "acme", "--route", "10.0.0.5:25") == \
        "tenant acme added (route 10.0.0.5:25)\n"
    assert adm.generation() == (g0 or 1) + 1
    assert adm.ok("tenant", "add", "Beta.Corp_1", "--route", "[2001:DB8::25]:2525") == \
        "tenant Beta.Corp_1 added (route [2001:db8::25]:2525)\n"
    assert adm.ok("tenant", "add", "idn", "--route", "Bücher.Example:25") == \
        "tenant idn added (route xn--bcher-kva.example:25)\n"
    tenants = adm.json("tenant", "list")
    assert [t["name"] for t in tenants] == ["acme", "Beta.Corp_1", "idn"]
    for t in tenants:
        assert set(t) == {"name", "route", "route_tls", "domains", "connectors", "allow",
                          "block"}
    assert tenants[0] == {"name": "acme", "route": "10.0.0.5:25", "route_tls": "opportunistic",
                          "domains": [], "connectors": 0, "allow": 0, "block": 0}
    text = adm.ok("tenant", "list").splitlines()
    assert text[0].split() == ["TENANT", "ROUTE", "ROUTE-TLS", "DOMAINS", "CONNECTORS", "ALLOW",
                               "BLOCK"]
    assert text[2].split() == ["Beta.Corp_1", "[2001:db8::25]:2525", "opportunistic", "0", "0",
                               "0", "0"]
    # columns are aligned: every row's route starts where the header's ROUTE does
    col = text[0].index("ROUTE")
    assert all(line[col - 2:col] == "  " and line[col] != " " for line in text[1:])
    assert adm.ok("tenant", "remove", "beta.corp_1") == \
        "tenant Beta.Corp_1 removed with its 0 domains, 0 connectors, " \
        "0 allow list entries and 0 block list entries\n"
    assert [t["name"] for t in adm.json("tenant", "list")] == ["acme", "idn"]


@pytest.mark.parametrize("name, route, message", [
    ("acme", "10.0.0.6:25", "tenant acme already exists"),
    ("ACME", "10.0.0.6:25", "tenant acme already exists"),
    ("a b", "10.0.0.6:25", "tenant name 'a b' contains ' '; use only letters, digits"),
    ("a/b", "10.0.0.6:25", "contains '/'"),
    ("x" * 65, "10.0.0.6:25", "is longer than 64 characters"),
    ("", "10.0.0.6:25", "the tenant name must not be empty"),
    ("new", "", "the route must not be empty"),
    ("new", "mx.example", "route 'mx.example' has no port"),
    ("new", "mx.example:0", "the port must be a number from 1 to 65535"),
    ("new", "mx.example:65536", "the port must be a number from 1 to 65535"),
    ("new", "mx.example:smtp", "the port must be a number from 1 to 65535"),
    ("new", "2001:db8::1:25", "IPv6 address without brackets"),
    ("new", "[192.0.2.1]:25", "brackets are only for IPv6"),
    ("new", "mx..example:25", "empty label"),
    ("new", "mx.example.:25", "must not end with a dot"),
    ("new", "mx_1.example:25", "contains '_'"),
    ("new", "10.0.0:25", "looks like an IP address"),
])
def test_tenant_add_refused(acme, name, route, message):
    acme.refused("tenant", "add", name, "--route", route, message=message)


def test_tenant_remove_refused(acme):
    acme.refused("tenant", "remove", "nobody", message="no tenant named nobody")


def test_tenant_remove_cascades(acme):
    acme.ok("domain", "add", "acme", "acme.test")
    acme.ok("connector", "add", "acme", "relay", "--type", "onprem", "--ip", "192.0.2.0/24")
    acme.ok("allow", "add", "acme", "198.51.100.0/24")
    acme.ok("block", "add", "acme", "203.0.113.7")
    acme.ok("block", "add", "acme", "203.0.113.8")
    acme.ok("domain", "add", "beta", "beta.example")
    out = acme.ok("tenant", "remove", "acme")
    assert out == "tenant acme removed with its 2 domains, 1 connector, " \
                  "1 allow list entry and 2 block list entries\n"
    assert [t["name"] for t in acme.json("tenant", "list")] == ["beta"]
    assert acme.json("domain", "list") == [{"domain": "beta.example", "tenant": "beta"}]
    assert acme.json("connector", "list") == []
    acme.refused("allow", "list", "acme", message="no tenant named acme")
    # everything of acme is free again
    acme.ok("tenant", "add", "acme", "--route", "10.0.0.5:25")
    acme.ok("domain", "add", "acme", "acme.example")
    assert acme.json("allow", "list", "acme") == []


# ---- domains ----------------------------------------------------------------------------

def test_domain_add_list_remove(acme):
    assert acme.ok("domain", "add", "acme", "Mail.ACME.example") == \
        "domain mail.acme.example added to tenant acme\n"
    assert acme.ok("domain", "add", "beta", "bücher.example") == \
        "domain xn--bcher-kva.example (bücher.example) added to tenant beta\n"
    doms = acme.json("domain", "list")
    assert doms == [
        {"domain": "acme.example", "tenant": "acme"},
        {"domain": "mail.acme.example", "tenant": "acme"},
        {"domain": "xn--bcher-kva.example", "tenant": "beta"},
    ]
    assert acme.json("domain", "list", "beta") == [doms[2]]
    text = acme.ok("domain", "list", "acme").splitlines()
    assert text[0].split() == ["DOMAIN", "TENANT"]
    assert [line.split() for line in text[1:]] == [["acme.example", "acme"],
                                                   ["mail.acme.example", "acme"]]
    tenants = {t["name"]: t for t in acme.json("tenant", "list")}
    assert tenants["acme"]["domains"] == ["acme.example", "mail.acme.example"]
    assert tenants["beta"]["domains"] == ["xn--bcher-kva.example"]
    assert acme.ok("domain", "remove", "BÜCHER.example") == \
        "domain xn--bcher-kva.example removed from tenant beta\n"
    assert acme.json("domain", "list", "beta") == []


@pytest.mark.parametrize("tenant, domain, message", [
    ("beta", "acme.example", "domain acme.example already belongs to tenant acme"),
    ("beta", "ACME.Example", "domain acme.example already belongs to tenant acme"),
    ("acme", "acme.example", "tenant acme already has domain acme.example"),
    ("nobody", "new.example", "no tenant named nobody"),
    ("acme", "new.example.", "must not end with a dot"),
    ("acme", "new..example", "empty label"),
    ("acme", "a" * 64 + ".example", "label longer than 63 characters"),
    ("acme", ".".join(["a" * 63] * 4), "the limit is 253"),
    ("acme", "new_1.example", "contains '_'"),
    ("acme", "new-.example", "starts or ends with '-'"),
    ("acme", "xn--zz.example", "is not a valid domain name"),
    ("acme", "192.0.2.1", "looks like an IP address"),
    ("acme", "", "the domain must not be empty"),
])
def test_domain_add_refused(acme, tenant, domain, message):
    acme.refused("domain", "add", tenant, domain, message=message)


def test_domain_remove_refused(acme):
    acme.refused("domain", "remove", "other.example", message="no tenant has domain other.example")
    acme.refused("domain", "remove", "bad..example", message="empty label")


def test_domain_list_unknown_tenant(acme):
    acme.refused("domain", "list", "nobody", message="no tenant named nobody")
    acme.refused("domain", "list", "nobody", "--json", message="no tenant named nobody")


# ---- connectors -------------------------------------------------------------------------

def test_connector_add_list_remove(acme):
    out = acme.ok("connector", "add", "acme", "relay", "--type", "onprem",
                  "--ip", "192.0.2.0/24", "--ip", "2001:DB8::/32", "--ip", "198.51.100.7")
    assert out == "connector relay added to tenant acme (onprem; ranges " \
                  "192.0.2.0/24,198.51.100.7/32,2001:db8::/32; TLS name -)\n"
    out = acme.ok("connector", "add", "acme", "partner1", "--type", "partner",
                  "--tls-name", "MX.Partner.example", "--require-tls")
    assert out == "connector partner1 added to tenant acme (partner; ranges -; " \
                  "TLS name mx.partner.example; TLS required)\n"
    acme.ok("connector", "add", "beta", "relay", "--type", "partner", "--ip", "192.0.2.0/24")
    conns = acme.json("connector", "list")
    for c in conns:
        assert set(c) == {"tenant", "name", "type", "ranges", "tls_name", "require_tls"}
    assert conns == [
        {"tenant": "acme", "name": "partner1", "type": "partner", "ranges": [],
         "tls_name": "mx.partner.example", "require_tls": True},
        {"tenant": "acme", "name": "relay", "type": "onprem",
         "ranges": ["192.0.2.0/24", "198.51.100.7/32", "2001:db8::/32"],
         "tls_name": None, "require_tls": False},
        {"tenant": "beta", "name": "relay", "type": "partner", "ranges": ["192.0.2.0/24"],
         "tls_name": None, "require_tls": False},
    ]
    assert acme.json("connector", "list", "beta") == [conns[2]]
    text = acme.ok("connector", "list", "acme").splitlines()
    assert text[0].split() == ["TENANT", "CONNECTOR", "TYPE", "TLS-NAME", "REQUIRE-TLS",
                               "RANGES"]
    assert text[1].split() == ["acme", "partner1", "partner", "mx.partner.example", "yes", "-"]
    assert {t["name"]: t["connectors"] for t in acme.json("tenant", "list")} == \
        {"acme": 2, "beta": 1}
    assert acme.ok("connector", "remove", "acme", "relay") == \
        "connector relay removed from tenant acme\n"
    assert [c["name"] for c in acme.json("connector", "list", "acme")] == ["partner1"]


@pytest.mark.parametrize("args, message", [
    (["beta", "r2", "--type", "onprem", "--ip", "10.0.0.0/8"],
     "tenant beta already has a connector named r2"),
    (["beta", "R2", "--type", "onprem", "--ip", "10.0.0.0/8"],
     "tenant beta already has a connector named r2"),
    (["nobody", "r", "--type", "onprem", "--ip", "10.0.0.0/8"], "no tenant named nobody"),
    (["acme", "r", "--type", "relay", "--ip", "10.0.0.0/8"],
     "connector type 'relay' is not onprem or partner"),
    (["acme", "r", "--type", "onprem"], "needs at least one IP range or a TLS name"),
    (["acme", "r", "--type", "partner"], "needs at least one IP range or a TLS name"),
    (["acme", "r", "--type", "onprem", "--ip", "10.0.0.0/8", "--require-tls"],
     "require-tls applies only to partner connectors"),
    (["acme", "r", "--type", "onprem", "--ip", "10.0.0.1/8"],
     "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?"),
    (["acme", "r", "--type", "onprem", "--ip", "10.0.0.0/8", "--ip", "10.0.0.256"],
     "'10.0.0.256' is not an IP address or CIDR range"),
    (["acme", "r", "--type", "onprem", "--ip", "10.0.0.0/8", "--ip", "::ffff:10.0.0.0/104"],
     "range 10.0.0.0/8 is given twice"),
    (["acme", "r", "--type", "partner", "--tls-name", "*.partner.example"], "is a wildcard"),
    (["acme", "r", "--type", "partner", "--tls-name", "bad..example"], "empty label"),
    (["acme", "bad/name", "--type", "onprem", "--ip", "10.0.0.0/8"],
     "connector name 'bad/name' contains '/'"),
])
def test_connector_add_refused(acme, args, message):
    acme.ok("connector", "add", "beta", "r2", "--type", "onprem", "--ip", "192.0.2.0/24")
    acme.refused("connector", "add", *args, message=message)


def test_connector_remove_refused(acme):
    acme.ok("connector", "add", "acme", "relay", "--type", "onprem", "--ip", "192.0.2.0/24")
    acme.refused("connector", "remove", "beta", "relay",
                 message="tenant beta has no connector named relay")
    acme.refused("connector", "remove", "nobody", "relay", message="no tenant named nobody")


def test_connector_list_unknown_tenant(acme):
    acme.refused("connector", "list", "nobody", message="no tenant named nobody")


# ---- allow and block lists --------------------------------------------------------------

@pytest.mark.parametrize("family", ["allow", "block"])
def test_ip_add_list_remove(acme, family):
    g = acme.generation()
    assert acme.ok(family, "add", "acme", "192.0.2.7", "--comment", "our relay") == \
        f"192.0.2.7/32 added to the {family} list of tenant acme\n"
    assert acme.generation() == g + 1
    assert acme.ok(family, "add", "acme", "2001:DB8::1") == \
        f"2001:db8::1/128 added to the {family} list of tenant acme\n"
    acme.ok(family, "add", "acme", "10.0.0.0/8", "--comment", "café ☕")
    acme.ok(family, "add", "acme", "::ffff:10.1.2.0/120")  # an IPv4 /24, written as IPv6
    entries = acme.json(family, "list", "acme")
    assert [e["cidr"] for e in entries] == ["10.0.0.0/8", "10.1.2.0/24", "192.0.2.7/32",
                                            "2001:db8::1/128"]
    for e in entries:
        assert set(e) == {"cidr", "comment", "created"}
        assert ISO_UTC.match(e["created"]), e
    assert entries[0]["comment"] == "café ☕"
    assert entries[2]["comment"] == "our relay"
    text = acme.ok(family, "list", "acme").splitlines()
    assert text[0].split() == ["CIDR", "CREATED", "COMMENT"]
    assert text[3].split()[0] == "192.0.2.7/32" and text[3].endswith("  our relay")
    other = "block" if family == "allow" else "allow"
    assert acme.json(other, "list", "acme") == []
    counts = {t["name"]: (t["allow"], t["block"]) for t in acme.json("tenant", "list")}
    assert counts["acme"] == ((4, 0) if family == "allow" else (0, 4))
    assert acme.ok(family, "remove", "acme", "192.0.2.7/32") == \
        f"192.0.2.7/32 removed from the {family} list of tenant acme\n"
    acme.ok(family, "remove", "acme", "2001:db8::1")
    assert len(acme.json(family, "list", "acme")) == 2


def test_same_range_on_both_lists(acme):
    acme.ok("allow", "add", "acme", "192.0.2.0/24")
    acme.ok("block", "add", "acme", "192.0.2.0/24")
    assert acme.json("allow", "list", "acme")[0]["cidr"] == "192.0.2.0/24"
    assert acme.json("block", "list", "acme")[0]["cidr"] == "192.0.2.0/24"


@pytest.mark.parametrize("family", ["allow", "block"])
@pytest.mark.parametrize("args, message", [
    (["acme", "192.0.2.7"], "192.0.2.7/32 is already on the {family} list of tenant acme"),
    (["ACME", "::ffff:192.0.2.7/128"], "192.0.2.7/32 is already on the {family} list"),
    (["acme", "10.0.0.1/8"], "10.0.0.1/8 has host bits set; did you mean 10.0.0.0/8?"),
    (["acme", "2001:db8::1/32"], "2001:db8::1/32 has host bits set; did you mean 2001:db8::/32?"),
    (["acme", "10.0.0.0/33"], "'10.0.0.0/33' is not an IP address or CIDR range"),
    (["acme", "example.com"], "'example.com' is not an IP address or CIDR range"),
    (["nobody", "10.0.0.0/8"], "no tenant named nobody"),
    (["acme", "10.0.0.0/8", "--comment", "x" * 201], "the comment is 201 bytes long; the limit is 200"),
    (["acme", "10.0.0.0/8", "--comment", "two\nlines"], "must not contain control characters"),
    (["acme", "10.0.0.0/8", "--comment", b"bad \xff byte"], "not valid UTF-8"),
])
def test_ip_add_refused(acme, family, args, message):
    acme.ok(family, "add", "acme", "192.0.2.7")
    acme.refused(family, "add", *args, message=message.format(family=family))


@pytest.mark.parametrize("family", ["allow", "block"])
def test_ip_remove_refused(acme, family):
    other = "block" if family == "allow" else "allow"
    acme.ok(other, "add", "acme", "192.0.2.7")
    acme.refused(family, "remove", "acme", "192.0.2.7",
                 message=f"192.0.2.7/32 is not on the {family} list of tenant acme")
    acme.refused(family, "remove", "acme", "192.0.2.1/24",
                 message="192.0.2.1/24 has host bits set; did you mean 192.0.2.0/24?")
    acme.refused(family, "remove", "nobody", "192.0.2.7", message="no tenant named nobody")


@pytest.mark.parametrize("family", ["allow", "block"])
def test_ip_list_unknown_tenant(acme, family):
    acme.refused(family, "list", "nobody", message="no tenant named nobody")
    acme.refused(family, "list", "nobody", "--json", message="no tenant named nobody")


def test_comment_limit_exact(acme):
    acme.ok("allow", "add", "acme", "192.0.2.8", "--comment", "é" * 100)  # 200 bytes
    assert acme.json("allow", "list", "acme")[0]["comment"] == "é" * 100


def test_json_is_an_array_everywhere(acme):
    acme.ok("allow", "add", "acme", "192.0.2.8")
    for args in (["tenant", "list"], ["domain", "list"], ["domain", "list", "acme"],
                 ["connector", "list"], ["allow", "list", "acme"], ["block", "list", "acme"]):
        out = acme.ok(*args, "--json")
        assert isinstance(json.loads(out), list), args
