"""Domain errors and the one DRF exception handler that turns every failure into
`{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError as DatabaseInterfaceError
from django.db import OperationalError as DatabaseOperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)


class DomainError(Exception):
    """An error a client can act on. `field` names the input at fault (dotted path, `regions[2].label`)."""

    status_code = status.HTTP_400_BAD_REQUEST
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details is not None:
            body["details"] = self.details
        return body


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    code = "not_found"


class Forbidden(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    code = "forbidden"


class Conflict(DomainError):
    status_code = status.HTTP_409_CONFLICT
    code = "conflict"


def first_error(detail: Any, path: str = "") -> tuple[str | None, str, str]:
    """Walk a DRF error detail to its first leaf: (field path, message, code)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == "non_field_errors":
                sub = path or None
            else:
                sub = f"{path}.{key}" if path else str(key)
            field, message, code = first_error(value, sub or "")
            return field or sub, message, code
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if value in ({}, [], None):
                continue
            if isinstance(value, dict | list):
                return first_error(value, f"{path}[{index}]")
            return first_error(value, path)
    code = getattr(detail, "code", "invalid") or "invalid"
    return path or None, str(detail), str(code)


def _error(
    status_code: int, code: str, message: str, field: str | None = None, details: Any = None
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message, "field": field}
    if details is not None:
        body["details"] = details
    return Response({"error": body}, status=status_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response({"error": exc.as_dict()}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        field = next(iter(exc.message_dict), None) if hasattr(exc, "error_dict") else None
        return _error(400, "invalid", "; ".join(exc.messages), field)
    if isinstance(exc, DatabaseOperationalError | DatabaseInterfaceError):
        # The database went away (a restart, a failover, a dropped connection) or rolled the
        # transaction back (deadlock, serialization failure): the transaction in flight is lost, and
        # the client should retry (with an Idempotency-Key, a resend can never run an action twice).
        log.warning("database unavailable for %s: %s", getattr(context.get("request"), "path", "?"), exc)
        response = _error(503, "database_unavailable", "The database is unavailable; retry shortly.")
        response["Retry-After"] = "5"
        return response
    if isinstance(exc, OverflowError):
        # An id beyond 64 bits reaches a query (SQLite refuses it; PostgreSQL would find nothing).
        return _error(400, "out_of_range", "A number in the request is out of range.")
    if isinstance(exc, RequestDataTooBig):
        return _error(413, "request_too_large", _too_big_message())
    if isinstance(exc, SuspiciousOperation):
        # Too many files, a bad multipart boundary.
        return _error(400, "bad_request", str(exc) or "The request was refused.")
    if isinstance(exc, Http404 | DjangoPermissionDenied):
        exc = exceptions.NotFound() if isinstance(exc, Http404) else exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        field, message, code = first_error(exc.detail)
        response.data = {"error": {"code": code, "message": message, "field": field, "details": exc.detail}}
        return response
    detail: Any = getattr(exc, "detail", str(exc))
    default_code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = {"error": {"code": str(default_code), "message": str(detail), "field": None}}
    return response


def json_not_found(request, exception=None):  # noqa: ARG001 - Django's handler signature
    return JsonResponse({"error": {"code": "not_found", "message": "Not found.", "field": None}}, status=404)


def json_server_error(request):  # noqa: ARG001
    return JsonResponse(
        {"error": {"code": "server_error", "message": "Internal error; it has been logged.", "field": None}},
        status=500,
    )


def _too_big_message() -> str:
    from django.conf import settings

    return f"The request body is over the limit of {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."


def json_bad_request(request, exception=None):  # noqa: ARG001
    if isinstance(exception, RequestDataTooBig):  # read outside a view (a middleware): still a 413
        return JsonResponse(
            {"error": {"code": "request_too_large", "message": _too_big_message(), "field": None}}, status=413
        )
    return JsonResponse(
        {"error": {"code": "bad_request", "message": "Bad request.", "field": None}}, status=400
    )
