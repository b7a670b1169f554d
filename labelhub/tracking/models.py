"""Propagation jobs: a track's shape on one frame carried forward or backward through a video task's
frames by a model (SAM 2, or the optical-flow fallback), its results written into the task as they
come, with progress and cancel."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from labelhub.labeling.models import Task


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Waiting for a worker"
    RUNNING = "running", "Propagating"
    DONE = "done", "Finished"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class Direction(models.TextChoices):
    FORWARD = "forward", "Forward"
    BACKWARD = "backward", "Backward"


class Backend(models.TextChoices):
    SAM2 = "sam2", "SAM 2"
    FLOW = "flow", "Optical-flow fallback"


class PropagationJob(models.Model):
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="propagations")
    track = models.CharField(max_length=64)
    label = models.CharField(max_length=100)
    seed_frame = models.PositiveIntegerField()
    # the seed shape's mask when requested; for a prompt seed, the mask the prompt gave (set by the run)
    seed_rle = models.JSONField(null=True, blank=True)
    # a prompt seed: {"points": [[x, y]], "point_labels": [1|0], "box": [x0, y0, x1, y1]} (frame pixels)
    seed_prompt = models.JSONField(null=True, blank=True)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    backend = models.CharField(max_length=8, choices=Backend.choices)
    frames_total = models.PositiveIntegerField()
    frames_done = models.PositiveIntegerField(default=0)
    last_frame = models.PositiveIntegerField(null=True, blank=True)  # the last frame written
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    cancel_requested = models.BooleanField(default=False)
    model_name = models.CharField(max_length=64, blank=True)
    model_version = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["task", "status"])]

    def __str__(self) -> str:
        return f"propagation {self.pk} of track {self.track} ({self.status})"
