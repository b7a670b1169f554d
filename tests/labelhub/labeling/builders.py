"""Builders for labeling, QA and webhook tests: tasks on 64x48 images without storing files, regions,
extra members, claims."""

from __future__ import annotations

from labelhub.images.models import Image
from labelhub.labeling.services import task_create_for_image
from tests.helpers import client_for, make_user, square

WIDTH, HEIGHT = 64, 48


def make_tasks(project, n: int, *, start: int = 0) -> list:
    tasks = []
    for i in range(start, start + n):
        image = Image.objects.create(
            project=project,
            file=f"fake/{project.pk}-{i}.png",
            original_name=f"{i}.png",
            width=WIDTH,
            height=HEIGHT,
            format="PNG",
            sha256=f"{project.pk:08d}{i:056d}",
            size_bytes=1,
        )
        tasks.append(task_create_for_image(image=image))
    return tasks


def region(region_id: str, x0, y0, x1, y1, *, label: str = "cat", source: str = "human") -> dict:
    return {
        "id": region_id,
        "label": label,
        "kind": "polygon",
        "polygons": [square(x0, y0, x1, y1)],
        "source": source,
    }


def member(org, username: str, role: str):
    """A further member of the organization: (user, token-authenticated client)."""
    user = make_user(username, org.organization, role)
    return user, client_for(user)


def next_task(client, project_id: int, stage: str):
    return client.post(f"/api/v1/projects/{project_id}/next-task/?stage={stage}")
