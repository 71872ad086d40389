"""The layout's rules, checked: the inference core never imports training code, the server uses
only the core's public API, and importing the core changes no process-wide state."""
from __future__ import annotations

import ast
import subprocess
import sys

from testenv import ROOT


def _imports(path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file, relative imports resolved against its package."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            out.append((module, [a.name for a in node.names]))
    return out


def test_inference_core_never_imports_training_code():
    offenders = [
        f"{p.relative_to(ROOT)}: {m}"
        for p in (ROOT / "model").glob("*.py")
        for m, names in _imports(p)
        if m.startswith("model.training") or (m == "model" and "training" in names)
    ]
    assert offenders == []


def test_server_uses_only_the_public_api_of_model():
    import model

    offenders = []
    for p in (ROOT / "server").glob("*.py"):
        for m, names in _imports(p):
            if m.startswith("model."):
                offenders.append(f"{p.relative_to(ROOT)}: {m}")
            elif m == "model":
                offenders += [f"{p.relative_to(ROOT)}: model.{n}" for n in names if n not in model.__all__]
    assert offenders == []


def test_importing_model_leaves_warning_filters_and_logging_alone():
    # the third-party libraries install filters of their own when imported: import them first
    code = (
        "import logging, warnings, numpy, torch, torchvision, cv2, av, PIL;"
        "before = list(warnings.filters); handlers = list(logging.getLogger().handlers);"
        "import model; assert warnings.filters == before, 'warnings filters changed';"
        "assert logging.getLogger().handlers == handlers, 'root logger changed'"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
