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


def listening_sockets(root: int) -> list[tuple[str, int, str]]:
    """(address, port, process name) of every TCP socket listening in process `root` or its
    descendants, from /proc (IPv4-mapped IPv6 addresses as their IPv4 address)."""
    import ipaddress
    import os

    listening: dict[str, tuple[str, int]] = {}  # socket inode -> (address, port)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] != "0A":  # LISTEN
                    continue
                hex_ip, hex_port = fields[1].split(":")
                raw = bytes.fromhex(hex_ip)
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # host-order words
                ip = ipaddress.ip_address(raw)
                ip = getattr(ip, "ipv4_mapped", None) or ip
                listening[fields[9]] = (str(ip), int(hex_port, 16))
    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass

    def descends(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 0)
        return False

    out = []
    for pid in filter(descends, parents):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        for link in links:
            inode = link[len("socket:["):-1] if link.startswith("socket:[") else None
            if inode in listening:
                out.append((*listening[inode], name))
    return sorted(set(out))
