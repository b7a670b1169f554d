from __future__ import annotations

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    MANAGER = "manager", "Manager"
    ANNOTATOR = "annotator", "Annotator"
    REVIEWER = "reviewer", "Reviewer"


# Roles that run a project: create projects, upload images, reassign tasks, manage members.
MANAGING_ROLES = frozenset({Role.OWNER, Role.MANAGER})


class Organization(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="one_membership_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} as {self.role}"


class Invitation(models.Model):
    """An offer of a role in an organization, addressed to an e-mail address or a username. Nobody is a
    member until the invitee accepts with the secret token; only the token's SHA-256 digest is stored."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=16, choices=Role.choices)
    email = models.EmailField(blank=True)
    username = models.CharField(max_length=150, blank=True)
    token_digest = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="invitations_sent"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.email or self.username} to {self.organization} as {self.role}"


def password_fingerprint(password_hash: str) -> str:
    """An HMAC (SECRET_KEY) of a user's stored password hash: changes with every password change,
    however it is made (the API, the Django admin, `set_password` in a shell), and reveals nothing."""
    from django.utils.crypto import salted_hmac

    return salted_hmac("labelhub.accounts.token-password", password_hash, algorithm="sha256").hexdigest()


class TokenPassword(models.Model):
    """The password a knox API token was issued under (its fingerprint): authentication compares it
    with the user's current one, so a password changed anywhere invalidates the user's tokens."""

    token = models.OneToOneField(
        "knox.AuthToken", primary_key=True, on_delete=models.CASCADE, related_name="password_stamp"
    )
    fingerprint = models.CharField(max_length=64)


class UserPreferences(models.Model):
    """A person's settings of the app, kept on the server so they follow them to any browser: for now
    the keyboard shortcuts they remapped ({command id: key}, see labelhub/accounts/preferences.py)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="preferences"
    )
    shortcuts = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"preferences of user {self.user_id}"
