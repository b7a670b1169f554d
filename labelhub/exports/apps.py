from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "labelhub.exports"
    label = "exports"
