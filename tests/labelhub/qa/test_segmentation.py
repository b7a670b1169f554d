"""Segmentation quality in the metrics: known answers on the metrics story (64x48 images, classes cat
and dog; a class absent from both label maps is left out of Dice, IoU and BF1, not scored 1)."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.labeling import reviews
from labelhub.labeling.annotations import Writer, annotation_write
from tests.labelhub.labeling.builders import HEIGHT, WIDTH, make_tasks, region

from .test_metrics import hold, revision_of, story  # noqa: F401  (fixture)

approx = pytest.approx
pytestmark = pytest.mark.django_db


def test_prelabel_gold_and_fix_scores_in_the_metrics_api(story, org_a):  # noqa: F811
    a1, r = story["a1"], story["r"]
    t5 = make_tasks(story["project"], 1, start=10)[0]
    hold(t5, a1, claimed_ago=10, active=5)
    annotation_write(
        task=t5, author=a1, base_revision=0, regions=[region("x", 0, 0, 10, 10)], writer=Writer.MEMBER
    )
    reviews.task_submit(task=t5, user=a1)
    hold(t5, r, claimed_ago=10, active=5)
    # The reviewer's fix: the square twice as wide, and labelled right.
    reviews.task_fix_accept(
        task=t5, user=r, base_revision=revision_of(t5), regions=[region("x", 0, 0, 20, 10)]
    )

    body = org_a.clients[Role.MANAGER].get(f"/api/v1/projects/{story['project'].id}/metrics/").json()
    seg = body["segmentation"]
    assert seg["tolerance_px"] == 2.0
    # T1: pre-label cat = 200 px, accepted cat = 350 px, 200 shared; dog absent in both.
    pre = seg["prelabel"]["overall"]
    assert pre["n"] == 1
    assert pre["pixel_accuracy"] == approx(1 - 150 / (WIDTH * HEIGHT), abs=1e-6)
    assert pre["dice"] == approx(400 / 550, abs=1e-6)
    assert pre["iou"] == approx(200 / 350, abs=1e-6)
    assert set(pre["per_class"]) == {"cat"}
    assert 0.5 < pre["boundary_f1"] < 1.0
    assert seg["prelabel"]["by_model"] == {"sam-test": pre}  # the story's prediction
    assert seg["prelabel"]["per_task"] is None  # opt-in: ?per_task=true
    manager = org_a.clients[Role.MANAGER]
    url = f"/api/v1/projects/{story['project'].id}/metrics/"
    paged = manager.get(f"{url}?per_task=true&page_size=1").json()["segmentation"]["prelabel"]["per_task"]
    assert paged["page"] == 1 and paged["has_next"] is False
    assert [row["task"] for row in paged["results"]] == [story["tasks"][0].id]
    assert paged["results"][0]["iou"] == approx(pre["iou"], abs=1e-6)
    assert (
        manager.get(f"{url}?per_task=true&page=2").json()["segmentation"]["prelabel"]["per_task"]["results"]
        == []
    )
    for bad, field in (("per_task=maybe", "per_task"), ("per_task=1&page_size=0", "page_size")):
        answer = manager.get(f"{url}?{bad}")
        assert answer.status_code == 400 and answer.json()["error"]["field"] == field
    # Gold: A1 drew 300 px for a 100 px gold square (Dice 0.5 for cat), A2 exactly.
    gold = seg["annotator_vs_gold"]["by_user"]
    assert gold["alpha-annotator"]["dice"] == approx(0.5) and gold["alpha-a2"]["dice"] == approx(1.0)
    # Fix: 100 px submitted, 200 px accepted, 100 shared: cat Dice 2/3, IoU 1/2.
    fix = seg["annotator_vs_fix"]["by_user"]["alpha-annotator"]
    assert fix["n"] == 1 and fix["dice"] == approx(2 / 3) and fix["iou"] == approx(0.5)
    # Existing fields are unchanged.
    assert body["ai_assist"]["ai_regions"] == 2 and body["gold"]["scored"] == 2
    # The samples rebuilt from the stored history give the same figures (manage.py quality_samples).
    from django.core.management import call_command

    from labelhub.qa.models import QualitySample

    QualitySample.objects.all().delete()
    # The figures are cached until the project's samples change: a delete without the services' hook
    # is still answered from the cache; the rebuild replaces the cache's version (labelhub/qa/cache.py).
    cached = manager.get(url).json()
    assert cached["segmentation"] == seg
    call_command("quality_samples", str(story["project"].id))
    again = manager.get(url).json()
    assert again["segmentation"] == seg and again["ai_assist"] == body["ai_assist"]
    # ... and between them, with no samples, the rebuilt-from-nothing figures would be empty: the cache
    # really was replaced (a stale cache would answer `seg` whatever the samples).
    from labelhub.qa.cache import samples_changed

    QualitySample.objects.all().delete()
    samples_changed(story["project"].id)
    empty = manager.get(url).json()["segmentation"]["prelabel"]["overall"]
    assert empty["n"] == 0
    # The warm-up job (queued after a change commits) leaves the default answers in the cache: the next
    # read sums no sample.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from labelhub.qa.tasks import figures_warm

    call_command("quality_samples", str(story["project"].id))
    figures_warm(story["project"].id)
    with CaptureQueriesContext(connection) as queries:
        warm = manager.get(url).json()
        report = manager.get(f"/api/v1/projects/{story['project'].id}/quality/").json()
    assert warm["segmentation"] == seg and report["accuracy"]["units"] > 0
    assert not [q["sql"] for q in queries.captured_queries if "qa_qualitysample" in q["sql"]]


def test_prelabels_deleted_score_zero_not_near_perfect(org_a):
    """The issue's case: pre-labels nearly all deleted by the labeler. Before, each image's classes absent
    from both sides counted 1.0 and the project read Dice 0.97 at pixel accuracy 0.1."""
    from labelhub.labeling.annotations import annotation_prelabel

    from .test_metrics import hold as hold_task

    project = org_a.project
    a1, r = org_a.users[Role.ANNOTATOR], org_a.users[Role.REVIEWER]
    q = org_a.users[Role.MANAGER]
    tasks = make_tasks(project, 3, start=20)
    for i, task in enumerate(tasks):
        # A big AI region of class cat on every image; the labeler deletes it and draws nothing.
        annotation_prelabel(task=task, regions=[region(f"p{i}", 0, 0, WIDTH, HEIGHT - 4, source="ai")])
        hold_task(task, a1, claimed_ago=5, active=1)
        annotation_write(task=task, author=a1, base_revision=1, regions=[], writer=Writer.MEMBER)
        reviews.task_submit(task=task, user=a1)
        hold_task(task, r, claimed_ago=5, active=1)
        reviews.task_accept(task=task, user=r)
        hold_task(task, q, claimed_ago=5, active=1)
        reviews.task_accept(task=task, user=q)
    body = org_a.clients[Role.MANAGER].get(f"/api/v1/projects/{project.id}/metrics/").json()
    pre = body["segmentation"]["prelabel"]["overall"]
    assert pre["n"] == 3
    assert pre["pixel_accuracy"] == approx(4 / HEIGHT, abs=1e-6)
    assert pre["dice"] == 0.0 and pre["iou"] == 0.0 and pre["boundary_f1"] == 0.0
    assert pre["per_class"] == {"cat": {"n": 3, "dice": 0.0, "iou": 0.0, "boundary_f1": 0.0}}
    assert body["ai_assist"]["deleted"] == 3 and body["ai_assist"]["kept"] == 0
