"""One task through annotate, review, reject, fix, review, final QA and accepted; its timeline; and every
transition that is not allowed answers 409 or 403 and leaves the task unchanged."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.labeling.models import Comment, Task, TaskEvent, TaskStatus
from tests.helpers import make_user
from tests.labelhub.labeling.builders import member, next_task, region


def snapshot(task: Task) -> tuple:
    task = Task.objects.select_related("annotation").get(pk=task.pk)
    return (
        task.stage,
        task.status,
        task.assignee_id,
        task.lease_expires_at,
        task.annotation.current_revision,
        TaskEvent.objects.filter(task=task).count(),
        Comment.objects.filter(task=task).count(),
    )


@pytest.mark.django_db
def test_task_walks_annotate_review_reject_fix_review_final_qa_accepted(org_a, one_task):
    project, task = org_a.project, one_task
    annotator = org_a.clients[Role.ANNOTATOR]
    reviewer = org_a.clients[Role.REVIEWER]
    _, qa = member(org_a, "alpha-qa", Role.REVIEWER)
    base = f"/api/v1/tasks/{task.id}"

    # annotate
    claimed = next_task(annotator, project.id, "annotate")
    assert claimed.status_code == 200 and claimed.json()["status"] == "in_progress"
    assert claimed.json()["assignee"] == org_a.users[Role.ANNOTATOR].id
    saved = annotator.put(
        f"{base}/annotation/",
        {"revision": 0, "regions": [region("a", 1, 1, 10, 10), region("b", 20, 20, 30, 30, label="dog")]},
        format="json",
    )
    assert saved.status_code == 200
    assert annotator.post(f"{base}/heartbeat/").status_code == 200
    submitted = annotator.post(f"{base}/submit/")
    assert submitted.status_code == 200 and submitted.json()["stage"] == "review"
    assert submitted.json()["status"] == "open" and submitted.json()["assignee"] is None

    # review: reject with comments pinned to a region and to a point
    assert next_task(reviewer, project.id, "review").json()["id"] == task.id
    rejected = reviewer.post(
        f"{base}/reject/",
        {
            "comments": [
                {"text": "dog is too small", "region_id": "b"},
                {"text": "missed a cat here", "x": 50, "y": 40},
            ]
        },
        format="json",
    )
    assert rejected.status_code == 200, rejected.json()
    assert rejected.json()["stage"] == "annotate" and rejected.json()["status"] == "open"
    # Back to its annotator, reserved for them: another annotator does not get it.
    assert rejected.json()["assignee"] == org_a.users[Role.ANNOTATOR].id
    _, other_annotator = member(org_a, "alpha-annotator-2", Role.ANNOTATOR)
    assert next_task(other_annotator, project.id, "annotate").status_code == 204

    # fix: the annotator gets it back with the comments, fixes, resolves them and submits again
    assert next_task(annotator, project.id, "annotate").json()["id"] == task.id
    comments = annotator.get(f"{base}/comments/").json()["results"]
    assert [(c["text"], c["region_id"], c["x"], c["y"]) for c in comments] == [
        ("dog is too small", "b", None, None),
        ("missed a cat here", "", 50.0, 40.0),
    ]
    fixed = annotator.put(
        f"{base}/annotation/",
        {
            "revision": 1,
            "regions": [
                region("a", 1, 1, 10, 10),
                region("b", 20, 20, 35, 35, label="dog"),
                region("c", 45, 30, 55, 45),
            ],
        },
        format="json",
    )
    assert fixed.status_code == 200 and fixed.json()["revision"] == 2
    for c in comments:
        assert (
            annotator.patch(f"/api/v1/comments/{c['id']}/", {"resolved": True}, format="json").status_code
            == 200
        )
    assert annotator.post(f"{base}/submit/").json()["stage"] == "review"

    # review again: the reviewer fixes a detail and accepts; the revision is credited to them
    assert next_task(reviewer, project.id, "review").json()["id"] == task.id
    fix_accepted = reviewer.post(
        f"{base}/fix-accept/",
        {
            "revision": 2,
            "regions": [
                region("a", 1, 1, 12, 10),
                region("b", 20, 20, 35, 35, label="dog"),
                region("c", 45, 30, 55, 45),
            ],
        },
        format="json",
    )
    assert fix_accepted.status_code == 200, fix_accepted.json()
    assert fix_accepted.json()["stage"] == "final-qa" and fix_accepted.json()["revision"] == 3

    # final QA: the reviewer who edited it may not check their own work; another reviewer accepts
    assert next_task(reviewer, project.id, "final-qa").status_code == 204
    assert next_task(qa, project.id, "final-qa").json()["id"] == task.id
    accepted = qa.post(f"{base}/accept/")
    assert accepted.status_code == 200
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE and task.stage == "done" and task.assignee is None

    timeline = qa.get(f"{base}/timeline/").json()
    assert timeline["task"]["status"] == "done"
    assert [(r["number"], r["author"], r["stage"]) for r in timeline["revisions"]] == [
        (1, "alpha-annotator", "annotate"),
        (2, "alpha-annotator", "annotate"),
        (3, "alpha-reviewer", "review"),
    ]
    assert timeline["revisions"][1]["summary"] == {"added": ["c"], "removed": [], "changed": ["b"]}
    assert timeline["revisions"][2]["summary"] == {"added": [], "removed": [], "changed": ["a"]}
    events = [
        (e["kind"], e["from_stage"], e["to_stage"], e["actor"], e["revision"]) for e in timeline["events"]
    ]
    assert events == [
        ("claimed", "annotate", "annotate", "alpha-annotator", 0),
        ("submitted", "annotate", "review", "alpha-annotator", 1),
        ("claimed", "review", "review", "alpha-reviewer", 1),
        ("rejected", "review", "annotate", "alpha-reviewer", 1),
        ("claimed", "annotate", "annotate", "alpha-annotator", 1),
        ("submitted", "annotate", "review", "alpha-annotator", 2),
        ("claimed", "review", "review", "alpha-reviewer", 2),
        ("fix_accepted", "review", "final-qa", "alpha-reviewer", 3),
        ("claimed", "final-qa", "final-qa", "alpha-qa", 3),
        ("accepted", "final-qa", "done", "alpha-qa", 3),
    ]
    assert all(e["created_at"] for e in timeline["events"])
    assert timeline["events"][4]["data"]["reserved"] is True
    assert all(
        set(e["data"]) >= {"work_seconds", "active_seconds"}
        for e in timeline["events"]
        if e["kind"] != "claimed"
    )
    assert [(c["text"], c["resolved"], c["author"]) for c in timeline["comments"]] == [
        ("dog is too small", True, "alpha-reviewer"),
        ("missed a cat here", True, "alpha-reviewer"),
    ]
    # Every past revision stays readable.
    assert [r["id"] for r in qa.get(f"{base}/annotation/?revision=1").json()["regions"]] == ["a", "b"]
    # Accepted means final: no more writes, even by a manager.
    assert (
        org_a.clients[Role.MANAGER]
        .put(f"{base}/annotation/", {"revision": 3, "regions": []}, format="json")
        .status_code
        == 409
    )


@pytest.mark.django_db
def test_transitions_that_are_not_allowed_leave_the_task_unchanged(org_a, org_b, one_task):
    project, task = org_a.project, one_task
    annotator, reviewer = org_a.clients[Role.ANNOTATOR], org_a.clients[Role.REVIEWER]
    base = f"/api/v1/tasks/{task.id}"

    def refused(response, status: int, code: str):
        assert response.status_code == status, response.json()
        error = response.json()["error"]
        assert error["code"] == code and error["message"], error

    before = snapshot(task)
    refused(annotator.post(f"{base}/submit/"), 409, "not_lease_holder")  # nobody claimed it
    refused(reviewer.post(f"{base}/accept/"), 409, "not_in_review")  # it is not in review
    refused(
        reviewer.post(f"{base}/reject/", {"comments": [{"text": "no"}]}, format="json"), 409, "not_in_review"
    )
    refused(annotator.post(f"{base}/heartbeat/"), 409, "not_lease_holder")
    refused(next_task(reviewer, project.id, "annotate"), 403, "role_forbidden")  # wrong role for the stage
    refused(next_task(annotator, project.id, "nope"), 400, "invalid")
    # another organization's members cannot act on it at all
    outsider = org_b.clients[Role.OWNER]
    for path in ("submit", "accept", "heartbeat", "release"):
        refused(outsider.post(f"{base}/{path}/"), 404, "not_found")
    refused(outsider.post(f"/api/v1/projects/{project.id}/next-task/?stage=annotate"), 404, "not_found")
    assert snapshot(task) == before

    # Submitting on an expired lease is refused and the task is unchanged.
    assert next_task(annotator, project.id, "annotate").status_code == 200
    Task.objects.filter(pk=task.pk).update(lease_expires_at="2000-01-01T00:00:00Z")
    before = snapshot(task)
    refused(annotator.post(f"{base}/submit/"), 409, "lease_expired")
    refused(
        annotator.put(f"{base}/annotation/", {"revision": 0, "regions": []}, format="json"),
        409,
        "lease_expired",
    )
    refused(annotator.post(f"{base}/heartbeat/"), 409, "lease_expired")
    assert snapshot(task) == before

    # Reviewing one's own work: a manager who annotated the task cannot review it.
    manager = org_a.clients[Role.MANAGER]
    assert next_task(manager, project.id, "annotate").json()["id"] == task.id  # reclaims the expired lease
    assert (
        manager.put(
            f"{base}/annotation/", {"revision": 0, "regions": [region("a", 1, 1, 9, 9)]}, format="json"
        ).status_code
        == 200
    )
    assert manager.post(f"{base}/submit/").json()["stage"] == "review"
    assert next_task(manager, project.id, "review").status_code == 204  # not offered
    before = snapshot(task)
    refused(
        manager.post(f"{base}/reassign/", {"assignee": org_a.users[Role.MANAGER].id}, format="json"),
        400,
        "self_review",
    )
    assert snapshot(task) == before
    # Forced onto them anyway (e.g. by a crafted lease), accepting is still refused.
    Task.objects.filter(pk=task.pk).update(
        status="in_progress", assignee=org_a.users[Role.MANAGER], lease_expires_at="2999-01-01T00:00:00Z"
    )
    before = snapshot(task)
    refused(manager.post(f"{base}/accept/"), 403, "self_review")
    refused(
        manager.post(f"{base}/fix-accept/", {"revision": 1, "regions": []}, format="json"), 403, "self_review"
    )
    assert snapshot(task) == before
    # A rejection needs a comment; a bad comment names its field; nothing is saved either way.
    Task.objects.filter(pk=task.pk).update(assignee=org_a.users[Role.REVIEWER])
    before = snapshot(task)
    refused(reviewer.post(f"{base}/reject/", {"comments": []}, format="json"), 400, "invalid")
    bad = reviewer.post(
        f"{base}/reject/", {"comments": [{"text": "ok"}, {"text": "x", "region_id": "ghost"}]}, format="json"
    )
    refused(bad, 400, "invalid")
    assert bad.json()["error"]["field"] == "comments[1].region_id"
    assert snapshot(task) == before


@pytest.mark.django_db
def test_manager_reassigns_and_reserved_task_goes_to_the_named_member(org_a):
    from tests.labelhub.labeling.builders import make_tasks

    first, second = make_tasks(org_a.project, 2)
    annotator = org_a.clients[Role.ANNOTATOR]
    manager = org_a.clients[Role.MANAGER]
    carol, carol_client = member(org_a, "alpha-carol", Role.ANNOTATOR)
    assert next_task(annotator, org_a.project.id, "annotate").json()["id"] == first.id
    # The manager moves the first task (held by the annotator) to Carol.
    moved = manager.post(f"/api/v1/tasks/{first.id}/reassign/", {"assignee": carol.id}, format="json")
    assert (
        moved.status_code == 200 and moved.json()["assignee"] == carol.id and moved.json()["status"] == "open"
    )
    assert annotator.post(f"/api/v1/tasks/{first.id}/submit/").json()["error"]["code"] == "not_lease_holder"
    assert next_task(carol_client, org_a.project.id, "annotate").json()["id"] == first.id
    assert next_task(annotator, org_a.project.id, "annotate").json()["id"] == second.id
    # Workers may not reassign; assignees must be able to work the stage.
    assert (
        annotator.post(f"/api/v1/tasks/{second.id}/reassign/", {"assignee": None}, format="json").status_code
        == 403
    )
    outsider = make_user("stranger")
    wrong = manager.post(f"/api/v1/tasks/{second.id}/reassign/", {"assignee": outsider.id}, format="json")
    assert wrong.status_code == 400 and wrong.json()["error"]["field"] == "assignee"
    reviewer_id = org_a.users[Role.REVIEWER].id
    assert (
        manager.post(
            f"/api/v1/tasks/{second.id}/reassign/", {"assignee": reviewer_id}, format="json"
        ).status_code
        == 400
    )
    kinds = list(TaskEvent.objects.filter(task=first).values_list("kind", flat=True))
    assert kinds == ["claimed", "reassigned", "claimed"]
    event = TaskEvent.objects.get(task=first, kind="reassigned")
    assert event.data["from"] == "alpha-annotator" and event.data["to"] == "alpha-carol"
