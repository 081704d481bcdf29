"""Non-delivery reports as other software reads them.

The reports are the golden files of tests/unit/test_dsn.c (tests/unit/golden/ndr-*.eml): that
unit test checks byte for byte that the builder (src/dsn/ndr.c) produces exactly these files,
so parsing them here checks the builder's output. Two readers:

- Python's `email` package (policy=default, the strict modern parser): multipart/report with
  report-type=delivery-status, the RFC 3464 fields per message and per recipient, the human
  part's sections, no parser defects;
- GNU Mailman's `flufl.bounce` (Debian python3-flufl.bounce), which mailing lists use to
  unsubscribe bouncing addresses: scan_message() must return exactly the failed recipients,
  and nothing for a delay warning (flufl reports delayed recipients only as temporary
  failures, through all_failures()).

`mxgate ndr CODE` is checked through the binary too once main.c dispatches it.
"""
import email
import email.policy
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
GOLDEN = REPO_ROOT / "tests" / "unit" / "golden"
MXGATE_BIN = os.environ.get("MXGATE_BIN") or str(REPO_ROOT / "build-asan" / "mxgate")
MAX_LINE = 998  # RFC 5322 section 2.1.1, without CRLF

# Per report: kind, the failed and delayed recipients, and the per-recipient fields.
EXPECTED = {
    "ndr-two-causes.eml": {
        "subject": "Undeliverable: Quarterly report",
        "in_reply_to": "<original-123@sender.example>",
        "envid": "QR-2026-11-27-0042",
        "returned": "text/rfc822-headers",
        "recipients": [
            {"Original-Recipient": "rfc822; bob@acme.example",
             "Final-Recipient": "rfc822; bob@acme.example",
             "Action": "failed", "Status": "5.1.1",
             "Remote-MTA": "dns; mail.acme.example",
             "Diagnostic-Code": "smtp; 550 5.1.1 <bob@acme.example>: Recipient address "
                                "rejected: User unknown in virtual mailbox table",
             "Last-Attempt-Date": "Fri, 27 Nov 2026 10:15:01 +0000"},
            {"Original-Recipient": "rfc822; Carol.Jones@partner.example",
             "Final-Recipient": "rfc822; carol@partner.example",
             "Action": "failed", "Status": "5.7.1",
             "Remote-MTA": "dns; mx.partner.example",
             "Last-Attempt-Date": "Fri, 27 Nov 2026 10:15:02 +0000"},
        ],
        # flufl prefers Original-Recipient (the address the sender used) when it is rfc822
        "flufl_failed": {b"bob@acme.example", b"Carol.Jones@partner.example"},
        "human": ["Your message to bob@acme.example couldn't be delivered.",
                  "Your message to carol@partner.example couldn't be delivered.",
                  "Who has to act: you (the sender).",
                  "Who has to act: your email administrator.",
                  "550 5.7.1 mx.partner.example ref=k3v9q2m8x4tz"],
    },
    "ndr-delay.eml": {
        "subject": "Delayed: Quarterly report",
        "in_reply_to": "<original-123@sender.example>",
        "returned": "text/rfc822-headers",
        "recipients": [
            {"Final-Recipient": "rfc822; bob@acme.example",
             "Action": "delayed", "Status": "4.4.1",
             "Remote-MTA": "dns; mail.acme.example",
             "Will-Retry-Until": "Wed, 02 Dec 2026 10:14:58 +0000"},
        ],
        "flufl_failed": set(),
        "flufl_delayed": {b"bob@acme.example"},
        "human": ["Your message to bob@acme.example hasn't been delivered yet.",
                  "Who has to act: nobody for now"],
    },
    "ndr-ret-full.eml": {
        "subject": "Undeliverable: Quarterly report",
        "in_reply_to": "<original-123@sender.example>",
        "returned": "message/rfc822",
        "recipients": [
            {"Final-Recipient": "rfc822; bob@acme.example",
             "Action": "failed", "Status": "5.2.2"},
        ],
        "flufl_failed": {b"bob@acme.example"},
        "human": ["mailbox is full"],
    },
    "ndr-no-msgid.eml": {
        "subject": "Undeliverable: (no subject)",
        "in_reply_to": None,
        "returned": "text/rfc822-headers",
        "recipients": [
            {"Final-Recipient": "rfc822; dave@nowhere.example",
             "Action": "failed", "Status": "5.4.4",
             "Diagnostic-Code": "X-mxgate; no MX and no A or AAAA records for "
                                "nowhere.example"},
        ],
        "flufl_failed": {b"dave@nowhere.example"},
        "human": ["Subject:          (none)"],
    },
    "ndr-utf8-subject.eml": {
        "subject": "Undeliverable: Überweisung für März — Rechnung №42 und ein sehr langer "
                   "Betreff, der gefaltet werden muss",
        "in_reply_to": "<utf8-1@sender.example>",
        "returned": "text/rfc822-headers",
        "recipients": [
            {"Final-Recipient": "rfc822; bob@acme.example",
             "Action": "failed", "Status": "5.3.4"},
        ],
        "flufl_failed": {b"bob@acme.example"},
        "human": ["Überweisung für März — Rechnung №42"],
    },
    "ndr-expired.eml": {
        "subject": "Undeliverable: Quarterly report",
        "in_reply_to": "<original-123@sender.example>",
        "returned": "text/rfc822-headers",
        "recipients": [
            {"Final-Recipient": "rfc822; bob@acme.example",
             "Action": "failed", "Status": "4.4.7",
             "Diagnostic-Code": "smtp; 451 4.3.0 Temporary lookup failure"},
        ],
        "flufl_failed": {b"bob@acme.example"},
        "human": ["the gateway gave up", "451 4.3.0 Temporary lookup failure"],
    },
}

REPORTS = sorted(EXPECTED)


def load(name, policy=email.policy.default):
    data = (GOLDEN / name).read_bytes()
    return data, email.message_from_bytes(data, policy=policy)


def parts_of(msg):
    parts = list(msg.iter_parts())
    assert len(parts) == 3, [p.get_content_type() for p in parts]
    return parts


def test_every_golden_report_is_covered():
    assert sorted(p.name for p in GOLDEN.glob("ndr-*.eml")) == REPORTS


@pytest.mark.parametrize("name", REPORTS)
def test_wire_format(name):
    data, _ = load(name)
    assert b"\0" not in data
    lines = data.split(b"\r\n")
    assert lines[-1] == b"", "must end with CRLF"
    for i, line in enumerate(lines):
        assert b"\n" not in line and b"\r" not in line, f"bare CR or LF in line {i + 1}"
        assert len(line) <= MAX_LINE, f"line {i + 1} is {len(line)} octets"
    header = data.split(b"\r\n\r\n", 1)[0]
    assert header.isascii(), "the header section is ASCII (RFC 2047 for the subject)"


@pytest.mark.parametrize("name", REPORTS)
def test_multipart_report(name):
    want = EXPECTED[name]
    _, msg = load(name)
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["MIME-Version"] == "1.0"
    assert msg["From"].addresses[0].display_name == "Mail Delivery System"
    assert msg["From"].addresses[0].username == "MAILER-DAEMON"
    assert msg["From"].addresses[0].domain == "mx1.gateway.example"
    assert str(msg["Subject"]) == want["subject"]
    assert msg["Message-ID"].endswith("@mx1.gateway.example>")
    assert msg["Date"].datetime is not None
    assert msg["In-Reply-To"] == want["in_reply_to"]
    assert msg["References"] == want["in_reply_to"]
    human, status, original = parts_of(msg)
    assert human.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    assert original.get_content_type() == want["returned"]
    assert not msg.defects
    for part in msg.walk():
        assert not part.defects, (part.get_content_type(), part.defects)


@pytest.mark.parametrize("name", REPORTS)
def test_delivery_status_fields(name):
    want = EXPECTED[name]
    _, msg = load(name)
    blocks = parts_of(msg)[1].get_payload()
    per_message, per_rcpt = blocks[0], blocks[1:]
    assert per_message["Reporting-MTA"] == "dns; mx1.gateway.example"
    assert per_message["Arrival-Date"] == "Fri, 27 Nov 2026 10:14:58 +0000"
    assert per_message.get("Original-Envelope-Id") == want.get("envid")
    assert len(per_rcpt) == len(want["recipients"])
    for got, fields in zip(per_rcpt, want["recipients"]):
        for key, value in fields.items():
            # folded fields unfold to the value (RFC 5322 section 2.2.3)
            assert " ".join(str(got[key]).split()) == value, key
        assert ("Will-Retry-Until" in got) == (got["Action"] == "delayed")


@pytest.mark.parametrize("name", REPORTS)
def test_human_part(name):
    want = EXPECTED[name]
    _, msg = load(name)
    text = parts_of(msg)[0].get_content()
    for section in ("How to fix it", "More information for email administrators",
                    "Status code:", "Original message", "Reported by:"):
        assert section in text, section
    for phrase in want["human"]:
        assert phrase in text, phrase


def test_returned_original():
    _, msg = load("ndr-ret-full.eml")
    inner = parts_of(msg)[2].get_payload()[0]
    assert inner["Subject"] == "Quarterly report"
    assert "the quarterly report is below." in inner.get_content()
    _, msg = load("ndr-two-causes.eml")
    headers = parts_of(msg)[2].get_content()
    assert "Message-ID: <original-123@sender.example>" in headers
    assert "Hello Bob" not in headers


def flufl():
    try:
        from flufl import bounce
    except ImportError:
        pytest.fail("flufl.bounce missing: apt-get install python3-flufl.bounce "
                    "(Makefile TEST_PKGS)")
    return bounce


@pytest.mark.parametrize("name", REPORTS)
@pytest.mark.parametrize("policy", [email.policy.default, email.policy.compat32],
                         ids=["default", "compat32"])
def test_flufl_bounce(name, policy):
    bounce = flufl()
    want = EXPECTED[name]
    _, msg = load(name, policy)
    assert bounce.scan_message(msg) == want["flufl_failed"]
    delayed, failed = bounce.all_failures(msg)
    assert failed == want["flufl_failed"]
    assert delayed == want.get("flufl_delayed", set())


def run_ndr(*args):
    if not Path(MXGATE_BIN).exists():
        pytest.skip(f"{MXGATE_BIN} not built")
    proc = subprocess.run([MXGATE_BIN, "ndr", *args], capture_output=True, text=True,
                          timeout=30)
    if "unknown command 'ndr'" in proc.stderr:
        pytest.skip("main.c does not dispatch `mxgate ndr` yet")
    return proc


def test_cli_known_code():
    proc = run_ndr("5.7.1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("5.7.1  delivery not authorized\n")
    assert "How to fix:" in proc.stdout and "mxgate explain" in proc.stdout


def test_cli_unknown_code_falls_back():
    proc = run_ndr("5.7.99")
    assert proc.returncode == 1, proc.stderr
    assert "5.7.99: unknown code" in proc.stdout
    assert "\n5.7.0  " in proc.stdout


def test_cli_malformed_code():
    proc = run_ndr("5.7")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "not an enhanced status code" in proc.stderr
    assert "usage: mxgate ndr CODE" in proc.stderr
