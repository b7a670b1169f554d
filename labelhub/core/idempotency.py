"""The Idempotency-Key header of the action endpoints (as Stripe's): a client that did not get an answer
(a dropped connection, a timeout, a crashed proxy) sends the same request again with the same key and
gets the first answer instead of a second execution.

    @action(detail=True, methods=["post"])
    @idempotent
    def submit(self, request, pk=None): ...

For each (user, key):
- the first request claims the key (a row inserted with ON CONFLICT DO NOTHING, committed at once),
  then runs in one transaction that holds the row locked (SELECT ... FOR UPDATE NOWAIT) and stores the
  answer (status + JSON body) in it before committing: the action's writes and its stored answer commit
  together, or neither does;
- a resend with the same method, path, query and body gets the stored answer, with the header
  `Idempotent-Replayed: true`, and the action does not run again;
- the same key with another method, path, query or body answers 422 (`idempotency_key_reused`);
- a duplicate while the first is still running (the row is locked) answers 409
  (`idempotency_in_progress`): retry later;
- a 5xx answer (or an uncaught exception) is not stored: the claim is removed, so a retry runs again.
  A request whose process died mid-way rolled back with its claim's lock released, so its retry runs.
Keys are the user's own (another user's same key is another key), at most 255 characters, kept for
LABELHUB_IDEMPOTENCY_SECONDS (an expired key may be used again; `idempotency_purge` deletes old rows).
Safe methods (GET, HEAD, OPTIONS) and anonymous requests ignore the header.

Written here rather than taken from a library: the DRF packages for this (e.g. drf-idempotency-keys)
store the answer after the action's commit in a cache and cannot answer 409 for a concurrent
duplicate; here the answer commits with the action's rows in PostgreSQL.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, OperationalError, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.permissions import SAFE_METHODS
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from .errors import Conflict, DomainError
from .models import IdempotencyKey

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255

PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "A key of your choice (at most 255 characters, e.g. a UUID) that makes a retry safe: a resend "
        "with the same key, method, path and body within LABELHUB_IDEMPOTENCY_SECONDS returns the first "
        "answer (header `Idempotent-Replayed: true`) without running the action again. The same key with "
        "another path or body answers 422; a resend while the first is still running answers 409 "
        "(`idempotency_in_progress`). 5xx answers are not kept."
    ),
)


class KeyReused(DomainError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    code = "idempotency_key_reused"


def idempotent(handler):
    """Decorate a DRF view method (`post`, an @action) to honour the Idempotency-Key header on its unsafe
    methods. The OpenAPI schema (labelhub.core.schema) documents the header on every decorated operation."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        raw = request.headers.get(HEADER)
        user = getattr(request, "user", None)
        if raw is None or request.method in SAFE_METHODS or not (user and user.is_authenticated):
            return handler(view, request, *args, **kwargs)
        key = key_clean(raw)
        fingerprint = request_fingerprint(request)
        return _run(view, request, key, fingerprint, lambda: handler(view, request, *args, **kwargs))

    wrapper.idempotent = True
    return wrapper


def key_clean(raw: str) -> str:
    key = raw.strip()
    if not key:
        raise DomainError(f"The {HEADER} header is empty.", field=HEADER)
    if len(key) > MAX_KEY_LENGTH:
        raise DomainError(f"The {HEADER} header is at most {MAX_KEY_LENGTH} characters long.", field=HEADER)
    return key


def _canonical(value: Any) -> Any:
    """The parsed body as plain JSON values; an uploaded file by its name, size and SHA-256."""
    if isinstance(value, UploadedFile):
        digest = hashlib.sha256()
        for chunk in value.chunks():
            digest.update(chunk)
        value.seek(0)
        return {"file": value.name, "size": value.size, "sha256": digest.hexdigest()}
    if hasattr(value, "lists"):  # a QueryDict (form or multipart body): every value of every key
        return {k: [_canonical(v) for v in vs] for k, vs in sorted(value.lists())}
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def request_fingerprint(request) -> str:
    """SHA-256 of the method, path, query and parsed body (so JSON whitespace or key order do not count)."""
    query = sorted(request.query_params.lists())
    body = _canonical(request.data)
    text = json.dumps([request.method, request.path, query, body], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _json(data: Any) -> Any:
    """The response data as the JSON the client got (DRF's renderer: dates, decimals, UUIDs as strings)."""
    if data is None:
        return None
    return json.loads(JSONRenderer().render(data))


def _replay(row: IdempotencyKey) -> Response:
    return Response(row.body, status=row.status_code, headers={REPLAYED_HEADER: "true"})


def _in_progress() -> Conflict:
    return Conflict(
        f"A request with this {HEADER} is still running; retry in a moment.",
        field=HEADER,
        code="idempotency_in_progress",
    )


def _release(pk: int) -> None:
    """Forget a claim whose request ended without a stored answer (a 5xx), so the key can run again."""
    try:
        IdempotencyKey.objects.filter(pk=pk, status_code__isnull=True).delete()
    except Exception:  # the database may be why the request failed; the purge removes the row later
        log.exception("could not remove idempotency claim %s", pk)


def _run(view, request, key: str, fingerprint: str, call) -> Response:
    user = request.user
    now = timezone.now()
    expired = now - timedelta(seconds=settings.LABELHUB_IDEMPOTENCY_SECONDS)
    # The claim, committed at once (in autocommit): an expired answer frees its key first.
    IdempotencyKey.objects.filter(user=user, key=key, created_at__lt=expired).delete()
    IdempotencyKey.objects.bulk_create(
        [
            IdempotencyKey(
                user=user,
                key=key,
                method=request.method,
                path=request.path[:2000],
                fingerprint=fingerprint,
                created_at=now,
            )
        ],
        ignore_conflicts=True,
    )
    row_pk, rolled_back = None, False
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    row = IdempotencyKey.objects.select_for_update(nowait=True).get(user=user, key=key)
            except OperationalError:  # locked: the first request with this key is running
                raise _in_progress() from None
            except IdempotencyKey.DoesNotExist:  # its first request just failed and let go of it
                raise _in_progress() from None
            if row.fingerprint != fingerprint:
                raise KeyReused(
                    f"This {HEADER} was used for another request ({row.method} {row.path} with another "
                    "body or query); use a new key for a new request.",
                    field=HEADER,
                )
            if row.status_code is not None:
                return _replay(row)
            row_pk = row.pk
            try:
                response = call()
            except Exception as exc:  # noqa: BLE001 - answered as the view would; re-raised if uncaught
                # Inside the transaction, so that what the action wrote before a handled error (a 4xx)
                # commits as it would without the header; an uncaught one re-raises and rolls back.
                response = view.handle_exception(exc)
            if transaction.get_rollback():  # the action broke its transaction: nothing of it commits
                rolled_back = True
                return response
            if not isinstance(response, Response) or response.status_code >= 500:
                row.delete()
                return response
            row.status_code = response.status_code
            row.completed_at = timezone.now()
            try:
                row.body = _json(response.data)
                with transaction.atomic():
                    row.save(update_fields=["status_code", "body", "completed_at"])
            except (TypeError, ValueError, DatabaseError):
                # An answer PostgreSQL cannot keep as JSON (NaN): the action still commits, its key is
                # freed (a resend runs again) rather than turning a success into an error.
                log.exception("could not store the answer for idempotency key %s", row.pk)
                row.delete()
            return response
    except Exception:
        if row_pk is not None:
            _release(row_pk)
        raise
    finally:
        if rolled_back and row_pk is not None:
            _release(row_pk)


def idempotency_purge(*, now=None) -> int:
    """Delete the keys older than LABELHUB_IDEMPOTENCY_SECONDS; the number deleted."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.LABELHUB_IDEMPOTENCY_SECONDS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
