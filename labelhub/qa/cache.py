"""A per-project cache of the figures summed from quality samples (the metrics' segmentation, AI-assist
and gold blocks, the quality report), invalidated whenever the project's samples change.

Each project has a version token in the cache; a cached answer is keyed by it. Writing or deleting a
sample replaces the token twice: at once (so the writing transaction, and a test inside one, reads
fresh figures) and again on commit (so an answer computed by another process from the data before the
commit, stored under the token of the moment, is never read afterwards). A token is random rather than
a counter, so a token evicted from the cache cannot come back as an older one; keys also carry the
project's creation time, so a reused project id (a fresh test database) never meets old entries.
Entries expire after CACHE_SECONDS, which bounds what a change without a hook (a user deleted, whose
samples lose their name) leaves stale.

After a change commits, a job (labelhub.qa.figures_warm, WARM_DELAY_SECONDS later, at most one queued
per project: a burst of submits costs one computation) computes the project's default metrics and
report into the cache, so that a manager rarely pays the computation in a request.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import transaction

from labelhub.projects.models import Project

CACHE_SECONDS = 600
WARM_DELAY_SECONDS = 10


def _version_key(project_id: int) -> str:
    return f"lh:qa:samples-version:{project_id}"


def samples_changed(project_id: int, *, warm: bool = True) -> None:
    """The project's samples changed (in the current transaction): its cached figures are void, and
    (`warm`) computed again by a job once the transaction commits."""

    def bump() -> None:
        cache.set(_version_key(project_id), uuid.uuid4().hex, timeout=None)

    def bump_and_warm() -> None:
        bump()
        if warm:
            _warm_soon(project_id)

    bump()
    transaction.on_commit(bump_and_warm)


def _queued_key(project_id: int) -> str:
    return f"lh:qa:warm-queued:{project_id}"


def _warm_soon(project_id: int) -> None:
    """Queue the project's warm-up job unless one is queued already (a failed send is logged)."""
    import logging

    from labelhub.core.queue import task_named

    if not cache.add(_queued_key(project_id), 1, timeout=WARM_DELAY_SECONDS * 30):
        return
    try:
        task_named("labelhub.qa.figures_warm").apply_async(
            args=(project_id,), countdown=WARM_DELAY_SECONDS, retry=False, ignore_result=True
        )
    except Exception:  # a broker outage: the figures are computed on the next read instead
        cache.delete(_queued_key(project_id))
        logging.getLogger(__name__).exception("could not queue the warm-up of project %s", project_id)


def warm_done(project_id: int) -> None:
    """The warm-up job started: a change from now on queues another."""
    cache.delete(_queued_key(project_id))


def samples_cached(project: Project, name: str, params: tuple, compute: Callable[[], Any]) -> Any:
    """`compute()` for (project, name, params), read from the cache while the project's samples are
    unchanged."""
    version = cache.get(_version_key(project.pk))
    if version is None:
        version = uuid.uuid4().hex
        if not cache.add(_version_key(project.pk), version, timeout=None):
            version = cache.get(_version_key(project.pk)) or version
    created = project.created_at.timestamp() if project.created_at else 0
    digest = hashlib.sha256(repr((created, name, params)).encode()).hexdigest()[:32]
    key = f"lh:qa:samples:{project.pk}:{version}:{digest}"
    found = cache.get(key)
    if found is not None:
        return found
    value = compute()
    cache.set(key, value, timeout=CACHE_SECONDS)
    return value
