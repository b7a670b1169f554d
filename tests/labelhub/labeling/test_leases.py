"""next-task against real PostgreSQL: 20 concurrent users never get the same task; expired leases return
tasks to the queue; nobody reviews their own work."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from labelhub.accounts.models import Role
from labelhub.labeling import leases, pipeline, reviews
from labelhub.labeling.models import EventKind, Task, TaskEvent, TaskStatus
from tests.helpers import make_user
from tests.labelhub.labeling.builders import make_tasks, next_task, region

USERS = 20


def claim_concurrently(project, users, stage: str) -> dict[int, list]:
    """Every user asks for their next task at the same moment (twice), each thread on its own connection."""
    barrier = threading.Barrier(len(users))
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(user):
        try:
            barrier.wait(timeout=30)
            got = []
            for _ in range(2):
                task = leases.task_claim_next(project=project, user=user, stage=stage)
                got.append(task.pk if task else None)
            results[user.pk] = got
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_users_never_get_the_same_task(org_a):
    assert connection.vendor == "postgresql"
    project = org_a.project
    tasks = make_tasks(project, 14)
    users = [make_user(f"worker-{i}", org_a.organization, Role.ANNOTATOR) for i in range(USERS)]

    results = claim_concurrently(project, users, "annotate")

    assert len(results) == USERS
    first = [got[0] for got in results.values()]
    handed_out = [t for t in first if t is not None]
    assert len(handed_out) == len(set(handed_out)) == len(tasks)  # every task once, nobody twice
    assert first.count(None) == USERS - len(tasks)
    # Asking again returns the task one already holds, never a second one.
    assert all(got[0] == got[1] for got in results.values())
    holders = dict(Task.objects.filter(project=project).values_list("pk", "assignee_id"))
    for user_id, got in results.items():
        if got[0] is not None:
            assert holders[got[0]] == user_id
    assert Task.objects.filter(project=project, status=TaskStatus.IN_PROGRESS).count() == len(tasks)
    assert TaskEvent.objects.filter(kind=EventKind.CLAIMED).count() == len(tasks)


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_on_a_partly_own_queue(org_a):
    """Reviewers race for review tasks; those who annotated a task never get it."""
    project = org_a.project
    tasks = make_tasks(project, 10)
    reviewers = [make_user(f"rev-{i}", org_a.organization, Role.REVIEWER) for i in range(USERS)]
    # Reviewers 0..9 each authored task i (e.g. as an earlier fixer); the tasks wait in review.
    for i, task in enumerate(tasks):
        from labelhub.labeling.annotations import Writer, annotation_write

        annotation_write(
            task=task,
            author=reviewers[i],
            base_revision=0,
            regions=[region("r", 1, 1, 9, 9)],
            writer=Writer.IMPORT,
        )
    Task.objects.filter(project=project).update(stage="review")

    results = claim_concurrently(project, reviewers, "review")

    handed = {uid: got[0] for uid, got in results.items() if got[0] is not None}
    assert len(handed) == len(set(handed.values())) == len(tasks)
    own = {reviewers[i].pk: t.pk for i, t in enumerate(tasks)}
    assert all(own.get(uid) != task_id for uid, task_id in handed.items())


@pytest.mark.django_db
def test_expired_lease_returns_the_task_to_the_queue(org_a):
    project = org_a.project
    (task,) = make_tasks(project, 1)
    alice = org_a.clients[Role.ANNOTATOR]
    bob_user = make_user("alpha-bob", org_a.organization, Role.ANNOTATOR)
    from tests.helpers import client_for

    bob = client_for(bob_user)
    assert next_task(alice, project.id, "annotate").json()["id"] == task.id
    assert next_task(bob, project.id, "annotate").status_code == 204  # held by Alice
    heartbeat = alice.post(f"/api/v1/tasks/{task.id}/heartbeat/")
    assert heartbeat.status_code == 200

    # The lease runs out: next-task hands the task to Bob, and Alice's writes are refused.
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert next_task(bob, project.id, "annotate").json()["id"] == task.id
    refused = alice.put(f"/api/v1/tasks/{task.id}/annotation/", {"revision": 0, "regions": []}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_lease_holder"
    kinds = list(TaskEvent.objects.filter(task=task).values_list("kind", "actor__username"))
    assert kinds == [("claimed", "alpha-annotator"), ("lease_expired", None), ("claimed", "alpha-bob")]

    # The periodic sweep does the same without anyone asking.
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    from labelhub.labeling.tasks import leases_expire

    assert leases_expire.delay().get() == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN and task.assignee is None and task.lease_expires_at is None
    assert leases.leases_expire() == 0
    assert next_task(alice, project.id, "annotate").json()["id"] == task.id


@pytest.mark.django_db
def test_heartbeats_extend_the_lease_and_count_active_time(org_a, settings, monkeypatch):
    settings.LABELHUB_LEASE_SECONDS = 600
    settings.LABELHUB_ACTIVE_GAP_SECONDS = 120
    (task,) = make_tasks(org_a.project, 1)
    user = org_a.users[Role.ANNOTATOR]
    leases.task_claim_next(project=org_a.project, user=user, stage="annotate")
    # The service's clock is held still, so the counted time is exact whatever the machine's speed.
    now = timezone.now()
    monkeypatch.setattr(leases.timezone, "now", lambda: now)
    # 60 s since the last heartbeat counts; then a 300 s silence (away) does not.
    Task.objects.filter(pk=task.pk).update(last_heartbeat_at=now - timedelta(seconds=60))
    leases.task_heartbeat(task=task, user=user)
    task.refresh_from_db()
    assert task.active_seconds == 60
    assert task.lease_expires_at == now + timedelta(seconds=600)
    Task.objects.filter(pk=task.pk).update(last_heartbeat_at=now - timedelta(seconds=300))
    leases.task_heartbeat(task=task, user=user)
    task.refresh_from_db()
    assert task.active_seconds == 60


@pytest.mark.django_db
def test_sampling_is_deterministic_and_skips_unsampled_stages(org_a):
    project = org_a.project
    project.pipeline = [
        {"name": "annotate", "role": "annotator", "sample_rate": 1.0, "reject_to": None},
        {"name": "review", "role": "reviewer", "sample_rate": 1.0, "reject_to": "annotate"},
        {"name": "final-qa", "role": "reviewer", "sample_rate": 0.2, "reject_to": "review"},
    ]
    project.save()
    tasks = make_tasks(project, 200)
    picked = [
        pipeline.stage_sampled(project_id=project.pk, task_id=t.pk, stage="final-qa", rate=0.2) for t in tasks
    ]
    assert picked == [
        pipeline.stage_sampled(project_id=project.pk, task_id=t.pk, stage="final-qa", rate=0.2) for t in tasks
    ]
    assert 20 <= sum(picked) <= 60  # about 20% of 200
    sampled = next(t for t, p in zip(tasks, picked, strict=True) if p)
    unsampled = next(t for t, p in zip(tasks, picked, strict=True) if not p)
    annotator, reviewer = org_a.users[Role.ANNOTATOR], org_a.users[Role.REVIEWER]
    for task in (sampled, unsampled):
        Task.objects.filter(pk=task.pk).update(
            status="in_progress", assignee=annotator, lease_expires_at=timezone.now() + timedelta(minutes=5)
        )
        reviews.task_submit(task=task, user=annotator)
        Task.objects.filter(pk=task.pk).update(
            status="in_progress", assignee=reviewer, lease_expires_at=timezone.now() + timedelta(minutes=5)
        )
        reviews.task_accept(task=task, user=reviewer)
    sampled.refresh_from_db()
    unsampled.refresh_from_db()
    assert (sampled.stage, sampled.status) == ("final-qa", "open")
    assert (unsampled.stage, unsampled.status) == ("done", "done")
    skip = TaskEvent.objects.get(task=unsampled, kind=EventKind.SKIPPED_BY_SAMPLING)
    assert (skip.from_stage, skip.to_stage) == ("final-qa", "done")
    # A final-QA rejection goes one stage back (reject_to "review"), reserved for the reviewer who passed it.
    final_reviewer = make_user("alpha-final", org_a.organization, Role.REVIEWER)
    assert leases.task_claim_next(project=project, user=final_reviewer, stage="final-qa").pk == sampled.pk
    reviews.task_reject(task=sampled, user=final_reviewer, comments=[{"text": "check the edges"}])
    sampled.refresh_from_db()
    assert (sampled.stage, sampled.status, sampled.assignee_id) == ("review", "open", reviewer.pk)
