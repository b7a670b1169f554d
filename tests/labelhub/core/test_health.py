"""Liveness and readiness: ready names each dependency that does not answer (a real Redis we stop, a
bucket that does not exist), with 503."""

from __future__ import annotations

import subprocess

import pytest

from .conftest import free_port

pytestmark = pytest.mark.django_db


def test_live_answers_without_authentication(client):
    response = client.get("/healthz/live/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_ready_checks_database_and_storage(client):
    response = client.get("/healthz/ready/")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and set(body["checks"]) == {"database", "broker", "storage"}
    assert all(check["ok"] for check in body["checks"].values())


def test_ready_fails_with_the_broker_named_when_redis_stops(client, settings):
    port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        settings.CELERY_TASK_ALWAYS_EAGER = False
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
        for _ in range(100):  # until redis-server accepts connections
            if client.get("/healthz/ready/").status_code == 200:
                break
        assert client.get("/healthz/ready/").json()["checks"]["broker"]["ok"] is True
    finally:
        redis.kill()
        redis.wait(10)
    response = client.get("/healthz/ready/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail" and body["failed"] == ["broker"]
    assert "Error" in body["checks"]["broker"]["error"] and body["checks"]["database"]["ok"] is True


def test_ready_fails_with_storage_named_when_the_bucket_is_missing(client, s3_storage, settings):
    assert client.get("/healthz/ready/").status_code == 200
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**settings.STORAGES["default"]["OPTIONS"], "bucket_name": "no-such-bucket"},
        },
    }
    response = client.get("/healthz/ready/")
    assert response.status_code == 503 and response.json()["failed"] == ["storage"]
