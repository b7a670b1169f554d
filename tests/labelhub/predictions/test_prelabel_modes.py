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
