"""The manager's task list (filters, sort, pages, nothing of another organization) and claiming a given
task (a deep link opens exactly that task, or says why it cannot be taken)."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.labeling.models import Comment, EventKind, Task, TaskEvent
from labelhub.projects.models import ProjectMember
from tests.labelhub.labeling.builders import make_tasks, member, next_task, region


def listed(client, project_id: int, **params) -> dict:
    got = client.get(f"/api/v1/projects/{project_id}/tasks/", params)
    assert got.status_code == 200, got.content
    return got.json()


def ids(page: dict) -> list[int]:
    return [row["id"] for row in page["results"]]


@pytest.mark.django_db
def test_filters_sort_and_pages_of_the_task_list(org_a):
    project = org_a.project
    manager = org_a.clients[Role.MANAGER]
    annotator = org_a.users[Role.ANNOTATOR]
    tasks = make_tasks(project, 5)
    claimed = next_task(org_a.clients[Role.ANNOTATOR], project.id, "annotate").json()["id"]
    assert claimed == tasks[0].id
    gold = manager.put(
        f"/api/v1/tasks/{tasks[1].id}/gold/",
        {"is_gold": True, "regions": [region("g", 1, 1, 9, 9)]},
        format="json",
    )
    assert gold.status_code == 200
    Comment.objects.create(task=tasks[2], author=org_a.users[Role.REVIEWER], text="open")
    Comment.objects.create(task=tasks[3], author=org_a.users[Role.REVIEWER], text="done", resolved=True)

    every = listed(manager, project.id)
    assert ids(every) == [t.id for t in tasks]
    assert every["count"] == 5 and every["count_exact"] and not every["has_next"]
    row = every["results"][2]
    assert (
        row["open_comments"] == 1 and row["thumbnail_url"] == f"/api/v1/images/{tasks[2].image_id}/thumbnail/"
    )
    assert ids(listed(manager, project.id, status="in_progress")) == [claimed]
    assert ids(listed(manager, project.id, assignee=annotator.id)) == [claimed]
    assert ids(listed(manager, project.id, assignee="none")) == [t.id for t in tasks[1:]]
    assert ids(listed(manager, project.id, gold="true")) == [tasks[1].id]
    assert ids(listed(manager, project.id, open_comments="true")) == [tasks[2].id]
    assert len(ids(listed(manager, project.id, open_comments="false"))) == 4
    assert ids(listed(manager, project.id, stage="review")) == []
    assert ids(listed(manager, project.id, sort="-id")) == [t.id for t in reversed(tasks)]
    first = listed(manager, project.id, page_size=2)
    second = listed(manager, project.id, page_size=2, page=2)
    assert ids(first) + ids(second) == [t.id for t in tasks[:4]] and first["has_next"]

    bad = manager.get(f"/api/v1/projects/{project.id}/tasks/", {"stage": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "stage"
    bad = manager.get(f"/api/v1/projects/{project.id}/tasks/", {"gold": "maybe"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "gold"
    # Annotators do not manage: the list (with its gold column) is for managers and owners.
    refused = org_a.clients[Role.ANNOTATOR].get(f"/api/v1/projects/{project.id}/tasks/")
    assert refused.status_code == 403


@pytest.mark.django_db
def test_the_task_list_leaks_nothing_across_organizations(org_a, org_b):
    a_tasks = make_tasks(org_a.project, 2)
    b_tasks = make_tasks(org_b.project, 2, start=10)
    b_annotator = org_b.users[Role.ANNOTATOR]
    assert (
        next_task(org_b.clients[Role.ANNOTATOR], org_b.project.id, "annotate").json()["id"] == b_tasks[0].id
    )
    manager_a = org_a.clients[Role.MANAGER]

    # Another organization's project does not exist for A's manager, whatever the filters.
    assert manager_a.get(f"/api/v1/projects/{org_b.project.id}/tasks/").status_code == 404
    assert (
        manager_a.get(f"/api/v1/projects/{org_b.project.id}/tasks/", {"assignee": b_annotator.id}).status_code
        == 404
    )
    # B's ids in A's filters answer an empty list, exactly as ids that do not exist.
    assert listed(manager_a, org_a.project.id, assignee=b_annotator.id)["results"] == []
    assert listed(manager_a, org_a.project.id, assignee=10**12)["results"] == []
    assert ids(listed(manager_a, org_a.project.id)) == [t.id for t in a_tasks]
    # A project of the same organization that the user is not a member of: 404 as well.
    outsider_user, outsider = member(org_a, "alpha-outsider", Role.ANNOTATOR)
    ProjectMember.objects.filter(user=outsider_user).delete()
    assert outsider.get(f"/api/v1/projects/{org_a.project.id}/tasks/").status_code == 404


@pytest.mark.django_db
def test_claiming_a_given_task_opens_exactly_that_task_or_says_why_not(org_a):
    project = org_a.project
    tasks = make_tasks(project, 3)
    annotator = org_a.clients[Role.ANNOTATOR]
    other_user, other = member(org_a, "alpha-annotator-2", Role.ANNOTATOR)

    # The deep link to the third task takes the third task, not the oldest open one.
    got = annotator.post(f"/api/v1/tasks/{tasks[2].id}/claim/")
    assert got.status_code == 200 and got.json()["id"] == tasks[2].id
    assert got.json()["status"] == "in_progress"
    # Twice is harmless; someone else is told who holds it and until when.
    assert annotator.post(f"/api/v1/tasks/{tasks[2].id}/claim/").json()["id"] == tasks[2].id
    taken = other.post(f"/api/v1/tasks/{tasks[2].id}/claim/")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "leased"
    assert (
        "alpha-annotator" in taken.json()["error"]["message"] and "until" in taken.json()["error"]["message"]
    )
    # Opening another task of the same stage releases the first: one lease per user and stage.
    assert annotator.post(f"/api/v1/tasks/{tasks[0].id}/claim/").json()["id"] == tasks[0].id
    assert Task.objects.get(pk=tasks[2].pk).status == "open"
    assert TaskEvent.objects.filter(task=tasks[2], kind=EventKind.RELEASED).count() == 1
    # A task a manager kept for someone else is not taken by another annotator.
    manager = org_a.clients[Role.MANAGER]
    assert (
        manager.post(
            f"/api/v1/tasks/{tasks[1].id}/reassign/", {"assignee": other_user.id}, format="json"
        ).status_code
        == 200
    )
    reserved = annotator.post(f"/api/v1/tasks/{tasks[1].id}/claim/")
    assert reserved.status_code == 409 and reserved.json()["error"]["code"] == "reserved"
    assert other.post(f"/api/v1/tasks/{tasks[1].id}/claim/").json()["id"] == tasks[1].id
    # Review stages never hand out one's own work.
    reviewer = org_a.clients[Role.REVIEWER]
    assert (
        annotator.put(
            f"/api/v1/tasks/{tasks[0].id}/annotation/",
            {"revision": 0, "regions": [region("a", 1, 1, 9, 9)]},
            format="json",
        ).status_code
        == 200
    )
    assert annotator.post(f"/api/v1/tasks/{tasks[0].id}/submit/").status_code == 200
    own = manager.post(f"/api/v1/tasks/{tasks[0].id}/claim/")
    assert own.status_code == 200  # the manager did not annotate it
    assert manager.post(f"/api/v1/tasks/{tasks[0].id}/release/").status_code == 200
    wrong_role = annotator.post(f"/api/v1/tasks/{tasks[0].id}/claim/")
    assert wrong_role.status_code == 403 and wrong_role.json()["error"]["code"] == "role_forbidden"
    assert reviewer.post(f"/api/v1/tasks/{tasks[0].id}/claim/").json()["id"] == tasks[0].id
