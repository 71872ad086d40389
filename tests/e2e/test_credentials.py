"""Content Credentials (C2PA) in the paired browser: a clip whose credentials declare it AI-generated
gets the "AI-generated (declared)" badge and a panel that names the signer and keeps the detector's
verdict; the check-a-file page says the same, and calls out a clip changed after signing."""
from __future__ import annotations

import time

import pytest
from harness import MENU_CLICK, badge, badge_text, expected_label, extension_url, sw_eval, upload_as_curl, wait_badge

pytestmark = pytest.mark.browser


def wait_until(condition, timeout: float = 10) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def badge_point(page, css):
    box = page.locator(css).bounding_box()
    return box["x"] + 20, box["y"] + 14


def test_badge_and_panel_of_a_declared_ai_generated_clip(paired, server, fixture_web, out_dir):
    page = paired.new_page()
    page.goto("https://blog.example/")
    url = f"{fixture_web.http_base}/media/ai-declared.mp4"
    page.locator("#v-below").scroll_into_view_if_needed()
    page.evaluate("(url) => { document.querySelector('#v-below').src = url; }", url)  # the page plays our clip there
    page.wait_for_function("(url) => { const v = document.querySelector('#v-below'); return v.currentSrc === url && v.currentTime > 0 }", arg=url)
    page.bring_to_front()
    page.click("#v-below", button="right")
    answer = sw_eval(paired, MENU_CLICK, {"item": "check-video", "pageUrl": "https://blog.example/", "srcUrl": url})
    assert answer["ok"] and answer["target"]["url"] == url, answer
    shown = wait_badge(page, "#v-below")
    truth = server.wait_done(url)["result"]
    assert truth["provenance"]["state"] == "untrusted-signer" and truth["provenance"]["ai_generated"], truth
    assert (shown["label"], shown["tone"]) == ("AI-generated (declared)", "declared"), shown
    page.mouse.click(*badge_point(page, "#v-below"))
    wait_until(lambda: badge(page, "#v-below")["open"] == "true")
    text = badge_text(page, "#v-below")
    assert f"The detector: {expected_label(truth)}" in text, text  # both: the declaration and the detector
    assert "Content Credentials" in text and "declare it AI-generated" in text
    assert "Signed by Example AI Inc (not verified against a trust list)" in text and "Tool: Imagine Video 1.0" in text
    page.screenshot(path=str(out_dir / "credentials-panel.png"))
    page.close()


def test_file_page_shows_the_declaration_and_calls_out_a_changed_file(paired, server, clips, out_dir):
    page = paired.new_page()
    page.goto(extension_url(paired, "pages/check-file.html"))
    page.set_input_files("#file", str(clips["ai-declared"]))
    page.wait_for_selector("body[data-credentials=ai]", timeout=120_000)
    truth = upload_as_curl(server, clips["ai-declared"])["result"]
    assert page.inner_text("#verdict-tag").endswith("AI-generated (declared)")
    verdict = {"UNCERTAIN": "UNSURE", "NO_FACE": "No face"}.get(truth["verdict"], truth["verdict"])
    assert page.inner_text("#confidence").startswith(f"The detector: {verdict}")
    assert "Signed by Example AI Inc (not verified against a trust list)" in page.inner_text("#credentials-lines")
    page.screenshot(path=str(out_dir / "credentials-file-page.png"), full_page=True)
    page.set_input_files("#file", str(clips["ai-tampered"]))
    page.wait_for_selector("body[data-credentials=broken]", timeout=120_000)
    assert page.inner_text("#credentials-summary") == "Content Credentials don't match this file (changed after signing)."
    assert page.inner_text("#verdict-tag") != "AI-generated (declared)"  # the detector's verdict stays the label
    page.close()
