"""Helpers for the policy administration tests (tenant, domain, connector, allow, block).

`Admin` runs the real binary as `mxgate -c CONF FAMILY ACTION ...` against a data_dir of its
own, fails the test on any sanitizer report, and can take a snapshot of the whole policy
store (every list's JSON plus the generation counter) so that a test can assert that a
refused command changed nothing at all.
"""
import json
import os
import sqlite3
import subprocess
from pathlib import Path

MXGATE_BIN = os.environ.get("MXGATE_BIN") or str(
    (Path(__file__).resolve().parent / ".." / ".." / "build-asan" / "mxgate").resolve())

RUN_TIMEOUT = 60  # seconds for one command (ASan start-up included)
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

SANITIZER_ENV = {
    "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
    "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
}
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def write_config(tmp_path, data_dir):
    """A config that only needs to load: the admin commands never listen."""
    conf = tmp_path / "mxgate.conf"
    conf.write_text(f"[server]\nlisten = 127.0.0.1:1\ndata_dir = {data_dir}\n")
    return conf


class Admin:
    def __init__(self, tmp_path, data_dir=None):
        self.data_dir = Path(data_dir) if data_dir else tmp_path / "data"
        self.conf = write_config(tmp_path, self.data_dir)
        self.env = dict(os.environ)
        self.env.update(SANITIZER_ENV)

    def run(self, *args):
        """Runs one command; args may be str or bytes (for input that is not UTF-8)."""
        res = subprocess.run([MXGATE_BIN, "-c", str(self.conf), *args], capture_output=True,
                             timeout=RUN_TIMEOUT, env=self.env)
        res.stdout = res.stdout.decode("utf-8", "replace")
        res.stderr = res.stderr.decode("utf-8", "replace")
        for marker in SANITIZER_MARKERS:
            assert marker not in res.stderr, f"{args}: sanitizer report:\n{res.stderr}"
        return res

    def ok(self, *args):
        """Runs a command that must succeed; returns its stdout."""
        res = self.run(*args)
        assert res.returncode == EXIT_OK, f"{args}: exit {res.returncode}\n{res.stderr}"
        assert res.stderr == "", f"{args}: unexpected stderr {res.stderr!r}"
        return res.stdout

    def refused(self, *args, message):
        """Runs a command that must be refused (exit 2, one "mxgate: ..." sentence naming
        message, nothing on stdout) and must leave the store exactly as it was."""
        before = self.state()
        res = self.run(*args)
        assert res.returncode == EXIT_USAGE, f"{args}: exit {res.returncode}\n{res.stderr}"
        assert res.stdout == ""
        assert res.stderr.startswith("mxgate: "), res.stderr
        assert message in res.stderr, f"{args}: {res.stderr!r} lacks {message!r}"
        assert self.state() == before, f"{args} changed the store"
        return res.stderr

    def usage_error(self, *args, message=None):
        """A command line the parser refuses: exit 2, usage on stderr, nothing changed."""
        before = self.state()
        res = self.run(*args)
        assert res.returncode == EXIT_USAGE, f"{args}: exit {res.returncode}\n{res.stderr}"
        assert res.stdout == ""
        assert "usage: mxgate " in res.stderr, res.stderr
        if message:
            assert message in res.stderr, f"{args}: {res.stderr!r} lacks {message!r}"
        assert self.state() == before
        return res.stderr

    def json(self, *args):
        return json.loads(self.ok(*args, "--json"))

    def generation(self):
        db = self.data_dir / "policy.db"
        if not db.exists():
            return None
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
        finally:
            con.close()

    def state(self):
        """Everything the store holds, as the lists show it, plus the generation. (IP lists
        the tenant list counts as empty are not listed: each list is a process under ASan.)"""
        tenants = self.json("tenant", "list")
        lists = {t["name"]: (self.json("allow", "list", t["name"]) if t["allow"] else [],
                             self.json("block", "list", t["name"]) if t["block"] else [])
                 for t in tenants}
        return {
            "generation": self.generation(),
            "tenants": tenants,
            "domains": self.json("domain", "list"),
            "connectors": self.json("connector", "list"),
            "ip": lists,
        }
