"""API token authentication: django-rest-knox's, plus the password check (TokenPassword)."""

from __future__ import annotations

from hmac import compare_digest

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions

from .models import TokenPassword, password_fingerprint


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's token authentication; a token issued under another password than the user's current one
    (changed through the API, the admin or `set_password`) is deleted and answers 401."""

    def validate_user(self, auth_token):
        stamp = (
            TokenPassword.objects.filter(token_id=auth_token.pk).values_list("fingerprint", flat=True).first()
        )
        if stamp is None or not compare_digest(stamp, password_fingerprint(auth_token.user.password)):
            auth_token.delete()
            raise exceptions.AuthenticationFailed("The password changed since this token was issued.")
        return super().validate_user(auth_token)


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of this class: knox's (same name, same header)."""

    target_class = "labelhub.accounts.authentication.TokenAuthentication"
