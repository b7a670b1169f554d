"""Dataset exports (immutable snapshots: which revision of each task's annotation they hold) and the
split of each item into train/val/test."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from labelhub.images.models import Image
from labelhub.labeling.models import AnnotationRevision
from labelhub.projects.models import Project


def export_path(instance: Export, filename: str) -> str:
    return f"projects/{instance.project_id}/exports/{instance.pk}-{instance.format}.zip"


class ExportStatus(models.TextChoices):
    PENDING = "pending", "Snapshot taken, waiting for a worker"
    RUNNING = "running", "Writing the archive"
    DONE = "done", "Archive ready to download"
    FAILED = "failed", "Failed (see error)"


class Subset(models.TextChoices):
    TRAIN = "train", "Training"
    VAL = "val", "Validation"
    TEST = "test", "Test"


class Export(models.Model):
    """A dataset version. Its items (ExportItem) are fixed when it is created and never change."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=32)
    # {"classes": [names] | null, "stages": [names] | null, "accepted", "annotated", "include_empty": bool}
    # (services.filters_clean; exports made before issue 16 hold "include_unaccepted" instead)
    filters = models.JSONField(default=dict)
    # {"train": float, "val": float, "test": float, "seed": int}
    split = models.JSONField(default=dict)
    include_images = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.PENDING)
    progress_done = models.PositiveIntegerField(default=0)  # items written
    progress_total = models.PositiveIntegerField(default=0)  # items in the snapshot
    annotations_count = models.PositiveIntegerField(default=0)  # regions written
    # The quality report of the snapshot's tasks when it was taken (labelhub/qa/report.py).
    quality = models.JSONField(default=dict, blank=True)
    file = models.FileField(upload_to=export_path, max_length=300, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The running claim (services.job_claim): runs claimed so far (the number is the claim's token) and
    # the last heartbeat of the run holding it; a run whose heartbeat stops is stale and claimed again.
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    @property
    def download_path(self) -> str | None:
        """The archive's API path once it is built (None before): in API answers and webhook payloads."""
        return f"/api/v1/exports/{self.id}/download/" if self.status == ExportStatus.DONE else None

    def __str__(self) -> str:
        return f"export {self.pk} of project {self.project_id} ({self.format}, {self.status})"


class ExportItem(models.Model):
    """One image of a dataset version and the annotation revision it holds (null: no revision saved yet).

    An export never changes once it exists, even when its images are deleted: `image` and `revision`
    point at the live rows without a database constraint (their ids stay here when the rows go), and an
    image's deletion first copies what the export needs into the item (`detached`: name, size, sha256,
    the revision's regions and stage, and the image file, kept for an archive not written yet)."""

    export = models.ForeignKey(Export, on_delete=models.CASCADE, related_name="items")
    # null=True only so that reads join it LEFT OUTER (a deleted image's id stays in the column)
    image = models.ForeignKey(
        Image, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    task_id = models.BigIntegerField()
    revision_number = models.PositiveIntegerField(default=0)
    revision = models.ForeignKey(
        AnnotationRevision,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    subset = models.CharField(max_length=8, choices=Subset.choices, blank=True)
    # The copy taken when the image was deleted (empty while it exists).
    detached = models.BooleanField(default=False)
    original_name = models.CharField(max_length=255, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    image_file = models.CharField(max_length=300, blank=True)  # a held copy, while the archive is unwritten
    regions = models.JSONField(null=True, blank=True)
    stage = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["export_id", "image_id"]
        constraints = [models.UniqueConstraint(fields=["export", "image"], name="export_item_unique")]

    def __str__(self) -> str:
        return f"image {self.image_id} at revision {self.revision_number} in export {self.export_id}"


def import_upload_path(instance: Import, filename: str) -> str:
    return f"projects/{instance.project_id}/imports/{filename}"


class ImportStatus(models.TextChoices):
    PENDING = "pending", "File stored, waiting for a worker"
    RUNNING = "running", "Reading and writing"
    DONE = "done", "Imported"
    FAILED = "failed", "Refused or failed; nothing was imported (see error and problems)"


class Import(models.Model):
    """A dataset import job: the uploaded file waits in storage until a `cpu` worker reads it. The
    import itself is all or nothing; its outcome (what was written, or every problem) stays here."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="imports")
    format = models.CharField(max_length=32)
    target = models.CharField(max_length=16, default="annotations")  # annotations | predictions
    model_name = models.CharField(max_length=200, blank=True)
    repair = models.BooleanField(default=False)  # make_valid for self-intersecting polygons (repair.py)
    file = models.FileField(upload_to=import_upload_path, max_length=300, blank=True)  # deleted when finished
    file_name = models.CharField(max_length=300, blank=True)  # the name it was uploaded under
    size_bytes = models.PositiveBigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    progress_done = models.PositiveIntegerField(default=0)  # images written (set when the write commits)
    progress_total = models.PositiveIntegerField(default=0)  # images the file's labels name
    # {"images_created", "images_matched", "regions", "revisions", "predictions", "box_prompts",
    #  "repaired"} when done
    result = models.JSONField(null=True, blank=True)
    # {"code", "message", "field"} when failed; `problems` lists every problem with its place in the file
    error = models.JSONField(null=True, blank=True)
    problems = models.JSONField(default=list, blank=True)
    more_problems = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)  # as on Export
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"import {self.pk} into project {self.project_id} ({self.format}, {self.status})"
