"""Reads for predictions and the images they are asked about, scoped to the caller's organizations."""

from __future__ import annotations

from collections.abc import Iterable

from labelhub.accounts.selectors import organization_ids_for, role_require
from labelhub.core.errors import NotFound
from labelhub.images.models import Image


def image_get(*, user, image_id: int, roles: Iterable[str], action: str) -> Image:
    """An image of one of the user's organizations (NotFound otherwise) where the user's role is one of
    `roles` (Forbidden otherwise)."""
    image = (
        Image.objects.select_related("project")
        .filter(pk=image_id, project__organization_id__in=organization_ids_for(user))
        .first()
    )
    if image is None:
        raise NotFound("No such image.")
    role_require(user=user, organization_id=image.project.organization_id, roles=roles, action=action)
    return image
