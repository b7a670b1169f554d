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
