"""The DATA stream: the only end of data is <CRLF>.<CRLF>.

SMTP smuggling: a message hidden behind a non-standard end-of-data sequence (<LF>.<LF>,
<CR>.<CR>, ...) must stay inside the rejected data and never run as commands. Also
transparency: dot-unstuffing, empty last lines, an end of data split over TCP segments."""
import re
import time

import pytest

from conftest import queued_id, send_message

SMUGGLED = (b"MAIL FROM:<evil@other.example>\r\n"
            b"RCPT TO:<victim@example.test>\r\n"
            b"DATA\r\n"
            b"Subject: smuggled\r\n"
            b"\r\n"
            b"evil\r\n")

VARIANTS = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CR.CR": b"\r.\r",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CRLF.CR": b"\r\n.\r",
    "LF.CR": b"\n.\r",
    "bare-LF": b"\n",
    "bare-CR": b"\r",
}


def open_data(c):
    c.greeting()
    c.ehlo()
    assert c.cmd("MAIL FROM:<sender@client.example>").code == 250
    assert c.cmd("RCPT TO:<someone@example.test>").code == 250
    r = c.cmd("DATA")
    assert r.code == 354, r


def replies_until_help(c, limit=8):
    """Reads replies up to and including the 214 that answers a fence HELP."""
    out = []
    for _ in range(limit):
        out.append(c.reply())
        if out[-1].code == 214:
            return out
    pytest.fail(f"no reply to the fence HELP among {out}")


def bare_kinds(data):
    """Which of "bare LF" / "bare CR" occur in data."""
    kinds = set()
    if re.search(rb"(?<!\r)\n", data):
        kinds.add("bare LF")
    if re.search(rb"\r(?!\n)", data):
        kinds.add("bare CR")
    return kinds


def assert_clean_message_still_queued(srv, c):
    assert c.cmd("MAIL FROM:<sender@client.example>").code == 250
    assert c.cmd("RCPT TO:<someone@example.test>").code == 250
    assert c.cmd("DATA").code == 354
    c.send(b"Subject: clean\r\n\r\nclean body\r\n.\r\n")
    qid = queued_id(c.reply())
    files = srv.queued()
    assert [p.name for p in files] == [qid]
    assert srv.queue_file(qid).message == b"Subject: clean\r\n\r\nclean body\r\n"


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_smuggled_message_stays_inside_rejected_data(mxgate, variant):
    data = b"Subject: first\r\n\r\nhello" + variant + SMUGGLED + b"\r\n.\r\n"
    with mxgate.raw() as c:
        open_data(c)
        c.send(data + b"HELP\r\n")     # HELP is a fence: its 214 follows the data's reply
        replies = replies_until_help(c)
        assert len(replies) == 2, f"expected one reply to the data, got {replies}"
        r = replies[0]
        assert (r.code, r.enhanced) == (550, "5.6.11"), r
        assert any(kind in r.message for kind in bare_kinds(data)), r
        assert mxgate.queued() == [], "nothing may be queued"
        assert mxgate.tmp_files() == []
        assert_clean_message_still_queued(mxgate, c)
    assert "from=<evil@other.example>" not in mxgate.log_text(), "smuggled message was queued"


@pytest.mark.parametrize("variant", [b"\n.\n", b"\r.\r\n", b"\r\n.\n"],
                         ids=["LF.LF", "CR.CRLF", "CRLF.LF"])
def test_smuggling_sent_byte_by_byte(mxgate, variant):
    data = b"Subject: first\r\n\r\nhello" + variant + SMUGGLED + b"\r\n.\r\n"
    with mxgate.raw() as c:
        open_data(c)
        for i in range(len(data)):
            c.send(data[i:i + 1])
        c.send(b"HELP\r\n")
        replies = replies_until_help(c)
        assert [(r.code, r.enhanced) for r in replies] == [(550, "5.6.11"), (214, "2.0.0")]
    assert mxgate.queued() == []


def test_bare_lf_in_header_is_rejected(mxgate):
    with mxgate.raw() as c:
        open_data(c)
        c.send(b"Subject: x\nX-Other: y\r\n\r\nbody\r\n.\r\n")
        r = c.reply()
        assert (r.code, r.enhanced) == (550, "5.6.11")
        assert "bare LF" in r.message
    assert mxgate.queued() == []


# ----------------------------------------------------------------------------------------
# Transparency (RFC 5321 4.5.2)


def test_dot_unstuffing(mxgate):
    wire = (b"Subject: dots\r\n\r\n"
            b"..\r\n"            # "."
            b"...\r\n"           # ".."
            b"....x\r\n"         # "...x"
            b"..x\r\n"           # ".x"
            b"a.b\r\n"
            b"last\r\n")
    qid = queued_id(send_message(mxgate.port, wire))
    assert mxgate.queue_file(qid).message == (b"Subject: dots\r\n\r\n"
                                              b".\r\n..\r\n...x\r\n.x\r\na.b\r\nlast\r\n")


def test_last_line_empty(mxgate):
    body = b"Subject: empty last line\r\n\r\ntext\r\n\r\n"
    qid = queued_id(send_message(mxgate.port, body))
    assert mxgate.queue_file(qid).message == body


def test_empty_message(mxgate):
    with mxgate.raw() as c:
        open_data(c)
        c.send(b".\r\n")
        qid = queued_id(c.reply())
    q = mxgate.queue_file(qid)
    assert q.message == b""
    assert q.end == len(q.body)


def test_end_of_data_split_over_segments(mxgate):
    with mxgate.raw() as c:
        open_data(c)
        for chunk in (b"Subject: split\r\n\r\nbody", b"\r", b"\n", b".", b"\r", b"\n"):
            c.send(chunk)
            time.sleep(0.05)
        qid = queued_id(c.reply())
    assert mxgate.queue_file(qid).message == b"Subject: split\r\n\r\nbody\r\n"


def test_dot_line_inside_a_line_is_not_end_of_data(mxgate):
    with mxgate.raw() as c:
        open_data(c)
        c.send(b"Subject: x\r\n\r\nnot the end: .\r\n")
        assert c.nothing_more(0.3), "the server must still be in DATA"
        c.send(b".\r\n")
        qid = queued_id(c.reply())
    assert mxgate.queue_file(qid).message == b"Subject: x\r\n\r\nnot the end: .\r\n"
