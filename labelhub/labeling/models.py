"""Tasks (one image in one project, moving through the QA pipeline), annotations with immutable
revisions, and comments."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from labelhub.images.models import Image
from labelhub.projects.models import Project


class TaskStatus(models.TextChoices):
    OPEN = "open", "Waiting in its stage"
    IN_PROGRESS = "in_progress", "Claimed by its assignee"
    DONE = "done", "Accepted after the last stage"


class Task(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="tasks")
    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="task")
    stage = models.CharField(max_length=40)
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tasks",
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "stage", "status"])]

    def __str__(self) -> str:
        return f"task {self.pk} ({self.stage}/{self.status})"


class Annotation(models.Model):
    """The regions of a task. Never edited in place: each save adds an AnnotationRevision."""

    task = models.OneToOneField(Task, on_delete=models.CASCADE, related_name="annotation")
    current_revision = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"annotation of task {self.task_id} at revision {self.current_revision}"


class RegionSource(models.TextChoices):
    AI = "ai", "AI prediction"
    HUMAN = "human", "Human"


class AnnotationRevision(models.Model):
    annotation = models.ForeignKey(Annotation, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    # [{"id", "label", "kind", "polygons": [{"exterior", "holes"}], "rle", "source", "prediction_id", "score"}]
    regions = models.JSONField(default=list)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    stage = models.CharField(max_length=40)
    # {"added": [ids], "removed": [ids], "changed": [ids]} against the revision before
    summary = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["annotation_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["annotation", "number"], name="revision_number_unique")
        ]

    def __str__(self) -> str:
        return f"revision {self.number} of task {self.annotation.task_id}"


class Comment(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    text = models.TextField()
    region_id = models.CharField(max_length=64, blank=True)  # pinned to a region of the annotation
    x = models.FloatField(null=True, blank=True)  # or to a point, in pixel coordinates
    y = models.FloatField(null=True, blank=True)
    revision = models.PositiveIntegerField(null=True, blank=True)  # the revision the comment was made on
    resolved = models.BooleanField(default=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
