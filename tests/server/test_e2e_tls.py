"""The real server, started as a user starts it (`python -m server`), called over TLS with the
generated CA: pairing, uploads, URL checks through yt-dlp from a local HTTP server, a hung site,
and a clean shutdown. One server for the module (it runs the tiny untrained model)."""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal

import aiohttp
import pytest
import pytest_asyncio
from server_support import start_server, wait_until

from server.tls import Certs

pytestmark = pytest.mark.slow
VERDICTS = ("REAL", "FAKE", "UNCERTAIN", "NO_FACE")
DEADLINE_S = 6


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("e2e"), "--weights", str(tiny_checkpoint),
                       "--allow-private-fetch", "--deadline", str(DEADLINE_S))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token(server):
    return server.pair()


class Api:
    def __init__(self, server, token):
        self.server, self.ssl = server, server.ssl_context()
        self.auth = {"Authorization": f"Bearer {token}"}
        self.session = aiohttp.ClientSession()

    async def post_file(self, path, frames=10):
        fd = aiohttp.FormData()
        fd.add_field("file", path.read_bytes(), filename=path.name)
        fd.add_field("frames", str(frames))
        r = await self.session.post(f"{self.server.base}/v1/checks/upload", data=fd, headers=self.auth, ssl=self.ssl)
        return r.status, await r.json()

    async def post_url(self, url, frames=10):
        r = await self.session.post(f"{self.server.base}/v1/checks", json={"url": url, "page_url": url, "frames": frames},
                                    headers=self.auth, ssl=self.ssl)
        return r.status, await r.json()

    async def events(self, check_id) -> list[dict]:
        """The event stream until it ends: what the extension reads instead of polling."""
        r = await self.session.get(f"{self.server.base}/v1/checks/{check_id}/events", headers=self.auth, ssl=self.ssl)
        assert r.status == 200
        out = []
        async for line in r.content:
            if line.startswith(b"data: "):
                out.append(json.loads(line[6:]))
        return out

    async def get(self, path):
        return await self.session.get(f"{self.server.base}{path}", headers=self.auth, ssl=self.ssl)


@pytest_asyncio.fixture
async def api(server, token):
    a = Api(server, token)
    yield a
    await a.session.close()


def test_start_prints_address_spki_pairing_code_and_model(server):
    assert f"https://127.0.0.1:{server.port}" in server.banner
    assert server.spki == Certs.in_dir(server.config_dir / "tls").spki_sha256()
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}", server.pairing_code)
    assert f"https://127.0.0.1:{server.port}/pair#code={server.pairing_code}" in server.banner
    assert "model:        tiny (mobilenet_v3_small, temporal) on cpu" in server.banner
    assert "; YouTube's JavaScript challenges: OK" in server.banner  # the fetcher checked itself before starting


@pytest.mark.asyncio
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_tls_verifies_with_the_generated_ca(server, host):
    async with aiohttp.ClientSession() as s:
        r = await s.get(f"https://{host}:{server.port}/v1/health", ssl=server.ssl_context())
        body = await r.json()
        assert r.status == 200 and (body["ok"], body["version"]) == (True, "0.1.0")


@pytest.mark.asyncio
async def test_plain_http_and_unknown_ca_get_no_answer(server):
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.ClientError):
            await s.get(f"http://127.0.0.1:{server.port}/v1/health")
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await s.get(f"{server.base}/v1/health")  # the system's CAs do not know ours


@pytest.mark.asyncio
async def test_upload_of_a_generated_clip_reaches_done_with_a_verdict(api, media_dir):
    status, body = await api.post_file(media_dir / "face.mp4")
    assert status == 202 and body["status"] == "queued"
    events = await api.events(body["id"])
    final = events[-1]
    assert final["status"] == "done" and final["result"]["verdict"] in VERDICTS, final
    assert final["result"]["frames_with_face"] > 0 and final["result"]["faces"]
    r = await api.get(final["result"]["heatmap_url"])
    assert r.status == 200 and (await r.read()).startswith(b"\x89PNG")


@pytest.mark.asyncio
async def test_upload_of_a_real_clip_reaches_done(api, shared_data):
    status, body = await api.post_file(shared_data / "real" / "liveportrait-driving-d18.mp4", frames=20)
    assert status == 202
    final = (await api.events(body["id"]))[-1]
    assert final["status"] == "done" and final["result"]["verdict"] in VERDICTS, final
    assert final["result"]["frames_analysed"] == 20 and final["result"]["width"] > 0


@pytest.mark.asyncio
async def test_direct_media_url_is_fetched_and_checked(api, media_server):
    status, body = await api.post_url(f"{media_server}/face.mp4", frames=20)
    assert status == 202
    events = await api.events(body["id"])
    statuses = [e["status"] for e in events]
    assert "downloading" in statuses and statuses[-1] == "done", statuses
    final = events[-1]
    assert final["source"] == "url" and final["result"]["verdict"] in VERDICTS
    assert final["result"]["timings_ms"]["fetch"] > 0


@pytest.mark.asyncio
async def test_html_page_with_a_video_is_fetched_and_checked(api, media_server):
    status, body = await api.post_url(f"{media_server}/page.html", frames=40)
    final = (await api.events(body["id"]))[-1]
    # a 30-frame clip: all of it is read (a different frame count from the other checks: not a cache hit)
    assert final["status"] == "done" and final["cached"] is False and final["result"]["frames_analysed"] == 30


@pytest.mark.asyncio
async def test_same_url_again_is_answered_from_the_cache_at_once(api, media_server):
    url = f"{media_server}/face.jpg"
    status, body = await api.post_url(url)
    first = (await api.events(body["id"]))[-1]
    status, again = await api.post_url(url + "#share")
    assert status == 200 and again["status"] == "done" and again["cached"] is True
    assert again["result"]["p_fake"] == first["result"]["p_fake"]


@pytest.mark.asyncio
async def test_same_video_at_another_url_is_recognised_by_its_sha256(api, media_server, web_root):
    shutil.copy(web_root / "noface.mp4", web_root / "copy-of-noface.mp4")
    _, a = await api.post_url(f"{media_server}/noface.mp4")
    first = (await api.events(a["id"]))[-1]
    _, b = await api.post_url(f"{media_server}/copy-of-noface.mp4")
    second = (await api.events(b["id"]))[-1]
    assert first["cached"] is False and second["cached"] is True
    assert second["result"]["verdict"] == first["result"]["verdict"] == "NO_FACE"


@pytest.mark.asyncio
async def test_hung_site_fails_cleanly_at_the_deadline(api, hung_server):
    status, body = await api.post_url(hung_server + "?e2e")
    assert status == 202
    t0 = asyncio.get_running_loop().time()
    final = (await api.events(body["id"]))[-1]
    assert final["status"] == "failed" and final["error"]["error"] == "timeout"
    assert asyncio.get_running_loop().time() - t0 < DEADLINE_S + 10
    r = await api.get("/v1/health")
    assert r.status == 200


@pytest.mark.asyncio
async def test_missing_page_fails_with_a_clear_message(api, media_server):
    _, body = await api.post_url(f"{media_server}/no-such-post.html")
    final = (await api.events(body["id"]))[-1]
    assert final["status"] == "failed" and final["error"] == {"error": "fetch_failed", "message": "The site answered HTTP 404."}


def test_no_media_is_left_after_the_checks(server):
    assert wait_until(lambda: server.leftover_media() == [], timeout=10), server.leftover_media()


def test_sigterm_shuts_down_cleanly(server):
    assert server.stop(signal.SIGTERM) == 0
    assert server.leftover_media() == []
    assert "Traceback" not in server.stderr()
