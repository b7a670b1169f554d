"""Pre-labels of a gigapixel image by the project's model: the pyramid is read tile by tile at full
resolution and the stored regions equal, object for object, what one pass over the whole image gives
(an image small enough to run both ways, made a pyramid by lowering LABELHUB_MAX_IMAGE_PIXELS).

The model is trained for a few seeded steps on real photographs so that its regions are blobs of many
sizes; this checks equivalence, not mask quality."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image as PILImage

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from labelhub.learning.models import ModelVersion, ProjectModel, VersionStatus
from labelhub.predictions.models import Prediction
from tests.workers.train.test_tiled import _grabcut
from workers.sam.tiled import tile_grid

pytestmark = pytest.mark.django_db

TILE, OVERLAP = 192, 32


def _promote(project, weights: bytes) -> ModelVersion:
    pm = ProjectModel.objects.create(project=project)
    version = ModelVersion(
        project_model=pm,
        number=1,
        status=VersionStatus.READY,
        config={"n_classes": 2, "min_area": 16},
        classes=["cat"],
        weights_sha256=hashlib.sha256(weights).hexdigest(),
    )
    version.weights.save("weights.pt", ContentFile(weights), save=False)
    version.save()
    pm.active_version = version
    pm.save()
    return version


def test_a_pyramid_is_prelabelled_tile_by_tile_as_one_pass_would(
    org_a, settings, tmp_path, django_capture_on_commit_callbacks
):
    from labelhub.images.pyramids import pyramid_reader
    from labelhub.learning.prelabels import images_prelabel
    from labelhub.predictions.services import region_from_mask
    from labelhub.regions.validation import region_mask
    from workers.train import TrainConfig, load_model, train_model
    from workers.train.inference import label_regions, predict_probabilities

    images, labels = _grabcut(6)
    config = TrainConfig(
        n_classes=2, epochs=2, steps_per_epoch=8, width=8, depth=3, crop=96, batch_size=4, lr=0.01, threads=1
    )
    weights = train_model(images[:4], labels[:4], config=config).weights
    scene = np.concatenate(
        [images[4][:320, :480], images[5][:320, :480]], axis=1
    )  # two photographs side by side

    root = tmp_path / "imports"
    (root / "scenes").mkdir(parents=True)
    PILImage.fromarray(scene).save(root / "scenes" / "scene.jpg", quality=95)
    settings.LABELHUB_IMPORT_ROOTS = [root.resolve()]
    settings.LABELHUB_MAX_IMAGE_PIXELS = 100_000  # 0.3 MP is "large" here: stored with a pyramid
    settings.LABELHUB_PYRAMID_PRELABEL_TILE, settings.LABELHUB_PYRAMID_PRELABEL_OVERLAP = TILE, OVERLAP
    with django_capture_on_commit_callbacks(execute=True):
        response = org_a.clients[Role.MANAGER].post(
            f"/api/v1/projects/{org_a.project.id}/images/import/",
            {"path": str(root / "scenes")},
            format="json",
        )
    assert response.status_code == 201, response.json()
    image = Image.objects.get(pk=response.json()["created"][0]["id"])
    assert image.is_pyramid and image.pyramid_status == "ready", image.pyramid_error
    version = _promote(org_a.project, weights)
    # polygons that follow the masks closely: the comparison below is of the objects, not of the
    # simplifier's choices (each side's polygon alone may sit anywhere within the project's bound)
    org_a.project.polygon_min_iou, org_a.project.polygon_max_distance = 0.995, 0.5
    org_a.project.save()

    (made,) = images_prelabel(image_ids=[image.id])
    prediction = Prediction.objects.get(id=made)
    assert prediction.status == "ok", prediction.error
    assert prediction.model_name == version.prediction_model_name
    tiled = prediction.regions
    assert {r["label"] for r in tiled} == {"cat"} and all(r["prediction_id"] == made for r in tiled)
    # the image's task starts from them
    assert image.task.annotation.revisions.get(number=1).regions

    # one pass over the same pixels (the pyramid's full-resolution level, read whole here only)
    w, h = image.width, image.height
    pixels = pyramid_reader(image).pixels(0, 0, w, h, w, h)
    model, _ = load_model(weights)
    whole = [
        region_from_mask(mask=r.mask, project=org_a.project, label="cat", score=r.score, prediction_id=made)
        for r in label_regions(predict_probabilities(model, pixels), min_area=16)
    ]
    whole = [r for r in whole if r is not None]
    assert len(whole) >= 10 and len(tiled) == len(whole)
    tiled_masks = [region_mask(r, h, w) for r in tiled]
    grid = tile_grid(w, h, tile=TILE, overlap=OVERLAP)
    assert len(grid) >= 6
    crossing = 0
    for region in whole:
        mask = region_mask(region, h, w)
        ys, xs = np.nonzero(mask)
        crossing += not any(
            x0 <= xs.min() and xs.max() < x1 and y0 <= ys.min() and ys.max() < y1 for x0, y0, x1, y1 in grid
        )
        best = max((mask & m).sum() / (mask | m).sum() for m in tiled_masks)
        assert best >= 0.98, (int(mask.sum()), best)
    assert crossing >= 3
    # full-resolution coordinates: the polygons reach the far side of the image
    xs = [x for r in tiled for p in r["polygons"] for x, _ in p["exterior"]]
    assert max(xs) > 0.75 * w
