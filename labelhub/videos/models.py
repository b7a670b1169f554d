"""Videos: the uploaded file and its frames, decoded once at ingest and stored one JPEG per frame under
their frame numbers (workers.video.decode defines the numbering), so every reader (the app, the API,
the workers, the exports) sees the same frame n."""

from __future__ import annotations

from fractions import Fraction

from django.conf import settings
from django.db import models

from labelhub.projects.models import Project


def video_path(instance: Video, filename: str) -> str:
    return f"projects/{instance.project_id}/videos/{instance.sha256}/source.{instance.extension}"


class Video(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="videos")
    file = models.FileField(upload_to=video_path, max_length=300)
    original_name = models.CharField(max_length=255)
    container = models.CharField(max_length=16)  # mp4 (also .mov) | webm | frames (a zip of images)
    codec = models.CharField(max_length=16)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    fps_num = models.PositiveIntegerField(default=0)  # 0/1 for a frame archive (no rate)
    fps_den = models.PositiveIntegerField(default=1)
    frame_count = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "sha256"], name="video_bytes_unique_in_project")
        ]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.width}x{self.height}, {self.frame_count} frames)"

    @property
    def extension(self) -> str:
        return {"mp4": "mp4", "webm": "webm", "frames": "zip"}.get(self.container, "bin")

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_num, self.fps_den or 1)

    @property
    def frames_prefix(self) -> str:
        return f"projects/{self.project_id}/videos/{self.sha256}/frames"

    def frame_name(self, number: int) -> str:
        return f"{self.frames_prefix}/{number:06d}.jpg"
