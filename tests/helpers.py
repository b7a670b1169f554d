"""Builders for test data: real image bytes, users with roles, API clients."""

from __future__ import annotations

import io
import os

import numpy as np
from django.contrib.auth import get_user_model
from PIL import Image
from rest_framework.test import APIClient

from labelhub.accounts.auth import token_issue
from labelhub.accounts.models import Membership, Organization
from labelhub.projects.models import ProjectMember


def image_bytes(width: int = 64, height: int = 48, *, seed: int = 0, fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


def disc_image_bytes(width: int = 96, height: int = 80, *, seed: int = 0) -> bytes:
    """A bright disc on a dark, slightly noisy background: something a segmenter can find."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width]
    disc = (xx - width * 0.5) ** 2 + (yy - height * 0.5) ** 2 < (min(width, height) * 0.3) ** 2
    pixels = rng.integers(10, 40, size=(height, width, 3)).astype(np.uint8)
    pixels[disc] = (220, 60, 60)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def make_user(username: str, organization: Organization | None = None, role: str | None = None):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    if organization is not None and role is not None:
        Membership.objects.create(organization=organization, user=user, role=role)
        # tests treat a member of the organization as working on its projects
        for project in organization.projects.all():
            ProjectMember.objects.create(project=project, user=user)
    return user


def project_members_all(project) -> None:
    """Make every member of the project's organization a member of the project (as `make_user` does for
    projects that already exist when the user is made)."""
    for membership in project.organization.memberships.all():
        ProjectMember.objects.get_or_create(project=project, user=membership.user)


def client_for(user) -> APIClient:
    client = APIClient()
    _, token = token_issue(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def upload(client: APIClient, project_id: int, *files: tuple[str, bytes]):
    from django.core.files.uploadedfile import SimpleUploadedFile

    payload = {"files": [SimpleUploadedFile(name, data) for name, data in files]}
    return client.post(f"/api/v1/projects/{project_id}/images/upload/", payload, format="multipart")


def square(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"exterior": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "holes": []}


def ultralytics_check(yaml_paths: list, *, cwd, config_dir) -> list[dict]:
    """Ultralytics' own dataset check (`ultralytics.data.utils.check_det_dataset`) on each data.yaml, run
    in a fresh Python process whose working directory is `cwd` (another folder than the dataset's), with
    its settings in `config_dir`. Its font check finds a local font there (matplotlib's DejaVu Sans under
    the name it looks for), so nothing is downloaded. Returns {train, val, test, nc, names} per yaml;
    raises CalledProcessError with Ultralytics' message when a check fails."""
    import json
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import matplotlib

    fonts = Path(config_dir) / "Ultralytics"
    fonts.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf", fonts / "Arial.ttf")
    script = (
        "import json, sys\n"
        "from ultralytics.data.utils import check_det_dataset\n"
        "out = []\n"
        "for p in sys.argv[1:]:\n"
        "    d = check_det_dataset(p, autodownload=False)\n"
        "    out.append({k: d.get(k) for k in ('train', 'val', 'test', 'nc')} | {'names': d['names']})\n"
        "print('RESULT' + json.dumps(out, default=str))\n"
    )
    env = {**os.environ, "YOLO_CONFIG_DIR": str(config_dir), "YOLO_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, yaml_paths)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, "check_det_dataset", done.stdout, done.stderr)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT") :])
