"""The command line and configuration checking: every problem is reported as FILE:LINE and stops
both check-config and serve; help and unknown commands behave like a CLI should."""
import socket

import pytest

from conftest import free_port, run_mxgate


def write_config(tmp_path, body, name="mxgate.conf"):
    """Writes a config whose [server] section listens on a free port; returns (path, port)."""
    port = free_port()
    path = tmp_path / name
    path.write_text(f"[server]\nlisten = 127.0.0.1:{port}\ndata_dir = {tmp_path}/data\n" + body)
    return path, port


def line_of(path, text):
    """1-based number of the line containing text."""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return n
    raise AssertionError(f"{text!r} not in {path}")


VALID = "[log]\ndebug = no\n"


def test_valid_config_passes(tmp_path, mxgate_bin):
    path, _ = write_config(tmp_path, VALID)
    res = run_mxgate("-c", str(path), "check-config")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"{path}: ok"


@pytest.mark.parametrize("body, marker, words", [
    ("frobnicate = 1\n", "frobnicate", ["unknown key 'frobnicate'"]),
    ("max_errors = 0\n", "max_errors", ["bad value '0'", "max_errors"]),
    ("max_message_size = 10X\n", "max_message_size", ["bad value '10X'"]),
    ("workers = many\n", "workers", ["bad value 'many'"]),
    ("listen = nowhere\n", "nowhere", ["bad value 'nowhere'"]),
    ("proxy_from = 10.0.0.1/8\n", "proxy_from", ["bad value '10.0.0.1/8'"]),
    ("[log]\ndebug = maybe\n", "maybe", ["bad value 'maybe'"]),
    ("[bogus]\nkey = 1\n", "[bogus]", ["unknown section [bogus]"]),
], ids=["unknown-key", "out-of-bounds", "bad-size", "not-a-number", "bad-listen",
        "cidr-host-bits", "bad-bool", "unknown-section"])
def test_check_config_reports_file_and_line(tmp_path, mxgate_bin, body, marker, words):
    path, _ = write_config(tmp_path, body + VALID)
    res = run_mxgate("-c", str(path), "check-config")
    assert res.returncode == 1, res
    prefix = f"{path}:{line_of(path, marker)}: "
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, res.stderr
    for w in words:
        assert w in lines[0], lines[0]
    assert "ERROR: LeakSanitizer" not in res.stderr


@pytest.mark.parametrize("setting, ok", [
    ("max_message_size = 1023", False), ("max_message_size = 1K", True),
    ("max_message_size = 2G", True), ("max_message_size = 3G", False),
    ("workers = 64", True), ("workers = 65", False),
    ("max_recipients = 100000", True), ("max_recipients = 100001", False),
    ("command_timeout = 3600", True), ("command_timeout = 3601", False),
    ("data_timeout = 0", False), ("max_sessions = 0", False),
    ("listen = 127.0.0.1:0", False), ("proxy_from = ::1/128, 10.0.0.0/8", True),
])
def test_bounds(tmp_path, mxgate_bin, setting, ok):
    path, _ = write_config(tmp_path, setting + "\n" + VALID)
    res = run_mxgate("-c", str(path), "check-config")
    assert res.returncode == (0 if ok else 1), res.stderr
    if not ok:
        assert f"{path}:{line_of(path, setting)}: bad value " in res.stderr


def test_every_problem_is_reported(tmp_path, mxgate_bin):
    path, _ = write_config(tmp_path, "frobnicate = 1\nmax_errors = 0\n[log]\ndebug = maybe\n"
                                     "[bogus]\nkey = 1\n" + VALID)
    res = run_mxgate("-c", str(path), "check-config")
    assert res.returncode == 1
    for marker in ("frobnicate", "max_errors", "maybe", "[bogus]"):
        assert f"{path}:{line_of(path, marker)}: " in res.stderr, (marker, res.stderr)


def test_empty_unknown_section_is_reported(tmp_path, mxgate_bin):
    path, _ = write_config(tmp_path, "[bogus]\n" + VALID)
    res = run_mxgate("-c", str(path), "check-config")
    assert res.returncode == 1, res.stdout
    assert f"{path}:{line_of(path, '[bogus]')}: " in res.stderr


def test_overlong_line_is_an_error_not_two_lines(tmp_path, mxgate_bin):
    # a line longer than the reader's buffer must not have its tail parsed as a line of its own
    path, _ = write_config(tmp_path, "hostname = " + "a" * 300 + " max_errors = 0\n" + VALID)
    res = run_mxgate("-c", str(path), "check-config")
    assert res.returncode == 1
    assert f"{path}:{line_of(path, 'hostname')}: " in res.stderr, res.stderr
    assert "max_errors" not in res.stderr


def test_overlong_comment_is_fine(tmp_path, mxgate_bin):
    path, _ = write_config(tmp_path, "# " + "c" * 600 + " = x\n" + VALID)
    res = run_mxgate("-c", str(path), "check-config")
    assert res.returncode == 0, res.stderr


def test_whole_file_checks(tmp_path, mxgate_bin):
    path = tmp_path / "noproxy.conf"
    path.write_text(f"[server]\nlisten = 127.0.0.1:{free_port()} proxy\n"
                    f"data_dir = {tmp_path}/data\n" + VALID)
    res = run_mxgate("-c", str(path), "check-config")
    assert res.returncode == 1
    assert f"{path}: listen 127.0.0.1 is marked proxy but proxy_from is empty" in res.stderr


def test_serve_refuses_a_bad_config_without_listening(tmp_path, mxgate_bin):
    path, port = write_config(tmp_path, "frobnicate = 1\n" + VALID)
    res = run_mxgate("-c", str(path), "serve", cwd=tmp_path)
    assert res.returncode == 1
    assert f"{path}:{line_of(path, 'frobnicate')}: unknown key 'frobnicate'" in res.stderr
    assert "not starting" in res.stderr
    assert "listening on" not in res.stderr
    assert not (tmp_path / "data").exists(), "serve got past the config check"
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_serve_with_an_unusable_tls_key_exits_1(tmp_path, mxgate_bin, tls_files):
    cert, _ = tls_files
    path, port = write_config(tmp_path, f"tls_cert = {cert}\ntls_key = {cert}\n" + VALID)
    res = run_mxgate("-c", str(path), "serve", cwd=tmp_path)
    assert res.returncode == 1
    assert f"cannot load private key {cert}" in res.stderr
    # the master reads the key (while still root), before any worker starts
    assert "mxgate starting" not in res.stderr
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert marker not in res.stderr


def test_missing_config_file(tmp_path, mxgate_bin):
    res = run_mxgate("-c", str(tmp_path / "nope.conf"), "check-config")
    assert res.returncode == 1
    assert f"{tmp_path / 'nope.conf'}: cannot open" in res.stderr


def test_short_help_option(mxgate_bin):
    res = run_mxgate("-h")
    assert res.returncode == 0
    assert res.stdout.startswith("usage: mxgate")


def test_long_help_option(mxgate_bin):
    res = run_mxgate("--help")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: mxgate")


def test_serve_help(mxgate_bin):
    res = run_mxgate("serve", "--help")
    assert "ERROR: LeakSanitizer" not in res.stderr
    assert res.returncode == 0
    assert res.stdout.startswith("usage: mxgate [-c FILE] serve")


def test_check_config_help(mxgate_bin):
    res = run_mxgate("check-config", "--help")
    assert "ERROR: LeakSanitizer" not in res.stderr
    assert res.returncode == 0
    assert res.stdout.startswith("usage: mxgate [-c FILE] check-config")


def test_show_config_help(mxgate_bin):
    res = run_mxgate("show-config", "--help")
    assert res.returncode == 0
    assert res.stdout.startswith("usage: mxgate show-config")


@pytest.mark.parametrize("args", [["frobnicate"], ["serve", "extra-argument"], []],
                         ids=["unknown-command", "extra-argument", "no-command"])
def test_usage_errors_exit_2(mxgate_bin, args):
    res = run_mxgate(*args)
    assert res.returncode == 2, res
    assert "usage: mxgate" in res.stderr
