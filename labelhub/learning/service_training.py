"""Training model services (Label Studio ML backends) on LabelHub's accepted tasks, through the
protocol's `/webhook` events:
- `ANNOTATION_CREATED`, when a task is accepted (its last stage passed): {"action", "project": {"id",
  "label_config"}, "task": Label Studio task with the accepted annotation, "annotation": that annotation};
- `START_TRAINING`, on a manager's request: {"action", "project", "tasks": every accepted task}.
Label Studio's own backends fetch a project's annotations from Label Studio's API on START_TRAINING;
LabelHub sends them in the event instead (`tasks`), so a backend's `fit(event, data)` finds them in
`data["tasks"]`. Annotations are Label Studio results (workers.lsml.region_results): polygons in
percent, masks and regions with holes as brush RLE.
"""

from __future__ import annotations

import logging

from django.conf import settings

from labelhub.core.errors import DomainError
from labelhub.core.events import DomainEvent
from labelhub.core.queue import enqueue_on_commit
from labelhub.labeling.models import AnnotationRevision, Task
from labelhub.labeling.pipeline import STAGE_DONE
from labelhub.predictions.model_services import (
    ServiceError,
    label_config_of,
    project_key,
    service_call,
    task_json,
)
from labelhub.predictions.models import ModelService, ServiceUse
from labelhub.regions.validation import region_mask

from .dataset import accepted_revisions

log = logging.getLogger(__name__)


def _annotation(revision: AnnotationRevision, task: Task) -> dict:
    from workers.lsml import region_results

    image = task.image
    results = []
    for region in revision.regions:
        needs_mask = region.get("kind") == "mask" or any(p.get("holes") for p in region.get("polygons") or [])
        mask = region_mask(region, image.height, image.width) if needs_mask else None
        results += region_results(region, width=image.width, height=image.height, mask=mask)
    return {"id": revision.id, "task": task.id, "result": results, "was_cancelled": False,
            "created_at": revision.created_at.isoformat()}  # fmt: skip


def _task_with_annotation(task: Task, revision: AnnotationRevision) -> dict:
    annotation = _annotation(revision, task)
    return {**task_json(task.image), "id": task.id, "annotations": [annotation]}


def _project(service: ModelService) -> dict:
    project = service.project
    return {"id": project_key(project), "title": project.name, "label_config": label_config_of(project)}


def webhook_payload(*, service: ModelService, action: str, task_id: int | None = None) -> dict:
    """The body of a training event for `service` (see the module's docstring)."""
    if action == "ANNOTATION_CREATED":
        task = Task.objects.select_related("image").get(id=task_id)
        revision = AnnotationRevision.objects.filter(annotation__task=task).order_by("-number").first()
        body = _task_with_annotation(task, revision)
        return {
            "action": action,
            "project": _project(service),
            "task": body,
            "annotation": body["annotations"][0],
        }
    pairs = accepted_revisions(project=service.project)
    revisions = {r.id: r for r in AnnotationRevision.objects.filter(id__in=[r for _, r in pairs])}
    tasks = {t.id: t for t in Task.objects.select_related("image").filter(id__in=[t for t, _ in pairs])}
    return {
        "action": action,
        "project": _project(service),
        "tasks": [_task_with_annotation(tasks[t], revisions[r]) for t, r in pairs],
    }


def webhook_send(*, service_id: int, action: str, task_id: int | None = None) -> dict | None:
    """Send one training event; the service's answer. Raises ServiceError when the call fails."""
    service = ModelService.objects.select_related("project").filter(id=service_id).first()
    if service is None or service.paused:
        return None
    answer = service_call(
        service, "POST", "/webhook", webhook_payload(service=service, action=action, task_id=task_id)
    )
    return answer if isinstance(answer, dict) else {"answer": answer}


def training_services(project_id: int):
    return [
        s
        for s in ModelService.objects.filter(project_id=project_id, paused=False)
        if ServiceUse.TRAINING in s.uses
    ]


def on_task_stage_changed(event: DomainEvent) -> None:
    """Subscriber of "task.stage_changed" (after commit): an accepted task goes to the project's
    training services as ANNOTATION_CREATED."""
    if event.payload.get("to_stage") != STAGE_DONE or event.project_id is None:
        return
    for service in training_services(event.project_id):
        enqueue_on_commit(
            "labelhub.learning.service_webhook", service.id, "ANNOTATION_CREATED", event.payload["task"]
        )


def service_train_request(*, service: ModelService) -> int:
    """Queue START_TRAINING with every accepted task of the project; the number of accepted tasks."""
    if ServiceUse.TRAINING not in service.uses:
        raise DomainError("This model service is not used for training.", field="uses")
    if service.paused:
        raise DomainError(
            f"The model service is paused: {service.paused_reason}", code="service_paused", status_code=409
        )
    enqueue_on_commit("labelhub.learning.service_webhook", service.id, "START_TRAINING", None)
    return len(accepted_revisions(project=service.project))


def retry_countdown(retries: int) -> int:
    return settings.LABELHUB_MODEL_SERVICE_RETRY_SECONDS * 2**retries


__all__ = ["ServiceError", "on_task_stage_changed", "service_train_request", "webhook_send"]
