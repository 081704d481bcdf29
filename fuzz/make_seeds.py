#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/NAME/ (see fuzz/README.md).

Seeds are small, real inputs: SMTP command lines with every parameter, DATA streams with the
smuggling variants, PROXY v1/v2 headers, DNS responses as a DNSBL server sends them, the
example config, queue files in qfile_envelope's format. Run it from anywhere; it rewrites the
seeds it knows and leaves other files (regression inputs found by fuzzing) alone.
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_smtp_command: mode byte + command line (fuzz_smtp_command.c) -------------------
FROM, NULL, POSTMASTER, UTF8 = 0x01, 0x02, 0x04, 0x08
MAIL_MODE = NULL  # as commands.c: MAIL allows <>, RCPT allows <Postmaster>
RCPT_MODE = POSTMASTER


def smtp_commands():
    seeds = {
        "mail-all-params": (MAIL_MODE, "MAIL FROM:<alice@example.org> SIZE=12345 BODY=8BITMIME "
                            "SMTPUTF8 RET=HDRS ENVID=QQ314159+2B1"),
        "mail-null": (MAIL_MODE, "MAIL FROM:<> RET=FULL"),
        "mail-lower-space": (MAIL_MODE, "mail from: <a.b-c+tag@sub.example.org> BODY=7BIT"),
        "mail-utf8": (MAIL_MODE | UTF8, "MAIL FROM:<jöe@bücher.example> SMTPUTF8"),
        "mail-envid-orcpt-max": (MAIL_MODE | 0x10, "MAIL FROM:<x@y.z> ENVID=" + "A+2B" * 20),
        "rcpt-notify-orcpt": (RCPT_MODE, "RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE,DELAY "
                              "ORCPT=rfc822;bob+40example.test"),
        "rcpt-notify-never": (RCPT_MODE, "RCPT TO:<bob@example.test> NOTIFY=NEVER"),
        "rcpt-postmaster": (RCPT_MODE, "RCPT TO:<Postmaster>"),
        "rcpt-route": (RCPT_MODE, "RCPT TO:<@relay1.example,@relay2.example:joe@example.test>"),
        "rcpt-quoted": (RCPT_MODE, 'RCPT TO:<"john \\"q\\" smith"@example.test>'),
        "rcpt-literal4": (RCPT_MODE, "RCPT TO:<user@[192.0.2.1]>"),
        "rcpt-literal6": (RCPT_MODE, "RCPT TO:<user@[IPv6:2001:db8::1]>"),
        "rcpt-utf8-orcpt": (RCPT_MODE | UTF8, "RCPT TO:<δοκιμή@παράδειγμα.δοκιμή> "
                            "ORCPT=utf-8;\\x{3B4}\\x{3BF}+40example.test"),
        "rcpt-long-label": (RCPT_MODE, "RCPT TO:<u@" + "a" * 63 + "." + "b" * 63 + ".example>"),
        "rcpt-many-params": (RCPT_MODE, "RCPT TO:<u@example.test>" + " X-A=1" * 17),
        "rcpt-percent-hack": (RCPT_MODE, "RCPT TO:<user%other.example@example.test>"),
        "ehlo": (0, "EHLO mail.example.org"),
        "helo-literal": (0, "HELO [192.0.2.1]"),
        "data": (0, "DATA"),
        "rset": (0, "RSET"),
        "noop": (0, "NOOP hello"),
        "quit": (0, "QUIT"),
        "help": (0, "HELP MAIL"),
        "vrfy": (0, "VRFY postmaster"),
        "starttls": (0, "STARTTLS"),
        "unknown-verb": (0, "XCLIENT ADDR=192.0.2.1"),
        "domain-utf8": (UTF8 | FROM, "bücher.example"),
        "notify-list": (FROM, "SUCCESS,DELAY"),
    }
    for name, (mode, line) in seeds.items():
        write("smtp_command", name, bytes([mode]) + line.encode("utf-8"))


# ---- fuzz_datastream: max byte, cut count, cuts, stream (fuzz_datastream.c) ---------------
UNLIMITED = 0xff


def ds(max_byte, cuts, stream):
    return bytes([max_byte, len(cuts)] + list(cuts)) + stream


def datastreams():
    msg = (b"Received: from mail.example.org\r\nFrom: alice@example.org\r\nTo: bob@example.test\r\n"
           b"Subject: hello\r\n\r\nHello Bob,\r\n..a line that starts with a dot\r\n.\r\n")
    smuggled = b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n" \
               b"From: ceo@example.test\r\n\r\nwire the money\r\n"
    seeds = {
        "message": ds(UNLIMITED, [], msg),
        "message-bytewise": ds(UNLIMITED, [1], msg),
        "message-chunks": ds(UNLIMITED, [3, 7, 1, 64], msg + b"QUIT\r\n"),
        "empty": ds(UNLIMITED, [], b".\r\n"),
        "pipelined-after-end": ds(UNLIMITED, [5], b"x\r\n.\r\nQUIT\r\n"),
        "too-big": ds(5, [], msg),
        "line-too-long": ds(UNLIMITED, [200, 200], b"A" * 999 + b"\r\n" + b"B" * 1001 + b"\r\n.\r\n"),
        "line-at-limit": ds(UNLIMITED, [], b"." + b"C" * 997 + b"\r\n.\r\n"),
        "crlf-split-at-dot": ds(UNLIMITED, [2, 1, 1, 1], b"a\r\n.\r\n"),
    }
    variants = {
        "lf-dot-lf": b"\n.\n",
        "cr-dot-cr": b"\r.\r",
        "lf-dot-crlf": b"\n.\r\n",
        "crlf-dot-lf": b"\r\n.\n",
        "crlf-dot-cr": b"\r\n.\r",
        "cr-dot-crlf": b"\r.\r\n",
        "crlf-dot-cr-cr-lf": b"\r\n.\r\r\n",
        "crlf-dot-space-crlf": b"\r\n. \r\n",
        "crlf-dot-nul-crlf": b"\r\n.\x00\r\n",
    }
    for name, end in variants.items():
        seeds["smuggle-" + name] = ds(UNLIMITED, [], b"body" + end + smuggled + b"\r\n.\r\n")
    for name, data in seeds.items():
        write("datastream", name, data)


# ---- fuzz_proxy: the bytes before SMTP (fuzz_proxy.c) -------------------------------------
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(ver_cmd, fam, body):
    return V2_SIG + bytes([ver_cmd, fam]) + struct.pack(">H", len(body)) + body


def proxies():
    tcp4 = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack(">HH", 56324, 25)
    a6 = bytes.fromhex("20010db8000000000000000000000001")
    b6 = bytes.fromhex("20010db8000000000000000000000002")
    tcp6 = a6 + b6 + struct.pack(">HH", 56324, 25)
    tlv_authority = b"\x02" + struct.pack(">H", 16) + b"mx.example.test\x00"[:16]
    tlv_ssl = b"\x20" + struct.pack(">H", 5) + b"\x07\x00\x00\x00\x00"
    unix = b"/var/run/a.sock".ljust(108, b"\x00") + b"/var/run/b.sock".ljust(108, b"\x00")
    seeds = {
        "v1-tcp4": b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO client.example\r\n",
        "v1-tcp6": b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 25\r\n",
        "v1-tcp6-mapped": b"PROXY TCP6 ::ffff:192.0.2.1 ::1 1 65535\r\n",
        "v1-tcp6-longest": b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
                           b"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 65535\r\n",
        "v1-unknown": b"PROXY UNKNOWN\r\n",
        "v1-unknown-addrs": b"PROXY UNKNOWN ffff:f:f:f:f:f:f:f ffff:f:f:f:f:f:f:f 65535 65535\r\n",
        "v1-smtp-instead": b"EHLO client.example\r\n",
        "v2-tcp4": v2(0x21, 0x11, tcp4) + b"EHLO client.example\r\n",
        "v2-tcp6": v2(0x21, 0x21, tcp6),
        "v2-tcp4-tlvs": v2(0x21, 0x11, tcp4 + tlv_authority + tlv_ssl),
        "v2-local": v2(0x20, 0x00, b""),
        "v2-local-with-addrs": v2(0x20, 0x11, tcp4),
        "v2-unspec": v2(0x21, 0x00, b""),
        "v2-unix": v2(0x21, 0x31, unix),
        "v2-udp4": v2(0x21, 0x12, tcp4),
    }
    for name, data in seeds.items():
        write("proxy", name, data)


# ---- fuzz_dnsbl_answer: mode byte + DNS response (fuzz_dnsbl_answer.c) --------------------
T_A, T_TXT, T_AAAA, T_MX, T_SOA = 1, 16, 28, 15, 6
R_A, R_TXT, R_AAAA, R_MX = 0, 1, 2, 3  # enum resolver_type
CODES_DEFAULT, CODES_ONE, CODES_ALL, CODES_SEVERAL = 0 << 2, 1 << 2, 2 << 2, 3 << 2


def qname(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


QNAME_PTR = b"\xc0\x0c"  # the question's name, as servers compress it


def rr(name, rtype, ttl, rdata):
    return name + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def soa(zone_ptr, ttl=3600, minimum=900):
    rdata = qname("ns1.dnsbl.example") + qname("hostmaster.dnsbl.example") + \
        struct.pack(">IIIII", 2024010101, 3600, 600, 604800, minimum)
    return rr(zone_ptr, T_SOA, ttl, rdata)


def response(name, qtype, rcode, answers=(), authority=(), qid=0x4d58):
    flags = 0x8180 | rcode  # QR, RD, RA
    hdr = struct.pack(">HHHHHH", qid, flags, 1, len(answers), len(authority), 0)
    return hdr + qname(name) + struct.pack(">HH", qtype, 1) + b"".join(answers) + b"".join(authority)


def txt(*strings):
    return b"".join(bytes([len(s)]) + s for s in strings)


def dns_answers():
    name = "2.0.0.127.zen.dnsbl.example"
    listed = "7.2.0.192.zen.dnsbl.example"
    zone_ptr = b"\xc0\x16"  # into the question name, at "zen...": 12 + len("\x012\x010\x010\x03127")
    seeds = {
        "a-127.0.0.2": (R_A | CODES_DEFAULT, response(name, T_A, 0, [
            rr(QNAME_PTR, T_A, 300, bytes([127, 0, 0, 2]))])),
        "a-two-codes": (R_A | CODES_SEVERAL, response(listed, T_A, 0, [
            rr(QNAME_PTR, T_A, 300, bytes([127, 0, 0, 2])),
            rr(QNAME_PTR, T_A, 60, bytes([127, 0, 0, 11]))])),
        "a-refused-code": (R_A | CODES_ALL, response(name, T_A, 0, [
            rr(QNAME_PTR, T_A, 300, bytes([127, 255, 255, 254]))])),
        "a-outside-127": (R_A | CODES_ONE, response(name, T_A, 0, [
            rr(QNAME_PTR, T_A, 300, bytes([198, 51, 100, 80]))])),
        "a-nxdomain-soa": (R_A, response(listed, T_A, 3, [], [soa(zone_ptr, 3600, 900)])),
        "a-nxdomain-bare": (R_A, response(listed, T_A, 3)),
        "a-nodata-soa": (R_A, response(name, T_A, 0, [], [soa(zone_ptr, 120, 3600)])),
        "a-refused": (R_A, response(name, T_A, 5)),
        "a-servfail": (R_A, response(name, T_A, 2)),
        "a-cname-chain": (R_A, response(name, T_A, 0, [
            rr(QNAME_PTR, 5, 300, qname("alias.dnsbl.example")),
            rr(qname("alias.dnsbl.example"), T_A, 300, bytes([127, 0, 0, 4]))])),
        "a-timeout": (R_A | 0x10, b""),
        "txt-listed": (R_TXT, response(name, T_TXT, 0, [
            rr(QNAME_PTR, T_TXT, 300, txt(b"Listed by SBL, see https://check.dnsbl.example/",
                                          b"query/ip/127.0.0.2"))])),
        "txt-two-records": (R_TXT, response(name, T_TXT, 0, [
            rr(QNAME_PTR, T_TXT, 300, txt(b"first\r\nline")),
            rr(QNAME_PTR, T_TXT, 300, txt(b"second \xff record"))])),
        "txt-nxdomain": (R_TXT, response(listed, T_TXT, 3, [], [soa(zone_ptr)])),
        "aaaa": (R_AAAA, response("mx.example.test", T_AAAA, 0, [
            rr(QNAME_PTR, T_AAAA, 600, bytes.fromhex("20010db8000000000000000000000025"))])),
        "mx-two": (R_MX, response("example.test", T_MX, 0, [
            rr(QNAME_PTR, T_MX, 3600, struct.pack(">H", 10) + qname("mx1.example.test")),
            rr(QNAME_PTR, T_MX, 3600, struct.pack(">H", 20) + b"\x03mx2\xc0\x0c")])),
        "mx-null": (R_MX, response("example.test", T_MX, 0, [
            rr(QNAME_PTR, T_MX, 3600, struct.pack(">H", 0) + b"\x00")])),
    }
    for name_, (mode, data) in seeds.items():
        write("dnsbl_answer", name_, bytes([mode]) + data)


# ---- fuzz_config: the file (fuzz_config.c) ------------------------------------------------
EMBEDDED = """# mxgate embedded default: loopback only, queue and policy store under ./var.
[server]
hostname = mxgate.localhost
listen = 127.0.0.1:2525
data_dir = ./var
workers = 1
tls_cert = ./var/tls/cert.pem
tls_key = ./var/tls/key.pem
"""

PROXY_AND_LISTS = """[server]
hostname = mx.example.net
listen = 0.0.0.0:25
listen = [::]:25
listen = 127.0.0.1:10025 proxy
proxy_from = 127.0.0.1/32, 10.0.0.0/8 2001:db8::/32
max_message_size = 10M
postmaster = postmaster@example.net

[log]
syslog = yes

[policy]
resolver = [2001:db8::53]:53
dnsbl_threshold = 2

[dnsbl zen]
zone = zen.spamhaus.org
display_name = Spamhaus ZEN
codes = 127.0.0.2-127.0.0.11, 127.0.0.20
weight = 2
txt = yes
url = https://check.spamhaus.org/listed/?searchterm={ip}

[dnsbl dnswl]
zone = list.dnswl.org
codes = 127.0.2.0-127.0.255.255
weight = -3
ipv6 = no

[delivery]
retry_first = 60
retry_max = 600
"""

ERRORS = """key = outside
[server]
listen = nowhere
unknown_key = 1
max_sessions = 0
[nosuchsection]
[dnsbl BAD NAME]
zone = x
[dnsbl w0]
weight = 0
"""


def configs():
    os.makedirs(os.path.join(CORPUS, "config"), exist_ok=True)
    shutil.copyfile(os.path.join(HERE, "..", "etc", "mxgate.conf.example"),
                    os.path.join(CORPUS, "config", "mxgate.conf.example"))
    write("config", "embedded-default", EMBEDDED)
    write("config", "proxy-and-lists", PROXY_AND_LISTS)
    write("config", "errors", ERRORS)
    write("config", "long-line", "[server]\nlisten = 127.0.0.1:25\n# " + "x" * 300 + "\nhostname = "
          + "h" * 300 + "\n")


# ---- fuzz_qfile: a queue file (fuzz_qfile.c, docs/queue-format.md) ------------------------
def qescape(v):
    out = ""
    for c in v.encode("utf-8"):
        out += "%%%02X" % c if c <= 0x20 or c in (0x25, 0x7f) else chr(c)
    return out


def qfile(env, rcpts, body):
    lines = ["MXGQ 1"]
    for key in ("id", "arrival", "session", "client", "helo", "tls", "from"):
        lines.append(key + " " + qescape(env[key]))
    if env.get("mail-params"):
        lines.append("mail-params " + qescape(env["mail-params"]))
    for r in rcpts:
        lines.append("rcpt " + qescape(r[0]))
        lines.append("rcpt-tenant " + qescape(r[1]))
        lines.append("rcpt-route " + qescape(r[2]))
        if r[3]:
            lines.append("rcpt-params " + qescape(r[3]))
    head = ("\n".join(lines) + "\nbody\n").encode("latin-1")
    return head + body + b"end %d\n" % len(body)


def qfiles():
    env = {"id": "6B09F5F4D0122013C501", "arrival": "1795814900", "session": "bh49jv5eftia",
           "client": "192.0.2.7", "helo": "mail.example.org",
           "tls": "TLSv1.3:TLS_AES_256_GCM_SHA384:256", "from": "alice@example.org",
           "mail-params": "BODY=8BITMIME SMTPUTF8"}
    rcpts = [("someone@example.test", "default", "127.0.0.1:2600", "NOTIFY=FAILURE"),
             ("other@example.test", "default", "127.0.0.1:2600", "")]
    body = (b"Received: from mail.example.org (192.0.2.7) by mx.example.net\r\n"
            b"Subject: hi\r\n\r\nhello\r\n")
    write("qfile", "golden", qfile(env, rcpts, body))
    null = dict(env, **{"from": "<>", "tls": "-", "mail-params": ""})
    write("qfile", "null-sender", qfile(null, rcpts[1:], b"Received: x\r\n\r\n"))
    odd = dict(env, helo="bad helo\r\n%", **{"mail-params": "ENVID=a+2Bb RET=HDRS"})
    write("qfile", "escapes-nul-body", qfile(odd, [("\"a b\"@example.test", "t", "[2001:db8::1]:25",
                                                     "ORCPT=rfc822;a+20b@example.test")],
                                              b"x\x00y\r\n"))
    write("qfile", "truncated", qfile(env, rcpts, body)[:-9])


if __name__ == "__main__":
    smtp_commands()
    datastreams()
    proxies()
    dns_answers()
    configs()
    qfiles()
