"""Files whose first bytes sniff as media but whose container does not hold together are refused
before they are queued, by the real server over TLS (issue 23, item 9): uploads with 415, a URL's
download as a failed check (`not_media`) without reaching the worker, a captured frame with 400."""
from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import pytest_asyncio
from server_support import start_server
from test_containers import zip_file

pytestmark = [pytest.mark.slow, pytest.mark.asyncio]


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("containers"), "--weights", str(tiny_checkpoint), "--device", "cpu",
                       "--allow-private-fetch")
    srv.pair()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def hostile(media_dir) -> dict[str, bytes]:
    mp4, jpg = (media_dir / "face.mp4").read_bytes(), (media_dir / "face.jpg").read_bytes()
    ftyp = mp4[:int.from_bytes(mp4[:4], "big")]
    return {
        "jpeg-then-html.jpg": jpg[:40] + b"<html><body>" + b"<p>a page</p>" * 200 + b"</body></html>\xff\xd9",
        "zip-behind-mp4-boxes.mp4": ftyp + (600).to_bytes(4, "big") + b"free" + bytes(592) + zip_file(),
        "mp4-then-zip.mp4": mp4 + zip_file(),
    }


@pytest_asyncio.fixture
async def session(server):
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {server.token}"}) as s:
        yield s


async def finished(session, server, check_id: str) -> dict:
    for _ in range(600):
        async with session.get(f"{server.base}/v1/checks/{check_id}", ssl=server.ssl_context()) as r:
            body = await r.json()
        if body["status"] in ("done", "failed"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(body)


@pytest.mark.parametrize("name", ["jpeg-then-html.jpg", "zip-behind-mp4-boxes.mp4", "mp4-then-zip.mp4"])
async def test_an_upload_that_only_starts_like_media_is_refused_with_415(server, session, hostile, name):
    fd = aiohttp.FormData()
    fd.add_field("file", hostile[name], filename=name)
    async with session.post(f"{server.base}/v1/checks/upload", data=fd, ssl=server.ssl_context()) as r:
        body = await r.json()
        assert r.status == 415 and body["error"] == "unsupported_media", body
    assert body["message"].startswith("This is not a whole, well-formed ")
    assert server.leftover_media() == []


async def test_a_url_that_gives_a_zip_behind_mp4_boxes_fails_before_the_worker(server, session, hostile, web_root,
                                                                                 media_server):
    (web_root / "zip-behind-boxes.mp4").write_bytes(hostile["zip-behind-mp4-boxes.mp4"])
    async with session.post(f"{server.base}/v1/checks", json={"url": f"{media_server}/zip-behind-boxes.mp4"},
                            ssl=server.ssl_context()) as r:
        assert r.status == 202, await r.text()
        body = await finished(session, server, (await r.json())["id"])
    assert body["status"] == "failed" and body["error"]["error"] == "not_media", body
    assert "not a whole, well-formed video or image" in body["error"]["message"]
    assert server.leftover_media() == []


async def test_a_captured_frame_that_only_starts_like_a_jpeg_is_refused(server, session, hostile, media_dir):
    fd = aiohttp.FormData(default_to_multipart=True)
    fd.add_field("frame", (media_dir / "face.jpg").read_bytes(), filename="f0.jpg", content_type="image/jpeg")
    fd.add_field("frame", hostile["jpeg-then-html.jpg"], filename="f1.jpg", content_type="image/jpeg")
    fd.add_field("times", json.dumps([0, 0.5]))
    async with session.post(f"{server.base}/v1/checks/frames", data=fd, ssl=server.ssl_context()) as r:
        body = await r.json()
        assert r.status == 400 and body["message"].startswith("Frame 2 is damaged (JPEG:"), body


async def test_a_whole_clip_is_still_checked(server, session, media_dir):
    fd = aiohttp.FormData()
    fd.add_field("file", (media_dir / "face.mp4").read_bytes(), filename="face.mp4")
    async with session.post(f"{server.base}/v1/checks/upload", data=fd, ssl=server.ssl_context()) as r:
        assert r.status in (200, 202), await r.text()
        body = await r.json()
    if body["status"] != "done":
        body = await finished(session, server, body["id"])
    assert body["status"] == "done", body
