"""A tiny in-process publish/subscribe for domain events, so that an app never imports the apps above
it that react to its changes (webhooks to stage changes, exports to image deletions).

Subscribers register in their AppConfig.ready(). `publish` hands an event to each subscriber once the
current transaction commits (transaction.on_commit; at once outside a transaction), so nobody hears of a
change that rolled back. A subscriber registered with `in_transaction=True` runs at once inside the
publisher's transaction instead: for records that must commit or roll back with the change itself (a
gold task's score is part of its submission; an export item detached from an image being deleted).
An after-commit subscriber that fails is logged and never fails the change that was committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)

# The catalogue of domain events: published by the app named, heard by the apps above it.
IMAGES_ADDED = "images.added"  # images: {"image_ids", "presegment"}; context {"images"}
VIDEO_ADDED = "video.added"  # videos, in its transaction: {"video"}; context {"video"}
IMAGE_DELETING = "image.deleting"  # images, in the deleting transaction: context {"image"}
PROJECT_DELETING = "project.deleting"  # projects, in the deleting transaction: context {"project"}
ORGANIZATION_DELETING = "organization.deleting"  # accounts, in the deleting transaction: {"organization"}
PREDICTION_READY = "prediction.ready"  # predictions: {"prediction", "image"}; context {"regions"}
TASK_STAGE_CHANGED = "task.stage_changed"  # labeling: a task moved to another stage (or to done)
# labeling: first-stage work handed on: {"task", "user", "revision"}; an in-transaction subscriber may put
# the submit's measured quality in its context, {"quality": {"source", "value"}} (qa: a gold task's
# accuracy), which labeling's automatic send-back reads once the subscribers ran.
TASK_SUBMITTED = "task.submitted"
EXPORT_FINISHED = "export.finished"  # datasets: an export is done or failed


@dataclass(frozen=True)
class DomainEvent:
    name: str
    organization_id: int
    project_id: int | None
    payload: dict[str, Any] = field(default_factory=dict)  # JSON-serializable
    # In-process extras for in-transaction subscribers (model instances); never serialized.
    context: dict[str, Any] = field(default_factory=dict, compare=False)


Handler = Callable[[DomainEvent], None]
_after_commit: dict[str, list[Handler]] = {}
_in_transaction: dict[str, list[Handler]] = {}


def subscribe(name: str, handler: Handler, *, in_transaction: bool = False) -> None:
    """Call `handler(event)` for every published event named `name` (registering twice is harmless)."""
    handlers = (_in_transaction if in_transaction else _after_commit).setdefault(name, [])
    if handler not in handlers:
        handlers.append(handler)


def publish(event: DomainEvent) -> None:
    """Deliver `event`: in-transaction subscribers now, the others once the transaction commits."""
    for handler in _in_transaction.get(event.name, ()):
        handler(event)
    handlers = list(_after_commit.get(event.name, ()))
    if handlers:
        transaction.on_commit(lambda: _dispatch(event, handlers))


def _dispatch(event: DomainEvent, handlers: list[Handler]) -> None:
    for handler in handlers:
        try:
            handler(event)
        except Exception:  # the change is committed; a subscriber's failure must not undo or hide it
            log.exception("subscriber %r of %s failed", handler, event.name)
