"""Project membership: annotators and reviewers see only their projects; managers see every project of
their organization and manage who works on which; export downloads are for managers unless granted."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Role
from labelhub.datasets.models import Export, ExportStatus
from labelhub.projects.models import Project
from tests.helpers import image_bytes, upload


@pytest.fixture
def other_project(org_a):
    project = Project.objects.create(
        organization=org_a.organization, name="Other", created_by=org_a.users[Role.OWNER]
    )
    response = upload(org_a.clients[Role.OWNER], project.id, ("o.png", image_bytes(seed=11)))
    assert response.status_code == 201
    return project


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.REVIEWER])
def test_a_worker_outside_a_project_gets_404_on_it(org_a, other_project, role):
    client = org_a.clients[role]
    assert client.get(f"/api/v1/projects/{other_project.id}/").status_code == 404
    assert client.get(f"/api/v1/projects/{other_project.id}/counts/").status_code == 404
    assert client.post(f"/api/v1/projects/{other_project.id}/next-task/").status_code == 404
    task = other_project.tasks.get()
    assert client.get(f"/api/v1/tasks/{task.id}/").status_code == 404
    assert client.get(f"/api/v1/images/{task.image_id}/").status_code == 404
    assert [p["id"] for p in client.get("/api/v1/projects/").json()["results"]] == [org_a.project.id]
    assert client.get("/api/v1/tasks/").json()["count"] == 0
    # same answer for the filter as for an id that does not exist
    assert (
        client.get(f"/api/v1/tasks/?project={other_project.id}").json()
        == client.get("/api/v1/tasks/?project=999999999").json()
    )


@pytest.mark.django_db
def test_managers_add_and_remove_project_members(org_a, other_project):
    manager = org_a.clients[Role.MANAGER]
    annotator = org_a.users[Role.ANNOTATOR]
    url = f"/api/v1/projects/{other_project.id}/members/"
    assert org_a.clients[Role.ANNOTATOR].post(url, {"user": annotator.id}, format="json").status_code == 404
    added = manager.post(url, {"user": annotator.id}, format="json")
    assert added.status_code == 201 and added.json()["username"] == annotator.username
    assert org_a.clients[Role.ANNOTATOR].get(f"/api/v1/projects/{other_project.id}/").status_code == 200
    assert [m["user"] for m in manager.get(url).json()["results"]] == [annotator.id]
    own = f"/api/v1/projects/{org_a.project.id}/members/"
    assert org_a.clients[Role.REVIEWER].get(own).status_code == 403  # a member, but not a manager
    assert org_a.clients[Role.REVIEWER].get(url).status_code == 404  # not even a member
    assert manager.delete(f"{url}{annotator.id}/").status_code == 204
    assert org_a.clients[Role.ANNOTATOR].get(f"/api/v1/projects/{other_project.id}/").status_code == 404


@pytest.mark.django_db
def test_only_organization_members_join_projects(org_a, org_b):
    url = f"/api/v1/projects/{org_a.project.id}/members/"
    outsider = org_b.users[Role.ANNOTATOR]
    refused = org_a.clients[Role.MANAGER].post(url, {"user": outsider.id}, format="json")
    assert refused.status_code == 400 and refused.json()["error"]["field"] == "user"


@pytest.mark.django_db
def test_export_download_is_for_managers_unless_the_project_grants_it(org_a):
    export = Export.objects.create(project=org_a.project, format="coco", status=ExportStatus.DONE)
    url = f"/api/v1/exports/{export.id}/download/"
    annotator = org_a.clients[Role.ANNOTATOR]
    refused = annotator.get(url)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "role_forbidden"
    # a manager passes the permission (this export has no file yet: 409, not 403)
    assert org_a.clients[Role.MANAGER].get(url).status_code == 409
    granted = org_a.clients[Role.MANAGER].patch(
        f"/api/v1/projects/{org_a.project.id}/", {"members_download_exports": True}, format="json"
    )
    assert granted.status_code == 200 and granted.json()["members_download_exports"] is True
    assert annotator.get(url).status_code == 409
