"""The Label Studio ML backend's own virtual environment, made once per machine and cached.

`LABELHUB_TEST_CACHE` (default `~/.cache/labelhub-tests`) holds `lsml-<hash of the pins>/`: a venv made
with `python -m venv` and filled by pip from the machine's package index. A file lock lets parallel test
workers share one build."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

# label-studio-ml 1.0.9 is the newest release on PyPI (2.x is installed from git); it imports rq and
# redis without declaring them. label-studio-converter's brush RLE is the reference for ours.
PINS = (
    "label-studio-ml==1.0.9",
    "label-studio-converter==0.0.59",
    "rq==3.0.0",
    "redis==8.2.0",
    "requests==2.34.2",
)


def cache_dir() -> Path:
    return Path(os.environ.get("LABELHUB_TEST_CACHE") or Path.home() / ".cache" / "labelhub-tests")


def lsml_python() -> Path:
    """The venv's python, building the venv first when missing. RuntimeError when pip fails."""
    digest = hashlib.sha256("\n".join(PINS).encode()).hexdigest()[:12]
    root = cache_dir() / f"lsml-{digest}"
    python = root / "bin" / "python"
    ready = root / ".ready"
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"lsml-{digest}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(root)], check=True)
            done = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *PINS],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise RuntimeError(f"pip could not install {PINS}: {done.stderr[-2000:]}")
            ready.write_text("\n".join(PINS))
    return python
