"""A request whose transaction committed answers 2xx when the broker is down: the send after commit fails
against a real Redis port with nothing listening (the `broker_down` fixture of tests/conftest.py), is
logged, and the row stays pending for a retry."""

from __future__ import annotations

import logging

import pytest

from labelhub.datasets.models import Export


@pytest.mark.django_db
def test_export_request_answers_202_while_the_broker_is_down(
    org_a, broker_down, django_capture_on_commit_callbacks, caplog
):
    with caplog.at_level(logging.ERROR, logger="labelhub.core.queue"):
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = org_a.clients["manager"].post(
                f"/api/v1/projects/{org_a.project.id}/exports/", {"format": "coco"}, format="json"
            )
    assert response.status_code == 202, response.json()
    assert callbacks  # the send ran after the commit, and failed
    assert "could not queue labelhub.datasets.run_export" in caplog.text
    assert Export.objects.get(pk=response.json()["id"]).status == "pending"  # left for a retry


@pytest.mark.django_db
def test_import_box_prompts_refused_by_the_broker_are_logged_and_the_import_is_done(
    org_a, broker_down, django_capture_on_commit_callbacks, caplog
):
    """The box prompts of a COCO import go to the `gpu` queue after the import's commit: a broker that
    refuses them is logged, and the import job still ends done, its boxes counted in the result."""
    import io
    import json

    from labelhub.datasets import import_jobs
    from labelhub.images.services import IncomingFile, images_add
    from labelhub.predictions.models import Prediction
    from tests.helpers import disc_image_bytes

    (image,) = images_add(
        project=org_a.project, files=[IncomingFile("disc.png", disc_image_bytes(64, 48))], presegment=False
    ).created
    doc = json.dumps(
        {
            "images": [{"id": 1, "file_name": image.original_name, "width": 64, "height": 48}],
            "categories": [{"id": 3, "name": "dog"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [12, 8, 40, 32]}],
        }
    ).encode()
    with caplog.at_level(logging.ERROR, logger="labelhub.core.queue"):
        with django_capture_on_commit_callbacks(execute=True):
            job = import_jobs.import_create(
                project=org_a.project,
                fh=io.BytesIO(doc),
                file_name="boxes.json",
                size=len(doc),
                format="coco",
                target="annotations",
                model_name="",
                user=org_a.users["manager"],
            )
        assert (
            "could not queue labelhub.datasets.run_import" in caplog.text
        )  # left pending: the sweep runs it
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            import_jobs.import_run(import_id=job.id)
    job.refresh_from_db()
    assert job.status == "done" and job.result["box_prompts"] == 1, job.result
    assert callbacks and "could not queue labelhub.predictions.gpu.presegment_boxes" in caplog.text
    assert not Prediction.objects.filter(image=image, kind="boxes").exists()
