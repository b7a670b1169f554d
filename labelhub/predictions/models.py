from __future__ import annotations

from django.db import models

from labelhub.images.models import Image


class PredictionStatus(models.TextChoices):
    PENDING = "pending", "Queued"
    OK = "ok", "Done"
    FAILED = "failed", "Failed (retried while attempts remain)"


class Prediction(models.Model):
    """What a model made of an image. Every prediction names the model and the checkpoint that made it."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="predictions")
    model_name = models.CharField(max_length=100)  # "sam-vit_h", "classical-grabcut", ...
    checkpoint_sha256 = models.CharField(max_length=80, default="none")  # "none" for classical backends
    kind = models.CharField(max_length=20, default="automatic")  # automatic | boxes
    status = models.CharField(
        max_length=16, choices=PredictionStatus.choices, default=PredictionStatus.PENDING
    )
    score = models.FloatField(null=True, blank=True)  # mean region score
    regions = models.JSONField(default=list)  # same shape as annotation regions, source "ai"
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    duration_ms = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["image", "status"])]

    def __str__(self) -> str:
        return f"{self.model_name} on image {self.image_id}: {self.status}"
