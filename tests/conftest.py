from __future__ import annotations

from dataclasses import dataclass

import pytest

from labelhub.accounts.models import Organization, Role
from labelhub.projects.models import Project
from tests.helpers import client_for, make_user

pytest_plugins = ["tests.ci_skips"]  # under CI=true a skip is a failure


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    from django.conf import settings

    # Tests create many users; the production hasher spends about half a second on each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = False  # tests that want the worker path turn it on


@dataclass
class Org:
    organization: Organization
    project: Project
    users: dict
    clients: dict


def _org(name: str) -> Org:
    organization = Organization.objects.create(name=name, slug=name.lower())
    users, clients = {}, {}
    for role in Role.values:
        users[role] = make_user(f"{name.lower()}-{role}", organization, role)
        clients[role] = client_for(users[role])
    project = Project.objects.create(
        organization=organization,
        name=f"{name} project",
        label_schema=[
            {"name": "cat", "color": "#ff0000", "kinds": ["polygon", "mask"]},
            {"name": "dog", "color": "#00ff00", "kinds": ["polygon"]},
        ],
        created_by=users[Role.OWNER],
    )
    return Org(organization, project, users, clients)


@pytest.fixture
def org_a(db) -> Org:
    return _org("Alpha")


@pytest.fixture
def org_b(db) -> Org:
    return _org("Beta")
