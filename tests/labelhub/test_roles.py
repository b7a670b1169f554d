"""Roles limit what each member may do inside their own organization."""

from __future__ import annotations

import pytest

from labelhub.accounts.models import Membership, Role
from labelhub.images.models import Image
from labelhub.projects.models import Project
from tests.helpers import client_for, image_bytes, make_user, upload

MANAGERS = [Role.OWNER, Role.MANAGER]
WORKERS = [Role.ANNOTATOR, Role.REVIEWER]


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_only_managers_create_edit_and_delete_projects(org_a, role):
    client = org_a.clients[role]
    created = client.post(
        "/api/v1/projects/", {"organization": org_a.organization.id, "name": f"by {role}"}, format="json"
    )
    edited = client.patch(f"/api/v1/projects/{org_a.project.id}/", {"description": "changed"}, format="json")
    if role in MANAGERS:
        assert created.status_code == 201, created.json()
        assert created.json()["pipeline"][0]["name"] == "annotate"
        assert edited.status_code == 200
        assert client.delete(f"/api/v1/projects/{created.json()['id']}/").status_code == 204
    else:
        assert created.status_code == 403 and created.json()["error"]["code"] == "role_forbidden"
        assert edited.status_code == 403
        assert client.delete(f"/api/v1/projects/{org_a.project.id}/").status_code == 403
        assert Project.objects.filter(organization=org_a.organization).count() == 1
    # Everyone in the organization reads the project.
    assert client.get(f"/api/v1/projects/{org_a.project.id}/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_only_managers_add_images(org_a, role):
    response = upload(org_a.clients[role], org_a.project.id, ("a.png", image_bytes()))
    assert response.status_code == (201 if role in MANAGERS else 403)
    assert Image.objects.count() == (1 if role in MANAGERS else 0)


@pytest.mark.django_db
@pytest.mark.parametrize("role", Role.values)
def test_everyone_reads_and_lease_holders_or_managers_write_annotations(org_a, role):
    upload(org_a.clients[Role.OWNER], org_a.project.id, ("a.png", image_bytes()))
    task = Image.objects.get().task
    client = org_a.clients[role]
    url = f"/api/v1/tasks/{task.id}/annotation/"
    assert client.get(url).status_code == 200
    if role in MANAGERS:
        assert client.put(url, {"revision": 0, "regions": []}, format="json").status_code == 200
        return
    # Workers write only the task they hold: without a lease the write is refused and nothing is saved.
    refused = client.put(url, {"revision": 0, "regions": []}, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_lease_holder"
    claimed = client.post(f"/api/v1/projects/{org_a.project.id}/next-task/?stage=annotate")
    if role == Role.ANNOTATOR:
        assert claimed.status_code == 200 and claimed.json()["id"] == task.id
        assert client.put(url, {"revision": 0, "regions": []}, format="json").status_code == 200
    else:  # the annotate stage is worked by annotators
        assert claimed.status_code == 403 and claimed.json()["error"]["code"] == "role_forbidden"
        assert client.put(url, {"revision": 0, "regions": []}, format="json").status_code == 409
    task.annotation.refresh_from_db()
    assert task.annotation.current_revision == (1 if role == Role.ANNOTATOR else 0)


@pytest.mark.django_db
def test_member_management_by_role(org_a):
    newcomer = make_user("newcomer")
    url = f"/api/v1/organizations/{org_a.organization.id}/members/"
    invitations = f"/api/v1/organizations/{org_a.organization.id}/invitations/"
    for role in WORKERS:
        refused = org_a.clients[role].post(
            invitations, {"username": "newcomer", "role": "annotator"}, format="json"
        )
        assert refused.status_code == 403
    # Members come from accepted invitations; a manager invites but cannot make owners.
    manager = org_a.clients[Role.MANAGER]
    assert (
        manager.post(invitations, {"username": "newcomer", "role": "owner"}, format="json").status_code == 403
    )
    invited = manager.post(invitations, {"username": "newcomer", "role": "annotator"}, format="json")
    assert invited.status_code == 201
    assert not Membership.objects.filter(user=newcomer).exists()
    accept = client_for(newcomer).post(
        "/api/v1/invitations/accept/", {"token": invited.json()["token"]}, format="json"
    )
    assert accept.status_code == 201, accept.json()
    added = accept
    again = manager.post(invitations, {"username": "newcomer", "role": "reviewer"}, format="json").json()
    assert (
        client_for(newcomer)
        .post("/api/v1/invitations/accept/", {"token": again["token"]}, format="json")
        .status_code
        == 409
    )
    member_id = added.json()["id"]
    assert (
        manager.patch(f"{url}{member_id}/", {"role": "reviewer"}, format="json").json()["role"] == "reviewer"
    )
    assert Membership.objects.get(user=newcomer).role == Role.REVIEWER
    # The last owner cannot leave or be demoted.
    owner_membership = Membership.objects.get(organization=org_a.organization, role=Role.OWNER)
    owner = org_a.clients[Role.OWNER]
    assert owner.patch(f"{url}{owner_membership.id}/", {"role": "manager"}, format="json").status_code == 409
    assert owner.delete(f"{url}{owner_membership.id}/").status_code == 409
    assert owner.delete(f"{url}{member_id}/").status_code == 204
    # Only an owner deletes the organization.
    assert manager.delete(f"/api/v1/organizations/{org_a.organization.id}/").status_code == 403


@pytest.mark.django_db
def test_token_login_and_new_organization_owner(db):
    from rest_framework.test import APIClient

    make_user("solo")
    client = APIClient()
    token = client.post("/api/v1/auth/token/", {"username": "solo", "password": "pw-solo"}, format="json")
    assert token.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    org = client.post("/api/v1/organizations/", {"name": "Solo Labs"}, format="json").json()
    assert org["role"] == "owner" and org["slug"] == "solo-labs"
    assert client.get("/api/v1/organizations/").json()["results"][0]["role"] == "owner"


@pytest.mark.django_db
def test_project_counts(org_a):
    client = org_a.clients[Role.OWNER]
    upload(client, org_a.project.id, ("a.png", image_bytes(seed=1)), ("b.png", image_bytes(seed=2)))
    counts = client.get(f"/api/v1/projects/{org_a.project.id}/counts/").json()
    assert counts["images"] == 2 and counts["tasks"] == 2
    assert counts["by_stage"] == {"annotate": {"open": 2}, "review": {}, "final-qa": {}}
