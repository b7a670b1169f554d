"""Issue 24's smaller items: the admin's sign-in is throttled, an oversized JSON body answers 413, the
pre-segmentation sweep's period is a setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client

from labelhub.accounts.models import Role

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.django_db
def test_the_admin_sign_in_is_throttled(org_a, settings):
    settings.LABELHUB_THROTTLE_RATES = {**settings.LABELHUB_THROTTLE_RATES, "login": "3/minute"}
    cache.clear()
    browser = Client()
    owner = org_a.users[Role.OWNER]
    wrong = {"username": owner.username, "password": "not-the-password"}
    answers = [browser.post("/admin/login/?next=/admin/", wrong).status_code for _ in range(3)]
    assert answers == [200, 200, 200]  # the form again, with its error
    refused = browser.post("/admin/login/?next=/admin/", wrong)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    # Reading the form is not an attempt.
    assert browser.get("/admin/login/").status_code == 200


@pytest.mark.django_db
def test_an_oversized_json_body_answers_413(org_a, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    owner = org_a.clients[Role.OWNER]
    body = {"name": "big", "description": "x" * 5000}
    answer = owner.post("/api/v1/projects/", body, format="json")
    assert answer.status_code == 413, answer.content
    error = answer.json()["error"]
    assert error["code"] == "request_too_large" and "2000 bytes" in error["message"]
    assert "DATA_UPLOAD" not in error["message"]


def test_the_presegment_sweep_period_is_a_setting():
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CELERY_BEAT_SCHEDULE['labelhub-presegment-sweep']['schedule'])"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "labelhub.settings",
        "LABELHUB_PRESEGMENT_SWEEP_SECONDS": "42",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "42.0"
