"""The import machinery every format shares: reading an upload (a label file, or a zip of label files
and images, checked against zip slip and zip bombs), adding the zip's images, and writing the regions a
format's parser built (see formats/) as annotation revisions or as predictions. Every problem of a file
is reported at once, with its location (a JSON path for COCO, `file:line` for YOLO, the entry name for
zips); an import is all or nothing.
"""

from __future__ import annotations

import io
import stat
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import numpy as np
from django.conf import settings
from django.db import transaction

from labelhub.core.errors import DomainError
from labelhub.core.parsers import JSONTooDeep, json_depth_scan
from labelhub.core.queue import enqueue_on_commit
from labelhub.images.models import Image
from labelhub.images.services import IMPORT_SUFFIXES, IncomingFile, images_add
from labelhub.labeling.annotations import Writer, annotation_write
from labelhub.labeling.models import Annotation
from labelhub.predictions.models import Prediction, PredictionStatus
from labelhub.projects.models import Project
from labelhub.regions.validation import regions_clean

from .formats import IMPORT_FORMATS as PARSERS
from .formats.base import ProjectImages, Report
from .repair import Repairs

IMPORT_FORMATS = (*PARSERS, "images")  # "images": a zip of image files, no labels
IMPORT_TARGETS = ("annotations", "predictions")


@dataclass
class ImportResult:
    format: str
    target: str
    images_created: int = 0
    images_matched: int = 0
    regions: int = 0
    revisions: list[int] = field(default_factory=list)  # ids of the AnnotationRevisions written
    predictions: list[int] = field(default_factory=list)  # ids of the Predictions written
    box_prompts: int = 0  # COCO boxes without segmentation, queued for the segmentation model
    # with repair: one {"path", "region", "problem", "parts"} per region whose polygons make_valid fixed
    repaired: list[dict] = field(default_factory=list)


# --- zips ----------------------------------------------------------------------------------------


def zip_members(zf: zipfile.ZipFile, report: Report) -> list[zipfile.ZipInfo]:
    """The regular files of a zip; absolute paths, `..` components, drive letters, links and
    oversized archives are problems (zip slip, zip bombs)."""
    members = []
    total = 0
    for info in zf.infolist():
        name = info.filename
        where = f"zip:{name}"
        parts = name.replace("\\", "/").split("/")
        mode = info.external_attr >> 16
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            report.add(where, "An absolute path in a zip is refused.")
            continue
        if ".." in parts:
            report.add(where, "A path with '..' in a zip is refused (it would escape the target).")
            continue
        if stat.S_ISLNK(mode):
            report.add(where, "A symbolic link in a zip is refused.")
            continue
        if "\x00" in name:
            report.add(where, "A NUL byte in a zip entry name is refused.")
            continue
        if info.is_dir() or (stat.S_IFMT(mode) and not stat.S_ISREG(mode)):  # no type bits: a plain file
            continue
        if parts[0] == "__MACOSX" or PurePosixPath(name).name.startswith("._"):
            continue
        if (
            PurePosixPath(name).suffix.lower() in IMPORT_SUFFIXES
            and info.file_size > settings.LABELHUB_MAX_UPLOAD_BYTES
        ):
            report.add(
                where,
                f"The entry declares {info.file_size} bytes; one image may have {settings.LABELHUB_MAX_UPLOAD_BYTES}.",
            )
            continue
        total += info.file_size
        members.append(info)
    if total > settings.LABELHUB_IMPORT_MAX_UNCOMPRESSED_BYTES:
        report.add(
            "zip",
            f"The zip expands to {total} bytes; the limit is {settings.LABELHUB_IMPORT_MAX_UNCOMPRESSED_BYTES}.",
        )
    return members


def zip_entry_copy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dst: BinaryIO, *, limit: int) -> None:
    """Copy one entry to `dst`, refusing it (naming the entry) as soon as it passes `limit` bytes or the
    size its header declares, or when its data is corrupt or its CRC does not match: checked while
    extracting, so a lying header never fills the disk."""
    where = f"zip:{info.filename}"
    _local_crc_check(zf, info, where)
    written = 0
    try:
        with zf.open(info) as src:
            while data := src.read(1 << 20):
                written += len(data)
                if written > min(limit, info.file_size):
                    problem = (
                        f"The entry is larger than the {limit} bytes allowed for one file."
                        if written > limit
                        else f"The entry holds more than the {info.file_size} bytes its header declares."
                    )
                    _refuse_entry(where, problem)
                dst.write(data)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError) as exc:
        _refuse_entry(where, f"The entry is corrupt: {exc}")


_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader: the CRC-32 is field 7
_DATA_DESCRIPTOR = 0x08  # general purpose flag: CRC and sizes follow the data (the local CRC field is 0)


def _local_crc_check(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> None:
    """Refuse an entry whose local header names another CRC-32 than the central directory. Python's
    zipfile checks the data against the central directory's CRC only; other unzip tools trust the local
    header, so two tools would read two different files from one archive."""
    if info.flag_bits & _DATA_DESCRIPTOR:
        return
    fp = zf.fp
    if fp is None:
        return
    fp.seek(info.header_offset)
    raw = fp.read(_LOCAL_HEADER.size)
    if len(raw) != _LOCAL_HEADER.size or raw[:4] != zipfile.stringFileHeader:
        _refuse_entry(where, "The entry's local header is missing or corrupt.")
    local_crc = _LOCAL_HEADER.unpack(raw)[7]
    if local_crc != info.CRC:
        _refuse_entry(
            where,
            f"The entry's local header CRC-32 ({local_crc:08x}) differs from the central directory's "
            f"({info.CRC:08x}).",
        )


def zip_entry_read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int) -> bytes:
    buf = io.BytesIO()
    zip_entry_copy(zf, info, buf, limit=limit)
    return buf.getvalue()


def _refuse_entry(where: str, message: str) -> None:
    report = Report()
    report.add(where, message)
    report.raise_if_any(f"zip entry '{where[4:]}'")


def open_zip(fh: BinaryIO, report: Report) -> zipfile.ZipFile | None:
    try:
        return zipfile.ZipFile(fh)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        report.add("$", f"Not a readable zip file: {exc}")
        return None


def _add_zip_images(
    *, project: Project, zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], tmp: Path, user
) -> list[Image]:
    files = []
    for index, info in enumerate(members):
        suffix = PurePosixPath(info.filename).suffix.lower()
        if suffix not in IMPORT_SUFFIXES:
            continue
        target = tmp / f"{index}{suffix}"  # our own name: nothing in the zip decides where it is written
        with open(target, "wb") as dst:
            zip_entry_copy(zf, info, dst, limit=settings.LABELHUB_MAX_UPLOAD_BYTES)
        files.append(IncomingFile(name=PurePosixPath(info.filename).name, path=target))
    if not files:
        return []
    result = images_add(
        project=project,
        files=files,
        user=user,
        field="file",
        max_files=settings.LABELHUB_MAX_IMPORT_FILES,
        presegment=settings.LABELHUB_PRESEGMENT_ON_UPLOAD,
    )
    return result.created


def _delete_files(images: list[Image]) -> None:
    for image in images:
        for f in (image.file, image.thumbnail):
            if f.name:
                f.storage.delete(f.name)


# --- the import ----------------------------------------------------------------------------------


def _write(
    *,
    project: Project,
    regions: dict[int, list[dict]],
    target: str,
    fmt: str,
    user,
    model_name: str,
    result: ImportResult,
    report: Report,
) -> None:
    """Write the parsed regions: a revision per image through the annotation write service (which
    refuses an accepted task), or a prediction per image. Refusals go to `report`; the caller raises."""
    tasks = {
        a.task.image_id: a.task
        for a in Annotation.objects.filter(task__image_id__in=list(regions)).select_related(
            "task__image", "task__project"
        )
    }
    for image_id in sorted(regions):
        image_regions = regions[image_id]
        result.regions += len(image_regions)
        if target == "annotations":
            task = tasks[image_id]
            try:
                revision = annotation_write(
                    task=task,
                    author=user,
                    base_revision=task.annotation.current_revision,
                    regions=image_regions,
                    writer=Writer.IMPORT,
                )
            except DomainError as exc:  # e.g. an accepted task: listed like any problem of the file
                report.add(f"image:{task.image.original_name}", exc.message)
                continue
            result.revisions.append(revision.id)
        else:
            scores = [r["score"] for r in image_regions if r.get("score") is not None]
            task = tasks[image_id]
            cleaned = regions_clean(
                image_regions,
                width=task.image.width,
                height=task.image.height,
                class_names=project.class_names,
            )
            prediction = Prediction.objects.create(
                image_id=image_id,
                model_name=model_name or f"import-{fmt}",
                checkpoint_sha256="none",
                kind="import",
                status=PredictionStatus.OK,
                score=float(np.mean(scores)) if scores else None,
                regions=cleaned,
                attempts=1,
            )
            result.predictions.append(prediction.id)
    result.images_matched = len(regions)


def _queue_box_prompts(image_id: int, boxes: list[dict]) -> None:
    # After the import's commit (the worker reads its rows); a broker that refuses is logged, and the
    # import stays done: the boxes are kept in the import's result (box_prompts) for a rerun.
    enqueue_on_commit("labelhub.predictions.gpu.presegment_boxes", image_id, boxes)


class _Discard:
    """A sink for zip_entry_copy: the entry is decompressed and CRC-checked, nothing is kept."""

    def write(self, data: bytes) -> int:
        return len(data)


def _depth_check(raw: bytes, where: str, report: Report) -> None:
    try:
        json_depth_scan(raw)
    except JSONTooDeep as exc:
        report.add(where, str(exc))


def import_precheck(*, fh: BinaryIO, file_name: str, fmt: str) -> None:
    """The cheap checks of an uploaded import file, run at request time before anything is stored or
    queued, so a crafted file answers 400 instead of ending as a failed job: a zip's entry names and
    declared sizes (zip_members), then every entry decompressed and CRC-checked while streaming to
    nowhere, each capped at its declared size and its limit (so at most
    LABELHUB_IMPORT_MAX_UNCOMPRESSED_BYTES in all); JSON label files (a .json upload, or the format's
    .json entries) scanned for the nesting limit of the API's parser. DomainError `invalid_import`
    (field `file`) naming the entry (`zip:bad.png`) or the file. The job repeats its own checks."""
    parser = PARSERS.get(fmt)
    is_json = parser is not None and parser.label_suffix == ".json"
    report = Report()
    head = fh.read(4)
    fh.seek(0)
    try:
        if head.startswith(b"PK"):
            zf = open_zip(fh, report)
            members = zip_members(zf, report) if zf else []
            report.raise_if_any("zip")
            for info in members:
                where = f"zip:{info.filename}"
                is_label = parser is not None and parser.is_label_file(info.filename)
                if is_label:
                    limit = settings.LABELHUB_IMPORT_MAX_BYTES
                elif PurePosixPath(info.filename).suffix.lower() in IMPORT_SUFFIXES:
                    limit = settings.LABELHUB_MAX_UPLOAD_BYTES
                else:
                    limit = settings.LABELHUB_IMPORT_MAX_UNCOMPRESSED_BYTES
                if is_label and is_json:
                    _depth_check(zip_entry_read(zf, info, limit=limit), where, report)
                    report.raise_if_any(f"zip entry '{info.filename}'")
                else:
                    zip_entry_copy(zf, info, _Discard(), limit=limit)
        elif is_json:
            _depth_check(fh.read(), "$", report)
            report.raise_if_any("file")
    finally:
        fh.seek(0)


def import_file(
    *,
    project: Project,
    fh: BinaryIO,
    file_name: str,
    fmt: str,
    target: str = "annotations",
    user=None,
    model_name: str = "",
    repair: bool = False,
) -> ImportResult:
    """Import one uploaded file (a COCO .json, a CVAT for images 1.1 .xml, a Label Studio .json, a
    single YOLO .txt, a zip of any of them with images, or a zip of images). All or nothing: any
    problem refuses the whole file. `repair` (CVAT and Label Studio polygons): a self-intersecting
    polygon is replaced by shapely's `make_valid` of it and reported in `repaired`, instead of refused."""
    if fmt not in IMPORT_FORMATS:
        raise DomainError(f"format is one of {list(IMPORT_FORMATS)}.", field="format")
    if target not in IMPORT_TARGETS:
        raise DomainError(f"as is one of {list(IMPORT_TARGETS)}.", field="as")
    if not isinstance(repair, bool):
        raise DomainError("repair is true or false.", field="repair")
    repairs = Repairs(on=repair)
    source = "human" if target == "annotations" else "ai"
    result = ImportResult(format=fmt, target=target)
    report = Report()
    head = fh.read(4)
    fh.seek(0)
    is_zip = head.startswith(b"PK")
    created: list[Image] = []
    try:
        with tempfile.TemporaryDirectory(prefix="labelhub-import-") as tmp, transaction.atomic():
            label_files: list[tuple[str, bytes]] = []
            if is_zip:
                zf = open_zip(fh, report)
                members = zip_members(zf, report) if zf else []
                report.raise_if_any("zip")
                created = _add_zip_images(project=project, zf=zf, members=members, tmp=Path(tmp), user=user)
                result.images_created = len(created)
                parser = PARSERS.get(fmt)
                if parser is not None:
                    for info in members:
                        if parser.is_label_file(info.filename):
                            label_files.append(
                                (
                                    info.filename,
                                    zip_entry_read(zf, info, limit=settings.LABELHUB_IMPORT_MAX_BYTES),
                                )
                            )
                if fmt == "images":
                    if not created and not members:
                        report.add("zip", "The zip holds no image files.")
                    report.raise_if_any("zip")
                    return result
                if not label_files:
                    report.add("zip", f"The zip holds no {parser.label_suffix} label file.")
            elif fmt == "images":
                report.add("$", "An images import is a zip of image files.")
            else:
                label_files.append((file_name or "file", fh.read()))
            report.raise_if_any("file")
            boxes: dict[int, list[dict]] = {}
            parser = PARSERS[fmt]
            regions = parser.parse(
                label_files,
                project=project,
                images=ProjectImages(project),
                report=report,
                source=source,
                boxes=boxes,
                **({"repairs": repairs} if parser.repairable else {}),
            )
            report.raise_if_any("file")
            result.repaired = repairs.repaired
            result.box_prompts = sum(map(len, boxes.values()))
            for image_id, image_boxes in boxes.items():
                _queue_box_prompts(image_id, image_boxes)
            _write(
                project=project,
                regions=regions,
                target=target,
                fmt=fmt,
                user=user,
                model_name=model_name,
                result=result,
                report=report,
            )
            report.raise_if_any("file")  # rolls back every revision written above
    except BaseException:
        _delete_files(created)  # the rows rolled back; remove the image files this import stored
        raise
    return result
