"""Writes for organizations and their members."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from labelhub.core.errors import Conflict, DomainError, Forbidden, NotFound
from labelhub.core.events import ORGANIZATION_DELETING, DomainEvent, publish

from .models import MANAGING_ROLES, Membership, Organization, Role
from .selectors import role_require

User = get_user_model()


@transaction.atomic
def organization_create(*, name: str, owner) -> Organization:
    base = slugify(name)[:60] or "org"
    slug, n = base, 1
    while Organization.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    organization = Organization.objects.create(name=name, slug=slug)
    Membership.objects.create(organization=organization, user=owner, role=Role.OWNER)
    return organization


@transaction.atomic
def organization_rename(*, organization: Organization, user, name: str) -> Organization:
    """Owners and managers rename their organization (its slug stays)."""
    role_require(
        user=user, organization_id=organization.pk, roles=MANAGING_ROLES, action="rename the organization"
    )
    organization.name = name
    organization.save(update_fields=["name"])
    return organization


@transaction.atomic
def organization_delete(*, organization: Organization, user) -> None:
    """An owner deletes the organization with all its projects. The apps above hear of it in this
    transaction ("organization.deleting") and remove their stored files once it commits."""
    role_require(
        user=user, organization_id=organization.pk, roles=[Role.OWNER], action="delete the organization"
    )
    publish(DomainEvent(name=ORGANIZATION_DELETING, organization_id=organization.pk, project_id=None,
                        context={"organization": organization}))  # fmt: skip
    organization.delete()


def _check_grant(*, actor_role: str, role: str) -> None:
    if actor_role not in MANAGING_ROLES:
        raise Forbidden("Only owners and managers manage members.", code="role_forbidden")
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise Forbidden("Only an owner can make another owner.", field="role", code="role_forbidden")


@transaction.atomic
def membership_add(*, organization: Organization, actor_role: str, username: str, role: str) -> Membership:
    _check_grant(actor_role=actor_role, role=role)
    user = User.objects.filter(username=username).first()
    if user is None:
        raise DomainError(f"No user named '{username}'.", field="username", code="unknown_user")
    if Membership.objects.filter(organization=organization, user=user).exists():
        raise Conflict(f"'{username}' is already a member.", field="username", code="already_member")
    return Membership.objects.create(organization=organization, user=user, role=role)


@transaction.atomic
def membership_change_role(*, membership: Membership, actor_role: str, role: str) -> Membership:
    _check_grant(actor_role=actor_role, role=role)
    if membership.role == Role.OWNER and actor_role != Role.OWNER:
        raise Forbidden("Only an owner can change an owner's role.", code="role_forbidden")
    _keep_an_owner(membership=membership, leaving=role != Role.OWNER)
    membership.role = role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, actor_role: str) -> None:
    _check_grant(actor_role=actor_role, role=membership.role)
    _keep_an_owner(membership=membership, leaving=True)
    membership.delete()


def _keep_an_owner(*, membership: Membership, leaving: bool) -> None:
    if not leaving or membership.role != Role.OWNER:
        return
    owners = Membership.objects.select_for_update().filter(
        organization_id=membership.organization_id, role=Role.OWNER
    )
    if owners.count() <= 1:
        raise Conflict("An organization keeps at least one owner.", field="role", code="last_owner")


def membership_get(*, organization: Organization, membership_id: int) -> Membership:
    membership = Membership.objects.filter(organization=organization, id=membership_id).first()
    if membership is None:
        raise NotFound("No such member.")
    return membership
