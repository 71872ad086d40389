"""Fixtures for the server tests: configs in temp dirs for in-process apps that share the session's
real inference worker (`worker`, tests/conftest.py), and local HTTP servers to fetch from."""
from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

import pytest
import pytest_asyncio

from server.app import create_app
from server.config import Config
from server.keys import TOKENS

PAGE = '<!doctype html><html><body><h1>A post</h1><video src="/face.mp4" controls></video></body></html>'


@pytest.fixture
def make_config(tmp_path, worker):
    def make(**kw) -> Config:
        kw.setdefault("config_dir", tmp_path / "config")
        kw.setdefault("data_dir", tmp_path / "data")
        kw.setdefault("plain_dir", worker.plain_dir)
        return Config(**kw)

    return make


@pytest.fixture
def app_factory(aiohttp_client, make_config, worker):
    """Start an app (sharing the session's worker); returns (client, app, auth headers)."""

    async def start(**kw):
        config = make_config(**kw)
        app = create_app(config, worker=worker)
        client = await aiohttp_client(app)
        return client, app, {"Authorization": f"Bearer {app[TOKENS].token}"}

    return start


@pytest_asyncio.fixture
async def api(app_factory):
    return await app_factory()



class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


# Streams yt-dlp would hand to an external program (ffmpeg, rtmpdump, mplayer/mpv), which would
# resolve and connect on its own, past the fetch child's address guard.
KEY = bytes(range(16))
HLS = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
{key}
#EXTINF:3.0,
{segment}
#EXT-X-ENDLIST
"""
STREAM_PAGE = '<!doctype html><html><body><video controls><source src="{src}" type="video/mp4"></video></body></html>'


def _aes128_cbc(data: bytes, key: bytes, iv: bytes) -> bytes:
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    padder = padding.PKCS7(128).padder()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(padder.update(data) + padder.finalize()) + enc.finalize()


def _transport_stream(path: Path) -> Path:
    import av
    import media
    import numpy as np

    with av.open(str(path), mode="w", format="mpegts") as out:
        st = out.add_stream("libx264", rate=10)
        st.width, st.height, st.pix_fmt = 320, 180, "yuv420p"
        for img in media.face_frames(20, (320, 180)):
            for pkt in st.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    return path


@pytest.fixture(scope="session")
def web_root(media_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("www")
    for name in ("face.mp4", "face.jpg", "noface.mp4", "notes.mp4"):
        shutil.copy(media_dir / name, root / name)
    (root / "page.html").write_text(PAGE)
    (root / "nothing.html").write_text("<!doctype html><html><body><p>No video here.</p></body></html>")
    ts = _transport_stream(root / "segment.ts").read_bytes()
    (root / "key.bin").write_bytes(KEY)
    (root / "segment.enc").write_bytes(_aes128_cbc(ts, KEY, bytes(16)))
    iv = "0x" + "00" * 16
    (root / "aes128.m3u8").write_text(HLS.format(key=f'#EXT-X-KEY:METHOD=AES-128,URI="key.bin",IV={iv}', segment="segment.enc"))
    (root / "sample-aes.m3u8").write_text(HLS.format(key=f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="key.bin",IV={iv}', segment="segment.enc"))
    for scheme in ("rtmp", "rtsp", "mms"):
        (root / f"{scheme}.html").write_text(STREAM_PAGE.format(src=f"{scheme}://127.0.0.1:9/live/stream.mp4"))
    return root


@pytest.fixture(scope="session")
def media_server(web_root):
    """http://127.0.0.1:PORT serving web_root (direct media and an HTML page with a <video>)."""
    handler = lambda *a, **k: _Handler(*a, directory=str(web_root), **k)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    srv.daemon_threads = True
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    # a post whose metadata (schema.org JSON-LD, as many sites publish) says the video runs 2 hours
    (web_root / "long.html").write_text(
        '<!doctype html><html><head><script type="application/ld+json">{"@context": "https://schema.org", '
        f'"@type": "VideoObject", "name": "A long video", "contentUrl": "{base}/face.mp4", "duration": "PT2H", '
        f'"uploadDate": "2026-01-01", "thumbnailUrl": "{base}/face.jpg"}}</script></head><body><p>post</p></body></html>'
    )
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield base
    srv.shutdown()
    srv.server_close()
