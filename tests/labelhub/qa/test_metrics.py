"""Metrics are computed from stored events, revisions and gold scores: a fixture with known answers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from labelhub.accounts.models import Role
from labelhub.labeling import assignments, reviews
from labelhub.labeling.annotations import Writer, annotation_prelabel, annotation_write
from labelhub.labeling.models import Task, TaskEvent
from labelhub.predictions.models import Prediction, PredictionStatus
from labelhub.qa.gold import regions_match
from labelhub.qa.metrics import project_metrics
from tests.helpers import make_user
from tests.labelhub.labeling.builders import HEIGHT, WIDTH, make_tasks, region

approx = pytest.approx


def hold(task: Task, user, *, claimed_ago: float, active: float) -> None:
    """The user holds the task, claimed `claimed_ago` seconds ago with `active` seconds counted so far."""
    now = timezone.now()
    Task.objects.filter(pk=task.pk).update(
        status="in_progress",
        assignee=user,
        claimed_at=now - timedelta(seconds=claimed_ago),
        last_heartbeat_at=now,
        active_seconds=active,
        lease_expires_at=now + timedelta(minutes=10),
    )


def revision_of(task: Task) -> int:
    task.annotation.refresh_from_db()
    return task.annotation.current_revision


@pytest.fixture
def story(org_a):
    project = org_a.project
    a1, r = org_a.users[Role.ANNOTATOR], org_a.users[Role.REVIEWER]
    a2 = make_user("alpha-a2", org_a.organization, Role.ANNOTATOR)
    q = make_user("alpha-q", org_a.organization, Role.REVIEWER)
    manager = org_a.users[Role.MANAGER]
    t1, t2, t3, t4 = make_tasks(project, 4)

    # T1: AI pre-label of two regions; A1 moves two vertices of p1, keeps p2, adds h1; accepted twice.
    made = Prediction.objects.create(image=t1.image, model_name="sam-test", status=PredictionStatus.OK)
    annotation_prelabel(
        task=t1,
        regions=[
            {**region("p1", 10, 10, 20, 20, source="ai"), "prediction_id": made.pk, "score": 0.9},
            {**region("p2", 30, 10, 40, 20, source="ai"), "prediction_id": made.pk, "score": 0.8},
        ],
    )
    hold(t1, a1, claimed_ago=100, active=40)
    prelabel = t1.annotation.revisions.get(number=1).regions
    edited = [
        dict(prelabel[0], polygons=region("p1", 10, 10, 20, 25)["polygons"]),
        prelabel[1],
        region("h1", 50, 30, 60, 40),
    ]
    annotation_write(task=t1, author=a1, base_revision=1, regions=edited, writer=Writer.MEMBER)
    reviews.task_submit(task=t1, user=a1)
    hold(t1, r, claimed_ago=60, active=30)
    reviews.task_accept(task=t1, user=r)
    hold(t1, q, claimed_ago=20, active=10)
    reviews.task_accept(task=t1, user=q)

    # T2: A2 submits, review rejects, A2 resubmits, review accepts, final QA rejects.
    hold(t2, a2, claimed_ago=200, active=100)
    annotation_write(
        task=t2, author=a2, base_revision=0, regions=[region("x", 5, 5, 15, 15)], writer=Writer.MEMBER
    )
    reviews.task_submit(task=t2, user=a2)
    hold(t2, r, claimed_ago=50, active=20)
    reviews.task_reject(task=t2, user=r, comments=[{"text": "too loose", "region_id": "x"}])
    hold(t2, a2, claimed_ago=100, active=50)
    reviews.task_submit(task=t2, user=a2)
    hold(t2, r, claimed_ago=40, active=10)
    reviews.task_accept(task=t2, user=r)
    hold(t2, q, claimed_ago=30, active=5)
    reviews.task_reject(task=t2, user=q, comments=[{"text": "wrong class", "x": 6, "y": 6}])

    # T3, T4: gold tasks with one known region; A1 draws it twice as tall plus an extra, A2 exactly.
    for task in (t3, t4):
        assignments.task_gold_set(
            task=task, manager=manager, is_gold=True, regions=[region("g", 0, 0, 10, 10)]
        )
    hold(t3, a1, claimed_ago=10, active=0)
    annotation_write(
        task=t3,
        author=a1,
        base_revision=0,
        regions=[region("s", 0, 0, 10, 20), region("e", 40, 30, 50, 40)],
        writer=Writer.MEMBER,
    )
    reviews.task_submit(task=t3, user=a1)
    hold(t4, a2, claimed_ago=10, active=0)
    annotation_write(
        task=t4, author=a2, base_revision=0, regions=[region("s", 0, 0, 10, 10)], writer=Writer.MEMBER
    )
    reviews.task_submit(task=t4, user=a2)
    return {"project": project, "a1": a1, "a2": a2, "r": r, "q": q, "tasks": (t1, t2, t3, t4)}


def test_gold_matching_known_answers():
    gold = [region("g1", 0, 0, 10, 10), region("g2", 20, 20, 30, 30, label="dog")]
    assert regions_match(gold, gold, HEIGHT, WIDTH)["score"] == 1.0
    assert regions_match([], [], HEIGHT, WIDTH)["score"] == 1.0
    half = regions_match(gold[:1], [region("s", 0, 0, 10, 20)], HEIGHT, WIDTH)
    assert half["score"] == approx(0.5) and half["matches"] == [{"gold": "g1", "submitted": "s", "iou": 0.5}]
    # Same shape, wrong class: no match. A missed gold region costs as much as an extra one.
    assert regions_match(gold[:1], [region("s", 0, 0, 10, 10, label="dog")], HEIGHT, WIDTH)["score"] == 0.0
    assert regions_match(gold, gold[:1], HEIGHT, WIDTH)["score"] == approx(0.5)
    # Greedy best-IoU pairing: each gold region takes its best still-free submission.
    subs = [region("near", 0, 0, 10, 11), region("far", 0, 0, 10, 20)]
    result = regions_match(gold[:1], subs, HEIGHT, WIDTH)
    assert result["matches"][0]["submitted"] == "near" and result["score"] == approx((100 / 110) / 2)
    mask = {"id": "m", "label": "cat", "kind": "mask", "rle": None}
    from workers.geometry import mask_to_rle, polygons_to_mask

    mask["rle"] = mask_to_rle(polygons_to_mask(gold[0]["polygons"], HEIGHT, WIDTH))
    assert regions_match(gold[:1], [mask], HEIGHT, WIDTH)["score"] == 1.0


@pytest.mark.django_db
def test_project_metrics_known_answers(story):
    m = project_metrics(project=story["project"])
    assert m["tasks_per_stage"] == {
        "annotate": {"open": 1},
        "review": {"open": 2},
        "final-qa": {},
        "done": {"done": 1},
    }
    by_stage = m["throughput"]["by_stage"]
    assert by_stage["annotate"]["submitted"] == 5
    assert (by_stage["review"]["accepted"], by_stage["review"]["rejected"]) == (2, 1)
    assert (by_stage["final-qa"]["accepted"], by_stage["final-qa"]["rejected"]) == (1, 1)
    assert m["throughput"]["done"] == 1
    assert m["rejection_rate"] == {"review": approx(1 / 3), "final-qa": approx(0.5)}
    t = m["time"]
    assert t["annotate"]["actions"] == 5
    assert t["annotate"]["work_seconds_total"] == approx(420, abs=1)
    assert t["annotate"]["active_seconds_total"] == approx(190, abs=1)
    assert t["review"]["work_seconds_mean"] == approx(50, abs=1)
    assert t["review"]["active_seconds_total"] == approx(60, abs=1)
    assert t["final-qa"]["work_seconds_total"] == approx(50, abs=1)
    assert t["final-qa"]["active_seconds_total"] == approx(15, abs=1)
    gold = m["gold"]
    assert gold["scored"] == 2 and gold["mean_score"] == approx(0.625)
    assert gold["by_user"] == {
        "alpha-annotator": {"scored": 1, "mean_score": approx(0.25)},
        "alpha-a2": {"scored": 1, "mean_score": approx(1.0)},
    }
    assert m["ai_assist"] == {
        "tasks": 1,
        "ai_regions": 2,
        "kept": 2,
        "deleted": 0,
        "unchanged": 1,
        "unchanged_share": 0.5,
        "mean_iou": approx((1 + 100 / 150) / 2),
        "human_regions_added": 1,
        "vertices_moved_or_added": 2,
        "vertices_removed": 2,
    }
    users = m["by_user"]
    assert (
        users["alpha-a2"]["rejections_received"] == 2 and users["alpha-annotator"]["rejections_received"] == 0
    )
    assert users["alpha-a2"]["actions"] == 3 and users["alpha-reviewer"]["actions"] == 3
    assert users["alpha-q"]["active_seconds"] == approx(15, abs=1)
    assert users["alpha-annotator"]["gold_mean_score"] == approx(0.25)


@pytest.mark.django_db
def test_metrics_per_user_and_time_window(story, org_a):
    project, a1 = story["project"], story["a1"]
    mine = project_metrics(project=project, user=a1)
    assert mine["user"] == "alpha-annotator"
    assert mine["throughput"]["by_stage"]["annotate"]["submitted"] == 2
    assert mine["throughput"]["by_stage"]["review"]["accepted"] == 0
    assert mine["gold"]["scored"] == 1 and mine["gold"]["mean_score"] == approx(0.25)
    assert mine["throughput"]["done"] == 1 and mine["ai_assist"]["ai_regions"] == 2
    assert project_metrics(project=project, user=story["a2"])["ai_assist"]["ai_regions"] == 0
    # Per user: rejections received over submissions, and the AI-assist figures of their accepted tasks.
    row = project_metrics(project=project)["by_user"]["alpha-annotator"]
    assert row["submitted"] == 2
    assert row["rejection_rate"] == approx(row["rejections_received"] / 2)
    assert row["ai_assist"]["ai_regions"] == mine["ai_assist"]["ai_regions"] == 2
    assert row["ai_assist"]["kept_share"] == approx(mine["ai_assist"]["kept"] / 2)
    # Marking an accepted task gold later is an event in "done", not a second acceptance.
    done = next(t for t in story["tasks"] if Task.objects.get(pk=t.pk).status == "done")
    before = project_metrics(project=project)
    assignments.task_gold_set(
        task=done, manager=org_a.users[Role.MANAGER], is_gold=True, regions=[region("g", 1, 1, 9, 9)]
    )
    after = project_metrics(project=project)
    assert (
        after["ai_assist"] == before["ai_assist"]
        and after["throughput"]["done"] == before["throughput"]["done"]
    )

    # Move T2's history two days back: a window over the last day no longer sees its rejections.
    t2 = story["tasks"][1]
    now = timezone.now()
    TaskEvent.objects.filter(task=t2).update(created_at=now - timedelta(days=2))
    recent = project_metrics(project=project, since=now - timedelta(days=1), until=now + timedelta(hours=1))
    assert recent["throughput"]["by_stage"]["annotate"]["submitted"] == 3
    assert recent["rejection_rate"] == {"review": 0.0, "final-qa": 0.0}
    assert recent["throughput"]["done_per_hour"] == approx(1 / 25)
    old = project_metrics(project=project, until=now - timedelta(days=1))
    assert old["throughput"]["by_stage"]["annotate"]["submitted"] == 2
    assert old["rejection_rate"] == {"review": 0.5, "final-qa": 1.0}
    assert old["throughput"]["done"] == 0

    # The API: managers see anyone; others see only themselves; bad parameters name the field.
    url = f"/api/v1/projects/{project.id}/metrics/"
    manager = org_a.clients[Role.MANAGER]
    answer = manager.get(url, {"user": a1.id, "since": (now - timedelta(days=1)).isoformat()})
    assert answer.status_code == 200, answer.json()
    assert answer.json()["user"] == "alpha-annotator"
    assert answer.json()["throughput"]["by_stage"]["annotate"]["submitted"] == 2
    annotator = org_a.clients[Role.ANNOTATOR]
    assert annotator.get(url).json()["user"] == "alpha-annotator"
    assert annotator.get(url, {"user": story["a2"].id}).status_code == 403
    assert manager.get(url, {"since": "yesterday"}).json()["error"]["field"] == "since"
    assert manager.get(url, {"user": "x"}).json()["error"]["field"] == "user"


def heartbeat_after(task: Task, user, seconds: float) -> None:
    """A heartbeat `seconds` after the previous one (the clock moved back instead of waiting)."""
    from labelhub.labeling import leases

    Task.objects.filter(pk=task.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=seconds))
    leases.task_heartbeat(task=task, user=user)


@pytest.mark.django_db
def test_active_time_of_a_released_or_expired_claim_is_kept(org_a):
    from labelhub.labeling import leases

    project = org_a.project
    a1 = org_a.users[Role.ANNOTATOR]
    a2 = make_user("alpha-a2", org_a.organization, Role.ANNOTATOR)
    t1, t2 = make_tasks(project, 2)
    # a1 works 30 s on T1, reloads the page (release), takes T1 again, works 20 s more and submits.
    assert leases.task_claim(task=t1, user=a1).pk == t1.pk
    heartbeat_after(t1, a1, 30)
    leases.task_release(task=t1, user=a1)
    assert leases.task_claim(task=t1, user=a1).pk == t1.pk
    heartbeat_after(t1, a1, 20)
    annotation_write(task=t1, author=a1, base_revision=0, regions=[region("a", 1, 1, 9, 9)])
    reviews.task_submit(task=t1, user=a1)
    # a1 works 10 s on T2 and walks away; the lease expires and a2 takes the task over from the queue.
    assert leases.task_claim(task=t2, user=a1).pk == t2.pk
    heartbeat_after(t2, a1, 10)
    Task.objects.filter(pk=t2.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert leases.task_claim_next(project=project, user=a2, stage="annotate").pk == t2.pk

    metrics = project_metrics(project=project)
    # Each figure also holds the few milliseconds between a heartbeat and the next step.
    assert metrics["by_user"]["alpha-annotator"]["active_seconds"] == approx(60, abs=1)
    assert metrics["time"]["annotate"]["active_seconds_total"] == approx(60, abs=1)
    assert metrics["time"]["annotate"]["actions"] == 1
    assert project_metrics(project=project, user=a1)["by_user"]["alpha-annotator"][
        "active_seconds"
    ] == approx(60, abs=1)
    assert "alpha-a2" not in metrics["by_user"]
