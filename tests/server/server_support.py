"""Helpers shared by the server tests (a plain module: `conftest` is ambiguous between test dirs)."""
from __future__ import annotations

from pathlib import Path

from server.config import Config

ROOT = Path(__file__).resolve().parents[2]


def media_dirs(config: Config) -> list[Path]:
    return [config.media_dir, config.fetch_dir, config.plain_dir]


def leftover_media(config: Config) -> list[Path]:
    """Everything left in the encrypted store, the download dir and the decrypted-file dir."""
    return [p for d in media_dirs(config) if d.exists() for p in d.iterdir()]


import os  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    """`python -m server` in a subprocess, as a user starts it, with its dirs in a temp folder."""

    proc: subprocess.Popen
    port: int
    base: str
    config_dir: Path
    data_dir: Path
    temp_dir: Path
    stderr_path: Path
    banner: str = ""
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, tmp: Path, *args: str, timeout: float = 180.0) -> "RunningServer":
        port = free_port()
        cfg, data, temp = tmp / "config", tmp / "data", tmp / "temp"
        err = tmp / "server.stderr"
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--port", str(port), "--config-dir", str(cfg), "--data-dir", str(data),
             "--temp-dir", str(temp), *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=open(err, "wb"), text=True,
            env={**os.environ, "HOME": str(tmp)},
        )
        srv = cls(proc, port, f"https://127.0.0.1:{port}", cfg, data, temp, err)
        ready = threading.Event()

        def read():
            for line in proc.stdout:
                srv.lines.append(line)
                if line.startswith("Press Ctrl-C"):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(timeout):
            proc.kill()
            raise RuntimeError(f"server did not start: {''.join(srv.lines)}\n{err.read_text()}")
        srv.banner = "".join(srv.lines)
        return srv

    @property
    def pairing_code(self) -> str:
        return re.search(r"pairing code: (\S+)", self.banner).group(1)

    @property
    def spki(self) -> str:
        return re.search(r"TLS SPKI:\s+(\S+)", self.banner).group(1)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.config_dir / "tls" / "ca.pem"))

    def leftover_media(self) -> list[Path]:
        return [p for d in (self.data_dir / "media", self.data_dir / "fetch", self.temp_dir) if d.exists()
                for p in d.iterdir()]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def wait_until(pred, timeout: float = 60.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(every)
    return False
