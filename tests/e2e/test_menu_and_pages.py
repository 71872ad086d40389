"""Right-click checks, the check-a-file page and the popup, in the paired browser."""
from __future__ import annotations

import time

import pytest
from harness import (
    MENU_CLICK,
    badge,
    content_script_ready,
    expected_label,
    extension_url,
    sw_eval,
    upload_as_curl,
    wait_badge,
)

pytestmark = pytest.mark.browser


def test_right_click_checks_the_video_that_was_right_clicked(paired, server, fixture_web, out_dir):
    page = paired.new_page()
    page.goto("https://blog.example/")  # a site without automatic checks
    base = fixture_web.http_base
    page.locator("#v-below").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('#v-below').currentTime > 0")
    # The user right-clicks the second video (the menu itself is the browser's; its click is driven below).
    page.bring_to_front()  # the service worker finds the page as the active tab
    page.click("#v-below", button="right")
    answer = sw_eval(paired, MENU_CLICK, {"item": "check-video", "pageUrl": "https://blog.example/", "srcUrl": f"{base}/media/face2.mp4"})
    assert answer["ok"] and answer["target"]["url"] == f"{base}/media/face2.mp4", answer
    shown = wait_badge(page, "#v-below")
    truth = server.wait_done(f"{base}/media/face2.mp4")
    assert shown["label"] == expected_label(truth["result"]) and truth["result"]["faces"], (shown, truth["result"])
    page.screenshot(path=str(out_dir / "menu-check-below.png"))
    # Only that one: the first video on the page was not checked.
    page.evaluate("window.scrollTo(0, 0)")
    time.sleep(1)
    assert badge(page, "#v-file") is None
    page.close()


def test_right_click_finds_a_video_under_an_overlay(paired, server, fixture_web, out_dir):
    """#v-file is covered by a transparent layer (like most players): the click lands on the layer."""
    page = paired.new_page()
    page.goto("https://blog.example/")
    page.wait_for_function("document.querySelector('#v-file').currentTime > 0")
    page.bring_to_front()
    box = page.locator("#v-file").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, button="right")  # lands on the layer
    answer = sw_eval(paired, MENU_CLICK, {"item": "check-video", "pageUrl": "https://blog.example/", "srcUrl": ""})
    url = f"{fixture_web.http_base}/media/face1.mp4"
    assert answer["ok"] and answer["target"]["url"] == url, answer
    shown = wait_badge(page, "#v-file")
    assert shown["label"] == expected_label(server.wait_done(url)["result"])
    # The badge opens its panel on click, with the details (drawn in the closed shadow root).
    page.mouse.click(*badge_point(page, "#v-file"))
    wait_until(lambda: badge(page, "#v-file")["open"] == "true")
    time.sleep(0.5)  # the heatmap is fetched through the service worker
    page.screenshot(path=str(out_dir / "menu-check-panel.png"))
    page.close()


def test_right_click_on_a_link_checks_the_link(paired, server, fixture_web):
    page = paired.new_page()
    page.goto("https://x.com/")
    page.bring_to_front()
    link = page.locator("#post-noface div[role=link] a")
    content_script_ready(page)
    link.click(button="right")
    url = f"{fixture_web.http_base}/carol/status/quoted999"
    answer = sw_eval(paired, MENU_CLICK.replace('mediaType: "video", ', f'linkUrl: "{url}", '),
                     {"item": "check-link", "pageUrl": "https://x.com/", "srcUrl": None})
    assert answer["ok"] and answer["target"] == {"url": url, "kind": "link"}, answer
    truth = server.wait_done(url)  # nothing is there to fetch: the server's check fails
    shown = wait_badge(page, "#post-noface div[role=link] a")
    assert truth["status"] == "failed" and shown["tone"] == "error" and shown["url"] == url, (shown, truth)
    page.close()


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def badge_point(page, css):
    box = page.locator(css).bounding_box()
    return box["x"] + 20, box["y"] + 14


def test_file_check_page_shows_the_verdict_over_the_playing_video(paired, server, clips, out_dir):
    page = paired.new_page()
    page.goto(extension_url(paired, "pages/check-file.html"))
    page.set_input_files("#file", str(clips["face1"]))
    page.wait_for_selector("body[data-verdict]", timeout=120_000)
    truth = upload_as_curl(server, clips["face1"])
    assert truth["cached"] and page.get_attribute("body", "data-label") == expected_label(truth["result"])
    page.wait_for_function("() => { const v = document.querySelector('#stage video'); return v && !v.paused && v.currentTime > 0.3 }")
    drawn = page.evaluate("""() => { const c = document.getElementById('boxes');
        return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some((x, i) => i % 4 === 3 && x > 0) }""")
    assert drawn, "no face box drawn over the video"
    assert page.locator("#faces li").count() == len(truth["result"]["faces"]) >= 1
    page.screenshot(path=str(out_dir / "check-file-face.png"), full_page=True)
    page.close()


def test_file_check_page_gives_the_seed_messages(paired, clips, tmp_path, out_dir):
    page = paired.new_page()
    page.goto(extension_url(paired, "pages/check-file.html"))
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    page.set_input_files("#file", str(notes))
    page.wait_for_function("() => document.getElementById('message').textContent === 'Only video or image files allowed.'")
    big = tmp_path / "big.mp4"
    with open(big, "wb") as f:
        f.truncate(101 * 1024 * 1024)  # sparse: over the 100 MB limit without writing it
    page.set_input_files("#file", str(big))
    page.wait_for_function("() => document.getElementById('message').textContent === 'File too large. Max limit 100MB.'")
    page.set_input_files("#file", str(clips["noface"]))
    page.wait_for_function("() => document.getElementById('message').textContent === 'No faces detected. Cannot process the video.'", timeout=120_000)
    assert page.inner_text("#verdict-tag") == "No face"
    page.screenshot(path=str(out_dir / "check-file-noface.png"), full_page=True)
    page.close()


def test_popup_shows_connection_model_and_last_checks(paired, server, out_dir):
    page = paired.new_page()
    page.set_viewport_size({"width": 360, "height": 520})
    page.goto(extension_url(paired, "pages/popup.html"))
    page.wait_for_selector("#status[data-state=connected]", timeout=20_000)
    _, model = server.api("GET", "/v1/model")
    assert model["name"] in page.inner_text("#status")
    page.wait_for_selector("#recent .tag")
    assert page.locator("#recent li").count() >= 1
    # each line says what and where and when, not a raw address (that is in the tooltip)
    lines = page.locator("#recent li a.url").all_inner_texts()
    assert lines and not any(x.startswith(("http", "capture:", "live:")) for x in lines), lines
    assert all(page.locator("#recent li .when").all_inner_texts()), "a line without its time"
    assert page.is_visible("#caveat")
    page.screenshot(path=str(out_dir / "popup.png"))
    page.close()


def test_the_page_tells_the_popup_which_site_it_is_on(paired):
    """The popup's per-site switch needs the tab's site; the content script answers (no "tabs" permission)."""
    page = paired.new_page()
    page.goto("https://www.reddit.com/")
    page.bring_to_front()
    page.wait_for_selector("deepfake-check-badge")  # the content script is running
    where = sw_eval(paired, """async () => {
        const [tab] = await chrome.tabs.query({active: true});
        return chrome.tabs.sendMessage(tab.id, {type: "where"}, {frameId: 0});
    }""")
    assert {k: where[k] for k in ("url", "origin", "siteId")} == {
        "url": "https://www.reddit.com/", "origin": "https://www.reddit.com", "siteId": "reddit"}
    assert where["videos"] >= 1 and where["unresolved"] == 0  # every video it saw is a post's
    page.close()


def test_file_page_shows_the_score_caveat_and_scale_and_only_the_last_files_verdict(paired, server, clips, out_dir):
    """Issue 22.2/22.3 and the minor: the number is called a model score, the caveat and the
    REAL · UNSURE · FAKE scale stand beside the verdict; choosing another file clears the verdict at
    once, and a file chosen while another is being checked is the only one whose verdict shows."""
    page = paired.new_page()
    page.set_viewport_size({"width": 1100, "height": 900})
    page.goto(extension_url(paired, "pages/check-file.html"))
    page.set_input_files("#file", str(clips["face1"]))
    page.wait_for_selector("body[data-verdict]", timeout=120_000)
    truth = upload_as_curl(server, clips["face1"])["result"]
    assert page.get_attribute("body", "data-label") == expected_label(truth)
    assert page.is_visible("#caveat") and page.inner_text("#caveat") == "An estimate, not proof — why?"
    if truth["verdict"] in ("REAL", "FAKE"):
        assert "model score" in page.inner_text("#confidence") and "confidence" not in page.inner_text("#confidence")
    assert page.locator("#scale .scale .mark").count() == 1
    page.wait_for_function("() => { const v = document.querySelector('#stage video'); return v && v.currentTime > 0.3 }")
    page.screenshot(path=str(out_dir / "check-file-verdict.png"), full_page=True)
    # another file: the verdict shown goes at once, before the new one is checked
    # (read in a change listener that runs right after the page's own: a cached answer may come back
    # before the test's next call)
    page.evaluate("""() => document.getElementById('file').addEventListener('change', () => {
        window.afterChange = [document.body.dataset.verdict ?? null, document.getElementById('result').hidden]; })""")
    page.set_input_files("#file", str(clips["noface"]))
    assert page.evaluate("window.afterChange") == [None, True]
    page.wait_for_selector("body[data-verdict=NO_FACE]", timeout=120_000)
    # two files in quick succession: only the second one's verdict is ever shown
    page.evaluate("""() => { window.labels = []; new MutationObserver(() => window.labels.push(
        [document.getElementById('file').files[0]?.name, document.body.dataset.label ?? null]))
        .observe(document.body, {attributes: true, attributeFilter: ['data-label']}); }""")
    page.set_input_files("#file", str(clips["face3"]))
    page.set_input_files("#file", str(clips["tinyface"]))
    page.wait_for_selector("body[data-verdict=UNCERTAIN]", timeout=120_000)
    time.sleep(3)  # the first file's check, had it not been dropped, would have answered by now
    shown = [label for name, label in page.evaluate("window.labels") if name == "tinyface.mp4" and label is not None]
    assert shown == ["UNSURE"], page.evaluate("window.labels")  # while the small face is chosen, only its verdict
    assert "The face is too small in the picture to judge." in page.inner_text("#summary")  # the reason, in words
    assert page.locator("#scale .scale").count() == 0  # no score: no mark
    page.screenshot(path=str(out_dir / "check-file-cannot-judge.png"), full_page=True)
    page.close()
