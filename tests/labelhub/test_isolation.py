"""No endpoint lets a user of one organization read or write another's data."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Membership, Role
from labelhub.datasets.models import Export
from labelhub.images.models import Image
from labelhub.labeling.models import AnnotationRevision, Comment, Task, TaskEvent
from labelhub.predictions.models import Prediction
from labelhub.webhooks.models import Webhook
from tests.helpers import image_bytes, square, upload


@pytest.fixture
def b_objects(org_b):
    response = upload(org_b.clients[Role.MANAGER], org_b.project.id, ("b.png", image_bytes(seed=7)))
    assert response.status_code == 201, response.json()
    image = Image.objects.get(project=org_b.project)
    task = image.task
    client = org_b.clients[Role.ANNOTATOR]
    assert client.post(f"/api/v1/projects/{org_b.project.id}/next-task/").status_code == 200
    saved = client.put(
        f"/api/v1/tasks/{task.id}/annotation/",
        {
            "revision": 0,
            "regions": [{"id": "r1", "label": "cat", "kind": "polygon", "polygons": [square(1, 1, 9, 9)]}],
        },
        format="json",
    )
    assert saved.status_code == 200, saved.json()
    comment = client.post(f"/api/v1/tasks/{task.id}/comments/", {"text": "edge is off"}, format="json").json()
    prediction = Prediction.objects.create(image=image, model_name="classical-grabcut", status="ok")
    membership = Membership.objects.get(organization=org_b.organization, role=Role.ANNOTATOR)
    return {
        "org": org_b.organization.id,
        "project": org_b.project.id,
        "image": image.id,
        "task": task.id,
        "comment": comment["id"],
        "prediction": prediction.id,
        "membership": membership.id,
    }


def requests_against(ids: dict) -> list[tuple[str, str, dict | None]]:
    org, project, image, task = ids["org"], ids["project"], ids["image"], ids["task"]
    return [
        ("get", f"/api/v1/organizations/{org}/", None),
        ("patch", f"/api/v1/organizations/{org}/", {"name": "taken"}),
        ("delete", f"/api/v1/organizations/{org}/", None),
        ("get", f"/api/v1/organizations/{org}/members/", None),
        ("post", f"/api/v1/organizations/{org}/members/", {"username": "alpha-owner", "role": "owner"}),
        ("patch", f"/api/v1/organizations/{org}/members/{ids['membership']}/", {"role": "owner"}),
        ("delete", f"/api/v1/organizations/{org}/members/{ids['membership']}/", None),
        ("get", f"/api/v1/projects/{project}/", None),
        ("get", f"/api/v1/projects/{project}/counts/", None),
        ("patch", f"/api/v1/projects/{project}/", {"name": "mine now"}),
        ("delete", f"/api/v1/projects/{project}/", None),
        ("post", "/api/v1/projects/", {"organization": org, "name": "planted"}),
        ("post", f"/api/v1/projects/{project}/images/import/", {"path": "/tmp"}),
        ("get", f"/api/v1/images/{image}/", None),
        ("get", f"/api/v1/images/{image}/file/", None),
        ("delete", f"/api/v1/images/{image}/", None),
        ("get", f"/api/v1/tasks/{task}/", None),
        ("get", f"/api/v1/tasks/{task}/annotation/", None),
        ("get", f"/api/v1/tasks/{task}/annotation/?revision=1", None),
        ("put", f"/api/v1/tasks/{task}/annotation/", {"revision": 1, "regions": []}),
        ("get", f"/api/v1/tasks/{task}/revisions/", None),
        ("get", f"/api/v1/tasks/{task}/timeline/", None),
        ("post", f"/api/v1/tasks/{task}/heartbeat/", None),
        ("post", f"/api/v1/tasks/{task}/submit/", None),
        ("post", f"/api/v1/tasks/{task}/accept/", None),
        ("post", f"/api/v1/tasks/{task}/release/", None),
        ("post", f"/api/v1/tasks/{task}/reject/", {"comments": [{"text": "planted"}]}),
        ("post", f"/api/v1/tasks/{task}/fix-accept/", {"revision": 1, "regions": []}),
        ("post", f"/api/v1/tasks/{task}/reassign/", {"assignee": None}),
        ("get", f"/api/v1/tasks/{task}/gold/", None),
        ("put", f"/api/v1/tasks/{task}/gold/", {"is_gold": True, "regions": []}),
        ("post", f"/api/v1/projects/{project}/next-task/", None),
        ("post", f"/api/v1/projects/{project}/next-task/?stage=annotate", None),
        ("get", f"/api/v1/projects/{project}/metrics/", None),
        ("post", "/api/v1/webhooks/", {"organization": org, "url": "http://127.0.0.1:9/"}),
        ("post", "/api/v1/webhooks/", {"project": project, "url": "http://127.0.0.1:9/"}),
        ("get", f"/api/v1/tasks/{task}/comments/", None),
        ("post", f"/api/v1/tasks/{task}/comments/", {"text": "planted"}),
        ("get", f"/api/v1/comments/{ids['comment']}/", None),
        ("patch", f"/api/v1/comments/{ids['comment']}/", {"resolved": True}),
        ("get", f"/api/v1/predictions/{ids['prediction']}/", None),
        ("post", f"/api/v1/images/{image}/segment/", {"points": [[5, 5]], "point_labels": [1]}),
        ("post", f"/api/v1/images/{image}/presegment/", {"boxes": [{"label": "cat", "box": [1, 1, 9, 9]}]}),
        ("post", f"/api/v1/projects/{project}/embeddings/", None),
        ("post", f"/api/v1/projects/{project}/exports/", {"format": "coco"}),
        ("post", f"/api/v1/projects/{project}/imports/", {"format": "coco"}),
    ]


def org_state() -> tuple:
    """Everything a request could change, to compare before and after."""
    return (
        Image.objects.count(),
        Task.objects.count(),
        AnnotationRevision.objects.count(),
        Comment.objects.count(),
        Membership.objects.count(),
        sorted(Task.objects.values_list("id", "stage", "status", "assignee_id", "is_gold")),
        TaskEvent.objects.count(),
        Webhook.objects.count(),
        Prediction.objects.count(),
        Export.objects.count(),
    )


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_other_organization_is_invisible_and_untouchable(org_a, b_objects, role):
    client = org_a.clients[role]
    before = org_state()
    for method, url, payload in requests_against(b_objects):
        response = (
            getattr(client, method)(url, payload, format="json") if payload else getattr(client, method)(url)
        )
        assert response.status_code in (403, 404), (method, url, response.status_code)
        assert "error" in response.json(), (method, url)
    after = org_state()
    assert before == after
    assert not Comment.objects.filter(text="planted").exists()
    assert not Membership.objects.filter(
        organization_id=b_objects["org"], user=org_a.users[Role.OWNER]
    ).exists()


@pytest.mark.django_db
def test_lists_show_only_own_organization(org_a, b_objects):
    assert (
        upload(org_a.clients[Role.MANAGER], org_a.project.id, ("a.png", image_bytes(seed=1))).status_code
        == 201
    )
    a_image = Image.objects.get(project=org_a.project)
    Prediction.objects.create(image=a_image, model_name="classical-grabcut", status="ok")
    client = org_a.clients[Role.OWNER]
    expected = {
        "organizations": org_a.organization.id,
        "projects": org_a.project.id,
        "images": a_image.id,
        "tasks": a_image.task.id,
        "predictions": Prediction.objects.get(image=a_image).id,
    }
    other = {
        "organizations": "org",
        "projects": "project",
        "images": "image",
        "tasks": "task",
        "predictions": "prediction",
    }
    for name, own_id in expected.items():
        ids = {r["id"] for r in client.get(f"/api/v1/{name}/").json()["results"]}
        assert ids == {own_id}, (name, ids, b_objects[other[name]])
    # Filtering by the other organization's project yields nothing rather than its tasks.
    assert client.get(f"/api/v1/tasks/?project={b_objects['project']}").json()["results"] == []


@pytest.mark.django_db
def test_anonymous_requests_are_refused(b_objects):
    from rest_framework.test import APIClient

    response = APIClient().get(f"/api/v1/tasks/{b_objects['task']}/")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
