"""Gold-task scores."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from labelhub.labeling.models import Task
from labelhub.projects.models import Project


class GoldScore(models.Model):
    """How well one first-stage submission of a gold task matched its known-correct regions."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="gold_scores")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    revision = models.PositiveIntegerField()  # the annotation revision that was scored (0: nothing drawn)
    # Sum of the IoUs of the matched pairs divided by max(gold regions, submitted regions): 0..1.
    score = models.FloatField()
    # {"matches": [{"gold", "submitted", "iou"}], "gold_regions": n, "submitted_regions": n}
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]


class ProjectSegmentationQuality(Project):
    """A read-only admin view of projects with their segmentation quality (the metrics API's figures)."""

    class Meta:
        proxy = True
        verbose_name = "project segmentation quality"
        verbose_name_plural = "project segmentation quality"
