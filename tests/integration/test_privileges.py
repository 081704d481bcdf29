"""Privileges: `serve` started as root binds its ports, gives data_dir to [server] user and runs
every process as that user; root and unknown users are refused; admin commands run by root
leave data_dir to its owner; a root-only TLS key is read before root is dropped."""
import os
import pwd
import shutil
import signal
import smtplib
import ssl
import subprocess
from pathlib import Path

import pytest

from conftest import (CLIENT_HELO, MXGATE_BIN, STORE_FILE, IO_TIMEOUT, queued_id,
                      sanitizer_env, send_message, tls_client_context, wait_until)
from limits_helpers import proc_ids, process_tree
from policy_helpers import Client


def _mxgate_user():
    try:
        return pwd.getpwnam("mxgate")
    except KeyError:
        return None


USER = _mxgate_user()
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or USER is None,
                                reason="needs root and the system user mxgate")

EXIT_TIMEOUT = 15.0          # seconds for a refused `serve` to exit


def assert_owned_by_mxgate(top):
    """Every file and directory under `top` (and `top`) belongs to mxgate, with no group or
    other permission bits; returns the paths checked."""
    top = Path(top)
    paths = [top, *sorted(top.rglob("*"))]
    bad = []
    for p in paths:
        st = p.lstat()
        if (st.st_uid, st.st_gid) != (USER.pw_uid, USER.pw_gid) or st.st_mode & 0o077:
            bad.append(f"{p}: uid={st.st_uid} gid={st.st_gid} mode={oct(st.st_mode & 0o7777)}")
    assert not bad, "not mxgate's alone:\n" + "\n".join(bad)
    return paths


def serve_until_exit(srv, timeout=EXIT_TIMEOUT):
    """Runs `mxgate serve` for srv's config expecting it to stop by itself; returns
    (exit status, output). A server that keeps running is killed and the test fails."""
    with open(srv.workdir / "serve.out", "wb+") as out:
        proc = subprocess.Popen([MXGATE_BIN, "-c", str(srv.conf_path), "serve"],
                                cwd=srv.workdir, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out, env=sanitizer_env(), start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
            out.seek(0)
            pytest.fail(f"serve kept running; output:\n{out.read().decode(errors='replace')}")
        out.seek(0)
        return proc.returncode, out.read().decode("utf-8", "replace")


def test_serve_runs_every_process_as_mxgate(mxgate_factory):
    srv = mxgate_factory(settings={"workers": 2})
    m = srv.wait_for_log(r"running as user (\S+) \(uid (\d+)\)")
    assert (m.group(1), int(m.group(2))) == ("mxgate", USER.pw_uid), m.group(0)
    srv.wait_for_log(r"qmgr started")
    pids = process_tree(srv.proc.pid)
    assert srv.proc.pid in pids
    assert len(pids) >= 4, f"master, 2 workers and the queue manager: {pids}"
    for pid in pids:
        ids = proc_ids(pid)
        if ids is None:
            continue                       # exited in between
        assert ids["uid"][:3] == [USER.pw_uid] * 3, f"pid {pid} ({ids['name']}): {ids}"
        assert 0 not in ids["gid"][:3] and 0 not in ids["groups"], \
            f"pid {pid} ({ids['name']}) keeps group root: {ids}"


def test_data_dir_belongs_to_mxgate(mxgate_factory):
    srv = mxgate_factory()
    qid = queued_id(send_message(srv.port, b"Subject: owned\r\n\r\nx\r\n"))
    paths = assert_owned_by_mxgate(srv.data_dir)
    names = {p.name for p in paths}
    assert STORE_FILE in names and qid in names, names
    assert srv.queue_dir in paths


@pytest.mark.parametrize("user, texts", [
    ("root", ["never runs as root"]),
    ("nosuchuser", ["nosuchuser", "useradd"]),
])
def test_unusable_user_is_refused_at_start(mxgate_factory, user, texts):
    srv = mxgate_factory(settings={"user": user}, start=False)
    status, out = serve_until_exit(srv)
    assert status != 0, out
    for t in texts:
        assert t in out, out
    assert "listening on" not in out and "worker started" not in out, out


def test_admin_command_as_root_keeps_files_mxgate_s(mxgate_factory):
    srv = mxgate_factory(proxy=True)
    assert_owned_by_mxgate(srv.data_dir)                 # given away at start
    srv.admin("tenant", "add", "second", "--route", "127.0.0.1:2601")
    srv.admin("domain", "add", "second", "second.test")
    assert_owned_by_mxgate(srv.data_dir)                 # policy.db-wal/-shm included

    def accepted():                                      # the server still reads the store
        with Client(srv, "192.0.2.60") as c:
            c.mail()
            r = c.rcpt("x@second.test")
            c.quit()
            return r.code == 250
    assert wait_until(accepted, 5, interval=0.2), "the new domain never reached the server"
    assert_owned_by_mxgate(srv.data_dir)


def test_root_only_tls_key_works(mxgate_factory, tls_files, tmp_path):
    keydir = tmp_path / "tls"
    keydir.mkdir()
    cert, key = keydir / "cert.pem", keydir / "key.pem"
    shutil.copyfile(tls_files[0], cert)
    shutil.copyfile(tls_files[1], key)
    os.chown(key, 0, 0)
    os.chmod(key, 0o600)
    os.chmod(keydir, 0o711)
    srv = mxgate_factory(extra_server_lines=[f"tls_cert = {cert}", f"tls_key = {key}"])
    with smtplib.SMTP(srv.host, srv.port, local_hostname=CLIENT_HELO, timeout=IO_TIMEOUT) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        code, _ = s.starttls(context=tls_client_context())
        assert code == 220
        assert isinstance(s.sock, ssl.SSLSocket)
        code, _ = s.ehlo()
        assert code == 250
        assert s.sendmail("a@client.example", ["x@example.test"],
                          b"Subject: tls\r\n\r\nx\r\n") == {}
        try:
            s.quit()
        except smtplib.SMTPServerDisconnected:
            pass                           # the 221 over TLS: a known bug of its own
    assert len(srv.queued()) == 1
    st = key.stat()
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600), "the key stays root's"
