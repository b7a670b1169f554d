from __future__ import annotations

from django.conf import settings
from django.db import models

from labelhub.projects.models import Project


def image_path(instance: Image, filename: str) -> str:
    # Content-addressed: the same bytes are stored once per project, under a name nobody can choose.
    return f"projects/{instance.project_id}/images/{instance.sha256[:2]}/{instance.sha256}.{instance.format.lower()}"


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
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="image_bytes_unique_in_project")
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.width}x{self.height})"
