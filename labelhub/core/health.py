"""Health endpoints for load balancers and Kubernetes probes: no authentication, JSON, no database writes.

`/healthz/live/`: the process answers (liveness; restarting it is the only cure when it does not).
`/healthz/ready/`: the database, the broker and the storage answer (readiness; 503 names each that failed,
so the pod leaves the Service until they come back, without being restarted).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER or settings.CELERY_BROKER_URL.startswith("memory://"):
        return  # tasks run in-process: there is no broker to reach
    from celery import current_app

    with current_app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        conn.ensure_connection(
            max_retries=1, interval_start=0, timeout=settings.LABELHUB_HEALTH_TIMEOUT_SECONDS
        )


def _storage() -> None:
    from labelhub.core.downloads import is_s3

    if is_s3(default_storage):
        default_storage.connection.meta.client.head_bucket(Bucket=default_storage.bucket_name)
    else:  # the media folder exists (a fresh install creates it) and takes writes
        root = Path(default_storage.location)
        root.mkdir(parents=True, exist_ok=True)
        if not os.access(root, os.W_OK):
            raise PermissionError(f"{root} is not writable")


CHECKS: dict[str, Callable[[], None]] = {"database": _database, "broker": _broker, "storage": _storage}


@never_cache
@require_safe
def live(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def ready(request):
    """200 `{"status": "ok", "checks": {...}}` or 503 with `failed` listing the checks that did not pass
    and each one's error; every check's time in milliseconds."""
    checks: dict[str, dict] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure means not ready; the message says which and why
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            checks[name] = {"ok": True}
        checks[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    failed = [name for name, result in checks.items() if not result["ok"]]
    body = {"status": "fail" if failed else "ok", "checks": checks}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)
