"""Helpers for the server tests (a plain module: `conftest` is ambiguous between test dirs)."""
from __future__ import annotations

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
