"""Training requests through the API: 202 and a job, validation naming the field, roles, isolation;
then the eager job path trains, promotes by the held-out rule and pre-labels new images."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.learning.models import ModelVersion, ProjectModel, VersionStatus
from labelhub.predictions.models import Prediction
from tests.helpers import disc_image_bytes, upload

from .conftest import TINY, H, W

pytestmark = pytest.mark.django_db


def train(client, project_id, body):
    return client.post(f"/api/v1/projects/{project_id}/models/train/", body, format="json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 2.5}, "epochs"),
        ({"lr": "fast"}, "lr"),
        ({"heldout_fraction": 0.9}, "heldout_fraction"),
        ({"stuff_classes": ["horse"]}, "stuff_classes"),
        ({"colour": 1}, "colour"),
    ],
)
def test_bad_training_options_answer_400_naming_the_field(disc_project, body, field):
    response = train(disc_project.clients[Role.MANAGER], disc_project.project.id, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field
    assert not ModelVersion.objects.exists()


def test_training_needs_accepted_tasks_managers_and_your_own_project(org_a, org_b):
    empty = train(org_a.clients[Role.MANAGER], org_a.project.id, {})
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "not_enough_data"
    assert train(org_a.clients[Role.ANNOTATOR], org_a.project.id, {}).status_code == 403
    assert train(org_b.clients[Role.MANAGER], org_a.project.id, {}).status_code == 404
    assert org_b.clients[Role.MANAGER].get(f"/api/v1/projects/{org_a.project.id}/models/").status_code == 404
    assert not ModelVersion.objects.exists()


def test_train_promote_and_prelabel_new_images_with_the_version(
    disc_project, settings, django_capture_on_commit_callbacks
):
    org, project = disc_project, disc_project.project
    manager = org.clients[Role.MANAGER]
    project.prelabel = "project_model"
    project.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = train(manager, project.id, {**TINY, "heldout_fraction": 0.25, "seed": 3})
    assert response.status_code == 202, response.content
    body = response.json()
    version = ModelVersion.objects.get(id=body["model"]["id"])
    # Eager tasks: the job ran on commit. Held-out split: 1 of the 4 tasks, the other 3 trained on.
    assert version.status == VersionStatus.READY, version.error
    assert len(version.dataset["heldout"]) == 1 and len(version.dataset["train"]) == 3
    assert version.seed == 3 and version.code_version and version.weights_sha256
    assert version.config["epochs_run"] == TINY["epochs"] and len(version.history) == TINY["epochs"]
    read = manager.get(f"/api/v1/models/{version.id}/").json()
    assert read["progress"]["epoch"] == TINY["epochs"] and set(read["progress"]["metrics"]) == {
        "pixel_accuracy",
        "dice",
        "iou",
        "boundary_f1",
    }
    # No version before: it competes with the tasks' pre-labels (none here: Dice 0).
    promotion = read["promotion"]
    assert promotion["current"]["source"] == "prelabels"
    assert promotion["promoted"] is (read["metrics"]["dice"] > promotion["current"]["metrics"]["dice"])
    assert read["active"] is promotion["promoted"] and promotion["promoted"], read
    listed = manager.get(f"/api/v1/projects/{project.id}/models/").json()
    assert [v["id"] for v in listed["results"]] == [version.id]

    # New images of the project are pre-labelled by the promoted version, recorded with it.
    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = True
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(manager, project.id, ("new.png", disc_image_bytes(W, H, seed=9))).status_code == 201
    image = Image.objects.get(original_name="new.png")
    prediction = Prediction.objects.get(image=image)
    assert prediction.model_name == f"project-{project.id}-v{version.number}"
    assert prediction.checkpoint_sha256 == version.weights_sha256 and prediction.status == "ok"
    revision = image.task.annotation.revisions.get(number=1)
    assert revision.author is None and revision.regions
    assert {r["prediction_id"] for r in revision.regions} == {prediction.id}
    assert {r["label"] for r in revision.regions} == {"cat"}

    # A second version must beat the first on its held-out tasks to replace it; both scores recorded.
    with django_capture_on_commit_callbacks(execute=True):
        second = train(
            manager, project.id, {**TINY, "epochs": 1, "lr": 1e-6, "seed": 3, "heldout_fraction": 0.25}
        )
    assert second.status_code == 202
    v2 = ModelVersion.objects.get(id=second.json()["model"]["id"])
    assert v2.promotion["current"]["source"] == version.prediction_model_name
    pm = ProjectModel.objects.get(project=project)
    beat = v2.metrics["dice"] > v2.promotion["current"]["metrics"]["dice"]
    assert v2.promotion["promoted"] is beat
    assert pm.active_version_id == (v2.id if beat else version.id)
