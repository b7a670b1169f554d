"""Webhook endpoints and their delivery log (the outbox: one row per event and endpoint, delivered
from the `cpu` queue). The tables keep the names they had in the qa app (`qa_webhook`,
`qa_webhookdelivery`): the models moved, the data did not (migration 0001 only takes over the state)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from labelhub.accounts.models import Organization
from labelhub.projects.models import Project

WEBHOOK_EVENTS = ("task.stage_changed", "export.finished")


class Webhook(models.Model):
    """A receiver of signed event notifications for an organization, or for one of its projects."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="webhooks")
    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks"
    )  # null: every project of the organization
    url = models.URLField(max_length=1000)
    secret = models.CharField(max_length=200)  # HMAC-SHA256 key
    events = models.JSONField(default=list, blank=True)  # subset of WEBHOOK_EVENTS; empty: all
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        db_table = "qa_webhook"

    def __str__(self) -> str:
        return self.url


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting or retrying"
    SENDING = "sending", "An attempt is being made (core/jobs.py)"
    DELIVERED = "delivered", "Delivered (2xx)"
    FAILED = "failed", "Gave up after the last attempt"


class WebhookDelivery(models.Model):
    """One event for one webhook; `log` keeps every attempt."""

    webhook = models.ForeignKey(Webhook, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=60)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # [{"at", "status_code", "error", "duration_ms"}], one per attempt
    log = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # When the next attempt is due (null: at once). Set past each failed attempt to the retry time.
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    # Set by the attempt that holds the delivery (a conditional UPDATE), cleared when it is logged: an
    # attempt older than LABELHUB_WEBHOOK_CLAIM_SECONDS is taken as dead (its worker was killed).
    claimed_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # the running claim's (core/jobs.py)

    class Meta:
        ordering = ["id"]
        db_table = "qa_webhookdelivery"
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due")]
