"""Request throttles (DRF's, counting in the shared cache) with rates read from
settings.LABELHUB_THROTTLE_RATES at each request, so one setting (and the tests) can change them."""

from __future__ import annotations

import functools
from types import SimpleNamespace

from django.conf import settings
from django.http import HttpResponse
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


def login_throttled(view):
    """A Django (not DRF) sign-in view, such as the admin's, under the API's `login` throttle: each POST
    (a password attempt) counts against the client's IP, and past the rate it answers 429 without
    checking the password."""
    scope = SimpleNamespace(throttle_scope="login")

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method == "POST":
            throttle = ScopeThrottle()
            if not throttle.allow_request(request, scope):
                response = HttpResponse(
                    "Too many sign-in attempts; try again later.", status=429, content_type="text/plain"
                )
                wait = throttle.wait()
                if wait:
                    response["Retry-After"] = str(int(wait) + 1)
                return response
        return view(request, *args, **kwargs)

    return wrapped
