"""Starting the real server and a real Chromium with the unpacked extension, for the e2e tests."""
from __future__ import annotations

import json
import math
import os
import time
import urllib.request
import weakref
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


def start_server(tmp: Path, weights: Path | str, extra: list[str] = (), port: int | None = None) -> Server:
    """The real server on CPU, allowed to fetch from the fixture web (on loopback). port: restart
    one where it listened before (same tmp: same token, certificate and pairing)."""
    return Server.start(tmp, "--weights", str(weights), "--device", "cpu", "--allow-private-fetch", *extra, port=port)


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


# The browser's right-click menu cannot be driven; its click is (menus.onClicked's listener, called
# in the service worker). The page the test just opened is the active tab.
MENU_CLICK = """async ({item, pageUrl, srcUrl}) => {
    const [tab] = await chrome.tabs.query({active: true});
    return deepfakeCheck.onMenuClicked({menuItemId: item, srcUrl, pageUrl, frameId: 0, mediaType: "video", editable: false}, tab);
}"""


def sw_eval(context, expression: str, arg=None):
    """Evaluates in the extension's service worker."""
    return service_worker(context).evaluate(expression, arg)


def pair_by_link(context, server: Server, screenshot: Path | None = None, want: str = "paired") -> None:
    """The one-click pairing: open the server's pairing link and click the extension's button on it."""
    page = context.new_page()
    page.goto(server.pairing_link)
    page.click("#deepfake-check-pairing[data-state=ready]")  # the button fills its host; its root is closed
    page.wait_for_selector("#deepfake-check-pairing:not([data-state=ready]):not([data-state=pairing])", timeout=20_000)
    if screenshot:
        page.screenshot(path=str(screenshot))
    state = page.get_attribute("#deepfake-check-pairing", "data-state")
    page.close()
    assert state == want, state


_DEVTOOLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CONTEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # page → execution contexts seen


def devtools(page):
    """A DevTools protocol session on the page (one per page)."""
    if page not in _DEVTOOLS:
        _DEVTOOLS[page] = page.context.new_cdp_session(page)
    return _DEVTOOLS[page]


def content_script_eval(page, expression: str):
    """Evaluates in the extension's content script world of the page's top frame (where its
    content scripts run, apart from the page's own scripts), awaiting a promise."""
    cdp = devtools(page)
    if page not in _CONTEXTS:
        _CONTEXTS[page] = contexts = []
        cdp.on("Runtime.executionContextCreated", lambda e: contexts.append(e["context"]))
        cdp.send("Runtime.enable")  # reports the contexts that exist already, as events
    frame = cdp.send("Page.getFrameTree")["frameTree"]["frame"]["id"]
    deadline = time.time() + 10
    while not (ours := [c for c in _CONTEXTS[page] if c["name"] == "Deepfake Check"
                        and c.get("auxData", {}).get("frameId") == frame]):
        assert time.time() < deadline, f"no content script world in {page.url}: {[c['name'] for c in _CONTEXTS[page]]}"
        page.wait_for_timeout(100)  # lets the events in
    r = cdp.send("Runtime.evaluate", {"contextId": ours[-1]["id"], "expression": expression,
                                      "awaitPromise": True, "returnByValue": True})
    assert "exceptionDetails" not in r, r["exceptionDetails"]
    return r["result"].get("value")


def content_script_ready(page) -> None:
    """Waits until the extension's content script runs in the page's top frame: a right-click made
    before it listens is not seen (a person right-clicks a page that has been up a while; a test under
    load can be faster than the script)."""
    content_script_eval(page, "true")


def badges(page) -> list[dict]:
    """Every badge shown on the page: where it is, and what its closed shadow root says. The page
    itself cannot read that (test_hostile_pages); the tests read it as DevTools' inspector does."""
    cdp = devtools(page)
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    shown = []
    for node_id in cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": "deepfake-check-badge"})["nodeIds"]:
        try:
            border = cdp.send("DOM.getBoxModel", {"nodeId": node_id})["model"]["border"]
        except Exception:  # display: none has no box
            continue
        host = cdp.send("DOM.describeNode", {"nodeId": node_id, "depth": -1, "pierce": True})["node"]
        data = next((d for d in map(_data_attributes, _walk(host.get("shadowRoots", []))) if "label" in d), None)
        if data is not None:
            shown.append({"left": border[0], "top": border[1], **data})
    return shown


def _walk(nodes):
    for n in nodes:
        yield n
        yield from _walk(n.get("children", []))


def _data_attributes(node) -> dict:
    a = node.get("attributes", [])
    return {k[5:]: v for k, v in zip(a[::2], a[1::2], strict=True) if k.startswith("data-")}


# Where an element's badge goes: 6 px into the corner of the picture (a video's picture is drawn
# inside its box with object-fit: contain, centred, so a clip of another shape is letterboxed).
PICTURE_CORNER = """(sel) => {
    const find = (root) => root.querySelector(sel) ?? [...root.querySelectorAll('*')].map(e => e.shadowRoot && find(e.shadowRoot)).find(Boolean);
    const v = find(document);
    if (!v) return null;
    const r = v.getBoundingClientRect();
    if (v.nodeName !== 'VIDEO' || !v.videoWidth || !v.videoHeight) return {left: r.left + 6, top: r.top + 6};
    const s = Math.min(r.width / v.videoWidth, r.height / v.videoHeight);
    return {left: r.left + (r.width - v.videoWidth * s) / 2 + 6, top: r.top + (r.height - v.videoHeight * s) / 2 + 6};
}"""


def badge(page, video_css: str) -> dict | None:
    """The badge drawn on a video's corner: {label, tone, url, open}, or None."""
    r = page.evaluate(PICTURE_CORNER, video_css)
    if r is None:
        return None
    for b in badges(page):
        if abs(b["left"] - r["left"]) < 3 and abs(b["top"] - r["top"]) < 3:
            return {k: b.get(k, "") for k in ("label", "tone", "url", "open", "source", "trend")}
    return None


def wait_label(page, label: str, timeout: float = 30) -> None:
    """Until some badge on the page says label."""
    deadline = time.time() + timeout
    while not any(b["label"] == label for b in badges(page)):
        assert time.time() < deadline, f"no badge says {label!r}: {badges(page)}"
        time.sleep(0.25)


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
    """What the badge must say for a server result (the server's verdict, the model's score for it)."""
    v = result["verdict"]
    if v == "NO_FACE":
        return "No face"
    if v == "UNCERTAIN":
        return "UNSURE"
    conf = result["p_fake"] if v == "FAKE" else 1 - result["p_fake"]
    return f"{v} · score {math.floor(conf * 100 + 0.5)}%"  # JavaScript's Math.round


def badge_host(page, video_css: str) -> dict | None:
    """The DevTools node of the badge host on a video (its closed shadow root included), or None."""
    r = page.evaluate(PICTURE_CORNER, video_css)
    cdp = devtools(page)
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    for node_id in cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": "deepfake-check-badge"})["nodeIds"]:
        try:
            border = cdp.send("DOM.getBoxModel", {"nodeId": node_id})["model"]["border"]
        except Exception:
            continue
        if abs(border[0] - r["left"]) < 3 and abs(border[1] - r["top"]) < 3:
            return cdp.send("DOM.describeNode", {"nodeId": node_id, "depth": -1, "pierce": True})["node"]
    return None


def badge_text(page, video_css: str) -> str:
    """What the badge on a video says (its label is drawn by CSS: read from its mirror) and all the
    text of its open panel, read from its closed shadow root."""
    host = badge_host(page, video_css)
    if host is None:
        return ""
    nodes = list(_walk(host.get("shadowRoots", [])))
    label = next((_data_attributes(n)["label"] for n in nodes if "label" in _data_attributes(n)), "")
    return " ".join([label, *(n.get("nodeValue", "") for n in nodes
                               if n.get("nodeType") == 3 and n.get("parentId") is not None and "{" not in n.get("nodeValue", ""))])


def in_badge(page, video_css: str, selector: str, fn: str):
    """Calls fn (JavaScript source taking the element) on the element matching selector inside the
    closed shadow root of the badge on a video, as DevTools can; returns its JSON value (None: no such element)."""
    host = badge_host(page, video_css)
    if host is None:
        return None
    cdp = devtools(page)
    shadow = host["shadowRoots"][0]
    obj = cdp.send("DOM.resolveNode", {"backendNodeId": shadow["backendNodeId"]})["object"]["objectId"]
    r = cdp.send("Runtime.callFunctionOn", {"objectId": obj, "returnByValue": True, "awaitPromise": True,
                                            "functionDeclaration": f"function (sel) {{ const el = this.querySelector(sel); return el ? ({fn})(el) : null; }}",
                                            "arguments": [{"value": selector}]})
    assert "exceptionDetails" not in r, r["exceptionDetails"]
    return r["result"].get("value")


def sw_record(context, key: str) -> dict | None:
    """The service worker's record of a check (storage.session), by its URL or capture key."""
    return sw_eval(context, "async (key) => (await chrome.storage.session.get('check:' + key))['check:' + key] ?? null", key)


def upload_as_curl(server, path) -> dict:
    """The server's own answer for a file (cached when the page uploaded the same bytes)."""
    boundary = "deepfake-check-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
            f"Content-Type: video/mp4\r\n\r\n").encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(server.base + "/v1/checks/upload", data=body, method="POST", headers={
        "Authorization": f"Bearer {server.token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, context=server.ssl_context(), timeout=60) as r:
        check = json.loads(r.read())
    while check.get("status") not in ("done", "failed"):
        time.sleep(0.5)
        _, check = server.api("GET", f"/v1/checks/{check['id']}")
    return check
