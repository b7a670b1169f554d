"""Writes for projects."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from labelhub.accounts.models import MANAGING_ROLES, Membership, Organization
from labelhub.accounts.selectors import role_require
from labelhub.core.errors import Conflict, DomainError
from labelhub.core.events import DomainEvent, ProjectDeleting, announce

from .models import Prelabel, Project, ProjectMember, QualityAction, QualityMetric, Segmentation, Simplifier
from .schema import label_schema_clean, pipeline_clean

EDITABLE = {
    "members_download_exports",
    "name",
    "description",
    "label_schema",
    "pipeline",
    "segmentation",
    "polygon_simplifier",
    "polygon_min_iou",
    "polygon_max_distance",
    "prelabel",
    "retrain_every",
    "independent_reviews",
    "honeypot_rate",
    "immediate_feedback",
    "quality_metric",
    "quality_bound",
    "quality_threshold",
    "quality_action",
    "quality_send_back_below",
    "quality_send_back_limit",
    "consensus_annotators",
    "consensus_quorum",
    "consensus_min_iou",
}


def _number(cleaned: dict, field: str, low: float, high: float, *, nullable: bool = False) -> None:
    if field not in cleaned or (nullable and cleaned[field] is None):
        return
    value = cleaned[field]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise DomainError(f"{field} is a number from {low} to {high}.", field=field)


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    cleaned = dict(values)
    if "name" in cleaned:
        name = cleaned["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise DomainError("name is 1 to 200 characters.", field="name")
        cleaned["name"] = name.strip()
    if "label_schema" in cleaned:
        cleaned["label_schema"] = label_schema_clean(cleaned["label_schema"])
    if "pipeline" in cleaned:
        cleaned["pipeline"] = pipeline_clean(cleaned["pipeline"])
    if "segmentation" in cleaned and cleaned["segmentation"] not in Segmentation.values:
        raise DomainError(f"segmentation is one of {Segmentation.values}.", field="segmentation")
    if "polygon_simplifier" in cleaned and cleaned["polygon_simplifier"] not in Simplifier.values:
        raise DomainError(f"polygon_simplifier is one of {Simplifier.values}.", field="polygon_simplifier")
    if "polygon_min_iou" in cleaned:
        iou = cleaned["polygon_min_iou"]
        if isinstance(iou, bool) or not isinstance(iou, int | float) or not 0.5 <= iou <= 1.0:
            raise DomainError("polygon_min_iou is a number from 0.5 to 1.", field="polygon_min_iou")
    if cleaned.get("polygon_max_distance") is not None:
        dist = cleaned["polygon_max_distance"]
        if isinstance(dist, bool) or not isinstance(dist, int | float) or not 0 <= dist <= 100:
            raise DomainError(
                "polygon_max_distance is 0 to 100 pixels, or null.", field="polygon_max_distance"
            )
    if "prelabel" in cleaned and cleaned["prelabel"] not in Prelabel.values:
        raise DomainError(f"prelabel is one of {Prelabel.values}.", field="prelabel")
    if "retrain_every" in cleaned:
        n = cleaned["retrain_every"]
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 1_000_000:
            raise DomainError("retrain_every is a whole number from 0 to 1000000.", field="retrain_every")
    if "independent_reviews" in cleaned and not isinstance(cleaned["independent_reviews"], bool):
        raise DomainError("independent_reviews is true or false.", field="independent_reviews")
    if "immediate_feedback" in cleaned and not isinstance(cleaned["immediate_feedback"], bool):
        raise DomainError("immediate_feedback is true or false.", field="immediate_feedback")
    _number(cleaned, "honeypot_rate", 0.0, 1.0)
    _number(cleaned, "quality_bound", 0.0, 1.0)
    _number(cleaned, "quality_threshold", 0.0, 1.0, nullable=True)
    _number(cleaned, "quality_send_back_below", 0.0, 1.0, nullable=True)
    _number(cleaned, "consensus_min_iou", 0.05, 1.0)
    if "quality_metric" in cleaned and cleaned["quality_metric"] not in QualityMetric.values:
        raise DomainError(f"quality_metric is one of {QualityMetric.values}.", field="quality_metric")
    if "quality_action" in cleaned and cleaned["quality_action"] not in QualityAction.values:
        raise DomainError(f"quality_action is one of {QualityAction.values}.", field="quality_action")
    limit = cleaned.get("quality_send_back_limit")
    if "quality_send_back_limit" in cleaned and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10
    ):
        raise DomainError(
            "quality_send_back_limit is a whole number from 1 to 10.", field="quality_send_back_limit"
        )
    for field, high in (("consensus_annotators", 10), ("consensus_quorum", 10)):
        n = cleaned.get(field)
        if field in cleaned and (isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= high):
            raise DomainError(f"{field} is a whole number from 0 to {high}.", field=field)
    if cleaned.get("consensus_annotators") == 0:
        raise DomainError("consensus_annotators is at least 1.", field="consensus_annotators")
    return cleaned


def _save(project: Project) -> Project:
    try:
        with transaction.atomic():
            project.save()
    except IntegrityError as exc:
        raise Conflict("A project with this name exists in the organization.", field="name") from exc
    return project


def project_create(*, organization_id: int, user, **values: Any) -> Project:
    """A project in an organization where `user` is an owner or manager (NotFound for outsiders)."""
    role_require(user=user, organization_id=organization_id, roles=MANAGING_ROLES, action="create projects")
    organization = Organization.objects.get(pk=organization_id)
    unknown = set(values) - EDITABLE
    if unknown:
        raise DomainError(f"Unknown fields: {sorted(unknown)}.", field=sorted(unknown)[0])
    if "name" not in values:
        raise DomainError("name is required.", field="name", code="required")
    project = Project(organization=organization, created_by=user, **_clean(values))
    return _save(project)


def project_update(*, project: Project, user, **values: Any) -> Project:
    """Change a project's editable fields (owners and managers); its organization never changes."""
    role_require(
        user=user, organization_id=project.organization_id, roles=MANAGING_ROLES, action="edit projects"
    )
    if "organization" in values:
        raise DomainError("A project cannot move to another organization.", field="organization")
    cleaned = _clean(values)
    if "label_schema" in cleaned:
        _check_classes_kept(project, cleaned["label_schema"])
    if "pipeline" in cleaned:
        _check_stages_kept(project, cleaned["pipeline"])
    for key, value in cleaned.items():
        setattr(project, key, value)
    return _save(project)


def _check_classes_kept(project: Project, schema: list[dict]) -> None:
    removed = set(project.class_names) - {c["name"] for c in schema}
    used = sorted(_classes_used(project, removed))
    if used:
        raise Conflict(
            f"Class '{used[0]}' is used by annotations and cannot be removed.", field="label_schema"
        )


def _check_stages_kept(project: Project, pipeline: list[dict]) -> None:
    removed = set(project.stage_names) - {s["name"] for s in pipeline}
    if removed and project.tasks.filter(stage__in=removed).exists():
        raise Conflict(f"Tasks are in stages {sorted(removed)}; move them first.", field="pipeline")


def _classes_used(project: Project, names: set[str]) -> set[str]:
    """Which of `names` label a region in any revision of the project's annotations (read through the
    project's reverse relations: projects sits below labeling and imports none of it)."""
    from django.db import connection

    if not names:
        return set()
    revisions = project.tasks.values_list("annotation__revisions__regions", flat=True)
    if connection.vendor == "postgresql":  # jsonb containment, answered by the database
        return {
            n
            for n in names
            if project.tasks.filter(annotation__revisions__regions__contains=[{"label": n}]).exists()
        }
    labels = {r.get("label") for regions in revisions.iterator() for r in regions or []}
    return names & labels


def project_member_add(*, project: Project, user_id: int) -> ProjectMember:
    """Make a member of the project's organization a member of the project (idempotent)."""
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id < 2**63:
        raise DomainError("user is a user id.", field="user")
    if not Membership.objects.filter(organization_id=project.organization_id, user_id=user_id).exists():
        raise DomainError(
            "Only members of the organization can join its projects.", field="user", code="not_a_member"
        )
    member, _ = ProjectMember.objects.get_or_create(project=project, user_id=user_id)
    return member


def project_member_remove(*, project: Project, user_id: int) -> None:
    ProjectMember.objects.filter(project=project, user_id=user_id).delete()


def _deleting(project: Project) -> None:
    announce(
        ProjectDeleting(),
        organization_id=project.organization_id,
        project_id=project.pk,
        context={"project": project},
    )


@transaction.atomic
def project_delete(*, project: Project, user) -> None:
    """Delete a project with everything in it (managers and owners only). The apps above hear of it in
    this transaction ("project.deleting") and remove their stored files once it commits."""
    role_require(
        user=user, organization_id=project.organization_id, roles=MANAGING_ROLES, action="delete projects"
    )
    _deleting(project)
    project.delete()


def on_organization_deleting(event: DomainEvent) -> None:
    """Subscriber of "organization.deleting" (in its transaction): each project's files go on commit."""
    for project in Project.objects.filter(organization=event.context["organization"]):
        _deleting(project)
