"""Starting the real server and a real Chromium with the unpacked extension, for the e2e tests."""
from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "extension"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
BASE_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=no-user-gesture-required",
             f"--disable-extensions-except={EXTENSION}", f"--load-extension={EXTENSION}"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    base: str
    spki: str
    code: str
    pair_link: str
    ca: Path
    config_dir: Path
    data_dir: Path
    log_path: Path
    token: str | None = None

    def _ctx(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        return ctx

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None, timeout: float = 30):
        """Calls the server like curl would (no Origin): for the tests' own view of a check."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token or self.token:
            req.add_header("Authorization", f"Bearer {token or self.token}")
        try:
            with urllib.request.urlopen(req, context=self._ctx(), timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def wait_done(self, url: str, timeout: float = 180) -> dict:
        """The server's finished check for url (cached after the extension's check: no new work)."""
        deadline = time.time() + timeout
        status, body = self.api("POST", "/v1/checks", {"url": url})
        while body.get("status") not in ("done", "failed"):
            assert time.time() < deadline, f"check of {url} did not finish: {body}"
            time.sleep(0.5)
            status, body = self.api("GET", f"/v1/checks/{body['id']}")
        return body

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(tmp: Path, weights: Path | str, port: int | None = None, extra: list[str] = (), env: dict | None = None,
                 timeout: float = 180) -> Server:
    port = port or free_port()
    config_dir, data_dir = tmp / "config", tmp / "data"
    log_path = tmp / f"server-{port}.log"
    cmd = [sys.executable, "-m", "server", "--port", str(port), "--weights", str(weights), "--device", "cpu",
           "--allow-private-fetch", "--config-dir", str(config_dir), "--data-dir", str(data_dir), *extra]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    deadline = time.time() + timeout
    text = ""
    while time.time() < deadline:
        text = log_path.read_text()
        if "pairing link:" in text:
            break
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}:\n{text}")
        time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError(f"server did not start in {timeout}s:\n{text}")
    spki = re.search(r"TLS SPKI:\s+(\S+)", text)[1]
    link = re.search(r"pairing link:\s+(\S+)", text)[1]
    code = re.search(r"pairing code:\s+(\S+)", text)[1]
    ca = Path(re.search(r"local CA:\s+(\S+)", text)[1])
    return Server(proc, port, f"https://127.0.0.1:{port}", spki, code, link, ca, config_dir, data_dir, log_path)


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
    page.goto(server.pair_link)
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
