from __future__ import annotations

from django.conf import settings
from django.db import models

from labelhub.accounts.models import Organization


def default_label_schema() -> list[dict]:
    return [{"name": "object", "color": "#e6194b", "kinds": ["polygon", "mask"]}]


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


class Prelabel(models.TextChoices):
    NONE = "none", "No pre-labels"
    EVERYTHING = "everything", "Segmentation model, everything mode"
    BOXES = "boxes", "Segmentation model, from box prompts (imports or a detector)"
    PROJECT_MODEL = "project_model", "The project's own model (its promoted version)"


class Project(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # [{"name": "cat", "color": "#rrggbb", "kinds": ["polygon", "mask"]}]
    label_schema = models.JSONField(default=default_label_schema)
    # [{"name": "review", "role": "reviewer", "sample_rate": 1.0, "reject_to": "annotate"}], in order
    pipeline = models.JSONField(default=default_pipeline)
    polygon_simplifier = models.CharField(
        max_length=32, choices=Simplifier.choices, default=Simplifier.BOUNDED
    )
    # Accuracy bound of the default simplifier: IoU against the source mask and/or distance in pixels.
    polygon_min_iou = models.FloatField(default=0.98)
    polygon_max_distance = models.FloatField(null=True, blank=True)
    # What pre-labels new images (labelhub/learning trains the project's own model).
    prelabel = models.CharField(max_length=20, choices=Prelabel.choices, default=Prelabel.EVERYTHING)
    # Train a new model version after this many newly accepted tasks (0: only on request).
    retrain_every = models.PositiveIntegerField(default=0)
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
    def stage_names(self) -> list[str]:
        return [s["name"] for s in self.pipeline]

    @property
    def first_stage(self) -> str:
        return self.pipeline[0]["name"]
