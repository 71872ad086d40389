"""What a web page must not be able to do to the extension: choose what it checks, read what it
found, pair it with another server, burn the pairing code, or reach the token."""
from __future__ import annotations

import pytest
from harness import sw_eval, wait_badge

pytestmark = pytest.mark.browser

MENU_CLICK = """async ({item, pageUrl, srcUrl}) => {
    const [tab] = await chrome.tabs.query({active: true});
    return deepfakeCheck.onMenuClicked({menuItemId: item, srcUrl, pageUrl, frameId: 0, mediaType: "video", editable: false}, tab);
}"""


def test_a_synthetic_contextmenu_does_not_choose_the_video_checked(paired, fixture_web):
    """The user right-clicks one video; the page then fires a contextmenu event of its own at
    another. "Check this video" must check the one the user right-clicked."""
    page = paired.new_page()
    page.goto("https://blog.example/")
    base = fixture_web.http_base
    page.locator("#v-below").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('#v-below').currentTime > 0")
    page.bring_to_front()
    page.click("#v-below", button="right")
    page.evaluate("""() => {
        const v = document.querySelector('#v-file');
        const r = v.getBoundingClientRect();
        v.dispatchEvent(new MouseEvent('contextmenu', {bubbles: true, composed: true, cancelable: true,
                                                       clientX: r.left + 10, clientY: r.top + 10}));
    }""")
    answer = sw_eval(paired, MENU_CLICK, {"item": "check-video", "pageUrl": "https://blog.example/",
                                          "srcUrl": f"{base}/media/face2.mp4"})
    assert answer["ok"] and answer["target"]["url"] == f"{base}/media/face2.mp4", answer
    page.close()


def test_a_page_cannot_read_what_a_badge_says(paired, fixture_web):
    """A badge's verdict and the URL checked stay in its closed shadow root: the page sees a bare
    host element (it could otherwise learn what was checked before, or which URLs are private)."""
    page = paired.new_page()
    page.goto("https://x.com/")
    shown = wait_badge(page, "#v-face1")
    seen = page.evaluate("""() => [...document.querySelectorAll('deepfake-check-badge')].map((h) => ({
        attributes: h.getAttributeNames(), shadowRoot: h.shadowRoot !== null, text: h.textContent}))""")
    assert seen and all(h == {"attributes": ["style"], "shadowRoot": False, "text": ""} for h in seen), seen
    html = page.evaluate("document.documentElement.outerHTML")
    assert shown["label"] not in html
    page.close()
