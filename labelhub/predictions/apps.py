from django.apps import AppConfig


class PredictionsConfig(AppConfig):
    name = "labelhub.predictions"
    label = "predictions"
