"""Fixtures for the server tests: configs in temp dirs for in-process apps that share the session's
real inference worker (`worker`, tests/conftest.py), and local HTTP servers to fetch from."""
from __future__ import annotations

import http.server
import shutil
import threading
from pathlib import Path

import pytest

from server.config import Config

PAGE = '<!doctype html><html><body><h1>A post</h1><video src="/face.mp4" controls></video></body></html>'


@pytest.fixture
def make_config(tmp_path, worker):
    def make(**kw) -> Config:
        kw.setdefault("config_dir", tmp_path / "config")
        kw.setdefault("data_dir", tmp_path / "data")
        kw.setdefault("plain_dir", worker.plain_dir)
        return Config(**kw)

    return make


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture(scope="session")
def web_root(media_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("www")
    for name in ("face.mp4", "face.jpg", "noface.mp4", "notes.mp4"):
        shutil.copy(media_dir / name, root / name)
    (root / "page.html").write_text(PAGE)
    (root / "nothing.html").write_text("<!doctype html><html><body><p>No video here.</p></body></html>")
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
