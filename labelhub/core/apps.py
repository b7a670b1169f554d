from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "labelhub.core"
    label = "core"
