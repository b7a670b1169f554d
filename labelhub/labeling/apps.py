from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labelhub.labeling"
    label = "labeling"
