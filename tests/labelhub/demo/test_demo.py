"""The README's run command: `manage.py demo` sets up a demo project pre-segmented through the worker path."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from labelhub.images.models import Image
from labelhub.predictions.models import Prediction


@pytest.mark.django_db
def test_demo_sets_up_a_working_project():
    out = io.StringIO()
    call_command("demo", "--no-serve", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "LabelHub demo is ready" in text
    images = Image.objects.filter(project__name="Demo project")
    assert images.count() == 6
    assert Prediction.objects.filter(image__in=images, status="ok").count() == 6
    token = next(line.split()[-1] for line in text.splitlines() if line.strip().startswith("annotator"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    tasks = client.get("/api/v1/tasks/").json()
    assert tasks["count"] == 6
    # Every task starts from the AI pre-labels: revision 1, regions from the prediction.
    annotation = client.get(f"/api/v1/tasks/{tasks['results'][0]['id']}/annotation/").json()
    assert annotation["revision"] == 1 and annotation["author"] is None
    # Running it again reuses everything.
    call_command("demo", "--no-serve", stdout=io.StringIO(), stderr=io.StringIO())
    assert Image.objects.filter(project__name="Demo project").count() == 6
    assert Prediction.objects.filter(image__in=images).count() == 6
