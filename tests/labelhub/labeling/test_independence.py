"""Review stages stay independent (one reviewer never checks a task twice), gold tasks read like any other
to annotators and reviewers, one user's concurrent next-task calls hold one lease, and the timeline is in
commit order."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from labelhub.accounts.models import Role
from labelhub.labeling import leases
from labelhub.labeling.models import Task, TaskStatus
from tests.labelhub.labeling.builders import make_tasks, member, next_task, region

VOLATILE = {
    "id",
    "task",
    "image",
    "created_at",
    "updated_at",
    "lease_expires_at",
    "claimed_at",
    "last_heartbeat_at",
    "work_seconds",
    "active_seconds",
}


def normalized(value):
    """The JSON with ids and times blanked: what is left must not tell one task from another."""
    if isinstance(value, dict):
        return {k: None if k in VOLATILE else normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v) for v in value]
    return value


def annotate_and_submit(client, project_id: int) -> int:
    claimed = next_task(client, project_id, "annotate")
    assert claimed.status_code == 200
    task_id = claimed.json()["id"]
    saved = client.put(
        f"/api/v1/tasks/{task_id}/annotation/",
        {"revision": 0, "regions": [region("a", 1, 1, 10, 10)]},
        format="json",
    )
    assert saved.status_code == 200
    assert client.post(f"/api/v1/tasks/{task_id}/submit/").status_code == 200
    return task_id


@pytest.mark.django_db
def test_reviewer_of_review_is_refused_in_final_qa_and_the_queue_skips_it(org_a):
    project = org_a.project
    assert project.independent_reviews  # on by default
    (task,) = make_tasks(project, 1)
    reviewer = org_a.clients[Role.REVIEWER]
    _, qa = member(org_a, "alpha-qa", Role.REVIEWER)
    annotate_and_submit(org_a.clients[Role.ANNOTATOR], project.id)

    assert next_task(reviewer, project.id, "review").json()["id"] == task.id
    accepted = reviewer.post(f"/api/v1/tasks/{task.id}/accept/")
    assert accepted.status_code == 200 and accepted.json()["stage"] == "final-qa"

    # The queue skips it for the reviewer of the earlier stage ...
    assert next_task(reviewer, project.id, "final-qa").status_code == 204
    # ... and acting on it is refused with a clear error, whatever the lease.
    refused = reviewer.post(f"/api/v1/tasks/{task.id}/accept/")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "review_not_independent"
    assert "earlier stage" in refused.json()["error"]["message"]
    rejected = reviewer.post(
        f"/api/v1/tasks/{task.id}/reject/", {"comments": [{"text": "again"}]}, format="json"
    )
    assert rejected.status_code == 403 and rejected.json()["error"]["code"] == "review_not_independent"
    assert Task.objects.get(pk=task.pk).stage == "final-qa"

    # Another reviewer takes and accepts it.
    assert next_task(qa, project.id, "final-qa").json()["id"] == task.id
    done = qa.post(f"/api/v1/tasks/{task.id}/accept/")
    assert done.status_code == 200 and done.json()["status"] == TaskStatus.DONE


@pytest.mark.django_db
def test_independence_is_a_pipeline_option(org_a):
    project = org_a.project
    owner = org_a.clients[Role.OWNER]
    patched = owner.patch(f"/api/v1/projects/{project.id}/", {"independent_reviews": False}, format="json")
    assert patched.status_code == 200 and patched.json()["independent_reviews"] is False
    (task,) = make_tasks(project, 1)
    reviewer = org_a.clients[Role.REVIEWER]
    annotate_and_submit(org_a.clients[Role.ANNOTATOR], project.id)
    assert next_task(reviewer, project.id, "review").json()["id"] == task.id
    assert reviewer.post(f"/api/v1/tasks/{task.id}/accept/").status_code == 200
    assert next_task(reviewer, project.id, "final-qa").json()["id"] == task.id
    assert reviewer.post(f"/api/v1/tasks/{task.id}/accept/").status_code == 200


@pytest.mark.django_db
def test_an_annotator_cannot_tell_a_gold_task_from_any_other(org_a):
    project = org_a.project
    gold, plain = make_tasks(project, 2)
    manager = org_a.clients[Role.OWNER]
    marked = manager.put(
        f"/api/v1/tasks/{gold.id}/gold/",
        {"is_gold": True, "regions": [region("g", 2, 2, 12, 12)]},
        format="json",
    )
    assert marked.status_code == 200 and marked.json()["is_gold"] is True
    annotator = org_a.clients[Role.ANNOTATOR]
    reviewer = org_a.clients[Role.REVIEWER]

    def views(client, task_id: int) -> dict:
        listed = client.get(f"/api/v1/tasks/?project={project.id}").json()["results"]
        return {
            "detail": client.get(f"/api/v1/tasks/{task_id}/").json(),
            "listed": next(t for t in listed if t["id"] == task_id),
            "timeline": client.get(f"/api/v1/tasks/{task_id}/timeline/").json(),
            "gold": client.get(f"/api/v1/tasks/{task_id}/gold/").json(),
        }

    for client in (annotator, reviewer):  # before anyone worked them
        assert normalized(views(client, gold.id)) == normalized(views(client, plain.id))

    # Worked one after the other: next-task, save, submit, and every read in between look the same.
    answers = []
    for _ in range(2):
        claimed = next_task(annotator, project.id, "annotate").json()
        task_id = claimed["id"]
        saved = annotator.put(
            f"/api/v1/tasks/{task_id}/annotation/",
            {"revision": 0, "regions": [region("a", 1, 1, 10, 10)]},
            format="json",
        ).json()
        submitted = annotator.post(f"/api/v1/tasks/{task_id}/submit/").json()
        answers.append(
            (task_id, {"next": claimed, "saved": saved, "submitted": submitted, **views(annotator, task_id)})
        )
    assert {answers[0][0], answers[1][0]} == {gold.id, plain.id}
    assert normalized(answers[0][1]) == normalized(answers[1][1])
    assert normalized(views(reviewer, gold.id)) == normalized(views(reviewer, plain.id))
    # The manager still sees which one is gold.
    kinds = [e["kind"] for e in manager.get(f"/api/v1/tasks/{gold.id}/timeline/").json()["events"]]
    assert "gold_marked" in kinds


@pytest.mark.django_db(transaction=True)
def test_concurrent_next_task_calls_by_one_user_return_the_same_task(org_a):
    assert connection.vendor == "postgresql"
    project = org_a.project
    make_tasks(project, 6)
    user = org_a.users[Role.ANNOTATOR]
    calls = 6
    barrier = threading.Barrier(calls)
    got: list = []
    errors: list[BaseException] = []

    def work():
        try:
            barrier.wait(timeout=30)
            task = leases.task_claim_next(project=project, user=user, stage="annotate")
            got.append(task.pk if task else None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(got) == calls and len(set(got)) == 1 and got[0] is not None
    assert Task.objects.filter(project=project, status=TaskStatus.IN_PROGRESS).count() == 1


@pytest.mark.django_db
def test_timeline_is_in_commit_order(org_a):
    project = org_a.project
    (task,) = make_tasks(project, 1)
    annotate_and_submit(org_a.clients[Role.ANNOTATOR], project.id)
    reviewer = org_a.clients[Role.REVIEWER]
    assert next_task(reviewer, project.id, "review").json()["id"] == task.id
    events = reviewer.get(f"/api/v1/tasks/{task.id}/timeline/").json()["events"]
    assert [(e["kind"], e["to_stage"]) for e in events] == [
        ("claimed", "annotate"),
        ("submitted", "review"),
        ("claimed", "review"),
    ]
    times = [e["created_at"] for e in events]
    assert times == sorted(times) and len(set(times)) == len(times)  # database clock, never tied
