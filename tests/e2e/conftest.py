"""Shared set-up for the browser tests: clips, the fixture web, the real server, Chromium."""
from __future__ import annotations

import os
from pathlib import Path

import credentials
import media
import pytest
from fakeweb import HOSTS, write_fragmented
from firefox import FIREFOX, Firefox, firefox_profile, package_firefox, server_trust, site_prefs, trust
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
    out = {
        "face1": media.write_clip(d / "face1.mp4", media.face_frames(20, size=(480, 270))),
        "face2": media.write_clip(d / "face2.mp4", media.two_face_frames(10)),
        "noface": media.write_clip(d / "noface.mp4", media.no_face_frames(10)),
        "face3": media.write_clip(d / "face3.mp4", media.face_frames(12, size=(400, 240))),
        # a face too small to judge: the check abstains (UNCERTAIN, reason face_too_small)
        "tinyface": media.write_clip(d / "tinyface.mp4", media.inset_face_frames(20)),
        # 10 s, the face drifting there and back: fed to a MediaSource player (fixtures/mse-player.html)
        "face-long.frag": write_fragmented(d / "face-long.frag.mp4", _there_and_back(media.face_frames(50, size=(480, 270)))),
        # clips no server has seen before each timing run (test_time_to_badge.py)
        **{f"t-dl-{i}": media.write_clip(d / f"t-dl-{i}.mp4", media.face_frames(20, size=(400 + 40 * i, 240)))
           for i in (1, 2, 3)},
    }
    # a clip whose Content Credentials declare it AI-generated (test_credentials.py), and that clip
    # changed after signing
    generator = credentials.CA.make("Test Other CA").signer("Example AI Inc", "Imagine Video signer")
    out["ai-declared"] = credentials.sign(out["face3"], d / "ai-declared.mp4", generator, credentials.ai_generated())
    out["ai-tampered"] = credentials.tamper(out["ai-declared"], d / "ai-tampered.mp4")
    return out


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


# --- Firefox (tests/e2e/firefox.py) ---------------------------------------------------------------
@pytest.fixture(scope="session")
def firefox_available():
    if not Path(FIREFOX).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Firefox not found at {FIREFOX} (scripts/setup.sh --with-browser installs firefox-esr)")
        pytest.skip(f"Firefox not found at {FIREFOX}: run scripts/setup.sh --with-browser")
    return FIREFOX


@pytest.fixture(scope="session")
def firefox_extension(firefox_available) -> Path:
    return package_firefox()


@pytest.fixture(scope="session")
def ff_server(firefox_available, tmp_path_factory):
    """A server of its own: pairing records one extension's origin, and Chromium's has paired with the other."""
    from model import available_models

    s = start_server(tmp_path_factory.mktemp("ff-server"), available_models()[0])
    yield s
    s.stop()


@pytest.fixture(scope="session")
def ff(ff_server, fixture_web, firefox_extension, tmp_path_factory, out_dir):
    """Firefox with the extension, its profile trusting the server's CA (installed by `python -m
    server trust`) and the fixture sites' certificate, paired with the server through its link."""
    home = tmp_path_factory.mktemp("ff-home")
    profile = firefox_profile(home)
    r = server_trust(ff_server, home)
    assert r.returncode == 0 and f"trusted in {profile}" in r.stdout, r.stdout + r.stderr
    ca = tmp_path_factory.mktemp("ff-sites") / "sites-ca.pem"
    ca.write_bytes(fixture_web.ca_pem)
    trust(profile, "deepfake-check fixture sites CA", ca)
    browser = Firefox(profile, firefox_extension, site_prefs(HOSTS, fixture_web.https_port))
    try:
        browser.background("(bg, server) => browser.storage.local.set({server})", ff_server.base)
        page = browser.new_page(ff_server.pairing_link)
        browser.wait_for(page, "() => document.querySelector('#deepfake-check-pairing')?.dataset.state === 'ready'")
        browser.call("click", page=page, selector="#deepfake-check-pairing")  # the user's click: isTrusted
        state = browser.wait_for(page, """() => { const s = document.querySelector('#deepfake-check-pairing').dataset.state;
            return s !== 'ready' && s !== 'pairing' && s; }""", timeout=30)
        browser.call("screenshot", page=page, path=str(out_dir / "firefox-pairing-link.png"))
        browser.call("close", page=page)
        assert state == "paired", state
        ff_server.token = browser.background("async () => (await browser.storage.local.get('token')).token")
        yield browser
    finally:
        browser.close()
