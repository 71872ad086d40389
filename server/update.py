"""`python -m server update-fetcher` (`make update-fetcher`): the fetcher alone, updated in place.

Sites change every week and yt-dlp follows them within days; a yt-dlp pinned months ago stops
working for some sites. This moves yt-dlp to its newest release together with the yt-dlp-ejs it was
built with (its challenge scripts are hash-checked against that release) and the Deno it was tested
with, both read from the new yt-dlp's own metadata, and leaves everything else in the environment as
pinned. Then the fetch process checks itself (fetch.self_check). --dry-run asks pip what it would do
(pip install --dry-run) and checks the fetcher as it is, changing nothing.
"""
from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from .fetch import installed_fetcher, self_check

PIP_TIMEOUT_S = 600


def pip_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", *args]


def exact_pin(requires: list[str], name: str, extras: tuple[str, ...]) -> str | None:
    """The version `name==V` in requirement lines like "yt-dlp-ejs==0.8.0; extra == 'pin'"."""
    for line in requires or []:
        req, _, marker = line.partition(";")
        m = re.fullmatch(rf"\s*{re.escape(name)}\s*==\s*([^\s,]+)\s*", req, re.I)
        if m and (not marker or any(re.search(rf"extra\s*==\s*['\"]{e}['\"]", marker) for e in extras)):
            return m[1]
    return None


def newest_fetcher() -> dict[str, str | None]:
    """What `pip install --upgrade yt-dlp` would install, and the yt-dlp-ejs and deno that yt-dlp
    names for itself (None: it names none; then the newest). Raises RuntimeError when pip fails."""
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        # -vv: an index pip cannot reach is only a log line, and "already the newest" would be a lie
        r = subprocess.run(pip_command("install", "-vv", "--dry-run", "--upgrade", "--report", str(report_path), "yt-dlp"),
                           capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        if r.returncode != 0:
            raise RuntimeError(_pip_error(r.stderr))
        if unreachable := re.search(r"Could not fetch URL (\S+?): (.*?)(?: - skipping)?$", r.stdout + r.stderr, re.M):
            raise RuntimeError(f"{unreachable[1]}: {unreachable[2][:200]}")
        report = json.loads(report_path.read_text())
    new = next((item["metadata"] for item in report.get("install", [])
                if re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower() == "yt-dlp"), None)
    if new is not None:
        version, requires = new["version"], new.get("requires_dist", [])
    else:  # already the newest
        version, requires = metadata.version("yt-dlp"), metadata.requires("yt-dlp") or []
    return {"yt-dlp": version,
            "yt-dlp-ejs": exact_pin(requires, "yt-dlp-ejs", ("pin", "default")),
            "deno": exact_pin(requires, "deno", ("pin-deno",))}


def _pip_error(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and "is ignored" not in ln]
    return lines[-1][:300] if lines else "pip failed"


def install_command(target: dict[str, str | None], dry_run: bool) -> list[str]:
    specs = [f"{name}=={v}" if v else name for name, v in target.items()]
    unpinned = ["--upgrade"] if any(v is None for v in target.values()) else []
    return pip_command("install", *(["--dry-run"] if dry_run else []), *unpinned, *specs)


def describe(versions: dict[str, str | None]) -> str:
    return ", ".join(f"{name} {v or '(not installed)'}" for name, v in versions.items())


def report_lines(report) -> list[str]:
    if report.ok:
        return [f"Self-check: the fetch process solves YouTube's JavaScript challenges "
                f"(yt-dlp {report.yt_dlp}, yt-dlp-ejs {report.ejs}, deno {report.deno}): OK."]
    return ["Self-check FAILED:", *(f"  - {p}" for p in report.problems or ["the challenge solver did not work"])]


def update_fetcher(dry_run: bool = False, out=print) -> int:
    """Returns the exit status: 0 when the fetcher works afterwards."""
    if sys.prefix == sys.base_prefix:
        out("error: run this with the project's environment (.venv/bin/python -m server update-fetcher, or "
            "make update-fetcher): it updates the fetcher inside that environment only.")
        return 2
    before = installed_fetcher()
    out(f"Fetcher now: {describe(before)}")
    try:
        target = newest_fetcher()
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as e:
        out(f"error: pip could not look up the newest yt-dlp ({e}). Nothing was changed.")
        return 1
    out(f"Newest:      {describe(target)}")
    cmd = install_command(target, dry_run)
    if target == before:
        out("The fetcher is up to date.")
    else:
        out("$ " + " ".join(cmd))
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        if r.returncode != 0:
            out(f"error: pip install failed ({_pip_error(r.stderr)}).")
            return 1
        if dry_run:
            out("(dry run: nothing was installed)")
    report = asyncio.run(self_check())
    for line in report_lines(report):
        out(line)
    if not dry_run and target != before and report.ok:
        out("Downloads use the new fetcher from now on; a running server reports its version within a minute.")
    return 0 if report.ok else 1
