"""The layering contract (.importlinter) holds for the tree as it is, and breaks when a forbidden import
is added: run on a copy of labelhub/ and workers/ with one violation of each contract written in."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")
CONTRACTS = {
    "workers": "workers/ imports no Django, no DRF and nothing of labelhub",
    "core": "labelhub.core imports no other labelhub app",
    "layers": "apps import only downward",
    "cycles": "no import cycles between the modules of labelhub and workers",
}


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--config", str(root / ".importlinter"), "--no-cache", "--no-logo"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": str(LINT.parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def status_of(output: str, name: str) -> str:
    """KEPT or BROKEN for the contract whose name starts with `name` (names may wrap across lines)."""
    flat = " ".join(output.split())
    start = flat.index(name)
    return next(word for word in flat[start:].split() if word in ("KEPT", "BROKEN"))


def test_the_tree_keeps_every_contract():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONTRACTS.values():
        assert status_of(result.stdout, name) == "KEPT"


def test_a_forbidden_import_breaks_the_check(tmp_path):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.nbi", "*.nbc")
    for package in ("labelhub", "workers"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    assert lint(tmp_path).returncode == 0  # the copy itself is clean

    def append(path: str, line: str) -> None:
        with open(tmp_path / path, "a", encoding="utf-8") as fh:
            fh.write(f"\n{line}\n")

    append("workers/geometry/rle.py", "import django  # noqa")  # workers must not know Django
    append("labelhub/core/errors.py", "from labelhub.accounts import models  # noqa")  # core is the floor
    append("labelhub/projects/services.py", "from labelhub.datasets import models  # noqa")  # upward
    append("labelhub/datasets/formats/base.py", "from labelhub.datasets import imports  # noqa")  # a cycle
    result = lint(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    for name in CONTRACTS.values():
        assert status_of(result.stdout, name) == "BROKEN", name
    assert "workers.geometry.rle -> django" in result.stdout
    assert "labelhub.projects.services -> labelhub.datasets.models" in result.stdout
