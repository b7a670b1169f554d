"""Real headless Chromium (Debian's, driven by Playwright) against pytest-django's live server.

Never skips: the test command installs chromium when it is missing, and a missing browser or a missing
`make vendor` is a failure, not a skip."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Playwright's sync API keeps an asyncio loop on the test thread; the ORM calls the tests make between
# browser steps are ordinary synchronous ones, so Django's async-context guard does not apply here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
VENDOR = ROOT / "labelhub" / "app" / "static" / "app" / "vendor" / "konva" / "index.js"


@pytest.fixture(scope="module")
def browser():
    # Module scope: one sync Playwright per thread at a time, and other modules here start their own.
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: bin/test installs it (apt-get install chromium)"
    assert VENDOR.exists(), "the app's npm modules are missing: run `make vendor`"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def shoot(page, name: str, *, full_page: bool = False) -> None:
    """A small PNG of the screen for the README (halved, 64 colours: the test images are noisy)."""
    import io

    from PIL import Image

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = Image.open(io.BytesIO(page.screenshot(full_page=full_page))).convert("RGB")
    shot = shot.resize((shot.width * 3 // 4, shot.height * 3 // 4), Image.LANCZOS)
    shot.quantize(colors=64).save(SCREENSHOTS / f"{name}.png", optimize=True)
