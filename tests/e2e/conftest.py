"""Shared set-up for the browser tests: clips, the fixture web, the real server, Chromium."""
from __future__ import annotations

import os
from pathlib import Path

import media
import pytest
from fakeweb import write_fragmented
from harness import ROOT, browser_args, launch, pair_by_link, start_server, sw_eval

pytestmark = pytest.mark.browser


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_available():
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {path} (scripts/setup.sh --with-browser installs it)")
        pytest.skip(f"Chromium not found at {path}: run scripts/setup.sh --with-browser")
    return path


@pytest.fixture(scope="session")
def out_dir() -> Path:
    """Screenshots go here (gitignored) so people can look at them after a run."""
    d = ROOT / "test-output" / "e2e"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    return {
        "face1": media.write_clip(d / "face1.mp4", media.face_frames(20, size=(480, 270))),
        "face2": media.write_clip(d / "face2.mp4", media.two_face_frames(10)),
        "noface": media.write_clip(d / "noface.mp4", media.no_face_frames(10)),
        "face3": media.write_clip(d / "face3.mp4", media.face_frames(12, size=(400, 240))),
        # 10 s, the face drifting there and back: fed to a MediaSource player (fixtures/mse-player.html)
        "face-long.frag": write_fragmented(d / "face-long.frag.mp4", _there_and_back(media.face_frames(50, size=(480, 270)))),
    }


def _there_and_back(frames):
    return frames + frames[::-1]


@pytest.fixture(scope="session")
def fixture_web(clips, tmp_path_factory):
    from fakeweb import start_fixture_web as start

    fw, stop = start(clips, tmp_path_factory.mktemp("fixture-web"))
    yield fw
    stop()


@pytest.fixture(scope="session")
def server(tiny_checkpoint, tmp_path_factory, chromium_available):
    """The real server on loopback, with the shipped default model when it is registered (else an
    untrained tiny model: plumbing only). Tests compare badges with this server's own answers."""
    from model import available_models

    names = available_models()
    s = start_server(tmp_path_factory.mktemp("server"), names[0] if names else tiny_checkpoint)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def playwright_instance(chromium_available):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def paired(playwright_instance, server, fixture_web, tmp_path_factory, out_dir):
    """One Chromium with the extension, paired with the server through its pairing link (the code
    works once, so the whole session shares this browser; tests open and close their own pages).
    The server's port is not the default one: its address is set first, as in the options."""
    context, sw = launch(playwright_instance, tmp_path_factory.mktemp("profile"), browser_args(fixture_web, server.spki))
    sw_eval(context, "(server) => chrome.storage.local.set({server})", server.base)
    pair_by_link(context, server, screenshot=out_dir / "pairing-link.png")
    token = sw_eval(context, "async () => (await chrome.storage.local.get('token')).token")
    server.token = token
    yield context
    context.close()
