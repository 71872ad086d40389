"""The tests' own harness stops what it starts: a server started by a test process ends with it,
even when that process is killed and runs no teardown (a pytest stopped by a timeout or a shell)."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

from testenv import ROOT

KILLED_TEST = """
import os, signal, sys
from pathlib import Path
sys.path[:0] = [{tests!r}, {root!r}]
from realserver import RealServer
srv = RealServer.start(Path({tmp!r}), "--weights", {weights!r}, "--device", "cpu")
print(srv.proc.pid, srv.port, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no fixture teardown, no atexit
"""


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_server_outlives_no_killed_test_process(tiny_checkpoint, tmp_path):
    code = KILLED_TEST.format(tests=str(ROOT / "tests"), root=str(ROOT), tmp=str(tmp_path), weights=str(tiny_checkpoint))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    pid, port = map(int, r.stdout.split())
    deadline = time.monotonic() + 60  # a clean stop (SIGTERM) may let a check finish first
    while alive(pid):
        assert time.monotonic() < deadline, "the server outlived the test process that started it"
        time.sleep(0.2)
    assert not listening(port)


def alive(pid: int) -> bool:
    """The server process is still there (not exited, not a zombie waiting to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
