"""The server stopped (Ctrl-C) or killed (SIGKILL) with checks queued: queued checks fail with a
reason or are gone with their media, nothing stays on disk in plaintext, the result cache stays
consistent, and the restarted server analyses clips again."""
from __future__ import annotations

import asyncio
import http.server
import os
import secrets
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path

import aiohttp
import media
import pytest
from robust_support import fresh_face_clip, start_server

from server.keys import JOBS

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(300)]


def slow_clip(d: Path, i: int) -> Path:
    """A clip that keeps the worker busy for a while at 100 frames."""
    import numpy as np

    frames = [np.clip(f.astype(int) + i, 0, 255).astype(np.uint8) for f in media.face_frames(100, (640, 360))]
    return media.write_clip(d / f"slow-{i}.mp4", frames)


def files_under(d: Path) -> list[Path]:
    return [p for p in d.rglob("*") if p.is_file()]


def plaintext_copies(root: Path, clips: list[Path]) -> list[Path]:
    """Files under root that contain a 4 KiB run of any clip's bytes (a plaintext copy)."""
    needles = [c.read_bytes()[2048:6144] for c in clips]
    return [p for p in files_under(root) if any(n in p.read_bytes() for n in needles)]


async def test_graceful_stop_with_checks_queued_fails_them_with_a_reason_and_keeps_the_cache(make_api, tmp_path):
    api = await make_api()
    clips = [slow_clip(tmp_path, i) for i in range(3)]
    ids = []
    for c in clips:
        r = await api.upload(c, frames=100)
        assert r.status == 202
        ids.append((await r.json())["id"])
    assert plaintext_copies(api.config.data_dir, clips) == []  # queued media is on disk, encrypted only
    jobs = api.app[JOBS]
    await api.client.close()  # the app's cleanup: the running check may finish, queued ones fail
    states = {cid: jobs.checks[cid] for cid in ids}
    assert all(c.finished for c in states.values())
    failed = [c for c in states.values() if c.status == "failed"]
    assert failed, "three 100-frame checks cannot all have finished before the stop"
    assert all(c.error["error"] == "internal" and "shut down" in c.error["message"] for c in failed)
    assert [p for d in (api.config.media_dir, api.config.fetch_dir) for p in d.iterdir()] == []

    again = await make_api()  # same data dir: a restart
    for cid, c in states.items():
        r = await again.upload(clips[ids.index(cid)], frames=100)
        # a check that was done is a cache hit; one that failed was never cached and runs now
        assert r.status == (200 if c.status == "done" else 202)
        if r.status == 202:
            assert (await again.wait((await r.json())["id"], timeout=120))["status"] == "done"


async def test_killed_server_leaves_no_readable_media_and_the_restart_serves_with_the_cache_intact(tiny_checkpoint, tmp_path):
    plain = Path("/dev/shm") / f"dfc-robust-{secrets.token_hex(4)}"  # decrypted files live in RAM only
    sp = start_server(tiny_checkpoint, tmp_path, temp_dir=plain)
    data_dir = sp.data_dir  # the restart below uses the same dirs
    clips = [fresh_face_clip(tmp_path)] + [slow_clip(tmp_path, i) for i in range(3)]
    try:
        async with aiohttp.ClientSession() as s:
            auth = {"Authorization": f"Bearer {sp.stored_token}"}
            ctx = sp.ssl_context()

            async def upload(path: Path, frames: int):
                fd = aiohttp.FormData()
                fd.add_field("file", path.read_bytes(), filename=path.name)
                fd.add_field("frames", str(frames))
                async with s.post(f"{sp.base}/v1/checks/upload", data=fd, headers=auth, ssl=ctx) as r:
                    return r.status, await r.json()

            async def wait(cid: str):
                deadline = time.monotonic() + 120
                while True:
                    async with s.get(f"{sp.base}/v1/checks/{cid}", headers=auth, ssl=ctx) as r:
                        body = await r.json()
                    if body["status"] in ("done", "failed") or time.monotonic() > deadline:
                        return body
                    await asyncio.sleep(0.1)

            status, first = await upload(clips[0], 20)
            assert status == 202 and (await wait(first["id"]))["status"] == "done"
            queued = [(await upload(c, 100))[1]["id"] for c in clips[1:]]
            await asyncio.sleep(0.5)
            assert plaintext_copies(data_dir, clips) == []
            sp.stop(signal.SIGKILL)  # no cleanup runs: encrypted leftovers stay, under a key now gone

        leftovers = files_under(data_dir / "media")
        assert leftovers and all(p.read_bytes()[:4] == b"DFC1" for p in leftovers)
        db = sqlite3.connect(data_dir / "cache.sqlite3")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()

        sp = start_server(tiny_checkpoint, tmp_path, temp_dir=plain)
        assert files_under(data_dir / "media") == []  # wiped at start: unreadable without the old key
        async with aiohttp.ClientSession() as s:
            auth = {"Authorization": f"Bearer {sp.stored_token}"}
            ctx = sp.ssl_context()
            async with s.get(f"{sp.base}/v1/checks/{queued[0]}", headers=auth, ssl=ctx) as r:
                assert r.status == 404  # checks lived in the killed process's memory
            fd = aiohttp.FormData()
            fd.add_field("file", clips[0].read_bytes(), filename="a.mp4")
            async with s.post(f"{sp.base}/v1/checks/upload", data=fd, headers=auth, ssl=ctx) as r:
                body = await r.json()
                assert r.status == 200 and body["status"] == "done" and body["cached"] is True
            fd = aiohttp.FormData()
            fd.add_field("file", clips[1].read_bytes(), filename="b.mp4")
            async with s.post(f"{sp.base}/v1/checks/upload", data=fd, headers=auth, ssl=ctx) as r:
                assert r.status == 202  # never finished, so never cached: analysed now
                cid = (await r.json())["id"]
            deadline = time.monotonic() + 120
            while True:
                async with s.get(f"{sp.base}/v1/checks/{cid}", headers=auth, ssl=ctx) as r:
                    body = await r.json()
                if body["status"] in ("done", "failed"):
                    break
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            assert body["status"] == "done"
    finally:
        sp.stop()
        shutil.rmtree(plain, ignore_errors=True)
    assert files_under(data_dir / "media") == [] and not any(plain.glob("*"))


def process_tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for child in (task / "children").read_text().split():
                out += process_tree(int(child))
        except OSError:
            pass
    return out


async def test_a_killed_server_and_worker_leave_no_plaintext_of_the_check_in_progress(tiny_checkpoint, tmp_path):
    """SIGKILL the server and its worker mid-check (a power cut of the process tree): no file
    anywhere in the data dir or in RAM holds the clip's plaintext, and the next start removes the
    killed run's directory for decrypted files."""
    sp = start_server(tiny_checkpoint, tmp_path, temp_dir=None)
    data_dir, clip = sp.data_dir, slow_clip(tmp_path, 99)
    run_dir = Path((data_dir / "plain-dir").read_text())
    try:
        async with aiohttp.ClientSession() as s:
            auth, ctx = {"Authorization": f"Bearer {sp.stored_token}"}, sp.ssl_context()
            fd = aiohttp.FormData()
            fd.add_field("file", clip.read_bytes(), filename="clip.mp4")
            fd.add_field("frames", "100")
            async with s.post(f"{sp.base}/v1/checks/upload", data=fd, headers=auth, ssl=ctx) as r:
                cid = (await r.json())["id"]
            deadline = time.monotonic() + 60
            while True:
                async with s.get(f"{sp.base}/v1/checks/{cid}", headers=auth, ssl=ctx) as r:
                    status = (await r.json())["status"]
                if status in ("detecting", "analysing") or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            assert status in ("detecting", "analysing"), status
            await asyncio.sleep(0.5)  # the worker has decrypted the clip and is reading it
        for pid in reversed(process_tree(sp.proc.pid)):
            os.kill(pid, signal.SIGKILL)
        sp.proc.wait(10)
        assert plaintext_copies(data_dir, [clip]) + plaintext_copies(run_dir, [clip]) == []
    finally:
        sp.stop()
    sp = start_server(tiny_checkpoint, tmp_path, temp_dir=None)
    try:
        assert not run_dir.exists()
    finally:
        sp.stop()


class _Stalling(http.server.BaseHTTPRequestHandler):
    """A 4 MB "MP4" of which 256 KB come, then nothing for a minute: a download still running, and
    silent (no progress to report), when the server is killed."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(64 * 65536))
        self.end_headers()
        try:
            self.wfile.write(b"\0" * 4 * 65536)
            self.wfile.flush()
            time.sleep(60)
        except OSError:
            pass

    def log_message(self, *a):
        pass


def fetch_children(server_pid: int) -> list[int]:
    """The server's fetch processes (python -m server.fetch), found by their command line."""
    return [pid for pid in process_tree(server_pid)
            if b"server.fetch" in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")]


async def test_a_server_killed_mid_download_takes_its_download_with_it_and_leaves_none_on_disk(tiny_checkpoint, tmp_path):
    """SIGKILL the server alone (not its children) while a URL downloads: the fetch process dies with
    it, the partial download is in the run's RAM folder (never under the data dir on a disk), and the
    next start removes that folder."""
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stalling)
    web.daemon_threads = True
    threading.Thread(target=web.serve_forever, daemon=True).start()
    sp = start_server(tiny_checkpoint, tmp_path, "--allow-private-fetch", temp_dir=None)
    run_dir = Path((sp.data_dir / "plain-dir").read_text())
    try:
        status, body = sp.api("POST", "/v1/checks", {"url": f"http://127.0.0.1:{web.server_address[1]}/v.mp4"},
                              token=sp.stored_token)
        assert status == 202, body
        deadline = time.monotonic() + 60
        while (progress := sp.api("GET", f"/v1/checks/{body['id']}", token=sp.stored_token)[1]["progress"]) is None \
                or progress["bytes"] == 0:
            assert time.monotonic() < deadline, progress
            time.sleep(0.1)
        children = fetch_children(sp.proc.pid)
        assert len(children) == 1, children
        os.kill(sp.proc.pid, signal.SIGKILL)  # the server only: its fetch process must follow on its own
        sp.proc.wait(10)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{children[0]}").exists() and b"server.fetch" in Path(f"/proc/{children[0]}/cmdline").read_bytes():
            assert time.monotonic() < deadline, "the fetch process outlived the server"
            time.sleep(0.05)
        on_disk = [p for p in files_under(sp.data_dir) if p.name.startswith("media.")]
        in_ram = [p for p in files_under(run_dir) if p.name.startswith("media.")]
        assert on_disk == [] and in_ram, (on_disk, in_ram)  # the partial download: in RAM only, until the next start
    finally:
        for pid in process_tree(sp.proc.pid) if sp.proc.poll() is None else []:
            os.kill(pid, signal.SIGKILL)
        sp.stop()
        web.shutdown()
        web.server_close()
    sp = start_server(tiny_checkpoint, tmp_path, temp_dir=None)
    try:
        assert not run_dir.exists()
    finally:
        sp.stop()
