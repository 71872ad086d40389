"""Faults: a download process killed mid-way, a remote that never answers, the inference worker
crashing or raising, temp dirs that cannot be written, the server stopped or killed with jobs
queued. After each: the check is `failed` with a reason, no media is left on disk, nothing on
disk is plaintext media, and the server goes on to analyse the next clip."""
from __future__ import annotations

import asyncio
import http.server
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from realserver import leftover_media
from robust_support import fresh_face_clip

from server.keys import JOBS
from server.worker import InferenceWorker

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(240)]


async def settled(api, wait_s: float = 5.0) -> list[Path]:
    deadline = time.monotonic() + wait_s
    while (left := leftover_media(api.config)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return left


def own_children(marker: str) -> list[int]:
    """PIDs of this test process's children whose command line contains marker."""
    me, found = os.getpid(), []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and marker in cmd:
            found.append(int(d.name))
    return found


class _Slow(http.server.BaseHTTPRequestHandler):
    """Declares 8 MB of video and trickles it out: a download that takes a minute."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(8 * 2**20))
        self.end_headers()
        try:
            for _ in range(8 * 16):
                self.wfile.write(b"\0" * 65536)
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass

    def log_message(self, *a):
        pass


@pytest.fixture
def slow_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/video.mp4"
    srv.shutdown()
    srv.server_close()


async def submit_url(api, url: str) -> str:
    r = await api.client.post("/v1/checks", json={"url": url}, headers=api.auth)
    assert r.status == 202, await r.text()
    return (await r.json())["id"]


async def wait_status(api, check_id: str, pred, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = await (await api.client.get(f"/v1/checks/{check_id}", headers=api.auth)).json()
        if pred(body):
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


# --- downloads --------------------------------------------------------------------------------
async def test_download_process_killed_mid_download_fails_the_check_and_leaves_nothing(make_api, slow_server, tmp_path):
    api = await make_api(allow_private_fetch=True)
    cid = await submit_url(api, slow_server)
    await wait_status(api, cid, lambda b: b["status"] == "downloading" and (b["progress"] or {}).get("bytes", 0) > 0)
    pids = own_children("server.fetch")
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    body = await api.wait(cid, timeout=30)
    assert body["status"] == "failed" and body["error"]["error"] == "fetch_failed" and body["error"]["message"]
    assert await settled(api) == []
    await api.still_serving(tmp_path)


async def test_remote_that_never_sends_a_byte_fails_with_timeout_at_the_deadline(make_api, hung_server, tmp_path):
    api = await make_api(allow_private_fetch=True, deadline_s=4.0)
    t0 = time.monotonic()
    body = await api.wait(await submit_url(api, hung_server), timeout=40)
    assert body["status"] == "failed" and body["error"]["error"] == "timeout"
    assert time.monotonic() - t0 < 30
    assert await settled(api) == [] and own_children("server.fetch") == []
    await api.still_serving(tmp_path)


async def test_download_dir_not_writable_fails_the_check_with_a_reason(make_api, slow_server, tmp_path):
    api = await make_api(allow_private_fetch=True)
    downloads = api.app[JOBS].download_dir
    shutil.rmtree(downloads)
    downloads.write_text("not a directory")  # root ignores permission bits; this it cannot write into
    try:
        body = await api.wait(await submit_url(api, slow_server), timeout=30)
        assert body["status"] == "failed" and body["error"]["error"] == "internal" and body["error"]["message"]
    finally:
        downloads.unlink()
        downloads.mkdir(mode=0o700)
    await api.still_serving(tmp_path)


# --- the inference worker ---------------------------------------------------------------------
async def test_worker_killed_mid_check_fails_that_check_and_is_restarted(make_api, worker, tmp_path):
    import media

    api = await make_api()
    slow = media.write_clip(tmp_path / "slow.mp4", media.face_frames(120, (1280, 720)))
    r = await api.upload(slow, frames=100)
    cid = (await r.json())["id"]
    await wait_status(api, cid, lambda b: b["status"] in ("detecting", "done", "failed"))
    old = worker.pid
    os.kill(old, signal.SIGKILL)
    body = await api.wait(cid)
    assert body["status"] == "failed" and body["error"]["error"] == "internal", body
    assert await settled(api) == []
    await api.still_serving(tmp_path)
    assert worker.pid not in (None, old)


async def test_a_file_that_blows_up_the_workers_memory_fails_as_too_large_and_the_server_goes_on(
        make_api, worker, tmp_path):
    from PIL import Image

    from server.worker import rss_bytes

    big = tmp_path / "big.png"
    # 8K UHD, the largest image read: 0.1 MB on disk, ~100 MB decoded (a PNG cannot be decoded smaller)
    Image.new("RGB", (7680, 4320), (90, 120, 150)).save(big)
    api = await make_api()
    cap, old = worker.max_rss_mb, worker.pid
    worker.max_rss_mb = rss_bytes(worker.pid) // 2**20 + 50
    try:
        status, body = await api.check_file(big)
    finally:
        worker.max_rss_mb = cap
    assert status == 202 and body["status"] == "failed" and body["error"]["error"] == "too_large", body
    assert "memory" in body["error"]["message"] and worker.pid != old
    assert await settled(api) == []
    await api.still_serving(tmp_path)


@pytest.fixture
def raising_checkpoint(tmp_path) -> Path:
    """A real checkpoint whose stored crop size is 0: loading and the warm-up work, cropping a face
    raises inside the worker (cv2.error) -- a model file that is broken in a way only use reveals."""
    from model.network import DeepfakeDetector
    from model.spec import CropSpec, ModelSpec
    from model.weights import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "raises.pt"
    save_checkpoint(path, DeepfakeDetector(ModelSpec(name="raises", crop=CropSpec(size=0))))
    return path


async def test_worker_raising_fails_the_check_with_a_reason_and_caches_nothing(make_api, raising_checkpoint, tmp_path):
    w = InferenceWorker(str(raising_checkpoint), "cpu", tmp_path / "plain")
    await asyncio.get_running_loop().run_in_executor(None, w.start)
    try:
        api = await make_api(worker=w)
        clip = fresh_face_clip(tmp_path)
        first_pid = w.pid
        status, body = await api.check_file(clip)
        assert status == 202 and body["status"] == "failed" and body["error"]["error"] == "internal", body
        assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
        assert w.pid != first_pid  # a fresh worker for the next check
        assert (await api.upload(clip)).status == 202  # the failure was not cached as a result
        assert (await (await api.client.get("/v1/health")).json())["ok"] is True
        for c in list(api.app[JOBS].checks.values()):
            await api.wait(c.id)
        assert await settled(api) == []
    finally:
        await asyncio.get_running_loop().run_in_executor(None, w.stop, 5.0)


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="without memfd the plaintext needs the temp dir")
async def test_checks_need_no_decryption_temp_dir_when_the_plaintext_lives_in_memory(make_api, tiny_checkpoint, tmp_path):
    plain = tmp_path / "plain-own"
    w = InferenceWorker(str(tiny_checkpoint), "cpu", plain)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, w.start)
    try:
        api = await make_api(worker=w)
        shutil.rmtree(plain)
        plain.write_text("not a directory")  # root ignores permission bits; this it cannot write into
        try:
            await api.still_serving(tmp_path)
        finally:
            plain.unlink()
        assert await settled(api) == []
    finally:
        await loop.run_in_executor(None, w.stop, 5.0)


async def test_media_store_not_writable_refuses_uploads_with_a_json_error_then_recovers(make_api, tmp_path):
    api = await make_api()
    shutil.rmtree(api.config.media_dir)
    api.config.media_dir.write_text("not a directory")
    try:
        r = await api.upload(fresh_face_clip(tmp_path))
        body = await r.json(content_type=None)
        assert r.status >= 500 and isinstance(body, dict) and body.get("error") and body.get("message"), (r.status, body)
    finally:
        api.config.media_dir.unlink()
        api.config.media_dir.mkdir(mode=0o700)
    await api.still_serving(tmp_path)
