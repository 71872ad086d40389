"""What the popup and the options page say of the server's fetcher (its age, YouTube's challenges)
and of posts behind a login (--cookies-from-browser, turned on per site), and that a check asks the
server for the browser's login only on a site turned on."""
from __future__ import annotations

import time

import pytest
from harness import browser_args, extension_url, launch, pair_by_link, start_server, sw_eval

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def login_server(tiny_checkpoint, tmp_path_factory):
    """A server whose fetcher is always too old (--fetcher-max-age 0) and that may use Chromium's
    cookies, from a profile that does not exist (so a check that asks for them says so at once)."""
    tmp = tmp_path_factory.mktemp("login-server")
    s = start_server(tmp, tiny_checkpoint, ["--fetcher-max-age", "0",
                                            "--cookies-from-browser", f"chromium:{tmp / 'no-such-profile'}"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def login_browser(playwright_instance, login_server, fixture_web, tmp_path_factory):
    context, _ = launch(playwright_instance, tmp_path_factory.mktemp("profile-login"),
                        browser_args(fixture_web, login_server.spki))
    sw_eval(context, "(server) => chrome.storage.local.set({server})", login_server.base)
    pair_by_link(context, login_server)
    yield context
    context.close()


def open_page(context, path: str, width: int = 360, height: int = 560):
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": height})
    page.goto(extension_url(context, path))
    page.wait_for_selector("#status[data-state=connected]", timeout=20_000)
    return page


def test_the_popup_says_to_update_a_stale_fetcher(login_browser, out_dir):
    page = open_page(login_browser, "pages/popup.html")
    page.wait_for_selector("#fetcher:not([hidden])", timeout=20_000)
    note = page.inner_text("#fetcher")
    assert note.startswith("Site downloads may fail: update the fetcher.")
    assert "days old" in note and "make update-fetcher" in note
    page.screenshot(path=str(out_dir / "popup-fetcher-stale.png"))
    page.close()


def test_the_popup_shows_the_fetcher_note_exactly_when_the_server_calls_it_stale(paired, server):
    """The session's server uses the default age limit: whether its fetcher is stale depends on the
    day, so the popup is held to what the server says."""
    _, health = server.api("GET", "/v1/health")
    page = open_page(paired, "pages/popup.html")
    page.wait_for_timeout(500)
    assert page.locator("#fetcher").is_visible() is health["fetcher"]["stale"]
    page.close()


def test_the_options_explain_the_browsers_login_once_before_any_site_can_use_it(login_browser, out_dir):
    page = open_page(login_browser, "pages/options.html", 760, 1400)
    notice = page.locator("#login-notice")
    notice.wait_for(state="visible", timeout=20_000)
    text = notice.inner_text()
    assert "chromium" in text and "The cookies stay on this machine" in text
    assert "sent only to that site" in text and "never stores or logs them" in text
    assert page.locator("#login-sites input").count() == 6
    assert all(page.locator("#login-sites input").nth(i).is_disabled() for i in range(6))
    notice.scroll_into_view_if_needed()
    page.screenshot(path=str(out_dir / "options-login-notice.png"), full_page=True)

    page.click("#login-notice-ok")
    page.wait_for_selector("#login-notice", state="hidden")
    page.wait_for_selector("#login-instagram:not([disabled])")
    assert not page.locator("#login-instagram").is_checked()  # every site starts off
    page.check("#login-instagram")
    deadline = time.time() + 10
    while not (sw_eval(login_browser, "async () => (await chrome.storage.local.get('loginSites')).loginSites") or {}).get("instagram"):
        assert time.time() < deadline, "the choice was not saved"
        time.sleep(0.2)
    page.locator("#login").scroll_into_view_if_needed()
    page.screenshot(path=str(out_dir / "options-login-sites.png"))
    page.reload()
    page.wait_for_selector("#login-instagram:checked:not([disabled])", timeout=20_000)
    assert page.locator("#login-notice").is_hidden()  # shown once
    page.close()


def test_without_cookies_on_the_server_no_site_can_use_the_browsers_login(paired):
    page = open_page(paired, "pages/options.html", 760, 1400)
    page.wait_for_selector("#login-state:has-text('Off: the server fetches every post anonymously')", timeout=20_000)
    assert "--cookies-from-browser" in page.inner_text("#login-state")
    assert page.locator("#login-notice").is_hidden()
    assert all(page.locator("#login-sites input").nth(i).is_disabled() for i in range(6))
    page.close()


def test_a_check_asks_for_the_browsers_login_only_on_a_site_turned_on(login_browser, login_server):
    """Instagram on, X off: the server is asked to read the browser's cookies (and says it cannot:
    the profile is missing) for the Instagram post only."""
    sw_eval(login_browser, "() => chrome.storage.local.set({loginSites: {instagram: true, x: false}, loginNoticeSeen: true})")
    got = {}
    for url in ("https://www.instagram.com/p/DLogin1Test/", "https://x.com/user1/status/1860000000000000099"):
        sw_eval(login_browser, """(url) => deepfakeCheck.requestCheck({url, pageUrl: null, kind: "video"}, undefined, "menu")""", url)
        deadline = time.time() + 120
        while True:
            rec = sw_eval(login_browser, "async (url) => (await chrome.storage.session.get('check:' + url))['check:' + url]", url)
            if rec and rec["phase"] in ("done", "failed", "error"):
                break
            assert time.time() < deadline, rec
            time.sleep(0.5)
        got[url] = rec
    instagram, x = got.values()
    assert instagram["cookies"] is True and x["cookies"] is False
    assert instagram["error"]["message"].startswith("Could not read chromium's cookies")
    assert not (x["error"] or {}).get("message", "").startswith("Could not read")


def test_videos_a_site_adapter_cannot_resolve_are_counted_in_the_popup(paired, out_dir):
    """The site changes its pages: a video appears outside any post the Reddit adapter knows. It is
    counted (and skipped by automatic checks), and the popup says so instead of staying silent."""
    page = paired.new_page()
    page.set_viewport_size({"width": 1000, "height": 800})
    page.goto("https://www.reddit.com/")
    page.bring_to_front()
    page.wait_for_selector("deepfake-check-badge")
    page.evaluate("""() => {
        const v = document.createElement('video');
        v.id = 'v-stray';
        v.muted = true;
        v.style.cssText = 'width: 480px; height: 270px; display: block; background: #333';
        document.body.prepend(v);
        scrollTo(0, 0);
    }""")
    where_js = """async () => {
        const [tab] = await chrome.tabs.query({active: true});
        return chrome.tabs.sendMessage(tab.id, {type: "where"}, {frameId: 0});
    }"""
    deadline = time.time() + 20
    while (where := sw_eval(paired, where_js))["unresolved"] != 1:
        assert time.time() < deadline, where
        time.sleep(0.3)
    assert where["videos"] >= 2
    # the popup as the toolbar opens it: over the Reddit tab, which stays the active one
    with paired.expect_page() as opened:
        sw_eval(paired, "(url) => chrome.tabs.create({url, active: false})", extension_url(paired, "pages/popup.html"))
    popup = opened.value
    popup.set_viewport_size({"width": 360, "height": 560})
    popup.wait_for_selector("#unresolved:not([hidden])", timeout=20_000)
    note = popup.inner_text("#unresolved")
    assert note.startswith(f"1 of {where['videos']} videos found here is not resolvable to a post: Reddit may have changed")
    popup.screenshot(path=str(out_dir / "popup-unresolved.png"))
    popup.close()
    page.close()
