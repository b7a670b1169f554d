"""Predictions (read only): what a model made of an image, naming the model and checkpoint."""

from __future__ import annotations

from django_filters import rest_framework as filters
from rest_framework import serializers, viewsets

from labelhub.accounts.selectors import organization_ids_for

from .models import Prediction


class PredictionOut(serializers.ModelSerializer):
    class Meta:
        model = Prediction
        fields = [
            "id",
            "image",
            "model_name",
            "checkpoint_sha256",
            "kind",
            "status",
            "score",
            "regions",
            "error",
            "attempts",
            "duration_ms",
            "created_at",
            "updated_at",
        ]


class PredictionFilter(filters.FilterSet):
    project = filters.NumberFilter(field_name="image__project")

    class Meta:
        model = Prediction
        fields = ["image", "status", "model_name", "project"]


class PredictionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Prediction.objects.none()
    serializer_class = PredictionOut
    filterset_class = PredictionFilter
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return Prediction.objects.filter(
            image__project__organization_id__in=organization_ids_for(self.request.user)
        )
