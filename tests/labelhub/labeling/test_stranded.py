"""Independence never strands work: with two reviewers, one rejecting and the other re-reviewing, every
task ends done; a task nobody of the stage's role may take is shown to managers and offered to them; a
reservation for an excluded reviewer is refused; a reviewer's edit in review is a fix in progress."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.labeling.models import Task, TaskStatus
from tests.labelhub.labeling.builders import make_tasks, member, next_task, region


def _put(client, task_id: int, revision: int, x: int):
    saved = client.put(
        f"/api/v1/tasks/{task_id}/annotation/",
        {"revision": revision, "regions": [region("a", x, 1, x + 8, 9)]},
        format="json",
    )
    assert saved.status_code == 200, saved.content
    return saved.json()["current_revision"]


def _annotate(client, project_id: int, expected: int) -> None:
    claimed = next_task(client, project_id, "annotate")
    assert claimed.status_code == 200 and claimed.json()["id"] == expected
    _put(client, expected, claimed.json()["revision"], 1 + claimed.json()["revision"])
    assert client.post(f"/api/v1/tasks/{expected}/submit/").status_code == 200


def _take(client, project_id: int, stage: str, expected: int | None) -> None:
    claimed = next_task(client, project_id, stage)
    if expected is None:
        assert claimed.status_code == 204, claimed.content
    else:
        assert claimed.status_code == 200 and claimed.json()["id"] == expected, claimed.content


def _reject(client, task_id: int) -> None:
    rejected = client.post(f"/api/v1/tasks/{task_id}/reject/", {"comments": [{"text": "fix"}]}, format="json")
    assert rejected.status_code == 200 and rejected.json()["stage"] == "annotate"


def _accept(client, task_id: int, stage: str) -> None:
    accepted = client.post(f"/api/v1/tasks/{task_id}/accept/")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["stage"] == stage


@pytest.mark.django_db
def test_two_reviewers_one_rejecting_the_other_re_reviewing_every_task_ends_done(org_a):
    project = org_a.project
    assert project.independent_reviews
    t1, t2, t3 = make_tasks(project, 3)
    annotator = org_a.clients[Role.ANNOTATOR]
    a = org_a.clients[Role.REVIEWER]
    b_user, b = member(org_a, "alpha-rev-b", Role.REVIEWER)
    a_user = org_a.users[Role.REVIEWER]
    manager = org_a.clients[Role.MANAGER]
    for task in (t1, t2, t3):
        _annotate(annotator, project.id, task.id)

    # review: A rejects t1, B accepts t2, A edits t3 (a PUT in review) and accepts it: a fix in progress.
    _take(a, project.id, "review", t1.id)
    _reject(a, t1.id)
    _take(b, project.id, "review", t2.id)
    _accept(b, t2.id, "final-qa")
    _take(a, project.id, "review", t3.id)
    _put(a, t3.id, 1, 30)
    _accept(a, t3.id, "final-qa")
    # The annotator fixes t1 (reserved for them); B re-reviews and accepts it.
    _annotate(annotator, project.id, t1.id)
    _take(b, project.id, "review", t1.id)
    _accept(b, t1.id, "final-qa")

    # final-qa: B passed t1 on, so A (whose rejection checked an older version) takes it; B passed t2,
    # so A again; A passed (and edited) t3, so B. Nothing is stranded.
    listed = manager.get(f"/api/v1/tasks/?project={project.id}&stranded=true").json()
    assert listed["count"] == 0
    _take(a, project.id, "final-qa", t1.id)
    _accept(a, t1.id, "done")
    _take(a, project.id, "final-qa", t2.id)
    _accept(a, t2.id, "done")
    _take(a, project.id, "final-qa", None)
    _take(b, project.id, "final-qa", t3.id)
    # final-qa's B rejects t3: the annotator fixes it and B passes it in review this time.
    _reject(b, t3.id)
    _annotate(annotator, project.id, t3.id)
    _take(a, project.id, "review", t3.id)  # A is first in line in review: A may, A edited there
    assert a.post(f"/api/v1/tasks/{t3.id}/release/").status_code == 200
    _take(b, project.id, "review", t3.id)
    _accept(b, t3.id, "final-qa")

    # Now B passed the current version in review and A's saved regions (from review) are in it: no
    # reviewer may check t3 in final-qa. It is stranded, and says so to the manager.
    _take(a, project.id, "final-qa", None)
    _take(b, project.id, "final-qa", None)
    detail = manager.get(f"/api/v1/tasks/{t3.id}/").json()
    assert detail["stranded"] is True and detail["status"] == TaskStatus.OPEN
    listed = manager.get(f"/api/v1/tasks/?project={project.id}&stranded=true").json()
    assert [t["id"] for t in listed["results"]] == [t3.id]
    assert manager.get(f"/api/v1/tasks/?project={project.id}&stranded=false").json()["count"] == 2
    # The list writes its rows from plain values: each is exactly the task's own representation.
    for row in manager.get(f"/api/v1/tasks/?project={project.id}").json()["results"]:
        assert row == manager.get(f"/api/v1/tasks/{row['id']}/").json()
    metrics = manager.get(f"/api/v1/projects/{project.id}/metrics/").json()
    assert metrics["stranded"] == {"review": 0, "final-qa": 1}

    # Reserving it for either reviewer is refused, naming the field; nothing changes.
    for user, code in ((a_user, "self_review"), (b_user, "review_not_independent")):
        refused = manager.post(f"/api/v1/tasks/{t3.id}/reassign/", {"assignee": user.id}, format="json")
        assert refused.status_code == 400, refused.content
        assert refused.json()["error"]["field"] == "assignee"
        assert refused.json()["error"]["code"] == code
    assert Task.objects.get(pk=t3.pk).assignee_id is None

    # A manager is offered it (before any other open task of the stage) and finishes it.
    extra = make_tasks(project, 1, start=10)[0]
    Task.objects.filter(pk=extra.pk).update(stage="final-qa")
    _take(manager, project.id, "final-qa", t3.id)
    _accept(manager, t3.id, "done")
    assert manager.get(f"/api/v1/projects/{project.id}/metrics/").json()["stranded"]["final-qa"] == 0
    assert set(Task.objects.filter(pk__in=[t1.pk, t2.pk, t3.pk]).values_list("status", flat=True)) == {
        TaskStatus.DONE
    }


@pytest.mark.django_db
def test_a_reviewer_who_edits_in_review_may_still_accept_or_fix_accept(org_a):
    project = org_a.project
    t1, t2 = make_tasks(project, 2)
    annotator = org_a.clients[Role.ANNOTATOR]
    reviewer = org_a.clients[Role.REVIEWER]
    for task in (t1, t2):
        _annotate(annotator, project.id, task.id)
    _take(reviewer, project.id, "review", t1.id)
    revision = _put(reviewer, t1.id, 1, 20)
    _accept(reviewer, t1.id, "final-qa")
    _take(reviewer, project.id, "review", t2.id)
    revision = _put(reviewer, t2.id, 1, 20)
    fixed = reviewer.post(
        f"/api/v1/tasks/{t2.id}/fix-accept/",
        {"revision": revision, "regions": [region("a", 3, 3, 9, 9)]},
        format="json",
    )
    assert fixed.status_code == 200 and fixed.json()["stage"] == "final-qa"
