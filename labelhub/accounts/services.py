"""Writes for organizations and their members."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from labelhub.core.errors import Conflict, DomainError, Forbidden, NotFound
from labelhub.core.events import ORGANIZATION_DELETING, DomainEvent, publish

from .auth import user_create
from .models import MANAGING_ROLES, Invitation, Membership, Organization, Role
from .selectors import role_require


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


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def invitation_create(
    *, organization: Organization, actor_role: str, invited_by, role: str, email: str = "", username: str = ""
) -> tuple[Invitation, str]:
    """Invite an e-mail address or a username to `role`: (the invitation, its secret token, shown once).
    Whether the username exists is neither checked nor told; membership starts only on acceptance."""
    _check_grant(actor_role=actor_role, role=role)
    if bool(email) == bool(username):
        raise DomainError("Invite by email or by username (one of the two).", field="email", code="required")
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization,
        role=role,
        email=email.strip().lower(),
        username=username.strip(),
        token_digest=_digest(token),
        invited_by=invited_by,
        expires_at=timezone.now() + timedelta(days=settings.LABELHUB_INVITATION_DAYS),
    )
    return invitation, token


def _open_invitation(token: str) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update()
        .filter(token_digest=_digest(token or ""), accepted_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if invitation is None:
        raise NotFound("No such invitation, or it has expired or been used.", field="token")
    return invitation


def _addressed_to(invitation: Invitation, user) -> bool:
    if invitation.username:
        return user.username == invitation.username
    return bool(user.email) and user.email.lower() == invitation.email


@transaction.atomic
def invitation_accept(
    *, token: str, user=None, username: str = "", password: str = "", email: str = ""
) -> Membership:
    """Accept an invitation: as the signed-in `user` it is addressed to, or (no `user`) by creating the
    account `username`/`password` (an invitation by username creates exactly that username; one by
    e-mail gives the new account that address). The membership exists from here on."""
    invitation = _open_invitation(token)
    if user is None:
        if not username or not password:
            raise DomainError(
                "Sign in to accept, or give username and password for a new account.",
                field="username",
                code="required",
            )
        if invitation.username and username != invitation.username:
            raise DomainError("The invitation is for another username.", field="username")
        user = user_create(username=username, password=password, email=invitation.email or email)
    elif not _addressed_to(invitation, user):
        raise NotFound("No such invitation, or it has expired or been used.", field="token")
    if Membership.objects.filter(organization_id=invitation.organization_id, user=user).exists():
        raise Conflict("You are already a member of this organization.", code="already_member")
    membership = Membership.objects.create(
        organization_id=invitation.organization_id, user=user, role=invitation.role
    )
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    return membership


def invitation_revoke(*, invitation: Invitation, actor_role: str) -> None:
    _check_grant(actor_role=actor_role, role=invitation.role)
    invitation.delete()


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
