"""What a web page must not be able to do to the extension: choose what it checks, read what it
found, pair it with another server, burn the pairing code, or reach the token."""
from __future__ import annotations

import time

import pytest
from harness import (
    MENU_CLICK,
    browser_args,
    content_script_eval,
    extension_url,
    launch,
    pair_by_link,
    start_server,
    sw_eval,
    wait_badge,
)
from realserver import free_port

pytestmark = pytest.mark.browser


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


@pytest.fixture
def new_server(tiny_checkpoint, tmp_path_factory):
    """Starts fresh servers (their pairing codes unused); each is stopped after the test."""
    started = []

    def start():
        started.append(start_server(tmp_path_factory.mktemp("server"), tiny_checkpoint))
        return started[-1]

    yield start
    for s in started:
        s.stop()


@pytest.fixture
def new_browser(playwright_instance, fixture_web, tmp_path_factory):
    """Starts a fresh Chromium with the extension that trusts the given servers' certificates."""
    contexts = []

    def launch_trusting(*servers):
        context, _ = launch(playwright_instance, tmp_path_factory.mktemp("profile"),
                            browser_args(fixture_web, *(s.spki for s in servers)))
        contexts.append(context)
        return context

    yield launch_trusting
    for c in contexts:
        c.close()


def test_rewriting_the_pairing_links_fragment_does_not_burn_the_code(new_server, new_browser):
    """A page opens the server's pairing page with made-up codes and rewrites the fragment five
    times (the server burns its code after five wrong ones): the real code must still work."""
    server = new_server()
    context = new_browser(server)
    sw_eval(context, "(server) => chrome.storage.local.set({server})", server.base)
    page = context.new_page()
    page.goto("https://blog.example/")
    page.evaluate("""(base) => {
        const b = document.createElement('button');
        b.id = 'open';
        b.textContent = 'open';
        b.onclick = () => { window.w = window.open(base + '/pair#code=AAAA-AAAA'); };
        document.body.prepend(b);
    }""", server.base)
    with context.expect_page() as popup:
        page.click("#open")
    popup.value.wait_for_load_state()
    for code in ["BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD", "EEEE-EEEE", "FFFF-FFFF"]:
        time.sleep(1)
        page.evaluate("([base, code]) => { window.w.location.href = base + '/pair#code=' + code; }", [server.base, code])
    time.sleep(2)
    status, body = server.api("POST", "/v1/pair", {"code": server.pairing_code})
    assert status == 200, body


def settings_of(context) -> dict:
    return sw_eval(context, "() => chrome.storage.local.get(['server', 'token'])")


def test_a_pairing_page_of_another_server_needs_confirming_in_the_options(new_server, new_browser, out_dir):
    """Paired with its server, the extension is sent to another loopback server's pairing page (a
    page can do that) and the user clicks its button: nothing changes until the user confirms that
    server on the extension's options page, which then pairs with it."""
    home, other = new_server(), new_server()
    context = new_browser(home, other)
    sw_eval(context, "(server) => chrome.storage.local.set({server})", home.base)  # the options' server address
    pair_by_link(context, home)
    before = settings_of(context)
    assert before["server"] == home.base and before["token"]

    pair_by_link(context, other, want="confirm")
    assert settings_of(context) == before

    options = wait_for_page(context, extension_url(context, "pages/options.html"))
    options.wait_for_selector("#confirm-box:not([hidden])")
    assert options.inner_text("#confirm-server") == other.base
    options.screenshot(path=str(out_dir / "options-confirm-other-server.png"), full_page=True)
    options.click("#confirm-pair")
    options.wait_for_selector("#pair-result[data-ok=true]", timeout=20_000)
    after = settings_of(context)
    assert after["server"] == other.base and after["token"] not in (None, before["token"])
    assert options.is_hidden("#confirm-box")


def wait_for_page(context, url_prefix: str, timeout: float = 10):
    deadline = time.time() + timeout
    while True:
        pages = [p for p in context.pages if p.url.startswith(url_prefix)]
        if pages:
            return pages[-1]
        assert time.time() < deadline, f"no page {url_prefix}: {[p.url for p in context.pages]}"
        time.sleep(0.1)


def test_content_scripts_cannot_read_the_token(paired, server):
    """Content scripts run beside every page: the storage that holds the token is closed to them
    (Chrome 140+ lets an extension restrict storage.local so), and the settings the service worker
    gives them are the two they need: the uncertain band and whether this page is checked."""
    page = paired.new_page()
    page.goto("https://blog.example/")
    page.wait_for_function("document.querySelector('#v-file').currentTime > 0")
    stored = content_script_eval(page, """chrome.storage.local.get(null)
        .then((all) => JSON.stringify(all), (e) => 'refused: ' + e.message)""")
    assert server.token not in stored and stored.startswith("refused"), stored
    answer = content_script_eval(page, "chrome.runtime.sendMessage({type: 'settings'})")
    assert answer["ok"] and set(answer["settings"]) == {"uncertainBand", "autoCheck", "captureFrames"}, answer
    page.close()


def test_a_new_server_address_in_the_options_is_not_sent_the_old_token(new_server, new_browser):
    """A token belongs to the server that issued it: after the user types another address in the
    options, the extension is unpaired there (and says so) rather than showing it the old token."""
    home = new_server()
    context = new_browser(home)
    sw_eval(context, "(server) => chrome.storage.local.set({server})", home.base)
    pair_by_link(context, home)
    elsewhere = f"https://127.0.0.1:{free_port()}"
    options = context.new_page()
    options.goto(extension_url(context, "pages/options.html"))
    options.fill("#server", elsewhere)
    options.click("#server-form button[type=submit]")
    options.wait_for_selector("#status:not([data-state=connected]):not([data-state=unknown])", timeout=20_000)
    assert settings_of(context) == {"server": elsewhere}
    options.close()
