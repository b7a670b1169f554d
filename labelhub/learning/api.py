"""Project models: train (202 and a job), list versions, read one with its progress."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from labelhub.accounts.models import MANAGING_ROLES
from labelhub.core.api import Pagination, PassThroughField
from labelhub.core.errors import DomainError
from labelhub.core.idempotency import idempotent
from labelhub.projects.selectors import project_get

from . import evaluations, selectors, training
from .models import Evaluation, ModelVersion


class TrainIn(serializers.Serializer):
    epochs = PassThroughField(required=False, help_text="Passes over the data (1-1000; default 40).")
    steps_per_epoch = PassThroughField(required=False, help_text="Batches per epoch (default 10).")
    minutes = PassThroughField(required=False, help_text="Wall-clock budget; training stops when spent.")
    batch_size = PassThroughField(required=False)
    crop = PassThroughField(required=False, help_text="Side of the random training crops, pixels.")
    lr = PassThroughField(required=False)
    width = PassThroughField(
        required=False, help_text="U-Net channels at the first level (16: ~1.9M params)."
    )
    depth = PassThroughField(required=False)
    seed = PassThroughField(required=False)
    heldout_fraction = PassThroughField(required=False, help_text="Share of accepted tasks held out (0.2).")
    min_area = PassThroughField(
        required=False, help_text="Pre-label pieces under this many pixels are merged away (16)."
    )
    stuff_classes = PassThroughField(
        required=False, help_text="Classes predicted as one region per image (others: one per component)."
    )


class VersionOut(serializers.ModelSerializer):
    project = serializers.IntegerField(source="project_model.project_id")
    model_name = serializers.CharField(source="prediction_model_name")
    active = serializers.SerializerMethodField()
    trigger = serializers.CharField(source="job.trigger")
    attempts = serializers.IntegerField(source="job.attempts")

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "project",
            "number",
            "model_name",
            "status",
            "progress",
            "metrics",
            "promotion",
            "promoted_at",
            "active",
            "config",
            "classes",
            "stuff_classes",
            "seed",
            "code_version",
            "dataset",
            "weights_sha256",
            "parameters",
            "error",
            "trigger",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_active(self, obj: ModelVersion) -> bool:
        return obj.project_model.active_version_id == obj.id


class JobOut(serializers.Serializer):
    job = serializers.IntegerField(source="id")
    model = VersionOut(source="version")


class ProjectModelsView(generics.ListAPIView):
    """The project's model versions, newest first, each with its progress, held-out metrics and
    promotion record; `active` marks the one that pre-labels. Paginated like every list."""

    serializer_class = VersionOut
    pagination_class = Pagination
    filter_backends: list = []

    def get_queryset(self):
        project_pk = self.kwargs["project_pk"]
        project_get(user=self.request.user, project_id=project_pk)
        return selectors.versions_for_project(project_id=project_pk)


class ProjectTrainView(APIView):
    @extend_schema(request=TrainIn, responses={202: JobOut})
    @idempotent
    def post(self, request, project_pk: int):
        """Queue training of a new version on the project's accepted tasks (managers). 202 with the job;
        poll `GET models/{id}/` for progress."""
        project = project_get(
            user=request.user, project_id=project_pk, roles=MANAGING_ROLES, action="train models"
        )
        # The service checks every option (unknown ones included) and names the field at fault.
        if not isinstance(request.data, dict):
            raise DomainError("The body is a JSON object of training options.", field="body")
        job = training.training_request(project=project, user=request.user, options=dict(request.data))
        return Response(JobOut(job).data, status=status.HTTP_202_ACCEPTED)


class ModelVersionView(APIView):
    @extend_schema(responses=VersionOut)
    def get(self, request, version_pk: int):
        """One model version: status, progress (epoch, loss, held-out metrics), metrics, promotion."""
        return Response(VersionOut(selectors.version_get(user=request.user, version_id=version_pk)).data)


class EvaluationIn(serializers.Serializer):
    max_clicks = PassThroughField(required=False, help_text="Clicks per object, 1-20 (default 20).")
    max_tasks = PassThroughField(required=False, help_text="Only the first N accepted tasks (1-1000).")


class EvaluationOut(serializers.ModelSerializer):
    class Meta:
        model = Evaluation
        fields = [
            "id",
            "project",
            "status",
            "progress",
            "backend",
            "model_version",
            "max_clicks",
            "noc85",
            "noc90",
            "results",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class ProjectEvaluationsView(APIView):
    @extend_schema(request=EvaluationIn, responses={202: EvaluationOut})
    @idempotent
    def post(self, request, project_pk: int):
        """Queue NoC@85/90 of the project's interactive backend (SAM or classical) on its accepted
        tasks, by the standard click protocol (managers). 202; poll `GET evaluations/{id}/`."""
        project = project_get(
            user=request.user, project_id=project_pk, roles=MANAGING_ROLES, action="evaluate backends"
        )
        if not isinstance(request.data, dict):
            raise DomainError("The body is a JSON object of evaluation options.", field="body")
        evaluation = evaluations.evaluation_request(
            project=project, user=request.user, options=dict(request.data)
        )
        return Response(EvaluationOut(evaluation).data, status=status.HTTP_202_ACCEPTED)


class EvaluationView(APIView):
    @extend_schema(responses=EvaluationOut)
    def get(self, request, evaluation_pk: int):
        """One evaluation: status, progress, NoC@85/90, per-object clicks and IoU after each click,
        backend name and model version (checkpoint SHA-256)."""
        evaluation = selectors.evaluation_get(user=request.user, evaluation_id=evaluation_pk)
        return Response(EvaluationOut(evaluation).data)


class ServiceTrainOut(serializers.Serializer):
    accepted_tasks = serializers.IntegerField(help_text="Accepted tasks sent with START_TRAINING.")


class ModelServiceTrainView(APIView):
    @extend_schema(request=None, responses={202: ServiceTrainOut})
    @idempotent
    def post(self, request, project_pk: int, service_pk: int):
        """Send START_TRAINING with every accepted task to a model service used for training (managers)."""
        from labelhub.predictions.model_services import service_get

        from .service_training import service_train_request

        project = project_get(
            user=request.user, project_id=project_pk, roles=MANAGING_ROLES, action="train models"
        )
        count = service_train_request(service=service_get(project=project, service_id=service_pk))
        return Response({"accepted_tasks": count}, status=status.HTTP_202_ACCEPTED)
