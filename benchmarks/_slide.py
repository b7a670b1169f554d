"""The set-up the gigapixel benchmarks share: a fresh temporary var folder with its own SQLite database,
tasks in-process, the slide linked (or copied) into a server import folder, Django set up, and an owner
with a one-class project whose image is that slide."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def slide_imported(slide: Path, *, prefix: str, **env: str):
    """(user, project, image): ``slide`` imported by the server-folder path into a fresh embedded
    LabelHub; ``env`` adds settings (environment variables) before Django starts."""
    if not slide.exists():
        raise SystemExit(f"{slide} is missing: run benchmarks/gigapixel.py first")
    var = Path(tempfile.mkdtemp(prefix=prefix))
    imports = var / "imports"
    imports.mkdir()
    try:
        os.link(slide, imports / "slide.tif")  # same file system: no copy of a multi-GB file
    except OSError:
        shutil.copy(slide, imports / "slide.tif")
    os.environ.update(
        DJANGO_SETTINGS_MODULE="labelhub.settings",
        LABELHUB_VAR_DIR=str(var),
        DATABASE_URL=f"sqlite:///{var / 'bench.sqlite3'}",
        LABELHUB_TASKS_EAGER="1",
        LABELHUB_PRESEGMENT_ON_UPLOAD="false",
        LABELHUB_IMPORT_ROOTS=str(imports),
        **env,
    )
    for key in ("REDIS_URL", "CELERY_BROKER_URL", "LABELHUB_MEDIA_ROOT", "LABELHUB_SAM_CHECKPOINT"):
        os.environ.pop(key, None)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
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
