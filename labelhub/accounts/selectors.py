"""Reads about who may do what. Every organization-scoped query in LabelHub starts here."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from labelhub.core.errors import Forbidden, NotFound

from .models import Membership, Organization, Role


def organization_ids_for(user: AbstractBaseUser) -> QuerySet:
    """Ids of the organizations the user belongs to, as a subquery."""
    return Membership.objects.filter(user=user).values("organization_id")


def organizations_for(*, user: AbstractBaseUser) -> QuerySet[Organization]:
    return Organization.objects.filter(id__in=organization_ids_for(user))


def organization_get(
    *, user: AbstractBaseUser, organization_id: int | str, roles: Iterable[str], action: str
) -> tuple[Organization, str]:
    """An organization of the user's with their role in it, which must be one of `roles`.

    Not a member (or no such organization): NotFound. Wrong role: Forbidden (see `role_require`)."""
    try:
        pk = int(organization_id)
    except (TypeError, ValueError):
        raise NotFound("No such organization.") from None
    role = role_of(user=user, organization_id=pk)
    organization = Organization.objects.filter(pk=pk).first() if role is not None else None
    if organization is None:
        raise NotFound("No such organization.")
    return organization, role_require(user=user, organization_id=pk, roles=roles, action=action)


def role_of(*, user: AbstractBaseUser, organization_id: int) -> str | None:
    if (
        isinstance(organization_id, bool)
        or not isinstance(organization_id, int)
        or not 0 < organization_id < 2**63
    ):
        return None  # no such organization, and no query with an id the database cannot hold
    return (
        Membership.objects.filter(user=user, organization_id=organization_id)
        .values_list("role", flat=True)
        .first()
    )


def role_require(*, user: AbstractBaseUser, organization_id: int, roles: Iterable[str], action: str) -> str:
    """Return the user's role in the organization if it is one of `roles`.

    Not a member: NotFound (another organization's objects do not exist for you). Wrong role: Forbidden.
    """
    role = role_of(user=user, organization_id=organization_id)
    if role is None:
        raise NotFound("Not found.")
    allowed = set(roles)
    if role not in allowed:
        names = ", ".join(sorted(allowed))
        raise Forbidden(
            f"Your role '{role}' may not {action}; it needs one of: {names}.", code="role_forbidden"
        )
    return role


ALL_ROLES = tuple(Role.values)
