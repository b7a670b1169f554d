"""Celery tasks of the labeling app (on the `cpu` queue)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="labelhub.labeling.leases_expire", acks_late=True)
def leases_expire() -> int:
    """Periodic (Celery beat, every LABELHUB_LEASE_SWEEP_SECONDS): return expired leases to the queue."""
    from .leases import leases_expire as expire

    return expire()
