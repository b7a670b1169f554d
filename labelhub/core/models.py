"""The one table the core owns: stored answers of requests sent with an Idempotency-Key header (see
labelhub.core.idempotency). It refers to the user model through settings.AUTH_USER_MODEL only, so the
core still imports no app."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class IdempotencyKey(models.Model):
    """One client-chosen key of one user: the request it was first used with (method, path, a hash of
    query and body) and, once that request finished with a non-5xx answer, the answer (status, JSON body).
    status_code null: the first request is still running, or died before its transaction committed."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.TextField()
    fingerprint = models.CharField(max_length=64)  # sha256 of method, path, query and body
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="core_idempotency_user_key")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key}"
