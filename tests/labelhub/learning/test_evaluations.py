"""Interactive evaluations through the API: NoC@85/90 of the classical backend on accepted tasks,
checked against the click protocol run directly; roles, isolation and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from labelhub.accounts.models import Role
from labelhub.labeling.models import AnnotationRevision, Task
from labelhub.learning.models import Evaluation
from labelhub.predictions.backends import image_pixels
from labelhub.regions.validation import region_mask
from workers.sam import ClassicalBackend
from workers.sam.clicks import next_click, noc, run_clicks

pytestmark = pytest.mark.django_db


def evaluate(client, project_id, body):
    return client.post(f"/api/v1/projects/{project_id}/evaluations/", body, format="json")


def test_click_protocol_clicks_the_largest_error_interior():
    gt = np.zeros((40, 60), bool)
    gt[5:35, 15:45] = True
    # Nothing predicted: a positive click at the object's centre (its farthest interior point).
    x, y, label = next_click(np.zeros_like(gt), gt, np.ones_like(gt))
    assert label == 1 and abs(x - 30) <= 1 and abs(y - 20) <= 1
    # A large false positive outweighs a thin missed strip: a negative click inside it.
    pred = gt.copy()
    pred[5:35, 43:45] = False
    pred[0:10, 0:60] = True
    assert next_click(pred, gt, np.ones_like(gt))[2] == 0
    assert next_click(gt, gt, np.ones_like(gt)) is None
    assert noc([0.5, 0.86, 0.91], 0.85, 20) == 2 and noc([0.5], 0.9, 20) == 20


def test_evaluation_through_the_api_matches_the_protocol_run_directly(
    disc_project, django_capture_on_commit_callbacks
):
    org, project = disc_project, disc_project.project
    manager = org.clients[Role.MANAGER]
    with django_capture_on_commit_callbacks(execute=True):
        response = evaluate(manager, project.id, {"max_clicks": 5, "max_tasks": 3})
    assert response.status_code == 202, response.content
    read = manager.get(f"/api/v1/evaluations/{response.json()['id']}/")
    assert read.status_code == 200
    body = read.json()
    assert body["status"] == "done", body["error"]
    assert body["backend"] == "classical-grabcut" and body["model_version"] == "none"
    assert body["progress"] == {"tasks_done": 3, "tasks": 3, "objects_done": 3}
    assert len(body["results"]) == 3
    backend = ClassicalBackend()
    n85, n90 = [], []
    for row in body["results"]:
        task = Task.objects.select_related("image").get(id=row["task"])
        regions = AnnotationRevision.objects.get(id=row["revision"]).regions
        [obj] = row["objects"]
        [emb] = backend.embed([image_pixels(task.image)])
        run = run_clicks(
            backend, emb, region_mask(regions[0], task.image.height, task.image.width), max_clicks=5
        )
        assert obj["ious"] == [round(v, 6) for v in run.ious]
        assert [c[2] for c in obj["clicks"]] == [c[2] for c in run.clicks]
        assert obj["noc85"] == run.noc(0.85, 5) and obj["noc90"] == run.noc(0.90, 5)
        assert 1 <= len(obj["ious"]) <= 5 and obj["clicks"][0][2] == 1
        n85.append(obj["noc85"])
        n90.append(obj["noc90"])
    assert body["noc85"] == pytest.approx(np.mean(n85), abs=1e-4)
    assert body["noc90"] == pytest.approx(np.mean(n90), abs=1e-4)


def test_evaluations_are_for_managers_of_the_project_organization(disc_project, org_b):
    project = disc_project.project
    assert evaluate(disc_project.clients[Role.ANNOTATOR], project.id, {}).status_code == 403
    assert evaluate(org_b.clients[Role.MANAGER], project.id, {}).status_code == 404
    evaluation = Evaluation.objects.create(project=project, dataset=[])
    assert org_b.clients[Role.MANAGER].get(f"/api/v1/evaluations/{evaluation.id}/").status_code == 404
    assert disc_project.clients[Role.MANAGER].get(f"/api/v1/evaluations/{evaluation.id}/").status_code == 200
    assert Evaluation.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"max_clicks": 0}, "max_clicks"),
        ({"max_clicks": 21}, "max_clicks"),
        ({"max_clicks": "many"}, "max_clicks"),
        ({"max_tasks": 1.5}, "max_tasks"),
        ({"clicks": 3}, "clicks"),
    ],
)
def test_bad_evaluation_options_answer_400_naming_the_field(disc_project, body, field):
    response = evaluate(disc_project.clients[Role.MANAGER], disc_project.project.id, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field
    assert not Evaluation.objects.exists()


def test_random_sam_weights_are_never_evaluated(disc_project, settings):
    settings.LABELHUB_SAM_RANDOM_SEED = "0"
    settings.LABELHUB_SAM_CHECKPOINT = ""
    response = evaluate(disc_project.clients[Role.MANAGER], disc_project.project.id, {})
    assert response.status_code == 400 and response.json()["error"]["code"] == "random_weights"
    assert not Evaluation.objects.exists()


def test_a_project_without_accepted_tasks_is_refused(org_a):
    response = evaluate(org_a.clients[Role.MANAGER], org_a.project.id, {})
    assert response.status_code == 400 and response.json()["error"]["field"] == "project"


def test_the_evaluation_job_runs_on_the_gpu_queue_where_sam_is_loaded():
    from labelhub.celery import app

    assert app.amqp.router.route({}, "labelhub.learning.gpu.run_evaluation")["queue"].name == "gpu"
