"""./package.sh builds both zips and the Firefox one passes `web-ext lint` (the script fails otherwise)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def packaged():
    if shutil.which("node") is None or not (ROOT / "node_modules" / ".bin" / "web-ext").exists():
        if os.environ.get("CI"):
            pytest.fail("node/npm tools missing in CI: scripts/setup.sh runs npm ci")
        pytest.skip("node or web-ext missing: run scripts/setup.sh (npm ci)")
    r = subprocess.run(["./package.sh"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    version = json.loads((ROOT / "extension" / "manifest.json").read_text())["version"]
    return {b: ROOT / "dist" / f"deepfake-check-{b}-{version}.zip" for b in ("chrome", "firefox")}


def manifest_of(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as z:
        return json.loads(z.read("manifest.json"))


def test_firefox_package_has_event_page_gecko_id_and_passes_lint(packaged):
    m = manifest_of(packaged["firefox"])
    assert m["background"]["scripts"] == ["background/service-worker.js"]
    assert m["browser_specific_settings"]["gecko"]["id"]
    assert m["browser_specific_settings"]["gecko"]["data_collection_permissions"] == {"required": ["none"]}
    assert "menus" in m["permissions"]
    lint = json.loads((ROOT / "dist" / "lint-firefox.json").read_text())
    assert lint["errors"] == []


def test_chrome_package_is_the_source_manifest_with_every_file(packaged):
    m = manifest_of(packaged["chrome"])
    assert m == json.loads((ROOT / "extension" / "manifest.json").read_text())
    with zipfile.ZipFile(packaged["chrome"]) as z:
        names = set(z.namelist())
    src = {str(p.relative_to(ROOT / "extension")) for p in (ROOT / "extension").rglob("*") if p.is_file()}
    assert src <= names


def test_permissions_are_the_least_that_works(packaged):
    m = manifest_of(packaged["chrome"])
    assert sorted(m["permissions"]) == ["contextMenus", "storage", "webRequest"]
    assert m["host_permissions"] == ["https://127.0.0.1/*", "https://localhost/*"]
