"""Gigapixel images on S3 (a real moto server): a pyramid stored there serves its tiles through ranged
reads, and a pyramid built on the cpu queue from a large JPEG lands there too."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image as PILImage

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.images.pyramids import PyramidReader
from tests.labelhub.core.conftest import moto_endpoint, s3_storage  # noqa: F401 - the S3 fixtures
from tests.labelhub.images.test_pyramids import _block_reference

pytestmark = pytest.mark.django_db


def test_pyramid_on_s3_serves_tiles_by_ranged_reads_and_builds_there(
    org_a,
    s3_storage,  # noqa: F811
    settings,
    tmp_path,
    django_capture_on_commit_callbacks,  # noqa: F811
):
    import pyvips

    root = tmp_path / "imports"
    (root / "slide").mkdir(parents=True)
    (root / "photo").mkdir()
    settings.LABELHUB_IMPORT_ROOTS = [root.resolve()]
    settings.LABELHUB_MAX_IMAGE_PIXELS = 1_000_000  # these few megapixels count as large here
    block = np.ascontiguousarray(np.tile(_block_reference(), (1, 2, 1))[:2000, :3000])
    source = root / "slide" / "slide.tif"
    pyvips.Image.new_from_array(block, interpretation="srgb").tiffsave(
        str(source), tile=True, pyramid=True, compression="jpeg", Q=90, tile_width=256, tile_height=256
    )
    PILImage.fromarray(block).save(root / "photo" / "photo.jpg", quality=95)
    client = org_a.clients[Role.MANAGER]
    url = f"/api/v1/projects/{org_a.project.id}/images/import/"
    with django_capture_on_commit_callbacks(execute=True):
        slide = client.post(url, {"path": str(root / "slide")}, format="json")
        photo = client.post(url, {"path": str(root / "photo")}, format="json")
    assert slide.status_code == 201 and photo.status_code == 201, (slide.json(), photo.json())
    stored = Image.objects.get(pk=slide.json()["created"][0]["id"])
    built = Image.objects.get(pk=photo.json()["created"][0]["id"])
    assert stored.pyramid_status == "ready" and stored.pyramid.name == stored.file.name
    assert built.pyramid_status == "ready" and built.pyramid.name.endswith(".tif"), built.pyramid_error
    assert not (settings.MEDIA_ROOT / built.pyramid.name).exists()  # on S3, not on the filesystem
    assert built.pyramid.storage.exists(built.pyramid.name)
    local = PyramidReader(lambda: str(source), 3000, 2000)
    top = math.ceil(math.log2(3000))
    for image in (stored, built):
        for level, col, row in ((top, 5, 3), (top - 2, 0, 0), (2, 0, 0)):
            response = client.get(f"/api/v1/images/{image.id}/tiles/{level}/{col}_{row}.jpg")
            assert response.status_code == 200, response.content[:200]
            got = np.asarray(PILImage.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.float64)
            want = np.asarray(
                PILImage.open(io.BytesIO(local.tile_jpeg(level, col, row, 256))).convert("RGB"),
                dtype=np.float64,
            )
            assert got.shape == want.shape and np.abs(got - want).mean() < 6, (image.id, level)
