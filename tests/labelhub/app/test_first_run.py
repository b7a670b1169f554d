"""A fresh install makes its first owner on the first-run page, which closes once an account exists."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from labelhub.accounts.models import Membership, Role

pytestmark = pytest.mark.django_db


def test_the_first_run_page_makes_the_owner_and_then_closes():
    browser = Client()
    assert browser.get("/app/login/").url == "/app/setup/"  # no account yet
    assert browser.get("/app/setup/").status_code == 200
    bad = browser.post(
        "/app/setup/", {"organization": "", "username": "olga", "password": "a-long-passphrase-7"}
    )
    assert bad.status_code == 400 and 'data-field="organization"' in bad.content.decode()
    weak = browser.post("/app/setup/", {"organization": "Acme", "username": "olga", "password": "123"})
    assert weak.status_code == 400 and 'data-field="password"' in weak.content.decode()
    assert not get_user_model().objects.exists()
    made = browser.post(
        "/app/setup/",
        {
            "organization": "Acme",
            "username": "olga",
            "email": "olga@example.org",
            "password": "a-long-passphrase-7",
        },
    )
    assert made.status_code == 302 and made.url == "/app/#/projects"
    assert browser.get("/app/").status_code == 200  # signed in
    owner = get_user_model().objects.get()
    assert owner.is_superuser and owner.is_staff and owner.email == "olga@example.org"
    membership = Membership.objects.get(user=owner)
    assert membership.role == Role.OWNER and membership.organization.name == "Acme"
    # closed from now on, for everyone
    stranger = Client()
    assert stranger.get("/app/setup/").url == "/app/login/"
    again = stranger.post(
        "/app/setup/", {"organization": "Evil", "username": "mallory", "password": "a-long-passphrase-7"}
    )
    assert again.status_code == 302 and get_user_model().objects.count() == 1
    assert stranger.get("/app/login/").status_code == 200


def test_the_owner_create_command_makes_the_first_owner_once(monkeypatch):
    import io

    from django.core.management import CommandError, call_command

    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-passphrase-7\n"))
    out = io.StringIO()
    call_command("owner_create", username="root-owner", organization="Acme", stdout=out)
    assert "root-owner" in out.getvalue()
    owner = get_user_model().objects.get()
    assert owner.check_password("a-long-passphrase-7") and owner.is_superuser
    assert Membership.objects.get(user=owner).role == Role.OWNER
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-passphrase-7\n"))
    with pytest.raises(CommandError, match="accounts already"):
        call_command("owner_create", username="second", organization="Other")
