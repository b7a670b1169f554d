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


@pytest.fixture
def own_cache(settings, tmp_path):
    """The throttles' cache on a redis-server of this test's own (no other run on the host shares it)."""
    import socket
    import subprocess
    import time

    import redis

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(tmp_path / "redis.log", "wb") as out:
        proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    for _ in range(200):
        try:
            if client.ping():
                break
        except redis.RedisError:
            time.sleep(0.05)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }
    yield
    proc.kill()
    proc.wait(timeout=10)


@pytest.mark.django_db
def test_segment_and_polygonize_share_the_segment_scope(org_a, settings, own_cache):
    """Two calls a day in the `segment` scope, counted across segment/ and polygonize/, per user. The
    rate is day-scale so that however long a call takes (the first one compiles geometry kernels) the
    window never runs out inside the test."""
    settings.LABELHUB_THROTTLE_RATES = {**settings.LABELHUB_THROTTLE_RATES, "segment": "2/day"}
    client = org_a.clients[Role.ANNOTATOR]
    assert (
        upload(org_a.clients[Role.OWNER], org_a.project.id, ("a.png", image_bytes(seed=1))).status_code == 201
    )
    from labelhub.images.models import Image

    image = Image.objects.get(project=org_a.project)
    size = [image.height, image.width]
    click = {"points": [[5, 5]], "point_labels": [1]}
    first = client.post(f"/api/v1/images/{image.id}/segment/", click, format="json")
    assert first.status_code == 200, first.content
    body = {"rle": {"size": size, "counts": [size[0] * size[1]]}}
    second = client.post(f"/api/v1/images/{image.id}/polygonize/", body, format="json")
    assert second.status_code == 200, second.content
    for url, data in (
        (f"/api/v1/images/{image.id}/segment/", click),
        (f"/api/v1/images/{image.id}/polygonize/", body),
    ):
        third = client.post(url, data, format="json")
        assert third.status_code == 429 and int(third["Retry-After"]) > 3600, third.content
    # per user: another member of the project still segments
    other = org_a.clients[Role.MANAGER].post(f"/api/v1/images/{image.id}/segment/", click, format="json")
    assert other.status_code == 200, other.content
