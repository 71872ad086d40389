"""Security checks against a real server started without --allow-private-fetch: everything a
malicious page (or another local program) might try is refused, and the server keeps serving."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import aiohttp
import pytest
import pytest_asyncio
from server_support import start_server
from testenv import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("sec"), "--weights", str(tiny_checkpoint), "--max-upload-mb", "1")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token(server):
    return server.pair()


@pytest_asyncio.fixture
async def session(server):
    async with aiohttp.ClientSession() as s:
        yield s


def auth(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.asyncio
@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1.nip.io:{port}", "127.0.0.1:{other}", "localhost"])
async def test_wrong_host_is_refused(server, token, session, host):
    h = host.format(port=server.port, other=server.port + 1)
    r = await session.get(f"{server.base}/v1/model", headers={**auth(token), "Host": h}, ssl=server.ssl_context())
    assert r.status == 403 and (await r.json())["error"] == "forbidden_host"


@pytest.mark.asyncio
@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://localhost:3000"])
async def test_wrong_origin_is_refused(server, token, session, origin):
    r = await session.post(f"{server.base}/v1/checks", json={"url": "https://example.com/v.mp4"},
                           headers={**auth(token), "Origin": origin}, ssl=server.ssl_context())
    assert r.status == 403 and (await r.json())["error"] == "forbidden_origin"


@pytest.mark.asyncio
async def test_no_token_is_refused(server, session):
    r = await session.post(f"{server.base}/v1/checks", json={"url": "https://example.com/v.mp4"}, ssl=server.ssl_context())
    assert r.status == 401


@pytest.mark.asyncio
@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/v1/health", "http://localhost/", "http://10.0.0.138/admin",
                                 "http://169.254.169.254/latest/meta-data/", "http://[::1]:{port}/", "http://192.168.1.1/"])
async def test_urls_to_private_addresses_are_refused(server, token, session, url):
    r = await session.post(f"{server.base}/v1/checks", json={"url": url.format(port=server.port)},
                           headers=auth(token), ssl=server.ssl_context())
    assert r.status == 403 and (await r.json())["error"] == "private_address"


@pytest.mark.asyncio
async def test_server_keeps_serving_after_bad_uploads(server, token, session, media_dir, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes((media_dir / "face.mp4").read_bytes() + bytes(2 * 1024 * 1024))
    for path, status in ((media_dir / "notes.mp4", 415), (big, 413)):
        fd = aiohttp.FormData()
        fd.add_field("file", path.read_bytes(), filename=path.name)
        try:
            r = await session.post(f"{server.base}/v1/checks/upload", data=fd, headers=auth(token), ssl=server.ssl_context())
            assert r.status == status
        except aiohttp.ClientOSError:  # a client may see the refusal as a reset while it is still sending
            assert status == 413
    fd = aiohttp.FormData()
    fd.add_field("file", (media_dir / "face.jpg").read_bytes(), filename="face.jpg")
    r = await session.post(f"{server.base}/v1/checks/upload", data=fd, headers=auth(token), ssl=server.ssl_context())
    assert r.status == 202
    check_id = (await r.json())["id"]
    for _ in range(300):
        r = await session.get(f"{server.base}/v1/checks/{check_id}", headers=auth(token), ssl=server.ssl_context())
        body = await r.json()
        if body["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.1)
    assert body["status"] == "done"
    assert server.leftover_media() == []


@pytest.mark.asyncio
async def test_logs_contain_neither_the_token_nor_urls(server, token, session):
    url = "https://video.example/secret-post-123"
    await session.post(f"{server.base}/v1/checks", json={"url": url}, headers=auth(token), ssl=server.ssl_context())
    await asyncio.sleep(1)
    logs = server.output()
    assert token not in logs and "secret-post-123" not in logs


@pytest.mark.asyncio
async def test_old_token_is_refused_after_rotate_token(server, token, session):
    """Last in this module: it replaces the token the other tests use."""
    r = subprocess.run([sys.executable, "-m", "server", "rotate-token", "--config-dir", str(server.config_dir)],
                       cwd=ROOT, capture_output=True, text=True, timeout=60, env={**os.environ})
    assert r.returncode == 0
    r = await session.get(f"{server.base}/v1/model", headers=auth(token), ssl=server.ssl_context())
    assert r.status == 401
    new = (server.config_dir / "token").read_text().strip()
    r = await session.get(f"{server.base}/v1/model", headers=auth(new), ssl=server.ssl_context())
    assert r.status == 200


def test_ctrl_c_stops_the_server_cleanly(server):
    import signal

    assert server.stop(signal.SIGINT) == 0
    assert server.leftover_media() == []
    assert "Traceback" not in server.stderr()
