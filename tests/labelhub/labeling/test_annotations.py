"""Annotations keep every revision; a write based on a stale revision answers 409 and keeps the newer one."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.labeling.models import AnnotationRevision
from tests.helpers import image_bytes, square, upload


@pytest.fixture
def task(org_a):
    assert (
        upload(org_a.clients[Role.OWNER], org_a.project.id, ("a.png", image_bytes(64, 48))).status_code == 201
    )
    task = Image.objects.get().task
    # Annotators write the task they hold (managers write any).
    claimed = org_a.clients[Role.ANNOTATOR].post(
        f"/api/v1/projects/{org_a.project.id}/next-task/?stage=annotate"
    )
    assert claimed.status_code == 200 and claimed.json()["id"] == task.id
    return task


def put(client, task, revision, regions):
    return client.put(
        f"/api/v1/tasks/{task.id}/annotation/", {"revision": revision, "regions": regions}, format="json"
    )


@pytest.mark.django_db
def test_stale_revision_answers_409_and_newer_revision_is_kept(org_a, task):
    alice, bob = org_a.clients[Role.ANNOTATOR], org_a.clients[Role.MANAGER]
    empty = alice.get(f"/api/v1/tasks/{task.id}/annotation/").json()
    assert empty["revision"] == 0 and empty["regions"] == []

    first = put(
        alice, task, 0, [{"id": "a", "label": "cat", "kind": "polygon", "polygons": [square(1, 1, 10, 10)]}]
    )
    assert first.status_code == 200 and first.json()["revision"] == 1
    # Both read revision 1; Bob saves first, then Alice's save on revision 1 is stale.
    bob_regions = [{"id": "b", "label": "dog", "kind": "polygon", "polygons": [square(20, 20, 30, 30)]}]
    assert put(bob, task, 1, bob_regions).status_code == 200
    stale = put(alice, task, 1, [])
    assert stale.status_code == 409
    error = stale.json()["error"]
    assert error["code"] == "stale_revision" and error["field"] == "revision"
    assert error["details"]["current_revision"] == 2

    current = alice.get(f"/api/v1/tasks/{task.id}/annotation/").json()
    assert current["revision"] == 2 and current["current_revision"] == 2
    assert [r["id"] for r in current["regions"]] == ["b"]
    assert current["author"] == "alpha-manager"
    assert AnnotationRevision.objects.count() == 2


@pytest.mark.django_db
def test_every_revision_is_readable_with_what_changed(org_a, task):
    client = org_a.clients[Role.ANNOTATOR]
    r1 = [
        {"id": "a", "label": "cat", "kind": "polygon", "polygons": [square(1, 1, 10, 10)]},
        {"id": "b", "label": "dog", "kind": "polygon", "polygons": [square(20, 20, 30, 30)]},
    ]
    r2 = [
        {"id": "a", "label": "cat", "kind": "polygon", "polygons": [square(1, 1, 12, 10)]},
        {
            "id": "c",
            "label": "cat",
            "kind": "polygon",
            "polygons": [
                {
                    "exterior": [[30, 1], [60, 1], [60, 40], [30, 40]],
                    "holes": [[[40, 10], [50, 10], [50, 20], [40, 20]]],
                }
            ],
        },
    ]
    assert put(client, task, 0, r1).status_code == 200
    assert put(client, task, 1, r2).status_code == 200

    old = client.get(f"/api/v1/tasks/{task.id}/annotation/?revision=1").json()
    assert old["revision"] == 1 and old["current_revision"] == 2
    assert [r["id"] for r in old["regions"]] == ["a", "b"]
    assert old["regions"][0]["polygons"][0]["exterior"][1] == [10.0, 1.0]

    history = client.get(f"/api/v1/tasks/{task.id}/revisions/").json()
    assert [h["number"] for h in history] == [1, 2]
    assert history[0]["summary"] == {"added": ["a", "b"], "removed": [], "changed": []}
    assert history[1]["summary"] == {"added": ["c"], "removed": ["b"], "changed": ["a"]}
    assert all(h["author"] == "alpha-annotator" and h["stage"] == "annotate" for h in history)
    hole = client.get(f"/api/v1/tasks/{task.id}/annotation/").json()["regions"][1]["polygons"][0]["holes"]
    assert hole == [[[40.0, 10.0], [50.0, 10.0], [50.0, 20.0], [40.0, 20.0]]]


@pytest.mark.django_db
def test_closed_rings_are_stored_open_and_ids_are_assigned(org_a, task):
    client = org_a.clients[Role.ANNOTATOR]
    ring = [[1, 1], [10, 1], [10, 10], [1, 10], [1, 1]]
    saved = put(
        client, task, 0, [{"label": "cat", "kind": "polygon", "polygons": [{"exterior": ring}]}]
    ).json()
    region = saved["regions"][0]
    assert region["polygons"][0]["exterior"] == ring[:-1]
    assert region["id"] and region["source"] == "human"


@pytest.mark.django_db
def test_mask_regions_carry_rle(org_a, task):
    import numpy as np

    from workers.geometry import mask_to_rle, rle_to_mask

    mask = np.zeros((48, 64), dtype=bool)
    mask[5:20, 10:30] = True
    client = org_a.clients[Role.ANNOTATOR]
    saved = put(client, task, 0, [{"id": "m", "label": "cat", "kind": "mask", "rle": mask_to_rle(mask)}])
    assert saved.status_code == 200, saved.json()
    stored = client.get(f"/api/v1/tasks/{task.id}/annotation/").json()["regions"][0]["rle"]
    assert (rle_to_mask(stored) == mask).all()
