"""Access control end to end: a real `python -m server` process over TLS on loopback.

Each refusal is checked with everything else right (a valid token, Host and body), so the test
fails if the one thing under test stops being enforced."""
from __future__ import annotations

import subprocess
import sys

import aiohttp
import pytest
from testenv import ROOT

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

PROTECTED = [("GET", "/v1/model"), ("POST", "/v1/checks"), ("POST", "/v1/checks/upload"),
             ("GET", "/v1/checks/abc"), ("GET", "/v1/checks/abc/heatmap.png"), ("GET", "/v1/checks/abc/events")]
PRIVATE_URLS = [
    "http://127.0.0.1/video.mp4", "http://127.1/v.mp4", "http://2130706433/v.mp4", "http://0x7f000001/v.mp4",
    "http://localhost:8080/v.mp4", "http://[::1]/v.mp4", "http://[::ffff:127.0.0.1]/v.mp4", "http://0.0.0.0/v.mp4",
    "http://10.0.0.1/v.mp4", "http://10.255.255.254:8000/x", "http://172.16.5.4/v.mp4", "http://192.168.1.1/",
    "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/v.mp4", "http://[fe80::1]/v.mp4", "http://[fd00::1]/v.mp4",
    "https://user:pass@127.0.0.1:443/v.mp4",
]


async def request(live, method, path, *, token=True, host=None, origin=None, json_body=None, token_value=None):
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token_value or live.stored_token}"
    if host is not None:
        headers["Host"] = host
    if origin is not None:
        headers["Origin"] = origin
    async with aiohttp.ClientSession() as s:
        kw = {"json": json_body} if json_body is not None else {}
        if method == "POST" and path.endswith("/upload"):
            fd = aiohttp.FormData()
            fd.add_field("file", b"\x00\x00\x00\x18ftypmp42" + b"\0" * 64, filename="a.mp4")
            kw = {"data": fd}
        elif method == "POST" and json_body is None:
            kw = {"json": {"url": "https://example.com/v.mp4"}}
        async with s.request(method, live.base + path, headers=headers, ssl=live.ssl_context(), **kw) as r:
            try:
                body = await r.json(content_type=None)
            except ValueError:
                body = None
            return r.status, body, r.headers


async def test_the_server_answers_with_a_valid_token_and_host(live_server):
    status, body, _ = await request(live_server, "GET", "/v1/model")
    assert status == 200 and body["name"] == "tiny"


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost",
                                  "127.0.0.1.nip.io:{port}", "localhost.evil.example:{port}", "10.0.0.5:{port}", ""])
async def test_a_wrong_host_header_is_refused_even_with_the_token(live_server, host):
    status, body, _ = await request(live_server, "GET", "/v1/model", host=host.format(port=live_server.port))
    assert status == 403 and body["error"] == "forbidden_host"


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:{port}", "https://localhost:{port}",
                                    "chrome-extension:", "file://"])
async def test_a_web_page_origin_is_refused_even_with_the_token(live_server, origin):
    status, body, headers = await request(live_server, "GET", "/v1/model", origin=origin.format(port=live_server.port))
    assert status == 403 and body["error"] == "forbidden_origin"
    assert "Access-Control-Allow-Origin" not in headers


async def test_once_paired_another_installed_extension_is_refused_even_with_the_token(live_server):
    paired, other = "chrome-extension://" + "a" * 32, "chrome-extension://" + "b" * 32
    status, _, _ = await request(live_server, "POST", "/v1/pair", token=False, origin=paired,
                                 json_body={"code": live_server.pairing_code})
    assert status == 200
    for path in ("/v1/model", "/v1/health"):
        status, body, headers = await request(live_server, "GET", path, origin=other)
        assert status == 403 and body["error"] == "forbidden_origin" and "Access-Control-Allow-Origin" not in headers
    assert (await request(live_server, "GET", "/v1/model", origin=paired))[0] == 200


@pytest.mark.parametrize("method,path", PROTECTED)
async def test_every_protected_endpoint_refuses_a_request_without_the_token(live_server, method, path):
    status, body, headers = await request(live_server, method, path, token=False)
    assert status == 401 and body["error"] == "unauthorized" and headers.get("WWW-Authenticate") == "Bearer"


@pytest.mark.parametrize("url", PRIVATE_URLS)
async def test_a_url_on_a_private_or_local_address_is_refused(live_server, url):
    status, body, _ = await request(live_server, "POST", "/v1/checks", json_body={"url": url})
    assert status == 403 and body["error"] == "private_address", (url, status, body)


async def test_an_old_token_stops_working_after_rotation(live_server):
    old = live_server.stored_token
    assert (await request(live_server, "GET", "/v1/model", token_value=old))[0] == 200
    subprocess.run([sys.executable, "-m", "server", "rotate-token", "--config-dir", str(live_server.config_dir)],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    new = live_server.stored_token
    assert new != old
    status, body, _ = await request(live_server, "GET", "/v1/model", token_value=old)
    assert status == 401 and body["error"] == "unauthorized"
    assert (await request(live_server, "GET", "/v1/model", token_value=new))[0] == 200
