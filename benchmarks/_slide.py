"""The set-up the gigapixel benchmarks share: after ``django.setup()`` on a fresh database, an owner, a
project with one polygon class, and the slide in ``imports`` imported as that project's image."""

from __future__ import annotations

from pathlib import Path


def slide_imported(imports: Path):
    """(user, project, image) with the one slide in folder ``imports`` imported by the server-folder path."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from labelhub.accounts.models import Membership, Organization, Role
    from labelhub.images.services import images_import_folder
    from labelhub.projects.models import Project

    call_command("migrate", verbosity=0)
    org = Organization.objects.create(name="Bench", slug="bench")
    user = get_user_model().objects.create_user(username="bench", password="pw-bench")
    Membership.objects.create(organization=org, user=user, role=Role.OWNER)
    project = Project.objects.create(
        organization=org, name="Slide", created_by=user, label_schema=[{"name": "cell", "kinds": ["polygon"]}]
    )
    (image,) = images_import_folder(project=project, path=str(imports), user=user).created
    return user, project, image
