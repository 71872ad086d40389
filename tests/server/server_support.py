"""Helpers for the server tests (a plain module: `conftest` is ambiguous between test dirs)."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

from realserver import RealServer


def start_server(tmp: Path, *args: str) -> RealServer:
    """The real server with HOME in tmp and its decrypted files in tmp/temp (args: its options)."""
    return RealServer.start(tmp, *args, temp_dir=tmp / "temp", env={"HOME": str(tmp)})


def wait_until(pred, timeout: float = 60.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(every)
    return False


async def wait_done(client, auth, check_id, timeout=60.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        r = await client.get(f"/v1/checks/{check_id}", headers=auth)
        body = await r.json()
        if body["status"] in ("done", "failed"):
            return body
        assert asyncio.get_running_loop().time() < deadline, f"check still {body['status']}"
        await asyncio.sleep(0.1)
