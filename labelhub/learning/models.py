"""Project models: a segmentation network per project, trained on its accepted annotations.

A ProjectModel is the project's line of versions; each TrainingJob (a request, manual or by the
retraining rule) produces one ModelVersion holding the weights, the held-out metrics, the dataset
snapshot (task and revision ids), the seed and the code version. A version becomes the project's
pre-labeller (`ProjectModel.active_version`) only when it beats the current pre-labeller on the
held-out tasks; both scores are kept on the version (`promotion`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from labelhub.projects.models import Project


class ProjectModel(models.Model):
    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="learned_model")
    architecture = models.CharField(max_length=40, default="unet")
    active_version = models.ForeignKey(
        "ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Accepted tasks counted when the last training was queued (the retraining rule counts from here).
    accepted_at_last_training = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"model of project {self.project_id}"


class VersionStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    TRAINING = "training", "Training"
    READY = "ready", "Trained"
    FAILED = "failed", "Failed"


def weights_path(instance: ModelVersion, filename: str) -> str:
    return f"projects/{instance.project_model.project_id}/models/v{instance.number}-{filename}"


class ModelVersion(models.Model):
    project_model = models.ForeignKey(ProjectModel, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=VersionStatus.choices, default=VersionStatus.QUEUED)
    # {"epoch", "epochs", "loss", "metrics", "seconds"} of the last finished epoch
    progress = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True)
    config = models.JSONField(default=dict)  # workers.train.TrainConfig as a dict
    classes = models.JSONField(default=list)  # class names, index i+1 in the network's output
    stuff_classes = models.JSONField(default=list)  # one region per image instead of one per component
    seed = models.IntegerField(default=0)
    code_version = models.CharField(max_length=80, blank=True)
    # {"train": [[task_id, revision_id], ...], "heldout": [[task_id, revision_id], ...]}
    dataset = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict, blank=True)  # held-out means of this version
    # {"rule", "candidate": {...}, "current": {"source", "metrics"}, "promoted": bool}
    promotion = models.JSONField(default=dict, blank=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    weights = models.FileField(upload_to=weights_path, max_length=300, blank=True)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    parameters = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The running claim (core/jobs.py): runs claimed so far (the claim's token) and the live run's heartbeat.
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project_model_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["project_model", "number"], name="model_version_number_unique")
        ]

    def __str__(self) -> str:
        return f"{self.prediction_model_name} ({self.status})"

    @property
    def prediction_model_name(self) -> str:
        """The model name its predictions carry (their checkpoint_sha256 is `weights_sha256`)."""
        return f"project-{self.project_model.project_id}-v{self.number}"


class TrainingJob(models.Model):
    """One request to train: who or what asked, and the queue's view of it (attempts, task id)."""

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Requested"
        RETRAIN = "retrain", "Retraining rule (N newly accepted tasks)"

    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="job")
    trigger = models.CharField(max_length=16, choices=Trigger.choices, default=Trigger.MANUAL)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class EvaluationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class Evaluation(models.Model):
    """NoC@85/90 of the configured interactive backend on a project's accepted tasks: every region of
    each task's accepted revision is one object clicked by workers.sam.clicks (the standard protocol)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="evaluations")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    status = models.CharField(
        max_length=16, choices=EvaluationStatus.choices, default=EvaluationStatus.QUEUED
    )
    max_clicks = models.PositiveIntegerField(default=20)
    # [[task_id, revision_id], ...] evaluated, fixed when requested
    dataset = models.JSONField(default=list)
    progress = models.JSONField(default=dict, blank=True)  # {"tasks_done", "tasks", "objects_done"}
    backend = models.CharField(max_length=80, blank=True)  # model name of the backend
    model_version = models.CharField(max_length=120, blank=True)  # its checkpoint SHA-256
    noc85 = models.FloatField(null=True, blank=True)
    noc90 = models.FloatField(null=True, blank=True)
    # [{"task", "objects": [{"region", "label", "clicks", "ious", "noc85", "noc90"}]}]
    results = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The running claim (core/jobs.py): runs claimed so far (the claim's token) and the live run's heartbeat.
    attempts = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"evaluation {self.id} of project {self.project_id} ({self.status})"
