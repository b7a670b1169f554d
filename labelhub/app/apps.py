from __future__ import annotations

from django.apps import AppConfig


class LabelingAppConfig(AppConfig):
    name = "labelhub.app"
    label = "labeling_app"
    verbose_name = "Browser labeling app"
