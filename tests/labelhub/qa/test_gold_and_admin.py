"""Gold tasks through the API (marked by managers, invisible to annotators, scored on submit), release,
and the admin pages of the new models."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.qa.models import GoldScore
from labelhub.webhooks.models import Webhook
from tests.helpers import client_for
from tests.labelhub.labeling.builders import make_tasks, next_task, region


@pytest.mark.django_db
def test_gold_task_reaches_annotators_like_any_and_is_scored(org_a):
    (task,) = make_tasks(org_a.project, 1)
    manager, annotator = org_a.clients[Role.MANAGER], org_a.clients[Role.ANNOTATOR]
    url = f"/api/v1/tasks/{task.id}/gold/"
    assert annotator.put(url, {"is_gold": True, "regions": []}, format="json").status_code == 403
    assert annotator.get(url).status_code == 403
    bad = manager.put(url, {"is_gold": True, "regions": [region("g", 0, 0, 100, 10)]}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"].startswith("regions[0].polygons")
    marked = manager.put(url, {"is_gold": True, "regions": [region("g", 0, 0, 10, 10)]}, format="json")
    assert marked.status_code == 200 and marked.json()["is_gold"] is True
    assert [r["id"] for r in manager.get(url).json()["regions"]] == ["g"]

    claimed = next_task(annotator, org_a.project.id, "annotate").json()
    assert claimed["id"] == task.id and "is_gold" not in claimed and "gold_regions" not in claimed
    annotator.put(
        f"/api/v1/tasks/{task.id}/annotation/",
        {"revision": 0, "regions": [region("s", 0, 0, 10, 20)]},
        format="json",
    )
    assert annotator.post(f"/api/v1/tasks/{task.id}/submit/").status_code == 200
    score = GoldScore.objects.get()
    assert score.user == org_a.users[Role.ANNOTATOR] and score.revision == 1
    assert score.score == pytest.approx(0.5)
    assert score.details["matches"] == [{"gold": "g", "submitted": "s", "iou": 0.5}]


@pytest.mark.django_db
def test_release_gives_the_task_back(org_a):
    (task,) = make_tasks(org_a.project, 1)
    annotator = org_a.clients[Role.ANNOTATOR]
    assert next_task(annotator, org_a.project.id, "annotate").json()["id"] == task.id
    released = annotator.post(f"/api/v1/tasks/{task.id}/release/")
    assert (
        released.status_code == 200
        and released.json()["status"] == "open"
        and released.json()["assignee"] is None
    )
    assert annotator.post(f"/api/v1/tasks/{task.id}/release/").status_code == 409


@pytest.mark.django_db
def test_admin_pages_of_workflow_models(org_a):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", password="pw-root")
    (task,) = make_tasks(org_a.project, 1)
    next_task(org_a.clients[Role.ANNOTATOR], org_a.project.id, "annotate")
    Webhook.objects.create(organization=org_a.organization, url="http://127.0.0.1:9/", secret="x")
    client = client_for(admin)
    client.force_login(admin)
    for path in (
        "labeling/taskevent",
        "labeling/task",
        "webhooks/webhook",
        "webhooks/webhookdelivery",
        "qa/goldscore",
    ):
        assert client.get(f"/admin/{path}/").status_code == 200, path
