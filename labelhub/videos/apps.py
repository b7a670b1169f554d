from django.apps import AppConfig


class VideosConfig(AppConfig):
    name = "labelhub.videos"
    label = "videos"

    def ready(self) -> None:
        from labelhub.core.events import PROJECT_DELETING, subscribe

        from .services import on_project_deleting

        subscribe(PROJECT_DELETING, on_project_deleting, in_transaction=True)
