"""The one write path of annotations. Every revision is added by `annotation_write`, which enforces
every rule for the kind of writer it is told it serves; the bare revision insert is private here.

Rules, for every writer: an accepted task's annotation is final (409 `task_done`); a writer names the
revision it read, and a stale one is refused (409 `stale_revision`) with nothing saved; the regions are
validated against the image and the project's classes; the revision records the task's current stage.
Per writer (`Writer`):
- MEMBER: a person through the API. Managers and owners may always write; anyone else must hold the
  task's live lease (409 otherwise).
- IMPORT: a dataset import (or a bulk load such as the demo). No lease: the right to import was
  checked when the import was requested.
- PRELABEL: AI regions seeding an untouched task (revision 0 only, no author); a task someone saved
  keeps its work.
- PROPAGATION: a track's shapes carried across a video task's frames by a propagation job, which a lease
  holder (or a manager) requested; written on top of the current revision as results stream in.
- CONSENSUS: the merged regions of a consensus task's passes (no author; the submit that completes
  them holds the lease).
In a video task, a member's write turns every track shape it changes into a keyframe (regions.keyframes_mark).

A class's `kinds` bind every writer but imports (a file holds what it holds): a mask region on a
polygon-only class is refused naming the region (`regions[i].kind`).

Save bursts (`_burst_revision`): the app autosaves a second after each gesture, which made every gesture
a revision (27 for one task). A member's save that follows their own previous save of this task, in the
same stage, within LABELHUB_REVISION_BURST_SECONDS of it, on a revision no comment nor event names,
takes the place of that revision: the row is renumbered to the new number and holds the new regions, so
the timeline keeps one revision per burst of saves. Every save still gets a new number, so a writer who
read an older number is refused as stale exactly as before (numbers may skip: 1, 4, 9).

Lock order, for every annotation write: the Task row first (`task_locked`), then the Annotation row
(`_revision_insert`). Every path here takes them in that order, inside one transaction; a new writer must
too (two writers taking them in opposite orders on the same task deadlock).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from labelhub.accounts.models import MANAGING_ROLES, Role
from labelhub.accounts.selectors import role_require
from labelhub.core.errors import Conflict, DomainError
from labelhub.core.prepared import Prepared
from labelhub.images.models import Image
from labelhub.predictions.models import Prediction
from labelhub.regions.validation import keyframes_mark, regions_clean, regions_diff

from .leases import lease_require, task_locked
from .models import Annotation, AnnotationRevision, Comment, Task, TaskEvent
from .pipeline import done_refuse, task_is_done
from .selectors import revision_current

# A task's annotation under a row lock (inside the caller's transaction, after the Task row's).
_annotation_locked = Prepared(
    lambda task_id: Annotation.objects.select_for_update().filter(task_id=task_id), -(2**62) - 41
)


def _annotation_lock(task: Task) -> Annotation:
    found = _annotation_locked(task.pk)
    if len(found) != 1:
        raise Annotation.DoesNotExist("Annotation matching query does not exist.")
    return found[0]


# Who may write regions at all; the QA workflow narrows this to the task's current worker.
WRITER_ROLES = (Role.OWNER, Role.MANAGER, Role.ANNOTATOR, Role.REVIEWER)


class Writer(models.TextChoices):
    MEMBER = "member", "A member through the API (lease holder, or a manager or owner)"
    IMPORT = "import", "A dataset import"
    PRELABEL = "prelabel", "AI regions seeding an untouched task"
    CONSENSUS = "consensus", "The merge of a consensus task's independent passes (labeling/replicas.py)"
    PROPAGATION = "propagation", "A video track carried across frames by a propagation job"


@transaction.atomic
def annotation_write(
    *, task: Task, author, base_revision: int, regions: list, writer: Writer = Writer.MEMBER
) -> AnnotationRevision:
    """Add a revision of `regions` (the full list) on top of `base_revision`, the revision the writer
    read (0 when there was none). Returns the new revision. Errors: DomainError (400) for bad input,
    Forbidden/NotFound for a non-member, Conflict (409) for an accepted task, a lease the member does not
    hold, or a stale `base_revision` (nothing is saved, so two people never overwrite each other)."""
    caller, task = task, task_locked(task)
    done_refuse(task, what="its annotation is final")
    if writer == Writer.MEMBER:
        role = role_require(
            user=author,
            organization_id=task.project.organization_id,
            roles=WRITER_ROLES,
            action="edit annotations",
        )
        if role not in MANAGING_ROLES:
            lease_require(task=task, user=author)
    elif writer not in (Writer.IMPORT, Writer.PRELABEL, Writer.CONSENSUS, Writer.PROPAGATION):
        raise ValueError(f"unknown writer {writer!r}")
    # AI pre-labels are seeds (SAM's masks overlap): a semantic or panoptic project's rules are checked
    # when a person or an import saves, not here.
    revision = _revision_insert(
        task=task,
        author=author,
        base_revision=base_revision,
        regions=regions,
        segmentation_rules=writer not in (Writer.PRELABEL, Writer.PROPAGATION),
        kinds_rule=writer not in (Writer.IMPORT, Writer.PROPAGATION),  # propagation carries masks
        burst=writer == Writer.MEMBER,
        own_predictions=writer == Writer.MEMBER,
        mark_keyframes=writer == Writer.MEMBER,
    )
    if caller is not task and Task.annotation.is_cached(caller):
        caller.annotation.current_revision = revision.number  # the caller's task reads as written
    return revision


def annotation_prelabel(*, task: Task, regions: list[dict]) -> AnnotationRevision | None:
    """Seed an untouched task with AI regions (revision 1, no author). A task someone has saved keeps its
    work (None), and so does an accepted one."""
    with transaction.atomic():
        # The lock order of every annotation write: the Task row, then the Annotation row (see the module
        # docstring). Taking the Annotation first here deadlocked against a member's save on the same task.
        task = task_locked(task)
        annotation = _annotation_lock(task)
        if annotation.current_revision != 0:
            return None
        try:
            return annotation_write(
                task=task, author=None, base_revision=0, regions=regions, writer=Writer.PRELABEL
            )
        except Conflict:
            return None


def annotations_prelabel(
    *, items: list[tuple[Image, list[dict]]]
) -> tuple[dict[int, AnnotationRevision], dict[int, DomainError]]:
    """Seed the untouched tasks of many images with AI regions at once (a pre-label batch), under
    annotation_prelabel's rules for each: revision 1 with no author, only on a task still at revision 0
    and not accepted; the regions checked as `annotation_write` checks a PRELABEL writer's (the image's
    size, the project's classes and their kinds; no segmentation rules). `items`: (image, its regions),
    the images' `project` loaded. In the caller's transaction, four queries whatever the batch's size:
    the tasks locked in id order, then their annotations (the lock order of every annotation write,
    and of every batch: two never deadlock), the revisions inserted, the annotations moved on.
    Returns (the revisions written by image id, the refusals by image id: the DomainError naming the
    field its regions broke; nothing is written for that image)."""
    by_image = {image.id: (image, regions) for image, regions in items}
    written: dict[int, AnnotationRevision] = {}
    refused: dict[int, DomainError] = {}
    if not by_image:
        return written, refused
    of = ("self",) if connection.features.has_select_for_update_of else ()
    with transaction.atomic(savepoint=False):
        tasks = list(Task.objects.select_for_update(of=of).filter(image_id__in=list(by_image)).order_by("id"))
        annotations = {
            a.task_id: a
            for a in Annotation.objects.select_for_update()
            .filter(task__in=[t.id for t in tasks], current_revision=0)
            .order_by("task_id")
        }
        for task in tasks:
            annotation = annotations.get(task.id)
            if annotation is None or task_is_done(task):
                continue  # someone saved it, or it is accepted: it keeps its work
            image, regions = by_image[task.image_id]
            project = image.project
            try:
                cleaned = regions_clean(regions, width=image.width, height=image.height,
                                        class_names=project.class_names, class_kinds=project.class_kinds)  # fmt: skip
            except DomainError as exc:
                refused[image.id] = exc
                continue
            written[image.id] = AnnotationRevision(
                annotation=annotation, number=1, regions=cleaned, author=None, stage=task.stage,
                summary=regions_diff([], cleaned),
            )  # fmt: skip
        if written:
            AnnotationRevision.objects.bulk_create(written.values())
            Annotation.objects.filter(id__in=[r.annotation_id for r in written.values()]).update(
                current_revision=1, updated_at=timezone.now()
            )
    return written, refused


def _burst_revision(*, annotation: Annotation, previous: AnnotationRevision | None, author, stage: str):
    """The revision a member's save takes the place of (see the module's docstring), or None."""
    window = settings.LABELHUB_REVISION_BURST_SECONDS
    if previous is None or author is None or window <= 0:
        return None
    if previous.author_id != author.pk or previous.stage != stage:
        return None
    if annotation.updated_at < timezone.now() - timedelta(seconds=window):
        return None
    # A revision something points at (a submit, a review, a comment) stays as it is.
    if Comment.objects.filter(task_id=annotation.task_id, revision=previous.number).exists():
        return None
    if TaskEvent.objects.filter(task_id=annotation.task_id, revision=previous.number).exists():
        return None
    return previous


def _predictions_require(task: Task, regions: list[dict]) -> None:
    """DomainError (400, naming `regions[i].prediction_id`) for a region that names a prediction which is
    not one of this project's (another organization's, or none at all)."""
    named = {r["prediction_id"] for r in regions if r.get("prediction_id") is not None}
    if not named:
        return
    known = set(
        Prediction.objects.filter(pk__in=named, image__project_id=task.project_id).values_list(
            "pk", flat=True
        )
    )
    for i, region in enumerate(regions):
        if region.get("prediction_id") is not None and region["prediction_id"] not in known:
            raise DomainError(
                f"Prediction {region['prediction_id']} is not a prediction of this project.",
                field=f"regions[{i}].prediction_id",
            )


def _revision_insert(
    *,
    task: Task,
    author,
    base_revision: int,
    regions: list,
    segmentation_rules: bool = True,
    kinds_rule: bool = True,
    burst: bool = False,
    own_predictions: bool = False,
    mark_keyframes: bool = False,
) -> AnnotationRevision:
    """The bare insert, for annotation_write only: the caller holds the task's row lock and has checked
    who may write."""
    annotation = _annotation_lock(task)  # second: after the Task row
    if isinstance(base_revision, bool) or not isinstance(base_revision, int) or base_revision < 0:
        raise DomainError("revision is the revision number you read (0 for none).", field="revision")
    if base_revision != annotation.current_revision:
        raise Conflict(
            f"Revision {base_revision} is stale: the annotation is at revision {annotation.current_revision}. "
            "Read it again and reapply your change.",
            field="revision",
            code="stale_revision",
            details={"current_revision": annotation.current_revision},
        )
    media = task.image if task.image_id else task.video
    project = task.project
    cleaned = regions_clean(
        regions,
        width=media.width,
        height=media.height,
        class_names=project.class_names,
        stuff=project.stuff_classes if segmentation_rules else frozenset(),  # see projects/schema.py
        exclusive=segmentation_rules and project.segmentation != "instance",
        class_kinds=project.class_kinds if kinds_rule else None,
        frames=range(task.frame_start, task.frame_stop) if task.video_id else None,
    )
    if own_predictions:
        _predictions_require(task, cleaned)
    previous = revision_current(annotation=annotation)
    if mark_keyframes and task.video_id:
        cleaned = keyframes_mark(previous.regions if previous else [], cleaned)
    replaced = burst and _burst_revision(
        annotation=annotation, previous=previous, author=author, stage=task.stage
    )
    if replaced:
        # The burst's revision moves to the new number; its summary stays against the revision before
        # the burst.
        before = (
            AnnotationRevision.objects.filter(annotation=annotation, number__lt=replaced.number)
            .order_by("-number")
            .first()
        )
        replaced.number = annotation.current_revision + 1
        replaced.regions = cleaned
        replaced.summary = regions_diff(before.regions if before else [], cleaned)
        replaced.save(update_fields=["number", "regions", "summary"])
        revision = replaced
    else:
        revision = AnnotationRevision.objects.create(
            annotation=annotation,
            number=annotation.current_revision + 1,
            regions=cleaned,
            author=author,
            stage=task.stage,
            summary=regions_diff(previous.regions if previous else [], cleaned),
        )
    annotation.current_revision = revision.number
    annotation.save(update_fields=["current_revision", "updated_at"])
    return revision
