"""Reads about who may do what. Every organization-scoped query in LabelHub starts here."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from labelhub.core.errors import DomainError, Forbidden, NotFound
from labelhub.core.prepared import Prepared

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


# Sentinels of the prepared reads below: ids no row has.
_USER, _ORGANIZATION = -(2**62) - 11, -(2**62) - 12

_role = Prepared(
    lambda user_id, organization_id: (
        Membership.objects.filter(user_id=user_id, organization_id=organization_id)
        .order_by("pk")
        .values_list("role", flat=True)[:1]
    ),
    _USER,
    _ORGANIZATION,
)
_roles = Prepared(
    lambda user_id: Membership.objects.filter(user_id=user_id).values_list("organization_id", "role"), _USER
)


def roles_by_organization(*, user: AbstractBaseUser) -> list[tuple[int, str]]:
    """(organization id, role) of each of the user's memberships."""
    if not isinstance(user.pk, int):
        return []  # anonymous
    return _roles(user.pk)


def role_of(*, user: AbstractBaseUser, organization_id: int) -> str | None:
    if (
        isinstance(organization_id, bool)
        or not isinstance(organization_id, int)
        or not 0 < organization_id < 2**63
    ):
        return None  # no such organization, and no query with an id the database cannot hold
    if not isinstance(user.pk, int):
        return None  # anonymous
    found = _role(user.pk, organization_id)
    return found[0] if found else None


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


INVITATION_STATUSES = ("pending", "accepted", "expired", "open", "all")


def invitations_by_status(*, rows: QuerySet, status: str) -> QuerySet:
    """Invitations narrowed to a status: pending (open, not expired), accepted, expired (not accepted
    in time), open (pending and expired: not accepted) or all."""
    if status not in INVITATION_STATUSES:
        raise DomainError(f"status is one of {list(INVITATION_STATUSES)}.", field="status")
    now = timezone.now()
    if status in {"open", "pending", "expired"}:
        rows = rows.filter(accepted_at__isnull=True)
    if status == "pending":
        return rows.filter(expires_at__gt=now)
    if status == "expired":
        return rows.filter(expires_at__lte=now)
    if status == "accepted":
        return rows.filter(accepted_at__isnull=False)
    return rows
