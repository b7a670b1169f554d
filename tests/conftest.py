from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import pytest
from hypothesis import settings as hypothesis_settings

from labelhub.accounts.models import Organization, Role
from labelhub.projects.models import Project, ProjectMember
from tests.helpers import client_for, make_user

pytest_plugins = ["tests.ci_skips"]  # under CI=true a skip is a failure

# Hypothesis explores new random examples on every local run (and keeps failures in .hypothesis/);
# under CI=true it runs a fixed sequence, so a submission's CI result does not depend on the draw.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
    hypothesis_settings.load_profile("ci")


@pytest.fixture(autouse=True, scope="session")
def _fast_password_hashing():
    from django.conf import settings

    # Tests create many users; the production hasher spends about half a second on each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    # The suite makes many requests a minute from one client; the throttle tests set their own rates.
    settings.LABELHUB_THROTTLE_RATES = dict.fromkeys(settings.LABELHUB_THROTTLE_RATES)


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
    # annotators and reviewers see only the projects they are members of
    for role in (Role.ANNOTATOR, Role.REVIEWER):
        ProjectMember.objects.create(project=project, user=users[role])
    return Org(organization, project, users, clients)


@pytest.fixture
def org_a(db) -> Org:
    return _org("Alpha")


@pytest.fixture
def org_b(db) -> Org:
    return _org("Beta")


@pytest.fixture
def broker_down():
    """Celery publishing to a Redis port nobody listens on (a broker outage), eager mode off."""
    from labelhub.celery import app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The app reads Django settings under the CELERY_ namespace: override those keys.
    down = {
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/0",
        "CELERY_BROKER_WRITE_URL": f"redis://127.0.0.1:{port}/0",
        "CELERY_TASK_ALWAYS_EAGER": False,
        "CELERY_BROKER_CONNECTION_TIMEOUT": 1,
        "CELERY_TASK_PUBLISH_RETRY": False,
    }
    # Undo by removing the overrides again: writing the old values back would leave explicit
    # CELERY_* keys that shadow later `app.conf.task_always_eager = ...` toggles of other tests.
    changes = app.conf.changes
    saved = {k: changes[k] for k in down if k in changes}
    app.conf.update(down)
    app._pool = None
    app.amqp._producer_pool = None
    try:
        yield
    finally:
        for key in down:
            # Celery may keep an override under its new-style name (task_publish_retry), where deleting
            # the CELERY_ name alone raises KeyError and would leave the rest of the overrides in place.
            for name in (key, key.removeprefix("CELERY_").lower()):
                try:
                    del changes[name]
                except KeyError:
                    pass
        changes.update(saved)
        app._pool = None
        app.amqp._producer_pool = None
