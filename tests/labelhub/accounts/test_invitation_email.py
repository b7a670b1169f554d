"""Invitations by e-mail: the accept link is mailed through Django's e-mail framework, the app's accept
page creates the account and signs it in, resend mails a new link (the old one dies), revoke, and the
list shows pending, accepted and expired invitations."""

from __future__ import annotations

import re
import socket
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from labelhub.accounts.models import Invitation, Membership, Role

pytestmark = pytest.mark.django_db
LINK = re.compile(r"(https?://\S+/app/invite/([\w-]+)/)")


def invitations_url(org) -> str:
    return f"/api/v1/organizations/{org.organization.id}/invitations/"


def invite(org, email: str, role: str = "annotator"):
    made = org.clients[Role.MANAGER].post(invitations_url(org), {"email": email, "role": role}, format="json")
    assert made.status_code == 201, made.json()
    return made.json()


def mailed_link(message) -> tuple[str, str]:
    found = LINK.search(message.body)
    assert found, message.body
    return found.group(1), found.group(2)


def test_an_email_invitation_mails_the_accept_link_and_the_page_creates_the_account(org_a, settings):
    settings.DEFAULT_FROM_EMAIL = "Team <team@example.org>"
    made = invite(org_a, "Ann@Example.org", "reviewer")
    assert made["email_sent"] is True and made["status"] == "pending"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ann@example.org"] and message.from_email == "Team <team@example.org>"
    assert org_a.organization.name in message.subject and "reviewer" in message.body
    link, token = mailed_link(message)
    assert link == made["link"] == f"http://testserver/app/invite/{token}/" and token == made["token"]

    browser = Client()
    page = browser.get(f"/app/invite/{token}/")
    assert page.status_code == 200 and org_a.organization.name in page.content.decode()
    weak = browser.post(f"/app/invite/{token}/", {"username": "ann", "password": "short"})
    assert weak.status_code == 400 and 'data-field="password"' in weak.content.decode()
    joined = browser.post(f"/app/invite/{token}/", {"username": "ann", "password": "a-long-passphrase-7"})
    assert joined.status_code == 302 and joined.url == "/app/"
    assert browser.get("/app/").status_code == 200  # signed in
    membership = Membership.objects.get(user__username="ann")
    assert membership.role == Role.REVIEWER and membership.user.email == "ann@example.org"
    # used once: the page says so, and the list moves it to accepted
    assert browser.get(f"/app/invite/{token}/").status_code == 404
    manager = org_a.clients[Role.MANAGER]
    assert manager.get(invitations_url(org_a)).json()["results"] == []
    everything = manager.get(invitations_url(org_a) + "?status=all").json()["results"]
    assert [(i["email"], i["status"], i["accepted_by"]) for i in everything] == [
        ("ann@example.org", "accepted", "ann")
    ]


def test_the_link_uses_the_public_url_when_set(org_a, settings):
    settings.LABELHUB_PUBLIC_URL = "https://label.example.org"
    made = invite(org_a, "bob@example.org")
    assert made["link"] == f"https://label.example.org/app/invite/{made['token']}/"
    assert mailed_link(mail.outbox[0])[0] == made["link"]


def test_resend_mails_a_new_link_and_the_old_one_stops_working(org_a):
    made = invite(org_a, "cy@example.org")
    manager = org_a.clients[Role.MANAGER]
    Invitation.objects.filter(pk=made["id"]).update(expires_at=timezone.now() - timedelta(minutes=1))
    expired = manager.get(invitations_url(org_a) + "?status=expired").json()["results"]
    assert [i["status"] for i in expired] == ["expired"]
    assert manager.get(invitations_url(org_a) + "?status=pending").json()["results"] == []
    resent = manager.post(f"{invitations_url(org_a)}{made['id']}/resend/", {}, format="json")
    assert resent.status_code == 200 and resent.json()["status"] == "pending"
    assert resent.json()["token"] != made["token"] and resent.json()["email_sent"] is True
    assert len(mail.outbox) == 2 and mailed_link(mail.outbox[1])[1] == resent.json()["token"]
    assert Client().get(f"/app/invite/{made['token']}/").status_code == 404
    # a new link to copy, without a mail
    copied = manager.post(
        f"{invitations_url(org_a)}{made['id']}/resend/", {"send_email": False}, format="json"
    )
    assert copied.json()["email_sent"] is False and len(mail.outbox) == 2
    assert Client().get(f"/app/invite/{copied.json()['token']}/").status_code == 200
    # revoked: gone from the list, the link dead
    assert manager.delete(f"{invitations_url(org_a)}{made['id']}/").status_code == 204
    assert Client().get(f"/app/invite/{copied.json()['token']}/").status_code == 404
    bad = manager.get(invitations_url(org_a) + "?status=lost")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "status"


def test_a_failing_mail_server_keeps_the_invitation_and_says_so(org_a, settings):
    with socket.socket() as s:  # a port nobody listens on: the SMTP connection is refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = "127.0.0.1", port, False
    made = invite(org_a, "dee@example.org")
    assert made["email_sent"] is False and made["link"].endswith(f"/app/invite/{made['token']}/")
    assert Invitation.objects.filter(pk=made["id"]).exists()


def test_a_signed_in_invitee_accepts_with_one_click(org_a):
    made = org_a.clients[Role.MANAGER].post(
        invitations_url(org_a), {"username": "alpha-annotator", "role": "reviewer"}, format="json"
    )
    assert made.json()["email_sent"] is False and mail.outbox == []  # by username: the link is copied
    # alpha-annotator is already a member: the page says so and nothing changes
    browser = Client()
    assert browser.login(username="alpha-annotator", password="pw-alpha-annotator")
    token = made.json()["token"]
    assert "Accept as alpha-annotator" in browser.get(f"/app/invite/{token}/").content.decode()
    answer = browser.post(f"/app/invite/{token}/")
    assert answer.status_code == 400 and "already a member" in answer.content.decode()
    assert Membership.objects.get(user__username="alpha-annotator").role == Role.ANNOTATOR
