from django.apps import AppConfig


class QaConfig(AppConfig):
    name = "labelhub.qa"
    label = "qa"
    verbose_name = "QA: gold scoring, metrics and webhooks"
