"""Checking what the browser plays, in Chromium against the real server: frames captured in the page
for a MediaSource (blob:) player, a post the server may not download, a cross-origin video whose
pixels the page may not read, and a live video watched until it goes away."""
from __future__ import annotations

import time

import pytest
from harness import MENU_CLICK, badge, badge_text, expected_label, sw_eval, sw_record, wait_badge

pytestmark = pytest.mark.browser

MSE_PAGE = "https://blog.example/e2e/mse-player.html"
PRIVATE_PAGE = "https://x.com/e2e/x-private.html"
CROSS_ORIGIN = "can't read picture"


class FramePosts:
    """The extension's POST /v1/checks/frames requests, seen on the wire."""

    def __init__(self, context):
        self.times: list[float] = []
        self.context = context
        context.on("request", self._on)

    def _on(self, request):
        if request.method == "POST" and request.url.endswith("/v1/checks/frames"):
            self.times.append(time.monotonic())

    def close(self):
        self.context.remove_listener("request", self._on)


@pytest.fixture
def frame_posts(paired):
    p = FramePosts(paired)
    yield p
    p.close()


def captured_result(context, server, key: str) -> dict:
    """The server's own check behind a captured badge (the service worker's record names its id)."""
    rec = sw_record(context, key)
    assert rec and rec.get("id"), rec
    status, check = server.api("GET", f"/v1/checks/{rec['id']}")
    assert status == 200 and check["status"] == "done" and check["source"] == "frames", check
    return check


def open_panel(page, css: str) -> str:
    box = page.locator(css).bounding_box()
    page.mouse.click(box["x"] + 14, box["y"] + 14)  # the badge sits 6 px into the corner
    deadline = time.time() + 10
    while (shown := badge(page, css))["open"] != "true":
        assert time.time() < deadline, shown
        time.sleep(0.1)
    return badge_text(page, css)


def test_a_mediasource_video_on_a_generic_page_gets_a_verdict_from_captured_frames(paired, server, frame_posts, out_dir):
    page = paired.new_page()
    page.goto(MSE_PAGE)
    page.wait_for_function("document.querySelector('#v-mse').dataset.ready && document.querySelector('#v-mse').currentTime > 0.3")
    assert page.evaluate("document.querySelector('#v-mse').src").startswith("blob:")
    page.bring_to_front()
    page.click("#v-mse", button="right")
    answer = sw_eval(paired, MENU_CLICK, {"item": "check-video", "pageUrl": MSE_PAGE, "srcUrl": ""})
    assert answer["ok"] and answer["target"]["url"].startswith("capture:"), answer  # not the page's address
    shown = wait_badge(page, "#v-mse", timeout=120)
    check = captured_result(paired, server, answer["target"]["url"])
    assert shown["label"] == expected_label(check["result"]) and shown["source"] == "frames", (shown, check["result"])
    assert check["result"]["frames_analysed"] == 20 and check["result"]["faces"], check["result"]
    assert check["result"]["duration"] > 5  # spread over the playback, not 20 copies of one moment
    assert len(frame_posts.times) == 1
    text = open_panel(page, "#v-mse")
    assert "20 frames captured while it played." in text, text
    page.screenshot(path=str(out_dir / "capture-mse-panel.png"))
    page.close()


def test_a_post_the_server_may_not_download_is_checked_from_its_captured_frames(paired, server, fixture_web, out_dir):
    """Automatic check on X: the permalink answers 401 "Login required"; the badge still ends with a
    verdict, from frames of the video as it plays in the page."""
    url = f"{fixture_web.http_base}/private/status/face3"
    page = paired.new_page()
    page.goto(PRIVATE_PAGE)
    shown = wait_badge(page, "#v-private", timeout=120)
    truth = server.wait_done(url)
    assert truth["status"] == "failed" and truth["error"]["error"] == "login_required", truth
    check = captured_result(paired, server, f"capture:{url}")
    assert shown["source"] == "frames" and shown["label"] == expected_label(check["result"]), (shown, check["result"])
    assert check["result"]["faces"], check["result"]
    page.screenshot(path=str(out_dir / "capture-login-required.png"))
    page.close()


def test_a_video_that_gets_its_picture_late_is_captured_when_it_does(paired, server, fixture_web):
    """The post's address needs a login and its video has no picture yet (the page loads it 9 s
    later): the badge says what the server answered, then, once the video plays, shows the verdict
    from its frames, with nobody clicking anything."""
    url = f"{fixture_web.http_base}/private/status/late-face1"
    page = paired.new_page()
    page.goto("https://x.com/e2e/x-late.html")
    shown = wait_badge(page, "#v-late", timeout=60)
    assert (shown["tone"], shown["label"]) == ("error", "login needed"), shown
    deadline = time.time() + 120
    while (shown := badge(page, "#v-late"))["tone"] in ("busy", "error"):
        assert time.time() < deadline, shown
        time.sleep(0.25)
    check = captured_result(paired, server, f"capture:{url}")
    assert shown["source"] == "frames" and shown["label"] == expected_label(check["result"]), (shown, check["result"])
    page.close()


def test_a_cross_origin_video_without_cors_says_its_pixels_cannot_be_read(paired, out_dir, frame_posts):
    """The same kind of post, its video from another origin without CORS: the canvas is tainted, there
    is no address left to try, and the badge says so; nothing is sent."""
    page = paired.new_page()
    page.goto(PRIVATE_PAGE)
    shown = wait_badge(page, "#v-private-cdn", timeout=120)
    assert (shown["tone"], shown["label"]) == ("error", CROSS_ORIGIN), shown
    page.screenshot(path=str(out_dir / "capture-cross-origin.png"))
    page.close()


def test_check_whats_playing_on_a_cross_origin_file_falls_back_to_its_address(paired, server, fixture_web):
    page = paired.new_page()
    page.goto("https://blog.example/")
    page.locator("#v-below").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('#v-below').currentTime > 0")
    page.bring_to_front()
    page.click("#v-below", button="right")
    answer = sw_eval(paired, MENU_CLICK, {"item": "check-playing", "pageUrl": "https://blog.example/", "srcUrl": ""})
    assert answer["ok"] and answer["target"]["kind"] == "playing", answer
    url = f"{fixture_web.http_base}/media/face2.mp4"
    shown = wait_badge(page, "#v-below", timeout=120)
    assert shown["url"] == url and shown["source"] == "url", shown
    assert shown["label"] == expected_label(server.wait_done(url)["result"])
    page.close()


def test_watching_a_live_stream_gives_successive_results_and_stops_when_the_video_is_removed(paired, frame_posts, out_dir):
    page = paired.new_page()
    page.goto(MSE_PAGE + "?live=1")
    page.wait_for_function("document.querySelector('#v-mse').dataset.ready && document.querySelector('#v-mse').currentTime > 0.3")
    assert page.evaluate("document.querySelector('#v-mse').duration === Infinity")  # live
    page.bring_to_front()
    page.click("#v-mse", button="right")
    answer = sw_eval(paired, MENU_CLICK, {"item": "watch-video", "pageUrl": MSE_PAGE + "?live=1", "srcUrl": ""})
    assert answer["ok"] and answer["target"]["url"].startswith("live:"), answer
    deadline = time.time() + 150
    while len((shown := badge(page, "#v-mse") or {}).get("trend", "").split("|")) < 2 or not shown["trend"]:
        assert time.time() < deadline, shown
        time.sleep(0.5)
    assert shown["label"].startswith("live · ") and shown["source"] == "frames", shown
    assert len(frame_posts.times) >= 2
    gap = frame_posts.times[1] - frame_posts.times[0]
    assert gap >= 9, f"live checks {gap:.1f} s apart"  # one window at a time, about every 10 s
    page.screenshot(path=str(out_dir / "capture-live.png"))
    page.evaluate("document.querySelector('#v-mse').remove()")
    time.sleep(1)
    sent = len(frame_posts.times)
    time.sleep(13)  # more than a window: a watch still running would have sent again
    assert len(frame_posts.times) == sent and page.locator("deepfake-check-badge").count() in (0, 1)
    assert badge(page, "#v-mse") is None
    page.close()
