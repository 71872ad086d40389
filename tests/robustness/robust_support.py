"""Helpers for the robustness tests (a module of its own: several conftest modules exist, so
`from conftest import ...` would find whichever was loaded last)."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import media
import numpy as np
from realserver import RealServer

from server.config import Config

FINISHED = ("done", "failed")


_clip_counter = [0]


def fresh_face_clip(d: Path) -> Path:
    """A small face clip with bytes never seen before, so the server must really analyse it
    (a cache hit would not show that the worker still works)."""
    _clip_counter[0] += 1
    n = _clip_counter[0]
    frames = [np.clip(f.astype(int) + n, 0, 255).astype(np.uint8) for f in media.face_frames(6, (320, 180))]
    return media.write_clip(d / f"fresh-{n}.mp4", frames)


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


_OWN = Path("plain-tmp")


def start_server(weights: Path, tmp: Path, *extra: str, temp_dir: Path | None = _OWN) -> RealServer:
    """The real server on CPU with the given weights; decrypted files in tmp/data/plain-tmp unless
    temp_dir says otherwise (None: the server's default, a new folder in RAM; extra: more options)."""
    if temp_dir is _OWN:
        temp_dir = tmp / "data" / "plain-tmp"
    return RealServer.start(tmp, "--weights", str(weights), "--device", "cpu", *extra, temp_dir=temp_dir)
