"""The real server for the tests that need it: `python -m server` in a subprocess, as a user starts
it, on a free loopback port with its dirs in a temp folder. Started, waited for (its banner),
paired over TLS with the CA it generated, stopped by a signal, and checked for media left behind.

One copy for the server, robustness and e2e tests, importable like testenv (several conftest
modules exist, so `from conftest import ...` would find whichever was loaded last)."""
from __future__ import annotations

import atexit
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from testenv import ROOT

from server.config import Config

READY = "Press Ctrl-C to stop."  # the banner's last line: the server listens
# How a test starts the server: `python -m server ARGS`, made to end (SIGTERM: a clean stop) when the
# test process ends however it ends (PR_SET_PDEATHSIG survives the exec). A pytest killed by a timeout
# or by the shell otherwise leaves its servers running, listening, with their data dirs in /tmp.
LAUNCH = ("import ctypes, os, signal, sys; ctypes.CDLL(None).prctl(1, signal.SIGTERM);"
          "os.getppid() == int(sys.argv[1]) or sys.exit(3);"
          "os.execv(sys.executable, [sys.executable, '-m', 'server', *sys.argv[2:]])")
RUNNING: set[RealServer] = set()  # started and not yet stopped: stopped at exit if a test did not


@atexit.register
def _stop_leftovers() -> None:
    for srv in list(RUNNING):
        srv.stop(timeout=30)


def free_port() -> int:
    """A loopback port nothing listens on (at the moment of asking)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plain_dir(config: Config) -> Path | None:
    """Where decrypted files go: config.plain_dir, else the run's own directory that the server
    records in its data dir (None when no run has one now)."""
    if config.plain_dir is not None:
        return config.plain_dir
    record = config.plain_dir_record
    return Path(record.read_text()) if record.exists() else None


def leftover_media(config: Config) -> list[Path]:
    """Everything left in the encrypted store, the download dirs (the run's RAM folder's `downloads`,
    and <data dir>/fetch where they were once) and the decrypted-file dir."""
    plain = plain_dir(config)
    downloads = plain / "downloads" if plain is not None else None
    dirs = (config.media_dir, config.fetch_dir, plain, downloads)
    return [p for d in dirs if d is not None and d.exists() for p in d.iterdir() if p != downloads]


@dataclass(eq=False)
class RealServer:
    """`python -m server` with its config and data in tmp/config and tmp/data, stdout (the banner)
    and stderr (the log) in files next to them."""

    proc: subprocess.Popen
    port: int
    config_dir: Path
    data_dir: Path
    temp_dir: Path | None  # decrypted files; None: the server's own default
    stdout_path: Path
    stderr_path: Path
    banner: str = ""
    token: str | None = None  # what this test's client sends: from pair(), or from a paired browser

    @classmethod
    def start(cls, tmp: Path, *args: str, temp_dir: Path | None = None, env: dict[str, str] | None = None,
              timeout: float = 180.0, port: int | None = None) -> RealServer:
        """Starts the server (args: more command-line options) and returns once its banner is out.
        port: a given one (a restart where the last run listened), else a free one."""
        tmp.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        config_dir, data_dir = tmp / "config", tmp / "data"
        # a restart in the same folder gets files of its own: the first run's banner must not count
        stem = tmp / f"server-{port}-{time.monotonic_ns()}"
        out, err = Path(f"{stem}.stdout"), Path(f"{stem}.stderr")
        cmd = [sys.executable, "-c", LAUNCH, str(os.getpid()), "--port", str(port), "--config-dir", str(config_dir),
               "--data-dir", str(data_dir), *(["--temp-dir", str(temp_dir)] if temp_dir else []), *args]
        with open(out, "w") as stdout, open(err, "w") as stderr:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=stdout, stderr=stderr,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        srv = cls(proc, port, config_dir, data_dir, temp_dir, out, err)
        RUNNING.add(srv)
        deadline = time.monotonic() + timeout
        while READY not in srv.stdout():
            if proc.poll() is not None:
                raise RuntimeError(f"server exited {proc.returncode}:\n{srv.output()}")
            if time.monotonic() > deadline:
                srv.stop(signal.SIGKILL)
                raise RuntimeError(f"server did not start in {timeout:.0f}s:\n{srv.output()}")
            time.sleep(0.1)
        srv.banner = srv.stdout()
        return srv

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _banner_field(self, label: str) -> str:
        return re.search(rf"{label}:\s+(\S+)", self.banner).group(1)

    @property
    def pairing_code(self) -> str:
        return self._banner_field("pairing code")

    @property
    def pairing_link(self) -> str:
        return self._banner_field("pairing link")

    @property
    def spki(self) -> str:
        return self._banner_field("TLS SPKI")

    @property
    def stored_token(self) -> str:
        """The token in the server's config dir, read now (`rotate-token` replaces it)."""
        return (self.config_dir / "token").read_text().strip()

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the local CA this server generated, and nothing else."""
        return ssl.create_default_context(cafile=str(self.config_dir / "tls" / "ca.pem"))

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None,
            timeout: float = 30) -> tuple[int, object]:
        """Calls the server like curl would (no Origin): (status, JSON body)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token or self.token:
            req.add_header("Authorization", f"Bearer {token or self.token}")
        try:
            with urllib.request.urlopen(req, context=self.ssl_context(), timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def pair(self) -> str:
        """Pairs with the printed code (it works once) and keeps the token for later calls."""
        status, body = self.api("POST", "/v1/pair", {"code": self.pairing_code})
        assert status == 200, body
        self.token = body["token"]
        return self.token

    def leftover_media(self) -> list[Path]:
        return leftover_media(Config(config_dir=self.config_dir, data_dir=self.data_dir, plain_dir=self.temp_dir))

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self) -> str:
        return self.stdout() + self.stderr()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60.0) -> int:
        """Ctrl-C unless told otherwise; killed if it has not exited in time. Returns the exit code."""
        RUNNING.discard(self)
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode
