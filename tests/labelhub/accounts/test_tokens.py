"""API tokens (django-rest-knox): hashed at rest, expiring, revocable one by one or all at once, and
revoked by a password change; login is throttled per client."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.helpers import make_user

LOGIN = "/api/v1/auth/token/"


def login(client: APIClient, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password}, format="json")


def authed(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.mark.django_db
def test_login_gives_an_expiring_token_stored_only_as_a_digest():
    make_user("solo")
    response = login(APIClient(), "solo", "pw-solo")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"token", "expiry"} and body["expiry"]
    row = AuthToken.objects.get(user__username="solo")
    assert row.expiry is not None and body["token"] not in (row.digest, row.token_key)
    assert authed(body["token"]).get("/api/v1/organizations/").status_code == 200
    assert login(APIClient(), "solo", "wrong").status_code == 400


@pytest.mark.django_db
def test_logout_revokes_that_token_only():
    make_user("solo")
    first, second = (login(APIClient(), "solo", "pw-solo").json()["token"] for _ in range(2))
    out = authed(first).delete(LOGIN)
    assert out.status_code == 204
    refused = authed(first).get("/api/v1/organizations/")
    assert refused.status_code == 401 and "error" in refused.json()
    assert authed(second).get("/api/v1/organizations/").status_code == 200


@pytest.mark.django_db
def test_revoke_all_and_password_change_revoke_every_token():
    user = make_user("solo")
    tokens = [login(APIClient(), "solo", "pw-solo").json()["token"] for _ in range(2)]
    assert authed(tokens[0]).post("/api/v1/auth/token/revoke-all/").status_code == 204
    assert [authed(t).get("/api/v1/organizations/").status_code for t in tokens] == [401, 401]

    token = login(APIClient(), "solo", "pw-solo").json()["token"]
    weak = authed(token).post(
        "/api/v1/auth/password/", {"old_password": "pw-solo", "new_password": "12345678"}, format="json"
    )
    assert weak.status_code == 400 and weak.json()["error"]["field"] == "new_password"
    changed = authed(token).post(
        "/api/v1/auth/password/",
        {"old_password": "pw-solo", "new_password": "a-long-new-passphrase-9"},
        format="json",
    )
    assert changed.status_code == 204
    assert authed(token).get("/api/v1/organizations/").status_code == 401
    user.refresh_from_db()
    assert user.check_password("a-long-new-passphrase-9")
    assert login(APIClient(), "solo", "a-long-new-passphrase-9").status_code == 200


@pytest.mark.django_db
def test_a_password_changed_outside_the_api_invalidates_every_token():
    """`set_password` + save (a shell, a script) and the Django admin's password form: no API call, no
    signal; the token's password fingerprint no longer matches, so it answers 401 and is deleted."""
    user = make_user("solo")
    tokens = [login(APIClient(), "solo", "pw-solo").json()["token"] for _ in range(2)]
    assert authed(tokens[0]).get("/api/v1/organizations/").status_code == 200
    user.set_password("another-long-passphrase-3")
    user.save()
    assert [authed(t).get("/api/v1/organizations/").status_code for t in tokens] == [401, 401]
    assert not AuthToken.objects.filter(user=user).exists()
    fresh = login(APIClient(), "solo", "another-long-passphrase-3").json()["token"]
    assert authed(fresh).get("/api/v1/organizations/").status_code == 200

    # the Django admin's "change password" form, signed in as a superuser
    admin = make_user("boss")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    browser = Client()
    browser.force_login(admin)
    response = browser.post(
        f"/admin/auth/user/{user.id}/password/",
        {
            "password1": "a-third-long-passphrase-7",
            "password2": "a-third-long-passphrase-7",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content[:500]
    assert authed(fresh).get("/api/v1/organizations/").status_code == 401
    # a save that leaves the password alone leaves the tokens alone
    kept = login(APIClient(), "solo", "a-third-long-passphrase-7").json()["token"]
    user.refresh_from_db()
    user.first_name = "Solo"
    user.save()
    assert authed(kept).get("/api/v1/organizations/").status_code == 200


@pytest.mark.django_db
def test_a_token_without_a_password_stamp_answers_401():
    user = make_user("solo")
    _, token = AuthToken.objects.create(user=user)  # not through token_issue: no TokenPassword row
    assert authed(token).get("/api/v1/organizations/").status_code == 401
    assert not AuthToken.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_expired_token_answers_401():
    user = make_user("solo")
    _, token = AuthToken.objects.create(user=user, expiry=timedelta(seconds=-1))
    response = authed(token).get("/api/v1/organizations/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert not AuthToken.objects.filter(user=user).exists()  # knox deletes it on sight


@pytest.mark.django_db
def test_login_attempts_past_the_limit_answer_429_even_with_the_right_password(settings):
    settings.LABELHUB_THROTTLE_RATES = {**settings.LABELHUB_THROTTLE_RATES, "login": "5/minute"}
    cache.clear()
    make_user("solo")
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    assert [login(client, "solo", f"guess-{i}").status_code for i in range(5)] == [400] * 5
    limited = login(client, "solo", "pw-solo")
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert limited.json()["error"]["code"] == "throttled"
    # counted per client address (a client-sent X-Forwarded-For does not pick another bucket)
    spoofed = client.post(
        LOGIN, {"username": "solo", "password": "pw-solo"}, format="json", HTTP_X_FORWARDED_FOR="198.51.100.1"
    )
    assert spoofed.status_code == 429
    assert login(APIClient(REMOTE_ADDR="203.0.113.8"), "solo", "pw-solo").status_code == 200


@pytest.mark.django_db
def test_authentication_is_one_query_and_expired_tokens_go_at_the_next_login():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIRequestFactory

    from labelhub.accounts.auth import token_issue
    from labelhub.accounts.authentication import TokenAuthentication

    user = make_user("tok-one-query")
    old, old_secret = token_issue(user=user)
    _, secret = token_issue(user=user)
    request = APIRequestFactory().get("/api/v1/organizations/", HTTP_AUTHORIZATION=f"Token {secret}")
    with CaptureQueriesContext(connection) as queries:
        authed_user, _ = TokenAuthentication().authenticate(request)
    assert authed_user == user
    assert len(queries) == 1  # token, user and password stamp in one read
    AuthToken.objects.filter(pk=old.pk).update(expiry=old.expiry - timedelta(days=365))
    expired = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {old_secret}")
    with pytest.raises(Exception, match="Invalid token"):
        TokenAuthentication().authenticate(expired)
    assert not AuthToken.objects.filter(pk=old.pk).exists()  # deleted when used
    third, _ = token_issue(user=user)
    AuthToken.objects.filter(pk=third.pk).update(expiry=third.expiry - timedelta(days=365))
    token_issue(user=user)  # a new login removes the user's expired tokens
    assert not AuthToken.objects.filter(pk=third.pk).exists()
    assert AuthToken.objects.filter(user=user).count() == 2
