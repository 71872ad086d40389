"""Automatic badges on feed pages that reproduce each supported site, against the real server:
what the badge says is what the server answered for that video's resolved URL."""
from __future__ import annotations

import time

import pytest
from harness import badge, expected_label, extension_url, sw_eval, wait_badge, wait_label

pytestmark = pytest.mark.browser

# A failed server check shows a short word (extension/shared/verdict.js SHORT).
FAILED_LABEL = {"fetch_failed": "can't download", "unsupported_url": "unsupported", "not_media": "not a video", "timeout": "timed out"}


class CheckPosts:
    """The extension's POST /v1/checks requests, seen on the wire (Playwright sees the service worker's fetches)."""

    def __init__(self, context):
        self.urls: list[str] = []
        self.context = context
        context.on("request", self._on)

    def _on(self, request):
        if request.method == "POST" and request.url.endswith("/v1/checks"):
            self.urls.append(request.post_data_json["url"])

    def count(self, url: str) -> int:
        return self.urls.count(url)

    def close(self):
        self.context.remove_listener("request", self._on)


@pytest.fixture
def posts(paired):
    p = CheckPosts(paired)
    yield p
    p.close()


def assert_badge_is_servers_answer(page, server, css: str, url: str) -> dict:
    shown = wait_badge(page, css)
    truth = server.wait_done(url)
    assert shown["url"] == url
    if truth["status"] == "failed":
        assert shown["tone"] == "error" and shown["label"] == FAILED_LABEL.get(truth["error"]["error"], "error"), (shown, truth["error"])
    else:
        assert shown["label"] == expected_label(truth["result"]), (css, shown, truth["result"])
    return truth


SITES = {
    # host: [(video, resolved URL relative to the fixture web)]
    "www.youtube.com": [("#v-face1", "/watch?v=face1"), ("#v-noface", "/shorts/noface")],
    "www.instagram.com": [("#v-face1", "/p/face1/"), ("#v-noface", "/reel/noface/")],
    "www.tiktok.com": [("#v-face1", "/@alice/video/face1")],
    "www.facebook.com": [("#v-face1", "/alicepage/videos/face1"), ("#v-reel", "/reel/1234567890")],
    "www.reddit.com": [("#v-face1", "/r/videos/comments/face1/a_face_video/")],  # inside an open shadow root
}


def test_x_feed_badges_visible_videos_with_the_servers_verdict(paired, server, fixture_web, out_dir, posts):
    page = paired.new_page()
    page.goto("https://x.com/")
    base = fixture_web.http_base
    truths = {css: assert_badge_is_servers_answer(page, server, css, base + path)
              for css, path in [("#v-face1", "/alice/status/face1"), ("#v-noface", "/bob/status/noface")]}
    assert truths["#v-noface"]["result"]["verdict"] == "NO_FACE"  # the clip has no face: the server must say so
    page.screenshot(path=str(out_dir / "feed-x.png"))
    page.close()


def test_offscreen_video_is_not_checked_until_scrolled_into_view(paired, server, fixture_web, out_dir, posts):
    page = paired.new_page()
    page.goto("https://x.com/")
    url = f"{fixture_web.http_base}/erin/status/face2"
    wait_badge(page, "#v-face1")
    time.sleep(2)  # well past the debounce: anything visible has been asked about by now
    assert posts.count(url) == 0 and badge(page, "#v-face2") is None
    page.locator("#v-face2").scroll_into_view_if_needed()
    assert_badge_is_servers_answer(page, server, "#v-face2", url)
    assert posts.count(url) == 1
    page.screenshot(path=str(out_dir / "feed-x-scrolled.png"))
    page.close()


def test_the_same_video_shown_twice_is_checked_once(paired, server, fixture_web, posts):
    url = f"{fixture_web.http_base}/frank/status/face3"  # face3 appears only on this page, twice
    page = paired.new_page()
    page.goto("https://x.com/fixture/x-thread.html")
    first, again = wait_badge(page, "#v-main"), wait_badge(page, "#v-again")
    assert first == again and first["url"] == url
    assert_badge_is_servers_answer(page, server, "#v-again", url)
    page.reload()  # and again after a reload: the answer is remembered in storage.session
    assert wait_badge(page, "#v-again") == first
    assert posts.count(url) == 1
    page.close()


@pytest.mark.parametrize("host", list(SITES))
def test_site_feed_badges_show_the_servers_verdict(host, paired, server, fixture_web, out_dir):
    page = paired.new_page()
    page.goto(f"https://{host}/")
    for css, path in SITES[host]:
        assert_badge_is_servers_answer(page, server, css, fixture_web.http_base + path)
    page.screenshot(path=str(out_dir / f"feed-{host}.png"))
    page.close()


def test_other_sites_are_not_checked_automatically(paired, fixture_web, posts):
    page = paired.new_page()
    page.goto("https://blog.example/")
    page.wait_for_function("document.querySelector('#v-file').currentTime > 0")
    time.sleep(2)
    assert posts.urls == [] and page.locator("deepfake-check-badge").count() == 0
    page.close()


def wait_badge_url(page, css, url, timeout=120):
    deadline = time.time() + timeout
    shown = None
    while time.time() < deadline:
        shown = badge(page, css)
        if shown and shown["url"] == url and shown["tone"] != "busy":
            return shown
        time.sleep(0.25)
    raise AssertionError(f"badge on {css} never showed a finished check of {url}: {shown}")


def test_youtube_navigation_rechecks_the_reused_player(paired, server, fixture_web):
    """YouTube keeps its <video> element across navigations and fires yt-navigate-finish: the badge
    must follow the new video, not keep the old verdict."""
    base = fixture_web.http_base
    page = paired.new_page()
    page.goto("https://www.youtube.com/")
    assert wait_badge(page, "#v-face1")["url"] == f"{base}/watch?v=face1"
    page.evaluate("""(base) => {
        history.pushState({}, "", "/?page=2");
        document.querySelector('#tile-face1 a#thumbnail').setAttribute('href', base + '/watch?v=face3');
        document.querySelector('#v-face1').src = base + '/media/face3.mp4';
        document.dispatchEvent(new CustomEvent('yt-navigate-finish', {bubbles: true}));
    }""", base)
    shown = wait_badge_url(page, "#v-face1", f"{base}/watch?v=face3")
    assert shown["label"] == expected_label(server.wait_done(f"{base}/watch?v=face3")["result"])
    page.close()


def test_history_navigation_in_a_single_page_app_checks_the_new_post(paired, server, fixture_web):
    base = fixture_web.http_base
    page = paired.new_page()
    page.goto("https://x.com/fixture/x-thread.html")
    wait_badge(page, "#v-main")
    page.evaluate("""(base) => {
        history.pushState({}, "", "/erin/status/face2");
        document.querySelector('#main-post a').setAttribute('href', base + '/erin/status/face2');
        document.querySelector('#v-main').src = base + '/media/face2.mp4';
        document.querySelector('#reply').remove();
    }""", base)
    shown = wait_badge_url(page, "#v-main", f"{base}/erin/status/face2")
    assert shown["label"] == expected_label(server.wait_done(f"{base}/erin/status/face2")["result"])
    assert page.locator("deepfake-check-badge").count() == 1  # the removed reply's badge went with it
    page.close()


def test_turning_a_site_off_in_the_options_stops_automatic_checks_there(paired, fixture_web, posts):
    options = paired.new_page()
    options.goto(extension_url(paired, "pages/options.html"))
    options.uncheck("#site-instagram")
    options.wait_for_function("async () => (await chrome.storage.local.get('autoSites')).autoSites?.instagram === false")
    try:
        page = paired.new_page()
        page.goto("https://www.instagram.com/?feed=2")
        page.wait_for_function("document.querySelector('#v-face1').currentTime > 0")
        time.sleep(2)
        assert page.locator("deepfake-check-badge").count() == 0 and posts.urls == []
        options.check("#site-instagram")  # on again: the open page starts checking without a reload
        assert wait_badge(page, "#v-face1")["url"] == f"{fixture_web.http_base}/p/face1/"
        page.close()
    finally:
        options.check("#site-instagram")
        options.close()


def test_the_uncertain_band_from_the_options_relabels_badges_live(paired, server, fixture_web, out_dir):
    """A band set in the options re-reads the server's p_fake: wide enough to make this answer UNSURE
    (or 0, to make an UNSURE answer take a side); the badge changes without a reload."""
    url = f"{fixture_web.http_base}/alice/status/face1"
    result = server.wait_done(url)["result"]
    page = paired.new_page()
    page.goto("https://x.com/")
    assert wait_badge(page, "#v-face1")["label"] == expected_label(result)
    if result["verdict"] == "UNCERTAIN":
        band = 0
        side = "FAKE" if result["p_fake"] >= result["threshold"] else "REAL"
        want = expected_label({**result, "verdict": side})
    else:
        band = round(min(1.0, abs(result["p_fake"] - result["threshold"]) + 0.05), 2)  # the option allows up to 1
        want = "UNSURE"
    assert want != expected_label(result)
    options = paired.new_page()
    options.goto(extension_url(paired, "pages/options.html"))
    options.fill("#band", str(band))
    options.dispatch_event("#band", "change")
    try:
        wait_label(page, want)
        assert badge(page, "#v-face1")["label"] == want
        page.screenshot(path=str(out_dir / "feed-x-band.png"))
    finally:
        options.click("#band-reset")
        options.wait_for_function("async () => (await chrome.storage.local.get('uncertainBand')).uncertainBand === null")
        options.close()
    wait_label(page, expected_label(result))
    page.close()


def test_the_popup_switch_turns_automatic_checks_off_and_on_for_the_site(paired, fixture_web, posts):
    """The popup, asked while an Instagram feed is the active tab, switches that site's automatic checks.

    Headless Chromium shows no toolbar bubble, so the popup page runs in a background tab of the
    same window: it asks for the active tab exactly as in the bubble."""
    page = paired.new_page()
    page.goto("https://www.instagram.com/?feed=2")
    page.wait_for_selector("deepfake-check-badge")  # on by default: the feed is being checked
    popup = paired.new_page()
    try:
        popup.goto(extension_url(paired, "pages/popup.html"))
        page.bring_to_front()  # the feed is the active tab again; the popup asks afresh
        popup.reload()
        popup.wait_for_selector("#auto:not([disabled])")
        assert popup.inner_text("#auto-label") == "Check videos on Instagram automatically"
        assert popup.is_checked("#auto")
        popup.uncheck("#auto")
        sw_eval(paired, """() => new Promise((ok) => { const t = setInterval(async () => {
            if ((await chrome.storage.local.get('autoSites')).autoSites?.instagram === false) { clearInterval(t); ok(true); }
        }, 50); })""")
        posts.urls.clear()
        other = paired.new_page()
        other.goto("https://www.instagram.com/?feed=2")
        other.wait_for_function("document.querySelector('#v-face1').currentTime > 0")
        time.sleep(2)
        assert other.locator("deepfake-check-badge").count() == 0 and posts.urls == []
        # and on again from the popup: the feed opened while it was off starts checking, no reload
        other.bring_to_front()
        popup.reload()
        popup.wait_for_selector("#auto:not([disabled])")
        assert not popup.is_checked("#auto")
        popup.check("#auto")
        assert wait_badge(other, "#v-face1")["url"] == f"{fixture_web.http_base}/p/face1/"
        other.close()
    finally:
        sw_eval(paired, """async () => { const {autoSites = {}} = await chrome.storage.local.get('autoSites');
            await chrome.storage.local.set({autoSites: {...autoSites, instagram: true}}); }""")
        popup.close()
        page.close()
