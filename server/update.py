"""`python -m server update-fetcher` (`make update-fetcher`): the fetcher alone, updated in place.

Sites change every week and yt-dlp follows them within days; a yt-dlp pinned months ago stops
working for some sites. This moves yt-dlp to its newest release together with the yt-dlp-ejs it was
built with (its challenge scripts are hash-checked against that release) and the Deno it was tested
with, both read from the new yt-dlp's own metadata, and leaves everything else in the environment as
pinned. What is installed is pinned by version and sha256 (pip --require-hashes, no dependencies
pulled in), printed before it is installed, and taken only from PyPI unless --allow-index says
otherwise: the fetcher runs the Deno binary it installs. Then the fetch process checks itself
(fetch.self_check). --dry-run asks pip what it would do (pip install --dry-run) and checks the
fetcher as it is, changing nothing.
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
from urllib.parse import urlsplit

from .fetch import installed_fetcher, self_check

PIP_TIMEOUT_S = 600
# where PyPI serves its files: anything else (another index, a folder of wheels) is refused unless
# asked for with --allow-index, since the fetcher runs code of sites' choosing (and the Deno binary)
PYPI_FILES = "files.pythonhosted.org"


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


def pinned(target: dict[str, str | None], names: list[str]) -> list[dict]:
    """Where pip would take each of names at its target version, and the file's sha256: [{name,
    version, url, sha256}]. Raises RuntimeError when pip fails."""
    specs = [f"{n}=={target[n]}" if target[n] else n for n in names]
    with tempfile.TemporaryDirectory() as tmp:
        report_path = Path(tmp) / "report.json"
        r = subprocess.run(pip_command("install", "--dry-run", "--ignore-installed", "--no-deps", "--report",
                                       str(report_path), *specs), capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        if r.returncode != 0:
            raise RuntimeError(_pip_error(r.stderr))
        report = json.loads(report_path.read_text())
    out = []
    for item in report.get("install", []):
        info = item.get("download_info") or {}
        archive = info.get("archive_info") or {}
        sha = (archive.get("hashes") or {}).get("sha256") or (archive.get("hash") or "").removeprefix("sha256=") or None
        out.append({"name": item["metadata"]["name"], "version": item["metadata"]["version"], "url": info.get("url", ""),
                    "sha256": sha})
    return out


def unexpected_sources(files: list[dict]) -> list[str]:
    """The files that would not come from PyPI over HTTPS (their addresses), or whose hash pip does not know."""
    return [f["url"] or f["name"] for f in files
            if urlsplit(f["url"]).scheme != "https" or urlsplit(f["url"]).hostname != PYPI_FILES or not f["sha256"]]


def hashed_requirements(files: list[dict]) -> str:
    """A requirements file pinning each file by version and sha256: pip --require-hashes installs
    exactly those bytes, or nothing."""
    return "".join(f"{f['name']}=={f['version']} --hash=sha256:{f['sha256']}\n" for f in files)


def _pip_error(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip() and "is ignored" not in ln]
    return lines[-1][:300] if lines else "pip failed"


def describe(versions: dict[str, str | None]) -> str:
    return ", ".join(f"{name} {v or '(not installed)'}" for name, v in versions.items())


def report_lines(report) -> list[str]:
    if report.ok:
        return [f"Self-check: the fetch process solves YouTube's JavaScript challenges "
                f"(yt-dlp {report.yt_dlp}, yt-dlp-ejs {report.ejs}, deno {report.deno}): OK."]
    return ["Self-check FAILED:", *(f"  - {p}" for p in report.problems or ["the challenge solver did not work"])]


def update_fetcher(dry_run: bool = False, out=print, allow_index: bool = False) -> int:
    """Returns the exit status: 0 when the fetcher works afterwards. allow_index: take the files from
    wherever pip is configured to (another index, a folder of wheels), not only from PyPI."""
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
    changed = [name for name in target if target[name] != before.get(name)]
    if not changed:
        out("The fetcher is up to date.")
    else:
        for name in changed:
            out(f"  {name}: {before.get(name) or '(not installed)'} -> {target[name] or '(newest)'}")
        try:
            files = pinned(target, changed)
        except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as e:
            out(f"error: pip could not find the files to install ({e}). Nothing was changed.")
            return 1
        if (odd := unexpected_sources(files)) and not allow_index:
            out("error: these files would not come from PyPI (https://" + PYPI_FILES + "):\n"
                + "".join(f"  {u}\n" for u in odd)
                + "pip is configured with another index or a folder of wheels. Nothing was changed. If you trust "
                  "that source, run again with --allow-index.")
            return 1
        with tempfile.TemporaryDirectory() as tmp:
            req = Path(tmp) / "fetcher-requirements.txt"
            req.write_text(hashed_requirements(files))
            out("Installing exactly these files (pip --require-hashes):")
            for line in req.read_text().splitlines():
                out(f"  {line}")
            cmd = pip_command("install", *(["--dry-run"] if dry_run else []), "--require-hashes", "--no-deps", "-r", str(req))
            out("$ " + " ".join(cmd[:-1] + ["fetcher-requirements.txt"]))
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        if r.returncode != 0:
            out(f"error: pip install failed ({_pip_error(r.stderr)}). Nothing was changed.")
            return 1
        if dry_run:
            out("(dry run: nothing was installed)")
    report = asyncio.run(self_check())
    for line in report_lines(report):
        out(line)
    if not dry_run and changed and report.ok:
        out("Downloads use the new fetcher from now on; a running server reports its version within a minute.")
    return 0 if report.ok else 1
