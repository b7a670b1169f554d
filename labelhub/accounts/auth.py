"""Accounts and API tokens: sign-up, password change, token issue and revocation (django-rest-knox
tokens: random, stored as SHA-512 digests, with an expiry)."""

from __future__ import annotations

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from knox.models import AuthToken

from labelhub.core.errors import Conflict, DomainError

from .models import TokenPassword, password_fingerprint

User = get_user_model()


@transaction.atomic
def token_issue(*, user) -> tuple[AuthToken, str]:
    """A new API token for `user`: (stored row with its expiry, the secret shown to the client once),
    stamped with the fingerprint of the user's password (any later password change invalidates it).
    The user's expired tokens are deleted here (knox does it on every authenticated request, one
    query each)."""
    AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
    token, secret = AuthToken.objects.create(user=user)
    TokenPassword.objects.create(token=token, fingerprint=password_fingerprint(user.password))
    return token, secret


def tokens_revoke_all(*, user) -> int:
    """Revoke every API token of `user`; returns how many there were."""
    count, _ = AuthToken.objects.filter(user=user).delete()
    return count


def password_check(*, password: str, user=None, field: str = "password") -> None:
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise DomainError(" ".join(exc.messages), field=field, code="weak_password") from exc


@transaction.atomic
def password_change(*, user, old_password: str, new_password: str) -> None:
    """Change the password and revoke every API token of the user (they were issued to the old one)."""
    if not user.check_password(old_password):
        raise DomainError("The current password is wrong.", field="old_password", code="wrong_password")
    password_check(password=new_password, user=user, field="new_password")
    user.set_password(new_password)
    user.save(update_fields=["password"])
    tokens_revoke_all(user=user)


def user_create(*, username: str, password: str, email: str = ""):
    """A new account. A taken username is a Conflict (only callers that may reveal it reach here:
    open sign-up, or the holder of a valid invitation)."""
    candidate = User(username=username, email=email)
    password_check(password=password, user=candidate)
    try:
        with transaction.atomic():
            if User.objects.filter(username__iexact=username).exists():
                raise IntegrityError
            candidate.set_password(password)
            candidate.save()
    except IntegrityError as exc:
        raise Conflict(
            "This username is taken; choose another.", field="username", code="username_taken"
        ) from exc
    return candidate
