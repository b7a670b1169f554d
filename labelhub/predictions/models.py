from __future__ import annotations

from django.db import models

from labelhub.images.models import Image

# Attempts at an image's automatic pre-segmentation before it stays failed (the task retries, the sweep
# re-queues below this).
PRESEGMENT_MAX_ATTEMPTS = 3


class PredictionStatus(models.TextChoices):
    PENDING = "pending", "Queued"
    RUNNING = "running", "A run holds it (core/jobs.py)"
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
    # The running claim (core/jobs.py; `attempts` is its token): when the run began, its last heartbeat.
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["image", "status"])]

    def __str__(self) -> str:
        return f"{self.model_name} on image {self.image_id}: {self.status}"


def embedding_path(instance: ImageEmbedding, filename: str) -> str:
    return f"projects/{instance.image.project_id}/embeddings/{instance.model_name}/{instance.image_id}.lhemb"


class ImageEmbedding(models.Model):
    """An image's encoder output, computed once per model and checkpoint and kept in storage
    (fp16 features, about 2 MiB for SAM). Hot embeddings also sit in the Redis LRU cache."""

    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="embeddings")
    model_name = models.CharField(max_length=100)
    checkpoint_sha256 = models.CharField(max_length=80)
    file = models.FileField(upload_to=embedding_path, max_length=300)
    nbytes = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["image", "model_name", "checkpoint_sha256"], name="one_embedding_per_model"
            )
        ]
