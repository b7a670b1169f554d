"""Every response carries `Server-Timing: app;dur=..., db;dur=...;desc="N queries"` (labelhub/core/timing.py)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labelhub.accounts.models import Role

TIMING = re.compile(r'app;dur=(?P<app>[\d.]+), db;dur=(?P<db>[\d.]+);desc="(?P<n>\d+) queries"$')


def timing(response) -> dict:
    match = TIMING.search(response["Server-Timing"])
    assert match, response["Server-Timing"]
    return {"app": float(match["app"]), "db": float(match["db"]), "queries": int(match["n"])}


@pytest.mark.django_db
def test_server_timing_counts_the_requests_queries(org_a):
    client = org_a.clients[Role.ANNOTATOR]
    with CaptureQueriesContext(connection) as queries:
        listed = client.get("/api/v1/projects/")
    assert listed.status_code == 200
    got = timing(listed)
    assert got["queries"] == len(queries) > 0
    assert 0 < got["db"] <= got["app"]


@pytest.mark.django_db
def test_server_timing_is_on_error_answers_too(client):
    missing = client.get("/api/v1/projects/999999/")
    assert missing.status_code in (401, 403, 404)
    assert timing(missing)["app"] > 0
