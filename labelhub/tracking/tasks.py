"""Celery tasks: SAM 2 propagation on the `gpu` queue, the optical-flow fallback on `cpu`."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="labelhub.tracking.gpu.propagate", acks_late=True)
def propagate_sam2(job_id: int) -> str:
    return services.propagation_run(job_id).status


@shared_task(name="labelhub.tracking.propagate", acks_late=True)
def propagate_flow(job_id: int) -> str:
    return services.propagation_run(job_id).status
