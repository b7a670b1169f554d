"""Reads for webhooks: only the organizations the caller manages."""

from __future__ import annotations

from django.db.models import QuerySet

from labelhub.accounts.models import MANAGING_ROLES, Membership

from .models import Webhook


def webhooks_managed(*, user) -> QuerySet[Webhook]:
    """The webhooks of the organizations where `user` is an owner or manager (others see none: 404)."""
    managed = Membership.objects.filter(user=user, role__in=MANAGING_ROLES).values("organization_id")
    return Webhook.objects.filter(organization_id__in=managed)
