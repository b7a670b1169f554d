"""Fixtures: a real label-studio-ml server on 127.0.0.1 serving backend_model.py, and LabelHub served
over HTTP (pytest-django's live server) so the backend fetches the tasks' signed image URLs."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from .env import lsml_python

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Backend:
    url: str
    logs: Path

    def mode(self, value: str) -> None:
        (self.logs / "mode").write_text(value)

    def records(self, name: str) -> list[dict]:
        path = self.logs / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def clear(self) -> None:
        for name in ("predict.jsonl", "events.jsonl", "mode"):
            (self.logs / name).unlink(missing_ok=True)

    def wait_for(self, name: str, count: int, seconds: float = 60.0) -> list[dict]:
        """The records once `count` are there (training runs in a process of the backend's own)."""
        deadline = time.monotonic() + seconds
        while len(self.records(name)) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.records(name)


@pytest.fixture(scope="session")
def lsml_server(tmp_path_factory):
    """`label-studio-ml` 1.0.9 (PyPI) in its own venv, serving ShapesModel on a free port."""
    python = lsml_python()
    root = tmp_path_factory.mktemp("lsml")
    (root / "models").mkdir()
    (root / "logs").mkdir()
    port = free_port()
    with open(root / "server.log", "wb") as out:
        proc = subprocess.Popen(
            [
                str(python),
                str(HERE / "backend_model.py"),
                str(port),
                str(root / "models"),
                str(root / "logs"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if json.loads(r.read())["status"] == "UP":
                    break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(  # noqa: B904 - the OSError is only the last poll
                    "the label-studio-ml server did not start:\n" + (root / "server.log").read_text()
                )
            time.sleep(0.2)
    try:
        yield Backend(url=url, logs=root / "logs")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def backend(lsml_server, live_server, settings):
    """The backend with empty logs and normal behaviour; LabelHub's public URL is the live server."""
    settings.LABELHUB_PUBLIC_URL = live_server.url
    settings.LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE = True
    lsml_server.clear()
    yield lsml_server
    lsml_server.clear()
