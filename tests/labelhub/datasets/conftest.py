"""A small project with accepted, annotated tasks: polygons, a polygon with a hole, a two-part region
and a mask region, on images of different sizes."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from labelhub.accounts.models import Role
from labelhub.images.services import IncomingFile, images_add
from labelhub.labeling.annotations import Writer, annotation_write
from labelhub.labeling.models import Task, TaskStatus
from tests.helpers import image_bytes, square
from workers.geometry import mask_to_rle


def disc_rle(height: int, width: int, cx: float, cy: float, r: float) -> dict:
    yy, xx = np.mgrid[:height, :width]
    return mask_to_rle((xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 < r * r)


def sample_regions(width: int, height: int, k: int) -> list[dict]:
    """Four regions per image; `k` shifts them so that images differ."""
    s = k % 5
    holed = {
        "exterior": [[30 + s, 5], [50 + s, 5], [50 + s, 25], [30 + s, 25]],
        "holes": [[[35 + s, 10], [35 + s, 20], [45 + s, 20], [45 + s, 10]]],
    }
    return [
        {"id": f"sq{k}", "label": "cat", "kind": "polygon", "polygons": [square(1 + s, 1, 12.5 + s, 10.25)]},
        {"id": f"ho{k}", "label": "dog", "kind": "polygon", "polygons": [holed]},
        {
            "id": f"mp{k}",
            "label": "dog" if k % 2 else "cat",
            "kind": "polygon",
            "polygons": [square(2, 30, 8, 40), {"exterior": [[10, 30], [20, 44], [14, 46.5]], "holes": []}],
        },
        {
            "id": f"mk{k}",
            "label": "cat",
            "kind": "mask",
            "rle": disc_rle(height, width, 40 + s, 36, 6),
            "source": "ai",
            "score": 0.75,
        },
    ]


def make_images(project, user, n: int, *, width: int = 64, height: int = 48, prefix: str = "img"):
    base = sum(map(ord, prefix)) * 1000
    files = [
        IncomingFile(name=f"{prefix}{i}.png", data=image_bytes(width, height, seed=base + i))
        for i in range(n)
    ]
    return images_add(project=project, files=files, user=user, presegment=False).created


def annotate(image, user, regions) -> int:
    task = image.task
    task.refresh_from_db()
    revision = annotation_write(
        task=task,
        author=user,
        base_revision=task.annotation.current_revision,
        regions=regions,
        writer=Writer.IMPORT,
    )
    return revision.number


@pytest.fixture
def dataset(org_a):
    """Four accepted images (one of them 80x60) with sample regions, one open image, one accepted empty."""
    owner = org_a.users[Role.OWNER]
    images = make_images(org_a.project, owner, 4)
    images += make_images(org_a.project, owner, 1, width=80, height=60, prefix="wide")
    for k, image in enumerate(images):
        annotate(image, owner, sample_regions(image.width, image.height, k))
    open_image = make_images(org_a.project, owner, 1, prefix="open")[0]
    annotate(open_image, owner, sample_regions(64, 48, 9))
    empty = make_images(org_a.project, owner, 1, prefix="empty")[0]
    Task.objects.filter(image__in=[*images, empty]).update(status=TaskStatus.DONE, stage="final-qa")
    return {"accepted": images, "open": open_image, "empty": empty}


def read_zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))
