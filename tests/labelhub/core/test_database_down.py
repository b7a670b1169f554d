"""A request that finds the database gone (a restart, a failover) answers 503 with a JSON error and
Retry-After, never 500: nothing was committed, and the client may retry."""

from __future__ import annotations

import socket

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_database_outage_answers_503(org_a):
    client = org_a.clients["annotator"]
    url = f"/api/v1/projects/{org_a.project.id}/next-task/"
    assert client.get(f"/api/v1/projects/{org_a.project.id}/").status_code == 200
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    try:
        response = client.post(url, {"stage": "annotate"}, format="json")
    finally:
        connection.close()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "database_unavailable"
    assert client.get(f"/api/v1/projects/{org_a.project.id}/").status_code == 200  # back once it is
