"""What the badge and the popup say when the extension cannot get a check made, and the TLS trust
path without any certificate flag (the server's CA installed by `python -m server trust`)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from harness import ROOT, browser_args, expected_label, extension_url, launch, start_server, sw_eval, wait_badge
from realserver import free_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def unpaired(playwright_instance, server, fixture_web, tmp_path_factory):
    """A second Chromium with the extension, never paired."""
    context, _ = launch(playwright_instance, tmp_path_factory.mktemp("profile-unpaired"), browser_args(fixture_web, server.spki))
    sw_eval(context, "(server) => chrome.storage.local.set({server})", server.base)
    yield context
    context.close()


def popup_status(context, out_path):
    page = context.new_page()
    page.goto(extension_url(context, "pages/popup.html"))
    page.wait_for_selector("#status:not([data-state=unknown])", timeout=20_000)
    state, text = page.get_attribute("#status", "data-state"), page.inner_text("#status")
    page.screenshot(path=str(out_path))
    page.close()
    return state, text


def assert_error_shown(context, site: str, label: str, state: str, text: str, out_dir, name: str) -> None:
    """The badge on a feed video and the popup both say what is wrong."""
    page = context.new_page()
    page.goto(site)
    shown = wait_badge(page, "#v-face1")
    assert (shown["tone"], shown["label"]) == ("error", label)
    page.screenshot(path=str(out_dir / f"state-{name}.png"))
    page.close()
    got_state, got_text = popup_status(context, out_dir / f"popup-{name}.png")
    assert got_state == state and text in got_text


def test_unpaired_extension_says_not_paired(unpaired, fixture_web, out_dir):
    assert_error_shown(unpaired, "https://x.com/", "not paired", "not_paired", "Not paired", out_dir, "not-paired")


def test_server_down_says_server_not_running(unpaired, fixture_web, out_dir):
    nobody = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    sw_eval(unpaired, "(server) => chrome.storage.local.set({server, token: 'a-token-from-before'})", nobody)
    assert_error_shown(unpaired, "https://www.youtube.com/", "server not running", "not_running", "Server not running",
                       out_dir, "server-down")


def test_ca_installed_by_server_trust_is_trusted_without_certificate_flags(playwright_instance, server, tmp_path_factory):
    """A fresh HOME: first Chromium does not trust the server; `python -m server trust` installs the
    CA into HOME's NSS database, and the next Chromium reaches the server with no flag at all."""
    home = tmp_path_factory.mktemp("home")
    env = {**os.environ, "HOME": str(home)}

    def status_with_fresh_browser(name):
        context, _ = launch(playwright_instance, tmp_path_factory.mktemp(name), [], env=env)
        try:
            sw_eval(context, "(server) => chrome.storage.local.set({server})", server.base)
            return sw_eval(context, "() => deepfakeCheck.probeStatus()")
        finally:
            context.close()

    before = status_with_fresh_browser("profile-untrusted")
    assert before["state"] == "cert_untrusted", before

    r = subprocess.run([sys.executable, "-m", "server", "trust", "--config-dir", str(server.config_dir),
                        "--data-dir", str(server.data_dir)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (home / ".pki" / "nssdb").is_dir()

    after = status_with_fresh_browser("profile-trusted")
    # Reached over TLS: the server answered /v1/health (this browser is simply not paired yet).
    assert after["state"] == "not_paired", after


def test_busy_server_is_retried_after_its_retry_after(playwright_instance, tiny_checkpoint, fixture_web, tmp_path_factory, out_dir):
    """Paired by pasting the link in the options. A server that takes one check at a time answers the second with 503 busy + Retry-After; the
    extension waits that long, asks again, and both badges end with the server's verdicts."""
    busy_server = start_server(tmp_path_factory.mktemp("busy-server"), tiny_checkpoint, extra=["--queue-size", "1"])
    context = None
    try:
        context, _ = launch(playwright_instance, tmp_path_factory.mktemp("profile-busy"), browser_args(fixture_web, busy_server.spki))
        # Pair from the options page this time: one paste of the printed link (server address included).
        options = context.new_page()
        options.goto(extension_url(context, "pages/options.html"))
        options.fill("#code", busy_server.pairing_link)
        options.dispatch_event("#code", "paste")
        options.wait_for_selector("#pair-result[data-ok=true]", timeout=20_000)
        assert options.input_value("#server") == busy_server.base
        options.wait_for_selector("#status[data-state=connected]")
        options.screenshot(path=str(out_dir / "options-paired.png"), full_page=True)
        options.close()
        busy_server.token = sw_eval(context, "async () => (await chrome.storage.local.get('token')).token")
        statuses = []
        context.on("response", lambda r: r.request.method == "POST" and r.url.endswith("/v1/checks") and statuses.append(r.status))
        page = context.new_page()
        page.goto("https://www.youtube.com/")
        for css, path in [("#v-face1", "/watch?v=face1"), ("#v-noface", "/shorts/noface")]:
            shown = wait_badge(page, css, timeout=120)
            truth = busy_server.wait_done(fixture_web.http_base + path)
            assert shown["label"] == expected_label(truth["result"]), (css, shown)
        assert 503 in statuses and statuses.count(202) + statuses.count(200) >= 2, statuses
        page.screenshot(path=str(out_dir / "busy-server-retried.png"))
    finally:
        if context:
            context.close()
        busy_server.stop()
