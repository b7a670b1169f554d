"""New images follow the project's pre-label mode; the classical backend never floods by default."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.predictions.models import Prediction
from tests.helpers import disc_image_bytes, upload

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("mode", "classical_everything", "predicted"),
    [("everything", False, False), ("everything", True, True), ("none", True, False), ("boxes", True, False)],
)
def test_upload_prelabels_by_mode(
    org_a, settings, django_capture_on_commit_callbacks, mode, classical_everything, predicted
):
    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = True
    settings.LABELHUB_CLASSICAL_EVERYTHING = classical_everything
    manager = org_a.clients[Role.MANAGER]
    assert (
        manager.patch(f"/api/v1/projects/{org_a.project.id}/", {"prelabel": mode}, format="json").status_code
        == 200
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(manager, org_a.project.id, ("d.png", disc_image_bytes())).status_code == 201
    assert Prediction.objects.exists() is predicted


def test_an_explicit_request_still_runs_the_classical_backend(
    org_a, settings, django_capture_on_commit_callbacks
):
    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = True
    manager = org_a.clients[Role.MANAGER]
    with django_capture_on_commit_callbacks(execute=True):
        upload(manager, org_a.project.id, ("d.png", disc_image_bytes()))
    assert not Prediction.objects.exists()
    image_id = org_a.project.images.get().id
    with django_capture_on_commit_callbacks(execute=True):
        assert manager.post(f"/api/v1/images/{image_id}/presegment/", {}, format="json").status_code == 202
    assert Prediction.objects.get().model_name == "classical-grabcut"


def test_bad_prelabel_mode_and_retrain_every_answer_400(org_a):
    manager = org_a.clients[Role.MANAGER]
    for body, field in (({"prelabel": "magic"}, "prelabel"), ({"retrain_every": -1}, "retrain_every")):
        response = manager.patch(f"/api/v1/projects/{org_a.project.id}/", body, format="json")
        assert response.status_code == 400 and response.json()["error"]["field"] == field


def test_the_project_says_why_uploads_are_not_prelabelled_and_starts_it(
    org_a, settings, django_capture_on_commit_callbacks
):
    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = True
    manager = org_a.clients[Role.MANAGER]
    url = f"/api/v1/projects/{org_a.project.id}/presegment/"
    with django_capture_on_commit_callbacks(execute=True):
        upload(manager, org_a.project.id, ("d.png", disc_image_bytes()), ("e.png", disc_image_bytes(seed=1)))
    status = manager.get(url).json()
    assert status["on_upload"] is False and "LABELHUB_CLASSICAL_EVERYTHING" in status["reason"]
    assert (status["images"], status["without"], status["done"]) == (2, 2, 0)
    with django_capture_on_commit_callbacks(execute=True):
        assert manager.post(url).json() == {"queued": 2}
    status = manager.get(url).json()
    assert (status["done"], status["without"], status["pending"]) == (2, 0, 0)
    with django_capture_on_commit_callbacks(execute=True):
        assert manager.post(url).json() == {"queued": 0}  # nothing left to pre-segment
    settings.LABELHUB_CLASSICAL_EVERYTHING = True
    assert manager.get(url).json()["on_upload"] is True
    manager.patch(f"/api/v1/projects/{org_a.project.id}/", {"prelabel": "none"}, format="json")
    off = manager.get(url).json()
    assert off["on_upload"] is False and "off" in off["reason"]
    refused = manager.post(url)
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "prelabel"
    annotator = org_a.clients[Role.ANNOTATOR]
    assert annotator.get(url).status_code == 403
