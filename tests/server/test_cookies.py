"""--cookies-from-browser: posts behind a login, fetched with the cookies of a real Chromium profile.

Two local sites, as two different hosts: the post's site A on 127.0.0.1 (its post page answers 401
without A's session cookie, and its video lives on B) and site B on 127.0.0.2, where the same
browser is logged in too (not "localhost": Python's cookie jar never sends a dotless host's cookies,
so a leak there could not show). A test Chromium profile logs in to both (a cookie from each), then is
closed, and yt-dlp reads that profile's cookie database (Chromium without a keyring encrypts with a
fixed key yt-dlp knows), as it reads a user's."""
from __future__ import annotations

import http.server
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from server.fetch import FetchError, fetch, keep_site_cookies, same_site

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
A_SECRET, B_SECRET = "alice-a7f3e9c1", "bob-5d2b8e40"


@dataclass
class Site:
    host: str
    port: int
    cookies_seen: list = field(default_factory=list)  # (path, Cookie header or None) per request

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


def start_site(host: str, cookie: str, routes) -> tuple[Site, http.server.HTTPServer]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            site.cookies_seen.append((self.path, self.headers.get("Cookie")))
            if self.path == "/login":
                return self.answer(200, b"<p>logged in</p>", {"Set-Cookie": f"{cookie}; Path=/; Max-Age=86400"})
            status, body, headers = routes(self)
            self.answer(status, body, headers)

        def answer(self, status, body, headers=None, ctype=None):
            self.send_response(status)
            for k, v in {"Content-Type": "text/html", **(headers or {})}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer((host, 0), Handler)
    srv.daemon_threads = True
    site = Site(host, srv.server_address[1])
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return site, srv


@pytest.fixture(scope="module")
def sites(web_root):
    clip = (web_root / "face.mp4").read_bytes()
    b_routes = {
        "/face.mp4": lambda h: (200, clip, {"Content-Type": "video/mp4"}),
    }
    site_b, srv_b = start_site("127.0.0.2", f"b_session={B_SECRET}", lambda h: b_routes.get(h.path, lambda h: (404, b"", {}))(h))
    b_routes["/page.html"] = lambda h: (200, f'<video src="{site_b.base}/face.mp4"></video>'.encode(), {})

    def a_routes(h):
        logged_in = f"session={A_SECRET}" in (h.headers.get("Cookie") or "")
        path = h.path.split("?")[0]
        if path == "/post.html":
            if not logged_in:
                return 401, b"<p>Log in to see this post.</p>", {}
            return 200, f'<!doctype html><h1>A post</h1><video src="{site_b.base}/face.mp4"></video>'.encode(), {}
        if path == "/moved.html":  # the post moved to the other site
            return 302, b"", {"Location": f"{site_b.base}/page.html"}
        return 404, b"", {}

    site_a, srv_a = start_site("127.0.0.1", f"session={A_SECRET}", a_routes)
    yield site_a, site_b
    for srv in (srv_a, srv_b):
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def chromium_profile(sites, tmp_path_factory) -> Path:
    """A Chromium profile logged in to both sites, closed (its cookies are on disk)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    profile = tmp_path_factory.mktemp("chromium-profile")
    errors = []

    def log_in():  # Playwright's sync API in its own thread: never inside a test's event loop
        from playwright.sync_api import sync_playwright

        try:
            with sync_playwright() as p:
                ctx = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                           args=["--no-sandbox", "--disable-gpu"])
                page = ctx.new_page()
                for site in sites:
                    page.goto(f"{site.base}/login")
                ctx.close()
        except Exception as e:
            errors.append(e)

    t = threading.Thread(target=log_in)
    t.start()
    t.join(120)
    assert not errors, errors
    assert any(profile.rglob("Cookies")), "Chromium wrote no cookie database"
    for site in sites:
        site.cookies_seen.clear()
    return profile


async def get(url, dest, **kw):
    return await fetch(url, dest, max_bytes=10 * 2**20, max_duration_s=600, allow_private=True, timeout_s=60, **kw)


def cookies_sent(site: Site) -> list[str]:
    return [c for _, c in site.cookies_seen if c]


@pytest.mark.asyncio
async def test_without_cookies_a_post_behind_a_login_says_how_a_login_could_work(sites, tmp_path):
    site_a, _ = sites
    with pytest.raises(FetchError) as e:
        await get(f"{site_a.base}/post.html", tmp_path)
    assert e.value.code == "login_required"
    assert "--cookies-from-browser" in e.value.message


@pytest.mark.asyncio
async def test_with_cookies_configured_but_off_for_the_site_the_message_says_they_are_off(sites, tmp_path):
    site_a, _ = sites
    with pytest.raises(FetchError) as e:
        await get(f"{site_a.base}/post.html", tmp_path, cookies_configured=True)
    assert e.value.code == "login_required" and "off for this site" in e.value.message


@pytest.mark.asyncio
async def test_the_browsers_login_fetches_the_post_and_no_cookie_reaches_the_video_host(
        sites, chromium_profile, tmp_path, web_root):
    site_a, site_b = sites
    site_a.cookies_seen.clear()
    site_b.cookies_seen.clear()
    f = await get(f"{site_a.base}/post.html", tmp_path, cookies_from=f"chromium:{chromium_profile}",
                  cookies_configured=True)
    assert f.path.read_bytes() == (web_root / "face.mp4").read_bytes()
    assert cookies_sent(site_a) and all(c == f"session={A_SECRET}" for c in cookies_sent(site_a))
    # the video's host got neither A's cookie nor its own, although the browser has one for it
    assert [p for p, _ in site_b.cookies_seen] and cookies_sent(site_b) == []


@pytest.mark.asyncio
async def test_a_redirect_to_another_site_carries_no_cookie_of_either(sites, chromium_profile, tmp_path):
    site_a, site_b = sites
    site_b.cookies_seen.clear()
    await get(f"{site_a.base}/moved.html", tmp_path, cookies_from=f"chromium:{chromium_profile}",
              cookies_configured=True)
    assert ("/page.html", None) in site_b.cookies_seen
    assert cookies_sent(site_b) == []


@pytest.mark.asyncio
async def test_cookies_the_server_cannot_read_are_a_clear_failure(sites, tmp_path):
    site_a, _ = sites
    with pytest.raises(FetchError) as e:
        await get(f"{site_a.base}/post.html", tmp_path, cookies_from=f"chromium:{tmp_path}/no-profile",
                  cookies_configured=True)
    assert e.value.code == "fetch_failed" and e.value.message.startswith("Could not read chromium's cookies:")


@pytest.mark.asyncio
async def test_the_cookie_database_copy_does_not_outlive_the_download(sites, chromium_profile, tmp_path):
    site_a, _ = sites
    dest = tmp_path / "dl"
    dest.mkdir()
    f = await get(f"{site_a.base}/post.html", dest, cookies_from=f"chromium:{chromium_profile}")
    assert [p.name for p in dest.rglob("*") if p.is_file()] == [f.path.name]


@pytest.mark.parametrize("domain, host, same", [
    (".instagram.com", "www.instagram.com", True), ("www.instagram.com", "instagram.com", True),
    ("instagram.com", "instagram.com", True), (".instagram.com", "instagram.com", True),
    (".cdninstagram.com", "www.instagram.com", False), ("i.instagram.com", "www.instagram.com", False),
    ("evilinstagram.com", "instagram.com", False), (".x.com", "x.com", True), (".com", "x.com", False),
    ("com", "www.instagram.com", False), ("co.uk", "www.bbc.co.uk", False), (".bbc.co.uk", "www.bbc.co.uk", True),
    ("github.io", "alice.github.io", False), (".alice.github.io", "alice.github.io", True),
    ("localhost", "localhost", True), ("127.0.0.1", "127.0.0.1", True), ("127.0.0.1", "127.0.0.2", False),
    ("", "x.com", False),
])
def test_a_cookie_belongs_to_the_posts_site_when_a_browser_would_send_it_there(domain, host, same):
    assert same_site(domain, host) is same


@pytest.fixture
def proxied_site(web_root, monkeypatch):
    """www.example.com served through an HTTP proxy on loopback (the fetch child takes http_proxy
    from its environment, as from a user's): a post page whose video is on the same host. Records
    the Cookie header of every request."""
    clip = (web_root / "face.mp4").read_bytes()
    seen: list[tuple[str, str | None]] = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, self.headers.get("Cookie")))
            body, ctype = ((b'<!doctype html><video src="http://www.example.com/face.mp4"></video>', "text/html")
                           if self.path.endswith("/post.html") else (clip, "video/mp4"))
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{srv.server_address[1]}")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    yield seen
    srv.shutdown()
    srv.server_close()


def firefox_profile(path: Path, cookies: list[tuple[str, str, str]]) -> Path:
    """A Firefox profile whose cookie database holds (domain, name, value) cookies: Firefox's
    cookies are not encrypted, so any domain can be written, a bare public suffix included."""
    import sqlite3
    import time

    path.mkdir()
    db = sqlite3.connect(path / "cookies.sqlite")
    db.execute("CREATE TABLE moz_cookies (id INTEGER PRIMARY KEY, originAttributes TEXT NOT NULL DEFAULT '', name TEXT, "
               "value TEXT, host TEXT, path TEXT, expiry INTEGER, lastAccessed INTEGER, creationTime INTEGER, "
               "isSecure INTEGER, isHttpOnly INTEGER, inBrowserElement INTEGER DEFAULT 0, sameSite INTEGER DEFAULT 0, "
               "rawSameSite INTEGER DEFAULT 0, schemeMap INTEGER DEFAULT 0)")
    db.executemany("INSERT INTO moz_cookies (host, name, value, path, expiry, lastAccessed, creationTime, isSecure, "
                   "isHttpOnly) VALUES (?, ?, ?, '/', ?, 0, 0, 0, 0)",
                   [(*c, int(time.time()) + 86400) for c in cookies])
    db.commit()
    db.close()
    return path


@pytest.mark.asyncio
async def test_a_cookie_for_a_bare_public_suffix_never_reaches_the_post(proxied_site, tmp_path):
    """The real fetch child, reading a real (Firefox) cookie database: cookies set for "com" or ".com"
    would go to every .com site; only the post's own site's cookie is sent."""
    profile = firefox_profile(tmp_path / "firefox", [("com", "a", "leak-com"), (".com", "b", "leak-dot-com"),
                                                     (".example.com", "session", "mine"), (".other.com", "c", "leak")])
    dest = tmp_path / "dl"
    dest.mkdir()
    await get("http://www.example.com/post.html", dest, cookies_from=f"firefox:{profile}")
    assert proxied_site and {cookie for _, cookie in proxied_site} == {"session=mine"}, proxied_site


def test_only_the_posts_sites_cookies_are_kept():
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    for domain in (".x.com", "x.com", ".google.com", "ads.example", ".twimg.com"):
        jar.set_cookie(http.cookiejar.Cookie(0, "c", "v", None, False, domain, True, domain.startswith("."), "/", True,
                                             False, None, False, None, None, {}))
    assert keep_site_cookies(jar, "x.com") == 2
    assert sorted(c.domain for c in jar) == [".x.com", "x.com"]


@pytest.mark.slow
def test_the_server_uses_cookies_only_when_a_check_asks_and_never_logs_or_keeps_them(
        sites, chromium_profile, tiny_checkpoint, tmp_path_factory):
    """The real server, as verbose as it gets (-v --log-urls): the check that asks for the browser's
    login gets the post; the one that does not is told the cookies are off for its site; the cookie
    values appear in no log line and no file the server keeps."""
    import time

    from server_support import start_server

    site_a, _ = sites
    tmp = tmp_path_factory.mktemp("cookie-server")
    srv = start_server(tmp, "--weights", str(tiny_checkpoint), "--device", "cpu", "--allow-private-fetch",
                       "--cookies-from-browser", f"chromium:{chromium_profile}", "--log-urls", "-v")
    try:
        srv.pair()

        def check(url, **body):
            status, c = srv.api("POST", "/v1/checks", {"url": url, "frames": 10, **body})
            assert status in (200, 202), c
            deadline = time.time() + 120
            while c["status"] not in ("done", "failed"):
                assert time.time() < deadline, c
                time.sleep(0.3)
                c = srv.api("GET", f"/v1/checks/{c['id']}")[1]
            return c

        assert srv.api("POST", "/v1/checks", {"url": f"{site_a.base}/post.html", "use_cookies": "yes"})[0] == 400
        anonymous = check(f"{site_a.base}/post.html?anonymous", use_cookies=False)
        assert anonymous["status"] == "failed" and anonymous["error"]["error"] == "login_required"
        assert "off for this site" in anonymous["error"]["message"]
        logged_in = check(f"{site_a.base}/post.html", use_cookies=True)
        assert logged_in["status"] == "done", logged_in
        assert srv.api("GET", "/v1/health")[1]["fetcher"]["cookies_from"] == "chromium"
    finally:
        srv.stop()
    logs = srv.output()
    assert "/post.html" in logs  # --log-urls logs what was checked ...
    assert A_SECRET not in logs and B_SECRET not in logs  # ... and never a cookie
    for path in tmp.rglob("*"):
        if path.is_file() and path.suffix not in (".stdout", ".stderr"):
            data = path.read_bytes()
            assert A_SECRET.encode() not in data and B_SECRET.encode() not in data, path
