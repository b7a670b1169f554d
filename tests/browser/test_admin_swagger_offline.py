"""The embedded server (`manage.py runserver` on SQLite with tasks in-process, debug off: what `make demo`
serves) opened in headless Chromium with every request to another host blocked and recorded: the
admin's stylesheet applies and Swagger UI lists the API's operations, both from the server alone."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
ADMIN_USER, ADMIN_PASSWORD = "offline-admin", "offline-admin-password"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def embedded_server_offline(tmp_path_factory):
    """The embedded configuration: no DATABASE_URL, broker or Redis; its own var folder; debug off."""
    var = tmp_path_factory.mktemp("embedded-var")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LABELHUB_", "DATABASE_URL", "CELERY_", "REDIS_URL", "DJANGO_SETTINGS"))
    }
    env.update(
        LABELHUB_VAR_DIR=str(var),
        LABELHUB_DEBUG="0",
        DJANGO_SUPERUSER_USERNAME=ADMIN_USER,
        DJANGO_SUPERUSER_PASSWORD=ADMIN_PASSWORD,
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    for command in (["migrate", "--noinput"], ["createsuperuser", "--noinput"]):
        subprocess.run(manage + command, env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    port = _free_port()
    log = open(var / "server.log", "wb")  # noqa: SIM115 - closed after the server stops
    server = subprocess.Popen(
        manage + ["runserver", f"127.0.0.1:{port}", "--noreload"], env=env, cwd=ROOT, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url + "/healthz/live/", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise RuntimeError((var / "server.log").read_text()[-2000:]) from None
            time.sleep(0.3)
    yield url
    server.terminate()
    server.wait(15)
    log.close()


@pytest.fixture(scope="module")
def offline_page(embedded_server_offline):
    """A Chromium page whose requests to any host but this machine are aborted and recorded."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{CHROMIUM} is missing (CI must have it)")
        pytest.skip(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context()
        page = context.new_page()
        page.blocked = []  # requests that tried to leave the machine
        page.local_failures = []  # this server's own answers of 4xx/5xx

        def route(route):
            host = urlsplit(route.request.url).hostname
            if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
                route.continue_()
            else:
                page.blocked.append(route.request.url)
                route.abort("blockedbyclient")

        context.route("**/*", route)
        page.on(
            "response",
            lambda r: r.status >= 400 and page.local_failures.append((r.status, r.url)),
        )
        yield page
        context.close()
        browser.close()


def test_admin_renders_with_its_stylesheet(offline_page, embedded_server_offline):
    page = offline_page
    response = page.goto(embedded_server_offline + "/admin/login/?next=/admin/")
    assert response.status == 200
    sheets = page.evaluate("Array.from(document.styleSheets).map(s => [s.href, s.cssRules.length])")
    base = [rules for href, rules in sheets if href and href.endswith("/static/admin/css/base.css")]
    assert base and base[0] > 50, sheets  # the stylesheet arrived and parsed
    # Styles applied: the header has the admin's colour, the theme toggle's label is visually hidden.
    header_bg = page.eval_on_selector("#header", "e => getComputedStyle(e).backgroundColor")
    assert header_bg not in {"rgba(0, 0, 0, 0)", "transparent"}, header_bg
    assert page.eval_on_selector("#header", "e => getComputedStyle(e).display") == "flex"
    page.fill("#id_username", ADMIN_USER)
    page.fill("#id_password", ADMIN_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")
    hidden = page.eval_on_selector(".theme-toggle .visually-hidden", "e => getComputedStyle(e).position")
    assert hidden == "absolute"
    models = page.eval_on_selector_all("#content-main th[scope=row] a", "els => els.map(e => e.textContent)")
    assert "Users" in models, models
    assert page.blocked == [] and page.local_failures == []


def test_swagger_ui_lists_the_operations_offline(offline_page, embedded_server_offline):
    page = offline_page
    response = page.goto(embedded_server_offline + "/api/schema/swagger-ui/")
    assert response.status == 200
    page.wait_for_selector(".opblock", timeout=30_000)
    paths = page.eval_on_selector_all(".opblock .opblock-summary-path", "els => els.map(e => e.dataset.path)")
    assert len(paths) > 40 and "/api/v1/projects/" in paths and "/api/v1/exports/{id}/download/" in paths
    scripts = page.eval_on_selector_all("script[src]", "els => els.map(e => e.src)")
    assert scripts and all(urlsplit(s).hostname in LOCAL_HOSTS for s in scripts), scripts
    assert page.blocked == [] and page.local_failures == []


def test_redoc_loads_from_the_server_alone(offline_page, embedded_server_offline):
    page = offline_page
    assert page.goto(embedded_server_offline + "/api/schema/redoc/").status == 200
    page.wait_for_selector("[role=menuitem], .menu-content li", timeout=30_000)
    assert page.blocked == [] and page.local_failures == []
