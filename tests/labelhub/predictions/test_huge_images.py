"""Pre-segmentation of huge images is bounded: the backend gets a copy whose long side is at most
LABELHUB_PRESEGMENT_MAX_SIDE (a JPEG decoded at reduced size, never as a full-size array), and the
polygons come back in full-resolution coordinates."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw

from labelhub.accounts.models import Role
from labelhub.images.decoding import image_to_rgb_array_bounded
from labelhub.predictions import services
from labelhub.predictions.models import PredictionStatus
from tests.helpers import upload

SIDE = 6000
DISC = (1500, 2000, 4500, 5000)  # x0, y0, x1, y1 of the bright disc (an ellipse 3000 x 3000)


def _big_jpeg(side: int = SIDE) -> bytes:
    img = PILImage.new("RGB", (side, side), (20, 25, 30))
    ImageDraw.Draw(img).ellipse(DISC, fill=(220, 60, 60))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def test_the_bounded_decode_returns_the_long_side_and_the_factors_back():
    rgb, (sx, sy) = image_to_rgb_array_bounded(_big_jpeg(), max_side=2048)
    assert max(rgb.shape[:2]) <= 2048 and rgb.shape[2] == 3
    assert sx * rgb.shape[1] == pytest.approx(SIDE) and sy * rgb.shape[0] == pytest.approx(SIDE)
    small, scale = image_to_rgb_array_bounded(_big_jpeg(500), max_side=2048)
    assert small.shape == (500, 500, 3) and scale == (1.0, 1.0)


def test_a_6000px_jpeg_decodes_without_the_full_size_array(tmp_path):
    """Peak RSS growth of the bounded decode, in a fresh process: the full-size RGB array alone would be
    108 MB (6000 x 6000 x 3); the JPEG is decoded at 1/2 size (27 MB) and reduced."""
    path = tmp_path / "big.jpg"
    path.write_bytes(_big_jpeg())
    script = textwrap.dedent(
        f"""
        import os, resource
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labelhub.settings")
        import django
        django.setup()
        from labelhub.images.decoding import image_to_rgb_array_bounded
        data = open({str(path)!r}, "rb").read()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rgb, scale = image_to_rgb_array_bounded(data, max_side=2048)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024, max(rgb.shape[:2]))
        """
    )
    repo = Path(__file__).resolve().parents[3]
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, cwd=repo)
    growth_mb, long_side = map(int, out.stdout.split())
    assert long_side <= 2048
    assert growth_mb < 60, f"peak RSS grew {growth_mb} MB"


@pytest.mark.django_db
def test_a_huge_image_is_presegmented_downscaled_with_full_resolution_polygons(org_a, settings, monkeypatch):
    settings.LABELHUB_PRESEGMENT_ON_UPLOAD = False
    settings.LABELHUB_CLASSICAL_EVERYTHING = True
    settings.LABELHUB_PRESEGMENT_MAX_SIDE = 1024
    assert upload(org_a.clients[Role.MANAGER], org_a.project.id, ("big.jpg", _big_jpeg())).status_code == 201
    image = org_a.project.images.get()
    assert (image.width, image.height) == (SIDE, SIDE)
    backend = services.segmentation_backend()
    received = []
    real_embed = backend.embed

    def recording_embed(arrays):
        received.extend(a.shape for a in arrays)
        return real_embed(arrays)

    monkeypatch.setattr(backend, "embed", recording_embed)
    monkeypatch.setattr(services, "segmentation_backend", lambda: backend)
    prediction = services.images_presegment(image_ids=[image.id])[image.id]
    assert prediction.status == PredictionStatus.OK, prediction.error
    assert received and all(max(shape[:2]) <= 1024 for shape in received)
    # the region covering the disc, in full-resolution coordinates
    boxes = []
    for region in prediction.regions:
        assert "rle" not in region
        for polygon in region["polygons"]:
            ring = np.asarray(polygon["exterior"])
            boxes.append((*ring.min(axis=0), *ring.max(axis=0)))
    best = min(boxes, key=lambda b: sum(abs(v - d) for v, d in zip(b, DISC, strict=True)))
    assert best == pytest.approx(DISC, abs=SIDE / 1024 * 4)  # within 4 reduced pixels
