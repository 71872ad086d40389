"""Helpers for the robustness tests (a module of its own: several conftest modules exist, so
`from conftest import ...` would find whichever was loaded last)."""
from __future__ import annotations
import asyncio
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
import aiohttp
import numpy as np
import corpus
import media
from server.app import create_app
from server.config import Config
from server.keys import TOKENS
from server.worker import InferenceWorker


ROOT = Path(__file__).resolve().parents[2]


FINISHED = ("done", "failed")


_clip_counter = [0]


def fresh_face_clip(d: Path) -> Path:
    """A small face clip with bytes never seen before, so the server must really analyse it
    (a cache hit would not show that the worker still works)."""
    _clip_counter[0] += 1
    n = _clip_counter[0]
    frames = [np.clip(f.astype(int) + n, 0, 255).astype(np.uint8) for f in media.face_frames(6, (320, 180))]
    return media.write_clip(d / f"fresh-{n}.mp4", frames)


def leftover_media(config: Config) -> list[Path]:
    return [p for d in (config.media_dir, config.fetch_dir, config.plain_dir) if d.exists() for p in d.iterdir()]


def media_dirs_have_no_plaintext(config: Config) -> list[Path]:
    """Files in the encrypted store that are not our encrypted format."""
    bad = []
    if config.media_dir.exists():
        for p in config.media_dir.iterdir():
            if p.is_file() and p.read_bytes()[:4] != b"DFC1":
                bad.append(p)
    return bad


@dataclass
class Api:
    client: object  # aiohttp TestClient
    app: object
    config: Config
    auth: dict

    async def upload(self, path: Path, frames: int | None = None, name: str | None = None):
        fd = aiohttp.FormData()
        fd.add_field("file", path.read_bytes(), filename=name or path.name, content_type="application/octet-stream")
        if frames is not None:
            fd.add_field("frames", str(frames))
        return await self.client.post("/v1/checks/upload", data=fd, headers=self.auth)

    async def wait(self, check_id: str, timeout: float = 90.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            r = await self.client.get(f"/v1/checks/{check_id}", headers=self.auth)
            assert r.status == 200, await r.text()
            body = await r.json()
            if body["status"] in FINISHED:
                return body
            assert time.monotonic() < deadline, f"check {check_id} still {body['status']} after {timeout}s"
            await asyncio.sleep(0.05)

    async def check_file(self, path: Path, **kw) -> tuple[int, dict]:
        """Upload and follow to the end: (upload status, final body or the error body)."""
        r = await self.upload(path, **kw)
        body = await r.json()
        if r.status == 202:
            return r.status, await self.wait(body["id"])
        return r.status, body

    async def still_serving(self, scratch: Path) -> dict:
        """A brand-new clip goes through the whole pipeline and is done."""
        status, body = await self.check_file(fresh_face_clip(scratch))
        assert status == 202 and body["status"] == "done", body
        return body


# --- a real server process ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    port: int
    config_dir: Path
    data_dir: Path
    log: Path

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        return (self.config_dir / "token").read_text().strip()

    @property
    def pair_code(self) -> str:
        m = re.search(r"pairing code: (\S+)", self.log.read_text())
        return m.group(1)

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.config_dir / "tls" / "ca.pem"))

    def stop(self, sig=signal.SIGINT, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def start_server(weights: Path, config_dir: Path, data_dir: Path, *extra: str, port: int | None = None,
                 timeout: float = 120) -> ServerProcess:
    port = port or free_port()
    log = data_dir.parent / f"server-{port}-{time.monotonic_ns()}.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    plain = data_dir / "plain-tmp"
    cmd = [sys.executable, "-m", "server", "--port", str(port), "--weights", str(weights), "--device", "cpu",
           "--config-dir", str(config_dir), "--data-dir", str(data_dir), "--temp-dir", str(plain), *extra]
    f = open(log, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    sp = ServerProcess(proc, port, config_dir, data_dir, log)
    deadline = time.monotonic() + timeout
    while "pairing code:" not in log.read_text():
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            sp.stop(signal.SIGKILL)
            raise RuntimeError(f"server did not start in {timeout}s: {log.read_text()[-3000:]}")
        time.sleep(0.2)
    return sp
