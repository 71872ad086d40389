"""Runs the extension's JavaScript unit tests (node --test) as part of the one pytest command."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_node_unit_tests_pass():
    if shutil.which("node") is None or not (ROOT / "node_modules" / "linkedom").is_dir():
        if os.environ.get("CI"):
            pytest.fail("node/npm tools missing in CI: scripts/setup.sh runs npm ci")
        pytest.skip("node or node_modules missing: run scripts/setup.sh (npm ci)")
    r = subprocess.run(["node", "--test", "tests/extension/"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    passed = re.search(r"^# pass (\d+)", r.stdout, re.M)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert passed and int(passed[1]) >= 20, r.stdout[-2000:]
