"""Honeypots: gold tasks mixed into first-stage queues at the project's rate, never twice to one person,
scored on submit with errors by kind, invisible to labelers; gold never leaks through the metrics."""

from __future__ import annotations

import json

import pytest
from django.db import connection, transaction

from labelhub.accounts.models import Role
from labelhub.labeling import assignments, leases, reviews
from labelhub.labeling.annotations import Writer, annotation_prelabel, annotation_write
from labelhub.labeling.models import Task, TaskReplica
from labelhub.qa.models import QualitySample, SampleKind
from labelhub.qa.quality import region_errors
from tests.helpers import make_user
from tests.labelhub.labeling.builders import HEIGHT, WIDTH, make_tasks, region

pytestmark = pytest.mark.django_db
GOLD = [region("g1", 0, 0, 20, 20), region("g2", 30, 0, 50, 20, label="dog"), region("g3", 0, 30, 20, 46)]


def make_gold(project, manager, n: int, *, start: int) -> list[Task]:
    tasks = make_tasks(project, n, start=start)
    for task in tasks:
        assignments.task_gold_set(task=task, manager=manager, is_gold=True, regions=GOLD)
    return tasks


def test_region_errors_crafted_cases():
    # One of each error: g1 drawn right, g2 drawn as a cat, g3 missed, g3's box shifted too far to match
    # is also an extra; plus a boundary error on a loose copy.
    submitted = [
        region("s1", 0, 0, 20, 20),
        region("s2", 30, 0, 50, 20, label="cat"),
        region("s4", 40, 30, 60, 46),
    ]
    out = region_errors(submitted, GOLD, height=HEIGHT, width=WIDTH, bound=0.9)
    assert out["errors"] == {"missing": 1, "extra": 1, "class": 1, "boundary": 0}
    assert (out["units"], out["correct"]) == (4, 1)
    assert out["missing"] == ["g3"] and out["extra"] == ["s4"]
    assert out["per_class"]["dog"] == {
        "units": 1,
        "correct": 0,
        "missing": 0,
        "extra": 0,
        "class": 1,
        "boundary": 0,
    }
    # 20x20 drawn as 20x23: IoU 400/460 = 0.87, matched, same class, below the 0.9 bound.
    loose = region_errors([region("s", 0, 0, 20, 23)], GOLD[:1], height=HEIGHT, width=WIDTH, bound=0.9)
    assert loose["errors"]["boundary"] == 1 and loose["matches"][0]["iou"] == pytest.approx(
        400 / 460, abs=1e-6
    )
    assert (
        region_errors([region("s", 0, 0, 20, 23)], GOLD[:1], height=HEIGHT, width=WIDTH, bound=0.8)["correct"]
        == 1
    )
    # Boundary F1 as the project's metric: a 1 px offset is within the 2 px tolerance.
    shifted = region_errors(
        [region("s", 6, 5, 26, 25)],
        [region("g", 5, 5, 25, 25)],
        height=HEIGHT,
        width=WIDTH,
        metric="boundary_f1",
        bound=0.95,
    )
    assert shifted["correct"] == 1 and shifted["matches"][0]["score"] == 1.0
    # The assignment, not greedy: A overlaps X best but X is B's only match.
    ref = [region("A", 0, 0, 20, 20), region("B", 20, 0, 30, 20)]
    sub = [region("X", 5, 0, 30, 20), region("Y", 0, 0, 14, 20)]
    pairs = {
        (m["reference"], m["submitted"])
        for m in region_errors(sub, ref, height=HEIGHT, width=WIDTH)["matches"]
    }
    assert pairs == {("A", "Y")}  # B-X is IoU 0.4, below the 0.5 match: X is extra, B missing
    assert region_errors([], [], height=HEIGHT, width=WIDTH)["units"] == 0


def _claim_submit(project, user, stage="annotate") -> Task:
    task = leases.task_claim_next(project=project, user=user, stage=stage)
    assert task is not None
    reviews.task_submit(task=task, user=user)
    return task


def test_rate_over_a_few_hundred_claims_never_twice(org_a, settings):
    """Rate 0.2 over 300 claims by three labelers (fixed secret key: the draws are fixed). Each claim is
    an independent Bernoulli(0.2): 60 expected, sd 6.9; the bounds are about 3.5 sd."""
    settings.SECRET_KEY = "honeypot-test-seed-1"
    project = org_a.project
    project.honeypot_rate = 0.2
    project.save()
    manager = org_a.users[Role.MANAGER]
    labelers = [org_a.users[Role.ANNOTATOR]] + [
        make_user(f"alpha-l{i}", org_a.organization, Role.ANNOTATOR) for i in range(2)
    ]
    make_tasks(project, 300)
    gold = {t.pk for t in make_gold(project, manager, 40, start=1000)}
    served: dict[int, list[int]] = {u.pk: [] for u in labelers}
    for i in range(300):
        user = labelers[i % 3]
        task = _claim_submit(project, user)
        if task.pk in gold:
            served[user.pk].append(task.pk)
    n = sum(len(v) for v in served.values())
    assert 36 <= n <= 84, n
    for got in served.values():
        assert len(got) == len(set(got))  # never twice to the same person
    # Honeypots never go on to review and are back in the pool at their pre-label.
    assert not Task.objects.filter(pk__in=gold).exclude(stage="annotate", status="open").exists()
    assert TaskReplica.objects.filter(task_id__in=gold, submitted_at__isnull=False).count() == n
    assert QualitySample.objects.filter(kind=SampleKind.GOLD).count() == n
    # Rebuilt from history, each pass is judged from what its labeler submitted (kept in its replica).
    fields = ("task_id", "user_id", "units", "correct", "errors")
    judged = sorted(QualitySample.objects.filter(kind=SampleKind.GOLD).values_list(*fields))
    from labelhub.qa.samples import samples_rebuild

    samples_rebuild(project=project)
    assert sorted(QualitySample.objects.filter(kind=SampleKind.GOLD).values_list(*fields)) == judged
    # With the rate at 0 every gold task is an ordinary one again (it flows through the pipeline).
    project.honeypot_rate = 0
    project.save()
    assert leases.task_claim_next(project=project, user=labelers[0], stage="annotate") is not None


def test_honeypot_queue_reads_its_partial_index(org_a):
    assert connection.vendor == "postgresql"
    project = org_a.project
    project.honeypot_rate = 0.5
    project.save()
    make_gold(project, org_a.users[Role.MANAGER], 2, start=0)
    from labelhub.labeling.replicas import honeypot_queue

    pool = honeypot_queue(project=project, stage="annotate", user=org_a.users[Role.ANNOTATOR])
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off; SET enable_sort = off")
    try:
        plan = pool.select_for_update(skip_locked=True, of=("self",))[:1].explain()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan; RESET enable_sort")
    top = plan.split("SubPlan")[0]
    assert "using task_gold_pool on labeling_task" in top, plan
    assert "Sort" not in top, plan


def _strip(body):
    """An API answer without what differs between any two tasks (ids, names, times, counts of work)."""
    if isinstance(body, dict):
        return {
            k: _strip(v)
            for k, v in body.items()
            if k
            not in {
                "id",
                "task",
                "image",
                "original_name",
                "file",
                "url",
                "sha256",
                "created_at",
                "updated_at",
                "claimed_at",
                "lease_expires_at",
                "last_heartbeat_at",
                "thumbnail",
                "work_seconds",
                "active_seconds",
                "data",
                "revision",
                "current_revision",
                "number",
            }
        }
    if isinstance(body, list):
        return [_strip(v) for v in body]
    return body


def _changes(before, after, path: str = "") -> dict:
    """The counts of a metrics answer that a submit changed, a missing count read as 0 (times, rates and
    means left out: they depend on what came before): {path: change}."""
    if isinstance(after, dict) or isinstance(before, dict):
        out: dict = {}
        for key in set(after or {}) | set(before or {}):
            if not any(word in key for word in ("seconds", "rate", "mean", "share", "per_hour")):
                out.update(_changes((before or {}).get(key), (after or {}).get(key), f"{path}.{key}"))
        return out
    if isinstance(after, int) or isinstance(before, int):
        change = (after or 0) - (before or 0)
        return {path: change} if change else {}
    return {path: (before, after)} if before != after else {}


def test_invisible_to_labelers_and_feedback_only_when_enabled(org_a):
    project = org_a.project
    project.honeypot_rate = 1.0  # every claim that would hand out new work hands out a honeypot
    project.save()
    manager = org_a.users[Role.MANAGER]
    client = org_a.clients[Role.ANNOTATOR]
    labeler = org_a.users[Role.ANNOTATOR]
    from tests.helpers import client_for

    watcher = client_for(make_user("alpha-l8", org_a.organization, Role.ANNOTATOR))
    nothing = watcher.get("/api/v1/tasks/999999999/")
    changed: dict[str, dict] = {}
    (ordinary,) = make_tasks(project, 1)
    (gold,) = make_gold(project, manager, 1, start=10)
    for task in (ordinary, gold):
        annotation_prelabel(task=task, regions=[region("p", 2, 2, 12, 12, source="ai")])
    answers = {}
    for name in ("honeypot", "ordinary"):
        claimed = client.post(f"/api/v1/projects/{project.id}/next-task/?stage=annotate")
        assert claimed.status_code == 200, claimed.content
        body = claimed.json()
        assert body["id"] == (gold.pk if name == "honeypot" else ordinary.pk)
        tid = body["id"]
        ann = client.get(f"/api/v1/tasks/{tid}/annotation/").json()
        put = client.put(
            f"/api/v1/tasks/{tid}/annotation/",
            {
                "revision": ann["revision"],
                "regions": [region("s1", 0, 0, 20, 20), region("x", 40, 30, 60, 46)],
            },
            format="json",
        )
        assert put.status_code == 200, put.content
        detail = client.get(f"/api/v1/tasks/{tid}/").json()
        timeline = client.get(f"/api/v1/tasks/{tid}/timeline/").json()
        comments = client.get(f"/api/v1/tasks/{tid}/comments/").json()
        mine = client.get(f"/api/v1/tasks/?project={project.id}&assignee={labeler.pk}").json()
        assert [row["id"] for row in mine["results"]] == [tid]
        metrics = client.get(f"/api/v1/projects/{project.id}/metrics/").json()
        # Another labeler: a honeypot someone holds is absent from lists and reads as no task at all.
        seen = {row["id"] for row in watcher.get(f"/api/v1/tasks/?project={project.id}").json()["results"]}
        theirs = watcher.get(f"/api/v1/tasks/{tid}/")
        if name == "honeypot":
            assert tid not in seen and theirs.status_code == 404 and theirs.json() == nothing.json()
            assert watcher.get(f"/api/v1/tasks/{tid}/timeline/").status_code == 404
            assert watcher.get(f"/api/v1/tasks/{tid}/comments/").status_code == 404
            assert watcher.post(f"/api/v1/tasks/{tid}/claim/").status_code == 404  # no way around the rate
        else:
            assert tid in seen and theirs.status_code == 200
        submitted = client.post(f"/api/v1/tasks/{tid}/submit/")
        assert submitted.status_code == 200, submitted.content
        feedback = client.get(f"/api/v1/tasks/{tid}/feedback/")
        assert feedback.status_code == 404  # immediate feedback is off
        after = client.get(f"/api/v1/projects/{project.id}/metrics/").json()
        changed[name] = _changes(metrics, after)
        answers[name] = [body, ann, put.json(), detail, timeline, comments, mine]
        text = json.dumps(answers[name]).lower()
        assert "gold" not in text and "honeypot" not in text
        if name == "honeypot":
            project.honeypot_rate = 0.0  # the next claim: the ordinary task
            project.save()
    for a, b in zip(answers["honeypot"], answers["ordinary"], strict=True):
        assert _strip(a) == _strip(b)
    # What the submit changed in the labeler's metrics is the same for both (times aside).
    assert changed["honeypot"] == changed["ordinary"] and changed["ordinary"], changed
    gold_page = client.get(f"/api/v1/tasks/{gold.pk}/gold/")
    assert gold_page.status_code == 403  # (the rate is 0 now: an ordinary task, gold for managers only)
    # Managers see every task, the honeypot included.
    listed = org_a.clients[Role.MANAGER].get(f"/api/v1/tasks/?project={project.id}").json()["results"]
    assert gold.pk in {row["id"] for row in listed}

    # With immediate feedback, the labeler who just submitted a honeypot reads their score and errors.
    project.immediate_feedback = True
    project.honeypot_rate = 1.0
    project.save()
    other = make_user("alpha-l9", org_a.organization, Role.ANNOTATOR)
    c2 = client_for(other)
    (more,) = make_tasks(project, 1, start=50)
    tid = c2.post(f"/api/v1/projects/{project.id}/next-task/?stage=annotate").json()["id"]
    assert tid == gold.pk
    ann = c2.get(f"/api/v1/tasks/{tid}/annotation/").json()
    assert [r["id"] for r in ann["regions"]] == ["p"]  # the pre-label, not the previous labeler's work
    c2.put(
        f"/api/v1/tasks/{tid}/annotation/",
        {"revision": ann["revision"], "regions": [region("s1", 0, 0, 20, 20)]},
        format="json",
    )
    assert c2.get(f"/api/v1/tasks/{tid}/feedback/").status_code == 404  # not before its submit
    assert c2.post(f"/api/v1/tasks/{tid}/submit/").status_code == 200
    fb = c2.get(f"/api/v1/tasks/{tid}/feedback/").json()
    assert fb["passed"] is False and fb["errors"] == {"missing": 2, "extra": 0, "class": 0, "boundary": 0}
    assert sorted(fb["missing"]) == ["g2", "g3"] and fb["correct"] == 1 and len(fb["expected"]) == 3
    assert c2.get(f"/api/v1/tasks/{more.pk}/feedback/").status_code == 404


def _metrics_after_submit(org_a, task: Task, user) -> dict:
    """The member's metrics answer right after submitting `task`, then everything rolled back."""
    client = org_a.clients[Role.ANNOTATOR]
    url = f"/api/v1/projects/{org_a.project.id}/metrics/"
    with transaction.atomic():
        Task.objects.filter(pk=task.pk).update(
            status="in_progress", assignee=user, lease_expires_at="2999-01-01T00:00:00Z"
        )
        task.refresh_from_db()
        annotation_write(
            task=task, author=user, base_revision=0, regions=[region("s", 0, 0, 9, 9)], writer=Writer.MEMBER
        )
        reviews.task_submit(task=task, user=user)
        body = client.get(url).json()
        transaction.set_rollback(True)
    return body


def test_metrics_answer_is_the_same_whether_the_task_was_gold(org_a):
    user = org_a.users[Role.ANNOTATOR]
    ordinary, gold = make_tasks(org_a.project, 2)
    assignments.task_gold_set(task=gold, manager=org_a.users[Role.MANAGER], is_gold=True, regions=GOLD)
    a = _metrics_after_submit(org_a, ordinary, user)
    b = _metrics_after_submit(org_a, gold, user)
    assert a["gold"] is None and a["segmentation"]["annotator_vs_gold"] is None
    for body in (a, b):
        for slot in body["time"].values():
            slot.pop("work_seconds_total"), slot.pop("work_seconds_mean")
            slot.pop("active_seconds_total"), slot.pop("active_seconds_mean")
        for slot in body["by_user"].values():
            slot.pop("work_seconds"), slot.pop("active_seconds")
    assert a == b
    # A manager sees the gold score; with immediate feedback the member sees their own.
    manager = org_a.clients[Role.MANAGER].get(f"/api/v1/projects/{org_a.project.id}/metrics/").json()
    assert manager["gold"] == {"scored": 0, "mean_score": None, "by_user": {}}
