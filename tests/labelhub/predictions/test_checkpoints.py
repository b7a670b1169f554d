"""A missing or wrong checkpoint is refused with a clear message, recorded, and never crash-loops."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.predictions.models import Prediction
from labelhub.predictions.services import images_presegment
from tests.helpers import disc_image_bytes, upload
from workers.sam import MODEL_SPECS, reset_backends


@pytest.fixture
def fake_checkpoint(tmp_path, settings):
    path = tmp_path / "sam_vit_b_01ec64.pth"
    path.write_bytes(b"not the official weights" * 100)
    settings.LABELHUB_SAM_MODEL = "vit_b"
    settings.LABELHUB_SAM_CHECKPOINT = str(path)
    reset_backends()
    yield path
    reset_backends()


@pytest.mark.django_db
def test_wrong_checkpoint_is_refused_with_a_clear_message(org_a, fake_checkpoint):
    assert (
        upload(org_a.clients[Role.OWNER], org_a.project.id, ("d.png", disc_image_bytes())).status_code == 201
    )
    image = Image.objects.get()
    response = org_a.clients[Role.ANNOTATOR].post(
        f"/api/v1/images/{image.id}/segment/", {"points": [[10, 10]], "point_labels": [1]}, format="json"
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "model_unavailable"
    assert MODEL_SPECS["vit_b"].sha256 in error["message"] and "SHA-256" in error["message"]
    # Pre-segmentation records the failure on the image instead of crashing the worker.
    results = images_presegment(image_ids=[image.id])
    prediction = results[image.id]
    assert prediction.status == "failed" and "SHA-256" in prediction.error
    images_presegment(image_ids=[image.id])
    assert Prediction.objects.get(image=image).attempts == 2  # one row, attempts counted


def test_verify_command_refuses_a_wrong_file(fake_checkpoint):
    with pytest.raises(CommandError, match="SHA-256"):
        call_command("sam_checkpoints", "--verify", str(fake_checkpoint), "--model", "vit_b")


def test_download_command_discards_a_file_with_the_wrong_hash(tmp_path, fake_checkpoint):
    target = tmp_path / "downloads"
    with pytest.raises(CommandError, match="wrong SHA-256"):
        call_command(
            "sam_checkpoints", "--download", "vit_b", "--dir", str(target), "--url", fake_checkpoint.as_uri()
        )
    assert list(target.iterdir()) == []


def test_unknown_model_is_refused(tmp_path):
    with pytest.raises(CommandError, match="unknown model"):
        call_command("sam_checkpoints", "--download", "vit_x", "--dir", str(tmp_path))
