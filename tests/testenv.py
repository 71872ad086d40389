"""Paths and the shared-data rule, importable from any test (conftest modules are not: several exist)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """../shared/data (or $DEEPFAKE_CHECK_DATA); None when absent outside CI, a failure inside CI."""
    path = Path(os.environ.get("DEEPFAKE_CHECK_DATA", ROOT.parent / "shared" / "data"))
    if path.is_dir():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"shared data not found at {path} (required in CI)")
    return None
