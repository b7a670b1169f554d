"""The app's two pages: sign-in by session, the shell behind it, and CSRF on session writes."""

from __future__ import annotations

import pytest
from django.test import Client

from labelhub.accounts.models import Role


@pytest.mark.django_db
def test_the_app_asks_to_sign_in_then_serves_the_shell(org_a):
    client = Client()
    assert client.get("/app/").url.startswith("/app/login/")
    wrong = client.post("/app/login/", {"username": "alpha-annotator", "password": "nope"})
    assert wrong.status_code == 200 and b"Wrong user name or password" in wrong.content
    ok = client.post("/app/login/", {"username": "alpha-annotator", "password": "pw-alpha-annotator"})
    assert ok.status_code == 302 and ok.url == "/app/"
    shell = client.get("/app/")
    assert shell.status_code == 200
    body = shell.content.decode()
    assert '<script type="importmap">' in body and "app/vendor/konva/index.js" in body
    assert f'data-user-id="{org_a.users[Role.ANNOTATOR].id}"' in body
    assert "csrftoken" in shell.cookies


@pytest.mark.django_db
def test_session_writes_need_the_csrf_token(org_a):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username="alpha-annotator", password="pw-alpha-annotator")
    token = client.get("/app/").cookies["csrftoken"].value
    url = f"/api/v1/projects/{org_a.project.id}/next-task/?stage=annotate"
    refused = client.post(url)
    assert refused.status_code == 403
    assert client.post(url, HTTP_X_CSRFTOKEN=token).status_code == 204  # no images: an empty queue
    assert client.get(f"/api/v1/projects/{org_a.project.id}/counts/").status_code == 200


@pytest.mark.django_db
def test_the_shell_is_cross_origin_isolated_for_the_browser_decoders_threads(org_a, settings):
    client = Client()
    assert client.login(username="alpha-annotator", password="pw-alpha-annotator")
    shell = client.get("/app/")
    assert shell["Cross-Origin-Embedder-Policy"] == "credentialless"  # the default
    assert shell["Cross-Origin-Opener-Policy"] == "same-origin"
    assert 'data-decode-threads="0"' in shell.content.decode()  # 0: the browser's cores, at most 4

    settings.LABELHUB_APP_COEP = "require-corp"
    settings.LABELHUB_BROWSER_DECODE_THREADS = 2
    shell = client.get("/app/")
    assert shell["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert 'data-decode-threads="2"' in shell.content.decode()

    settings.LABELHUB_APP_COEP = ""  # off: no isolation, one decoder thread in the browser
    shell = client.get("/app/")
    assert "Cross-Origin-Embedder-Policy" not in shell
