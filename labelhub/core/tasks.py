"""Celery tasks of the core (on the `cpu` queue, run by `celery beat`)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="labelhub.core.idempotency_purge")
def idempotency_purge() -> int:
    """Delete stored Idempotency-Key answers older than LABELHUB_IDEMPOTENCY_SECONDS."""
    from .idempotency import idempotency_purge as purge

    return purge()
