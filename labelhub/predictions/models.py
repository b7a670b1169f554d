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
    # Predictions of a model service (Label Studio ML backend): which one, and the model_version it reported.
    service = models.ForeignKey(
        "ModelService", null=True, blank=True, on_delete=models.SET_NULL, related_name="predictions"
    )
    model_version = models.CharField(max_length=200, blank=True)
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


class ServiceUse(models.TextChoices):
    PRELABEL = "prelabel", "Pre-labels"
    INTERACTIVE = "interactive", "Interactive clicks"
    TRAINING = "training", "Training on accepted tasks"


class ServiceAuth(models.TextChoices):
    NONE = "none", "None"
    TOKEN = "token", "Authorization: Token <token>"
    BEARER = "bearer", "Authorization: Bearer <token>"
    BASIC = "basic", "HTTP basic (username, password)"


class RectangleMode(models.TextChoices):
    REGIONS = "regions", "Rectangles become polygon regions"
    BOX_PROMPTS = "box_prompts", "Rectangles are box prompts for the project's segmenter"


class ModelService(models.Model):
    """A model served over Label Studio's ML backend protocol, registered on a project by a manager."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="model_services")
    name = models.CharField(max_length=100)
    url = models.CharField(max_length=1000)
    auth = models.CharField(max_length=10, choices=ServiceAuth.choices, default=ServiceAuth.NONE)
    # The credential: the token (token, bearer) or "username:password" (basic). Never shown by the API.
    credential = models.CharField(max_length=500, blank=True)
    timeout_seconds = models.FloatField(default=30.0)
    uses = models.JSONField(default=list)  # ServiceUse values
    rectangles = models.CharField(max_length=12, choices=RectangleMode.choices, default=RectangleMode.REGIONS)
    # What the last check (/health then /setup) found.
    healthy = models.BooleanField(null=True, blank=True)
    health_message = models.TextField(blank=True)
    model_version = models.CharField(max_length=200, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    # Calls that failed in a row (any kind of failure of the service itself, not of one image's result);
    # at LABELHUB_MODEL_SERVICE_PAUSE_AFTER the service is paused for the project until a manager resumes it.
    failures_in_row = models.PositiveIntegerField(default=0)
    paused = models.BooleanField(default=False)
    paused_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="model_service_name_unique_in_project")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"
