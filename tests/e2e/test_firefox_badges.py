"""Badges and their panel in Firefox (firefox-esr, the ./package.sh build, driven over WebDriver BiDi)
against the real server (issues 22 and 23): the browser's real context menu on a video with native
controls, the panel placed where it fits and closed with Escape, a label the page's find() cannot
see, badges on the picture of a letterboxed video, watching another site's file, and badges that
recover when the server comes back."""
from __future__ import annotations

import time

import pytest
from fakeweb import HOSTS
from firefox import MENU_CLICK, Firefox, firefox_profile, server_trust, site_prefs, trust
from harness import expected_label, start_server

pytestmark = pytest.mark.browser

RECT = "(el) => { const r = el.getBoundingClientRect(); return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; }"


def wait_open(ff, page, css, want="true", timeout=10):
    deadline = time.time() + timeout
    while (ff.badge(page, css) or {}).get("open") != want:
        assert time.time() < deadline, ff.badge(page, css)
        time.sleep(0.1)


def test_firefox_real_context_menu_on_a_video_with_native_controls_gets_a_badge(ff, ff_server, fixture_web):
    """Issue 22.8: Firefox's own menu, opened by a right-click on the control bar of a video with
    native controls; "Check this video for deepfakes" chosen in it."""
    page = ff.new_page("https://blog.example/e2e/controls.html")
    ff.wait_for(page, "() => document.querySelector('#v-controls-cdn').currentTime > 0.3")
    ff.call("contextMenu", page=page, selector="#v-controls-cdn", label="Check this video for deepfakes", at=[0.5, 0.95])
    file = f"{fixture_web.http_base}/media/face3.mp4"
    shown = ff.wait_badge(page, "#v-controls-cdn", timeout=120)
    assert shown["url"] == file and shown["label"] == expected_label(ff_server.wait_done(file)["result"]), shown
    # and on the picture of the other one (same origin), from the middle of the video
    ff.call("contextMenu", page=page, selector="#v-controls", label="Check this video for deepfakes")
    assert ff.wait_badge(page, "#v-controls", timeout=120)["tone"] not in ("busy", "error")
    ff.call("close", page=page)


def test_firefox_panel_of_a_video_near_the_bottom_is_seen_whole_and_closes_with_escape(ff, out_dir):
    page = ff.new_page("https://x.com/e2e/x-panel.html")
    ff.wait_badge(page, "#v-low")
    ff.wait_badge(page, "#v-top")
    ff.click_badge(page, "#v-low")
    wait_open(ff, page, "#v-low")
    time.sleep(1)  # the heatmap arrives, the panel is placed again
    vp = ff.eval(page, "() => ({width: document.documentElement.clientWidth, height: innerHeight})")
    panel = ff.in_badge(page, "#v-low", ".panel", """(el) => { const r = el.getBoundingClientRect();
        return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, scroll: el.scrollHeight - el.clientHeight}; }""")
    assert panel["left"] >= 0 and panel["top"] >= 0 and panel["right"] <= vp["width"] and panel["bottom"] <= vp["height"], (panel, vp)
    assert panel["scroll"] <= 1, panel
    limits = ff.in_badge(page, "#v-low", ".panel .limits", RECT)
    assert limits["bottom"] <= vp["height"], limits
    ff.call("screenshot", page=page, path=str(out_dir / "firefox-panel-low-video.png"))
    ff.click_badge(page, "#v-top")  # one panel at a time
    wait_open(ff, page, "#v-top")
    assert ff.badge(page, "#v-low")["open"] == "false"
    ff.call("press", page=page, key="Escape")
    wait_open(ff, page, "#v-top", "false")
    ff.call("close", page=page)


def test_firefox_page_cannot_find_a_badges_label_or_open_its_panel(ff):
    page = ff.new_page("https://x.com/")
    shown = ff.wait_badge(page, "#v-face1")
    assert ff.eval(page, "() => window.find('10h')"), "find() does not work on this page: the test proves nothing"
    for text in (shown["label"], shown["label"].split(" ")[0], "score", "No face", "Frames analysed"):
        found = ff.eval(page, "(t) => { getSelection().removeAllRanges(); return window.find(t, false, false, true); }", text)
        assert found is False, text
    ff.eval(page, """() => { for (const host of document.querySelectorAll('deepfake-check-badge')) {
        host.click();
        host.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, composed: true})); } }""")
    time.sleep(0.5)
    assert all(b["open"] == "false" for b in ff.badges(page))
    ff.call("close", page=page)


def test_firefox_letterboxed_tiktok_video_has_its_badge_on_the_picture(ff):
    page = ff.new_page("https://www.tiktok.com/")
    ff.wait_badge(page, "#v-face1")
    box = ff.eval(page, """() => { const v = document.querySelector('#v-face1'); const r = v.getBoundingClientRect();
        return {x: r.left, y: r.top, w: r.width, h: r.height, vw: v.videoWidth, vh: v.videoHeight}; }""")
    picture_top = box["y"] + (box["h"] - box["w"] * box["vh"] / box["vw"]) / 2
    assert picture_top > box["y"] + 100
    tops = [b["top"] for b in ff.badges(page) if abs(b["left"] - box["x"] - 6) < 3]
    assert any(abs(t - picture_top - 6) < 3 for t in tops), (tops, picture_top)
    ff.call("close", page=page)


def test_firefox_watching_another_sites_file_checks_the_file_and_says_why(ff, ff_server, fixture_web):
    url = "https://blog.example/"
    page = ff.new_page(url)
    ff.eval(page, "() => document.querySelector('#v-below').scrollIntoView()")
    ff.wait_for(page, "() => document.querySelector('#v-below').currentTime > 0.3")
    ff.call("front", page=page)
    ff.call("click", page=page, selector="#v-below", button="right")
    answer = ff.background(MENU_CLICK, {"item": "watch-video", "pageUrl": url, "srcUrl": ""})
    assert answer["ok"], answer
    file = f"{fixture_web.http_base}/media/face2.mp4"
    shown = ff.wait_badge(page, "#v-below", timeout=120)
    assert shown["url"] == file and shown["label"] == expected_label(ff_server.wait_done(file)["result"]), shown
    ff.click_badge(page, "#v-below")
    wait_open(ff, page, "#v-below")
    assert "This video could not be watched" in ff.in_badge(page, "#v-below", ".panel", "(el) => el.textContent")
    ff.call("close", page=page)


def test_firefox_badges_recover_when_the_server_is_back_without_a_reload(firefox_extension, fixture_web, tiny_checkpoint,
                                                                         tmp_path_factory):
    """Issue 22.1 in Firefox: its own server and profile; the server stops, the feed's badges say so,
    the server starts again where it was, and the badges end with its verdicts, no reload."""
    tmp = tmp_path_factory.mktemp("ff-restarted-server")
    srv = start_server(tmp, tiny_checkpoint)
    home = tmp_path_factory.mktemp("ff-restart-home")
    profile = firefox_profile(home)
    browser = None
    try:
        assert server_trust(srv, home).returncode == 0
        ca = tmp / "sites-ca.pem"
        ca.write_bytes(fixture_web.ca_pem)
        trust(profile, "deepfake-check fixture sites CA", ca)
        browser = Firefox(profile, firefox_extension, site_prefs(HOSTS, fixture_web.https_port))
        browser.background("(bg, server) => browser.storage.local.set({server})", srv.base)
        pairing = browser.new_page(srv.pairing_link)
        browser.wait_for(pairing, "() => document.querySelector('#deepfake-check-pairing')?.dataset.state === 'ready'")
        browser.call("click", page=pairing, selector="#deepfake-check-pairing")
        browser.wait_for(pairing, "() => document.querySelector('#deepfake-check-pairing').dataset.state === 'paired'", timeout=30)
        browser.call("close", page=pairing)
        srv.stop()
        page = browser.new_page("https://www.youtube.com/")
        for css in ("#v-face1", "#v-noface"):
            assert browser.wait_badge(page, css)["label"] == "server not running"
        srv = start_server(tmp, tiny_checkpoint, port=srv.port)
        srv.token = browser.background("async () => (await browser.storage.local.get('token')).token")
        for css, path in (("#v-face1", "/watch?v=face1"), ("#v-noface", "/shorts/noface")):
            deadline = time.time() + 90
            while (shown := browser.badge(page, css))["tone"] in ("busy", "error"):
                assert time.time() < deadline, shown
                time.sleep(0.5)
            assert shown["label"] == expected_label(srv.wait_done(fixture_web.http_base + path)["result"]), shown
    finally:
        if browser:
            browser.close()
        srv.stop()


def test_firefox_a_check_that_could_not_judge_says_why_in_the_panel(ff, ff_server, fixture_web):
    url = "https://blog.example/e2e/small-face.html"
    page = ff.new_page(url)
    ff.wait_for(page, "() => document.querySelector('#v-tiny').currentTime > 0.3")
    ff.call("contextMenu", page=page, selector="#v-tiny", label="Check this video for deepfakes")
    file = f"{fixture_web.http_base}/media/tinyface.mp4"
    shown = ff.wait_badge(page, "#v-tiny", timeout=120)
    result = ff_server.wait_done(file)["result"]
    assert (result["verdict"], result["reason"], result["p_fake"]) == ("UNCERTAIN", "face_too_small", None), result
    assert shown["label"] == "UNSURE"
    ff.click_badge(page, "#v-tiny")
    wait_open(ff, page, "#v-tiny")
    text = ff.in_badge(page, "#v-tiny", ".panel", "(el) => el.textContent")
    assert "The face is too small in the picture to judge." in text, text
    assert ff.in_badge(page, "#v-tiny", ".panel .scale", "(el) => true") is None
    ff.call("close", page=page)
