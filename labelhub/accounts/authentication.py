"""API token authentication: django-rest-knox's, plus the password check (TokenPassword)."""

from __future__ import annotations

import binascii
from hmac import compare_digest

from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions

from labelhub.core.prepared import Prepared

from .models import TokenPassword, password_fingerprint

# The tokens whose key (the first characters) is this one, with their user and password stamp.
_tokens_by_key = Prepared(
    lambda key: get_token_model().objects.filter(token_key=key).select_related("user", "password_stamp"),
    "\0token-key",
)


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's token authentication in one query; a token issued under another password than the
    user's current one (changed through the API, the admin or `set_password`) is deleted and answers
    401.

    knox reads the token with its user, then all the user's tokens (to delete expired ones) and here
    the password stamp: three queries on every request. This reads the token, its user and its stamp
    together; expired tokens are deleted when they are used and when the user is issued a new one
    (`token_issue`)."""

    def authenticate_credentials(self, token):
        message = "Invalid token."
        token = token.decode("utf-8")
        try:
            digest = hash_token(token)
        except (TypeError, binascii.Error) as exc:
            raise exceptions.AuthenticationFailed(message) from exc
        for auth_token in _tokens_by_key(token[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if not compare_digest(digest, auth_token.digest):
                continue
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                username = auth_token.user.get_username()
                auth_token.delete()
                token_expired.send(sender=self.__class__, username=username, source="auth_token")
                raise exceptions.AuthenticationFailed(message)
            if knox_settings.AUTO_REFRESH and auth_token.expiry:
                self.renew_token(auth_token)
            return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(message)

    def validate_user(self, auth_token):
        try:
            stamp = auth_token.password_stamp.fingerprint
        except TokenPassword.DoesNotExist:
            stamp = None
        if stamp is None or not compare_digest(stamp, password_fingerprint(auth_token.user.password)):
            auth_token.delete()
            raise exceptions.AuthenticationFailed("The password changed since this token was issued.")
        return super().validate_user(auth_token)


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme of this class: knox's (same name, same header)."""

    target_class = "labelhub.accounts.authentication.TokenAuthentication"
