from __future__ import annotations

from django.conf import settings
from django.db import models

from labelhub.accounts.models import Organization


def default_label_schema() -> list[dict]:
    return [{"name": "object", "color": "#e6194b", "kinds": ["polygon", "mask"], "type": "thing"}]


def default_pipeline() -> list[dict]:
    """annotate, then a second check (review) and a third (final-qa); a rejection goes back to annotate."""
    return [
        {"name": "annotate", "role": "annotator", "sample_rate": 1.0, "reject_to": None},
        {"name": "review", "role": "reviewer", "sample_rate": 1.0, "reject_to": "annotate"},
        {"name": "final-qa", "role": "reviewer", "sample_rate": 1.0, "reject_to": "annotate"},
    ]


class Simplifier(models.TextChoices):
    BOUNDED = "bounded", "Fewest vertices within the bound"
    DOUGLAS_PEUCKER = "douglas_peucker", "Douglas-Peucker"
    VISVALINGAM_WHYATT = "visvalingam_whyatt", "Visvalingam-Whyatt"
    SLOPE = "slope", "Slope-based filtering"
    RATIO = "ratio", "Ratio-based filtering"


class Segmentation(models.TextChoices):
    INSTANCE = "instance", "Instance: regions may overlap"
    SEMANTIC = "semantic", "Semantic: one class per pixel, one region per class and image"
    PANOPTIC = "panoptic", "Panoptic: things and stuff, one region per pixel (or an explicit z_order)"


class Prelabel(models.TextChoices):
    NONE = "none", "No pre-labels"
    EVERYTHING = "everything", "Segmentation model, everything mode"
    BOXES = "boxes", "Segmentation model, from box prompts (imports or a detector)"
    PROJECT_MODEL = "project_model", "The project's own model (its promoted version)"
    MODEL_SERVICE = "model_service", "The project's model services (Label Studio ML backends) for pre-labels"


class QualityMetric(models.TextChoices):
    IOU = "iou", "IoU of each matched region"
    BOUNDARY_F1 = "boundary_f1", "Boundary F1 (2 px) of each matched region"


class QualityAction(models.TextChoices):
    NONE = "none", "Report only"
    BLOCK_EXPORT = "block_export", "Refuse an export whose estimated accuracy is below the threshold"


class Project(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # [{"name": "cat", "color": "#rrggbb", "kinds": ["polygon", "mask"]}]
    label_schema = models.JSONField(default=default_label_schema)
    # [{"name": "review", "role": "reviewer", "sample_rate": 1.0, "reject_to": "annotate"}], in order
    pipeline = models.JSONField(default=default_pipeline)
    segmentation = models.CharField(
        max_length=16, choices=Segmentation.choices, default=Segmentation.INSTANCE
    )
    polygon_simplifier = models.CharField(
        max_length=32, choices=Simplifier.choices, default=Simplifier.BOUNDED
    )
    # Accuracy bound of the default simplifier: IoU against the source mask and/or distance in pixels.
    polygon_min_iou = models.FloatField(default=0.98)
    polygon_max_distance = models.FloatField(null=True, blank=True, default=2.0)
    # Export downloads are for owners and managers; on, the project's members may download them too.
    members_download_exports = models.BooleanField(default=False)
    # What pre-labels new images (labelhub/learning trains the project's own model).
    prelabel = models.CharField(max_length=20, choices=Prelabel.choices, default=Prelabel.EVERYTHING)
    # Train a new model version after this many newly accepted tasks (0: only on request).
    retrain_every = models.PositiveIntegerField(default=0)
    # Review stages stay independent: whoever accepted, fixed or rejected a task in one review stage never
    # acts on it in a later one (the secondary and tertiary checks are by different people).
    independent_reviews = models.BooleanField(default=True)
    # Quality (labelhub/qa): honeypots are gold tasks mixed into each labeler's first-stage queue at
    # this rate (0: gold tasks flow through the pipeline like any other), never twice to one person.
    honeypot_rate = models.FloatField(default=0.0)
    # Show a labeler their honeypot's score right after its submit (off: nothing reveals a honeypot).
    immediate_feedback = models.BooleanField(default=False)
    # How a matched region is judged against its reference (gold, or what a reviewer accepted).
    quality_metric = models.CharField(max_length=16, choices=QualityMetric.choices, default=QualityMetric.IOU)
    quality_bound = models.FloatField(default=0.9)
    # Estimated accuracy (share of correct regions) below which `quality_action` applies; null: none.
    quality_threshold = models.FloatField(null=True, blank=True)
    quality_action = models.CharField(
        max_length=16, choices=QualityAction.choices, default=QualityAction.NONE
    )
    # Automatic send-back (labelhub/labeling/reviews.py): a submit whose measured quality (a honeypot's
    # accuracy against its gold regions, where immediate feedback is on; a consensus merge's mean
    # agreement) is below this goes back to the first stage, to its annotator, with a system comment;
    # at most `quality_send_back_limit` times per task (per labeler on a honeypot). Null: never.
    quality_send_back_below = models.FloatField(null=True, blank=True)
    quality_send_back_limit = models.PositiveSmallIntegerField(default=2)
    # Consensus: each first-stage task is annotated by this many different people independently, and
    # their regions merged (a region kept when `consensus_quorum` of them drew it, matched at
    # `consensus_min_iou`; quorum 0: a strict majority). 1: no consensus.
    consensus_annotators = models.PositiveSmallIntegerField(default=1)
    consensus_quorum = models.PositiveSmallIntegerField(default=0)
    consensus_min_iou = models.FloatField(default=0.5)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="project_name_unique_in_org")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.label_schema]

    @property
    def class_kinds(self) -> dict[str, list[str]]:
        """Class name -> the region kinds it allows (both when the schema says nothing)."""
        return {c["name"]: list(c.get("kinds") or ("polygon", "mask")) for c in self.label_schema}

    @property
    def stuff_classes(self) -> set[str]:
        """Classes of type "stuff" (every class in a semantic project)."""
        if self.segmentation == Segmentation.SEMANTIC:
            return set(self.class_names)
        return {c["name"] for c in self.label_schema if c.get("type") == "stuff"}

    @property
    def stage_names(self) -> list[str]:
        return [s["name"] for s in self.pipeline]

    @property
    def first_stage(self) -> str:
        return self.pipeline[0]["name"]


class ProjectMember(models.Model):
    """An annotator or reviewer who works on a project (owners and managers see every project of their
    organization without this)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_memberships"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="one_project_member_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} on {self.project}"
