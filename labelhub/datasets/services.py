"""Writes for datasets. Exports: the snapshot (one transaction), the seeded stratified split and the
streamed archive. Imports: the job (the upload stored, run on the `cpu` queue, its outcome recorded);
the all-or-nothing import itself is imports.py."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
import zipfile
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import CharField, JSONField, TextField
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from labelhub.core.errors import DomainError
from labelhub.core.events import EXPORT_FINISHED, DomainEvent, publish
from labelhub.core.files import files_delete_on_commit
from labelhub.core.jobs import ClaimLost, JobKind
from labelhub.core.queue import enqueue_on_commit, send_or_log
from labelhub.images.models import Image
from labelhub.labeling.models import Task, TaskStatus
from labelhub.labeling.selectors import revision_current_id
from labelhub.projects.models import Project
from labelhub.qa.report import export_quality_check

from . import imports
from .formats import FORMATS, Record
from .formats.base import COORDINATES, temp_dir
from .models import Export, ExportItem, ExportStatus, Import, ImportStatus, Subset

log = logging.getLogger(__name__)

# The running claims of exports and imports (core/jobs.py): pending, or running with a stale heartbeat.
EXPORT_JOBS = JobKind(Export, waiting=(ExportStatus.PENDING,), running=ExportStatus.RUNNING)
IMPORT_JOBS = JobKind(Import, waiting=(ImportStatus.PENDING,), running=ImportStatus.RUNNING)

SUBSETS = (Subset.TRAIN.value, Subset.VAL.value, Subset.TEST.value)


# --- input ---------------------------------------------------------------------------------------


FILTER_FLAGS = ("accepted", "annotated", "include_empty", "include_unaccepted")


def filters_clean(filters: Any, *, project: Project) -> dict:
    """{"classes": [names] | None, "stages": [names] | None, "accepted": bool, "annotated": bool,
    "include_empty": bool}. Which tasks a snapshot holds, exactly:
    - accepted (default true): tasks accepted by the last stage of the pipeline (status done);
    - annotated (default false): tasks not accepted yet of which a human saved a revision;
    - include_empty (default false): tasks not accepted yet with no human revision (never labelled,
      at most AI pre-labels): without it, no unlabelled image passes for a true negative.
    The older `include_unaccepted: true` still means every task (annotated and include_empty)."""
    if filters is None:
        filters = {}
    if not isinstance(filters, dict):
        raise DomainError("filters is an object.", field="filters")
    unknown = set(filters) - {"classes", "stages", *FILTER_FLAGS}
    if unknown:
        raise DomainError(f"Unknown keys: {sorted(unknown)}.", field="filters")
    out: dict[str, Any] = {"classes": None, "stages": None}
    for key, known in (("classes", project.class_names), ("stages", project.stage_names)):
        value = filters.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or not value:
            raise DomainError(f"{key} is a non-empty list of names.", field=f"filters.{key}")
        for i, name in enumerate(value):
            if name not in known:
                raise DomainError(
                    f"Unknown {key[:-1] if key == 'stages' else 'class'} {name!r}; the project has {known}.",
                    field=f"filters.{key}[{i}]",
                    code="unknown_class" if key == "classes" else "unknown_stage",
                )
        out[key] = list(dict.fromkeys(value))
    flags = {}
    for key in FILTER_FLAGS:
        value = filters.get(key, key == "accepted")
        if not isinstance(value, bool):
            raise DomainError(f"{key} is true or false.", field=f"filters.{key}")
        flags[key] = value
    legacy = flags.pop("include_unaccepted")
    out["accepted"] = flags["accepted"]
    out["annotated"] = flags["annotated"] or legacy
    out["include_empty"] = flags["include_empty"] or legacy
    if not (out["accepted"] or out["annotated"] or out["include_empty"]):
        raise DomainError("The filters select no task: accepted, annotated and include_empty are all false.",
                          field="filters.accepted")  # fmt: skip
    return out


def _tasks_selected(project: Project, filters: dict):
    """The tasks a snapshot holds (see filters_clean)."""
    from django.db.models import Exists, OuterRef, Q

    from labelhub.labeling.models import AnnotationRevision

    # Image datasets: a video's tasks are exported by the video formats (datasets/video.py).
    tasks = Task.objects.filter(project=project, image__isnull=False)
    human = Exists(AnnotationRevision.objects.filter(annotation__task=OuterRef("pk"), author__isnull=False))
    accepted = Q(status=TaskStatus.DONE)
    wanted = Q(pk__in=[])
    if filters.get("accepted", True):
        wanted |= accepted
    if filters.get("annotated") and filters.get("include_empty"):
        wanted |= ~accepted
    elif filters.get("annotated"):
        wanted |= ~accepted & Q(human)
    elif filters.get("include_empty"):
        wanted |= ~accepted & ~Q(human)
    tasks = tasks.filter(wanted)
    if filters["stages"]:
        tasks = tasks.filter(stage__in=filters["stages"])
    return tasks


def split_clean(split: Any) -> dict:
    """{"train", "val", "test"} fractions that sum to 1 and an integer `seed`; default all train, seed 0."""
    if split is None:
        split = {}
    if not isinstance(split, dict):
        raise DomainError("split is an object.", field="split")
    unknown = set(split) - {"train", "val", "test", "seed"}
    if unknown:
        raise DomainError(f"Unknown keys: {sorted(unknown)}.", field="split")
    given = {k: split[k] for k in SUBSETS if k in split}
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value <= 1):
            raise DomainError(f"{key} is a fraction between 0 and 1.", field=f"split.{key}")
    if not given:
        given = {"train": 1.0}
    missing = [k for k in SUBSETS if k not in given]
    rest = 1.0 - sum(given.values())
    for k in missing:  # unnamed subsets share what is left
        given[k] = max(rest, 0.0) / len(missing)
    if abs(sum(given.values()) - 1.0) > 1e-6:
        raise DomainError("train + val + test must sum to 1.", field="split")
    seed = split.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DomainError("seed is an integer.", field="split.seed")
    return {
        "train": float(given["train"]),
        "val": float(given["val"]),
        "test": float(given["test"]),
        "seed": seed,
    }


# --- snapshot ------------------------------------------------------------------------------------


@transaction.atomic
def export_create(
    *,
    project: Project,
    user=None,
    format: str,  # noqa: A002 - the API's name
    filters: Any = None,
    split: Any = None,
    include_images: bool = False,
) -> Export:
    """Take a dataset snapshot: one ExportItem per selected task with the number and row of its current
    revision, read by one statement inside this transaction. Queue the archive once it commits."""
    if format not in FORMATS:
        raise DomainError(
            f"Unknown format {format!r}; one of {sorted(FORMATS)}.", field="format", code="unknown_format"
        )
    if not isinstance(include_images, bool):
        raise DomainError("include_images is true or false.", field="include_images")
    filters = filters_clean(filters, project=project)
    split = split_clean(split)
    export = Export.objects.create(
        project=project,
        format=format,
        filters=filters,
        split=split,
        include_images=include_images,
        created_by=user,
    )
    tasks = _tasks_selected(project, filters)
    rows = (
        tasks.annotate(revision_id=revision_current_id())
        .order_by("image_id")
        .values_list("id", "image_id", "annotation__current_revision", "revision_id")
    )
    batch: list[ExportItem] = []
    total = 0
    for task_id, image_id, number, revision_id in rows.iterator(
        chunk_size=settings.LABELHUB_EXPORT_CHUNK_SIZE
    ):
        batch.append(
            ExportItem(
                export=export,
                image_id=image_id,
                task_id=task_id,
                revision_number=number or 0,
                revision_id=revision_id,
                subset=Subset.TRAIN,
            )
        )
        if len(batch) >= 2000:
            ExportItem.objects.bulk_create(batch)
            total += len(batch)
            batch = []
    ExportItem.objects.bulk_create(batch)
    total += len(batch)
    export.progress_total = total
    # The export's quality report (its tasks' honeypot and review evidence), kept with it and written
    # into its manifest; a project may refuse exports below its accuracy threshold (409).
    export.quality = export_quality_check(
        project=project, task_ids=ExportItem.objects.filter(export=export).values("task_id")
    )
    export.save(update_fields=["progress_total", "quality"])
    export_id = export.id
    enqueue_on_commit("labelhub.datasets.run_export", export_id)
    return export


# --- split ---------------------------------------------------------------------------------------


def _rank(seed: int, image_id: int) -> str:
    return hashlib.sha256(f"{seed}:{image_id}".encode()).hexdigest()


def split_assign(
    items: list[tuple[int, int, frozenset[str]]], split: dict, class_order: list[str]
) -> dict[int, str]:
    """Assign each item (item id, image id, classes in the image) to train/val/test.

    Stratified by the image's rarest class (fewest images in this export hold it; ties broken by
    schema order; images without regions form their own stratum). Within a stratum the images are
    ordered by sha256("seed:image_id") and cut at the cumulative fractions (rounded), so the split
    depends only on the seed and the snapshot.
    """
    images_with = Counter(c for _, _, classes in items for c in classes)
    order = {name: i for i, name in enumerate(class_order)}
    strata: dict[str, list[tuple[str, int]]] = {}
    for item_id, image_id, classes in items:
        key = min(classes, key=lambda c: (images_with[c], order.get(c, 1 << 30))) if classes else ""
        strata.setdefault(key, []).append((_rank(split["seed"], image_id), item_id))
    out: dict[int, str] = {}
    for members in strata.values():
        members.sort()
        n = len(members)
        cut_train = math.floor(n * split["train"] + 0.5)
        cut_val = math.floor(n * (split["train"] + split["val"]) + 0.5)
        for index, (_, item_id) in enumerate(members):
            out[item_id] = "train" if index < cut_train else "val" if index < cut_val else "test"
    return out


def _split_items(export: Export, classes: set[str] | None, chunk: int) -> None:
    split = export.split or {"train": 1.0, "val": 0.0, "test": 0.0, "seed": 0}
    if split.get("train", 1.0) >= 1.0:
        export.items.exclude(subset=Subset.TRAIN).update(subset=Subset.TRAIN)
        return
    rows = []
    for item_id, image_id, regions in (
        export.items.order_by("image_id")
        .values_list("id", "image_id", Coalesce("revision__regions", "regions", output_field=JSONField()))
        .iterator(chunk_size=chunk)
    ):
        labels = frozenset(r["label"] for r in regions or [] if classes is None or r["label"] in classes)
        rows.append((item_id, image_id, labels))
    assigned = split_assign(rows, split, export.project.class_names)
    del rows
    for subset in SUBSETS:
        ids = [i for i, s in assigned.items() if s == subset]
        for start in range(0, len(ids), 5000):
            ExportItem.objects.filter(id__in=ids[start : start + 5000]).update(subset=subset)


# --- archive -------------------------------------------------------------------------------------


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


def jobs_sweep(*, now=None) -> dict[str, int]:
    """Queue again every export and import that is pending (its message may be lost with a broker
    outage) or stale running (its worker died). Safe to repeat: each run claims its row first."""
    now = now or timezone.now()
    exports = list(Export.objects.filter(EXPORT_JOBS.claimable(now)).values_list("id", flat=True))
    jobs = list(Import.objects.filter(IMPORT_JOBS.claimable(now)).values_list("id", flat=True))
    for export_id in exports:
        send_or_log("labelhub.datasets.run_export", export_id)
    for job_id in jobs:
        send_or_log("labelhub.datasets.run_import", job_id)
    return {"exports": len(exports), "imports": len(jobs)}


def export_run(*, export_id: int) -> Export | None:
    """Write the archive of a snapshot to storage, streaming: the items are read in chunks, each image's
    entries are written as it comes, and the zip lives in a temporary file until it is uploaded."""
    export = Export.objects.select_related("project").filter(id=export_id).first()
    if export is None or export.status == ExportStatus.DONE:
        return export
    # The claim: only one run wins a pending (or stale running) export; a redelivered message for an
    # export another worker is writing finds nothing to claim and leaves it alone (see core/jobs.py).
    token = EXPORT_JOBS.claim(export.id, progress_done=0, error="")
    if token is None:
        return export
    try:
        with EXPORT_JOBS.heartbeat(export.id, token):
            _export_write(export, token)
    except ClaimLost:
        log.warning("export %s: run %s lost its claim to a later run; it wrote nothing", export.id, token)
        export.refresh_from_db()
        return export
    export.refresh_from_db()
    export_finished_hooks(export)
    return export


def _export_write(export: Export, token: int) -> None:
    """The archive of export run `token` (which holds the claim); its result or failure is recorded on
    the row only while the claim is still its own (ClaimLost otherwise)."""
    chunk = settings.LABELHUB_EXPORT_CHUNK_SIZE
    project = export.project
    storage = Image._meta.get_field("file").storage
    classes = set(export.filters["classes"]) if export.filters.get("classes") else None
    try:
        _split_items(export, classes, chunk)
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


def export_finished_hooks(export: Export) -> None:
    """Tell the world an export finished (done or failed): the "export.finished" domain event, which the
    webhooks app delivers to the organization's and the project's webhooks. A subscriber's problem never
    fails the export."""
    publish(
        DomainEvent(
            name=EXPORT_FINISHED,
            organization_id=export.project.organization_id,
            project_id=export.project_id,
            payload={
                "export": export.id,
                "project": export.project_id,
                "format": export.format,
                "status": export.status,
                "images": export.progress_done,
                "regions": export.annotations_count,
                "size_bytes": export.size_bytes,
                "sha256": export.sha256,
                "download_url": export.download_path,
                "error": export.error,
            },
        )
    )


# --- import jobs ---------------------------------------------------------------------------------


@transaction.atomic
def import_create(
    *,
    project: Project,
    fh: BinaryIO,
    file_name: str,
    size: int,
    format: str,  # noqa: A002 - the API's name
    target: str = "annotations",
    model_name: str = "",
    user=None,
    repair: bool = False,
) -> Import:
    """Store an uploaded dataset file and queue its import on the `cpu` queue once this commits. Checked
    here: the request (format, target, size) and the file's cheap checks (imports.import_precheck: a
    zip's entries, sizes and CRCs, the JSON nesting limit), so those answer 400 with nothing stored; the
    rest of the file's contents is the job's."""
    if format not in imports.IMPORT_FORMATS:
        raise DomainError(f"format is one of {list(imports.IMPORT_FORMATS)}.", field="format")
    if target not in imports.IMPORT_TARGETS:
        raise DomainError(f"as is one of {list(imports.IMPORT_TARGETS)}.", field="as")
    if size > settings.LABELHUB_IMPORT_MAX_BYTES:
        raise DomainError(
            f"The file is {size} bytes; the limit is {settings.LABELHUB_IMPORT_MAX_BYTES}.",
            field="file",
            code="file_too_large",
        )
    imports.import_precheck(fh=fh, file_name=file_name, fmt=format)
    job = Import.objects.create(
        project=project,
        format=format,
        target=target,
        model_name=model_name,
        repair=bool(repair),
        file_name=(file_name or "file")[:300],
        size_bytes=size,
        created_by=user,
    )
    job.file.save(f"{job.id}.upload", File(fh), save=False)
    try:
        job.save(update_fields=["file"])
    except BaseException:  # storage is not transactional: the row rolls back, so must the file
        job.file.storage.delete(job.file.name)
        raise
    enqueue_on_commit("labelhub.datasets.run_import", job.id)
    return job


def import_run(*, import_id: int) -> Import | None:
    """Run an import job: the whole file in one transaction (imports.import_file), then record what it
    wrote or every problem. Idempotent: a finished job is left as it is; an interrupted one (its
    transaction rolled back) runs again from the stored file."""
    job = Import.objects.select_related("project", "created_by").filter(id=import_id).first()
    if job is None or job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return job
    token = IMPORT_JOBS.claim(job.id)
    if token is None:
        return job  # another run holds it
    outcome: dict[str, Any]
    try:
        with IMPORT_JOBS.heartbeat(job.id, token), job.file.open("rb") as fh:
            result = imports.import_file(
                project=job.project,
                fh=fh,
                file_name=job.file_name,
                fmt=job.format,
                target=job.target,
                user=job.created_by,
                model_name=job.model_name,
                repair=job.repair,
            )
        written = result.images_matched or result.images_created
        outcome = {
            "status": ImportStatus.DONE,
            "result": asdict(result),
            "progress_done": written,
            "progress_total": written,
        }
    except DomainError as exc:  # a refused file: every problem is on the job
        details = exc.details if isinstance(exc.details, dict) else {}
        outcome = {
            "status": ImportStatus.FAILED,
            "error": {"code": exc.code, "message": exc.message, "field": exc.field},
            "problems": details.get("problems", []),
            "more_problems": details.get("more_problems", 0),
        }
    except Exception as exc:  # recorded on the job; the API shows it
        log.exception("import %s failed", job.id)
        outcome = {
            "status": ImportStatus.FAILED,
            "error": {
                "code": "import_failed",
                "message": f"{type(exc).__name__}: {exc}"[:2000],
                "field": None,
            },
        }
    name = job.file.name
    if not IMPORT_JOBS.held(job.id, token).update(file="", finished_at=timezone.now(), **outcome):
        log.warning("import %s: run %s lost its claim to a later run", job.id, token)
        job.refresh_from_db()
        return job
    if name:  # the upload has served its purpose
        job.file.storage.delete(name)
    job.refresh_from_db()
    return job


# --- deletions below ---------------------------------------------------------------------------


def on_image_deleting(event: DomainEvent) -> None:
    """Subscriber of "image.deleting" (in the deleting transaction): every export item of the image
    takes its own copy of what the export needs, so an existing export never changes. An archive not
    written yet that includes images also keeps a copy of the image file until it is written."""
    image = event.context["image"]
    items = list(
        ExportItem.objects.filter(image_id=image.pk, detached=False).select_related("export", "revision")
    )
    storage = Image._meta.get_field("file").storage
    for item in items:
        item.detached = True
        item.original_name, item.width, item.height = image.original_name, image.width, image.height
        item.sha256 = image.sha256
        item.regions = item.revision.regions if item.revision_id else []
        item.stage = item.revision.stage if item.revision_id else ""
        if item.export.include_images and item.export.status != ExportStatus.DONE and image.file.name:
            suffix = Path(image.file.name).suffix
            with storage.open(image.file.name, "rb") as fh:
                item.image_file = storage.save(
                    f"projects/{image.project_id}/exports/held/{item.export_id}-{image.pk}{suffix}", File(fh)
                )
    ExportItem.objects.bulk_update(
        items, ["detached", "original_name", "width", "height", "sha256", "regions", "stage", "image_file"]
    )


def on_project_deleting(event: DomainEvent) -> None:
    """Subscriber of "project.deleting" (in its transaction): export archives, held image copies and
    waiting import uploads go once the deletion commits."""
    project = event.context["project"]
    storage = Image._meta.get_field("file").storage
    names = list(Export.objects.filter(project=project).values_list("file", flat=True))
    names += (
        ExportItem.objects.filter(export__project=project)
        .exclude(image_file="")
        .values_list("image_file", flat=True)
    )
    names += Import.objects.filter(project=project).values_list("file", flat=True)
    files_delete_on_commit(storage, names)
