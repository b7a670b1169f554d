from __future__ import annotations

from django.conf import settings
from django.db import models

from labelhub.projects.models import Project


def image_path(instance: Image, filename: str) -> str:
    # Content-addressed: the same bytes are stored once per project, under a name nobody can choose.
    return f"projects/{instance.project_id}/images/{instance.sha256[:2]}/{instance.sha256}.{instance.format.lower()}"


def pyramid_path(instance: Image, filename: str) -> str:
    return f"projects/{instance.project_id}/pyramids/{instance.sha256}.tif"


class PyramidStatus(models.TextChoices):
    NONE = "", "none"  # an ordinary image: drawn from its file
    PENDING = "pending", "pending"
    READY = "ready", "ready"
    FAILED = "failed", "failed"


def thumbnail_path(instance: Image, filename: str) -> str:
    return f"projects/{instance.project_id}/thumbnails/{instance.sha256}.jpg"


class Image(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="images")
    file = models.FileField(upload_to=image_path, max_length=300)
    thumbnail = models.FileField(upload_to=thumbnail_path, max_length=300, blank=True)
    original_name = models.CharField(max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=16)  # detected from the bytes, not from the file name
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    # A gigapixel image's tile pyramid: a tiled multi-resolution TIFF (the source itself when it is one,
    # else built by libvips on the cpu queue); tiles are read from it on request.
    pyramid = models.FileField(upload_to=pyramid_path, max_length=300, blank=True)
    pyramid_status = models.CharField(max_length=16, choices=PyramidStatus.choices, default="", blank=True)
    pyramid_progress = models.FloatField(default=0.0)
    pyramid_error = models.TextField(blank=True, default="")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_bytes_unique_in_project")
        ]

    @property
    def is_pyramid(self) -> bool:
        return bool(self.pyramid_status)

    def __str__(self) -> str:
        return f"{self.original_name} ({self.width}x{self.height})"
