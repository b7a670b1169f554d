from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "labelhub.learning"
    label = "learning"

    def ready(self) -> None:
        # The project's own model becomes one of the pre-labellers that predictions dispatches to.
        from labelhub.predictions.services import prelabeller_register

        from .services import prelabel_enqueue

        prelabeller_register(mode="project_model", enqueue=prelabel_enqueue)
