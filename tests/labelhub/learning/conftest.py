from __future__ import annotations

import numpy as np
import pytest

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from tests.helpers import disc_image_bytes, upload

W, H = 96, 80


def disc_region(label: str = "cat") -> dict:
    """The disc of tests.helpers.disc_image_bytes as a polygon (a 32-gon on its outline)."""
    r = min(W, H) * 0.3
    t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    ring = [[round(W * 0.5 + r * np.cos(a), 2), round(H * 0.5 + r * np.sin(a), 2)] for a in t]
    return {"id": "disc", "label": label, "kind": "polygon", "polygons": [{"exterior": ring, "holes": []}]}


def accept_through_api(org, regions: list[dict], *, stage_review: bool = True) -> int:
    """Claim, annotate with ``regions``, submit and accept every open task of the project through the
    API (annotator then reviewer). Returns the number accepted."""
    project = org.project
    annotator, reviewer = org.clients[Role.ANNOTATOR], org.clients[Role.REVIEWER]
    done = 0
    while True:
        claimed = annotator.post(f"/api/v1/projects/{project.id}/next-task/?stage=annotate")
        if claimed.status_code == 204:
            return done
        assert claimed.status_code == 200, claimed.content
        task_id = claimed.json()["id"]
        current = annotator.get(f"/api/v1/tasks/{task_id}/annotation/").json()
        put = annotator.put(
            f"/api/v1/tasks/{task_id}/annotation/",
            {"revision": current["current_revision"], "regions": regions},
            format="json",
        )
        assert put.status_code == 200, put.content
        assert annotator.post(f"/api/v1/tasks/{task_id}/submit/").status_code == 200
        review = reviewer.post(f"/api/v1/projects/{project.id}/next-task/?stage=review")
        assert review.status_code == 200 and review.json()["id"] == task_id, review.content
        accepted = reviewer.post(f"/api/v1/tasks/{task_id}/accept/")
        assert accepted.status_code == 200, accepted.content
        done += 1


@pytest.fixture
def disc_project(org_a):
    """org_a's project with an annotate -> review pipeline and 4 accepted disc images."""
    project = org_a.project
    project.pipeline = [
        {"name": "annotate", "role": "annotator", "sample_rate": 1.0, "reject_to": None},
        {"name": "review", "role": "reviewer", "sample_rate": 1.0, "reject_to": "annotate"},
    ]
    project.save()
    files = [(f"d{i}.png", disc_image_bytes(W, H, seed=i)) for i in range(4)]
    assert upload(org_a.clients[Role.MANAGER], project.id, *files).status_code == 201
    assert accept_through_api(org_a, [disc_region()]) == 4
    assert Image.objects.filter(project=project).count() == 4
    return org_a


TINY = {"epochs": 6, "steps_per_epoch": 4, "width": 4, "depth": 2, "crop": 48, "batch_size": 4, "lr": 0.02}
