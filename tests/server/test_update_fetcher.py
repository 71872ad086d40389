"""`python -m server update-fetcher`, offline: pip is pointed at a local folder of wheels (a yt-dlp
"released" after ours) or at an index that does not answer. Every run here is a dry run."""
from __future__ import annotations

import hashlib
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


def newer_fetcher(folder: Path, deno: str) -> None:
    """A yt-dlp "released" after ours (2099.1.1), naming its solver 0.9.9 and our Deno, in a folder of wheels."""
    wheel(folder, "yt-dlp", "2099.1.1", ("yt-dlp-ejs==0.9.9; extra == 'pin'", f"deno=={deno}; extra == 'pin-deno'",
                                          "deno>=2.0; extra == 'deno'"))
    wheel(folder, "yt-dlp-ejs", "0.9.9")


def test_files_from_anywhere_but_pypi_are_refused_unless_asked_and_nothing_changes(tmp_path):
    before = installed()
    newer_fetcher(tmp_path, before[2])
    r = update_fetcher("--dry-run", PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path))
    assert r.returncode == 1, r.stdout + r.stderr[-2000:]
    assert "error: these files would not come from PyPI (https://files.pythonhosted.org)" in r.stdout
    assert f"file://{tmp_path}/yt_dlp-2099.1.1-py3-none-any.whl" in r.stdout and "--allow-index" in r.stdout
    assert "pip install" not in r.stdout and installed() == before


def test_a_dry_run_names_the_newest_yt_dlp_with_the_solver_it_was_built_with_pinned_by_hash(tmp_path):
    before = installed()
    newer_fetcher(tmp_path, before[2])
    r = update_fetcher("--dry-run", "--allow-index", PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    assert f"Newest:      yt-dlp 2099.1.1, yt-dlp-ejs 0.9.9, deno {before[2]}" in r.stdout
    assert f"  yt-dlp: {before[0]} -> 2099.1.1\n  yt-dlp-ejs: {before[1]} -> 0.9.9\n" in r.stdout  # what changes
    assert "deno:" not in r.stdout.split("Newest:")[1]  # the same Deno: not installed again
    for name, ver in (("yt_dlp", "2099.1.1"), ("yt_dlp_ejs", "0.9.9")):
        digest = hashlib.sha256((tmp_path / f"{name}-{ver}-py3-none-any.whl").read_bytes()).hexdigest()
        assert f"  {name.replace('_', '-')}=={ver} --hash=sha256:{digest}" in r.stdout
    assert "pip install --dry-run --require-hashes --no-deps -r fetcher-requirements.txt" in r.stdout
    assert "(dry run: nothing was installed)" in r.stdout
    assert "Self-check: the fetch process solves YouTube's JavaScript challenges" in r.stdout
    assert installed() == before


def test_a_wheel_that_changed_after_it_was_looked_up_is_not_installed(tmp_path):
    """The hashes pin the bytes pip looked up: a file swapped between the look-up and the install fails."""
    from server.update import hashed_requirements, pip_command

    path = wheel(tmp_path, "yt-dlp-ejs", "0.9.9")
    req = tmp_path / "req.txt"
    req.write_text(hashed_requirements([{"name": "yt-dlp-ejs", "version": "0.9.9",
                                         "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}]))
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("yt_dlp_ejs/evil.py", "print('not what was looked up')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path))
    r = subprocess.run(pip_command("install", "--dry-run", "--ignore-installed", "--require-hashes", "--no-deps", "-r",
                                   str(req)), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "DO NOT MATCH THE HASHES" in r.stderr, r.stderr[-1000:]


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
