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
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)

# --- the catalogue: every domain event, who publishes it, and its payload ---------------------------
# The one place an event is declared: publishers `announce(ImagesAdded(...), ...)` its payload dataclass
# (the event's name follows from it), subscribers import the name from here (never through another
# app), and `publish` refuses a payload whose keys are not its dataclass's fields. Payloads are
# JSON (webhooks deliver some of them as they are); `context` carries model instances to in-transaction
# subscribers. A payload carries what its after-commit subscribers need, so they do not query again.

IMAGES_ADDED = "images.added"  # images; context {"images"}
VIDEO_ADDED = "video.added"  # videos, in its transaction; context {"video"}
IMAGE_DELETING = "image.deleting"  # images, in the deleting transaction; context {"image"}
PROJECT_DELETING = "project.deleting"  # projects, in the deleting transaction; context {"project"}
ORGANIZATION_DELETING = (
    "organization.deleting"  # accounts, in the deleting transaction; context {"organization"}
)
PREDICTION_READY = "prediction.ready"  # predictions; context {"image", "regions"}
# predictions, a batch in its transaction; context {"items": [(image, regions)], "refused": {}}, which the
# in-transaction seeding fills with {image id: DomainError} for the images whose regions it refused
PREDICTIONS_READY = "predictions.ready"
TASK_STAGE_CHANGED = "task.stage_changed"  # labeling: a task moved to another stage (or to done)
# labeling: first-stage work handed on; context {"task", "user"}; an in-transaction subscriber may put the
# submit's measured quality there, {"quality": {"source", "value"}} (qa: a gold task's accuracy), which
# labeling's automatic send-back reads once the subscribers ran.
TASK_SUBMITTED = "task.submitted"
EXPORT_FINISHED = "export.finished"  # datasets: an export is done or failed


@dataclass(frozen=True)
class ImagesAdded:
    image_ids: list[int]
    presegment: bool  # whether the upload asked for pre-labels
    prelabel: str  # the project's pre-label source (projects.models.Prelabel), read by its subscribers


@dataclass(frozen=True)
class VideoAdded:
    video: int


@dataclass(frozen=True)
class ImageDeleting:
    image: int


@dataclass(frozen=True)
class ProjectDeleting:
    pass


@dataclass(frozen=True)
class OrganizationDeleting:
    pass


@dataclass(frozen=True)
class PredictionReady:
    prediction: int
    image: int


@dataclass(frozen=True)
class PredictionsReady:
    predictions: list[int]
    images: list[int]


@dataclass(frozen=True)
class TaskStageChanged:  # delivered to webhooks as it is
    task: int
    project: int
    image: int | None
    from_stage: str
    to_stage: str
    status: str
    action: str
    actor: str | None  # username
    revision: int | None


@dataclass(frozen=True)
class TaskSubmitted:
    task: int
    user: int
    revision: int | None
    gold: bool


@dataclass(frozen=True)
class ExportFinished:  # delivered to webhooks as it is
    export: int
    project: int
    format: str
    status: str
    images: int
    regions: int
    size_bytes: int
    sha256: str
    download_url: str | None
    error: str


EVENTS: dict[str, type] = {
    IMAGES_ADDED: ImagesAdded,
    VIDEO_ADDED: VideoAdded,
    IMAGE_DELETING: ImageDeleting,
    PROJECT_DELETING: ProjectDeleting,
    ORGANIZATION_DELETING: OrganizationDeleting,
    PREDICTION_READY: PredictionReady,
    PREDICTIONS_READY: PredictionsReady,
    TASK_STAGE_CHANGED: TaskStageChanged,
    TASK_SUBMITTED: TaskSubmitted,
    EXPORT_FINISHED: ExportFinished,
}
_NAMES = {cls: name for name, cls in EVENTS.items()}


@dataclass(frozen=True)
class DomainEvent:
    name: str
    organization_id: int
    project_id: int | None
    payload: dict[str, Any] = field(default_factory=dict)  # asdict() of the event's dataclass: JSON
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
    """Deliver `event`: in-transaction subscribers now, the others once the transaction commits. An
    event not in the catalogue (EVENTS), or a payload that is not its dataclass's fields, is a
    programming error (ValueError), raised before anyone hears of it."""
    declared = EVENTS.get(event.name)
    if declared is None:
        raise ValueError(f"{event.name!r} is not in the event catalogue (labelhub.core.events.EVENTS)")
    keys = {f.name for f in fields(declared)}
    if set(event.payload) != keys:
        raise ValueError(
            f"the payload of {event.name!r} has {sorted(event.payload)}; its dataclass {sorted(keys)}"
        )
    for handler in _in_transaction.get(event.name, ()):
        handler(event)
    handlers = list(_after_commit.get(event.name, ()))
    if handlers:
        transaction.on_commit(lambda: _dispatch(event, handlers))


def announce(
    payload: Any, *, organization_id: int, project_id: int | None, context: dict | None = None
) -> None:
    """Publish the event whose payload dataclass (in EVENTS) `payload` is."""
    name = _NAMES[type(payload)]
    publish(
        DomainEvent(
            name=name,
            organization_id=organization_id,
            project_id=project_id,
            payload=asdict(payload),
            context=context or {},
        )
    )


def _dispatch(event: DomainEvent, handlers: list[Handler]) -> None:
    for handler in handlers:
        try:
            handler(event)
        except Exception:  # the change is committed; a subscriber's failure must not undo or hide it
            log.exception("subscriber %r of %s failed", handler, event.name)
