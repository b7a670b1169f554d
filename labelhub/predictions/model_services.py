"""Model services: models served over Label Studio's ML backend protocol, attached to a project.

LabelHub is the Label Studio side of the protocol (what `label_studio_ml/api.py` serves):
- `GET /health` -> {"status": "UP", ...}; `POST /setup` {"project": "<id>.<created ts>", "schema":
  labelling config, "hostname", "access_token", "model_version"} -> {"model_version"}: the check a
  manager runs (and the first call of every batch, so a restarted backend is set up again);
- `POST /predict` {"tasks": [{"id", "data": {"image": signed URL}}], "project", "label_config",
  "model_version", "params": {"context": ...}} -> {"results": [{"result": [...], "score",
  "model_version"}, ...], "model_version"}: pre-labels (one prediction per task, in order) and, with
  `params.context` holding the clicks, interactive segmentation;
- `POST /webhook` {"action": "ANNOTATION_CREATED" | "START_TRAINING", "project", "annotation", "task",
  "tasks"} (labelhub.learning sends them for accepted tasks); `POST /train` is not used (deprecated by
  Label Studio 1.4.1).
The image URL in a task is absolute (LABELHUB_PUBLIC_URL) and signed, valid for
LABELHUB_MODEL_SERVICE_URL_SECONDS; no credential is needed to fetch it.

Every call runs under the service's timeout with a response size limit, to an address checked like a
webhook's (labelhub.core.netsafety). A call that fails (unreachable, timeout, HTTP error, not JSON,
too large, the wrong number of predictions) fails every image of its batch with the reason and counts
against the service; LABELHUB_MODEL_SERVICE_PAUSE_AFTER failures in a row pause it for the project
(managers see the reason on the service; nothing is queued for it until one resumes it). A result that
cannot become a region (wrong image size, out-of-range coordinates, unknown class, over the limits)
fails that image only.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from django.conf import settings
from django.core import signing
from django.db.models import F
from django.utils import timezone

from labelhub.core import netsafety
from labelhub.core.errors import DomainError, NotFound
from labelhub.core.parsers import json_loads_bounded
from labelhub.core.queue import enqueue_on_commit
from labelhub.images.models import Image
from labelhub.projects.models import Project

from .models import ModelService, Prediction, PredictionStatus, RectangleMode, ServiceAuth, ServiceUse

log = logging.getLogger(__name__)

PREDICTION_KIND = "service"
REFUSED = "the service's result is refused"  # how a refused result's reason starts (not retried)
_SIGNING_SALT = "labelhub.model-service-image"


class ServiceError(Exception):
    """A call to a model service failed as a whole; `reason` says how, for managers."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- registration ---------------------------------------------------------------------------------


def service_url_clean(url: str) -> str:
    """An http(s) base URL whose host is public, or any host with LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise DomainError("A model service URL is an http:// or https:// base address.", field="url")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise DomainError("The URL's port is not a valid port number.", field="url") from exc
    if not settings.LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE:
        try:
            netsafety.host_resolve(parts.hostname, port, allow_private=False)
        except netsafety.AddressRefused as exc:
            raise DomainError(
                f"The URL points at {exc}, a non-public address; model services are only called on public "
                "addresses (LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE allows private ones).",
                field="url",
            ) from exc
        except OSError:
            pass  # checked again at each call
    return url.rstrip("/")


def _values_clean(values: dict[str, Any]) -> dict[str, Any]:
    cleaned = dict(values)
    if "url" in cleaned:
        cleaned["url"] = service_url_clean(cleaned["url"])
    if "name" in cleaned and not str(cleaned["name"]).strip():
        raise DomainError("A model service has a name.", field="name")
    if "uses" in cleaned:
        uses = cleaned["uses"]
        if not isinstance(uses, list) or any(u not in ServiceUse.values for u in uses):
            raise DomainError(f"uses is a list of {ServiceUse.values}.", field="uses")
        cleaned["uses"] = sorted(set(uses))
    if "timeout_seconds" in cleaned and not 0.1 <= float(cleaned["timeout_seconds"]) <= 600:
        raise DomainError("timeout_seconds is between 0.1 and 600.", field="timeout_seconds")
    auth = cleaned.get("auth")
    if auth == ServiceAuth.BASIC and ":" not in cleaned.get("credential", ":"):
        raise DomainError("Basic authentication's credential is 'username:password'.", field="credential")
    return cleaned


def service_create(*, project: Project, **values: Any) -> ModelService:
    """Register a model service on a project (managers). Values: name, url, auth, credential,
    timeout_seconds, uses, rectangles. 400 naming the field on bad values; a name used twice: 409."""
    from labelhub.core.errors import Conflict

    cleaned = _values_clean(values)
    if ModelService.objects.filter(project=project, name=cleaned["name"]).exists():
        raise Conflict(
            f"The project already has a model service named {cleaned['name']!r}.", code="name_taken"
        )
    return ModelService.objects.create(project=project, **cleaned)


def service_update(*, service: ModelService, **values: Any) -> ModelService:
    """Change a service. `paused: false` resumes a paused one (its failure count starts again)."""
    cleaned = _values_clean(values)
    if cleaned.get("paused") is False:
        cleaned.update(paused_reason="", failures_in_row=0)
    if "url" in cleaned or "credential" in cleaned:
        cleaned.update(healthy=None, health_message="", checked_at=None)
    for key, value in cleaned.items():
        setattr(service, key, value)
    service.save()
    return service


def service_get(*, project: Project, service_id: Any) -> ModelService:
    service = (
        ModelService.objects.filter(project=project, id=service_id).first()
        if str(service_id).isdigit()
        else None
    )
    if service is None:
        raise NotFound("No such model service.")
    return service


# --- the protocol ---------------------------------------------------------------------------------


def _headers(service: ModelService) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "LabelHub"}
    if service.auth == ServiceAuth.TOKEN:
        headers["Authorization"] = f"Token {service.credential}"
    elif service.auth == ServiceAuth.BEARER:
        headers["Authorization"] = f"Bearer {service.credential}"
    elif service.auth == ServiceAuth.BASIC:
        headers["Authorization"] = "Basic " + base64.b64encode(service.credential.encode()).decode("ascii")
    return headers


def service_call(service: ModelService, method: str, path: str, payload: Any = None) -> Any:
    """One JSON call to the service. Raises ServiceError with the reason for every way it can fail."""
    import http.client
    import json

    body = None if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    url = f"{service.url}{path}"
    try:
        status, raw = netsafety.http_request(
            method,
            url,
            body=body,
            headers=_headers(service),
            timeout=service.timeout_seconds,
            allow_private=settings.LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE,
            max_bytes=settings.LABELHUB_MODEL_SERVICE_MAX_RESPONSE_BYTES,
        )
    except netsafety.AddressRefused as exc:
        raise ServiceError(
            f"{path}: the service's address {exc} is not public (LABELHUB_MODEL_SERVICE_ALLOW_PRIVATE)"
        ) from exc
    except netsafety.ResponseTooLarge as exc:
        raise ServiceError(f"{path}: {exc} (LABELHUB_MODEL_SERVICE_MAX_RESPONSE_BYTES)") from exc
    except TimeoutError as exc:
        raise ServiceError(
            f"{path}: no answer within {service.timeout_seconds:g} s (the service's timeout)"
        ) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise ServiceError(f"{path}: the service cannot be reached ({type(exc).__name__}: {exc})") from exc
    if status != 200 and not (path == "/webhook" and 200 <= status < 300):
        text = raw[:300].decode("utf-8", "replace").strip()
        raise ServiceError(f"{path}: the service answered HTTP {status}" + (f": {text}" if text else ""))
    try:
        return json_loads_bounded(raw) if raw.strip() else None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(f"{path}: the answer is not valid JSON ({exc})") from exc


def project_key(project: Project) -> str:
    """The project as Label Studio names it to backends: "<id>.<created_at unix seconds>"."""
    return f"{project.id}.{int(project.created_at.timestamp())}"


def label_config_of(project: Project) -> str:
    from workers.lsml import label_config

    return label_config(project.label_schema)


def service_setup(service: ModelService, *, config: str | None = None) -> str:
    """POST /setup with the project's labelling config (`config` when the caller made it already); the
    model version it reports ("" if none)."""
    answer = service_call(service, "POST", "/setup", {
        "project": project_key(service.project),
        "schema": config if config is not None else label_config_of(service.project),
        "hostname": settings.LABELHUB_PUBLIC_URL,
        "access_token": "",
        "model_version": service.model_version or None,
    })  # fmt: skip
    version = answer.get("model_version") if isinstance(answer, dict) else None
    return "" if version is None else str(version)[:200]


def service_check(*, service: ModelService) -> ModelService:
    """GET /health then POST /setup: records whether the service is up and its model version."""
    try:
        health = service_call(service, "GET", "/health")
        if not isinstance(health, dict) or str(health.get("status", "")).upper() != "UP":
            raise ServiceError(f"/health: the service is not up ({str(health)[:200]})")
        version = service_setup(service)
    except ServiceError as exc:
        service.healthy, service.health_message = False, exc.reason
    else:
        service.healthy, service.health_message, service.model_version = True, "", version
    service.checked_at = timezone.now()
    service.save(update_fields=["healthy", "health_message", "model_version", "checked_at", "updated_at"])
    return service


def _failure(service: ModelService, reason: str) -> None:
    """Count a failed call; pause the service at LABELHUB_MODEL_SERVICE_PAUSE_AFTER in a row."""
    ModelService.objects.filter(id=service.id).update(failures_in_row=F("failures_in_row") + 1, healthy=False,
                                                      health_message=reason[:2000])  # fmt: skip
    limit = settings.LABELHUB_MODEL_SERVICE_PAUSE_AFTER
    paused = ModelService.objects.filter(id=service.id, paused=False, failures_in_row__gte=limit).update(
        paused=True,
        paused_reason=f"Paused after {limit} failed calls in a row; the last: {reason}"[:2000],
    )
    if paused:
        log.warning("model service %s of project %s paused: %s", service.name, service.project_id, reason)
    service.refresh_from_db()


def _success(service: ModelService, version: str | None) -> None:
    changes: dict[str, Any] = {"failures_in_row": 0, "healthy": True, "health_message": ""}
    if version:
        changes["model_version"] = version
    ModelService.objects.filter(id=service.id).update(**changes)


# --- image URLs -----------------------------------------------------------------------------------


def image_from_token(token: str) -> Image:
    """The image a signed URL names; NotFound when the token is forged, malformed or expired."""
    try:
        image_id = signing.TimestampSigner(salt=_SIGNING_SALT).unsign(
            token, max_age=settings.LABELHUB_MODEL_SERVICE_URL_SECONDS
        )
        return Image.objects.get(id=int(image_id))
    except (signing.BadSignature, ValueError, Image.DoesNotExist):
        raise NotFound("No such image, or the link expired.") from None


def task_json(image: Image) -> dict:
    """A Label Studio task of the image: {"id", "data": {"image": signed URL}, "meta"}."""
    return tasks_json([image])[0]


def tasks_json(images: list[Image]) -> list[dict]:
    """The Label Studio tasks of images (task_json's). Each image URL is absolute and needs no
    credential: a signed, timestamped token naming the image, valid for LABELHUB_MODEL_SERVICE_URL_SECONDS
    (image_from_token reads it back). One signer for the batch, no query."""
    signer = signing.TimestampSigner(salt=_SIGNING_SALT)
    base = f"{settings.LABELHUB_PUBLIC_URL}/api/v1/model-services/images/"
    return [
        {"id": image.id, "data": {"image": f"{base}{signer.sign(str(image.id))}/"},
         "meta": {"width": image.width, "height": image.height, "file_name": image.original_name}}
        for image in images
    ]  # fmt: skip


# --- pre-labels -----------------------------------------------------------------------------------


def _limits():
    from workers.lsml import Limits

    return Limits(
        max_results=settings.LABELHUB_MODEL_SERVICE_MAX_RESULTS,
        max_vertices=settings.LABELHUB_MODEL_SERVICE_MAX_VERTICES,
        max_mask_bytes=settings.LABELHUB_MODEL_SERVICE_MAX_MASK_BYTES,
    )


def _model_name(service: ModelService) -> str:
    return f"service:{service.name}"[:100]


def _checkpoint(service: ModelService) -> str:
    return f"service-{service.id}"


def prediction_regions(
    *, shapes: list[dict], image: Image, service: ModelService, prediction_id: int
) -> list[dict]:
    """LabelHub AI regions from a prediction's shapes: polygons as they came (pixel coordinates of the
    percent ones, exactly), rectangles as 4-corner polygons or, with `rectangles: box_prompts`, as box
    prompts for the project's segmenter (its mask simplified under the project's bound), brush masks as
    mask regions with the exact pixels. ResultError for a polygon that is not valid geometry."""
    from workers.geometry import mask_to_rle, polygon_is_valid
    from workers.lsml import ResultError

    regions: list[dict] = []
    embedding = backend = None
    for k, shape in enumerate(shapes):
        base = {"id": f"s{prediction_id}-{k}", "label": shape["label"], "source": "ai",
                "prediction_id": prediction_id, "score": None if shape["score"] is None else round(shape["score"], 4)}  # fmt: skip
        if shape["type"] == "mask":
            if shape["mask"].any():
                regions.append({**base, "kind": "mask", "rle": mask_to_rle(shape["mask"])})
            continue
        if shape["type"] == "box" and service.rectangles == RectangleMode.BOX_PROMPTS:
            from .backends import segmentation_backend
            from .embeddings import embeddings_ensure
            from .services import region_from_mask

            if backend is None:
                backend = segmentation_backend()
                embedding = embeddings_ensure(images=[image], backend=backend)[image.id][0]
            result = backend.predict(embedding, box=shape["box"])
            region = region_from_mask(mask=result.mask, project=image.project, label=shape["label"],
                                      score=shape["score"], prediction_id=prediction_id)  # fmt: skip
            if region is not None:
                regions.append({**region, "id": base["id"], "score": base["score"]})
            continue
        ring = shape["corners"] if shape["type"] == "box" else shape["points"]
        polygon = {"exterior": [[float(x), float(y)] for x, y in ring], "holes": []}
        if not polygon_is_valid(polygon):
            raise ResultError(
                "the polygon is not valid geometry (self-intersecting or without area)", f"result[{k}]"
            )
        regions.append({**base, "kind": "polygon", "polygons": [polygon]})
    return regions


def _predictions_of(answer: Any, count: int) -> tuple[list, str | None]:
    if isinstance(answer, dict) and isinstance(answer.get("results"), list):
        results, version = answer["results"], answer.get("model_version")
    elif isinstance(answer, list):
        results, version = answer, None
    else:
        raise ServiceError("/predict: the answer is not {results: [...]}")
    if len(results) != count:
        raise ServiceError(f"/predict: {len(results)} predictions for {count} tasks")
    return results, (None if version is None else str(version)[:200])


def images_predict_service(*, service_id: int, image_ids: list[int]) -> dict[int, Prediction]:
    """Pre-label images through a model service: one /setup, one /predict of all the images, each
    image's outcome recorded on its Prediction (ok with regions, or failed with the reason). Images
    already done by this service are skipped; a paused service fails the rest with its reason. The
    batch's writes go through batch_writes (claims together, every outcome in one transaction): the
    database work is per batch, not per image."""
    from workers.lsml import ResultError, prediction_shapes

    from .batch_writes import Outcome, predictions_record, predictions_start

    service = ModelService.objects.select_related("project").filter(id=service_id).first()
    if service is None:
        return {}
    project = service.project
    images = list(Image.objects.filter(id__in=image_ids, project=project).order_by("id"))
    results: dict[int, Prediction] = {
        p.image_id: p
        for p in Prediction.objects.filter(image__in=images, service=service, status=PredictionStatus.OK)
    }
    claimed = predictions_start(images=[i for i in images if i.id not in results], model_name=_model_name(service),
                                checkpoint_sha256=_checkpoint(service), kind=PREDICTION_KIND, service=service)  # fmt: skip
    todo: list[tuple[Image, Prediction]] = []
    for image in images:
        prediction = claimed.get(image.id)
        if prediction is None:  # done already, or a live run of this service holds its prediction
            continue
        image.project = project  # the rows the writes and the task's seeding read, without queries
        prediction.service, prediction.image = service, image
        todo.append((image, prediction))
    if not todo:
        return results
    started = time.perf_counter()
    config = label_config_of(project)
    try:
        if service.paused:
            raise ServiceError(f"the service is paused: {service.paused_reason}")
        version = service_setup(service, config=config)
        answer = service_call(service, "POST", "/predict", {
            "tasks": tasks_json([image for image, _ in todo]),
            "model_version": version or service.model_version or None,
            "project": project_key(project),
            "label_config": config,
            "params": {"login": None, "password": None, "context": None},
        })  # fmt: skip
        predictions, top_version = _predictions_of(answer, len(todo))
    except ServiceError as exc:
        if not service.paused:
            _failure(service, exc.reason)
        predictions_record(outcomes=[Outcome(image, p, error=exc.reason) for image, p in todo])
        results.update((image.id, p) for image, p in todo)
        return results
    _success(service, top_version or version)
    per_image = (time.perf_counter() - started) / len(todo)
    classes, limits = project.class_names, _limits()
    outcomes: list[Outcome] = []
    for (image, prediction), item in zip(todo, predictions, strict=True):
        t0 = time.perf_counter()
        outcome = Outcome(image, prediction)
        outcomes.append(outcome)
        try:
            shapes, _, item_version = prediction_shapes(item, width=image.width, height=image.height,
                                                         classes=classes, limits=limits)  # fmt: skip
            outcome.regions = prediction_regions(
                shapes=shapes, image=image, service=service, prediction_id=prediction.id
            )
        except ResultError as exc:
            outcome.error = f"{REFUSED}: {exc}"
            continue
        except Exception as exc:  # a segmenter failing on a box prompt: recorded, the others go on
            log.exception("model service regions of image %s failed", image.id)
            outcome.error = f"{type(exc).__name__}: {exc}"
            continue
        prediction.model_version = (item_version or top_version or version or "")[:200]
        outcome.duration_ms = (per_image + time.perf_counter() - t0) * 1000.0  # its share of the call too
    # the task's annotation may refuse an image's regions (its project's rules): that image fails
    predictions_record(outcomes=outcomes, refused_prefix=f"{REFUSED}: ")
    results.update((image.id, p) for image, p in todo)
    return results


def service_predict_enqueue(*, service: ModelService, image_ids: list[int]) -> int:
    """Queue pre-labels of images by one service once this commits, in batches of
    LABELHUB_MODEL_SERVICE_BATCH on the `cpu` queue. The number of batches queued."""
    batch = max(1, settings.LABELHUB_MODEL_SERVICE_BATCH)
    starts = range(0, len(image_ids), batch)
    for start in starts:
        enqueue_on_commit(
            "labelhub.predictions.service_predict", service.id, list(image_ids[start : start + batch])
        )
    return len(starts)


def service_prelabel_enqueue(*, project_id: int, image_ids: list[int]) -> int:
    """Queue pre-labels of new images by the project's pre-label services that are not paused."""
    services = ModelService.objects.filter(project_id=project_id, paused=False)
    return sum(
        service_predict_enqueue(service=s, image_ids=image_ids)
        for s in services
        if ServiceUse.PRELABEL in s.uses
    )


def on_images_added(event) -> None:
    """Subscriber of "images.added" (after commit): new images of a `model_service` project are
    pre-labelled by its pre-label services."""
    from labelhub.projects.models import Prelabel

    if not (event.payload["presegment"] and settings.LABELHUB_PRESEGMENT_ON_UPLOAD):
        return
    if event.payload["prelabel"] == Prelabel.MODEL_SERVICE:
        service_prelabel_enqueue(project_id=event.project_id, image_ids=list(event.payload["image_ids"]))


def retry_delay(attempts: int) -> int:
    """Seconds before the next try of images that failed `attempts` times (doubling)."""
    return settings.LABELHUB_MODEL_SERVICE_RETRY_SECONDS * 2 ** max(0, attempts - 1)


# --- interactive ----------------------------------------------------------------------------------


def service_segment(*, service: ModelService, image: Image, prompt: dict) -> dict:
    """An interactive prompt answered by a service: the clicks and box go as Label Studio's context
    (keypointlabels with is_positive, rectanglelabels), the first mask or polygon it returns is turned
    into the project's polygons under its bound (as `segment/` does). DomainError 502 `service_failed`
    naming the reason when the service fails or returns nothing usable."""
    from workers.geometry import mask_to_rle, polygons_to_mask
    from workers.lsml import ResultError, click_context, prediction_shapes

    from .interactive import project_polygons

    if ServiceUse.INTERACTIVE not in service.uses:
        raise DomainError("This model service is not used for interactive clicks.", field="service")
    if service.paused:
        raise DomainError(f"The model service is paused: {service.paused_reason}", field="service", code="service_paused",
                          status_code=409)  # fmt: skip
    label = prompt.get("label") or image.project.class_names[0]
    t0 = time.perf_counter()
    context = click_context(points=prompt.get("points") or [], point_labels=prompt.get("point_labels") or [],
                            box=prompt.get("box"), label=label, width=image.width, height=image.height)  # fmt: skip
    try:
        answer = service_call(service, "POST", "/predict", {
            "tasks": [task_json(image)], "model_version": service.model_version or None,
            "project": project_key(image.project), "label_config": label_config_of(image.project),
            "params": {"login": None, "password": None, "context": context},
        })  # fmt: skip
        (item,), top_version = _predictions_of(answer, 1)
        shapes, score, version = prediction_shapes(item, width=image.width, height=image.height,
                                                   classes=image.project.class_names, limits=_limits())  # fmt: skip
    except ServiceError as exc:
        _failure(service, exc.reason)
        raise DomainError(
            f"The model service failed: {exc.reason}", code="service_failed", status_code=502
        ) from exc
    except ResultError as exc:
        raise DomainError(
            f"The model service's answer is refused: {exc}", code="service_failed", status_code=502
        ) from exc
    _success(service, top_version or version)
    t1 = time.perf_counter()
    mask = np.zeros((image.height, image.width), dtype=bool)
    for shape in shapes:
        if shape["type"] == "mask":
            mask = shape["mask"]
        elif shape["type"] == "polygon":
            mask = polygons_to_mask([{"exterior": shape["points"], "holes": []}], image.height, image.width)
        else:
            continue
        score = shape["score"] if shape["score"] is not None else score
        break
    if not mask.any():
        raise DomainError("The model service returned no mask or polygon for this prompt.", code="service_failed",
                          status_code=502)  # fmt: skip
    polygons = project_polygons(image.project, mask)
    t2 = time.perf_counter()
    return {
        "rle": mask_to_rle(mask),
        "polygons": polygons,
        "score": round(float(score), 4) if score is not None else 0.0,
        "area": int(mask.sum()),
        "model_name": _model_name(service),
        "checkpoint_sha256": (top_version or version or service.model_version or "")[:200],
        "mask_input_id": "",
        "candidates": 1,
        "candidate": 0,
        "embedding": "service",
        "timing_ms": {"service": round((t1 - t0) * 1000, 2), "polygons": round((t2 - t1) * 1000, 2)},
    }
