"""Firefox for the browser tests: Debian's firefox-esr driven by puppeteer-core over WebDriver BiDi
(tests/e2e/firefox_driver.mjs, one Node process per browser), with the extension as Firefox users
load it (./package.sh's Firefox build, a temporary add-on). Playwright cannot drive Debian's
Firefox, and selenium's Firefox defaults accept any certificate (they would hide a trust bug): the
profile here trusts exactly the server's CA and the fixture sites' certificate, through certutil,
before Firefox starts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness import PICTURE_CORNER
from testenv import ROOT

FIREFOX = os.environ.get("FIREFOX", "/usr/bin/firefox-esr")
DRIVER = Path(__file__).with_name("firefox_driver.mjs")
COMMAND_TIMEOUT_S = 90.0


def certutil(*args: str) -> None:
    subprocess.run(["certutil", *args], check=True, capture_output=True, timeout=30)


def new_profile(path: Path) -> Path:
    """An empty Firefox profile with its own certificate database."""
    path.mkdir(parents=True, exist_ok=True)
    certutil("-N", "-d", f"sql:{path}", "--empty-password")
    return path


def trust(profile: Path, name: str, pem: Path, flags: str = "C,,") -> None:
    """Trust a certificate in a profile (before Firefox starts): "C,," a CA, "P,," a self-signed site."""
    certutil("-A", "-d", f"sql:{profile}", "-n", name, "-t", flags, "-i", str(pem))


def site_prefs(hosts: list[str], https_port: int) -> dict:
    """Firefox's own way to open the fixture sites under their real names: the names resolve to
    127.0.0.1 and port 443 goes to the fixture web's HTTPS port (Chromium: --host-resolver-rules)."""
    return {"network.dns.localDomains": ",".join(hosts), "network.socket.forcePort": f"443={https_port}",
            "media.autoplay.default": 0, "media.autoplay.blocking_policy": 0}


class Firefox:
    """One Firefox with the extension, driven through the Node driver; call(cmd, **args) → value."""

    def __init__(self, profile: Path, extension: Path | None, prefs: dict | None = None, env: dict | None = None):
        self.proc = subprocess.Popen(["node", str(DRIVER)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env={**os.environ, **(env or {}), "FIREFOX": FIREFOX})
        self._ids = 0
        self._lock = threading.Lock()
        launched = self.call("launch", profile=str(profile), extension=str(extension) if extension else None,
                             prefs=prefs or {})
        self.uuid = launched["uuid"]
        self._helper: int | None = None

    def call(self, cmd: str, timeout: float = COMMAND_TIMEOUT_S, **args):
        with self._lock:
            self._ids += 1
            self.proc.stdin.write(json.dumps({"id": self._ids, "cmd": cmd, **args}) + "\n")
            self.proc.stdin.flush()
            result: list = []
            reader = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)
            reader.start()
            reader.join(timeout)
            if not result or not result[0]:
                self.close()
                raise AssertionError(f"the Firefox driver did not answer {cmd} within {timeout:.0f} s")
            answer = json.loads(result[0])
        if not answer["ok"]:
            raise AssertionError(f"Firefox driver: {cmd}: {answer['error']}")
        return answer["value"]

    # --- pages ---
    def ext_url(self, path: str) -> str:
        return f"moz-extension://{self.uuid}/{path}"

    def new_page(self, url: str | None = None) -> int:
        return self.call("newPage", url=url)

    def eval(self, page: int, fn: str, arg=None):
        """fn: JavaScript function source, called with arg; returns its (awaited) JSON value."""
        return self.call("eval", page=page, fn=fn, arg=arg)

    def wait_for(self, page: int, fn: str, arg=None, timeout: float = 30):
        deadline = time.time() + timeout
        while not (value := self.eval(page, fn, arg)):
            assert time.time() < deadline, f"timed out waiting for {fn}"
            time.sleep(0.2)
        return value

    def background(self, fn: str, arg=None):
        """Calls fn(bg, arg) with the extension's background page (an event page in Firefox),
        from an extension page kept open for the purpose."""
        if self._helper is None:
            self._helper = self.new_page(self.ext_url("pages/limits.html"))
        return self.eval(self._helper, f"async (a) => ({fn})(await browser.runtime.getBackgroundPage(), a)", arg)

    def badges(self, page: int) -> list[dict]:
        return self.call("badges", page=page)

    def badge(self, page: int, video_css: str) -> dict | None:
        r = self.eval(page, PICTURE_CORNER, video_css)
        if r is None:
            return None
        for b in self.badges(page):
            if abs(b["left"] - r["left"]) < 3 and abs(b["top"] - r["top"]) < 3:
                return {k: b.get(k, "") for k in ("label", "tone", "url", "open", "source", "trend", "title")}
        return None

    def wait_badge(self, page: int, video_css: str, timeout: float = 120) -> dict:
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = self.badge(page, video_css)
            if last and last["tone"] != "busy":
                return last
            time.sleep(0.25)
        raise AssertionError(f"no final badge on {video_css}: last {last}")

    def in_badge(self, page: int, video_css: str, selector: str, fn: str):
        """fn (JavaScript source taking the element) on selector inside the closed shadow root of the
        badge on a video; None when there is no such badge or element."""
        at = self.eval(page, PICTURE_CORNER, video_css)
        return at and self.call("inBadge", page=page, at=at, selector=selector, fn=fn)

    def click_badge(self, page: int, video_css: str) -> None:
        """The user's click on the badge of a video (a trusted event, at the badge's place)."""
        r = self.in_badge(page, video_css, ".badge", "(el) => { const r = el.getBoundingClientRect(); return {x: (r.left + r.right) / 2, y: (r.top + r.bottom) / 2}; }")
        assert r, f"no badge on {video_css}"
        self.call("mouse", page=page, x=r["x"], y=r["y"])

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"id": 0, "cmd": "quit"}) + "\n")
                self.proc.stdin.flush()
                self.proc.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


# The right-click menu's click, as Firefox's menus.onClicked would call it in the background page;
# the page under test is the active tab.
MENU_CLICK = """async (bg, {item, pageUrl, srcUrl}) => {
    const [tab] = await browser.tabs.query({active: true, currentWindow: true});
    const answer = await bg.deepfakeCheck.onMenuClicked({menuItemId: item, srcUrl, pageUrl, frameId: 0}, tab);
    return JSON.parse(JSON.stringify(answer));
}"""


def package_firefox() -> Path:
    """./package.sh's Firefox build (what users load), as a directory."""
    subprocess.run(["./package.sh"], cwd=ROOT, check=True, capture_output=True, timeout=300)
    return ROOT / "dist" / "build" / "firefox"


def server_trust(server, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", "trust", "--config-dir", str(server.config_dir),
                           "--data-dir", str(server.data_dir)], cwd=ROOT, env={**os.environ, "HOME": str(home)},
                          capture_output=True, text=True, timeout=120)


def firefox_profile(home: Path) -> Path:
    """A profile where Firefox keeps them, so `server trust` finds it."""
    return new_profile(home / ".mozilla" / "firefox" / "tests.default")
