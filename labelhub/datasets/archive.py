"""The export archive: a snapshot's items streamed, chunk by chunk, through its format into a zip in a
temporary file, then stored; the run's result or failure recorded while it holds the export's claim."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
import zipfile
from collections import Counter
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import CharField, TextField
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from labelhub.core.files import files_delete_on_commit
from labelhub.core.jobs import ClaimLost
from labelhub.images.models import Image

from .formats import FORMATS, Record
from .formats.base import COORDINATES, temp_dir
from .jobs import EXPORT_JOBS
from .models import Export, ExportItem, ExportStatus, Subset
from .split import split_items

log = logging.getLogger(__name__)


def safe_name(name: str, image_id: int) -> str:
    name = "".join(ch for ch in name.replace("\\", "_").replace("/", "_") if ch >= " ")
    if name in ("", ".", "..") or name.startswith("."):
        name = f"image_{image_id}{name if name not in ('.', '..') else ''}"
    return name


def _duplicate_stems(export: Export, chunk: int) -> set[str]:
    counts: Counter[str] = Counter()
    for image_id, name in export.items.values_list(
        "image_id", Coalesce("image__original_name", "original_name")
    ).iterator(chunk_size=chunk):
        counts[Path(safe_name(name, image_id)).stem.lower()] += 1
    return {stem for stem, n in counts.items() if n > 1}


def export_file_name(original_name: str, image_id: int, duplicates: set[str]) -> str:
    """The image's original name, made unique with `_<image id>` when another image shares its stem."""
    name = safe_name(original_name, image_id)
    path = Path(name)
    if path.stem.lower() in duplicates:
        return f"{path.stem}_{image_id}{path.suffix}"
    return name


def archive_write(export: Export, token: int) -> None:
    """The archive of export run `token` (which holds the claim); its result or failure is recorded on
    the row only while the claim is still its own (ClaimLost otherwise)."""
    chunk = settings.LABELHUB_EXPORT_CHUNK_SIZE
    project = export.project
    storage = Image._meta.get_field("file").storage
    classes = set(export.filters["classes"]) if export.filters.get("classes") else None
    try:
        split_items(export, classes, chunk)
        duplicates = _duplicate_stems(export, chunk)
        with temp_dir(settings.LABELHUB_EXPORT_TMP_DIR) as tmp:
            tmpdir = Path(tmp)
            archive = tmpdir / "export.zip"
            done = regions_written = 0
            last = time.monotonic()
            meta = {
                "export_id": export.id,
                "stuff": sorted(project.stuff_classes),
                "description": f"LabelHub project {project.name!r}, export {export.id}",
                "project": {
                    "id": project.id,
                    "name": project.name,
                    "label_schema": project.label_schema,
                    "pipeline": project.pipeline,
                    "segmentation": project.segmentation,
                },
                "export": {
                    "id": export.id,
                    "format": export.format,
                    "filters": export.filters,
                    "split": export.split,
                    "created_at": export.created_at.isoformat(),
                    "coordinates": COORDINATES,
                    "quality": export.quality,
                },
            }
            with zipfile.ZipFile(
                archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True
            ) as zf:
                fmt = FORMATS[export.format](
                    zf=zf,
                    classes=project.class_names,
                    colors=[c.get("color", "") for c in project.label_schema],
                    tmpdir=tmpdir,
                    meta=meta,
                )
                fmt.begin()
                snapshot = open(tmpdir / "snapshot.csv", "w", encoding="utf-8")  # noqa: SIM115
                snapshot.write("image_id,task_id,revision,subset,file_name\n")
                # The regions come as JSON text: a format that copies them verbatim never decodes them.
                raw = fmt.raw_regions and classes is None
                # An item detached from a deleted image reads its own copy (see ExportItem).
                rows = export.items.annotate(
                    regions_text=Coalesce(Cast("revision__regions", TextField()), Cast("regions", TextField())),
                    name_=Coalesce("image__original_name", "original_name"), width_=Coalesce("image__width", "width"),
                    height_=Coalesce("image__height", "height"), sha256_=Coalesce("image__sha256", "sha256"),
                    file_=Coalesce("image__file", "image_file", output_field=CharField()), stage_=Coalesce("revision__stage", "stage"),
                ).order_by("image_id").values_list(
                    "image_id", "task_id", "revision_number", "subset", "name_", "width_", "height_", "sha256_",
                    "file_", "regions_text", "stage_",
                )  # fmt: skip
                for row in rows.iterator(chunk_size=chunk):
                    (image_id, task_id, number, subset, original_name, width, height, sha256, file_name,
                     regions, stage) = row  # fmt: skip
                    stage = stage or ""
                    regions_json = regions or "[]"
                    regions = None if raw else json.loads(regions_json)
                    if classes is not None:
                        regions = [r for r in regions if r.get("label") in classes]
                    record = Record(
                        image_id=image_id,
                        task_id=task_id,
                        revision_number=number,
                        file_name=export_file_name(original_name, image_id, duplicates),
                        width=width,
                        height=height,
                        subset=subset or Subset.TRAIN,
                        regions=regions,
                        regions_json=regions_json if raw else None,
                        sha256=sha256,
                        stage=stage,
                        original_name=original_name,
                    )
                    regions_written += fmt.add(record)
                    if export.include_images:
                        with (
                            storage.open(file_name, "rb") as src,
                            zf.open(fmt.image_path(record), "w", force_zip64=True) as dst,
                        ):
                            shutil.copyfileobj(src, dst, 1 << 20)
                    snapshot.write(
                        f"{image_id},{task_id},{number},{record.subset},{json.dumps(record.file_name)}\n"
                    )
                    done += 1
                    if time.monotonic() - last > 1.0:
                        if not EXPORT_JOBS.held(export.id, token).update(progress_done=done):
                            raise ClaimLost(f"export {export.id}, run {token}")
                        last = time.monotonic()
                fmt.finish()
                snapshot.close()
                zf.write(snapshot.name, "labelhub/snapshot.csv")
                zf.writestr(
                    "labelhub/manifest.json",
                    json.dumps(
                        {
                            **meta["export"],
                            "project": meta["project"],
                            "images": done,
                            "regions": regions_written,
                        },
                        indent=2,
                    ),
                )
            digest = hashlib.sha256()
            with open(archive, "rb") as fh:
                while data := fh.read(1 << 20):
                    digest.update(data)
            previous = export.file.name
            with open(archive, "rb") as fh:
                name = storage_save(export.file, f"export-{export.id}.zip", fh)
            size = archive.stat().st_size
        kept = list(export.items.exclude(image_file="").values_list("image_file", flat=True))
        with transaction.atomic():
            if not EXPORT_JOBS.held(export.id, token).update(
                file=name,
                size_bytes=size,
                sha256=digest.hexdigest(),
                status=ExportStatus.DONE,
                progress_done=done,
                annotations_count=regions_written,
                finished_at=timezone.now(),
                error="",
            ):
                export.file.storage.delete(name)  # another run took over: its archive is the one
                raise ClaimLost(f"export {export.id}, run {token}")
            if previous and previous != name:  # an earlier run's archive (a failed retry's)
                transaction.on_commit(lambda: export.file.storage.delete(previous))
            if kept:  # copies of deleted images this archive needed: it holds them now
                ExportItem.objects.filter(export=export).exclude(image_file="").update(image_file="")
                files_delete_on_commit(storage, kept)
    except ClaimLost:
        raise
    except Exception as exc:  # recorded on the export; the API shows it
        log.exception("export %s failed", export.id)
        if not EXPORT_JOBS.held(export.id, token).update(
            status=ExportStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        ):
            raise ClaimLost(f"export {export.id}, run {token}") from exc


def storage_save(field_file, name: str, fh) -> str:
    """Save `fh` under (about) `name` in the storage of `field_file`; the name it got."""
    return field_file.storage.save(field_file.field.generate_filename(field_file.instance, name), File(fh))
