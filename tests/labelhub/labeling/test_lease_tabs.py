"""A lease survives another tab of the same user closing: a release from one app tab gives the task back
only when no other tab of the holder has beaten lately; a release without a tab releases at once."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from tests.helpers import image_bytes, upload


@pytest.mark.django_db
def test_closing_a_second_tab_keeps_the_lease_of_the_first(org_a):
    cache.clear()
    assert (
        upload(org_a.clients[Role.OWNER], org_a.project.id, ("a.png", image_bytes(32, 24))).status_code == 201
    )
    task = Image.objects.get().task
    alice = org_a.clients[Role.ANNOTATOR]
    assert (
        alice.post(f"/api/v1/projects/{org_a.project.id}/next-task/?stage=annotate").json()["id"] == task.id
    )
    for tab in ("first", "second"):
        assert alice.post(f"/api/v1/tasks/{task.id}/heartbeat/?tab={tab}").status_code == 200
    out = alice.post(f"/api/v1/tasks/{task.id}/release/?tab=second")
    assert out.status_code == 200 and out.json()["status"] == "in_progress"
    task.refresh_from_db()
    assert task.assignee_id == org_a.users[Role.ANNOTATOR].id and task.lease_expires_at is not None
    # The first tab still saves and beats; when it closes, the task goes back to the queue.
    assert alice.post(f"/api/v1/tasks/{task.id}/heartbeat/?tab=first").status_code == 200
    assert alice.post(f"/api/v1/tasks/{task.id}/release/?tab=first").json()["status"] == "open"
    # Without a tab (the API): at once.
    assert (
        alice.post(f"/api/v1/projects/{org_a.project.id}/next-task/?stage=annotate").json()["id"] == task.id
    )
    assert alice.post(f"/api/v1/tasks/{task.id}/heartbeat/?tab=first").status_code == 200
    assert alice.post(f"/api/v1/tasks/{task.id}/release/").json()["status"] == "open"


@pytest.mark.django_db
def test_next_task_skipping_one_and_the_reason_of_an_empty_queue(org_a):
    owner = org_a.clients[Role.OWNER]
    for name, w in (("a.png", 32), ("b.png", 33)):
        assert upload(owner, org_a.project.id, (name, image_bytes(w, 24))).status_code == 201
    first, second = (i.task for i in Image.objects.order_by("id"))
    url = f"/api/v1/projects/{org_a.project.id}/next-task/?stage=annotate"
    mgr = org_a.clients[Role.MANAGER]
    # Next, skipping the oldest (the task just left): the other one, never the same.
    assert mgr.post(f"{url}&exclude={first.id}").json()["id"] == second.id
    # The manager annotates and submits the second task; in review the independence rule keeps it from them.
    assert (
        mgr.put(
            f"/api/v1/tasks/{second.id}/annotation/", {"revision": 0, "regions": []}, format="json"
        ).status_code
        == 200
    )
    assert mgr.post(f"/api/v1/tasks/{second.id}/submit/").status_code == 200
    empty = mgr.post(f"/api/v1/projects/{org_a.project.id}/next-task/?stage=review")
    assert empty.status_code == 204
    assert empty["X-Queue-Reason-Code"] == "independence"
    assert "1 open task(s) in review" in empty["X-Queue-Reason"]
    assert mgr.post(f"{url}&exclude=abc").json()["error"]["field"] == "exclude"
