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
def test_every_revision_is_readable_with_what_changed(org_a, task, settings):
    settings.LABELHUB_REVISION_BURST_SECONDS = 0  # every save a revision (the burst rule is tested below)
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

    history = client.get(f"/api/v1/tasks/{task.id}/revisions/").json()["results"]
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


@pytest.mark.django_db
def test_a_burst_of_saves_by_one_person_is_one_revision(org_a, task, settings):
    """The revision rule: a member's save within LABELHUB_REVISION_BURST_SECONDS of their own previous
    save (same stage, a revision nothing names) replaces that revision under the new number; another
    person's save, a save after the window, or a revision a comment names starts a new one. Stale reads
    are still refused."""
    from datetime import timedelta

    from django.utils import timezone

    from labelhub.labeling.models import Annotation, Comment

    settings.LABELHUB_REVISION_BURST_SECONDS = 60
    alice, bob = org_a.clients[Role.ANNOTATOR], org_a.clients[Role.MANAGER]

    def region(x):
        return [{"id": "a", "label": "cat", "kind": "polygon", "polygons": [square(1, 1, x, 10)]}]

    for base, x in [(0, 10), (1, 11), (2, 12)]:
        out = put(alice, task, base, region(x))
        assert out.status_code == 200 and out.json()["revision"] == base + 1
    numbers = list(AnnotationRevision.objects.values_list("number", flat=True))
    assert numbers == [3]  # one revision for the burst, at the latest number
    only = AnnotationRevision.objects.get()
    assert only.regions[0]["polygons"][0]["exterior"][1] == [12.0, 1.0]
    assert only.summary == {"added": ["a"], "removed": [], "changed": []}
    assert put(alice, task, 2, region(13)).status_code == 409  # a stale read is still refused

    # Another person: a new revision; then Alice again: a new one too (the last was Bob's).
    assert put(bob, task, 3, region(14)).status_code == 200
    assert put(alice, task, 4, region(15)).status_code == 200
    assert list(AnnotationRevision.objects.values_list("number", flat=True)) == [3, 4, 5]
    # After the window: a new revision.
    Annotation.objects.filter(task=task).update(updated_at=timezone.now() - timedelta(seconds=61))
    assert put(alice, task, 5, region(16)).status_code == 200
    assert list(AnnotationRevision.objects.values_list("number", flat=True)) == [3, 4, 5, 6]
    # A revision a comment names is kept.
    Comment.objects.create(task=task, author=None, text="look", revision=6)
    assert put(alice, task, 6, region(17)).status_code == 200
    assert list(AnnotationRevision.objects.values_list("number", flat=True)) == [3, 4, 5, 6, 7]
    assert put(alice, task, 7, region(18)).status_code == 200
    assert list(AnnotationRevision.objects.values_list("number", flat=True)) == [3, 4, 5, 6, 8]


@pytest.mark.django_db
def test_a_mask_on_a_polygon_only_class_is_refused_naming_the_region(org_a, task):
    import numpy as np

    from workers.geometry import mask_to_rle

    mask = np.zeros((48, 64), dtype=bool)
    mask[5:20, 10:30] = True
    client = org_a.clients[Role.ANNOTATOR]
    ok = {"id": "p", "label": "dog", "kind": "polygon", "polygons": [square(1, 1, 10, 10)]}
    cat = {"id": "m", "label": "cat", "kind": "mask", "rle": mask_to_rle(mask)}
    dog = {"id": "d", "label": "dog", "kind": "mask", "rle": mask_to_rle(mask)}
    out = put(client, task, 0, [ok, cat, dog])
    assert out.status_code == 400
    error = out.json()["error"]
    assert error["field"] == "regions[2].kind" and error["code"] == "kind_not_allowed"
    assert "dog" in error["message"]
    assert AnnotationRevision.objects.count() == 0  # nothing half-saved
    assert put(client, task, 0, [ok, cat]).status_code == 200
