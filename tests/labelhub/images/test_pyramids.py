"""Gigapixel images: a 50,000 x 50,000 pyramidal TIFF of real texture imports from a server folder, its
Deep Zoom tiles are served at every level with the right pixels, a click near a tile corner answers a
full-resolution polygon, exports keep full-resolution coordinates; damaged and over-limit files are
refused (400) before anything is stored; a large JPEG gets its pyramid built on the cpu queue."""

from __future__ import annotations

import io
import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from labelhub.accounts.models import Role
from labelhub.images.models import Image
from tests.workers.sam._helpers import grabcut_dir

W = 50_000
BLOCK = 2048
# Textured blocks (2048 px, at multiples of 4096 so that every level up to 1/4096 holds them at whole
# pixels) near three corners and the centre; the rest is an even background, as on a slide. libvips
# writes the file lazily (see docs/benchmarks.md for its cost).
BLOCKS = [(0, 0), (45056, 45056), (24576, 24576), (0, 45056)]
BACKGROUND = 240
GENERATOR = "v2"

pytestmark = pytest.mark.django_db


def _texture_sources() -> list[Path]:
    images = sorted((grabcut_dir() / "images").glob("*.jpg"))[:4]
    if len(images) < 4:
        pytest.skip(f"GrabCut images not available under {grabcut_dir()} (set LABELHUB_SHARED_DATA)")
    return images


def _block_reference() -> np.ndarray:
    """The 2048 px texture block decoded by Pillow (independently of libvips): four 256 px crops of real
    photographs, 2 x 2, repeated 4 x 4."""
    crops = [np.asarray(PILImage.open(p).convert("RGB"))[:256, :256] for p in _texture_sources()]
    unit = np.concatenate([np.concatenate(crops[:2], 1), np.concatenate(crops[2:], 1)], 0)
    return np.tile(unit, (4, 4, 1))


def _write_gigapixel(path: Path) -> None:
    import pyvips

    crops = [pyvips.Image.new_from_file(str(p)).crop(0, 0, 256, 256) for p in _texture_sources()]
    block = pyvips.Image.arrayjoin(crops, across=2).replicate(4, 4)
    big = pyvips.Image.black(W, W).new_from_image([BACKGROUND] * 3).copy(interpretation="srgb")
    for x, y in BLOCKS:
        big = big.insert(block, x, y)
    big.tiffsave(
        str(path),
        tile=True,
        pyramid=True,
        compression="jpeg",
        Q=90,
        tile_width=512,
        tile_height=512,
        bigtiff=True,
    )


@pytest.fixture(scope="session")
def gigapixel_tiff(request) -> Path:
    """The 50k x 50k pyramidal TIFF, written once (kept in pytest's cache between runs)."""
    folder = Path(request.config.cache.mkdir(f"gigapixel-{GENERATOR}"))
    path = folder / "slide.tif"
    if not path.exists():
        partial = folder / "slide.partial.tif"
        _write_gigapixel(partial)
        partial.rename(path)
    return path


@pytest.fixture
def import_root(settings, tmp_path) -> Path:
    root = tmp_path / "imports"
    root.mkdir()
    settings.LABELHUB_IMPORT_ROOTS = [root.resolve()]
    return root


def _import(org, folder: Path):
    return org.clients[Role.MANAGER].post(
        f"/api/v1/projects/{org.project.id}/images/import/", {"path": str(folder)}, format="json"
    )


@pytest.fixture
def slide(org_a, import_root, gigapixel_tiff) -> Image:
    folder = import_root / "slides"
    folder.mkdir()
    shutil.copyfile(gigapixel_tiff, folder / "slide.tif")
    response = _import(org_a, folder)
    assert response.status_code == 201, response.json()
    (created,) = response.json()["created"]
    assert (created["width"], created["height"], created["format"]) == (W, W, "TIFF")
    assert created["pyramid_status"] == "ready" and created["pyramid_progress"] == 1.0
    return Image.objects.get(pk=created["id"])


def _expected_tile(level: int, col: int, row: int, tile: int, top: int, block: np.ndarray) -> np.ndarray:
    """What Deep Zoom tile (level, col, row) shows, made from the block decoded by Pillow: the background,
    with each textured block box-reduced by the level's scale and put in its place."""
    scale = 2 ** (top - level)
    level_w = math.ceil(W / scale)
    x0, y0 = col * tile, row * tile
    x1, y1 = min(x0 + tile, level_w), min(y0 + tile, level_w)
    out = np.full((y1 - y0, x1 - x0, 3), BACKGROUND, dtype=np.float64)
    scale = W / level_w  # the level is the image resized to level_w: its exact factor
    side = BLOCK / scale
    if side >= 1:
        small = np.asarray(
            PILImage.fromarray(block).resize((round(side), round(side)), PILImage.Resampling.BOX),
            dtype=np.float64,
        )
    for bx, by in BLOCKS:
        if side < 1:
            continue
        px, py = round(bx / scale) - x0, round(by / scale) - y0
        sx0, sy0 = max(0, -px), max(0, -py)
        dx0, dy0 = max(0, px), max(0, py)
        w = min(small.shape[1] - sx0, out.shape[1] - dx0)
        h = min(small.shape[0] - sy0, out.shape[0] - dy0)
        if w > 0 and h > 0:
            out[dy0 : dy0 + h, dx0 : dx0 + w] = small[sy0 : sy0 + h, sx0 : sx0 + w]
    return out


def test_gigapixel_tiff_imports_and_serves_tiles_at_every_level(org_a, slide, settings):
    client = org_a.clients[Role.ANNOTATOR]
    tile = settings.LABELHUB_PYRAMID_TILE
    dzi = client.get(f"/api/v1/images/{slide.id}/tiles/")
    assert dzi.status_code == 200 and dzi["Content-Type"] == "application/xml"
    root = ET.fromstring(dzi.content)
    size = root.find("{http://schemas.microsoft.com/deepzoom/2008}Size")
    assert (root.get("TileSize"), size.get("Width"), size.get("Height")) == (str(tile), str(W), str(W))
    top = math.ceil(math.log2(W))
    block = _block_reference()
    for level in range(top + 1):
        level_w = math.ceil(W / 2 ** (top - level))
        last = (level_w - 1) // tile
        for col, row in {(0, 0), (last, last)}:
            response = client.get(f"/api/v1/images/{slide.id}/tiles/{level}/{col}_{row}.jpg")
            assert response.status_code == 200, (level, col, row, response.content[:200])
            assert response["Content-Type"] == "image/jpeg"
            assert "immutable" in response["Cache-Control"] and response["ETag"]
            got = np.asarray(PILImage.open(io.BytesIO(response.content)).convert("RGB"), dtype=np.float64)
            expected = _expected_tile(level, col, row, tile, top, block)
            assert got.shape == expected.shape, (level, col, row)
            error = np.abs(got - expected).mean()
            # JPEG twice and the reductions' kernels: a few grey levels; a misplaced or wrong-level
            # tile puts texture on background (tens of levels)
            assert error < 10, (level, col, row, error)
    # past the edge, and cached copies
    assert client.get(f"/api/v1/images/{slide.id}/tiles/{top}/{last + 1}_0.jpg").status_code == 404
    assert client.get(f"/api/v1/images/{slide.id}/tiles/{top + 1}/0_0.jpg").status_code == 404
    url = f"/api/v1/images/{slide.id}/tiles/{top}/0_0.jpg"
    etag = client.get(url)["ETag"]
    assert client.get(url, HTTP_IF_NONE_MATCH=etag).status_code == 304


def test_tiles_of_other_organizations_and_ordinary_images(org_a, org_b, slide):
    assert org_b.clients[Role.OWNER].get(f"/api/v1/images/{slide.id}/tiles/").status_code == 404
    assert org_b.clients[Role.OWNER].get(f"/api/v1/images/{slide.id}/tiles/0/0_0.jpg").status_code == 404
    from tests.helpers import upload

    small = upload(org_a.clients[Role.MANAGER], org_a.project.id, ("a.png", _png(64, 48)))
    image_id = small.json()["created"][0]["id"]
    answer = org_a.clients[Role.MANAGER].get(f"/api/v1/images/{image_id}/tiles/")
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "not_a_pyramid"


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)).save(
        buf, format="PNG"
    )
    return buf.getvalue()


def test_click_near_a_tile_corner_answers_full_resolution_polygons(org_a, slide):
    client = org_a.clients[Role.ANNOTATOR]
    url = f"/api/v1/images/{slide.id}/segment/"
    # full zoom: a 600 px view in the bottom-right textured block; the click 3 px from a tile corner
    corner = 46_592  # 182 x 256: a corner of four Deep Zoom tiles (and of 512 px TIFF tiles: 91 x 512)
    window = {"x": corner - 300, "y": corner - 300, "width": 600, "height": 600}
    click = [corner + 3, corner - 3]
    answer = client.post(url, {"points": [click], "point_labels": [1], "window": window}, format="json")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["window"]["scale"] == 1.0 and body["polygons"]
    xs = [x for p in body["polygons"] for x, _ in p["exterior"]]
    ys = [y for p in body["polygons"] for _, y in p["exterior"]]
    assert window["x"] <= min(xs) and max(xs) <= window["x"] + window["width"]
    assert window["y"] <= min(ys) and max(ys) <= window["y"] + window["height"]
    assert min(xs) <= click[0] <= max(xs) and min(ys) <= click[1] <= max(ys)
    # the same click zoomed out (a 6000 px view, read at 1/6 scale): full-resolution coordinates still
    wide = {"x": corner - 3000, "y": corner - 3000, "width": 6000, "height": 6000}
    zoomed = client.post(url, {"points": [click], "point_labels": [1], "window": wide}, format="json").json()
    assert zoomed["window"]["scale"] > 5 and zoomed["polygons"]
    assert all(x >= wide["x"] - 1e-6 for p in zoomed["polygons"] for x, _ in p["exterior"])
    # a second click in the same window reuses its embedding
    again = client.post(url, {"points": [click], "point_labels": [1], "window": window}, format="json").json()
    assert again["embedding"] in {"process", "redis"} and again["polygons"] == body["polygons"]


def test_click_on_a_gigapixel_image_needs_a_window_inside_it(org_a, slide):
    client = org_a.clients[Role.ANNOTATOR]
    url = f"/api/v1/images/{slide.id}/segment/"
    missing = client.post(url, {"points": [[100, 100]], "point_labels": [1]}, format="json")
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "window"
    outside = {"x": W - 100, "y": 0, "width": 200, "height": 200}
    bad = client.post(url, {"points": [[W - 50, 50]], "point_labels": [1], "window": outside}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "window"
    away = {"x": 0, "y": 0, "width": 500, "height": 500}
    far = client.post(url, {"points": [[900, 900]], "point_labels": [1], "window": away}, format="json")
    assert far.status_code == 400 and far.json()["error"]["field"] == "points"


def test_export_of_a_gigapixel_image_keeps_full_resolution_coordinates(
    org_a, slide, django_capture_on_commit_callbacks
):
    from labelhub.labeling.annotations import Writer, annotation_write
    from labelhub.labeling.models import Task, TaskStatus
    from tests.helpers import square

    owner = org_a.users[Role.OWNER]
    task = slide.task
    region = {
        "id": "r1",
        "label": "dog",
        "kind": "polygon",
        "polygons": [square(49_800.5, 49_700, 49_990, 49_950.25)],
    }
    annotation_write(
        task=task,
        author=owner,
        base_revision=task.annotation.current_revision,
        regions=[region],
        writer=Writer.IMPORT,
    )
    Task.objects.filter(pk=task.pk).update(status=TaskStatus.DONE, stage="final-qa")
    with django_capture_on_commit_callbacks(execute=True):
        created = org_a.clients[Role.MANAGER].post(
            f"/api/v1/projects/{org_a.project.id}/exports/",
            {"format": "coco", "include_images": False},
            format="json",
        )
    assert created.status_code == 202, created.json()
    download = org_a.clients[Role.MANAGER].get(f"/api/v1/exports/{created.json()['id']}/download/")
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    coco = json.loads(archive.read(next(n for n in archive.namelist() if n.endswith(".json"))))
    (image,) = coco["images"]
    assert (image["width"], image["height"]) == (W, W)
    (annotation,) = coco["annotations"]
    assert annotation["bbox"] == pytest.approx([49_800.5, 49_700, 189.5, 250.25])
    assert min(annotation["segmentation"][0][0::2]) == pytest.approx(49_800.5)


def test_damaged_and_over_limit_large_images_are_refused_before_storing(
    org_a, import_root, gigapixel_tiff, settings
):
    def stored_files(settings) -> list:
        root = Path(settings.MEDIA_ROOT)
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []

    cases = {
        "truncated": lambda p: p.write_bytes(gigapixel_tiff.read_bytes()[: 20 * 1024 * 1024]),
        "garbage": lambda p: p.write_bytes(b"II*\x00" + b"\x13" * (60 * 1024 * 1024)),
    }
    for name, write in cases.items():
        folder = import_root / name
        folder.mkdir()
        write(folder / "slide.tif")
        response = _import(org_a, folder)
        assert response.status_code == 400, (name, response.json())
        assert response.json()["error"]["field"] == "path[0]"
        assert response.json()["error"]["code"] == "corrupt_image", (name, response.json())
    over = import_root / "over"
    over.mkdir()
    shutil.copyfile(gigapixel_tiff, over / "slide.tif")
    settings.LABELHUB_MAX_PYRAMID_PIXELS = W * W - 1
    response = _import(org_a, over)
    assert response.status_code == 400 and response.json()["error"]["code"] == "image_too_large"
    settings.LABELHUB_MAX_PYRAMID_PIXELS = W * W
    settings.LABELHUB_MAX_PYRAMID_BYTES = gigapixel_tiff.stat().st_size - 1
    response = _import(org_a, over)
    assert response.status_code == 400 and response.json()["error"]["code"] == "file_too_large"
    assert Image.objects.count() == 0 and stored_files(settings) == []


def test_a_large_jpeg_gets_its_pyramid_built_on_the_cpu_queue(
    org_a, import_root, settings, django_capture_on_commit_callbacks
):
    from labelhub.celery import app
    from labelhub.images.tasks import build_pyramid

    assert app.amqp.router.route({}, build_pyramid.name)["queue"].name == "cpu"
    source = _block_reference()[:1500, :2000]
    folder = import_root / "photos"
    folder.mkdir()
    PILImage.fromarray(source).save(folder / "scene.jpg", quality=95)
    settings.LABELHUB_MAX_IMAGE_PIXELS = 1_000_000  # 3 MP is "large" here: the pyramid path
    with django_capture_on_commit_callbacks(execute=True):
        response = _import(org_a, folder)
    assert response.status_code == 201, response.json()
    image = Image.objects.get(pk=response.json()["created"][0]["id"])
    assert image.pyramid_status == "ready" and image.pyramid_progress == 1.0, image.pyramid_error
    assert image.pyramid.name != image.file.name
    client = org_a.clients[Role.ANNOTATOR]
    top = math.ceil(math.log2(2000))
    tile = client.get(f"/api/v1/images/{image.id}/tiles/{top}/3_2.jpg")
    got = np.asarray(PILImage.open(io.BytesIO(tile.content)).convert("RGB"), dtype=np.float64)
    assert got.shape == (256, 256, 3)
    assert np.abs(got - source[512:768, 768:1024]).mean() < 6
    # an ordinary upload of the same size is refused as before (uploads keep the ordinary limit)
    from tests.helpers import upload

    response = upload(
        org_a.clients[Role.MANAGER], org_a.project.id, ("scene.jpg", (folder / "scene.jpg").read_bytes())
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "image_too_large"
    shutil.rmtree(folder)


def test_everything_mode_on_a_slide_runs_tile_by_tile_in_full_resolution_coordinates(org_a, slide, settings):
    from labelhub.predictions.services import images_presegment

    # a small reading of the slide so the classical backend's tiles stay quick: 1536 px, tiles of 512
    settings.LABELHUB_PYRAMID_PRESEGMENT_MAX_SIDE = 1536
    settings.LABELHUB_PYRAMID_PRESEGMENT_TILE = 512
    settings.LABELHUB_PYRAMID_PRESEGMENT_OVERLAP = 64
    prediction = images_presegment(image_ids=[slide.id])[slide.id]
    assert prediction.status == "ok", prediction.error
    assert prediction.regions
    points = np.array([pt for r in prediction.regions for p in r["polygons"] for pt in p["exterior"]])
    assert points.min() >= 0 and points.max() <= W
    # objects come from the textured blocks, found in full-resolution coordinates (far beyond 1536 px)
    assert points[:, 0].max() > 45_056 and points[:, 1].max() > 45_056
