"""The fetcher itself: the JavaScript runtime YouTube's challenges need, inside the fetch child and
its audit hook (only the pinned Deno, without permissions), and the fetcher's versions and age."""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
from importlib.metadata import version
from pathlib import Path

import pytest

from server.fetch import (
    DENO_REQUIRED_FLAGS,
    _classify,
    deno_binary,
    is_sandboxed_js_runtime,
    release_date,
    self_check,
)

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("js_runtime_probe.py")
# what yt-dlp 2026.10.26 passes Deno for a challenge (yt_dlp/extractor/youtube/jsc/_builtin/deno.py)
YT_DLP_DENO_FLAGS = ["--ext=js", "--no-code-cache", "--no-prompt", "--no-remote", "--no-lock",
                     "--node-modules-dir=none", "--no-config", "--no-npm", "--cached-only"]


def probe(mode: str, stdin: str = "", env: dict | None = None) -> dict:
    r = subprocess.run([sys.executable, str(PROBE), mode], input=stdin, capture_output=True, text=True, timeout=120,
                       cwd=ROOT, env={**os.environ, **(env or {})})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.asyncio
async def test_the_fetch_child_solves_youtube_challenges_with_the_pinned_deno_and_ejs():
    """In `python -m server.fetch`, the process every download runs in: yt-dlp finds the runtime,
    its Deno challenge provider is available, and it solves a challenge through the audit hook."""
    report = await self_check()
    assert report.problems == []
    assert report.challenge_solver is True
    assert (report.yt_dlp, report.ejs, report.deno) == (version("yt-dlp"), version("yt-dlp-ejs"), version("deno"))


def test_the_js_runtime_cannot_open_a_socket():
    """Deno runs the challenge scripts outside the fetch child's address guard: it must have no
    network at all. A script that tries every way connects nowhere."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list = []
    stop = threading.Event()

    def accept():
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    script = """
    const tries = {};
    const attempt = async (name, f) => { try { await f(); tries[name] = "connected"; } catch (e) { tries[name] = e.name; } };
    await attempt("fetch", () => fetch("http://127.0.0.1:PORT/"));
    await attempt("connect", () => Deno.connect({ hostname: "127.0.0.1", port: PORT }));
    await attempt("websocket", () => new Promise((ok, no) => { const w = new WebSocket("ws://127.0.0.1:PORT/"); w.onopen = ok; w.onerror = no; }));
    await attempt("import", () => import("http://127.0.0.1:PORT/module.js"));
    await attempt("read", () => Deno.readTextFile("/etc/hostname"));
    await attempt("run", () => new Deno.Command("/bin/true").output());
    console.log(JSON.stringify(tries));
    """.replace("PORT", str(port))
    try:
        out = probe("js", script)
    finally:
        stop.set()
        t.join(2)
        listener.close()
    assert "error" not in out, out
    tries = json.loads(out["stdout"])
    assert set(tries) == {"fetch", "connect", "websocket", "import", "read", "run"}
    assert "connected" not in tries.values(), tries
    assert accepted == []


@pytest.mark.parametrize("argv, allowed", [
    (["DENO", "--version"], True),
    (["DENO", "run", *YT_DLP_DENO_FLAGS, "-"], True),
    (["DENO", "run", *YT_DLP_DENO_FLAGS, "--allow-net", "-"], False),
    (["DENO", "run", *YT_DLP_DENO_FLAGS, "-A", "-"], False),
    (["DENO", "run", *YT_DLP_DENO_FLAGS, "--allow-all", "-"], False),
    (["DENO", "run", *[f for f in YT_DLP_DENO_FLAGS if f != "--no-remote"], "-"], False),
    (["DENO", "run", *YT_DLP_DENO_FLAGS, "https://example.com/x.js"], False),
    (["DENO", "eval", "fetch('http://127.0.0.1/')"], False),
    (["DENO", "upgrade"], False),
    (["deno", "--version"], False),  # a deno found on PATH
    (["/usr/bin/ffmpeg", "-version"], False),
    ("DENO --version", False),  # a shell string
])
def test_the_audit_hook_lets_only_the_pinned_deno_run_without_permissions(argv, allowed):
    runtime = deno_binary()
    assert runtime
    real = [runtime if a == "DENO" else a for a in argv] if isinstance(argv, list) else argv.replace("DENO", runtime)
    assert is_sandboxed_js_runtime(runtime, None, real) is allowed


def test_the_required_deno_flags_are_what_yt_dlp_passes_today():
    """If a yt-dlp update stops passing one, the hook refuses Deno and the self-check says so."""
    assert set(YT_DLP_DENO_FLAGS) >= DENO_REQUIRED_FLAGS


@pytest.mark.parametrize("extra, started", [([], True), (["--allow-net"], False), (["--allow-read"], False)])
def test_the_fetch_child_refuses_to_start_deno_with_a_permission(extra, started):
    runtime = deno_binary()
    out = probe("popen", json.dumps([runtime, "run", *YT_DLP_DENO_FLAGS, *extra, "-"]))
    assert out["started"] is started, out
    if started:
        assert out["stdout"].strip() == "ran"


def test_a_deno_on_path_is_never_run(tmp_path):
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    (bin_dir / "deno").write_text(f'#!/bin/sh\necho "$0 $*" >> "{log}"\necho "deno 9.9.9"\n')
    (bin_dir / "deno").chmod(0o755)
    out = probe("popen", json.dumps(["deno", "--version"]), env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert out["started"] is False
    assert not log.exists()


def test_without_the_ejs_package_no_solver_script_is_downloaded():
    """yt-dlp can fetch the solver scripts from GitHub or npm (remote components): the fetcher never
    lets it. Without yt-dlp-ejs the self-check says what is missing and nothing touched the network."""
    out = probe("self-check-without-ejs")
    assert out["challenge_solver"] is False
    assert any("yt-dlp-ejs" in p for p in out["problems"]), out
    assert out["network"] == []


@pytest.mark.parametrize("v, date", [
    ("2026.10.26", dt.date(2026, 10, 26)), ("2026.01.05.1", dt.date(2026, 1, 5)),
    ("2026.11.30.232122", dt.date(2026, 11, 30)), ("unknown", None), ("2026.13.01", None),
])
def test_the_fetchers_release_date_is_read_from_its_version(v, date):
    assert release_date(v) == date


@pytest.mark.parametrize("message", [
    "ERROR: [youtube] abc: Unable to extract yt initial data; please report this issue on  https://github.com/yt-dlp/yt-dlp/issues"
    "?q= , filling out the appropriate issue template. Confirm you are on the latest version using  yt-dlp -U",
    "ERROR: [instagram] Cabc: Unable to extract shared data; please report this issue on https://github.com/yt-dlp/yt-dlp/issues",
    "ERROR: [youtube] abc: n challenge solving failed: Some formats may be missing.",
])
def test_an_extractor_that_no_longer_reads_the_site_says_so_and_names_the_update(message):
    code, text = _classify(message)
    assert code == "site_changed"
    assert "make update-fetcher" in text and "python -m server update-fetcher" in text


def test_a_401_is_a_login():
    assert _classify("ERROR: Unable to download webpage: HTTP Error 401: Unauthorized")[0] == "login_required"


@pytest.mark.parametrize("today, age, stale", [
    (dt.date(2026, 10, 26), 0, False), (dt.date(2026, 12, 25), 60, False), (dt.date(2026, 12, 26), 61, True),
])
def test_the_fetcher_is_stale_past_its_maximum_age(today, age, stale):
    from server.fetch import FetcherMonitor, FetcherReport

    f = FetcherMonitor(60).describe(FetcherReport("2026.10.26", "0.8.0", "2.9.8", True, []), today=today)
    assert (f["released"], f["age_days"], f["stale"]) == ("2026-10-26", age, stale)
