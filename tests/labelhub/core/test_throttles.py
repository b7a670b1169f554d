"""Throttles: writes per user, anonymous calls per client, scopes for the expensive endpoints."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from labelhub.accounts.models import Role
from tests.helpers import image_bytes, upload


@pytest.mark.django_db
def test_writes_are_throttled_per_user_and_reads_are_not(org_a, settings):
    settings.LABELHUB_THROTTLE_RATES = {**settings.LABELHUB_THROTTLE_RATES, "write": "3/minute"}
    cache.clear()
    manager = org_a.clients[Role.MANAGER]
    url = f"/api/v1/projects/{org_a.project.id}/"
    codes = [manager.patch(url, {"description": str(i)}, format="json").status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    assert manager.get(url).status_code == 200
    assert org_a.clients[Role.OWNER].patch(url, {"description": "x"}, format="json").status_code == 200


@pytest.mark.django_db
def test_upload_has_its_own_tighter_scope(org_a, settings):
    settings.LABELHUB_THROTTLE_RATES = {**settings.LABELHUB_THROTTLE_RATES, "upload": "1/minute"}
    cache.clear()
    client = org_a.clients[Role.OWNER]
    assert upload(client, org_a.project.id, ("a.png", image_bytes(seed=1))).status_code == 201
    second = upload(client, org_a.project.id, ("b.png", image_bytes(seed=2)))
    assert second.status_code == 429 and "Retry-After" in second


@pytest.mark.django_db
def test_anonymous_calls_are_throttled_per_client(settings):
    settings.LABELHUB_THROTTLE_RATES = {**settings.LABELHUB_THROTTLE_RATES, "anon": "2/minute"}
    cache.clear()
    client = APIClient(REMOTE_ADDR="203.0.113.9")
    body = {"username": "newcomer", "password": "a-long-passphrase-1"}
    codes = [client.post("/api/v1/auth/signup/", body, format="json").status_code for _ in range(3)]
    assert codes == [403, 403, 429]  # sign-up is closed by default; the third call is not even looked at
    assert (
        APIClient(REMOTE_ADDR="203.0.113.10").post("/api/v1/auth/signup/", body, format="json").status_code
        == 403
    )

