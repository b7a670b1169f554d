"""Pre-labels of a gigapixel image by a project model: the network run tile by tile over the image's
tile pyramid at full resolution (`workers.train.tiled`: context around each tile, objects cut by seams
merged by everything mode's merge), tiles read from the pyramid one window at a time, never the whole
image; regions stored in full-resolution coordinates."""

from __future__ import annotations

from django.conf import settings

from labelhub.images.models import Image
from labelhub.images.pyramids import pyramid_reader, release_freed_memory
from labelhub.predictions.services import MAX_TILED_REGIONS, region_from_pieces


def prelabel_regions_tiled(
    *,
    image: Image,
    model,
    device: str,
    classes: list[str],
    stuff: set[int],
    min_area: int,
    prediction_id: int,
) -> list[dict]:
    """The regions of `model` on pyramid `image` (the largest MAX_TILED_REGIONS), as images_prelabel
    stores them. The whole image's mean and deviation (the network's normalisation) are read from the
    pyramid's level with a long side of at most LABELHUB_PYRAMID_PRELABEL_STATS_SIDE (the image itself
    when it is that small)."""
    from workers.train.inference import image_stats
    from workers.train.tiled import predict_regions_tiled

    if image.pyramid_status != "ready":
        raise ValueError("the image's tile pyramid is not ready")
    reader = pyramid_reader(image)
    width, height = image.width, image.height
    side = settings.LABELHUB_PYRAMID_PRELABEL_STATS_SIDE
    scale = max(1.0, max(width, height) / side)
    small_w, small_h = max(1, round(width / scale)), max(1, round(height / scale))
    stats = image_stats(reader.pixels(0, 0, width, height, small_w, small_h))

    def read(x0: int, y0: int, x1: int, y1: int):
        return reader.pixels(x0, y0, x1, y1, x1 - x0, y1 - y0)

    parts = predict_regions_tiled(
        model,
        read,
        width,
        height,
        stats=stats,
        tile=settings.LABELHUB_PYRAMID_PRELABEL_TILE,
        overlap=settings.LABELHUB_PYRAMID_PRELABEL_OVERLAP,
        stuff=stuff,
        min_area=min_area,
        device=device,
        progress=lambda done, total: release_freed_memory(),
    )
    if len(parts) > MAX_TILED_REGIONS:  # a slide can hold more objects than a labeler can review
        parts = sorted(parts, key=lambda r: -r.area)[:MAX_TILED_REGIONS]
        parts.sort(key=lambda r: (r.class_index, -r.area))
    regions = []
    for part in parts:
        region = region_from_pieces(
            pieces=part.pieces,
            project=image.project,
            label=classes[part.class_index - 1],
            score=part.score,
            prediction_id=prediction_id,
        )
        if region is not None:
            regions.append(region)
    return regions
