"""Issue 16: datasets that peer tools load as they are. Datumaro 1.13 reads every export under its own
format name with the expected items and annotations; CVAT XML and Label Studio JSON travel out and back
with every region's pixels (IoU 1.0, holes included); a panoptic project's export carries its things and
stuff; the label schema's rules (stuff, no overlap) hold; filters, repair and the version diff.
No Datumaro check for the YOLO-seg layout: every YOLO reader of Datumaro 1.13.12 (yolo, yolo_strict,
yolo_loose, yolo_ultralytics; roboflow_yolo and kaggle_yolo too) parses only 5-field box lines
(`datumaro/plugins/data_formats/yolo/base.py`, `_Subset._parse_annotations`) and refuses polygon lines."""

from __future__ import annotations

import io
import json
import zipfile

import datumaro as dm
import numpy as np
import pytest

from labelhub.core.errors import DomainError
from labelhub.datasets import exports, imports
from labelhub.datasets.formats.label_studio import brush_decode, brush_encode
from labelhub.datasets.models import ExportStatus
from labelhub.labeling.annotations import Writer, annotation_write
from labelhub.labeling.models import Annotation, AnnotationRevision, Task, TaskStatus
from labelhub.projects.services import project_create
from tests.helpers import square, ultralytics_check
from workers.geometry import polygons_to_mask, rle_to_mask

from .conftest import annotate, disc_rle, make_images, read_zip

pytestmark = pytest.mark.django_db


def annotation_save(**kwargs):
    return annotation_write(writer=Writer.IMPORT, **kwargs)


def run(project, user, fmt, **kwargs):
    export = exports.export_create(project=project, user=user, format=fmt, **kwargs)
    export = exports.export_run(export_id=export.id)
    assert export.status == ExportStatus.DONE, export.error
    with export.file.open("rb") as fh:
        return export, read_zip(fh.read())


def unpack(zf: zipfile.ZipFile, tmp_path):
    root = tmp_path / "dataset"
    zf.extractall(root)
    return root


def stored(image) -> list[dict]:
    annotation = Annotation.objects.get(task__image=image)
    return AnnotationRevision.objects.get(annotation=annotation, number=annotation.current_revision).regions


def pixels(region: dict, h: int, w: int) -> np.ndarray:
    if region["kind"] == "mask":
        return rle_to_mask(region["rle"])
    return polygons_to_mask(region["polygons"], h, w)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def as_polygon_parts(region: dict) -> int:
    """How many annotations a COCO/CVAT reader sees for a region: one per part of a hole-free polygon
    region, one mask otherwise."""
    if region["kind"] == "polygon" and not any(p["holes"] for p in region["polygons"]):
        return len(region["polygons"])
    return 1


# --- Datumaro loads every export -----------------------------------------------------------------


def test_datumaro_loads_coco_instances_voc_and_cvat_exports_with_the_expected_counts(
    org_a, dataset, tmp_path
):
    owner = org_a.users["owner"]
    exported = [*dataset["accepted"], dataset["empty"]]
    regions = {image.id: stored(image) if image in dataset["accepted"] else [] for image in exported}
    parts = sum(as_polygon_parts(r) for rs in regions.values() for r in rs)

    _, zf = run(org_a.project, owner, "coco", include_images=True)
    ds = dm.Dataset.import_from(str(unpack(zf, tmp_path / "coco")), "coco_instances")
    assert len(ds) == len(exported)
    kinds = [a.type.name for item in ds for a in item.annotations]
    assert kinds.count("polygon") + kinds.count("mask") == parts
    assert [c.name for c in ds.categories()[dm.AnnotationType.label]] == ["cat", "dog"]

    _, zf = run(org_a.project, owner, "cvat", include_images=True)
    ds = dm.Dataset.import_from(str(unpack(zf, tmp_path / "cvat")), "cvat")
    assert len(ds) == len(exported)
    assert sum(len(item.annotations) for item in ds) == parts
    by_name = {item.id: item for item in ds}
    for image in dataset["accepted"]:
        item = by_name[image.original_name.rsplit(".", 1)[0]]
        masks = [a for a in item.annotations if a.type == dm.AnnotationType.mask]
        want = [r for r in regions[image.id] if as_polygon_parts(r) == 1 and r["kind"] == "mask" or
                any(p["holes"] for p in r.get("polygons") or [])]  # fmt: skip
        assert len(masks) == len(want)
        for got, region in zip(masks, want, strict=True):
            assert np.array_equal(got.image.astype(bool), pixels(region, image.height, image.width))

    _, zf = run(org_a.project, owner, "voc", include_images=True)
    root = unpack(zf, tmp_path / "voc")
    for name in ("voc", "voc_segmentation"):
        ds = dm.Dataset.import_from(str(root), name)
        assert len(ds) == len(exported), name
        instances = [a for item in ds for a in item.annotations if a.type == dm.AnnotationType.mask]
        # every region shows at least one pixel in these images: one instance mask each
        assert len(instances) == sum(len(rs) for rs in regions.values()), name


def test_ultralytics_checks_the_yolo_seg_export_from_another_folder(org_a, dataset, tmp_path):
    """Ultralytics' own `check_det_dataset`, run in a process whose working directory is elsewhere, on a
    default export (one train folder, named for val too) and on a split one (train, val, test)."""
    owner = org_a.users["owner"]
    _, plain = run(org_a.project, owner, "yolo", include_images=True)
    assert "path:" not in plain.read("data.yaml").decode()
    assert {n.split("/")[1] for n in plain.namelist() if n.startswith("images/")} == {"train"}
    _, split = run(
        org_a.project,
        owner,
        "yolo",
        include_images=True,
        split={"train": 0.4, "val": 0.3, "test": 0.3, "seed": 1},
    )
    roots = [unpack(plain, tmp_path / "plain"), unpack(split, tmp_path / "split")]
    held = {n.split("/")[1] for n in split.namelist() if n.startswith("images/")}
    assert held == {"train", "val", "test"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    checked = ultralytics_check([r / "data.yaml" for r in roots], cwd=elsewhere, config_dir=tmp_path / "yolo")

    assert checked[0]["train"] == checked[0]["val"] == str(roots[0] / "images/train")
    assert checked[0]["test"] is None
    assert [checked[1][k] for k in ("train", "val", "test")] == [
        str(roots[1] / f"images/{k}") for k in ("train", "val", "test")
    ]
    assert all(c["nc"] == 2 and c["names"] == {"0": "cat", "1": "dog"} for c in checked)


def panoptic_project(org_a):
    owner = org_a.users["owner"]
    project = project_create(
        organization_id=org_a.organization.id,
        user=owner,
        name="street",
        segmentation="panoptic",
        label_schema=[
            {"name": "car", "color": "#ff0000", "type": "thing"},
            {"name": "sky", "color": "#0000ff", "type": "stuff"},
            {"name": "road", "color": "#808080", "type": "stuff"},
        ],
    )
    return project, owner


def test_panoptic_export_loads_in_datumaro_with_matching_segment_ids_and_categories(org_a, tmp_path):
    project, owner = panoptic_project(org_a)
    images = make_images(project, owner, 2, prefix="street")
    for k, image in enumerate(images):
        annotate(image, owner, [
            {"id": "sky", "label": "sky", "polygons": [square(0, 0, 64, 16)]},
            {"id": "road", "label": "road", "polygons": [square(0, 32, 64, 48)]},
            {"id": "car1", "label": "car", "polygons": [square(4 + k, 20, 20, 30)]},
            {"id": "car2", "label": "car", "kind": "mask", "rle": disc_rle(48, 64, 40, 24, 5)},
        ])  # fmt: skip
    Task.objects.filter(project=project).update(status=TaskStatus.DONE)
    _, zf = run(project, owner, "coco_panoptic", include_images=True)
    doc = json.loads(zf.read("annotations/panoptic_train.json"))
    assert [(c["name"], c["isthing"]) for c in doc["categories"]] == [("car", 1), ("sky", 0), ("road", 0)]
    ds = dm.Dataset.import_from(str(unpack(zf, tmp_path / "panoptic")), "coco_panoptic")
    assert len(ds) == 2
    labels = ds.categories()[dm.AnnotationType.label]
    assert [c.name for c in labels] == ["car", "sky", "road"]
    by_id = {a["image_id"]: a for a in doc["annotations"]}
    for image in images:
        item = next(i for i in ds if i.id == image.original_name.rsplit(".", 1)[0])
        segments = {s["id"]: s for s in by_id[image.id]["segments_info"]}
        assert len(segments) == 4
        got = {a.id: a for a in item.annotations}
        assert set(got) == set(segments)  # Datumaro's ids are the segment ids
        regions = {r["id"]: r for r in stored(image)}
        for sid, segment in segments.items():
            ann = got[sid]
            assert labels[ann.label].name == doc["categories"][segment["category_id"] - 1]["name"]
            region = regions[segment["attributes"]["labelhub_region_id"]]
            assert np.array_equal(ann.image.astype(bool), pixels(region, 48, 64))
            assert segment["area"] == int(pixels(region, 48, 64).sum())


def test_panoptic_project_refuses_overlaps_with_the_field_named_unless_z_order_resolves_them(org_a):
    project, owner = panoptic_project(org_a)
    image = make_images(project, owner, 1, prefix="ov")[0]
    task = image.task
    overlapping = [
        {"id": "a", "label": "car", "polygons": [square(0, 0, 20, 20)]},
        {"id": "b", "label": "car", "polygons": [square(10, 10, 30, 30)]},
    ]
    with pytest.raises(DomainError) as refused:
        annotation_save(task=task, author=owner, base_revision=0, regions=overlapping)
    assert refused.value.field == "regions[1]" and refused.value.code == "overlapping_regions"
    assert "100 pixel" in refused.value.message
    # touching is not overlapping: pixels are decided by their centres
    annotation_save(task=task, author=owner, base_revision=0, regions=[overlapping[0], {
        "id": "c", "label": "car", "polygons": [square(20, 0, 30, 20)]}])  # fmt: skip
    # an explicit order resolves the overlap: the higher z_order owns the pixels
    ordered = [{**overlapping[0], "z_order": 1}, {**overlapping[1], "z_order": 0}]
    revision = annotation_save(task=task, author=owner, base_revision=1, regions=ordered)
    assert [r["z_order"] for r in revision.regions] == [1, 0]
    two_skies = [
        {"id": "s1", "label": "sky", "polygons": [square(0, 0, 10, 5)]},
        {"id": "s2", "label": "sky", "polygons": [square(20, 0, 30, 5)]},
    ]
    with pytest.raises(DomainError) as refused:
        annotation_save(task=task, author=owner, base_revision=2, regions=two_skies)
    assert refused.value.field == "regions[1].label" and refused.value.code == "stuff_repeated"
    # the same rule through the API: 400 naming the field, nothing saved
    client = org_a.clients["owner"]
    response = client.put(
        f"/api/v1/tasks/{task.id}/annotation/", {"revision": 2, "regions": overlapping}, format="json"
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "regions[1]"
    assert Annotation.objects.get(task=task).current_revision == 2
    # AI pre-labels are seeds (SAM's masks overlap): checked when a person saves, not when they arrive
    from labelhub.labeling.annotations import annotation_prelabel

    seeded = make_images(project, owner, 1, prefix="seed")[0]
    assert (
        annotation_prelabel(task=seeded.task, regions=[{**r, "source": "ai"} for r in overlapping])
        is not None
    )
    # in an instance project (the default) the same regions are fine
    other = make_images(org_a.project, owner, 1, prefix="inst")[0]
    annotate(other, owner, [{**r, "label": "cat"} for r in overlapping])


def test_schema_and_segmentation_are_validated_with_the_field_named(org_a):
    client = org_a.clients["owner"]
    url = f"/api/v1/projects/{org_a.project.id}/"
    bad = client.patch(url, {"label_schema": [{"name": "x", "type": "blob"}]}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "label_schema[0].type"
    bad = client.patch(url, {"segmentation": "cubist"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "segmentation"
    ok = client.patch(url, {"segmentation": "semantic"}, format="json")
    assert ok.status_code == 200 and ok.json()["segmentation"] == "semantic"
    assert [c["type"] for c in ok.json()["label_schema"]] == ["thing", "thing"]


# --- round trips ---------------------------------------------------------------------------------


def round_trip(org_a, dataset, fmt: str, zf: zipfile.ZipFile, entry: str):
    """Import an export's label file into a fresh project holding the same images; compare regions."""
    owner = org_a.users["owner"]
    project = project_create(
        organization_id=org_a.organization.id,
        user=owner,
        name=f"back-{fmt}",
        label_schema=org_a.project.label_schema,
    )
    copies = {}
    for k, image in enumerate([*dataset["accepted"], dataset["empty"]]):
        copy = make_images(project, owner, 1, width=image.width, height=image.height, prefix=f"{fmt}-{k}-")[0]
        copy.original_name = image.original_name  # the import matches images by original name
        copy.save(update_fields=["original_name"])
        copies[image.id] = copy
    result = imports.import_file(
        project=project, fh=io.BytesIO(zf.read(entry)), file_name=entry, fmt=fmt, user=owner
    )
    assert result.images_matched == len(dataset["accepted"]) + 1  # the empty image: an empty annotation
    checked = 0
    for image in dataset["accepted"]:
        before = stored(image)
        after = stored(copies[image.id])
        assert [r["label"] for r in after] == [r["label"] for r in before]
        for old, new in zip(before, after, strict=True):
            h, w = image.height, image.width
            assert iou(pixels(old, h, w), pixels(new, h, w)) == 1.0
            if old["kind"] == "polygon" and not any(p["holes"] for p in old["polygons"]):
                assert new["kind"] == "polygon" and new["polygons"] == old["polygons"]  # the vertices too
            checked += 1
    return checked


def test_cvat_round_trip_keeps_every_polygon_and_mask(org_a, dataset):
    _, zf = run(org_a.project, org_a.users["owner"], "cvat")
    assert round_trip(org_a, dataset, "cvat", zf, "annotations.xml") == 4 * len(dataset["accepted"])


def test_label_studio_round_trip_keeps_every_polygon_and_mask(org_a, dataset):
    _, zf = run(org_a.project, org_a.users["owner"], "label_studio")
    tasks = json.loads(zf.read("label_studio.json"))
    types = {r["type"] for t in tasks for r in t["annotations"][0]["result"]}
    assert types == {"polygonlabels", "brushlabels"}
    assert round_trip(org_a, dataset, "label_studio", zf, "label_studio.json") == 4 * len(dataset["accepted"])


def test_cvat_and_label_studio_files_import_as_predictions(org_a, dataset):
    from labelhub.predictions.models import Prediction

    owner = org_a.users["owner"]
    for fmt, entry in (("cvat", "annotations.xml"), ("label_studio", "label_studio.json")):
        _, zf = run(org_a.project, owner, fmt)
        result = imports.import_file(project=org_a.project, fh=io.BytesIO(zf.read(entry)), file_name=entry,
                                     fmt=fmt, target="predictions", user=owner, model_name=f"from-{fmt}")  # fmt: skip
        predictions = Prediction.objects.filter(id__in=result.predictions)
        assert predictions.count() == len(dataset["accepted"]) + 1
        for prediction in predictions:
            assert prediction.model_name == f"from-{fmt}"
            assert all(r["source"] == "ai" for r in prediction.regions)
            regions = stored(prediction.image) if prediction.image in dataset["accepted"] else []
            assert len(prediction.regions) == len(regions)


def test_brush_rle_round_trips_and_follows_the_rle_pack_header():
    rng = np.random.default_rng(3)
    for h, w in ((1, 1), (7, 13), (300, 290)):
        mask = rng.random((h, w)) < 0.3
        mask[: h // 2] = True  # long runs too (> 2^16 values: split)
        rle = brush_encode(mask)
        assert int.from_bytes(bytes(rle[:4]), "big") == h * w * 4  # 32-bit count of RGBA values
        assert np.array_equal(brush_decode(rle, h, w), mask)
    with pytest.raises(ValueError):
        brush_decode(brush_encode(np.ones((4, 4), bool)), 4, 5)


# --- repair --------------------------------------------------------------------------------------


def bowtie_file(image, fmt: str) -> bytes:
    if fmt == "cvat":
        return (
            f'<annotations><version>1.1</version><image id="0" name="{image.original_name}" '
            f'width="{image.width}" height="{image.height}"><polygon label="cat" points="2,2;20,20;20,2;2,20" '
            'z_order="0"></polygon></image></annotations>'
        ).encode()
    w, h = image.width, image.height
    pts = [
        [2 * 100 / w, 2 * 100 / h],
        [20 * 100 / w, 20 * 100 / h],
        [20 * 100 / w, 2 * 100 / h],
        [2 * 100 / w, 20 * 100 / h],
    ]
    result = {"id": "bt", "type": "polygonlabels", "original_width": w, "original_height": h,
              "value": {"points": pts, "polygonlabels": ["cat"]}}  # fmt: skip
    return json.dumps([{"data": {"image": f"/data/upload/1/0a1b2c3d-{image.original_name}"},
                        "annotations": [{"result": [result]}]}]).encode()  # fmt: skip


@pytest.mark.parametrize("fmt", ["cvat", "label_studio"])
def test_self_intersecting_polygons_are_refused_unless_repair_is_asked_for(org_a, fmt):
    owner = org_a.users["owner"]
    image = make_images(org_a.project, owner, 1, prefix="bow")[0]
    data = bowtie_file(image, fmt)
    with pytest.raises(DomainError) as refused:
        imports.import_file(project=org_a.project, fh=io.BytesIO(data), file_name="x", fmt=fmt, user=owner)
    problems = refused.value.details["problems"]
    assert len(problems) == 1 and "Self-intersection" in problems[0]["message"]
    assert Annotation.objects.get(task__image=image).current_revision == 0
    result = imports.import_file(
        project=org_a.project, fh=io.BytesIO(data), file_name="x", fmt=fmt, user=owner, repair=True
    )
    assert len(result.repaired) == 1 and result.repaired[0]["parts"] == 2  # the bow-tie's two triangles
    region = stored(image)[0]
    assert len(region["polygons"]) == 2
    # make_valid keeps the area the outline encloses: two triangles of 81 px^2
    want = polygons_to_mask([{"exterior": [[2, 2], [11, 11], [2, 20]], "holes": []},
                             {"exterior": [[20, 2], [11, 11], [20, 20]], "holes": []}], 48, 64)  # fmt: skip
    assert np.array_equal(pixels(region, 48, 64), want)


# --- filters -------------------------------------------------------------------------------------


def test_filters_accepted_annotated_and_empty_have_exact_meanings(org_a, dataset):
    owner = org_a.users["owner"]
    never = make_images(org_a.project, owner, 1, prefix="never")[0]  # not accepted, nobody labelled it
    prelabelled = make_images(org_a.project, owner, 1, prefix="ai")[0]  # AI pre-labels only
    annotation_save(task=prelabelled.task, author=None, base_revision=0, regions=[
        {"id": "p", "label": "cat", "polygons": [square(1, 1, 5, 5)], "source": "ai"}])  # fmt: skip
    accepted = {i.id for i in dataset["accepted"]} | {dataset["empty"].id}

    def images(**filters) -> set[int]:
        export = exports.export_create(project=org_a.project, user=owner, format="coco", filters=filters)
        return set(export.items.values_list("image_id", flat=True))

    assert images() == accepted  # the default: accepted only (an accepted empty image is a labelled negative)
    assert images(accepted=False, annotated=True) == {dataset["open"].id}
    assert images(annotated=True) == accepted | {dataset["open"].id}
    assert images(accepted=False, include_empty=True) == {never.id, prelabelled.id}
    assert images(include_unaccepted=True) == accepted | {dataset["open"].id, never.id, prelabelled.id}
    with pytest.raises(DomainError) as refused:
        images(accepted=False)
    assert refused.value.field == "filters.accepted"
    with pytest.raises(DomainError) as refused:
        images(include_empty="yes")
    assert refused.value.field == "filters.include_empty"


# --- versions ------------------------------------------------------------------------------------


def test_diff_between_two_dataset_versions_from_the_api(org_a, org_b, dataset):
    owner = org_a.users["owner"]
    client = org_a.clients["owner"]
    first = exports.export_create(project=org_a.project, user=owner, format="labelhub")
    changed, dropped = dataset["accepted"][0], dataset["accepted"][1]
    regions = stored(changed)
    regions = [
        {**regions[0], "label": "dog"},
        *regions[2:],
        {"id": "new", "label": "cat", "polygons": [square(1, 1, 4, 4)]},
    ]
    Task.objects.filter(image=changed).update(status=TaskStatus.OPEN)  # accepted work is final: reopen it
    annotate(changed, owner, regions)
    Task.objects.filter(image=changed).update(status=TaskStatus.DONE)
    Task.objects.filter(image=dropped).update(status=TaskStatus.OPEN)
    added = make_images(org_a.project, owner, 1, prefix="late")[0]
    annotate(added, owner, [{"id": "x", "label": "cat", "polygons": [square(1, 1, 4, 4)]}])
    Task.objects.filter(image=added).update(status=TaskStatus.DONE)
    second = exports.export_create(project=org_a.project, user=owner, format="labelhub")

    response = client.get(f"/api/v1/exports/{second.id}/diff/?against={first.id}")
    assert response.status_code == 200, response.content
    diff = response.json()
    assert diff["items"] == {"added": [added.id], "removed": [dropped.id], "changed": [changed.id],
                             "unchanged": len(dataset["accepted"]) - 1}  # fmt: skip
    [change] = diff["changes"]
    assert change["image"] == changed.id and (change["from_revision"], change["to_revision"]) == (1, 2)
    assert change["added"] == ["new"] and change["changed"] == ["sq0"] and change["removed"] == ["ho0"]
    assert diff["regions"] == {"added": 1 + 1, "removed": 1 + 4, "changed": 1}
    assert client.get(f"/api/v1/exports/{second.id}/diff/?against=x").json()["error"]["field"] == "against"
    other = exports.export_create(project=org_b.project, user=org_b.users["owner"], format="coco")
    assert client.get(f"/api/v1/exports/{second.id}/diff/?against={other.id}").status_code == 404


def test_manifest_states_the_coordinate_convention(org_a, dataset):
    _, zf = run(org_a.project, org_a.users["owner"], "coco")
    manifest = json.loads(zf.read("labelhub/manifest.json"))
    assert "pixel corners" in manifest["coordinates"] and "centre" in manifest["coordinates"]
