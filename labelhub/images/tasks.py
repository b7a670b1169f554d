"""Celery tasks of the images app (the `cpu` queue)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="labelhub.images.build_pyramid", acks_late=True)
def build_pyramid(image_id: int) -> str:
    """Build a gigapixel image's tile pyramid (progress in `pyramid_progress`). A message delivered
    twice finds the pyramid ready and does nothing."""
    image = services.pyramid_build_run(image_id=image_id)
    return image.pyramid_status if image is not None else "missing"
