"""What a person sees on a badge and in its panel, and what a page may not learn from them, in Chromium
against the real server (issues 22 and 23): the panel placed where it fits, one at a time, closed
with Escape; labels that fit; a label the page's find() cannot see; badges on the picture of a
letterboxed video; what happened when a capture fell back to the file; Retry; badges that recover
when the server comes back; the video in view checked first; right-click on a video with controls."""
from __future__ import annotations

import re
import time

import pytest
from harness import (
    MENU_CLICK,
    badge,
    badge_text,
    badges,
    browser_args,
    content_script_ready,
    expected_label,
    in_badge,
    launch,
    pair_by_link,
    start_server,
    sw_eval,
    sw_record,
    wait_badge,
)

pytestmark = pytest.mark.browser

PANEL_PAGE = "https://x.com/e2e/x-panel.html"
RECT = "(el) => { const r = el.getBoundingClientRect(); return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; }"


def click_badge(page, css: str) -> None:
    """The user's click on the badge of a video (a trusted event, at the badge's place)."""
    r = in_badge(page, css, ".badge", RECT)
    assert r, f"no badge on {css}"
    page.mouse.click((r["left"] + r["right"]) / 2, (r["top"] + r["bottom"]) / 2)


def wait_open(page, css: str, want: str = "true", timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while (badge(page, css) or {}).get("open") != want:
        assert time.time() < deadline, badge(page, css)
        time.sleep(0.1)


def viewport(page) -> dict:
    return page.evaluate("() => ({width: document.documentElement.clientWidth, height: innerHeight})")


def test_the_panel_of_a_video_near_the_bottom_is_seen_whole_and_one_panel_is_open_at_a_time(paired, server, out_dir):
    page = paired.new_page()
    page.goto(PANEL_PAGE)
    wait_badge(page, "#v-top")
    wait_badge(page, "#v-low")
    click_badge(page, "#v-low")
    wait_open(page, "#v-low")
    time.sleep(1)  # the heatmap is fetched through the service worker, then the panel is placed again
    vp = viewport(page)
    panel = in_badge(page, "#v-low", ".panel", """(el) => { const r = el.getBoundingClientRect();
        return {left: r.left, top: r.top, right: r.right, bottom: r.bottom, scroll: el.scrollHeight - el.clientHeight,
                placement: el.dataset.placement}; }""")
    assert panel["left"] >= 0 and panel["top"] >= 0 and panel["right"] <= vp["width"] and panel["bottom"] <= vp["height"], (panel, vp)
    assert panel["scroll"] <= 1, f"the panel scrolls inside itself: {panel}"  # the window is tall enough for all of it
    for part in (".panel canvas", ".panel .limits"):  # the heatmap and "Why this can be wrong" are in view
        r = in_badge(page, "#v-low", part, RECT)
        assert r and r["top"] >= panel["top"] and r["bottom"] <= panel["bottom"] <= vp["height"], (part, r, panel)
    # "most suspicious face" wraps between words, never inside one
    split = in_badge(page, "#v-low", ".panel", """(panel) => {
        const walker = document.createTreeWalker(panel, NodeFilter.SHOW_TEXT);
        const out = [];
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            for (const m of n.data.matchAll(/[A-Za-z]{4,}/g)) {
                const range = document.createRange();
                range.setStart(n, m.index); range.setEnd(n, m.index + m[0].length);
                const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
                if (tops.size > 1) out.push(m[0]);
            }
        }
        return out; }""")
    assert split == [], f"words broken across lines: {split}"
    page.screenshot(path=str(out_dir / "panel-low-video.png"))
    # opening another badge's panel closes this one
    click_badge(page, "#v-top")
    wait_open(page, "#v-top")
    assert badge(page, "#v-low")["open"] == "false"
    # Escape closes it
    page.keyboard.press("Escape")
    wait_open(page, "#v-top", "false")
    page.close()


def test_badge_labels_fit_their_badge(paired, out_dir):
    """The longest labels the extension writes (an error after a capture that could not read the
    picture, a verdict) are whole on the badge: nothing cut off."""
    page = paired.new_page()
    page.goto("https://x.com/e2e/x-private.html")
    for css in ("#v-private-cdn", "#v-private"):
        shown = wait_badge(page, css, timeout=120)
        fits = in_badge(page, css, ".badge", "(el) => el.scrollWidth <= el.clientWidth")
        assert fits, f"{css}: {shown['label']!r} overflows its badge"
    page.screenshot(path=str(out_dir / "badges-labels.png"))
    page.close()


def test_a_page_cannot_find_a_badges_label_or_open_its_panel(paired, server, fixture_web):
    """Issue 23.1: window.find() searches the page's text, closed shadow roots included; the label is
    drawn by CSS, so it finds nothing. The page cannot open the panel either (its text would be findable)."""
    page = paired.new_page()
    page.goto("https://x.com/")
    shown = wait_badge(page, "#v-face1")
    assert page.evaluate("() => window.find('10h')"), "find() does not work on this page: the test proves nothing"
    for text in (shown["label"], shown["label"].split(" ")[0], "score", "No face", "Faces:", "Frames analysed"):
        assert page.evaluate("(t) => { getSelection().removeAllRanges(); return window.find(t, false, false, true); }", text) is False, text
    # the page's own attempts to open a panel: clicks and key presses at the badge, none of them the user's
    page.evaluate("""() => {
        for (const host of document.querySelectorAll('deepfake-check-badge')) {
            host.click();
            const r = host.getBoundingClientRect();
            const under = document.elementFromPoint(r.left + 10, r.top + 8);
            under?.dispatchEvent(new MouseEvent('click', {bubbles: true, composed: true, clientX: r.left + 10, clientY: r.top + 8}));
            host.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, composed: true}));
        }
    }""")
    time.sleep(0.5)
    assert all(b["open"] == "false" for b in badges(page)), badges(page)
    page.close()


def test_a_letterboxed_tiktok_video_has_its_badge_on_the_picture(paired, fixture_web):
    """A 16:9 clip in TikTok's 9:16 player: the picture is a band across the middle of the box."""
    page = paired.new_page()
    page.goto("https://www.tiktok.com/")
    wait_badge(page, "#v-face1")
    box = page.locator("#v-face1").bounding_box()
    w, h = page.evaluate("() => { const v = document.querySelector('#v-face1'); return [v.videoWidth, v.videoHeight]; }")
    picture_top = box["y"] + (box["height"] - box["width"] * h / w) / 2
    assert picture_top > box["y"] + 100  # letterboxed indeed
    tops = [b["top"] for b in badges(page) if abs(b["left"] - box["x"] - 6) < 3]
    assert any(abs(t - picture_top - 6) < 3 for t in tops), (tops, picture_top)
    page.close()


def test_check_whats_playing_on_another_sites_file_says_the_file_was_checked_instead(paired, server, fixture_web, out_dir):
    """Issue 22.7: the picture of a video from another origin without CORS cannot be read; the file's
    address is checked instead, and the panel says so."""
    page = paired.new_page()
    page.goto("https://blog.example/")
    page.locator("#v-below").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('#v-below').currentTime > 0")
    page.bring_to_front()
    page.click("#v-below", button="right")
    answer = sw_eval(paired, MENU_CLICK, {"item": "check-playing", "pageUrl": "https://blog.example/", "srcUrl": ""})
    assert answer["ok"], answer
    url = f"{fixture_web.http_base}/media/face2.mp4"
    shown = wait_badge(page, "#v-below", timeout=120)
    assert shown["url"] == url and shown["label"] == expected_label(server.wait_done(url)["result"]), shown
    click_badge(page, "#v-below")
    wait_open(page, "#v-below")
    text = badge_text(page, "#v-below")
    assert "Its picture could not be read in the page" in text and "your server downloaded the video file instead" in text, text
    page.screenshot(path=str(out_dir / "panel-playing-cross-origin.png"))
    page.close()


def test_watching_another_sites_file_checks_the_file_and_says_why(paired, server, fixture_web):
    page = paired.new_page()
    page.goto("https://blog.example/")
    page.locator("#v-below").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('#v-below').currentTime > 0")
    page.bring_to_front()
    page.click("#v-below", button="right")
    answer = sw_eval(paired, MENU_CLICK, {"item": "watch-video", "pageUrl": "https://blog.example/", "srcUrl": ""})
    assert answer["ok"], answer
    url = f"{fixture_web.http_base}/media/face2.mp4"
    shown = wait_badge(page, "#v-below", timeout=120)
    assert shown["url"] == url and shown["label"] == expected_label(server.wait_done(url)["result"]), shown
    click_badge(page, "#v-below")
    wait_open(page, "#v-below")
    assert "This video could not be watched" in badge_text(page, "#v-below")
    page.close()


def test_retry_on_a_failed_badge_asks_the_server_again(paired, fixture_web, out_dir):
    """The server's check of a link fails; the panel says what to do and offers Retry, which makes a
    new check on the server (the service worker's record names a new check id)."""
    url = f"{fixture_web.http_base}/carol/status/quoted999"  # nothing to fetch there: the check fails
    page = paired.new_page()
    page.goto("https://x.com/")
    page.bring_to_front()
    link = "#post-noface div[role=link] a"
    content_script_ready(page)
    page.locator(link).click(button="right")
    sw_eval(paired, MENU_CLICK.replace('mediaType: "video", ', f'linkUrl: "{url}", '),
            {"item": "check-link", "pageUrl": "https://x.com/", "srcUrl": None})
    wait_badge_where(page, link, lambda b: b["label"] == "can't download", timeout=60)
    click_badge(page, link)
    wait_open(page, link)
    assert "Try right-click" in badge_text(page, link)  # the next step, not only the server's words
    page.screenshot(path=str(out_dir / "panel-error-retry.png"))
    first = sw_record(paired, url)["id"]
    r = in_badge(page, link, ".panel button.retry", RECT)
    page.mouse.click((r["left"] + r["right"]) / 2, (r["top"] + r["bottom"]) / 2)
    deadline = time.time() + 60
    while (rec := sw_record(paired, url))["id"] in (first, None):
        assert time.time() < deadline, f"Retry made no new check: {rec}"
        time.sleep(0.3)
    wait_badge_where(page, link, lambda b: b["label"] == "can't download", timeout=60)  # and it failed again, as it must
    page.close()


def test_right_click_on_a_video_with_native_controls_gets_a_badge(paired, server, fixture_web):
    """Issue 22.8 in Chromium: the browser's own controls cover the video; the right-click lands on it."""
    page = paired.new_page()
    url = "https://blog.example/e2e/controls.html"
    page.goto(url)
    page.wait_for_function("document.querySelector('#v-controls-cdn').currentTime > 0")
    page.bring_to_front()
    box = page.locator("#v-controls-cdn").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] - 12, button="right")  # on the control bar
    answer = sw_eval(paired, MENU_CLICK, {"item": "check-video", "pageUrl": url, "srcUrl": f"{fixture_web.http_base}/media/face3.mp4"})
    file = f"{fixture_web.http_base}/media/face3.mp4"
    assert answer["ok"] and answer["target"]["url"] == file and not answer.get("fallback"), answer
    shown = wait_badge(page, "#v-controls-cdn")
    assert shown["label"] == expected_label(server.wait_done(file)["result"])
    page.close()


def test_the_pairing_link_of_a_server_the_extension_is_paired_with_says_so(paired, server):
    page = paired.new_page()
    page.goto(server.pairing_link)  # the code in it was used by the paired fixture
    page.wait_for_selector("#deepfake-check-pairing[data-state=already]", timeout=20_000)
    page.close()


class Posts:
    """The extension's POST /v1/checks, in the order sent."""

    def __init__(self, context):
        self.urls: list[str] = []
        self.context = context
        context.on("request", self._on)

    def _on(self, request):
        if request.method == "POST" and request.url.endswith("/v1/checks"):
            self.urls.append(request.post_data_json["url"])

    def close(self):
        self.context.remove_listener("request", self._on)


def test_the_video_in_view_is_checked_before_those_scrolled_past(paired, fixture_web, out_dir):
    """Issue 22.6: five posts scrolled through, a second each; each check takes at least 15 s (slow
    permalinks), two run at a time. When a turn comes, the post in view goes first, not the one seen
    earliest; its badge says it waits, then how far its check has got."""
    posts = Posts(paired)
    page = paired.new_page()
    try:
        page.goto("https://x.com/e2e/x-busy.html")
        post = lambda n: f"{fixture_web.http_base}/slow/face1/status/{n}"  # noqa: E731
        for n in range(1, 6):
            page.locator(f"#v-busy{n}").scroll_into_view_if_needed()
            time.sleep(1.0)  # in view past the half-second debounce: asked for
        labels = []
        deadline = time.time() + 120
        while (shown := badge(page, "#v-busy5")) is None or shown["tone"] == "busy":
            assert time.time() < deadline, (shown, posts.urls)
            if shown:
                labels.append(shown["label"])
            time.sleep(0.3)
        slow = [u for u in posts.urls if "/slow/" in u]
        assert slow[:2] == [post(1), post(2)] and slow[2] == post(5), slow
        assert "waiting…" in labels and any(re.fullmatch(r"checking… \d+%", x) for x in labels), labels
        page.screenshot(path=str(out_dir / "feed-busy.png"))
    finally:
        page.close()  # the checks only it waited for are dropped
        posts.close()
    deadline = time.time() + 10
    while sw_eval(paired, "() => deepfakeCheck.activity().waiting"):
        assert time.time() < deadline, sw_eval(paired, "() => deepfakeCheck.activity()")
        time.sleep(0.2)


def test_badges_recover_when_the_server_is_back_without_a_reload(playwright_instance, fixture_web, tiny_checkpoint,
                                                                 tmp_path_factory, out_dir):
    """Issue 22.1: the server stops; a feed's badges say so; the server starts again; the badges end
    with its verdicts on their own: no reload, no scrolling."""
    tmp = tmp_path_factory.mktemp("restarted-server")
    srv = start_server(tmp, tiny_checkpoint)
    context = None
    try:
        context, _ = launch(playwright_instance, tmp_path_factory.mktemp("profile-restart"), browser_args(fixture_web, srv.spki))
        sw_eval(context, "(server) => chrome.storage.local.set({server})", srv.base)
        pair_by_link(context, srv)
        srv.token = sw_eval(context, "async () => (await chrome.storage.local.get('token')).token")
        srv.stop()
        page = context.new_page()
        page.goto("https://www.youtube.com/")
        for css in ("#v-face1", "#v-noface"):
            assert wait_badge(page, css)["label"] == "server not running"
        click_badge(page, "#v-face1")
        wait_open(page, "#v-face1")
        text = badge_text(page, "#v-face1")
        assert "checks again on its own once the server answers" in text and "Retry" in text, text
        page.screenshot(path=str(out_dir / "server-down-panel.png"))
        page.keyboard.press("Escape")
        srv = start_server(tmp, tiny_checkpoint, port=srv.port)
        srv.token = sw_eval(context, "async () => (await chrome.storage.local.get('token')).token")
        for css, path in (("#v-face1", "/watch?v=face1"), ("#v-noface", "/shorts/noface")):
            shown = wait_badge_where(page, css, lambda b: b["tone"] not in ("busy", "error"), timeout=90)
            assert shown["label"] == expected_label(srv.wait_done(fixture_web.http_base + path)["result"]), shown
        page.screenshot(path=str(out_dir / "server-back.png"))
    finally:
        if context:
            context.close()
        srv.stop()


def wait_badge_where(page, css, ok, timeout: float) -> dict:
    deadline = time.time() + timeout
    shown = None
    while time.time() < deadline:
        shown = badge(page, css)
        if shown and ok(shown):
            return shown
        time.sleep(0.25)
    raise AssertionError(f"badge on {css}: {shown}")


SMALL_FACE_PAGE = "https://blog.example/e2e/small-face.html"


def test_a_check_that_could_not_judge_says_why_in_the_panel(paired, server, fixture_web, out_dir):
    """Issue 19: the face is too small to judge; the server's check abstains (UNCERTAIN, reason
    face_too_small, no P(fake)); the badge reads UNSURE and its panel says why in the extension's
    words, with what would help, and draws no mark on the scale."""
    page = paired.new_page()
    page.goto(SMALL_FACE_PAGE)
    page.wait_for_function("document.querySelector('#v-tiny').currentTime > 0")
    page.bring_to_front()
    page.click("#v-tiny", button="right")
    url = f"{fixture_web.http_base}/media/tinyface.mp4"
    answer = sw_eval(paired, MENU_CLICK, {"item": "check-video", "pageUrl": SMALL_FACE_PAGE, "srcUrl": url})
    assert answer["ok"] and answer["target"]["url"] == url, answer
    shown = wait_badge(page, "#v-tiny")
    result = server.wait_done(url)["result"]
    assert (result["verdict"], result["reason"], result["p_fake"]) == ("UNCERTAIN", "face_too_small", None), result
    assert shown["label"] == "UNSURE"
    click_badge(page, "#v-tiny")
    wait_open(page, "#v-tiny")
    text = badge_text(page, "#v-tiny")
    assert "The face is too small in the picture to judge." in text and "may work" in text, text
    assert in_badge(page, "#v-tiny", ".panel .scale", "(el) => true") is None  # no score, no mark
    assert "An estimate, not proof" in text
    page.screenshot(path=str(out_dir / "panel-cannot-judge.png"))
    page.close()
