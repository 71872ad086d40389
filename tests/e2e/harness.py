"""Starting the real server and a real Chromium with the unpacked extension, for the e2e tests."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

from realserver import RealServer
from testenv import ROOT

EXTENSION = ROOT / "extension"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BASE_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required",
             f"--disable-extensions-except={EXTENSION}", f"--load-extension={EXTENSION}"]


class Server(RealServer):
    """The real server as the browser tests use it, with the tests' own view of a check."""

    def wait_done(self, url: str, timeout: float = 180) -> dict:
        """The server's finished check for url (cached after the extension's check: no new work)."""
        deadline = time.time() + timeout
        status, body = self.api("POST", "/v1/checks", {"url": url})
        while body.get("status") not in ("done", "failed"):
            assert time.time() < deadline, f"check of {url} did not finish: {body}"
            time.sleep(0.5)
            status, body = self.api("GET", f"/v1/checks/{body['id']}")
        return body


def start_server(tmp: Path, weights: Path | str, extra: list[str] = ()) -> Server:
    """The real server on CPU, allowed to fetch from the fixture web (on loopback)."""
    return Server.start(tmp, "--weights", str(weights), "--device", "cpu", "--allow-private-fetch", *extra)


def browser_args(fixture_web, *spkis: str) -> list[str]:
    """The fixture sites under their real names, and the certificates pinned (fixture web, server)."""
    return [f"--host-resolver-rules={fixture_web.host_rules()}",
            f"--ignore-certificate-errors-spki-list={','.join([fixture_web.spki, *spkis])}"]


EXTENSION_IDS: dict[int, str] = {}


def launch(playwright, profile: Path, extra_args: list[str] = (), env: dict | None = None):
    """Chromium with the unpacked extension; returns (context, service worker)."""
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=[*BASE_ARGS, *extra_args],
        viewport={"width": 1100, "height": 800}, env=env, ignore_https_errors=False,
    )
    sw = context.service_workers[0] if context.service_workers else context.wait_for_event("serviceworker", timeout=30_000)
    EXTENSION_IDS[id(context)] = sw.url.split("/")[2]
    return context, sw


def extension_url(context, path: str) -> str:
    return f"chrome-extension://{EXTENSION_IDS[id(context)]}/{path}"


def service_worker(context):
    """The extension's live service worker. Chromium stops it after ~30 s without events (as it
    may for any user); opening the popup sends it a message, which starts it again."""
    live = [w for w in context.service_workers if EXTENSION_IDS[id(context)] in w.url]
    if live:
        try:
            live[-1].evaluate("1")
            return live[-1]
        except Exception:
            pass
    with context.expect_event("serviceworker", timeout=30_000) as started:
        page = context.new_page()
        page.goto(extension_url(context, "pages/popup.html"))
    page.close()
    return started.value


def sw_eval(context, expression: str, arg=None):
    """Evaluates in the extension's service worker."""
    return service_worker(context).evaluate(expression, arg)


def pair_by_link(context, server: Server, screenshot: Path | None = None) -> None:
    """The one-click pairing: open the server's pairing link; the extension does the rest."""
    page = context.new_page()
    page.goto(server.pairing_link)
    page.wait_for_selector("#deepfake-check-pairing[data-state]", timeout=20_000)
    if screenshot:
        page.screenshot(path=str(screenshot))
    state = page.get_attribute("#deepfake-check-pairing", "data-state")
    text = page.inner_text("#deepfake-check-pairing")
    page.close()
    assert state == "paired", text


def badge(page, video_css: str) -> dict | None:
    """The badge drawn for a video (host attributes mirror what the closed shadow root shows)."""
    return page.evaluate("""(sel) => {
        const find = (root) => root.querySelector(sel) ?? [...root.querySelectorAll('*')].map(e => e.shadowRoot && find(e.shadowRoot)).find(Boolean);
        const v = find(document);
        if (!v) return null;
        const r = v.getBoundingClientRect();
        for (const host of document.querySelectorAll('deepfake-check-badge')) {
          const h = host.getBoundingClientRect();
          const style = getComputedStyle(host);
          if (style.display !== 'none' && Math.abs(h.left - r.left - 6) < 3 && Math.abs(h.top - r.top - 6) < 3)
            return {label: host.dataset.label, tone: host.dataset.tone, url: host.dataset.url};
        }
        return null;
    }""", video_css)


def wait_badge(page, video_css: str, final: bool = True, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = badge(page, video_css)
        if last and (not final or last["tone"] != "busy"):
            return last
        time.sleep(0.25)
    raise AssertionError(f"no {'final ' if final else ''}badge on {video_css}: last {last}")


def expected_label(result: dict) -> str:
    """What the badge must say for a server result (the server's verdict, its confidence)."""
    v = result["verdict"]
    if v == "NO_FACE":
        return "No face"
    if v == "UNCERTAIN":
        return "UNSURE"
    conf = result["p_fake"] if v == "FAKE" else 1 - result["p_fake"]
    return f"{v} {math.floor(conf * 100 + 0.5)}%"  # JavaScript's Math.round
