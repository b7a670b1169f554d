"""Writes for organizations and their members."""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from labelhub.core.errors import Conflict, DomainError, Forbidden, NotFound
from labelhub.core.events import OrganizationDeleting, announce

from .auth import user_create
from .models import MANAGING_ROLES, Invitation, Membership, Organization, Role
from .selectors import role_require

log = logging.getLogger(__name__)
FIRST_OWNER_LOCK = 0x4C48_0001  # the advisory lock that serializes first-run forms (PostgreSQL)


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
    announce(
        OrganizationDeleting(),
        organization_id=organization.pk,
        project_id=None,
        context={"organization": organization},
    )
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
    Whether the username exists is neither checked nor told; membership starts only on acceptance.
    The e-mail goes out with `invitation_email_send` once this has committed."""
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


@transaction.atomic
def invitation_renew(*, invitation: Invitation, actor_role: str) -> tuple[Invitation, str]:
    """A new token and a new expiry for an invitation not yet accepted (resend, or a fresh link to copy):
    the old link stops working. Returns (the invitation, its new secret token)."""
    _check_grant(actor_role=actor_role, role=invitation.role)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise Conflict("This invitation was accepted already.", code="already_accepted")
    token = secrets.token_urlsafe(32)
    invitation.token_digest = _digest(token)
    invitation.expires_at = timezone.now() + timedelta(days=settings.LABELHUB_INVITATION_DAYS)
    invitation.save(update_fields=["token_digest", "expires_at"])
    return invitation, token


def invitation_link(*, token: str, base_url: str) -> str:
    """The app's accept page for `token`: under LABELHUB_PUBLIC_URL when set, else under `base_url`
    (the address the inviting request came to)."""
    base = settings.LABELHUB_PUBLIC_URL or base_url.rstrip("/")
    return f"{base}/app/invite/{token}/"


def invitation_email_send(*, invitation: Invitation, link: str) -> bool:
    """Mail the accept link to an invitation addressed to an e-mail address (through Django's e-mail
    framework: SMTP, or the console backend by default). True when the mail was handed to the backend;
    False for an invitation by username, or when the backend failed (logged: the invitation stands and
    its link can still be copied)."""
    if not invitation.email:
        return False
    inviter = invitation.invited_by.username if invitation.invited_by else "A manager"
    days = max(1, round((invitation.expires_at - timezone.now()).total_seconds() / 86400))
    body = (
        f"{inviter} invites you to join {invitation.organization.name} on LabelHub as {invitation.role}.\n\n"
        f"Accept the invitation and choose your password here (the link works for {days} days, once):\n\n"
        f"{link}\n\n"
        "If you did not expect this, ignore this message.\n"
    )
    try:
        send_mail(
            subject=f"You are invited to {invitation.organization.name} on LabelHub",
            message=body,
            from_email=None,  # DEFAULT_FROM_EMAIL (LABELHUB_EMAIL_FROM)
            recipient_list=[invitation.email],
        )
    except (OSError, ValueError) as exc:  # SMTP errors are OSErrors; a bad header is a ValueError
        log.warning("invitation %s: the e-mail to %s failed: %s", invitation.pk, invitation.email, exc)
        return False
    return True


def invitation_status(invitation: Invitation) -> str:
    if invitation.accepted_at is not None:
        return "accepted"
    return "expired" if invitation.expires_at <= timezone.now() else "pending"


@transaction.atomic
def first_owner_create(*, username: str, password: str, email: str, organization_name: str):
    """The first account of a fresh install (no user exists yet): an owner of a new organization, and
    the server's administrator (Django admin). Refused once any account exists."""
    from django.db import connection

    User = get_user_model()
    if (
        connection.vendor == "postgresql"
    ):  # two first-run forms at once: the second waits, then sees the first
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FIRST_OWNER_LOCK])
    if User.objects.exists():
        raise Forbidden("This server has accounts already: sign in.", code="setup_done")
    name = (organization_name or "").strip()
    if not name or len(name) > 200:
        raise DomainError("The organization's name is 1 to 200 characters.", field="organization")
    user = user_create(username=username, password=password, email=email)
    user.is_staff = user.is_superuser = True
    user.save(update_fields=["is_staff", "is_superuser"])
    organization_create(name=name, owner=user)
    return user


def _open_invitation(token: str) -> Invitation:
    invitation = (
        Invitation.objects.select_for_update()
        .filter(token_digest=_digest(token or ""), accepted_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if invitation is None:
        raise NotFound("No such invitation, or it has expired or been used.", field="token")
    return invitation


def invitation_preview(*, token: str) -> dict | None:
    """What the accept page shows of an open invitation (organization, role, inviter, the username it
    names, if any); None when the token is unknown, used or expired."""
    invitation = (
        Invitation.objects.select_related("organization", "invited_by")
        .filter(token_digest=_digest(token or ""), accepted_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )
    if invitation is None:
        return None
    return {
        "organization": invitation.organization.name,
        "role": invitation.role,
        "invited_by": invitation.invited_by.username if invitation.invited_by else "",
        "email": invitation.email,
        "username": invitation.username,
        "expires_at": invitation.expires_at,
    }


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
