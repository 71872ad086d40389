"""Content Credentials (C2PA) through the API: the real server (`python -m server` over TLS, the tiny
model) given the test CA as `--c2pa-trust-anchors`, checking files signed in the test by upload and
by URL from a local HTTP server; captured frames on an in-process app; a bad anchors file at start."""
from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys

import aiohttp
import pytest
import pytest_asyncio
from realserver import free_port
from server_support import start_server, wait_done
from testenv import ROOT

pytestmark = pytest.mark.slow
VERDICTS = ("REAL", "FAKE", "UNCERTAIN", "NO_FACE")
# what each fixture's credentials say on a server that trusts anchor.pem: (state, ai_generated, edited)
EXPECTED = {
    "ai.jpg": ("untrusted-signer", True, False), "ai.mp4": ("untrusted-signer", True, False),
    "camera.jpg": ("untrusted-signer", False, False), "edited.jpg": ("untrusted-signer", False, True),
    "tampered.jpg": ("invalid", False, False), "bad-signature.jpg": ("invalid", False, False),
    "trusted.jpg": ("valid", False, False), "plain.jpg": None,
}


@pytest.fixture(scope="module")
def server(tiny_checkpoint, c2pa_files, tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("c2pa-server"), "--weights", str(tiny_checkpoint), "--device", "cpu",
                       "--allow-private-fetch", "--c2pa-trust-anchors", str(c2pa_files["anchor.pem"]))
    srv.pair()
    yield srv
    srv.stop()


@pytest_asyncio.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


async def _finished(session, server, created: dict) -> dict:
    auth, ssl = {"Authorization": f"Bearer {server.token}"}, server.ssl_context()
    for _ in range(600):
        async with session.get(f"{server.base}/v1/checks/{created['id']}", headers=auth, ssl=ssl) as r:
            body = await r.json()
        if body["status"] in ("done", "failed"):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"check still {body['status']}")


def _summary(p: dict | None):
    return p and (p["state"], p["ai_generated"], p["edited"])


def test_banner_names_the_trust_anchors(server, c2pa_files):
    assert f"C2PA trust:   {c2pa_files['anchor.pem']}" in server.banner


@pytest.mark.asyncio
@pytest.mark.parametrize("name", list(EXPECTED))
async def test_upload_reports_what_the_files_credentials_say(server, session, c2pa_files, name):
    fd = aiohttp.FormData()
    fd.add_field("file", c2pa_files[name].read_bytes(), filename=name)
    fd.add_field("frames", "10")
    async with session.post(f"{server.base}/v1/checks/upload", data=fd, headers={"Authorization": f"Bearer {server.token}"},
                            ssl=server.ssl_context()) as r:
        assert r.status in (200, 202)
        created = await r.json()
    body = await _finished(session, server, created)
    assert body["status"] == "done" and body["result"]["verdict"] in VERDICTS, body
    assert _summary(body["result"]["provenance"]) == EXPECTED[name]
    if name in ("tampered.jpg", "bad-signature.jpg"):  # the generator's AI claim, broken: a claim, not a fact
        assert body["result"]["provenance"]["ai_generated_claimed"] is True
    if name == "ai.jpg":
        p = body["result"]["provenance"]
        assert p["signer"] == {"issuer": "Example AI Inc", "common_name": "Imagine Video signer"}
        assert p["claim_generator"] == "Imagine Video 1.0" and p["errors"] == []


@pytest.mark.asyncio
@pytest.mark.parametrize("name", ["ai.mp4", "tampered.jpg"])
async def test_url_check_reads_the_downloaded_files_credentials(server, session, c2pa_files, web_root, media_server, name):
    served = f"c2pa-{name}"
    shutil.copy(c2pa_files[name], web_root / served)
    async with session.post(f"{server.base}/v1/checks", json={"url": f"{media_server}/{served}", "frames": 20},
                            headers={"Authorization": f"Bearer {server.token}"}, ssl=server.ssl_context()) as r:
        assert r.status in (200, 202)
        created = await r.json()
    body = await _finished(session, server, created)
    assert body["status"] == "done" and body["source"] == "url", body
    p = body["result"]["provenance"]
    assert _summary(p) == EXPECTED[name]
    if name == "tampered.jpg":
        assert "assertion.dataHash.mismatch" in p["errors"]


def test_no_media_is_left_behind(server):
    assert server.leftover_media() == []


@pytest.mark.asyncio
async def test_captured_frames_have_no_credentials_even_from_a_signed_image(api, c2pa_files):
    """Frames are the page's pixels: a signed JPEG sent as frames is re-read as pixels only."""
    from PIL import Image

    client, _app, auth = api
    frame = io.BytesIO()
    Image.open(c2pa_files["ai.jpg"]).save(frame, "JPEG", quality=92)
    fd = aiohttp.FormData(default_to_multipart=True)
    for i in range(4):
        fd.add_field("frame", c2pa_files["ai.jpg"].read_bytes() if i == 0 else frame.getvalue(),
                     filename=f"frame-{i}.jpg", content_type="image/jpeg")
    fd.add_field("times", json.dumps([0, 0.4, 0.8, 1.2]))
    r = await client.post("/v1/checks/frames", data=fd, headers=auth)
    assert r.status == 202, await r.text()
    body = await wait_done(client, auth, (await r.json())["id"])
    assert body["status"] == "done" and body["source"] == "frames", body
    assert body["result"]["provenance"] is None


def test_server_with_an_unusable_trust_anchors_file_stops_at_start_with_a_message(tmp_path):
    bad = tmp_path / "anchors.pem"
    bad.write_text("not a certificate\n")
    r = subprocess.run([sys.executable, "-m", "server", "--port", str(free_port()), "--config-dir", str(tmp_path / "c"),
                        "--data-dir", str(tmp_path / "d"), "--c2pa-trust-anchors", str(bad)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "HOME": str(tmp_path)})
    assert r.returncode == 2 and "holds no PEM certificate" in r.stderr, r.stderr
