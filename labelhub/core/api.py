"""Shared API pieces: pagination and the organization-scoped permission helpers."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


@extend_schema_field(OpenApiTypes.ANY)
class PassThroughField(serializers.Field):
    """Accepts any parsed JSON value as is; the domain layer validates it and names the bad field.
    (DRF's JSONField refuses NaN before our validation could say where it is.)"""

    def to_internal_value(self, data):
        return data

    def to_representation(self, value):
        return value
