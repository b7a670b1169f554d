"""The OpenAPI schema generator: drf-spectacular's, with the error envelope documented on every
operation for each 4xx status the API answers."""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS

from .api import PassThroughField


class ErrorBody(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable reason, e.g. `invalid`, `not_found`.")
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True, help_text="The input at fault, as a path, or null.")
    details = PassThroughField(required=False, help_text="Extra detail (every problem of an import).")


class ErrorOut(serializers.Serializer):
    error = ErrorBody()


# Statuses every operation may answer with the envelope; others (409, 413, 416) where views raise them
# are listed through their own extend_schema or here, as documented alternatives.
ERROR_STATUSES = ("400", "401", "403", "404", "405", "409", "413", "429")


class AutoSchema(SpectacularAutoSchema):
    def _is_idempotent(self) -> bool:
        """Whether the view method of this operation honours Idempotency-Key (core.idempotency)."""
        if self.method in SAFE_METHODS:
            return False
        handler = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        return bool(getattr(handler, "idempotent", False))

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if self._is_idempotent():
            from .idempotency import PARAMETER

            parameters = [*parameters, PARAMETER]
        return parameters

    def _get_response_bodies(self, direction="response"):
        bodies = super()._get_response_bodies(direction)
        if direction == "response":
            codes = (*ERROR_STATUSES, "422") if self._is_idempotent() else ERROR_STATUSES
            for code in codes:
                if code not in bodies:
                    bodies[code] = self._get_response_for_code(ErrorOut, code, direction=direction)
        return bodies
