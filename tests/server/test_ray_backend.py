"""`python -m server --backend ray`: the real server (TLS, as a user starts it) handing its checks to
a Ray Serve deployment on an embedded local Ray. One server for the module, one replica of the
tiny untrained model; the same API as the local worker: uploads, URLs, events, the cache, 503 with
Retry-After, a replica killed mid-check, and Content Credentials read on the replica against the
server's --c2pa-trust-anchors."""
from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
from pathlib import Path

import aiohttp
import media
import pytest
import pytest_asyncio
from server_support import listening_sockets, start_server, wait_until

pytest.importorskip("ray")
pytestmark = pytest.mark.slow
VERDICTS = ("REAL", "FAKE", "UNCERTAIN", "NO_FACE")
QUEUE = 2


@pytest.fixture(scope="module")
def server(tiny_checkpoint, c2pa_files, tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("ray"), "--backend", "ray", "--replicas", "1",
                       "--weights", str(tiny_checkpoint), "--allow-private-fetch", "--queue-size", str(QUEUE),
                       "--c2pa-trust-anchors", str(c2pa_files["anchor.pem"]))
    srv.pair()
    yield srv
    srv.stop()


class Api:
    def __init__(self, server):
        self.server, self.ssl = server, server.ssl_context()
        self.auth = {"Authorization": f"Bearer {server.token}"}
        self.session = aiohttp.ClientSession()

    async def post_file(self, path: Path, frames: int = 10):
        fd = aiohttp.FormData()
        fd.add_field("file", path.read_bytes(), filename=path.name)
        fd.add_field("frames", str(frames))
        r = await self.session.post(f"{self.server.base}/v1/checks/upload", data=fd, headers=self.auth, ssl=self.ssl)
        return r.status, await r.json(), r.headers

    async def post_url(self, url: str, frames: int = 10):
        r = await self.session.post(f"{self.server.base}/v1/checks", json={"url": url, "page_url": url, "frames": frames},
                                    headers=self.auth, ssl=self.ssl)
        return r.status, await r.json()

    async def status(self, check_id: str) -> dict:
        r = await self.session.get(f"{self.server.base}/v1/checks/{check_id}", headers=self.auth, ssl=self.ssl)
        return await r.json()

    async def events(self, check_id: str) -> list[dict]:
        r = await self.session.get(f"{self.server.base}/v1/checks/{check_id}/events", headers=self.auth, ssl=self.ssl,
                                   timeout=aiohttp.ClientTimeout(total=300))
        assert r.status == 200
        return [json.loads(line[6:]) async for line in r.content if line.startswith(b"data: ")]


@pytest_asyncio.fixture
async def api(server):
    a = Api(server)
    yield a
    await a.session.close()


def test_the_banner_says_checks_run_on_ray_serve(server):
    assert "1 Ray Serve replica(s)" in server.banner and "tiny" in server.banner
    status, body = server.api("GET", "/v1/model")
    assert status == 200 and body["name"] == "tiny"


def test_the_server_and_its_embedded_ray_listen_on_loopback_only(server):
    sockets = listening_sockets(server.proc.pid)
    names = {name for _, _, name in sockets}
    assert {"gcs_server", "raylet"} <= names and any("Serve" in n for n in names), sockets
    assert [s for s in sockets if not ipaddress.ip_address(s[0]).is_loopback] == []


@pytest.mark.asyncio
async def test_an_upload_is_checked_on_a_replica_and_the_same_file_again_comes_from_the_cache(api, media_dir):
    status, body, _ = await api.post_file(media_dir / "face.mp4")
    assert status == 202
    events = await api.events(body["id"])
    final = events[-1]
    assert [e["status"] for e in events][0] in ("queued", "detecting") and final["status"] == "done", events
    assert final["result"]["verdict"] in VERDICTS and final["result"]["faces"] and not final["cached"]
    r = await api.session.get(api.server.base + final["result"]["heatmap_url"], headers=api.auth, ssl=api.ssl)
    assert r.status == 200 and (await r.read()).startswith(b"\x89PNG")
    status, again, _ = await api.post_file(media_dir / "face.mp4")
    assert again["status"] == "done" and again["cached"] is True
    assert again["result"]["p_fake"] == final["result"]["p_fake"]


@pytest.mark.asyncio
async def test_a_replica_reads_content_credentials_against_the_servers_trust_anchors(api, c2pa_files):
    got = {}
    for name in ("trusted.jpg", "ai.jpg", "plain.jpg"):
        status, body, _ = await api.post_file(c2pa_files[name])
        assert status == 202
        final = (await api.events(body["id"]))[-1]
        assert final["status"] == "done", final
        got[name] = final["result"]["provenance"]
    assert got["trusted.jpg"]["state"] == "valid"  # the anchors reached the replica
    assert (got["ai.jpg"]["state"], got["ai.jpg"]["ai_generated"]) == ("untrusted-signer", True)
    assert got["plain.jpg"] is None


@pytest.mark.asyncio
async def test_a_url_is_fetched_here_and_checked_on_a_replica(api, media_server):
    status, body = await api.post_url(f"{media_server}/noface.mp4")
    assert status == 202
    events = await api.events(body["id"])
    statuses = [e["status"] for e in events]
    assert "downloading" in statuses and statuses[-1] == "done", statuses
    assert events[-1]["result"]["verdict"] == "NO_FACE" and events[-1]["result"]["timings_ms"]["fetch"] > 0
    assert (await api.status(body["id"]))["status"] == "done"


@pytest.mark.asyncio
async def test_a_full_queue_answers_503_with_retry_after(api, media_dir):
    first = await api.post_file(media_dir / "twofaces.mp4")
    second = await api.post_file(media_dir / "oneframe.mp4")
    status, body, headers = await api.post_file(media_dir / "noface.png")
    assert (first[0], second[0]) == (202, 202)
    assert status == 503 and body["error"] == "busy" and int(headers["Retry-After"]) >= 1
    for _, b, _ in (first, second):
        assert (await api.events(b["id"]))[-1]["status"] == "done"


def _replica_pids(server_pid: int) -> list[int]:
    """The Ray Serve replica processes started under this server (Ray's worker processes are its
    descendants; a replica's process title names it)."""
    def parent(pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return 0

    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            title = (d / "cmdline").read_bytes()
        except OSError:
            continue
        if b"ServeReplica" not in title:
            continue
        pid, p = int(d.name), int(d.name)
        while p > 1:
            p = parent(p)
            if p == server_pid:
                out.append(pid)
                break
    return out


@pytest.mark.asyncio
async def test_a_replica_killed_mid_check_fails_that_check_with_a_reason_and_the_next_succeeds(
        api, server, tmp_path):
    long_clip = media.write_clip(tmp_path / "long.mp4", media.face_frames(100))
    status, body, _ = await api.post_file(long_clip, frames=100)
    assert status == 202
    deadline = asyncio.get_running_loop().time() + 120
    while (await api.status(body["id"]))["status"] != "detecting":
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # the replica has the media and is decoding or detecting
    pids = _replica_pids(server.proc.pid)
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    final = (await api.events(body["id"]))[-1]
    assert final["status"] == "failed" and final["error"]["error"] == "internal"
    assert "replica" in final["error"]["message"] and "died" in final["error"]["message"]

    status, body, _ = await api.post_file(media_dir_file(tmp_path))  # Serve has started a new replica
    final = (await api.events(body["id"]))[-1]
    assert final["status"] == "done" and final["result"]["verdict"] in VERDICTS, final
    assert wait_until(lambda: len(_replica_pids(server.proc.pid)) == 1, timeout=60)


def media_dir_file(tmp_path: Path) -> Path:
    """A clip no earlier test checked (a cache hit would not reach a replica)."""
    return media.write_clip(tmp_path / "fresh.mp4", media.face_frames(12))


def test_sigterm_stops_ray_and_leaves_no_media(server):
    pid = server.proc.pid
    assert server.stop(signal.SIGTERM) == 0
    assert server.leftover_media() == []
    assert "Traceback" not in server.stderr()
    assert _replica_pids(pid) == []
