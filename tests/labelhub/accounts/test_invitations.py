"""Invitations: nobody joins an organization without accepting; no answer tells whether a username
exists; accounts come from invitations (or from sign-up when a self-hosted install opens it)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from labelhub.accounts.models import Invitation, Membership, Role
from tests.helpers import client_for, make_user

ACCEPT = "/api/v1/invitations/accept/"


def invitations_url(org) -> str:
    return f"/api/v1/organizations/{org.organization.id}/invitations/"


@pytest.mark.django_db
def test_membership_exists_only_after_the_invitee_accepts(org_a):
    invitee = make_user("invitee")
    manager = org_a.clients[Role.MANAGER]
    made = manager.post(invitations_url(org_a), {"username": "invitee", "role": "reviewer"}, format="json")
    assert made.status_code == 201
    assert not Membership.objects.filter(user=invitee).exists()
    listed = manager.get(invitations_url(org_a)).json()["results"]
    assert [i["username"] for i in listed] == ["invitee"] and "token" not in listed[0]
    # another user holding the token cannot take the invitation
    stranger = make_user("stranger")
    taken = client_for(stranger).post(ACCEPT, {"token": made.json()["token"]}, format="json")
    assert taken.status_code == 404
    accepted = client_for(invitee).post(ACCEPT, {"token": made.json()["token"]}, format="json")
    assert accepted.status_code == 201
    assert Membership.objects.get(user=invitee).role == Role.REVIEWER
    assert not Membership.objects.filter(user=stranger).exists()
    # used once only
    assert client_for(invitee).post(ACCEPT, {"token": made.json()["token"]}, format="json").status_code == 404
    assert manager.get(invitations_url(org_a)).json()["results"] == []


@pytest.mark.django_db
def test_inviting_tells_nothing_about_whether_a_username_exists(org_a):
    make_user("exists")
    manager = org_a.clients[Role.MANAGER]
    answers = [
        manager.post(invitations_url(org_a), {"username": name, "role": "annotator"}, format="json")
        for name in ("exists", "no-such-user")
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert [sorted(a.json()) for a in answers] == [sorted(answers[0].json())] * 2


@pytest.mark.django_db
def test_an_email_invitation_creates_the_account_on_acceptance(org_a):
    manager = org_a.clients[Role.MANAGER]
    made = manager.post(
        invitations_url(org_a), {"email": "New@Example.org", "role": "annotator"}, format="json"
    )
    token = made.json()["token"]
    anonymous = APIClient()
    weak = anonymous.post(ACCEPT, {"token": token, "username": "newbie", "password": "123"}, format="json")
    assert weak.status_code == 400 and weak.json()["error"]["field"] == "password"
    assert not get_user_model().objects.filter(username="newbie").exists()
    ok = anonymous.post(
        ACCEPT, {"token": token, "username": "newbie", "password": "a-long-passphrase-7"}, format="json"
    )
    assert ok.status_code == 201, ok.json()
    user = get_user_model().objects.get(username="newbie")
    assert user.email == "new@example.org"
    assert Membership.objects.get(user=user).role == Role.ANNOTATOR
    login = anonymous.post(
        "/api/v1/auth/token/", {"username": "newbie", "password": "a-long-passphrase-7"}, format="json"
    )
    assert login.status_code == 200


@pytest.mark.django_db
def test_expired_or_revoked_invitations_cannot_be_accepted(org_a):
    invitee = make_user("invitee")
    manager = org_a.clients[Role.MANAGER]
    url = invitations_url(org_a)
    first = manager.post(url, {"username": "invitee", "role": "annotator"}, format="json").json()
    Invitation.objects.filter(pk=first["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert client_for(invitee).post(ACCEPT, {"token": first["token"]}, format="json").status_code == 404
    second = manager.post(url, {"username": "invitee", "role": "annotator"}, format="json").json()
    assert manager.delete(f"{url}{second['id']}/").status_code == 204
    assert client_for(invitee).post(ACCEPT, {"token": second["token"]}, format="json").status_code == 404
    assert not Membership.objects.filter(user=invitee).exists()


@pytest.mark.django_db
def test_workers_cannot_invite_and_managers_cannot_invite_owners(org_a):
    url = invitations_url(org_a)
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        assert (
            org_a.clients[role].post(url, {"username": "x", "role": "annotator"}, format="json").status_code
            == 403
        )
        assert org_a.clients[role].get(url).status_code == 403
    assert (
        org_a.clients[Role.MANAGER].post(url, {"username": "x", "role": "owner"}, format="json").status_code
        == 403
    )
    assert (
        org_a.clients[Role.OWNER].post(url, {"username": "x", "role": "owner"}, format="json").status_code
        == 201
    )


@pytest.mark.django_db
def test_signup_is_a_switch(settings):
    body = {"username": "selfmade", "password": "a-long-passphrase-3"}
    closed = APIClient().post("/api/v1/auth/signup/", body, format="json")
    assert closed.status_code == 403 and closed.json()["error"]["code"] == "signup_closed"
    settings.LABELHUB_SIGNUP_OPEN = True
    opened = APIClient().post("/api/v1/auth/signup/", body, format="json")
    assert opened.status_code == 201
    user = get_user_model().objects.get(username="selfmade")
    assert not Membership.objects.filter(user=user).exists()  # an account, in no organization
