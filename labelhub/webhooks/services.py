"""Webhooks: signed JSON notifications of stage changes and finished exports, delivered from the `cpu`
queue with retries, every attempt logged on its WebhookDelivery. Fed by the domain events of
core.events (subscribed in WebhooksConfig.ready), so the apps that publish them never import this one.

Request: POST, body = JSON {"id": delivery id, "event", "created_at", "organization", "project", "data"}.
Headers: X-LabelHub-Event, X-LabelHub-Delivery, X-LabelHub-Timestamp (unix seconds) and
X-LabelHub-Signature = "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body). A receiver recomputes
the HMAC over the raw body and compares in constant time (see `signature_verify`). Any 2xx answer counts
as delivered; anything else (or no answer within LABELHUB_WEBHOOK_TIMEOUT_SECONDS) is retried up to
LABELHUB_WEBHOOK_MAX_ATTEMPTS attempts in all, waiting LABELHUB_WEBHOOK_RETRY_SECONDS, doubling each time.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.accounts.selectors import organization_ids_for, role_require
from labelhub.core import netsafety
from labelhub.core.errors import DomainError, NotFound
from labelhub.core.events import DomainEvent
from labelhub.core.jobs import JobKind
from labelhub.core.queue import enqueue_on_commit, send_or_log
from labelhub.projects.models import Project

from .models import WEBHOOK_EVENTS, DeliveryStatus, Webhook, WebhookDelivery

log = logging.getLogger(__name__)


def signature_make(*, secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_verify(*, secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute the signature over the raw body and compare in constant time."""
    return hmac.compare_digest(signature_make(secret=secret, timestamp=timestamp, body=body), signature)


def webhook_url_clean(url: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DomainError("A webhook URL is an http:// or https:// address.", field="url")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise DomainError("The webhook URL's port is not a valid port number.", field="url") from exc
    refused = address_refused(parts.hostname, resolve_failure_ok=True)
    if refused:
        raise DomainError(
            f"The webhook URL points at {refused}, a non-public address; webhooks are only sent to "
            "public addresses (LABELHUB_WEBHOOK_ALLOW_PRIVATE allows private ones).",
            field="url",
        )
    return url


def address_refused(host: str, *, resolve_failure_ok: bool) -> str | None:
    """Why webhooks may not reach ``host`` (see `labelhub.core.netsafety`), or None. A name that does
    not resolve is allowed when ``resolve_failure_ok`` (it is checked again at each delivery), else
    reported. Always None with LABELHUB_WEBHOOK_ALLOW_PRIVATE."""
    if settings.LABELHUB_WEBHOOK_ALLOW_PRIVATE:
        return None
    try:
        netsafety.host_resolve(host, 80, allow_private=False)
    except netsafety.AddressRefused as exc:
        return str(exc)
    except (OSError, UnicodeError):
        return None if resolve_failure_ok else f"{host} (does not resolve)"
    return None


def webhook_events_clean(events) -> list[str]:
    if events is None:
        return []
    if not isinstance(events, list) or any(e not in WEBHOOK_EVENTS for e in events):
        raise DomainError(f"events is a list drawn from {list(WEBHOOK_EVENTS)} (empty: all).", field="events")
    return list(dict.fromkeys(events))


def _project_of(organization_id: int, project_id: int | None) -> Project | None:
    if project_id is None:
        return None
    project = Project.objects.filter(pk=project_id, organization_id=organization_id).first()
    if project is None:
        raise DomainError("No such project in this organization.", field="project")
    return project


@transaction.atomic
def webhook_create(
    *,
    user,
    organization_id: int | None = None,
    project_id: int | None = None,
    url: str = "",
    secret: str = "",
    events: list[str] | None = None,
    active: bool = True,
) -> Webhook:
    """A webhook for an organization (every project) or for one project (its organization implied).
    Managers and owners only; the secret is generated when none is given."""
    project = None
    if organization_id is None and project_id is not None:
        project = Project.objects.filter(
            pk=project_id, organization_id__in=organization_ids_for(user)
        ).first()
        if project is None:
            raise NotFound("No such project.")
        organization_id = project.organization_id
    if organization_id is None:
        raise DomainError("organization or project is required.", field="organization", code="required")
    role_require(user=user, organization_id=organization_id, roles=MANAGING_ROLES, action="manage webhooks")
    return Webhook.objects.create(
        organization_id=organization_id,
        project=project or _project_of(organization_id, project_id),
        url=webhook_url_clean(url),
        secret=secret or secrets.token_hex(32),
        events=webhook_events_clean(events or []),
        active=active,
        created_by=user,
    )


@transaction.atomic
def webhook_update(*, hook: Webhook, user, **values) -> Webhook:
    """Change a webhook's project, url, secret, events or active flag (managers and owners only)."""
    role_require(
        user=user, organization_id=hook.organization_id, roles=MANAGING_ROLES, action="manage webhooks"
    )
    if "organization" in values and values["organization"] != hook.organization_id:
        raise DomainError("A webhook cannot move to another organization.", field="organization")
    if "project" in values:
        hook.project = _project_of(hook.organization_id, values["project"])
    if "url" in values:
        hook.url = webhook_url_clean(values["url"])
    if "secret" in values:
        hook.secret = values["secret"]
    if "events" in values:
        hook.events = webhook_events_clean(values["events"])
    if "active" in values:
        hook.active = values["active"]
    hook.save()
    return hook


@transaction.atomic
def webhook_delete(*, hook: Webhook, user) -> None:
    role_require(
        user=user, organization_id=hook.organization_id, roles=MANAGING_ROLES, action="manage webhooks"
    )
    hook.delete()


def on_domain_event(event: DomainEvent) -> None:
    """Subscriber of the domain events in core.events: queue the event for the webhooks that listen to it."""
    with transaction.atomic():
        _emit(
            organization_id=event.organization_id,
            project_id=event.project_id,
            event=event.name,
            payload=event.payload,
        )


def webhook_emit(*, organization, event: str, payload: dict, project=None) -> list[WebhookDelivery]:
    """Queue `event` with `payload` (JSON-serializable) for every active webhook of the organization that
    listens to it: organization-wide webhooks, and those of `project` when one is given. Deliveries are
    enqueued on the `cpu` queue once the current transaction commits; returns the deliveries created.

    Example (exports): webhook_emit(organization=project.organization, project=project,
    event="export.finished", payload={"export": export.id, "project": project.id, "format": "coco"}).
    """
    return _emit(
        organization_id=organization.pk,
        project_id=getattr(project, "pk", None),
        event=event,
        payload=payload,
    )


def _emit(
    *, organization_id: int, project_id: int | None, event: str, payload: dict
) -> list[WebhookDelivery]:
    if event not in WEBHOOK_EVENTS:
        raise ValueError(f"Unknown webhook event {event!r}; known: {WEBHOOK_EVENTS}")
    hooks = Webhook.objects.filter(organization_id=organization_id, active=True)
    hooks = (
        hooks.filter(Q(project__isnull=True) | Q(project_id=project_id))
        if project_id
        else hooks.filter(project__isnull=True)
    )
    deliveries = []
    for hook in hooks:
        if hook.events and event not in hook.events:
            continue
        body = {
            "event": event,
            "created_at": timezone.now().isoformat(),
            "organization": organization_id,
            "project": project_id,
            "data": payload,
        }
        deliveries.append(WebhookDelivery.objects.create(webhook=hook, event=event, payload=body))
    for delivery in deliveries:
        enqueue_on_commit("labelhub.webhooks.deliver", delivery.pk)
    return deliveries


def delivery_body(delivery: WebhookDelivery) -> bytes:
    return json.dumps({"id": delivery.pk, **delivery.payload}, sort_keys=True, separators=(",", ":")).encode()


def _ready(now) -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


def _claim_seconds() -> float:
    return float(settings.LABELHUB_WEBHOOK_CLAIM_SECONDS)


# The running claim of a delivery attempt (core/jobs.py): pending and due, or `sending` by an attempt
# that started LABELHUB_WEBHOOK_CLAIM_SECONDS ago (longer than a request's timeout, so an attempt needs no
# heartbeat thread: its worker died). The claim counts `attempts` (its token).
DELIVERIES = JobKind(
    WebhookDelivery,
    waiting=(DeliveryStatus.PENDING,),
    running=DeliveryStatus.SENDING,
    started="claimed_at",
    stale_seconds=_claim_seconds,
    ready=_ready,
)


def _due(now) -> Q:
    """Deliveries an attempt may take now: pending and due, or held by an attempt whose worker died."""
    return DELIVERIES.claimable(now)


def delivery_claim(*, delivery_id: int) -> int | None:
    """Take the delivery for one attempt: a conditional UPDATE that only one caller wins while the
    delivery is pending and due, or its last attempt's claim is stale. A redelivered message, a retry
    and the sweep's message for one delivery may run at once; only the winner sends. Its token, or None."""
    return DELIVERIES.claim(delivery_id)


def deliveries_sweep(*, now=None) -> int:
    """Queue again the pending deliveries that are due and were not taken up for
    LABELHUB_WEBHOOK_SWEEP_SECONDS past their due time (their message was lost with a broker restart,
    or their worker was killed mid-attempt and its claim went stale). Safe to repeat and to run twice at
    once: a delivery is sent only by the attempt that claims it (`delivery_claim`), and a duplicate
    message finds it delivered, or not due yet after a failed attempt, and sends nothing."""
    now = now or timezone.now()
    overdue = now - timedelta(seconds=settings.LABELHUB_WEBHOOK_SWEEP_SECONDS)
    ids = list(
        WebhookDelivery.objects.filter(_due(now))
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=overdue))
        .order_by("id")
        .values_list("id", flat=True)
    )
    for delivery_id in ids:
        send_or_log("labelhub.webhooks.deliver", delivery_id)
    return len(ids)


def delivery_attempt(*, delivery_id: int) -> tuple[WebhookDelivery, bool]:
    """Make one attempt at a pending, due delivery and log it: (the delivery, whether this call made the
    attempt). A delivery that is delivered, failed, not due yet, or being attempted by another call is
    left alone (a message delivered twice sends nothing twice). No database transaction is held during
    the request; deliveries are at least once (a worker killed after the receiver answered, before the
    log was written, is retried once its claim is stale), so receivers should ignore a repeated
    X-LabelHub-Delivery id."""
    token = delivery_claim(delivery_id=delivery_id)
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    if token is None:
        return delivery, False
    hook = delivery.webhook
    body = delivery_body(delivery)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "LabelHub-Webhook/1",
        "X-LabelHub-Event": delivery.event,
        "X-LabelHub-Delivery": str(delivery.pk),
        "X-LabelHub-Timestamp": timestamp,
        "X-LabelHub-Signature": signature_make(secret=hook.secret, timestamp=timestamp, body=body),
    }
    started = time.monotonic()
    status_code, error = None, ""
    try:
        # resolved and checked again now, and the connection goes to that checked address (no rebinding)
        status_code = netsafety.http_post(
            hook.url,
            body=body,
            headers=headers,
            timeout=settings.LABELHUB_WEBHOOK_TIMEOUT_SECONDS,
            allow_private=settings.LABELHUB_WEBHOOK_ALLOW_PRIVATE,
        )
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except netsafety.AddressRefused as exc:
        error = f"not sent: {exc}"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        error = (str(exc) or type(exc).__name__)[:500]
    attempt = {
        "at": timezone.now().isoformat(),
        "status_code": status_code,
        "error": error,
        "duration_ms": round((time.monotonic() - started) * 1000, 1),
    }
    with transaction.atomic():
        # Written only while this attempt's claim holds: one that outlived its claim (another attempt took
        # the delivery) leaves the record to that one.
        delivery = DELIVERIES.held(delivery_id, token).select_for_update().first()
        if delivery is None:
            log.warning("webhook delivery %s: attempt %s lost its claim; not recorded", delivery_id, token)
            return WebhookDelivery.objects.get(pk=delivery_id), False
        delivery.log = [*delivery.log, attempt]
        delivery.claimed_at = None
        delivery.heartbeat_at = None
        if status_code is not None and 200 <= status_code < 300:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = timezone.now()
        elif delivery.attempts >= settings.LABELHUB_WEBHOOK_MAX_ATTEMPTS:
            delivery.status = DeliveryStatus.FAILED
        else:
            delivery.status = DeliveryStatus.PENDING
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=retry_delay(delivery.attempts))
        delivery.save(
            update_fields=[
                "log",
                "status",
                "delivered_at",
                "claimed_at",
                "heartbeat_at",
                "next_attempt_at",
            ]
        )
    return delivery, True


def retry_delay(attempts: int) -> int:
    """Seconds before the next attempt after `attempts` failed ones: LABELHUB_WEBHOOK_RETRY_SECONDS,
    doubling each time."""
    return settings.LABELHUB_WEBHOOK_RETRY_SECONDS * 2 ** max(attempts - 1, 0)
