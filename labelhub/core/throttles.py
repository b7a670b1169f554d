"""Request throttles (DRF's, counting in the shared cache) with rates read from
settings.LABELHUB_THROTTLE_RATES at each request, so one setting (and the tests) can change them."""

from __future__ import annotations

from django.conf import settings
from rest_framework import throttling


class _SettingsRate:
    scope: str | None

    def get_rate(self):
        return settings.LABELHUB_THROTTLE_RATES.get(self.scope)


class AnonThrottle(_SettingsRate, throttling.AnonRateThrottle):
    """Anonymous calls, per client IP."""

    scope = "anon"


class WriteThrottle(_SettingsRate, throttling.UserRateThrottle):
    """Writes (POST, PUT, PATCH, DELETE) of signed-in users, per user."""

    scope = "write"

    def allow_request(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS") or not request.user.is_authenticated:
            return True
        return super().allow_request(request, view)


class ScopeThrottle(_SettingsRate, throttling.ScopedRateThrottle):
    """Views with a `throttle_scope` (login, segment, upload, import): per user, or per IP when anonymous."""
