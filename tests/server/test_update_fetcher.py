"""`python -m server update-fetcher`, offline: pip is pointed at a local folder of wheels (a yt-dlp
"released" after ours) or at an index that does not answer. Every run here is a dry run."""
from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

from testenv import ROOT


def wheel(folder: Path, name: str, ver: str, requires: tuple[str, ...] = ()) -> Path:
    """A wheel that is only its metadata: all pip --dry-run reads."""
    dist = name.replace("-", "_")
    info = f"{dist}-{ver}.dist-info"
    path = folder / f"{dist}-{ver}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n"
                   + "".join(f"Requires-Dist: {r}\n" for r in requires))
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return path


def update_fetcher(*args: str, **pip_env: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_RETRIES="0", **pip_env)
    return subprocess.run([sys.executable, "-m", "server", "update-fetcher", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def installed() -> tuple[str, str, str]:
    return version("yt-dlp"), version("yt-dlp-ejs"), version("deno")


def test_a_dry_run_names_the_newest_yt_dlp_with_the_solver_it_was_built_with_and_changes_nothing(tmp_path):
    before = installed()
    wheel(tmp_path, "yt-dlp", "2099.1.1", ("yt-dlp-ejs==0.9.9; extra == 'pin'", f"deno=={before[2]}; extra == 'pin-deno'",
                                           "deno>=2.0; extra == 'deno'"))
    wheel(tmp_path, "yt-dlp-ejs", "0.9.9")
    r = update_fetcher("--dry-run", PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    assert f"Newest:      yt-dlp 2099.1.1, yt-dlp-ejs 0.9.9, deno {before[2]}" in r.stdout
    assert f"pip install --dry-run yt-dlp==2099.1.1 yt-dlp-ejs==0.9.9 deno=={before[2]}" in r.stdout
    assert "(dry run: nothing was installed)" in r.stdout
    assert "Self-check: the fetch process solves YouTube's JavaScript challenges" in r.stdout
    assert installed() == before


def test_an_up_to_date_fetcher_is_left_alone_and_checked(tmp_path):
    r = update_fetcher("--dry-run", PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    assert "The fetcher is up to date." in r.stdout and "pip install" not in r.stdout
    assert ": OK." in r.stdout


def test_an_index_that_does_not_answer_is_reported_and_nothing_changes(tmp_path):
    before = installed()
    r = update_fetcher("--dry-run", PIP_INDEX_URL="http://127.0.0.1:9/simple", PIP_FIND_LINKS=str(tmp_path))
    assert r.returncode == 1
    assert "error: pip could not look up the newest yt-dlp (http://127.0.0.1:9/simple/yt-dlp/" in r.stdout
    assert "Nothing was changed." in r.stdout
    assert installed() == before
