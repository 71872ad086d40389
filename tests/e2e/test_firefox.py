"""The extension in Firefox (Debian's firefox-esr, the Firefox package built by ./package.sh loaded as
a temporary add-on) against the real server with the shipped model: pairing by link, feed badges,
the check-a-file page, the popup's status, a MediaSource video checked from captured frames, and
`python -m server trust` making a Firefox profile trust the server."""
from __future__ import annotations

import pytest
from firefox import MENU_CLICK, Firefox, firefox_profile, server_trust
from harness import expected_label, upload_as_curl

pytestmark = pytest.mark.browser


def test_firefox_pairs_by_link_and_the_popup_says_connected(ff, ff_server, out_dir):
    page = ff.new_page(ff.ext_url("pages/popup.html"))
    ff.wait_for(page, "() => document.querySelector('#status')?.dataset.state === 'connected'", timeout=30)
    _, model = ff_server.api("GET", "/v1/model")
    assert model["name"] in ff.eval(page, "() => document.querySelector('#status').innerText")
    ff.call("screenshot", page=page, path=str(out_dir / "firefox-popup.png"))
    ff.call("close", page=page)


def test_firefox_badges_feed_videos_with_the_servers_verdict(ff, ff_server, fixture_web, out_dir):
    page = ff.new_page("https://x.com/")
    for css, path in [("#v-face1", "/alice/status/face1"), ("#v-noface", "/bob/status/noface")]:
        shown = ff.wait_badge(page, css)
        truth = ff_server.wait_done(fixture_web.http_base + path)
        assert shown["url"] == fixture_web.http_base + path and shown["label"] == expected_label(truth["result"]), (shown, truth)
    ff.call("screenshot", page=page, path=str(out_dir / "firefox-feed-x.png"))
    ff.call("close", page=page)


def test_firefox_check_a_file_page_shows_the_servers_verdict(ff, ff_server, clips, out_dir):
    page = ff.new_page(ff.ext_url("pages/check-file.html"))
    ff.call("upload", page=page, selector="#file", path=str(clips["face3"]))
    ff.wait_for(page, "() => document.getElementById('verdict-tag')?.textContent", timeout=120)
    truth = upload_as_curl(ff_server, clips["face3"])["result"]
    shown = ff.eval(page, "() => document.body.dataset.label")
    assert shown == expected_label(truth), (shown, truth)
    ff.call("screenshot", page=page, path=str(out_dir / "firefox-check-file.png"), fullPage=True)
    ff.call("close", page=page)


def test_firefox_checks_a_mediasource_video_from_captured_frames(ff, ff_server, out_dir):
    url = "https://blog.example/e2e/mse-player.html"
    page = ff.new_page(url)
    ff.wait_for(page, "() => { const v = document.querySelector('#v-mse'); return v.dataset.ready && v.currentTime > 0.3; }")
    ff.call("front", page=page)
    ff.call("click", page=page, selector="#v-mse", button="right")
    answer = ff.background(MENU_CLICK, {"item": "check-video", "pageUrl": url, "srcUrl": ""})
    assert answer["ok"] and answer["target"]["url"].startswith("capture:"), answer
    shown = ff.wait_badge(page, "#v-mse")
    assert shown["tone"] != "error", shown["title"]
    rec = ff.background("async (bg, key) => (await browser.storage.session.get('check:' + key))['check:' + key]",
                        answer["target"]["url"])
    _, check = ff_server.api("GET", f"/v1/checks/{rec['id']}")
    assert check["source"] == "frames" and check["result"]["frames_analysed"] == 20 and check["result"]["faces"], check
    assert shown["source"] == "frames" and shown["label"] == expected_label(check["result"]), shown
    ff.call("screenshot", page=page, path=str(out_dir / "firefox-capture-mse.png"))
    ff.call("close", page=page)


def test_server_trust_makes_a_firefox_profile_trust_the_server(ff_server, firefox_extension, tmp_path):
    """A fresh profile: Firefox refuses the server's certificate; `python -m server trust` installs the
    CA into the profile, and the next Firefox reaches the server over TLS (it says: not paired yet)."""
    home = tmp_path / "home"
    profile = firefox_profile(home)

    def status():
        browser = Firefox(profile, firefox_extension)
        try:
            browser.background("(bg, server) => browser.storage.local.set({server})", ff_server.base)
            return browser.background("async (bg) => JSON.parse(JSON.stringify(await bg.deepfakeCheck.probeStatus()))")
        finally:
            browser.close()

    before = status()
    assert before["state"] == "cert_untrusted", before
    r = server_trust(ff_server, home)
    assert r.returncode == 0 and f"trusted in {profile}" in r.stdout, r.stdout + r.stderr
    after = status()
    assert after["state"] == "not_paired", after
