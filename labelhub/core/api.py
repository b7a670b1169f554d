"""Shared API pieces: pagination and the organization-scoped permission helpers."""

from __future__ import annotations

from django import forms
from django.db import models
from django_filters import rest_framework as filters
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


class IdFilter(filters.NumberFilter):
    """An id: a whole number a database row can hold (larger ones answer 400, not a database error)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class IdFilterSet(filters.FilterSet):
    """Foreign keys filter by plain id (`?project=7`), never checked against a table: another
    organization's id answers exactly like an id that does not exist (an empty list), so a filter
    cannot tell whether someone else's object exists."""

    FILTER_DEFAULTS = {
        **filters.FilterSet.FILTER_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
    }

    def get_form_class(self):
        """The filters' form class, built once per filter set: django-filter builds a new class on every
        request (a metaclass run over every field). Its fields here depend on nothing of the request
        (numbers, choices, booleans), and each form deep-copies them from the class as Django does."""
        form = _FORMS.get(type(self))
        if form is None:
            form = _FORMS[type(self)] = super().get_form_class()
        return form


_FORMS: dict[type, type] = {}
