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


class SampleKind(models.TextChoices):
    GOLD = "gold", "A first-stage submission of a gold task (honeypot) against its gold regions"
    REVIEW = "review", "A submission against what the first review accepted (unchanged, or fixed)"
    PRELABEL = "prelabel", "A done task's pre-label against its accepted revision"


class QualitySample(models.Model):
    """One comparison behind the metrics and the quality report, computed once when it happens (a
    submit of a gold task, a first review, a task done), so reading the figures only adds rows up.

    `units`/`correct`/`errors`/`per_class` judge regions (labelhub/qa/quality.py); `scores` holds the
    label-map figures (pixel accuracy; Dice, IoU, BF1 per class present); `data` what else a kind needs
    (the pre-label's model and AI-assist counts, whether the review fixed anything)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="quality_samples")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=SampleKind.choices)
    revision = models.PositiveIntegerField()
    units = models.PositiveIntegerField(default=0)
    correct = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=dict)
    per_class = models.JSONField(default=dict)
    scores = models.JSONField(default=dict)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["project", "kind", "created_at"])]


class ProjectSegmentationQuality(Project):
    """A read-only admin view of projects with their segmentation quality (the metrics API's figures)."""

    class Meta:
        proxy = True
        verbose_name = "project segmentation quality"
        verbose_name_plural = "project segmentation quality"
